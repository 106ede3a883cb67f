"""Collective calibration: stored constants follow from their points, sources are documents,
held-out documents are invisible and lookups borrow only the same algorithm, saying so."""

from __future__ import annotations

import math

import pytest

from superpod import api
from superpod.network.calibration import (
    Lookup,
    load_collective_calibration,
    lookup_fit,
    lookup_link,
    refit,
)
from superpod.network.collectives import CollectiveRequest, collective, estimate
from superpod.network.expert_parallel import refit_ep
from superpod.trust.holdout import holding_out
from superpod.trust.sources import source_key

CAL = load_collective_calibration()


@pytest.mark.parametrize("i", range(len(CAL.fits)))
def test_every_stored_fit_reproduces_from_its_points(i: int) -> None:
    fit = CAL.fits[i]
    stored = sorted((p.alpha_s, p.efficiency) for p in fit.protocols)
    for (a, e), (a2, e2) in zip(stored, refit(fit), strict=True):
        assert math.isclose(a, a2, rel_tol=0.02, abs_tol=0.5e-6), (fit.fabric, a, a2)
        assert math.isclose(e, e2, rel_tol=0.02), (fit.fabric, e, e2)


@pytest.mark.parametrize("i", range(len(CAL.expert_parallel)))
def test_every_stored_ep_fit_reproduces_from_its_points(i: int) -> None:
    fit = CAL.expert_parallel[i]
    a, g, e = refit_ep(fit)
    assert math.isclose(fit.alpha_s, a, rel_tol=0.02, abs_tol=0.5e-6), (fit.library, fit.op)
    assert math.isclose(fit.per_token_peer_s, g, rel_tol=0.02, abs_tol=2e-12)
    assert math.isclose(fit.efficiency, e, rel_tol=0.02, abs_tol=1e-3)


def test_link_efficiencies_are_the_stated_measurement_over_the_nominal() -> None:
    for link in CAL.links:
        assert math.isclose(link.efficiency, link.measured_bandwidth_bytes_per_s
                            / link.link_bandwidth_bytes_per_s, rel_tol=1e-3)


def test_every_source_begins_with_its_documents_url() -> None:
    sources = ([f.source for f in CAL.fits] + [x.source for x in CAL.links]
               + [e.source for e in CAL.expert_parallel] + [x.source for x in CAL.ep_libraries])
    for s in sources:
        assert s.startswith("https://"), s
        assert source_key(s).startswith(("github.com/", "arxiv.org/abs/")), s


def test_a_held_out_fit_is_borrowed_from_the_same_algorithm_on_the_nearest_generation() -> None:
    gb200 = next(f for f in CAL.fits if f.fabric == "nvlink5" and f.algorithm == "ring")
    assert lookup_fit(CAL, "nvlink5", "ring").origin == "own"
    with holding_out([source_key(gb200.source)]):
        look = lookup_fit(CAL, "nvlink5", "ring")
        assert (look.origin, look.fabric) == ("borrowed", "nvlink3")
        r = estimate(api.system("gb200-nvl72", 4), CollectiveRequest("all_reduce", 4, 2.0**30),
                     "ring")
        assert r is not None and not r.calibrated
        assert any("borrowed from nvlink3" in n for n in r.notes)
    assert lookup_fit(CAL, "nvlink5", "ring").origin == "own"  # the block restores it


def test_borrowing_never_crosses_algorithms_or_fabric_families() -> None:
    # UB has no fit of any algorithm: nothing is borrowed from NVLink
    assert lookup_fit(CAL, "ub-cm384", "ring").origin == "none"
    assert lookup_fit(CAL, "nvlink3", "nvls").origin == "borrowed"  # NVLS of NVLink 4
    assert lookup_fit(CAL, "nvlink3", "nvls").fabric == "nvlink4"


def test_nvls_without_any_nvls_calibration_does_not_compete_in_auto() -> None:
    nvls_docs = {source_key(f.source) for f in CAL.fits if f.algorithm == "nvls"}
    s, req = api.system("dgx-h100"), CollectiveRequest("all_reduce", 8, 2.0**33)
    assert collective(s, req).algorithm == "nvls"
    with holding_out(nvls_docs):
        assert collective(s, req).algorithm != "nvls"
        named = collective(s, CollectiveRequest("all_reduce", 8, 2.0**33, algorithm="nvls"))
        assert named.algorithm == "nvls" and not named.calibrated


def test_nearest_generation_prefers_the_newer_on_a_tie() -> None:
    from superpod.network.calibration import _nearest

    assert _nearest(CAL, "nvlink4", {"nvlink3", "nvlink5"}) == "nvlink5"
    assert _nearest(CAL, "nvlink4", {"nvlink3"}) == "nvlink3"
    assert _nearest(CAL, "hdr200", {"ndr400", "xdr800"}) == "ndr400"


def test_scale_out_efficiency_is_borrowed_within_infiniband_and_flagged() -> None:
    link, origin = lookup_link(CAL, "hdr200")
    assert link is not None and (link.fabric, origin) == ("ndr400", "borrowed")
    r = collective(api.system("dgx-a100", 24), CollectiveRequest("all_reduce", 24, 2.0**27))
    assert math.isclose(r.efficiency_out, link.efficiency)
    assert any("borrowed from ndr400" in n for n in r.notes)
    assert lookup_link(CAL, "roce800")[1] == "none"  # not a key: no family to borrow from
    roce, origin = lookup_link(CAL, "roce400")
    assert roce is not None and origin == "own"
    nic = next(x for x in CAL.links if x.fabric == "ndr400")
    with holding_out([source_key(nic.source)]):  # NDR held out: HDR borrows nothing
        assert lookup_link(CAL, "hdr200") == (None, "none")


def test_lookup_notes_name_what_was_borrowed() -> None:
    look = Lookup((), 8, "borrowed", "nvlink4", "https://example.org/doc; table")
    assert look.note("x") == ("x: borrowed from nvlink4 (same algorithm, nearest fabric "
                              "generation), https://example.org/doc")
    assert Lookup((), 8, "own", "a", "").note("x") is None


def test_auto_only_offers_what_the_platforms_library_implements() -> None:
    s = api.system("dgx-h100", 64)
    for nbytes in (2.0**20, 2.0**30):
        r = collective(s, CollectiveRequest("all_reduce", 64, nbytes))
        assert r.algorithm in ("ring", "tree", "nvls", "nvls_tree")  # NCCL's
    named = collective(s, CollectiveRequest("all_reduce", 64, 2.0**30, algorithm="hierarchical"))
    assert named.algorithm == "hierarchical"


def test_hand_checked_nvls_tree_runs_both_link_classes_at_once() -> None:
    # 2 x 8 B200: NVLS inside each node (S (m+1)/m at the NVLink 5 NVLS efficiency) while the
    # nodes' shards are all-reduced over the NICs (2 (g-1)/g x S/m at NDR's 0.94), pipelined
    s, nbytes = api.system("dgx-b200", 16), 2.0**33
    r = estimate(s, CollectiveRequest("all_reduce", 16, nbytes), "nvls_tree")
    assert r is not None
    nvls = next(f for f in CAL.fits if f.fabric == "nvlink5" and f.algorithm == "nvls")
    e = nvls.protocols[0].efficiency
    wire = max(nbytes * 9 / 8 / (e * 900e9), nbytes / 8 / (0.94 * 50e9))
    assert math.isclose(r.time_s - r.alpha_s - r.step_latency_s, wire, rel_tol=1e-9)
    assert math.isclose(r.alpha_s, max(nvls.protocols[0].alpha_s * 8 / 72, 10e-6), rel_tol=1e-9)


def test_extra_collective_cases_parse_and_evaluate() -> None:
    from pathlib import Path

    from superpod.validate.runner import validate_file

    path = Path(__file__).resolve().parent.parent / "src" / "superpod" / "validation" \
        / "extra-collectives.yaml"
    out = validate_file(str(path))
    assert out["summary"]["collective"]["ok"] == out["summary"]["collective"]["cases"] >= 4


def test_nvls_tree_across_more_than_two_domains_pays_the_double_binary_tree() -> None:
    # 4 x 8 B200: each NIC carries 2 S/m per direction (inner node of one tree, leaf of the
    # other); the NVLink side is unchanged, so the NIC binds
    s, nbytes = api.system("dgx-b200", 32), 2.0**33
    r = estimate(s, CollectiveRequest("all_reduce", 32, nbytes), "nvls_tree")
    assert r is not None and "scale-out" in r.bottleneck
    assert math.isclose(r.time_s - r.alpha_s - r.step_latency_s, 2 * nbytes / 8 / (0.94 * 50e9),
                        rel_tol=1e-9)
