"""Expert-rank load imbalance (closed forms, calibration, monotonicity), CUDA-graph padding
of decode batches, and the framework -> runtime mapping of validation cases."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.errors import Infeasible, SpecError
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.imbalance import (
    MEASURED_EXCESS,
    ep_imbalance,
    expected_max_normal,
    expert_dispersion,
)
from superpod.infer.iteration import Iteration, iteration
from superpod.infer.runtime import (
    CLOUDMATRIX,
    DEEPSEEK,
    DEFAULT,
    DEFAULT_OFFLINE_REQUESTS,
    LARGE_EP,
    SGLANG,
    SGLANG_LARGE_EP,
    TRTLLM_BENCH,
    TRTLLM_BENCH_GRAPH_BATCHES,
    TRTLLM_PERF_OVERVIEW,
    runtime_for,
)
from superpod.infer.serving import Workload, best_batch
from superpod.trust.holdout import holding_out
from superpod.trust.sources import source_key
from superpod.workload.model import load_model

DS = load_model("deepseek-v3")
L70 = load_model("llama3-70b")
FP8 = InferOptions(precision="fp8", kv_precision="fp8")


def _it(res: Iteration | Infeasible) -> Iteration:
    assert isinstance(res, Iteration), res
    return res


# ---------------------------------------------------------------------- closed forms


def test_expected_max_of_normals_closed_forms() -> None:
    assert expected_max_normal(1) == 0.0
    assert math.isclose(expected_max_normal(2), 1 / math.sqrt(math.pi), rel_tol=1e-6)
    # E[max of 3] = 3 / (2 sqrt(pi))
    assert math.isclose(expected_max_normal(3), 1.5 / math.sqrt(math.pi), rel_tol=1e-6)
    assert math.isclose(expected_max_normal(32), 2.0697, abs_tol=1e-3)  # tables: 2.0697


def test_imbalance_reproduces_its_measurement() -> None:
    """TensorRT-LLM blog 4, Table 1: DeepSeek-R1 EP32, (max - mean) / mean by rank 1.564
    without EPLB (8 experts a rank) and 0.109 with EPLB (9 slots a rank)."""
    assert math.isclose(ep_imbalance(256, 32) - 1, MEASURED_EXCESS[False], rel_tol=1e-12)
    assert math.isclose(ep_imbalance(256, 32, eplb=True, redundant=32) - 1,
                        MEASURED_EXCESS[True], rel_tol=1e-12)
    # the per-expert dispersion is that of the rank times sqrt(experts a rank) / z(32)
    assert math.isclose(expert_dispersion(False), 1.564 * math.sqrt(8) / 2.0697,
                        rel_tol=1e-3)


def test_imbalance_edges() -> None:
    assert ep_imbalance(256, 1) == 1.0  # one rank holds every expert
    assert ep_imbalance(0, 8) == 1.0
    # one expert a rank or fewer (replicas): no aggregation left to average the skew
    assert ep_imbalance(256, 256) < ep_imbalance(256, 512)
    assert InferOptions().imbalance(L70, ServingLayout(tp=8)) == 1.0  # dense
    assert InferOptions(ep_imbalance=1.3).imbalance(DS, ServingLayout(dp=8, ep=8)) == 1.3
    with pytest.raises(SpecError):
        InferOptions(ep_imbalance=0.9)


@given(st.integers(2, 512), st.integers(2, 256), st.booleans())
@settings(max_examples=60, deadline=None)
def test_imbalance_grows_with_ep_and_eplb_lowers_it(ep: int, experts: int, eplb: bool
                                                    ) -> None:
    g = ep_imbalance(experts, ep, eplb=eplb)
    assert g >= 1.0
    assert ep_imbalance(experts, 2 * ep, eplb=eplb) >= g
    assert ep_imbalance(experts, ep, eplb=True) <= ep_imbalance(experts, ep, eplb=False)


@pytest.mark.parametrize("phase,batch,ctx", [("prefill", 64, 4096), ("decode", 8192, 2048),
                                             ("decode", 256, 2048)])
def test_more_imbalance_is_never_faster(phase: str, batch: int, ctx: int) -> None:
    s = api.system("hgx-h800", 32)
    lay = ServingLayout(dp=32, ep=32)
    times = [_it(iteration(s, DS, lay, dataclasses.replace(FP8, ep_imbalance=g), phase=phase,
                           batch=batch, context=ctx)).time_s for g in (1.0, 1.2, 1.6, 2.5)]
    assert times == sorted(times) and times[-1] > times[0]
    default = _it(iteration(s, DS, lay, dataclasses.replace(FP8, eplb=False), phase=phase,
                            batch=batch, context=ctx))
    balanced = _it(iteration(s, DS, lay, FP8, phase=phase, batch=batch, context=ctx))
    assert FP8.eplb  # large-EP deployments balance experts: the default
    assert times[0] < balanced.time_s < default.time_s
    assert any("busiest expert rank" in n for n in default.notes)
    assert math.isclose(sum(default.breakdown_s.values()), default.time_s, rel_tol=1e-12)


# ---------------------------------------------------------------------- CUDA-graph padding


def test_padded_batch() -> None:
    o = InferOptions(graph_batch_sizes=(512, 1, 256, 256))
    assert o.graph_batch_sizes == (1, 256, 512)
    assert [o.padded_batch(b) for b in (1, 2, 256, 257, 512, 600)] == [1, 256, 256, 512,
                                                                     512, 600]
    with pytest.raises(SpecError):
        InferOptions(graph_batch_sizes=(0,))


def test_padding_costs_the_captured_batch_and_generates_the_real_one() -> None:
    s = api.system("dgx-h100", 8)
    lay = ServingLayout(tp=8)
    opts = dataclasses.replace(FP8, graph_batch_sizes=TRTLLM_BENCH_GRAPH_BATCHES)
    padded = _it(iteration(s, L70, lay, opts, phase="decode", batch=600, context=2048))
    full = _it(iteration(s, L70, lay, FP8, phase="decode", batch=1024, context=2048))
    assert math.isclose(padded.time_s, full.time_s, rel_tol=1e-12)
    assert padded.tokens_generated == 600
    assert any("padded" in n for n in padded.notes)
    # on a captured size padding changes nothing
    on = _it(iteration(s, L70, lay, opts, phase="decode", batch=512, context=2048))
    plain = _it(iteration(s, L70, lay, FP8, phase="decode", batch=512, context=2048))
    assert on.time_s == plain.time_s


def test_best_batch_with_padding_prefers_captured_batches() -> None:
    """An uncaptured batch pays for the captured one above it and generates less, so the
    search lands on a captured batch (or on the memory limit, when none fits below it)."""
    s = api.system("dgx-h100", 8)
    lay = ServingLayout(tp=8)
    opts = dataclasses.replace(FP8, graph_batch_sizes=TRTLLM_BENCH_GRAPH_BATCHES)
    work = Workload(input_len=1000, output_len=1000)
    r = best_batch(s, L70, lay, opts, phase="e2e", work=work)
    assert not isinstance(r, Infeasible)
    assert r.batch in TRTLLM_BENCH_GRAPH_BATCHES or r.batch == r.max_batch
    same = best_batch(s, L70, lay, FP8, phase="e2e", work=work, limit=r.batch)
    assert not isinstance(same, Infeasible)
    assert r.tokens_per_s <= same.tokens_per_s * (1 + 1e-12)


# ---------------------------------------------------------------------- runtimes


def test_runtime_for_framework_text() -> None:
    assert runtime_for("TensorRT-LLM (PyTorch backend), trtllm-bench throughput") \
        is TRTLLM_BENCH
    assert runtime_for("CloudMatrix-Infer") is CLOUDMATRIX
    assert runtime_for("DeepSeek production inference system") is DEEPSEEK
    assert runtime_for("vLLM") is DEFAULT and runtime_for(None) is DEFAULT
    assert runtime_for("SGLang (PD disaggregation, large-scale EP)") is SGLANG
    assert TRTLLM_BENCH.graphs() == TRTLLM_BENCH_GRAPH_BATCHES
    assert not TRTLLM_BENCH.eplb_for(8) and not TRTLLM_BENCH.eplb_for(64)
    assert DEEPSEEK.eplb_for(8) and CLOUDMATRIX.eplb_for(32) and SGLANG.eplb_for(32)
    # the library default: a balancer from EP 32 (DeepSeek-V3's smallest EP unit)
    assert DEFAULT.eplb_for(32) and not DEFAULT.eplb_for(16) and not DEFAULT.eplb_for(1)
    assert DEFAULT.graphs() == () and DEFAULT.requests_for(1024, 1024) is None


def test_every_runtime_setting_cites_a_document_first() -> None:
    for rt in (TRTLLM_BENCH, SGLANG, DEEPSEEK, CLOUDMATRIX):
        for src in rt.sources:
            assert src.startswith("https://"), src
            assert source_key(src) != src.lower()  # a URL key, not the prose
    assert LARGE_EP.source.startswith("https://arxiv.org/abs/2412.19437")


def test_held_out_runtime_settings_fall_back_to_library_defaults() -> None:
    """Holding out the perf-overview drops its graphs, balancer statement and request
    table: the defaults are no padding, the EP-size rule and the quick-start count."""
    perf = source_key(TRTLLM_PERF_OVERVIEW)
    assert TRTLLM_BENCH.requests_for(1000, 1000) == 3000
    assert TRTLLM_BENCH.requests_for(8192, 1024) == 1500
    assert TRTLLM_BENCH.requests_for(30000, 1000) == 1000
    with holding_out([perf]):
        assert TRTLLM_BENCH.graphs() == ()
        assert TRTLLM_BENCH.eplb_for(32) and not TRTLLM_BENCH.eplb_for(8)
        assert TRTLLM_BENCH.requests_for(8192, 1024) == DEFAULT_OFFLINE_REQUESTS.value
    with holding_out([source_key(SGLANG_LARGE_EP)]):
        assert SGLANG.eplb_for(72) and not SGLANG.eplb_for(8)  # the EP-size rule
    with holding_out([source_key(LARGE_EP.source)]):
        assert not DEFAULT.eplb_for(320)
    with holding_out([perf, source_key(DEFAULT_OFFLINE_REQUESTS.source)]):
        assert TRTLLM_BENCH.requests_for(1024, 1024) is None


def test_cli_expert_balance_flags() -> None:
    import json

    from typer.testing import CliRunner

    from superpod.cli import app

    def tps(*flags: str) -> float:
        r = CliRunner().invoke(app, ["infer", "-s", "hgx-h800", "-n", "32", "-m",
                                     "deepseek-v3", "--phase", "prefill", "--batch", "64",
                                     "--input-len", "4096", "--ep", "32", "--precision",
                                     "fp8", "--json", *flags])
        assert r.exit_code == 0, r.output
        return float(json.loads(r.stdout)["tokens_per_s"])

    default, balanced, perfect = tps(), tps("--eplb"), tps("--ep-imbalance", "1.0")
    unbalanced = tps("--no-eplb")
    assert unbalanced < balanced == default < perfect


def test_imbalance_held_out_falls_back_to_balanced() -> None:
    from superpod.infer.imbalance import SOURCE

    assert SOURCE.startswith("https://github.com/NVIDIA/TensorRT-LLM/blob/")
    assert ep_imbalance(256, 32) > 2.0
    with holding_out([source_key(SOURCE)]):
        assert expert_dispersion(False) == 0.0
        assert ep_imbalance(256, 32) == 1.0 and ep_imbalance(256, 32, eplb=True) == 1.0


def test_trtllm_bench_runs_without_two_batch_overlap() -> None:
    assert TRTLLM_BENCH.tbo() is False and SGLANG.tbo() is None and DEFAULT.tbo() is None
    with holding_out([source_key(TRTLLM_PERF_OVERVIEW)]):
        assert TRTLLM_BENCH.tbo() is None  # the library default: whichever is faster


def test_cloudmatrix_infer_runs_its_own_ep_kernels_unless_its_paper_is_held_out() -> None:
    assert CLOUDMATRIX.ep_library_name() == "cloudmatrix_infer-2025-06"
    assert SGLANG.ep_library_name() is None  # no library named: the fabric's newest
    with holding_out([source_key(CLOUDMATRIX.ep_library.source)]):  # type: ignore[union-attr]
        assert CLOUDMATRIX.ep_library_name() is None


def test_decode_ep_time_follows_the_named_kernel_library() -> None:
    # EP320 decode on UB: the paper's FusedDispatch / FusedCombine have a smaller per-(token,
    # peer) cost than the DeepEP-Ascend README's kernels, so the named library's EP time is
    # shorter; the library's name reaches the collective model
    s = api.system("cloudmatrix384", 160)
    lay = ServingLayout(dp=320, ep=320, ranks_per_chip=2)
    base = InferOptions(precision="int8", kv_precision="bf16", eplb=True)

    def ep_s(opts: InferOptions) -> float:
        it = _it(iteration(s, DS, lay, opts, phase="decode", batch=96 * 320, context=4096,
                           check_memory=False))
        return it.breakdown_s["ep_comm"]

    own = ep_s(dataclasses.replace(base, ep_library="cloudmatrix_infer-2025-06"))
    ascend = ep_s(dataclasses.replace(base, ep_library="deepep_ascend-2025-09"))
    assert 0 < own < ascend
    assert ep_s(base) == ascend  # unnamed: the newest library calibrated on UB
