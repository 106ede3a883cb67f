"""Reliability: rate data, failure bookkeeping, checkpoint intervals, goodput (ETTR)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app
from superpod.errors import SpecError
from superpod.hardware.catalog import Catalog
from superpod.reliability import (
    FailureOptions,
    GoodputModel,
    Recovery,
    ReliabilityQuery,
    SparePolicy,
    Storage,
    analyse,
    checkpoint_bytes,
    daly_interval_s,
    ettr,
    failure_model,
    goodput_model,
    load_rate_book,
    monte_carlo,
    mtbf_by_scale,
    plan_checkpoint,
    young_interval_s,
)
from superpod.reliability.failures import cross_checks, spare_absorbed_fraction
from superpod.reliability.goodput import ettr_first_order, expected_completion_s
from superpod.reliability.rates import RELIABILITY_FILE, S_PER_DAY, parse_rate_per_s
from superpod.units import UnitError

DAY = S_PER_DAY
LLAMA_MTBF_S = 3.09 * 3600


# ----------------------------------------------------------------------------- rate data


def test_rate_units() -> None:
    assert parse_rate_per_s("720 FIT") == pytest.approx(720e-9 / 3600)
    assert parse_rate_per_s("0.63 %/yr") == pytest.approx(0.0063 / (8760 * 3600))
    # 0.63 %/yr is about 720 FIT (hardware.md D.4)
    assert parse_rate_per_s("0.63 %/yr") / parse_rate_per_s("1 FIT") == pytest.approx(
        719.2, abs=0.1)
    assert parse_rate_per_s("6.5 /1000/d") == pytest.approx(6.5e-3 / DAY)
    assert parse_rate_per_s("0.051 %/month") * 8760 * 3600 == pytest.approx(0.00612)
    for bad in ("7", "7 per year", "-1 FIT", "1 %/fortnight"):
        with pytest.raises(UnitError):
            parse_rate_per_s(bad)


def test_llama_rates_are_counts_over_population_and_exposure() -> None:
    """Formula (1) of rates.py with the Llama 3 table's numbers, by hand."""
    book = load_rate_book()
    hours = 54 * 24
    assert book.cause("gpu_faulty").fit == pytest.approx(148 / (16384 * hours) * 1e9)
    assert book.cause("host_maintenance").fit == pytest.approx(32 / (2048 * hours) * 1e9)
    assert book.cause("host_cpu").fit == pytest.approx(2 / (4096 * hours) * 1e9)
    assert book.cause("network_switch_cable").fit == pytest.approx(
        35 / (49152 * hours) * 1e9)
    assert book.cause("software_bug").rate_per_s * DAY == pytest.approx(1.0)  # per job
    gpu = sum(c.rate_per_s for c in book.causes if c.category == "accelerator")
    assert 1 / gpu / 3600 == pytest.approx(79_000, rel=0.02)  # hardware.md D.1: ~79,000 h


def test_bad_reliability_file_is_one_clear_error(tmp_path: Path) -> None:
    text = RELIABILITY_FILE.read_text()
    bad = tmp_path / "r.yaml"
    bad.write_text(text.replace("    count: 148\n", "    count: 148\n    colour: red\n", 1))
    with pytest.raises(SpecError, match="colour"):
        load_rate_book(bad)
    bad.write_text(text.replace("count: 148", "count: 150", 1))
    with pytest.raises(SpecError, match="add up to 421"):
        load_rate_book(bad)
    bad.write_text(text.replace('rate: "0.63 %/yr"', 'rate: "0.63 percent"', 1))
    with pytest.raises(SpecError, match="rate unit"):
        load_rate_book(bad)


def test_cross_checks_bracket_the_model() -> None:
    rows = {r["id"]: r for r in cross_checks()}
    assert rows["epoch-50kh"]["ratio_theirs_to_model"] == pytest.approx(1.0, abs=0.05)
    # the two Meta clusters bracket the Llama 3 hardware rate (fleets differ ~3x)
    assert rows["meta-rsc2"]["ratio_theirs_to_model"] < 1 < rows["meta-rsc1"][
        "ratio_theirs_to_model"]
    assert 1 < rows["alibaba-hpn-link"]["ratio_theirs_to_model"] < 2


# ----------------------------------------------------------------------------- failures


def test_llama3_405b_interruptions() -> None:
    """16,384 H100 for 54 days: 419 unexpected interruptions (Llama 3, Table 5).

    The per-component rates are derived from that same run's table (count / population /
    duration), so this checks the bookkeeping (populations, units, the per-job rates) and
    the scaling, not an independent prediction.
    """
    m = failure_model(api.system("dgx-h100", 16384))
    assert m.expected_interruptions(54 * DAY) == pytest.approx(419, rel=0.25)
    assert m.expected_interruptions(54 * DAY) == pytest.approx(419, rel=1e-9)
    assert m.mtbf_s / 3600 == pytest.approx(3.09, abs=0.01)
    assert m.degradations_per_s == 0 and m.swaps_per_s == 0


