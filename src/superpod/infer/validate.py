"""Predict a validation case of kind ``infer`` (``shared/validation/README.md``, ``serving``).

Every ``serving`` key is honoured:

* ``instance_chips`` (default: the case's chips) is one instance; throughput per chip is the
  instance's over its chips. Parallel degrees larger than the instance's chips count ranks
  (dies): ``ranks_per_chip`` = degree / chips (CloudMatrix-Infer counts 910C dies).
* ``tp`` / ``dp`` / ``ep`` / ``pp``; when ``tp x dp x pp`` leaves ranks of the instance
  unused (the source gave only ``ep``), attention data parallel fills them (DP attention +
  EP, the only layout the sources describe for such instances) and the note says so.
* ``precision`` (weights), ``kv_precision`` (absent: ``config.auto_kv_precision``),
  ``mtp`` (acceptance ``DEFAULT_MTP_ACCEPTANCE``).
* ``framework``: the runtime it names (``infer.runtime``: expert load balancing, CUDA-graph
  padding of decode batches, the benchmark's semantics); expert-rank imbalance is
  ``infer.imbalance``'s measured default for the layout - or 1 where the case's notes state
  a perfect expert balance ("perfect EPLB", "perfect expert load balance": the sources'
  simulated upper bounds, routing each token to uniformly random experts), or where the
  runtime's runs are published as so routed (``Runtime.balanced_routing``: DeepSeek's
  profile-data).
* ``batch`` absent, ``e2e``, a runtime that runs offline benchmarks (``trtllm-bench
  throughput``): its request count queued at t = 0 through the request simulator with the
  runtime's scheduler limits (``infer.offline``).
* ``batch`` absent, ``prefill``, a runtime that is a production service publishing day
  averages (``Runtime.service``: DeepSeek's online service): a prefill at the service's
  configured tokens a rank, times the load factor the published per-user output speed
  implies for its decode pool (``infer.service_load``).
* ``batch`` absent otherwise (``max_throughput``): the batch that maximises throughput
  within memory - and within ``slo_tpot_ms`` / ``slo_ttft_ms`` when given.
* decode context: ``context_len``, else ``input_len + output_len / 2``, else ``input_len``.
* no ``input_len`` and no ``context_len``: the runtime's published mean request if it has
  one (DeepSeek's production statistics, ``runtime.deepseek_production_request``: prompt,
  output and prefix-cache hits; the note says so), else unsupported.
* ``prefill_chips`` / ``decode_chips``: disaggregated pools of the instance layout.
* ``prefill`` / ``decode`` maps: disaggregated pools with their own layouts - each pool's
  ``chips`` in instances of its ``tp x dp x pp`` ranks; ``batch`` (the deployment's
  concurrent requests) decodes spread over the decode instances; the prefill instances run
  the smallest batch within 5 % of their best prefill throughput (``search.PREFILL_KNEE``);
  the KV cache crosses the fabric between the pools (``serving.kv_transfer_s``).

Nothing is fitted per case: the kernels' per-chip calibration, the fabrics' collective
calibration and the documented defaults are all there is. A layout the memory model says
does not fit is still predicted (the run did fit) and the note says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from superpod.errors import Infeasible, SpecError, Unsupported
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.offline import Scheduler, offline
from superpod.infer.runtime import DEFAULT, Runtime, ServiceProfile, runtime_for
from superpod.infer.service_load import decode_occupancy, service_prefill
from superpod.infer.serving import ServingResult, Workload, best_batch, disaggregated, serve
from superpod.infer.trtllm_bench import (
    bench_settings,
    default_graph_batches,
    in_flight_cap,
    profile_bytes,
)
from superpod.validate.system import case_system

_METRICS: dict[str, Callable[[ServingResult], float]] = {
    "tokens_per_s_per_chip": lambda r: r.tokens_per_s_per_chip,
    "ttft_ms": lambda r: (r.ttft_s or 0.0) * 1e3,
    "tpot_ms": lambda r: (r.tpot_s or 0.0) * 1e3}
#: a case's notes stating that the run assumed perfectly balanced experts
PERFECT_BALANCE = re.compile(r"perfect\s+(eplb|expert\s+load\s+balanc)", re.IGNORECASE)


def _layout(case: Any, notes: list[str]) -> ServingLayout:
    s = case.serving
    chips = s.instance_chips or case.system.chips
    if chips > case.system.chips:
        raise SpecError("instance_chips exceeds the system's chips",
                        field="serving.instance_chips", value=chips)
    r = case.system.ranks_per_chip
    needed = max(s.tp * s.dp * s.pp, s.ep)
    if r == 1 and needed > chips and needed % chips == 0:
        r = needed // chips
        notes.append(f"degrees count ranks: {r} ranks (dies) per chip")
    ranks = chips * r
    dp = s.dp
    if s.tp * dp * s.pp < ranks and s.dp == 1 and ranks % (s.tp * s.pp) == 0:
        dp = ranks // (s.tp * s.pp)
        notes.append(f"attention data parallel assumed to fill the instance: dp={dp}")
    if s.tp * dp * s.pp != ranks:
        raise SpecError(f"tp*dp*pp = {s.tp * dp * s.pp} does not fill the instance's "
                        f"{ranks} ranks", field="serving")
    return ServingLayout(tp=s.tp, dp=dp, ep=s.ep, pp=s.pp, ranks_per_chip=r)


def _pool_layout(case: Any, pool: Any, name: str) -> tuple[ServingLayout, int]:
    """(one instance's layout, instances) of a ``serving.prefill`` / ``decode`` pool."""
    r = case.system.ranks_per_chip
    lay = ServingLayout(tp=pool.tp, dp=pool.dp, ep=pool.ep, pp=pool.pp, ranks_per_chip=r)
    ranks = pool.chips * r
    if ranks % lay.ranks:
        raise SpecError(f"tp*dp*pp = {lay.ranks} ranks does not divide the pool's {ranks}",
                        field=f"serving.{name}")
    return lay, ranks // lay.ranks


def _pools(case: Any, system: Any, model: Any, opts: InferOptions, work: Workload,
           notes: list[str]) -> ServingResult | Infeasible:
    """A deployment of a prefill and a decode pool with their own layouts."""
    s = case.serving
    if s.prefill.chips + s.decode.chips > case.system.chips:
        raise SpecError(f"the pools' {s.prefill.chips} + {s.decode.chips} chips exceed the "
                        f"system's {case.system.chips}", field="serving")
    p_lay, n_p = _pool_layout(case, s.prefill, "prefill")
    d_lay, n_d = _pool_layout(case, s.decode, "decode")
    from superpod.infer.search import PREFILL_KNEE

    pre = best_batch(system, model, p_lay, opts, phase="prefill", work=work,
                     slo_ttft_s=s.slo_ttft_ms / 1e3 if s.slo_ttft_ms else None,
                     knee=PREFILL_KNEE)
    if isinstance(pre, Infeasible):
        return Infeasible(pre.reason, f"prefill pool: {pre.detail}")
    batch = s.batch or d_lay.dp * n_d
    decode_batch = max(d_lay.dp, -(-batch // n_d))
    notes.append(f"pools: {n_p} prefill instance(s) {p_lay.label()} batch {pre.batch}, "
                 f"{n_d} decode instance(s) {d_lay.label()} batch {decode_batch}")
    return disaggregated(system, model, opts, work, prefill_layout=p_lay,
                         decode_layout=d_lay, prefill_batch=pre.batch,
                         decode_batch=decode_batch, prefill_chips=s.prefill.chips,
                         decode_chips=s.decode.chips)


def _workload(case: Any, rt: Runtime | None = None, notes: list[str] | None = None
              ) -> Workload:
    s = case.serving
    shape = rt.request_shape() if rt is not None else None
    if s.input_len is None and s.context_len is None and shape is not None:
        inp, out, cached = shape
        if notes is not None:
            notes.append(f"no input_len: the service's published mean request assumed "
                         f"({inp} prompt tokens, {cached} of them prefix-cache hits, "
                         f"{out} output; {rt.name if rt else ''})")
        return Workload(input_len=inp, output_len=s.output_len or out, cached_len=cached)
    if s.input_len is None and s.context_len is None:
        raise Unsupported("no input_len: the prompt length the throughput depends on is "
                          "not given")
    if s.phase != "decode" and s.input_len is None:
        raise Unsupported(f"{s.phase} needs input_len")
    if s.phase == "e2e" and s.output_len is None:
        raise Unsupported("e2e needs output_len")
    inp = s.input_len if s.input_len is not None else int(s.context_len)
    out = s.output_len or 1
    ctx = s.context_len if s.context_len is not None else (
        None if s.output_len else float(inp))
    return Workload(input_len=max(1, inp), output_len=max(1, out), context_len=ctx)


def _scheduler(rt: Runtime, model: Any, system: Any, layout: ServingLayout,
               opts: InferOptions, work: Workload) -> Scheduler:
    """The runtime's per-rank scheduler limits for an offline run."""
    if not rt.trtllm_bench_scheduler:
        return Scheduler()
    kv = opts.for_chip(system.chip).kv_precision
    bs = bench_settings(model, system.chip.hbm_bytes / layout.ranks_per_chip,
                        tp=layout.tp * layout.dp, pp=layout.pp, input_len=work.input_len,
                        output_len=work.output_len, precision=opts.precision,
                        kv_precision=kv)
    if bs is None:
        return Scheduler()
    reserved = profile_bytes(model, layout, opts, bs.max_num_tokens)
    return Scheduler(token_budget=bs.max_num_tokens, chunked_prefill=False,
                     graph_limit=bs.max_batch_size, reserved_bytes=reserved,
                     max_in_flight=in_flight_cap(bs, layout.dp, layout.pp),
                     default_graphs=default_graph_batches(bs.max_batch_size),
                     note=f"trtllm-bench limits: max_batch_size {bs.max_batch_size}, "
                          f"max_num_tokens {bs.max_num_tokens} a rank (in flight at most "
                          f"{bs.max_batch_size * layout.pp} a rank), no chunked prefill; KV pool "
                          f"sized after a profiling forward holding {reserved / 2**30:.1f} GiB "
                          "a rank")


def _predict(case: Any, cat: Any, layout: ServingLayout, opts: InferOptions,
             work: Workload, notes: list[str], rt: Runtime) -> ServingResult:
    s = case.serving
    system = case_system(case, cat)
    from superpod.workload.model import model_from_config
    from superpod.workload.ops import layer_gemms

    model = model_from_config(case.model.model_dump(exclude_none=True), file=case.id)
    names = {g.name for g in layer_gemms(model, 0, 1.0)}
    bf16 = tuple(n for n in rt.bf16_gemms_for(model.is_mla, opts.precision) if n in names)
    if bf16:
        opts = replace(opts, bf16_gemms=bf16)
        notes.append(f"{opts.precision} checkpoint keeps {', '.join(bf16)} in BF16 "
                     "(the runtime's published checkpoints)")
    requests = rt.requests_for(work.input_len, work.output_len)
    if s.prefill is not None:
        res: ServingResult | Infeasible = _pools(case, system, model, opts, work, notes)
    elif s.prefill_chips or s.decode_chips:
        batch = s.batch or layout.dp
        res = disaggregated(
            system, model, opts, work, prefill_layout=layout, decode_layout=layout,
            prefill_batch=batch, decode_batch=batch, prefill_chips=s.prefill_chips,
            decode_chips=s.decode_chips)
    elif (s.batch is None and s.phase == "e2e" and requests
          and not (s.slo_tpot_ms or s.slo_ttft_ms)):
        res = offline(system, model, layout, opts, work, requests,
                      _scheduler(rt, model, system, layout, opts, work))
    elif (s.batch is None and s.phase == "prefill" and not s.slo_ttft_ms
          and (svc := rt.service_profile()) is not None):
        res = _service_prefill(case, cat, (system, model, layout, opts), work, svc, notes)
    elif s.batch is None:
        res = best_batch(system, model, layout, opts, phase=s.phase, work=work,
                         slo_tpot_s=s.slo_tpot_ms / 1e3 if s.slo_tpot_ms else None,
                         slo_ttft_s=s.slo_ttft_ms / 1e3 if s.slo_ttft_ms else None)
        if not isinstance(res, Infeasible):
            notes.append(f"batch {res.batch} maximises throughput (max {res.max_batch})")
    else:
        res = serve(system, model, layout, opts, phase=s.phase, batch=s.batch, work=work)
        if isinstance(res, Infeasible) and res.reason == "out_of_memory":
            notes.append(f"memory model says it does not fit: {res.detail}")
            res = serve(system, model, layout, opts, phase=s.phase, batch=s.batch, work=work,
                        check_memory=False)
    if isinstance(res, Infeasible):
        raise SpecError(f"layout is infeasible here ({res.reason}): {res.detail}",
                        field="serving")
    return res


def _service_prefill(case: Any, cat: Any, run: tuple[Any, Any, ServingLayout, InferOptions],
                     work: Workload, svc: ServiceProfile, notes: list[str]
                     ) -> ServingResult | Infeasible:
    """A production service's day-average prefill throughput (``infer.service_load``): a
    prefill at the configured tokens a rank, times the load factor its decode pool's
    published per-user speed implies."""
    system, model, layout, opts = run
    per_rank = max(1, round(svc.prefill_tokens_per_rank / work.computed_len))
    pre = serve(system, model, layout, opts, phase="prefill", batch=per_rank * layout.dp,
                work=work)
    if isinstance(pre, Infeasible):
        return pre
    chips = max(case.system.chips, math.ceil(svc.decode_ep / case.system.ranks_per_chip))
    big = case.model_copy(update={"system": case.system.model_copy(update={"chips": chips})})
    held = decode_occupancy(case_system(big, cat), model, opts, work, svc)
    notes.append(f"service: prefill {per_rank} prompts a rank ({svc.prefill_tokens_per_rank} "
                 f"tokens configured); decode EP{svc.decode_ep} holds {held} of "
                 f"{svc.decode_batch_per_rank} sequences a rank at the published "
                 f"{svc.output_speed_tokens_per_s:g} tokens/s a user")
    return service_prefill(pre, held / svc.decode_batch_per_rank)


#: model families whose only published checkpoint stores the expert weights in one format:
#: a serving run of them loads that checkpoint whatever low-precision label a results table
#: puts on it (gpt-oss: "MoE weights quantized to MXFP4", the openai/gpt-oss-120b and
#: gpt-oss-20b model cards, https://huggingface.co/openai/gpt-oss-120b; OpenAI ships no
#: FP8 or NVFP4 gpt-oss checkpoint)
NATIVE_CHECKPOINTS = {"gpt-oss": "mxfp4"}
#: model families whose published FP8 checkpoint stores 128 x 128 block-scaled weights
#: (DeepSeek-V3 / R1 config.json ``quantization_config``: ``"weight_block_size": [128, 128]``,
#: https://huggingface.co/deepseek-ai/DeepSeek-R1-0528/blob/main/config.json; DeepSeek-V3
#: technical report, arXiv 2412.19437 §3.3.1 fine-grained quantisation)
BLOCK_SCALED_FP8 = ("deepseek",)


def _weight_format(case: Any, notes: list[str]) -> str:
    """The case's weight format: ``serving.precision``, except that an FP8 / FP4 label on a
    model family with one native low-precision checkpoint means that checkpoint."""
    asked = str(case.serving.precision)
    name = (case.model.name or "").lower()
    for family, fmt in NATIVE_CHECKPOINTS.items():
        if name.startswith(family) and asked in ("fp8", "fp4") and asked != fmt:
            notes.append(f"{family}: its published {fmt.upper()} checkpoint (the table says "
                         f"{asked})")
            return fmt
    return asked


def evaluate_infer_case(case: Any, cat: Any) -> tuple[float, str]:
    """(predicted metric value, note) for one ``infer`` case."""
    s = case.serving
    assert s is not None and case.model is not None  # guaranteed by parse_case
    notes: list[str] = []
    metric = case.measured.metric
    if metric not in _METRICS:
        raise Unsupported(f"metric {metric} is not predicted for inference")
    layout = (_pool_layout(case, s.decode, "decode")[0] if s.decode is not None
              else _layout(case, notes))
    rt = runtime_for(s.framework)
    perfect = bool(PERFECT_BALANCE.search(case.notes or "")) or rt.routes_balanced()
    opts = InferOptions(precision=_weight_format(case, notes),
                        kv_precision=s.kv_precision or "auto",
                        mtp=s.mtp, eplb=rt.eplb_for(layout.ep),
                        ep_imbalance=1.0 if perfect else None,
                        graph_batch_sizes=rt.graphs(), two_batch_overlap=rt.tbo(),
                        ep_library=rt.ep_library_name(), moe_allgather=rt.allgather_moe(),
                        fp8_block_scales=(case.model.name or "").lower().startswith(
                            BLOCK_SCALED_FP8))
    if rt is not DEFAULT:
        notes.append(f"runtime {rt.name}")
    if perfect:
        notes.append("perfect expert balance stated: imbalance 1")
    work = _workload(case, rt, notes)
    res = _predict(case, cat, layout, opts, work, notes, rt)
    value = _METRICS[metric](res)
    top = max(res.breakdown_s.items(), key=lambda kv: kv[1])
    total = sum(res.breakdown_s.values())
    notes.append(f"{res.phase} {layout.label()} batch {res.batch}; largest part {top[0]} "
                 f"{top[1] / total:.0%}")
    notes += [n for n in res.notes if "calibration" not in n]
    return value, "; ".join(dict.fromkeys(notes))
