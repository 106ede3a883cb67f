"""Offline benchmarks (finite requests at t = 0), trtllm-bench's scheduler heuristic, the
non-chunked prefill scheduler, and how validation cases pick them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.errors import Infeasible
from superpod.infer import memory as mem
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.offline import Scheduler, offline
from superpod.infer.serving import Workload, best_batch
from superpod.infer.simulate import (
    Requests,
    _capacity,
    _State,
    busiest_rank_prefill_s,
    mixed_iteration_s,
    simulate,
)
from superpod.infer.trtllm_bench import (
    PROFILE_SOURCE,
    SCHEDULER_SOURCE,
    SOURCE,
    BenchSettings,
    bench_settings,
    in_flight_cap,
    moe_rows,
    profile_bytes,
)
from superpod.infer.validate import PERFECT_BALANCE
from superpod.trust.holdout import holding_out
from superpod.trust.sources import source_key
from superpod.workload.model import load_model

L8 = load_model("llama3-8b")
L70 = load_model("llama3-70b")
FP8 = InferOptions(precision="fp8", kv_precision="fp8")


def test_bench_heuristic_hand_computed() -> None:
    """Llama-3.3-70B FP8 on 2 x 80 GB, 1000 / 1000: engine 70,553,706,496 x 1 B = 65.708
    GiB; KV 2 x 80 x 8 x 128 x 1 B = 1.5259e-4 GiB a token; (2 x 74.506 - 65.708) x 0.9 /
    (1.5259e-4 x 2000) = 245.67 requests -> 256 (rounded up to 32), tokens 2 x 245.67 ->
    2048 (the floor)."""
    bs = bench_settings(L70, 80e9, tp=2, pp=1, input_len=1000, output_len=1000,
                        precision="fp8", kv_precision="fp8")
    assert bs is not None
    assert bs.kv_requests == pytest.approx(245.6716, rel=1e-5)
    assert (bs.max_batch_size, bs.max_num_tokens) == (256, 2048)
    # 8192 / 1024: fewer requests (53.6 -> 64), and the budget must hold a whole prompt
    long = bench_settings(L70, 80e9, tp=2, pp=1, input_len=8192, output_len=1024,
                          precision="fp8", kv_precision="fp8")
    assert long is not None and long.max_batch_size == 64
    assert long.max_num_tokens == 8192 + 64
    # BF16 KV halves the requests; held out, no heuristic
    bf = bench_settings(L70, 80e9, tp=2, pp=1, input_len=1000, output_len=1000,
                        precision="fp8", kv_precision="bf16")
    assert bf is not None and bf.kv_requests == pytest.approx(bs.kv_requests / 2)
    with holding_out([source_key(SOURCE)]):
        assert bench_settings(L70, 80e9, tp=2, pp=1, input_len=1000, output_len=1000,
                              precision="fp8", kv_precision="fp8") is None
    # the model does not fit: the tool refuses
    assert bench_settings(L70, 20e9, tp=1, pp=1, input_len=1000, output_len=1000,
                          precision="bf16", kv_precision="bf16") is None


def test_untuned_quantisation_gets_build_config_defaults() -> None:
    """MXFP4 (gpt-oss) and INT4 are not in trtllm-bench's TUNED_QUANTS: BuildConfig's
    2048 / 8192, the token budget raised to prompt + batch with chunked prefill off."""
    for fmt in ("mxfp4", "int4", "int8"):
        bs = bench_settings(L70, 80e9, tp=2, pp=1, input_len=1000, output_len=1000,
                            precision=fmt, kv_precision="bf16")
        assert bs is not None and (bs.max_batch_size, bs.max_num_tokens) == (2048, 8192)
    long = bench_settings(L70, 80e9, tp=2, pp=1, input_len=32768, output_len=1024,
                          precision="mxfp4", kv_precision="bf16")
    assert long is not None and long.max_num_tokens == 32768 + 2048
    with holding_out([source_key(SCHEDULER_SOURCE)]):  # the heuristic instead
        held = bench_settings(L70, 80e9, tp=2, pp=1, input_len=1000, output_len=1000,
                              precision="mxfp4", kv_precision="bf16")
        assert held is not None and held.max_batch_size < 2048


def test_max_batch_size_caps_the_sequences_in_flight() -> None:
    """The capacity scheduler admits max_batch_size x pp a rank; attention-DP ranks each
    run their own: dp x pp x max_batch_size an instance (None while held out)."""
    bs = BenchSettings(max_batch_size=96, max_num_tokens=2048, kv_requests=500.0)
    assert in_flight_cap(bs, dp=4, pp=1) == 384
    assert in_flight_cap(bs, dp=1, pp=2) == 192
    with holding_out([source_key(SCHEDULER_SOURCE)]):
        assert in_flight_cap(bs, dp=4, pp=1) is None
    s = api.system("dgx-h100", 8)
    lay = ServingLayout(tp=8)
    work = Workload(input_len=256, output_len=64)
    free = offline(s, L8, lay, FP8, work, 600)
    capped = offline(s, L8, lay, FP8, work, 600, Scheduler(max_in_flight=64))
    assert capped.batch == 64 < free.batch
    assert capped.tokens_per_s < free.tokens_per_s


def test_profiling_forward_closed_form() -> None:
    """Qwen3-235B-A22B (h 4096, expert i 1536 gated, k 8) at DEP4 with the all-gather MoE
    and max_num_tokens 1024: dense activations 1024 x activation_bytes_per_token, plus the
    CUTLASS workspace 8 x (1024 x 4) rows x (max(4096, 1536) + max(2 x 1536, 4096)) x 2 B;
    without the all-gather the MoE takes the rank's own 1024 tokens."""
    q = load_model("qwen3-235b-a22b")
    lay = ServingLayout(dp=4, ep=4)
    gather = InferOptions(precision="fp8", moe_allgather=True)
    act = 1024 * mem.activation_bytes_per_token(q, lay)
    assert moe_rows(q, lay, gather, 1024) == 4096
    assert profile_bytes(q, lay, gather, 1024) == pytest.approx(
        act + 8 * 4096 * (4096 + 4096) * 2.0)
    assert moe_rows(q, lay, FP8, 1024) == 1024
    assert profile_bytes(q, lay, FP8, 1024) == pytest.approx(
        act + 8 * 1024 * (4096 + 4096) * 2.0)
    # a dense model holds only its activations; held out, nothing is reserved
    assert profile_bytes(L8, ServingLayout(tp=8), FP8, 2048) == pytest.approx(
        2048 * mem.activation_bytes_per_token(L8, ServingLayout(tp=8)))
    with holding_out([source_key(PROFILE_SOURCE)]):
        assert profile_bytes(q, lay, gather, 1024) == 0.0


