"""Serving runtimes: what a named framework does that changes a prediction.

A validation case names its ``framework`` in free text; the runtime it maps to carries the
published settings of that framework's benchmark procedure, applied to every case that names
it (never per case):

* TensorRT-LLM ``trtllm-bench`` (NVIDIA, "Perf Overview", docs/source/developer-guide/
  perf-overview.md, the ``llm_options.yml`` of every model): CUDA graphs captured for decode
  batches ``[1, 2, 4, ..., 256, 384, 512, 1024, 2048, 4096, 8192]`` with
  ``enable_padding: true`` - a decode step of ``b`` sequences a rank runs as the next
  captured size (NVIDIA, "Tuning CUDA Graph Batch Sizes for Higher Output Throughput",
  tech blog 20: up to 50 % padding waste between 1024 and 2048). No expert load balancer
  (no ``moe_config.load_balancer`` in those options).
* DeepSeek's inference system (open-infra-index, Day 6; EPLB, github.com/deepseek-ai/EPLB)
  and CloudMatrix-Infer (Zuo et al., arXiv 2506.12708: redundant experts placed by load):
  expert load balancing on.
* anything else: the library defaults (no balancer, no padding).
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``cuda_graph_config.batch_sizes`` of TensorRT-LLM's perf-overview ``llm_options.yml``
TRTLLM_BENCH_GRAPH_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096,
                              8192)


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """Framework behaviour that enters ``InferOptions``."""

    name: str
    eplb: bool = False  #: expert placement balanced by load (``imbalance``)
    graph_batch_sizes: tuple[int, ...] = ()  #: decode CUDA graphs with padding
    source: str = ""


TRTLLM_BENCH = Runtime(
    name="TensorRT-LLM trtllm-bench", graph_batch_sizes=TRTLLM_BENCH_GRAPH_BATCHES,
    source="TensorRT-LLM perf-overview.md llm_options.yml (cuda_graph_config, no "
           "load_balancer)")
DEEPSEEK = Runtime(name="DeepSeek inference system", eplb=True,
                   source="DeepSeek open-infra-index Day 6; deepseek-ai/EPLB")
CLOUDMATRIX = Runtime(name="CloudMatrix-Infer", eplb=True,
                      source="Zuo et al., arXiv 2506.12708 (redundant experts, EPLB)")
DEFAULT = Runtime(name="default")

#: lower-case substrings of a case's ``framework`` text, first match wins
REGISTRY: tuple[tuple[tuple[str, ...], Runtime], ...] = (
    (("trtllm-bench", "tensorrt-llm", "tensorrt_llm", "trt-llm"), TRTLLM_BENCH),
    (("cloudmatrix",), CLOUDMATRIX),
    (("deepseek",), DEEPSEEK),
)


def runtime_for(framework: str | None) -> Runtime:
    """The runtime a case's ``framework`` text names (``DEFAULT`` when none matches)."""
    fw = (framework or "").lower()
    for keys, rt in REGISTRY:
        if any(k in fw for k in keys):
            return rt
    return DEFAULT
