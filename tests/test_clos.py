"""Fat-tree sizing: hand-checked counts and invariants."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from superpod.hardware.clos import max_endpoints, size_fat_tree


def test_hand_checked_two_tier() -> None:
    # 384 ports on 64-port switches: 12 leaves of 32 down / 32 up, 384 / 64 = 6 spines.
    f = size_fat_tree(384, 64)
    assert f.switches_per_tier == (12, 6)
    assert f.links_per_boundary == (384, 384)
    assert f.switch_side_link_ends == 384 + 2 * 384


def test_single_switch_and_empty() -> None:
    assert size_fat_tree(40, 64).switches_per_tier == (1,)
    assert size_fat_tree(0, 64).switches == 0


def test_closed_form_capacity() -> None:
    assert max_endpoints(64, 2) == 64 * 64 // 2
    assert max_endpoints(64, 3) == 64**3 // 4
    assert max_endpoints(64, 2, oversubscription=3.0) == 48 * 64


@given(st.integers(1, 2_000_000), st.sampled_from([16, 40, 64, 128, 144]),
       st.sampled_from([1.0, 2.0, 3.0]))
def test_fabric_fits_and_uses_fewest_tiers(e: int, k: int, o: float) -> None:
    f = size_fat_tree(e, k, o)
    assert max_endpoints(k, f.tiers, o) >= e
    assert f.tiers == 1 or max_endpoints(k, f.tiers - 1, o) < e
    assert f.links_per_boundary[0] == e


@given(st.integers(1, 500_000), st.integers(1, 500_000))
def test_more_endpoints_never_need_fewer_switches(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert size_fat_tree(lo, 64).switches <= size_fat_tree(hi, 64).switches
