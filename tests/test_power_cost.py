"""Power at a load, and cost: capex, opex, amortisation, dollars per million tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app
from superpod.cost import (
    CostQuery,
    capex,
    capital_recovery_factor,
    cost_report,
    default_prices,
    load_price_book,
    usd_per_million_tokens,
    with_overrides,
)
from superpod.cost.prices import J_PER_KWH, PRICES_FILE
from superpod.errors import SpecError
from superpod.hardware.catalog import Catalog
from superpod.power import (
    Load,
    energy_per_token_j,
    idle_power_w,
    power_breakdown_w,
    power_report,
)
from superpod.power.activity import component_shares

PRESETS = ("dgx-h100", "gb200-nvl72", "cloudmatrix384", "atlas-950-superpod", "tpu-v5p-pod",
           "atlas-800t-a2", "mi300x-node")


# ----------------------------------------------------------------------------- power


@pytest.mark.parametrize("sid", PRESETS)
def test_full_load_is_the_system_model_and_zero_load_is_idle(sid: str) -> None:
    s = api.system(sid)
    full = power_breakdown_w(s, Load())
    assert list(full) == list(s.power_breakdown_w)  # same keys, same order
    assert full == pytest.approx(s.power_breakdown_w)
    zero = power_breakdown_w(s, Load.idle())
    assert sum(zero.values()) == pytest.approx(idle_power_w(s))
    assert idle_power_w(s) < s.power_w


def test_breakdown_adds_up() -> None:
    s = api.system("cloudmatrix384")
    rep = power_report(s, Load(compute=0.4, memory=0.6, network=0.3), tokens_per_s=1e5)
    d = rep.to_dict()
    assert sum(d["power_detail_w"].values()) == pytest.approx(d["it_power_w"])
    assert sum(d["power_breakdown_w"].values()) == pytest.approx(d["it_power_w"])
    assert d["facility_power_w"] == pytest.approx(1.2 * d["it_power_w"])
    assert d["tokens_per_j"] * d["facility_j_per_token"] == pytest.approx(1.0)
    # optics do not follow traffic
    assert d["power_detail_w"]["optics_scale_up"] == s.power_breakdown_w["optics_scale_up"]


def test_accelerator_activity_by_hand() -> None:
    """Formula (2) of power.load with the shares of power.activity, by hand for the B200
    (1,200 W, 8 TB/s HBM, 900 GB/s NVLink one way)."""
    s = api.system("gb200-nvl72")
    dyn = 1200 * 0.7
    s_m = 3.9e-12 * 8 * 8e12 / dyn
    s_l = 5e-12 * 16 * 900e9 / dyn
    assert component_shares(s.chip) == pytest.approx((1 - s_m - s_l, s_m, s_l))
    load = Load(compute=0.4, memory=0.5, network=0.0)
    a = (1 - s_m - s_l) * 0.4 + s_m * 0.5
    assert load.accelerator_activity(component_shares(s.chip)) == pytest.approx(a)
    acc = power_breakdown_w(s, load)["accelerators"]
    assert acc == pytest.approx(72 * 1200 * (0.3 + 0.7 * a))


@pytest.mark.parametrize("sid,published_w", [("cloudmatrix384", 559_378.0),
                                             ("gb200-nvl72", 145_000.0)])
def test_full_load_it_power_matches_semianalysis(sid: str, published_w: float) -> None:
    """All-in power from parts at utilization 1, within 5% of SemiAnalysis's estimates."""
    rep = power_report(api.system(sid), Load.uniform(1.0))
    assert rep.it_w == pytest.approx(published_w, rel=0.05)


@settings(max_examples=50, deadline=None)
@given(sid=st.sampled_from(PRESETS), u1=st.floats(0, 1), u2=st.floats(0, 1))
def test_power_grows_with_load(sid: str, u1: float, u2: float) -> None:
    s = api.system(sid)
    lo, hi = sorted((u1, u2))
    p_lo = sum(power_breakdown_w(s, Load.uniform(lo)).values())
    p_hi = sum(power_breakdown_w(s, Load.uniform(hi)).values())
    assert idle_power_w(s) * (1 - 1e-12) <= p_lo <= p_hi * (1 + 1e-12)
    assert p_hi <= s.power_w * (1 + 1e-12)


def test_bad_loads() -> None:
    with pytest.raises(SpecError):
        Load(compute=1.5)
    with pytest.raises(SpecError):
        energy_per_token_j(1000.0, 0.0)


# ----------------------------------------------------------------------------- cost


