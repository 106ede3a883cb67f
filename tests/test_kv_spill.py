"""infer --kv-spill: KV cache beyond the HBM pool read back from host / pool every step."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from superpod.cli import app

runner = CliRunner()
ARGS = ["infer", "-s", "dgx-h100", "-m", "llama3-70b", "--tp", "8", "--phase", "decode",
        "--input-len", "32768", "--output-len", "1024", "--json"]


def run(args: list[str]) -> dict:  # type: ignore[type-arg]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_spilled_kv_is_read_back_every_decode_step_over_pcie() -> None:
    assert runner.invoke(app, [*ARGS, "--batch", "64"]).exit_code == 1  # HBM alone: OOM
    d = run([*ARGS, "--batch", "64", "--kv-spill", "host"])
    it = d["iterations"][0]
    m = it["memory_breakdown_bytes"]
    hbm = 81559 * 2**20  # the H100 as the device reports it
    pool = 0.9 * (hbm - m["weights"] - m["activations"] - m["workspace"])
    spilled = m["kv_cache"] - pool  # one rank a GPU
    sp = d["kv_spill"]
    assert sp["spilled_bytes_per_chip"] == pytest.approx(spilled)
    assert sp["read_s"] == pytest.approx(2e-6 + spilled / 64e9)  # PCIe 5.0 x16
    assert d["tpot_s"] == pytest.approx(it["time_s"] + sp["read_s"])
    assert d["tokens_per_s"] == pytest.approx(64 / d["tpot_s"])


def test_a_batch_that_fits_spills_nothing() -> None:
    d = run([*ARGS, "--batch", "8", "--kv-spill", "host"])
    assert d["kv_spill"]["spilled_bytes_per_chip"] == 0.0


def test_spill_beyond_the_hosts_share_is_infeasible() -> None:
    r = runner.invoke(app, [*ARGS, "--batch", "4096", "--kv-spill", "host"])
    assert r.exit_code == 1 and "share" in r.output


def test_kv_spill_options_are_checked() -> None:
    assert runner.invoke(app, [*ARGS, "--kv-spill", "host"]).exit_code == 2  # no --batch
    assert runner.invoke(app, [*ARGS, "--batch", "64", "--kv-spill", "pool"]).exit_code == 2
    pre = [a if a != "decode" else "prefill" for a in ARGS]
    assert runner.invoke(app, [*pre, "--batch", "8", "--kv-spill", "host"]).exit_code == 2


WO = ["infer", "-s", "gb200-nvl72", "-m", "llama3-70b", "--tp", "4", "--chips", "4",
      "--phase", "decode", "--input-len", "8192", "--output-len", "1024", "--json"]


def test_weight_offload_streams_weights_over_c2c_and_frees_hbm_for_kv() -> None:
    assert runner.invoke(app, [*WO, "--batch", "200"]).exit_code == 1  # HBM alone: OOM
    d = run([*WO, "--batch", "200", "--weight-offload", "0.5"])
    w = d["weight_offload"]
    weights = d["iterations"][0]["memory_breakdown_bytes"]["weights"]
    assert w["streamed_bytes_per_chip"] == pytest.approx(0.5 * weights)
    # Grace LPDDR5X over NVLink-C2C: min(450 / 2, 684 / 4) = 171 GB/s a GPU, 1 us
    assert w["stream_s"] == pytest.approx(1e-6 + 0.5 * weights / 171e9)
    step = max(d["iterations"][0]["time_s"], w["stream_s"])  # prefetched layer by layer
    assert d["tpot_s"] == pytest.approx(step)


def test_weight_offload_options_are_checked() -> None:
    for bad in ("0", "1", "nan", "-0.5"):
        r = runner.invoke(app, [*WO, "--batch", "8", "--weight-offload", bad])
        assert r.exit_code == 2, bad
    assert runner.invoke(app, [*WO, "--weight-offload", "0.5"]).exit_code == 2  # no batch
    assert runner.invoke(app, [*WO, "--batch", "8", "--weight-offload-tier", "host"]
                         ).exit_code == 2
    assert runner.invoke(app, [*WO, "--batch", "8", "--weight-offload", "0.5",
                               "--kv-spill", "host"]).exit_code == 2
