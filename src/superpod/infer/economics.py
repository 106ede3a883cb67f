"""What a serving layout costs beyond its latency: watts and dollars at its own load.

Activity of the serving chips (``superpod.power.activity``) from the iteration's breakdown,
whose parts add up to the iteration time (``infer.iteration``):

* tensor cores: u_c = (gemm_compute + attention_compute) / t;
* HBM: u_m = (weight_memory + kv_memory + elementwise) / t;
* links: u_l = (tp_comm + ep_comm + pp_comm) / t.

A layout that leaves chips idle (``chips`` below the system's) runs them at the idle floor:
the activities are scaled by the share of chips serving (the power model is linear in each
activity). A disaggregated row weights its prefill and decode pools by their chips, each at
its own iteration's activity. ``replicated`` repeats a row's instance (or pool pair) as
many whole times as the system holds: ``plan infer`` candidates and ``versus`` are costed
so, the chips left over idle. Serving has no checkpoints: goodput is the served rate
(failures cost requests in flight, not a training step's lost work).
"""

from __future__ import annotations

from typing import Any

from superpod.cost.at_load import economics_at_load
from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System
from superpod.power.activity import clamp01
from superpod.power.load import Load

CORES = ("gemm_compute", "attention_compute")
MEMORY = ("weight_memory", "kv_memory", "elementwise")
LINKS = ("tp_comm", "ep_comm", "pp_comm")


def _shares(b: dict[str, float]) -> tuple[float, float, float]:
    t = sum(b.values())
    if not t > 0:
        return (0.0, 0.0, 0.0)
    return tuple(sum(b.get(k, 0.0) for k in keys) / t  # type: ignore[return-value]
                 for keys in (CORES, MEMORY, LINKS))


def _pools(row: dict[str, Any]) -> list[tuple[float, dict[str, float]]]:
    """(chips, breakdown) per pool: a disaggregated row's prefill and decode pools (each
    with its own iteration), else the row itself."""
    its = {it.get("phase"): it for it in row.get("iterations") or []}
    if "prefill_chips" in row and "prefill" in its and "decode" in its:
        return [(float(row["prefill_chips"]), its["prefill"]["breakdown_s"]),
                (float(row["decode_chips"]), its["decode"]["breakdown_s"])]
    return [(float(row.get("chips") or 0.0), row.get("breakdown_s") or {})]


def infer_activity(system: System, row: dict[str, Any]) -> Load:
    """Tensor-core, HBM and link activity of a serving row (module docstring): each pool's
    activity weighted by its share of the system's chips (idle chips at the floor)."""
    n = system.counts.chips
    pools = _pools(row)
    if not pools[0][0]:
        pools = [(float(n), pools[0][1])]
    act = [0.0, 0.0, 0.0]
    for chips, b in pools:
        for i, v in enumerate(_shares(b)):
            act[i] += min(1.0, chips / n) * v
    if row.get("instances", 1) > 1 and "instance_chips" in row:  # replicas of one instance
        scale = float(row["chips"]) / sum(c for c, _ in pools)
        act = [a * scale for a in act]
    return Load(compute=clamp01(act[0]), memory=clamp01(act[1]), network=clamp01(act[2]))


def replicated(row: dict[str, Any], system_chips: int) -> dict[str, Any]:
    """A serving row for the whole system: its instance (or pool pair) repeated as many
    whole times as the system holds; the chips left over idle (stated)."""
    used = int(row.get("chips") or system_chips)
    copies = max(1, system_chips // used)
    out = dict(row)
    out |= {"instance_chips": used, "instances": copies, "chips": used * copies,
            "idle_chips": system_chips - used * copies,
            "tokens_per_s": float(row["tokens_per_s"]) * copies}
    return out


def infer_economics(system: System, cat: Catalog, row: dict[str, Any]) -> dict[str, Any]:
    """Power, tokens per joule, capex and $/Mtok keys for a serving row at its load."""
    tokens_per_s = row.get("tokens_per_s")
    load = infer_activity(system, row)
    out: dict[str, Any] = {"activity": {"tensor_cores": load.compute, "hbm": load.memory,
                                        "links": load.network}}
    if not isinstance(tokens_per_s, float | int) or not tokens_per_s > 0:
        return out
    return out | economics_at_load(system, cat, float(tokens_per_s), load)
