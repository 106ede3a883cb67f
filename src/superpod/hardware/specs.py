"""Hardware specs: chips, parts (optics, switches, CPUs, NICs) and system descriptions.

These are the validated, frozen forms of the catalog YAML (``superpod/catalog/*.yaml``) and
of a user's own ``--system my.yaml``. Every dimensional field is written in the file with
its unit (``hbm_capacity: 80 GB``) and held here as an SI float whose attribute name carries
the unit (``hbm_bytes``). Unknown keys are errors. Every entry carries a ``source`` and an
``evidence`` label (see ``Evidence``).

A system is described compositionally, never by its totals:

* ``node``      - the building block (server, compute tray, board): chips, CPUs, NICs;
* ``scale_up``  - the scale-up domain (supernode) made of nodes: its fabric kind, per-chip
                  bandwidth, switches and optical links;
* ``scale_out`` - the fabric that joins chips across domains (a folded Clos / fat tree);
* ``cabinets``  - how chips and network gear are racked.

Aggregates (peak FLOP/s, HBM, bandwidths, optics, power ...) are computed from these parts
in ``superpod.hardware.system``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from superpod.boundary.models import FileModel
from superpod.units import Dim, parse_quantity

Evidence = Literal[
    "vendor_doc",  # vendor datasheet or official documentation
    "vendor_claim",  # keynote / press claim, usually roadmap hardware
    "vendor_paper",  # vendor-authored paper on deployed hardware
    "measured",  # measured by an operator and published
    "analyst_estimate",  # third-party analyst estimate
    "press_secondary",  # press or blog repeating vendor numbers
    "derived",  # computed from other figures; the entry's notes give the formula
    "recalled_unverified",  # background knowledge not confirmed by a retrieved source
    "assumption",  # a superpod modelling assumption where nothing is published
]
Status = Literal["shipping", "deployed", "announced", "roadmap", "discontinued", "paper",
                 "user"]
Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8"]
ROADMAP_STATUSES = frozenset({"announced", "roadmap", "paper"})


def _q(dim: Dim, positive: bool = False) -> BeforeValidator:
    return BeforeValidator(lambda v: parse_quantity(v, dim, positive=positive))


Bytes = Annotated[float, _q(Dim.BYTES)]
#: a capacity something is divided by: zero refused at load
PositiveBytes = Annotated[float, _q(Dim.BYTES, positive=True)]
#: rates and bandwidths are divided by (time = bytes / bandwidth): zero refused at load
BytesPerS = Annotated[float, _q(Dim.BYTES_PER_S, positive=True)]
BitsPerS = Annotated[float, _q(Dim.BITS_PER_S, positive=True)]
FlopPerS = Annotated[float, _q(Dim.FLOP_PER_S, positive=True)]
Watts = Annotated[float, _q(Dim.POWER)]
#: a chip's power (tokens per joule divide by it)
PositiveWatts = Annotated[float, _q(Dim.POWER, positive=True)]
Seconds = Annotated[float, _q(Dim.TIME)]
SquareMetres = Annotated[float, _q(Dim.AREA)]
Usd = Annotated[float, _q(Dim.MONEY)]
#: counts: strict (``true`` is not a count) and bounded (a count never allocates unbounded)
MAX_COUNT = 2**31 - 1
PositiveInt = Annotated[int, Field(ge=1, le=MAX_COUNT, strict=True)]
NonNegInt = Annotated[int, Field(ge=0, le=MAX_COUNT, strict=True)]
#: chips in one system or domain (as ``superpod.boundary.options.MAX_CHIPS``)
ChipCount = Annotated[int, Field(ge=1, le=2**21, strict=True)]


def _slug(v: str) -> str:
    if not v or not all(c.isalnum() or c in "-_." for c in v) or v != v.lower():
        raise ValueError("must be a lower-case slug of letters, digits, '-', '_' or '.'")
    return v


Slug = Annotated[str, AfterValidator(_slug)]


class Spec(FileModel):
    """Base of every spec: frozen, keyword-only, unknown keys refused, booleans only where
    a field is one, numbers finite (``superpod.boundary.models``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False,
                              defer_build=True)  # schema built on first use (start-up)


class Sourced(Spec):
    """An entry with provenance."""

    id: Slug
    name: str
    source: str = Field(min_length=3, description="paper / datasheet / page, with URL")
    evidence: Evidence
    notes: str = ""


# ----------------------------------------------------------------------------- chips


