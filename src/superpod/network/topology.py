"""Topologies as graphs: the links of a system and the routes flows take over them.

Building blocks, composed per level (one scale-up domain at a time, then the scale-out):

* ``switched``      single-hop crossbar in ``planes`` independent planes (NVSwitch, the UB
                    switch planes of CloudMatrix 384): chip -> plane switch -> chip, traffic
                    split evenly over the planes;
* ``full_mesh``     a direct link between every pair of chips of the domain;
* ``nd_full_mesh``  UB-Mesh (arXiv 2503.20377): chips on a grid ``dims``, fully meshed along
                    each dimension; a flow is spread over the D rotations of the dimension
                    order (a multi-path stand-in for UB-Mesh's all-path routing);
* ``torus``         wrap-around neighbours along each of ``dims`` (TPU ICI); dimension-order
                    minimal routes, split on ties;
* scale-out         a rail-optimised fat tree collapsed to leaves and one core: chip -> leaf
                    (its NIC) -> core -> leaf -> chip; a leaf's uplink carries the NIC
                    bandwidth of its chips divided by the oversubscription.

A chip's scale-up bandwidth (one direction) is spread evenly over its scale-up links. Links
are directed; capacities are bytes/s. Failed links get capacity 0 and routes avoid them,
falling back to a breadth-first detour when every structured route is cut.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from superpod.errors import SpecError
from superpod.hardware.clos import leaf_down_ports
from superpod.hardware.system import System
from superpod.network.domains import domain_dims as _domain_dims
from superpod.units import BITS_PER_BYTE

Route = tuple[tuple[int, ...], float]  # (link ids, share of the flow)


@dataclass
class Fabric:
    """The directed-link graph of a system (chips are nodes 0..chips-1)."""

    system: System
    chips: int
    src: list[int] = field(default_factory=list)
    dst: list[int] = field(default_factory=list)
    capacity: list[float] = field(default_factory=list)
    level: list[str] = field(default_factory=list)  # "up" | "out"
    cls: list[str] = field(default_factory=list)  # link class: plane, mesh, dim<k>, nic, leaf
    index: dict[tuple[int, int], int] = field(default_factory=dict)
    nodes: int = 0
    leaf_of: dict[int, int] = field(default_factory=dict)
    planes: dict[int, list[int]] = field(default_factory=dict)  # domain -> plane switches
    core: int = -1
    failed: set[int] = field(default_factory=set)

    def add(self, u: int, v: int, cap: float, level: str, cls: str = "") -> None:
        """Add the link u -> v and v -> u (parallel links add capacity)."""
        for a, b in ((u, v), (v, u)):
            if (a, b) in self.index:
                self.capacity[self.index[(a, b)]] += cap
                continue
            self.index[(a, b)] = len(self.src)
            self.src.append(a)
            self.dst.append(b)
            self.capacity.append(cap)
            self.level.append(level)
            self.cls.append(cls or level)

    def new_node(self) -> int:
        self.nodes += 1
        return self.nodes - 1

    def link(self, u: int, v: int) -> int:
        return self.index[(u, v)]

    @property
    def capacity_bytes_per_s(self) -> np.ndarray:
        cap = np.array(self.capacity, dtype=float)
        if self.failed:
            cap[list(self.failed)] = 0.0
        return cap


def _coords(i: int, dims: list[int]) -> list[int]:
    out = []
    for d in dims:
        out.append(i % d)
        i //= d
    return out


def _index(c: list[int], dims: list[int]) -> int:
    i, mul = 0, 1
    for x, d in zip(c, dims, strict=True):
        i += x * mul
        mul *= d
    return i


def _build_domain(f: Fabric, first: int, size: int) -> None:
    su, b = f.system.spec.scale_up, f.system.scale_up_bandwidth_per_chip_bytes_per_s
    if su.kind == "none" or size < 2:
        return
    if su.kind == "switched":
        planes = [f.new_node() for _ in range(su.planes)]
        f.planes[first // su.domain_chips] = planes
        for c in range(first, first + size):
            for p in planes:
                f.add(c, p, b / su.planes, "up", "plane")
    elif su.kind == "full_mesh":
        for a, c in itertools.combinations(range(first, first + size), 2):
            f.add(a, c, b / (size - 1), "up", "mesh")
    elif su.kind == "nd_full_mesh":
        dims = _domain_dims(f.system, size)
        per = b / sum(d - 1 for d in dims)
        for i in range(size):
            ci = _coords(i, dims)
            for k, d in enumerate(dims):
                for x in range(ci[k] + 1, d):
                    cj = list(ci)
                    cj[k] = x
                    f.add(first + i, first + _index(cj, dims), per, "up", f"dim{k}")
    else:  # torus
        dims = _domain_dims(f.system, size)
        active = [d for d in dims if d > 1]
        per = b / (2 * len(active)) if active else 0.0
        for i in range(size):
            ci = _coords(i, dims)
            for k, d in enumerate(dims):
                if d > 1:
                    cj = list(ci)
                    cj[k] = (ci[k] + 1) % d
                    f.add(first + i, first + _index(cj, dims), per, "up", f"dim{k}")


def _build_scale_out(f: Fabric) -> None:
    s = f.system
    nic = s.nic_bandwidth_bits_per_s / BITS_PER_BYTE
    if nic <= 0 or s.spec.scale_out.kind == "none" or not s.scale_out_fabric.endpoints:
        return
    node_chips = s.spec.node.chips
    per_leaf = leaf_down_ports(s.scale_out_fabric.radix, s.spec.scale_out.oversubscription)
    if s.scale_out_fabric.tiers == 1:
        per_leaf = f.chips
    leaves: dict[tuple[int, int], int] = {}
    rail_optimized = s.spec.scale_out.rail_optimized and s.scale_out_fabric.tiers > 1
    for c in range(f.chips):
        # rail-optimised: a leaf serves one rail (local GPU index) of per_leaf nodes
        key = ((c % node_chips, (c // node_chips) // per_leaf) if rail_optimized
               else (0, c // per_leaf))
        if key not in leaves:
            leaves[key] = f.new_node()
        f.leaf_of[c] = leaves[key]
        f.add(c, leaves[key], nic, "out", "nic")
    if len(leaves) > 1:
        f.core = f.new_node()
        for leaf in leaves.values():
            down = sum(1 for c in f.leaf_of if f.leaf_of[c] == leaf) * nic
            f.add(leaf, f.core, down / s.spec.scale_out.oversubscription, "out", "leaf")


def build_fabric(system: System, fail_links: Iterable[int] = ()) -> Fabric:
    """The graph of ``system``: every scale-up domain, then the scale-out fat tree."""
    n, d = system.counts.chips, system.spec.scale_up.domain_chips
    f = Fabric(system=system, chips=n, nodes=n)
    for first in range(0, n, d):
        _build_domain(f, first, min(d, n - first))
    _build_scale_out(f)
    f.failed = {int(i) for i in fail_links}
    bad = [i for i in f.failed if not 0 <= i < len(f.src)]
    if bad:
        raise ValueError(f"link ids out of range 0..{len(f.src) - 1}: {bad[:5]}")
    return f


# ----------------------------------------------------------------------------- routing


def _domain_routes(f: Fabric, a: int, b: int) -> list[Route]:
    su, d = f.system.spec.scale_up, f.system.spec.scale_up.domain_chips
    first = (a // d) * d
    size = min(d, f.chips - first)
    if su.kind == "switched":
        planes = f.planes[a // d]
        return [((f.link(a, p), f.link(p, b)), 1 / len(planes)) for p in planes]
    if su.kind == "full_mesh":
        return [((f.link(a, b),), 1.0)]
    dims = _domain_dims(f.system, size)
    ca, cb = _coords(a - first, dims), _coords(b - first, dims)
    if su.kind == "nd_full_mesh":
        out = []
        for r in range(len(dims)):
            cur, hops = list(ca), []
            for k in [*range(r, len(dims)), *range(r)]:
                if cur[k] == cb[k]:
                    continue
                nxt = list(cur)
                nxt[k] = cb[k]
                hops.append(f.link(first + _index(cur, dims), first + _index(nxt, dims)))
                cur = nxt
            out.append((tuple(hops), 1 / len(dims)))
        return out
    return _torus_routes(f, first, dims, ca, cb)


def _torus_routes(f: Fabric, first: int, dims: list[int], ca: list[int], cb: list[int]
                  ) -> list[Route]:
    """Dimension-order minimal routes; a tie (exactly half way round) splits both ways."""
    choices: list[list[int]] = []
    for k, d in enumerate(dims):
        delta = (cb[k] - ca[k]) % d
        if delta == 0:
            choices.append([0])
        elif 2 * delta == d:
            choices.append([1, -1])
        else:
            choices.append([1 if 2 * delta < d else -1])
    combos = list(itertools.product(*choices))
    out = []
    for signs in combos:
        cur, hops = list(ca), []
        for k, sgn in enumerate(signs):
            while sgn and cur[k] != cb[k]:
                nxt = list(cur)
                nxt[k] = (cur[k] + sgn) % dims[k]
                hops.append(f.link(first + _index(cur, dims), first + _index(nxt, dims)))
                cur = nxt
        out.append((tuple(hops), 1 / len(combos)))
    return out


def _scale_out_route(f: Fabric, a: int, b: int) -> list[Route]:
    la, lb = f.leaf_of[a], f.leaf_of[b]
    if la == lb:
        return [((f.link(a, la), f.link(la, b)), 1.0)]
    return [((f.link(a, la), f.link(la, f.core), f.link(f.core, lb), f.link(lb, b)), 1.0)]


def routes(f: Fabric, a: int, b: int) -> list[Route]:
    """The routes of a flow a -> b with their shares, avoiding failed links."""
    if a == b:
        return []
    d = f.system.spec.scale_up.domain_chips
    same = a // d == b // d and f.system.spec.scale_up.kind != "none"
    rs = _domain_routes(f, a, b) if same else _scale_out_route(f, a, b)
    if not f.failed:
        return rs
    alive = [r for r in rs if not f.failed.intersection(r[0])]
    if alive:
        total = sum(w for _, w in alive)
        return [(p, w / total) for p, w in alive]
    return [(_detour(f, a, b), 1.0)]


def _detour(f: Fabric, a: int, b: int) -> tuple[int, ...]:
    """Breadth-first shortest path over the surviving links."""
    adj: dict[int, list[int]] = {}
    for i, (u, v) in enumerate(zip(f.src, f.dst, strict=True)):
        if i not in f.failed:
            adj.setdefault(u, []).append(v)
    prev: dict[int, int] = {a: a}
    queue = deque([a])
    while queue and b not in prev:
        u = queue.popleft()
        for v in adj.get(u, []):
            if v not in prev and (v == b or v >= f.chips or f.level[f.link(u, v)] == "up"):
                prev[v] = u
                queue.append(v)
    if b not in prev:
        raise SpecError(f"infeasible: chips {a} and {b} are disconnected by the failed links",
                        field="--fail-links")
    path, v = [], b
    while v != a:
        path.append(f.link(prev[v], v))
        v = prev[v]
    return tuple(reversed(path))


def diameter_hops(system: System) -> int:
    """Largest number of links on a route between two chips."""
    su = system.spec.scale_up
    up = {"switched": 2, "full_mesh": 1, "none": 0}.get(su.kind)
    if up is None:
        dims = _domain_dims(system, system.counts.chips_per_domain)
        up = (sum(1 for x in dims if x > 1) if su.kind == "nd_full_mesh"
              else sum(x // 2 for x in dims))
    if system.counts.domains > 1:
        return max(up, 4 if system.scale_out_fabric.tiers > 1 else 2)
    return up


def failed_sample(f: Fabric, count: int, seed: int = 0, level: str = "up") -> list[int]:
    """``count`` distinct physical links of ``level`` picked reproducibly (both directions)."""
    pairs = sorted({(min(u, v), max(u, v)) for (u, v), i in f.index.items()
                    if f.level[i] == level})
    if count > len(pairs):
        raise SpecError("more failed links than the fabric has", field="--fail-links",
                        value=count, allowed=f"0..{len(pairs)} {level} links")
    rng = np.random.default_rng(seed)
    pick: list[int] = list(rng.choice(len(pairs), size=count, replace=False)) if count else []
    out: list[int] = []
    for k in pick:
        u, v = pairs[int(k)]
        out += [f.link(u, v), f.link(v, u)]
    return out


def physical_links(f: Fabric) -> dict[str, int]:
    """Undirected links by level."""
    out = {"up": 0, "out": 0}
    for (u, v), i in f.index.items():
        if u < v:
            out[f.level[i]] += 1
    return out



# ----------------------------------------------------------------------------- vectorised routes


@dataclass(frozen=True)
class RouteTable:
    """Routes of many flows in CSR form (the layout ``flowsim.FlowSet`` takes)."""

    sub_flow: np.ndarray
    sub_weight: np.ndarray
    sub_indptr: np.ndarray
    sub_links: np.ndarray


def _lookup(f: Fabric, pairs: Iterable[tuple[int, int]]) -> np.ndarray:
    return np.array([f.index[p] for p in pairs], dtype=np.int64)


def _plane_links(f: Fabric) -> tuple[np.ndarray, np.ndarray]:
    """(chips x planes) ids of chip -> plane and plane -> chip links of switched domains."""
    d = f.system.spec.scale_up.domain_chips
    planes = f.system.spec.scale_up.planes
    up = np.empty((f.chips, planes), dtype=np.int64)
    down = np.empty((f.chips, planes), dtype=np.int64)
    for c in range(f.chips):
        ps = f.planes.get(c // d)
        if ps is None:  # a domain of one chip has no planes
            up[c], down[c] = -1, -1
            continue
        up[c] = _lookup(f, ((c, p) for p in ps))
        down[c] = _lookup(f, ((p, c) for p in ps))
    return up, down


def _nic_links(f: Fabric) -> tuple[np.ndarray, ...]:
    """Per chip: chip -> leaf, leaf -> chip, leaf -> core, core -> leaf link ids, leaf id."""
    c = range(f.chips)
    leaf = np.array([f.leaf_of[i] for i in c], dtype=np.int64)
    up = _lookup(f, ((i, f.leaf_of[i]) for i in c))
    down = _lookup(f, ((f.leaf_of[i], i) for i in c))
    if f.core < 0:
        return up, down, up * 0 - 1, up * 0 - 1, leaf
    lu = _lookup(f, ((f.leaf_of[i], f.core) for i in c))
    ld = _lookup(f, ((f.core, f.leaf_of[i]) for i in c))
    return up, down, lu, ld, leaf


def _pack(blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_flows: int) -> RouteTable:
    """Merge blocks of (flow ids, weights, links matrix [-1 = no link]) into CSR."""
    flows = np.concatenate([b[0] for b in blocks]) if blocks else np.zeros(0, np.int64)
    weights = np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0)
    width = max((b[2].shape[1] for b in blocks), default=0)
    mats = [np.pad(b[2], ((0, 0), (0, width - b[2].shape[1])), constant_values=-1)
            for b in blocks]
    links = np.concatenate(mats) if mats else np.zeros((0, 0), np.int64)
    order = np.argsort(flows, kind="stable")
    flows, weights, links = flows[order], weights[order], links[order]
    valid = links >= 0
    indptr = np.concatenate(([0], np.cumsum(valid.sum(axis=1))))
    del n_flows
    return RouteTable(flows, weights, indptr.astype(np.int64), links[valid].astype(np.int64))


def route_table(f: Fabric, a: np.ndarray, b: np.ndarray) -> RouteTable:
    """Routes of flows a[i] -> b[i] (chip ids): switched domains and the fat tree in bulk,
    other topologies and any failed link through ``routes``."""
    d = f.system.spec.scale_up.domain_chips
    kind = f.system.spec.scale_up.kind
    ids = np.arange(len(a), dtype=np.int64)
    same_chip = a == b
    same_dom = (a // d == b // d) & (kind != "none") & ~same_chip
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if same_chip.any():
        blocks.append((ids[same_chip], np.ones(same_chip.sum()),
                       np.full((same_chip.sum(), 1), -1, np.int64)))
    bulk_up = same_dom & (kind == "switched") & (not f.failed)
    if bulk_up.any():
        up, down = _plane_links(f)
        p = up.shape[1]
        sel = ids[bulk_up]
        mat = np.stack([up[a[sel]], down[b[sel]]], axis=2).reshape(-1, 2)
        blocks.append((np.repeat(sel, p), np.full(sel.size * p, 1.0 / p), mat))
    bulk_out = ~same_dom & ~same_chip & (not f.failed) & bool(f.leaf_of)
    if bulk_out.any():
        nup, ndown, lup, ldown, leaf = _nic_links(f)
        sel = ids[bulk_out]
        sa, sb = a[sel], b[sel]
        cross = leaf[sa] != leaf[sb]
        mat = np.stack([nup[sa], np.where(cross, lup[sa], -1), np.where(cross, ldown[sb], -1),
                        ndown[sb]], axis=1)
        blocks.append((sel, np.ones(sel.size), mat))
    bulk_mesh = same_dom & (kind == "nd_full_mesh") & (not f.failed)
    if bulk_mesh.any():
        blocks.append(_mesh_block(f, a, b, ids[bulk_mesh]))
    rest = ids[~(same_chip | bulk_up | bulk_out | bulk_mesh)]
    if rest.size:
        blocks.append(_python_block(f, a, b, rest))
    return _pack(blocks, len(a))


def _mesh_block(f: Fabric, a: np.ndarray, b: np.ndarray, sel: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nD-full-mesh routes in bulk: one subflow per rotation of the dimension order."""
    d = f.system.spec.scale_up.domain_chips
    first = (a[sel] // d) * d
    size = min(d, f.chips - int(first.min())) if sel.size else d
    dims = _domain_dims(f.system, size)
    strides = np.cumprod([1, *dims[:-1]])
    ca = ((a[sel] - first)[:, None] // strides) % dims
    cb = ((b[sel] - first)[:, None] // strides) % dims
    table = _mesh_link_table(f, dims)
    nd = len(dims)
    mats = []
    for r in range(nd):
        cur = ca.copy()
        hops = np.full((sel.size, nd), -1, np.int64)
        for j, k in enumerate([*range(r, nd), *range(r)]):
            move = cur[:, k] != cb[:, k]
            local = (cur * strides).sum(axis=1)
            hops[move, j] = table[first[move] + local[move], k, cb[move, k]]
            cur[move, k] = cb[move, k]
        mats.append(hops)
    mat = np.stack(mats, axis=1).reshape(-1, nd)
    return np.repeat(sel, nd), np.full(sel.size * nd, 1.0 / nd), mat


def _mesh_link_table(f: Fabric, dims: list[int]) -> np.ndarray:
    """table[chip, k, x]: link from chip to the chip whose k-th coordinate is x (-1: none)."""
    strides = [int(s) for s in np.cumprod([1, *dims[:-1]])]
    d = f.system.spec.scale_up.domain_chips
    table = np.full((f.chips, len(dims), max(dims)), -1, np.int64)
    for c in range(f.chips):
        first = (c // d) * d
        local = c - first
        for k, size in enumerate(dims):
            x0 = (local // strides[k]) % size
            for x in range(size):
                if x != x0:
                    table[c, k, x] = f.index[(c, c + (x - x0) * strides[k])]
    return table


def _python_block(f: Fabric, a: np.ndarray, b: np.ndarray, sel: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows: list[tuple[int, float, tuple[int, ...]]] = []
    for i in sel.tolist():
        for links, w in routes(f, int(a[i]), int(b[i])):
            rows.append((i, w, links))
    width = max((len(r[2]) for r in rows), default=1)
    mat = np.full((len(rows), width), -1, np.int64)
    for k, (_, _, links) in enumerate(rows):
        mat[k, :len(links)] = links
    return (np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows]), mat)
