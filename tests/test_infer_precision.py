"""A weight format the chip has no tensor-core peak for is never costed silently at
another one: bad input in ``infer`` / ``serve-sim``, ``precision_unsupported`` in ``plan
infer``, and costed as weight-only (16-bit GEMMs) only when asked."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app
from superpod.errors import SpecError
from superpod.infer.config import InferOptions, check_precision, gemm_dtype

runner = CliRunner()
BASE = ["infer", "-s", "dgx-h100", "-n", "8", "-m", "llama3-70b", "--tp", "8",
        "--batch", "16", "--input-len", "2048", "--output-len", "256"]


@pytest.mark.parametrize(("chip", "precision"), [("ascend-910c", "fp8"), ("h100-sxm", "fp4"),
                                                 ("a100-sxm-80gb", "fp8")])
def test_a_format_without_a_peak_is_bad_input(chip: str, precision: str) -> None:
    c = api.catalog().chip(chip)
    assert precision not in c.peak_flop_per_s
    with pytest.raises(SpecError, match="tensor-core peak") as exc:
        check_precision(c, precision)
    assert exc.value.field == "precision" and "--weight-only" in str(exc.value.allowed)
    check_precision(c, precision, weight_only=True)  # stored narrow, GEMMs in 16-bit
    assert gemm_dtype(c, precision, weight_only=True) in ("bf16", "fp16")
    with pytest.raises(SpecError):
        InferOptions(precision=precision, kv_precision="auto").for_chip(c)


def test_infer_cli_exit_codes_for_formats() -> None:
    r = runner.invoke(app, ["infer", "-s", "cloudmatrix384", "-m", "llama3-70b",
                            "--batch", "8", "--precision", "fp8"])
    assert r.exit_code == 2 and "ascend-910c has no fp8" in r.output
    ok = runner.invoke(app, ["infer", "-s", "cloudmatrix384", "-m", "llama3-70b", "--tp", "2",
                             "--batch", "8", "--precision", "fp8", "--weight-only"])
    assert ok.exit_code == 0, ok.output
    assert "weight-only" in ok.output
    plan = runner.invoke(app, ["plan", "infer", "-s", "cloudmatrix384", "-m", "deepseek-v3",
                               "--precision", "fp8", "--slo-tpot-ms", "50", "--json"])
    assert plan.exit_code == 1
    assert json.loads(plan.stdout)["infeasible"] == {"precision_unsupported": 1}


def _run(*extra: str) -> dict:  # type: ignore[type-arg]
    r = runner.invoke(app, [*BASE, *extra, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_weight_only_streams_narrow_weights_but_computes_in_16_bit() -> None:
    bf16, fp8 = _run("--precision", "bf16"), _run("--precision", "fp8")
    w8a16 = _run("--precision", "fp8", "--weight-only")
    assert w8a16["options"]["weight_only"] is True
    # prefill is GEMM-bound: weight-only runs the bf16 GEMMs (no faster than bf16, slower
    # than native FP8); decode at batch 16 streams the weights: FP8's bytes, not bf16's
    assert w8a16["ttft_s"] > fp8["ttft_s"]
    assert w8a16["ttft_s"] == pytest.approx(bf16["ttft_s"], rel=0.15)
    assert w8a16["tpot_s"] < bf16["tpot_s"]