def test_reserved_bytes_shrink_the_kv_pool() -> None:
    """The pool is 0.9 x (what is free - the reserved bytes): the KV tokens drop by
    0.9 x reserved / bytes per token a rank, times dp."""
    s = api.system("dgx-h100", 8)
    lay = ServingLayout(dp=2, tp=4)
    opts = FP8.for_chip(s.chip)
    full = _capacity(s, L70, lay, opts)
    less = _capacity(s, L70, lay, opts, reserved_bytes=4 * 2**30)
    per = mem.kv_bytes_per_token_rank(L70, lay, opts)
    assert full - less == pytest.approx(0.9 * 4 * 2**30 / per * 2)
    work = Workload(input_len=1000, output_len=1000)
    free = offline(s, L70, lay, FP8, work, 3000)
    held = offline(s, L70, lay, FP8, work, 3000, Scheduler(reserved_bytes=20 * 2**30))
    assert held.max_batch < free.max_batch
    assert held.tokens_per_s < free.tokens_per_s


@given(st.floats(60e9, 400e9), st.sampled_from([1, 2, 4, 8]), st.integers(64, 32768),
       st.integers(64, 32768))
@settings(max_examples=50, deadline=None)
def test_bench_heuristic_rounding_rules(hbm: float, tp: int, isl: int, osl: int) -> None:
    bs = bench_settings(L70, hbm, tp=tp, pp=1, input_len=isl, output_len=osl,
                        precision="fp8", kv_precision="fp8")
    if bs is None:
        return
    b = bs.max_batch_size
    assert b >= 64 and b >= min(bs.kv_requests, 4096) - 1e-9
    assert b % (32 if b <= 256 else 128 if b <= 1024 else 256) == 0
    assert bs.max_num_tokens >= max(2048, isl + b)


