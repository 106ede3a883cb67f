"""Collective communication cost: algorithms, placement on the topology, calibrated protocols.

Model (alpha-beta per algorithm, Thakur, Rabenseifner & Gropp, IJHPCA 2005; Hockney 1994),
with the bandwidth term taken at the **bottleneck link class of the actual placement**:

    t = min over protocols p ( alpha_p + wire_s / efficiency_p ) + extra_steps * hop_latency_s

``wire_s`` is the algorithm's bytes through its bottleneck divided by that link's nominal
one-direction bandwidth; ``alpha_p`` and ``efficiency_p`` are calibrated per fabric from
measurements (``superpod/calibration/collectives.yaml``), never per case.

Placement: ranks fill chips in order, ``ranks_per_chip`` ranks per chip (dies), chips fill
scale-up domains in order. With ``m`` ranks per domain and ``g`` domains, a rank's scale-up
bandwidth is ``b_up`` (its chip's share) and its scale-out bandwidth ``b_out`` (its NIC's
share). A ring that crosses domains is limited per rank by ``min(b_up, m * b_out)``: each
domain's crossing edges can use all of the domain's NICs (NCCL's multiple channels).
Contention: when ``concurrent_groups`` groups run at once (all data-parallel groups reducing
together), they share the leaf uplinks; on an oversubscribed fat tree whose leaves they
overflow, ``b_out`` is divided by the oversubscription.

Bus bandwidth follows the nccl-tests definitions (PERFORMANCE.md): busbw = algbw x
2(n-1)/n for all-reduce, x (n-1)/n for all-gather, reduce-scatter and all-to-all, x 1 else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from superpod.errors import SpecError
from superpod.hardware.system import System
from superpod.network.calibration import (
    CollectiveCalibration,
    Protocol,
    load_collective_calibration,
)
from superpod.network.clos import leaf_down_ports
from superpod.units import BITS_PER_BYTE

OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "send_recv",
       "ep_dispatch", "ep_combine")
ELEMENT_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1,
                 "fp6": 0.75, "fp4": 0.5, "int4": 0.5}
BUS_FACTOR: dict[str, Callable[[int], float]] = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n, "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
}


def bus_factor(op: str, n: int) -> float:
    """busbw / algbw for ``op`` on ``n`` ranks (nccl-tests PERFORMANCE.md)."""
    f = BUS_FACTOR.get(op)
    return f(n) if f else 1.0


@dataclass(frozen=True)
class CollectiveRequest:
    """One collective: ``bytes_`` is the nccl-tests "size" (total buffer per rank)."""

    op: str
    ranks: int
    bytes_: float = 0.0
    algorithm: str = "auto"
    dtype: str = "bf16"
    tokens: int | None = None
    hidden: int | None = None
    top_k: int | None = None
    experts: int | None = None
    ranks_per_chip: int = 1
    concurrent_groups: int = 1

    def ep_bytes(self) -> float:
        """Dispatch / combine payload per rank: tokens x top_k x hidden x element bytes."""
        if not (self.tokens and self.hidden and self.top_k):
            raise SpecError(f"{self.op} needs tokens, hidden and top_k", field="collective")
        return self.tokens * self.top_k * self.hidden * ELEMENT_BYTES[self.dtype]


@dataclass(frozen=True)
class Levels:
    """Where the ranks sit: ranks per domain, domains, and per-rank link bandwidths."""

    n: int
    m: int
    g: int
    b_up_bytes_per_s: float
    b_out_bytes_per_s: float
    hop_up_s: float
    hop_out_s: float
    in_network_reduction: bool
    pair_fraction: float  # share of a rank's scale-up bandwidth one partner can get
    up_name: str
    out_name: str
    up_key: str | None
    out_key: str | None


@dataclass(frozen=True)
class Wire:
    """An algorithm's cost terms on a placement."""

    wire_s: float  # bottleneck bytes / nominal bottleneck bandwidth
    steps: int  # latency-bound steps (hops in sequence)
    level: str  # "up" or "out": which link class is the bottleneck
    bottleneck_bytes: float  # bytes per rank through the bottleneck link class


