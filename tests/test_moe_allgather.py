"""TensorRT-LLM's attention-DP MoE exchange: all-gather + reduce-scatter at EP <= top_k."""

from __future__ import annotations

import dataclasses

from superpod import api
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.iteration import engine
from superpod.infer.runtime import TRTLLM_BENCH, runtime_for
from superpod.workload.model import load_model

DS = load_model("deepseek-v3")  # top_k 8
FP8 = InferOptions(precision="fp8", kv_precision="fp8")
AG = dataclasses.replace(FP8, moe_allgather=True)


def test_allgather_exchange_closed_form() -> None:
    """EP 8 <= top_k 8: one all-gather of T ep h FP8 elements and one reduce-scatter of
    T ep h BF16 over the EP group, the same on every rank (no imbalance factor)."""
    s = api.system("hgx-h200", 8)
    lay = ServingLayout(dp=8, ep=8)
    eng = engine(s, DS, lay, AG)
    tokens, h = 256.0, DS.hidden_size
    want = (eng.coll("all_gather", 8, tokens * 8 * h * 1.0)
            + eng.coll("reduce_scatter", 8, tokens * 8 * h * 2.0))
    for gamma in (1.0, 1.6):
        t, holds = eng._ep_comm(tokens, gamma)
        assert t == want and holds


def test_allgather_only_at_ep_up_to_top_k_with_attention_dp() -> None:
    """Above top_k (or without attention DP) the dispatch / combine kernels stay."""
    s = api.system("hgx-h200", 16)
    for lay in (ServingLayout(dp=16, ep=16), ServingLayout(tp=8, ep=8)):
        on = engine(s, DS, lay, AG)._ep_comm(256.0, 1.3)
        off = engine(s, DS, lay, FP8)._ep_comm(256.0, 1.3)
        assert on == off


def test_allgather_payload_by_format() -> None:
    """NVFP4 is gathered as FP4 plus one FP8 scale a 16 elements; FP8 as FP8; weight-only
    formats in BF16."""
    assert InferOptions(precision="fp4", kv_precision="fp8").allgather_bytes == 0.5 + 1 / 16
    assert FP8.allgather_bytes == 1.0
    assert InferOptions(precision="mxfp4", kv_precision="bf16",
                        weight_only=True).allgather_bytes == 2.0
    assert InferOptions(precision="bf16", kv_precision="bf16").allgather_bytes == 2.0
    # block-scaled FP8 (DeepSeek's checkpoints) is quantised after the gather: BF16
    assert dataclasses.replace(FP8, fp8_block_scales=True).allgather_bytes == 2.0
    assert InferOptions(precision="fp4", kv_precision="fp8",
                        fp8_block_scales=True).allgather_bytes == 0.5 + 1 / 16


def test_trtllm_runtime_exchanges_by_allgather() -> None:
    assert runtime_for("TensorRT-LLM (PyTorch backend), trtllm-bench throughput") \
        is TRTLLM_BENCH
    assert TRTLLM_BENCH.allgather_moe()
    assert not runtime_for("SGLang").allgather_moe()
