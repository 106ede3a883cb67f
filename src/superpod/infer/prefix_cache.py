"""Prefix (context) caching, KV spill and weight offload over the memory hierarchy.

Pure closed forms on top of an iteration estimate and a memory tier
(``superpod.hardware.memory.Tier``: bandwidth per chip with every chip pulling at once,
latency). The CloudMatrix384 serving paper (https://arxiv.org/abs/2506.12708) serves context
caching and model caching from a disaggregated DRAM pool reached over UB; LMCache / Mooncake
do the same from host DRAM over PCIe or RDMA. Nothing here is fitted.

Prefix caching with hit ratio ``h`` (the fraction of prompt tokens whose KV is cached) on a
prefill of uncached time ``T`` of which ``A`` is attention:

    compute    = (1 - f) T + f [(1 - h) (T - A) + (1 - h^2) A]
                 (linear work scales with the new tokens; causal attention of the new
                 suffix over the whole prompt scales with 1 - h^2; ``f`` is the part of the
                 prefill time that caching can shrink: 1 in the plain closed form, fitted
                 per chip and runtime from measured caching effects where there are some,
                 ``superpod.infer.cache_calibration``)
    transfer X = latency + h I b_tok s / bandwidth
                 (I prompt tokens, b_tok KV bytes a token on one rank, s sequences a chip
                 loads: sequences per rank x ranks per chip)
    serial     : TTFT = compute + X   (load, then compute: the default)
    overlapped : TTFT = max(compute, X) + min(compute, X) / L
                 (layer-wise: layer i+1's KV loads while layer i computes; L layers)

Either way TTFT >= X, and with h = 0 nothing changes. From HBM the transfer is free.

KV spill (long contexts): a decode step that reads ``k`` KV bytes per chip from a slower
tier takes ``T + latency + k / bandwidth`` (serial) or ``max(T, latency + k / bandwidth)``
(prefetched); the batch the chip holds grows by the tier's share over the KV a sequence needs.

Weight offload: ``w`` weight bytes per chip kept in the tier and streamed every step cost the
same as spilled KV; they free ``w`` bytes of HBM for KV.

Model caching: loading ``w`` weight bytes per chip from the tier takes ``latency + w / bw``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from superpod.errors import SpecError
from superpod.hardware.memory import Tier


def check_hit_ratio(h: float, field: str = "prefix_cache_hit") -> float:
    """A hit ratio must be a finite number in [0, 1)."""
    if isinstance(h, bool) or not isinstance(h, int | float) or not math.isfinite(h) \
            or not 0.0 <= h < 1.0:
        raise SpecError("hit ratio must be a finite number in [0, 1) (at least one prompt "
                        "token is computed)", field=field, value=h, allowed="0 <= h < 1")
    return float(h)


@dataclass(frozen=True)
class PrefixCacheEffect:
    """Prefill with a cached prefix (seconds; bytes per chip)."""

    hit_ratio: float
    tier: str
    compute_s: float
    transfer_s: float
    ttft_s: float
    uncached_ttft_s: float
    cached_bytes_per_chip: float
    overlapped: bool

    @property
    def speedup(self) -> float:
        return self.uncached_ttft_s / self.ttft_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"speedup": self.speedup}


def prefix_cached_prefill(*, prefill_s: float, attention_s: float, hit_ratio: float,
                          input_len: float, kv_bytes_per_token_rank: float,
                          sequences_per_chip: float, tier: Tier, layers: int = 1,
                          overlap: bool = False, scaling_fraction: float = 1.0
                          ) -> PrefixCacheEffect:
    """TTFT of a prefill whose first ``hit_ratio`` of the prompt is cached in ``tier``
    (module docstring). ``prefill_s`` is the uncached prefill time, ``attention_s`` the
    part of it that is attention (0 when unknown: the plain (1 - h) scaling);
    ``scaling_fraction`` the part of it caching can shrink (1: all of it)."""
    h = check_hit_ratio(hit_ratio)
    if not (math.isfinite(prefill_s) and prefill_s > 0):
        raise ValueError("prefill_s must be finite and > 0")
    a = min(max(attention_s, 0.0), prefill_s)
    f = min(max(scaling_fraction, 0.0), 1.0)
    compute = (1.0 - f) * prefill_s + f * ((1.0 - h) * (prefill_s - a) + (1.0 - h * h) * a)
    nbytes = h * input_len * kv_bytes_per_token_rank * sequences_per_chip
    transfer = tier.transfer_time_s(nbytes)
    if overlap and layers > 1:
        ttft = max(compute, transfer) + min(compute, transfer) / layers
    else:
        ttft = compute + transfer
    return PrefixCacheEffect(hit_ratio=h, tier=tier.name, compute_s=compute,
                             transfer_s=transfer, ttft_s=ttft, uncached_ttft_s=prefill_s,
                             cached_bytes_per_chip=nbytes, overlapped=overlap and layers > 1)


def prefixes_held(tier: Tier, prefix_tokens: float, kv_bytes_per_token: float) -> float:
    """Distinct prefixes of ``prefix_tokens`` tokens (KV of the whole model, one copy, at
    ``kv_bytes_per_token``) that fit in what one chip can address in ``tier``."""
    per_prefix = prefix_tokens * kv_bytes_per_token
    return math.inf if per_prefix <= 0 else tier.capacity_bytes / per_prefix


def streamed_step_s(step_s: float, streamed_bytes_per_chip: float, tier: Tier, *,
                    overlap: bool = False) -> float:
    """A decode step that also reads ``streamed_bytes_per_chip`` from ``tier`` (spilled KV or
    offloaded weights): serial ``T + X`` or prefetched ``max(T, X)``."""
    x = tier.transfer_time_s(streamed_bytes_per_chip)
    return max(step_s, x) if overlap else step_s + x


def spill_batch(*, hbm_kv_bytes_per_chip: float, kv_bytes_per_sequence_chip: float,
                tier: Tier) -> tuple[int, int]:
    """(sequences that fit in HBM alone, with the tier's per-chip share added)."""
    if kv_bytes_per_sequence_chip <= 0:
        raise ValueError("KV per sequence must be > 0")
    alone = math.floor(max(0.0, hbm_kv_bytes_per_chip) / kv_bytes_per_sequence_chip)
    extra = tier.share_bytes if tier.name != "hbm" else 0.0
    both = math.floor((max(0.0, hbm_kv_bytes_per_chip) + extra) / kv_bytes_per_sequence_chip)
    return alone, both


def model_load_s(weight_bytes_per_chip: float, tier: Tier) -> float:
    """Seconds to load a model's weights into HBM from ``tier`` (model caching)."""
    return tier.transfer_time_s(weight_bytes_per_chip)


def cached_tokens_from_prefixes(prefix_ids: Sequence[str], prefix_lens: Sequence[int],
                                input_lens: Sequence[int], *,
                                capacity_tokens: float = math.inf) -> list[int]:
    """Cached prompt tokens of each request of a stream with shared prefixes, in arrival
    order.

    The first request with a prefix computes it (a miss); later ones hit its ``prefix_len``
    tokens while it is cached. Cached prefixes are evicted least recently used once their
    tokens exceed ``capacity_tokens``. An empty prefix id means no shared prefix.
    """
    if not (len(prefix_ids) == len(prefix_lens) == len(input_lens)) or not input_lens:
        raise SpecError("prefix ids, prefix lengths and input lengths must be equally long "
                        "and not empty", field="trace")
    cache: OrderedDict[str, int] = OrderedDict()
    held = 0
    out: list[int] = []
    for pid, plen, ilen in zip(prefix_ids, prefix_lens, input_lens, strict=True):
        if ilen < 1 or plen < 0 or plen > ilen:
            raise SpecError("a prefix length must be in [0, input_len]", field="prefix_len",
                            value=plen, allowed=f"0..{ilen}")
        if plen == 0 or not pid:
            out.append(0)
            continue
        if pid in cache:
            out.append(min(plen, cache[pid], ilen - 1))
            cache.move_to_end(pid)
            continue
        out.append(0)
        if plen > capacity_tokens:
            continue
        cache[pid] = plen
        held += plen
        while held > capacity_tokens:
            _, old = cache.popitem(last=False)
            held -= old
    return out


def hit_ratio_from_prefixes(prefix_ids: Sequence[str], prefix_lens: Sequence[int],
                            input_lens: Sequence[int], *,
                            capacity_tokens: float = math.inf) -> float:
    """Token hit ratio (cached prompt tokens / prompt tokens) of
    ``cached_tokens_from_prefixes``; at least one token of every prompt is computed."""
    cached = cached_tokens_from_prefixes(prefix_ids, prefix_lens, input_lens,
                                         capacity_tokens=capacity_tokens)
    return sum(cached) / sum(input_lens)
