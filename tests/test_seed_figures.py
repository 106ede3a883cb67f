"""The seed articles' headline figures, reproduced from parts (issue acceptance)."""

from __future__ import annotations

import pytest

from superpod import api

REL = 0.05  # within 5%


def close(value: float, target: float, rel: float = REL) -> bool:
    return abs(value - target) <= rel * target


@pytest.fixture(scope="module")
def pair() -> dict[str, dict]:  # type: ignore[type-arg]
    rows = api.compare(["cloudmatrix384", "gb200-nvl72"])["systems"]
    return {r["id"]: r for r in rows}


@pytest.mark.parametrize("sid,chips,bf16,hbm,hbm_bw,scale_up_gbps,power", [
    ("cloudmatrix384", 384, 300e15, 49.2e12, 1229e12, 1_075_200, 559e3),
    ("gb200-nvl72", 72, 180e15, 13.8e12, 576e12, 518_400, 145e3),
])
def test_cloudmatrix_vs_nvl72(pair, sid, chips, bf16, hbm, hbm_bw, scale_up_gbps, power):  # type: ignore[no-untyped-def]
    r = pair[sid]
    assert r["chips"] == chips
    assert close(r["peak_flop_per_s"]["bf16"], bf16)
    assert close(r["hbm_bytes"], hbm)
    assert close(r["hbm_bandwidth_bytes_per_s"], hbm_bw)
    assert close(r["scale_up_bandwidth_bytes_per_s"] * 8 / 1e9, scale_up_gbps)
    assert close(r["it_power_w"], power)


def test_cloudmatrix_optics_match_the_reported_module_count(pair) -> None:  # type: ignore[no-untyped-def]
    r = pair["cloudmatrix384"]
    assert r["optical_modules"] == 6912
    assert r["optical_modules_breakdown"] == {"scale_up": 5376, "scale_out": 1536}
    assert r["cabinets"] == 16


@pytest.mark.parametrize("sid,chips,fp8,fp4,mem_published,one_way,cabinets", [
    # memory: Atlas 950's 1,152 "TB" is binary (x 1.024 = decimal); Atlas 960's is decimal.
    ("atlas-950-superpod", 8192, 8e18, 16e18, 1152e12 * 1.024, 8192 * 1e12, 160),
    ("atlas-960-superpod", 15488, 30e18, 60e18, 4460e12, 15488 * 1.1e12, 220),
])
def test_atlas_superpods(sid, chips, fp8, fp4, mem_published, one_way, cabinets):  # type: ignore[no-untyped-def]
    r = api.show(sid)
    assert r["chips"] == chips
    assert close(r["peak_flop_per_s"]["fp8"], fp8)
    assert close(r["peak_flop_per_s"]["fp4"], fp4)
    assert close(r["hbm_bytes"], mem_published, 0.01)
    assert close(r["scale_up_bandwidth_bytes_per_s"], one_way, 0.01)
    assert r["cabinets"] == cabinets
    assert r["extrapolated"]


def test_superclusters() -> None:
    assert api.show("atlas-950-supercluster")["chips"] > 500_000
    big = api.show("atlas-960-supercluster")
    assert big["chips"] > 1_000_000
    assert big["cabinets"] > 10_240
