"""Benchmark: speed of the training model.

Prints the time of one layout evaluation (first call and warm, memoised kernels and
collectives), against a baseline measured in the same run (building the plan object), and
the full ``plan train`` search for Llama 3.1 405B on 16,384 H100 (global batch 2,048 x 8,192
tokens), with the number of layouts evaluated.
"""

from __future__ import annotations

import time

from superpod import api
from superpod.train.plan import TrainPlan
from superpod.train.search import plan_train
from superpod.train.step import evaluate_train
from superpod.workload.model import load_model


def main() -> None:
    s = api.system("dgx-h100", 16384)
    m = load_model("llama3.1-405b")
    plan = TrainPlan(tp=8, pp=16, vpp=2, dp=128, micro_batch=1, global_batch=2048,
                     seq_len=8192, sequence_parallel=True, recompute="full",
                     pp_schedule="interleaved")
    t = time.perf_counter()
    for _ in range(1000):
        TrainPlan(tp=8, pp=16, dp=128, global_batch=2048, seq_len=8192)
    base = (time.perf_counter() - t) / 1000
    t = time.perf_counter()
    evaluate_train(s, m, plan)
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(200):
        evaluate_train(s, m, plan)
    warm = (time.perf_counter() - t) / 200
    print("one training-layout evaluation, Llama 3.1 405B on 16,384 H100")
    print(f"  baseline: build the plan   {base * 1e6:9.1f} us")
    print(f"  first evaluation           {first * 1e3:9.2f} ms")
    print(f"  warm evaluation            {warm * 1e3:9.2f} ms  ({warm / base:.0f}x baseline)")
    t = time.perf_counter()
    res = plan_train(s, m, 2048, 8192, "bf16", top=3)
    wall = time.perf_counter() - t
    print(f"plan train, 405B on 16,384 H100: {wall:.1f} s for {res.evaluated:,} layouts "
          f"({wall / res.evaluated * 1e3:.2f} ms each); infeasible {dict(res.infeasible)}")
    for c in res.candidates:
        p = c.plan
        print(f"  tp={p.tp} pp={p.pp} vpp={p.vpp} cp={p.cp} dp={p.dp} mb={p.micro_batch} "
              f"zero={p.zero} recompute={p.recompute}: {c.step_time_s:.2f} s/step, "
              f"MFU {c.mfu:.1%}")


if __name__ == "__main__":
    main()
