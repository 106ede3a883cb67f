"""Failures of a system: events by cause, and which of them stop a synchronous job.

Model. A job spans the whole system (``System.counts.chips``) and trains synchronously, so
one lost rank stops every rank. For each cause c with rate lambda_c per component and
population P_c (``rates.populations``):

    events_c = lambda_c x P_c                    (per second)
    interruptions = sum_c events_c x (1 - d_c)   job MTBF  M = 1 / interruptions

where d_c is the fraction of c's events that only *degrade* the job (bandwidth lost until
repair, no restart). Blast radius, by topology and layout:

* chip, host, CPU, NIC: the job is interrupted. With spares (``SparePolicy``: UB-Mesh's
  64+1 NPU backup, arXiv 2503.20377; ByteRobust's warm-standby nodes, arXiv 2509.16293) a
  failure is still an interruption (the failed unit's state is gone and every rank rolls
  back), but it is recovered by a swap (``swap_s``) instead of a restart. A spare is free
  only if fewer than ``spares`` earlier failures of its group await repair; failures
  needing repair form an M/G/inf queue, so the pending count is Poisson(lambda_g x R) and

      absorbed fraction = P[Poisson(lambda_g R) <= spares - 1]           (Erlang, PASTA)

  with lambda_g the group's failure rate of the covered causes and R the repair time.
* scale-up optical module or scale-up switch: on a multi-path scale-up (switched with
  planes > 1, full mesh, nD full mesh, torus) *with* link-level protection switching, the
  job loses one link's (one switch's) share of bandwidth instead of stopping
  (``protected_fraction`` of events, default all). Protection defaults to on for
  UB-generation Huawei systems: that rests on Huawei's claim of nanosecond-level
  protection switching on UB optical paths (a vendor claim, not a measurement) and off
  everywhere else (NVLink, copper, InfiniBand single-path fabrics: a failed link stops the
  job). Without path diversity protection has no effect.
* scale-out link: a failed link stalls a collective until the NCCL/HCCL timeout, so it
  interrupts, unless the scale-out is dual-plane (Alibaba HPN's dual ToR), where it
  degrades.
* per-job causes (software, dependencies, unknown hangs) interrupt; their rate grows with
  the job's chips as ``rates`` formula (2) says (about in proportion: Meta's job MTTFs).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from superpod.errors import SpecError
from superpod.hardware.catalog import Catalog
from superpod.hardware.specs import SystemSpec
from superpod.hardware.system import System, build_system
from superpod.reliability.rates import (
    Cause,
    RateBook,
    load_rate_book,
    populations,
)

MULTIPATH_SCALE_UP = frozenset({"full_mesh", "nd_full_mesh", "torus"})
NODE_COMPONENTS = frozenset({"chip", "host", "cpu", "nic"})
SCALE_UP_LINK_COMPONENTS = frozenset({"scale_up_optical_module", "scale_up_switch"})
SCALE_OUT_COMPONENTS = frozenset({"scale_out_link", "scale_out_optical_module"})


@dataclass(frozen=True)
class SparePolicy:
    """``spares`` hot spares per ``group`` units (chips or nodes) that replace a failed one."""

    group: int
    spares: int = 1
    level: Literal["chip", "node"] = "chip"
    swap_s: float | None = None  # None: the rate book's default
    repair_s: float | None = None  # None: the rate book's default

    def __post_init__(self) -> None:
        if self.group < 1 or self.spares < 0:
            raise SpecError("a spare group needs at least 1 unit and 0 or more spares",
                            field="spares", value=f"{self.group}+{self.spares}")
        if self.level not in ("chip", "node"):
            raise SpecError("unknown spare level", field="spare_level", value=self.level,
                            allowed="chip, node")

    @classmethod
    def parse(cls, text: str, level: str = "chip") -> SparePolicy:
        """``"64+1"``: one spare per 64 units."""
        group, plus, spares = text.partition("+")
        if not plus or not group.strip().isdigit() or not spares.strip().isdigit():
            raise SpecError("spares are written GROUP+SPARES, e.g. 64+1", field="--spares",
                            value=text)
        if level not in ("chip", "node"):
            raise SpecError("unknown spare level", field="--spare-level", value=level,
                            allowed="chip, node")
        return cls(group=int(group), spares=int(spares),
                   level="chip" if level == "chip" else "node")

    @property
    def covered(self) -> frozenset[str]:
        """Components whose failure a spare of this level replaces."""
        return frozenset({"chip"}) if self.level == "chip" else NODE_COMPONENTS


@dataclass(frozen=True)
class FailureOptions:
    """How failures propagate; ``None`` fields take the system's default."""

    link_protection: bool | None = None
    protected_fraction: float = 1.0
    scale_out_dual_plane: bool = False
    spares: SparePolicy | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.protected_fraction <= 1.0:
            raise SpecError("must lie in [0, 1]", field="protected_fraction",
                            value=self.protected_fraction)


