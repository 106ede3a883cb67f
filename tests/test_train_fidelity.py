"""Training fidelity mechanisms: attention kernel generations, framework profiles, FSDP once a
step, pipeline messages per virtual stage, eager element-wise passes, FP8 recipes, power
limits, held-out sources."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.compute import kernels
from superpod.compute.calibration import load_calibration
from superpod.errors import Infeasible, SpecError
from superpod.hardware.catalog import load_catalog
from superpod.train.frameworks import framework_for, stated_schedule
from superpod.train.plan import TrainPlan
from superpod.train.step import TrainResult, evaluate_train
from superpod.train.validate import _power_limit_w
from superpod.trust.holdout import holding_out
from superpod.trust.sources import source_key
from superpod.workload.model import load_model

L8 = load_model("llama3-8b")
L70 = load_model("llama3-70b")
CHIPS = load_catalog().chips
CAL = load_calibration()


def _ok(res: TrainResult | Infeasible) -> TrainResult:
    assert isinstance(res, TrainResult), res
    return res


# ------------------------------------------------------------------ attention kernels


def test_attention_point_efficiency_closed_form() -> None:
    # forward and backward at the same rate r: time = F/r + 2.5F/r, charged 3F at one rate
    r, peak = 500e12, 1000e12
    assert math.isclose(kernels.attention_point_efficiency(r, r, peak), 3 * r / (3.5 * peak))


def test_attention_efficiency_rises_with_key_length_and_holds_flat_outside() -> None:
    h100 = CHIPS["h100-sxm"]
    effs = [kernels.attention_efficiency(h100, "fa3", seq_len=s, released_by="2024-12")
            for s in (256, 512, 2048, 8192, 16384, 10**6)]
    assert effs == sorted(effs)
    assert effs[0] == effs[1] and effs[-1] == effs[-2]


def test_stored_attention_points_reproduce_the_source_rates() -> None:
    # the B200 cuDNN entry: 32k keys, 1429.6 / 1124.4 TFLOP/s forward / backward (cuDNN 9.10)
    e = next(a for a in CAL.attention if a.chip == "b200" and a.kernel == "cudnn")
    eff = kernels.attention_entry_efficiency(e, 32768)
    expected = 3 / (2250 * (1 / 1429.6 + 2.5 / 1124.4))
    assert math.isclose(eff, expected, rel_tol=1e-9)


def test_release_date_picks_the_kernel_generation() -> None:
    h100 = CHIPS["h100-sxm"]
    old = kernels.attention_efficiency(h100, "cudnn", seq_len=16384, released_by="2024-07")
    new = kernels.attention_efficiency(h100, "cudnn", seq_len=16384, released_by="2026-06")
    before = kernels.attention_efficiency(h100, "cudnn", seq_len=16384, released_by="2023-01")
    assert new > old  # cuDNN 9.19 (2026) beats the mid-2024 cuDNN on the same die
    assert before == old  # before any dated release: the oldest measured generation


def test_release_older_than_its_kernel_is_costed_at_what_was_released_then() -> None:
    # NeMo 24.03 (March 2024) selects cuDNN, whose oldest measured H100 generation is mid-2024:
    # the dated kernels released by then (FlashAttention-2, July 2023) stand in for it
    h100 = CHIPS["h100-sxm"]
    march = kernels.attention_efficiency(h100, "cudnn", seq_len=32768, released_by="2024-03")
    july = kernels.attention_efficiency(h100, "cudnn", seq_len=32768, released_by="2024-07")
    fa2 = next(a for a in CAL.attention if a.chip == "h100-sxm" and a.released == "2023-07")
    assert march == kernels.attention_entry_efficiency(fa2, 32768) < july
    # a chip with no dated kernel released by then keeps the oldest measured generation
    b200 = CHIPS["b200"]
    assert kernels.attention_efficiency(b200, "cudnn", seq_len=32768, released_by="2025-01") \
        == kernels.attention_efficiency(b200, "cudnn", seq_len=32768, released_by="2025-04")


def test_b200_cudnn_of_april_2025_is_derived_from_the_backend_comparison() -> None:
    # cuDNN 9.9.0 (NGC 25.04): 16 layers x 2 s^2 x 2048 x batch causal forward FLOPs; its
    # time = FlashAttention-2's (at the 2025-06 entry's rates) minus the measured difference
    # of the two backends' Llama-3.2-1B iteration times; rate = 3.5 F / time
    s, batch, gap = 16384, 1, 0.374487898349762 - 0.2849757242202759
    flop = 16 * 2 * s * s * 2048 * batch
    t_fa2 = flop / 428.0e12 + 2.5 * flop / 354.5e12
    rate = 3.5 * flop / (t_fa2 - gap)
    assert math.isclose(rate / 1e12, 813.9, rel_tol=1e-3)
    b200 = CHIPS["b200"]
    april = kernels.attention_efficiency(b200, "cudnn", seq_len=s, released_by="2025-04")
    assert math.isclose(april, 3 / 3.5 * 813.9e12 / 2250e12, rel_tol=1e-9)
    june = kernels.attention_efficiency(b200, "cudnn", seq_len=s, released_by="2025-06")
    assert math.isclose(april / june, 0.714, rel_tol=0.01)  # 9.9.0 at 0.71 of 9.10.2
    # NeMo 25.04 (the long-sequence B200 runs) picks the April generation
    assert framework_for("NeMo 25.04.rc2").released == "2025-04"


def test_held_out_attention_source_falls_back_to_the_default() -> None:
    b200 = CHIPS["b200"]
    e = next(a for a in CAL.attention if a.chip == "b200" and a.kernel == "cudnn")
    keys = sorted({source_key(a.source) for a in CAL.attention if a.chip == "b200"})
    assert source_key(e.source) in keys and len(keys) == 2
    with holding_out(keys):
        # the B200 entries come from two cudnn-frontend benchmark files; nothing else is left
        assert kernels.attention_efficiency(b200, "cudnn") == CAL.defaults.attention_efficiency
    assert kernels.attention_efficiency(b200, "cudnn") != CAL.defaults.attention_efficiency


def test_attention_floor_is_below_every_measured_long_sequence_point() -> None:
    for e in CAL.attention:
        assert kernels.attention_entry_efficiency(e) >= CAL.defaults.attention_floor


# ------------------------------------------------------------------ framework profiles


def test_torchtitan_profile_and_its_sources() -> None:
    fw = framework_for("torchtitan 3D + compile + AsyncTP")
    assert (fw.attention_kernel, fw.recompute("selective"), fw.fp8_recipe) == ("fa2", "op",
                                                                             "dynamic")
    assert fw.compiled and fw.tp_comm_overlap and fw.sequence_parallel
    assert fw.virtual_stages(1, "interleaved") == 2 and fw.microbatches_per_rank == 1
    assert not framework_for("torchtitan FSDP").compiled
    assert all(s.startswith("https://") for s in fw.sources)


def test_held_out_framework_document_reverts_its_choice() -> None:
    fw = framework_for("torchtitan FSDP")
    sdpa = next(s for s in fw.sources if "model.py" in s)
    with holding_out([source_key(sdpa)]):
        assert framework_for("torchtitan FSDP").attention_kernel == "auto"
    assert framework_for("torchtitan FSDP").attention_kernel == "fa2"


def test_nemo_profile_release_and_recipe_defaults() -> None:
    fw = framework_for("NeMo 24.03.01")
    assert fw.released == "2024-03" and fw.attention_kernel == "cudnn"
    assert fw.distributed_optimizer and fw.sequence_parallel and fw.fp8_recipe == "delayed"
    cs = framework_for("Megatron-Bridge (NeMo 25.11 container)",
                       "FP8-CS = FP8 with current (per-tensor) scaling.")
    assert cs.released == "2025-11" and cs.fp8_recipe == "current"
    assert framework_for("Megatron-LM (2021)").attention_kernel == "unfused"


def test_notes_name_schedule_and_power_limit() -> None:
    assert stated_schedule("PP schedule interleaved-1F1B; ...") == "interleaved"
    assert stated_schedule("nothing here") is None
    assert _power_limit_w("H100 SXM with 96 GB HBM2e at a 500 W power limit") == 500.0
    assert _power_limit_w("700 W H100") is None


# ------------------------------------------------------------------ step mechanisms


def test_fsdp_kept_gathered_exposes_less_than_regathering() -> None:
    s = api.system("dgx-h100", 512)
    base = dict(tp=8, pp=8, dp=8, zero=3, micro_batch=1, global_batch=256, seq_len=8192,
                sequence_parallel=True, recompute="full")
    once = _ok(evaluate_train(s, L70, TrainPlan(**base, fsdp_regather=False)))  # type: ignore[arg-type]
    every = _ok(evaluate_train(s, L70, TrainPlan(**base, fsdp_regather=True)))  # type: ignore[arg-type]
    assert once.breakdown_s["dp_comm"] <= every.breakdown_s["dp_comm"]
    assert once.step_time_s < every.step_time_s
    # gathered parameters and unsharded gradients cost memory
    assert once.memory.weights > every.memory.weights


def test_interleaved_pipeline_messages_scale_with_virtual_stages_when_exposed() -> None:
    s = api.system("dgx-h100", 64)
    res = {}
    for vpp in (1, 2, 5):
        plan = TrainPlan(tp=4, pp=4, vpp=vpp, dp=4, micro_batch=1, global_batch=128,
                         seq_len=8192, sequence_parallel=True,
                         pp_schedule="interleaved" if vpp > 1 else "1f1b")
        res[vpp] = _ok(evaluate_train(s, L70, plan, check_memory=False))
    # 1F1B: two blocking hops a micro-batch; interleaved: hidden under a chunk's compute
    assert res[1].breakdown_s["pp_comm"] > 0
    assert res[5].breakdown_s["pp_comm"] <= res[1].breakdown_s["pp_comm"]


def test_eager_execution_adds_the_counted_element_wise_bytes() -> None:
    from superpod.train.modelfacts import model_facts
    from superpod.train.step import (
        EAGER_GLU_EXTRA,
        EAGER_NORM_EXTRA,
        EAGER_ROPE_EXTRA,
        _eager_extra_bytes_per_token,
    )

    plan = TrainPlan(dp=8, global_batch=8, seq_len=4096, compiled=False)
    got = _eager_extra_bytes_per_token(model_facts(L8), False, plan)
    h, q, kv, inner = 4096, 32 * 128, 8 * 128, 14336
    assert math.isclose(got, EAGER_NORM_EXTRA * h + EAGER_ROPE_EXTRA * (q + kv)
                        + EAGER_GLU_EXTRA * inner)
    s = api.system("dgx-h100", 8)
    fused = _ok(evaluate_train(s, L8, TrainPlan(dp=8, zero=3, global_batch=16, seq_len=8192)))
    eager = _ok(evaluate_train(s, L8, TrainPlan(dp=8, zero=3, global_batch=16, seq_len=8192,
                                                compiled=False)))
    assert eager.step_time_s > fused.step_time_s


def test_fp8_recipes_order_and_fp8_gain_stays_below_the_peak_ratio() -> None:
    s = api.system("dgx-h100", 8)
    base = dict(dp=8, zero=3, micro_batch=1, global_batch=64, seq_len=8192)
    bf16 = _ok(evaluate_train(s, L8, TrainPlan(**base)))  # type: ignore[arg-type]
    t = {r: _ok(evaluate_train(s, L8, TrainPlan(**base, precision="fp8",  # type: ignore[arg-type]
                                                 fp8_recipe=r))).step_time_s
         for r in ("delayed", "current", "dynamic")}
    assert t["delayed"] < t["current"] < t["dynamic"]
    gain = bf16.step_time_s / t["delayed"]
    assert 1.0 < gain < 1.6  # far from the 2x of the peak ratio


def test_nvfp4_quantizes_each_gemm_input_twice_with_its_amaxes() -> None:
    """Transformer Engine's NVFP4 recipe: a global amax (one read serves the rowwise and the
    Hadamard-rotated columnwise copy), then two quantizations each reading BF16 and writing
    half a byte plus a 16th of a scale byte: 7.125 B an element, against FP8's 4."""
    from superpod.train import step as st_

    assert st_.NVFP4_CAST_BYTES == 2.0 + 2 * (2.0 + 0.5 + 0.0625) == 7.125
    s = api.system("gb200-nvl72", 8)
    base = dict(dp=8, zero=3, micro_batch=1, global_batch=64, seq_len=8192)
    fp8 = _ok(evaluate_train(s, L8, TrainPlan(**base, precision="fp8")))  # type: ignore[arg-type]
    fp4 = _ok(evaluate_train(s, L8, TrainPlan(**base, precision="fp4")))  # type: ignore[arg-type]
    # FP4 GEMMs run at twice FP8's peak, yet the step gains far less than that: the casts
    # nearly double and everything else is unchanged
    assert fp8.step_time_s / fp4.step_time_s < 1.5
    orig = st_.NVFP4_CAST_BYTES
    try:
        st_.NVFP4_CAST_BYTES = st_.FP8_CAST_BYTES
        cheap = _ok(evaluate_train(s, L8, TrainPlan(**base, precision="fp4")))  # type: ignore[arg-type]
    finally:
        st_.NVFP4_CAST_BYTES = orig
    assert cheap.step_time_s < fp4.step_time_s


