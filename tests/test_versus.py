"""``superpod versus``: equal budgets, the nearest feasible batch, winners, missing prices,
breakdowns that add up, and the command's exit codes."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app
from superpod.errors import Infeasible
from superpod.hardware.system import build_system
from superpod.report.versus import winner_text
from superpod.train.batch import TOLERANCE, nearest_batches, why_none
from superpod.train.search import SearchResult
from superpod.versus.budget import budget_of, scaled_systems
from superpod.versus.run import versus
from superpod.versus.table import table

runner = CliRunner()


def _strict(text: str) -> Any:
    def bad(c: str) -> None:
        raise ValueError(f"non-finite JSON constant {c}")
    return json.loads(text, parse_constant=bad)


# ----------------------------------------------------------------------------- budgets

def test_equal_chips_is_whole_domains_within_the_count() -> None:
    """8,192 Atlas 950 chips: floor(8192 / 72) = 113 NVL72 racks = 8,136 GPUs."""
    out = scaled_systems(["atlas-950-superpod", "gb200-nvl72"], "chips", api.catalog())
    assert not isinstance(out, Infeasible)
    assert [s.system.counts.chips for s in out] == [8192, 113 * 72]


@pytest.mark.parametrize("basis", ["power", "racks", "capex"])
def test_equal_budget_is_the_most_domains_within_it(basis: str) -> None:
    cat = api.catalog()
    out = scaled_systems(["cloudmatrix384", "gb200-nvl72"], basis, cat)
    assert not isinstance(out, Infeasible)
    ref, other = out
    want = budget_of(ref.system, basis, cat)
    assert isinstance(want, float)
    n = other.system.counts.chips
    assert n % 72 == 0 and n >= 72
    spent = budget_of(other.system, basis, cat)
    assert isinstance(spent, float) and spent <= want
    more = budget_of(build_system(cat.system("gb200-nvl72"), cat, n + 72), basis, cat)
    assert isinstance(more, float) and more > want


def test_power_budget_by_hand() -> None:
    """CloudMatrix 384's full-load IT power over one NVL72 rack's, rounded down."""
    cat = api.catalog()
    out = scaled_systems(["cloudmatrix384", "gb200-nvl72"], "power", cat)
    assert not isinstance(out, Infeasible)
    racks = out[1].system.counts.chips // 72
    per_rack = api.system("gb200-nvl72").power_w
    assert racks == pytest.approx(api.system("cloudmatrix384").power_w // per_rack, abs=1)


def test_capex_budget_without_a_price_is_infeasible_naming_it() -> None:
    out = scaled_systems(["atlas-950-superpod", "gb200-nvl72"], "capex", api.catalog())
    assert isinstance(out, Infeasible) and out.reason == "no_price"
    assert "ascend-950dt" in out.detail


# ----------------------------------------------------------------------------- batches

@settings(max_examples=60, deadline=None)
@given(target=st.integers(1, 100_000),
       degrees=st.lists(st.integers(1, 512), min_size=1, max_size=6, unique=True))
def test_nearest_batch_divides_and_reaches_the_most_layouts(target: int, degrees: list[int]
                                                            ) -> None:
    got = nearest_batches(target, sorted(degrees))
    assert got and all(any(b % d == 0 for d in degrees) for b in got)

    def reach(b: int) -> int:
        return sum(b % d == 0 for d in degrees)

    window = range(max(1, math.ceil(target * (1 - TOLERANCE))),
                   math.floor(target * (1 + TOLERANCE)) + 1)
    inside = [b for b in window if reach(b)]
    if inside:  # the window's best: the most dividing degrees, then the nearest
        best = got[0]
        assert best in window
        top = max(map(reach, inside))
        assert reach(best) == top
        assert min(abs(b - target) for b in inside if reach(b) == top) == abs(best - target)
    else:  # nothing in the window: the nearest reachable batch
        dist = abs(got[0] - target)
        for b in range(max(1, target - dist + 1), target + dist):
            assert not reach(b)


def test_1536_on_nvl72_moves_to_1512_which_every_degree_divides() -> None:
    assert nearest_batches(1536, [9, 18, 36, 72])[0] == 1512
    assert nearest_batches(1539, [9, 18, 36, 72])[0] == 1512
    assert nearest_batches(1536, [1, 2, 4, 8, 16, 32, 64, 128, 384])[0] == 1536
    why = why_none(SearchResult(candidates=[]), 1536, [9, 18, 36, 72])
    assert "9, 18, 36, 72" in why and "1536" in why


def test_plan_train_with_no_layout_exits_1_and_suggests_a_batch() -> None:
    r = runner.invoke(app, ["plan", "train", "--system", "gb200-nvl72", "--model",
                            "deepseek-v3", "--global-batch", "1536", "--seq-len", "4096",
                            "--top", "1", "--json"])
    assert r.exit_code == 1
    doc = _strict(r.stdout)
    assert doc["suggestion"]["global_batch"] == 1512
    assert "divides global batch 1536" in doc["suggestion"]["reason"]


def test_plan_infer_with_no_layout_suggests_a_looser_slo() -> None:
    r = runner.invoke(app, ["plan", "infer", "--system", "dgx-h100", "--model", "llama3-8b",
                            "--slo-tpot-ms", "0.5", "--input-len", "512", "--output-len",
                            "128", "--json"])
    assert r.exit_code == 1
    sug = _strict(r.stdout)["suggestion"]
    assert sug["option"] == "--slo-tpot-ms" and sug["value_s"] * 1e3 > 0.5
    ok = runner.invoke(app, ["plan", "infer", "--system", "dgx-h100", "--model", "llama3-8b",
                             "--slo-tpot-ms", str(sug["value_s"] * 1e3), "--input-len", "512",
                             "--output-len", "128", "--json", "--top", "1"])
    assert ok.exit_code == 0


# ----------------------------------------------------------------------------- table

def _side(tps: float, band: tuple[float, float] | None, cap: float | None = 1e6
          ) -> dict[str, Any]:
    side: dict[str, Any] = {"tokens_per_s": tps, "tokens_per_s_per_chip": tps / 10,
                            "facility_power_w": 1e5, "capex_usd": cap,
                            "tokens_per_j": tps / 1e5,
                            "usd_per_million_tokens": 1e6 / tps if cap else None,
                            "goodput": {"interruptions_per_s": tps / 1e3 / 86400}}
    if band:
        side["band"] = {"metric": "tokens_per_s_per_chip", "low": band[0] * tps / 10,
                        "high": band[1] * tps / 10}
    return side


def test_winner_per_row_and_decisive_only_when_bands_clear() -> None:
    sides = {"a": _side(1000.0, (0.9, 1.1)), "b": _side(2000.0, (0.9, 1.1)),
             "c": _side(1500.0, None, cap=None)}
    rows = {r["metric"]: r for r in table(sides, {k: (10, 2) for k in sides},
                                          {"c": {"capex_usd": "no price"}})}
    assert rows["tokens_per_s"]["winner"] == {"system": "b", "decisive": False,
                                              "banded": False}  # c: no band
    assert rows["usd_per_million_tokens"]["winner"]["system"] == "b"  # lower is better
    assert rows["interruptions_per_day"]["winner"]["system"] == "a"
    assert rows["chips"]["winner"] is None  # a budget, not a merit
    assert rows["tokens_per_s_per_rack"]["cells"]["b"]["value"] == 1000.0  # 2000 / 2
    c = rows["capex_usd"]["cells"]["c"]
    assert c["value"] is None and c["missing"] == "no price"
    two = {k: v for k, v in sides.items() if k != "c"}
    rows2 = {r["metric"]: r for r in table(two, {k: (10, 2) for k in two}, {})}
    assert rows2["tokens_per_s"]["winner"] == {"system": "b", "decisive": True, "banded": True}
    assert rows2["interruptions_per_day"]["winner"]["banded"] is False  # the book has none
    assert winner_text(rows2["interruptions_per_day"]["winner"]) == "a (no band)"
    assert winner_text(rows2["tokens_per_s"]["winner"]) == "b"
    # $/Mtok's band is the inverse ratios
    b = rows2["usd_per_million_tokens"]["cells"]["a"]["band"]
    assert b == pytest.approx([1000.0 / 1.1, 1000.0 / 0.9])


# ----------------------------------------------------------------------------- a real run

@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    doc = versus(["atlas-950-superpod", "gb200-nvl72"], "llama3-8b", equal="chips",
                 chips=144)
    assert not isinstance(doc, Infeasible)
    return doc


def test_missing_price_is_stated_and_power_still_shown(small: dict[str, Any]) -> None:
    for kind in ("train", "serve"):
        rows = {r["metric"]: r for r in small[kind]["rows"]}
        for m in ("capex_usd", "usd_per_million_tokens", "tokens_per_s_per_usd"):
            cell = rows[m]["cells"]["atlas-950-superpod"]
            assert cell["value"] is None and "ascend-950dt" in cell["missing"]
            assert rows[m]["winner"] is None or rows[m]["winner"]["system"] == "gb200-nvl72"
        assert rows["facility_power_w"]["cells"]["atlas-950-superpod"]["value"] > 0
        assert rows["tokens_per_j"]["cells"]["atlas-950-superpod"]["value"] > 0


def test_breakdowns_add_up_to_the_total(small: dict[str, Any]) -> None:
    for s in small["systems"]:
        tr = s["train"]
        parts = small["train"]["breakdown_s"][s["key"]]
        assert sum(parts.values()) == pytest.approx(tr["step_time_s"] / tr["goodput"]["ettr"])
        sv = s["serve"]
        parts = small["serve"]["breakdown_s"][s["key"]]
        assert sum(parts.values()) == pytest.approx(sum(sv["breakdown_s"].values()))


def test_same_tokens_per_step_for_every_system(small: dict[str, Any]) -> None:
    for s in small["systems"]:
        b = s["train"]["batch"]
        assert b["asked_global_batch"] == 1536
        assert b["global_batch"] % s["train"]["plan"]["dp"] == 0


def test_versus_cli_json_is_strict_and_bad_input_is_exit_2() -> None:
    r = runner.invoke(app, ["versus", "atlas-950-superpod", "gb200-nvl72", "--model",
                            "llama3-8b", "--chips", "144", "--equal", "chips", "--train",
                            "--json"])
    assert r.exit_code == 0, r.output
    doc = _strict(r.stdout)
    assert "train" in doc and "serve" not in doc
    bad = runner.invoke(app, ["versus", "cloudmatrix384", "gb200-nvl72", "--model",
                              "llama3-8b", "--equal", "money"])
    assert bad.exit_code == 2 and "--equal" in bad.output
    one = runner.invoke(app, ["versus", "cloudmatrix384", "--model", "llama3-8b"])
    assert one.exit_code == 2
    cap = runner.invoke(app, ["versus", "atlas-950-superpod", "gb200-nvl72", "--model",
                              "llama3-8b", "--equal", "capex"])
    assert cap.exit_code == 1 and "ascend-950dt" in cap.output


def test_training_scaling_points_are_whole_nodes_below_the_system() -> None:
    from superpod.versus.evaluate import Workload, train_scaling
    from superpod.workload.model import load_model

    s = api.system("cloudmatrix384")
    pts = train_scaling(s, api.catalog(), load_model("llama3-8b"), Workload())
    chips = [p["chips"] for p in pts]
    assert chips == [96.0, 192.0]  # a quarter and a half, whole 8-NPU nodes
    assert all(p["tokens_per_s"] > 0 for p in pts)
    assert pts[0]["tokens_per_s"] < pts[1]["tokens_per_s"]


def test_huaweis_ratios_against_nvl144_reproduced() -> None:
    """56.8x the NPUs (counting Rubin dies), ~6.7x FP8, 15x memory (HBM against HBM +
    LPDDR), 62x interconnect: each within 10 % from the system model."""
    from superpod.versus.claims import ratios

    r = ratios(api.system("atlas-950-superpod"), api.system("vr200-nvl144"))
    assert r["published"] is not None
    for k in ("npus", "fp8", "memory", "interconnect"):
        assert r["model"][k] == pytest.approx(r["published"][k], rel=0.10), k
    assert r["model"]["npus"] == pytest.approx(8192 / 144)
    assert r["model"]["memory_hbm"] > 3 * r["model"]["memory"]  # like for like: far more


def test_a_memory_failure_is_not_retried_at_other_batches() -> None:
    from collections import Counter

    from superpod.train.batch import nearest_feasible

    calls: list[int] = []

    def oom(b: int) -> SearchResult:
        calls.append(b)
        return SearchResult(candidates=[], infeasible=Counter({"out_of_memory": 7}),
                            evaluated=7)

    out = nearest_feasible(oom, 1512, [9, 18, 36, 72])
    assert isinstance(out, Infeasible) and "out_of_memory" in out.detail
    assert calls == [1512]  # one search: another batch cannot fix memory
    calls.clear()
    out = nearest_feasible(oom, 1536, [9, 18, 36, 72])  # no degree divides: retried
    assert isinstance(out, Infeasible) and len(calls) > 1
