"""``plan train``: enumerate every valid layout, evaluate each, keep the best K.

Axes are data (``AXES``); a generator yields candidate plans; each candidate goes through
the same pure ``evaluate_train``. Infeasible candidates are counted by reason. Costs that
repeat across candidates (GEMM shapes, collectives on the same group) are memoised inside
the evaluator, so the search touches each distinct kernel and collective once.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from superpod.degrees import divisors, powers_of_two
from superpod.errors import Infeasible
from superpod.hardware.system import System
from superpod.train.modelfacts import model_facts
from superpod.train.plan import TrainPlan
from superpod.train.step import TrainResult, evaluate_train
from superpod.workload.model import ModelSpec

MICRO_BATCHES = (1, 2, 4, 8)
ZERO_STAGES = (1, 3)
RECOMPUTE = ("none", "selective", "full")


@dataclass
class SearchResult:
    candidates: list[TrainResult]
    infeasible: Counter[str] = field(default_factory=Counter)
    evaluated: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"candidates": [c.to_dict() for c in self.candidates],
                "infeasible": dict(self.infeasible.most_common()),
                "evaluated": self.evaluated}




def candidates(system: System, model: ModelSpec, global_batch: int, seq_len: int,
               precision: str, ranks_per_chip: int = 1, tp_comm_overlap: bool = True
               ) -> Iterator[TrainPlan]:
    """Every layout worth evaluating (impossible combinations are filtered cheaply here or
    reported by the evaluator). MoE models also try DualPipe on an even number of stages."""
    f = model_facts(model)
    world = system.counts.chips * ranks_per_chip
    domain = system.counts.chips_per_domain * ranks_per_chip
    tps = [t for t in powers_of_two(min(domain, f.heads)) if world % t == 0]
    # stages may be uneven (the slowest stage sets the pace), so powers of two join divisors
    pps = sorted({p for p in [*divisors(f.layers, 64), *powers_of_two(64)]
                  if world % p == 0 and p <= f.layers})
    cps = [c for c in powers_of_two(16) if seq_len % (2 * c) == 0 and
           (c == 1 or seq_len >= 8192 * c)]
    eps = [e for e in powers_of_two(min(f.experts or 1, world)) if not f.experts or
           f.experts % e == 0] if f.experts else [1]
    for tp, pp, cp in itertools.product(tps, pps, cps):
        if world % (tp * pp * cp):
            continue
        dp = world // (tp * pp * cp)
        vpps = [v for v in (1, 2, 4, 8) if pp > 1 and f.layers >= pp * v * 2] or [1]
        schedules = [("interleaved" if v > 1 else "1f1b", v) for v in vpps]
        if f.experts and pp > 1 and pp % 2 == 0:
            schedules.append(("dualpipe", 1))
        for (sched, vpp), ep, mb, zero, rec in itertools.product(
                schedules, eps, MICRO_BATCHES, ZERO_STAGES, RECOMPUTE):
            if global_batch % (dp * mb) or (tp * cp * dp) % ep:
                continue
            yield TrainPlan(tp=tp, pp=pp, vpp=vpp, dp=dp, cp=cp, ep=ep,
                            sequence_parallel=tp > 1, zero=zero, micro_batch=mb,
                            global_batch=global_batch, seq_len=seq_len, recompute=rec,
                            precision=precision, pp_schedule=sched,
                            tp_comm_overlap=tp_comm_overlap and tp > 1)


Evaluate = Callable[..., "TrainResult | Infeasible"]


def plan_train(system: System, model: ModelSpec, global_batch: int, seq_len: int,
               precision: str = "bf16", top: int = 5, ranks_per_chip: int = 1,
               tp_comm_overlap: bool = True,
               evaluate: Evaluate = evaluate_train) -> SearchResult:
    """The ``top`` fastest feasible layouts, and the infeasible ones counted by reason;
    ``evaluate(system, model, plan, ranks_per_chip=...)`` costs one layout."""
    out = SearchResult(candidates=[])
    best: list[TrainResult] = []
    for plan in candidates(system, model, global_batch, seq_len, precision, ranks_per_chip,
                           tp_comm_overlap):
        out.evaluated += 1
        res = evaluate(system, model, plan, ranks_per_chip=ranks_per_chip)
        if isinstance(res, Infeasible):
            out.infeasible[res.reason] += 1
            continue
        best.append(res)
        if len(best) > 4 * top:
            best = sorted(best, key=lambda r: r.step_time_s)[:top]
    out.candidates = sorted(best, key=lambda r: r.step_time_s)[:top]
    if out.evaluated == 0:  # every (tp, pp, cp) left a dp that does not divide the batch
        out.infeasible["no_dp_divides_global_batch"] += 1
    return out
