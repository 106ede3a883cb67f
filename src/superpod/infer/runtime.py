"""Serving runtimes: what a named framework does that changes a prediction.

A validation case names its ``framework`` in free text; the runtime it maps to carries the
published settings of that framework's benchmark procedure, applied to every case that names
it (never per case). Every setting is ``Sourced``: its ``source`` text starts with the URL of
the document it comes from, and a leave-one-source-out evaluation that holds that document
out (``superpod.trust.holdout``) gets the library default instead.

* TensorRT-LLM ``trtllm-bench throughput`` (NVIDIA, "Perf Overview",
  docs/source/developer-guide/perf-overview.md):
  - an offline run: ``$num_requests`` requests of one ISL / OSL queued at once (its table:
    3000 for 1024/1024, 1500 for 8192/1024 and 1024/8192, 1000 for 32768/1024 and
    1024/32768), run until the last finishes (``infer.offline``);
  - CUDA graphs captured for decode batches ``[1, 2, 4, ..., 256, 384, 512, 1024, 2048,
    4096, 8192]`` with ``enable_padding: true`` (every model's ``llm_options.yml``) - a
    decode step of ``b`` sequences a rank runs as the next captured size (NVIDIA, "Tuning
    CUDA Graph Batch Sizes for Higher Output Throughput", tech blog 20); with that list held
    out, the tool's own padding and generated list (``trtllm_bench.default_graph_batches``,
    from its source code, another document) still apply to its offline runs;
  - no expert load balancer (no ``moe_config.load_balancer`` in those options) and no
    two-micro-batch overlap (none is set; SGLang's and DeepSeek's TBO is theirs);
  - the scheduler limits trtllm-bench derives itself (``infer.trtllm_bench``: max batch
    size and max tokens per iteration from its memory heuristic; chunked prefill off).
* SGLang large-scale EP (lmsys blog 2025-05-05, "Deploying DeepSeek with PD Disaggregation
  and Large-scale Expert Parallelism on 96 H100 GPUs"): EPLB on (DeepSeek's EPLB with
  redundant experts, "a distribution matching the input/output data").
* DeepSeek's inference system (open-infra-index, Day 6; EPLB, github.com/deepseek-ai/EPLB)
  and CloudMatrix-Infer (Zuo et al., arXiv 2506.12708: redundant experts placed by load):
  expert load balancing on; CloudMatrix-Infer's MoE communication is its own FusedDispatch /
  FusedCombine kernels (``ep_library``: the paper's latencies calibrate them). DeepSeek's
  production statistics (Day 6, one day of V3 / R1
  traffic) also give its mean request (``deepseek_production_request``), used for a case
  of that service that states no prompt length, and its operating point (``service``:
  mean per-user output speed, configured decode batch and prefill tokens a GPU, decode EP),
  from which ``infer.service_load`` derives how loaded the day-average nodes were.
* anything else, and any setting held out: the library defaults - expert load balancing on
  for large-EP deployments (``LARGE_EP``), no CUDA-graph padding, a steady state at the
  batch that maximises throughput (or, for a runtime known to run offline benchmarks whose
  request count is held out, trtllm-bench's documented quick-start count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from superpod.trust.holdout import held_out

T = TypeVar("T")
D = TypeVar("D")

TRTLLM_PERF_OVERVIEW = (
    "https://github.com/NVIDIA/TensorRT-LLM/blob/03e27c7d5ff0c6e89f8328838c0a8e64f1b34f9d/"
    "docs/source/developer-guide/perf-overview.md")
TRTLLM_PERF_BENCHMARKING = (
    "https://github.com/NVIDIA/TensorRT-LLM/blob/b93e14ca093e446615f3009cae6ca5a33c4f2f56/"
    "docs/source/developer-guide/perf-benchmarking.md")
#: the PyTorch backend's attention-DP MoE: no all-to-all at EP <= top_k, an all-gather of
#: the (quantised) tokens and a reduce-scatter of the outputs instead
TRTLLM_MOE_ALLGATHER = (
    "https://github.com/NVIDIA/TensorRT-LLM/blob/7b437aaa73bf5a44b1102aee5c631074da763b8f/"
    "tensorrt_llm/_torch/modules/fused_moe/fused_moe_cutlass.py; CutlassFusedMoE."
    "enable_alltoall (only moe_ep_size > experts_per_token, with attention DP, on an MNNVL "
    "fabric), forward_chunk (else allgather of the quantised x before fused_moe: FP8 per "
    "tensor and NVFP4 / MXFP8 quantised first, DeepSeek FP8 block scales inside the op) and "
    "forward_impl (reducescatter after); WideEPMoE.select_alltoall_method_type has the same "
    "moe_ep_size <= top_k rule")
#: NVIDIA's NVFP4 DeepSeek checkpoints keep the MLA projections in BF16: ModelOpt's DeepSeek
#: recipe disables every ``*attn*`` quantiser unless asked for per-tensor FP8, and its
#: ``--enable_wo_quant`` quantises the output projection ``wo`` to NVFP4 - which the "v2"
#: checkpoints the perf-overview ran (nvidia/DeepSeek-R1-0528-NVFP4-v2) do ("Compared to
#: nvidia/DeepSeek-R1-0528-FP4, this checkpoint additionally quantizes the wo module in
#: attention layers", its model card). So q_a / q_b / kv_a / kv_b stay BF16, o_proj FP4.
MODELOPT_MLA_BF16 = (
    "https://github.com/NVIDIA/TensorRT-Model-Optimizer/blob/"
    "1030a2210d8dbd654e7f51af85f0b3a3b64f4d38/examples/deepseek/ptq.py; ptq ('*attn*' "
    "quantisers disabled without mla_quant; --enable_wo_quant: wo in NVFP4); "
    "https://huggingface.co/nvidia/DeepSeek-R1-0528-FP4-v2 (model card: v2 additionally "
    "quantizes the wo module)")
#: the ``workload.ops`` names of the MLA projections such a checkpoint keeps in BF16
MLA_BF16_GEMMS = ("q_down", "q_up", "q_proj", "kv_down", "kv_up")
SGLANG_LARGE_EP = (
    "https://github.com/lm-sys/lm-sys.github.io/blob/2db4e4042b31f3c3c9f4f93068ae80946d25a115/"
    "blog/2025-05-05-large-scale-ep.md")
DEEPSEEK_DAY6 = (
    "https://github.com/deepseek-ai/open-infra-index/blob/"
    "24883a346407fa789edd942f2936380ed07877a4/README.md")
CLOUDMATRIX_INFER = "https://arxiv.org/abs/2506.12708"
DEEPSEEK_PROFILE_DATA = ("https://github.com/deepseek-ai/profile-data/blob/"
                         "449602428a1b023acb8a505d4f34fef536535db6/README.md")
DEEPSEEK_V3_REPORT = "https://arxiv.org/abs/2412.19437"


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A published setting and the document it comes from (URL first)."""

    value: T
    source: str

    def get(self, default: D) -> T | D:
        """The value, or ``default`` while its document is held out."""
        return default if held_out(self.source) else self.value


