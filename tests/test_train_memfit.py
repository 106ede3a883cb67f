"""Memory of the layouts that ran: module-level recompute, what stacks save, pipeline groups,
FSDP gradient sharding and the embedding / head pipeline slots (closed forms by hand)."""

from __future__ import annotations

import math

import pytest

from superpod import api
from superpod.errors import Infeasible, SpecError
from superpod.train import memory as mem
from superpod.train.frameworks import framework_for
from superpod.train.plan import TrainPlan, check_plan
from superpod.train.step import TrainResult, bubble_slots, evaluate_train
from superpod.trust.holdout import holding_out
from superpod.trust.sources import source_key
from superpod.workload.model import load_model
from superpod.workload.ops import SavedActivations, activation_bytes_per_layer

DSV3 = load_model("deepseek-v3")
MIXTRAL = load_model("mixtral-8x7b")
L70 = load_model("llama3-70b")


def _ok(res: TrainResult | Infeasible) -> TrainResult:
    assert isinstance(res, TrainResult), res
    return res


def _moe_layer(m: object) -> int:
    return next(i for i in range(m.num_hidden_layers) if m.is_moe_layer(i))  # type: ignore[attr-defined]


def _act(m: object, saved: SavedActivations, **kw: object) -> float:
    return activation_bytes_per_layer(m, 1, 1, layer=_moe_layer(m), dropout=False,  # type: ignore[arg-type]
                                      recompute="selective", saved=saved, **kw)  # type: ignore[arg-type]


def test_module_recompute_drops_the_discarded_outputs_exactly() -> None:
    m = MIXTRAL  # GQA, gated experts, bf16: bytes per token of one MoE layer
    h, k, i_e = m.hidden_size, m.num_experts_per_tok, m.moe_intermediate_size
    keep = _act(m, SavedActivations())
    # moe_act: the routed experts' SwiGLU output (fc2 input), k I_e elements of 2 B
    assert keep - _act(m, SavedActivations(frozenset({"moe_act"}))) == pytest.approx(2 * k * i_e)
    # layernorm: the pre-MLP norm output (unfused: router and experts read it), h elements
    assert keep - _act(m, SavedActivations(frozenset({"layernorm"}))) == pytest.approx(2 * h)
    # probabilities in the activation: no expert output (k h elements) for the combine
    assert keep - _act(m, SavedActivations(moe_probs_in_act=True)) == pytest.approx(2 * k * h)
    # FP8 activation input: the fc1 output (2 I_e per expert) at one byte instead of two
    assert keep - _act(m, SavedActivations(act_fp8_store=True)) == pytest.approx(2 * k * i_e)


def test_mla_up_projection_and_norm_recompute() -> None:
    m = DSV3
    heads = m.num_attention_heads
    keep = _act(m, SavedActivations())
    qkv = heads * (2 * m.head_dim_qk + m.head_dim_v)
    assert keep - _act(m, SavedActivations(frozenset({"mla_up_proj"}))) == pytest.approx(2 * qkv)
    # layernorm: the MLA input norm, the MoE pre-MLP norm and the two latent norms
    norms = 2 * m.hidden_size + m.q_lora_rank + m.kv_lora_rank
    assert keep - _act(m, SavedActivations(frozenset({"layernorm"}))) == pytest.approx(2 * norms)


def test_group_in_flight_and_bubble_closed_forms() -> None:
    pp, vpp = 8, 4
    # Megatron's group (N = pp): pp + (pp - 1)/vpp in flight, (pp - 1)/vpp bubble slots
    assert mem.in_flight_microbatches(pp, vpp, 64, "interleaved") == pytest.approx(
        pp + (pp - 1) / vpp)
    assert mem.in_flight_microbatches(pp, vpp, 64, "interleaved", 3) == pytest.approx(
        ((vpp - 1) * 3 + 2 * pp - 1) / vpp)
    base = TrainPlan(pp=pp, vpp=vpp, global_batch=64, pp_schedule="interleaved")
    assert bubble_slots(base) == pytest.approx((pp - 1) / vpp)
    assert bubble_slots(base.derive(pp_group=pp)) == pytest.approx((pp - 1) / vpp)
    # N = 1 walks every micro-batch through the loop alone: 1F1B's pp - 1 slots
    assert bubble_slots(base.derive(pp_group=1)) == pytest.approx(pp - 1)
    assert bubble_slots(base.derive(pp_group=3)) == pytest.approx(
        ((pp - 1) + (vpp - 1) * (pp - 3)) / vpp)