def test_non_chunked_prefill_takes_whole_prompts_only() -> None:
    st_ = _State(8, 3)
    st_.queue.extend([[0, 1000], [1, 1000], [2, 1000]])
    assert st_.take_prefill(2500, chunked=True) == [(0, 1000), (1, 1000), (2, 500)]
    assert st_.take_prefill(2500, chunked=False) == [(0, 1000), (1, 1000)]
    # nothing else runs: a prompt above the budget still goes (no prompt waits forever)
    assert st_.take_prefill(500, chunked=False) == [(0, 1000)]
    st_.n = 1  # a decode in flight: the over-budget prompt waits
    assert st_.take_prefill(500, chunked=False) == []


def test_token_budget_counts_the_decodes() -> None:
    """With a budget that holds one prompt beside the decodes, prompts join one a step:
    64 requests of 1000 tokens need at least 64 steps before the last first token."""
    s = api.system("dgx-h100", 8)
    n = 64
    reqs = Requests(np.zeros(n), np.full(n, 1000), np.full(n, 16))
    tight = simulate(s, L8, ServingLayout(tp=8), FP8, reqs, token_budget=1000 + n,
                     chunked_prefill=False)
    loose = simulate(s, L8, ServingLayout(tp=8), FP8, reqs)
    assert tight.finished == loose.finished == n
    assert tight.steps >= n and tight.steps > loose.steps
    assert tight.ttft_s[99] > loose.ttft_s[99]


def test_offline_ramp_and_drain_cost_throughput() -> None:
    """A finite offline run is slower than the steady state at the same layout (its ramp
    is prefill-bound and its drain runs a small batch), and gets closer with more
    requests; all requests' output tokens are counted over the whole run."""
    s = api.system("dgx-h100", 8)
    lay = ServingLayout(tp=8)
    work = Workload(input_len=1024, output_len=256)
    steady = best_batch(s, L8, lay, FP8, phase="e2e", work=work)
    assert not isinstance(steady, Infeasible)
    few = offline(s, L8, lay, FP8, work, 64)
    many = offline(s, L8, lay, FP8, work, 4000)
    assert few.tokens_per_s < many.tokens_per_s < steady.tokens_per_s * 1.05
    assert few.extra["offline"]["requests"] == 64 and few.batch == 64
    dur = many.extra["offline"]["duration_s"]
    assert many.tokens_per_s == pytest.approx(4000 * 256 / dur)
    assert many.ttft_s is not None and many.tpot_s is not None
    assert many.ttft_s > few.ttft_s  # the queue waits behind earlier waves


def test_busiest_rank_prefill_hand_computed() -> None:
    """Chunk costs are per-token shares of dp ranks side by side; one rank alone takes dp x.
    [1, 1, 1] on 2 ranks: loads [2, 1] -> 2 x 2 = 4 (pooled sum 3); [3, 2, 2]: 3 | 2 + 2 ->
    2 x 4 = 8; one equal chunk a rank, or dp = 1, is the plain sum."""
    assert busiest_rank_prefill_s([1.0, 1.0, 1.0], 2) == pytest.approx(4.0)
    assert busiest_rank_prefill_s([3.0, 2.0, 2.0], 2) == pytest.approx(8.0)
    assert busiest_rank_prefill_s([1.0, 1.0], 2) == pytest.approx(2.0)
    assert busiest_rank_prefill_s([1.0], 8) == pytest.approx(8.0)
    assert busiest_rank_prefill_s([1.0, 2.0], 1) == pytest.approx(3.0)
    assert busiest_rank_prefill_s([], 4) == 0.0


