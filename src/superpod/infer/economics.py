"""What a serving layout costs beyond its latency: watts and dollars at its own load.

Activity of the serving chips (``superpod.power.activity``) from the iteration's breakdown,
whose parts add up to the iteration time (``infer.iteration``):

* tensor cores: u_c = (gemm_compute + attention_compute) / t;
* HBM: u_m = (weight_memory + kv_memory + elementwise) / t;
* links: u_l = (tp_comm + ep_comm + pp_comm) / t.

A layout that leaves chips idle (``chips`` below the system's) runs them at the idle floor:
the activities are scaled by the share of chips serving (the power model is linear in each
activity). Serving has no checkpoints: goodput is the served rate (failures cost requests
in flight, not a training step's lost work).
"""

from __future__ import annotations

from typing import Any

from superpod.cost.model import CostQuery, cost_report, default_prices
from superpod.errors import SpecError
from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System
from superpod.power.activity import clamp01
from superpod.power.load import Load

CORES = ("gemm_compute", "attention_compute")
MEMORY = ("weight_memory", "kv_memory", "elementwise")
LINKS = ("tp_comm", "ep_comm", "pp_comm")


def infer_activity(system: System, row: dict[str, Any]) -> Load:
    """Tensor-core, HBM and link activity of a serving row (module docstring)."""
    b: dict[str, float] = row.get("breakdown_s") or {}
    t = sum(b.values())
    if not t > 0:
        return Load.idle()
    share = min(1.0, float(row.get("chips") or system.counts.chips) / system.counts.chips)

    def part(keys: tuple[str, ...]) -> float:
        return clamp01(share * sum(b.get(k, 0.0) for k in keys) / t)

    return Load(compute=part(CORES), memory=part(MEMORY), network=part(LINKS))


def infer_economics(system: System, cat: Catalog, row: dict[str, Any]) -> dict[str, Any]:
    """Power, tokens per joule, capex and $/Mtok keys for a serving row at its load."""
    tokens_per_s = row.get("tokens_per_s")
    load = infer_activity(system, row)
    out: dict[str, Any] = {"activity": {"tensor_cores": load.compute, "hbm": load.memory,
                                        "links": load.network}}
    if not isinstance(tokens_per_s, float | int) or not tokens_per_s > 0:
        return out
    try:
        cost = cost_report(system, default_prices(system, cat),
                           CostQuery(tokens_per_s=float(tokens_per_s), load=load.compute,
                                     activity=load))
    except SpecError as exc:  # a chip the price book does not know: power still shown
        from superpod.power.load import power_report

        rep = power_report(system, load, float(tokens_per_s))
        out |= {"it_power_w": rep.it_w, "facility_power_w": rep.facility_w,
                "tokens_per_j": float(tokens_per_s) / rep.facility_w,
                "usd_per_million_tokens": None, "capex_usd": None, "cost_error": str(exc)}
        return out
    out |= {"it_power_w": cost["it_power_w"], "facility_power_w": cost["facility_power_w"],
            "tokens_per_j": cost["tokens_per_j"],
            "usd_per_million_tokens": cost["usd_per_million_tokens"],
            "capex_usd": cost["capex_usd"], "unpriced_parts": cost["unpriced_parts"]}
    return out
