"""Collectives: hand-checked alpha-beta numbers, invariants, analytic vs flow agreement."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.hardware.catalog import load_catalog
from superpod.hardware.system import build_system
from superpod.network.collectives import CollectiveRequest, collective, estimate
from superpod.network.flow_engine import flow_collective
from superpod.network.topology import build_fabric, failed_sample

CAT = load_catalog()


def _mi300x(chips: int = 8):  # type: ignore[no-untyped-def]
    return build_system(CAT.system("mi300x-node"), CAT, chips)


def test_hand_checked_ring_all_reduce_on_an_uncalibrated_fabric() -> None:
    # 8 x MI300X, full mesh, 448 GB/s per GPU per direction, no calibration entry:
    # t = alpha + 2 (n-1)/n * S / (e * B) + 2(n-1) * hop   (defaults: 10 us, e = 0.8, hop 1 us)
    s, n, b = 2**30, 8, 448e9
    r = estimate(_mi300x(), CollectiveRequest("all_reduce", n, float(s)), "ring")
    assert r is not None and not r.calibrated
    expected = 10e-6 + 2 * (n - 1) / n * s / (0.8 * b) + 2 * (n - 1) * 1e-6
    assert math.isclose(r.time_s, expected, rel_tol=1e-9)
    assert math.isclose(r.busbw_bytes_per_s, s / expected * 2 * (n - 1) / n, rel_tol=1e-9)


def test_hand_checked_nvls_on_nvlink4() -> None:
    # NVLS: t = min_p(alpha_p + S (n+1)/n / (e_p * 450 GB/s)); 1 GiB picks the Simple protocol,
    # pooled over the two NVLink 4 documents (70.58 and 62.35 us; 0.6714 and 0.6708 at 8 ranks)
    r = collective(api.system("dgx-h100"), CollectiveRequest("all_reduce", 8, 2.0**30))
    assert (r.algorithm, r.protocol) == ("nvls", "Simple")
    alpha, e = (70.58e-6 + 62.35e-6) / 2, (0.6714 + 0.6708) / 2
    assert math.isclose(r.time_s, alpha + 2**30 * 9 / 8 / (e * 450e9), rel_tol=1e-9)


def test_nvls_fixed_cost_grows_with_ranks() -> None:
    # the NVLink 5 NVLS fit is at 72 ranks (605.3 us); 36 ranks pay half of it
    s = api.system("gb200-nvl72")
    r = collective(s, CollectiveRequest("all_reduce", 36, 2.0**33, algorithm="nvls"))
    assert math.isclose(r.alpha_s, 605.30e-6 * 36 / 72, rel_tol=1e-9)


def test_one_rank_costs_nothing() -> None:
    r = collective(api.system("dgx-h100"), CollectiveRequest("all_reduce", 1, 1e9))
    assert r.time_s == 0.0


SYSTEMS = ["dgx-h100", "gb200-nvl72", "cloudmatrix384", "mi300x-node", "tpu-v5p-pod"]
OPS = ["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "send_recv"]


@given(st.sampled_from(SYSTEMS), st.sampled_from(OPS), st.integers(2, 64),
       st.integers(1, 2**32), st.integers(1, 2**32))
@settings(max_examples=120, deadline=None)
def test_time_never_decreases_with_bytes(sid: str, op: str, n: int, a: int, b: int) -> None:
    s = api.system(sid, max(n, 8))
    lo, hi = sorted((a, b))
    t_lo = collective(s, CollectiveRequest(op, n, float(lo))).time_s
    t_hi = collective(s, CollectiveRequest(op, n, float(hi))).time_s
    assert t_lo <= t_hi * (1 + 1e-12)


@given(st.sampled_from(OPS), st.integers(9, 128), st.integers(1, 2**32),
       st.sampled_from([100.0, 200.0, 400.0]), st.sampled_from([1.5, 2.0, 4.0]))
@settings(max_examples=80, deadline=None)
def test_more_scale_out_bandwidth_never_slower(op: str, n: int, nbytes: int, gbps: float,
                                               k: float) -> None:
    spec = CAT.system("dgx-h100")

    def at(g: float):  # type: ignore[no-untyped-def]
        so = spec.scale_out.model_copy(update={"nic_bandwidth_bits_per_s": g * 1e9})
        return build_system(spec.model_copy(update={"scale_out": so}), CAT, 128)

    req = CollectiveRequest(op, n, float(nbytes))
    assert collective(at(gbps * k), req).time_s <= collective(at(gbps), req).time_s * (1 + 1e-12)


@given(st.sampled_from(SYSTEMS), st.sampled_from(OPS), st.integers(2, 64), st.integers(1, 2**34))
@settings(max_examples=120, deadline=None)
def test_busbw_never_above_the_physical_link(sid: str, op: str, n: int, nbytes: int) -> None:
    s = api.system(sid, max(n, 8))
    r = collective(s, CollectiveRequest(op, n, float(nbytes)))
    link = max(s.scale_up_injection_bytes_per_s, s.nic_bandwidth_bits_per_s / 8 * s.spec.node.chips)
    # NVLink SHARP (nvls, nvls_tree) reduces in the switch: a rank sends and receives less
    # than the 2 (n - 1) / n of busbw's ring convention, so only its algbw is bounded by the
    # link (NCCL's NVLS all-reduce reports busbw above the NVLink rate)
    bw = r.algbw_bytes_per_s if r.algorithm.startswith("nvls") else r.busbw_bytes_per_s
    assert bw <= link * (1 + 1e-6)  # floating-point slack (a seen example: 1.3e-9 over)


def test_contention_on_an_oversubscribed_fabric_slows_groups_down() -> None:
    spec = CAT.system("dgx-h100")
    so = spec.scale_out.model_copy(update={"oversubscription": 4.0})
    s = build_system(spec.model_copy(update={"scale_out": so}), CAT, 1024)
    alone = collective(s, CollectiveRequest("all_reduce", 64, 2.0**30))
    crowded = collective(s, CollectiveRequest("all_reduce", 64, 2.0**30, concurrent_groups=16))
    assert crowded.time_s > alone.time_s


@pytest.mark.parametrize("sid,chips,op,n,alg", [
    ("dgx-h100", 64, "all_reduce", 64, "ring"),
    ("dgx-h100", 64, "all_reduce", 64, "hierarchical"),
    ("gb200-nvl72", 72, "all_to_all", 72, "auto"),
    ("cloudmatrix384", 96, "all_to_all", 96, "auto"),
    ("mi300x-node", 8, "all_reduce", 8, "ring"),
    ("tpu-v5p-pod", 512, "all_gather", 512, "ring"),
    ("atlas-950-superpod", 512, "all_gather", 512, "ring"),
    ("dgx-h100", 8, "all_reduce", 8, "nvls"),
    ("hgx-h800", 32, "ep_dispatch", 32, "normal"),
])
def test_analytic_and_flow_agree_on_symmetric_cases(sid, chips, op, n, alg) -> None:  # type: ignore[no-untyped-def]
    s = api.system(sid, chips)
    req = CollectiveRequest(op, n, 2.0**28, algorithm=alg, tokens=4096, hidden=7168, top_k=8,
                            dtype="fp8")
    a, f = collective(s, req), flow_collective(s, req)
    assert f.engine == "flow"
    assert math.isclose(a.time_s, f.time_s, rel_tol=0.10), (a.time_s, f.time_s)


@given(st.integers(1, 6), st.integers(0, 1000))
@settings(max_examples=15, deadline=None)
def test_failed_links_never_speed_anything_up(k: int, seed: int) -> None:
    s = api.system("cloudmatrix384", 64)
    req = CollectiveRequest("all_to_all", 64, 2.0**26)
    healthy = flow_collective(s, req).time_s
    failed = failed_sample(build_fabric(s), k, seed)
    assert flow_collective(s, req, failed).time_s >= healthy * (1 - 1e-9)


def test_a_failed_full_mesh_link_detours_and_slows_the_pair() -> None:
    s = _mi300x()
    req = CollectiveRequest("all_to_all", 8, 2.0**28)
    f = build_fabric(s)
    healthy = flow_collective(s, req).time_s
    cut = [f.link(0, 1), f.link(1, 0)]
    assert flow_collective(s, req, cut).time_s > healthy


@pytest.mark.parametrize("sid", sorted(CAT.systems))
def test_every_preset_builds_its_graph_and_counts_agree(sid: str) -> None:
    from superpod.network.facts import link_counts
    from superpod.network.topology import physical_links, routes

    spec = CAT.system(sid)
    s = build_system(spec, CAT, min(spec.chips, 1024))
    f = build_fabric(s)
    assert physical_links(f)["up"] == link_counts(s)["up"]
    last = s.counts.chips - 1
    if last:
        rs = routes(f, 0, last)
        assert rs and math.isclose(sum(w for _, w in rs), 1.0)


def test_supercluster_topology_facts_without_a_graph() -> None:
    from superpod.network.facts import topology_facts

    facts = topology_facts(api.system("atlas-960-supercluster"), CAT)
    assert facts["chips"] > 1_000_000 and "graph_links" not in facts
    assert facts["links"]["up"] > 0 and facts["scale_out"]["tiers"] >= 3
