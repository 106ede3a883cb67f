"""Training: step-time timeline invariants, closed forms, infeasible layouts named."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app
from superpod.errors import Infeasible
from superpod.train.plan import TrainPlan
from superpod.train.search import plan_train
from superpod.train.step import TrainResult, evaluate_train
from superpod.workload.model import load_model
from superpod.workload.ops import model_flops_per_token

L8 = load_model("llama3-8b")
L70 = load_model("llama3-70b")


def _ok(res: TrainResult | Infeasible) -> TrainResult:
    assert isinstance(res, TrainResult), res
    return res


def test_breakdown_adds_up_and_mfu_is_the_closed_form() -> None:
    s = api.system("dgx-h100", 64)
    plan = TrainPlan(tp=4, pp=4, vpp=5, cp=2, dp=2, micro_batch=1, global_batch=128,
                     seq_len=8192, precision="fp8", sequence_parallel=True,
                     pp_schedule="interleaved")
    r = _ok(evaluate_train(s, L70, plan))
    assert math.isclose(sum(r.breakdown_s.values()), r.step_time_s, rel_tol=1e-12)
    tokens = 128 * 8192
    expected = model_flops_per_token(L70, 8192) * tokens / r.step_time_s / (64 * 1978.9e12)
    assert math.isclose(r.mfu, expected, rel_tol=1e-9)
    assert math.isclose(r.tokens_per_s_per_chip, tokens / r.step_time_s / 64)
    assert math.isclose(r.memory.total, sum(r.memory.to_dict().values()))


@pytest.mark.parametrize("pp,m", [(2, 8), (4, 8), (8, 16), (4, 32)])
def test_1f1b_bubble_fraction(pp: int, m: int) -> None:
    # (p - 1) / (m + p - 1) of the pipeline time (Narayanan et al. SC'21)
    s = api.system("dgx-h100", 8 * pp)
    plan = TrainPlan(tp=8, pp=pp, dp=1, micro_batch=1, global_batch=m, seq_len=4096,
                     sequence_parallel=True, recompute="full")
    r = _ok(evaluate_train(s, L70, plan, check_memory=False))
    b = r.breakdown_s
    pipeline = sum(v for k, v in b.items() if k not in ("dp_comm", "optimizer"))
    assert math.isclose(b["pipeline_bubble"] / pipeline, (pp - 1) / (m + pp - 1), rel_tol=1e-9)


def test_interleaving_shrinks_the_bubble() -> None:
    s = api.system("dgx-h100", 32)
    base = dict(tp=8, pp=4, dp=1, micro_batch=1, global_batch=16, seq_len=4096,
                sequence_parallel=True, recompute="full")
    plain = _ok(evaluate_train(s, L70, TrainPlan(**base), check_memory=False))  # type: ignore[arg-type]
    inter = _ok(evaluate_train(s, L70, TrainPlan(vpp=4, pp_schedule="interleaved", **base),  # type: ignore[arg-type]
                               check_memory=False))
    assert inter.breakdown_s["pipeline_bubble"] < plain.breakdown_s["pipeline_bubble"]


@given(st.sampled_from([1, 2, 4]), st.sampled_from([8, 16, 32, 64]))
@settings(max_examples=12, deadline=None)
def test_more_chips_never_raise_per_step_compute_per_chip(tp: int, dp: int) -> None:
    def at(d: int) -> TrainResult:
        s = api.system("dgx-h100", tp * d)
        return _ok(evaluate_train(s, L8, TrainPlan(tp=tp, dp=d, global_batch=128,
                                                   seq_len=4096, zero=3,
                                                   sequence_parallel=tp > 1),
                                  check_memory=False))
    assert at(2 * dp).breakdown_s["compute"] <= at(dp).breakdown_s["compute"] * (1 + 1e-9)


def test_step_is_never_faster_than_the_compute_lower_bound() -> None:
    s = api.system("dgx-h100", 64)
    r = _ok(evaluate_train(s, L8, TrainPlan(dp=64, zero=3, global_batch=256, seq_len=8192)))
    flops = model_flops_per_token(L8, 8192) * 256 * 8192
    assert r.step_time_s >= flops / (64 * s.chip.peak_flop_per_s["bf16"])
    assert r.mfu < 1.0


@pytest.mark.parametrize("plan,reason", [
    (TrainPlan(dp=8, global_batch=8, seq_len=8192), "out_of_memory"),
    (TrainPlan(dp=4, global_batch=8, seq_len=8192), "world_size"),
    (TrainPlan(dp=8, global_batch=12, micro_batch=1, seq_len=4096), "batch_divisibility"),
    (TrainPlan(tp=3, dp=1, global_batch=8, seq_len=4096), "world_size"),
])
def test_infeasible_layouts_are_named(plan: TrainPlan, reason: str) -> None:
    res = evaluate_train(api.system("dgx-h100", 8), load_model("llama3.1-405b"), plan)
    assert isinstance(res, Infeasible) and res.reason == reason and res.detail


def test_out_of_memory_names_the_component_and_the_excess() -> None:
    res = evaluate_train(api.system("dgx-h100", 8), load_model("llama3.1-405b"),
                         TrainPlan(dp=8, global_batch=8, seq_len=8192))
    assert isinstance(res, Infeasible)
    assert "largest" in res.detail and "over by" in res.detail


def test_zero3_holds_fewer_weights_than_zero1() -> None:
    s = api.system("dgx-h100", 64)
    z1 = _ok(evaluate_train(s, L8, TrainPlan(dp=64, zero=1, global_batch=64, seq_len=4096)))
    z3 = _ok(evaluate_train(s, L8, TrainPlan(dp=64, zero=3, global_batch=64, seq_len=4096)))
    assert z3.memory.weights < z1.memory.weights
    assert z3.memory.total < z1.memory.total


def test_plan_search_returns_sorted_feasible_candidates_and_counts_reasons() -> None:
    res = plan_train(api.system("dgx-h100", 64), L70, 128, 8192, "fp8", top=4)
    times = [c.step_time_s for c in res.candidates]
    assert times == sorted(times) and len(times) == 4
    assert res.infeasible["out_of_memory"] > 0
    n = res.layouts()
    assert n["considered"] == n["evaluated"] + n["pruned"] + n["infeasible"]
    assert n["evaluated"] >= len(times) and n["infeasible"] == sum(res.infeasible.values())


def test_train_cli_json_contract_and_trace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trace = tmp_path / "t.json"
    r = CliRunner().invoke(app, ["train", "--system", "dgx-h100", "--chips", "16", "--model",
                                 "llama3-8b", "--global-batch", "32", "--seq-len", "4096",
                                 "--zero", "3", "--trace", str(trace), "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert {"step_time_s", "tokens_per_s", "tokens_per_s_per_chip", "mfu",
            "memory_bytes_per_chip", "breakdown_s", "plan"} <= set(row)
    events = json.loads(trace.read_text())["traceEvents"]
    spans = sum(e["dur"] for e in events if e["ph"] == "X") / 1e6
    assert math.isclose(spans, row["step_time_s"], rel_tol=1e-9)


def test_train_cli_infeasible_and_bad_choice() -> None:
    r = CliRunner().invoke(app, ["train", "--system", "dgx-h100", "--model", "llama3.1-405b",
                                 "--global-batch", "8", "--seq-len", "8192"])
    assert r.exit_code == 1 and "out_of_memory" in r.output
    r = CliRunner().invoke(app, ["train", "--system", "dgx-h100", "--model", "llama3-8b",
                                 "--global-batch", "8", "--seq-len", "8192",
                                 "--recompute", "some"])
    assert r.exit_code == 2 and "--recompute" in r.output


def test_train_json_carries_goodput_power_and_cost() -> None:
    r = CliRunner().invoke(app, ["train", "--system", "gb200-nvl72", "--model", "llama3-8b",
                                 "--global-batch", "72", "--seq-len", "4096", "--zero", "3",
                                 "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    g = row["goodput"]
    assert 0 < g["ettr"] < 1 and math.isclose(g["tokens_per_s"], row["tokens_per_s"] * g["ettr"])
    assert 0 < row["it_power_w"] <= api.show("gb200-nvl72")["it_power_w"] * (1 + 1e-9)
    assert row["usd_per_million_tokens"] > 0 and row["tokens_per_j"] > 0