@settings(max_examples=20, deadline=None)
@given(st.floats(min_value=100.0, max_value=699.0))
def test_power_limit_slows_compute_by_the_cube_law(limit: float) -> None:
    chip = CHIPS["h100-sxm"]
    f = chip.clock_fraction(limit)
    assert math.isclose(f, (limit / 700.0) ** (1 / 3))
    assert chip.clock_fraction(None) == chip.clock_fraction(700.0) == 1.0
    s = api.system("dgx-h100", 8)
    plan = TrainPlan(dp=8, zero=3, micro_batch=1, global_batch=8, seq_len=4096)
    full = _ok(evaluate_train(s, L8, plan))
    capped = _ok(evaluate_train(s, L8, plan, power_limit_w=limit))
    # compute-bound work slows by at most 1/f; memory-bound work does not slow
    assert full.step_time_s < capped.step_time_s <= full.step_time_s / f * (1 + 1e-9)


def test_power_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CHIPS["h100-sxm"].clock_fraction(0.0)


# ------------------------------------------------------------------ memory and precision


def test_fp8_saves_linear_inputs_as_one_byte_closed_form() -> None:
    from superpod.workload.ops import activation_bytes_per_layer

    kw = dict(tp=1, sp=False, recompute="selective", dropout=False, layer=0)
    bf16 = activation_bytes_per_layer(L8, 4096, 1, **kw)  # type: ignore[arg-type]
    fp8 = activation_bytes_per_layer(L8, 4096, 1, gemm_input_bytes=1.0, **kw)  # type: ignore[arg-type]
    h, o, inner = 4096, 32 * 128, 14336
    # two LayerNorm outputs and the fc2 input drop to one byte; an FP8 copy of O is added
    assert math.isclose(bf16 - fp8, 4096 * (2 * h + inner - o))


