"""Topologies as graphs: the links of a system and the routes flows take over them.

Building blocks, composed per level (one scale-up domain at a time, then the scale-out):

* ``switched``      single-hop crossbar in ``planes`` independent planes (NVSwitch, the UB
                    switch planes of CloudMatrix 384): chip -> plane switch -> chip, traffic
                    split evenly over the planes;
* ``full_mesh``     a direct link between every pair of chips of the domain;
* ``nd_full_mesh``  UB-Mesh (arXiv 2503.20377): chips on a grid ``dims``, fully meshed along
                    each dimension; routes take every order of the differing dimensions
                    (all-path routing);
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

from superpod.hardware.system import System
from superpod.network.clos import leaf_down_ports
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
    index: dict[tuple[int, int], int] = field(default_factory=dict)
    nodes: int = 0
    leaf_of: dict[int, int] = field(default_factory=dict)
    planes: dict[int, list[int]] = field(default_factory=dict)  # domain -> plane switches
    core: int = -1
    failed: set[int] = field(default_factory=set)

    def add(self, u: int, v: int, cap: float, level: str) -> None:
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


def _domain_dims(system: System, size: int) -> list[int]:
    """Grid dims of a (possibly partial) domain: the leading dims of the spec that divide
    ``size``, then what remains as one more dimension (a line when nothing divides)."""
    dims, prod = [], 1
    for d in system.spec.scale_up.dims:
        if size % (prod * d):
            break
        dims.append(d)
        prod *= d
    if size // prod > 1:
        dims.append(size // prod)
    return dims or [size]


def _build_domain(f: Fabric, first: int, size: int) -> None:
    su, b = f.system.spec.scale_up, f.system.scale_up_bandwidth_per_chip_bytes_per_s
    if su.kind == "none" or size < 2:
        return
    if su.kind == "switched":
        planes = [f.new_node() for _ in range(su.planes)]
        f.planes[first // su.domain_chips] = planes
        for c in range(first, first + size):
            for p in planes:
                f.add(c, p, b / su.planes, "up")
    elif su.kind == "full_mesh":
        for a, c in itertools.combinations(range(first, first + size), 2):
            f.add(a, c, b / (size - 1), "up")
    elif su.kind == "nd_full_mesh":
        dims = _domain_dims(f.system, size)
        per = b / sum(d - 1 for d in dims)
        for i in range(size):
            ci = _coords(i, dims)
            for k, d in enumerate(dims):
                for x in range(ci[k] + 1, d):
                    cj = list(ci)
                    cj[k] = x
                    f.add(first + i, first + _index(cj, dims), per, "up")
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
                    f.add(first + i, first + _index(cj, dims), per, "up")


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
        f.add(c, leaves[key], nic, "out")
    if len(leaves) > 1:
        f.core = f.new_node()
        for leaf in leaves.values():
            down = sum(1 for c in f.leaf_of if f.leaf_of[c] == leaf) * nic
            f.add(leaf, f.core, down / s.spec.scale_out.oversubscription, "out")


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
        diff = [k for k in range(len(dims)) if ca[k] != cb[k]]
        orders = list(itertools.permutations(diff))
        out = []
        for order in orders:
            cur, hops = list(ca), []
            for k in order:
                nxt = list(cur)
                nxt[k] = cb[k]
                hops.append(f.link(first + _index(cur, dims), first + _index(nxt, dims)))
                cur = nxt
            out.append((tuple(hops), 1 / len(orders)))
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
        raise ValueError(f"chips {a} and {b} are disconnected by the failed links")
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
        raise ValueError(f"only {len(pairs)} {level} links to fail")
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

