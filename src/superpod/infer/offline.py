"""Offline max-throughput benchmarks: a finite set of requests queued at t = 0.

``trtllm-bench throughput`` (and every "offline" throughput benchmark) generates
``requests`` prompts of one ISL / OSL, queues them all at once and reports the output tokens
over the time until the last one finishes (TensorRT-LLM perf-overview, "Running the
Benchmark": "all requests are queued in rapid succession"; the reported per-GPU output
throughput is total output tokens / total latency / GPUs). That is not the steady state at
the largest batch that fits:

* the ramp - at t = 0 every admitted sequence still needs its prefill, so the first
  iterations are prefill-bound and decodes start staggered;
* the waves - uniform requests admitted together finish together, and the next ones are
  admitted as KV memory frees;
* the drain - when fewer requests are left than the instance holds, the last wave decodes
  at a smaller batch, at a lower throughput.

The request simulator (``infer.simulate``) runs exactly this with the runtime's scheduler
limits (``infer.trtllm_bench`` for trtllm-bench); the result is reported as an ``e2e``
``ServingResult`` with mean TTFT / TPOT over the requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from superpod.hardware.system import System
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.iteration import Iteration, iteration
from superpod.infer.serving import ServingResult, Workload
from superpod.infer.simulate import Requests, simulate
from superpod.workload.model import ModelSpec


@dataclass(frozen=True, kw_only=True)
class Scheduler:
    """Per-rank scheduler limits of an offline run (None: the simulator's defaults)."""

    token_budget: int | None = None  #: tokens per iteration of a DP rank, decodes included
    chunked_prefill: bool = True
    graph_limit: int | None = None  #: largest captured CUDA graph batch (per rank)
    #: sequences in flight in the instance, all ranks together (trtllm-bench:
    #: ``max_batch_size`` a rank's capacity scheduler admits); None: as many as KV fits
    max_in_flight: int | None = None
    #: captured decode batches the runtime generates itself where the options give none
    #: (trtllm-bench: ``trtllm_bench.default_graph_batches``); () for none
    default_graphs: tuple[int, ...] = ()
    #: bytes a rank the runtime holds when it sizes the KV pool, beside weights and
    #: workspace (trtllm-bench: its profiling forward, ``trtllm_bench.profile_bytes``)
    reserved_bytes: float = 0.0
    note: str = ""


def offline(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
            work: Workload, requests: int, scheduler: Scheduler | None = None
            ) -> ServingResult:
    """``requests`` requests of ``work``'s shape queued at t = 0 and run to the last one."""
    sch = scheduler or Scheduler()
    opts = opts.for_chip(system.chip)
    if sch.graph_limit is not None and opts.graph_batch_sizes:
        opts = replace(opts, graph_batch_sizes=tuple(
            g for g in opts.graph_batch_sizes if g <= sch.graph_limit))
    elif sch.default_graphs and not opts.graph_batch_sizes:
        opts = replace(opts, graph_batch_sizes=sch.default_graphs)
    reqs = Requests(np.zeros(requests), np.full(requests, work.input_len, dtype=np.int64),
                    np.full(requests, work.output_len, dtype=np.int64))
    sim = simulate(system, model, layout, opts, reqs, token_budget=sch.token_budget,
                   chunked_prefill=sch.chunked_prefill, max_batch=sch.max_in_flight,
                   reserved_bytes=sch.reserved_bytes)
    batch = min(requests, sim.max_batch)
    dec = iteration(system, model, layout, opts, phase="decode", batch=batch,
                    context=work.decode_context, kv_context=work.reserved_context,
                    check_memory=False)
    pre = iteration(system, model, layout, opts, phase="prefill", batch=layout.dp,
                    context=work.input_len, check_memory=False)
    its = tuple(it for it in (dec, pre) if isinstance(it, Iteration))
    notes = [f"offline run: {requests} requests queued at t=0, up to {batch} in flight, "
             f"{sim.steps} iterations"]
    if sch.note:
        notes.append(sch.note)
    for it in its:
        notes += [n for n in it.notes if n not in notes]
    breakdown = dict(its[0].breakdown_s) if its else {}
    memory = its[0].memory.total * layout.ranks_per_chip if its else 0.0
    return ServingResult(
        phase="e2e", model=model.name, system=system.spec.id, chips=layout.chips,
        layout=layout, options=opts, batch=batch, input_len=work.input_len,
        output_len=work.output_len, context=work.decode_context,
        tokens_per_s=sim.output_tokens_per_s, ttft_s=sim.ttft_mean_s,
        tpot_s=sim.tpot_mean_s, memory_bytes_per_chip=memory, max_batch=sim.max_batch,
        breakdown_s=breakdown, iterations=its, notes=tuple(notes),
        extra={"offline": {"requests": requests, "steps": sim.steps,
                           "duration_s": sim.duration_s}})
