"""Input and output files at the boundary.

An input is read only when it is a regular file no larger than ``MAX_INPUT_BYTES``: a FIFO
would block forever, ``/dev/zero`` would be read until memory runs out, a directory is a
mistake. An output that cannot be written (a directory, a missing parent folder, a name too
long, a full disk, no permission) is one ``SpecError`` line naming the option, never a
traceback after the work is done.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from superpod.errors import SpecError

#: the largest input file superpod reads (64 MiB: the catalog is ~100 kB, traces a few MB)
MAX_INPUT_BYTES = 64 * 2**20


def read_bytes(path: str | Path, *, field: str | None = None,
               limit_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit_bytes``, or a ``SpecError``."""
    p = str(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise SpecError("file not found", file=p, field=field) from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read file: {_reason(exc)}", file=_short(p),
                        field=field) from None
    if stat.S_ISDIR(st.st_mode):
        raise SpecError("is a directory, not a file", file=p, field=field)
    if not stat.S_ISREG(st.st_mode):
        raise SpecError("is not a regular file (a FIFO, device or socket is not read)",
                        file=p, field=field)
    if st.st_size > limit_bytes:
        raise SpecError(f"file too large ({st.st_size:,} bytes)", file=p, field=field,
                        allowed=f"at most {limit_bytes:,} bytes")
    try:
        # O_NONBLOCK: should the path become a FIFO after the check, opening never blocks
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit_bytes + 1)
    except OSError as exc:
        raise SpecError(f"cannot read file: {_reason(exc)}", file=p, field=field) from None
    if len(data) > limit_bytes:
        raise SpecError("file too large", file=p, field=field,
                        allowed=f"at most {limit_bytes:,} bytes")
    return data


def read_text(path: str | Path, *, field: str | None = None,
              limit_bytes: int = MAX_INPUT_BYTES) -> str:
    """A regular file's text, which must be UTF-8."""
    data = read_bytes(path, field=field, limit_bytes=limit_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})",
                        file=str(path), field=field) from None


def check_output(path: str | Path, field: str) -> Path:
    """An output path that can be written: not a directory, its folder exists, its name
    fits. Call before the work so that a bad path fails first."""
    p = Path(path)
    text = str(path)
    if any(len(part.encode()) > 255 for part in p.parts) or \
            len(os.fsencode(p.absolute())) > 4095:
        raise SpecError("file name too long", field=field, value=_short(text),
                        allowed="names up to 255 bytes")
    try:
        if not text or text.endswith(os.sep) or p.is_dir():
            raise SpecError("is a directory; give a file name", field=field, value=text)
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise SpecError("the folder does not exist", field=field, value=text,
                            allowed="a file in an existing folder")
    except OSError as exc:
        raise SpecError(f"cannot write: {_reason(exc)}", field=field,
                        value=_short(text)) from None
    return p


def write_text(path: str | Path, text: str, field: str) -> None:
    """Write ``text`` (UTF-8) to an output path; any failure is one ``SpecError`` line."""
    p = check_output(path, field)
    try:
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise SpecError(f"cannot write: {_reason(exc)}", field=field,
                        value=_short(str(p))) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
