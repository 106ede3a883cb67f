"""Caches of what superpod reads from its own YAML files (catalog, calibration, prices):
the parsed documents and the validated objects built from them.

Every command starts by reading and validating the package's YAML: parsing (libyaml's
parser, then PyYAML's Python resolver and constructor) takes ~35 ms, building pydantic's
validators and validating another ~35 ms. Both results load back from the cache in a few
milliseconds:

* ``cached_parse``: a file's parsed document (plain dicts, lists, strings, numbers) as
  ``marshal`` data, keyed by a SHA-256 of the file's text, of the loader
  (``superpod.hardware.loading``'s source: its limits and constructors) and of the
  installed PyYAML (its ``__init__``'s path, size and modification time);
* ``cached_build``: what a loader built from some of the package's files, validated, as
  ``pickle`` data, keyed by a SHA-256 of those files' texts and of the installed code: the
  size and modification time of every module of the package, and the versions of Python,
  pydantic and PyYAML. An edited YAML file, an edited module or another library version is
  read and validated again, and the entry rewritten.

A result is cached only when the files were read without error (a bad file raises as
before, every time), and each read returns new objects. Only files inside the superpod
package are cached, one entry per file or loader, so the cache stays as small as the
package's YAML; a user's files are read each time. The cache lives in
``$SUPERPOD_CACHE_DIR`` (empty: no cache), else ``$XDG_CACHE_HOME/superpod`` or
``~/.cache/superpod``. It trusts that folder as Python trusts ``__pycache__`` (``marshal``
is the format of ``.pyc`` files, and they hold code too); an entry that cannot be read, is
stale or is damaged is ignored, and a cache that cannot be written is skipped silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: bump when what an entry holds changes meaning
FORMAT = b"superpod-load-cache-1"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
_LOADER_SOURCE = PACKAGE_DIR / "hardware" / "loading.py"


def cache_dir() -> Path | None:
    """Where entries live, or ``None`` with ``SUPERPOD_CACHE_DIR`` set empty."""
    env = os.environ.get("SUPERPOD_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "superpod"


def _yaml_init() -> bytes:
    """PyYAML's ``__init__`` (where, size, modified): which PyYAML is installed, found, not
    imported (a run whose files all come from the cache never imports PyYAML)."""
    import importlib.util

    spec = importlib.util.find_spec("yaml")
    if spec is None or not spec.origin:
        return b""
    st = os.stat(spec.origin)
    return f"{spec.origin}:{st.st_size}:{st.st_mtime_ns}".encode()


@lru_cache(maxsize=1)
def _parse_salt() -> bytes:
    """The parser's identity: the loader's source and PyYAML's."""
    try:
        return b"\0".join((FORMAT, b"parse", _LOADER_SOURCE.read_bytes(), _yaml_init()))
    except OSError:  # pragma: no cover - an installation without sources: never cached
        return os.urandom(16)


@lru_cache(maxsize=1)
def _code_salt() -> bytes:
    """The installed code's identity: every module of the package (path, size, mtime) and
    the versions of Python, pydantic and PyYAML."""
    import pydantic  # the cached objects are pydantic models: imported to load them anyway

    root = str(PACKAGE_DIR)
    parts = [FORMAT, b"build", sys.version.encode(), pydantic.VERSION.encode()]
    try:
        parts.append(_yaml_init())
        folders = [root]
        while folders:
            with os.scandir(folders.pop()) as it:
                for e in sorted(it, key=lambda e: e.name):
                    if e.is_dir(follow_symlinks=False):
                        if e.name != "__pycache__":
                            folders.append(e.path)
                    elif e.name.endswith(".py"):
                        st = e.stat()
                        parts.append(f"{e.path[len(root):]}:{st.st_size}:{st.st_mtime_ns}"
                                     .encode())
    except OSError:  # pragma: no cover - cannot tell the code: never cached
        return os.urandom(16)
    return hashlib.sha256(b"\0".join(parts)).digest()


def _ours(path: Path) -> Path | None:
    """The resolved path of a file inside the package, else ``None``."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return None
    return resolved if resolved.is_relative_to(PACKAGE_DIR) else None


def _entry(kind: str, stem: str, ident: str) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    return folder / f"{stem}-{hashlib.sha256(ident.encode()).hexdigest()[:20]}.{kind}"


def _load(entry: Path, key: bytes, loads: Callable[[bytes], Any]) -> tuple[bool, Any]:
    """``(True, value)`` from a current entry, else ``(False, None)``."""
    try:
        data = entry.read_bytes()
    except OSError:
        return False, None
    if data[:32] != key:
        return False, None
    try:
        return True, loads(data[32:])
    except Exception:  # a damaged entry: read the files instead
        return False, None


def cached_parse(path: str | Path, text: str, parse: Callable[[str, str], Any]) -> Any:
    """``parse(text, str(path))``, from the cache where it holds this text's document."""
    resolved = _ours(Path(path))
    entry = None if resolved is None else _entry("marshal", resolved.stem, str(resolved))
    if entry is None:
        return parse(text, str(path))
    key = hashlib.sha256(_parse_salt() + b"\0" + text.encode()).digest()
    hit, doc = _load(entry, key, marshal.loads)
    if hit:
        return doc
    doc = parse(text, str(path))  # a malformed file raises here: nothing is stored
    with contextlib.suppress(ValueError):  # a value marshal cannot hold (a timestamp)
        _store(entry, key, marshal.dumps(doc))
    return doc


def cached_build(name: str, files: Sequence[str | Path], build: Callable[[], T]) -> T:
    """``build()``, which reads and validates ``files``, from the cache where it holds
    the result for these files' texts and this code. ``name`` names the loader (one entry
    each); files outside the package are never cached."""
    resolved = [_ours(Path(f)) for f in files]
    entry = (None if not resolved or None in resolved
             else _entry("pickle", name, "\0".join([name, *map(str, resolved)])))
    if entry is None:
        return build()
    try:
        h = hashlib.sha256(_code_salt() + name.encode())
        for f in resolved:
            h.update(b"\0" + f.read_bytes())  # type: ignore[union-attr]
    except OSError:
        return build()  # raises the file's error as it would uncached
    key = h.digest()
    hit, value = _load(entry, key, pickle.loads)
    if hit:
        return value  # type: ignore[no-any-return]
    value = build()
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an object pickle cannot hold: not cached
        return value
    _store(entry, key, data)
    return value


def _store(entry: Path, key: bytes, data: bytes) -> None:
    """Write an entry atomically (a concurrent reader sees the old or the new one)."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(key + data)
            os.replace(tmp, entry)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass
