"""The system model: every aggregate of a system, computed from its parts.

``build_system(spec, catalog, chips=N)`` replicates the building block (node) to N chips,
groups nodes into scale-up domains, sizes the scale-out fat tree for all NIC ports (growing
its tiers as needed), and counts CPUs, NICs, switches, optical modules and cabinets. Power is
the sum of the parts at full load (IT power) plus a per-node overhead fraction for fans,
power conversion, DRAM, storage and management; facility power is IT power x PUE.

Conventions: bandwidths are one direction (bidirectional vendor figures are twice these);
bytes are decimal unless a field says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from superpod.hardware.catalog import Catalog
from superpod.hardware.clos import ClosFabric, size_fat_tree
from superpod.hardware.memory import MemoryHierarchy, hierarchy_to_dict, memory_hierarchy
from superpod.hardware.specs import Chip, SystemSpec, Transceiver
from superpod.units import BITS_PER_BYTE

POWER_GROUPS = ("accelerators", "cpus", "nics", "switches", "optics", "other")


@dataclass(frozen=True)
class Counts:
    """Physical counts for a system of ``chips`` chips."""

    chips: int
    nodes: int
    domains: int
    chips_per_domain: int
    cpus: float
    nics: float
    scale_up_switches_per_tier: tuple[float, ...]
    scale_out_switches: int
    scale_up_optical_modules: float
    scale_out_nic_modules: float
    scale_out_switch_modules: float
    compute_cabinets: int
    network_cabinets: int
    scale_out_cabinets: int

    @property
    def scale_up_switches(self) -> float:
        return sum(self.scale_up_switches_per_tier)

    @property
    def scale_out_optical_modules(self) -> float:
        return self.scale_out_nic_modules + self.scale_out_switch_modules


@dataclass(frozen=True)
class System:
    """A system of ``counts.chips`` chips built from ``spec``; all totals are properties."""

    spec: SystemSpec
    chip: Chip
    counts: Counts
    scale_out_fabric: ClosFabric
    power_breakdown_w: dict[str, float]
    scale_up_fabric_bytes_per_s: float  # per chip, one direction, leaving its node
    warnings: tuple[str, ...] = field(default=())  # where the prediction extrapolates
    assumptions: tuple[str, ...] = field(default=())  # unsourced figures it rests on

    # ------------------------------------------------------------------ compute and memory
    @property
    def peak_flop_per_s(self) -> dict[str, float]:
        n = self.counts.chips
        return {p: n * v for p, v in self.chip.peak_flop_per_s.items()}

    @property
    def hbm_bytes(self) -> float:
        return self.counts.chips * self.chip.hbm_bytes

    @property
    def hbm_bandwidth_bytes_per_s(self) -> float:
        return self.counts.chips * self.chip.hbm_bandwidth_bytes_per_s

    @property
    def host_memory_bytes(self) -> float:
        """CPU DRAM of all nodes (0 where the system describes none)."""
        hm = self.spec.node.host_memory
        return 0.0 if hm is None else self.counts.nodes * hm.capacity.value_bytes

    @property
    def host_memory_bandwidth_bytes_per_s(self) -> float:
        hm = self.spec.node.host_memory
        return 0.0 if hm is None else self.counts.nodes * hm.bandwidth.value_bytes_per_s

    @property
    def memory(self) -> MemoryHierarchy:
        """The tiers one chip reaches (``superpod.hardware.memory``)."""
        return memory_hierarchy(self.spec, self.chip,
                                chips_per_domain=self.counts.chips_per_domain,
                                scale_up_bytes_per_s=self.scale_up_bandwidth_per_chip_bytes_per_s,
                                scale_up_latency_s=self.spec.scale_up.latency_s)

    # ------------------------------------------------------------------ interconnect
    @property
    def scale_up_injection_bytes_per_s(self) -> float:
        """Per chip, one direction: what the chip's scale-up ports can push."""
        su = self.spec.scale_up
        if su.kind == "none":
            return 0.0
        return su.bandwidth_unidir_bytes_per_s or self.chip.scale_up_bandwidth_bytes_per_s

    @property
    def scale_up_bandwidth_per_chip_bytes_per_s(self) -> float:
        """Per chip, one direction, to any chip of its domain (the tighter of chip and fabric)."""
        return min(self.scale_up_injection_bytes_per_s, self.scale_up_fabric_bytes_per_s)

    @property
    def scale_up_bandwidth_bytes_per_s(self) -> float:
        """Aggregate scale-up bandwidth, one direction: chips x per-chip bandwidth."""
        if self.counts.chips_per_domain <= 1:
            return 0.0
        return self.counts.chips * self.scale_up_bandwidth_per_chip_bytes_per_s

    @property
    def nic_bandwidth_bits_per_s(self) -> float:
        so = self.spec.scale_out
        if so.kind == "none":
            return 0.0
        return so.nic_bandwidth_bits_per_s or self.chip.scale_out_bandwidth_bits_per_s

    @property
    def scale_out_bandwidth_bytes_per_s(self) -> float:
        """Aggregate scale-out NIC bandwidth, one direction."""
        return self.counts.chips * self.nic_bandwidth_bits_per_s / BITS_PER_BYTE

    @property
    def scale_up_bisection_bytes_per_s(self) -> float:
        """Bisection bandwidth of one (possibly partial) scale-up domain, one direction."""
        return domain_bisection_bytes_per_s(self.spec, self.counts.chips_per_domain,
                                            self.scale_up_bandwidth_per_chip_bytes_per_s)

    @property
    def bisection_bandwidth_bytes_per_s(self) -> float:
        """System bisection, one direction: the scale-up domain's if there is only one,
        otherwise the scale-out fabric's (halves of the system are whole domains)."""
        if self.counts.domains <= 1:
            return self.scale_up_bisection_bytes_per_s
        return self.scale_out_bandwidth_bytes_per_s / 2 / self.spec.scale_out.oversubscription

    # ------------------------------------------------------------------ power and space
    @property
    def power_w(self) -> float:
        return sum(self.power_breakdown_w.values())

    @property
    def power_groups_w(self) -> dict[str, float]:
        """The breakdown folded into accelerators / cpus / nics / switches / optics / other."""
        out = dict.fromkeys(POWER_GROUPS, 0.0)
        for key, watts in self.power_breakdown_w.items():
            out[key.split("_scale")[0]] += watts
        return out

    @property
    def facility_power_w(self) -> float:
        return self.power_w * self.spec.pue

    @property
    def optical_modules(self) -> int:
        c = self.counts
        return math.ceil(c.scale_up_optical_modules) + math.ceil(c.scale_out_optical_modules)

    @property
    def cabinets(self) -> int:
        """Compute cabinets plus the scale-up fabric's communication cabinets (the footprint
        vendors quote); scale-out network cabinets are counted apart."""
        return self.counts.compute_cabinets + self.counts.network_cabinets

    @property
    def floor_area_m2(self) -> float | None:
        area = self.spec.cabinets.floor_area_per_cabinet_m2
        return None if area is None else area * self.cabinets

    @property
    def extrapolated(self) -> bool:
        return bool(self.warnings)


