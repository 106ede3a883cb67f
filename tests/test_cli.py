"""In-process CLI tests of the JSON contract and the text views."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from superpod.cli import app

runner = CliRunner()
SHOW_KEYS = {"id", "chips", "peak_flop_per_s", "hbm_bytes", "hbm_bandwidth_bytes_per_s",
             "scale_up_bandwidth_bytes_per_s", "optical_modules", "cabinets", "it_power_w",
             "power_breakdown_w"}


def test_show_json_contract() -> None:
    r = runner.invoke(app, ["show", "gb200-nvl72", "--json"])
    assert r.exit_code == 0
    row = json.loads(r.stdout)
    assert SHOW_KEYS <= set(row)
    assert set(row["peak_flop_per_s"]) >= {"bf16", "fp8", "fp4"}
    assert set(row["power_breakdown_w"]) == {"accelerators", "cpus", "nics", "switches",
                                             "optics", "other"}


def test_show_scaled() -> None:
    r = runner.invoke(app, ["show", "gb200-nvl72", "--chips", "720", "--json"])
    row = json.loads(r.stdout)
    assert row["chips"] == 720 and row["scale_up_domains"] == 10


def test_compare_json_and_text() -> None:
    r = runner.invoke(app, ["compare", "cloudmatrix384", "gb200-nvl72", "--json"])
    assert r.exit_code == 0
    ids = [s["id"] for s in json.loads(r.stdout)["systems"]]
    assert ids == ["cloudmatrix384", "gb200-nvl72"]
    t = runner.invoke(app, ["compare", "cloudmatrix384", "gb200-nvl72"])
    assert t.exit_code == 0 and "x)" in t.stdout and "IT power" in t.stdout


def test_systems_and_chips_lists() -> None:
    r = runner.invoke(app, ["systems", "--json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)["systems"]) >= 20
    assert runner.invoke(app, ["chips"]).exit_code == 0
    t = runner.invoke(app, ["show", "atlas-950-superpod"])
    assert t.exit_code == 0 and "extrapolates" in t.stdout and "published" in t.stdout


def test_collective_json_contract_and_engines() -> None:
    args = ["collective", "--system", "cloudmatrix384", "--op", "all_to_all", "--bytes", "64MiB"]
    rows = []
    for engine in ("analytic", "flow"):
        r = runner.invoke(app, [*args, "--engine", engine, "--json"])
        assert r.exit_code == 0, r.output
        rows.append(json.loads(r.stdout))
    for row in rows:
        assert {"time_s", "algbw_bytes_per_s", "busbw_bytes_per_s", "algorithm",
                "bottleneck"} <= set(row)
        assert abs(sum(row["breakdown_s"].values()) - row["time_s"]) < 1e-12
    assert abs(rows[0]["time_s"] - rows[1]["time_s"]) <= 0.1 * rows[0]["time_s"]


def test_failed_links_need_the_flow_engine() -> None:
    r = runner.invoke(app, ["collective", "--system", "dgx-h100", "--op", "all_reduce",
                            "--bytes", "1MiB", "--fail-links", "1"])
    assert r.exit_code == 2 and "flow" in r.output
    r = runner.invoke(app, ["collective", "--system", "dgx-h100", "--chips", "16", "--op",
                            "all_reduce", "--bytes", "1MiB", "--fail-links", "1", "--engine",
                            "flow", "--json"])
    assert r.exit_code == 0 and "failed link" in " ".join(json.loads(r.stdout)["notes"])


def test_topology_facts_agree_with_show() -> None:
    topo = json.loads(runner.invoke(app, ["topology", "cloudmatrix384", "--json"]).stdout)
    show = json.loads(runner.invoke(app, ["show", "cloudmatrix384", "--json"]).stdout)
    assert topo["optical_modules"] == show["optical_modules"]
    assert topo["switches"] == show["switches"]
    assert topo["bisection_bandwidth_bytes_per_s"] == show["bisection_bandwidth_bytes_per_s"]
    assert topo["links"]["up"] == 384 * 7  # one link per chip per UB plane
    assert topo["diameter_hops"] == 2


def test_example_hf_config_trains() -> None:
    from pathlib import Path

    config = Path(__file__).resolve().parent.parent / "examples" / "llama3-8b-config.json"
    r = runner.invoke(app, ["train", "--system", "gb200-nvl72", "--model",
                            str(config), "--global-batch", "72",
                            "--seq-len", "4096", "--json", "--no-economics"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tokens_per_s"] > 0
