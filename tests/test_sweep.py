"""``superpod sweep``: spec checks, points, the DuckDB store (resume after SIGKILL, no
duplicates), show / pareto / export, and the Ray engine on a local instance."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from superpod.cli import app
from superpod.errors import SpecError
from superpod.sweep import EXAMPLE
from superpod.sweep.spec import parse_spec
from superpod.sweep.store import pareto

pytest.importorskip("duckdb")
runner = CliRunner()
TINY = """\
name: tiny
system: {preset: dgx-h100, chips: [8, 16]}
workload: {model: llama3-8b, global_batch: 16, seq_len: 4096, precision: [bf16, fp8]}
"""


def test_example_spec_has_enough_points_and_parses() -> None:
    r = runner.invoke(app, ["sweep", "--example"])
    assert r.exit_code == 0 and r.stdout == EXAMPLE
    spec = parse_spec(yaml.safe_load(EXAMPLE), "example.yaml")
    pts = spec.points()
    assert len(pts) >= 24 and len({spec.point_id(p) for p in pts}) == len(pts)


@pytest.mark.parametrize(("text", "field"), [
    ("system: {preset: dgx-h100}\nworkload: {model: llama3-8b, seq_len: 8, global_batch: 8}\n"
     "colour: red\n", "colour"),
    ("system: {preset: dgx-h100}\nworkload: {model: llama3-8b, seq_len: 0, global_batch: 8}\n",
     "workload.seq_len"),
    ("system: {preset: dgx-h100}\nworkload: {model: llama3-8b, seq_len: 8}\n", "workload"),
    ("system: {preset: dgx-h100}\nworkload: {model: x, seq_len: 8, global_batch: 8}\n"
     "mode: fast\n", "mode"),
    ("system: {preset: nope}\nworkload: {model: llama3-8b, seq_len: 8, global_batch: 8}\n",
     "system.preset"),
    ("system: {preset: dgx-h100, set: {scale_out.nic_bandwidth: [-1 Gb/s]}}\n"
     "workload: {model: llama3-8b, seq_len: 8, global_batch: 8}\n", "nic_bandwidth"),
    ("system: {preset: dgx-h100, chips: {min: 8, max: 64}}\n"
     "workload: {model: llama3-8b, seq_len: 8, global_batch: 8}\n", "system.chips"),
])
def test_bad_spec_is_one_line_naming_the_field_exit_2(tmp_path: Path, text: str,
                                                      field: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    r = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "r.duckdb")])
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "\n" not in line and field in line and "Traceback" not in line


def test_sampling_is_seeded_and_covers_ranges() -> None:
    doc = yaml.safe_load("""
