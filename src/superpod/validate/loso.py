"""Leave-one-source-out validation: predict each document's cases without that document.

For every source (``superpod.trust.sources.source_key`` of a case's ``source``) the cases it
published are predicted inside ``holding_out([source])``: every calibration point, fitted
constant and framework / runtime default taken from that document is left out and the model
falls back to what it would use without it. The error of that prediction (``loso_error_pct``)
is the error a user should expect on a source the model has never seen.

Each case also gets the 80 % band (``superpod.trust.bands``) that residuals of the *other*
sources give it, around its held-out prediction: the fraction of cases inside their band is
the band's measured coverage (it should be near 80 %).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from superpod.compute.calibration import CalibrationFile, load_calibration
from superpod.errors import SpecError, Unsupported
from superpod.hardware.catalog import Catalog
from superpod.trust.bands import BandClass, band, class_stats, classify, residual
from superpod.trust.family import chip_family, fabric_family
from superpod.trust.holdout import holding_out
from superpod.trust.sources import source_key
from superpod.validate.cases import Case
from superpod.validate.system import case_system

Evaluator = Callable[[Case, Catalog, CalibrationFile], tuple[float, str]]


@dataclass(frozen=True)
class HeldOut:
    """One case predicted with its own source held out."""

    index: int  #: position in the list of cases given
    case: Case
    source: str
    predicted: float
    error_pct: float
    band_class: BandClass
    q: float  #: measured / predicted in the throughput orientation (``bands.residual``)


def case_class(case: Case, cat: Catalog) -> BandClass:
    """The band class of a case, read with the data visible now."""
    chip = cat.chip(cat.system(case.system.preset).chip)
    if case.kind == "collective":
        family = fabric_family(case_system(case, cat), cat,
                               case.collective.op if case.collective else None)
    else:
        dtype = (case.parallel.precision if case.parallel else
                 case.serving.precision if case.serving else
                 case.kernel.dtype if case.kernel else "bf16")
        family = chip_family(chip, dtype, cat)
    return classify(case.kind, case.measured.metric, family, case.system.chips)


def held_out_predictions(cases: list[Case], cat: Catalog, calibration: str | None,
                         evaluate: Callable[[Case, Catalog, CalibrationFile], Any]
                         ) -> dict[int, HeldOut | str]:
    """Per case position: its held-out prediction, or the reason it has none."""
    by_source: dict[str, list[int]] = {}
    for i, c in enumerate(cases):
        by_source.setdefault(source_key(c.source), []).append(i)
    out: dict[int, HeldOut | str] = {}
    for key, group in by_source.items():
        with holding_out([key]):
            cal = load_calibration(calibration)
            for i in group:
                c = cases[i]
                try:
                    value, _ = evaluate(c, cat, cal)
                    cls = case_class(c, cat)
                except (Unsupported, SpecError) as exc:
                    out[i] = str(exc)
                    continue
                m = c.measured.value
                out[i] = HeldOut(index=i, case=c, source=key, predicted=value,
                                    error_pct=100.0 * (value - m) / m, band_class=cls,
                                    q=residual(c.measured.metric, m, value))
    return out


def nested_bands(held: list[HeldOut]) -> dict[int, dict[str, Any]]:
    """Per case position: the band that the other sources' residuals give its held-out
    prediction, and whether the measured value lies in it."""
    out: dict[int, dict[str, Any]] = {}
    for source in sorted({h.source for h in held}):
        stats = class_stats((h.band_class, h.q, h.source) for h in held
                            if h.source != source)
        for h in (h for h in held if h.source == source):
            b = band(stats, h.band_class, h.case.measured.metric, h.predicted)
            if b is not None:
                out[h.index] = {**b.to_dict(), "covers": b.covers(h.case.measured.value)}
    return out


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 2) if xs else None


def summaries(rows: list[dict[str, Any]], held: list[HeldOut]) -> dict[str, Any]:
    """Medians by kind and by source, band coverage and width, the worst sources.
    ``rows[i]`` is the result row of case ``i``."""
    kinds: dict[str, Any] = {}
    for kind in sorted({r["kind"] for r in rows}):
        rs = [r for r in rows if r["kind"] == kind and r.get("status") == "ok"]
        lo = [abs(r["loso_error_pct"]) for r in rs if "loso_error_pct" in r]
        banded = [r for r in rs if "loso_band" in r]
        widths = [(r["loso_band"]["high"] - r["loso_band"]["low"]) / r["loso_predicted"] * 100
                  for r in banded]
        kinds[kind] = {
            "cases": len(rs),
            "median_abs_error_pct": _median([abs(r["error_pct"]) for r in rs]),
            "loso_median_abs_error_pct": _median(lo),
            "band_coverage": round(sum(r["loso_band"]["covers"] for r in banded)
                                   / len(banded), 3) if banded else None,
            "median_band_width_pct": _median(widths)}
    sources: dict[str, Any] = {}
    for h in held:
        sources.setdefault(h.source, []).append(h)
    per_source: dict[str, dict[str, Any]] = {}
    for key, hs in sorted(sources.items()):
        ins = [abs(rows[h.index]["error_pct"]) for h in hs if "error_pct" in rows[h.index]]
        per_source[key] = {"kinds": sorted({h.case.kind for h in hs}), "cases": len(hs),
                           "median_abs_error_pct": _median(ins),
                           "loso_median_abs_error_pct": _median(
                               [abs(h.error_pct) for h in hs])}
    worst = sorted(per_source, key=lambda k: -(per_source[k]["loso_median_abs_error_pct"]
                                               or 0.0))[:10]
    return {"by_kind": kinds, "by_source": per_source, "worst_sources": worst}


def published_mfu(case: Case, cat: Catalog) -> float | None:
    """The MFU a ``train`` case's measurement implies (6N + attention convention of the case
    format) at its precision's dense peak; None for other kinds."""
    from superpod.workload.model import model_from_config
    from superpod.workload.ops import model_flops_per_token

    p = case.parallel
    if case.kind != "train" or p is None or case.model is None:
        return None
    m = case.measured
    if m.metric == "mfu":
        return m.value
    chip = cat.chip(cat.system(case.system.preset).chip)
    peak = chip.peak_flop_per_s.get(p.precision)
    if not peak:
        return None
    per_chip = m.value if m.metric == "tokens_per_s_per_chip" else (
        p.global_batch * p.seq_len / m.value / case.system.chips)
    model = model_from_config(case.model.model_dump(exclude_none=True), file=case.id)
    return float(per_chip * model_flops_per_token(model, p.seq_len) / peak)


def case_domains(case: Case, cat: Catalog) -> list[tuple[str, int, float | None]]:
    """(domain key, chips, published MFU) rows of a case: ``kind/vendor`` and, for train
    and infer, ``kind/vendor/family`` (``superpod.trust.annotate``)."""
    vendor = cat.chip(cat.system(case.system.preset).chip).vendor
    mfu = published_mfu(case, cat)
    rows = [(f"{case.kind}/{vendor}", case.system.chips, mfu)]
    if case.model is not None:
        moe = (case.model.n_routed_experts or case.model.num_local_experts or 0) > 0
        rows.append((f"{case.kind}/{vendor}/{'moe' if moe else 'dense'}", case.system.chips,
                     mfu))
    return rows
