"""Run a collective as phases of flows on the system's graph (the ``flow`` engine).

Each algorithm becomes a list of phases; a phase is a set of concurrent transfers between
ranks, repeated a number of times (a ring all-reduce is one ring-neighbour phase of S/n
bytes run 2(n-1) times). Every phase is simulated by the max-min fair flow simulator
(``flowsim``) on the topology graph (``topology``) with link capacities derated by the
protocol efficiency the analytic model calibrated for that fabric, plus the protocol's fixed
cost once. What formulas cannot see shows up here: several groups sharing links, placements
that are not symmetric, failed links, skewed traffic.

An all-to-all whose all-pairs flow count exceeds ``max_flows`` is not simulated flow by
flow: every link's load is accumulated over all shifts (rank i -> i + k) in chunks and the
busiest link's load / capacity is the transfer time, which is what max-min sharing gives for
uniform traffic on symmetric routes (the result says which was used). Phased algorithms
beyond ``max_phases`` phases are sampled evenly and scaled, and the result says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from superpod.errors import SpecError
from superpod.hardware.system import System
from superpod.network.collectives import CollectiveRequest, CollectiveResult, collective
from superpod.network.domains import domain_dims as _domain_dims
from superpod.network.flowsim import FlowSet, simulate
from superpod.network.topology import Fabric, build_fabric, route_table

Transfer = tuple[int, int, float]  # (src rank, dst rank, bytes)
Phase = tuple[list[Transfer], int]  # transfers, repetitions


def _flowset(f: Fabric, transfers: Sequence[Transfer], ranks_per_chip: int) -> FlowSet:
    arr = np.array(transfers, dtype=float).reshape(-1, 3)
    a = arr[:, 0].astype(np.int64) // ranks_per_chip
    b = arr[:, 1].astype(np.int64) // ranks_per_chip
    rt = route_table(f, a, b)
    return FlowSet(bytes_=arr[:, 2], sub_flow=rt.sub_flow, sub_weight=rt.sub_weight,
                   sub_indptr=rt.sub_indptr, sub_links=rt.sub_links)


def _ring_channels(n: int, m: int, kind: str, dims: list[int], nbytes: float
                   ) -> list[Transfer]:
    """One ring step over all channels, each channel carrying an equal share of ``nbytes``.

    Like NCCL, several rings run at once so that every link class is used: across domains,
    ``m`` rail channels, channel c leaving each domain from its local rank c; in a full mesh,
    one channel per stride (every direct link); otherwise a forward and a backward ring
    (both directions of every link).
    """
    if n // m > 1:
        orders = [[d * m + (c + 1 + j) % m for d in range(n // m) for j in range(m)]
                  for c in range(m)]
        return [(o[i], o[(i + 1) % n], nbytes / m) for o in orders for i in range(n)]
    if kind in ("full_mesh", "nd_full_mesh") and math.prod(dims) == n:
        return _mesh_channels(dims, [range(1, d) for d in dims], nbytes)
    if kind == "torus" and math.prod(dims) == n:
        return _mesh_channels(dims, [(1, -1) if d > 1 else () for d in dims], nbytes)
    return [(i, (i + sgn) % n, nbytes / 2) for sgn in (1, -1) for i in range(n)]


def _phases(req: CollectiveRequest, algorithm: str, m: int, kind: str, dims: list[int],
            max_flows: int) -> list[Phase]:
    n, s = req.ranks, req.bytes_
    op = req.op
    if op == "send_recv":
        return [([(0, n - 1, s)], 1)]
    if op == "all_to_all":
        return [([(i, j, s / n) for i in range(n) for j in range(n) if i != j], 1)]
    if algorithm == "hierarchical":  # pipelined: every step's flows at once (algorithms)
        g = n // m
        inner = [t for d in range(g) for t in _ring_offset(d * m, m, 2 * (m - 1) * s / m)]
        cross = [(d * m + j, ((d + 1) % g) * m + j, 2 * (g - 1) * s / m / g)
                 for d in range(g) for j in range(m)]
        return [(inner + cross, 1)]
    if algorithm == "halving_doubling":
        steps = int(math.log2(n))
        half = [([(i, i ^ (1 << k), s / 2 ** (k + 1)) for i in range(n)], 1) for k in range(steps)]
        return half + half[::-1] if op == "all_reduce" else half
    reps = {"all_reduce": 2 * (n - 1), "broadcast": 1}.get(op, n - 1)
    return [(_ring_channels(n, m, kind, dims, s if op == "broadcast" else s / n), reps)]


def _ep_transfers(system: System, req: CollectiveRequest) -> list[Transfer] | None:
    """Dispatch / combine as pairwise flows carrying the analytic model's per-rank bytes
    (``expert_parallel.ep_traffic``): scale-up bytes spread over the rank's domain peers,
    scale-out bytes over the other domains' ranks. None for a pure-RDMA library (its copies
    to its own domain go out through the NIC, which the graph cannot route)."""
    from superpod.network.calibration import load_collective_calibration
    from superpod.network.expert_parallel import choose_library, ep_traffic, mode_of
    from superpod.network.placement import ELEMENT_BYTES, levels

    lv = levels(system, req)
    lib = choose_library(system, load_collective_calibration(), req.ep_library)
    tr = ep_traffic(req, lv, lib, mode_of(req), ELEMENT_BYTES[req.dtype])
    n, m = lv.n, lv.m
    if tr.up_bytes == 0 and tr.out_bytes > 0 and m > 1:
        return None
    up_pair = tr.up_bytes / (m - 1) if m > 1 else 0.0
    out_pair = tr.out_bytes / (n - m) if n > m else 0.0
    return [(i, j, up_pair if i // m == j // m else out_pair)
            for i in range(n) for j in range(n) if i != j
            and (up_pair if i // m == j // m else out_pair) > 0]


def _mesh_channels(dims: list[int], shifts: list[Sequence[int]], nbytes: float
                   ) -> list[Transfer]:
    """One channel per (dimension, shift): every rank moves its coordinate along one
    dimension. Full and nD meshes take every stride (each direct link once); a torus takes
    +1 and -1 in each dimension (bidirectional rings per dimension)."""
    n = math.prod(dims)
    strides = [math.prod(dims[:k]) for k in range(len(dims))]
    shares = sum(len(s) for s in shifts)
    out: list[Transfer] = []
    for k, d in enumerate(dims):
        for s in shifts[k]:
            for i in range(n):
                x = (i // strides[k]) % d
                j = i + (((x + s) % d) - x) * strides[k]
                out.append((i, j, nbytes / shares))
    return out


def _ring_offset(first: int, m: int, nbytes: float) -> list[Transfer]:
    return [(first + i, first + (i + 1) % m, nbytes) for i in range(m)]


def _nvls_time(f: Fabric, req: CollectiveRequest, cap: np.ndarray) -> float:
    """In-network reduction: each chip sends S (n+1)/n up to the planes and receives as much
    back (the switch pulls every shard, then multicasts the reduced ones; ``algorithms``)."""
    n = req.ranks
    through = req.bytes_ * (n + 1) / n
    sizes: list[float] = []
    paths: list[list[tuple[Sequence[int], float]]] = []
    d = f.system.spec.scale_up.domain_chips
    for c in range(math.ceil(req.ranks / req.ranks_per_chip)):
        planes = f.planes[c // d]
        for up in (True, False):
            sizes.append(through)
            paths.append([([f.link(c, p) if up else f.link(p, c)], 1 / len(planes))
                          for p in planes])
    return simulate(cap, FlowSet.from_paths(sizes, paths)).makespan_s


def _sample(phases: list[Phase], max_phases: int) -> tuple[list[Phase], float]:
    if len(phases) <= max_phases:
        return phases, 1.0
    idx = np.linspace(0, len(phases) - 1, max_phases).round().astype(int)
    return [phases[i] for i in sorted(set(idx.tolist()))], len(phases) / len(set(idx.tolist()))


def _add_load(f: Fabric, load: np.ndarray, a: np.ndarray, b: np.ndarray, r: int,
              nbytes: float) -> None:
    rt = route_table(f, a // r, b // r)
    lens = np.diff(rt.sub_indptr)
    load += np.bincount(rt.sub_links, weights=np.repeat(nbytes * rt.sub_weight, lens),
                        minlength=len(load))


#: flows routed to estimate the link-class loads of an all-to-all too large to route whole
SAMPLED_FLOWS = 20_000


def _load_bound_s(f: Fabric, req: CollectiveRequest, nbytes: float, cap: np.ndarray,
                  max_flows: int, exact_flows: int = 4_000_000) -> tuple[float, str]:
    """Uniform all-to-all too large to hold at once: the busiest link's load / capacity.
    For uniform traffic on symmetric routes the max-min fluid makespan equals this bound
    (every flow is held by the same busiest links for the whole transfer).

    Up to ``exact_flows`` flows (or with failed links) every shift (rank i -> i + k) is
    routed and every link's load accumulated. Beyond, on a healthy fabric, a spread sample
    of source ranks is routed to all destinations, scaled to n sources, and each link class
    (plane, mesh dimension, NIC, leaf uplink) is averaged over its links: uniform traffic
    loads the links of one class equally, so the class means are the loads.
    """
    n, r = req.ranks, req.ranks_per_chip
    load = np.zeros(len(cap))
    ranks = np.arange(n, dtype=np.int64)
    if n * (n - 1) <= exact_flows or f.failed:
        per = max(1, max_flows // n)
        for start in range(1, n, per):
            ks = np.arange(start, min(n, start + per), dtype=np.int64)
            a = np.tile(ranks, ks.size)
            _add_load(f, load, a, (a + np.repeat(ks, n)) % n, r, nbytes / n)
        how = "busiest-link load over all shifts"
    else:
        # uniform traffic loads every link of a class alike: a few sources give the class
        # means; SAMPLED_FLOWS bounds the routing work (a torus routes hop by hop)
        k = max(1, min(n, max_flows // n, SAMPLED_FLOWS // n))
        sources = np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))
        for src in np.array_split(sources, max(1, sources.size * n // max_flows)):
            a = np.repeat(src, n)
            b = np.tile(ranks, src.size)
            keep = a != b
            _add_load(f, load, a[keep], b[keep], r, nbytes / n)
        load *= n / sources.size
        cls = np.array(f.cls)
        for c in np.unique(cls):
            sel = cls == c
            load[sel] = load[sel].mean()
        how = f"busiest link-class load from {sources.size} sampled sources"
    used = load > 0
    if (cap[used] <= 0).any():
        raise SpecError("infeasible: traffic crosses a failed link with no detour",
                        field="--fail-links")
    return (float((load[used] / cap[used]).max()) if used.any() else 0.0), how


def flow_collective(system: System, req: CollectiveRequest, fail_links: Sequence[int] = (),
                    max_flows: int = 300_000, max_phases: int = 64) -> CollectiveResult:
    """Simulate ``req`` on the system's graph; the algorithm is the analytic model's pick
    (or the one requested)."""
    base = collective(system, req)
    if base.time_s == 0:
        return replace(base, engine="flow")
    f = build_fabric(system, fail_links)
    derate = np.where(np.array(f.level) == "up", base.efficiency, base.efficiency_out)
    cap = f.capacity_bytes_per_s * derate
    notes: tuple[str, ...] = ()
    a2a = req.op in ("all_to_all", "ep_dispatch", "ep_combine")
    if a2a and req.ranks * (req.ranks - 1) > max_flows:
        nbytes = req.ep_bytes() if req.op.startswith("ep_") else req.bytes_
        wire, how = _load_bound_s(f, req, nbytes, cap, max_flows)
        notes = (f"{req.ranks * (req.ranks - 1):,} flows: {how} (equals the max-min "
                 "makespan for uniform traffic)",)
    elif req.op in ("ep_dispatch", "ep_combine"):
        flows = _ep_transfers(system, req)
        if flows is None:
            wire = base.time_s - base.alpha_s - base.step_latency_s
            notes = ("pure-RDMA copies to the sender's own domain: the graph has no NIC "
                     "loopback, transfer time is the analytic one",)
        else:
            wire = simulate(cap, _flowset(f, flows, req.ranks_per_chip)).makespan_s
    elif base.algorithm == "nvls":
        wire = _nvls_time(f, req, cap)
    elif base.algorithm == "nvls_tree":
        wire = base.time_s - base.alpha_s - base.step_latency_s
        notes = ("NVLS-tree: multicast inside domains is not a graph flow; analytic transfer",)
    else:
        m = min(req.ranks, system.spec.scale_up.domain_chips * req.ranks_per_chip)
        kind = system.spec.scale_up.kind
        dims = _domain_dims(system, system.counts.chips_per_domain)
        phases, scale = _sample(_phases(req, base.algorithm, m, kind, dims, max_flows),
                                max_phases)
        wire = scale * sum(reps * simulate(cap, _flowset(f, tr, req.ranks_per_chip)).makespan_s
                           for tr, reps in phases)
        notes = (f"sampled {len(phases)} phases, scaled x{scale:.1f}",) if scale > 1 else ()
    t = base.alpha_s + base.step_latency_s + wire
    ratio = base.time_s / t if t > 0 else 1.0
    fails = (f"{len(set(fail_links)) // 2} failed link(s)",) if fail_links else ()
    return replace(base, engine="flow", time_s=t, algbw_bytes_per_s=base.algbw_bytes_per_s * ratio,
                   busbw_bytes_per_s=base.busbw_bytes_per_s * ratio,
                   per_rank_bytes_per_s=base.per_rank_bytes_per_s * ratio,
                   bottleneck_utilization=min(1.0, base.bottleneck_utilization * ratio),
                   notes=base.notes + notes + fails)


def check_engine(engine: str, fail_links: Sequence[int]) -> None:
    if engine not in ("analytic", "flow"):
        raise SpecError("unknown engine", field="--engine", value=engine, allowed="analytic, flow")
    if fail_links and engine != "flow":
        raise SpecError("failed links need the flow engine", field="--fail-links",
                        allowed="use --engine flow")