def test_lm_head_stays_bf16_under_fp8() -> None:
    from superpod.train.step import head_dtype

    assert head_dtype("fp8") == head_dtype("fp4") == head_dtype("bf16") == "bf16"
    # so an FP8 run gains less than its blocks alone would: the head's share stays BF16
    s = api.system("dgx-h100", 8)
    kw = dict(dp=8, zero=3, global_batch=8, seq_len=4096)
    t8 = _ok(evaluate_train(s, L8, TrainPlan(**kw, precision="fp8"))).step_time_s  # type: ignore[arg-type]
    t16 = _ok(evaluate_train(s, L8, TrainPlan(**kw))).step_time_s  # type: ignore[arg-type]
    assert 1.0 < t16 / t8 < 2.0


def test_910c_packages_expose_two_devices() -> None:
    assert CHIPS["ascend-910c"].devices == 2
    assert CHIPS["b200"].devices == 1 and CHIPS["b200"].dies == 2


def test_gemm_entry_carries_its_fraction_of_peak_to_a_lower_clocked_sku() -> None:
    # the GB200 FP8 curve applies to B200 (same die, 4.5 vs 5 PFLOP/s dense FP8): a large
    # compute-bound GEMM runs at the same fraction of each chip's peak
    b200, gb200 = CHIPS["b200"], CHIPS["gb200"]
    n = 16384
    tb = kernels.gemm(b200, n, n, n, "fp8").flop_per_s / b200.peak_flop_per_s["fp8"]
    tg = kernels.gemm(gb200, n, n, n, "fp8").flop_per_s / gb200.peak_flop_per_s["fp8"]
    assert math.isclose(tb, tg, rel_tol=0.02)