#: The library default for expert load balancing: on from EP 32. DeepSeek-V3 (arXiv
#: 2412.19437, §3.4) deploys its smallest expert-parallel unit, prefill EP32, with redundant
#: experts placed from load statistics, and decode EP320 likewise; large-EP deployments
#: run a balancer unless they say otherwise. Held out: no balancer.
LARGE_EP: Sourced[float] = Sourced(
    32.0, f"{DEEPSEEK_V3_REPORT}; §3.4 (redundant experts from EP32 prefill)")

#: ``cuda_graph_config.batch_sizes`` of TensorRT-LLM's perf-overview ``llm_options.yml``
TRTLLM_BENCH_GRAPH_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096,
                              8192)
#: ``$num_requests`` by (ISL, OSL) of the perf-overview dataset table
TRTLLM_BENCH_REQUESTS = ((1024, 1024, 3000), (8192, 1024, 1500), (1024, 8192, 1500),
                         (32768, 1024, 1000), (1024, 32768, 1000))
#: trtllm-bench's quick start queues 3000 requests (perf-benchmarking.md)
DEFAULT_OFFLINE_REQUESTS = Sourced(
    3000, f"{TRTLLM_PERF_BENCHMARKING}; quick start, prepare_dataset.py --num-requests 3000")


#: DeepSeek Day 6, 24-h production statistics: input tokens (cache hits included), the
#: on-disk KV-cache hits among them, output tokens, mean KV length per output token
DAY6_INPUT_TOKENS = 608e9
DAY6_CACHE_HIT_TOKENS = 342e9
DAY6_OUTPUT_TOKENS = 168e9
DAY6_KV_PER_OUTPUT_TOKEN = 4989.0