class Chip(Sourced):
    """One accelerator package (what a job counts as one chip)."""

    vendor: str
    year: int = Field(ge=2000, le=2100)
    status: Status
    peak_flop_per_s: dict[Precision, FlopPerS] = Field(
        alias="peak_dense", description="dense (no 2:4 sparsity) peak tensor FLOP/s")
    hbm_bytes: PositiveBytes = Field(alias="hbm_capacity")
    hbm_bandwidth_bytes_per_s: BytesPerS = Field(alias="hbm_bandwidth")
    scale_up_bandwidth_bytes_per_s: BytesPerS = Field(
        alias="scale_up_bandwidth_unidir", description="per chip, one direction")
    scale_up_links: NonNegInt | None = None
    scale_out_bandwidth_bits_per_s: BitsPerS = Field(
        default=0.0, alias="scale_out_nic", description="scale-out NIC per chip, one direction")
    power_w: PositiveWatts = Field(alias="power",
                                   description="package power at full load (TDP)")
    power_evidence: Evidence
    dies: PositiveInt = 1
    devices: PositiveInt = Field(
        default=1, description="devices (ranks) the runtime exposes per package: a die that "
        "is its own device counts once (Ascend 910C: 2), dies fused into one device do not "
        "(B200: 1)")
    price_usd: Usd | None = Field(default=None, alias="price")
    variant_of: str | None = Field(
        default=None, description="catalog id of the chip this is a SKU of (same die)")
    hbm_type: str | None = Field(default=None, description="memory generation, e.g. HBM2e")

    def clock_fraction(self, power_limit_w: float | None) -> float:
        """Sustained tensor-core clock under a board power limit, as a fraction of the clock
        the peak is quoted at.

        assumption (no per-chip measurement is stored): under a dense tensor-core load the
        chip draws its TDP at the rated clock, and in the DVFS range voltage tracks
        frequency, so dynamic power goes as f V^2 ~ f^3 (Horowitz et al., 'Energy dissipation
        in general purpose microprocessors', IEEE JSSC 1996; the cube law used by GPU
        power-capping studies): f / f_rated = (P_limit / TDP)^(1/3), never above 1. Static
        power is neglected, which errs towards a smaller slowdown.
        """
        if power_limit_w is None or power_limit_w >= self.power_w:
            return 1.0
        if power_limit_w <= 0:
            raise ValueError("a power limit must be positive")
        return float((power_limit_w / self.power_w) ** (1.0 / 3.0))

    @property
    def is_roadmap(self) -> bool:
        return self.status in ROADMAP_STATUSES


# ----------------------------------------------------------------------------- parts


class Transceiver(Sourced):
    """An optical (or active-copper) module; one sits at each end of an optical link."""

    rate_bits_per_s: BitsPerS = Field(alias="rate")
    ports: PositiveInt = 1
    kind: Literal["DSP", "LPO", "CPO", "AEC"]
    power_w: Watts = Field(alias="power")
    price_usd: Usd | None = Field(default=None, alias="price")


class Switch(Sourced):
    """A switch chip or box (power excludes the optics plugged into it)."""

    ports: PositiveInt
    port_rate_bits_per_s: BitsPerS = Field(alias="port_rate")
    power_w: Watts = Field(alias="power")
    price_usd: Usd | None = Field(default=None, alias="price")


class Cpu(Sourced):
    """A host CPU (with its share of host memory power where the source includes it)."""

    power_w: Watts = Field(alias="power")
    price_usd: Usd | None = Field(default=None, alias="price")


class Nic(Sourced):
    """A network adapter or DPU."""

    rate_bits_per_s: BitsPerS = Field(alias="rate")
    power_w: Watts = Field(alias="power")
    price_usd: Usd | None = Field(default=None, alias="price")


# ----------------------------------------------------------------------------- systems


class PartCount(Spec):
    """``count`` of catalog part ``part`` (per node, per domain ... as the field says)."""

    part: Slug
    count: Annotated[float, Field(ge=0)]


class SwitchTier(Spec):
    """One tier of scale-up switches, counted per node or per full scale-up domain."""

    name: str
    part: Slug
    count: Annotated[float, Field(ge=0)]
    per: Literal["node", "domain"]


class OpticalLinks(Spec):
    """Optical links leaving each chip's node into the scale-up fabric (two modules a link)."""

    part: Slug
    links_per_chip: Annotated[float, Field(gt=0)]
    link_rate_bits_per_s: BitsPerS = Field(alias="link_rate", description="one direction")


class _Figure(Spec):
    """One published (or assumed) figure with its own provenance."""

    source: str = Field(min_length=3, description="where the figure comes from, URL first")
    evidence: Evidence


class BytesFigure(_Figure):
    value_bytes: Annotated[Bytes, Field(gt=0)] = Field(alias="value")


class BytesPerSFigure(_Figure):
    value_bytes_per_s: Annotated[BytesPerS, Field(gt=0)] = Field(alias="value")


class SecondsFigure(_Figure):
    value_s: Annotated[Seconds, Field(ge=0)] = Field(alias="value")


class HostLink(Spec):
    """The path from one accelerator to its own host's DRAM (one direction)."""

    kind: Literal["pcie", "nvlink_c2c", "ub"]
    protocol: str = Field(min_length=1, description="e.g. 'PCIe 5.0 x16', 'NVLink-C2C'")
    bandwidth_unidir: BytesPerSFigure = Field(description="per link, one direction")
    latency: SecondsFigure
    shared_by: PositiveInt = Field(
        default=1, description="accelerators that share one such link (GB200: 2 GPUs per "
                               "Grace superchip link)")


