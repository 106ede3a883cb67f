"""The nearest feasible global batch: a batch no layout meets says why and which one does.

A layout of ``plan train`` runs ``global_batch / (dp x micro_batch)`` micro-batches, so a
batch is only reachable when some data-parallel degree the search can form divides it. The
data-parallel degrees are those of the search's own candidates (``train.search.candidates``
asked with a batch every degree divides), so this module and the search never disagree.

``nearest_batches`` prefers, among the batches within ``TOLERANCE`` of the target (the same
tokens per step for a comparison's purpose), the one the most data-parallel degrees divide:
every layout that reaches a smaller such set reaches it too, so its best layout is at least
as fast (1536 on GB200 NVL72, degrees 9, 18, 36, 72: 1512, not 1539, which only dp 9
divides). Ties, and batches outside the window, go by distance (then the smaller first).
``nearest_feasible`` runs the search on them in that order until one has a feasible layout
(memory, SLO-free), trying at most ``MAX_TRIES``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from superpod.hardware.system import System
from superpod.train.search import SearchResult, candidates
from superpod.workload.model import ModelSpec

MAX_TRIES = 6
TOLERANCE = 1 / 16  #: batches within this fraction of the target count as the same size
NEAR_MULTIPLES = 8  #: multiples of each degree looked at on either side of the target
SCAN_LIMIT = 1 << 16  #: windows up to this many batches are scanned whole


def data_parallel_degrees(system: System, model: ModelSpec, seq_len: int, precision: str,
                          ranks_per_chip: int) -> list[int]:
    """Every dp the layout search forms on ``system`` (sorted)."""
    world = system.counts.chips * ranks_per_chip
    return sorted({p.dp for p in candidates(system, model, world * 8, seq_len, precision,
                                            ranks_per_chip)})


def nearest_batches(target: int, degrees: list[int], count: int = MAX_TRIES) -> list[int]:
    """Up to ``count`` distinct batches that some degree divides, best first (module
    docstring: within ``TOLERANCE`` the most dividing degrees, then the nearest)."""
    def reach(b: int) -> int:
        return sum(b % d == 0 for d in degrees)

    lo = max(1, math.ceil(target * (1 - TOLERANCE)))
    hi = math.floor(target * (1 + TOLERANCE))
    near: set[int] = set()
    if hi - lo <= SCAN_LIMIT:
        near |= {b for b in range(lo, hi + 1) if reach(b)}
    for d in degrees:  # the nearest multiples of each degree, inside the window or not
        base = max(1, target // d)
        near |= {d * m for m in range(max(1, base - NEAR_MULTIPLES),
                                      base + NEAR_MULTIPLES + 2)}

    def key(b: int) -> tuple[bool, int, int, int]:
        inside = lo <= b <= hi
        return (not inside, -reach(b) if inside else 0, abs(b - target), b)

    return sorted(near, key=key)[:count]


@dataclass(frozen=True)
class BatchChoice:
    """The batch a comparison runs, the one asked for, and why they differ."""

    asked: int
    batch: int
    result: SearchResult
    reason: str = ""

    @property
    def moved(self) -> bool:
        return self.batch != self.asked

    def to_dict(self) -> dict[str, object]:
        return {"asked_global_batch": self.asked, "global_batch": self.batch,
                "reason": self.reason or None}


Search = Callable[[int], SearchResult]


def why_none(res: SearchResult, batch: int, degrees: list[int]) -> str:
    """One sentence: why ``batch`` has no feasible layout."""
    if not any(batch % d == 0 for d in degrees):
        return (f"no data-parallel degree the layouts form ({', '.join(map(str, degrees))}) "
                f"divides global batch {batch}")
    top = ", ".join(f"{k} x{v}" for k, v in res.infeasible.most_common(3))
    return f"every layout for global batch {batch} is infeasible ({top})"


def nearest_feasible(search: Search, target: int, degrees: list[int]) -> BatchChoice | None:
    """``search(target)`` if it finds a layout, else the nearest batch that does (None when
    none of the ``MAX_TRIES`` nearest does)."""
    first = search(target)
    if first.candidates:
        return BatchChoice(asked=target, batch=target, result=first)
    reason = why_none(first, target, degrees)
    for b in nearest_batches(target, degrees):
        if b == target:
            continue
        res = search(b)
        if res.candidates:
            return BatchChoice(asked=target, batch=b, result=res, reason=reason)
    return None
