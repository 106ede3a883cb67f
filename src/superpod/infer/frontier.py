"""Serving's throughput-latency trade-off: tokens/s per chip against TPOT for a set of
layouts, each at a ladder of decode batches (powers of two up to what its KV cache holds).

Each point is one decode iteration at that batch (``serving.serve``, phase ``decode``): its
TPOT and its tokens/s per chip. The Pareto front of these points (``report.html_views.
pareto``) is the best throughput each latency buys. Layouts are the search's candidates
(a disaggregated candidate contributes its decode layout).
"""

from __future__ import annotations

from typing import Any

from superpod.degrees import powers_of_two
from superpod.errors import Infeasible
from superpod.hardware.system import System
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.serving import Workload, batch_limit, serve
from superpod.workload.model import ModelSpec

MAX_POINTS_PER_LAYOUT = 16


def frontier_points(system: System, model: ModelSpec, opts: InferOptions, work: Workload,
                    layouts: list[ServingLayout]) -> list[dict[str, Any]]:
    """(layout, batch, TPOT, tokens/s per chip) for each layout at each batch of the ladder."""
    opts = opts.for_chip(system.chip)
    out: list[dict[str, Any]] = []
    seen: set[ServingLayout] = set()
    for lay in layouts:
        if lay in seen:
            continue
        seen.add(lay)
        top = batch_limit(system, model, lay, opts, "decode", work)
        for b in powers_of_two(max(1, top))[-MAX_POINTS_PER_LAYOUT:]:
            r = serve(system, model, lay, opts, phase="decode", batch=b, work=work)
            if isinstance(r, Infeasible) or not r.tpot_s:
                continue
            out.append({"layout": r.to_dict().get("layout"), "batch": b, "tpot_s": r.tpot_s,
                        "tokens_per_s_per_chip": r.tokens_per_s_per_chip})
    return out
