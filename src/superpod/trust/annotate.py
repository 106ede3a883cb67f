"""What a prediction rests on and how far to trust it: bands, evidence, extrapolation.

``annotate_train`` / ``annotate_infer`` / ``annotate_collective`` add to a result row (the
``--json`` dict of ``train``, ``plan train`` candidates, ``infer``, ``plan infer`` candidates,
``serve-sim``, ``collective``):

* ``band``: the 80 % band of the headline metric (``superpod.trust.bands``), with ``metric``;
  ``bands``: one per metric of the row that has a validated quantity;
* ``evidence``: per input the prediction uses, whether it is ``measured`` / ``calibrated``
  (fitted to measurements, with the source), a documented ``default``, an ``assumption`` or
  a vendor's figure (the catalog's evidence label);
* ``extrapolates``: the reasons the prediction leaves the validated region (uncalibrated
  chip, roadmap hardware, more chips than the largest validated run of its kind on that
  vendor's chips, a model family not validated on that vendor's chips); empty when none.

Rows are dicts so that one function serves the CLI, the API and the searches alike.
"""

from __future__ import annotations

from typing import Any

from superpod.compute import kernels
from superpod.compute.calibration import load_calibration
from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System
from superpod.network.calibration import fabric_sources, load_collective_calibration
from superpod.trust.bands import (
    QUANTITY,
    SCALE_LIMIT_CHIPS,
    band,
    band_dict,
    classify,
    load_bands,
    load_bands_file,
    load_validated,
)
from superpod.trust.family import chip_family, fabric_family
from superpod.trust.holdout import excluded
from superpod.workload.model import ModelSpec


def model_family(model: ModelSpec) -> str:
    """``moe`` or ``dense``: the families the validated region is counted in."""
    return "moe" if model.n_routed_experts > 0 else "dense"


#: the class each (kind, metric, family, scale) resolves to in a bands table, memoised per
#: table object (kept alive beside its entries): a search annotates thousands of rows
_RESOLVED: dict[tuple[Any, ...], tuple[Any, tuple[float, float, int, str, str] | None]] = {}


def _resolved(stats: dict[str, Any], kind: str, metric: str, family: str, chips: int
              ) -> tuple[float, float, int, str, str] | None:
    """(q10, q90, cases, class, requested class) of the band a prediction gets, or None."""
    key = (id(stats), kind, metric, family, chips <= SCALE_LIMIT_CHIPS)
    hit = _RESOLVED.get(key)
    if hit is not None and hit[0] is stats:
        return hit[1]
    b = band(stats, classify(kind, metric, family, chips), metric, 1.0)
    if b is None:
        out = None
    else:
        s = stats[b.class_name]
        out = (s.q10, s.q90, b.cases, b.class_name, b.requested)
    if len(_RESOLVED) > 4096:
        _RESOLVED.clear()
    _RESOLVED[key] = (stats, out)
    return out


def _bands(kind: str, values: dict[str, float | None], family: str,
           chips: int) -> dict[str, dict[str, Any]]:
    """The 80 % band of each value (``trust.bands.band``: the value times its class's
    quantiles of held-out measured / predicted ratios)."""
    stats = load_bands()
    out: dict[str, dict[str, Any]] = {}
    for metric, v in values.items():
        if v is None or not v > 0 or metric not in QUANTITY:
            continue
        r = _resolved(stats, kind, metric, family, chips)
        if r is None:
            continue
        q10, q90, cases, name, requested = r
        if QUANTITY[metric][1] > 0:
            low, high = v * q10, v * q90
        else:
            low, high = v / q90, v / q10
        out[metric] = band_dict(low, high, cases, name, requested)
    return out


_EXTRAPOLATES: dict[tuple[Any, ...], tuple[System, Any, list[str]]] = {}


def _extrapolates(kind: str, system: System, family: str, mfam: str | None) -> list[str]:
    """Why a prediction leaves the validated region (module docstring), memoised per system
    object and bands file."""
    doc = load_bands_file()
    key = (kind, id(system), family, mfam, id(doc))
    hit = _EXTRAPOLATES.get(key)
    if hit is None or hit[0] is not system or hit[1] is not doc:
        if len(_EXTRAPOLATES) > 1024:
            _EXTRAPOLATES.clear()
        hit = _EXTRAPOLATES[key] = (system, doc, _why(kind, system, family, mfam))
    return list(hit[2])


