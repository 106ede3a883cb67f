"""Expert-parallel load imbalance: how much more work the busiest expert rank gets.

A router does not spread tokens evenly: some experts are hot, and they stay hot for tens to
hundreds of steps (TensorRT-LLM, "Scaling Expert Parallelism in TensorRT-LLM, Part 1",
docs/source/blogs/tech_blog/blog4, 2025). Every MoE layer waits for its busiest rank, so the
grouped GEMMs and the dispatch / combine of that rank set the layer's time.

Model. An expert's load per layer and step has a coefficient of variation ``c`` (standard
deviation over the mean). A rank holding ``n = E_slots / ep`` experts placed without regard
to their load sums ``n`` roughly independent loads, so its coefficient of variation is
``c / sqrt(n)`` (at least one expert a rank: ``n >= 1``). The busiest of ``ep`` ranks then
carries

    gamma = max / mean = 1 + (c / sqrt(n)) z(ep),    z(N) = E[max of N standard normals]

(z(1) = 0: a single rank has nothing to wait for; z(8) = 1.42, z(32) = 2.07).

Calibration, one measurement with provenance (blog4, Table 1: DeepSeek-R1, EP32 on 32
GB200s, 256 routed experts, local batch 256, averaged over layers and iterations):

* without a load balancer, 8 experts a rank: (max - mean) / mean = 1.564, so
  ``c = 1.564 sqrt(8) / z(32) = 2.14`` (the heavy tail of hot experts is in ``c``; the
  measured per-expert standard deviation over the mean is 1.28 before the tail);
* with EPLB (DeepSeek's Expert Parallelism Load Balancer: hot experts replicated and
  placed by load; github.com/deepseek-ai/EPLB), 9 slots a rank: 0.109, so
  ``c = 0.109 sqrt(9) / z(32) = 0.158`` - the residual imbalance of a balancer that works
  from past statistics.

Held out (leave-one-source-out without blog4): no measured dispersion remains, and the
library falls back to a balanced load (gamma = 1) - what a model with no router statistics
can say.

Prefill: prompts routed alike. A prompt's tokens share a topic and language, so they favour
the same experts; a prefill micro-batch carries few prompts (SGLang and DeepSeek: 2 of 4,096
tokens a rank), and the expert load of one forward deviates from the long-run statistics a
balancer places by (the lmsys large-scale-EP blog, "EPLB for Real-World Serving": larger
batches reduce random fluctuations in expert usage; "even with EPLB, some imbalance is
inevitable"). With ``S`` prompts in the EP group's micro-batch, each adding an independent
per-expert deviation of coefficient of variation ``c_seq``,

    c_prefill^2 = c^2 + c_seq^2 / S

(decode steps carry one token a sequence and thousands of sequences: the term vanishes,
blog4's decode-sized measurement is ``c``). ``c_seq`` comes from the two published
default-vs-perfect-balance prefill pairs (each EP32, 256 experts, two-batch overlap), as the
busiest-rank excess that makes this library's prefill time ratio (default over perfect)
equal the measured one:

* SGLang on 4 x 8 H100 (lmsys blog, "Overall Throughput": 50,302 vs 59,337 tokens/s a node,
  16,384 tokens a GPU at prompt length 4,096; S = 64 prompts a micro-batch): gamma 1.30;
* CloudMatrix-Infer on 16 910C (32 dies; arXiv 2506.12708, prefill 5,655 default vs 6,688
  tokens/s/NPU perfect balance, 16,384 tokens an NPU at 4,096; S = 32): gamma 1.38.

They give ``c_seq`` = 3.2 and 3.0 - two independent systems agreeing on one router
statistic. Each is held out with its own document (the other then stands alone); with both
held out the term is 0.

Assumptions: the sqrt(n) aggregation and the Gaussian maximum carry the EP32 measurement to
other EP sizes; other routers (Qwen3, gpt-oss) are taken to be as skewed as DeepSeek-R1's
(no published per-rank statistics); Poisson noise of small batches is ignored (at the
measured point it is < 0.1 of the mean per expert).
"""

from __future__ import annotations

import math
from functools import lru_cache

from superpod.trust.holdout import held_out