def test_other_scales_are_proportional() -> None:
    """Hardware causes scale with the component counts; per-job causes with the job's chips
    as Meta's job MTTFs do (47.7 d at 8 GPUs, 7.9 h at 1,024: exponent 1.03)."""
    alpha = math.log(47.7 * 24 / 7.9) / math.log(1024 / 8)
    assert load_rate_book().job_scaling.exponent == pytest.approx(alpha)
    assert alpha == pytest.approx(1.026, abs=1e-3)
    full = failure_model(api.system("dgx-h100", 16384))
    for chips in (8, 1024, 8192, 32768):
        m = failure_model(api.system("dgx-h100", chips))
        ratio = chips / 16384
        if chips >= 8192:  # the same fabric tiers: hardware counts scale with the chips
            assert m.hardware_interruptions_per_s == pytest.approx(
                ratio * full.hardware_interruptions_per_s, rel=1e-9)
        job = m.interruptions_per_s - m.hardware_interruptions_per_s
        assert job * DAY == pytest.approx(63 / 54 * ratio ** alpha)


def test_per_job_rate_follows_the_source_between_its_sizes() -> None:
    """The per-job rate at 8 and at 1,024 chips stands in the ratio of Meta's job MTTFs."""
    small, large = (failure_model(api.system("dgx-h100", n)) for n in (8, 1024))
    job = [m.interruptions_per_s - m.hardware_interruptions_per_s for m in (small, large)]
    assert job[1] / job[0] == pytest.approx(47.7 * 24 / 7.9)


SYSTEMS = ("dgx-h100", "cloudmatrix384", "gb200-nvl72", "atlas-950-superpod", "tpu-v5p-pod")


@settings(max_examples=40, deadline=None)
@given(sid=st.sampled_from(SYSTEMS), n=st.integers(1, 20_000), extra=st.integers(0, 20_000),
       protect=st.sampled_from([None, True, False]), dual=st.booleans())
def test_more_components_never_lower_the_failure_rate(sid: str, n: int, extra: int,
                                                      protect: bool | None,
                                                      dual: bool) -> None:
    opts = FailureOptions(link_protection=protect, scale_out_dual_plane=dual)
    small = failure_model(api.system(sid, n), options=opts)
    big = failure_model(api.system(sid, n + extra), options=opts)
    tol = 1e-12
    assert big.interruptions_per_s >= small.interruptions_per_s * (1 - tol)
    assert sum(c.events_per_s for c in big.by_cause) >= sum(
        c.events_per_s for c in small.by_cause) * (1 - tol)
    for b, s in zip(big.by_cause, small.by_cause, strict=True):
        assert b.population >= s.population


def test_mtbf_falls_with_scale(cat: Catalog) -> None:
    rows = mtbf_by_scale(cat.system("dgx-h100"), cat, [1024, 4096, 16384, 131072])
    mtbfs = [r["mtbf_s"] for r in rows]
    assert mtbfs == sorted(mtbfs, reverse=True)


def test_link_protection_defaults_and_blast_radius() -> None:
    cm = api.system("cloudmatrix384")
    on = failure_model(cm)  # UB-generation Huawei: protection switching (vendor claim)
    assert on.link_protection
    optics = next(c for c in on.by_cause if c.cause.id == "scale_up_optical_module")
    assert optics.interruptions_per_s == 0 and optics.degradations_per_s > 0
    assert optics.bandwidth_loss_fraction == pytest.approx(1 / 7)
    # 5,376 UB modules at 0.63 %/yr: one every 10.8 days (all 6,912 modules of a CM384,
    # scale-out included: one every ~8 days, hardware.md D.4)
    assert 1 / optics.events_per_s / DAY == pytest.approx(365 / (5376 * 0.0063))
    assert 1 / optics.events_per_s / DAY * 5376 / cm.optical_modules == pytest.approx(
        8, rel=0.1)
    off = failure_model(cm, options=FailureOptions(link_protection=False))
    assert off.interruptions_per_s == pytest.approx(
        on.interruptions_per_s + on.degradations_per_s)
    nvl = failure_model(api.system("gb200-nvl72"), options=FailureOptions(link_protection=True))
    assert not nvl.link_protection and nvl.notes  # single-path NVLink: no effect, said so
    assert not failure_model(api.system("gb200-nvl72")).link_protection
    dual = failure_model(api.system("dgx-h100", 1024),
                         options=FailureOptions(scale_out_dual_plane=True))
    link = next(c for c in dual.by_cause if c.cause.id == "network_switch_cable")
    assert link.interruptions_per_s == 0 and link.degradations_per_s > 0


