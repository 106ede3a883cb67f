"""Predict a validation case of kind ``train``: the stated model and layout, with the choices
the named framework makes (``train.frameworks``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from superpod.errors import SpecError
from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System, build_system
from superpod.validate.cases import Case
from superpod.validate.system import case_system

if TYPE_CHECKING:
    from superpod.train.step import TrainResult


def evaluate_train_case(case: Case, cat: Catalog) -> tuple[float, str]:
    """(predicted metric value, note) for one ``train`` case: the stated layout at the
    best feasible micro-batch when the source does not give one."""
    best, assumed = best_train_result(case, cat)
    value = {"step_time_s": best.step_time_s, "tokens_per_s_per_chip": best.tokens_per_s_per_chip,
             "mfu": best.mfu}[case.measured.metric]
    top = max(best.breakdown_s.items(), key=lambda kv: kv[1] if kv[0] != "compute" else 0)
    note = (f"{assumed}micro_batch {best.plan.micro_batch}; mfu {best.mfu:.2f}; "
            f"largest non-compute: {top[0]}")
    return value, note


_POWER_LIMIT = re.compile(r"(\d{3,4})\s*W power limit", re.IGNORECASE)
_INTERLEAVE_UNSTATED = re.compile(r"interleaving[^.;]*not stated", re.IGNORECASE)
_RECOMPUTE_UNSTATED = re.compile(r"recompute[^.;]*not stated", re.IGNORECASE)
_MEMORY = re.compile(r"(\d{2,3})\s*GB\s+(HBM\w*)", re.IGNORECASE)


def _power_limit_w(notes: str) -> float | None:
    """A board power limit the case's notes state ('500 W power limit'), else None."""
    m = _POWER_LIMIT.search(notes)
    return float(m.group(1)) if m else None


def _sku_system(system: System, cat: Catalog, notes: str) -> System:
    """The case's system on the catalog SKU of its chip whose memory the notes name
    ('96 GB HBM2e'), when the preset's chip has such a variant; else unchanged."""
    m = _MEMORY.search(notes)
    if not m:
        return system
    gb, kind = float(m.group(1)), m.group(2).lower()
    for chip in cat.chips.values():
        if chip.variant_of == system.chip.id and (chip.hbm_type or "").lower() == kind \
                and abs(chip.hbm_bytes / 1e9 - gb) < 0.5:
            spec = system.spec.model_copy(update={"chip": chip.id})
            return build_system(spec, cat, system.counts.chips)
    return system


#: micro-batches tried where a case does not state its own (the fastest is taken)
UNSTATED_MICRO_BATCHES = (1, 2, 4, 8)