@dataclass(frozen=True)
class CauseRate:
    """One cause on one system: its events and what they do to the job (per second)."""

    cause: Cause
    population: float
    events_per_s: float
    interruptions_per_s: float  # events that stop the job (restarts plus swaps)
    swaps_per_s: float  # interruptions recovered by a spare instead of a restart
    degradations_per_s: float  # events that only cost bandwidth
    blast_radius_chips: float  # chips whose work or bandwidth one event touches
    bandwidth_loss_fraction: float  # for a degradation: share of the touched chips' links

    @property
    def effect(self) -> str:
        if self.degradations_per_s and self.interruptions_per_s:
            return "interrupt or degrade"
        if self.degradations_per_s:
            return "degrade"
        return "interrupt or swap" if self.swaps_per_s else "interrupt"

    def to_dict(self) -> dict[str, Any]:
        c = self.cause
        per_job = c.component == "job"
        return {
            "id": c.id, "name": c.name, "category": c.category, "component": c.component,
            "population": self.population,
            "rate_per_component_per_s": c.rate_per_s,
            "per_job": per_job,
            "events_per_s": self.events_per_s,
            "interruptions_per_s": self.interruptions_per_s,
            "swaps_per_s": self.swaps_per_s,
            "degradations_per_s": self.degradations_per_s,
            "effect": self.effect, "blast_radius_chips": self.blast_radius_chips,
            "bandwidth_loss_fraction": self.bandwidth_loss_fraction,
            "evidence": c.evidence, "derivation": c.derivation,
        }


@dataclass(frozen=True)
class FailureModel:
    """Every cause on one system, with totals. Rates are per second."""

    system_id: str
    chips: int
    by_cause: tuple[CauseRate, ...]
    link_protection: bool
    options: FailureOptions
    spare_absorbed_fraction: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def interruptions_per_s(self) -> float:
        return sum(c.interruptions_per_s for c in self.by_cause)

    @property
    def hardware_interruptions_per_s(self) -> float:
        return sum(c.interruptions_per_s for c in self.by_cause
                   if c.cause.component != "job")

    @property
    def swaps_per_s(self) -> float:
        return sum(c.swaps_per_s for c in self.by_cause)

    @property
    def degradations_per_s(self) -> float:
        return sum(c.degradations_per_s for c in self.by_cause)

    @property
    def mtbf_s(self) -> float:
        """Job mean time between interruptions (inf if nothing interrupts)."""
        rate = self.interruptions_per_s
        return math.inf if rate <= 0 else 1.0 / rate

    @property
    def swap_fraction(self) -> float:
        """Share of interruptions recovered by a swap rather than a restart."""
        rate = self.interruptions_per_s
        return 0.0 if rate <= 0 else self.swaps_per_s / rate

    def expected_interruptions(self, duration_s: float) -> float:
        return self.interruptions_per_s * duration_s


def multipath_scale_up(spec: SystemSpec) -> bool:
    """Does the scale-up fabric offer another path when one link or switch fails?"""
    su = spec.scale_up
    return su.kind in MULTIPATH_SCALE_UP or (su.kind == "switched" and su.planes > 1)


def link_protection_default(spec: SystemSpec) -> bool:
    """On for UB-generation Huawei systems with a multi-path scale-up (Huawei's claim)."""
    protocol = spec.scale_up.protocol.lower()
    ub = "unifiedbus" in protocol.replace(" ", "") or re.search(r"\bub\b", protocol)
    return spec.vendor.lower() == "huawei" and bool(ub) and multipath_scale_up(spec)


def spare_absorbed_fraction(unit_rate_per_s: float, group: int, spares: int,
                            repair_s: float) -> float:
    """P[a spare is free] = P[Poisson(group x rate x repair) <= spares - 1]."""
    if spares <= 0:
        return 0.0
    mean_pending = group * unit_rate_per_s * repair_s
    return poisson_cdf(spares - 1, mean_pending)


def poisson_cdf(k: int, mean: float) -> float:
    """P[Poisson(mean) <= k] = sum_{i<=k} exp(-mean) mean^i / i!, each term in log space
    (all terms positive: no cancellation; scipy.stats would cost ~1 s of import)."""
    if k < 0:
        return 0.0
    if mean <= 0.0:
        return 1.0
    log_mean = math.log(mean)
    total = math.fsum(math.exp(i * log_mean - mean - math.lgamma(i + 1)) for i in range(k + 1))
    return min(1.0, total)