def test_mixed_iteration_reads_weights_once() -> None:
    """Decode 40 ms of which 16 ms weight excess, prefill 50 ms: 40 + 50 - 16 = 74 ms; a
    prefill shorter than the excess hides only itself (40 + 10 - 10 = 40); no excess, the
    plain sum."""
    assert mixed_iteration_s(0.040, 0.016, 0.050) == pytest.approx(0.074)
    assert mixed_iteration_s(0.040, 0.016, 0.010) == pytest.approx(0.040)
    assert mixed_iteration_s(0.040, 0.0, 0.050) == pytest.approx(0.090)
    assert mixed_iteration_s(0.040, 0.016, 0.0) == pytest.approx(0.040)


def test_whole_prompts_fit_one_ranks_budget() -> None:
    """Whole prompts under attention DP: each rank's own budget. 4 prompts of 1000, 2
    ranks, 3000 tokens left in all (1500 a rank): one prompt a rank, not three in the
    pool; 4000 (2000 a rank): two a rank."""
    st_ = _State(8, 8)
    for r in range(4):
        st_.queue.append([r, 1000])
    assert st_.take_prefill(3000, chunked=False, ranks=2) == [(0, 1000), (1, 1000)]
    assert st_.take_prefill(3000, chunked=False) == [(0, 1000), (1, 1000), (2, 1000)]
    assert len(st_.take_prefill(4000, chunked=False, ranks=2)) == 4
    # nothing else running: one prompt anyway, even over a rank's budget
    assert st_.take_prefill(1000, chunked=False, ranks=4) == [(0, 1000)]


def test_graph_limit_drops_larger_graphs() -> None:
    s = api.system("dgx-h100", 8)
    lay = ServingLayout(tp=8)
    opts = InferOptions(precision="fp8", kv_precision="fp8",
                        graph_batch_sizes=(64, 128, 1024))
    work = Workload(input_len=256, output_len=64)
    capped = offline(s, L8, lay, opts, work, 300, Scheduler(graph_limit=128))
    assert capped.options.graph_batch_sizes == (64, 128)
    assert math.isfinite(capped.tokens_per_s)


def test_perfect_balance_is_read_from_the_notes() -> None:
    assert PERFECT_BALANCE.search("Simulated perfect EPLB (random expert choice)")
    assert PERFECT_BALANCE.search("headline assuming perfect expert load balance")
    assert not PERFECT_BALANCE.search("Default EPLB; DeepEP normal dispatch")


_POOL_CASE = {
    "id": "pools", "kind": "infer", "source": "https://example.org/pools",
    "confidence": "low", "system": {"preset": "dgx-h100", "chips": 16},
    "measured": {"metric": "tokens_per_s_per_chip", "value": 1000.0},
    "model": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256},
    "serving": {"phase": "e2e", "batch": 256, "input_len": 2048, "output_len": 256,
                "prefill": {"chips": 4, "tp": 2}, "decode": {"chips": 8, "tp": 8},
                "precision": "fp8"}}


def test_pool_maps_are_strict() -> None:
    from superpod.errors import SpecError
    from superpod.validate.cases import parse_case

    case = parse_case(_POOL_CASE, "f.yaml", 0)
    assert case.serving is not None and case.serving.prefill is not None
    bad_maps: list[dict[str, object]] = [
        {"prefill": {"chips": 4}},  # decode missing
        {"prefill": {"chips": 4}, "decode": {"chips": 8}, "tp": 2},  # top-level degree
        {"prefill": {"chips": 4}, "decode": {"chips": 8}, "decode_chips": 8},
        {"prefill": {"chips": 4, "cp": 2}, "decode": {"chips": 8}},  # unknown key
        {"prefill": {"chips": 4}, "decode": {"chips": 8}, "instance_chips": 16},
        {"prefill": {"tp": 2}, "decode": {"chips": 8}},  # chips missing
    ]
    for extra in bad_maps:
        serving = {k: v for k, v in _POOL_CASE["serving"].items()  # type: ignore[attr-defined]
                   if k not in ("prefill", "decode")} | extra
        with pytest.raises(SpecError):
            parse_case(_POOL_CASE | {"serving": serving}, "f.yaml", 0)