def test_combined_flash_benchmark_rate_converts_like_the_split_one() -> None:
    # FlashAttention's benchmark prints forward + backward at 3.5 x forward FLOPs: the Azure
    # H100 FlashAttention-2 figure (327.9 TFLOP/s) and the FA3 paper's split FA2 bars at 8k
    # (333 / 318 TFLOP/s) must give the same efficiency to within a few per cent
    peak = 989.4e12
    combined = kernels.attention_combined_efficiency(327.9e12, peak)
    split = kernels.attention_point_efficiency(333e12, 318e12, peak)
    assert math.isclose(combined, 3 / 3.5 * 327.9 / 989.4)
    assert math.isclose(combined, split, rel_tol=0.03)


# ------------------------------------------------------------------ MoE and context parallel


def test_moe_token_permutation_costs_its_passes_forward_and_back() -> None:
    from superpod.train import step as st_

    model = load_model("qwen3-235b-a22b")
    s = api.system("dgx-h100", 64)
    plan = TrainPlan(pp=8, dp=8, ep=8, micro_batch=1, global_batch=64, seq_len=4096)
    facts = st_.model_facts(model)
    assert st_._permute_passes(facts, plan) == 4  # 128 experts over 8 ranks: regrouped
    assert st_._permute_passes(facts, TrainPlan(pp=8, dp=8)) == 2  # no expert parallelism
    with_perm = _ok(evaluate_train(s, model, plan, check_memory=False))
    saved = st_.MOE_PERMUTE_BYTES
    try:
        st_.MOE_PERMUTE_BYTES = 0.0
        without = _ok(evaluate_train(s, model, plan, check_memory=False))
    finally:
        st_.MOE_PERMUTE_BYTES = saved
    ctx = st_._Ctx(s, facts, plan, 1, "bf16")
    one = st_._copy_s(ctx, saved * 4 * st_._routed_elements(facts, plan))
    _, moe_layers = st_._stage_layers(ctx)
    # forward and backward once each, per MoE layer and micro-batch
    expected = 2 * one * moe_layers * plan.microbatches
    got = with_perm.breakdown_s["compute"] - without.breakdown_s["compute"]
    assert math.isclose(got, expected, rel_tol=1e-9)


