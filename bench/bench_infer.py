"""Benchmark: speed of the inference model.

Prints, against a baseline measured in the same run (building the layout and options
objects):

* one iteration estimate (DeepSeek-V3 decode, EP32 on 4 x HGX H800): first call, a new
  shape with warm kernel / collective caches, and a repeated (memoised) shape;
* one hour of Poisson traffic at 100 requests/s through the request-level simulator
  (DeepSeek-V3 on a GB200 NVL72, DP72 + EP72, MTP 1);
* ``plan infer`` for DeepSeek-R1 on a CloudMatrix 384 at TPOT <= 50 ms.
"""

from __future__ import annotations

import time

from superpod import api
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.iteration import Iteration, iteration
from superpod.infer.search import plan_infer
from superpod.infer.serving import Workload
from superpod.infer.simulate import poisson_requests, simulate
from superpod.workload.model import load_model


def _iteration_bench() -> None:
    s = api.system("hgx-h800", 32)
    m = load_model("deepseek-v3")
    t = time.perf_counter()
    for _ in range(1000):
        ServingLayout(dp=32, ep=32)
        InferOptions(precision="fp8")
    base = (time.perf_counter() - t) / 1000
    lay, opts = ServingLayout(dp=32, ep=32), InferOptions(precision="fp8", mtp=1)
    t = time.perf_counter()
    first_it = iteration(s, m, lay, opts, phase="decode", batch=2048, context=2048)
    first = time.perf_counter() - t
    assert isinstance(first_it, Iteration), first_it
    batches = range(2048 + 32, 2048 + 32 * 101, 32)  # a new shape every call (feasible)
    t = time.perf_counter()
    for b in batches:
        assert isinstance(iteration(s, m, lay, opts, phase="decode", batch=b, context=2048),
                          Iteration)
    fresh = (time.perf_counter() - t) / len(batches)
    t = time.perf_counter()
    for _ in range(2000):
        iteration(s, m, lay, opts, phase="decode", batch=2048, context=2048)
    memo = (time.perf_counter() - t) / 2000
    print("one iteration estimate, DeepSeek-V3 decode, EP32 on 32 H800")
    print(f"  baseline: build layout + options {base * 1e6:9.1f} us")
    print(f"  first call                       {first * 1e3:9.2f} ms")
    print(f"  new shape, warm caches           {fresh * 1e3:9.3f} ms  ({fresh / base:.0f}x "
          "baseline)")
    print(f"  repeated shape (memoised)        {memo * 1e6:9.1f} us  ({memo / base:.1f}x "
          "baseline)")


def _sim_bench() -> None:
    s = api.system("gb200-nvl72", 72)
    m = load_model("deepseek-v3")
    reqs = poisson_requests(100.0, 3600.0, 2000, 500, seed=1)
    res = simulate(s, m, ServingLayout(dp=72, ep=72), InferOptions(precision="fp8", mtp=1),
                   reqs)
    print(f"simulated hour at 100 req/s (DeepSeek-V3, GB200 NVL72 DP72+EP72): "
          f"{res.wall_s:.1f} s wall for {len(reqs):,} requests, {res.steps:,} engine steps; "
          f"TTFT p50 {res.ttft_s[50] * 1e3:.0f} ms, TPOT p50 {res.tpot_s[50] * 1e3:.1f} ms, "
          f"p99 e2e {res.e2e_s[99]:.2f} s")


def _plan_bench() -> None:
    s = api.system("cloudmatrix384", 384)
    m = load_model("deepseek-v3")
    t = time.perf_counter()
    # CloudMatrix-Infer places experts by load (EPLB), as the paper deploys it
    res = plan_infer(s, m, InferOptions(precision="int8", mtp=1, eplb=True),
                     Workload(input_len=2048, output_len=1024), slo_tpot_s=0.05, top=3)
    wall = time.perf_counter() - t
    print(f"plan infer, DeepSeek-R1 on CloudMatrix 384 at TPOT <= 50 ms: {wall:.1f} s for "
          f"{res.evaluated:,} layouts; infeasible {dict(res.infeasible)}")
    for c in res.candidates:
        pre = c.extra.get("prefill_layout", {})
        pools = (f" (prefill tp={pre['tp']} dp={pre['dp']} ep={pre['ep']} pp={pre['pp']}: "
                 f"{c.extra['prefill_chips']} + {c.extra['decode_chips']} decode chips)"
                 if pre else "")
        ttft = f", TTFT {c.ttft_s:.2f} s" if c.ttft_s is not None else ""
        print(f"  {c.phase} {c.layout.label()}{pools}: batch {c.batch:,}, "
              f"{c.tokens_per_s_per_chip:,.0f} tok/s/chip, TPOT {c.tpot_s * 1e3:.1f} ms{ttft}")


def main() -> None:
    _iteration_bench()
    _sim_bench()
    _plan_bench()


if __name__ == "__main__":
    main()