def deepseek_production_request() -> tuple[int, int, int]:
    """(prompt, output, cached prompt) tokens of DeepSeek's mean production request, from
    the Day-6 totals: prompts are I = 608 / 168 O long, and the mean KV length an output
    token attends to is I + O / 2 = 4,989, so O = 4,989 / (608 / 168 + 1 / 2) = 1,211,
    I = 4,383, of which 342 / 608 = 56.3 % hit the prefix cache (2,466). Assumes requests
    of that one mean shape (the distribution is not published)."""
    ratio = DAY6_INPUT_TOKENS / DAY6_OUTPUT_TOKENS
    out = DAY6_KV_PER_OUTPUT_TOKEN / (ratio + 0.5)
    inp = ratio * out
    return round(inp), round(out), round(inp * DAY6_CACHE_HIT_TOKENS / DAY6_INPUT_TOKENS)


@dataclass(frozen=True, kw_only=True)
class ServiceProfile:
    """A production service's published operating point (``infer.service_load``; units in
    the names)."""

    output_speed_tokens_per_s: float  #: mean per-user output speed
    decode_batch_per_rank: int  #: sequences a decode rank is configured for
    decode_ep: int  #: decode instance: attention DP = EP degree
    decode_mtp: int  #: speculative (MTP) tokens a decode step
    prefill_tokens_per_rank: int  #: prompt tokens one prefill forward carries a rank


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """Framework behaviour that enters ``InferOptions`` and the benchmark's semantics."""

    name: str
    #: expert placement balanced by load (``imbalance``); None: the library default
    eplb: Sourced[bool] | None = None
    #: decode CUDA graphs with padding; None: none
    graph_batch_sizes: Sourced[tuple[int, ...]] | None = None
    #: two-batch overlap as the benchmark ran it; None: whichever is faster
    two_batch_overlap: Sourced[bool] | None = None
    #: an offline benchmark: requests queued at t = 0, by (ISL, OSL, requests) rows
    offline_requests: Sourced[tuple[tuple[int, int, int], ...]] | None = None
    #: scheduler limits derived by trtllm-bench (``infer.trtllm_bench``)
    trtllm_bench_scheduler: bool = False
    #: the service's published mean request (prompt, output, cached prompt tokens), for a
    #: case of that service that states no prompt length. An input describing the measured
    #: run, not a calibration: it is not held out with its document (a held-out case is
    #: still predicted from its own inputs).
    request: Sourced[tuple[int, int, int]] | None = None
    #: the expert-parallel kernel library the runtime's benchmark ran (a name in
    #: ``calibration/collectives.yaml`` ``ep_libraries``); None or held out: the newest
    #: library calibrated on the system's fabrics
    ep_library: Sourced[str] | None = None
    #: the runtime's published runs route every token to uniformly random experts (a
    #: simulated perfect expert balance): imbalance 1. An input describing the measured
    #: run, not a calibration: it is not held out with its document.
    balanced_routing: Sourced[bool] | None = None
    #: a production service whose published throughputs are day averages
    #: (``infer.service_load``): its operating point. An input describing the measured run,
    #: not a calibration: it is not held out with its document.
    service: Sourced[ServiceProfile] | None = None
    #: attention-DP MoE exchanged by all-gather + reduce-scatter where EP <= top_k
    #: (``InferOptions.moe_allgather``); None or held out: dispatch / combine kernels
    moe_allgather: Sourced[bool] | None = None
    #: the layer GEMMs the runtime's published NVFP4 checkpoints of MLA models keep in BF16
    #: (``InferOptions.bf16_gemms``). An input describing the measured run's checkpoint,
    #: not a calibration: it is not held out with its document.
    mla_fp4_bf16_gemms: Sourced[tuple[str, ...]] | None = None

    def routes_balanced(self) -> bool:
        """Whether the runtime's runs simulate perfectly balanced expert routing."""
        return bool(self.balanced_routing.value) if self.balanced_routing is not None \
            else False

    def ep_library_name(self) -> str | None:
        """The runtime's EP kernel library, or None (its document held out, or none named)."""
        return self.ep_library.get(None) if self.ep_library is not None else None

    def allgather_moe(self) -> bool:
        """Whether the runtime's attention-DP MoE all-gathers tokens where EP <= top_k."""
        return self.moe_allgather.get(False) if self.moe_allgather is not None else False

    def bf16_gemms_for(self, is_mla: bool, precision: str) -> tuple[str, ...]:
        """The layer GEMMs whose weights stay BF16 in the runtime's checkpoint of a model
        (MLA or not) stored in ``precision``: its NVFP4 MLA checkpoints' projections."""
        if self.mla_fp4_bf16_gemms is None or not is_mla or precision != "fp4":
            return ()
        return self.mla_fp4_bf16_gemms.value

    def service_profile(self) -> ServiceProfile | None:
        """The service's day-average operating point, or None (not a production service)."""
        return self.service.value if self.service is not None else None

    def request_shape(self) -> tuple[int, int, int] | None:
        return self.request.value if self.request is not None else None

    def eplb_for(self, ep: int) -> bool:
        """Whether experts are placed by load for an expert-parallel degree ``ep``."""
        default = ep >= LARGE_EP.get(math.inf)
        return self.eplb.get(default) if self.eplb is not None else default

    def tbo(self) -> bool | None:
        """Two-batch overlap on / off as the runtime runs it (None: whichever is faster)."""
        return self.two_batch_overlap.get(None) if self.two_batch_overlap is not None \
            else None

    def graphs(self) -> tuple[int, ...]:
        """Captured decode batches (empty: no padding)."""
        return self.graph_batch_sizes.get(()) if self.graph_batch_sizes is not None else ()

    def requests_for(self, input_len: int, output_len: int) -> int | None:
        """Requests an offline run of this shape queues (None: not an offline runtime, or
        no count survives the hold-out). The table row nearest in log ISL and log OSL."""
        if self.offline_requests is None:
            return None
        rows = self.offline_requests.get(())
        if not rows:
            return DEFAULT_OFFLINE_REQUESTS.get(0) or None
        best = min(rows, key=lambda r: abs(math.log(input_len / r[0]))
                   + abs(math.log(output_len / r[1])))
        return best[2]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(s.source for s in (self.eplb, self.graph_batch_sizes,
                                        self.two_batch_overlap, self.offline_requests,
                                        self.request, self.ep_library, self.balanced_routing,
                                        self.service, self.moe_allgather,
                                        self.mla_fp4_bf16_gemms)
                     if s is not None)


