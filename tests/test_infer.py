"""Inference: KV-cache closed forms, the decode roofline, breakdowns, infeasible layouts,
properties, serving metrics and the layout search."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.compute import kernels
from superpod.compute.calibration import load_calibration
from superpod.errors import Infeasible, SpecError
from superpod.infer import memory as mem
from superpod.infer.config import InferOptions, ServingLayout, auto_kv_precision
from superpod.infer.iteration import Iteration, engine, iteration
from superpod.infer.search import plan_infer
from superpod.infer.serving import (
    ServingResult,
    Workload,
    best_batch,
    decode,
    disaggregated,
    e2e,
    prefill,
)
from superpod.workload.model import load_model

L70 = load_model("llama3-70b")
L8 = load_model("llama3-8b")
DS = load_model("deepseek-v3")
FP8 = InferOptions(precision="fp8", kv_precision="fp8")
BF16 = InferOptions()


def _ok(res: Iteration | ServingResult | Infeasible) -> Iteration | ServingResult:
    assert not isinstance(res, Infeasible), res
    return res


def _it(res: Iteration | Infeasible) -> Iteration:
    assert isinstance(res, Iteration), res
    return res


# ---------------------------------------------------------------------- KV closed forms


def test_kv_cache_closed_forms() -> None:
    # GQA: 2 x layers x kv heads x head dim x bytes
    assert mem.kv_bytes_per_token(L70, 2.0) == 2 * 80 * 8 * 128 * 2
    assert mem.kv_bytes_per_token(L8, 1.0) == 2 * 32 * 8 * 128 * 1
    # MLA: the compressed latent + the rope key, (512 + 64) x 61 layers x bytes
    assert mem.kv_bytes_per_token(DS, 2.0) == (512 + 64) * 61 * 2
    assert mem.kv_bytes_per_token(DS, 1.0) == 35_136


def test_kv_per_rank_split_and_replication() -> None:
    # GQA heads split over tp (8 KV heads: tp 4 -> 2 heads a rank; tp 16 -> replicated)
    assert mem.kv_elements_per_token_layer_rank(L70, 4) == 2 * 2 * 128
    assert mem.kv_elements_per_token_layer_rank(L70, 16) == 2 * 1 * 128
    # the MLA latent is needed by every head: each tensor-parallel rank holds all of it
    assert mem.kv_elements_per_token_layer_rank(DS, 8) == 576


def test_max_batch_fills_the_kv_pool() -> None:
    s = api.system("dgx-h100", 8)
    lay = ServingLayout(tp=8)
    work = Workload(input_len=2000, output_len=1)
    most = mem.max_batch(L70, lay, FP8, s.chip.hbm_bytes, context=2000, tokens_per_seq=1)
    assert most > 0
    fits = _it(iteration(s, L70, lay, FP8, phase="decode", batch=most, context=1999))
    assert fits.memory.fits
    over = iteration(s, L70, lay, FP8, phase="decode", batch=most + 1, context=1999)
    assert isinstance(over, Infeasible) and over.reason == "out_of_memory"
    assert "kv_cache" in over.detail and "over by" in over.detail
    del work


# ---------------------------------------------------------------------- infeasible, named


def test_weights_that_do_not_fit_are_named() -> None:
    s = api.system("dgx-h100", 1)
    res = iteration(s, L70, ServingLayout(), BF16, phase="decode", batch=1, context=128)
    assert isinstance(res, Infeasible) and res.reason == "out_of_memory"
    assert "weights" in res.detail and "over by" in res.detail


@pytest.mark.parametrize("model,layout,reason", [
    (L70, ServingLayout(tp=3), "tp_does_not_divide_heads"),
    (L70, ServingLayout(tp=2, ep=2), "ep_without_experts"),
    (DS, ServingLayout(dp=4, ep=3), "ep_does_not_divide_ranks"),
    (L70, ServingLayout(tp=8, dp=4), "too_few_chips"),
    (L70, ServingLayout(pp=128), "too_few_chips"),
])
def test_bad_degrees_are_named(model, layout, reason) -> None:  # type: ignore[no-untyped-def]
    s = api.system("dgx-h100", 8)
    res = iteration(s, model, layout, FP8, phase="decode", batch=8, context=128)
    assert isinstance(res, Infeasible) and res.reason == reason, res
    assert res.detail


def test_bad_input_is_a_spec_error() -> None:
    with pytest.raises(SpecError):
        InferOptions(precision="fp3")
    with pytest.raises(SpecError):
        InferOptions(mtp_acceptance=1.5)
    s = api.system("dgx-h100", 8)
    with pytest.raises(SpecError):
        iteration(s, L8, ServingLayout(), BF16, phase="train", batch=1, context=1)


# ---------------------------------------------------------------------- breakdown adds up


@pytest.mark.parametrize("phase,batch,ctx,tbo", [
    ("prefill", 64, 4096, None), ("decode", 8192, 4096, True), ("decode", 8192, 4096, False),
    ("decode", 128, 2048, None)])
def test_breakdown_adds_up(phase, batch, ctx, tbo) -> None:  # type: ignore[no-untyped-def]
    s = api.system("hgx-h800", 64)
    opts = InferOptions(precision="fp8", kv_precision="bf16", mtp=1, two_batch_overlap=tbo)
    it = _it(iteration(s, DS, ServingLayout(dp=64, ep=64), opts, phase=phase, batch=batch,
                       context=ctx))
    assert math.isclose(sum(it.breakdown_s.values()), it.time_s, rel_tol=1e-12)
    assert all(v >= 0 for v in it.breakdown_s.values())
    if tbo is not None:
        assert it.two_batch_overlap is tbo


def test_e2e_breakdown_is_the_effective_step() -> None:
    s = api.system("dgx-h100", 8)
    r = _ok(e2e(s, L70, ServingLayout(tp=8), FP8, 64, Workload(input_len=1000,
                                                               output_len=500)))
    assert isinstance(r, ServingResult) and r.tpot_s is not None
    assert math.isclose(sum(r.breakdown_s.values()), r.tpot_s * FP8.tokens_per_step)
    assert math.isclose(r.tokens_per_s_per_chip, r.tokens_per_s / 8)


def test_two_batch_overlap_hides_communication() -> None:
    s = api.system("hgx-h800", 32)
    lay = ServingLayout(dp=32, ep=32)
    on = _it(iteration(s, DS, lay, dataclasses.replace(FP8, two_batch_overlap=True),
                       phase="prefill", batch=128, context=4096))
    off = _it(iteration(s, DS, lay, dataclasses.replace(FP8, two_batch_overlap=False),
                        phase="prefill", batch=128, context=4096))
    assert on.breakdown_s["ep_comm"] < off.breakdown_s["ep_comm"]
    auto = _it(iteration(s, DS, lay, FP8, phase="prefill", batch=128, context=4096))
    assert auto.time_s == min(on.time_s, off.time_s)


# ---------------------------------------------------------------------- the decode roofline


def _gemm_shares(s: api.System, batch: int) -> tuple[float, float]:  # type: ignore[name-defined]
    it = _it(iteration(s, L70, ServingLayout(), FP8, phase="decode", batch=batch, context=1,
                       check_memory=False))
    return it.breakdown_s["gemm_compute"], it.breakdown_s["weight_memory"]


def test_decode_memory_bound_small_compute_bound_large_crossover_at_roofline() -> None:
    s = api.system("dgx-h100", 1)
    small_c, small_m = _gemm_shares(s, 1)
    large_c, large_m = _gemm_shares(s, 4096)
    assert small_m > 3 * small_c  # streaming the weights dominates at batch 1
    assert large_c > 3 * large_m  # FLOPs dominate at large batch
    # roofline ridge: 2 B FLOPs per weight byte / w_bytes = peak / bandwidth
    cal = load_calibration()
    peak = kernels.peak_for(s.chip, "fp8") * kernels.gemm_fit(s.chip, "fp8", cal).e_max
    bw = kernels.copy_bandwidth(s.chip, cal)[0]
    ridge = peak / bw * FP8.weight_bytes / 2
    lo, hi = 1, 4096
    while hi - lo > 1:  # the batch where compute overtakes weight streaming
        mid = (lo + hi) // 2
        c, m = _gemm_shares(s, mid)
        lo, hi = (mid, hi) if m > c else (lo, mid)
    # the fitted per-wave fixed cost (2-3 us per GEMM wave on Hopper) counts as compute, so
    # compute overtakes weight streaming somewhat before the pure ridge
    assert ridge / 2 <= hi <= ridge * 1.6, (hi, ridge)


def test_mla_decode_attention_is_compute_bound_gqa_is_memory_bound() -> None:
    s = api.system("hgx-h800", 32)
    ds = _it(iteration(s, DS, ServingLayout(dp=32, ep=32), FP8, phase="decode",
                       batch=32 * 64, context=4096))
    assert ds.breakdown_s["attention_compute"] > 0 and ds.breakdown_s["kv_memory"] == 0
    ll = _it(iteration(api.system("dgx-h100", 8), L70, ServingLayout(tp=8), FP8,
                       phase="decode", batch=64, context=4096))
    assert ll.breakdown_s["kv_memory"] > 0 and ll.breakdown_s["attention_compute"] == 0


# DeepGEMM README (deepseek-ai/DeepGEMM, Feb 2025), H800, FP8: (m, n, k, measured TFLOP/s)
DEEPGEMM_H800 = [(64, 2112, 7168, 206), (64, 24576, 1536, 289), (64, 7168, 16384, 336),
                 (64, 4096, 7168, 287), (128, 7168, 2048, 510), (128, 4096, 7168, 533),
                 (4096, 7168, 16384, 1358), (4096, 4096, 7168, 1304)]


def test_gemm_model_against_deepgemm_h800() -> None:
    """The smooth roofline of the serving GEMMs against a published table it was not fitted
    to (memory-bound decode shapes and compute-bound prefill shapes)."""
    s = api.system("hgx-h800", 8)
    eng = engine(s, DS, ServingLayout(dp=8, ep=8), FP8)
    errors = []
    for m, n, k, tflops in DEEPGEMM_H800:
        t, _ = eng.gemm(m, n, k, 1.0, 1.0)
        errors.append(abs(2 * m * n * k / t / 1e12 / tflops - 1))
    assert sorted(errors)[len(errors) // 2] < 0.15  # median
    assert max(errors) < 0.40


# ---------------------------------------------------------------------- properties


@settings(max_examples=15, deadline=None)
@given(st.floats(1.0, 4.0), st.sampled_from([1, 16, 256]), st.sampled_from([512, 8192]))
def test_more_hbm_bandwidth_never_slows_decode(scale, batch, ctx) -> None:  # type: ignore[no-untyped-def]
    base = api.system("dgx-h100", 8)
    fast_chip = base.chip.model_copy(
        update={"hbm_bandwidth_bytes_per_s": base.chip.hbm_bandwidth_bytes_per_s * scale})
    fast = dataclasses.replace(base, chip=fast_chip)
    lay = ServingLayout(tp=8)
    t0 = _it(iteration(base, L70, lay, FP8, phase="decode", batch=batch, context=ctx)).time_s
    t1 = _it(iteration(fast, L70, lay, FP8, phase="decode", batch=batch, context=ctx)).time_s
    assert t1 <= t0 * (1 + 1e-12)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 512), st.sampled_from([256, 4096]))
def test_a_longer_context_never_speeds_decode(batch, ctx) -> None:  # type: ignore[no-untyped-def]
    s = api.system("dgx-h100", 8)
    a = _it(iteration(s, L70, ServingLayout(tp=8), FP8, phase="decode", batch=batch,
                      context=ctx, check_memory=False))
    b = _it(iteration(s, L70, ServingLayout(tp=8), FP8, phase="decode", batch=batch,
                      context=2 * ctx, check_memory=False))
    assert b.time_s >= a.time_s


# ---------------------------------------------------------------------- serving metrics


def test_mtp_tokens_per_step_and_decode_metrics() -> None:
    assert InferOptions(mtp=1).tokens_per_step == pytest.approx(1.8)
    assert InferOptions(mtp=2, mtp_acceptance=0.5).tokens_per_step == pytest.approx(1.75)
    s = api.system("hgx-h800", 32)
    opts = InferOptions(precision="fp8", mtp=1)
    r = _ok(decode(s, DS, ServingLayout(dp=32, ep=32), opts, 32 * 64,
                   Workload(input_len=2000, output_len=1000)))
    assert isinstance(r, ServingResult) and r.tpot_s is not None
    step = r.iterations[0].time_s
    assert math.isclose(r.tpot_s, step / 1.8)
    assert math.isclose(r.tokens_per_s, 32 * 64 * 1.8 / step)
    assert r.context == 2500  # input + output / 2


def test_prefill_metrics() -> None:
    s = api.system("dgx-h100", 8)
    r = _ok(prefill(s, L70, ServingLayout(tp=8), FP8, 4, Workload(input_len=2048)))
    assert isinstance(r, ServingResult) and r.ttft_s is not None
    assert math.isclose(r.tokens_per_s, 4 * 2048 / r.ttft_s)


def test_best_batch_respects_the_slo() -> None:
    s = api.system("dgx-h100", 8)
    work = Workload(input_len=1000, output_len=1000)
    free = _ok(best_batch(s, L70, ServingLayout(tp=8), FP8, phase="e2e", work=work))
    tight = _ok(best_batch(s, L70, ServingLayout(tp=8), FP8, phase="e2e", work=work,
                           slo_tpot_s=0.03))
    assert isinstance(free, ServingResult) and isinstance(tight, ServingResult)
    assert tight.tpot_s is not None and tight.tpot_s <= 0.03
    assert tight.batch <= free.batch and tight.tokens_per_s <= free.tokens_per_s
    impossible = best_batch(s, L70, ServingLayout(tp=8), FP8, phase="e2e", work=work,
                            slo_tpot_s=1e-4)
    assert isinstance(impossible, Infeasible) and impossible.reason == "slo"


def test_disaggregated_pools_balance_and_pay_the_kv_handover() -> None:
    s = api.system("hgx-h800", 96)
    work = Workload(input_len=2000, output_len=1000)
    lay = ServingLayout(dp=32, ep=32)
    r = _ok(disaggregated(s, DS, FP8, work, prefill_layout=lay, decode_layout=lay,
                          prefill_batch=64, decode_batch=32 * 128))
    assert isinstance(r, ServingResult)
    assert r.extra["kv_transfer_s"] > 0
    assert r.extra["prefill_chips"] + r.extra["decode_chips"] == r.chips <= 96
    served = min(r.extra["prefill_requests_per_s"], r.extra["decode_requests_per_s"])
    assert math.isclose(r.tokens_per_s, served * work.output_len)


def test_auto_kv_precision() -> None:
    cat_h100 = api.system("dgx-h100", 1).chip
    cm = api.system("cloudmatrix384", 1).chip
    assert auto_kv_precision(cat_h100, "fp8") == "fp8"
    assert auto_kv_precision(cat_h100, "bf16") == "bf16"
    assert auto_kv_precision(cm, "int8") == "bf16"  # no FP8 on Ascend 910C


def test_plan_infer_picks_the_best_within_the_slo_quickly() -> None:
    s = api.system("dgx-h100", 8)
    res = plan_infer(s, L8, InferOptions(precision="fp8"), Workload(input_len=1000,
                                                                    output_len=500),
                     slo_tpot_s=0.02, top=3)
    assert res.candidates and res.wall_s < 30
    rates = [c.tokens_per_s_per_chip for c in res.candidates]
    assert rates == sorted(rates, reverse=True)
    for c in res.candidates:
        assert c.tpot_s is not None and c.tpot_s <= 0.02
