"""Topology facts of a system: structure, diameter, bisection, links, switches, optics,
and what the fabric costs in power and money.

Counts come from the same system model as ``show`` (switches, optical modules), links from
the topology graph, so the two views agree by construction.
"""

from __future__ import annotations

import math
from typing import Any

from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System
from superpod.network.topology import build_fabric, diameter_hops, physical_links


def _fabric_capex_usd(system: System, cat: Catalog) -> tuple[float, list[str]]:
    """Switches + optics + NICs at catalog prices; parts without a price are listed."""
    spec, c = system.spec, system.counts
    total, unpriced = 0.0, []
    items: list[tuple[str, float | None, float]] = []
    for tier, n in zip(spec.scale_up.switches, c.scale_up_switches_per_tier, strict=True):
        items.append((tier.part, cat.switches[tier.part].price_usd, n))
    if spec.scale_up.optics:
        t = cat.transceivers[spec.scale_up.optics.part]
        items.append((t.id, t.price_usd, c.scale_up_optical_modules))
    so = spec.scale_out
    if so.switch:
        items.append((so.switch, cat.switches[so.switch].price_usd, c.scale_out_switches))
    if so.transceiver:
        nic_t = cat.transceivers[so.nic_transceiver or so.transceiver]
        items.append((nic_t.id, nic_t.price_usd, c.scale_out_nic_modules))
        sw_t = cat.transceivers[so.transceiver]
        items.append((sw_t.id, sw_t.price_usd, c.scale_out_switch_modules))
    for nic in spec.node.nics:
        items.append((nic.part, cat.nics[nic.part].price_usd, nic.count * c.nodes))
    for part, price, n in items:
        if n <= 0:
            continue
        if price is None:
            unpriced.append(part)
        else:
            total += price * n
    return total, sorted(set(unpriced))


GRAPH_LIMIT_CHIPS = 20_000


def link_counts(system: System) -> dict[str, int]:
    """Physical (undirected) links by level, counted from the structure (no graph)."""
    from superpod.network.domains import domain_dims as _domain_dims

    su, c = system.spec.scale_up, system.counts
    up = 0
    for first in range(0, c.chips, su.domain_chips):
        m = min(su.domain_chips, c.chips - first)
        if su.kind == "none" or m < 2:
            continue
        if su.kind == "switched":
            up += m * su.planes
        elif su.kind == "full_mesh":
            up += m * (m - 1) // 2
        elif su.kind == "nd_full_mesh":
            up += m * sum(d - 1 for d in _domain_dims(system, m)) // 2
        else:
            up += sum(m if d > 2 else m // 2 for d in _domain_dims(system, m) if d > 1)
    fabric = system.scale_out_fabric
    out = fabric.links if fabric.endpoints else 0
    return {"up": up, "out": out}


def topology_facts(system: System, cat: Catalog, with_graph: bool = True) -> dict[str, Any]:
    """The ``topology --json`` object."""
    spec, c = system.spec, system.counts
    power = system.power_breakdown_w
    capex, unpriced = _fabric_capex_usd(system, cat)
    out: dict[str, Any] = {
        "id": spec.id, "chips": c.chips,
        "scale_up": {"kind": spec.scale_up.kind, "protocol": spec.scale_up.protocol,
                     "domain_chips": c.chips_per_domain, "domains": c.domains,
                     "planes": spec.scale_up.planes, "dims": list(spec.scale_up.dims),
                     "per_chip_bytes_per_s": system.scale_up_bandwidth_per_chip_bytes_per_s,
                     "latency_s": spec.scale_up.latency_s, "medium": spec.scale_up.medium},
        "scale_out": {"kind": spec.scale_out.kind, "protocol": spec.scale_out.protocol,
                      "tiers": system.scale_out_fabric.tiers,
                      "switches_per_tier": list(system.scale_out_fabric.switches_per_tier),
                      "oversubscription": spec.scale_out.oversubscription,
                      "nic_bits_per_s": system.nic_bandwidth_bits_per_s},
        "diameter_hops": diameter_hops(system),
        "bisection_bandwidth_bytes_per_s": system.bisection_bandwidth_bytes_per_s,
        "switches": {"scale_up": math.ceil(c.scale_up_switches),
                     "scale_out": c.scale_out_switches},
        "optical_modules": system.optical_modules,
        "fabric_power_w": power["nics"] + power["switches_scale_up"]
        + power["switches_scale_out"] + power["optics_scale_up"] + power["optics_scale_out"],
        "fabric_capex_usd": capex, "unpriced_parts": unpriced,
    }
    out["links"] = link_counts(system)
    if with_graph and c.chips <= GRAPH_LIMIT_CHIPS:
        f = build_fabric(system)
        out["graph_links"] = physical_links(f)
        out["graph_nodes"] = f.nodes
    return out
