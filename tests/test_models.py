"""Model specs and operator accounting: counts against published figures, closed forms, files.

Tiers: published parameter counts (tolerances stated per test), hand-checked closed forms
(PaLM's 6N + 12 L H d s; Korthikanti et al. 2022 Table 2, exact), and strict-key loading.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from superpod.errors import SpecError
from superpod.workload.model import (
    HARMLESS_CONFIG_KEYS,
    MODEL_PRESETS,
    ModelSpec,
    load_model,
    load_presets,
    model_from_config,
)
from superpod.workload.ops import (
    activation_bytes_per_layer,
    attention_core_flops,
    expected_active_expert_fraction,
    hardware_flops_per_token,
    head_gemms,
    layer_gemms,
    layer_weight_bytes,
    model_flops_per_token,
    total_flops,
)

PRESET_IDS = sorted(MODEL_PRESETS)
MOE_IDS = [p for p in PRESET_IDS if MODEL_PRESETS[p].model.is_moe]
DENSE_IDS = [p for p in PRESET_IDS if not MODEL_PRESETS[p].model.is_moe]


def gpt(h: int, a: int, layers: int = 2) -> ModelSpec:
    """The paper's GPT case: MHA, 4h gelu MLP."""
    return model_from_config({"hidden_size": h, "num_hidden_layers": layers,
                              "num_attention_heads": a, "intermediate_size": 4 * h,
                              "vocab_size": 51200, "hidden_act": "gelu"}, file="gpt")


# ---------------------------------------------------------------------- parameter counts


def test_catalog_has_the_requested_presets() -> None:
    assert set(PRESET_IDS) >= {
        "gpt3-175b", "llama2-70b", "llama3-8b", "llama3-70b", "llama3.1-405b", "mixtral-8x7b",
        "mixtral-8x22b", "deepseek-v3", "qwen3-235b-a22b", "pangu-ultra-135b"}
    for preset in MODEL_PRESETS.values():
        assert preset.source and preset.published.source


@pytest.mark.parametrize("preset_id", PRESET_IDS)
def test_total_params_match_published_within_1_5_percent(preset_id: str) -> None:
    preset = MODEL_PRESETS[preset_id]
    assert preset.model.params_total == pytest.approx(preset.published.total, rel=0.015)


@pytest.mark.parametrize("preset_id", MOE_IDS)
def test_active_params_match_published_within_3_percent(preset_id: str) -> None:
    preset = MODEL_PRESETS[preset_id]
    assert preset.published.active is not None
    assert preset.model.params_active == pytest.approx(preset.published.active, rel=0.03)


def test_llama3_8b_exact_count() -> None:
    # 8,030,261,248: the safetensors total of meta-llama/Meta-Llama-3-8B, by hand:
    # 32 * (2*4096^2 + 2*4096*1024 + 3*4096*14336 + 2*4096) + 2*128256*4096 + 4096
    m = load_model("llama3-8b")
    assert m.params_total == 8_030_261_248
    assert m.params_embedding == m.params_lm_head == 128256 * 4096


def test_deepseek_v3_mtp_and_layer_split() -> None:
    m = load_model("deepseek-v3")
    assert m.is_mla and m.num_moe_layers == 58
    dense, moe = m.params_per_layer(0), m.params_per_layer(3)
    assert dense.mlp == 3 * 7168 * 18432 and dense.moe_routed == 0
    assert moe.moe_routed == 256 * 3 * 7168 * 2048 and moe.moe_shared == 3 * 7168 * 2048
    assert moe.router == 256 * 7168
    # the MTP block: one MoE block + 2h*h projection + norms, ~11.6B; the checkpoint's 685B
    # adds copies of the embedding and head stored inside the MTP layer
    assert m.params_mtp == pytest.approx(11.6e9, rel=0.01)
    with_copies = m.count_params(include_mtp=True) + 2 * m.vocab_size * m.hidden_size
    assert with_copies == pytest.approx(685e9, rel=0.005)
    assert m.count_params(include_mtp=True) == pytest.approx(685e9, rel=0.015)