def _blast(system: System, component: str) -> tuple[float, float]:
    """(chips touched by one event, bandwidth share lost by them if it only degrades)."""
    c, spec = system.counts, system.spec
    su = spec.scale_up
    node_chips = float(min(spec.node.chips, c.chips))
    nics_per_node = sum(n.count for n in spec.node.nics)
    if component == "chip":
        return 1.0, 0.0
    if component in ("host", "cpu"):
        return node_chips, 0.0
    if component == "nic":
        return node_chips / nics_per_node if nics_per_node else node_chips, 0.0
    if component == "scale_up_optical_module":
        links = su.optics.links_per_chip if su.optics else 1.0
        return 1.0, 1.0 / links
    if component == "scale_up_switch":
        per_domain = sum(t.count for t in su.switches if t.per == "domain") or 1.0
        return float(c.chips_per_domain), 1.0 / per_domain
    if component in SCALE_OUT_COMPONENTS:
        return 1.0, 0.5  # one NIC port's chip; dual plane: one of two planes
    return float(c.chips), 0.0  # job


def _degraded_fraction(component: str, protection: bool, opts: FailureOptions) -> float:
    if component in SCALE_UP_LINK_COMPONENTS and protection:
        return opts.protected_fraction
    if component in SCALE_OUT_COMPONENTS and opts.scale_out_dual_plane:
        return 1.0
    return 0.0


def _absorbed(book: RateBook, opts: FailureOptions, pops: dict[str, float]) -> float:
    """Fraction of the spare-covered failures that find a free spare."""
    sp = opts.spares
    if sp is None:
        return 0.0
    units = pops["chip"] if sp.level == "chip" else pops["host"]
    rate = sum(c.rate_per_s * pops[c.component] for c in book.causes
               if c.component in sp.covered)
    unit_rate = rate / units if units else 0.0
    repair = sp.repair_s if sp.repair_s is not None else book.recovery["spare_repair"]
    return spare_absorbed_fraction(unit_rate, sp.group, sp.spares, repair)


def failure_model(system: System, book: RateBook | None = None,
                  options: FailureOptions | None = None) -> FailureModel:
    """Events, interruptions, swaps and degradations by cause for a job on ``system``."""
    book = book or load_rate_book()
    opts = options or FailureOptions()
    multipath = multipath_scale_up(system.spec)
    protection = (link_protection_default(system.spec) if opts.link_protection is None
                  else opts.link_protection) and multipath
    notes: list[str] = []
    if opts.link_protection and not multipath:
        notes.append("link protection requested, but the scale-up fabric has a single path: "
                     "no effect")
    pops = populations(system, book.job_scaling)
    absorbed = _absorbed(book, opts, pops)
    rows = []
    for cause in book.causes:
        pop = pops[cause.component]
        events = cause.rate_per_s * pop
        degraded = _degraded_fraction(cause.component, protection, opts)
        interrupts = events * (1.0 - degraded)
        covered = opts.spares is not None and cause.component in opts.spares.covered
        blast, loss = _blast(system, cause.component)
        rows.append(CauseRate(
            cause=cause, population=pop, events_per_s=events,
            interruptions_per_s=interrupts,
            swaps_per_s=interrupts * absorbed if covered else 0.0,
            degradations_per_s=events * degraded, blast_radius_chips=blast,
            bandwidth_loss_fraction=loss if degraded else 0.0))
    return FailureModel(system_id=system.spec.id, chips=system.counts.chips,
                        by_cause=tuple(rows), link_protection=protection, options=opts,
                        spare_absorbed_fraction=absorbed, notes=tuple(notes))


def mtbf_by_scale(spec: SystemSpec, cat: Catalog, chips: Sequence[int],
                  book: RateBook | None = None, options: FailureOptions | None = None
                  ) -> list[dict[str, float]]:
    """Job MTBF and interruptions per day of ``spec`` built at each size in ``chips``."""
    out = []
    for n in chips:
        m = failure_model(build_system(spec, cat, n), book, options)
        out.append({"chips": float(n), "interruptions_per_s": m.interruptions_per_s,
                    "hardware_interruptions_per_s": m.hardware_interruptions_per_s,
                    "mtbf_s": m.mtbf_s})
    return out


def cross_checks(book: RateBook | None = None) -> list[dict[str, Any]]:
    """Each fleet figure against the model's causes, on the calibration run's system."""
    book = book or load_rate_book()
    pops = populations(book.calibration_system, book.job_scaling)
    hardware = [c for c in book.causes if c.component != "job"]
    out = []
    for x in book.cross_checks:
        rate = x.rate_per_s if x.rate_per_s is not None else (
            1.0 / x.mttf_s if x.mttf_s else 0.0)
        if x.compare == "hardware":
            compared = hardware
        elif x.compare == "all":
            compared = list(book.causes)
        else:
            compared = [book.cause(i) for i in x.compare]
        theirs = rate * pops[x.component]
        ours = sum(c.rate_per_s * pops[c.component] for c in compared)
        out.append({"id": x.id, "name": x.name, "component": x.component,
                    "rate_per_component_per_s": rate,
                    "their_events_per_s": theirs, "model_events_per_s": ours,
                    "ratio_theirs_to_model": theirs / ours if ours else math.inf,
                    "compared_with": [c.id for c in compared] if len(compared) < 4
                    else str(x.compare), "evidence": x.evidence, "notes": x.notes})
    return out
