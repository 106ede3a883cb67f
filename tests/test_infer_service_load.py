"""A production service's day-average load (``infer.service_load``): the decode pool's
occupancy at the published per-user speed, and the prefill pool's delivered share."""

from __future__ import annotations

import dataclasses

import pytest

from superpod import api
from superpod.errors import Infeasible
from superpod.hardware.system import System
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.runtime import DEEPSEEK, ServiceProfile, runtime_for
from superpod.infer.service_load import decode_occupancy, service_prefill
from superpod.infer.serving import Workload, serve
from superpod.workload.model import load_model

DS = load_model("deepseek-v3")
OPTS = InferOptions(precision="fp8", kv_precision="auto", eplb=True)
PROF = ServiceProfile(output_speed_tokens_per_s=21.0, decode_batch_per_rank=128,
                      decode_ep=16, decode_mtp=1, prefill_tokens_per_rank=16384)
WORK = Workload(input_len=4096, output_len=1024)


def _speed(system: System, b: int) -> float:
    lay = ServingLayout(dp=PROF.decode_ep, ep=PROF.decode_ep)
    res = serve(system, DS, lay, dataclasses.replace(OPTS, mtp=PROF.decode_mtp),
                phase="decode", batch=b * lay.dp, work=WORK, check_memory=False)
    assert not isinstance(res, Infeasible) and res.tpot_s
    return 1.0 / res.tpot_s


def test_occupancy_is_the_largest_batch_at_the_published_speed() -> None:
    s = api.system("hgx-h800", 16)
    held = decode_occupancy(s, DS, OPTS, WORK, PROF)
    assert 1 <= held <= PROF.decode_batch_per_rank
    if held < PROF.decode_batch_per_rank:  # the next batch is slower than published
        assert _speed(s, held + 1) < PROF.output_speed_tokens_per_s
    if held > 1:
        assert _speed(s, held) >= PROF.output_speed_tokens_per_s
    # a slow published speed: the configured batch; an unreachable one: a single sequence
    slow = dataclasses.replace(PROF, output_speed_tokens_per_s=0.01)
    assert decode_occupancy(s, DS, OPTS, WORK, slow) == PROF.decode_batch_per_rank
    fast = dataclasses.replace(PROF, output_speed_tokens_per_s=1e6)
    assert decode_occupancy(s, DS, OPTS, WORK, fast) == 1


def test_service_prefill_delivers_the_load_share_and_adds_up() -> None:
    s = api.system("hgx-h800", 32)
    pre = serve(s, DS, ServingLayout(dp=32, ep=32), OPTS, phase="prefill", batch=128,
                work=WORK)
    assert not isinstance(pre, Infeasible)
    day = service_prefill(pre, 0.5)
    assert day.tokens_per_s == pytest.approx(pre.tokens_per_s / 2)
    busy = sum(pre.breakdown_s.values())
    assert sum(day.breakdown_s.values()) == pytest.approx(2 * busy)  # half of it idle
    assert day.breakdown_s["idle"] == pytest.approx(busy)
    assert service_prefill(pre, 1.0).tokens_per_s == pre.tokens_per_s
    with pytest.raises(ValueError):
        service_prefill(pre, 0.0)


def test_only_the_production_service_has_a_profile() -> None:
    assert runtime_for("DeepSeek production inference system") is DEEPSEEK
    assert DEEPSEEK.service_profile() is not None
    for fw in ("DeepSeek inference system (profile run)", "SGLang", "trtllm-bench", None):
        assert runtime_for(fw).service_profile() is None
