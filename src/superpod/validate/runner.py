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
from pathlib import Path
from typing import Any

from superpod.compute.calibration import CalibrationFile, load_calibration
from superpod.compute.validate import evaluate_kernel_case
from superpod.errors import SpecError, Unsupported
from superpod.hardware.catalog import Catalog, load_catalog
from superpod.infer.validate import evaluate_infer_case
from superpod.network.validate import evaluate_collective_case
from superpod.train.validate import evaluate_train_case
from superpod.trust.bands import band, class_stats, domains, dump, load_bands
from superpod.validate.cases import BrokenCase, Case, load_cases
from superpod.validate.loso import (
    HeldOut,
    case_class,
    case_domains,
    held_out_predictions,
    nested_bands,
    summaries,
)


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
        predicted, note = predict(case, cat, cal)
    except Unsupported as exc:
        return CaseResult(status="unsupported", reason=str(exc), **base)  # type: ignore[arg-type]
    except SpecError as exc:
        return CaseResult(status="error", reason=str(exc), **base)  # type: ignore[arg-type]
    err = 100.0 * (predicted - case.measured.value) / case.measured.value
    return CaseResult(status="ok", predicted=round(predicted, 6), error_pct=round(err, 2),
                      notes=note, **base)  # type: ignore[arg-type]


def write_text(path: str, text: str) -> None:
    """Write an output file; a path that cannot be written is bad input, one line."""
    from superpod.boundary.files import write_text as write

    write(path, text, "--write-bands")


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


def predict(case: Case, cat: Catalog, cal: CalibrationFile) -> tuple[float, str]:
    """(predicted value, note) of one case; raises ``Unsupported`` / ``SpecError``."""
    if case.system.preset not in cat.systems:
        raise SpecError("unknown preset", field="system.preset", value=case.system.preset,
                        allowed=", ".join(sorted(cat.systems)))
    return EVALUATORS[case.kind](case, cat, cal)


def _in_sample_bands(rows: list[dict[str, Any]], items: list[Case | BrokenCase],
                     cat: Catalog) -> None:
    """Each predicted case's band from the shipped bands (what a user's prediction gets)."""
    stats = load_bands()
    for row, item in zip(rows, items, strict=True):
        if row.get("status") != "ok" or not isinstance(item, Case):
            continue
        b = band(stats, case_class(item, cat), item.measured.metric, row["predicted"])
        if b is not None:
            row["band"] = b.to_dict()


def _cross_validate(rows: list[dict[str, Any]], items: list[Case | BrokenCase],
                    cat: Catalog, calibration: str | None) -> tuple[dict[str, Any],
                                                                   list[HeldOut]]:
    cases = [i for i in items if isinstance(i, Case)]
    case_rows = [r for r, i in zip(rows, items, strict=True) if isinstance(i, Case)]
    held = held_out_predictions(cases, cat, calibration, predict)
    done = [h for h in held.values() if isinstance(h, HeldOut)]
    bands = nested_bands(done)
    for i, row in enumerate(case_rows):
        h = held.get(i)
        if isinstance(h, HeldOut):
            row["loso_predicted"] = round(h.predicted, 6)
            row["loso_error_pct"] = round(h.error_pct, 2)
            row["source_key"] = h.source
            if i in bands:
                row["loso_band"] = bands[i]
        elif h is not None and row.get("status") == "ok":
            row["loso_reason"] = h
    return summaries(case_rows, done), done


def validate_file(path: str, system_files: tuple[str, ...] = (),
                  calibration: str | None = None, *, cross_validate: bool = False,
                  write_bands: str | None = None) -> dict[str, Any]:
    """The ``validate --json`` object for one case file; ``cross_validate`` adds each
    case's leave-one-source-out prediction and band (``superpod.validate.loso``) and
    ``write_bands`` writes the bands its residuals give (``superpod.trust.bands``)."""
    if write_bands:
        from superpod.boundary.files import check_output

        check_output(write_bands, "--write-bands")
    cat = load_catalog(*system_files)
    cal = load_calibration(calibration)
    items = load_cases(path)
    results: list[CaseResult] = []
    for item in items:
        if isinstance(item, BrokenCase):
            results.append(CaseResult(id=item.id, kind=item.kind, status="error",
                                      reason=item.reason))
        else:
            results.append(evaluate(item, cat, cal))
    rows = [r.to_dict() for r in results]
    _in_sample_bands(rows, items, cat)
    out: dict[str, Any] = {"cases": rows, "summary": summarize(results)}
    if cross_validate or write_bands:
        out["cross_validation"], held = _cross_validate(rows, items, cat, calibration)
        if write_bands:
            text = dump(class_stats((h.band_class, h.q, h.source) for h in held),
                        source=f"superpod validate --cross-validate: leave-one-source-out "
                               f"residuals of {Path(path).name} ({len(held)} cases)",
                        validated=domains(d for h in held for d in case_domains(h.case, cat)))
            write_text(write_bands, text)
    return out