TRTLLM_BENCH = Runtime(
    name="TensorRT-LLM trtllm-bench",
    eplb=Sourced(False, f"{TRTLLM_PERF_OVERVIEW}; llm_options.yml (no moe load_balancer)"),
    graph_batch_sizes=Sourced(TRTLLM_BENCH_GRAPH_BATCHES,
                              f"{TRTLLM_PERF_OVERVIEW}; llm_options.yml cuda_graph_config"),
    two_batch_overlap=Sourced(False, f"{TRTLLM_PERF_OVERVIEW}; llm_options.yml (no "
                                     "micro-batch overlap option)"),
    offline_requests=Sourced(TRTLLM_BENCH_REQUESTS,
                             f"{TRTLLM_PERF_OVERVIEW}; Preparing a Dataset, $num_requests"),
    trtllm_bench_scheduler=True,
    moe_allgather=Sourced(True, TRTLLM_MOE_ALLGATHER),
    mla_fp4_bf16_gemms=Sourced(MLA_BF16_GEMMS, MODELOPT_MLA_BF16))
SGLANG = Runtime(name="SGLang", eplb=Sourced(
    True, f"{SGLANG_LARGE_EP}; Evaluation, Experimental Setup (EPLB matching the data)"))
#: DeepSeek's online service (Day 6 write-up, 202502OpenSourceWeek/day_6_one_more_thing_
#: deepseekV3R1_inference_system_overview.md): mean output speed 20-22 tokens/s (21), decode
#: EP144; profile-data: decode 128 requests a GPU and prefill 16K tokens a GPU, "in line
#: with" / "closely matching" the online deployment; MTP one draft token (DeepSeek-V3 report
#: §5.4.3, MTP for speculative decoding)
DEEPSEEK_SERVICE = ServiceProfile(output_speed_tokens_per_s=21.0, decode_batch_per_rank=128,
                                  decode_ep=144, decode_mtp=1, prefill_tokens_per_rank=16384)
