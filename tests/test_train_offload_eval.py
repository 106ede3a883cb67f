"""train / plan train with --offload auto: ZeRO-Offload where HBM alone does not fit."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app
from superpod.errors import Infeasible
from superpod.train import memory as mem
from superpod.train.offload_eval import evaluate_with_offload
from superpod.train.plan import TrainPlan
from superpod.train.step import evaluate_train
from superpod.workload.model import load_model

runner = CliRunner()


def plan70b(**kw: object) -> TrainPlan:
    base: dict[str, object] = dict(tp=8, pp=1, vpp=1, dp=1, cp=1, ep=1, sequence_parallel=True,
                                   zero=1, micro_batch=1, global_batch=16, seq_len=4096,
                                   recompute="full", precision="bf16", pp_schedule="1f1b")
    return TrainPlan(**(base | kw))  # type: ignore[arg-type]


def test_llama70b_on_one_dgx_h100_fits_only_with_the_optimizer_on_the_host() -> None:
    s, m, p = api.system("dgx-h100"), load_model("llama3-70b"), plan70b()
    assert isinstance(evaluate_train(s, m, p), Infeasible)
    raw = evaluate_train(s, m, p, check_memory=False)
    assert not isinstance(raw, Infeasible)
    res = evaluate_with_offload(s, m, p)
    assert not isinstance(res, Infeasible)
    params = raw.memory.optimizer / mem.OPTIMIZER_BYTES  # ~8.8 B a rank
    # transfers (2 x 2 B a parameter over 64 GB/s) hide under backward / forward; the CPU
    # Adam step streams 28 B a parameter through 614.4 / 8 = 76.8 GB/s of DRAM per GPU
    cpu = 28.0 * params / 76.8e9
    assert res.breakdown_s["offload"] == pytest.approx(cpu)
    assert res.step_time_s == pytest.approx(raw.step_time_s - raw.breakdown_s["optimizer"] + cpu)
    assert res.memory.optimizer == 0.0
    assert res.memory.gradients == pytest.approx(raw.memory.gradients / 2)
    assert res.memory.total <= s.chip.hbm_bytes * mem.USABLE_FRACTION
    assert res.mfu == pytest.approx(raw.mfu * raw.step_time_s / res.step_time_s)
    assert any(n.startswith("offload: optimizer to host") for n in res.notes)


def test_a_layout_that_fits_is_unchanged() -> None:
    s, m = api.system("dgx-h100"), load_model("llama3-8b")
    p = plan70b(tp=1, dp=8, global_batch=64)
    assert evaluate_with_offload(s, m, p) == evaluate_train(s, m, p)


def test_what_cannot_fit_even_offloaded_stays_infeasible() -> None:
    s, m = api.system("dgx-h100"), load_model("llama3.1-405b")
    res = evaluate_with_offload(s, m, plan70b())
    assert isinstance(res, Infeasible) and "offloaded" in res.detail


def test_plan_train_finds_layouts_only_with_offload() -> None:
    args = ["plan", "train", "-s", "dgx-h100", "-m", "llama3-70b", "--global-batch", "16",
            "--seq-len", "4096", "--top", "1", "--json"]
    plain = runner.invoke(app, args)
    assert plain.exit_code == 1  # nothing feasible
    assert json.loads(plain.stdout)["candidates"] == []
    r = runner.invoke(app, [*args, "--offload", "auto"])
    assert r.exit_code == 0, r.output
    c = json.loads(r.output)["candidates"][0]
    assert c["breakdown_s"]["offload"] > 0


def test_offload_options_are_checked() -> None:
    base = ["train", "-s", "dgx-h100", "-m", "llama3-8b", "--global-batch", "8",
            "--seq-len", "1024"]
    assert runner.invoke(app, [*base, "--offload", "always"]).exit_code == 2
    assert runner.invoke(app, [*base, "--offload-tier", "host"]).exit_code == 2
    assert runner.invoke(app, [*base, "--offload", "auto", "--offload-tier", "pool"]
                         ).exit_code == 2  # DGX H100 does not pool host memory
    assert runner.invoke(app, [*base, "--offload", "auto", "--offload-overlap", "x"]
                         ).exit_code == 2
    assert runner.invoke(app, ["train", "-s", "tpu-v5p-pod", "-m", "llama3-8b",
                               "--global-batch", "64", "--seq-len", "1024", "--chips", "8",
                               "--offload", "auto"]).exit_code == 2  # no host memory described