sampling: lhs
samples: 16
seed: 3
system: {preset: dgx-h100, set: {scale_out.nic_bandwidth: {min: 200 Gb/s, max: 1600 Gb/s}}}
workload: {model: llama3-8b, seq_len: 4096, global_batch: {min: 8, max: 64, integer: true}}
""")
    a, b = parse_spec(doc).points(), parse_spec(doc).points()
    assert a == b and len(a) == 16
    bw = sorted(float(p["system.set.scale_out.nic_bandwidth"].split()[0]) for p in a)
    assert 200 <= bw[0] < 300 and 1500 < bw[-1] <= 1600  # one sample per stratum
    assert all(isinstance(p["workload.global_batch"], int) for p in a)
    doc["sampling"] = "random"
    assert parse_spec(doc).points() != a


def test_grid_range_needs_steps() -> None:
    doc = yaml.safe_load("system: {preset: dgx-h100, chips: {min: 8, max: 64}}\n"
                         "workload: {model: llama3-8b, seq_len: 8, global_batch: 8}\n")
    with pytest.raises(SpecError, match="steps"):
        parse_spec(doc).points()
    doc["system"]["chips"]["steps"] = 4
    doc["system"]["chips"]["integer"] = True
    assert [p["system.chips"] for p in parse_spec(doc).points()] == [8, 27, 45, 64]


def test_sweep_runs_stores_shows_and_exports(tmp_path: Path) -> None:
    spec, db = tmp_path / "s.yaml", tmp_path / "r.duckdb"
    spec.write_text(TINY)
    r = runner.invoke(app, ["sweep", str(spec), "--out", str(db), "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)
    assert run["points"] == run["evaluated"] == 4 and run["status"] == {"ok": 4}
    r = runner.invoke(app, ["sweep", "show", str(db), "--json"])
    rows = json.loads(r.stdout)["rows"]
    assert len(rows) == 4 and {x["system.chips"] for x in rows} == {8, 16}
    for x in rows:
        assert x["status"] == "ok" and x["tokens_per_s_per_chip"] > 0
        assert x["bands"]["tokens_per_s_per_chip"]["low"] > 0 and x["evidence"]
        assert x["superpod_version"] and x["elapsed_s"] > 0 and x["layout"]
        assert x["layouts"]["considered"] >= x["layouts"]["evaluated"] > 0
    # the same point through plan train gives the same figure (one pure evaluation)
    one = rows[0]
    r = runner.invoke(app, ["plan", "train", "-s", "dgx-h100", "--chips",
                            str(one["system.chips"]), "-m", "llama3-8b", "--global-batch",
                            "16", "--seq-len", "4096", "--precision",
                            one["workload.precision"], "--top", "1", "--json"])
    best = json.loads(r.stdout)["candidates"][0]
    assert best["tokens_per_s_per_chip"] >= one["tokens_per_s_per_chip"] * (1 - 1e-9)
    # a second run without --resume refuses; with it, nothing is redone
    r = runner.invoke(app, ["sweep", str(spec), "--out", str(db)])
    assert r.exit_code == 2 and "--resume" in r.output
    r = runner.invoke(app, ["sweep", str(spec), "--out", str(db), "--resume", "--json"])
    assert json.loads(r.stdout)["skipped"] == 4
    front = json.loads(runner.invoke(app, ["sweep", "show", str(db), "--json", "--pareto",
                                           "tokens_per_s_per_chip,chips"]).stdout)["rows"]
    assert 1 <= len(front) <= 4
    out = tmp_path / "r.csv"
    assert runner.invoke(app, ["sweep", "show", str(db), "--export", str(out)]).exit_code == 0
    assert len(list(csv.DictReader(out.open()))) == 4
    bad = runner.invoke(app, ["sweep", "show", str(db), "--pareto", "colour"])
    assert bad.exit_code == 2 and "colour" in bad.output


def test_pareto_front_by_hand() -> None:
    rows = [{"status": "ok", "tokens_per_s": 10.0, "usd_per_million_tokens": 1.0},
            {"status": "ok", "tokens_per_s": 20.0, "usd_per_million_tokens": 2.0},
            {"status": "ok", "tokens_per_s": 15.0, "usd_per_million_tokens": 2.5},  # beaten
            {"status": "infeasible", "tokens_per_s": None, "usd_per_million_tokens": None}]
    front = pareto(rows, ["tokens_per_s", "usd_per_million_tokens"])
    assert front == rows[:2]


def test_kill_9_mid_sweep_loses_nothing_and_resume_adds_no_duplicate(tmp_path: Path) -> None:
    spec, db = tmp_path / "s.yaml", tmp_path / "r.duckdb"
    spec.write_text("system: {preset: dgx-h100, chips: [8, 16, 32, 64]}\n"
                    "workload: {model: [llama3-8b, llama3-70b], global_batch: 64,\n"
                    "           seq_len: 4096, precision: [bf16, fp8]}\n")
    cmd = [sys.executable, "-c", "from superpod.cli import main; main()", "sweep", str(spec),
           "--out", str(db), "--workers", "1", "--verbose"]
    env = os.environ | {"SUPERPOD_PROGRESS": "0"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    done = []
    for line in proc.stderr:
        if line.startswith("point "):
            done.append(line.split()[2])
            if len(done) == 3:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(done) == 3
    r = runner.invoke(app, ["sweep", str(spec), "--out", str(db), "--resume", "--json",
                            "--workers", "1"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)
    assert run["skipped"] >= 3 and run["skipped"] + run["evaluated"] == run["points"] == 16
    rows = json.loads(runner.invoke(app, ["sweep", "show", str(db), "--json"]).stdout)["rows"]
    ids = [x["id"] for x in rows]
    assert len(ids) == len(set(ids)) == 16 and set(done) <= set(ids)


def test_ray_engine_runs_a_small_sweep(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed (extra: ray)")
    from superpod.sweep.run import run_sweep

    spec = parse_spec(yaml.safe_load(TINY), "tiny.yaml")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run = run_sweep(spec, str(tmp_path / "ray.duckdb"), engine="ray")
    finally:
        ray.shutdown()
    assert run.evaluated == 4 and run.status == {"ok": 4}


def test_shipped_example_is_the_printed_one() -> None:
    shipped = Path(__file__).resolve().parent.parent / "examples" / "sweep.yaml"
    assert shipped.read_text() == EXAMPLE
