"""The system model: aggregation is additive in building blocks, monotone in chips, and the
power breakdown adds up to the total."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod.hardware.catalog import Catalog, load_catalog
from superpod.hardware.system import build_system, system_to_dict

CAT = load_catalog()
PRESETS = sorted(CAT.systems)


@given(st.sampled_from(PRESETS), st.integers(1, 64))
@settings(max_examples=60, deadline=None)
def test_totals_are_additive_in_domains(sid: str, k: int) -> None:
    spec = CAT.system(sid)
    d = spec.scale_up.domain_chips
    one, many = build_system(spec, CAT, d), build_system(spec, CAT, d * k)
    for p, v in one.peak_flop_per_s.items():
        assert math.isclose(many.peak_flop_per_s[p], k * v, rel_tol=1e-12)
    assert math.isclose(many.hbm_bytes, k * one.hbm_bytes, rel_tol=1e-12)
    assert math.isclose(many.scale_up_bandwidth_bytes_per_s,
                        k * one.scale_up_bandwidth_bytes_per_s, rel_tol=1e-12)
    for key in ("accelerators", "cpus", "nics", "switches_scale_up", "optics_scale_up", "other"):
        assert math.isclose(many.power_breakdown_w[key], k * one.power_breakdown_w[key],
                            rel_tol=1e-9)
    # cabinets pack whole domains only when a domain fills whole cabinets
    assert one.cabinets <= many.cabinets <= k * one.cabinets


@given(st.sampled_from(PRESETS), st.integers(1, 20_000), st.integers(1, 20_000))
@settings(max_examples=80, deadline=None)
def test_monotone_in_chips(sid: str, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    s_lo, s_hi = build_system(CAT.system(sid), CAT, lo), build_system(CAT.system(sid), CAT, hi)
    assert s_lo.power_w <= s_hi.power_w + 1e-6
    assert s_lo.optical_modules <= s_hi.optical_modules
    assert s_lo.scale_out_fabric.tiers <= s_hi.scale_out_fabric.tiers
    assert s_lo.cabinets <= s_hi.cabinets
    assert s_lo.hbm_bandwidth_bytes_per_s <= s_hi.hbm_bandwidth_bytes_per_s


@pytest.mark.parametrize("sid", PRESETS)
def test_power_breakdown_adds_up(cat: Catalog, sid: str) -> None:
    row = system_to_dict(build_system(cat.system(sid), cat))
    assert math.isclose(sum(row["power_breakdown_w"].values()), row["it_power_w"], rel_tol=1e-12)
    assert math.isclose(sum(row["power_detail_w"].values()), row["it_power_w"], rel_tol=1e-12)
    assert math.isclose(row["facility_power_w"], row["it_power_w"] * row["pue"], rel_tol=1e-12)
    assert row["power_breakdown_w"]["accelerators"] == row["chips"] * cat.chip(row["chip"]).power_w


def test_hand_checked_dgx_h100_node(cat: Catalog) -> None:
    s = build_system(cat.system("dgx-h100"), cat)
    # 8 GPUs x 700 W; 2 CPUs; 4 NVSwitch chips; 20 % node overhead on GPUs + CPUs.
    cpu_w = cat.cpus["xeon-8480c"].power_w
    assert s.power_breakdown_w["accelerators"] == 8 * 700
    assert s.power_breakdown_w["cpus"] == 2 * cpu_w
    assert s.power_breakdown_w["switches_scale_up"] == 4 * cat.switches["nvswitch-gen3"].power_w
    assert math.isclose(s.power_breakdown_w["other"], 0.2 * (8 * 700 + 2 * cpu_w))
    assert s.scale_up_bandwidth_bytes_per_s == 8 * 450e9


def test_node_uplinks_cap_cloudmatrix_scale_up(cat: Catalog) -> None:
    s = build_system(cat.system("cloudmatrix384"), cat)
    assert s.scale_up_injection_bytes_per_s == 392e9  # paper: 392 GB/s per NPU, one way
    assert s.scale_up_bandwidth_per_chip_bytes_per_s == 7 * 400e9 / 8  # 7 x 400G optics


def test_more_scale_out_bandwidth_never_lowers_bisection(cat: Catalog) -> None:
    spec = cat.system("dgx-h100")
    fast = spec.model_copy(update={"scale_out": spec.scale_out.model_copy(
        update={"nic_bandwidth_bits_per_s": 800e9})})
    base = build_system(spec, cat, 1024)
    more = build_system(fast, cat, 1024)
    assert more.bisection_bandwidth_bytes_per_s >= base.bisection_bandwidth_bytes_per_s


def test_partial_node_and_domain(cat: Catalog) -> None:
    s = build_system(cat.system("cloudmatrix384"), cat, chips=100)
    assert s.counts.nodes == 13 and s.counts.domains == 1
    assert s.counts.chips_per_domain == 100
    assert s.counts.network_cabinets == math.ceil(4 * 100 / 384)