def test_dropless_fp8_grouped_experts_pad_their_rows_under_the_alltoall_dispatcher() -> None:
    # Megatron-Core's TEGroupedMLP pads each expert's rows to the FP8 GEMM alignment and
    # strips the padding after fc2: two more full copies of the routed rows forward, and
    # their mirrors on the gradients backward; BF16 and the fused dispatcher have none
    from superpod.train import step as st_

    model = load_model("qwen3-235b-a22b")
    s = api.system("dgx-h100", 64)
    base = dict(pp=8, dp=8, ep=8, micro_batch=1, global_batch=64, seq_len=4096)
    a2a = TrainPlan(**base, precision="fp8", ep_dispatcher="alltoall")  # type: ignore[arg-type]
    fused = TrainPlan(**base, precision="fp8", ep_dispatcher="fused")  # type: ignore[arg-type]
    facts = st_.model_facts(model)
    assert st_._fp8_padding_passes(a2a) == 2
    assert st_._fp8_padding_passes(fused) == 0
    assert st_._fp8_padding_passes(TrainPlan(**base, ep_dispatcher="alltoall")) == 0  # type: ignore[arg-type]
    assert st_._permute_passes(facts, a2a) == st_._permute_passes(facts, fused) + 2
    padded = _ok(evaluate_train(s, model, a2a, check_memory=False))
    plain = _ok(evaluate_train(s, model, fused, check_memory=False))
    ctx = st_._Ctx(s, facts, a2a, 1, "fp8")
    one = st_._copy_s(ctx, st_.MOE_PERMUTE_BYTES * 2 * st_._routed_elements(facts, a2a))
    _, moe_layers = st_._stage_layers(ctx)
    expected = 2 * one * moe_layers * a2a.microbatches  # forward and backward
    got = padded.breakdown_s["compute"] - plain.breakdown_s["compute"]
    assert math.isclose(got, expected, rel_tol=1e-9)
    # hand check: the rows copied are 4096 tokens x top-8, each 4096 hidden elements
    assert math.isclose(st_._routed_elements(facts, a2a), 4096 * 8 * 4096)


def test_torchtitan_context_parallel_profile() -> None:
    tt = framework_for("torchtitan FSDP+CP+compile+Float8")
    assert (tt.cp_rotate, tt.cp_kv_expanded) == ("allgather", True)
    nemo = framework_for("NeMo 24.03.01")
    assert (nemo.cp_rotate, nemo.cp_kv_expanded) == ("p2p", False)
    with pytest.raises(Exception, match="cp_rotate"):
        TrainPlan(cp_rotate="ring")


def test_gathered_context_shards_are_exposed_beyond_the_first_step() -> None:
    # CP across nodes (tp 8 inside each): the one all-gather waits after the diagonal step
    s = api.system("dgx-h100", 64)
    base = dict(tp=8, cp=8, micro_batch=1, global_batch=1, seq_len=131072,
                sequence_parallel=True, recompute="full")
    res = {}
    for rotate, expanded in (("p2p", False), ("allgather", False), ("allgather", True)):
        plan = TrainPlan(**base, cp_rotate=rotate, cp_kv_expanded=expanded)  # type: ignore[arg-type]
        res[(rotate, expanded)] = _ok(evaluate_train(s, L70, plan, check_memory=False))
    cp = {k: r.breakdown_s["cp_comm"] for k, r in res.items()}
    assert cp[("p2p", False)] <= cp[("allgather", False)] < cp[("allgather", True)]
    for r in res.values():
        assert math.isclose(sum(r.breakdown_s.values()), r.step_time_s, rel_tol=1e-12)


