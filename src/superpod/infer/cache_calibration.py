"""Measured context-caching effects and the one number fitted from them.

``superpod/calibration/context_caching.yaml`` holds, per chip (and runtime), measured
prefill-throughput ratios with and without a cached prefix at stated hit ratios. From them
one fraction ``f`` is fitted: the part of the uncached prefill time that shrinks with the hit
ratio, ``1 / ratio = 1 - f h`` (least squares through the origin:
``f = sum(h_i (1 - 1 / r_i)) / sum(h_i^2)``). The rest, ``1 - f``, is what caching does not
save in that runtime (lookup, scheduling, loading, work outside the model). No entry for a
chip, or an entry whose source is held out (leave-one-source-out), gives ``f = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from superpod.errors import SpecError
from superpod.hardware.loading import read_yaml
from superpod.trust.holdout import held_out

FILE = Path(__file__).resolve().parent.parent / "calibration" / "context_caching.yaml"


@dataclass(frozen=True)
class CachingEntry:
    chips: tuple[str, ...]
    runtime: str
    source: str
    evidence: str
    points: tuple[tuple[float, float], ...]  # (hit ratio, throughput ratio)


def fit_fraction(points: tuple[tuple[float, float], ...]) -> float:
    """``f`` of ``1 / r = 1 - f h`` by least squares through the origin, clipped to [0, 1]."""
    num = sum(h * (1.0 - 1.0 / r) for h, r in points)
    den = sum(h * h for h, _ in points)
    return 1.0 if den <= 0 else min(1.0, max(0.0, num / den))


def _entry(raw: Any, i: int) -> CachingEntry:
    where = f"context_caching[{i}]"
    try:
        pts = tuple((float(h), float(r)) for h, r in raw["points"])
        entry = CachingEntry(chips=tuple(str(c) for c in raw["chips"]),
                             runtime=str(raw["runtime"]), source=str(raw["source"]),
                             evidence=str(raw["evidence"]), points=pts)
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"a context-caching entry needs chips, runtime, source, evidence and "
                        f"points [[h, ratio], ...]: {exc}", file=str(FILE), field=where) from None
    if not pts or any(not (0 < h < 1 and r >= 1) for h, r in pts):
        raise SpecError("points need 0 < h < 1 and a ratio >= 1", file=str(FILE), field=where)
    return entry


@lru_cache(maxsize=1)
def entries() -> tuple[CachingEntry, ...]:
    doc = read_yaml(FILE)
    raw = doc.get("context_caching", []) if isinstance(doc, dict) else []
    return tuple(_entry(r, i) for i, r in enumerate(raw))


def scaling_fraction(chip_id: str) -> tuple[float, CachingEntry | None]:
    """(f, the entry it comes from) for ``chip_id``; (1, None) without a usable entry."""
    for e in entries():
        if chip_id in e.chips and not held_out(e.source):
            return fit_fraction(e.points), e
    return 1.0, None
