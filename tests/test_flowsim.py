"""Fluid max-min flow simulator: hand-checked cases and properties of random instances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod.network.flowsim import FlowSet, max_min_rates, simulate


def rates(cap: list[float], fs: FlowSet, active: np.ndarray | None = None) -> np.ndarray:
    act = np.ones(fs.n_sub, dtype=bool) if active is None else active
    return max_min_rates(np.asarray(cap, dtype=float), fs, act)


def single_paths(bytes_: list[float], paths: list[list[int]]) -> FlowSet:
    return FlowSet.from_paths(bytes_, [[(p, 1.0)] for p in paths])


# ---------------------------------------------------------------- hand-checked cases


def test_one_flow_one_link() -> None:
    fs = single_paths([1e9], [[0]])
    r = simulate(np.array([50e9]), fs)
    assert r.finish_s[0] == pytest.approx(1e9 / 50e9, rel=1e-15)
    assert r.makespan_s == r.finish_s[0]
    assert r.events == 1
    assert r.link_bytes[0] == 1e9
    assert r.link_utilization[0] == pytest.approx(1.0)
    assert r.bottleneck_link == 0


def test_latency_is_added_and_uses_no_bandwidth() -> None:
    fs = FlowSet.from_paths([1e9], [[([0], 1.0)]], latency_s=[[2e-6]])
    r = simulate(np.array([50e9]), fs)
    assert r.finish_s[0] == pytest.approx(0.02 + 2e-6, rel=1e-15)
    # utilization is over the makespan, which includes the latency: 0.02 / 0.020002
    assert r.link_utilization[0] == pytest.approx(0.02 / (0.02 + 2e-6))


def test_two_flows_share_a_link_equally() -> None:
    fs = single_paths([10.0, 10.0], [[0], [0]])
    np.testing.assert_array_equal(rates([4.0], fs), [2.0, 2.0])
    r = simulate(np.array([4.0]), fs)
    np.testing.assert_allclose(r.finish_s, [5.0, 5.0], rtol=1e-15)
    assert r.events == 1  # symmetric: both finish in the same event


def test_path_limited_by_slowest_link() -> None:
    fs = single_paths([30.0], [[0, 1]])
    np.testing.assert_array_equal(rates([10.0, 3.0], fs), [3.0])
    r = simulate(np.array([10.0, 3.0]), fs)
    assert r.finish_s[0] == pytest.approx(10.0)
    assert r.bottleneck_link == 1
    np.testing.assert_allclose(r.link_utilization, [0.3, 1.0])


def test_classic_max_min_three_links_four_flows() -> None:
    # Capacities L0 = 12, L1 = 6, L2 = 2.  f0: L0+L1, f1: L0, f2: L1+L2, f3: L2.
    # Round 1: every link has 2 unfrozen flows; fair shares L0 12/2 = 6, L1 6/2 = 3,
    #   L2 2/2 = 1 -> level 1, L2 saturates, f2 = f3 = 1.  Left: L0 12-2 = 10, L1 6-2 = 4.
    # Round 2: unfrozen f0, f1; shares L0 10/2 = 5, L1 4/1 = 4 -> +4 (level 5), L1
    #   saturates, f0 = 5.  Left: L0 10 - 2*4 = 2.
    # Round 3: f1 alone on L0: +2 -> f1 = 7.
    # Check: L0 5+7 = 12, L1 5+1 = 6, L2 1+1 = 2: all saturated; each flow has a bottleneck
    # where it is the largest (f0: L1, f1: L0, f2 and f3: L2).
    fs = single_paths([1.0] * 4, [[0, 1], [0], [1, 2], [2]])
    np.testing.assert_allclose(rates([12.0, 6.0, 2.0], fs), [5.0, 7.0, 1.0, 1.0], rtol=1e-15)


def test_inactive_and_linkless_subflows() -> None:
    fs = single_paths([1.0, 1.0, 1.0], [[0], [0], []])
    r = rates([4.0], fs, np.array([True, False, True]))
    assert r[0] == 4.0 and r[1] == 0.0 and r[2] == np.inf
    res = simulate(np.array([4.0]), fs)
    assert res.finish_s[2] == 0.0  # no links: instantaneous
    np.testing.assert_allclose(res.finish_s[:2], [0.5, 0.5])


def test_fluid_event_ordering() -> None:
    # 1 B and 3 B on a 1 B/s link: 0.5 B/s each until t = 2 s (1 B done, 2 B left),
    # then 1 B/s for the rest: t = 2 + 2 = 4 s.
    r = simulate(np.array([1.0]), single_paths([1.0, 3.0], [[0], [0]]))
    np.testing.assert_allclose(r.finish_s, [2.0, 4.0], rtol=1e-15)
    assert r.events == 2


def test_multipath_split_halves_the_time() -> None:
    one = simulate(np.array([5.0, 5.0]), FlowSet.from_paths([100.0], [[([0], 1.0)]]))
    two = simulate(np.array([5.0, 5.0]),
                   FlowSet.from_paths([100.0], [[([0], 0.5), ([1], 0.5)]]))
    assert one.finish_s[0] == pytest.approx(20.0)
    assert two.finish_s[0] == pytest.approx(10.0)
    np.testing.assert_allclose(two.link_bytes, [50.0, 50.0])


def test_flow_finishes_with_its_slowest_subflow() -> None:
    # 40 B over L0 (10 B/s) 3/4 and over L1 (1 B/s) 1/4: 3 s and 10 s (+ latencies 1, 0.5).
    fs = FlowSet.from_paths([40.0], [[([0], 0.75), ([1], 0.25)]], latency_s=[[1.0, 0.5]])
    assert simulate(np.array([10.0, 1.0]), fs).finish_s[0] == pytest.approx(10.5)


def test_removing_a_flow_can_delay_another() -> None:
    # Why "removing a flow never delays another" is not a property of max-min fluid sharing.
    # L0 = 1 B/s, L1 = 2 B/s; X (10 B) on L0, B (10 B) on L0+L1, C (3 B) on L1.
    # With X: X and B get 0.5 on L0, so C gets 2 - 0.5 = 1.5 on L1 and finishes at 3/1.5 = 2 s.
    # Without X: B gets 1 (L0 alone would allow 1, L1 shares 2/2 = 1), C gets 1 -> 3 s.
    cap = np.array([1.0, 2.0])
    with_x = simulate(cap, single_paths([10.0, 10.0, 3.0], [[0], [0, 1], [1]]))
    without_x = simulate(cap, single_paths([10.0, 3.0], [[0, 1], [1]]))
    assert with_x.finish_s[2] == pytest.approx(2.0)
    assert without_x.finish_s[1] == pytest.approx(3.0)
    # The same happens when L0 gets faster (X stays): C is delayed, although makespan drops.
    faster = simulate(np.array([2.0, 2.0]), single_paths([10.0, 10.0, 3.0], [[0], [0, 1], [1]]))
    assert faster.finish_s[2] == pytest.approx(3.0)
    assert faster.makespan_s < with_x.makespan_s


def test_a_faster_link_can_increase_makespan() -> None:
    # Why only *uniform* capacity scaling is asserted monotone below (found by random search).
    # A (1 B) and B (1 B) on L0+L1, C (2 B) on L1+L2.
    # L0 = 1, L1 = 2, L2 = 1: shares L0 1/2, L1 2/3, L2 1 -> A = B = 0.5; C gets
    #   min(2 - 1, 1) = 1.  A and B finish at 2 s, C (2 B at 1 B/s) at 2 s: makespan 2 s.
    # L0 = 2: shares L0 1, L1 2/3, L2 1 -> all three at 2/3.  A and B finish at 1.5 s with
    #   C 1 B short; C then runs at min(2, 1) = 1 B/s: makespan 1.5 + 1 = 2.5 s.
    fs = single_paths([1.0, 1.0, 2.0], [[0, 1], [0, 1], [1, 2]])
    assert simulate(np.array([1.0, 2.0, 1.0]), fs).makespan_s == pytest.approx(2.0)
    assert simulate(np.array([2.0, 2.0, 1.0]), fs).makespan_s == pytest.approx(2.5)


def test_symmetric_all_to_all_takes_one_event() -> None:
    n = 64
    src, dst = np.nonzero(~np.eye(n, dtype=bool))
    links = np.stack([src, n + dst], axis=1).ravel()  # uplink of src, downlink of dst
    fs = FlowSet(bytes_=np.full(src.size, 2.0**20), sub_flow=np.arange(src.size),
                 sub_weight=np.ones(src.size), sub_indptr=np.arange(0, 2 * src.size + 1, 2),
                 sub_links=links)
    r = simulate(np.full(2 * n, 50e9), fs)
    assert r.events == 1
    assert r.makespan_s == pytest.approx((n - 1) * 2.0**20 / 50e9, rel=1e-12)
    np.testing.assert_allclose(r.link_utilization, 1.0, rtol=1e-12)


def test_zero_capacity_link_is_named() -> None:
    fs = single_paths([1.0, 1.0], [[0], [2, 1]])
    with pytest.raises(ValueError, match="link 1 has capacity 0"):
        simulate(np.array([1.0, 0.0, 1.0]), fs)
    # a subflow with nothing to send may cross it
    empty = single_paths([1.0, 0.0], [[0], [2, 1]])
    assert simulate(np.array([1.0, 0.0, 1.0]), empty).finish_s.tolist() == [1.0, 0.0]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="sum to"):
        FlowSet.from_paths([1.0], [[([0], 0.5), ([1], 0.4)]])
    with pytest.raises(ValueError, match="out of range"):
        simulate(np.array([1.0]), single_paths([1.0], [[3]]))
    with pytest.raises(ValueError, match="finite"):
        simulate(np.array([-1.0]), single_paths([1.0], [[0]]))
    with pytest.raises(RuntimeError, match="max_events"):
        simulate(np.array([1.0]), single_paths([1.0, 2.0], [[0], [0]]), max_events=1)


def test_no_flows() -> None:
    fs = FlowSet.from_paths([], [])
    r = simulate(np.array([1.0, 2.0]), fs)
    assert r.makespan_s == 0.0 and r.bottleneck_link == -1 and r.events == 0
    np.testing.assert_array_equal(r.link_utilization, [0.0, 0.0])


# ---------------------------------------------------------------- random instances


@dataclass(frozen=True)
class Case:
    cap: np.ndarray
    flows: FlowSet


@st.composite
def cases(draw: st.DrawFn, latency: bool = True) -> Case:
    n_links = draw(st.integers(1, 12))
    value = st.one_of(st.sampled_from([1.0, 2.0, 3.0]), st.floats(0.5, 100.0))
    cap = [draw(value) for _ in range(n_links)]
    n_flows = draw(st.integers(1, 20))
    path = st.lists(st.integers(0, n_links - 1), min_size=1, max_size=4, unique=True)
    bytes_, paths, lat = [], [], []
    for _ in range(n_flows):
        bytes_.append(draw(st.one_of(st.sampled_from([1.0, 3.0]), st.floats(0.1, 1000.0))))
        parts = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
        paths.append([(draw(path), k / sum(parts)) for k in parts])
        lat.append([draw(st.floats(0.0, 1.0)) if latency else 0.0 for _ in parts])
    fs = FlowSet.from_paths(bytes_, paths, latency_s=lat)
    return Case(np.asarray(cap), fs)


def link_loads(case: Case, r: np.ndarray) -> np.ndarray:
    fs = case.flows
    rows = np.repeat(np.arange(fs.n_sub), np.diff(fs.sub_indptr))
    return np.bincount(fs.sub_links, weights=r[rows], minlength=case.cap.size)


@given(cases(), st.data())
@settings(max_examples=200, deadline=None)
def test_rates_are_feasible_and_max_min(case: Case, data: st.DataObject) -> None:
    fs = case.flows
    active = np.asarray(data.draw(st.lists(st.booleans(), min_size=fs.n_sub,
                                           max_size=fs.n_sub)), dtype=bool)
    r = max_min_rates(case.cap, fs, active)
    assert np.all(r[~active] == 0) and np.all(r[active] > 0)
    load = link_loads(case, r)
    assert np.all(load <= case.cap * (1 + 1e-9))
    saturated = load >= case.cap * (1 - 1e-9)
    for j in np.flatnonzero(active):
        on = fs.sub_links[fs.sub_indptr[j]:fs.sub_indptr[j + 1]]
        # j has a bottleneck: a saturated link where no subflow gets more than j
        assert any(saturated[k] and r[j] >= max_rate_on(fs, r, k) * (1 - 1e-9) for k in on)


def max_rate_on(fs: FlowSet, r: np.ndarray, link: int) -> float:
    rows = np.repeat(np.arange(fs.n_sub), np.diff(fs.sub_indptr))
    return float(r[rows[fs.sub_links == link]].max())


@given(cases())
@settings(max_examples=200, deadline=None)
def test_utilization_and_lower_bound(case: Case) -> None:
    r = simulate(case.cap, case.flows)
    assert np.all(r.link_utilization <= 1 + 1e-9)
    bound = float(np.max(r.link_bytes / case.cap))
    assert r.makespan_s >= bound - 1e-9 * max(1.0, bound)
    fs = case.flows
    expected = np.bincount(fs.sub_links, minlength=case.cap.size,
                           weights=(fs.bytes_[fs.sub_flow] * fs.sub_weight)
                           [np.repeat(np.arange(fs.n_sub), np.diff(fs.sub_indptr))])
    np.testing.assert_allclose(r.link_bytes, expected)


@given(cases(), st.floats(1.0, 8.0))
@settings(max_examples=100, deadline=None)
def test_scaling_capacity_up_never_increases_makespan(case: Case, factor: float) -> None:
    # Uniform scaling only: a faster single link can delay a flow and even raise the
    # makespan (test_a_faster_link_can_increase_makespan).
    base = simulate(case.cap, case.flows)
    assert simulate(case.cap * factor, case.flows).makespan_s <= base.makespan_s * (1 + 1e-12)


@given(cases(latency=False))
@settings(max_examples=100, deadline=None)
def test_doubling_capacity_halves_time_exactly(case: Case) -> None:
    base = simulate(case.cap, case.flows)
    fast = simulate(case.cap * 2, case.flows)
    assert fast.makespan_s == base.makespan_s / 2
    np.testing.assert_array_equal(fast.finish_s, base.finish_s / 2)
    assert fast.events == base.events
