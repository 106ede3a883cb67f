"""Trust: leave-one-source-out validation, error bands, evidence and extrapolation."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app
from superpod.compute.calibration import gemm_entry, load_calibration
from superpod.network.calibration import load_collective_calibration
from superpod.train.plan import TrainPlan
from superpod.train.step import TrainResult, evaluate_train
from superpod.trust.annotate import annotate_train
from superpod.trust.bands import (
    BANDS_FILE,
    BandClass,
    ClassStats,
    band,
    class_stats,
    conformal_probs,
    effective_count,
    source_weighted_quantiles,
    source_weights,
)
from superpod.trust.holdout import holding_out
from superpod.trust.sources import source_key
from superpod.validate.runner import validate_file
from superpod.workload.model import load_model

TRAIN_LOSO_MEDIAN_ABS_ERROR_PCT = 7.5
INFER_LOSO_MEDIAN_ABS_ERROR_PCT = 5.0  # 8.10 after the EP de-duplication fix (11.57); 4.61 with
# one weight stream a mixed iteration; 4.53 with the EP latency left unscaled by imbalance
COLLECTIVE_LOSO_MEDIAN_ABS_ERROR_PCT = 11.0
#: no collective source's LOSO median above this (issue target 25 %)
COLLECTIVE_SOURCE_LOSO_MAX_PCT = 20.0
#: infer sources (issue 13 target: no infer source above 25 %), each under
#: leave-one-source-out: the serving-prefill ones (the lmsys large-scale-EP blog,
#: CloudMatrix-Infer), DeepSeek's production statistics and TensorRT-LLM's perf overview
INFER_PREFILL_SOURCE_LOSO_MAX_PCT = {
    # 2.91 once prefill EP sends every token to the network model (was 17.97)
    "github.com/lm-sys/lm-sys.github.io/blog/2025-05-05-large-scale-ep.md": 5.0,
    # 4.64 once expert imbalance scales the exchanged bytes, not the kernel latency (11.52)
    "arxiv.org/abs/2506.12708": 6.0,
    # DeepSeek's production day averages (issue 13: 44.9 % before the service load factor)
    # 8.58 after the EP de-duplication fix (was 11.57); 7.67 with the EP latency unscaled
    "github.com/deepseek-ai/open-infra-index/readme.md": 8.5,
    # 9.97 after the NVFP4 DeepSeek checkpoints' BF16 MLA projections (was 10.32)
    # 8.68 once a mixed iteration streams the weights once
    "github.com/nvidia/tensorrt-llm/docs/source/developer-guide/perf-overview.md": 9.5}
H200_DOC = ("https://github.com/Azure/AI-benchmarking-guide/blob/7f20e5f/Azure_Results/"
            "ND_H200_v5_results.md")


@pytest.fixture(scope="module")
def cross(public_cases) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return validate_file(str(public_cases), cross_validate=True)


def test_holding_out_a_document_removes_its_calibration() -> None:
    key = source_key(H200_DOC)
    assert gemm_entry(load_calibration(), "h200", "fp8") is not None
    def h200_fits() -> list[str]:
        return [f.fabric for f in load_collective_calibration().fits
                if source_key(f.source) == key]
    assert h200_fits() == ["nvlink4"]
    with holding_out([key]):
        assert gemm_entry(load_calibration(), "h200", "fp8") is None
        assert h200_fits() == []
        assert gemm_entry(load_calibration(), "h100-sxm", "fp8") is not None  # other doc
    assert gemm_entry(load_calibration(), "h200", "fp8") is not None


def test_cross_validation_reports_both_errors_per_case(cross) -> None:  # type: ignore[no-untyped-def]
    ok = [c for c in cross["cases"] if c["status"] == "ok"]
    assert ok and all("error_pct" in c and "loso_error_pct" in c for c in ok)
    for c in ok:
        assert math.isclose(c["loso_error_pct"], 100 * (c["loso_predicted"] - c["measured"])
                            / c["measured"], abs_tol=0.02)
    # the H200 GEMM cases lose their own fit under LOSO: the prediction changes
    kernels = [c for c in ok if c["kind"] == "kernel"]
    assert kernels and all(c["loso_predicted"] != c["predicted"] for c in kernels)
    by_kind = cross["cross_validation"]["by_kind"]
    for kind, s in by_kind.items():
        assert s["loso_median_abs_error_pct"] is not None, kind
    # training under leave-one-source-out (issue target 11 %; only ever tightened)
    assert by_kind["train"]["loso_median_abs_error_pct"] <= TRAIN_LOSO_MEDIAN_ABS_ERROR_PCT
    assert by_kind["infer"]["loso_median_abs_error_pct"] <= INFER_LOSO_MEDIAN_ABS_ERROR_PCT
    assert (by_kind["collective"]["loso_median_abs_error_pct"]
            <= COLLECTIVE_LOSO_MEDIAN_ABS_ERROR_PCT)
    sources = cross["cross_validation"]["by_source"]
    for key, src in sources.items():
        if src["kinds"] == ["collective"]:
            assert src["loso_median_abs_error_pct"] <= COLLECTIVE_SOURCE_LOSO_MAX_PCT, key
    for key, limit in INFER_PREFILL_SOURCE_LOSO_MAX_PCT.items():
        assert sources[key]["loso_median_abs_error_pct"] <= limit, key
    assert sum(s["cases"] for s in sources.values()) == len(ok)
    assert len(cross["cross_validation"]["worst_sources"]) == min(10, len(sources))


def test_loso_never_learns_from_the_held_out_document(cross) -> None:  # type: ignore[no-untyped-def]
    """A source whose cases use no calibration from it predicts the same in and out."""
    ok = [c for c in cross["cases"] if c["status"] == "ok"]
    by_src: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for c in ok:
        by_src.setdefault(c["source_key"], []).append(c)
    cal = load_calibration()
    used = {source_key(e.source) for e in (*cal.gemm, *cal.memcpy, *cal.attention)}
    used |= {source_key(f.source) for f in load_collective_calibration().fits}
    used |= {source_key(e.source) for e in load_collective_calibration().expert_parallel}
    for key, cs in by_src.items():
        if key in used:
            assert any(c["loso_predicted"] != c["predicted"] for c in cs), key


def test_bands_cover_the_held_out_measurements(cross) -> None:  # type: ignore[no-untyped-def]
    """80 % bands built without each case's own source, around its held-out prediction:
    measured coverage per kind. Floors only ever rise toward the 70-90 % target."""
    floors = {"collective": 0.70, "train": 0.75, "infer": 0.75}  # measured 0.78 / 0.84 / 0.81
    by_kind = cross["cross_validation"]["by_kind"]
    for kind, floor in floors.items():
        cov = by_kind[kind]["band_coverage"]
        assert cov is not None and floor <= cov <= 0.90, (kind, cov)


def test_shipped_bands_rederive_from_the_public_cases(public_cases, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "bands.yaml"
    validate_file(str(public_cases), write_bands=str(out))
    assert out.read_text() == BANDS_FILE.read_text(), (
        "calibration/bands.yaml is stale: superpod validate --cross-validate "
        "--write-bands src/superpod/calibration/bands.yaml")


def test_weighted_quantiles_weigh_a_source_by_the_root_of_its_cases() -> None:
    # four residuals of source a at 1..4 weigh 1/2 each, one of b at 10 weighs 1 (total 3):
    # CDF midpoints 1/12, 3/12, 5/12, 7/12 for a and 10/12 for b, so the median
    # interpolates halfway between 3 (5/12) and 4 (7/12); unweighted it would be 3
    (med,) = source_weighted_quantiles([1, 2, 3, 4, 10], ["a"] * 4 + ["b"], (0.5,))
    assert med == pytest.approx(3.5)
    lo, hi = source_weighted_quantiles([3.0, 1.0, 2.0], ["x", "y", "z"], (0.0, 1.0))
    assert (lo, hi) == (1.0, 3.0)


def test_effective_count_lies_between_sources_and_cases() -> None:
    w = source_weights(["a"] * 4 + ["b"])
    assert w == [0.5, 0.5, 0.5, 0.5, 1.0]
    assert effective_count(w) == pytest.approx(9 / 2)  # (4 * 1/2 + 1)^2 / (4 / 4 + 1)
    assert effective_count(source_weights(list("xyz"))) == pytest.approx(3)
    assert effective_count(source_weights(["a"] * 9)) == pytest.approx(9)


def test_conformal_probabilities_widen_with_few_sources() -> None:
    assert conformal_probs(1) == (0.0, 1.0)
    assert conformal_probs(4) == (0.0, 1.0)  # 0.9 * 5 / 4 > 1: the extremes
    lo, hi = conformal_probs(90)
    assert hi == pytest.approx(0.91) and lo == pytest.approx(0.09)


def test_band_falls_back_to_a_parent_class_and_says_so() -> None:
    rows = [(BandClass("train", "throughput", "calibrated", "small"), 1.0 + i / 100, f"s{i}")
            for i in range(10)]
    rows += [(BandClass("train", "throughput", "other", "large"), 0.5, "s0")]
    stats = class_stats(rows)
    b = band(stats, BandClass("train", "throughput", "other", "large"),
             "tokens_per_s_per_chip", 100.0)
    assert b is not None and b.class_name == "train/throughput"
    assert b.to_dict()["fallback_from"] == "train/throughput/other/large"
    own = band(stats, BandClass("train", "throughput", "calibrated", "small"),
               "tokens_per_s_per_chip", 100.0)
    assert own is not None and own.class_name == "train/throughput/calibrated/small"
    assert band(stats, BandClass("infer", "ttft", "other", "small"), "ttft_ms", 1.0) is None


@given(st.floats(0.2, 0.99), st.floats(1.0, 5.0), st.floats(1e-3, 1e6))
@settings(max_examples=60)
def test_a_time_band_is_the_inverse_of_the_throughput_band(q10: float, q90: float,
                                                           value: float) -> None:
    stats = {"train": ClassStats(cases=20, sources=5, q10=q10, q90=q90)}
    cls = BandClass("train", "throughput", "calibrated", "small")
    thr = band(stats, cls, "tokens_per_s_per_chip", value)
    tim = band(stats, cls, "step_time_s", 1.0 / value)
    assert thr is not None and tim is not None
    assert thr.low <= value <= thr.high
    assert tim.low == pytest.approx(1.0 / thr.high) and tim.high == pytest.approx(1 / thr.low)


def _train_row(system: str, chips: int, model: str, precision: str, **kw: int) -> dict:  # type: ignore[type-arg]
    s, m = api.system(system, chips), load_model(model)
    plan = TrainPlan(global_batch=kw.pop("gb"), seq_len=4096, precision=precision, **kw)
    res = evaluate_train(s, m, plan, ranks_per_chip=2 if "910c" in s.chip.id else 1)
    assert isinstance(res, TrainResult), res
    return annotate_train(res.to_dict(), s, api.catalog(), m, precision)


def test_train_rows_carry_band_evidence_and_extrapolation() -> None:
    h100 = _train_row("dgx-h100", 64, "llama3-70b", "fp8", tp=8, pp=2, dp=4, gb=64,
                      zero=1)
    assert h100["band"]["metric"] == "tokens_per_s_per_chip"
    assert set(h100["band"]) >= {"low", "high", "level", "cases", "class"}
    assert h100["evidence"]["gemm"]["basis"] == "calibrated"
    assert h100["extrapolates"] == []
    cm = _train_row("cloudmatrix384", 384, "llama3-70b", "bf16", tp=8, pp=4, dp=24, gb=96,
                    zero=1)
    assert cm["evidence"]["gemm"]["basis"] == "default"
    assert any("uncalibrated" in w for w in cm["extrapolates"])
    big = _train_row("atlas-950-superpod", 8192, "llama3-70b", "bf16", tp=8, pp=4, dp=256,
                     gb=1024, zero=1)
    assert any("roadmap" in w for w in big["extrapolates"])


def test_a_precision_the_chip_lacks_is_bad_input_or_infeasible() -> None:
    r = CliRunner().invoke(app, ["train", "--system", "cloudmatrix384", "--model",
                                 "llama3-70b", "--global-batch", "384", "--seq-len", "4096",
                                 "--tp", "8", "--precision", "fp8"])
    assert r.exit_code == 2 and "fp8" in r.output
    p = CliRunner().invoke(app, ["plan", "train", "--system", "cloudmatrix384", "--model",
                                 "llama3-70b", "--global-batch", "384", "--seq-len", "4096",
                                 "--precision", "fp8", "--json"])
    doc = json.loads(p.stdout)
    assert doc["candidates"] == [] and doc["infeasible"].get("precision_unsupported", 0) > 0


@given(st.sampled_from(["none", "selective", "op", "full"]), st.sampled_from([1, 2, 4]))
@settings(max_examples=12, deadline=None)
def test_hfu_is_never_below_mfu(recompute: str, tp: int) -> None:
    s, m = api.system("dgx-h100", 64), load_model("llama3-70b")
    res = evaluate_train(s, m, TrainPlan(tp=tp, pp=4, dp=16 // tp, global_batch=64,
                                         seq_len=8192, recompute=recompute, zero=1),
                         check_memory=False)
    assert isinstance(res, TrainResult)
    assert res.hfu >= res.mfu * (1 - 1e-12)
    if recompute == "none":
        assert res.hfu == pytest.approx(res.mfu)


def test_cli_json_carries_bands_on_every_prediction() -> None:
    runner = CliRunner()
    t = json.loads(runner.invoke(app, [
        "train", "--system", "dgx-h100", "--chips", "64", "--model", "llama3-70b",
        "--global-batch", "64", "--seq-len", "4096", "--tp", "8", "--pp", "2", "--json"]).stdout)
    assert "band" in t and "extrapolates" in t
    c = json.loads(runner.invoke(app, ["collective", "--system", "dgx-h100", "--op",
                                       "all_reduce", "--bytes", "256MiB", "--json"]).stdout)
    assert c["band"]["metric"] == "busbw_bytes_per_s" and "time_s" in c["bands"]
    i = json.loads(runner.invoke(app, [
        "infer", "--system", "dgx-h100", "--model", "llama3-70b", "--phase", "decode",
        "--tp", "8", "--precision", "fp8", "--input-len", "1024", "--output-len", "256",
        "--batch", "32", "--json"]).stdout)
    assert i["band"]["metric"] == "tokens_per_s_per_chip"
    pl = json.loads(runner.invoke(app, [
        "plan", "train", "--system", "dgx-h100", "--chips", "16", "--model", "llama3-8b",
        "--global-batch", "32", "--seq-len", "4096", "--top", "2", "--json"]).stdout)
    assert pl["candidates"] and all("band" in c for c in pl["candidates"])


def test_a_fabric_is_calibrated_only_for_traffic_it_has_fits_for() -> None:
    from superpod.trust.family import fabric_family

    cat = api.catalog()
    cm, nvl = api.system("cloudmatrix384"), api.system("gb200-nvl72")
    # UB has fitted EP libraries (DeepEP-Ascend) but no fitted collective protocols
    assert fabric_family(cm, cat, "all_to_all") == "other"  # no Huawei kernel fits either
    assert fabric_family(cm, cat, "ep_dispatch") == "calibrated"
    assert fabric_family(nvl, cat, "all_reduce") == "calibrated"
    ascend = source_key("https://github.com/sgl-project/sgl-kernel-npu/blob/x/README.md")
    paper = source_key("https://arxiv.org/abs/2506.12708")  # CloudMatrix-Infer's own kernels
    for one in (ascend, paper):  # two independent UB EP documents: either one calibrates UB
        with holding_out([one]):
            assert fabric_family(cm, cat, "ep_dispatch") == "calibrated"
    with holding_out([ascend, paper]):  # both held out: uncalibrated again
        assert fabric_family(cm, cat, "ep_dispatch") == "other"


def test_new_source_interval_is_the_random_effects_prediction_interval() -> None:
    """Hand-checked: two sources at log residuals 0 and 0.2 with no scatter inside them.
    Biases' median 0.1, MAD 0.1 -> s_b = 0.14826; t(1 dof, 0.9) = 3.0777;
    half width 3.0777 sqrt(0.14826^2 (1 + 1/2)) = 0.55887 about the mean 0.1."""
    import math

    from superpod.trust.bands import class_stats, new_source_interval

    lo, hi = new_source_interval([1.0, 1.0, math.exp(0.2), math.exp(0.2)],
                                 ["a", "a", "b", "b"]) or (0.0, 0.0)
    assert math.isclose(math.log(lo), 0.1 - 0.55887, abs_tol=2e-4)
    assert math.isclose(math.log(hi), 0.1 + 0.55887, abs_tol=2e-4)
    # one source says nothing about another's bias: no interval
    assert new_source_interval([0.9, 1.1], ["a", "a"]) is None
    # a common factor on every residual moves the interval by that factor
    lo2, hi2 = new_source_interval([1.3, 1.3, 1.3 * math.exp(0.2), 1.3 * math.exp(0.2)],
                                   ["a", "a", "b", "b"]) or (0.0, 0.0)
    assert math.isclose(lo2, 1.3 * lo, rel_tol=1e-9) and math.isclose(hi2, 1.3 * hi)
    # the class band is never narrower than either the empirical or the new-source one
    cls = BandClass("infer", "throughput", "calibrated", "small")
    rows = [(cls, q, s) for q, s in zip([0.95, 1.0, 1.05, 1.2, 1.25, 0.8, 0.85, 0.9, 1.1],
                                        "aaabbbccc", strict=True)]
    st = class_stats(rows)[cls.chain()[0]]
    between = new_source_interval([r[1] for r in rows], [r[2] for r in rows])
    assert between is not None
    assert st.q10 <= between[0] and st.q90 >= between[1]
