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

from superpod.compute.calibration import CalibrationFile, load_calibration
from superpod.compute.validate import evaluate_kernel_case
from superpod.errors import SpecError, Unsupported
from superpod.hardware.catalog import Catalog, load_catalog
from superpod.infer.validate import evaluate_infer_case
from superpod.network.validate import evaluate_collective_case
from superpod.train.validate import evaluate_train_case
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


Evaluator = Callable[[Case, Catalog, CalibrationFile], tuple[float, str]]

#: One evaluator per case kind, each living with its domain; a test checks every kind of the
#: case format has one.
EVALUATORS: dict[str, Evaluator] = {
    "kernel": evaluate_kernel_case,
    "collective": lambda case, cat, cal: evaluate_collective_case(case, cat),
    "train": lambda case, cat, cal: evaluate_train_case(case, cat),
    "infer": lambda case, cat, cal: evaluate_infer_case(case, cat),
}


def evaluate(case: Case, cat: Catalog, cal: CalibrationFile) -> CaseResult:
    base = {"id": case.id, "kind": case.kind, "metric": case.measured.metric,
            "measured": case.measured.value}
    try:
        if case.system.preset not in cat.systems:  # a broken case, whatever the kind
            raise SpecError("unknown preset", field="system.preset", value=case.system.preset,
                            allowed=", ".join(sorted(cat.systems)))
        predicted, note = EVALUATORS[case.kind](case, cat, cal)
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
