"""One small progress bar for every long command (plan, sweep, validate, serve-sim,
reliability Monte Carlo).

Drawn on stderr only, and only when stderr is a terminal and the command prints no JSON
(``--json`` output stays clean and logs stay free of carriage returns); ``SUPERPOD_PROGRESS=0``
turns it off, ``=1`` forces it on. Redrawn at most ``REDRAW_S`` apart; the ETA assumes the
rest goes at the mean pace so far. No dependency (the start-up budget has no room for one).
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import TextIO

REDRAW_S = 0.1
WIDTH = 28  # characters of bar


def wanted(quiet: bool = False, stream: TextIO | None = None) -> bool:
    """Whether a bar should be drawn: not ``quiet`` (``--json``), stderr a terminal, and not
    turned off by ``SUPERPOD_PROGRESS``."""
    env = os.environ.get("SUPERPOD_PROGRESS")
    if env is not None:
        return env not in ("0", "", "no", "false")
    s = stream or sys.stderr
    return not quiet and bool(getattr(s, "isatty", lambda: False)())


def eta_text(done: float, total: float, elapsed_s: float) -> str:
    """``"ETA 1m05s"`` at the mean pace so far, ``""`` before the first unit is done."""
    if done <= 0 or total <= done:
        return ""
    left = elapsed_s / done * (total - done)
    m, s = divmod(int(round(left)), 60)
    return f"ETA {m}m{s:02d}s" if m else f"ETA {s}s"


class Bar:
    """``with Bar("plan train", total, enabled) as bar: bar.update(done)``."""

    def __init__(self, label: str, total: float, enabled: bool | None = None,
                 stream: TextIO | None = None) -> None:
        self.label, self.total = label, max(float(total), 0.0)
        self.stream = stream or sys.stderr
        self.enabled = wanted(stream=self.stream) if enabled is None else enabled
        self.start = time.perf_counter()
        self._last = 0.0
        self.done = 0.0

    def update(self, done: float, total: float | None = None, note: str = "") -> None:
        """Set progress to ``done`` of ``total`` (default: the total given at the start)."""
        if total is not None:
            self.total = float(total)
        self.done = done
        now = time.perf_counter()
        if not self.enabled or (now - self._last < REDRAW_S and done < self.total):
            return
        self._last = now
        self.stream.write("\r" + self.line(now - self.start, note))
        self.stream.flush()

    def line(self, elapsed_s: float, note: str = "") -> str:
        frac = min(1.0, self.done / self.total) if self.total else 0.0
        fill = int(frac * WIDTH)
        counts = f"{self.done:,.0f}/{self.total:,.0f}"
        tail = " ".join(x for x in (eta_text(self.done, self.total, elapsed_s), note) if x)
        return (f"{self.label} [{'#' * fill}{'.' * (WIDTH - fill)}] {frac:4.0%} {counts} "
                f"{tail}").rstrip()[:120]

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.enabled and self._last:
            self.stream.write("\r" + " " * 120 + "\r")  # leave the terminal clean
            self.stream.flush()
