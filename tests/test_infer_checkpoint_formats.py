"""Formats inside a checkpoint beside its weight format, and the decode-attention format:
the MLA projections NVIDIA's NVFP4 DeepSeek checkpoints keep in BF16
(``InferOptions.bf16_gemms``, ``runtime.MODELOPT_MLA_BF16``) and FP8 MLA decode over an FP8
latent cache on Blackwell (``InferOptions.fp8_mla_decode``)."""

from __future__ import annotations

import dataclasses

import pytest

from superpod import api
from superpod.infer import memory as mem
from superpod.infer.config import InferOptions, ServingLayout, decode_attention_dtype
from superpod.infer.iteration import Iteration, iteration
from superpod.infer.runtime import DEFAULT, SGLANG, TRTLLM_BENCH
from superpod.workload.model import load_model

DS = load_model("deepseek-v3")
DEP4 = ServingLayout(dp=4, ep=4)
FP4 = InferOptions(precision="fp4", kv_precision="fp8", eplb=False)
MLA_BF16 = ("kv_down", "kv_up", "q_down", "q_up")
#: DeepSeek-V3 per layer: q_a 1536 x 7168, q_b (128 x 192) x 1536, kv_a 576 x 7168,
#: kv_b (128 x (128 + 128)) x 512 = 11,010,048 + 37,748,736 + 4,128,768 + 16,777,216
MLA_BF16_PARAMS_PER_LAYER = 69_664_768
FP4_BYTES = 0.5 + 1 / 16  #: NVFP4: a 4-bit element and one FP8 scale a 16-element block


def _it(res: object) -> Iteration:
    assert isinstance(res, Iteration), res
    return res


def test_trtllm_fp4_mla_checkpoints_keep_the_projections_but_wo_in_bf16() -> None:
    names = set(TRTLLM_BENCH.bf16_gemms_for(True, "fp4"))
    assert set(MLA_BF16) <= names and "o_proj" not in names  # v2: wo quantised to NVFP4
    assert TRTLLM_BENCH.bf16_gemms_for(True, "fp8") == ()  # FP8 checkpoints: not this rule
    assert TRTLLM_BENCH.bf16_gemms_for(False, "fp4") == ()  # GQA models: not this recipe
    assert SGLANG.bf16_gemms_for(True, "fp4") == () == DEFAULT.bf16_gemms_for(True, "fp4")
    opts = dataclasses.replace(FP4, bf16_gemms=("q_up", "kv_down", "q_up"))
    assert opts.bf16_gemms == ("kv_down", "q_up")  # a set, sorted


def test_bf16_projections_add_their_extra_bytes_to_every_rank() -> None:
    wide = dataclasses.replace(FP4, bf16_gemms=MLA_BF16)
    extra = mem.weight_bytes_rank(DS, DEP4, wide) - mem.weight_bytes_rank(DS, DEP4, FP4)
    # 61 layers (no MTP block loaded) x 69.66 M params x (2 - 0.5625) bytes = 6.109 GB
    assert extra == pytest.approx(61 * MLA_BF16_PARAMS_PER_LAYER * (2.0 - FP4_BYTES),
                                  rel=1e-9)
    assert extra == pytest.approx(6.1087e9, rel=1e-4)


def test_bf16_projections_run_on_the_16_bit_tensor_cores_in_prefill() -> None:
    s = api.system("dgx-b200", 4)
    wide = dataclasses.replace(FP4, bf16_gemms=MLA_BF16)
    kw = {"phase": "prefill", "batch": 4, "context": 8192}  # 8,192 tokens a rank
    base = _it(iteration(s, DS, DEP4, FP4, **kw))
    bf16 = _it(iteration(s, DS, DEP4, wide, **kw))
    added = bf16.breakdown_s["gemm_compute"] - base.breakdown_s["gemm_compute"]
    # 2 x 8192 x 69.66 M x 61 = 69.6 TFLOP move from the 9 PFLOP/s FP4 peak to the 2.25
    # BF16 one: at least 69.6 T / 2.25 P - 69.6 T / (0.5 x 9 P) = 15.5 ms more (FP4 at no
    # less than half its peak), at most 69.6 T / (0.5 x 2.25 P) = 61.9 ms
    flop = 2 * 8192 * MLA_BF16_PARAMS_PER_LAYER * 61
    assert flop / 2.25e15 - flop / 4.5e15 <= added <= flop / 1.125e15
    assert bf16.breakdown_s["attention_compute"] == base.breakdown_s["attention_compute"]


def test_fp8_mla_decode_needs_mla_an_fp8_cache_and_blackwell() -> None:
    cat = api.catalog()
    b200, h200 = cat.chip("b200"), cat.chip("h200")
    on = dataclasses.replace(FP4, fp8_mla_decode=True)
    assert decode_attention_dtype(b200, DS, on) == "fp8"
    assert decode_attention_dtype(b200, DS, FP4) == "bf16"  # not asked
    assert decode_attention_dtype(b200, DS, dataclasses.replace(on, kv_precision="bf16")) \
        == "bf16"
    assert decode_attention_dtype(h200, DS, dataclasses.replace(on, precision="fp8")) == "bf16"
    assert decode_attention_dtype(b200, load_model("llama3-70b"), on) == "bf16"


def test_fp8_mla_decode_speeds_compute_bound_attention_as_measured_on_b200() -> None:
    s = api.system("dgx-b200", 4)
    kw = {"phase": "decode", "batch": 1536, "context": 1536}
    base = _it(iteration(s, DS, DEP4, FP4, **kw))
    fp8 = _it(iteration(s, DS, DEP4, dataclasses.replace(FP4, fp8_mla_decode=True), **kw))
    # TensorRT-LLM's B200 kernels: 1,523.57 FP8 against 1,029.13 BF16 TFLOP/s (1.480x, not
    # the peaks' 2x); the latent read (384 x 1536 x 576 B a layer) stays below the compute
    assert fp8.breakdown_s["attention_compute"] == pytest.approx(
        base.breakdown_s["attention_compute"] / 1.4804, rel=1e-4)
    assert fp8.breakdown_s.get("kv_memory", 0.0) == 0.0
    # prefill attention is untouched (the context phase computes in 16-bit)
    pre = {"phase": "prefill", "batch": 4, "context": 2048}
    assert _it(iteration(s, DS, DEP4, dataclasses.replace(FP4, fp8_mla_decode=True), **pre)
               ).breakdown_s == _it(iteration(s, DS, DEP4, FP4, **pre)).breakdown_s