def _why(kind: str, system: System, family: str, mfam: str | None) -> list[str]:
    chip = system.chip
    why: list[str] = []
    if chip.is_roadmap or system.spec.status in ("announced", "roadmap", "paper"):
        why.append(f"roadmap hardware ({chip.id} is {chip.status})")
    if family != "calibrated":
        why.append(f"uncalibrated: no measured kernels for {chip.id} here"
                   if kind != "collective" else
                   f"uncalibrated fabric: {system.spec.scale_up.kind} has no fitted protocols")
    validated = load_validated()
    key = f"{kind}/{chip.vendor}" + (f"/{mfam}" if mfam else "")
    dom = validated.get(key)
    if dom is None:
        what = f"{mfam} models " if mfam else ""
        why.append(f"no validated {kind} case of {what}on {chip.vendor} chips")
    elif system.counts.chips > dom.max_chips:
        why.append(f"{system.counts.chips:,} chips: above the largest validated {kind} run "
                   f"on {chip.vendor} chips ({dom.max_chips:,})")
    return why


def _attach(row: dict[str, Any], kind: str, headline: str, values: dict[str, float | None],
            family: str, system: System, evidence: dict[str, Any],
            mfam: str | None) -> dict[str, Any]:
    bands = _bands(kind, values, family, system.counts.chips)
    if headline in bands:
        row["band"] = {"metric": headline, **bands[headline]}
    row["bands"] = bands
    row["evidence"] = evidence
    row["extrapolates"] = _extrapolates(kind, system, family, mfam)
    return row


_EVIDENCE: dict[tuple[int, str, frozenset[str]], tuple[System, dict[str, Any]]] = {}


def compute_evidence(system: System, dtype: str) -> dict[str, Any]:
    """Where the chip's kernel and fabric figures come from (memoised per system object,
    precision and held-out sources: a search annotates many rows of one system)."""
    key = (id(system), dtype, excluded())
    hit = _EVIDENCE.get(key)
    if hit is None or hit[0] is not system:
        if len(_EVIDENCE) > 256:  # bounded: a sweep builds many systems
            _EVIDENCE.clear()
        hit = _EVIDENCE[key] = (system, _evidence(system, dtype))
    return {k: dict(v) for k, v in hit[1].items()}


def _evidence(system: System, dtype: str) -> dict[str, Any]:
    cal = load_calibration()
    chip = system.chip
    fit = kernels.gemm_fit(chip, dtype, cal)
    _, copy_measured, copy_src = kernels.copy_bandwidth(chip, cal)
    att = [e for e in cal.attention if chip.id in (e.chip, *e.applies_to)]
    ccal = load_collective_calibration()
    up = system.spec.scale_up.calibration
    docs = fabric_sources(ccal, up)
    return {
        "chip_figures": {"basis": chip.evidence, "source": chip.source},
        "gemm": {"basis": "calibrated" if fit.calibrated else "default",
                 "source": fit.source},
        "attention": ({"basis": "calibrated",
                       "source": max(att, key=kernels.attention_entry_efficiency).source}
                      if att else {"basis": "default",
                                             "source": cal.defaults.source}),
        "memory_copy": {"basis": "measured" if copy_measured else "default",
                        "source": copy_src},
        "scale_up_fabric": ({"basis": "calibrated", "source": docs[0]} if docs else
                            {"basis": "default", "source": ccal.defaults.source}),
        "power": {"basis": chip.power_evidence, "source": chip.source},
    }


def annotate_train(row: dict[str, Any], system: System, cat: Catalog, model: ModelSpec,
                   precision: str) -> dict[str, Any]:
    """Band, evidence and extrapolation of a training result row (module docstring), and
    a note when its MFU exceeds the best published on that vendor's chips."""
    family = chip_family(system.chip, precision, cat)
    values = {m: row.get(m) for m in ("tokens_per_s_per_chip", "step_time_s", "mfu")}
    _attach(row, "train", "tokens_per_s_per_chip", values, family, system,
            compute_evidence(system, precision), model_family(model))
    doc = load_bands_file()  # read, not copied: annotating a search's rows is the hot path
    best = doc.validated.get(f"train/{system.chip.vendor}/{model_family(model)}") \
        if doc is not None else None
    mfu = row.get("mfu")
    if best and best.best_mfu and isinstance(mfu, float) and mfu > best.best_mfu:
        row.setdefault("notes", []).append(
            f"MFU {mfu:.1%} is above the best published for {model_family(model)} models on "
            f"{system.chip.vendor} chips ({best.best_mfu:.1%}): treat it as optimistic")
    return row


