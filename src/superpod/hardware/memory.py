"""The memory hierarchy one accelerator sees: its HBM, its peers' HBM, its host's DRAM and,
where the scale-up fabric pools it, every host's DRAM in the supernode.

Tiers (per chip; bandwidths one direction):

* ``hbm``      - the chip's own HBM (``Chip.hbm_*``).
* ``peer_hbm`` - the other chips' HBM in its scale-up domain, over the scale-up fabric
                 (NVLink / UB / ICI load-store or one-sided copies).
* ``host``     - its own host's DRAM over the host link (PCIe on x86 hosts, NVLink-C2C on
                 Grace, UB on CloudMatrix / Atlas).
* ``pool``     - every node's host DRAM in the scale-up domain, over the scale-up fabric; only
                 where the system pools host memory (UnifiedBus: the CloudMatrix384 paper,
                 https://arxiv.org/abs/2506.12708, builds its disaggregated memory pool (EMS)
                 on it).

Each tier has the bytes one chip can address, its fair share when every chip uses the tier
(``share_bytes``), the bandwidth one chip gets when every chip of its domain pulls at once
(``bandwidth_bytes_per_s``, the planning figure) and when it is alone
(``peak_bandwidth_bytes_per_s``), and a fixed latency. Closed forms, with ``c`` chips per
node, ``n`` nodes per domain, link bandwidth ``L`` shared by ``k`` chips, DRAM bandwidth
``D`` and CPU-side fabric bandwidth ``H`` per node (``H = D`` when not described), scale-up
bandwidth ``S`` per chip:

    host: concurrent = min(L / k, H / c, D / c);  alone = min(L, H, D)
    pool: concurrent = min(S, H / c, D / c);      alone = min(S, n H, n D)

A transfer of ``b`` bytes from a tier takes ``latency + b / bandwidth``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from superpod.hardware.specs import Chip, HostMemory, SystemSpec

TierName = Literal["hbm", "peer_hbm", "host", "pool"]
TIER_NAMES: tuple[TierName, ...] = ("hbm", "peer_hbm", "host", "pool")


@dataclass(frozen=True)
class Tier:
    """One level of memory as one chip sees it."""

    name: TierName
    what: str
    capacity_bytes: float  # what one chip can address in this tier
    share_bytes: float  # its share when every chip of the domain uses the tier equally
    bandwidth_bytes_per_s: float  # per chip, one direction, every chip pulling at once
    peak_bandwidth_bytes_per_s: float  # per chip, one direction, this chip alone
    latency_s: float
    sources: tuple[str, ...] = field(default=())
    evidence: tuple[str, ...] = field(default=())
    via: str = "local"  #: the path: local, scale-up, or the host link (pcie, nvlink_c2c, ub)

    def transfer_time_s(self, nbytes: float, *, alone: bool = False) -> float:
        """Seconds to move ``nbytes`` from this tier to the chip: latency + bytes / bandwidth.

        The own-HBM tier costs nothing to "load" from (the data is already where it is used).
        """
        if nbytes < 0 or not math.isfinite(nbytes):
            raise ValueError("bytes must be finite and not negative")
        if self.name == "hbm" or nbytes == 0:
            return 0.0
        bw = self.peak_bandwidth_bytes_per_s if alone else self.bandwidth_bytes_per_s
        return self.latency_s + nbytes / bw


@dataclass(frozen=True)
class MemoryHierarchy:
    """The tiers one chip of a system reaches, nearest first."""

    tiers: tuple[Tier, ...]
    host_memory_per_node_bytes: float  # 0 when the system describes no host memory
    nodes_per_domain: int
    pooled: bool

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(t.name == name for t in self.tiers)

    @property
    def reachable_bytes_per_chip(self) -> float:
        """Distinct memory one chip can address: its HBM, its peers' HBM, and its host's DRAM
        (or, pooled, every host's DRAM in the domain, its own host's included)."""
        total = 0.0
        for t in self.tiers:
            if t.name == "host" and self.pooled:
                continue  # the pool tier already holds the local host's DRAM
            total += t.capacity_bytes
        return total

    @property
    def share_bytes_per_chip(self) -> float:
        """Memory per chip when every chip takes an equal part: HBM plus its host DRAM share."""
        hbm = self.tier("hbm").share_bytes
        return hbm + (self.tier("host").share_bytes if self.has("host") else 0.0)


def _host_bandwidths(hm: HostMemory, chips_per_node: int) -> tuple[float, float, float]:
    """(concurrent via the host link, alone via the host link, node-side limit per chip)."""
    link = hm.link.bandwidth_unidir.value_bytes_per_s
    dram = hm.bandwidth.value_bytes_per_s
    cpu_side = (hm.cpu_side_bandwidth_unidir.value_bytes_per_s
                if hm.cpu_side_bandwidth_unidir else dram)
    node_side_per_chip = min(cpu_side, dram) / chips_per_node
    concurrent = min(link / hm.link.shared_by, node_side_per_chip)
    alone = min(link, cpu_side, dram)
    return concurrent, alone, node_side_per_chip


def memory_hierarchy(spec: SystemSpec, chip: Chip, *, chips_per_domain: int,
                     scale_up_bytes_per_s: float, scale_up_latency_s: float) -> MemoryHierarchy:
    """The tiers one chip of ``spec`` reaches in a domain of ``chips_per_domain`` chips.

    ``scale_up_bytes_per_s`` is the chip's scale-up bandwidth to any chip of its domain (one
    direction, ``System.scale_up_bandwidth_per_chip_bytes_per_s``).
    """
    node = spec.node
    tiers: list[Tier] = [Tier(
        name="hbm", what=f"own HBM ({chip.id})", capacity_bytes=chip.hbm_bytes,
        share_bytes=chip.hbm_bytes, bandwidth_bytes_per_s=chip.hbm_bandwidth_bytes_per_s,
        peak_bandwidth_bytes_per_s=chip.hbm_bandwidth_bytes_per_s, latency_s=0.0,
        sources=(chip.source,), evidence=(chip.evidence,))]
    scale_up = spec.scale_up.kind != "none" and chips_per_domain > 1 and scale_up_bytes_per_s > 0
    if scale_up:
        tiers.append(Tier(
            name="peer_hbm", what=f"peers' HBM over {spec.scale_up.protocol}",
            capacity_bytes=(chips_per_domain - 1) * chip.hbm_bytes, share_bytes=0.0,
            bandwidth_bytes_per_s=scale_up_bytes_per_s,
            peak_bandwidth_bytes_per_s=scale_up_bytes_per_s, latency_s=scale_up_latency_s,
            sources=(spec.source,), evidence=(spec.evidence,), via="scale-up"))
    hm = node.host_memory
    nodes = max(1, math.ceil(chips_per_domain / node.chips))
    if hm is None:
        return MemoryHierarchy(tuple(tiers), 0.0, nodes, False)
    cap = hm.capacity.value_bytes
    cpus = node.cpus.count if node.cpus else 1.0
    local_cap = cap if hm.local_scope == "node" else cap / max(cpus, 1.0)
    concurrent, alone, node_side = _host_bandwidths(hm, node.chips)
    figs = (hm.capacity, hm.bandwidth, hm.link.bandwidth_unidir, hm.link.latency)
    srcs = tuple(dict.fromkeys(f.source for f in figs))
    evid = tuple(dict.fromkeys(f.evidence for f in figs))
    tiers.append(Tier(
        name="host", what=f"own host DRAM over {hm.link.protocol}", capacity_bytes=local_cap,
        share_bytes=cap / node.chips, bandwidth_bytes_per_s=concurrent,
        peak_bandwidth_bytes_per_s=alone, latency_s=hm.link.latency.value_s,
        sources=srcs, evidence=evid, via=hm.link.kind))
    pooled = hm.pool is not None and scale_up
    if pooled and hm.pool is not None:
        dram = hm.bandwidth.value_bytes_per_s
        cpu_side = (hm.cpu_side_bandwidth_unidir.value_bytes_per_s
                    if hm.cpu_side_bandwidth_unidir else dram)
        tiers.append(Tier(
            name="pool", what=f"every host's DRAM in the domain over {spec.scale_up.protocol}",
            capacity_bytes=nodes * cap, share_bytes=cap / node.chips,
            bandwidth_bytes_per_s=min(scale_up_bytes_per_s, node_side),
            peak_bandwidth_bytes_per_s=min(scale_up_bytes_per_s, nodes * cpu_side,
                                           nodes * dram),
            latency_s=hm.link.latency.value_s + scale_up_latency_s,
            sources=(*srcs, hm.pool.source), evidence=(*evid, hm.pool.evidence),
            via="scale-up"))
    return MemoryHierarchy(tuple(tiers), cap, nodes, pooled)


def hierarchy_to_dict(h: MemoryHierarchy) -> dict[str, Any]:
    """The ``memory`` block of ``show --json`` (SI units, per chip, one direction)."""
    return {
        "host_memory_per_node_bytes": h.host_memory_per_node_bytes,
        "pooled": h.pooled,
        "reachable_bytes_per_chip": h.reachable_bytes_per_chip,
        "share_bytes_per_chip": h.share_bytes_per_chip,
        "tiers": [{
            "name": t.name, "what": t.what, "capacity_bytes": t.capacity_bytes,
            "share_bytes": t.share_bytes, "bandwidth_bytes_per_s": t.bandwidth_bytes_per_s,
            "peak_bandwidth_bytes_per_s": t.peak_bandwidth_bytes_per_s,
            "latency_s": t.latency_s, "via": t.via, "sources": list(t.sources),
            "evidence": list(t.evidence)} for t in h.tiers],
    }
