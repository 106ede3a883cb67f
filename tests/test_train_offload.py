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
