"""Predict a validation case of kind ``collective`` (nccl-tests, DeepEP) on the case's system."""

from __future__ import annotations

from superpod.hardware.catalog import Catalog
from superpod.network.calibration import library_documented_by, load_collective_calibration
from superpod.network.collectives import ALGORITHMS, EP_ALGORITHMS, CollectiveRequest, collective
from superpod.validate.cases import Case
from superpod.validate.system import case_system


def evaluate_collective_case(case: Case, cat: Catalog) -> tuple[float, str]:
    """(predicted metric value, note) for one ``collective`` case."""
    c = case.collective
    assert c is not None  # guaranteed by parse_case
    r = case.system.ranks_per_chip
    if r == 1 and c.ranks > case.system.chips and c.ranks % case.system.chips == 0:
        r = c.ranks // case.system.chips  # ranks are dies (e.g. Ascend 910C: 2 per chip)
    ep = c.op in ("ep_dispatch", "ep_combine")
    known = EP_ALGORITHMS if ep else ALGORITHMS
    algorithm = c.algorithm if c.algorithm is not None and c.algorithm in known else "auto"
    # EP kernels: the library version the case's document reports (its URL and commit)
    lib = library_documented_by(load_collective_calibration(), case.source) if ep else None
    req = CollectiveRequest(op=c.op, ranks=c.ranks, bytes_=float(c.bytes or 0),
                            algorithm=algorithm, dtype=c.dtype, tokens=c.tokens,
                            hidden=c.hidden, top_k=c.top_k, experts=c.experts,
                            ranks_per_chip=r, ep_library=lib.name if lib else None)
    res = collective(case_system(case, cat), req)
    value = {"busbw_gbps": res.busbw_bytes_per_s / 1e9, "algbw_gbps": res.algbw_bytes_per_s / 1e9,
             "time_us": res.time_s * 1e6, "per_rank_gbps": res.per_rank_bytes_per_s / 1e9}
    note = f"{res.algorithm}/{res.protocol}; bottleneck {res.bottleneck}"
    if res.notes:
        note += "; " + "; ".join(res.notes)
    return value[case.measured.metric], note