def test_reference_totals_are_reproduced(cat: Catalog) -> None:
    """The derived prices reproduce the published totals they were derived from
    (bookkeeping, by construction: H100 all-in per GPU, CM384 list, NVL72 rack)."""
    book = load_price_book()
    assert book.data.reference_totals
    for ref in book.data.reference_totals:
        s = api.system(ref.system, ref.chips)
        cap = capex(s, default_prices(s, cat))
        per_chip = sum(cap.breakdown_usd[g] for g in ref.groups) / ref.chips
        assert ref.low_usd * 0.999 <= per_chip <= ref.high_usd * 1.001, ref.id
        assert per_chip == pytest.approx(ref.total_per_chip_usd, rel=0.002), ref.id
        assert not cap.unpriced


def test_h100_capex_rises_with_switch_tiers(cat: Catalog) -> None:
    """47-52k per GPU all-in, rising with fat-tree tiers (tech-talk-cto)."""
    per_gpu = []
    for n in (1024, 16384, 131072):
        s = api.system("dgx-h100", n)
        per_gpu.append(capex(s, default_prices(s, cat)).it_usd / n)
    assert per_gpu == sorted(per_gpu)
    assert all(47_000 <= x <= 52_500 for x in per_gpu)


def test_capex_breakdown_and_overrides(cat: Catalog) -> None:
    s = api.system("cloudmatrix384")
    p = default_prices(s, cat)
    assert p.electricity_region == "china"
    cap = capex(s, p)
    assert cap.total_usd == pytest.approx(sum(cap.breakdown_usd.values()))
    assert cap.breakdown_usd["facility"] == pytest.approx(s.power_w * 11.0)
    cheaper = capex(s, with_overrides(p, chip_usd=0.0))
    assert cap.total_usd - cheaper.total_usd == pytest.approx(384 * p.chip_usd)
    with pytest.raises(SpecError, match="chip-price-usd"):
        default_prices(api.system("tpu-v5p-pod"), cat)
    assert default_prices(api.system("tpu-v5p-pod"), cat, chip_usd=1e4).chip_usd == 1e4


def test_financial_formulas_by_hand() -> None:
    assert capital_recovery_factor(0.0, 4) == pytest.approx(0.25)
    assert capital_recovery_factor(0.10, 4) == pytest.approx(0.315471, rel=1e-5)
    # 1 M$ a year over 1,000 tokens/s busy all year: 31.536e9 tokens -> $31.71 per Mtok
    assert usd_per_million_tokens(1e6, 1000.0, 1.0) == pytest.approx(1e6 / 31.536e3)


def test_cost_report_by_hand(cat: Catalog) -> None:
    s = api.system("gb200-nvl72")
    p = with_overrides(default_prices(s, cat), electricity_usd_per_j=0.08 / J_PER_KWH)
    r = cost_report(s, p, CostQuery(tokens_per_s=1e5, utilization=1.0))
    facility_w = s.power_w * 1.2
    assert r["opex_usd_per_year"] == pytest.approx(facility_w / 1e3 * 8760 * 0.08)
    annual = r["capex_it_usd"] / 4 + r["capex_breakdown_usd"]["facility"] / 15 + r[
        "opex_usd_per_year"]
    assert r["annual_cost_usd"]["total"] == pytest.approx(annual)
    assert r["usd_per_million_tokens"] == pytest.approx(annual / (1e5 * 8760 * 3600) * 1e6)
    half = cost_report(s, p, CostQuery(tokens_per_s=1e5, utilization=0.5))
    assert half["opex_usd_per_year"] < r["opex_usd_per_year"]
    assert half["usd_per_million_tokens"] > r["usd_per_million_tokens"]


def test_bad_price_file(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(PRICES_FILE.read_text().replace('"0.078 USD/kWh"', '"0.078"', 1))
    with pytest.raises(SpecError, match="USD per energy"):
        load_price_book(bad)


# ----------------------------------------------------------------------------- CLI


def test_cost_cli() -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["cost", "--system", "cloudmatrix384", "--tokens-per-s", "2e5",
                               "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert {"capex_usd", "opex_usd_per_year", "usd_per_million_tokens", "it_power_w",
            "tokens_per_j", "capex_breakdown_usd"} <= set(row)
    r2 = runner.invoke(app, ["cost", "-s", "cloudmatrix384", "--tokens-per-s", "2e5",
                                "--electricity-usd-per-kwh", "0.078", "--years", "5",
                                "--json"])
    row2 = json.loads(r2.stdout)
    assert row2["inputs"]["electricity_usd_per_j"] * 3.6e6 == pytest.approx(0.078)
    assert row2["inputs"]["evidence"]["depreciation_years"] == "user"
    text = runner.invoke(app, ["cost", "-s", "gb200-nvl72", "--tokens-per-s", "1e5"])
    assert text.exit_code == 0 and "USD per million tokens" in text.stdout
    bad = runner.invoke(app, ["cost", "-s", "tpu-v5p-pod", "--tokens-per-s", "1e5"])
    assert bad.exit_code == 2 and "chip-price-usd" in bad.output
