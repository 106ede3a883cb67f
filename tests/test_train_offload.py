"""Optimizer (ZeRO-Offload) and activation offload: hand-checked closed forms."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.hardware.memory import Tier
from superpod.train import offload as off


def tier(bw: float = 64e9, lat: float = 0.0, share: float = 250e9) -> Tier:
    return Tier(name="host", what="test", capacity_bytes=2e12, share_bytes=share,
                bandwidth_bytes_per_s=bw, peak_bandwidth_bytes_per_s=bw, latency_s=lat)


def test_optimizer_offload_dgx_h100_hand_checked() -> None:
    # 1 B parameters on the rank; PCIe 5.0 x16 64 GB/s; 76.8 GB/s of DRAM per GPU
    c = off.optimizer_offload(params_per_rank=1e9, tier=tier(), dram_bytes_per_s=76.8e9,
                              forward_s=0.2, backward_s=0.4, overlap="serial")
    assert c.transfer_s == pytest.approx(2 * 2e9 / 64e9)  # 62.5 ms
    assert c.cpu_update_s == pytest.approx(28e9 / 76.8e9)  # 364.6 ms
    assert c.exposed_s == pytest.approx(0.0625 + 28e9 / 76.8e9)
    assert c.hbm_freed_bytes == pytest.approx(14e9)
    assert c.offloaded_bytes == pytest.approx(16e9)
    assert c.fits


def test_overlap_hides_the_transfers_and_delay_hides_the_cpu_step() -> None:
    kw = dict(params_per_rank=1e9, tier=tier(), dram_bytes_per_s=76.8e9, forward_s=0.2,
              backward_s=0.4)
    ov = off.optimizer_offload(**kw, overlap="overlapped")  # type: ignore[arg-type]
    assert ov.exposed_s == pytest.approx(28e9 / 76.8e9)  # 31 ms each way, hidden
    dl = off.optimizer_offload(**kw, overlap="delayed")  # type: ignore[arg-type]
    assert dl.exposed_s == pytest.approx(0.0)  # 365 ms < 600 ms of forward + backward
    short = off.optimizer_offload(params_per_rank=1e9, tier=tier(), dram_bytes_per_s=76.8e9,
                                  forward_s=0.01, backward_s=0.02, overlap="overlapped")
    assert short.exposed_s == pytest.approx((0.03125 - 0.02) + 28e9 / 76.8e9
                                            + (0.03125 - 0.01))


def test_offload_that_does_not_fit_the_share_says_so() -> None:
    c = off.optimizer_offload(params_per_rank=20e9, tier=tier(share=250e9),
                              dram_bytes_per_s=76.8e9, forward_s=1, backward_s=2)
    assert not c.fits  # 320 GB of fp32 state over a 250 GB share


def test_activation_offload_hand_checked() -> None:
    c = off.activation_offload(activation_bytes_per_microbatch=10e9, microbatches=8,
                               held_microbatches=4, tier=tier(bw=80e9), compute_s=1.0)
    assert c.transfer_s == pytest.approx(2 * 8 * 10e9 / 80e9)  # 2 s
    assert c.exposed_s == pytest.approx(1.0)
    assert c.hbm_freed_bytes == pytest.approx(30e9)


def test_the_pool_gives_cloudmatrix_more_room_than_host_gives_one_node() -> None:
    m = api.system("cloudmatrix384").memory
    assert m.tier("pool").capacity_bytes == 48 * m.tier("host").capacity_bytes
    assert m.tier("pool").share_bytes == m.tier("host").share_bytes


@given(p=st.floats(0, 5e10), f=st.floats(0, 10), b=st.floats(0, 10), bw=st.floats(1e9, 1e12),
       dram=st.floats(1e9, 1e12))
@settings(max_examples=100, deadline=None)
def test_exposed_is_ordered_serial_over_overlapped_over_delayed(p, f, b, bw, dram):  # type: ignore[no-untyped-def]
    kw = dict(params_per_rank=p, tier=tier(bw=bw, lat=1e-6), dram_bytes_per_s=dram,
              forward_s=f, backward_s=b)
    s = off.optimizer_offload(**kw, overlap="serial").exposed_s  # type: ignore[arg-type]
    o = off.optimizer_offload(**kw, overlap="overlapped").exposed_s  # type: ignore[arg-type]
    d = off.optimizer_offload(**kw, overlap="delayed").exposed_s  # type: ignore[arg-type]
    assert s >= o - 1e-12 >= d - 2e-12 >= -2e-12


def test_layer_activation_offload_hand_checked() -> None:
    # 10 of a rank's layers, 2 GB each a micro-batch, 16 micro-batches, one in flight
    c = off.layer_activation_offload(layer_bytes=2e9, layers=10, microbatches=16,
                                     held_microbatches=1, tier=tier(bw=100e9), compute_s=5.0)
    assert c.transfer_s == pytest.approx(2 * 16 * 20e9 / 100e9)  # 6.4 s, 1.4 s beyond compute
    assert c.exposed_s == pytest.approx(1.4)
    assert c.hbm_freed_bytes == c.offloaded_bytes == pytest.approx(20e9) and c.fits
    none = off.layer_activation_offload(layer_bytes=2e9, layers=0, microbatches=16,
                                        held_microbatches=1, tier=tier(), compute_s=5.0)
    assert none.transfer_s == none.exposed_s == none.hbm_freed_bytes == 0.0


def test_megatron_fsdp_on_grace_offloads_the_layers_its_recipe_offloads() -> None:
    """Megatron-Bridge's Llama 3 70B FSDP recipe on GB200 keeps 40 layers' activations in
    Grace memory (cpu_offloading_num_layers=40, FP8-CS, MBS 2, 8K); the memory model finds
    the same count as the fewest that fit, and the transfers hide under compute. Off Grace
    (B200 behind PCIe) nothing is offloaded: the run recomputes instead."""
    import os

    import superpod
    from superpod.hardware.catalog import load_catalog
    from superpod.train.validate import best_train_result
    from superpod.validate.cases import Case, load_cases

    path = os.path.join(os.path.dirname(superpod.__file__), "validation", "extra-train.yaml")
    cases = {c.id: c for c in load_cases(path) if isinstance(c, Case)}
    case = cases["train-mbridge2604-gb200-llama3_70b_fp8-64gpu"]
    cat = load_catalog()
    res, _ = best_train_result(case, cat)
    note = next(n for n in res.notes if n.startswith("offload:"))
    assert "activations of 40 of 80 layers" in note and res.plan.recompute == "none"
    assert res.breakdown_s["offload"] == 0.0
    assert abs(sum(res.breakdown_s.values()) - res.step_time_s) < 1e-9 * res.step_time_s
    assert res.memory.total <= cat.chips["gb200"].hbm_bytes * 0.95
    b200 = case.model_copy(update={"system": case.system.model_copy(
        update={"preset": "dgx-b200"})})
    other, _ = best_train_result(b200, cat)
    assert not any(n.startswith("offload:") for n in other.notes)
    assert other.plan.recompute != "none"
