"""``plan infer``: the serving layout that delivers the most output tokens/s per chip within
latency SLOs.

Axes are data (``candidate_layouts``): instance sizes (powers of two and the whole system),
ranks per chip (the devices the package exposes, from the catalog: the Ascend 910C's two
dies are two ranks; or as asked), attention tensor / data parallel and pipeline
splits, expert parallel over the stage (all of it, or powers of two below). Every layout goes
through the same pure evaluation (``serving.best_batch``: the batch that maximises
throughput with TPOT <= ``slo_tpot`` and TTFT <= ``slo_ttft``):

* colocated: continuous batching with chunked prefill (``serving.e2e``);
* disaggregated: the best few prefill instances (most prompts/s per chip within the TTFT
  SLO) paired with the best few decode instances (most tokens/s per chip within the TPOT
  SLO), pooled in whole instances on the system's chips to balance their request rates,
  with the KV cache handed over the fabric (``serving.disaggregated``).

Infeasible layouts are counted by reason. Iteration costs are memoised by shape, so the
search touches each distinct kernel and collective once.

Throughput is per chip of the instance (or of the two pools); the system runs
``system_chips // chips`` such replicas and each candidate says how many chips that leaves
idle (``instances``, ``idle_chips``). ``all_chips=True`` keeps only candidates that leave
none (counted as ``leaves_chips_idle`` otherwise).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from superpod.degrees import powers_of_two
from superpod.errors import Infeasible, SpecError
from superpod.hardware.system import System
from superpod.infer import memory as mem
from superpod.infer.config import InferOptions, ServingLayout, check_layout, check_precision
from superpod.infer.serving import (
    ServingResult,
    Workload,
    best_batch,
    disaggregated,
)
from superpod.workload.model import ModelSpec

MAX_PP = 4  #: deepest pipeline tried, and only where the weights do not fit without it
MAX_TP = 16  #: widest attention tensor parallel tried (per die)
EP_SPAN = 8  #: expert parallel from the whole stage down to 1/EP_SPAN of it
POOL_CANDIDATES = 6  #: best prefill and decode instances paired into disaggregated pools
#: a prefill pool without a TTFT SLO runs the smallest batch within 5 % of its best
#: throughput (beyond it, a bigger batch only adds latency)
PREFILL_KNEE = 0.95


@dataclass
class InferPlan:
    """The ranked candidates, and the infeasible ones by reason."""

    candidates: list[ServingResult]
    infeasible: Counter[str] = field(default_factory=Counter)
    evaluated: int = 0
    wall_s: float = 0.0
    system_chips: int = 0  #: chips of the system searched

    @property
    def best(self) -> ServingResult | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        return {"candidates": [c.to_dict() | occupancy(self.system_chips, c)
                               for c in self.candidates],
                "infeasible": dict(self.infeasible.most_common()),
                "evaluated": self.evaluated, "system_chips": self.system_chips}


def occupancy(system_chips: int, res: ServingResult) -> dict[str, int]:
    """Replicas of the candidate the system holds and the chips they leave idle."""
    instances = system_chips // res.chips if res.chips else 0
    return {"instances": instances, "idle_chips": system_chips - instances * res.chips}



def instance_sizes(system: System) -> list[int]:
    """Chips per instance: powers of two up to the system, and the whole system."""
    n = system.counts.chips
    return sorted({*[c for c in powers_of_two(n)], n})


def candidate_layouts(system: System, model: ModelSpec, opts: InferOptions,
                      ranks_per_chip: int | None = None) -> Iterator[ServingLayout]:
    """Every layout worth evaluating; impossible ones are filtered by ``check_layout``.

    ``ranks_per_chip``: default the devices the chip exposes (catalog ``devices``)."""
    domain = system.counts.chips_per_domain
    for chips in instance_sizes(system):
        for r in (ranks_per_chip or system.chip.devices,):
            ranks = chips * r
            tps = powers_of_two(min(domain * r, model.num_attention_heads, ranks, MAX_TP * r))
            for tp, pp in itertools.product(tps, powers_of_two(min(MAX_PP, ranks))):
                if ranks % (tp * pp) or (pp > 1 and _fits_unpipelined(
                        system, model, opts, ranks // tp, tp, r)):
                    continue
                dp = ranks // (tp * pp)
                for ep in _ep_choices(model, tp * dp):
                    lay = ServingLayout(tp=tp, dp=dp, ep=ep, pp=pp, ranks_per_chip=r)
                    if check_layout(model, lay, system.counts.chips * r) is None:
                        yield lay


def _fits_unpipelined(system: System, model: ModelSpec, opts: InferOptions, dp: int,
                      tp: int, r: int) -> bool:
    """Whether the weights fit without pipelining (then pipelining only adds bubbles)."""
    lay = ServingLayout(tp=tp, dp=dp, ep=_ep_choices(model, tp * dp)[-1], ranks_per_chip=r)
    if check_layout(model, lay, system.counts.chips * r) is not None:
        return False
    return mem.weight_bytes_rank(model, lay, opts) < 0.8 * system.chip.hbm_bytes / r


def _ep_choices(model: ModelSpec, stage_ranks: int) -> list[int]:
    if not model.is_moe:
        return [1]
    eps = {e for e in powers_of_two(stage_ranks)
           if stage_ranks % e == 0 and e * EP_SPAN >= stage_ranks}
    eps.add(stage_ranks)
    return sorted(eps)


def plan_infer(system: System, model: ModelSpec, opts: InferOptions, work: Workload, *,
               slo_tpot_s: float, slo_ttft_s: float | None = None, top: int = 5,
               disaggregate: bool = True, prefill_layout: ServingLayout | None = None,
               decode_layout: ServingLayout | None = None, ranks_per_chip: int | None = None,
               all_chips: bool = False) -> InferPlan:
    """The ``top`` layouts by output tokens/s per chip within the SLOs (module docstring).

    ``prefill_layout`` / ``decode_layout``: fix that pool's instance layout (checked like
    any candidate); the other pool is searched. ``all_chips``: only candidates that leave
    no chip idle."""
    start = time.perf_counter()
    try:
        check_precision(system.chip, opts.precision, opts.weight_only)
    except SpecError:  # a format the chip cannot run: every layout is infeasible for it
        return InferPlan(candidates=[], infeasible=Counter({"precision_unsupported": 1}))
    opts = opts.for_chip(system.chip)
    out = InferPlan(candidates=[], system_chips=system.counts.chips)
    keep = _keep_all_chips if all_chips else _keep
    colocated: list[ServingResult] = []
    pools: dict[str, list[ServingResult]] = {"prefill": [], "decode_pool": []}
    for lay in candidate_layouts(system, model, opts, ranks_per_chip):
        out.evaluated += 1
        res = best_batch(system, model, lay, opts, phase="e2e", work=work,
                         slo_tpot_s=slo_tpot_s, slo_ttft_s=slo_ttft_s)
        keep(out, colocated, res)
        if not disaggregate:
            continue
        dec = best_batch(system, model, lay, opts, phase="decode_pool", work=work,
                         slo_tpot_s=slo_tpot_s)
        pre = best_batch(system, model, lay, opts, phase="prefill", work=work,
                         slo_ttft_s=slo_ttft_s, knee=PREFILL_KNEE)
        for phase, r in (("decode_pool", dec), ("prefill", pre)):
            if not isinstance(r, Infeasible):
                pools[phase].append(r)
    for phase, fixed in (("prefill", prefill_layout), ("decode_pool", decode_layout)):
        if fixed is None or not disaggregate:
            continue
        bad = check_layout(model, fixed, system.counts.chips * fixed.ranks_per_chip)
        r = bad or best_batch(system, model, fixed, opts, phase=phase, work=work,
                              slo_tpot_s=slo_tpot_s if phase == "decode_pool" else None,
                              slo_ttft_s=slo_ttft_s if phase == "prefill" else None,
                              knee=PREFILL_KNEE if phase == "prefill" else None)
        if isinstance(r, Infeasible):
            out.infeasible[f"{phase.split('_')[0]}_layout_{r.reason}"] += 1
        pools[phase] = [] if isinstance(r, Infeasible) else [r]
    for pre, dec in itertools.product(_top(pools["prefill"]), _top(pools["decode_pool"])):
        dis = disaggregated(system, model, opts, work, prefill_layout=pre.layout,
                            decode_layout=dec.layout, prefill_batch=pre.batch,
                            decode_batch=dec.batch)
        if not isinstance(dis, Infeasible) and slo_ttft_s and (dis.ttft_s or 0) > slo_ttft_s:
            dis = Infeasible("slo", "KV hand-over pushes TTFT past the SLO")
        keep(out, colocated, dis)
    out.candidates = sorted(colocated, key=lambda r: -r.tokens_per_s_per_chip)[:top]
    out.wall_s = time.perf_counter() - start
    return out


def _top(results: list[ServingResult]) -> list[ServingResult]:
    """The pool candidates with the most tokens/s per chip."""
    return sorted(results, key=lambda r: -r.tokens_per_s_per_chip)[:POOL_CANDIDATES]


def _keep(out: InferPlan, kept: list[ServingResult], res: ServingResult | Infeasible
          ) -> None:
    if isinstance(res, Infeasible):
        out.infeasible[res.reason] += 1
    else:
        kept.append(res)


def _keep_all_chips(out: InferPlan, kept: list[ServingResult],
                    res: ServingResult | Infeasible) -> None:
    """``_keep`` for ``all_chips``: a candidate that leaves a chip idle is not kept."""
    if not isinstance(res, Infeasible) and occupancy(out.system_chips, res)["idle_chips"]:
        out.infeasible["leaves_chips_idle"] += 1
        return
    _keep(out, kept, res)