def annotate_infer(row: dict[str, Any], system: System, cat: Catalog, model: ModelSpec,
                   precision: str) -> dict[str, Any]:
    """Band, evidence and extrapolation of a serving result row."""
    family = chip_family(system.chip, precision, cat)
    values = {"tokens_per_s_per_chip": row.get("tokens_per_s_per_chip")}
    for key, metric in (("ttft_s", "ttft_ms"), ("tpot_s", "tpot_ms")):
        v = row.get(key)
        values[metric] = v * 1e3 if isinstance(v, float) else None
    bands = _bands("infer", values, family, system.counts.chips)
    for metric in ("ttft_ms", "tpot_ms"):  # bands in the row's own unit (seconds)
        if metric in bands:
            b = bands.pop(metric)
            bands[metric.replace("_ms", "_s")] = {**b, "low": b["low"] / 1e3,
                                                  "high": b["high"] / 1e3}
    if "tokens_per_s_per_chip" in bands:
        row["band"] = {"metric": "tokens_per_s_per_chip", **bands["tokens_per_s_per_chip"]}
    row["bands"] = bands
    row["evidence"] = compute_evidence(system, precision)
    row["extrapolates"] = _extrapolates("infer", system, family, model_family(model))
    return row


def annotate_collective(row: dict[str, Any], system: System, cat: Catalog) -> dict[str, Any]:
    """Band, evidence and extrapolation of a collective result row."""
    op = row.get("op")
    family = fabric_family(system, cat, op if isinstance(op, str) else None)
    bw = row.get("busbw_bytes_per_s")
    t = row.get("time_s")
    values = {"busbw_gbps": bw / 1e9 if isinstance(bw, float) else None,
              "time_us": t * 1e6 if isinstance(t, float) else None}
    bands = _bands("collective", values, family, system.counts.chips)
    out: dict[str, dict[str, Any]] = {}
    if "busbw_gbps" in bands:
        b = bands["busbw_gbps"]
        out["busbw_bytes_per_s"] = {**b, "low": b["low"] * 1e9, "high": b["high"] * 1e9}
    if "time_us" in bands:
        b = bands["time_us"]
        out["time_s"] = {**b, "low": b["low"] / 1e6, "high": b["high"] / 1e6}
    if "busbw_bytes_per_s" in out:
        row["band"] = {"metric": "busbw_bytes_per_s", **out["busbw_bytes_per_s"]}
    row["bands"] = out
    ccal = load_collective_calibration()
    up = system.spec.scale_up.calibration
    docs = fabric_sources(ccal, up)
    row["evidence"] = {"scale_up_fabric": ({"basis": "calibrated", "source": docs[0]}
                                           if docs else {"basis": "default",
                                                         "source": ccal.defaults.source})}
    row["extrapolates"] = _extrapolates("collective", system, family, None)
    return row


def annotate_sim(row: dict[str, Any], system: System, cat: Catalog, model: ModelSpec,
                 precision: str) -> dict[str, Any]:
    """Band (output tokens/s per chip), evidence and extrapolation of a ``serve-sim`` row."""
    family = chip_family(system.chip, precision, cat)
    bands = _bands("infer", {"tokens_per_s_per_chip": row.get("output_tokens_per_s_per_chip")},
                   family, system.counts.chips)
    if "tokens_per_s_per_chip" in bands:
        b = bands.pop("tokens_per_s_per_chip")
        bands["output_tokens_per_s_per_chip"] = b
        row["band"] = {"metric": "output_tokens_per_s_per_chip", **b}
    row["bands"] = bands
    row["evidence"] = compute_evidence(system, precision)
    row["extrapolates"] = _extrapolates("infer", system, family, model_family(model))
    return row
