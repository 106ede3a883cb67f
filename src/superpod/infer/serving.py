"""Serving metrics from the iteration model: prefill, decode, end-to-end, disaggregated.

* prefill (``batch`` prompts of I tokens, one forward): TTFT = the iteration time;
  throughput = B I / t input tokens. With a prefix-cache hit of ``c`` tokens a prompt
  (``Workload.cached_len``) only ``I - c`` are computed (attending to the cached ``c``) and
  counted.
* decode (``batch`` sequences at KV length L): TPOT = t / (1 + a + ... a^mtp);
  throughput = B (1 + a + ...) / t output tokens.
* end to end, colocated, continuous batching with chunked prefill (Orca, Yu et al. OSDI'22;
  Sarathi-Serve, Agrawal et al. OSDI'24): ``B`` sequences decode together at the mean KV
  length ``I + O/2``; every finished sequence is replaced by a new one whose prompt is
  prefilled in chunks of at most 8,192 tokens (TensorRT-LLM's and SGLang's default token
  budget) beside the decode steps. A sequence takes ``s = (O - 1) / (1 + a + ...)`` decode
  steps after its first token, so each step carries ``B / s`` prompts' prefill:

      step = t_decode(B, I + O/2) + (B / s) t_prefill(b_p, I) / b_p,     b_p = 8192 // I
      output tokens/s = B O / (s step),   TPOT = step / (1 + a + ...),   TTFT = t_prefill

  (no queueing). ``tokens_per_s_per_chip`` counts output tokens (validation README). The KV
  cache must hold ``I + O`` tokens a sequence: TensorRT-LLM's default scheduler
  (GUARANTEED_NO_EVICT) reserves the whole sequence.
* disaggregated (DistServe, Zhong et al. OSDI'24; Splitwise; DeepSeek's and
  CloudMatrix-Infer's deployments): prefill instances hand each prompt's KV cache
  (``I x KV bytes per token``) to a decode instance over the fabric (``send_recv`` between
  the two instances' ranks, so the scale-up fabric when both sit in one domain, else the
  NICs), overlapped with the next prefill. Pools are sized in whole instances to balance
  request rates: requests/s = min(n_p B_p / max(t_p, t_kv), n_d B_d (1 + a ...) / (t_d s)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from superpod.errors import Infeasible, SpecError
from superpod.hardware.system import System
from superpod.infer import memory as mem
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.iteration import Iteration, engine, iteration
from superpod.workload.model import ModelSpec

PREFILL_TOKEN_BUDGET = 8192  #: tokens per chunked-prefill iteration (TRT-LLM, SGLang default)
BATCH_LADDER = 1.25  #: geometric step of the batches tried when searching for throughput
SEARCH_WINDOW = 8  #: ladder steps below the largest batch within the SLO that are compared


@dataclass(frozen=True)
class ServingResult:
    """What one serving configuration delivers (SI units; per-chip over the chips used)."""

    phase: str  #: prefill | decode | e2e | disaggregated
    model: str
    system: str
    chips: int  #: chips the throughput is divided by
    layout: ServingLayout
    options: InferOptions
    batch: int
    input_len: int
    output_len: int
    context: float
    tokens_per_s: float
    ttft_s: float | None
    tpot_s: float | None
    memory_bytes_per_chip: float
    max_batch: int
    breakdown_s: dict[str, float]
    iterations: tuple[Iteration, ...]
    notes: tuple[str, ...] = field(default=())
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s_per_chip(self) -> float:
        return self.tokens_per_s / self.chips

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "model": self.model, "system": self.system,
                "chips": self.chips, "layout": self.layout.to_dict(),
                "options": self.options.to_dict(), "batch": self.batch,
                "input_len": self.input_len, "output_len": self.output_len,
                "context": self.context, "tokens_per_s": self.tokens_per_s,
                "tokens_per_s_per_chip": self.tokens_per_s_per_chip,
                "ttft_s": self.ttft_s, "tpot_s": self.tpot_s,
                "memory_bytes_per_chip": self.memory_bytes_per_chip,
                "max_batch": self.max_batch, "breakdown_s": dict(self.breakdown_s),
                "iterations": [it.to_dict() for it in self.iterations],
                "notes": list(self.notes), **self.extra}


@dataclass(frozen=True, kw_only=True)
class Workload:
    """The request shape: prompt and output lengths, and (decode) the KV length."""

    input_len: int
    output_len: int = 1
    context_len: float | None = None  #: decode: mean KV length (default I + O/2)
    #: prompt tokens found in a prefix cache (not computed in prefill; attended to)
    cached_len: int = 0

    def __post_init__(self) -> None:
        if self.input_len < 1 or self.output_len < 1:
            raise SpecError("input_len and output_len must be >= 1", field="input_len",
                            value=f"{self.input_len} / {self.output_len}")
        if not 0 <= self.cached_len < self.input_len:
            raise SpecError("cached prompt tokens must be >= 0 and fewer than the prompt",
                            field="cached_len", value=self.cached_len)

    @property
    def computed_len(self) -> int:
        """Prompt tokens a prefill computes (the cache misses)."""
        return self.input_len - self.cached_len

    @property
    def decode_context(self) -> float:
        return self.context_len or self.input_len + self.output_len / 2

    @property
    def reserved_context(self) -> float:
        """KV tokens a sequence reserves (the whole sequence)."""
        return max(self.input_len + self.output_len, self.decode_context)


def _chips(layout: ServingLayout) -> int:
    return layout.chips


def _common(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
            it: Iteration) -> dict[str, Any]:
    return {"model": model.name, "system": system.spec.id, "chips": _chips(layout),
            "layout": layout, "options": opts,
            "memory_bytes_per_chip": it.memory.total * layout.ranks_per_chip,
            "max_batch": it.max_batch}


def prefill(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
            batch: int, work: Workload, *, check_memory: bool = True
            ) -> ServingResult | Infeasible:
    opts = opts.for_chip(system.chip)
    it = iteration(system, model, layout, opts, phase="prefill", batch=batch,
                   context=work.computed_len, check_memory=check_memory,
                   prefix=work.cached_len)
    if isinstance(it, Infeasible):
        return it
    # tokens/s counts the prompt tokens computed (cache hits excluded)
    return ServingResult(phase="prefill", batch=batch, input_len=work.input_len,
                         output_len=work.output_len, context=work.input_len,
                         tokens_per_s=it.tokens_processed / it.time_s, ttft_s=it.time_s,
                         tpot_s=None, breakdown_s=it.breakdown_s, iterations=(it,),
                         notes=it.notes, **_common(system, model, layout, opts, it))


def decode(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
           batch: int, work: Workload, *, check_memory: bool = True
           ) -> ServingResult | Infeasible:
    opts = opts.for_chip(system.chip)
    ctx = work.decode_context
    it = iteration(system, model, layout, opts, phase="decode", batch=batch, context=ctx,
                   check_memory=check_memory)
    if isinstance(it, Infeasible):
        return it
    return ServingResult(phase="decode", batch=batch, input_len=work.input_len,
                         output_len=work.output_len, context=ctx,
                         tokens_per_s=it.tokens_generated / it.time_s, ttft_s=None,
                         tpot_s=it.time_s / opts.tokens_per_step,
                         breakdown_s=it.breakdown_s, iterations=(it,), notes=it.notes,
                         **_common(system, model, layout, opts, it))


def prefill_chunk(work: Workload, batch: int, dp: int = 1) -> int:
    """Prompts prefilled together in one chunked-prefill iteration of the instance (each
    attention data-parallel rank schedules its own token budget)."""
    per_rank = max(1, PREFILL_TOKEN_BUDGET // max(1, work.input_len))
    return max(1, min(batch, dp * per_rank))


def decode_steps(work: Workload, opts: InferOptions) -> float:
    """Decode steps a sequence takes after its first token."""
    return max(1.0, (work.output_len - 1) / opts.tokens_per_step)


def e2e(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
        batch: int, work: Workload, *, check_memory: bool = True) -> ServingResult | Infeasible:
    """Colocated continuous batching (module docstring)."""
    opts = opts.for_chip(system.chip)
    dec = iteration(system, model, layout, opts, phase="decode", batch=batch,
                    context=work.decode_context, kv_context=work.reserved_context,
                    check_memory=check_memory)
    if isinstance(dec, Infeasible):
        return dec
    b_p = prefill_chunk(work, batch, layout.dp)
    pre = iteration(system, model, layout, opts, phase="prefill", batch=b_p,
                    context=work.input_len, check_memory=False)
    if isinstance(pre, Infeasible):
        return pre
    steps = decode_steps(work, opts)
    share = batch / steps / b_p  # prefill iterations per decode step
    breakdown = dict(dec.breakdown_s) | {"prefill": share * pre.time_s}
    step = sum(breakdown.values())
    return ServingResult(phase="e2e", batch=batch, input_len=work.input_len,
                         output_len=work.output_len, context=work.decode_context,
                         tokens_per_s=batch * work.output_len / (steps * step),
                         ttft_s=pre.time_s, tpot_s=step / opts.tokens_per_step,
                         breakdown_s=breakdown, iterations=(dec, pre),
                         notes=tuple(dict.fromkeys(dec.notes + pre.notes)),
                         **_common(system, model, layout, opts, dec))


def decode_pool(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
                batch: int, work: Workload, *, check_memory: bool = True
                ) -> ServingResult | Infeasible:
    """A disaggregated decode instance in steady state (``e2e_decode_only``)."""
    return e2e_decode_only(system, model, layout, opts, batch, work)


PHASES = {"prefill": prefill, "decode": decode, "e2e": e2e, "decode_pool": decode_pool}


def serve(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions, *,
          phase: str, batch: int, work: Workload, check_memory: bool = True
          ) -> ServingResult | Infeasible:
    if phase not in PHASES:
        raise SpecError("unknown phase", field="phase", value=phase,
                        allowed=", ".join(PHASES))
    return PHASES[phase](system, model, layout, opts, batch, work, check_memory=check_memory)


def batch_limit(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
                phase: str, work: Workload) -> int:
    """Largest instance batch whose KV cache fits for ``phase``."""
    opts = opts.for_chip(system.chip)
    ctx = {"prefill": float(work.input_len), "decode": work.decode_context + 1 + opts.mtp,
           "e2e": work.reserved_context, "decode_pool": work.reserved_context}[phase]
    per_seq = work.computed_len if phase == "prefill" else 1.0 + opts.mtp
    return mem.max_batch(model, layout, opts, system.chip.hbm_bytes, context=ctx,
                         tokens_per_seq=per_seq)


def batch_ladder(limit: int, step: int = 1) -> list[int]:
    """Batches to try up to ``limit``: a geometric ladder of multiples of ``step``."""
    out, b = set(), float(step)
    while b <= limit:
        out.add(max(step, int(b) // step * step))
        b *= BATCH_LADDER
    if limit >= step:
        out.add(limit // step * step)
    return sorted(out)


def best_batch(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
               *, phase: str, work: Workload, slo_tpot_s: float | None = None,
               slo_ttft_s: float | None = None, limit: int | None = None,
               knee: float | None = None) -> ServingResult | Infeasible:
    """The batch that maximises throughput within memory (and the SLOs, if given).

    ``knee``: take instead the smallest batch of those compared that reaches this fraction
    of the best throughput (latency bought back for a few percent of throughput).
    """
    opts = opts.for_chip(system.chip)
    engine(system, model, layout, opts)  # build once
    most = batch_limit(system, model, layout, opts, phase, work)
    if limit:
        most = min(most, limit)
    if most < 1:
        probe = serve(system, model, layout, opts, phase=phase, batch=layout.dp, work=work)
        return probe if isinstance(probe, Infeasible) else Infeasible(
            "out_of_memory", "no batch fits beside the weights")
    ladder = batch_ladder(most, layout.dp)
    if phase != "prefill" and opts.graph_batch_sizes:  # the padding-free batches
        per = layout.dp * layout.pp
        ladder = sorted(set(ladder) | {g * per for g in opts.graph_batch_sizes
                                       if g * per <= most})
    reasons: dict[str, int] = {}

    def run(b: int) -> ServingResult | None:
        res = serve(system, model, layout, opts, phase=phase, batch=b, work=work)
        if isinstance(res, Infeasible):
            reasons[res.reason] = reasons.get(res.reason, 0) + 1
            return None
        if (slo_tpot_s and res.tpot_s and res.tpot_s > slo_tpot_s) or (
                slo_ttft_s and res.ttft_s and res.ttft_s > slo_ttft_s):
            reasons["slo"] = reasons.get("slo", 0) + 1
            return None
        return res

    # latency grows with the batch: bisect for the largest batch within the SLOs, then
    # take the best throughput among the batches just below it
    lo, hi = 0, len(ladder) - 1
    if slo_tpot_s or slo_ttft_s:
        if run(ladder[0]) is None:
            hi = -1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if run(ladder[mid]) is None:
                hi = mid - 1
            else:
                lo = mid
    found = [r for b in ladder[max(0, hi - SEARCH_WINDOW):hi + 1] if (r := run(b))]
    best = max(found, key=lambda r: r.tokens_per_s) if found else None
    if best is not None and knee:
        best = min((r for r in found if r.tokens_per_s >= knee * best.tokens_per_s),
                   key=lambda r: r.batch)
    if best is None:
        why = max(reasons.items(), key=lambda kv: kv[1])[0] if reasons else "out_of_memory"
        return Infeasible(why, "no batch meets the SLO" if why == "slo"
                          else "no batch fits")
    return best


# ---------------------------------------------------------------------- disaggregated


def kv_transfer_s(system: System, model: ModelSpec, layout: ServingLayout,
                  opts: InferOptions, batch: int, input_len: int) -> float:
    """Time to send one prefill iteration's KV cache from a prefill rank to its decode
    instance: each rank sends its own sequences' cache, all ranks in parallel."""
    opts = opts.for_chip(system.chip)
    from superpod.network.collectives import CollectiveRequest, collective

    seqs = math.ceil(batch / layout.dp)
    nbytes = seqs * input_len * mem.kv_bytes_per_token_rank(model, layout, opts)
    world = system.counts.chips * layout.ranks_per_chip
    stride = min(layout.ranks, max(1, world - 1))
    req = CollectiveRequest(op="send_recv", ranks=2, bytes_=nbytes, stride=stride,
                            ranks_per_chip=layout.ranks_per_chip)
    return collective(system, req).time_s


