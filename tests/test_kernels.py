"""Kernel roofline: closed forms, calibration fit, bounds, and the published GEMM cases."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from superpod.compute import kernels
from superpod.compute.calibration import GemmEntry, fit_gemm, load_calibration, wave_efficiency
from superpod.hardware.catalog import Catalog, load_catalog

CAT = load_catalog()


def test_wave_efficiency_closed_form() -> None:
    # 1024 x 1024 in 128 x 256 tiles = 32 tiles, one wave over 132 units.
    assert math.isclose(wave_efficiency(1024, 1024, (128, 256), 132),
                        1024 * 1024 / (132 * 128 * 256))
    assert wave_efficiency(128 * 132, 256, (128, 256), 132) == 1.0


def test_fit_recovers_known_parameters() -> None:
    peak, e, c_tile, t0 = 1e15, 0.7, 2e-6, 3e-6
    pts = []
    for m, n, k in [(1024, 1024, 1024), (4096, 4096, 4096), (8192, 2048, 512),
                    (16384, 16384, 16384), (802816, 192, 768), (2048, 6144, 1024)]:
        from superpod.compute.calibration import waves
        q, w = wave_efficiency(m, n, (128, 256), 132), waves(m, n, (128, 256), 132)
        t = 2 * m * n * k / (peak * e * q) + w * c_tile + t0
        pts.append((m, n, k, 2 * m * n * k / t / 1e12))
    entry = GemmEntry(chip="x", dtype="fp8", evidence="assumption", source="synthetic",
                      compute_units=132, tile=(128, 256), points=pts)
    fit = fit_gemm(entry, peak)
    assert math.isclose(fit.e_max, e, rel_tol=1e-6)
    assert math.isclose(fit.tile_overhead_s, c_tile, rel_tol=1e-4)
    assert math.isclose(fit.overhead_s, t0, rel_tol=1e-4)


@given(st.sampled_from(["h100-sxm", "h200", "gb200", "a100-sxm-80gb", "ascend-910c"]),
       st.integers(1, 1 << 15), st.integers(1, 1 << 15), st.integers(1, 1 << 15))
@settings(max_examples=100, deadline=None)
def test_gemm_never_beats_peak_and_more_work_never_faster(chip: str, m: int, n: int,
                                                          k: int) -> None:
    c = CAT.chip(chip)
    dtype = "bf16"
    est = kernels.gemm(c, m, n, k, dtype)
    assert est.flop_per_s <= c.peak_flop_per_s["bf16"]
    assert kernels.gemm(c, m, n, 2 * k, dtype).time_s >= est.time_s


@given(st.integers(1, 1 << 34))
def test_memcpy_never_beats_hbm(nbytes: int) -> None:
    c = CAT.chip("h200")
    est = kernels.memcpy(c, nbytes)
    assert est.bytes_per_s <= c.hbm_bandwidth_bytes_per_s


def test_calibrated_and_uncalibrated_are_flagged(cat: Catalog) -> None:
    assert kernels.gemm(cat.chip("h200"), 4096, 4096, 4096, "fp8").calibrated
    assert not kernels.gemm(cat.chip("mi300x"), 4096, 4096, 4096, "bf16").calibrated


def test_calibration_holds_out_validation_shapes() -> None:
    cal = load_calibration()
    for e in cal.gemm:
        if e.chip == "h200":
            shapes = {(m, n, k) for m, n, k, _ in e.points}
            assert (8192, 8192, 8192) not in shapes
            assert (16384, 16384, 16384) not in shapes


def test_uncalibrated_precision_borrows_the_chips_fixed_costs(cat: Catalog) -> None:
    # H100 BF16 has no measurements; its FP8 curve gives the per-wave and per-kernel costs
    cal = load_calibration()
    h100 = cat.chip("h100-sxm")
    bf16, fp8 = kernels.gemm_fit(h100, "bf16", cal), kernels.gemm_fit(h100, "fp8", cal)
    assert not bf16.calibrated and fp8.calibrated
    assert bf16.e_max == cal.defaults.gemm_efficiency
    assert (bf16.tile_overhead_s, bf16.overhead_s, bf16.tile) == (
        fp8.tile_overhead_s, fp8.overhead_s, fp8.tile)
    # so a thin-k GEMM (small model) reaches less of the default efficiency than a deep one
    peak = kernels.peak_for(h100, "bf16")
    thin = kernels.gemm(h100, 16384, 6144, 1024, "bf16", cal).flop_per_s / peak
    deep = kernels.gemm(h100, 16384, 6144, 16384, "bf16", cal).flop_per_s / peak
    assert thin < deep <= cal.defaults.gemm_efficiency
    # a chip with no measurements at all keeps the plain defaults
    mi = kernels.gemm_fit(cat.chip("mi300x"), "bf16", cal)
    assert mi.tile_overhead_s == 0.0 and mi.overhead_s == cal.defaults.gemm_overhead_s