def test_spare_absorption() -> None:
    assert spare_absorbed_fraction(1e-6, 64, 0, 86400) == 0
    one = spare_absorbed_fraction(1e-6, 64, 1, 86400)
    assert one == pytest.approx(math.exp(-64e-6 * 86400))  # P[Poisson(5.53) = 0]
    assert spare_absorbed_fraction(1e-6, 64, 2, 86400) > one
    with pytest.raises(SpecError):
        SparePolicy.parse("64")
    assert SparePolicy.parse("64+1") == SparePolicy(group=64, spares=1)


@settings(max_examples=30, deadline=None)
@given(group=st.integers(1, 512), spares=st.integers(0, 8),
       level=st.sampled_from(["chip", "node"]), swap_min=st.floats(0, 60),
       sid=st.sampled_from(["cloudmatrix384", "dgx-h100", "gb200-nvl72"]))
def test_a_spare_never_lowers_availability(group: int, spares: int, level: str,
                                           swap_min: float, sid: str) -> None:
    system = api.system(sid, 1024)
    base = ReliabilityQuery(checkpoint_bytes=1e12, trials=0)
    policy = SparePolicy(group=group, spares=spares, level="chip" if level == "chip" else "node",
                         swap_s=swap_min * 60)
    spared = ReliabilityQuery(checkpoint_bytes=1e12, trials=0,
                              options=FailureOptions(spares=policy))
    without = ettr(goodput_model(system, base)[2])
    with_spares = ettr(goodput_model(system, spared)[2])
    assert with_spares >= without - 1e-12


# ----------------------------------------------------------------------------- checkpoint


def test_young_and_daly_closed_forms() -> None:
    """Hand-checked: M = 3.09 h (Llama 3), hardware.md D.5."""
    assert young_interval_s(2.5, LLAMA_MTBF_S) / 60 == pytest.approx(3.93, abs=0.01)
    assert young_interval_s(60, LLAMA_MTBF_S) / 60 == pytest.approx(19.3, abs=0.05)
    # Daly: sqrt(2 d M) [1 + sqrt(d/2M)/3 + (d/2M)/9] - d
    x = 2.5 / (2 * LLAMA_MTBF_S)
    by_hand = math.sqrt(2 * 2.5 * LLAMA_MTBF_S) * (1 + math.sqrt(x) / 3 + x / 9) - 2.5
    assert daly_interval_s(2.5, LLAMA_MTBF_S) == pytest.approx(by_hand)
    assert daly_interval_s(2.5, LLAMA_MTBF_S) == pytest.approx(234.2, abs=0.1)
    # 1155.4 s x (1 + 0.01731 + 0.00030) - 60 s = 1115.7 s = 18.6 min
    assert daly_interval_s(60, LLAMA_MTBF_S) / 60 == pytest.approx(18.6, abs=0.05)
    assert daly_interval_s(100, 40) == 40  # delta >= 2M: checkpoint every M


def test_checkpoint_size_and_times() -> None:
    nbytes = checkpoint_bytes(405e9)  # 2 + 4 + 4 + 4 bytes per parameter
    assert nbytes == pytest.approx(5.67e12)
    s = Storage(write_bytes_per_s=2e12, read_bytes_per_s=2e12, node_bytes_per_s=25e9,
                snapshot_bytes_per_s=25e9)
    big = plan_checkpoint(nbytes, 16384, 2048, s)
    assert big.write_s == pytest.approx(2.835) and big.blocking_s == big.write_s
    small = plan_checkpoint(nbytes, 384, 48, s)  # 48 nodes x 25 GB/s = 1.2 TB/s binds
    assert small.write_s == pytest.approx(nbytes / 1.2e12)
    asynchronous = plan_checkpoint(nbytes, 16384, 2048, s, asynchronous=True)
    assert asynchronous.blocking_s == pytest.approx(nbytes / 16384 / 25e9)
    assert asynchronous.durable_lag_s == pytest.approx(2.835)
    with pytest.raises(SpecError):
        plan_checkpoint(0, 8, 1, s)


# ----------------------------------------------------------------------------- goodput


def test_ettr_without_failures_is_the_checkpoint_overhead() -> None:
    m = GoodputModel(work_s=1000.0, interval_s=100.0, overhead_s=10.0, mtbf_s=math.inf,
                     recoveries=(Recovery(1.0, 600.0),))
    assert expected_completion_s(m) == pytest.approx(1100.0)
    mc = monte_carlo(m, trials=10, seed=1)
    assert mc.mean_s == pytest.approx(1100.0) and mc.mean_failures == 0