DEEPSEEK = Runtime(
    name="DeepSeek inference system",
    eplb=Sourced(True, f"{DEEPSEEK_DAY6}; Day 6 (EPLB, redundant experts)"),
    request=Sourced(deepseek_production_request(),
                    f"{DEEPSEEK_DAY6}; Day 6 production statistics (608B input, 342B cache "
                    "hits, 168B output, KV length 4,989 per output token)"),
    service=Sourced(DEEPSEEK_SERVICE,
                    f"{DEEPSEEK_DAY6}; Day 6 (average output speed 20-22 tokens/s, decode "
                    f"EP144, nodes scaled with the load); {DEEPSEEK_PROFILE_DATA} (decode 128 "
                    "requests / prefill 16K tokens a GPU)"))
#: DeepSeek's published profile runs (profile-data): "we simulate an absolutely balanced MoE
#: routing strategy for profiling" (README, introduction)
DEEPSEEK_PROFILE = Runtime(
    name="DeepSeek inference system (profile run)",
    eplb=Sourced(True, f"{DEEPSEEK_DAY6}; Day 6 (EPLB, redundant experts)"),
    balanced_routing=Sourced(True, f"{DEEPSEEK_PROFILE_DATA}; introduction (absolutely "
                                   "balanced MoE routing simulated for profiling)"))
CLOUDMATRIX = Runtime(
    name="CloudMatrix-Infer",
    eplb=Sourced(True, f"{CLOUDMATRIX_INFER}; redundant experts placed by load (EPLB)"),
    ep_library=Sourced("cloudmatrix_infer-2025-06",
                       f"{CLOUDMATRIX_INFER}; its own FusedDispatch / FusedCombine kernels "
                       "(AIV-Direct over UB), measured in its operator evaluation"))
DEFAULT = Runtime(name="default")

#: lower-case substrings of a case's ``framework`` text, first match wins
REGISTRY: tuple[tuple[tuple[str, ...], Runtime], ...] = (
    (("trtllm-bench", "tensorrt-llm", "tensorrt_llm", "trt-llm"), TRTLLM_BENCH),
    (("cloudmatrix",), CLOUDMATRIX),
    (("sglang",), SGLANG),
    (("deepseek inference system (profile",), DEEPSEEK_PROFILE),
    (("deepseek",), DEEPSEEK),
)


def runtime_for(framework: str | None) -> Runtime:
    """The runtime a case's ``framework`` text names (``DEFAULT`` when none matches)."""
    fw = (framework or "").lower()
    for keys, rt in REGISTRY:
        if any(k in fw for k in keys):
            return rt
    return DEFAULT
