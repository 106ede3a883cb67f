"""The scheduler limits ``trtllm-bench throughput`` derives when none are given.

The perf-overview runs pass no ``--max_batch_size`` / ``--max_num_tokens``, so trtllm-bench
computes them (tensorrt_llm/bench/build/tuning.py, ``calc_engine_setting`` and
``finetune_setting``; called from bench/benchmark/utils/general.py ``get_settings``):

* KV bytes per token as the tool estimates them: ``2 L max(tp, H_kv) d e_kv`` with ``d`` the
  config's ``head_dim`` or ``hidden / heads`` (the tool reads MLA models as MHA);
* the engine: the checkpoint's stored elements (packed 4-bit weights count two a byte) times
  the quantisation's bytes per element (NVFP4 0.5, FP8 1, else 2), in GiB;
* requests the KV cache holds: ``0.90 (tp pp HBM - engine) / (bytes per token (I + O))``
  (``kv_cache_free_gpu_mem_fraction`` default 0.90);
* ``max_batch_size`` from ``min(requests, 4096) / pp``: at least 64, rounded up to 32 below
  256, to 128 below 1024, else to 256; ``max_num_tokens`` from ``min(bs (1 + I / O), 32768)``:
  at least 2048, rounded up to 256 below 4096, 512 below 8192, else 1024.

The heuristic runs only for the quantisations it is tuned for (tensorrt_llm/bench/build/
build.py ``get_benchmark_engine_settings``, ``TUNED_QUANTS``: NVFP4, FP8, FP8 block scales,
none); any other checkpoint format (MXFP4 - gpt-oss -, INT8 / INT4 weight-only) gets
``BuildConfig``'s defaults, ``max_batch_size`` 2048 and ``max_num_tokens`` 8192
(``untuned_settings``).

``get_settings`` turns chunked prefill off unless asked (``enable_chunked_prefill``
default False) and then raises ``max_num_tokens`` to at least ``max ISL + max_batch_size``:
a prompt is prefilled whole, within the iteration's token budget beside the decodes.
tuning.py calls the bound "slightly optimistic" and leaves the batch below it to "runtime
tuning features"; in the PyTorch backend the perf-overview ran it is a hard cap: the executor's
capacity scheduler admits at most ``max_batch_size x pp`` requests and its micro-batch
scheduler puts at most ``max_batch_size`` in one iteration
(tensorrt_llm/_torch/pyexecutor/_util.py ``create_py_executor_instance``:
``BindCapacityScheduler(max_num_sequences, ...)``, ``BindMicroBatchScheduler(max_batch_size,
max_num_tokens, ...)``), so it bounds the sequences in flight, not only the largest CUDA
graph the run captures (``cuda_graph_config.max_batch_size`` = ``max_batch_size``). With
attention data parallel each rank runs its own executor and scheduler, so both limits are
per rank.

``get_settings`` also turns CUDA-graph padding on (``cuda_graph_config = {padding_enabled:
True, max_batch_size}``) and gives no batch list, so where the run's options file sets none
the LLM API generates one (``CudaGraphConfig._generate_cuda_graph_batch_sizes``,
tensorrt_llm/llmapi/llm_args.py): with padding ``[1, 2, 4, 8, 16, ..., 128]`` (multiples of
8), the powers of two from 256 below ``max_batch_size`` ("Add powers of 2 up to
max_batch_size": ``range(8, ceil(log2 max_batch_size))``; some mid-2025 releases wrote
``floor``, which drops the largest power below a ``max_batch_size`` that is not one), and
``max_batch_size`` itself (``default_graph_batches``).

The KV pool is sized after a profiling forward (tensorrt_llm/_torch/pyexecutor/_util.py
``KvCacheCreator``: ``_create_dummy_context_requests`` fills ``max_num_tokens`` prompt tokens
a rank - replicated to every rank under attention DP - and ``configure_kv_cache_capacity``
/ ``_cal_max_memory`` give the cache ``fraction x (total - peak)``, ``peak`` the torch peak of
that forward plus what lies outside torch). So the pool loses that forward's activations as
well as the weights (``profile_bytes``): those of ``max_num_tokens`` tokens through a layer
(``memory.activation_bytes_per_token``), and the fused MoE's workspace, which the CUTLASS
runner sizes per call for its ``num_rows`` tokens (cpp/tensorrt_llm/kernels/cutlass_kernels/
moe_gemm/moe_kernels.cu ``getWorkspaceDeviceBufferSizes``): of its ``k num_rows`` permuted
rows, one buffer shared by the GEMM inputs (``max(h, i)`` a row: permuted data, FC2 result,
FC1 result) and one by the GEMM outputs (``max(g i, h)``, ``g`` 2 for a gated activation:
GLU intermediate, FC2 result), BF16 taken for all. With attention DP and the all-gather MoE
(``InferOptions.moe_allgather``, EP <= top_k) every rank's MoE takes all ranks' tokens: the
MoE modules size for ``max_num_tokens x dp_size`` (``moe_max_num_tokens`` default, "The
maximum number of tokens in MoE are multiplied by DP size when attention DP is enabled",
fused_moe_cutlass.py), so ``num_rows = max_num_tokens x dp``; otherwise ``max_num_tokens``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from superpod.infer import memory as mem
from superpod.infer.config import InferOptions, ServingLayout
from superpod.trust.holdout import held_out
from superpod.workload.model import ModelSpec

SOURCE = ("https://github.com/NVIDIA/TensorRT-LLM/blob/a7e572fb20c694e7711f0c09f21eeaedeb45ccaa/"
          "tensorrt_llm/bench/build/tuning.py; calc_engine_setting, finetune_setting; "
          "bench/benchmark/utils/general.py get_settings (chunked prefill off)")
SCHEDULER_SOURCE = (
    "https://github.com/NVIDIA/TensorRT-LLM/blob/a7e572fb20c694e7711f0c09f21eeaedeb45ccaa/"
    "tensorrt_llm/_torch/pyexecutor/_util.py; create_py_executor_instance (capacity and "
    "micro-batch schedulers bounded by max_batch_size); tensorrt_llm/bench/build/build.py "
    "get_benchmark_engine_settings (TUNED_QUANTS, else BuildConfig defaults)")
#: quantisations trtllm-bench's heuristic is tuned for (build.py ``TUNED_QUANTS``: NVFP4,
#: FP8, FP8 block scales, no quantisation), as superpod's weight formats
TUNED_FORMATS = ("fp4", "fp8", "bf16", "fp16")
#: ``BuildConfig`` defaults an untuned quantisation gets (tensorrt_llm/builder.py)
DEFAULT_MAX_BATCH_SIZE = 2048
DEFAULT_MAX_NUM_TOKENS = 8192
KV_FREE_FRACTION = 0.90  #: trtllm-bench ``--kv_cache_free_gpu_mem_fraction`` default
MAX_REQUESTS = 4096  #: cap on the batch (decoder buffers)
MAX_TOKENS = 32768  #: cap on tokens per iteration (activation buffers)
#: bytes per stored element by quantisation (tuning.py BYTES_PER_ELEM; other formats 2)
BYTES_PER_ELEM = {"fp4": 0.5, "fp8": 1.0}
GRAPH_SOURCE = ("https://github.com/NVIDIA/TensorRT-LLM/blob/a7e572fb20c694e7711f0c09f21eeaedeb45ccaa/"
                "tensorrt_llm/bench/benchmark/utils/general.py; get_settings (cuda_graph_config "
                "padding on); tensorrt_llm/llmapi/llm_args.py CudaGraphConfig."
                "_generate_cuda_graph_batch_sizes")

PROFILE_SOURCE = (
    "https://github.com/NVIDIA/TensorRT-LLM/blob/0004396720054fd8e205cbf616f21f0b57c6b412/"
    "tensorrt_llm/_torch/pyexecutor/_util.py; KvCacheCreator._create_dummy_context_requests, "
    "configure_kv_cache_capacity, _cal_max_memory (pool = fraction x (total - profiling peak)); "
    "tensorrt_llm/_torch/modules/fused_moe/fused_moe_cutlass.py moe_max_num_tokens = "
    "max_num_tokens x dp_size; https://github.com/NVIDIA/TensorRT-LLM/blob/"
    "ac73e3116fb44f06ec9873d68b114a3fc11c19a7/cpp/tensorrt_llm/kernels/cutlass_kernels/moe_gemm/"
    "moe_kernels.cu getWorkspaceDeviceBufferSizes")


@dataclass(frozen=True)
class BenchSettings:
    """Per-rank scheduler limits of one trtllm-bench run."""

    max_batch_size: int
    max_num_tokens: int
    kv_requests: float  #: requests the tool estimates the KV cache holds (whole run)


def stored_elements(model: ModelSpec, precision: str) -> float:
    """Elements in the checkpoint's safetensors (what the tool counts as parameters):
    4-bit weights are packed two a byte; embedding and head stay unpacked."""
    total = float(model.count_params(include_mtp=True))
    dense = float(model.params_embedding + model.params_lm_head)
    pack = 0.5 if precision in ("fp4", "int4", "mxfp4") else 1.0
    return (total - dense) * pack + dense


def bench_settings(model: ModelSpec, hbm_bytes: float, *, tp: int, pp: int, input_len: int,
                   output_len: int, precision: str, kv_precision: str
                   ) -> BenchSettings | None:
    """trtllm-bench's ``max_batch_size`` and ``max_num_tokens`` (module docstring); None
    while its source is held out or when the tool would refuse the run."""
    if held_out(SOURCE):
        return None
    if precision not in TUNED_FORMATS and not held_out(SCHEDULER_SOURCE):
        return untuned_settings(input_len)
    heads = model.num_attention_heads
    head = model.hidden_size // heads if model.is_mla else model.head_dim
    kv_heads = max(tp, heads if model.is_mla else model.num_key_value_heads)
    kv_el = 1.0 if kv_precision in ("fp8", "int8") else 2.0
    gib = 2.0**30
    per_token = 2 * model.num_hidden_layers * kv_heads * head * kv_el / gib
    engine = stored_elements(model, precision) * BYTES_PER_ELEM.get(precision, 2.0) / gib
    available = hbm_bytes / gib * tp * pp - engine
    requests = available * KV_FREE_FRACTION / (per_token * (input_len + output_len))
    if requests < 1:
        return None
    raw_bs = min(requests, MAX_REQUESTS) / pp
    raw_tok = min(raw_bs * (1 + input_len / output_len), MAX_TOKENS)
    if raw_bs < 256:
        bs = max(64, 32 * math.ceil(raw_bs / 32))
    elif raw_bs < 1024:
        bs = 128 * math.ceil(raw_bs / 128)
    else:
        bs = 256 * math.ceil(raw_bs / 256)
    if raw_tok < 4096:
        tok = max(2048, 256 * math.ceil(raw_tok / 256))
    elif raw_tok < 8192:
        tok = 512 * math.ceil(raw_tok / 512)
    else:
        tok = 1024 * math.ceil(raw_tok / 1024)
    return BenchSettings(max_batch_size=bs, max_num_tokens=max(tok, input_len + bs),
                         kv_requests=requests)


def untuned_settings(input_len: int) -> BenchSettings:
    """``BuildConfig``'s defaults, as trtllm-bench takes them for a quantisation its heuristic
    is not tuned for; ``max_num_tokens`` raised to the prompt plus a full batch as with
    chunked prefill off (module docstring)."""
    bs, tok = DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_NUM_TOKENS
    return BenchSettings(max_batch_size=bs, max_num_tokens=max(tok, input_len + bs),
                         kv_requests=math.inf)


def in_flight_cap(settings: BenchSettings, dp: int, pp: int) -> int | None:
    """Sequences an instance of ``dp`` attention data-parallel ranks and ``pp`` stages holds
    in flight: ``max_batch_size x pp`` a rank's capacity scheduler admits (module docstring);
    None while that source is held out (no cap beyond memory)."""
    if held_out(SCHEDULER_SOURCE):
        return None
    return settings.max_batch_size * pp * dp


def default_graph_batches(max_batch_size: int) -> tuple[int, ...]:
    """The decode batches trtllm-bench captures CUDA graphs for (padding on) when the
    options file lists none (module docstring); () while that source is held out."""
    if held_out(GRAPH_SOURCE) or max_batch_size < 1:
        return ()
    sizes = [1, 2, 4] + [8 * i for i in range(1, 17)]
    if max_batch_size > 1:
        sizes += [2**i for i in range(8, math.ceil(math.log2(max_batch_size)))]
    out = sorted(b for b in set(sizes) if b <= max_batch_size)
    if not out or out[-1] != max_batch_size:
        out.append(max_batch_size)
    return tuple(out)


def moe_rows(model: ModelSpec, layout: ServingLayout, opts: InferOptions, tokens: int) -> int:
    """Tokens one rank's fused MoE takes in a forward of ``tokens`` a rank (module
    docstring): all DP ranks' with the all-gather MoE, else its own."""
    gathered = opts.moe_allgather and layout.dp > 1 and layout.ep <= model.num_experts_per_tok
    return tokens * layout.dp if gathered else tokens


def profile_bytes(model: ModelSpec, layout: ServingLayout, opts: InferOptions,
                  max_num_tokens: int) -> float:
    """Bytes a rank's profiling forward of ``max_num_tokens`` tokens holds beside the weights
    and the KV cache, which the KV pool does not get (module docstring); 0 while that source
    is held out."""
    if held_out(PROFILE_SOURCE) or max_num_tokens <= 0:
        return 0.0
    act = max_num_tokens * mem.activation_bytes_per_token(model, layout)
    if not model.is_moe:
        return act
    h, inter = model.hidden_size, model.moe_intermediate_size / layout.etp
    width = max(h, inter) + max((2.0 if model.gated_mlp else 1.0) * inter, h)
    rows = model.num_experts_per_tok * moe_rows(model, layout, opts, max_num_tokens)
    return act + rows * width * mem.ACT_BYTES
