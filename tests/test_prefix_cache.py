"""Prefix caching, KV spill, weight offload and model caching: hand-checked closed forms."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.errors import SpecError
from superpod.hardware.memory import Tier
from superpod.infer import prefix_cache as pc


def tier(bw: float = 80e9, lat: float = 2e-6, name: str = "pool", share: float = 250e9,
         cap: float = 96e12) -> Tier:
    return Tier(name=name, what="test", capacity_bytes=cap, share_bytes=share,  # type: ignore[arg-type]
                bandwidth_bytes_per_s=bw, peak_bandwidth_bytes_per_s=bw, latency_s=lat)


def test_prefill_scales_by_one_minus_h_plus_the_transfer() -> None:
    # 1 s uncached prefill, no attention split; h = 0.5 of a 4,096-token prompt; 70 kB of KV
    # a token on the rank; 2 sequences on the chip; 80 GB/s, 2 us
    e = pc.prefix_cached_prefill(prefill_s=1.0, attention_s=0.0, hit_ratio=0.5,
                                 input_len=4096, kv_bytes_per_token_rank=70e3,
                                 sequences_per_chip=2, tier=tier())
    nbytes = 0.5 * 4096 * 70e3 * 2  # 286.72 MB
    assert e.cached_bytes_per_chip == pytest.approx(nbytes)
    assert e.transfer_s == pytest.approx(2e-6 + nbytes / 80e9)  # 3.586 ms
    assert e.compute_s == pytest.approx(0.5)
    assert e.ttft_s == pytest.approx(0.5 + 2e-6 + nbytes / 80e9)
    assert e.speedup == pytest.approx(1.0 / e.ttft_s)


def test_attention_part_scales_by_one_minus_h_squared() -> None:
    e = pc.prefix_cached_prefill(prefill_s=1.0, attention_s=0.4, hit_ratio=0.5,
                                 input_len=1000, kv_bytes_per_token_rank=0.0,
                                 sequences_per_chip=1, tier=tier())
    assert e.compute_s == pytest.approx(0.5 * 0.6 + 0.75 * 0.4)  # 0.6 s
    assert e.transfer_s == 0.0


def test_from_hbm_the_transfer_is_free_and_h0_changes_nothing() -> None:
    hbm = tier(name="hbm", bw=3.35e12, lat=0.0)
    e = pc.prefix_cached_prefill(prefill_s=2.0, attention_s=0.5, hit_ratio=0.9,
                                 input_len=8192, kv_bytes_per_token_rank=1e5,
                                 sequences_per_chip=4, tier=hbm)
    assert e.transfer_s == 0.0
    z = pc.prefix_cached_prefill(prefill_s=2.0, attention_s=0.5, hit_ratio=0.0,
                                 input_len=8192, kv_bytes_per_token_rank=1e5,
                                 sequences_per_chip=4, tier=tier())
    assert z.ttft_s == 2.0 and z.transfer_s == 0.0


def test_overlapped_is_max_plus_pipeline_fill() -> None:
    e = pc.prefix_cached_prefill(prefill_s=1.0, attention_s=0.0, hit_ratio=0.8,
                                 input_len=10_000, kv_bytes_per_token_rank=1e6,
                                 sequences_per_chip=1, tier=tier(bw=10e9, lat=0.0),
                                 layers=61, overlap=True)
    x = 0.8 * 10_000 * 1e6 / 10e9  # 0.8 s
    c = 0.2
    assert e.ttft_s == pytest.approx(max(c, x) + min(c, x) / 61)


@given(h=st.floats(0, 0.999), t=st.floats(1e-4, 10), a=st.floats(0, 1),
       kv=st.floats(0, 2e6), seqs=st.integers(1, 64), bw=st.floats(1e9, 1e13),
       overlap=st.booleans(), layers=st.integers(1, 128))
@settings(max_examples=150, deadline=None)
def test_ttft_never_below_the_transfer_and_never_above_serial(  # type: ignore[no-untyped-def]
        h, t, a, kv, seqs, bw, overlap, layers):
    e = pc.prefix_cached_prefill(prefill_s=t, attention_s=a * t, hit_ratio=h, input_len=4096,
                                 kv_bytes_per_token_rank=kv, sequences_per_chip=seqs,
                                 tier=tier(bw=bw), layers=layers, overlap=overlap)
    assert e.ttft_s >= e.transfer_s * (1 - 1e-12)
    assert e.ttft_s >= e.compute_s * (1 - 1e-12)
    assert e.ttft_s <= (e.compute_s + e.transfer_s) * (1 + 1e-12)
    assert e.compute_s <= t * (1 + 1e-12)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, math.nan, math.inf, True, "0.5"])
def test_hit_ratio_out_of_range_is_bad_input(bad: object) -> None:
    with pytest.raises(SpecError, match="hit ratio"):
        pc.check_hit_ratio(bad)  # type: ignore[arg-type]


def test_spill_adds_the_tier_share_and_its_read_per_step() -> None:
    t = tier(bw=64e9, lat=2e-6, name="host", share=250e9)
    alone, both = pc.spill_batch(hbm_kv_bytes_per_chip=40e9, kv_bytes_per_sequence_chip=4e9,
                                 tier=t)
    assert (alone, both) == (10, 72)  # 40 / 4 and (40 + 250) / 4
    # spilled 8 GB a step over 64 GB/s: 125 ms + 2 us on top of a 30 ms step, or hidden
    assert pc.streamed_step_s(0.030, 8e9, t) == pytest.approx(0.030 + 2e-6 + 0.125)
    assert pc.streamed_step_s(0.030, 8e9, t, overlap=True) == pytest.approx(2e-6 + 0.125)
    assert pc.streamed_step_s(0.300, 8e9, t, overlap=True) == 0.300


def test_model_load_from_the_pool() -> None:
    # DeepSeek-R1 INT8 over 32 NPUs ~ 21 GB a chip, 80 GB/s from the CloudMatrix pool
    t = api.system("cloudmatrix384").memory.tier("pool")
    assert pc.model_load_s(21e9, t) == pytest.approx(t.latency_s + 21e9 / 80e9)


def test_prefixes_held_in_the_cloudmatrix_pool() -> None:
    t = api.system("cloudmatrix384").memory.tier("pool")
    # 4,096-token prefix of DeepSeek-V3 (35,136 elements x 1 B INT8 KV a token): 144 MB
    assert pc.prefixes_held(t, 4096, 35_136) == pytest.approx(96e12 / (4096 * 35_136))


def test_hit_ratio_from_a_trace_with_shared_prefixes() -> None:
    ids = ["sys", "sys", "doc", "sys", "doc"]
    plens = [1000, 1000, 3000, 1000, 3000]
    ilens = [1500, 1200, 4000, 1100, 3500]
    # hits: 0, 1000, 0, 1000, 3000 over 11,300 prompt tokens
    assert pc.hit_ratio_from_prefixes(ids, plens, ilens) == pytest.approx(5000 / 11300)
    # room for 3,000 tokens: "doc" evicts "sys"; then "sys" misses and evicts "doc"
    assert pc.hit_ratio_from_prefixes(ids, plens, ilens, capacity_tokens=3000) == \
        pytest.approx(1000 / 11300)


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers(1, 100), st.integers(0, 100)),
                min_size=1, max_size=60), st.floats(0, 1000))
@settings(max_examples=80, deadline=None)
def test_trace_hit_ratio_bounds(rows, cap):  # type: ignore[no-untyped-def]
    ids = [r[0] for r in rows]
    ilens = [r[1] for r in rows]
    first = {r[0]: r[2] for r in reversed(rows)}  # one prefix length per prefix id
    ilens = [max(i, first[r[0]]) for i, r in zip(ilens, rows, strict=True)]
    plens = [first[r[0]] for r in rows]
    h = pc.hit_ratio_from_prefixes(ids, plens, ilens, capacity_tokens=cap)
    unbounded = pc.hit_ratio_from_prefixes(ids, plens, ilens)
    assert 0.0 <= h <= unbounded < 1.0


def test_cloudmatrix_context_caching_reproduced_in_sample_and_loso() -> None:
    from superpod.infer import cache_calibration as cc
    from superpod.trust.holdout import holding_out
    from superpod.trust.sources import source_key

    f, entry = cc.scaling_fraction("ascend-910c")
    assert entry is not None
    # f = (0.5 (1 - 1/1.42) + 0.9 (1 - 1/2.28)) / (0.25 + 0.81) = 0.616
    assert f == pytest.approx((0.5 * (1 - 1 / 1.42) + 0.9 * (1 - 1 / 2.28)) / 1.06)
    for h, measured in entry.points:
        e = pc.prefix_cached_prefill(prefill_s=1.0, attention_s=0.0, hit_ratio=h,
                                     input_len=4096, kv_bytes_per_token_rank=0.0,
                                     sequences_per_chip=1, tier=tier(), scaling_fraction=f)
        assert e.speedup == pytest.approx(measured, rel=0.03)  # 1.445 vs 1.42, 2.245 vs 2.28
    # 59 % lower TTFT at 90 % reuse (the paper): the fit gives 55 %
    assert 1 - 1 / (1 / (1 - f * 0.9)) == pytest.approx(0.59, abs=0.05)
    with holding_out({source_key(entry.source)}):
        assert cc.scaling_fraction("ascend-910c") == (1.0, None)
    assert cc.scaling_fraction("h100-sxm") == (1.0, None)


def test_fit_fraction_recovers_a_known_fraction() -> None:
    from superpod.infer.cache_calibration import fit_fraction

    pts = tuple((h, 1 / (1 - 0.7 * h)) for h in (0.2, 0.5, 0.8))
    assert fit_fraction(pts) == pytest.approx(0.7)
