"""The scoreboard: every published case loads, kernel errors stay within tolerance."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from superpod.cli import app
from superpod.validate.runner import validate_file

#: Only ever tightened.
KERNEL_MEDIAN_ABS_ERROR_PCT = 5.0


def test_every_public_case_loads_and_is_reported(public_cases) -> None:  # type: ignore[no-untyped-def]
    result = validate_file(str(public_cases))
    assert result["cases"]
    assert [c for c in result["cases"] if c["status"] == "error"] == []
    for kind, s in result["summary"].items():
        assert s["cases"] == s["ok"] + s["unsupported"] + s["error"], kind
    for c in result["cases"]:
        if c["status"] == "unsupported":
            assert c["reason"]


def test_kernel_cases_within_tolerance(public_cases) -> None:  # type: ignore[no-untyped-def]
    s = validate_file(str(public_cases))["summary"]["kernel"]
    assert s["ok"] == s["cases"]
    assert s["median_abs_error_pct"] <= KERNEL_MEDIAN_ABS_ERROR_PCT


def test_cli_json_contract(public_cases) -> None:  # type: ignore[no-untyped-def]
    r = CliRunner().invoke(app, ["validate", str(public_cases), "--json"])
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    ok = [c for c in out["cases"] if c["status"] == "ok"]
    for c in ok:
        assert {"id", "kind", "metric", "measured", "predicted", "error_pct"} <= set(c)
        assert abs(c["error_pct"] - 100 * (c["predicted"] - c["measured"]) / c["measured"]) < 0.01


#: Only ever tightened (the network issue's target is 15 %).
COLLECTIVE_MEDIAN_ABS_ERROR_PCT = 5.0


def test_collective_cases_within_tolerance(public_cases) -> None:  # type: ignore[no-untyped-def]
    s = validate_file(str(public_cases))["summary"]["collective"]
    assert s["ok"] == s["cases"]  # every collective case evaluated
    assert s["median_abs_error_pct"] <= COLLECTIVE_MEDIAN_ABS_ERROR_PCT


#: Only ever tightened (the training issue's target is 15 %; see the closing notes).
# 144-case file; 10.6 on its branch, 11.03 with the collective fixes (was 19.0); 6.95 with
# torchtitan's per-rank micro-batch split and the Llama 3 profile (was 7.12)
TRAIN_MEDIAN_ABS_ERROR_PCT = 7.0


def test_train_cases_evaluated_and_within_tolerance(public_cases) -> None:  # type: ignore[no-untyped-def]
    s = validate_file(str(public_cases))["summary"]["train"]
    assert s["ok"] >= 0.9 * s["cases"]
    assert s["median_abs_error_pct"] <= TRAIN_MEDIAN_ABS_ERROR_PCT


def test_packaged_cases_in_sync_with_shared(public_cases) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    import pytest

    shared = Path(__file__).resolve().parents[2] / "shared" / "validation" / "public.yaml"
    if not shared.exists():
        pytest.skip("shared/validation is not beside the checkout")
    assert public_cases.read_bytes() == shared.read_bytes()


def test_validate_without_a_file_runs_the_packaged_cases() -> None:
    r = CliRunner().invoke(app, ["validate", "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["cases"]) >= 144


def test_every_case_kind_has_one_evaluator() -> None:
    from typing import get_args

    from superpod.validate.cases import REQUIRED_SECTION, Kind
    from superpod.validate.runner import EVALUATORS

    assert set(EVALUATORS) == set(get_args(Kind)) == set(REQUIRED_SECTION)


def test_extra_train_cases_evaluate_within_tolerance() -> None:
    """Megatron-Bridge rows of two releases on GB300 / GB200 / B300 / B200 that public.yaml
    lacks (scripts/mbridge_extra_cases.py): every one is evaluated, each on its own layout,
    and the median error holds (measured 11.4 %; the tolerance only tightens)."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "src" / "superpod" / "validation" \
        / "extra-train.yaml"
    out = validate_file(str(path))
    s = out["summary"]["train"]
    assert s["ok"] == s["cases"] >= 50 and s["unsupported"] == s["error"] == 0
    assert s["median_abs_error_pct"] <= 12.5
    chips = {c["id"].split("-")[2] for c in out["cases"]}
    assert {"gb300", "gb200", "b300", "b200"} <= chips
