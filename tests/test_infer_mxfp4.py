"""MXFP4 weights (gpt-oss's experts) and trtllm-bench's own CUDA-graph batches.

MXFP4 runs as the serving frameworks run it: FP8 x FP4 mixed MMA at the FP8 rate where the
chip has FP4 tensor cores (Blackwell), weight-only W4A16 elsewhere (Hopper), its weights
streamed at 0.5 + 1/32 bytes a parameter either way."""

from __future__ import annotations

import pytest

from superpod import api
from superpod.infer.config import (
    WEIGHT_BYTES,
    InferOptions,
    ServingLayout,
    check_precision,
    gemm_dtype,
)
from superpod.infer.iteration import iteration
from superpod.infer.trtllm_bench import GRAPH_SOURCE, default_graph_batches
from superpod.trust.holdout import holding_out
from superpod.trust.sources import source_key
from superpod.workload.model import load_model


def test_mxfp4_bytes_are_elements_plus_one_scale_per_32() -> None:
    assert WEIGHT_BYTES["mxfp4"] == pytest.approx(0.53125)
    assert InferOptions(precision="mxfp4").weight_bytes < WEIGHT_BYTES["fp4"]


@pytest.mark.parametrize(("chip", "gemm", "weight_only", "dispatch"),
                         [("b200", "fp8", False, "fp8"), ("h100-sxm", "bf16", True, "bf16"),
                          ("h200", "bf16", True, "bf16")])
def test_mxfp4_runs_fp8_on_blackwell_and_weight_only_on_hopper(
        chip: str, gemm: str, weight_only: bool, dispatch: str) -> None:
    c = api.catalog().chip(chip)
    check_precision(c, "mxfp4")  # never bad input where 16-bit GEMMs exist
    assert gemm_dtype(c, "mxfp4") == gemm
    opts = InferOptions(precision="mxfp4", kv_precision="auto").for_chip(c)
    assert opts.weight_only is weight_only
    assert opts.dispatch_dtype == dispatch
    assert opts.kv_precision == "bf16"  # the openai checkpoint has no KV quantisation


def test_mxfp4_decode_streams_fewer_bytes_than_fp8_and_computes_slower_on_hopper() -> None:
    sys_ = api.system("dgx-h100", 1)
    model = load_model("llama3-8b")
    lay = ServingLayout()
    small = {p: iteration(sys_, model, lay, InferOptions(precision=p, kv_precision="bf16"),
                          phase="decode", batch=1, context=128) for p in ("fp8", "mxfp4")}
    big = {p: iteration(sys_, model, lay, InferOptions(precision=p, kv_precision="bf16"),
                        phase="prefill", batch=8, context=4096) for p in ("fp8", "mxfp4")}
    # batch 1 decode is weight-streaming bound: 4-bit weights are faster
    assert small["mxfp4"].time_s < small["fp8"].time_s  # type: ignore[union-attr]
    # a long prefill is compute bound: BF16 GEMMs (W4A16) take about twice FP8's
    ratio = big["mxfp4"].time_s / big["fp8"].time_s  # type: ignore[union-attr]
    assert 1.4 < ratio < 2.2


def test_trtllm_bench_default_graph_batches_closed_form() -> None:
    assert default_graph_batches(1536) == (1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80,
                                           88, 96, 104, 112, 120, 128, 256, 512, 1024,
                                           1536)
    assert default_graph_batches(1024) == (*default_graph_batches(1024)[:19], 256, 512, 1024)
    assert default_graph_batches(64)[-1] == 64 and max(default_graph_batches(64)) == 64
    assert default_graph_batches(100)[-2:] == (96, 100)
    assert default_graph_batches(384)[-2:] == (256, 384)
    with holding_out([source_key(GRAPH_SOURCE)]):
        assert default_graph_batches(1536) == ()


def test_offline_run_without_listed_graphs_pads_to_the_tools_own() -> None:
    from dataclasses import replace

    from superpod.infer.offline import Scheduler, offline
    from superpod.infer.serving import Workload

    s = api.system("dgx-h100", 8)
    model = load_model("llama3-70b")
    lay = ServingLayout(tp=8)
    opts = InferOptions(precision="fp8", kv_precision="fp8")
    work = Workload(input_len=1024, output_len=256)
    graphs = default_graph_batches(1536)
    tool = offline(s, model, lay, opts, work, 600, Scheduler(default_graphs=graphs))
    listed = offline(s, model, lay, replace(opts, graph_batch_sizes=graphs), work, 600)
    bare = offline(s, model, lay, opts, work, 600)
    assert tool.tokens_per_s == pytest.approx(listed.tokens_per_s, rel=1e-12)
    assert tool.tokens_per_s <= bare.tokens_per_s  # padded rows cost and generate nothing


def test_mxfp4_band_family_follows_the_format_its_gemms_run_in() -> None:
    from superpod.trust.family import chip_family

    cat = api.catalog()
    for chip in ("b200", "h200", "h100-sxm"):
        c = cat.chip(chip)
        assert chip_family(c, "mxfp4", cat) == chip_family(c, gemm_dtype(c, "mxfp4"), cat)


def test_a_model_with_one_native_checkpoint_is_served_from_it() -> None:
    from types import SimpleNamespace

    from superpod.infer.validate import _weight_format

    def case(name: str, precision: str) -> SimpleNamespace:
        return SimpleNamespace(model=SimpleNamespace(name=name),
                               serving=SimpleNamespace(precision=precision))

    notes: list[str] = []
    assert _weight_format(case("gpt-oss-120b", "fp8"), notes) == "mxfp4"
    assert notes and "MXFP4" in notes[0] and "fp8" in notes[0]
    assert _weight_format(case("gpt-oss-20b", "fp4"), []) == "mxfp4"
    assert _weight_format(case("gpt-oss-120b", "bf16"), []) == "bf16"  # a stated BF16 run
    assert _weight_format(case("DeepSeek-R1", "fp8"), []) == "fp8"
