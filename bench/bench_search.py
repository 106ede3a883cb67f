"""Benchmark: the ``plan train`` layout search.

Prints, for each target (Llama 3.1 405B on 16,384 H100; DeepSeek-V3 on CloudMatrix 384 and
on Atlas 950; each <= 5 s on 2 cores), the wall time of the full-space branch-and-bound
search, the layouts considered / evaluated / pruned / infeasible and the bound timelines;
the quick space beside it; one warm evaluation (<= 0.5 ms); and, as the baseline measured in
the same run, the exhaustive loop over a small space (Llama 3 8B on 8 H100) with the bound
search on the same space (same best step time, the ratio of their times).
``SUPERPOD_BENCH_FULL=1`` adds the README's Llama 3 70B on 64 H100.
"""

from __future__ import annotations

import os
import time

from superpod import api
from superpod.train.plan import TrainPlan
from superpod.train.search import plan_train
from superpod.train.step import evaluate_train
from superpod.workload.model import load_model

TARGETS = [("Llama 3.1 405B, 16,384 H100", "dgx-h100", 16384, "llama3.1-405b", 2048, 8192),
           ("DeepSeek-V3, CloudMatrix 384", "cloudmatrix384", None, "deepseek-v3", 1536, 4096),
           ("DeepSeek-V3, Atlas 950", "atlas-950-superpod", None, "deepseek-v3", 1536, 4096)]
EXTRA = [("Llama 3 70B, 64 H100", "dgx-h100", 64, "llama3-70b", 128, 8192)]


def timed(fn, *a, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t


def main() -> None:
    s, m = api.system("dgx-h100", 8), load_model("llama3-8b")
    full, t_exh = timed(plan_train, s, m, 16, 4096, "bf16", top=1, exhaustive=True)
    fast, t_bb = timed(plan_train, s, m, 16, 4096, "bf16", top=1)
    print("baseline: exhaustive loop, Llama 3 8B on 8 H100 (the same space)")
    print(f"  exhaustive   {t_exh:7.2f} s  {full.layouts()}")
    print(f"  bound search {t_bb:7.2f} s  {fast.layouts()}  ({t_exh / t_bb:.0f}x faster; best "
          f"{fast.candidates[0].step_time_s:.6f} s vs {full.candidates[0].step_time_s:.6f} s)")
    s405, m405 = api.system("dgx-h100", 16384), load_model("llama3.1-405b")
    plan = TrainPlan(tp=8, pp=16, vpp=2, dp=128, global_batch=2048, seq_len=8192,
                     sequence_parallel=True, recompute="full", pp_schedule="interleaved")
    evaluate_train(s405, m405, plan)
    _, warm = timed(lambda: [evaluate_train(s405, m405, plan) for _ in range(200)])
    print(f"one warm evaluation (405B layout): {warm / 200 * 1e3:.3f} ms (target 0.5 ms)")
    cases = TARGETS + (EXTRA if os.environ.get("SUPERPOD_BENCH_FULL") else [])
    for label, sid, chips, model, gb, seq in cases:
        sysm, mm = api.system(sid, chips), load_model(model)
        r = sysm.chip.devices
        res, t = timed(plan_train, sysm, mm, gb, seq, "bf16", top=5, ranks_per_chip=r)
        q, tq = timed(plan_train, sysm, mm, gb, seq, "bf16", top=5, ranks_per_chip=r,
                      space="quick")
        best = res.candidates[0].step_time_s if res.candidates else float("nan")
        qbest = q.candidates[0].step_time_s if q.candidates else float("nan")
        print(f"{label}: full {t:.2f} s (target 5 s) {res.layouts()}, "
              f"{res.bound_evaluations:,} bound timelines, best {best:.4g} s/step; "
              f"quick {tq:.2f} s, best {qbest:.4g} s/step")


if __name__ == "__main__":
    main()
