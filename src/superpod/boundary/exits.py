"""Exit codes and the one line an error prints (README "Exit codes").

* 0 ``ANSWER``     - an answer;
* 1 ``INFEASIBLE`` - valid input that cannot run, with its reasons;
* 2 ``BAD_INPUT``  - bad input: file, field, value and what is allowed;
* 3 ``INTERNAL``   - a bug in superpod: one line and where to report it; the traceback only
  with ``SUPERPOD_DEBUG=1``.

With ``--json`` an error is a JSON object on stderr:
``{"error": {"message", "file", "field", "value", "allowed"}}``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from superpod.errors import SpecError

ANSWER, INFEASIBLE, BAD_INPUT, INTERNAL = 0, 1, 2, 3
#: where an internal error is reported
REPORT_TO = "the superpod issue tracker (with the command line and SUPERPOD_DEBUG=1 output)"


def debug() -> bool:
    """``SUPERPOD_DEBUG=1``: internal errors raise with their traceback."""
    return os.environ.get("SUPERPOD_DEBUG", "") not in ("", "0")


def error_object(message: str, *, file: str | None = None, field: str | None = None,
                 value: object = None, allowed: str | None = None) -> dict[str, Any]:
    """The ``--json`` error object."""
    shown = value if value is None or isinstance(value, str | int | bool) else (
        value if isinstance(value, float) and value == value and abs(value) != float("inf")
        else str(value))
    return {"error": {"message": message, "file": file, "field": field, "value": shown,
                      "allowed": allowed}}


def spec_error_object(exc: SpecError) -> dict[str, Any]:
    """The error object; a file's further problems (up to 20 in all) under ``problems``,
    each an error object's inner mapping, and ``more`` for those beyond."""
    obj = error_object(exc.detail.strip(), file=exc.file, field=exc.field, value=exc.value,
                       allowed=exc.allowed)
    if exc.problems or exc.more:
        obj["error"]["problems"] = [error_object(p.detail.strip(), file=p.file, field=p.field,
                                                 value=p.value, allowed=p.allowed)["error"]
                                    for p in exc.problems]
        obj["error"]["more"] = exc.more
    return obj


def write_json_error(obj: dict[str, Any]) -> None:
    sys.stderr.write(json.dumps(obj, default=str) + "\n")


def internal_message(exc: BaseException) -> str:
    """The one line of an internal error."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return (f"internal error ({type(exc).__name__}{': ' + text if text else ''}); this is a "
            f"bug in superpod, please report it to {REPORT_TO}")
