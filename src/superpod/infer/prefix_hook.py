"""Prefix caching applied to a serving result (``infer``, ``plan infer``): the one hook.

Takes a ``ServingResult.to_dict()`` row, finds its prefill iteration and replaces that
prefill's time with ``superpod.infer.prefix_cache.prefix_cached_prefill`` - the cached
prefix's KV loaded over the tier's path instead of recomputed - then carries the change
through the row:

* TTFT: ``ttft - T + ttft_cached`` (every phase with a TTFT);
* prefill: tokens/s scale by ``T / ttft_cached``;
* e2e (colocated): the decode step's prefill share scales by ``ttft_cached / T``; TPOT and
  tokens/s follow the new step;
* decode alone: unchanged (no prompt is prefilled);
* disaggregated: TTFT only; the pools are not re-sized (a note says so).

The cache tier defaults to the pool where the system pools host memory, else its host DRAM.
"""

from __future__ import annotations

import math
from typing import Any

from superpod.errors import SpecError
from superpod.hardware.memory import TIER_NAMES, Tier
from superpod.hardware.system import System
from superpod.infer import memory as mem
from superpod.infer.cache_calibration import scaling_fraction
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.prefix_cache import check_hit_ratio, prefix_cached_prefill, prefixes_held
from superpod.workload.model import ModelSpec


def cache_tier(system: System, name: str | None) -> Tier:
    """The tier a prefix cache lives in: ``name``, or the pool / host / own HBM by default."""
    h = system.memory
    if name is None:
        name = next(n for n in ("pool", "host", "hbm") if h.has(n))
    if name not in TIER_NAMES or not h.has(name):
        have = ", ".join(t.name for t in h.tiers)
        raise SpecError(f"{system.spec.id} has no such memory tier for the prefix cache",
                        field="--prefix-cache-tier", value=name, allowed=have)
    return h.tier(name)


def apply_prefix_cache(row: dict[str, Any], system: System, model: ModelSpec,
                       layout: ServingLayout, opts: InferOptions, hit_ratio: float, *,
                       tier_name: str | None = None, overlap: bool = False) -> dict[str, Any]:
    """``row`` with the prefix cache's effect (module docstring) and a ``prefix_cache`` block."""
    h = check_hit_ratio(hit_ratio, "--prefix-cache-hit")
    tier = cache_tier(system, tier_name)
    pre = next((it for it in row.get("iterations", []) if it["phase"] == "prefill"), None)
    out = dict(row)
    if pre is None or h == 0.0:
        out["prefix_cache"] = {"hit_ratio": h, "tier": tier.name, "applied": False,
                               "reason": "no prefill in this phase" if pre is None
                               else "hit ratio 0"}
        return out
    opts = opts.for_chip(system.chip)
    t_pre = float(pre["time_s"])
    attention = float(pre["breakdown_s"].get("attention_compute", 0.0))
    per_rank = math.ceil(pre["batch"] / max(1, layout.dp))
    f, entry = scaling_fraction(system.chip.id)
    eff = prefix_cached_prefill(
        prefill_s=t_pre, attention_s=attention, hit_ratio=h, input_len=row["input_len"],
        kv_bytes_per_token_rank=mem.kv_bytes_per_token_rank(model, layout, opts),
        sequences_per_chip=per_rank * layout.ranks_per_chip, tier=tier,
        layers=model.num_hidden_layers, overlap=overlap, scaling_fraction=f)
    notes = list(row.get("notes", []))
    phase = row["phase"]
    if row.get("ttft_s") is not None:
        out["ttft_s"] = row["ttft_s"] - t_pre + eff.ttft_s
    if phase == "prefill":
        out["tokens_per_s"] = row["tokens_per_s"] * t_pre / eff.ttft_s
    elif phase == "e2e" and "prefill" in row["breakdown_s"]:
        bd = dict(row["breakdown_s"])
        old_step = sum(bd.values())
        bd["prefill"] *= eff.ttft_s / t_pre
        new_step = sum(bd.values())
        out["breakdown_s"] = bd
        out["tokens_per_s"] = row["tokens_per_s"] * old_step / new_step
        if row.get("tpot_s") is not None:
            out["tpot_s"] = row["tpot_s"] * new_step / old_step
    elif phase == "disaggregated":
        notes.append("prefix cache: TTFT only; the prefill and decode pools are not re-sized")
    if "tokens_per_s" in out and "chips" in out and out["chips"]:
        out["tokens_per_s_per_chip"] = out["tokens_per_s"] / out["chips"]
    prefix_tokens = h * row["input_len"]
    held = prefixes_held(tier, prefix_tokens, mem.kv_bytes_per_token(model, opts.kv_bytes))
    calib = (f"prefill time caching can shrink: {f:.3f}, fitted on {entry.runtime} "
             f"({entry.source.split()[0]})" if entry else
             "no measured caching effect for this chip: the plain (1 - h) scaling")
    notes.append(f"prefix cache: {h:.0%} of the prompt from {tier.name}; prefill "
                 f"{t_pre * 1e3:.4g} ms -> {eff.ttft_s * 1e3:.4g} ms (compute "
                 f"{eff.compute_s * 1e3:.4g} ms + load {eff.transfer_s * 1e3:.4g} ms at "
                 f"{tier.bandwidth_bytes_per_s / 1e9:.4g} GB/s a chip); {calib}")
    out["notes"] = list(dict.fromkeys(notes))
    out["prefix_cache"] = eff.to_dict() | {
        "applied": True, "tier_what": tier.what, "scaling_fraction": f,
        "calibration_source": entry.source if entry else None,
        "prefix_tokens": prefix_tokens, "prefixes_held": held if math.isfinite(held) else None,
        "tier_bandwidth_bytes_per_s": tier.bandwidth_bytes_per_s,
        "tier_latency_s": tier.latency_s}
    return out
