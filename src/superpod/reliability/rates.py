"""Failure-rate data: ``catalog/reliability.yaml`` read, validated and turned into SI rates.

Every cause becomes a rate per component per second, ``rate_per_s``. Two ways in:

* a published **rate**, written with its unit (``"720 FIT"``, ``"0.63 %/yr"``,
  ``"6.5 /1000/d"``); FIT = failures per 1e9 component-hours; 1 yr = 8,760 h;
* a per-cause **count** from one calibration run, turned into a rate per component by

      lambda_c = n_c / (P_c x D)                                          (1)

  with P_c the population of the cause's component in the run's system (built by superpod
  from the preset the run names, so the bookkeeping matches the model's own counts) and D
  the run's duration. Rates from (1) are calibrated on that one run (Llama 3 405B: 16,384
  H100, 2,048 hosts, 54 days); re-predicting it is a check of bookkeeping, not foresight.

Per-job causes (``component: job``) are events per second of a job of the calibration run's
size; a job of N chips has population

    P_job = (N / N_run) ** alpha,   alpha = ln(T_small / T_large) / ln(N_large / N_small)   (2)

with T the measured job mean time to failure at two job sizes of one fleet
(``job_size_scaling``: Meta's RSC clusters, arXiv 2410.21680: 47.7 d at 8 GPUs, 7.9 h at
1,024, alpha = 1.03). A file without ``job_size_scaling`` keeps per-job rates constant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from superpod.errors import SpecError
from superpod.hardware.catalog import CATALOG_DIR, Catalog, load_catalog
from superpod.hardware.loading import read_model_file
from superpod.hardware.specs import Evidence
from superpod.hardware.system import System, build_system
from superpod.units import Dim, UnitError, parse_quantity

RELIABILITY_FILE = CATALOG_DIR / "reliability.yaml"
HOURS_PER_YEAR = 8760.0  # the AFR / FIT convention (365 d)
S_PER_HOUR = 3600.0
S_PER_DAY = 86400.0
S_PER_YEAR = HOURS_PER_YEAR * S_PER_HOUR
FIT_PER_S = 1e-9 / S_PER_HOUR  # one failure per 1e9 component-hours, per second

Component = Literal["chip", "host", "cpu", "nic", "scale_out_link", "scale_out_optical_module",
                    "scale_up_optical_module", "scale_up_switch", "job"]
Category = Literal["accelerator", "host", "network", "optics", "switch", "software"]
COMPONENTS: tuple[str, ...] = Component.__args__  # type: ignore[attr-defined]

_PERIOD_S = {"h": S_PER_HOUR, "d": S_PER_DAY, "month": S_PER_YEAR / 12, "yr": S_PER_YEAR}
_RATE = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*$")


def parse_rate_per_s(text: object) -> float:
    """``"720 FIT"``, ``"0.63 %/yr"``, ``"6.5 /1000/d"``, ``"2e-5 /h"`` -> events per second."""
    if not isinstance(text, str):
        raise UnitError("needs a rate with a unit (FIT, %/yr, /1000/d, /h ...)")
    m = _RATE.match(text)
    if not m:
        raise UnitError("is not a number followed by a rate unit (FIT, %/yr, /1000/d, /h)")
    number, unit = float(m.group(1)), m.group(2).replace(" ", "")
    if number < 0 or not math.isfinite(number):
        raise UnitError("must be a finite, non-negative rate")
    if unit == "FIT":
        return number * FIT_PER_S
    scale = 1.0
    for prefix, factor in (("%", 1e-2), ("/1000", 1e-3)):
        if unit.startswith(prefix):
            scale, unit = factor, unit[len(prefix):]
            break
    period = _PERIOD_S.get(unit.removeprefix("/"))
    if period is None or not unit.startswith("/"):
        raise UnitError(f"unit '{m.group(2)}' is not a rate unit (FIT, %/yr, %/month, "
                        "/1000/d, /h, /d, /yr)")
    return number * scale / period


def _rate(v: object) -> float:
    try:
        return parse_rate_per_s(v)
    except UnitError as exc:
        raise ValueError(str(exc)) from None


def _time(v: object) -> float:
    try:
        return parse_quantity(v, Dim.TIME)
    except UnitError as exc:
        raise ValueError(str(exc)) from None


RatePerS = Annotated[float, BeforeValidator(_rate)]
Seconds = Annotated[float, BeforeValidator(_time)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class RunSpec(_Spec):
    id: str
    name: str
    system: str
    chips: int = Field(ge=1)
    hosts: int = Field(ge=1)
    duration_s: Seconds = Field(alias="duration")
    unexpected_interruptions: int = Field(ge=0)
    planned_interruptions: int = Field(ge=0)
    evidence: Evidence
    source: str = Field(min_length=3)
    notes: str = ""


class CauseSpec(_Spec):
    id: str
    name: str
    category: Category
    component: Component
    count: int | None = Field(default=None, ge=0)
    run: str | None = None
    rate_per_s: RatePerS | None = Field(default=None, alias="rate")
    evidence: Evidence
    source: str = Field(min_length=3)
    notes: str = ""


class CrossCheckSpec(_Spec):
    id: str
    name: str
    component: Component
    rate_per_s: RatePerS | None = Field(default=None, alias="rate")
    mttf_s: Seconds | None = Field(default=None, alias="mttf")
    compare: list[str] | Literal["hardware", "all"]
    evidence: Evidence
    source: str = Field(min_length=3)
    notes: str = ""


class ObservationSpec(_Spec):
    id: str
    finding: str
    evidence: Evidence
    source: str = Field(min_length=3)


class RecoveryDefault(_Spec):
    id: Literal["detection", "restart", "swap", "spare_repair", "storage_write_bandwidth",
                "storage_read_bandwidth", "node_storage_bandwidth", "snapshot_bandwidth",
                "checkpoint_bytes_per_param"]
    value: str
    evidence: Evidence
    source: str = Field(min_length=3)
    notes: str = ""


class JobSizePoint(_Spec):
    chips: int = Field(ge=1)
    mttf_s: Seconds = Field(alias="mttf", gt=0)


class JobSizeScalingSpec(_Spec):
    points: list[JobSizePoint] = Field(min_length=2, max_length=2)
    evidence: Evidence
    source: str = Field(min_length=3)
    notes: str = ""

    @property
    def exponent(self) -> float:
        """Formula (2): how fast a job's interruption rate grows with its chips."""
        small, large = sorted(self.points, key=lambda p: p.chips)
        if small.chips == large.chips:
            raise SpecError("needs two different job sizes", field="job_size_scaling.points")
        return math.log(small.mttf_s / large.mttf_s) / math.log(large.chips / small.chips)


