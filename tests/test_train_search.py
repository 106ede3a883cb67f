"""The branch-and-bound layout search against the exhaustive loop over the same space, and
the layout counts it reports."""

from __future__ import annotations

import itertools
import json

import pytest
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app
from superpod.errors import Infeasible
from superpod.train.plan import TrainPlan
from superpod.train.search import Group, candidates, groups, orders, plan_train
from superpod.train.step import (
    dp_floor_s,
    evaluate_train,
    placement_signature,
    step_times_by_zero,
)
from superpod.workload.model import load_model

SMALL = [("dgx-h100", 8, "llama3-8b", 16, 4096, "bf16"),
         ("gb200-nvl72", 8, "mixtral-8x7b", 4, 4096, "fp8"),
         ("tpu-v5p-pod", 8, "llama3-8b", 16, 8192, "bf16")]


@pytest.mark.parametrize(("sid", "chips", "model", "gb", "seq", "prec"), SMALL)
def test_bound_search_finds_the_exhaustive_best(sid: str, chips: int, model: str, gb: int,
                                                seq: int, prec: str) -> None:
    s, m = api.system(sid, chips), load_model(model)
    kw = {"ranks_per_chip": s.chip.devices, "top": 3}
    fast = plan_train(s, m, gb, seq, prec, **kw)  # type: ignore[arg-type]
    full = plan_train(s, m, gb, seq, prec, exhaustive=True,
                      ranks_per_chip=s.chip.devices, top=40)
    assert full.candidates and fast.candidates
    assert fast.candidates[0].step_time_s <= full.candidates[0].step_time_s * (1 + 1e-12)
    # exact: the distinct step times found are the exhaustive loop's smallest distinct ones
    # (a dominated layout of equal time, ZeRO-1 beside ZeRO-2, is pruned, so a tie may
    # appear fewer times)
    mine = sorted({c.step_time_s for c in fast.candidates})
    assert mine == sorted({c.step_time_s for c in full.candidates})[:len(mine)]
    # the same space, partitioned; the bounds cost far fewer layouts
    a, b = fast.layouts(), full.layouts()
    assert a["considered"] == b["considered"] == a["evaluated"] + a["pruned"] + a["infeasible"]
    assert b["pruned"] == 0 and a["evaluated"] < b["evaluated"] / 10


def test_space_covers_every_axis() -> None:
    s, m = api.system("dgx-h100", 16), load_model("mixtral-8x7b")
    gs = list(groups(s, m, 32, 4096))
    seen = {k: {getattr(g, k) for g in gs} for k in (
        "schedule", "vpp", "etp", "micro_batch", "cp", "ep", "tp", "pp")}
    assert seen["schedule"] == {"1f1b", "interleaved", "zero_bubble", "dualpipe"}
    assert {1, 2, 4, 8, 16} <= seen["vpp"] and {1, 2, 4, 8} <= seen["etp"]
    assert {1, 2, 4, 8, 16} == seen["micro_batch"] and {1, 2, 4} <= seen["cp"]
    assert {1, 2, 4, 8} <= seen["ep"] and {1, 2, 4, 8} <= seen["tp"] <= {1, 2, 4, 8}
    g = next(g for g in gs if min(g.tp, g.pp, g.cp, g.dp) > 1)
    plans = list(itertools.islice(candidates(s, m, 32, 4096, "bf16"), 200_000))
    mine = [p for p in plans if (p.tp, p.pp, p.vpp, p.cp, p.ep, p.etp, p.micro_batch,
                                 p.pp_schedule) == (g.tp, g.pp, g.vpp, g.cp, g.ep, g.etp,
                                                    g.micro_batch, g.schedule)]
    assert len(mine) == 24 * 2 * 4 * 4  # orders x TP overlap x ZeRO x recompute
    assert {p.zero for p in mine} == {0, 1, 2, 3} and {p.tp_comm_overlap for p in mine} == {
        True, False}
    assert {p.recompute for p in mine} == {"none", "selective", "op", "full"}
    assert len({p.order for p in mine}) == 24


def test_orders_are_distinct_permutations_of_the_real_dimensions() -> None:
    g = Group(tp=4, pp=2, vpp=1, dp=8, cp=1, ep=1, etp=1, micro_batch=1, schedule="1f1b")
    out = orders(g)
    assert len(out) == len(set(out)) == 6 and out[0] == "tp-cp-dp-pp"
    assert all(o.endswith("cp") for o in out[1:])  # the degree-1 dimension goes last


def test_equal_placement_signatures_cost_the_same_step() -> None:
    """Orders merged by the search really cost the same (CloudMatrix: one domain)."""
    s, m = api.system("cloudmatrix384"), load_model("llama3-70b")
    base = {"tp": 8, "pp": 4, "dp": 24, "global_batch": 96, "seq_len": 4096,
            "sequence_parallel": True}
    times: dict[object, set[float]] = {}
    for order in ("tp-cp-dp-pp", "tp-cp-pp-dp", "dp-tp-cp-pp", "pp-tp-dp-cp"):
        p = TrainPlan(order=order, **base)  # type: ignore[arg-type]
        r = evaluate_train(s, m, p, ranks_per_chip=2, check_memory=False)
        assert not isinstance(r, Exception) and hasattr(r, "step_time_s")
        times.setdefault(placement_signature(s, p, 2), set()).add(round(r.step_time_s, 12))
    assert all(len(v) == 1 for v in times.values())


