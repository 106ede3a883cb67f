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
    stride: int = 1  # rank distance between group members (data-parallel groups: tp x cp)

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
    all_to_all_load: float  # uniform all-to-all time on the domain / time at full injection
    up_name: str
    out_name: str
    up_key: str | None
    out_key: str | None


@dataclass(frozen=True)
class Wire:
    """An algorithm's transfer terms on a placement, phase by phase.

    Each phase is (scale-up seconds, scale-out seconds) at nominal bandwidth for one rank;
    the two link classes run concurrently inside a phase, phases run one after another.
    """

    phases: tuple[tuple[float, float], ...]
    steps: int  # latency-bound steps (hops in sequence)
    up_bytes: float  # per rank through its scale-up links, whole collective
    out_bytes: float  # per rank through its NIC, whole collective

    def seconds(self, e_up: float, e_out: float) -> float:
        return sum(max(u / e_up, o / e_out) for u, o in self.phases)

    def level(self, e_up: float, e_out: float) -> str:
        up = sum(u / e_up for u, _ in self.phases)
        out = sum(o / e_out for _, o in self.phases)
        return "out" if out > up else "up"


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
    efficiency: float = 1.0  # fraction of nominal scale-up bandwidth (chosen protocol)
    efficiency_out: float = 1.0  # fraction of nominal scale-out bandwidth

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
    chips = math.ceil(((req.ranks - 1) * req.stride + 1) / r)
    if chips > system.counts.chips:
        raise SpecError(f"{req.ranks} ranks at {r} per chip need {chips} chips; the system "
                        f"has {system.counts.chips}", field="ranks", value=req.ranks)
    d = spec.scale_up.domain_chips
    m = max(1, min(req.ranks, (d * r) // req.stride))
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
                  all_to_all_load=all_to_all_load(system),
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


def all_to_all_load(system: System) -> float:
    """How much longer a uniform all-to-all takes on the domain's wiring than at the chip's
    full injection bandwidth ``b`` (1 for a switch or a full mesh).

    nD full mesh (L = sum(d_k - 1) links per chip, each b / L): the traffic differing in
    coordinate k, S (d_k - 1)/d_k per chip, shares d_k - 1 links, so dimension k needs
    S L / (d_k b); the smallest dimension binds. Torus (2 D links per chip, each b / (2 D)):
    dimension k carries the traffic over its mean ring distance h_k (about d_k / 4 each way),
    S h_k 2 D / (2 b). Both divided by the full-injection time S (m - 1) / (m b).
    """
    from superpod.network.topology import _domain_dims

    su, m = system.spec.scale_up, system.counts.chips_per_domain
    if su.kind not in ("nd_full_mesh", "torus") or m < 2:
        return 1.0
    dims = [d for d in _domain_dims(system, m) if d > 1]
    base = (m - 1) / m
    if su.kind == "nd_full_mesh":
        return sum(d - 1 for d in dims) / min(dims) / base
    hops = [sum(min(x, d - x) for x in range(d)) / d for d in dims]
    return max(h * len(dims) for h in hops) / base


# ----------------------------------------------------------------------------- algorithms


def _ring(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Ring (pipelined). Across domains every domain's crossing edges share its m NICs."""
    n, s = lv.n, req.bytes_
    factor = {"all_reduce": 2 * (n - 1) / n, "all_gather": (n - 1) / n,
              "reduce_scatter": (n - 1) / n, "broadcast": 1.0}.get(req.op)
    if factor is None:
        return None
    steps = {"all_reduce": 2 * (n - 1), "broadcast": n - 1}.get(req.op, n - 1)
    up_s = factor * s / lv.b_up_bytes_per_s
    if lv.g == 1:
        return Wire(((up_s, 0.0),), steps, factor * s, 0.0)
    # each of the m channels leaves a domain from a different rank, over its NIC: a rank
    # sends (m-1)/m of its ring traffic over the scale-up links and 1/m over its NIC
    up_share = (lv.m - 1) / lv.m
    out_s = factor * s / (lv.m * lv.b_out_bytes_per_s)
    return Wire(((up_s * up_share, out_s),), steps, factor * s * up_share, factor * s / lv.m)


def _tree(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Double binary tree (NCCL): ring-like bandwidth, logarithmic latency."""
    if req.op not in ("all_reduce", "broadcast"):
        return None
    w = _ring(req, lv)
    assert w is not None
    steps = 2 * math.ceil(math.log2(max(2, lv.n)))
    return replace(w, steps=steps if req.op == "all_reduce" else steps // 2)


def _halving_doubling(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Recursive halving-doubling (Rabenseifner): power-of-two ranks, one partner a step."""
    if lv.n & (lv.n - 1) or req.op not in ("all_reduce", "all_gather", "reduce_scatter"):
        return None
    w = _ring(req, lv)
    assert w is not None
    steps = math.ceil(math.log2(lv.n)) * (2 if req.op == "all_reduce" else 1)
    phases = tuple((u / lv.pair_fraction, o) for u, o in w.phases)
    return replace(w, phases=phases, steps=steps)


def _nvls(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """In-network reduction inside one switched domain: each rank sends and receives S once."""
    if not lv.in_network_reduction or lv.g > 1 or req.op != "all_reduce":
        return None
    return Wire(((req.bytes_ / lv.b_up_bytes_per_s, 0.0),), 1, req.bytes_, 0.0)


def _direct(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """One-shot: every rank exchanges directly with every other (all-to-all, send/recv)."""
    n, s = lv.n, req.bytes_
    if req.op == "send_recv":
        if lv.g == 1:
            return Wire(((s / (lv.b_up_bytes_per_s * lv.pair_fraction), 0.0),), 1, s, 0.0)
        return Wire(((0.0, s / lv.b_out_bytes_per_s),), 1, 0.0, s)
    if req.op != "all_to_all":
        return None
    local, remote = (lv.m - 1) / n * s, (n - lv.m) / n * s
    up_s = local / lv.b_up_bytes_per_s * lv.all_to_all_load
    return Wire(((up_s, remote / lv.b_out_bytes_per_s),), 1, local, remote)


def _hierarchical(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Reduce-scatter inside each domain, all-reduce across domains, all-gather inside."""
    if lv.g == 1 or req.op != "all_reduce":
        return None
    s, m, g = req.bytes_, lv.m, lv.g
    inner = (m - 1) / m * s
    cross = 2 * (g - 1) / g * (s / m)
    phase_in = (inner / lv.b_up_bytes_per_s, 0.0)
    return Wire((phase_in, (0.0, cross / lv.b_out_bytes_per_s), phase_in),
                2 * (m - 1) + 2 * (g - 1), 2 * inner, cross)


AlgorithmFn = Callable[[CollectiveRequest, Levels], Wire | None]
#: name -> cost function; ``None`` from a function means "does not apply here".
ALGORITHMS: dict[str, AlgorithmFn] = {
    "ring": _ring, "tree": _tree, "halving_doubling": _halving_doubling, "nvls": _nvls,
    "direct": _direct, "hierarchical": _hierarchical,
}


# ----------------------------------------------------------------------------- evaluation


def _up_protocols(cal: CollectiveCalibration, lv: Levels, algorithm: str
                  ) -> tuple[tuple[Protocol, ...], int, bool]:
    """Calibrated protocols of the scale-up fabric for ``algorithm``. An algorithm the fabric
    has no fit for borrows the fabric's fitted protocols (same links, same software stack)
    and is marked uncalibrated; a fabric with no entry gets the documented defaults."""
    fab = cal.fabrics.get(lv.up_key) if lv.up_key else None
    if fab and algorithm in fab.algorithms:
        return fab.algorithms[algorithm], fab.fit.ranks, True
    if fab:
        return fab.algorithms[fab.fit.algorithm], fab.fit.ranks, False
    default = Protocol.model_construct(protocol="default", alpha_s=cal.defaults.alpha_s,
                                       efficiency=cal.defaults.efficiency)
    return (default,), 1, False


def _out_protocol(cal: CollectiveCalibration, lv: Levels) -> tuple[Protocol, bool]:
    """The scale-out fabric's bandwidth protocol (its most efficient fit), or the default."""
    fab = cal.fabrics.get(lv.out_key) if lv.out_key else None
    if fab:
        protos = fab.algorithms[fab.fit.algorithm]
        return max(protos, key=lambda p: p.efficiency), True
    return Protocol.model_construct(protocol="default", alpha_s=cal.defaults.alpha_s,
                                    efficiency=cal.defaults.scale_out_efficiency), False


def _latency_steps(algorithm: str, op: str, n: int) -> int:
    req = CollectiveRequest(op=op, ranks=n, bytes_=1.0)
    lv = Levels(n, n, 1, 1.0, 1.0, 0, 0, True, 1.0, 1.0, "", "", None, None)
    w = ALGORITHMS[algorithm](req, lv)
    return w.steps if w else 1


def estimate(system: System, req: CollectiveRequest, algorithm: str,
             cal: CollectiveCalibration | None = None) -> CollectiveResult | None:
    """Cost of ``req`` with one named algorithm, or None where it does not apply.

    t = min over scale-up protocols p of  max(alpha_p, alpha_out) + sum over phases of
    max(up_s / e_p, out_s / e_out)  + extra steps x hop latency. Taking the max of the
    two link classes (not the cost of whichever is the bottleneck) keeps the time monotone
    in every bandwidth.
    """
    cal = cal or load_collective_calibration()
    lv = levels(system, req)
    w = ALGORITHMS[algorithm](req, lv)
    if w is None:
        return None
    ups, cal_ranks, up_cal = _up_protocols(cal, lv, algorithm)
    out_p, out_cal = _out_protocol(cal, lv)
    uses_up = any(u > 0 for u, _ in w.phases)
    uses_out = any(o > 0 for _, o in w.phases)

    def cost(p: Protocol) -> float:
        alpha = max(p.alpha_s if uses_up else 0.0, out_p.alpha_s if uses_out else 0.0)
        return alpha + w.seconds(p.efficiency, out_p.efficiency)

    best = min(ups, key=cost)
    hop = max(lv.hop_up_s, lv.hop_out_s) if uses_out else lv.hop_up_s
    extra = max(0, w.steps - _latency_steps(algorithm, req.op, cal_ranks)) * hop
    t = cost(best) + extra
    calibrated = (up_cal or not uses_up) and (out_cal or not uses_out)
    level = w.level(best.efficiency, out_p.efficiency)
    alpha = cost(best) - w.seconds(best.efficiency, out_p.efficiency)
    res = _result(req, lv, algorithm, best.protocol, t, level, w, calibrated)
    return replace(res, alpha_s=alpha, efficiency=best.efficiency,
                   efficiency_out=out_p.efficiency, step_latency_s=extra)


def _result(req: CollectiveRequest, lv: Levels, algorithm: str, protocol: str, t: float,
            level: str, w: Wire, calibrated: bool) -> CollectiveResult:
    n = req.ranks
    algbw = req.bytes_ / t if t > 0 else 0.0
    link = lv.b_up_bytes_per_s if level == "up" else lv.b_out_bytes_per_s
    through = w.up_bytes if level == "up" else w.out_bytes
    name = (f"scale-up ({lv.up_name}, {link / 1e9:.0f} GB/s per rank)" if level == "up"
            else f"scale-out ({lv.out_name}, {link / 1e9:.1f} GB/s per rank)")
    notes = () if calibrated else (
        "not calibrated for this fabric and algorithm: alpha and efficiency borrowed from the "
        "fabric's fit, or the documented defaults",)
    return CollectiveResult(
        op=req.op, algorithm=algorithm, protocol=protocol, ranks=n, bytes_=req.bytes_,
        time_s=t, algbw_bytes_per_s=algbw,
        busbw_bytes_per_s=algbw * bus_factor(req.op, n),
        per_rank_bytes_per_s=through / t if t > 0 else 0.0, bottleneck=name,
        bottleneck_utilization=min(1.0, through / t / link) if t > 0 else 0.0,
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
