"""KV cache spilled to host or pooled memory (``infer --kv-spill``): long contexts, big batches.

Where a batch's KV cache does not fit the HBM KV pool, the excess lives in the tier (host
DRAM, or the UB pool) and every decode step reads it back over the tier's path:
``superpod.infer.prefix_cache.streamed_step_s`` - serial (``T + latency + k / bandwidth``)
or prefetched (``max(T, latency + k / bandwidth)``), ``k`` the spilled bytes a chip. Decode:
TPOT and tokens/s follow the new step; e2e: the spill read joins the step as ``kv_spill``.
A batch whose weights and activations do not fit HBM, or whose spilled KV exceeds the chip's
share of the tier, stays infeasible.
"""

from __future__ import annotations

from typing import Any

from superpod.errors import Infeasible
from superpod.hardware.memory import Tier
from superpod.hardware.system import System
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.memory import KV_POOL_FRACTION
from superpod.infer.prefix_cache import streamed_step_s
from superpod.infer.serving import Workload, serve
from superpod.workload.model import ModelSpec


def serve_with_spill(system: System, model: ModelSpec, layout: ServingLayout,
                     opts: InferOptions, *, phase: str, batch: int, work: Workload,
                     tier: Tier, prefetch: bool = False) -> dict[str, Any] | Infeasible:
    """``serve`` at ``batch``, spilling the KV cache HBM cannot hold to ``tier``."""
    res = serve(system, model, layout, opts, phase=phase, batch=batch, work=work)
    if not isinstance(res, Infeasible):
        return res.to_dict() | {"kv_spill": {"tier": tier.name, "spilled_bytes_per_chip": 0.0,
                                             "read_s": 0.0}}
    if res.reason != "out_of_memory" or phase not in ("decode", "e2e"):
        return res
    raw = serve(system, model, layout, opts, phase=phase, batch=batch, work=work,
                check_memory=False)
    if isinstance(raw, Infeasible):
        return res
    row = raw.to_dict()
    dec = next(it for it in row["iterations"] if it["phase"] == "decode")
    m = dec["memory_breakdown_bytes"]
    hbm = system.chip.hbm_bytes / layout.ranks_per_chip
    fixed = m["weights"] + m["activations"] + m["workspace"]
    if fixed > hbm:
        return res
    pool = KV_POOL_FRACTION * (hbm - fixed)
    spilled = max(0.0, m["kv_cache"] - pool) * layout.ranks_per_chip
    if spilled > tier.share_bytes:
        return Infeasible("out_of_memory", f"{res.detail}; spilling needs "
                          f"{spilled / 1e9:.0f} GB of {tier.name} memory a chip, its share is "
                          f"{tier.share_bytes / 1e9:.0f} GB")
    t = float(dec["time_s"])
    new_t = streamed_step_s(t, spilled, tier, overlap=prefetch)
    read = new_t - t
    out = dict(row)
    bd = dict(row["breakdown_s"])
    old_step = sum(bd.values()) if phase == "e2e" else t  # e2e: the step is the sum
    bd["kv_spill"] = read
    _slowed(out, row, bd, old_step, old_step + read, [
        f"KV spill: {spilled / 1e9:.3g} GB a chip in {tier.name} ({tier.what}), read back "
        f"every decode step: +{read * 1e3:.4g} ms ({'prefetched' if prefetch else 'serial'})"])
    out["kv_spill"] = {"tier": tier.name, "spilled_bytes_per_chip": spilled, "read_s": read,
                       "prefetch": prefetch, "hbm_kv_pool_bytes_per_rank": pool}
    return out