def test_pool_case_evaluates_as_disaggregated_pools() -> None:
    from superpod.hardware.catalog import load_catalog
    from superpod.infer.validate import evaluate_infer_case
    from superpod.validate.cases import parse_case

    value, note = evaluate_infer_case(parse_case(_POOL_CASE, "f.yaml", 0), load_catalog())
    assert value > 0
    assert "2 prefill instance(s) tp=2" in note and "1 decode instance(s) tp=8" in note
    odd = _POOL_CASE | {"serving": _POOL_CASE["serving"]  # type: ignore[operator]
                        | {"prefill": {"chips": 3, "tp": 2}}}
    from superpod.errors import SpecError

    with pytest.raises(SpecError):  # 3 chips are not whole tp=2 instances
        evaluate_infer_case(parse_case(odd, "f.yaml", 0), load_catalog())


def test_cached_prefix_prefill_closed_form() -> None:
    """A prompt of 4,096 with 2,048 cached: the GEMMs see 2,048 tokens, attention adds the
    full 2,048 x 2,048 block to the causal 2,048 one; tokens/s counts computed tokens."""
    from superpod.infer.iteration import Iteration, iteration
    from superpod.infer.serving import prefill
    from superpod.workload import ops

    s = api.system("dgx-h100", 8)
    lay = ServingLayout(tp=8)
    full = iteration(s, L70, lay, FP8, phase="prefill", batch=1, context=2048)
    hit = iteration(s, L70, lay, FP8, phase="prefill", batch=1, context=2048, prefix=2048)
    assert isinstance(full, Iteration) and isinstance(hit, Iteration)
    extra = (ops.attention_core_flops(L70, 2048, 2048, causal=False, tp=8)
             * L70.num_hidden_layers)
    assert hit.time_s > full.time_s
    causal = ops.attention_core_flops(L70, 2048, 2048, causal=True, tp=8) \
        * L70.num_hidden_layers
    seconds_per_flop = full.breakdown_s["attention_compute"] / causal
    assert hit.breakdown_s["attention_compute"] - full.breakdown_s["attention_compute"] \
        == pytest.approx(extra * seconds_per_flop, rel=1e-9)
    assert hit.breakdown_s["gemm_compute"] == pytest.approx(full.breakdown_s["gemm_compute"])
    r = prefill(s, L70, lay, FP8, 1, Workload(input_len=4096, cached_len=2048))
    assert not isinstance(r, Infeasible)
    assert r.tokens_per_s == pytest.approx(2048 / hit.time_s)
    from superpod.errors import SpecError

    with pytest.raises(SpecError):
        Workload(input_len=100, cached_len=100)
    with pytest.raises(SpecError):
        iteration(s, L70, lay, FP8, phase="decode", batch=1, context=10, prefix=5)


def test_deepseek_production_request_from_day6_totals() -> None:
    from superpod.infer.runtime import DEEPSEEK, DEEPSEEK_DAY6, deepseek_production_request

    inp, out, cached = deepseek_production_request()
    assert (inp, out, cached) == (4383, 1211, 2466)
    assert inp + out / 2 == pytest.approx(4989, abs=1)  # KV length per output token
    assert inp / out == pytest.approx(608 / 168, rel=1e-3)
    assert DEEPSEEK.request_shape() == (inp, out, cached)
    with holding_out([source_key(DEEPSEEK_DAY6)]):  # an input of the run, not a fit
        assert DEEPSEEK.request_shape() == (inp, out, cached)