def test_ring_merges_cost_their_bytes_per_step() -> None:
    from superpod.train import step as st_

    s = api.system("dgx-h100", 8)
    plan = TrainPlan(dp=1, cp=8, micro_batch=1, global_batch=1, seq_len=262144,
                     recompute="full", cp_rotate="allgather", cp_kv_expanded=True)
    ctx = st_._Ctx(s, st_.model_facts(L8), plan, 1, "bf16")
    tokens = plan.seq_len // plan.cp
    fwd, bwd = st_._ring_merge_s(ctx, tokens)
    bw, _, _ = kernels.copy_bandwidth(s.chip, CAL)
    q_el = tokens * 32 * 128  # Llama 3 8B: 32 query heads of 128
    kv_el = 2 * q_el  # K and V repeated to every query head
    assert math.isclose(fwd, 8 * 38 * q_el / bw, rel_tol=1e-12)
    assert math.isclose(bwd, 8 * (10 * q_el + 18 * kv_el) / bw, rel_tol=1e-12)
    # the ring's own kernel in TE's bf16 merge costs less than PyTorch's fp32 one
    te = st_._ring_merge_s(st_._Ctx(s, st_.model_facts(L8), TrainPlan(
        dp=1, cp=8, global_batch=1, seq_len=262144), 1, "bf16"), tokens)
    assert te[0] < fwd and te[1] < bwd


def test_llama3_context_parallelism_gathers_kv_before_attention() -> None:
    # arXiv 2407.21783 section 3.3.2: all-gather based CP, K/V gathered first
    assert framework_for("Meta internal 4D parallelism").cp_rotate == "gather_kv"


def test_gathered_kv_stays_saved_for_the_backward_unless_fully_recomputed() -> None:
    from superpod.train import step as st_

    facts = st_.model_facts(L70)
    base = dict(tp=8, cp=8, micro_batch=1, global_batch=1, seq_len=131072,
                sequence_parallel=True)
    plan = TrainPlan(**base, recompute="selective", cp_rotate="gather_kv")  # type: ignore[arg-type]
    # Llama 3 70B: 8 K/V heads of 128 in bf16, one per TP rank; 7/8 of the sequence
    # arrives from the other CP ranks
    expected = 131072 * 7 / 8 * (2 * 2 * 8 * 128) / 8
    assert math.isclose(st_.cp_gathered_kv_bytes(facts, plan), expected, rel_tol=1e-12)
    for other in (dict(recompute="full", cp_rotate="gather_kv"),
                  dict(recompute="selective", cp_rotate="p2p"),
                  dict(recompute="selective", cp_rotate="allgather")):
        assert st_.cp_gathered_kv_bytes(facts, TrainPlan(**base, **other)) == 0.0  # type: ignore[arg-type]
    s = api.system("dgx-h100", 64)
    ring = TrainPlan(**base, recompute="selective", cp_rotate="p2p")  # type: ignore[arg-type]
    got = {pl.cp_rotate: _ok(evaluate_train(s, L70, pl, check_memory=False))
           for pl in (plan, ring)}
    held = st_.mem.in_flight_microbatches(1, 1, plan.microbatches, plan.pp_schedule)
    extra = got["gather_kv"].memory.activations - got["p2p"].memory.activations
    assert math.isclose(extra, expected * L70.num_hidden_layers * held, rel_tol=1e-9)


def test_gather_kv_exposes_one_gather_and_one_reduce_scatter_without_ring_merges() -> None:
    from superpod.train import step as st_

    s = api.system("dgx-h100", 64)
    facts = st_.model_facts(L70)
    for recompute, gathers in (("selective", 1), ("full", 2)):
        plan = TrainPlan(tp=8, cp=8, micro_batch=1, global_batch=1, seq_len=131072,
                         sequence_parallel=True, recompute=recompute, cp_rotate="gather_kv")
        ctx = st_._Ctx(s, facts, plan, 1, "bf16")
        tokens = plan.seq_len // plan.cp
        kv = tokens * 2 * 2 * 8 * 128 / 8  # local K/V bytes per TP rank
        stride = plan.stride("cp")
        gather = st_._coll(ctx, "all_gather", 8, 8 * kv, stride)
        scatter = st_._coll(ctx, "reduce_scatter", 8, 8 * kv, stride)
        exposed, hidden = st_._cp_exchange(ctx, tokens, attn=1.0)
        assert hidden == 0.0
        assert math.isclose(exposed, gathers * gather + scatter, rel_tol=1e-12)
        res = _ok(evaluate_train(s, L70, plan, check_memory=False))
        assert math.isclose(sum(res.breakdown_s.values()), res.step_time_s, rel_tol=1e-12)
    # one attention call over the gathered K/V: no per-step merge of partial outputs
    parts = st_._layer_costs(ctx, False)
    ring_ctx = st_._Ctx(s, facts, TrainPlan(**{**plan.__dict__, "cp_rotate": "p2p"}), 1, "bf16")
    ring = st_._layer_costs(ring_ctx, False)
    merge_fwd, merge_bwd = st_._ring_merge_s(ring_ctx, tokens)
    assert math.isclose(ring.fwd_s - parts.fwd_s, merge_fwd, rel_tol=1e-9)
    assert math.isclose(ring.bwd_s - parts.bwd_s, merge_bwd, rel_tol=1e-9)