def disaggregated(system: System, model: ModelSpec, opts: InferOptions, work: Workload, *,
                  prefill_layout: ServingLayout, decode_layout: ServingLayout,
                  prefill_batch: int, decode_batch: int, prefill_chips: int | None = None,
                  decode_chips: int | None = None) -> ServingResult | Infeasible:
    """Prefill and decode pools (module docstring); pools sized when not given."""
    opts = opts.for_chip(system.chip)
    pre = prefill(system, model, prefill_layout, opts, prefill_batch, work)
    if isinstance(pre, Infeasible):
        return Infeasible(pre.reason, f"prefill pool: {pre.detail}")
    dec = e2e_decode_only(system, model, decode_layout, opts, decode_batch, work)
    if isinstance(dec, Infeasible):
        return Infeasible(dec.reason, f"decode pool: {dec.detail}")
    t_kv = kv_transfer_s(system, model, prefill_layout, opts, prefill_batch, work.input_len)
    t_p = pre.iterations[0].time_s
    rate_p = prefill_batch / max(t_p, t_kv)  # requests/s per prefill instance
    steps = decode_steps(work, opts)
    rate_d = dec.tokens_per_s / (steps * opts.tokens_per_step)  # requests/s per instance
    cp, cd = prefill_layout.chips, decode_layout.chips
    pools = _pools(system.counts.chips, cp, cd, rate_p, rate_d, prefill_chips, decode_chips)
    if isinstance(pools, Infeasible):
        return pools
    n_p, n_d = pools
    requests = min(n_p * rate_p, n_d * rate_d)
    chips = n_p * cp + n_d * cd
    d_it = dec.iterations[0]
    breakdown = dict(d_it.breakdown_s)
    notes = tuple(dict.fromkeys(pre.notes + dec.notes))
    return ServingResult(
        phase="disaggregated", model=model.name, system=system.spec.id, chips=chips,
        layout=decode_layout, options=opts, batch=decode_batch, input_len=work.input_len,
        output_len=work.output_len, context=work.decode_context,
        tokens_per_s=requests * work.output_len, ttft_s=t_p + t_kv, tpot_s=dec.tpot_s,
        memory_bytes_per_chip=max(pre.memory_bytes_per_chip, dec.memory_bytes_per_chip),
        max_batch=dec.max_batch, breakdown_s=breakdown,
        iterations=(d_it, pre.iterations[0]), notes=notes,
        extra={"prefill_layout": prefill_layout.to_dict(), "prefill_batch": prefill_batch,
               "prefill_instances": n_p, "decode_instances": n_d,
               "prefill_chips": n_p * cp, "decode_chips": n_d * cd,
               "kv_transfer_s": t_kv, "prefill_requests_per_s": n_p * rate_p,
               "decode_requests_per_s": n_d * rate_d})