def test_smaller_group_holds_less_and_waits_longer() -> None:
    s = api.system("dgx-h100", 64)
    plan = TrainPlan(tp=8, pp=8, vpp=2, dp=1, global_batch=64, seq_len=8192,
                     sequence_parallel=True, pp_schedule="interleaved")
    a = _ok(evaluate_train(s, L70, plan, check_memory=False))
    b = _ok(evaluate_train(s, L70, plan.derive(pp_group=4), check_memory=False))
    assert b.memory.activations < a.memory.activations
    assert b.breakdown_s["pipeline_bubble"] > a.breakdown_s["pipeline_bubble"]
    # a chosen group runs any micro-batch count; Megatron's needs multiples of pp
    odd = plan.derive(global_batch=60)
    assert isinstance(check_plan(odd, 64, 80, 0, 64, 8, 8), Infeasible)
    assert check_plan(odd.derive(pp_group=4), 64, 80, 0, 64, 8, 8) is None


def test_plan_rejects_unknown_modules_and_oversized_groups() -> None:
    with pytest.raises(SpecError):
        TrainPlan(recompute_modules="layernorm,mlp_everything")
    bad = TrainPlan(pp=4, vpp=2, global_batch=8, pp_group=5, pp_schedule="interleaved")
    assert check_plan(bad, 4, 32, 0, 64, 8, 8) is not None


def test_module_recompute_costs_time_and_saves_memory() -> None:
    s = api.system("dgx-h100", 64)
    plan = TrainPlan(pp=2, ep=8, dp=32, global_batch=256, seq_len=4096, micro_batch=1)
    a = _ok(evaluate_train(s, MIXTRAL, plan, check_memory=False))
    b = _ok(evaluate_train(s, MIXTRAL, plan.derive(recompute_modules="layernorm,moe_act"),
                           check_memory=False))
    assert b.memory.activations < a.memory.activations
    assert b.breakdown_s["recompute"] > a.breakdown_s["recompute"]
    # far less than recomputing the whole layer
    c = _ok(evaluate_train(s, MIXTRAL, plan.derive(recompute="full"), check_memory=False))
    assert b.breakdown_s["recompute"] < c.breakdown_s["recompute"] / 5


def test_fsdp_sharded_gradients_hold_no_unsharded_copy() -> None:
    s = api.system("dgx-h100", 64)
    plan = TrainPlan(tp=8, pp=4, dp=2, zero=3, fsdp_regather=False, global_batch=16,
                     seq_len=4096, sequence_parallel=True)
    a = _ok(evaluate_train(s, L70, plan, check_memory=False))
    b = _ok(evaluate_train(s, L70, plan.derive(fsdp_shard_grads=True), check_memory=False))
    from superpod.train.modelfacts import model_facts
    dense, expert = model_facts(L70).params_per_rank(8, 4, 1, 1)
    assert a.memory.gradients - b.memory.gradients == pytest.approx(
        (dense + expert) * mem.WEIGHT_BYTES)
    # its reduce-scatter runs every micro-batch: no less data-parallel traffic
    assert b.breakdown_s["dp_comm"] + b.breakdown_s["overlap_interference"] >= \
        a.breakdown_s["dp_comm"] * 0.999


def test_edge_slots_fit_one_more_virtual_stage_and_lighten_the_first_rank() -> None:
    # 78 layers + embedding + head fill pp 8 x vpp 10 = 80 slots
    assert check_plan(TrainPlan(pp=8, vpp=10, global_batch=8, pp_schedule="interleaved"),
                      8, 78, 0, 64, 8, 8) is not None
    ok = TrainPlan(pp=8, vpp=10, global_batch=8, pp_schedule="interleaved", pp_edge_slots=True)
    assert check_plan(ok, 8, 78, 0, 64, 8, 8) is None
    s = api.system("dgx-h100", 64)
    plan = TrainPlan(tp=8, pp=8, vpp=2, dp=1, global_batch=64, seq_len=8192,
                     sequence_parallel=True, pp_schedule="interleaved")
    a = _ok(evaluate_train(s, L70, plan, check_memory=False))
    b = _ok(evaluate_train(s, L70, plan.derive(pp_edge_slots=True), check_memory=False))
    # 80 layers over 16 chunks: 10 a rank; with the two slots 82 -> 6 a chunk, 12 a rank on
    # the second rank (two chunk-forwards fewer in flight), 11 on the first
    held = 8 + 7 / 2
    per_layer = a.memory.activations / (10 * held)
    assert b.memory.activations == pytest.approx(per_layer * max(11 * held, 12 * (held - 1)))


