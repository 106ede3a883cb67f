"""serve-sim with a prefix cache: uniform hit ratio or a trace with shared prefixes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app
from superpod.infer import prefix_sim as ps
from superpod.infer.config import InferOptions, ServingLayout
from superpod.workload.model import load_model

runner = CliRunner()
SIM = ["serve-sim", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8", "--json"]


def run(args: list[str]) -> dict:  # type: ignore[type-arg]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def one_request(tmp_path: Path, extra: str = "") -> Path:
    f = tmp_path / "one.csv"
    head = "arrival_s,input_len,output_len" + (",prefix_id,prefix_len" if extra else "")
    f.write_text(f"{head}\n0,4096,2{extra}\n")
    return f


def test_a_lone_request_skips_its_cached_tokens_and_waits_for_their_load(tmp_path: Path) -> None:
    f = one_request(tmp_path)
    plain = run([*SIM, "--trace", str(f)])
    hit = run([*SIM, "--trace", str(f), "--prefix-cache-hit", "0.5"])
    per_token = plain["ttft_s"]["p50"] / 4096  # one prompt, one prefill chunk
    sysm = api.system("dgx-h100")
    model = load_model("llama3-8b")
    lay = ServingLayout(tp=8, dp=1, ep=1, pp=1, ranks_per_chip=1)
    opts = InferOptions().for_chip(sysm.chip)
    cache = ps.sim_cache(model, lay, opts, sysm.memory.tier("host"), np.array([4096]),
                         hit_ratio=0.5)
    assert cache.cached_tokens[0] == 2048
    # 2,048 cached tokens x 16 kB a token on a TP-8 rank (1 KV head) over 64 GB/s PCIe
    assert cache.load_s[0] == pytest.approx(2e-6 + 2048 * 16_384 / 64e9)
    assert hit["ttft_s"]["p50"] == pytest.approx(2048 * per_token + cache.load_s[0], rel=1e-9)
    assert hit["prefix_cache"]["hit_ratio"] == pytest.approx(0.5)


def test_trace_with_shared_prefixes(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("arrival_s,input_len,output_len,prefix_id,prefix_len\n"
                 "0.0,3000,16,sys,2000\n1.0,2500,16,sys,2000\n2.0,1000,16,,0\n"
                 "3.0,2200,16,sys,2000\n")
    doc = run([*SIM, "--trace", str(f)])
    pc = doc["prefix_cache"]
    assert pc["source"] == "trace"
    assert pc["requests_with_a_hit"] == 2
    assert pc["hit_ratio"] == pytest.approx(4000 / 8700)
    bad = runner.invoke(app, [*SIM, "--trace", str(f), "--prefix-cache-hit", "0.3"])
    assert bad.exit_code == 2


def test_trace_prefix_order_follows_arrivals(tmp_path: Path) -> None:
    f = tmp_path / "t.json"
    f.write_text(json.dumps([
        {"arrival_s": 2, "input_len": 100, "output_len": 1, "prefix_id": "a", "prefix_len": 50},
        {"arrival_s": 1, "input_len": 100, "output_len": 1, "prefix_id": "b", "prefix_len": 10},
    ]))
    assert ps.trace_prefixes(f) == (["b", "a"], [10, 50])
    g = tmp_path / "plain.csv"
    g.write_text("input_len,output_len\n10,2\n")
    assert ps.trace_prefixes(g) is None


def test_uniform_hit_lowers_ttft_under_load() -> None:
    base = [*SIM, "--rate", "20", "--duration", "30", "--input-len", "4096",
            "--output-len", "64"]
    plain, hit = run(base), run([*base, "--prefix-cache-hit", "0.8"])
    assert hit["ttft_s"]["p50"] < plain["ttft_s"]["p50"]


def test_bad_prefix_options_in_serve_sim() -> None:
    base = [*SIM, "--rate", "1", "--duration", "5"]
    assert runner.invoke(app, [*base, "--prefix-cache-hit", "inf"]).exit_code == 2
    assert runner.invoke(app, [*base, "--prefix-cache-tier", "host"]).exit_code == 2