def test_backward_fp8_gemms_without_fast_accumulation_cost_time_on_hopper_only() -> None:
    from superpod.compute.calibration import split_accumulator_ratio

    assert split_accumulator_ratio(CAL, "h100-sxm") > 1.0
    assert split_accumulator_ratio(CAL, "b200") == 1.0  # no fast-accumulation mode there
    base = dict(dp=8, micro_batch=1, global_batch=8, seq_len=8192, precision="fp8")
    for preset, slower in (("dgx-h100", True), ("dgx-b200", False)):
        s = api.system(preset, 8)
        fast = _ok(evaluate_train(s, L8, TrainPlan(**base), check_memory=False))  # type: ignore[arg-type]
        split = _ok(evaluate_train(s, L8, TrainPlan(**base, fp8_split_accumulation=True),  # type: ignore[arg-type]
                                   check_memory=False))
        assert (split.step_time_s > fast.step_time_s) is slower
        assert split.step_time_s >= fast.step_time_s
    # BF16 GEMMs have no such mode
    s = api.system("dgx-h100", 8)
    bf16 = dict(base, precision="bf16")
    assert _ok(evaluate_train(s, L8, TrainPlan(**bf16), check_memory=False)).step_time_s == \
        _ok(evaluate_train(s, L8, TrainPlan(**bf16, fp8_split_accumulation=True),  # type: ignore[arg-type]
                           check_memory=False)).step_time_s


def test_frameworks_that_split_fp8_accumulation() -> None:
    assert framework_for("NeMo 24.07 / Megatron-Core").fp8_split_accumulation
    assert framework_for("torchtitan FSDP+compile+Float8").fp8_split_accumulation
    assert not framework_for("HAI-LLM (DualPipe)").fp8_split_accumulation
    assert not framework_for("Megatron-LM (2021)").fp8_split_accumulation


# ------------------------------------------------------------------ data-parallel tails


def test_unoverlapped_reduction_exposes_it_all_and_the_tail_bucket_stays_exposed() -> None:
    from superpod.train import step as st_

    s = api.system("dgx-h100", 64)
    base = dict(tp=8, dp=8, micro_batch=1, global_batch=64, seq_len=2048, zero=0,
                recompute="full", sequence_parallel=True)
    over = _ok(evaluate_train(s, L8, TrainPlan(**base), check_memory=False))  # type: ignore[arg-type]
    once = _ok(evaluate_train(s, L8, TrainPlan(**base, dp_overlap=False),  # type: ignore[arg-type]
                              check_memory=False))
    # Megatron-LM 2021: the whole fp32 all-reduce after the last backward
    ctx = st_._Ctx(s, st_.model_facts(L8), TrainPlan(**base), 1, "bf16")  # type: ignore[arg-type]
    params, _ = st_.model_facts(L8).params_per_rank(8, 1, 1, 1)
    allreduce = st_._coll(ctx, "all_reduce", 8, params * 4.0, ctx.plan.stride("dp"))
    assert math.isclose(once.breakdown_s["dp_comm"], allreduce, rel_tol=1e-9)
    # overlapped: at least the embedding's bucket (Llama 3's 128k x 4096 / tp 8 parameters)
    tail = st_._coll(ctx, "all_reduce", 8, 128256 * 4096 / 8 * 4.0, ctx.plan.stride("dp"))
    assert over.breakdown_s["dp_comm"] >= tail * (1 - 1e-9)
    assert over.breakdown_s["dp_comm"] < once.breakdown_s["dp_comm"]


def test_bucket_holding_the_embedding_follows_megatron_core_defaults() -> None:
    from superpod.train import step as st_

    s = api.system("dgx-h100", 64)
    small = load_model("gpt3-175b")
    plan = TrainPlan(tp=8, dp=8, global_batch=8)
    ctx = st_._Ctx(s, st_.model_facts(small), plan, 1, "bf16")
    emb = small.params_embedding / 8
    assert st_._dp_tail_params(ctx) == max(emb, 40e6)
    wide = TrainPlan(dp=64, global_batch=64)
    assert st_._dp_tail_params(st_._Ctx(s, st_.model_facts(small), wide, 1, "bf16")) == \
        max(small.params_embedding, 64e6)
    alone = TrainPlan(tp=8, pp=8, global_batch=8)  # one data-parallel rank: nothing to sync
    assert st_._dp_tail_params(st_._Ctx(s, st_.model_facts(small), alone, 1, "bf16")) == 0
    assert not framework_for("Megatron-LM (2021)").dp_overlap
    assert framework_for("NeMo 24.07 / Megatron-Core").dp_overlap