def test_tied_head_and_active_equal_total_for_dense() -> None:
    m = load_model("gpt3-175b")
    assert m.params_lm_head == 0 and m.norm_type == "layernorm"
    assert m.params_embedding == (50257 + 2048) * 12288
    # the tied head is still a GEMM: N of 6N = non-embedding + V h
    assert m.params_active_nonembedding == m.params_total - m.params_embedding + 50257 * 12288
    for pid in DENSE_IDS:
        dense = MODEL_PRESETS[pid].model
        assert dense.params_active == dense.params_total


# ---------------------------------------------------------------------- FLOPs


def test_model_flops_closed_form_llama3_8b() -> None:
    m = load_model("llama3-8b")
    s = 8192
    n = 8_030_261_248 - 128256 * 4096  # non-embedding, LM head kept
    assert model_flops_per_token(m, s) == 6 * n + 12 * 32 * 32 * 128 * s


def _forward_flops_per_token(m: ModelSpec, tokens: int = 4096) -> float:
    body = sum(total_flops(layer_gemms(m, i, tokens)) for i in range(m.num_hidden_layers))
    return (body + total_flops(head_gemms(m, tokens))) / tokens


@pytest.mark.parametrize("preset_id", PRESET_IDS)
def test_gemm_flops_times_three_is_6n_active(preset_id: str) -> None:
    m = MODEL_PRESETS[preset_id].model
    assert 3 * _forward_flops_per_token(m) == pytest.approx(
        6 * m.params_active_nonembedding, rel=0.02)


@pytest.mark.parametrize(("preset_id", "tp"), [("llama3-8b", 2), ("llama3-8b", 8),
                                               ("llama3-70b", 8), ("pangu-ultra-135b", 8),
                                               ("llama2-70b", 4), ("gpt3-175b", 8)])
def test_tensor_parallel_divides_gemm_flops_exactly(preset_id: str, tp: int) -> None:
    m = MODEL_PRESETS[preset_id].model
    for layer in (0, m.num_hidden_layers - 1):
        full = total_flops(layer_gemms(m, layer, 1000))
        assert total_flops(layer_gemms(m, layer, 1000, tp=tp)) * tp == pytest.approx(
            full, rel=1e-12)
    if m.vocab_size % tp == 0:
        assert total_flops(head_gemms(m, 1000, tp)) * tp == total_flops(head_gemms(m, 1000))


def test_expert_parallel_conserves_flops_and_splits_weights() -> None:
    m = load_model("deepseek-v3")
    base = total_flops(layer_gemms(m, 5, 4096))
    for ep in (8, 32, 256):
        gemms = layer_gemms(m, 5, 4096, ep=ep)
        assert total_flops(gemms) == pytest.approx(base, rel=1e-12)
        experts = [g for g in gemms if g.kind == "expert"]
        frac = expected_active_expert_fraction(m, 4096, ep=ep)
        assert experts[0].count == pytest.approx(256 / ep * frac)
    # ep = tp = 8, etp = 1: each rank gets tokens * k / ep pairs (the expert FLOPs of the
    # whole group divided by 8)
    e8 = [g for g in layer_gemms(m, 5, 4096, tp=8, ep=8) if g.kind == "expert"]
    pairs = e8[0].m * e8[0].count
    assert pairs == pytest.approx(4096 * 8 / 8)
    one = layer_weight_bytes(m, 5, 1.0)
    assert one == m.params_per_layer(5).total
    routed = m.params_per_layer(5).moe_routed
    assert one - layer_weight_bytes(m, 5, 1.0, ep=8) == pytest.approx(routed * 7 / 8)


def test_few_tokens_touch_few_experts() -> None:
    m = load_model("mixtral-8x7b")
    one_token = [g for g in layer_gemms(m, 0, 1) if g.kind == "expert"]
    assert one_token[0].count == pytest.approx(2)  # top-2 of 8
    assert one_token[0].m == pytest.approx(1)
    forced = [g for g in layer_gemms(m, 0, 1, experts_active_fraction=1.0)
              if g.kind == "expert"]
    assert forced[0].count == 8
    with pytest.raises(SpecError, match="experts_active_fraction"):
        layer_gemms(m, 0, 1, experts_active_fraction=0.0)


@pytest.mark.parametrize("preset_id", PRESET_IDS)
def test_weight_bytes_match_param_counts(preset_id: str) -> None:
    m = MODEL_PRESETS[preset_id].model
    last = m.num_hidden_layers + m.num_nextn_predict_layers
    for layer in sorted({0, m.first_k_dense_replace, last - 1}):
        assert layer_weight_bytes(m, layer, 2.0) == 2.0 * m.params_per_layer(layer).total