def domain_bisection_bytes_per_s(spec: SystemSpec, chips: int, per_chip_bytes_per_s: float
                                 ) -> float:
    """Bisection of a scale-up domain of ``chips`` chips, one direction.

    Switched (non-blocking) and full mesh: half the chips each send their full bandwidth
    across. nD full mesh (UB-Mesh): cut the largest dimension d in half; each of the N/d
    lines loses (d/2)^2 links of bandwidth per_chip / sum(d_i - 1). Torus: 2 N / d_max links
    (wrap-around doubles the cut) of per_chip / (2 * dims) each.
    """
    su = spec.scale_up
    if chips <= 1 or su.kind == "none":
        return 0.0
    if su.kind in ("switched", "full_mesh") or chips < su.domain_chips:
        return chips / 2 * per_chip_bytes_per_s
    d_max = max(su.dims)
    if su.kind == "nd_full_mesh":
        link = per_chip_bytes_per_s / sum(d - 1 for d in su.dims)
        return chips / d_max * (d_max // 2) * (d_max - d_max // 2) * link
    link = per_chip_bytes_per_s / (2 * len(su.dims))
    return 2 * chips / d_max * link


def _scale_out_fabric(spec: SystemSpec, cat: Catalog, chips: int, nic_bits_per_s: float
                      ) -> ClosFabric:
    so = spec.scale_out
    if so.kind == "none" or so.switch is None or nic_bits_per_s <= 0:
        return size_fat_tree(0, 2)
    switch = cat.switches[so.switch]
    ports_per_chip = math.ceil(nic_bits_per_s / switch.port_rate_bits_per_s - 1e-9)
    return size_fat_tree(chips * ports_per_chip, switch.ports, so.oversubscription)


def _per_domain(count: float, chips: int, domain_chips: int) -> float:
    """A per-domain count for ``chips`` chips: whole domains, plus a scaled partial one."""
    full, rest = divmod(chips, domain_chips)
    return full * count + math.ceil(count * rest / domain_chips)


def _counts(spec: SystemSpec, cat: Catalog, chips: int, fabric: ClosFabric) -> Counts:
    su, node = spec.scale_up, spec.node
    nodes = math.ceil(chips / node.chips)
    up_switches = tuple(t.count * nodes if t.per == "node"
                        else _per_domain(t.count, chips, su.domain_chips) for t in su.switches)
    up_modules = 2 * su.optics.links_per_chip * chips if su.optics else 0.0
    nic_modules = sw_modules = 0.0
    sw_side, nic_side = _scale_out_transceivers(spec, cat)
    if fabric.endpoints and sw_side and nic_side:
        nic_modules = fabric.endpoints / nic_side.ports
        sw_modules = fabric.switch_side_link_ends / sw_side.ports
    cab = spec.cabinets
    return Counts(
        chips=chips, nodes=nodes, domains=math.ceil(chips / su.domain_chips),
        chips_per_domain=min(chips, su.domain_chips),
        cpus=(node.cpus.count * nodes) if node.cpus else 0.0,
        nics=sum(n.count for n in node.nics) * nodes,
        scale_up_switches_per_tier=up_switches, scale_out_switches=fabric.switches,
        scale_up_optical_modules=up_modules, scale_out_nic_modules=nic_modules,
        scale_out_switch_modules=sw_modules,
        compute_cabinets=math.ceil(chips / cab.chips_per_compute_cabinet),
        network_cabinets=int(_per_domain(cab.network_cabinets_per_domain, chips,
                                         su.domain_chips)),
        scale_out_cabinets=math.ceil(fabric.switches / cab.scale_out_switches_per_cabinet),
    )


def _scale_out_transceivers(spec: SystemSpec, cat: Catalog
                            ) -> tuple[Transceiver | None, Transceiver | None]:
    """(switch-side, NIC-side) scale-out modules; the NIC side defaults to the switch side."""
    so = spec.scale_out
    if so.transceiver is None:
        return None, None
    sw_side = cat.transceivers[so.transceiver]
    return sw_side, cat.transceivers[so.nic_transceiver] if so.nic_transceiver else sw_side


def _module_power(t: Transceiver | None, modules: float) -> float:
    return 0.0 if t is None else modules * t.power_w


def _power(spec: SystemSpec, cat: Catalog, chip: Chip, c: Counts, fabric: ClosFabric
           ) -> dict[str, float]:
    """IT power at full load by component (W); the values add up to the total."""
    node, su, so = spec.node, spec.scale_up, spec.scale_out
    nodes = c.nodes
    accel = c.chips * chip.power_w
    cpus = c.cpus * cat.cpus[node.cpus.part].power_w if node.cpus else 0.0
    nics = sum(n.count * nodes * cat.nics[n.part].power_w for n in node.nics)
    up_sw = sum(n * cat.switches[t.part].power_w
                for n, t in zip(c.scale_up_switches_per_tier, su.switches, strict=True))
    up_opt = _module_power(cat.transceivers[su.optics.part] if su.optics else None,
                           c.scale_up_optical_modules)
    so_sw = fabric.switches * cat.switches[so.switch].power_w if so.switch else 0.0
    sw_side, nic_side = _scale_out_transceivers(spec, cat)
    so_opt = (_module_power(nic_side, c.scale_out_nic_modules)
              + _module_power(sw_side, c.scale_out_switch_modules))
    return {
        "accelerators": accel, "cpus": cpus, "nics": nics,
        "switches_scale_up": up_sw, "switches_scale_out": so_sw,
        "optics_scale_up": up_opt, "optics_scale_out": so_opt,
        "other": node.overhead_fraction * (accel + cpus),
    }


def _warnings(spec: SystemSpec, chip: Chip, chips: int) -> tuple[str, ...]:
    """Where a result extrapolates: roadmap hardware, or beyond the product's size."""
    out: list[str] = []
    if spec.is_roadmap or chip.is_roadmap:
        out.append(f"roadmap hardware ({spec.status}): figures are vendor claims, not "
                   "measurements")
    if chips > spec.chips:
        out.append(f"scaled to {chips:,} chips, beyond the {spec.chips:,} of the product as "
                   "described: untested scale")
    return tuple(out)


def _assumptions(spec: SystemSpec, cat: Catalog, chip: Chip) -> tuple[str, ...]:
    """The unsourced figures (assumed or recalled) a system's totals rest on."""
    out: list[str] = []
    if chip.power_evidence in ("assumption", "recalled_unverified"):
        label = chip.power_evidence.replace("_", " ")
        out.append(f"{chip.id} power ({chip.power_w:g} W) is {label}")
    for t in spec.scale_up.switches:
        if cat.switches[t.part].evidence == "assumption":
            out.append(f"{t.part} switch power is an assumption")
    hm = spec.node.host_memory
    if hm is not None:
        if hm.capacity.evidence == "assumption":
            out.append(f"host DRAM ({hm.capacity.value_bytes / 1e12:g} TB per node) is an "
                       "assumption")
        if hm.bandwidth.evidence == "assumption":
            out.append("host DRAM bandwidth is an assumption")
    return tuple(dict.fromkeys(out))


def build_system(spec: SystemSpec, cat: Catalog, chips: int | None = None) -> System:
    """Build ``spec`` at ``chips`` chips (default: the product's own size)."""
    n = spec.chips if chips is None else chips
    if n < 1:
        raise ValueError("a system needs at least one chip")
    chip = cat.chips[spec.chip]
    su = spec.scale_up
    injection = su.bandwidth_unidir_bytes_per_s or chip.scale_up_bandwidth_bytes_per_s
    fabric_bw = (su.optics.links_per_chip * su.optics.link_rate_bits_per_s / BITS_PER_BYTE
                 if su.optics else injection)
    nic = spec.scale_out.nic_bandwidth_bits_per_s or chip.scale_out_bandwidth_bits_per_s
    fabric = _scale_out_fabric(spec, cat, n, nic if spec.scale_out.kind != "none" else 0.0)
    counts = _counts(spec, cat, n, fabric)
    return System(spec=spec, chip=chip, counts=counts, scale_out_fabric=fabric,
                  power_breakdown_w=_power(spec, cat, chip, counts, fabric),
                  scale_up_fabric_bytes_per_s=fabric_bw,
                  warnings=_warnings(spec, chip, n),
                  assumptions=_assumptions(spec, cat, chip))


def system_to_dict(s: System) -> dict[str, Any]:
    """The ``show --json`` contract (SI units, one direction for bandwidths)."""
    c, spec = s.counts, s.spec
    return {
        "id": spec.id, "name": spec.name, "vendor": spec.vendor, "status": spec.status,
        "evidence": spec.evidence, "chip": s.chip.id, "chips": c.chips, "nodes": c.nodes,
        "scale_up_domains": c.domains, "scale_up_domain_chips": c.chips_per_domain,
        "peak_flop_per_s": s.peak_flop_per_s,
        "hbm_bytes": s.hbm_bytes, "hbm_bandwidth_bytes_per_s": s.hbm_bandwidth_bytes_per_s,
        "host_memory_bytes": s.host_memory_bytes,
        "host_memory_bandwidth_bytes_per_s": s.host_memory_bandwidth_bytes_per_s,
        "memory": hierarchy_to_dict(s.memory),
        "scale_up_kind": spec.scale_up.kind,
        "scale_up_bandwidth_bytes_per_s": s.scale_up_bandwidth_bytes_per_s,
        "scale_up_bandwidth_per_chip_bytes_per_s": s.scale_up_bandwidth_per_chip_bytes_per_s,
        "scale_out_bandwidth_bytes_per_s": s.scale_out_bandwidth_bytes_per_s,
        "scale_out_tiers": s.scale_out_fabric.tiers,
        "bisection_bandwidth_bytes_per_s": s.bisection_bandwidth_bytes_per_s,
        "cpus": math.ceil(c.cpus), "nics": math.ceil(c.nics),
        "switches": {"scale_up": math.ceil(c.scale_up_switches),
                     "scale_out": c.scale_out_switches},
        "optical_modules": s.optical_modules,
        "optical_modules_breakdown": {"scale_up": math.ceil(c.scale_up_optical_modules),
                                      "scale_out": math.ceil(c.scale_out_optical_modules)},
        "cabinets": s.cabinets,
        "cabinets_breakdown": {"compute": c.compute_cabinets,
                               "scale_up_network": c.network_cabinets,
                               "scale_out_network": c.scale_out_cabinets},
        "floor_area_m2": s.floor_area_m2,
        "it_power_w": s.power_w, "power_breakdown_w": s.power_groups_w,
        "power_detail_w": dict(s.power_breakdown_w),
        "pue": spec.pue, "facility_power_w": s.facility_power_w,
        "extrapolated": s.extrapolated, "warnings": list(s.warnings),
        "assumptions": list(s.assumptions),
        "published": dict(spec.published), "source": spec.source, "notes": spec.notes,
    }
