"""Benchmark: what a prediction's band, evidence and extrapolation cost.

Times one warm training-layout evaluation (Llama 3.1 405B on 16,384 H100) with and without
``annotate_train`` in the same run, and prints the ratio (target: bands add under 5 %), then
the leave-one-source-out validation of the packaged public cases.
"""

from __future__ import annotations

import time

from superpod import api
from superpod.train.plan import TrainPlan
from superpod.train.step import TrainResult, evaluate_train
from superpod.trust.annotate import annotate_train
from superpod.validate.cases import PUBLIC_CASES
from superpod.validate.runner import validate_file
from superpod.workload.model import load_model

REPEATS = 300


def main() -> None:
    s = api.system("dgx-h100", 16384)
    cat = api.catalog()
    m = load_model("llama3.1-405b")
    plan = TrainPlan(tp=8, pp=16, vpp=2, dp=128, micro_batch=1, global_batch=2048,
                     seq_len=8192, sequence_parallel=True, recompute="full",
                     pp_schedule="interleaved")
    res = evaluate_train(s, m, plan)
    assert isinstance(res, TrainResult)
    annotate_train(res.to_dict(), s, cat, m, "bf16")  # warm the loaders
    t = time.perf_counter()
    for _ in range(REPEATS):
        evaluate_train(s, m, plan).to_dict()  # type: ignore[union-attr]
    base = (time.perf_counter() - t) / REPEATS
    t = time.perf_counter()
    for _ in range(REPEATS):
        r = evaluate_train(s, m, plan)
        annotate_train(r.to_dict(), s, cat, m, "bf16")  # type: ignore[union-attr]
    with_bands = (time.perf_counter() - t) / REPEATS
    print("bands on one warm training evaluation, Llama 3.1 405B on 16,384 H100")
    print(f"  baseline: evaluate + to_dict      {base * 1e3:8.3f} ms")
    print(f"  with band, evidence, extrapolates {with_bands * 1e3:8.3f} ms  "
          f"(+{(with_bands / base - 1) * 100:.1f} %; target < 5 %)")
    t = time.perf_counter()
    validate_file(str(PUBLIC_CASES))
    ins = time.perf_counter() - t
    t = time.perf_counter()
    out = validate_file(str(PUBLIC_CASES), cross_validate=True)
    cv = time.perf_counter() - t
    print(f"validate: in-sample {ins:.2f} s; with leave-one-source-out {cv:.2f} s "
          f"({cv / ins:.1f}x); sources {len(out['cross_validation']['by_source'])}")


if __name__ == "__main__":
    main()