def test_plan_train_json_reports_layout_counts() -> None:
    r = CliRunner().invoke(app, ["plan", "train", "-s", "dgx-h100", "--chips", "8", "-m",
                                 "llama3-8b", "--global-batch", "16", "--seq-len", "4096",
                                 "--top", "2", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    n = doc["layouts"]
    assert set(n) == {"considered", "evaluated", "pruned", "infeasible"}
    assert n["considered"] == n["evaluated"] + n["pruned"] + n["infeasible"] > 0
    assert len(doc["candidates"]) == 2


ZERO_PLANS = [  # (system, chips, model, plan fields): dense and MoE, CP, DualPipe, FP8
    ("dgx-h100", 16, "llama3-8b", dict(tp=2, pp=2, vpp=2, dp=2, cp=2, micro_batch=1,
                                       global_batch=8, seq_len=8192, recompute="selective",
                                       pp_schedule="interleaved", tp_comm_overlap=True)),
    ("gb200-nvl72", 8, "mixtral-8x7b", dict(tp=2, pp=2, dp=2, ep=4, micro_batch=1,
                                            global_batch=8, seq_len=4096, precision="fp8",
                                            pp_schedule="dualpipe", recompute="full")),
]


@pytest.mark.parametrize(("sid", "chips", "model", "fields"), ZERO_PLANS)
def test_step_times_by_zero_are_the_evaluated_step_times(sid: str, chips: int, model: str,
                                                          fields: dict[str, object]) -> None:
    """The search's shared timeline gives exactly evaluate_train's step at every stage."""
    s, m = api.system(sid, chips), load_model(model)
    base = TrainPlan(sequence_parallel=True, **fields)  # type: ignore[arg-type]
    got = step_times_by_zero(s, m, base, (0, 1, 2, 3))
    assert not isinstance(got, Infeasible)
    for z, t in got.items():
        r = evaluate_train(s, m, TrainPlan(**{**base.to_dict(), "zero": z}),
                           check_memory=False)
        assert not isinstance(r, Infeasible)
        assert t == r.step_time_s  # bit for bit


@pytest.mark.parametrize(("sid", "chips", "model", "fields"), ZERO_PLANS)
def test_dp_floor_bounds_every_recompute_overlap_and_order(sid: str, chips: int, model: str,
                                                           fields: dict[str, object]) -> None:
    """The data-parallel floor the group bound adds is below the data-parallel share
    (exposed dp communication + the interference of its hidden part) of every layout."""
    s, m = api.system(sid, chips), load_model(model)
    base = TrainPlan(sequence_parallel=True, **{**fields, "recompute": "none"})  # type: ignore[arg-type]
    g = Group(base.tp, base.pp, base.vpp, base.dp, base.cp, base.ep, base.etp,
              base.micro_batch, base.pp_schedule)
    os_ = orders(g)
    floor = dp_floor_s(s, m, base, os_, (0, 1, 2, 3))
    for z, order, ov, rec in itertools.product((0, 1, 2, 3), os_, (True, False),
                                               ("none", "selective", "op", "full")):
        p = TrainPlan(**{**base.to_dict(), "zero": z, "order": order, "tp_comm_overlap": ov,
                         "recompute": rec})
        r = evaluate_train(s, m, p, check_memory=False)
        assert not isinstance(r, Infeasible)
        bd = r.breakdown_s
        # the interference of the dp traffic alone is at most the whole interference
        assert floor[z] <= bd["dp_comm"] + bd["overlap_interference"] + 1e-12 * r.step_time_s


def test_space_tries_the_embedding_and_head_slots_where_only_they_split_evenly() -> None:
    from superpod.workload.model import model_from_config

    # 14 layers: 4 x 4 stages split them only with the embedding and head slots (16)
    cfg = {"name": "edge-test", "hidden_size": 2048, "num_hidden_layers": 14,
           "num_attention_heads": 16, "num_key_value_heads": 8, "intermediate_size": 8192,
           "vocab_size": 32000}
    m = model_from_config(cfg, file="edge-test")
    s = api.system("dgx-h100", 8)
    gs = list(groups(s, m, 32, 4096))
    edge = {(g.pp, g.vpp, g.schedule) for g in gs if g.edge}
    assert (4, 4, "interleaved") in edge and (8, 2, "interleaved") in edge
    assert (7, 2, "interleaved") not in edge  # 14 layers fill 7 x 2 stages on their own
    assert all((14 + 2) % (g.pp * g.vpp) == 0 and 14 % (g.pp * g.vpp) for g in gs if g.edge)
    assert (2, 1, "1f1b") not in edge  # 14 splits over 2 ranks on its own
    # the bound search still finds the exhaustive best with those groups in the space
    fast = plan_train(s, m, 32, 4096, "bf16", top=3)
    full = plan_train(s, m, 32, 4096, "bf16", exhaustive=True, top=40)
    assert fast.candidates[0].step_time_s <= full.candidates[0].step_time_s * (1 + 1e-12)
    mine = sorted({c.step_time_s for c in fast.candidates})
    assert mine == sorted({c.step_time_s for c in full.candidates})[:len(mine)]
    # an edge layout's plan says so, and its pipeline holds 16 slots
    g = next(g for g in gs if g.edge)
    p = g.plan(32, 4096, "bf16", order="tp-cp-dp-pp", overlap=False, zero=1, recompute="none")
    assert p.pp_edge_slots and p.pipeline_slots(14) == 16