@dataclass(frozen=True)
class CollectiveResult:
    op: str
    algorithm: str
    protocol: str
    ranks: int
    bytes_: float
    time_s: float
    algbw_bytes_per_s: float
    busbw_bytes_per_s: float
    per_rank_bytes_per_s: float
    bottleneck: str
    bottleneck_utilization: float
    calibrated: bool
    engine: str = "analytic"
    notes: tuple[str, ...] = field(default=())
    alpha_s: float = 0.0  # the chosen protocol's fixed cost
    step_latency_s: float = 0.0  # hop latency of the steps beyond the calibrated ones
    efficiency: float = 1.0  # the chosen protocol's fraction of nominal link bandwidth

    def to_dict(self) -> dict[str, object]:
        return {"op": self.op, "algorithm": self.algorithm, "protocol": self.protocol,
                "engine": self.engine, "ranks": self.ranks, "bytes": self.bytes_,
                "time_s": self.time_s, "algbw_bytes_per_s": self.algbw_bytes_per_s,
                "busbw_bytes_per_s": self.busbw_bytes_per_s,
                "per_rank_bytes_per_s": self.per_rank_bytes_per_s,
                "bottleneck": self.bottleneck,
                "bottleneck_utilization": self.bottleneck_utilization,
                "calibrated": self.calibrated, "notes": list(self.notes),
                "breakdown_s": {"fixed": self.alpha_s, "step_latency": self.step_latency_s,
                                "transfer": self.time_s - self.alpha_s - self.step_latency_s}}


def levels(system: System, req: CollectiveRequest) -> Levels:
    """Place ``req.ranks`` ranks on the system and read off per-rank bandwidths."""
    r, spec = req.ranks_per_chip, system.spec
    chips = math.ceil(req.ranks / r)
    if chips > system.counts.chips:
        raise SpecError(f"{req.ranks} ranks at {r} per chip need {chips} chips; the system "
                        f"has {system.counts.chips}", field="ranks", value=req.ranks)
    d = spec.scale_up.domain_chips
    m = min(req.ranks, d * r)
    b_out = system.nic_bandwidth_bits_per_s / BITS_PER_BYTE / r
    if req.concurrent_groups > 1 and spec.scale_out.switch:
        radix = system.scale_out_fabric.radix
        if chips * req.concurrent_groups > leaf_down_ports(radix, spec.scale_out.oversubscription):
            b_out /= spec.scale_out.oversubscription
    # inside one node no node uplink is crossed: the chip's own ports are the limit
    up = (system.scale_up_injection_bytes_per_s if chips <= spec.node.chips
          else system.scale_up_bandwidth_per_chip_bytes_per_s)
    return Levels(n=req.ranks, m=m, g=math.ceil(req.ranks / m),
                  b_up_bytes_per_s=up / r,
                  b_out_bytes_per_s=b_out, hop_up_s=spec.scale_up.latency_s,
                  hop_out_s=spec.scale_out.latency_s,
                  in_network_reduction=spec.scale_up.in_network_reduction,
                  pair_fraction=pair_fraction(spec.scale_up.kind, system, chips),
                  up_name=spec.scale_up.protocol, out_name=spec.scale_out.protocol or "scale-out",
                  up_key=spec.scale_up.calibration, out_key=spec.scale_out.calibration)


def pair_fraction(kind: str, system: System, chips: int) -> float:
    """Fraction of a chip's scale-up bandwidth available towards ONE partner chip.

    A switch gives a pair the chip's whole bandwidth; a direct topology only the links (and
    routes) between the two: one of ``m-1`` links in a full mesh, one of ``sum(d_i - 1)`` in
    an nD full mesh (all-path routing adds little for a single partner), one of ``2 D``
    neighbour links in a D-dimensional torus.
    """
    from superpod.network.topology import _domain_dims

    del chips  # the domain's wiring is the system's, whatever the ranks use
    size = system.counts.chips_per_domain
    if kind in ("switched", "none") or size < 2:
        return 1.0
    if kind == "full_mesh":
        return 1.0 / (size - 1)
    dims = [d for d in _domain_dims(system, size) if d > 1]
    if kind == "nd_full_mesh":
        return 1.0 / sum(d - 1 for d in dims)
    return 1.0 / (2 * len(dims))


# ----------------------------------------------------------------------------- algorithms


def _ring_bw(lv: Levels) -> tuple[float, str]:
    if lv.g == 1:
        return lv.b_up_bytes_per_s, "up"
    cross = lv.m * lv.b_out_bytes_per_s
    return (lv.b_up_bytes_per_s, "up") if lv.b_up_bytes_per_s <= cross else (cross, "out")


