"""Request-level discrete-event simulation of one serving instance.

Requests arrive (Poisson at ``rate`` per second, seeded, or from a trace of input / output
lengths with optional arrival times), wait in a FIFO queue, and are admitted while a batch
slot and KV memory for their whole sequence (``I + O`` tokens, TensorRT-LLM's
GUARANTEED_NO_EVICT policy) are free. The engine runs continuous batching with chunked
prefill (Orca, OSDI'22; Sarathi-Serve, OSDI'24): every engine step decodes one step for all
sequences past their prefill and prefills up to ``PREFILL_TOKEN_BUDGET`` prompt tokens per
attention data-parallel rank, oldest first. A step takes

    t_decode(B, mean KV length) + sum over prefill chunks  c x t_prefill(I) / I

less the decode's weight streaming the prompts' GEMM work hides (one forward reads the
weights once: ``mixed_iteration_s``); with whole prompts under a per-rank token budget
(trtllm-bench) the prompts are packed rank by rank and the prefill term is the busiest
rank's (``busiest_rank_prefill_s``). The times come from the iteration model
(``infer.iteration``), memoised on a grid of batch sizes (steps of ``BATCH_BUCKET``) and
lengths (``LENGTH_BUCKET`` tokens), so the simulation advances once per
engine step, not per token per request; per-step bookkeeping is NumPy over the batch slots.
A sequence's first token comes with the end of its last prefill chunk; each decode step then
adds ``1 + a + ... a^mtp`` tokens (the expected MTP gain).

Outputs: TTFT (arrival to first token), TPOT ((finish - first token) / (O - 1)) and
end-to-end latency percentiles over the requests that finished, output tokens per second
(overall and per ``bin_s`` bin), and the time-averaged number of requests in the system,
which Little's law ties to the arrival rate and the mean latency (L = lambda W).
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from superpod.errors import Infeasible, SpecError
from superpod.hardware.system import System
from superpod.infer import memory as mem
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.iteration import iteration
from superpod.infer.serving import PREFILL_TOKEN_BUDGET
from superpod.workload.model import ModelSpec

BATCH_BUCKET = 1.08  #: geometric step of the memoised batch sizes
LENGTH_BUCKET = 256  #: tokens per memoised context / prompt length step
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Requests:
    """Arrival times (s) and input / output lengths (tokens), sorted by arrival."""

    arrival_s: np.ndarray
    input_len: np.ndarray
    output_len: np.ndarray

    def __len__(self) -> int:
        return int(self.arrival_s.size)


def poisson_requests(rate_per_s: float, duration_s: float, input_len: int, output_len: int,
                     seed: int = 0) -> Requests:
    """Poisson arrivals at ``rate_per_s`` for ``duration_s`` with fixed lengths (seeded)."""
    if rate_per_s <= 0 or duration_s <= 0:
        raise SpecError("rate and duration must be positive", field="rate",
                        value=f"{rate_per_s} / {duration_s}")
    from superpod.infer.trace_file import MAX_REQUESTS

    if rate_per_s * duration_s > MAX_REQUESTS:
        raise SpecError(f"rate x duration = {rate_per_s * duration_s:,.0f} requests",
                        field="--rate", value=rate_per_s,
                        allowed=f"at most {MAX_REQUESTS:,} requests in all")
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate_per_s * duration_s)
    t = np.sort(rng.uniform(0.0, duration_s, n))
    return Requests(t, np.full(n, input_len, dtype=np.int64),
                    np.full(n, output_len, dtype=np.int64))


def trace_requests(path: str | Path, rate_per_s: float | None = None, seed: int = 0
                   ) -> Requests:
    """A trace (CSV with a header, or a JSON list of objects) of ``input_len`` and
    ``output_len``, with ``arrival_s`` or Poisson arrivals at ``rate_per_s``."""
    from superpod.infer.trace_file import count, seconds, trace_rows

    file = str(path)
    rows = trace_rows(file)
    for key in ("input_len", "output_len"):
        if any(key not in r for r in rows):
            raise SpecError(f"every trace row needs {key}", file=file, field=key)
    inp = np.array([count(r["input_len"], file, "input_len", i) for i, r in enumerate(rows)],
                   dtype=np.int64)
    out = np.array([count(r["output_len"], file, "output_len", i)
                    for i, r in enumerate(rows)], dtype=np.int64)
    has_t = all("arrival_s" in r for r in rows)
    t = (np.array([seconds(r["arrival_s"], file, "arrival_s", i) for i, r in enumerate(rows)])
         if has_t else None)
    if t is None:
        if not rate_per_s:
            raise SpecError("the trace has no arrival_s: give a rate", field="rate")
        gaps = np.random.default_rng(seed).exponential(1.0 / rate_per_s, inp.size)
        t = np.cumsum(gaps)
    order = np.argsort(t, kind="stable")
    return Requests(t[order], inp[order], out[order])


@dataclass(frozen=True)
class SimResult:
    """Latency percentiles (s), throughput and queueing facts of one simulated run."""

    requests: int
    finished: int
    duration_s: float
    output_tokens_per_s: float
    ttft_s: dict[int, float]
    tpot_s: dict[int, float]
    e2e_s: dict[int, float]
    mean_in_system: float
    mean_latency_s: float
    arrival_rate_per_s: float
    throughput_per_bin: np.ndarray = field(repr=False)
    bin_s: float
    steps: int
    wall_s: float
    max_batch: int
    chips: int
    ttft_mean_s: float = math.nan  #: mean over the finished requests
    tpot_mean_s: float = math.nan

    @property
    def output_tokens_per_s_per_chip(self) -> float:
        return self.output_tokens_per_s / self.chips

    def to_dict(self) -> dict[str, Any]:
        def pct(d: dict[int, float]) -> dict[str, float]:
            return {f"p{k}": v for k, v in d.items()}

        return {"requests": self.requests, "finished": self.finished,
                "duration_s": self.duration_s,
                "output_tokens_per_s": self.output_tokens_per_s,
                "output_tokens_per_s_per_chip": self.output_tokens_per_s_per_chip,
                "ttft_s": pct(self.ttft_s), "tpot_s": pct(self.tpot_s),
                "ttft_mean_s": self.ttft_mean_s, "tpot_mean_s": self.tpot_mean_s,
                "e2e_s": pct(self.e2e_s), "mean_in_system": self.mean_in_system,
                "mean_latency_s": self.mean_latency_s,
                "arrival_rate_per_s": self.arrival_rate_per_s,
                "littles_law_lambda_w": self.arrival_rate_per_s * self.mean_latency_s,
                "bin_s": self.bin_s,
                "throughput_per_bin": [round(float(x), 3) for x in self.throughput_per_bin],
                "steps": self.steps, "max_batch": self.max_batch,
                "chips": self.chips}


class _Costs:
    """Iteration times on a bucketed grid, memoised for the run."""

    def __init__(self, system: System, model: ModelSpec, layout: ServingLayout,
                 opts: InferOptions, slots: int) -> None:
        self.args = (system, model, layout, opts)
        self.dp = layout.dp
        self.grid = batch_grid(slots, layout.dp)
        self._dec: dict[tuple[int, int], tuple[float, float]] = {}
        self._pre: dict[int, float] = {}

    def _run(self, phase: str, batch: int, context: int) -> tuple[float, float]:
        """(seconds, of them the weight-streaming excess ``weight_memory``)."""
        it = iteration(*self.args, phase=phase, batch=batch, context=context,
                       check_memory=False)
        if isinstance(it, Infeasible):
            raise SpecError(f"layout cannot run ({it.reason}): {it.detail}", field="layout")
        return it.time_s, it.breakdown_s.get("weight_memory", 0.0)

    def _time(self, phase: str, batch: int, context: int) -> float:
        return self._run(phase, batch, context)[0]

    def _decode_at(self, b: int, c: int) -> tuple[float, float]:
        hit = self._dec.get((b, c))
        if hit is None:
            hit = self._dec[(b, c)] = self._run("decode", b, c)
        return hit

    def _decode_part(self, batch: int, ctx: float, part: int) -> float:
        c = max(1, int(math.ceil(ctx / LENGTH_BUCKET))) * LENGTH_BUCKET
        i = min(bisect.bisect_left(self.grid, batch), len(self.grid) - 1)
        hi = self.grid[i]
        if hi <= batch or i == 0:
            return self._decode_at(hi, c)[part] * (batch / hi if batch > hi else 1.0)
        lo = self.grid[i - 1]
        t_lo, t_hi = self._decode_at(lo, c)[part], self._decode_at(hi, c)[part]
        return t_lo + (t_hi - t_lo) * (batch - lo) / (hi - lo)

    def decode(self, batch: int, ctx: float) -> float:
        """Decode step of ``batch`` sequences: linear between the grid batches around it,
        at the context bucket above ``ctx``."""
        return self._decode_part(batch, ctx, 0)

    def decode_weight_s(self, batch: int, ctx: float) -> float:
        """The part of ``decode`` its GEMMs spend streaming weights beyond their compute
        (the ``weight_memory`` part of the breakdown), interpolated alike."""
        return self._decode_part(batch, ctx, 1)

    def prefill_per_token(self, prompt: int) -> float:
        """Seconds per prompt token for one prompt of about ``prompt`` tokens a DP rank."""
        c = max(1, int(math.ceil(prompt / LENGTH_BUCKET))) * LENGTH_BUCKET
        hit = self._pre.get(c)
        if hit is None:
            hit = self._pre[c] = self._time("prefill", self.dp, c) / (c * self.dp)
        return hit


def mixed_iteration_s(decode_s: float, decode_weight_s: float, prefill_s: float) -> float:
    """Seconds of one iteration that decodes a batch and prefills prompts beside it.

    The runtime runs them as one forward (continuous batching: Orca, OSDI'22; the PyTorch
    executor's ``ScheduledRequests`` carry context and generation requests into one
    ``model_engine.forward``), so every GEMM reads its weights once for all its rows. Costed
    as the decode step plus the prefill, each from the iteration model on its own, the
    weights would be streamed twice: the decode step's weight-streaming excess
    (``decode_weight_s``, its GEMMs' time beyond their compute) is hidden under the
    prompts' GEMM work, up to that work's length:

        t = t_decode + t_prefill - min(t_decode_weights, t_prefill)

    With no prefill that is the decode step; with a compute-bound decode (no weight excess)
    the plain sum."""
    return decode_s + prefill_s - min(max(0.0, decode_weight_s), prefill_s)


def busiest_rank_prefill_s(chunk_s: list[float], dp: int) -> float:
    """Seconds the prompt chunks of one iteration add to it under attention data parallel.

    ``chunk_s`` are the chunks' costs as ``_Costs.prefill_per_token`` gives them - a token's
    share when ``dp`` ranks each prefill a prompt side by side, so one rank doing a chunk
    alone takes ``dp`` times that. A prompt is prefilled whole by the rank that holds its
    request (its KV cache lives there), and the MoE layers' all-gather / all-to-all make
    every rank wait for the slowest each layer, so the iteration lasts as long as the
    busiest rank's chunks: ``dp x`` the largest per-rank sum with the chunks spread over the
    ranks longest first (each to the least loaded rank). With ``dp`` = 1, or one chunk a rank
    of equal cost, that is the plain sum. (With attention-DP balancing on - the DeepSeek R1
    perf-overview options' ``attention_dp_config.enable_balance`` - the executor holds
    context requests until every rank has one, py_executor.py ``_balance_adp_requests``:
    equal loads, the plain sum again.)

    Sources: TensorRT-LLM's attention-DP executor gives each new request to one rank
    (tensorrt_llm/_torch/pyexecutor/executor_request_queue.py, ``_schedule_attention_dp_
    requests``: the rank with the fewest active requests) and each rank schedules its own
    context requests within its ``max_num_tokens``; the MoE gathers every rank's tokens
    (``all_rank_num_tokens``, fused_moe_cutlass.py) - a collective all ranks enter each layer
    (https://github.com/NVIDIA/TensorRT-LLM/blob/03e27c7d5ff0c6e89f8328838c0a8e64f1b34f9d/
    tensorrt_llm/_torch/modules/fused_moe/fused_moe_cutlass.py)."""
    if not chunk_s:
        return 0.0
    if dp <= 1:
        return float(sum(chunk_s))
    loads = [0.0] * dp
    for c in sorted(chunk_s, reverse=True):
        i = loads.index(min(loads))
        loads[i] += c
    return dp * max(loads)


def batch_grid(limit: int, dp: int) -> list[int]:
    """Memoised batch sizes: multiples of ``dp`` on a geometric grid up to ``limit``."""
    out, b = {dp}, float(dp)
    while b < limit:
        b *= BATCH_BUCKET
        out.add(int(math.ceil(b / dp)) * dp)
    return sorted(out)


def _capacity(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
              kv_pool_fraction: float | None = None, reserved_bytes: float = 0.0) -> float:
    """KV tokens the instance holds (all DP groups); ``reserved_bytes`` a rank are taken
    by the runtime before it sizes the pool (TensorRT-LLM: its profiling forward)."""
    base = mem.serving_memory(model, layout, opts, system.chip.hbm_bytes, batch=0,
                              context=0.0, tokens_in_flight=0.0)
    per_token = mem.kv_bytes_per_token_rank(model, layout, opts)
    pool = max(0.0, base.kv_pool - mem.KV_POOL_FRACTION * reserved_bytes)
    if kv_pool_fraction is not None:
        pool = pool / mem.KV_POOL_FRACTION * kv_pool_fraction
    return pool / per_token * layout.dp if per_token > 0 else math.inf


def simulate(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
             requests: Requests, *, max_batch: int | None = None, bin_s: float = 60.0,
             progress: bool = False, token_budget: int | None = None,
             chunked_prefill: bool = True, kv_pool_fraction: float | None = None,
             cached_tokens: np.ndarray | None = None, load_s: np.ndarray | None = None,
             reserved_bytes: float = 0.0) -> SimResult:
    """Run the instance on ``requests`` until every admitted request has finished.

    Scheduler (``infer.runtime``'s profiles set it): ``max_batch`` - sequences in flight in
    the instance (default: as many as the KV cache holds); ``token_budget`` - tokens one
    iteration of an attention data-parallel rank carries, its decode tokens included
    (TensorRT-LLM ``max_num_tokens``; default ``PREFILL_TOKEN_BUDGET`` of prompt tokens
    beside the decodes); ``chunked_prefill`` False - a prompt is prefilled whole in one
    iteration, and only when it fits the budget left (trtllm-bench's default);
    ``kv_pool_fraction`` - share of the free memory the KV cache takes (default
    ``memory.KV_POOL_FRACTION``). ``cached_tokens`` / ``load_s`` (per request,
    ``superpod.infer.prefix_sim``): prompt tokens found in a prefix cache, skipped by
    prefill, and the seconds to load their KV, waited for in the iteration where the
    request's prefill starts. ``reserved_bytes``: bytes a rank the runtime holds beside
    weights and workspace when it sizes the KV pool (``trtllm_bench.profile_bytes``).
    Whole prompts under a per-rank ``token_budget`` are packed rank by rank
    (``_State.take_prefill``) and the iteration lasts as long as the busiest rank's prefill
    (``busiest_rank_prefill_s``); an iteration that decodes and prefills is one forward
    (``mixed_iteration_s``)."""
    start_wall = time.perf_counter()
    opts = opts.for_chip(system.chip)
    cap_tokens = _capacity(system, model, layout, opts, kv_pool_fraction, reserved_bytes)
    n = len(requests)
    arr, inp, out = requests.arrival_s, requests.input_len, requests.output_len
    if n and (inp + out).max() > cap_tokens:
        raise SpecError(f"a request of {int((inp + out).max())} tokens exceeds the KV "
                        f"cache ({cap_tokens:,.0f} tokens)", field="requests")
    slots = max_batch or max(layout.dp, int(cap_tokens // max(1.0, float(np.mean(inp + out))
                                                              if n else 1.0)))
    costs = _Costs(system, model, layout, opts, slots)
    st = _State(min(slots, max(1, n)), n)  # never more sequences in flight than requests
    tps = opts.tokens_per_step
    q = 1.0 + opts.mtp
    budget = (token_budget or PREFILL_TOKEN_BUDGET) * layout.dp
    # whole prompts within each rank's own budget: packed, and costed, rank by rank
    per_rank = layout.dp if token_budget and not chunked_prefill else 1
    horizon = float(arr[-1]) if n else 0.0
    bins = np.zeros(int(horizon // bin_s) + 2)
    bar = _Bar(progress, horizon)
    cached = np.zeros(n, dtype=np.int64) if cached_tokens is None else cached_tokens
    loads = np.zeros(n) if load_s is None else load_s
    started = np.zeros(n, dtype=bool)
    now, used, arr_ptr, adm_ptr = 0.0, 0.0, 0, 0
    area, steps = 0.0, 0
    while adm_ptr < n or st.busy:
        while arr_ptr < n and arr[arr_ptr] <= now:
            area += now - arr[arr_ptr]  # in the system since it arrived, mid-step
            arr_ptr += 1
        while (adm_ptr < arr_ptr and st.busy < slots
               and used + inp[adm_ptr] + out[adm_ptr] <= cap_tokens):
            st.queue.append([adm_ptr, max(1, int(inp[adm_ptr] - cached[adm_ptr]))])
            used += float(inp[adm_ptr] + out[adm_ptr])
            adm_ptr += 1
        if not st.busy:
            now = max(now, float(arr[arr_ptr])) if arr_ptr < n else now
            continue
        left = budget - (st.n * q if token_budget else 0.0)
        chunks = st.take_prefill(left, chunked_prefill, per_rank)
        k = st.n
        t = costs.decode(k, float(st.ctx[:k].sum()) / k) if k else 0.0
        pre_s = [c * costs.prefill_per_token(int(inp[r])) for r, c in chunks]
        t_pre = busiest_rank_prefill_s(pre_s, layout.dp) if per_rank > 1 else sum(pre_s)
        if k and chunks:  # one forward: its weights are read once (mixed_iteration_s)
            t = mixed_iteration_s(t, costs.decode_weight_s(k, float(st.ctx[:k].sum()) / k),
                                  t_pre)
        else:
            t += t_pre
        new = [r for r, _ in chunks if not started[r]]
        if new and load_s is not None:
            started[new] = True
            t += max(float(loads[new].max()), float(loads[new].sum()) / layout.dp)
        m = 1 if chunks or not k or new else _steady_steps(st, k, t, tps, now, bin_s,
                                                            float(arr[arr_ptr])
                                                            if arr_ptr < n else math.inf)
        if m > 1:  # m identical decode steps at once: nothing arrives, finishes or moves
            area += (arr_ptr - st.done) * t * m
            now += t * m
            steps += m
            bins[min(int(now // bin_s), bins.size - 1)] += st.advance_many(m, tps)
            bar.update(now)
            continue
        area += (arr_ptr - st.done) * t
        now += t
        steps += 1
        gained = st.advance(now, tps)
        gained += st.finish_prefill(chunks, now, inp, out)
        bins[min(int(now // bin_s), bins.size - 1)] += gained
        used -= st.retire(now, inp, out)
        bar.update(now)
    bar.close()
    return _result(st, requests, now, area, steps, bins, bin_s, start_wall, slots,
                   layout.chips)


def _steady_steps(st: _State, k: int, t: float, tps: float, now: float, bin_s: float,
                  next_arrival_s: float) -> int:
    """Decode steps from ``now`` that would each cost ``t`` and change nothing but the
    sequences' lengths: no sequence finishes (each gains ``tps`` every step), the mean
    context stays in its cost bucket, no request arrives and no throughput bin ends."""
    left = float(st.left[:k].min())
    m = math.ceil(left / tps) - 1  # the last of them leaves every sequence > 0 tokens
    mean = float(st.ctx[:k].sum()) / k
    bucket = max(1, math.ceil(mean / LENGTH_BUCKET)) * LENGTH_BUCKET
    m = min(m, int((bucket - mean) // tps) + 1)
    edge = (math.floor(now / bin_s) + 1) * bin_s
    for end in (edge, next_arrival_s):  # every step ends before the bin edge / arrival
        if end < math.inf:
            m = min(m, math.ceil((end - now) / t) - 1)
    return max(1, m)


class _State:
    """The prefill queue (request, prompt tokens left) and the decoding sequences, kept
    compact in NumPy arrays ``[:n]``; per-request timestamps."""

    def __init__(self, slots: int, n: int) -> None:
        self.req = np.zeros(slots, dtype=np.int64)
        self.ctx = np.zeros(slots)
        self.left = np.zeros(slots)  #: output tokens still to generate
        self.n = 0  #: decoding sequences
        self.queue: deque[list[int]] = deque()  #: [request, prompt tokens left], oldest first
        self.first = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.done = 0

    @property
    def busy(self) -> int:
        return self.n + len(self.queue)

    def take_prefill(self, budget: float, chunked: bool = True, ranks: int = 1
                     ) -> list[tuple[int, int]]:
        """Prompt chunks of this iteration, oldest first, within ``budget`` tokens; not
        ``chunked``: whole prompts only, stopping at the first that does not fit (but at
        least one a step when nothing else runs, so no prompt waits forever). With whole
        prompts on ``ranks`` attention data-parallel ranks the budget is each rank's own
        (``budget / ranks``: its ``max_num_tokens`` less its share of the decodes) and a
        prompt must fit one rank's: two half-full ranks do not make room for a prompt
        neither holds."""
        if not chunked and ranks > 1:
            return self._take_whole(budget / ranks, ranks)
        chunks: list[tuple[int, int]] = []
        for r, left in self.queue:
            if budget <= 0:
                break
            if not chunked and left > budget and (chunks or self.n):
                break
            c = left if not chunked else min(int(budget), left)
            chunks.append((r, c))
            budget -= c
        return chunks

    def _take_whole(self, per_rank: float, ranks: int) -> list[tuple[int, int]]:
        """Whole prompts, oldest first, each to the rank with the most room of ``ranks``
        budgets of ``per_rank`` tokens (the executor gives a new request to the rank with
        the fewest); stops at the first that fits none (one anyway when nothing else runs)."""
        room = [per_rank] * ranks
        chunks: list[tuple[int, int]] = []
        for r, left in self.queue:
            i = max(range(ranks), key=room.__getitem__)  # the least loaded rank
            if left > room[i]:
                if not chunks and not self.n:
                    chunks.append((r, left))
                break
            room[i] -= left
            chunks.append((r, left))
        return chunks

    def advance(self, now: float, tps: float) -> float:
        """One decode step for the decoding sequences; returns the tokens they gained."""
        k = self.n
        if not k:
            return 0.0
        left = self.left[:k]
        gained = float(np.minimum(left, tps).sum())
        self.ctx[:k] += tps
        left -= tps
        return gained

    def advance_many(self, m: int, tps: float) -> float:
        """``m`` decode steps in which every sequence gains ``tps`` and none finishes."""
        k = self.n
        self.ctx[:k] += tps * m
        self.left[:k] -= tps * m
        return float(k * tps * m)

    def finish_prefill(self, chunks: list[tuple[int, int]], now: float, inp: np.ndarray,
                       out: np.ndarray) -> float:
        """Consume the prefill chunks; a finished prompt yields its first token and joins
        the decoding sequences. Returns the first tokens produced."""
        gained = 0.0
        for r, c in chunks:
            head = self.queue[0]
            head[1] -= c
            if head[1] > 0:
                break
            self.queue.popleft()
            self.first[r] = now
            gained += 1.0
            k = self.n
            self.req[k], self.ctx[k], self.left[k] = r, float(inp[r]), float(out[r] - 1)
            self.n = k + 1
        return gained

    def retire(self, now: float, inp: np.ndarray, out: np.ndarray) -> float:
        """Drop finished sequences (compacting the arrays); returns the KV tokens freed."""
        k = self.n
        done = self.left[:k] <= 1e-9
        if not done.any():
            return 0.0
        r = self.req[:k][done]
        self.finish[r] = now
        keep = ~done
        m = int(keep.sum())
        for a in (self.req, self.ctx, self.left):
            a[:m] = a[:k][keep]
        self.n = m
        self.done += int(r.size)
        return float((inp[r] + out[r]).sum())


class _Bar:
    """An optional progress bar over simulated time (``superpod.progress``, on stderr)."""

    def __init__(self, show: bool, horizon: float) -> None:
        from superpod.progress import Bar

        self.bar = Bar("serve-sim (simulated s)", max(horizon, 1e-9), enabled=show)

    def update(self, now: float) -> None:
        self.bar.update(now)

    def close(self) -> None:
        self.bar.__exit__(None, None, None)


def _pcts(x: np.ndarray) -> dict[int, float]:
    if x.size == 0:
        return dict.fromkeys(PERCENTILES, math.nan)
    vals = np.percentile(x, PERCENTILES)
    return {p: float(v) for p, v in zip(PERCENTILES, vals, strict=True)}


def _result(st: _State, reqs: Requests, end: float, area: float, steps: int,
            bins: np.ndarray, bin_s: float, start_wall: float, slots: int, chips: int
            ) -> SimResult:
    ok = ~np.isnan(st.finish)
    arr, out = reqs.arrival_s[ok], reqs.output_len[ok]
    first, finish = st.first[ok], st.finish[ok]
    multi = out > 1
    tpot = (finish[multi] - first[multi]) / (out[multi] - 1)
    latency = finish - arr
    span = max(end, 1e-12)
    return SimResult(
        requests=len(reqs), finished=int(ok.sum()), duration_s=end,
        output_tokens_per_s=float(out.sum()) / span, ttft_s=_pcts(first - arr),
        tpot_s=_pcts(tpot), e2e_s=_pcts(latency), mean_in_system=float(area) / span,
        mean_latency_s=float(latency.mean()) if latency.size else math.nan,
        arrival_rate_per_s=len(reqs) / span, throughput_per_bin=bins / bin_s, bin_s=bin_s,
        steps=steps, wall_s=time.perf_counter() - start_wall, max_batch=slots, chips=chips,
        ttft_mean_s=_mean(first - arr), tpot_mean_s=_mean(tpot))


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else math.nan
