"""The memoised layer costs never change a result: a plan evaluated after others (caches
warm, shared entries) gives exactly what it gives on cold caches. Guards the layer cache's
key against a plan field or module constant that the costs read but the key misses."""

from __future__ import annotations

import dataclasses

from superpod import api
from superpod.errors import Infeasible
from superpod.train import step as st_
from superpod.train.plan import TrainPlan
from superpod.train.step import evaluate_train
from superpod.workload.model import load_model

BASE = TrainPlan(tp=2, pp=2, dp=2, cp=2, ep=2, micro_batch=1, global_batch=8, seq_len=8192,
                 precision="fp8")
#: one variation of every field that can change a layer's cost
VARIANTS = dict(tp=4, cp=1, ep=1, micro_batch=2, seq_len=4096, recompute="full",
                precision="bf16", attention_kernel="fa2", tp_comm_overlap=False,
                compiled=True, fp8_recipe="current", fp8_split_accumulation=True,
                cp_rotate="allgather", cp_kv_expanded=True, order="tp-dp-cp-pp",
                sequence_parallel=False, dp=1, pp=4)


SYSTEM = api.system("dgx-h100", 16)  # one object, as a search holds it (the cache is per system)
MODEL = load_model("mixtral-8x7b")


def _step(plan: TrainPlan) -> float | str:
    res = evaluate_train(SYSTEM, MODEL, plan, check_memory=False)
    return res.reason if isinstance(res, Infeasible) else res.step_time_s


def test_warm_layer_cache_gives_the_cold_result() -> None:
    plans = [BASE]
    for name, value in VARIANTS.items():
        try:
            plans.append(dataclasses.replace(BASE, **{name: value}))
        except Exception:  # noqa: BLE001 - a variation the plan itself refuses
            continue
    warm = [_step(p) for p in plans]  # one after another: later plans hit earlier entries
    for plan, w in zip(plans, warm, strict=True):
        st_._LAYER_CACHE.clear()
        st_._UNIT_CACHE.clear()
        assert _step(plan) == w, plan
    assert len({w for w in warm if isinstance(w, float)}) > len(plans) // 2  # they differ