@dataclass(frozen=True)
class JobScaling:
    """Formula (2): a per-job rate, counted at ``reference_chips``, grows as chips^exponent."""

    exponent: float = 0.0
    reference_chips: int = 1
    source: str = "no job_size_scaling: per-job rates independent of size"

    def population(self, chips: int) -> float:
        return float((chips / self.reference_chips) ** self.exponent)


class ReliabilityFile(_Spec):
    calibration_runs: list[RunSpec]
    job_size_scaling: JobSizeScalingSpec | None = None
    causes: list[CauseSpec]
    cross_checks: list[CrossCheckSpec] = Field(default_factory=list)
    observations: list[ObservationSpec] = Field(default_factory=list)
    recovery: list[RecoveryDefault]


@dataclass(frozen=True)
class Cause:
    """One failure cause: its rate per component per second and where the rate came from."""

    id: str
    name: str
    category: str
    component: str
    rate_per_s: float  # per component (per job for ``component == "job"``)
    evidence: str
    derivation: str  # how the rate was obtained (formula (1) with numbers, or "published")
    source: str

    @property
    def fit(self) -> float:
        """Failures per 1e9 component-hours."""
        return self.rate_per_s / FIT_PER_S


@dataclass(frozen=True)
class RateBook:
    """Every cause, the calibration run behind the counted ones, and the recovery defaults."""

    causes: tuple[Cause, ...]
    run: RunSpec
    calibration_system: System
    cross_checks: tuple[CrossCheckSpec, ...]
    observations: tuple[ObservationSpec, ...]
    recovery: Mapping[str, float]  # SI values: seconds, bytes/s, bytes per parameter
    recovery_sources: Mapping[str, RecoveryDefault]
    job_scaling: JobScaling = JobScaling()

    def cause(self, cause_id: str) -> Cause:
        for c in self.causes:
            if c.id == cause_id:
                return c
        raise SpecError("unknown failure cause", field="cause", value=cause_id,
                        allowed=", ".join(c.id for c in self.causes))


def populations(system: System, job: JobScaling | None = None) -> dict[str, float]:
    """How many of each component a system has (``job``: formula (2), 1 without scaling)."""
    c, fabric = system.counts, system.scale_out_fabric
    domain_switches = sum(n for n, t in zip(c.scale_up_switches_per_tier,
                                            system.spec.scale_up.switches, strict=True)
                          if t.per == "domain")
    return {
        "chip": float(c.chips), "host": float(c.nodes), "cpu": float(c.cpus),
        "nic": float(c.nics), "scale_out_link": float(fabric.links if fabric.endpoints else 0),
        "scale_out_optical_module": float(c.scale_out_optical_modules),
        "scale_up_optical_module": float(c.scale_up_optical_modules),
        "scale_up_switch": float(domain_switches),
        "job": (job or JobScaling()).population(c.chips),
    }