def _ring(req: CollectiveRequest, lv: Levels) -> Wire | None:
    n, s = lv.n, req.bytes_
    factor = {"all_reduce": 2 * (n - 1) / n, "all_gather": (n - 1) / n,
              "reduce_scatter": (n - 1) / n, "broadcast": 1.0}.get(req.op)
    if factor is None:
        return None
    bw, level = _ring_bw(lv)
    steps = {"all_reduce": 2 * (n - 1), "broadcast": n - 1}.get(req.op, n - 1)
    return Wire(factor * s / bw, steps, level, factor * s)


def _tree(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Double binary tree (NCCL): ring-like bandwidth, logarithmic latency."""
    if req.op not in ("all_reduce", "broadcast"):
        return None
    w = _ring(req, lv)
    assert w is not None
    steps = 2 * math.ceil(math.log2(max(2, lv.n)))
    return Wire(w.wire_s, steps if req.op == "all_reduce" else steps // 2, w.level,
                w.bottleneck_bytes)


def _halving_doubling(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Recursive halving-doubling (Rabenseifner): power-of-two ranks only."""
    if lv.n & (lv.n - 1) or req.op not in ("all_reduce", "all_gather", "reduce_scatter"):
        return None
    w = _ring(req, lv)
    assert w is not None
    steps = math.ceil(math.log2(lv.n)) * (2 if req.op == "all_reduce" else 1)
    slow = 1.0 / lv.pair_fraction if w.level == "up" else 1.0  # one partner per step
    return Wire(w.wire_s * slow, steps, w.level, w.bottleneck_bytes)


def _nvls(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """In-network reduction inside one switched domain: each rank sends and receives S once."""
    if not lv.in_network_reduction or lv.g > 1 or req.op != "all_reduce":
        return None
    return Wire(req.bytes_ / lv.b_up_bytes_per_s, 1, "up", req.bytes_)


def _direct(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """One-shot: every rank exchanges directly with every other (all-to-all, send/recv)."""
    n, s = lv.n, req.bytes_
    if req.op == "send_recv":
        bw, level = ((lv.b_up_bytes_per_s * lv.pair_fraction, "up") if lv.g == 1
                     else (lv.b_out_bytes_per_s, "out"))
        return Wire(s / bw, 1, level, s)
    if req.op != "all_to_all":
        return None
    local, remote = (lv.m - 1) / n * s, (n - lv.m) / n * s
    t_up, t_out = local / lv.b_up_bytes_per_s, remote / lv.b_out_bytes_per_s if remote else 0.0
    if t_out > t_up:
        return Wire(t_out, 1, "out", remote)
    return Wire(t_up, 1, "up", local)


def _hierarchical(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Reduce-scatter inside each domain, all-reduce across domains, all-gather inside."""
    if lv.g == 1 or req.op != "all_reduce":
        return None
    s, m, g = req.bytes_, lv.m, lv.g
    t_in = 2 * (m - 1) / m * s / lv.b_up_bytes_per_s
    t_x = 2 * (g - 1) / g * (s / m) / lv.b_out_bytes_per_s
    level = "out" if t_x >= t_in else "up"
    through = 2 * (g - 1) / g * s / m if level == "out" else 2 * (m - 1) / m * s
    return Wire(t_in + t_x, 2 * (m - 1) + 2 * (g - 1), level, through)


AlgorithmFn = Callable[[CollectiveRequest, Levels], Wire | None]
#: name -> cost function; ``None`` from a function means "does not apply here".
ALGORITHMS: dict[str, AlgorithmFn] = {
    "ring": _ring, "tree": _tree, "halving_doubling": _halving_doubling, "nvls": _nvls,
    "direct": _direct, "hierarchical": _hierarchical,
}


# ----------------------------------------------------------------------------- evaluation


def _protocols(cal: CollectiveCalibration, lv: Levels, w: Wire, algorithm: str
               ) -> tuple[tuple[Protocol, ...], int, bool]:
    """Calibrated protocols for the bottleneck fabric and algorithm. An algorithm the fabric
    has no fit for borrows the fabric's fitted protocols (same links, same software stack)
    and is marked uncalibrated; a fabric with no entry gets the documented defaults."""
    key = lv.up_key if w.level == "up" else lv.out_key
    fab = cal.fabrics.get(key) if key else None
    if fab and algorithm in fab.algorithms:
        return fab.algorithms[algorithm], fab.fit.ranks, True
    if fab:
        return fab.algorithms[fab.fit.algorithm], fab.fit.ranks, False
    eff = cal.defaults.efficiency if w.level == "up" else cal.defaults.scale_out_efficiency
    default = Protocol.model_construct(protocol="default", alpha_s=cal.defaults.alpha_s,
                                       efficiency=eff)
    return (default,), 1, False


def _latency_steps(algorithm: str, op: str, n: int) -> int:
    req = CollectiveRequest(op=op, ranks=n, bytes_=1.0)
    lv = Levels(n, n, 1, 1.0, 1.0, 0, 0, True, 1.0, "", "", None, None)
    w = ALGORITHMS[algorithm](req, lv)
    return w.steps if w else 1


def estimate(system: System, req: CollectiveRequest, algorithm: str,
             cal: CollectiveCalibration | None = None) -> CollectiveResult | None:
    """Cost of ``req`` with one named algorithm, or None where it does not apply."""
    cal = cal or load_collective_calibration()
    lv = levels(system, req)
    w = ALGORITHMS[algorithm](req, lv)
    if w is None:
        return None
    protos, cal_ranks, calibrated = _protocols(cal, lv, w, algorithm)
    hop = lv.hop_up_s if w.level == "up" else lv.hop_out_s
    extra = max(0, w.steps - _latency_steps(algorithm, req.op, cal_ranks)) * hop
    best = min(protos, key=lambda p: p.alpha_s + w.wire_s / p.efficiency)
    t = best.alpha_s + w.wire_s / best.efficiency + extra
    res = _result(req, lv, algorithm, best.protocol, t, w, calibrated)
    return replace(res, alpha_s=best.alpha_s, efficiency=best.efficiency, step_latency_s=extra)


def _result(req: CollectiveRequest, lv: Levels, algorithm: str, protocol: str, t: float,
            w: Wire, calibrated: bool) -> CollectiveResult:
    n = req.ranks
    algbw = req.bytes_ / t if t > 0 else 0.0
    link = lv.b_up_bytes_per_s if w.level == "up" else lv.b_out_bytes_per_s
    name = (f"scale-up ({lv.up_name}, {link / 1e9:.0f} GB/s per rank)" if w.level == "up"
            else f"scale-out ({lv.out_name}, {link / 1e9:.1f} GB/s per rank)")
    notes = () if calibrated else ("uncalibrated fabric: default alpha and efficiency",)
    return CollectiveResult(
        op=req.op, algorithm=algorithm, protocol=protocol, ranks=n, bytes_=req.bytes_,
        time_s=t, algbw_bytes_per_s=algbw,
        busbw_bytes_per_s=algbw * bus_factor(req.op, n),
        per_rank_bytes_per_s=w.bottleneck_bytes / t if t > 0 else 0.0, bottleneck=name,
        bottleneck_utilization=min(1.0, w.bottleneck_bytes / t / link) if t > 0 else 0.0,
        calibrated=calibrated, notes=notes)


def collective(system: System, req: CollectiveRequest,
               cal: CollectiveCalibration | None = None) -> CollectiveResult:
    """Cost of a collective; ``algorithm="auto"`` picks the fastest that applies (NCCL's
    tuner does the same with its own cost model)."""
    if req.op not in OPS:
        raise SpecError("unknown collective", field="op", value=req.op, allowed=", ".join(OPS))
    if req.ranks < 1:
        raise SpecError("ranks must be at least 1", field="ranks", value=req.ranks)
    if req.op in ("ep_dispatch", "ep_combine"):
        from superpod.network.expert_parallel import ep_collective

        return ep_collective(system, req, cal or load_collective_calibration())
    if req.ranks == 1 or req.bytes_ == 0:
        return CollectiveResult(req.op, "none", "none", req.ranks, req.bytes_, 0.0, 0.0, 0.0,
                                0.0, "none", 0.0, True, notes=("nothing to move",))
    names = list(ALGORITHMS) if req.algorithm == "auto" else [req.algorithm]
    if req.algorithm != "auto" and req.algorithm not in ALGORITHMS:
        raise SpecError("unknown algorithm", field="algorithm", value=req.algorithm,
                        allowed="auto, " + ", ".join(ALGORITHMS))
    results = [r for a in names if (r := estimate(system, req, a, cal)) is not None]
    if not results:
        raise SpecError(f"algorithm '{req.algorithm}' does not apply to {req.op} on "
                        f"{req.ranks} ranks here", field="algorithm", value=req.algorithm)
    return min(results, key=lambda r: r.time_s)