def e2e_decode_only(system: System, model: ModelSpec, layout: ServingLayout,
                    opts: InferOptions, batch: int, work: Workload
                    ) -> ServingResult | Infeasible:
    """A decode pool's steady state: KV for the whole sequence reserved, mean context."""
    opts = opts.for_chip(system.chip)
    it = iteration(system, model, layout, opts, phase="decode", batch=batch,
                   context=work.decode_context, kv_context=work.reserved_context)
    if isinstance(it, Infeasible):
        return it
    return ServingResult(phase="decode", batch=batch, input_len=work.input_len,
                         output_len=work.output_len, context=work.decode_context,
                         tokens_per_s=it.tokens_generated / it.time_s, ttft_s=None,
                         tpot_s=it.time_s / opts.tokens_per_step, breakdown_s=it.breakdown_s,
                         iterations=(it,), notes=it.notes,
                         **_common(system, model, layout, opts, it))


#: prefill instance counts tried one by one; beyond, a window around the balance point
POOL_SPLITS_EXACT = 10_000


def _prefill_counts(total: int, cp: int, cd: int, rate_p: float, rate_d: float) -> range:
    """The prefill instance counts worth trying. Requests served per chip rise with the
    prefill count while prefill is the bottleneck and fall once decode is, so the best split
    sits at the balance n_p rate_p = n_d rate_d, with n_d = (total - n_p cp) / cd: every
    count on small systems, a window of whole decode instances around the balance on large
    ones (a million chips would otherwise be ~10^5 splits)."""
    top = total // cp
    if top <= POOL_SPLITS_EXACT or rate_p <= 0 or rate_d <= 0:
        return range(1, top + 1)
    balance = int(total * rate_d / (rate_p * cd + rate_d * cp))
    half = max(64, 4 * (cd // cp + 1))
    return range(max(1, balance - half), min(top, balance + half) + 1)


def _pools(total: int, cp: int, cd: int, rate_p: float, rate_d: float,
           prefill_chips: int | None, decode_chips: int | None
           ) -> tuple[int, int] | Infeasible:
    """Whole instances per pool: as given, or the split of ``total`` chips that serves the
    most requests."""
    if prefill_chips is not None or decode_chips is not None:
        n_p = (prefill_chips or cp) // cp
        n_d = (decode_chips or cd) // cd
        if n_p < 1 or n_d < 1:
            return Infeasible("pool_too_small", f"a prefill instance needs {cp} chips and a "
                                                f"decode instance {cd}")
        return n_p, n_d
    best: tuple[float, int, int] | None = None
    for n_p in _prefill_counts(total, cp, cd, rate_p, rate_d):
        n_d = (total - n_p * cp) // cd
        if n_d < 1:
            break
        served = min(n_p * rate_p, n_d * rate_d) / (n_p * cp + n_d * cd)
        if best is None or served > best[0]:
            best = (served, n_p, n_d)
    if best is None:
        return Infeasible("too_few_chips", f"one prefill ({cp}) and one decode ({cd}) "
                                           f"instance need {cp + cd} chips; the system has "
                                           f"{total}")
    return best[1], best[2]
