"""Tile rows of ``triton_kernels`` ``matmul_ogs``, the grouped GEMM MXFP4 experts run
through where the chip has no FP4 MMA (TensorRT-LLM's TRITON MoE backend on Hopper):
``block_m = max(16, min(next_power_of_2(m // n_expts_tot), 128))`` for every expert."""

from __future__ import annotations

import math

import pytest

from superpod import api
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.iteration import SMALL_M_TILE, engine, triton_moe_block_m
from superpod.workload.model import model_from_config

GPT_OSS_120B = {"hidden_size": 2880, "num_hidden_layers": 36, "num_attention_heads": 64,
                "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 2880,
                "vocab_size": 201088, "hidden_act": "silu", "tie_word_embeddings": False,
                "num_local_experts": 128, "num_experts_per_tok": 4,
                "moe_intermediate_size": 2880}


@pytest.mark.parametrize(("tpe", "block_m"), [(0.5, 16), (1, 16), (16, 16), (17, 32),
                                               (64, 64), (65, 128), (128, 128), (512, 128)])
def test_block_m_is_the_next_power_of_two_clamped_to_16_and_128(tpe: float,
                                                                block_m: int) -> None:
    assert triton_moe_block_m(tpe) == block_m


def _engine(preset: str, chips: int, dp: int, ep: int) -> object:
    model = model_from_config(GPT_OSS_120B)
    opts = InferOptions(precision="mxfp4", kv_precision="bf16", moe_allgather=True)
    lay = ServingLayout(dp=dp, ep=ep)
    return engine(api.system(preset, chips), model, lay, opts.for_chip(
        api.catalog().chip("h100-sxm" if "h100" in preset else "b200")))


def test_triton_backend_only_where_mxfp4_has_no_native_mma() -> None:
    assert _engine("dgx-h100", 4, 4, 4).triton_moe  # type: ignore[attr-defined]
    assert not _engine("dgx-b200", 2, 2, 2).triton_moe  # type: ignore[attr-defined]


def test_the_library_tile_pads_to_its_own_rows_not_the_half_height_one() -> None:
    eng = _engine("dgx-h100", 4, 4, 4)
    m, n, k, experts = 183.0, 5760, 2880, 32.0
    w = eng.opts.weight_bytes  # type: ignore[attr-defined]
    free, _ = eng.gemm(m, n, k, experts, w)  # type: ignore[attr-defined]
    lib, _ = eng.gemm(m, n, k, experts, w, tile_m=128)  # type: ignore[attr-defined]
    # 183 rows: 2 x 128 = 256 padded rows under block_m 128, 3 x 64 = 192 under the
    # half-height tile the model picks itself; the padded work is costed, so 128 is slower
    assert math.ceil(m / 128) * 128 > math.ceil(m / SMALL_M_TILE) * SMALL_M_TILE
    assert lib > free
    # a block_m at or below the half-height tile keeps it (no sub-wgmma tile is costed)
    small, _ = eng.gemm(m, n, k, experts, w, tile_m=32)  # type: ignore[attr-defined]
    assert small == pytest.approx(free)
