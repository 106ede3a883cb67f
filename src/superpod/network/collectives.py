"""Collective communication cost: the one entry point for every collective op.

``collective`` costs a request on a system: the NCCL-style collectives with the algorithm
model (``superpod.network.algorithms``: which algorithms apply, their wire terms, calibrated
protocols), the expert-parallel dispatch / combine with ``superpod.network.expert_parallel``
(a client of the same placement and result model, ``superpod.network.placement``). This
module only dispatches; it re-exports the request and result types for its callers.
"""

from __future__ import annotations

from superpod.errors import SpecError
from superpod.hardware.system import System
from superpod.network.algorithms import ALGORITHMS, estimate
from superpod.network.calibration import (
    CollectiveCalibration,
    load_collective_calibration,
    platform_algorithms,
)
from superpod.network.expert_parallel import EP_ALGORITHMS, ep_collective
from superpod.network.placement import (
    BUS_FACTOR,
    ELEMENT_BYTES,
    OPS,
    CollectiveRequest,
    CollectiveResult,
    Levels,
    Wire,
    bus_factor,
    levels,
    make_result,
)

__all__ = ["ALGORITHMS", "BUS_FACTOR", "ELEMENT_BYTES", "EP_ALGORITHMS", "OPS",
           "CollectiveRequest", "CollectiveResult", "Levels", "Wire", "bus_factor",
           "collective", "estimate", "levels", "make_result"]


def collective(system: System, req: CollectiveRequest,
               cal: CollectiveCalibration | None = None) -> CollectiveResult:
    """Cost of a collective; ``algorithm="auto"`` picks the fastest of the algorithms that
    apply, that the platform's collective library implements (NCCL, HCCL: calibration file)
    and that may compete for want of calibration (``algorithms`` module docstring), as
    NCCL's tuner does with its own cost model."""
    if req.op not in OPS:
        raise SpecError("unknown collective", field="op", value=req.op, allowed=", ".join(OPS))
    if req.ranks < 1:
        raise SpecError("ranks must be at least 1", field="ranks", value=req.ranks)
    if req.op in ("ep_dispatch", "ep_combine"):
        return ep_collective(system, req, cal or load_collective_calibration())
    if req.algorithm != "auto" and req.algorithm not in ALGORITHMS:
        raise SpecError("unknown algorithm", field="algorithm", value=req.algorithm,
                        allowed="auto, " + ", ".join(ALGORITHMS))
    if req.ranks == 1 or req.bytes_ == 0:
        return CollectiveResult(req.op, "none", "none", req.ranks, req.bytes_, 0.0, 0.0, 0.0,
                                0.0, "none", 0.0, True, notes=("nothing to move",))
    if req.algorithm == "auto":
        cal = cal or load_collective_calibration()
        lv = levels(system, req)
        allowed = platform_algorithms(cal, system.chip.vendor) or tuple(ALGORITHMS)
        results = [r for a in ALGORITHMS if a in allowed
                   and (r := estimate(system, req, a, cal, competing=True, placement=lv))
                   is not None]
    else:
        one = estimate(system, req, req.algorithm, cal)
        results = [one] if one is not None else []
    if not results:
        raise SpecError(f"algorithm '{req.algorithm}' does not apply to {req.op} on "
                        f"{req.ranks} ranks here", field="algorithm", value=req.algorithm)
    return min(results, key=lambda r: r.time_s)
