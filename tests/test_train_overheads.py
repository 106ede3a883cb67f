"""Training overheads: unfused attention, TP-communication overlap, FP8 casts, interference."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.compute import kernels
from superpod.compute.calibration import load_calibration
from superpod.errors import Infeasible, SpecError
from superpod.train import step
from superpod.train.plan import TrainPlan
from superpod.train.step import TrainResult, evaluate_train
from superpod.workload.model import load_model

L70 = load_model("llama3-70b")
G175 = load_model("gpt3-175b")


def _ok(res: TrainResult | Infeasible) -> TrainResult:
    assert isinstance(res, TrainResult), res
    return res


def _tp_plan(**kw: object) -> TrainPlan:
    base: dict[str, object] = dict(tp=8, pp=1, dp=1, micro_batch=1, global_batch=4,
                                   seq_len=4096, sequence_parallel=True, recompute="full")
    base.update(kw)
    return TrainPlan(**base)  # type: ignore[arg-type]


def test_unknown_attention_kernel_is_one_line_error() -> None:
    with pytest.raises(SpecError, match="attention_kernel"):
        TrainPlan(attention_kernel="magic")


@pytest.mark.parametrize("seq", [1024, 2048, 4096])
def test_unfused_attention_score_traffic_is_the_closed_form(
        seq: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # the streamed score matrix adds 9 B (forward) + 11 B (backward) per score element,
    # b x heads/tp x s^2 of them per layer and micro-batch, over copy bandwidth
    s = api.system("dgx-a100", 8)
    plan = _tp_plan(seq_len=seq, attention_kernel="unfused", recompute="none")
    with_scores = _ok(evaluate_train(s, G175, plan, check_memory=False))
    monkeypatch.setattr(step, "SCORE_BYTES_FWD", 0.0)
    monkeypatch.setattr(step, "SCORE_BYTES_BWD", 0.0)
    without = _ok(evaluate_train(s, G175, plan, check_memory=False))
    bw, _, _ = kernels.copy_bandwidth(s.chip, load_calibration())
    score_s = (9.0 + 11.0) * (G175.num_attention_heads // 8) * seq * seq / bw
    expected = G175.num_hidden_layers * plan.microbatches * score_s
    got = with_scores.breakdown_s["compute"] - without.breakdown_s["compute"]
    assert math.isclose(got, expected, rel_tol=1e-9)


def test_unfused_attention_costs_more_at_longer_sequences() -> None:
    s = api.system("dgx-a100", 8)
    ratios = []
    for seq in (1024, 4096):
        fused = _ok(evaluate_train(s, G175, _tp_plan(seq_len=seq, attention_kernel="fa2"),
                                   check_memory=False))
        unfused = _ok(evaluate_train(s, G175, _tp_plan(seq_len=seq,
                                                       attention_kernel="unfused"),
                                     check_memory=False))
        ratios.append(unfused.step_time_s / fused.step_time_s)
    assert ratios[0] > 1.0 and ratios[1] > ratios[0]


@settings(max_examples=15, deadline=None)
@given(tp=st.sampled_from([2, 4, 8]), seq=st.sampled_from([2048, 4096, 8192]),
       sp=st.booleans())
def test_tp_overlap_hides_at_most_all_but_one_chunk(tp: int, seq: int, sp: bool) -> None:
    s = api.system("dgx-h100", tp)
    plain = _ok(evaluate_train(s, L70, _tp_plan(tp=tp, seq_len=seq, sequence_parallel=sp),
                               check_memory=False))
    over = _ok(evaluate_train(s, L70, _tp_plan(tp=tp, seq_len=seq, sequence_parallel=sp,
                                               tp_comm_overlap=True), check_memory=False))
    exposed, total = over.breakdown_s["tp_comm"], plain.breakdown_s["tp_comm"]
    assert total / tp * (1 - 1e-9) <= exposed <= total * (1 + 1e-9)
    # what is hidden costs SM share: never free, never more than it hid
    hidden = total - exposed
    extra = over.breakdown_s["overlap_interference"] - plain.breakdown_s["overlap_interference"]
    assert math.isclose(extra, step.COMM_SM_SHARE * hidden, rel_tol=1e-6, abs_tol=1e-12)
    assert over.step_time_s <= plain.step_time_s


def test_interference_is_share_of_hidden_dp_traffic() -> None:
    # pure data parallel (ZeRO-1) on 8 GPUs: gradient traffic hidden under backward except
    # the embedding's bucket, reduced last and gathered first (128256 x 4096 parameters)
    s = api.system("dgx-h100", 8)
    plan = TrainPlan(dp=8, zero=1, micro_batch=1, global_batch=8, seq_len=4096,
                     recompute="full")
    r = _ok(evaluate_train(s, load_model("llama3-8b"), plan, check_memory=False))
    ctx = step._Ctx(s, step.model_facts(load_model("llama3-8b")), plan, 1, "bf16")
    emb = 128256 * 4096
    tails = (step._coll(ctx, "reduce_scatter", 8, emb * 4.0, 1)
             + step._coll(ctx, "all_gather", 8, emb * 2.0, 1))
    assert math.isclose(r.breakdown_s["dp_comm"], tails, rel_tol=1e-9)
    assert r.breakdown_s["overlap_interference"] > 0.0
    single = _ok(evaluate_train(api.system("dgx-h100", 1), load_model("llama3-8b"),
                                replace(plan, dp=1, global_batch=1), check_memory=False))
    assert single.breakdown_s["overlap_interference"] == 0.0


def test_fp8_pays_for_its_casts() -> None:
    s = api.system("dgx-h100", 8)
    bf16 = _ok(evaluate_train(s, L70, _tp_plan(), check_memory=False))
    fp8 = _ok(evaluate_train(s, L70, _tp_plan(precision="fp8"), check_memory=False))
    # faster, but by less than the 2x of the peak: casts and BF16 attention stay
    assert bf16.breakdown_s["compute"] / 2 < fp8.breakdown_s["compute"] < bf16.breakdown_s[
        "compute"]


def test_loss_traffic_is_the_closed_form(monkeypatch: pytest.MonkeyPatch) -> None:
    # fp32 cross entropy over tokens x vocab/tp logits, once per micro-batch on the last stage
    s = api.system("dgx-h100", 8)
    plan = _tp_plan(global_batch=8, micro_batch=2)
    model = load_model("llama3-8b")
    full = _ok(evaluate_train(s, model, plan, check_memory=False))
    monkeypatch.setattr(step, "LOSS_BYTES_PER_LOGIT", 0.0)
    without = _ok(evaluate_train(s, model, plan, check_memory=False))
    bw, _, _ = kernels.copy_bandwidth(s.chip, load_calibration())
    logits = 2 * 4096 * model.vocab_size / 8
    expected = plan.microbatches * 60.0 * logits / bw
    got = full.breakdown_s["compute"] - without.breakdown_s["compute"]
    assert math.isclose(got, expected, rel_tol=1e-9)


def test_dualpipe_hides_ep_traffic_up_to_compute_and_doubles_weights() -> None:
    s = api.system("hgx-h800", 64)
    ds = load_model("deepseek-v3")
    base = TrainPlan(pp=4, dp=16, ep=16, zero=1, micro_batch=1, global_batch=128,
                     seq_len=4096, recompute="full", precision="fp8")
    plain = _ok(evaluate_train(s, ds, base, check_memory=False))
    dual = _ok(evaluate_train(s, ds, replace(base, pp_schedule="dualpipe"),
                              check_memory=False))
    assert 0.0 <= dual.breakdown_s["ep_comm"] < plain.breakdown_s["ep_comm"]
    assert math.isclose(dual.memory.weights, 2 * plain.memory.weights)
    # whatever DualPipe hides still costs the SMs the communication kernels take
    assert dual.breakdown_s["overlap_interference"] > plain.breakdown_s["overlap_interference"]


def test_placement_order_moves_tp_off_the_scale_up_domain() -> None:
    s = api.system("dgx-h100", 64)
    base = TrainPlan(tp=8, pp=2, dp=4, micro_batch=1, global_batch=16, seq_len=4096,
                     sequence_parallel=True, recompute="full")
    inner = _ok(evaluate_train(s, L70, base, check_memory=False))
    outer = _ok(evaluate_train(s, L70, replace(base, order="dp-tp-cp-pp"),
                               check_memory=False))
    assert base.stride("tp") == 1 and replace(base, order="dp-tp-cp-pp").stride("tp") == 4
    # TP over InfiniBand instead of NVLink: slower; nothing else changes the FLOPs
    assert outer.breakdown_s["tp_comm"] > 2 * inner.breakdown_s["tp_comm"]
    assert outer.breakdown_s["compute"] == inner.breakdown_s["compute"]


def test_bad_order_is_one_line_error() -> None:
    with pytest.raises(SpecError, match="order"):
        TrainPlan(order="tp-dp")


def test_fsdp_gathers_expert_weights_too() -> None:
    # ZeRO-3 on an MoE model: without expert parallelism every rank gathers all experts
    s = api.system("dgx-h100", 16)
    mix = load_model("mixtral-8x7b")
    base = TrainPlan(dp=16, zero=3, micro_batch=1, global_batch=16, seq_len=4096,
                     recompute="full")
    plain = _ok(evaluate_train(s, mix, base, check_memory=False))
    sharded = _ok(evaluate_train(s, mix, replace(base, ep=8), check_memory=False))

    def dp_traffic(r: TrainResult) -> float:  # exposed + hidden (interference / share)
        hidden = r.breakdown_s["overlap_interference"] / step.COMM_SM_SHARE
        return r.breakdown_s["dp_comm"] + hidden

    # (the sharded run's hidden traffic also holds its expert all-to-all, so the ratio of
    # the two is below the 8x expert-weight ratio; 1.5x since issue 11's collective fixes)
    assert dp_traffic(plain) > 1.5 * dp_traffic(sharded)
    assert plain.breakdown_s["dp_comm"] > sharded.breakdown_s["dp_comm"]


def test_cli_ranks_per_chip_counts_dies_as_ranks() -> None:
    import json

    from typer.testing import CliRunner

    from superpod.cli import app

    def run(*extra: str) -> dict[str, object]:
        r = CliRunner().invoke(app, ["train", "-s", "cloudmatrix384", "-m", "llama3-70b",
                                     "--global-batch", "768", "--seq-len", "4096", "--tp", "8",
                                     "--pp", "4", "--json", *extra])
        assert r.exit_code == 0, r.output
        return dict(json.loads(r.stdout))

    one, two, default = run("--ranks-per-chip", "1"), run("--ranks-per-chip", "2"), run()
    assert one["chips"] == two["chips"] == 384
    assert two["plan"]["dp"] == 2 * one["plan"]["dp"]  # type: ignore[index]
    # by default a 910C package is its two NPUs (catalog: devices 2)
    assert default["plan"]["dp"] == two["plan"]["dp"]  # type: ignore[index]


def test_cli_degrees_that_do_not_divide_are_one_line_errors() -> None:
    from typer.testing import CliRunner

    from superpod.cli import app

    r = CliRunner().invoke(app, ["train", "-s", "dgx-h100", "-m", "llama3-8b",
                                 "--global-batch", "8", "--seq-len", "4096", "--tp", "3"])
    assert r.exit_code == 2 and "does not divide the 8 ranks" in r.output
    r = CliRunner().invoke(app, ["plan", "infer", "-s", "gb200-nvl72", "-m", "llama3-8b",
                                 "--slo-tpot-ms", "-5"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_framework_profiles_from_case_text() -> None:
    from superpod.train.frameworks import framework_for

    titan = framework_for("torchtitan 2D+AsyncTP + compile")
    assert (titan.attention_kernel, titan.tp_comm_overlap) == ("fa2", True)
    assert titan.recompute("selective") == "op" and titan.recompute("full") == "full"
    assert framework_for("Megatron-LM (2021)").attention_kernel == "unfused"
    assert framework_for("NeMo 24.07 / Megatron-Core").tp_comm_overlap
    ds = framework_for("HAI-LLM (DualPipe)")
    assert ds.schedule(None, 1) == "dualpipe" and ds.schedule("1f1b", 1) == "1f1b"
    assert framework_for("anything").schedule(None, 4) == "interleaved"
