"""The Ascend 910C's ranks are its dies (catalog ``devices: 2``) in every command by default;
``plan infer`` says how many chips each candidate leaves idle and ``--all-chips`` keeps only
those that leave none."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from superpod.cli import app

runner = CliRunner()


def _json(argv: list[str], code: int = 0) -> Any:
    r = runner.invoke(app, [*argv, "--json"])
    assert r.exit_code == code, r.output
    return json.loads(r.stdout)


def test_catalog_devices(cat: Any) -> None:
    assert cat.chip("ascend-910c").devices == 2
    assert cat.chip("b200").dies == 2 and cat.chip("b200").devices == 1


@pytest.mark.parametrize("system,ranks", [("cloudmatrix384", 2), ("gb200-nvl72", 1)])
def test_infer_and_serve_sim_default_to_devices(system: str, ranks: int) -> None:
    base = ["--system", system, "--chips", "16", "--model", "llama3-8b", "--precision", "int8"
            if system == "cloudmatrix384" else "fp8"]
    row = _json(["infer", *base, "--phase", "decode", "--batch", "8", "--tp", "2"])
    assert row["layout"]["ranks_per_chip"] == ranks
    assert row["layout"]["dp"] * row["layout"]["tp"] == 16 * ranks
    sim = _json(["serve-sim", *base, "--rate", "1", "--duration", "3", "--tp", "2"])
    assert sim["layout"]["ranks_per_chip"] == ranks


def test_train_defaults_to_devices() -> None:
    row = _json(["train", "--system", "cloudmatrix384", "--chips", "16", "--model", "llama3-8b",
                 "--global-batch", "32", "--seq-len", "2048", "--tp", "2", "--no-economics"])
    assert row["plan"]["dp"] == 16 * 2 // 2


def test_plan_infer_ranks_are_dies_and_idle_chips() -> None:
    doc = _json(["plan", "infer", "--system", "cloudmatrix384", "--model", "deepseek-v3",
                 "--slo-tpot-ms", "50", "--precision", "int8", "--top", "3",
                 "--no-disaggregate"])
    assert doc["candidates"]
    for c in doc["candidates"]:
        assert c["layout"]["ranks_per_chip"] == 2
        assert c["instances"] == 384 // c["chips"]
        assert c["idle_chips"] == 384 - c["instances"] * c["chips"]


def test_plan_infer_all_chips() -> None:
    argv = ["plan", "infer", "--system", "dgx-h100", "--chips", "24", "--model", "llama3-70b",
            "--slo-tpot-ms", "30", "--precision", "fp8", "--top", "5"]
    free = _json(argv)
    assert any(c["idle_chips"] > 0 for c in free["candidates"])
    assert all(c["idle_chips"] == 24 - c["instances"] * c["chips"] for c in free["candidates"])
    full = _json([*argv, "--all-chips"])
    assert full["candidates"] and all(c["idle_chips"] == 0 for c in full["candidates"])
    assert full["infeasible"]["leaves_chips_idle"] > 0
    best_free = free["candidates"][0]["tokens_per_s_per_chip"]
    assert full["candidates"][0]["tokens_per_s_per_chip"] <= best_free
