"""``versus``: every system at one budget, its best training and serving layouts, and the
comparison tables (the JSON object of ``superpod versus --json``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from superpod.errors import Infeasible, SpecError
from superpod.hardware.catalog import load_catalog
from superpod.power.activity import SOURCES as POWER_SOURCES
from superpod.versus.budget import scaled_systems
from superpod.versus.evaluate import Workload, serve_side, train_side
from superpod.versus.table import table


def _missing(side: dict[str, Any], chip_id: str) -> dict[str, str]:
    """Why a side lacks capex or $/Mtok: the chip has no price, or parts have none (a
    missing price is never counted as $0: the figures that need it are left out)."""
    why = (f"no price for chip {chip_id} in the price book (give one: cost "
           "--chip-price-usd)") if side.get("cost_error") else None
    unpriced = side.get("unpriced_parts") or []
    if unpriced:
        why = f"no price for {', '.join(unpriced)}"
        for k in ("capex_usd", "usd_per_million_tokens"):
            side[k] = None
    if side.get("capex_usd") is None and not why:
        why = "no price"
    return dict.fromkeys(("capex_usd", "usd_per_million_tokens", "tokens_per_s_per_musd"),
                         why) if why else {}


def breakdown(side: dict[str, Any], kind: str) -> dict[str, float]:
    """Where a layout's time goes: the step (training, plus the time failures cost:
    step x (1 / ETTR - 1)) or the decode iteration (serving); the parts add up to the
    total (``total_s``)."""
    parts = dict(side.get("breakdown_s") or {})
    if kind == "train":
        ettr = (side.get("goodput") or {}).get("ettr")
        if ettr:
            parts["failures"] = side["step_time_s"] * (1.0 / ettr - 1.0)
    return parts


def versus(ids: Sequence[str], model_id: str, *, do_train: bool = True,
           do_serve: bool = True, work: Workload | None = None, equal: str | None = None,
           chips: int | None = None, system_files: Sequence[str | Path] = (),
           points: bool = False) -> dict[str, Any] | Infeasible:
    """The comparison (module docstring); Infeasible when the budget cannot be set."""
    from superpod.workload.model import load_model

    work = work or Workload()
    cat = load_catalog(*system_files)
    model = load_model(model_id)
    scaled = scaled_systems(list(ids), equal, cat, chips)
    if isinstance(scaled, Infeasible):
        return scaled
    systems: list[dict[str, Any]] = []
    sides: dict[str, dict[str, dict[str, Any]]] = {"train": {}, "serve": {}}
    missing: dict[str, dict[str, dict[str, str]]] = {"train": {}, "serve": {}}
    sizes: dict[str, tuple[int, int]] = {}
    for sc in scaled:
        s = sc.system
        key = f"{s.spec.id}@{s.counts.chips}" if any(
            o.system.spec.id == s.spec.id and o is not sc for o in scaled) else s.spec.id
        sizes[key] = (s.counts.chips, s.cabinets)
        entry: dict[str, Any] = {"key": key, "system": s.spec.id, "name": s.spec.name,
                                 "chips": s.counts.chips, "cabinets": s.cabinets,
                                 "budget": sc.to_dict(), "status": s.spec.status,
                                 "assumptions": list(s.assumptions),
                                 "warnings": list(s.warnings)}
        for kind, run, on in (("train", train_side, do_train), ("serve", serve_side, do_serve)):
            if not on:
                continue
            try:
                side = run(s, cat, model, work) if kind == "train" else serve_side(
                    s, cat, model, work, points=points)
            except SpecError as exc:  # e.g. an FP8 recipe's BF16 LM head on a chip with
                side = {"infeasible": str(exc)}  # no BF16 peak: that side cannot run
            if kind == "train" and points and "infeasible" not in side:
                from superpod.versus.evaluate import train_scaling

                side["scaling"] = [*train_scaling(s, cat, model, work),
                                   {"chips": float(s.counts.chips),
                                    "tokens_per_s": float(side["tokens_per_s"])}]
            missing[kind][key] = _missing(side, s.chip.id)
            sides[kind][key] = side
            entry[kind] = side
        systems.append(entry)
    from superpod.versus.claims import ratios

    doc: dict[str, Any] = {"model": model.name, "equal": equal, "workload": asdict(work),
                           "systems": systems,
                           "ratios": [ratios(scaled[0].system, o.system) for o in scaled[1:]],
                           "power_basis": list(POWER_SOURCES)}
    for kind in ("train", "serve"):
        if sides[kind]:
            doc[kind] = {"rows": table(sides[kind], sizes, missing[kind]),
                         "breakdown_s": {k: breakdown(v, kind) for k, v in sides[kind].items()
                                         if "infeasible" not in v}}
    return doc
