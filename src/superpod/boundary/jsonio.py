"""JSON at the boundary: inputs bounded in depth with strict numbers, outputs strict.

Inputs (Hugging Face ``config.json``, traces): nesting deeper than ``MAX_DEPTH`` and the
non-standard constants ``NaN`` / ``Infinity`` are refused, as are numbers that overflow to
infinity (``1e999``). Outputs follow RFC 8259: a non-finite float is written as ``null`` and
listed under ``non_finite`` with the reason (``+inf``: e.g. an MTBF with no failures), so
any JSON parser reads every ``--json`` output.
"""

from __future__ import annotations

import json
import math
from typing import Any

from superpod.errors import SpecError

#: nesting deeper than this is refused before parsing (configs and traces are 2-3 deep)
MAX_DEPTH = 64


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The deepest ``[`` / ``{`` nesting outside strings, counted up to ``limit + 1``."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def loads(text: str, file: str) -> Any:
    """Parse JSON input strictly; any problem is one ``SpecError`` naming the file."""
    if nesting_depth(text) > MAX_DEPTH:
        raise SpecError("JSON nested too deep", file=file,
                        allowed=f"at most {MAX_DEPTH} levels")

    def constant(token: str) -> Any:
        raise SpecError(f"'{token}' is not a JSON number", file=file,
                        allowed="finite numbers")

    def number(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            raise SpecError("number too large", file=file, value=token[:40],
                            allowed="finite numbers")
        return value

    def integer(token: str) -> int:
        if len(token.lstrip("-")) > 30:
            raise SpecError("integer too large", file=file, value=token[:40] + "...",
                            allowed="at most 30 digits")
        return int(token)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise SpecError("duplicate key", file=file, field=key)
            out[key] = value
        return out

    try:
        return json.loads(text, parse_constant=constant, parse_float=number,
                          parse_int=integer, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise SpecError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                        file=file) from None
    except RecursionError:
        raise SpecError("JSON nested too deep", file=file) from None


def strict(obj: Any) -> tuple[Any, list[dict[str, str]]]:
    """``obj`` with every non-finite float replaced by ``None``, and where each one was."""
    found: list[dict[str, str]] = []

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            found.append({"path": path or ".", "value": _reason(x)})
            return None
        if isinstance(x, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(x)]
        return x

    return walk(obj, ""), found


def _reason(x: float) -> str:
    if math.isnan(x):
        return "nan: undefined (e.g. 0/0: nothing to average)"
    return "+inf: unbounded (e.g. no failures, no load)" if x > 0 else "-inf: unbounded"


def dumps(obj: Any) -> str:
    """Strict JSON text of a result (indent 2); non-finite numbers become ``null`` and a
    top-level ``non_finite`` list says where and why."""
    clean, found = strict(obj)
    if found and isinstance(clean, dict):
        clean = {**clean, "non_finite": found}
    return json.dumps(clean, indent=2, default=str, allow_nan=False)
