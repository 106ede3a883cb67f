"""Folded-Clos (fat-tree) sizing: tiers, switches and links for E endpoint ports.

Model (Al-Fares et al., SIGCOMM 2008; the leaf-spine form used by NVIDIA's DGX SuperPOD
reference architecture): switches of radix ``k``. A leaf gives ``d = k * o / (1 + o)`` ports
to endpoints and the rest upward, where ``o`` is the leaf's oversubscription (down:up). Tiers
above the leaf are non-blocking: a middle switch has ``k/2`` ports down and ``k/2`` up; a
top switch has all ``k`` ports down. The largest fabric with ``t >= 2`` tiers serves

    E_max(t) = d * k * (k/2)**(t-2)        (t = 1: one switch, E_max = k)

endpoints, and a fabric for E endpoints uses the fewest tiers that reach E.
Switch counts: leaves ``ceil(E/d)``, each middle tier ``ceil(U/(k/2))``, top ``ceil(U/k)``,
with ``U = ceil(E/o)`` links between every pair of adjacent tiers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClosFabric:
    """A sized fat tree. ``links_per_boundary[0]`` are endpoint-to-leaf links."""

    endpoints: int
    radix: int
    oversubscription: float
    switches_per_tier: tuple[int, ...]
    links_per_boundary: tuple[int, ...]

    @property
    def tiers(self) -> int:
        return len(self.switches_per_tier)

    @property
    def switches(self) -> int:
        return sum(self.switches_per_tier)

    @property
    def links(self) -> int:
        return sum(self.links_per_boundary)

    @property
    def switch_side_link_ends(self) -> int:
        """Link ends on switches (every link has one; inter-switch links have two)."""
        return 2 * self.links - self.endpoints


def leaf_down_ports(radix: int, oversubscription: float) -> int:
    """Ports a leaf gives to endpoints: ``k * o / (1 + o)``, at least 1."""
    return max(1, math.floor(radix * oversubscription / (1.0 + oversubscription)))


def max_endpoints(radix: int, tiers: int, oversubscription: float = 1.0) -> int:
    """E_max(t): the most endpoints a ``tiers``-tier fabric of radix-``radix`` switches serves."""
    if tiers <= 0:
        return 0
    if tiers == 1:
        return radix
    d = leaf_down_ports(radix, oversubscription)
    return int(d * radix * (radix // 2) ** (tiers - 2))


def size_fat_tree(endpoints: int, radix: int, oversubscription: float = 1.0) -> ClosFabric:
    """Size the smallest fat tree of radix-``radix`` switches for ``endpoints`` ports."""
    if radix < 2:
        raise ValueError("switch radix must be at least 2")
    if endpoints <= 0:
        return ClosFabric(0, radix, oversubscription, (), ())
    if endpoints <= radix:
        return ClosFabric(endpoints, radix, oversubscription, (1,), (endpoints,))
    tiers = 2
    while max_endpoints(radix, tiers, oversubscription) < endpoints:
        tiers += 1
    d = leaf_down_ports(radix, oversubscription)
    up_links = math.ceil(endpoints / oversubscription)
    middle = [math.ceil(up_links / (radix // 2))] * (tiers - 2)
    switches = (math.ceil(endpoints / d), *middle, math.ceil(up_links / radix))
    links = (endpoints, *([up_links] * (tiers - 1)))
    return ClosFabric(endpoints, radix, oversubscription, switches, links)