SOURCE = ("https://github.com/NVIDIA/TensorRT-LLM/blob/956a4f234d7d4dc8bb94fa9a3bb06798ef554515/"
          "docs/source/blogs/tech_blog/blog4_Scaling_Expert_Parallelism_in_TensorRT-LLM.md; "
          "Table 1 (DeepSeek-R1 EP32 imbalance ratio, with and without EPLB)")
#: blog4 Table 1, imbalance ratio (max - mean) / mean by rank, DeepSeek-R1 EP32
MEASURED_EP = 32
MEASURED_SLOTS_PER_RANK = {False: 8, True: 9}  #: no EPLB: 256 / 32; EPLB: 288 / 32
MEASURED_EXCESS = {False: 1.564, True: 0.109}

SGLANG_LARGE_EP = ("https://github.com/lm-sys/lm-sys.github.io/blob/"
                   "2db4e4042b31f3c3c9f4f93068ae80946d25a115/blog/2025-05-05-large-scale-ep.md")
CLOUDMATRIX_INFER = "https://arxiv.org/abs/2506.12708"
#: published default-vs-perfect prefill pairs (module docstring): (source, EP degree, routed
#: experts, prompts in the EP group's micro-batch, busiest-rank load over the mean at which
#: this library's prefill time ratio equals the measured one, with EPLB)
PREFILL_PAIRS: tuple[tuple[str, int, int, int, float], ...] = (
    (f"{SGLANG_LARGE_EP}; Overall Throughput (default 50,302 vs simulated perfect EPLB "
     "59,337 tokens/s per node, EP32, 16,384 tokens per GPU at 4,096)", 32, 256, 64, 1.30),
    (f"{CLOUDMATRIX_INFER}; prefill 5,655 (default) vs 6,688 (perfect expert load balance) "
     "tokens/s/NPU, EP32 dies, 16,384 tokens per NPU at 4,096", 32, 256, 32, 1.38),
)


@lru_cache(maxsize=512)
def expected_max_normal(n: int) -> float:
    """E[max of n independent standard normals] (z(1) = 0, z(2) = 1/sqrt(pi)), by
    quadrature of ``int x n phi(x) Phi(x)^(n-1) dx`` over [-8, 8]."""
    if n <= 1:
        return 0.0
    steps = 4000
    lo, hi = -8.0, 8.0
    h = (hi - lo) / steps
    total = 0.0
    for i in range(steps + 1):
        x = lo + i * h
        pdf = math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        cdf = 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
        w = 0.5 if i in (0, steps) else 1.0
        total += w * x * n * pdf * cdf ** (n - 1)
    return total * h


def expert_dispersion(eplb: bool) -> float:
    """Coefficient of variation ``c`` of one expert's load (module docstring); 0 while its
    measurement is held out."""
    if held_out(SOURCE):
        return 0.0
    n = MEASURED_SLOTS_PER_RANK[eplb]
    return MEASURED_EXCESS[eplb] * math.sqrt(n) / expected_max_normal(MEASURED_EP)


def prompt_dispersion_sq() -> float:
    """``c_seq^2``: one prompt's per-expert deviation, squared (module docstring, "Prefill"),
    the mean over the published pairs not held out (0 with none); derived with the EPLB
    ``c`` of this fold so that each pair's gamma is reproduced."""
    c = expert_dispersion(True)
    vals = []
    for source, ep, experts, prompts, gamma in PREFILL_PAIRS:
        if held_out(source):
            continue
        c_eff = (gamma - 1.0) * math.sqrt(max(1.0, experts / ep)) / expected_max_normal(ep)
        vals.append(max(0.0, c_eff**2 - c**2) * prompts)
    return sum(vals) / len(vals) if vals else 0.0


def ep_imbalance(experts: int, ep: int, *, eplb: bool = False, redundant: int = 0,
                 prompts: float | None = None) -> float:
    """Busiest expert rank's load over the mean, ``gamma`` (module docstring).

    ``experts``: routed experts; ``redundant``: extra expert slots (EPLB replicas);
    ``prompts``: prefill only, the prompts in the EP group's micro-batch (None: decode, no
    per-prompt term).
    """
    if ep <= 1 or experts <= 0:
        return 1.0
    per_rank = max(1.0, (experts + redundant) / ep)
    c = expert_dispersion(eplb)
    if prompts is not None and prompts > 0:
        c = math.sqrt(c * c + prompt_dispersion_sq() / prompts)
    return 1.0 + c / math.sqrt(per_rank) * expected_max_normal(ep)