def serve_with_weight_offload(system: System, model: ModelSpec, layout: ServingLayout,
                              opts: InferOptions, *, phase: str, batch: int, work: Workload,
                              tier: Tier, fraction: float) -> dict[str, Any] | Infeasible:
    """``serve`` at ``batch`` with ``fraction`` of every rank's weights kept in ``tier`` and
    streamed in layer by layer each forward: a step takes ``max(T, latency + w / bandwidth)``
    (the next layers' weights load while this one computes; ``w`` streamed bytes a chip), and
    HBM frees ``w`` bytes for the KV cache."""
    import math

    from superpod.errors import SpecError

    if not (isinstance(fraction, int | float) and math.isfinite(fraction)
            and 0.0 < fraction < 1.0):
        raise SpecError("the offloaded weight fraction must be in (0, 1)",
                        field="--weight-offload", value=fraction, allowed="0 < f < 1")
    raw = serve(system, model, layout, opts, phase=phase, batch=batch, work=work,
                check_memory=False)
    if isinstance(raw, Infeasible):
        return raw
    row = raw.to_dict()
    first = row["iterations"][0]
    m = first["memory_breakdown_bytes"]
    hbm = system.chip.hbm_bytes / layout.ranks_per_chip
    weights = (1.0 - fraction) * m["weights"]
    fixed = weights + m["activations"] + m["workspace"]
    pool = KV_POOL_FRACTION * (hbm - fixed)
    if fixed > hbm or m["kv_cache"] > pool:
        return Infeasible("out_of_memory", f"with {fraction:.0%} of the weights in "
                          f"{tier.name}: KV {m['kv_cache'] / 1e9:.1f} GB a rank, pool "
                          f"{max(pool, 0.0) / 1e9:.1f} GB")
    streamed = fraction * m["weights"] * layout.ranks_per_chip
    if streamed > tier.share_bytes:
        return Infeasible("out_of_memory", f"{streamed / 1e9:.0f} GB of weights a chip exceed "
                          f"its {tier.share_bytes / 1e9:.0f} GB share of {tier.name}")
    x = tier.transfer_time_s(streamed)
    extra = {it["phase"]: max(0.0, x - float(it["time_s"])) for it in row["iterations"]}
    out = dict(row)
    bd = dict(row["breakdown_s"])
    old: float
    new: float
    if phase == "e2e":
        old = sum(bd.values())
        pre = next(it for it in row["iterations"] if it["phase"] == "prefill")
        bd["weight_stream"] = extra.get("decode", 0.0) + bd.get("prefill", 0.0) * (
            extra.get("prefill", 0.0) / float(pre["time_s"]))
        new = sum(bd.values())
        out["ttft_s"] = row["ttft_s"] + extra.get("prefill", 0.0)
    else:
        old = float(first["time_s"])
        bd["weight_stream"] = extra[first["phase"]]
        new = old + bd["weight_stream"]
        if row.get("ttft_s") is not None:
            out["ttft_s"] = row["ttft_s"] * new / old
    _slowed(out, row, bd, old, new, [
        f"weight offload: {fraction:.0%} of the weights ({streamed / 1e9:.3g} GB a chip) "
        f"streamed from {tier.name} each forward in {x * 1e3:.4g} ms, overlapped with compute"])
    out["weight_offload"] = {"tier": tier.name, "fraction": fraction,
                             "streamed_bytes_per_chip": streamed, "stream_s": x,
                             "hbm_kv_pool_bytes_per_rank": pool}
    return out


def _slowed(out: dict[str, Any], row: dict[str, Any], breakdown: dict[str, float],
            old_step_s: float, new_step_s: float, notes: list[str]) -> None:
    """``out`` = ``row`` with its step stretched from ``old_step_s`` to ``new_step_s``:
    the new breakdown, throughput and TPOT scaled by the ratio, the memory model's
    does-not-fit note replaced by ``notes``."""
    out["breakdown_s"] = breakdown
    out["tokens_per_s"] = row["tokens_per_s"] * old_step_s / new_step_s
    out["tokens_per_s_per_chip"] = out["tokens_per_s"] / row["chips"]
    if row.get("tpot_s") is not None:
        out["tpot_s"] = row["tpot_s"] * new_step_s / old_step_s
    out["notes"] = [n for n in row.get("notes", []) if not n.startswith("memory model")] + notes
