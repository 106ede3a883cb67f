"""Serving prefill at large expert parallelism: the per-prompt expert-imbalance term
(closed form, calibration round trip, hold-out) and the static compute-unit partition of
prefill two-batch overlap."""

from __future__ import annotations

import dataclasses
import math

from superpod import api
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.imbalance import (
    PREFILL_PAIRS,
    SOURCE,
    ep_imbalance,
    expected_max_normal,
    expert_dispersion,
    prompt_dispersion_sq,
)
from superpod.infer.iteration import PREFILL_PARTITION_FRACTION, Iteration, engine, iteration
from superpod.infer.runtime import DEEPSEEK, DEEPSEEK_PROFILE, runtime_for
from superpod.trust.holdout import holding_out
from superpod.trust.sources import source_key
from superpod.workload.model import load_model

DS = load_model("deepseek-v3")
FP8 = InferOptions(precision="fp8", kv_precision="fp8", eplb=True)
SGLANG_PAIR, CLOUDMATRIX_PAIR = PREFILL_PAIRS


def test_each_prefill_pair_is_reproduced_when_it_stands_alone() -> None:
    for kept, dropped in ((SGLANG_PAIR, CLOUDMATRIX_PAIR), (CLOUDMATRIX_PAIR, SGLANG_PAIR)):
        _, ep, experts, prompts, gamma = kept
        with holding_out([source_key(dropped[0])]):
            assert math.isclose(ep_imbalance(experts, ep, eplb=True, prompts=prompts), gamma,
                                rel_tol=1e-12)


def test_prompt_term_closed_form() -> None:
    # c_prefill^2 = c^2 + c_seq^2 / S;  gamma = 1 + c_prefill / sqrt(E / ep) z(ep)
    c, c_seq2 = expert_dispersion(True), prompt_dispersion_sq()
    # hand-checked: the pairs give c_seq = 3.24 and 2.98 (module docstring)
    assert 2.9**2 < c_seq2 < 3.3**2
    want = 1.0 + math.sqrt(c * c + c_seq2 / 100) / math.sqrt(8) * expected_max_normal(32)
    assert math.isclose(ep_imbalance(256, 32, eplb=True, prompts=100), want, rel_tol=1e-12)


def test_prompt_term_falls_with_prompts_to_the_decode_value() -> None:
    decode = ep_imbalance(256, 32, eplb=True)
    gammas = [ep_imbalance(256, 32, eplb=True, prompts=s) for s in (8, 32, 128, 1024, 1e7)]
    assert all(a > b for a, b in zip(gammas, gammas[1:], strict=False))
    assert math.isclose(gammas[-1], decode, rel_tol=1e-5)
    # and grows with EP size at a fixed prompt count
    assert ep_imbalance(256, 64, eplb=True, prompts=64) > ep_imbalance(256, 32, eplb=True,
                                                                         prompts=64)


def test_prompt_term_held_out_with_both_sources() -> None:
    with holding_out([source_key(SGLANG_PAIR[0]), source_key(CLOUDMATRIX_PAIR[0])]):
        assert prompt_dispersion_sq() == 0.0
        assert ep_imbalance(256, 32, eplb=True, prompts=64) == ep_imbalance(256, 32,
                                                                            eplb=True)
    with holding_out([source_key(SOURCE)]):  # blog4 out: c = 0, the prompt term stays
        assert expert_dispersion(True) == 0.0
        assert ep_imbalance(256, 32, eplb=True, prompts=64) > 1.0


def _it(r: Iteration | object) -> Iteration:
    assert isinstance(r, Iteration)
    return r


def test_prefill_imbalance_uses_the_micro_batch_prompts_decode_does_not() -> None:
    s = api.system("hgx-h800", 32)
    lay = ServingLayout(dp=32, ep=32)
    eng = engine(s, DS, lay, FP8.for_chip(s.chip))
    assert math.isclose(eng.gamma(2, True), ep_imbalance(256, 32, eplb=True, prompts=64))
    assert eng.gamma(2, False) == eng.imbalance == ep_imbalance(256, 32, eplb=True)
    fixed = engine(s, DS, lay, dataclasses.replace(FP8, ep_imbalance=1.0).for_chip(s.chip))
    assert fixed.gamma(2, True) == 1.0


