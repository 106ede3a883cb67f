"""``superpod validate``: predict every case of a case file and report the error.

Each case becomes a result with ``status``: ``ok`` (predicted, with ``error_pct`` =
100 (predicted - measured) / measured), ``unsupported`` (a kind or op superpod does not
model yet, with the reason) or ``error`` (the case itself is broken, with the reason).
One bad case never stops the file.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from superpod.compute import kernels
from superpod.compute.calibration import CalibrationFile, load_calibration
from superpod.errors import SpecError
from superpod.hardware.catalog import Catalog, load_catalog
from superpod.hardware.system import System, build_system
from superpod.network.collectives import ALGORITHMS, CollectiveRequest, collective
from superpod.validate.cases import BrokenCase, Case, load_cases


@dataclass(frozen=True)
class CaseResult:
    id: str
    kind: str
    status: str  # ok | unsupported | error
    metric: str | None = None
    measured: float | None = None
    predicted: float | None = None
    error_pct: float | None = None
    reason: str | None = None
    notes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Unsupported(Exception):
    """The case is well formed but superpod does not model it yet."""


def _kernel(case: Case, cat: Catalog, cal: CalibrationFile) -> tuple[float, str]:
    """Predicted metric value for a ``kernel`` case, and a note."""
    k = case.kernel
    assert k is not None  # guaranteed by parse_case
    chip = cat.chip(cat.system(case.system.preset).chip)
    metric = case.measured.metric
    if k.op == "attention":
        raise Unsupported("attention kernels are not modelled yet (they come with the "
                          "operator model for training)")
    if k.op == "gemm":
        if k.m is None or k.n is None or k.k is None:
            raise SpecError("a gemm kernel case needs m, n and k", field="kernel")
        est = kernels.gemm(chip, k.m, k.n, k.k, k.dtype, cal)
    else:
        if k.bytes is None:
            raise SpecError("a memcpy kernel case needs bytes", field="kernel")
        est = kernels.memcpy(chip, k.bytes, cal)
    values: dict[str, Callable[[], float]] = {
        "tflops": lambda: est.flop_per_s / 1e12,
        "time_us": lambda: est.time_s * 1e6,
        "bandwidth_gbps": lambda: est.bytes_per_s / 1e9,
    }
    note = f"{est.bound}-bound; " + ("calibrated" if est.calibrated
                                     else "uncalibrated chip: default efficiency")
    return values[metric](), note


def case_system(case: Case, cat: Catalog) -> System:
    """The case's system: its preset at its chip count, with the site's NIC speed if given."""
    spec = cat.system(case.system.preset)
    if case.system.scale_out_gbps is not None:
        so = spec.scale_out.model_copy(
            update={"nic_bandwidth_bits_per_s": case.system.scale_out_gbps * 1e9})
        spec = spec.model_copy(update={"scale_out": so})
    return build_system(spec, cat, case.system.chips)


def _collective(case: Case, cat: Catalog) -> tuple[float, str]:
    c = case.collective
    assert c is not None  # guaranteed by parse_case
    r = case.system.ranks_per_chip
    if r == 1 and c.ranks > case.system.chips and c.ranks % case.system.chips == 0:
        r = c.ranks // case.system.chips  # ranks are dies (e.g. Ascend 910C: 2 per chip)
    algorithm = c.algorithm if c.algorithm in ALGORITHMS else "auto"
    req = CollectiveRequest(op=c.op, ranks=c.ranks, bytes_=float(c.bytes or 0),
                            algorithm=algorithm, dtype=c.dtype, tokens=c.tokens,
                            hidden=c.hidden, top_k=c.top_k, experts=c.experts,
                            ranks_per_chip=r)
    res = collective(case_system(case, cat), req)
    value = {"busbw_gbps": res.busbw_bytes_per_s / 1e9, "algbw_gbps": res.algbw_bytes_per_s / 1e9,
             "time_us": res.time_s * 1e6, "per_rank_gbps": res.per_rank_bytes_per_s / 1e9}
    note = f"{res.algorithm}/{res.protocol}; bottleneck {res.bottleneck}"
    if not res.calibrated:
        note += "; uncalibrated"
    return value[case.measured.metric], note


_NOT_YET: dict[str, str] = {}


def _infer(case: Case, cat: Catalog) -> tuple[float, str]:
    from superpod.infer.validate import evaluate_infer_case

    return evaluate_infer_case(case, cat)


def _train(case: Case, cat: Catalog) -> tuple[float, str]:
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


def evaluate(case: Case, cat: Catalog, cal: CalibrationFile) -> CaseResult:
    base = {"id": case.id, "kind": case.kind, "metric": case.measured.metric,
            "measured": case.measured.value}
    try:
        if case.system.preset not in cat.systems:  # a broken case, whatever the kind
            raise SpecError("unknown preset", field="system.preset", value=case.system.preset,
                            allowed=", ".join(sorted(cat.systems)))
        if case.kind in _NOT_YET:
            raise Unsupported(_NOT_YET[case.kind])
        if case.kind == "collective":
            predicted, note = _collective(case, cat)
        elif case.kind == "train":
            predicted, note = _train(case, cat)
        elif case.kind == "infer":
            predicted, note = _infer(case, cat)
        else:
            predicted, note = _kernel(case, cat, cal)
    except Unsupported as exc:
        return CaseResult(status="unsupported", reason=str(exc), **base)  # type: ignore[arg-type]
    except SpecError as exc:
        return CaseResult(status="error", reason=str(exc), **base)  # type: ignore[arg-type]
    err = 100.0 * (predicted - case.measured.value) / case.measured.value
    return CaseResult(status="ok", predicted=round(predicted, 6), error_pct=round(err, 2),
                      notes=note, **base)  # type: ignore[arg-type]


def summarize(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted({r.kind for r in results}):
        rs = [r for r in results if r.kind == kind]
        errs = [abs(r.error_pct) for r in rs if r.status == "ok" and r.error_pct is not None]
        out[kind] = {
            "cases": len(rs), "ok": len(errs),
            "unsupported": sum(r.status == "unsupported" for r in rs),
            "error": sum(r.status == "error" for r in rs),
            "median_abs_error_pct": round(statistics.median(errs), 2) if errs else None,
            "max_abs_error_pct": round(max(errs), 2) if errs else None,
        }
    return out


def validate_file(path: str, system_files: tuple[str, ...] = (),
                  calibration: str | None = None) -> dict[str, Any]:
    """The ``validate --json`` object for one case file."""
    cat = load_catalog(*system_files)
    cal = load_calibration(calibration)
    results: list[CaseResult] = []
    for item in load_cases(path):
        if isinstance(item, BrokenCase):
            results.append(CaseResult(id=item.id, kind=item.kind, status="error",
                                      reason=item.reason))
        else:
            results.append(evaluate(item, cat, cal))
    return {"cases": [r.to_dict() for r in results], "summary": summarize(results)}
