"""Reading a ``serve-sim`` trace: a CSV with a header, or a JSON list of objects.

The file is read through ``superpod.boundary`` (a regular file, bounded size; JSON bounded
in depth, no NaN); at most ``MAX_REQUESTS`` rows. Values are checked where they are used
(``simulate.trace_requests``, ``prefix_sim.trace_prefixes``) with ``count`` and ``seconds``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from superpod.errors import SpecError

#: requests one simulation may take (a trace or Poisson arrivals)
MAX_REQUESTS = 1_000_000
#: the latest arrival a trace may give (a year, in seconds)
MAX_ARRIVAL_S = 365 * 86400.0
#: the longest prompt or output a request may have (tokens)
MAX_TOKENS = 100_000_000


def trace_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a trace file, each a mapping of column to value."""
    from superpod.boundary import jsonio
    from superpod.boundary.files import read_text

    p = str(path)
    text = read_text(p, field="--trace")
    if Path(p).suffix.lower() == ".json":
        rows = jsonio.loads(text, p)
    else:
        try:
            rows = list(csv.DictReader(text.splitlines()))
        except csv.Error as exc:
            raise SpecError(f"malformed CSV: {exc}", file=p) from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise SpecError("a trace is a list of rows (CSV with a header, or a JSON list of "
                        "objects)", file=p)
    if not rows:
        raise SpecError("the trace has no rows", file=p)
    if len(rows) > MAX_REQUESTS:
        raise SpecError(f"too many rows ({len(rows):,})", file=p,
                        allowed=f"at most {MAX_REQUESTS:,}")
    return rows


def count(value: Any, file: str, column: str, row: int, *, minimum: int = 1) -> int:
    """A whole number of tokens from a trace cell (an int, or its text in a CSV)."""
    n: Any = value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and \
            len(value.strip()) < 20:
        n = int(value.strip())
    if isinstance(n, bool) or not isinstance(n, int) or not minimum <= n <= MAX_TOKENS:
        raise SpecError("must be a whole number", file=file, field=f"rows[{row}].{column}",
                        value=value if isinstance(value, str | int | float) else None,
                        allowed=f"{minimum} to {MAX_TOKENS:,}")
    return n


def seconds(value: Any, file: str, column: str, row: int) -> float:
    """An arrival time (s) from a trace cell: finite, 0 to ``MAX_ARRIVAL_S``."""
    t: Any = value
    if isinstance(value, str):
        try:
            t = float(value)
        except ValueError:
            t = value
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) \
            or not 0 <= t <= MAX_ARRIVAL_S:
        raise SpecError("must be a time in seconds", file=file, field=f"rows[{row}].{column}",
                        value=value if isinstance(value, str | int | float) else None,
                        allowed=f"0 to {MAX_ARRIVAL_S:,.0f}")
    return float(t)
