"""A cache of the parsed form of superpod's own YAML files (catalog, calibration, prices).

Parsing them (libyaml's parser, then PyYAML's Python resolver and constructor) takes
~35 ms of every command's start-up; the parsed document, plain dicts, lists, strings and
numbers, loads back from ``marshal`` in well under 1 ms. An entry is used only when its key
matches: a SHA-256 of the file's text, of the loader (``superpod.hardware.loading``'s
source: its limits and constructors) and of PyYAML's (its ``__init__``, which carries the
version), so an edited YAML file or loader is parsed again and the entry rewritten. Only the
document is cached: every caller still validates what it reads, as before. Each read returns
new objects.

Only files inside the superpod package are cached (one entry per file, so the cache stays
as small as the package's YAML); a user's files are parsed each time. The cache lives in
``$SUPERPOD_CACHE_DIR`` (empty: no cache), else ``$XDG_CACHE_HOME/superpod`` or
``~/.cache/superpod``. It trusts that folder as Python trusts ``__pycache__`` (``marshal``
is the format of ``.pyc`` files); an entry that cannot be read, is stale or is damaged is
ignored, and a cache that cannot be written is skipped silently.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

#: bump when what an entry holds changes meaning
FORMAT = b"superpod-parse-cache-1"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
_LOADER_SOURCE = PACKAGE_DIR / "hardware" / "loading.py"


def cache_dir() -> Path | None:
    """Where entries live, or ``None`` with ``SUPERPOD_CACHE_DIR`` set empty."""
    env = os.environ.get("SUPERPOD_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "superpod"


@lru_cache(maxsize=1)
def _salt() -> bytes:
    """The loader's identity: its source and PyYAML's (read, not imported: a run whose
    files all come from the cache never imports PyYAML)."""
    import importlib.util

    spec = importlib.util.find_spec("yaml")
    try:
        parts = [FORMAT, _LOADER_SOURCE.read_bytes(),
                 Path(spec.origin).read_bytes() if spec and spec.origin else b""]
    except OSError:  # pragma: no cover - an installation without sources: never cached
        parts = [os.urandom(16)]
    return b"\0".join(parts)


def _entry(path: Path) -> Path | None:
    """The cache file of a package YAML file, or ``None`` (not the package's, no cache)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(PACKAGE_DIR):
        return None
    name = hashlib.sha256(str(resolved).encode()).hexdigest()[:20]
    return folder / f"{resolved.stem}-{name}.marshal"


def cached_parse(path: str | Path, text: str, parse: Callable[[str, str], Any]) -> Any:
    """``parse(text, str(path))``, from the cache where it holds this text's document."""
    entry = _entry(Path(path))
    if entry is None:
        return parse(text, str(path))
    key = hashlib.sha256(_salt() + b"\0" + text.encode()).digest()
    try:
        stored = marshal.loads(entry.read_bytes())
        if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == key:
            return stored[1]
    except (OSError, EOFError, ValueError, TypeError):
        pass
    doc = parse(text, str(path))  # a malformed file raises here: nothing is stored
    _store(entry, key, doc)
    return doc


def _store(entry: Path, key: bytes, doc: Any) -> None:
    """Write an entry atomically (a concurrent reader sees the old or the new one)."""
    try:
        data = marshal.dumps((key, doc))
    except ValueError:  # a value marshal cannot hold (a YAML timestamp): not cached
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-", suffix=".marshal")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, entry)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass
