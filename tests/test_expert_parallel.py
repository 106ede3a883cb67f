"""Expert-parallel dispatch / combine: traffic by library version, the source's metric
definition, per-peer costs, separate dispatch and combine fits, leave-one-source-out."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.errors import SpecError
from superpod.network.calibration import (
    EpFit,
    library_documented_by,
    load_collective_calibration,
    lookup_ep,
)
from superpod.network.collectives import CollectiveRequest, collective
from superpod.network.expert_parallel import distinct, ep_collective
from superpod.trust.holdout import holding_out
from superpod.trust.sources import source_key

CAL = load_collective_calibration()
SRC = Path(__file__).resolve().parent.parent / "src" / "superpod"


def _req(op: str, n: int, tokens: int, lib: str, dtype: str = "bf16",
         mode: str = "auto") -> CollectiveRequest:
    return CollectiveRequest(op, n, algorithm=mode, dtype=dtype, tokens=tokens, hidden=7168,
                             top_k=8, ep_library=lib)


def test_distinct_slots_closed_form() -> None:
    assert distinct(8, 8) == pytest.approx(8 * (1 - (7 / 8) ** 8))
    assert distinct(1, 5) == 1.0
    assert distinct(2, 1) == pytest.approx(1.0)


def test_hand_checked_pure_rdma_low_latency_combine() -> None:
    # DeepEP Feb 2025, 16 H800 ranks, 128 tokens x 8 copies x 7168 x 2 B: every copy to another
    # rank over the 50 GB/s NIC: t = alpha + gamma x 128 x 15 + copies x 15/16 / (e x 50e9)
    fit, _ = lookup_ep(CAL, "deepep-2025-02", "ep_combine", "low_latency", "cross", "nvlink4",
                       "ndr400")
    assert fit is not None
    r = collective(api.system("hgx-h800", 16), _req("ep_combine", 16, 128, "deepep-2025-02"))
    copies = 128 * 8 * 7168 * 2
    t = fit.alpha_s + fit.per_token_peer_s * 128 * 15 + copies * 15 / 16 / (fit.efficiency * 50e9)
    assert math.isclose(r.time_s, t, rel_tol=1e-9)
    assert math.isclose(r.per_rank_bytes_per_s, copies / t, rel_tol=1e-9)  # counts every copy


def test_nvlink_aware_low_latency_sends_the_own_node_share_over_nvlink() -> None:
    s = api.system("hgx-h800", 8)
    feb = collective(s, _req("ep_dispatch", 8, 128, "deepep-2025-02", "fp8"))
    jun = collective(s, _req("ep_dispatch", 8, 128, "deepep-2025-06", "fp8"))
    assert "scale-out" in feb.bottleneck and "scale-up" in jun.bottleneck
    assert jun.time_s < feb.time_s


def test_deepep_internode_bandwidth_counts_the_senders_own_node() -> None:
    # "RDMA bandwidth" = one row per destination node incl. the sender's own (issue #51):
    # on 2 nodes it is twice the bytes that actually cross the NIC
    s = api.system("hgx-h800", 16)
    r = collective(s, _req("ep_combine", 16, 4096, "deepep-2025-06", mode="normal"))
    assert r.per_rank_bytes_per_s > 0
    from superpod.network.expert_parallel import ep_traffic
    from superpod.network.placement import levels

    req = _req("ep_combine", 16, 4096, "deepep-2025-06", mode="normal")
    lib = next(x for x in CAL.ep_libraries if x.name == "deepep-2025-06")
    tr = ep_traffic(req, levels(s, req), lib, "normal", 2)
    assert math.isclose(tr.reported_bytes, 2 * tr.out_bytes, rel_tol=1e-12)


@given(st.integers(3, 7))
@settings(max_examples=5, deadline=None)
def test_per_rank_bandwidth_falls_with_ep_size_on_ub(k: int) -> None:
    lo, hi = 2 ** k, 2 ** (k + 1)
    def bw(n: int) -> float:
        s = api.system("atlas-900-a3-superpod", n // 2)
        req = CollectiveRequest("ep_dispatch", n, algorithm="normal", dtype="int8", tokens=4096,
                                hidden=7168, top_k=8, ranks_per_chip=2)
        return collective(s, req).per_rank_bytes_per_s
    assert bw(hi) < bw(lo)


def test_dispatch_without_its_own_fit_borrows_combine_at_the_wider_dtype() -> None:
    # quantisation runs inside dispatch: an FP8 dispatch costed from the combine fit takes as
    # long as the BF16 combine, not half of it
    kept = tuple(e for e in CAL.expert_parallel
                 if not (e.op == "ep_dispatch" and e.up == "ub-cm384"))  # no UB dispatch fit
    cal = CAL.model_copy(update={"expert_parallel": kept})
    s = api.system("atlas-900-a3-superpod", 8)
    kw: dict[str, Any] = {"tokens": 128, "hidden": 7168, "top_k": 8, "ranks_per_chip": 2}
    disp = ep_collective(s, CollectiveRequest("ep_dispatch", 16, dtype="int8", **kw), cal)
    comb = ep_collective(s, CollectiveRequest("ep_combine", 16, dtype="bf16", **kw), cal)
    assert math.isclose(disp.time_s, comb.time_s, rel_tol=1e-12)
    assert any("combine fit" in n for n in disp.notes)


def test_latency_floor_at_small_token_counts() -> None:
    s = api.system("hgx-h800", 8)
    one = collective(s, _req("ep_dispatch", 8, 1, "deepep-2025-06", "fp8", "low_latency"))
    fit, _ = lookup_ep(CAL, "deepep-2025-06", "ep_dispatch", "low_latency", "domain",
                       "nvlink4", "ndr400")
    assert fit is not None and one.time_s >= fit.alpha_s > 0


def test_holding_out_the_readme_falls_back_to_the_defaults() -> None:
    s = api.system("hgx-h800", 16)
    req = _req("ep_dispatch", 16, 128, "deepep-2025-06", "fp8")
    fit = next(e for e in CAL.expert_parallel if e.library == "deepep-2025-06")
    assert collective(s, req).calibrated
    with holding_out([source_key(fit.source)]):
        r = collective(s, req)
        assert not r.calibrated and any("defaults" in n for n in r.notes)
        assert math.isclose(r.efficiency_out, CAL.defaults.scale_out_efficiency)


def test_library_version_from_the_cases_document_and_unknown_names() -> None:
    feb = ("deepseek-ai/DeepEP README; https://github.com/deepseek-ai/DeepEP/blob/"
           "ebfe47e46fa86a5b41be96c326a92f62ed6721da/README.md; Performance")
    lib = library_documented_by(CAL, feb)
    assert lib is not None and lib.name == "deepep-2025-02" and not lib.low_latency_nvlink
    assert library_documented_by(CAL, "https://example.org/other") is None
    with pytest.raises(SpecError, match="ep_library"):
        collective(api.system("hgx-h800", 8), _req("ep_dispatch", 8, 128, "deepep-1999"))
    with pytest.raises(SpecError, match="algorithm"):
        collective(api.system("hgx-h800", 8), _req("ep_dispatch", 8, 128, "deepep-2025-06",
                                                   mode="ring"))


def test_default_library_is_the_newest_calibrated_on_the_systems_fabrics() -> None:
    r = collective(api.system("hgx-h800", 8),
                   CollectiveRequest("ep_dispatch", 8, tokens=128, hidden=7168, top_k=8))
    assert r.notes[0].startswith("deepep-2025-06")
    r = collective(api.system("atlas-900-a3-superpod", 8),
                   CollectiveRequest("ep_dispatch", 16, tokens=128, hidden=7168, top_k=8,
                                     ranks_per_chip=2))
    assert r.notes[0].startswith("deepep_ascend")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_hardware_never_imports_the_network_package() -> None:
    for path in (SRC / "hardware").rglob("*.py"):
        assert not any(m.startswith("superpod.network") for m in _imports(path)), path


def test_expert_parallel_is_a_client_of_the_collective_model_not_its_peer() -> None:
    ep = _imports(SRC / "network" / "expert_parallel.py")
    assert "superpod.network.placement" in ep
    assert not ep & {"superpod.network.collectives", "superpod.network.algorithms"}
    for name in ("placement.py", "algorithms.py", "calibration.py"):
        assert "superpod.network.expert_parallel" not in _imports(SRC / "network" / name)


def test_validation_case_is_costed_with_the_library_its_document_reports() -> None:
    from superpod.hardware.catalog import load_catalog
    from superpod.network.validate import evaluate_collective_case
    from superpod.validate.cases import Case, load_cases

    path = SRC / "validation" / "public.yaml"
    cases = {c.id: c for c in load_cases(str(path)) if isinstance(c, Case)}
    cat = load_catalog()
    _, feb = evaluate_collective_case(cases["comm-deepep-lowlat-v1-2025-02-ep8"], cat)
    _, jun = evaluate_collective_case(cases["comm-deepep-lowlat-v1-2025-06-nvlink-aware-ep8"],
                                      cat)
    assert "deepep-2025-02 low_latency" in feb and "scale-out" in feb
    assert "deepep-2025-06 low_latency" in jun and "scale-up" in jun


# ---------------------------------------------------------------- UB: two independent sources

from superpod.network.placement import CollectiveResult, levels  # noqa: E402


def _ub_ll(lib: str, op: str) -> EpFit:
    return next(e for e in CAL.expert_parallel if e.library == lib and e.op == op
                and e.mode == "low_latency" and e.up == "ub-cm384")


def test_ub_low_latency_is_calibrated_by_two_independent_documents() -> None:
    for op in ("ep_dispatch", "ep_combine"):
        docs = {source_key(e.source) for e in CAL.expert_parallel
                if e.up == "ub-cm384" and e.mode == "low_latency" and e.op == op}
        assert docs == {"github.com/sgl-project/sgl-kernel-npu/readme.md",
                        "arxiv.org/abs/2506.12708"}, op


def test_with_either_ub_document_held_out_the_other_calibrates_ub() -> None:
    s = api.system("atlas-900-a3-superpod", 8)
    req = CollectiveRequest("ep_dispatch", 16, algorithm="low_latency", dtype="int8",
                            tokens=128, hidden=7168, top_k=8, ranks_per_chip=2,
                            ep_library="deepep_ascend-2025-09")
    sgl = _ub_ll("deepep_ascend-2025-09", "ep_dispatch")
    paper = _ub_ll("cloudmatrix_infer-2025-06", "ep_dispatch")
    assert collective(s, req).calibrated
    with holding_out([source_key(sgl.source)]):
        r = collective(s, req)
        assert any("cloudmatrix_infer-2025-06" in n for n in r.notes)
        assert not any("defaults" in n for n in r.notes)
        # the borrowed fit's constants, on this case's own traffic (8 copies, not the paper's 9)
        b_up = levels(s, req).b_up_bytes_per_s
        t = (paper.alpha_s + paper.per_token_peer_s * 128 * 15
             + 128 * 8 * 7168 * (15 / 16) / (paper.efficiency * b_up))
        assert math.isclose(r.time_s, t, rel_tol=1e-9)
    with holding_out([source_key(paper.source)]):
        r = collective(s, req)
        assert r.calibrated and math.isclose(r.alpha_s, sgl.alpha_s + sgl.per_token_peer_s
                                             * 128 * 15, rel_tol=1e-9)


def test_two_point_latency_fit_is_the_closed_form_solution() -> None:
    # two latencies, efficiency at its bound: t_k - transfer_k = alpha + gamma x T x (n_k - 1),
    # two linear equations in (alpha, gamma)
    from superpod.network.expert_parallel import fit_levels

    for op in ("ep_dispatch", "ep_combine"):
        fit = _ub_ll("cloudmatrix_infer-2025-06", op)
        (n1, t1), (n2, t2) = sorted(fit.points.items())
        rest = []
        for n, t in ((n1, t1), (n2, t2)):
            _, lv, _ = fit_levels(fit, n)
            row = fit.setup.hidden * (1 if fit.setup.dtype == "int8" else 2)
            up = fit.setup.tokens * fit.setup.top_k * row * (lv.m - 1) / lv.n
            rest.append(t * 1e-6 - up / lv.b_up_bytes_per_s)
        gamma = (rest[1] - rest[0]) / (fit.setup.tokens * (n2 - n1))
        alpha = rest[0] - gamma * fit.setup.tokens * (n1 - 1)
        assert fit.efficiency == 1.0
        assert math.isclose(fit.per_token_peer_s, gamma, rel_tol=0.01), op
        assert math.isclose(fit.alpha_s, alpha, rel_tol=0.01), op


def test_cloudmatrix_bandwidths_count_nine_copies_in_binary_gigabytes() -> None:
    # the paper's per-rank bandwidth x its latency = 128 tokens x 9 copies (8 routed experts +
    # the shared expert on its own dies) x the message (7680 B INT8 with scales; 14336 B BF16)
    quoted = {("ep_dispatch", 8): 71, ("ep_dispatch", 256): 54, ("ep_combine", 8): 131,
              ("ep_combine", 256): 103}  # GB/s, as the paper prints them
    message = {"ep_dispatch": 7168 + 512, "ep_combine": 7168 * 2}
    for (op, n), gbps in quoted.items():
        t = _ub_ll("cloudmatrix_infer-2025-06", op).points[n] * 1e-6
        copies = gbps * 2 ** 30 * t / message[op] / 128
        assert abs(copies - 9) < 0.05, (op, n, copies)


def test_a_mode_without_a_fit_takes_the_other_modes_per_peer_cost_on_the_same_fabric() -> None:
    # sgl-kernel-npu held out: no normal-mode UB fit is left; the paper's low-latency dispatch
    # lends its per-(token, peer) cost, the fixed cost and efficiency stay the defaults, and
    # per-rank bandwidth still falls with EP size
    sgl = _ub_ll("deepep_ascend-2025-09", "ep_dispatch")
    paper = _ub_ll("cloudmatrix_infer-2025-06", "ep_dispatch")

    def run(n: int) -> CollectiveResult:
        s = api.system("atlas-900-a3-superpod", n // 2)
        return collective(s, CollectiveRequest(
            "ep_dispatch", n, algorithm="normal", dtype="int8", tokens=4096, hidden=7168,
            top_k=8, ranks_per_chip=2, ep_library="deepep_ascend-2025-09"))

    with holding_out([source_key(sgl.source)]):
        r8, r128 = run(8), run(128)
        assert not r8.calibrated and any("per-(token, peer) cost" in n for n in r8.notes)
        assert math.isclose(r8.alpha_s, CAL.defaults.alpha_s + paper.per_token_peer_s
                            * 4096 * 7, rel_tol=1e-9)
        assert math.isclose(r8.efficiency, CAL.defaults.efficiency)
        assert r128.per_rank_bytes_per_s < r8.per_rank_bytes_per_s