_RECOVERY_DIM = {"detection": Dim.TIME, "restart": Dim.TIME, "swap": Dim.TIME,
                 "spare_repair": Dim.TIME, "storage_write_bandwidth": Dim.BYTES_PER_S,
                 "storage_read_bandwidth": Dim.BYTES_PER_S,
                 "node_storage_bandwidth": Dim.BYTES_PER_S,
                 "snapshot_bandwidth": Dim.BYTES_PER_S, "checkpoint_bytes_per_param": Dim.BYTES}


def _recovery(entries: list[RecoveryDefault], file: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for i, e in enumerate(entries):
        try:
            out[e.id] = parse_quantity(e.value, _RECOVERY_DIM[e.id])
        except UnitError as exc:
            raise SpecError(str(exc), file=file, field=f"recovery[{i}].value",
                            value=e.value) from None
    missing = sorted(set(_RECOVERY_DIM) - set(out))
    if missing:
        raise SpecError("missing recovery defaults", file=file, field="recovery",
                        value=", ".join(missing))
    return out


def _calibrated(spec: CauseSpec, run: RunSpec, pops: Mapping[str, float], file: str,
                where: str) -> Cause:
    """Formula (1): count / (population x duration), or the published rate as is."""
    if (spec.count is None) == (spec.rate_per_s is None):
        raise SpecError("give exactly one of 'count' (with 'run') or 'rate'", file=file,
                        field=where)
    if spec.count is None:
        rate, how = spec.rate_per_s or 0.0, "published rate"
    else:
        if spec.run != run.id:
            raise SpecError("unknown calibration run", file=file, field=f"{where}.run",
                            value=spec.run, allowed=run.id)
        pop = pops[spec.component]
        if pop <= 0:
            raise SpecError(f"the calibration system has no '{spec.component}'", file=file,
                            field=where)
        rate = spec.count / (pop * run.duration_s)
        how = (f"{spec.count} events / ({pop:,.0f} {spec.component} x "
               f"{run.duration_s / S_PER_DAY:g} d) on {run.id}")
    return Cause(id=spec.id, name=spec.name, category=spec.category,
                 component=spec.component, rate_per_s=rate, evidence=spec.evidence,
                 derivation=how, source=spec.source)


def load_rate_book(path: str | Path | None = None, cat: Catalog | None = None) -> RateBook:
    """Read and validate a reliability file (default: the built-in one)."""
    if path is None and cat is None:
        return _default_book()
    return _load(Path(path) if path else RELIABILITY_FILE, cat or load_catalog())


@lru_cache(maxsize=1)
def _default_book() -> RateBook:
    return _load(RELIABILITY_FILE, load_catalog())


def _load(path: Path, cat: Catalog) -> RateBook:
    file = str(path)
    data = read_model_file(path, ReliabilityFile)
    if len(data.calibration_runs) != 1:
        raise SpecError("exactly one calibration run is supported", file=file,
                        field="calibration_runs")
    run = data.calibration_runs[0]
    system = build_system(cat.system(run.system), cat, run.chips)
    if system.counts.nodes != run.hosts:
        raise SpecError(f"{run.system} at {run.chips} chips has {system.counts.nodes} hosts, "
                        f"not the {run.hosts} the run reports", file=file,
                        field="calibration_runs[0].hosts")
    scaling = data.job_size_scaling
    job = (JobScaling() if scaling is None else
           JobScaling(exponent=scaling.exponent, reference_chips=run.chips,
                      source=scaling.source))
    pops = populations(system, job)
    causes = tuple(_calibrated(c, run, pops, file, f"causes[{i}]")
                   for i, c in enumerate(data.causes))
    counted = sum(c.count or 0 for c in data.causes if c.run == run.id)
    if counted != run.unexpected_interruptions:
        raise SpecError(f"the counted causes add up to {counted}, not the run's "
                        f"{run.unexpected_interruptions} unexpected interruptions",
                        file=file, field="causes")
    ids = [c.id for c in causes]
    if len(set(ids)) != len(ids):
        raise SpecError("duplicate cause id", file=file, field="causes")
    return RateBook(causes=causes, run=run, calibration_system=system,
                    cross_checks=tuple(data.cross_checks),
                    observations=tuple(data.observations),
                    recovery=_recovery(data.recovery, file),
                    recovery_sources={r.id: r for r in data.recovery}, job_scaling=job)
