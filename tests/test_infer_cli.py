"""Inference commands (in process) and the inference validation scoreboard."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from superpod.cli import app
from superpod.validate.runner import validate_file

runner = CliRunner()
INFER_KEYS = {"tokens_per_s", "tokens_per_s_per_chip", "ttft_s", "tpot_s",
              "memory_bytes_per_chip", "max_batch", "breakdown_s"}


def test_infer_json_contract() -> None:
    for phase in ("prefill", "decode", "e2e"):
        r = runner.invoke(app, ["infer", "-s", "hgx-h800", "-n", "32", "-m", "deepseek-v3",
                                "--phase", phase, "--batch", "1024", "--input-len", "2048",
                                "--output-len", "512", "--ep", "32", "--precision", "fp8",
                                "--mtp", "1", "--json"])
        assert r.exit_code == 0, r.output
        row = json.loads(r.stdout)
        assert INFER_KEYS <= set(row)
        assert row["layout"]["dp"] == 32 and row["layout"]["ep"] == 32
        assert abs(sum(row["breakdown_s"].values())
                   - (row["ttft_s"] if phase == "prefill" else row["tpot_s"] * 1.8)) < 1e-9


def test_infer_text_best_batch_and_disaggregated() -> None:
    r = runner.invoke(app, ["infer", "-s", "dgx-h100", "-n", "8", "-m", "llama3-70b",
                            "--tp", "8", "--precision", "fp8", "--slo-tpot-ms", "40"])
    assert r.exit_code == 0, r.output
    assert "tokens/s per chip" in r.stdout and "adds up" in r.stdout
    d = runner.invoke(app, ["infer", "-s", "dgx-h100", "-n", "32", "-m", "llama3-70b",
                            "--tp", "8", "--precision", "fp8", "--batch", "64",
                            "--prefill-chips", "8", "--decode-chips", "24", "--json"])
    assert d.exit_code == 0, d.output
    row = json.loads(d.stdout)
    assert row["phase"] == "disaggregated" and row["decode_instances"] == 3


def test_infer_bad_input_and_infeasible() -> None:
    bad = runner.invoke(app, ["infer", "-s", "dgx-h100", "-m", "llama3-70b",
                              "--precision", "fp3"])
    assert bad.exit_code == 2 and "precision" in bad.output
    oom = runner.invoke(app, ["infer", "-s", "dgx-h100", "-n", "1", "-m", "llama3-70b",
                              "--batch", "1", "--json"])
    assert oom.exit_code == 1
    assert json.loads(oom.stdout)["reason"] == "out_of_memory"


def test_plan_infer_and_serve_sim_json() -> None:
    r = runner.invoke(app, ["plan", "infer", "-s", "dgx-h100", "-n", "8", "-m", "llama3-8b",
                            "--slo-tpot-ms", "20", "--input-len", "1000",
                            "--output-len", "500", "--precision", "fp8", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["candidates"] and res["candidates"][0]["tpot_s"] <= 0.02
    t = runner.invoke(app, ["plan", "infer", "-s", "dgx-h100", "-n", "8", "-m", "llama3-8b",
                            "--slo-tpot-ms", "20"])
    assert t.exit_code == 0 and "best serving layouts" in t.stdout
    s = runner.invoke(app, ["serve-sim", "-s", "dgx-h100", "-n", "8", "-m", "llama3-8b",
                            "--rate", "10", "--duration", "20", "--precision", "fp8",
                            "--json"])
    assert s.exit_code == 0, s.output
    sim = json.loads(s.stdout)
    assert {"ttft_s", "tpot_s", "e2e_s", "output_tokens_per_s"} <= set(sim)
    assert runner.invoke(app, ["serve-sim", "-s", "dgx-h100", "-m", "llama3-8b"]).exit_code == 2


#: Only ever tightened (the inference issue's target is 20 %).
#: 144-case file: offline benchmarks, runtime EPLB, EP on NVLink (was 21.5)
# 12.5 on its branch; the collective fixes (NVLS, EP once per rank) bring partner errors back
# 9.84 after trtllm-bench's in-flight cap and the DeepSeek service load (issue 13)
# 5.26 once prefill EP sends every token to the network model (8.98 before); 4.93 with the
# NVFP4 DeepSeek checkpoints' BF16 MLA projections
# 4.62 once a mixed iteration streams the weights once
INFER_MEDIAN_ABS_ERROR_PCT = 5.5


def test_infer_cases_evaluated_and_within_tolerance(public_cases) -> None:  # type: ignore[no-untyped-def]
    s = validate_file(str(public_cases))["summary"]["infer"]
    assert s["ok"] >= 0.9 * s["cases"]
    assert s["error"] == 0
    assert s["median_abs_error_pct"] <= INFER_MEDIAN_ABS_ERROR_PCT


def test_infer_per_pool_layouts() -> None:
    """--prefill-layout / --decode-layout: pools with their own degrees; 16 chips in
    instances of dp=4 are 4 prefill instances, 32 chips of dp=32 one decode instance."""
    r = runner.invoke(app, ["infer", "-s", "gb200-nvl72", "-m", "deepseek-v3",
                            "--input-len", "8192", "--output-len", "1024", "--precision",
                            "fp8", "--prefill-layout", "dp=4,ep=4", "--prefill-chips", "16",
                            "--decode-layout", "dp=32,ep=32", "--decode-chips", "32",
                            "--slo-tpot-ms", "50", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["phase"] == "disaggregated" and d["chips"] == 48
    assert (d["prefill_instances"], d["decode_instances"]) == (4, 1)
    assert d["prefill_layout"]["dp"] == 4 and d["layout"]["dp"] == 32
    assert d["tpot_s"] <= 0.050
    for bad in ("dp=4,xx=2", "dp=0", "dp=4,dp=8", "dp=four", ""):
        r = runner.invoke(app, ["infer", "-s", "gb200-nvl72", "-m", "deepseek-v3",
                                "--prefill-layout", bad])
        assert r.exit_code == 2, (bad, r.output)
        assert "--prefill-layout" in r.output


def test_plan_infer_fixed_decode_layout() -> None:
    r = runner.invoke(app, ["plan", "infer", "-s", "dgx-h100", "-n", "16", "-m",
                            "llama3-8b", "--slo-tpot-ms", "50", "--decode-layout", "tp=2",
                            "--top", "20", "--json"])
    assert r.exit_code == 0, r.output
    dis = [c for c in json.loads(r.stdout)["candidates"] if c["phase"] == "disaggregated"]
    assert dis and all(c["layout"]["tp"] == 2 and c["layout"]["dp"] == 1 for c in dis)


def test_ep_library_choice_reaches_the_ep_traffic() -> None:
    base = ["infer", "-s", "cloudmatrix384", "-n", "64", "-m", "deepseek-v3", "--phase",
            "decode", "--ep", "128", "--precision", "int8", "--batch", "64", "--json"]
    comm = {}
    for lib in ("cloudmatrix_infer-2025-06", "deepep_ascend-2025-09"):
        r = runner.invoke(app, [*base, "--ep-library", lib])
        assert r.exit_code == 0, r.output
        comm[lib] = json.loads(r.stdout)["breakdown_s"]["ep_comm"]
    # the paper's kernels write straight into peers' memory: cheaper per token and peer
    assert 0 < comm["cloudmatrix_infer-2025-06"] < comm["deepep_ascend-2025-09"]
    r = runner.invoke(app, [*base, "--ep-library", "deepep-1999"])
    assert r.exit_code == 2 and "--ep-library" in r.stderr and "deepep-2025-06" in r.stderr
