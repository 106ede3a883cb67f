"""The request-level simulator: agrees with the iteration model, Little's law, seeded."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from superpod import api
from superpod.errors import SpecError
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.iteration import Iteration, iteration
from superpod.infer.simulate import Requests, poisson_requests, simulate, trace_requests
from superpod.workload.model import load_model

L8 = load_model("llama3-8b")
L70 = load_model("llama3-70b")
FP8 = InferOptions(precision="fp8", kv_precision="fp8")


def test_saturated_decode_matches_the_iteration_model() -> None:
    """64 requests arriving together: one prefill chunk, then ~2,000 decode steps at batch
    64 while the KV grows from 128 to 2,128 tokens; TPOT is the decode step at the mean."""
    s = api.system("dgx-h100", 8)
    lay = ServingLayout(tp=8)
    n, inp, out = 64, 128, 2000
    reqs = Requests(np.zeros(n), np.full(n, inp), np.full(n, out))
    res = simulate(s, L70, lay, FP8, reqs, max_batch=n)
    assert res.finished == n
    it = iteration(s, L70, lay, FP8, phase="decode", batch=n, context=inp + out / 2)
    assert isinstance(it, Iteration)
    assert res.tpot_s[50] == pytest.approx(it.time_s, rel=0.05)
    assert res.output_tokens_per_s == pytest.approx(n * out / res.duration_s)


def test_littles_law_and_throughput_at_moderate_load() -> None:
    s = api.system("dgx-h100", 8)
    rate, duration = 20.0, 120.0
    reqs = poisson_requests(rate, duration, 512, 128, seed=3)
    res = simulate(s, L8, ServingLayout(dp=8), FP8, reqs)
    assert res.finished == len(reqs)
    # L = lambda W: time-averaged requests in the system vs arrival rate x mean latency
    lam = len(reqs) / res.duration_s
    assert res.mean_in_system == pytest.approx(lam * res.mean_latency_s, rel=0.02)
    assert lam == pytest.approx(rate, rel=0.1)
    # below saturation everything offered is served
    assert res.output_tokens_per_s == pytest.approx(lam * 128, rel=0.02)
    for d in (res.ttft_s, res.tpot_s, res.e2e_s):
        assert d[50] <= d[90] <= d[99]


def test_seeded_and_reproducible() -> None:
    s = api.system("dgx-h100", 8)
    a = simulate(s, L8, ServingLayout(dp=8), FP8, poisson_requests(30, 30, 256, 64, seed=7))
    b = simulate(s, L8, ServingLayout(dp=8), FP8, poisson_requests(30, 30, 256, 64, seed=7))
    c = simulate(s, L8, ServingLayout(dp=8), FP8, poisson_requests(30, 30, 256, 64, seed=8))
    da, db = a.to_dict(), b.to_dict()
    assert "wall_s" not in da  # wall-clock time is not a result: reruns are byte-identical
    assert da == db
    assert c.to_dict()["e2e_s"] != da["e2e_s"]


def test_overload_queues_and_throughput_saturates() -> None:
    s = api.system("dgx-h100", 8)
    light = simulate(s, L70, ServingLayout(tp=8), FP8,
                     poisson_requests(2, 60, 1000, 200, seed=1))
    heavy = simulate(s, L70, ServingLayout(tp=8), FP8,
                     poisson_requests(200, 60, 1000, 200, seed=1))
    assert heavy.ttft_s[50] > 10 * light.ttft_s[50]
    assert heavy.output_tokens_per_s > light.output_tokens_per_s


def test_trace_files(tmp_path: Path) -> None:
    rows = [{"input_len": 100 + i, "output_len": 20, "arrival_s": 0.1 * i} for i in range(50)]
    js = tmp_path / "t.json"
    js.write_text(json.dumps(rows))
    cv = tmp_path / "t.csv"
    cv.write_text("input_len,output_len\n" + "".join(f"{100 + i},20\n" for i in range(50)))
    a = trace_requests(js)
    assert len(a) == 50 and math.isclose(float(a.arrival_s[-1]), 4.9)
    b = trace_requests(cv, rate_per_s=10, seed=1)
    assert len(b) == 50 and (np.diff(b.arrival_s) >= 0).all()
    with pytest.raises(SpecError):
        trace_requests(cv)  # no arrival times and no rate
    bad = tmp_path / "bad.csv"
    bad.write_text("input,output\n1,2\n")
    with pytest.raises(SpecError):
        trace_requests(bad, rate_per_s=1)
    s = api.system("dgx-h100", 8)
    res = simulate(s, L8, ServingLayout(dp=8), FP8, a)
    assert res.finished == 50


def test_steady_decode_runs_taken_at_once_equal_step_by_step(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import superpod.infer.simulate as sim

    s = api.system("dgx-h100")
    reqs = poisson_requests(4, 20, 512, 700, seed=3)
    fast = simulate(s, L8, ServingLayout(dp=8), FP8, reqs).to_dict()
    monkeypatch.setattr(sim, "_steady_steps", lambda *a: 1)
    slow = simulate(s, L8, ServingLayout(dp=8), FP8, reqs).to_dict()
    assert fast["steps"] == slow["steps"]
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        for p, v in slow[key].items():
            assert fast[key][p] == pytest.approx(v, rel=1e-9), (key, p)
    assert fast["throughput_per_bin"] == pytest.approx(slow["throughput_per_bin"], rel=1e-9)
