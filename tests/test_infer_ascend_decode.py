"""Decode at EP320 (CloudMatrix-Infer, DeepSeek-V3's decode unit): shared experts on ranks of
their own, and what MTP buys by batch size."""

from __future__ import annotations

import dataclasses
import math

import pytest

from superpod import api
from superpod.errors import Infeasible
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.expert_placement import shared_expert_ranks
from superpod.infer.iteration import Iteration, engine, iteration
from superpod.workload.model import load_model

DS = load_model("deepseek-v3")
EP320 = ServingLayout(dp=320, ep=320, ranks_per_chip=2)
INT8 = InferOptions(precision="int8", kv_precision="bf16", eplb=True, mtp=1,
                    ep_library="cloudmatrix_infer-2025-06")


def _cm384():  # type: ignore[no-untyped-def]
    return api.system("cloudmatrix384", 160)


def _it(res: Iteration | Infeasible) -> Iteration:
    assert isinstance(res, Iteration), res
    return res


# ---------------------------------------------------------------------- shared experts


def test_shared_expert_ranks_balance_the_routed_ones() -> None:
    # DeepSeek-V3 (256 routed, top-8, 1 shared): EP320 -> round(320 / 9) = 36 replicas
    assert shared_expert_ranks(DS, 320) == 36
    assert shared_expert_ranks(DS, 260) == 4  # only the ranks left over after the routed
    for ep in (1, 32, 144, 256):  # a rank can hold more than one expert: shared on every rank
        assert shared_expert_ranks(DS, ep) == 0
    qwen = load_model("qwen3-235b-a22b")  # no shared expert
    assert shared_expert_ranks(qwen, 512) == 0


def test_ep320_serves_the_shared_expert_from_its_own_ranks() -> None:
    s = _cm384()
    eng = engine(s, DS, EP320, INT8.for_chip(s.chip))
    assert eng.shared_ranks == 36
    moe = DS.first_k_dense_replace
    assert not any(n == 2 * DS.shared_intermediate_size for n, _, _ in eng.dense_shapes(moe))
    # the busiest rank is a routed one: T k gamma / (ep - S) token-expert rows
    tokens, gamma = 8.0, 1.3
    pairs = eng._experts(moe, tokens, {}, gamma)
    assert pairs == pytest.approx(tokens * 320 * 8 / (320 - 36) * gamma, rel=1e-12)
    # a token goes to k + 1 destinations
    t9, _ = eng._ep_comm(tokens, 1.0)
    e32 = engine(api.system("cloudmatrix384", 16), DS, ServingLayout(dp=32, ep=32,
                                                                      ranks_per_chip=2),
                 INT8.for_chip(s.chip))
    assert e32.shared_ranks == 0
    assert any(n == 2 * DS.shared_intermediate_size for n, _, _ in e32.dense_shapes(moe))
    assert any(key[3] and dict(key[3]).get("top_k") == 9 for key in eng._coll)
    assert t9 > 0


def test_ep320_decode_breakdown_adds_up() -> None:
    it = _it(iteration(_cm384(), DS, EP320, INT8, phase="decode", batch=8 * 160,
                       context=4096, check_memory=False))
    assert math.isclose(sum(it.breakdown_s.values()), it.time_s, rel_tol=1e-12)
    assert it.breakdown_s["ep_comm"] > 0
    assert any("shared expert served from 36 ranks" in n for n in it.notes)


def test_mtp_pays_most_at_small_batches() -> None:
    # CloudMatrix-Infer's MTP ablation: one draft token at 70 % acceptance raises decode
    # throughput most at small batches (weights and EP latency floors are paid once a step
    # whatever q is) and least at large ones (attention and expert GEMMs scale with q)
    s = _cm384()
    gains = []
    for per_npu in (8, 96):
        thr = []
        for mtp in (0, 1):
            opts = dataclasses.replace(INT8, mtp=mtp, mtp_acceptance=0.7)
            it = _it(iteration(s, DS, EP320, opts, phase="decode", batch=per_npu * 160,
                               context=4096, check_memory=False))
            thr.append(it.tokens_generated / it.time_s)
        gains.append(thr[1] / thr[0])
    assert gains[0] > gains[1] > 1.0