def test_attention_core_flops() -> None:
    m = load_model("llama3-8b")
    full = 4 * 10 * 4096 * 32 * 128
    assert attention_core_flops(m, 10, 4096, causal=False) == full
    assert attention_core_flops(m, 10, 4096) == full / 2
    assert attention_core_flops(m, 10, 4096, tp=8) * 8 == full / 2
    ds = load_model("deepseek-v3")  # QK over 128 + 64, PV over 128
    assert attention_core_flops(ds, 1, 100, causal=False) == 2 * 100 * 128 * (192 + 128)


def test_hardware_flops_recompute_ladder() -> None:
    m = load_model("llama3-70b")
    s = 4096
    none = hardware_flops_per_token(m, s)
    attn = m.num_hidden_layers * attention_core_flops(m, s, s) / s
    body = sum(total_flops(layer_gemms(m, i, s)) for i in range(m.num_hidden_layers)) / s
    assert hardware_flops_per_token(m, s, "selective") == pytest.approx(none + attn)
    assert hardware_flops_per_token(m, s, "full") == pytest.approx(none + attn + body)
    # causal attention counted at half: below the model-FLOPs convention for the same run
    assert none < model_flops_per_token(m, s)
    with pytest.raises(SpecError, match="recompute"):
        hardware_flops_per_token(m, s, "sometimes")  # type: ignore[arg-type]


def test_degrees_must_divide() -> None:
    m = load_model("llama3-8b")
    with pytest.raises(SpecError, match="tp"):
        layer_gemms(m, 0, 10, tp=3)
    q = load_model("qwen3-235b-a22b")  # 4 KV heads, replicated at tp 8
    assert total_flops(layer_gemms(q, 0, 10, tp=8)) > 0
    with pytest.raises(SpecError, match="ep"):
        layer_gemms(q, 0, 10, ep=3)


# ---------------------------------------------------------------------- activations


PAPER_CASES = [(2048, 1, 12288, 96, 8), (2048, 4, 6144, 64, 8), (2048, 1, 20480, 128, 8),
               (2048, 1, 25600, 160, 8), (1024, 2, 4096, 32, 4)]


@pytest.mark.parametrize(("s", "b", "h", "a", "t"), PAPER_CASES)
def test_activation_memory_reproduces_korthikanti_table_2(s: int, b: int, h: int, a: int,
                                                          t: int) -> None:
    m = gpt(h, a)
    sbh = s * b * h

    def act(**kw: Any) -> float:
        return activation_bytes_per_layer(m, s, b, **kw)

    assert act() == pytest.approx(sbh * (34 + 5 * a * s / h), rel=1e-12)
    assert act(tp=t) == pytest.approx(sbh * (10 + 24 / t + 5 * a * s / (h * t)), rel=1e-12)
    assert act(tp=t, sp=True) == pytest.approx(sbh * (34 / t + 5 * a * s / (h * t)),
                                               rel=1e-12)
    assert act(tp=t, recompute="selective") == pytest.approx(sbh * (10 + 24 / t), rel=1e-12)
    assert act(tp=t, sp=True, recompute="selective") == pytest.approx(sbh * 34 / t,
                                                                      rel=1e-12)
    assert act(recompute="full") == pytest.approx(2 * sbh, rel=1e-12)


@pytest.mark.parametrize("preset_id", PRESET_IDS)
def test_sequence_parallel_divides_all_activations(preset_id: str) -> None:
    m = MODEL_PRESETS[preset_id].model
    full = activation_bytes_per_layer(m, 4096, 1)
    assert activation_bytes_per_layer(m, 4096, 1, tp=4, sp=True) * 4 == pytest.approx(full)
    assert activation_bytes_per_layer(m, 4096, 1, dropout=False) < full


def test_generalised_activations_for_gated_gqa_and_moe() -> None:
    llama = load_model("llama3-8b")
    h, s = 4096, 1
    # per token: 10h outside TP + 2*(q 4096 + k 1024 + v 1024 + o 4096) + 2*3*14336 + 5 a s
    expected = 10 * h + 2 * (4096 + 1024 + 1024 + 4096) + 2 * 3 * 14336 + 5 * 32 * s
    assert activation_bytes_per_layer(llama, s, 1) == pytest.approx(expected)
    mix = load_model("mixtral-8x7b")
    moe = 10 * h + 2 * 8 + 2 * 10240 + 2 * 2 * (2 * h + 3 * 14336) + 5 * 32 * s
    assert activation_bytes_per_layer(mix, s, 1) == pytest.approx(moe)


