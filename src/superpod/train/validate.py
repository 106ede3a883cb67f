"""Predict a validation case of kind ``train``: the stated model and layout, with the choices
the named framework makes (``train.frameworks``)."""

from __future__ import annotations

from superpod.errors import SpecError
from superpod.hardware.catalog import Catalog
from superpod.validate.cases import Case
from superpod.validate.system import case_system


def evaluate_train_case(case: Case, cat: Catalog) -> tuple[float, str]:
    """(predicted metric value, note) for one ``train`` case: the stated layout at the
    best feasible micro-batch when the source does not give one."""
    from superpod.errors import Infeasible
    from superpod.train.frameworks import framework_for
    from superpod.train.plan import TrainPlan
    from superpod.train.search import MICRO_BATCHES
    from superpod.train.step import TrainResult, evaluate_train
    from superpod.workload.model import model_from_config

    assert case.model is not None and case.parallel is not None  # guaranteed by parse_case
    model = model_from_config(case.model.model_dump(exclude_none=True), file=case.id)
    p = case.parallel
    fw = framework_for(p.framework)
    base = dict(tp=p.tp, pp=p.pp, vpp=p.vpp, dp=p.dp, cp=p.cp, ep=p.ep, etp=p.etp,
                sequence_parallel=p.sequence_parallel, zero=p.zero,
                global_batch=p.global_batch, seq_len=p.seq_len,
                recompute=fw.recompute(p.recompute), precision=p.precision,
                pp_schedule=fw.schedule(p.pp_schedule, p.vpp),
                attention_kernel=fw.attention_kernel, tp_comm_overlap=fw.tp_comm_overlap)
    system = case_system(case, cat)
    mbs = [p.micro_batch] if p.micro_batch else list(MICRO_BATCHES)
    def run(zero: int, check: bool = True) -> list[TrainResult | Infeasible]:
        plans = [TrainPlan(micro_batch=mb, **{**base, "zero": zero}) for mb in mbs]  # type: ignore[arg-type]
        return [evaluate_train(system, model, pl, ranks_per_chip=case.system.ranks_per_chip,
                               check_memory=check) for pl in plans]

    results = run(p.zero)
    ok = [r for r in results if not isinstance(r, Infeasible)]
    assumed = ""
    if not ok and p.zero == 0:  # the run happened, so it fit: frameworks' default sharding
        results = run(1)
        ok = [r for r in results if not isinstance(r, Infeasible)]
        assumed = "ZeRO-1 assumed (does not fit without optimizer sharding); "
    if not ok and all(isinstance(r, Infeasible) and r.reason == "out_of_memory"
                      for r in results):
        # the run did fit: predict its time anyway and say the memory model disagrees
        ok = [r for r in run(max(p.zero, 1 if assumed else p.zero), check=False)
              if not isinstance(r, Infeasible)][:1]
        assumed += "memory model says it does not fit (too pessimistic here); "
    if not ok:
        bad = results[0]
        assert isinstance(bad, Infeasible)
        raise SpecError(f"layout is infeasible here ({bad.reason}): {bad.detail}",
                        field="parallel")
    best = min(ok, key=lambda r: r.step_time_s)
    value = {"step_time_s": best.step_time_s, "tokens_per_s_per_chip": best.tokens_per_s_per_chip,
             "mfu": best.mfu}[case.measured.metric]
    top = max(best.breakdown_s.items(), key=lambda kv: kv[1] if kv[0] != "compute" else 0)
    note = (f"{assumed}micro_batch {best.plan.micro_batch}; mfu {best.mfu:.2f}; "
            f"largest non-compute: {top[0]}")
    return value, note