def test_profiles_state_what_their_stacks_save_and_revert_when_held_out() -> None:
    ds = framework_for("HAI-LLM (DualPipe)")
    assert ds.recompute_modules == "layernorm,mla_up_proj,moe_act" and ds.act_fp8_store
    # the SwiGLU output is recomputed, so the gate weights' gradient needs no expert output
    assert ds.moe_probs_in_act
    mb = framework_for("Megatron-Bridge (NeMo 25.11 container)")
    assert mb.moe_probs_in_act
    meta = framework_for("Meta internal 4D parallelism")
    assert meta.flexible_pp_group and meta.fsdp_shard_grads and meta.pp_edge_slots
    with holding_out(frozenset({source_key("https://arxiv.org/abs/2412.19437")})):
        held = framework_for("HAI-LLM (DualPipe)")
    assert held.recompute_modules == "" and not held.act_fp8_store
    assert not held.moe_probs_in_act
    with holding_out(frozenset({source_key("https://arxiv.org/abs/2407.21783")})):
        held = framework_for("Meta internal 4D parallelism")
    assert not (held.flexible_pp_group or held.fsdp_shard_grads or held.pp_edge_slots)


def test_in_flight_never_exceeds_the_micro_batches() -> None:
    assert mem.in_flight_microbatches(16, 8, 4, "interleaved", 2) == 4.0
    assert math.isclose(mem.in_flight_microbatches(1, 1, 4, "1f1b"), 1.0)


def test_sharded_gradients_sync_once_a_group_under_interleaving() -> None:
    from superpod.train.step import _grad_syncs

    p = TrainPlan(pp=4, vpp=2, global_batch=16, pp_schedule="interleaved",
                  fsdp_shard_grads=True, zero=3, fsdp_regather=False)
    assert _grad_syncs(p) == 4  # 16 micro-batches in groups of pp = 4
    assert _grad_syncs(p.derive(pp_group=3)) == 6  # ceil(16 / 3)
    assert _grad_syncs(p.derive(vpp=1, pp_schedule="1f1b")) == 16  # every micro-batch
    s = api.system("dgx-h100", 64)
    plan = TrainPlan(tp=8, pp=4, vpp=2, dp=2, zero=3, fsdp_regather=False, global_batch=16,
                     seq_len=4096, sequence_parallel=True, pp_schedule="interleaved")
    a = _ok(evaluate_train(s, L70, plan, check_memory=False))
    b = _ok(evaluate_train(s, L70, plan.derive(fsdp_shard_grads=True), check_memory=False))
    from superpod.train.modelfacts import model_facts
    dense, expert = model_facts(L70).params_per_rank(8, 4, 1, 1)
    # the unsharded BF16 gradients give way to one virtual stage's FP32 buffer
    assert a.memory.gradients - b.memory.gradients == pytest.approx(
        (dense + expert) * (mem.WEIGHT_BYTES - mem.GRAD_BYTES / 2))



def test_deepseek_v3_layout_fits_as_it_ran() -> None:
    """DeepSeek-V3 trained on 2,048 H800 (80 GB) with PP16 DualPipe, EP64, no TP (arXiv
    2412.19437 section 3.2): with the report's memory practices the layout fits."""
    from importlib.resources import files

    from superpod.hardware.catalog import load_catalog
    from superpod.train.validate import best_train_result
    from superpod.validate.cases import Case, load_cases
    from superpod.validate.system import case_system
    from superpod.workload.model import model_from_config

    cat = load_catalog()
    path = str(files("superpod") / "validation" / "public.yaml")
    case = next(c for c in load_cases(path)
                if isinstance(c, Case) and c.id == "train-deepseekv3-671B-h800-2048")
    res, assumed = best_train_result(case, cat)
    assert "does not fit" not in assumed
    usable = cat.chips["h800"].hbm_bytes * mem.USABLE_FRACTION
    assert res.memory.total <= usable
    # keeping the eight expert outputs a token for the combine's backward would not fit
    assert case.model is not None
    model = model_from_config(case.model.model_dump(exclude_none=True), file=case.id)
    kept = _ok(evaluate_train(case_system(case, cat), model,
                              res.plan.derive(moe_probs_in_act=False), check_memory=False))
    assert kept.memory.total > usable
    assert kept.step_time_s == pytest.approx(res.step_time_s)  # memory only, same time
