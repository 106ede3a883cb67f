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


def ep_imbalance(experts: int, ep: int, *, eplb: bool = False, redundant: int = 0) -> float:
    """Busiest expert rank's load over the mean, ``gamma`` (module docstring).

    ``experts``: routed experts; ``redundant``: extra expert slots (EPLB replicas).
    """
    if ep <= 1 or experts <= 0:
        return 1.0
    per_rank = max(1.0, (experts + redundant) / ep)
    return 1.0 + expert_dispersion(eplb) / math.sqrt(per_rank) * expected_max_normal(ep)