def test_ettr_matches_first_order_when_failures_are_rare() -> None:
    m = GoodputModel(work_s=30 * DAY, interval_s=600.0, overhead_s=5.0, mtbf_s=100 * 3600,
                     recoveries=(Recovery(1.0, 900.0),))
    assert ettr(m) == pytest.approx(ettr_first_order(5.0, 600.0, 100 * 3600, 900.0),
                                    abs=2e-3)


@pytest.mark.parametrize("mtbf_h,interval_s,recoveries", [
    (3.09, 250.0, (Recovery(1.0, 900.0),)),
    (0.5, 120.0, (Recovery(0.7, 1200.0), Recovery(0.3, 90.0))),
    (20.0, 3600.0, (Recovery(1.0, 3600.0),)),
])
def test_monte_carlo_agrees_with_analytic_ettr(mtbf_h: float, interval_s: float,
                                               recoveries: tuple[Recovery, ...]) -> None:
    m = GoodputModel(work_s=10 * DAY, interval_s=interval_s, overhead_s=30.0,
                     mtbf_s=mtbf_h * 3600, recoveries=recoveries)
    mc = monte_carlo(m, trials=4000, seed=7)
    low, high = mc.ettr_ci
    assert low <= ettr(m) <= high
    assert mc.p50_s <= mc.p90_s <= mc.p99_s


def test_monte_carlo_is_seeded() -> None:
    m = GoodputModel(work_s=DAY, interval_s=300.0, overhead_s=3.0, mtbf_s=3600.0,
                     recoveries=(Recovery(1.0, 600.0),))
    a, b = monte_carlo(m, 200, seed=3), monte_carlo(m, 200, seed=3)
    assert a.mean_s == b.mean_s and monte_carlo(m, 200, seed=4).mean_s != a.mean_s


def test_analyse_llama_scale() -> None:
    """ETTR at Llama 3 scale lands near the >90% effective training time it reported."""
    r = analyse(api.system("dgx-h100", 16384),
                ReliabilityQuery(checkpoint_bytes=checkpoint_bytes(405e9), work_days=30,
                                 trials=2000, seed=0))
    assert 0.85 < r["ettr"] < 0.95
    low, high = r["monte_carlo"]["ettr_ci"]
    assert low <= r["ettr"] <= high
    assert r["checkpoint_interval_s"] / 60 == pytest.approx(4.2, abs=0.1)


# ----------------------------------------------------------------------------- CLI


def test_reliability_cli_json_contract() -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["reliability", "--system", "dgx-h100", "--chips", "16384",
                               "--model-params", "405e9", "--days", "54", "--trials", "500",
                               "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert {"interruptions_per_s", "expected_interruptions", "mtbf_s",
            "checkpoint_interval_s", "ettr", "by_cause", "monte_carlo"} <= set(row)
    assert set(row["monte_carlo"]["completion_s"]) == {"mean", "p50", "p90", "p99"}
    assert len(row["monte_carlo"]["ettr_ci"]) == 2
    assert row["expected_interruptions"] == pytest.approx(419)
    text = runner.invoke(app, ["reliability", "-s", "cloudmatrix384", "--checkpoint-bytes",
                                  "1TB", "--async-checkpoint", "--spares", "64+1",
                                  "--trials", "100"])
    assert text.exit_code == 0 and "ETTR" in text.stdout and "swap" in text.stdout


def test_reliability_cli_bad_input() -> None:
    runner = CliRunner()
    for args in (["--model-params", "1e9", "--checkpoint-bytes", "1TB"],
                 ["--checkpoint-bytes", "lots"], ["--model-params", "1e9", "--spares", "64"],
                 ["--model-params", "1e9", "--storage-bandwidth", "2TB"]):
        r = runner.invoke(app, ["reliability", "-s", "dgx-h100", *args])
        assert r.exit_code == 2, args
        assert "error:" in r.output and "Traceback" not in r.output


def test_poisson_cdf_closed_forms() -> None:
    """P[N <= k] by hand: k = 0 is exp(-mu); k = 1 adds mu exp(-mu); scipy-free."""
    from superpod.reliability.failures import poisson_cdf

    assert poisson_cdf(0, 0.5) == pytest.approx(math.exp(-0.5), rel=1e-14)
    assert poisson_cdf(1, 2.0) == pytest.approx(3.0 * math.exp(-2.0), rel=1e-14)
    assert poisson_cdf(2, 3.0) == pytest.approx(8.5 * math.exp(-3.0), rel=1e-14)
    assert poisson_cdf(-1, 3.0) == 0.0 and poisson_cdf(4, 0.0) == 1.0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 400), st.floats(1e-6, 500.0))
def test_poisson_cdf_is_a_cdf(k: int, mu: float) -> None:
    from superpod.reliability.failures import poisson_cdf

    lo, hi = poisson_cdf(k, mu), poisson_cdf(k + 1, mu)
    assert 0.0 <= lo <= hi <= 1.0