# ---------------------------------------------------------------------- loading


REAL_LOOKING = {
    "_name_or_path": "meta-llama/Meta-Llama-3-8B",
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 8192, "mlp_bias": False, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 500000.0,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.40.0",
    "use_cache": True, "vocab_size": 128256,
}


def test_real_looking_config_json_loads_and_reports_ignored(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(REAL_LOOKING), encoding="utf-8")
    m = load_model(path)
    assert m.params_total == 8_030_261_248
    assert m.name == "config"
    assert {"rope_theta", "rms_norm_eps", "torch_dtype", "architectures", "_name_or_path",
            "max_position_embeddings", "rope_scaling"} <= set(m.ignored_keys)
    assert set(m.ignored_keys) <= HARMLESS_CONFIG_KEYS | {"_name_or_path"}
    assert replace(m, name="Llama 3 8B") == load_model("llama3-8b")  # same shapes
    assert hash(m) == hash(replace(m))  # frozen and hashable: usable as a cache key


def test_unknown_key_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**REAL_LOOKING, "frobnicate_layers": 3}), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_model(path)
    assert info.value.file == str(path) and info.value.field == "frobnicate_layers"
    assert str(path) in str(info.value) and "frobnicate_layers" in str(info.value)


@pytest.mark.parametrize(("patch", "field"), [
    ({"hidden_size": "4096"}, "hidden_size"),
    ({"hidden_act": "tanh"}, "hidden_act"),
    ({"num_key_value_heads": 5}, "num_key_value_heads"),
    ({"num_local_experts": 8}, "num_experts_per_tok"),
    ({"num_experts_per_tok": 2}, "num_experts_per_tok"),
    ({"qk_rope_head_dim": 64}, "qk_rope_head_dim"),
    ({"n_routed_experts": 8, "num_local_experts": 4, "num_experts_per_tok": 2},
     "n_routed_experts, num_local_experts"),
])
def test_bad_values_name_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        model_from_config({**REAL_LOOKING, **patch}, file="my.json")
    assert info.value.file == "my.json" and info.value.field == field


def test_yaml_config_and_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("hidden_size: 64\nnum_hidden_layers: 2\nnum_attention_heads: 4\n"
                    "vocab_size: 100\nhidden_act: gelu\n", encoding="utf-8")
    with pytest.raises(SpecError, match="intermediate_size"):
        load_model(path)
    path.write_text(path.read_text() + "intermediate_size: 256\nname: tiny\n")
    tiny = load_model(path)
    assert tiny.name == "tiny" and not tiny.gated_mlp
    assert tiny.params_total == 2 * (4 * 64 * 64 + 2 * 64 * 256 + 2 * 64) + 2 * 100 * 64 + 64


def test_unknown_preset_and_malformed_json(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="llama3-8b"):
        load_model("llama-9000")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"hidden_size\": 1,", encoding="utf-8")
    with pytest.raises(SpecError, match="malformed JSON"):
        load_model(bad)


def test_qwen2_moe_style_keys() -> None:
    cfg = {"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
           "intermediate_size": 128, "vocab_size": 100, "hidden_act": "silu",
           "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
           "shared_expert_intermediate_size": 96, "decoder_sparse_step": 2,
           "mlp_only_layers": [3], "norm_topk_prob": False}
    m = model_from_config(cfg)
    assert [m.is_moe_layer(i) for i in range(4)] == [False, True, False, False]
    p = m.params_per_layer(1)
    assert p.moe_shared == 3 * 64 * 96 and p.router == 8 * 64 + 64
    assert p.moe_routed_active == 2 * 3 * 64 * 32
    assert m.ignored_keys == ("norm_topk_prob",)


def test_preset_file_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - id: x\n    source: me, here\n    evidence: assumption\n"
                    "    published_params: {total: 1.0e+6, source: mine}\n"
                    "    config: {hidden_size: 64}\n    colour: blue\n", encoding="utf-8")
    with pytest.raises(SpecError, match="colour"):
        load_presets(path)