def test_prefill_overlap_computes_on_the_partitioned_units() -> None:
    # DeepSeek's prefill profile: computation on 108 of 132 SMs for the whole layer
    assert math.isclose(PREFILL_PARTITION_FRACTION, 24 / 132)
    s = api.system("hgx-h800", 32)
    lay = ServingLayout(dp=32, ep=32)
    on = _it(iteration(s, DS, lay, dataclasses.replace(FP8, two_batch_overlap=True),
                       phase="prefill", batch=128, context=4096))
    b = on.breakdown_s
    compute = sum(v for k, v in b.items() if k not in ("ep_comm", "tp_comm", "pp_comm"))
    # the exposed communication is at least what the lost units cost the compute stream
    assert b["ep_comm"] >= compute * (1 / (1 - PREFILL_PARTITION_FRACTION) - 1) * 0.999
    assert on.time_s >= compute / (1 - PREFILL_PARTITION_FRACTION) * 0.999


def test_deepseek_profile_runs_are_perfectly_balanced() -> None:
    rt = runtime_for("DeepSeek inference system (profile run)")
    assert rt is DEEPSEEK_PROFILE and rt.routes_balanced()
    assert runtime_for("DeepSeek production inference system") is DEEPSEEK
    assert not DEEPSEEK.routes_balanced()


def test_prefill_ep_exchange_sends_every_token_once_per_domain() -> None:
    """A prefill micro-batch's dispatch + combine on 4 H800 nodes (EP32) is DeepEP's
    internode table scaled to its tokens, each token counted once per destination node
    (the network model's de-duplication) and no second time: hand-checked from the README
    (de8cfca, EP32: 58 GB/s dispatch, 57 GB/s combine, RDMA bandwidth counting
    ``4 (1 - (3/4)^8)`` = 3.60 node rows a token), 8,192 tokens x 3.60 x 7,168 B x
    (1 / 58 + 2 / 57) / 1e9 = 11.06 ms."""
    s = api.system("hgx-h800", 32)
    lay = ServingLayout(dp=32, ep=32)
    eng = engine(s, DS, lay, FP8.for_chip(s.chip))
    rows = 8192 * 4 * (1 - 0.75**8) * 7168
    want = rows * (1 / 58e9 + 2 / 57e9)
    assert math.isclose(want, 11.06e-3, rel_tol=1e-3)
    t, holds_units = eng._ep_comm(8192.0, 1.0)
    assert holds_units  # normal kernels at prefill sizes
    assert math.isclose(t, want, rel_tol=0.03)  # the fits reproduce the table to ~1 %
    # linear in tokens (no fixed cost in the normal-mode fits) and in the busiest rank's load
    half, _ = eng._ep_comm(4096.0, 1.0)
    assert math.isclose(t, 2 * half, rel_tol=1e-3)
    assert math.isclose(eng._ep_comm(8192.0, 1.2)[0], 1.2 * t, rel_tol=1e-12)


def test_expert_imbalance_scales_the_exchanged_bytes_not_the_kernel_latency() -> None:
    """The busiest expert rank receives and returns ``gamma`` x the mean rows: the exchange
    grows by ``(gamma - 1) x tokens x`` its slope in tokens (same kernel mode), and a fixed
    latency stays unscaled. Low-latency decode at 256 tokens a rank x 1.3 stays in the
    low-latency mode (the rank's batch picks the kernels, not its received rows)."""
    s = api.system("dgx-h100", 72)
    eng = engine(s, DS, ServingLayout(dp=72, ep=72), FP8.for_chip(s.chip))
    t1, normal = eng._ep_comm(256.0, 1.0)
    assert not normal
    t_half, _ = eng._ep_comm(128.0, 1.0)
    slope = (t1 - t_half) / 128
    t13, _ = eng._ep_comm(256.0, 1.3)
    assert math.isclose(t13, t1 + 0.3 * 256 * slope, rel_tol=1e-12)
    assert t1 < t13 <= 1.3 * t1 + 1e-15  # never more than the bytes' share grows
    # where the exchange has a fixed latency (Ascend decode kernels on CloudMatrix 384)
    # the imbalance leaves it alone: strictly less than scaling the whole time
    cm = api.system("cloudmatrix384", 384)
    lay = ServingLayout(dp=320, ep=320, ranks_per_chip=2)
    eng = engine(cm, DS, lay, InferOptions(precision="int8", kv_precision="int8",
                                            eplb=True, ep_library="cloudmatrix_infer-2025-06"
                                            ).for_chip(cm.chip))
    small, _ = eng._ep_comm(16.0, 1.0)
    assert eng._ep_comm(16.0, 1.5)[0] < 1.5 * small
