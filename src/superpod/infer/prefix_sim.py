"""Prefix caching in the request simulation (``serve-sim``): what each request finds cached.

Two ways in: a hit ratio ``h`` for every request (``floor(h I)`` of each prompt cached), or a
trace whose rows carry ``prefix_id`` and ``prefix_len`` (shared prefixes: the first request
with a prefix computes it, later ones find it cached while it stays in the tier,
``prefix_cache.cached_tokens_from_prefixes`` with the tier's capacity in tokens).

A request's cached tokens are skipped by chunked prefill (the fitted share ``f`` of them,
``cache_calibration``, where caching effects were measured on the chip); loading their KV costs
``latency + cached x b_tok x r / bandwidth`` (``b_tok`` KV bytes a token on a rank, ``r``
ranks a chip, the tier's bandwidth per chip with every chip loading); the requests that start
prefill in one iteration load on their own data-parallel ranks at once, so the iteration
waits ``max(largest load, sum of loads / dp)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from superpod.errors import SpecError
from superpod.hardware.memory import Tier
from superpod.infer import memory as mem
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.prefix_cache import cached_tokens_from_prefixes, check_hit_ratio
from superpod.workload.model import ModelSpec


@dataclass(frozen=True)
class SimCache:
    """Per request (arrival order): cached prompt tokens and the seconds to load them."""

    cached_tokens: np.ndarray
    skipped_tokens: np.ndarray  #: prefill tokens not computed: f x cached (f: fitted share)
    load_s: np.ndarray
    tier: str
    source: str  #: "option" (a hit ratio for all) or "trace" (shared prefixes)
    scaling_fraction: float = 1.0

    def summary(self, input_len: np.ndarray) -> dict[str, Any]:
        total = float(input_len.sum())
        return {"tier": self.tier, "source": self.source,
                "hit_ratio": float(self.cached_tokens.sum()) / total if total else 0.0,
                "requests_with_a_hit": int((self.cached_tokens > 0).sum()),
                "scaling_fraction": self.scaling_fraction,
                "mean_load_s": float(self.load_s.mean()) if self.load_s.size else 0.0}


def trace_prefixes(path: str | Path) -> tuple[list[str], list[int]] | None:
    """``(prefix_id, prefix_len)`` of a trace's rows in arrival order (the order
    ``simulate.trace_requests`` gives them), or None when the trace has no such columns."""
    from superpod.infer.trace_file import count, seconds, trace_rows

    p = Path(path)
    rows = trace_rows(p)
    has = [("prefix_id" in r) or ("prefix_len" in r) for r in rows]
    if not any(has):
        return None
    if not all(has):
        raise SpecError("every trace row needs prefix_id and prefix_len once one has them",
                        file=str(p), field="prefix_id")
    ids = [str(r.get("prefix_id") or "") for r in rows]
    lens = [count(r.get("prefix_len") or 0, str(p), "prefix_len", i, minimum=0)
            for i, r in enumerate(rows)]
    arrivals = ([seconds(r["arrival_s"], str(p), "arrival_s", i) for i, r in enumerate(rows)]
                if all("arrival_s" in r for r in rows) else None)
    order = (np.argsort(np.array(arrivals), kind="stable") if arrivals is not None
             else np.arange(len(rows)))
    return [ids[i] for i in order], [lens[i] for i in order]


def sim_cache(model: ModelSpec, layout: ServingLayout, opts: InferOptions, tier: Tier,
              input_len: np.ndarray, *, hit_ratio: float | None = None,
              prefixes: tuple[list[str], list[int]] | None = None,
              scaling_fraction: float = 1.0) -> SimCache:
    """Cached tokens and load times of every request (module docstring). Prefill skips
    ``scaling_fraction`` of the cached tokens (``cache_calibration``: 1 without a
    measurement; the rest of what caching would save is what the runtime does not)."""
    if (hit_ratio is None) == (prefixes is None):
        raise SpecError("give a prefix-cache hit ratio or a trace with prefix_id / "
                        "prefix_len, not both", field="--prefix-cache-hit")
    if prefixes is not None:
        ids, lens = prefixes
        if len(ids) != input_len.size:
            raise SpecError("trace prefixes and requests differ in number", field="trace")
        per_token = mem.kv_bytes_per_token(model, opts.kv_bytes)
        cap = tier.capacity_bytes / per_token if per_token > 0 else math.inf
        cached = np.array(cached_tokens_from_prefixes(
            ids, [min(n, int(i)) for n, i in zip(lens, input_len, strict=True)],
            [int(i) for i in input_len], capacity_tokens=cap), dtype=np.int64)
        source = "trace"
    else:
        h = check_hit_ratio(float(hit_ratio or 0.0), "--prefix-cache-hit")
        cached = np.minimum(np.floor(h * input_len).astype(np.int64), input_len - 1)
        source = "option"
    b_tok = mem.kv_bytes_per_token_rank(model, layout, opts) * layout.ranks_per_chip
    load = np.array([tier.transfer_time_s(float(c) * b_tok) for c in cached])
    f = min(max(scaling_fraction, 0.0), 1.0)
    skipped = np.floor(f * cached).astype(np.int64)
    return SimCache(cached_tokens=cached, skipped_tokens=skipped, load_s=load, tier=tier.name,
                    source=source, scaling_fraction=f)
