"""Power by activity (issue 14, convention 8): tensor cores, HBM and links, each at its own
activity; the same job at FP8 and BF16 draws what it does, not its MFU."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.power import Load, power_breakdown_w
from superpod.power.activity import MAX_IO_SHARE, component_shares
from superpod.train.economics import train_activity
from superpod.train.plan import TrainPlan
from superpod.train.step import TrainResult, evaluate_train
from superpod.workload.model import load_model

CHIPS = ("h100-sxm", "b200", "ascend-910c", "ascend-950dt", "mi300x", "tpu-v5p")


@pytest.mark.parametrize("chip_id", CHIPS)
def test_shares_add_up_and_cores_keep_a_share(chip_id: str) -> None:
    chip = api.catalog().chips[chip_id]
    s_c, s_m, s_l = component_shares(chip)
    assert s_c + s_m + s_l == pytest.approx(1.0)
    assert s_m > 0 and s_l >= 0
    assert s_m + s_l <= MAX_IO_SHARE + 1e-12


def test_h100_shares_by_hand() -> None:
    """700 W, 3.35 TB/s HBM, 450 GB/s NVLink one way: HBM 104.5 W, links 36 W of 490 W."""
    s_c, s_m, s_l = component_shares(api.catalog().chips["h100-sxm"])
    assert s_m == pytest.approx(3.9e-12 * 8 * 3.35e12 / 490, rel=0.01)
    assert s_l == pytest.approx(5e-12 * 16 * 450e9 / 490, rel=0.01)


@settings(max_examples=30, deadline=None)
@given(u=st.floats(0, 1), v=st.floats(0, 1))
def test_busier_hbm_draws_more_at_the_same_tensor_activity(u: float, v: float) -> None:
    s = api.system("gb200-nvl72")
    lo, hi = sorted((u, v))
    p_lo = power_breakdown_w(s, Load(compute=0.5, memory=lo, network=0.2))["accelerators"]
    p_hi = power_breakdown_w(s, Load(compute=0.5, memory=hi, network=0.2))["accelerators"]
    assert p_lo <= p_hi * (1 + 1e-12)


def _job(precision: str) -> tuple[TrainResult, Load]:
    s = api.system("gb200-nvl72")
    m = load_model("llama3-70b")
    res = evaluate_train(s, m, TrainPlan(tp=8, dp=9, global_batch=72, seq_len=4096,
                                         sequence_parallel=True, precision=precision,
                                         tp_comm_overlap=True))
    assert isinstance(res, TrainResult)
    return res, train_activity(s, m, res)


def test_fp8_job_moves_the_same_bytes_in_less_time() -> None:
    """FP8 shortens the step: the cores run kernels a smaller share of it (the compute
    stream's time, not MFU against the FP8 peak), HBM and links a larger one; power follows
    all three, so it is not the BF16 power scaled by the MFU ratio."""
    bf, a_bf = _job("bf16")
    f8, a_f8 = _job("fp8")
    assert f8.step_time_s < bf.step_time_s
    b = f8.breakdown_s
    busy = b["compute"] + b["recompute"] + b["overlap_interference"]
    assert a_f8.compute == pytest.approx(busy / f8.step_time_s)
    assert a_f8.compute > f8.mfu  # a core running an FP8 GEMM is busy, not half idle
    assert a_f8.memory > a_bf.memory
    assert a_f8.network > a_bf.network
    s = api.system("gb200-nvl72")
    p_bf = power_breakdown_w(s, a_bf)["accelerators"]
    p_f8 = power_breakdown_w(s, a_f8)["accelerators"]
    idle = 72 * 1200 * 0.3
    by_mfu = idle + (p_bf - idle) * f8.hfu / bf.hfu  # the old rule: MFU alone
    assert p_f8 > by_mfu * 1.01


def test_serving_activity_by_hand_and_idle_chips_at_the_floor() -> None:
    from superpod.infer.economics import infer_activity, infer_economics

    s = api.system("gb200-nvl72")
    row = {"chips": 36, "tokens_per_s": 1e5,
           "breakdown_s": {"gemm_compute": 0.01, "attention_compute": 0.01,
                           "weight_memory": 0.015, "kv_memory": 0.005, "elementwise": 0.0,
                           "tp_comm": 0.0, "ep_comm": 0.01, "pp_comm": 0.0}}
    load = infer_activity(s, row)  # half the chips serve: activities halved
    assert (load.compute, load.memory, load.network) == pytest.approx((0.2, 0.2, 0.1))
    econ = infer_economics(s, api.catalog(), row)
    assert econ["it_power_w"] < s.power_w and econ["usd_per_million_tokens"] > 0


def test_serving_without_a_price_keeps_its_power() -> None:
    from superpod.infer.economics import infer_economics

    s = api.system("atlas-950-superpod", 64)
    row = {"chips": 64, "tokens_per_s": 1e5, "breakdown_s": {"gemm_compute": 1.0}}
    econ = infer_economics(s, api.catalog(), row)
    assert econ["usd_per_million_tokens"] is None and econ["capex_usd"] is None
    assert "ascend-950dt" in econ["cost_error"]
    assert econ["it_power_w"] > 0 and econ["tokens_per_j"] > 0


def test_disaggregated_pools_weighted_by_their_chips_and_replicas_counted() -> None:
    from superpod.infer.economics import infer_activity, replicated

    s = api.system("gb200-nvl72")
    row = {"chips": 36, "tokens_per_s": 1e5, "prefill_chips": 12, "decode_chips": 24,
           "breakdown_s": {"weight_memory": 1.0},
           "iterations": [{"phase": "prefill", "breakdown_s": {"gemm_compute": 1.0}},
                          {"phase": "decode", "breakdown_s": {"gemm_compute": 0.5,
                                                              "weight_memory": 0.5}}]}
    one = infer_activity(s, row)
    assert one.compute == pytest.approx(12 / 72 + 24 / 72 * 0.5)
    assert one.memory == pytest.approx(24 / 72 * 0.5)
    two = replicated(row, 72)
    assert two["instances"] == 2 and two["tokens_per_s"] == 2e5 and two["idle_chips"] == 0
    both = infer_activity(s, two)
    assert both.compute == pytest.approx(2 * one.compute)