class HostPool(Spec):
    """Present when every chip of the scale-up domain reaches every node's host DRAM over
    the scale-up fabric (UB memory pooling); absent for host memory reached only locally."""

    source: str = Field(min_length=3)
    evidence: Evidence
    notes: str = ""


class HostMemory(Spec):
    """CPU-attached DRAM of one node and how its accelerators reach it."""

    capacity: BytesFigure = Field(description="DRAM per node")
    bandwidth: BytesPerSFigure = Field(description="DRAM bandwidth per node (all sockets)")
    link: HostLink
    cpu_side_bandwidth_unidir: BytesPerSFigure | None = Field(
        default=None, description="the node's CPUs' links into the fabric, one direction, "
                                  "all CPUs together (CloudMatrix 384: 4 x ~160 GB/s of UB)")
    local_scope: Literal["node", "cpu"] = Field(
        default="node", description="what one chip addresses locally: the whole node's DRAM "
                                    "(NUMA across sockets) or only its own CPU's (Grace)")
    pool: HostPool | None = None
    notes: str = ""


class Node(Spec):
    """The building block: a server, a compute tray or a board."""

    name: str
    chips: PositiveInt
    cpus: PartCount | None = None
    nics: list[PartCount] = Field(default_factory=list)
    host_memory: HostMemory | None = Field(
        default=None, description="CPU DRAM and the accelerators' path to it; absent where "
                                  "nothing is described")
    overhead_fraction: Annotated[float, Field(ge=0, le=2)] = Field(
        default=0.20,
        description="fans, power conversion, DRAM, storage, management inside the IT "
                    "envelope, as a fraction of accelerator + CPU power")


class ScaleUp(Spec):
    """The scale-up domain (supernode): chips that share the fast fabric."""

    kind: Literal["switched", "full_mesh", "nd_full_mesh", "torus", "none"]
    protocol: str
    domain_chips: ChipCount
    bandwidth_unidir_bytes_per_s: BytesPerS | None = Field(
        default=None, alias="bandwidth_unidir",
        description="per-chip injection bandwidth; default: the chip's scale_up_bandwidth")
    latency_s: Seconds = Field(alias="latency")
    planes: PositiveInt = 1
    dims: list[PositiveInt] = Field(default_factory=list)
    switches: list[SwitchTier] = Field(default_factory=list)
    optics: OpticalLinks | None = None
    medium: Literal["copper", "optical", "mixed"] = "copper"
    in_network_reduction: bool = Field(
        default=False, description="switches reduce in the network (NVLS / SHARP-like)")
    calibration: str | None = Field(
        default=None, description="fabric key in superpod/calibration/collectives.yaml")
    notes: str = ""


class ScaleOut(Spec):
    """The fabric between scale-up domains: a folded Clos (fat tree), rail-optimised or not."""

    kind: Literal["fat_tree", "none"]
    protocol: str = ""
    nic_bandwidth_bits_per_s: BitsPerS | None = Field(
        default=None, alias="nic_bandwidth", description="per chip; default: the chip's NIC")
    switch: Slug | None = None
    transceiver: Slug | None = Field(default=None,
                                     description="module at each switch-side link end")
    nic_transceiver: Slug | None = Field(
        default=None, description="module at the NIC end; default: ``transceiver``")
    oversubscription: Annotated[float, Field(ge=1)] = 1.0
    rail_optimized: bool = True
    latency_s: Seconds = Field(default=2e-6, alias="latency")
    calibration: str | None = Field(
        default=None, description="fabric key in superpod/calibration/collectives.yaml")


class Cabinets(Spec):
    """How compute and network gear are racked (the product's own layout)."""

    chips_per_compute_cabinet: PositiveInt
    network_cabinets_per_domain: NonNegInt = 0
    scale_out_switches_per_cabinet: PositiveInt = 16
    floor_area_per_cabinet_m2: SquareMetres | None = Field(default=None,
                                                           alias="floor_area_per_cabinet")


class SystemSpec(Sourced):
    """A system preset or a user's system: the parts, never the totals."""

    vendor: str
    year: int = Field(ge=2000, le=2100)
    status: Status
    chip: Slug
    chips: ChipCount = Field(description="chips in the product as sold / described")
    node: Node
    scale_up: ScaleUp
    scale_out: ScaleOut
    cabinets: Cabinets
    pue: Annotated[float, Field(ge=1.0, le=3.0)] = 1.2
    published: dict[str, str] = Field(
        default_factory=dict,
        description="vendor's own headline figures, quoted for comparison (never used)")

    @property
    def is_roadmap(self) -> bool:
        return self.status in ROADMAP_STATUSES
