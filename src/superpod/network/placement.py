"""Where a collective's ranks sit and what a result reports: the collective model's primitives.

A request (``CollectiveRequest``) is placed on the system (``levels``): ranks fill chips in
order, ``ranks_per_chip`` ranks per chip (dies), chips fill scale-up domains in order. With
``m`` ranks per domain and ``g`` domains, a rank's scale-up bandwidth is ``b_up`` (its chip's
share) and its scale-out bandwidth ``b_out`` (its NIC's share). Contention: when
``concurrent_groups`` groups run at once (all data-parallel groups reducing together), they
share the leaf uplinks; on an oversubscribed fat tree whose leaves they overflow, ``b_out``
is divided by the oversubscription.

An algorithm's transfer terms on a placement are a ``Wire`` (phases of scale-up and
scale-out seconds at nominal bandwidth); ``make_result`` turns a time into the reported
figures. Bus bandwidth follows the nccl-tests definitions (PERFORMANCE.md): busbw = algbw x
2(n-1)/n for all-reduce, x (n-1)/n for all-gather, reduce-scatter and all-to-all, x 1 else.
Both the collective algorithms (``algorithms``) and expert-parallel traffic
(``expert_parallel``) build on these.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from superpod.errors import SpecError
from superpod.hardware.clos import leaf_down_ports
from superpod.hardware.system import System
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
    ep_library: str | None = None  # EP kernel library version (None: the newest calibrated)

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


def placement_key(system: System, ranks: int, stride: int, ranks_per_chip: int = 1
                  ) -> tuple[int, bool, bool]:
    """What ``levels`` reads of a group's stride (one group at a time): the ranks per
    domain, whether the group stays in one node, whether it fits the system. Two strides with
    the same key cost every collective the same (searches use it to merge placements)."""
    r, spec = ranks_per_chip, system.spec
    chips = math.ceil(((ranks - 1) * stride + 1) / r)
    m = max(1, min(ranks, (spec.scale_up.domain_chips * r) // stride))
    return m, chips <= spec.node.chips, chips <= system.counts.chips


def pair_fraction(kind: str, system: System, chips: int) -> float:
    """Fraction of a chip's scale-up bandwidth available towards ONE partner chip.

    A switch gives a pair the chip's whole bandwidth; a direct topology only the links (and
    routes) between the two: one of ``m-1`` links in a full mesh, one of ``sum(d_i - 1)`` in
    an nD full mesh (all-path routing adds little for a single partner), one of ``2 D``
    neighbour links in a D-dimensional torus.
    """
    from superpod.network.domains import domain_dims as _domain_dims

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
    from superpod.network.domains import domain_dims as _domain_dims

    su, m = system.spec.scale_up, system.counts.chips_per_domain
    if su.kind not in ("nd_full_mesh", "torus") or m < 2:
        return 1.0
    dims = [d for d in _domain_dims(system, m) if d > 1]
    base = (m - 1) / m
    if su.kind == "nd_full_mesh":
        return sum(d - 1 for d in dims) / min(dims) / base
    hops = [sum(min(x, d - x) for x in range(d)) / d for d in dims]
    return max(h * len(dims) for h in hops) / base


def make_result(req: CollectiveRequest, lv: Levels, algorithm: str, protocol: str, t: float,
                level: str, w: Wire, calibrated: bool,
                notes: tuple[str, ...] = (), *, alpha_s: float = 0.0,
                step_latency_s: float = 0.0, efficiency: float = 1.0,
                efficiency_out: float = 1.0) -> CollectiveResult:
    """The reported figures of ``req`` taking ``t`` seconds, bottleneck at ``level``."""
    n = req.ranks
    algbw = req.bytes_ / t if t > 0 else 0.0
    link = lv.b_up_bytes_per_s if level == "up" else lv.b_out_bytes_per_s
    through = w.up_bytes if level == "up" else w.out_bytes
    name = (f"scale-up ({lv.up_name}, {link / 1e9:.0f} GB/s per rank)" if level == "up"
            else f"scale-out ({lv.out_name}, {link / 1e9:.1f} GB/s per rank)")
    return CollectiveResult(
        op=req.op, algorithm=algorithm, protocol=protocol, ranks=n, bytes_=req.bytes_,
        time_s=t, algbw_bytes_per_s=algbw,
        busbw_bytes_per_s=algbw * bus_factor(req.op, n),
        per_rank_bytes_per_s=through / t if t > 0 else 0.0, bottleneck=name,
        bottleneck_utilization=min(1.0, through / t / link) if t > 0 else 0.0,
        calibrated=calibrated, notes=notes, alpha_s=alpha_s, step_latency_s=step_latency_s,
        efficiency=efficiency, efficiency_out=efficiency_out)