def test_pipelined_fsdp_reduces_after_the_stage_backward() -> None:
    tt = framework_for("torchtitan 3D + compile + AsyncTP")
    assert not tt.overlaps_dp(pp=8, zero=3) and tt.overlaps_dp(pp=1, zero=3)
    assert framework_for("Meta internal 4D parallelism").overlaps_dp(pp=16, zero=3)
    s = api.system("dgx-h100", 512)
    base = dict(tp=8, pp=8, dp=8, zero=3, micro_batch=1, global_batch=64, seq_len=8192,
                sequence_parallel=True, recompute="full", fsdp_regather=False)
    over = _ok(evaluate_train(s, L70, TrainPlan(**base), check_memory=False))  # type: ignore[arg-type]
    after = _ok(evaluate_train(s, L70, TrainPlan(**base, dp_overlap=False),  # type: ignore[arg-type]
                               check_memory=False))
    assert after.breakdown_s["dp_comm"] > over.breakdown_s["dp_comm"]
    assert math.isclose(sum(after.breakdown_s.values()), after.step_time_s, rel_tol=1e-12)


def test_megatron_bridge_exchanges_expert_tokens_through_the_all_to_all_dispatcher() -> None:
    bridge = framework_for("Megatron-Bridge (NeMo 25.11 container)")
    assert bridge.ep_dispatcher == "alltoall"
    assert any("qwen_provider.py" in s for s in bridge.sources)
    # a run that names a fused backend, other frameworks, and the held-out document: fused
    assert framework_for("Megatron-Bridge 25.11", "HybridEP dispatcher").ep_dispatcher == "fused"
    for fw in ("NeMo 24.03.01", "torchtitan FSDP", "DualPipe (HAI-LLM)"):
        assert framework_for(fw).ep_dispatcher == "fused"
    src = next(s for s in bridge.sources if "qwen_provider.py" in s)
    with holding_out([source_key(src)]):
        assert framework_for("Megatron-Bridge 25.11").ep_dispatcher == "fused"
    with pytest.raises(SpecError):
        TrainPlan(ep_dispatcher="deepep")


def test_all_to_all_dispatcher_moves_every_token_expert_row_in_bf16_closed_form() -> None:
    from superpod.network.collectives import CollectiveRequest, collective
    from superpod.train import step as st_

    model = load_model("qwen3-235b-a22b")
    s = api.system("dgx-h100", 64)
    base = dict(pp=8, dp=8, ep=8, micro_batch=1, global_batch=64, seq_len=4096,
                precision="fp8")
    fused = _ok(evaluate_train(s, model, TrainPlan(**base), check_memory=False))  # type: ignore[arg-type]
    a2a = _ok(evaluate_train(s, model, TrainPlan(**base, ep_dispatcher="alltoall"),  # type: ignore[arg-type]
                             check_memory=False))
    facts = st_.model_facts(model)
    plan = a2a.plan
    _, moe_layers = st_._stage_layers(st_._Ctx(s, facts, plan, 1, "fp8"))
    # one all-to-all of tokens x top_k rows of hidden BF16 elements each way, dispatch and
    # combine, forward and backward, per MoE layer and micro-batch (the FP8 run included)
    rows = 4096 * facts.top_k * facts.hidden * 2.0
    one = collective(s, CollectiveRequest(op="all_to_all", ranks=8, bytes_=rows)).time_s
    expected = 2 * 2 * one * moe_layers * plan.microbatches
    assert math.isclose(a2a.breakdown_s["ep_comm"], expected, rel_tol=1e-9)
    # every (token, expert) row in BF16 moves more than one FP8 row per destination rank
    assert a2a.breakdown_s["ep_comm"] > fused.breakdown_s["ep_comm"]
    # the compute differs only by the FP8 row padding of Megatron-Core's grouped experts
    ctx = st_._Ctx(s, facts, plan, 1, "fp8")
    pad = st_._copy_s(ctx, st_.MOE_PERMUTE_BYTES * st_._fp8_padding_passes(plan)
                      * st_._routed_elements(facts, plan))
    assert math.isclose(a2a.breakdown_s["compute"] - fused.breakdown_s["compute"],
                        2 * pad * moe_layers * plan.microbatches, rel_tol=1e-9)