def best_train_result(case: Case, cat: Catalog) -> tuple[TrainResult, str]:
    """The fastest feasible evaluation of a ``train`` case's layout and what was assumed."""
    from superpod.errors import Infeasible
    from superpod.train.frameworks import framework_for, stated_schedule
    from superpod.train.offload_eval import evaluate_with_layer_offload, offloads_layers
    from superpod.train.plan import TrainPlan
    from superpod.train.step import evaluate_train
    from superpod.workload.model import model_from_config

    assert case.model is not None and case.parallel is not None  # guaranteed by parse_case
    model = model_from_config(case.model.model_dump(exclude_none=True), file=case.id)
    p = case.parallel
    fw = framework_for(p.framework, case.notes or "")
    schedule = fw.schedule(p.pp_schedule or stated_schedule(case.notes or ""), p.vpp)
    vpp = fw.virtual_stages(p.vpp, schedule) if p.pp > 1 else p.vpp
    zero = 1 if p.zero == 0 and fw.distributed_optimizer else p.zero
    base = dict(tp=p.tp, pp=p.pp, vpp=vpp, dp=p.dp, cp=p.cp, ep=p.ep, etp=p.etp,
                sequence_parallel=p.sequence_parallel or (fw.sequence_parallel and p.tp > 1),
                zero=zero,
                global_batch=p.global_batch, seq_len=p.seq_len,
                precision=p.precision, pp_schedule=schedule,
                **fw.plan_fields(layers=model.num_hidden_layers, pp=p.pp, vpp=vpp, zero=zero,
                                 recompute=p.recompute, precision=p.precision))
    system = _sku_system(case_system(case, cat), cat, case.notes or "")
    power_limit = _power_limit_w(case.notes or "")
    # ranks per package: as the case states, else the devices the runtime exposes (the
    # Ascend 910C's two dies are two NPUs)
    ranks_per_chip = (case.system.ranks_per_chip
                      if "ranks_per_chip" in case.system.model_fields_set
                      else system.chip.devices)
    local = p.global_batch // p.dp
    if p.micro_batch:
        mbs = [p.micro_batch]
    elif fw.microbatches_per_rank and p.pp > 1 and \
            local % (p.pp * fw.microbatches_per_rank) == 0:
        mbs = [local // (p.pp * fw.microbatches_per_rank)]  # the framework's split
    else:
        mbs = list(UNSTATED_MICRO_BATCHES)
    layouts: list[dict[str, object]] = [{}]
    open_interleave = fw.interleaves or _INTERLEAVE_UNSTATED.search(case.notes or "")
    if open_interleave and p.pp > 1 and vpp == 1 and not p.pp_schedule:
        # interleaved with an unstated count: every count the layers allow, and 1F1B
        for v in (2, 4, 8):
            edge = fw.edge_slots(model.num_hidden_layers, p.pp, v)
            if model.num_hidden_layers + (2 if edge else 0) >= p.pp * v:
                layouts.append({"vpp": v, "pp_schedule": "interleaved", "pp_edge_slots": edge})
    if fw.flexible_pp_group and p.pp > 1:
        # the schedule's micro-batch group is open too: every group below pp as well
        layouts += [{**lay, "pp_group": n} for lay in layouts
                    if lay.get("pp_schedule") == "interleaved" or (vpp > 1 and not lay)
                    for n in range(1, p.pp)]

    documented = fw.no_recompute_max_seq
    if p.recompute == "none" and _RECOMPUTE_UNSTATED.search(case.notes or "") and \
            (documented is None or p.seq_len > documented):
        # the source leaves activation recompute open: the best feasible mode, as for an
        # unstated micro-batch - with recompute when the framework documents running
        # without it only up to a shorter length
        modes = ("none", "selective", "full") if documented is None else ("selective", "full")
        layouts = [{**lay, "recompute": fw.recompute(r)} for lay in layouts for r in modes]

    # Megatron-FSDP on a Grace host: what does not fit HBM is offloaded layer by layer
    offload = offloads_layers(fw.fsdp_layer_offload, zero, system)

    def run(zero: int, check: bool = True) -> list[TrainResult | Infeasible]:
        plans = [TrainPlan(micro_batch=mb, **{**base, "zero": zero, **lay})  # type: ignore[arg-type]
                 for mb in mbs for lay in layouts]
        if offload and check:
            return [evaluate_with_layer_offload(system, model, pl, ranks_per_chip=ranks_per_chip,
                                                power_limit_w=power_limit) for pl in plans]
        return [evaluate_train(system, model, pl, ranks_per_chip=ranks_per_chip,
                               check_memory=check, power_limit_w=power_limit)
                for pl in plans]

    results = run(zero)
    ok = [r for r in results if not isinstance(r, Infeasible)]
    assumed = ""
    if not ok and zero == 0:  # the run happened, so it fit: frameworks' default sharding
        results = run(1)
        ok = [r for r in results if not isinstance(r, Infeasible)]
        assumed = "ZeRO-1 assumed (does not fit without optimizer sharding); "
    if not ok and any(isinstance(r, Infeasible) and r.reason == "out_of_memory"
                      for r in results):
        # the run did fit: predict its time anyway and say the memory model disagrees
        # (the smallest micro-batch that only failed on memory, best pipeline layout)
        unchecked = run(max(zero, 1 if assumed else zero), check=False)
        oom = [u for r, u in zip(results, unchecked, strict=True)
               if isinstance(r, Infeasible) and r.reason == "out_of_memory"
               and not isinstance(u, Infeasible)]
        small = min(u.plan.micro_batch for u in oom)
        ok = [u for u in oom if u.plan.micro_batch == small]
        assumed += "memory model says it does not fit (too pessimistic here); "
    if not ok:
        bad = results[0]
        assert isinstance(bad, Infeasible)
        raise SpecError(f"layout is infeasible here ({bad.reason}): {bad.detail}",
                        field="parallel")
    return min(ok, key=lambda r: r.step_time_s), assumed
