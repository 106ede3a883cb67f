"""The seed comparison's memory line: which memory each side counts (hand-checked)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app

runner = CliRunner()


def test_huawei_15x_is_hbm_against_hbm_plus_lpddr() -> None:
    (claim,) = api.compare(["atlas-950-superpod", "vr200-nvl144"])["memory_claims"]
    assert claim["a_bytes"] == pytest.approx(8192 * 144e9)  # Atlas 950: HBM only
    assert claim["b_bytes"] == pytest.approx(72 * 288e9 + 36 * 1.5e12)  # HBM4 + Vera LPDDR5X
    # 1,179.6 TB / 74.7 TB = 15.8 (Huawei's binary 1,152 TB gives 15.4): "15x"
    assert 15.0 <= claim["reproduced_ratio"] < 16.0
    like = claim["like_for_like_ratio"]
    assert like["hbm"] == pytest.approx(8192 * 144 / (72 * 288))  # 56.9x on HBM alone
    assert like["hbm"] > 3 * claim["reproduced_ratio"]


def test_claims_only_at_product_size_and_in_either_order() -> None:
    assert api.compare(["vr200-nvl144", "atlas-950-superpod"])["memory_claims"]
    assert api.compare(["atlas-950-superpod", "vr200-nvl144"], chips=72)["memory_claims"] == []
    assert api.compare(["cloudmatrix384", "gb200-nvl72"])["memory_claims"] == []


def test_cloudmatrix_vs_nvl72_memory_per_chip() -> None:
    (line,) = api.compare(["cloudmatrix384", "gb200-nvl72"])["memory"]
    b = line["bases"]
    assert b["hbm"]["ratio"] == pytest.approx(384 * 128 / (72 * 192))  # 3.56x
    # one NPU reaches 384 x 128 GB HBM + 48 x 2 TB pooled DRAM; one GPU 72 x 192 GB + 480 GB
    assert b["reachable_per_chip"]["a_bytes"] == pytest.approx(384 * 128e9 + 96e12)
    assert b["reachable_per_chip"]["b_bytes"] == pytest.approx(72 * 192e9 + 480e9)
    assert b["reachable_per_chip"]["ratio"] == pytest.approx(
        (384 * 128e9 + 96e12) / (72 * 192e9 + 480e9))
    # per chip share: 128 GB + 250 GB against 192 GB + 240 GB
    assert b["share_per_chip"]["ratio"] == pytest.approx((128e9 + 250e9) / (192e9 + 240e9))


def test_a_system_without_host_memory_has_no_host_ratio() -> None:
    (line,) = api.compare(["dgx-h100", "tpu-v5p-pod"])["memory"]
    assert line["bases"]["host"]["ratio"] is None


def test_compare_cli_prints_the_memory_line() -> None:
    r = runner.invoke(app, ["compare", "atlas-950-superpod", "vr200-nvl144"],
                      env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.output
    assert "15x" in r.output and "HBM only" in r.output and "one chip reaches" in r.output
    j = runner.invoke(app, ["compare", "atlas-950-superpod", "vr200-nvl144", "--json"])
    doc = json.loads(j.output)
    assert doc["memory_claims"][0]["published_ratio"] == 15.0
