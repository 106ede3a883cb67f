"""Run a collective as phases of flows on the system's graph (the ``flow`` engine).

Each algorithm becomes a list of phases; a phase is a set of concurrent transfers between
ranks, repeated a number of times (a ring all-reduce is one ring-neighbour phase of S/n
bytes run 2(n-1) times). Every phase is simulated by the max-min fair flow simulator
(``flowsim``) on the topology graph (``topology``) with link capacities derated by the
protocol efficiency the analytic model calibrated for that fabric, plus the protocol's fixed
cost once. What formulas cannot see shows up here: several groups sharing links, placements
that are not symmetric, failed links, skewed traffic.

All-to-all on many ranks is run as concurrent chunks of shifts (rank i sends to i + s for
the chunk's shifts) when the all-pairs flow count would exceed ``max_flows``; beyond
``max_phases`` chunks an evenly spaced sample is simulated and scaled, and the result says
so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from superpod.errors import SpecError
from superpod.hardware.system import System
from superpod.network.collectives import CollectiveRequest, CollectiveResult, collective
from superpod.network.flowsim import FlowSet, simulate
from superpod.network.topology import Fabric, _domain_dims, build_fabric, route_table

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
    if op in ("ep_dispatch", "ep_combine"):
        s, op = req.ep_bytes(), "all_to_all"
    if op == "send_recv":
        return [([(0, n - 1, s)], 1)]
    if op == "all_to_all":
        if n * (n - 1) <= max_flows:
            return [([(i, j, s / n) for i in range(n) for j in range(n) if i != j], 1)]
        # too many flows at once: run the shifts in concurrent chunks, each chunk a seeded
        # random draw of the shifts, so that its partners are spread over the topology as
        # the full all-to-all's are (a strided draw would align with the grid)
        per = max(1, max_flows // n)
        chunks = math.ceil((n - 1) / per)
        shifts = (np.random.default_rng(0).permutation(n - 1) + 1).tolist()
        return [([(i, (i + k) % n, s / n) for k in shifts[j::chunks] for i in range(n)], 1)
                for j in range(chunks)]
    if algorithm == "hierarchical":
        g = n // m
        inner = [t for d in range(g) for t in _ring_offset(d * m, m, s / m)]
        cross = [(d * m + j, ((d + 1) % g) * m + j, s / m / g) for d in range(g) for j in range(m)]
        return [(inner, m - 1), (cross, 2 * (g - 1)), (inner, m - 1)]
    if algorithm == "halving_doubling":
        steps = int(math.log2(n))
        half = [([(i, i ^ (1 << k), s / 2 ** (k + 1)) for i in range(n)], 1) for k in range(steps)]
        return half + half[::-1] if op == "all_reduce" else half
    reps = {"all_reduce": 2 * (n - 1), "broadcast": 1}.get(op, n - 1)
    return [(_ring_channels(n, m, kind, dims, s if op == "broadcast" else s / n), reps)]


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
    """In-network reduction: each chip sends S up to the planes and receives S back."""
    sizes: list[float] = []
    paths: list[list[tuple[Sequence[int], float]]] = []
    d = f.system.spec.scale_up.domain_chips
    for c in range(math.ceil(req.ranks / req.ranks_per_chip)):
        planes = f.planes[c // d]
        for up in (True, False):
            sizes.append(req.bytes_)
            paths.append([([f.link(c, p) if up else f.link(p, c)], 1 / len(planes))
                          for p in planes])
    return simulate(cap, FlowSet.from_paths(sizes, paths)).makespan_s


def _sample(phases: list[Phase], max_phases: int) -> tuple[list[Phase], float]:
    if len(phases) <= max_phases:
        return phases, 1.0
    idx = np.linspace(0, len(phases) - 1, max_phases).round().astype(int)
    return [phases[i] for i in sorted(set(idx.tolist()))], len(phases) / len(set(idx.tolist()))


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
    if base.algorithm == "nvls":
        wire = _nvls_time(f, req, cap)
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
