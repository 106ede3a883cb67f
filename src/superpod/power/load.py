"""Power at a given load: per component, for the IT envelope and the facility.

The system model (``superpod.hardware.system``) gives each component group's power at full
load, ``System.power_breakdown_w`` (accelerators at TDP with HBM inside it, CPUs, NICs,
scale-up and scale-out switches, optics, and an ``other`` overhead of fans, conversion,
DRAM and storage). Here each group is scaled between an idle floor and that full value:

    P_g(load) = P_g,full x [f_g + (1 - f_g) x a_g(load)]                    (1)

with f_g the group's idle fraction and a_g in [0, 1] its activity:

* accelerators: by activity (issue 14, convention 8): the package's dynamic power is split
  between its tensor / vector cores, its HBM and its links, and each part follows its own
  activity (``superpod.power.activity``):

      a_acc = s_c u_c + s_m u_m + s_l u_l,   s_c + s_m + s_l = 1                 (2)

  with u_c the share of time the tensor / vector cores run kernels (a chip running GEMMs
  back to back draws about its TDP at any precision), u_m the HBM bandwidth utilization and
  u_l the scale-up links' busy fraction. The shares come from
  energy per bit x the chip's own bandwidths (``activity.component_shares``), so the same
  job at FP8 and at BF16 draws what its cores, memory and links do, not its MFU against the
  chosen precision's peak;
* CPUs: a = the accelerators' activity (host work follows the job's pace);
* NICs and switches: a = u_n, the network utilization;
* optics: constant (f = 1): lasers and drivers (DSP or linear) draw the same power idle;
* other: scales with accelerator + CPU power, as the system model defines it
  (``node.overhead_fraction`` of accelerator + CPU power).

At full load (u_c = u_m = u_n = 1) every group equals ``power_breakdown_w``; at zero load
(all u = 0) the total is the idle power sum_g f_g P_g,full. The keys of the breakdown are
``power_breakdown_w``'s, and they add up to the total.

Facility power = IT power x PUE (The Green Grid's definition). Energy per token is facility
(or IT) power divided by tokens per second.

Idle fractions (assumptions; what each rests on):
* accelerator 0.30 of TDP: a chip inside a running job that waits on communication keeps
  its clocks and HBM active; an idle H100 SXM reads 60-100 W in nvidia-smi (recalled), so
  0.3 is the in-job floor, not a parked GPU;
* CPU 0.50: server CPUs with their memory idle near half their TDP (recalled);
* NIC and switch 0.80: SerDes and ASIC power is mostly static, traffic moves a small part
  (recalled, no datasheet retrieved);
* optics 1.0: pluggable module power does not follow traffic (hardware.md C.1 lists one
  power per module).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from superpod.errors import SpecError
from superpod.hardware.system import System
from superpod.power.activity import component_shares

GROUPS = ("accelerators", "cpus", "nics", "switches", "optics", "other")


def group_of(key: str) -> str:
    """``switches_scale_up`` -> ``switches`` (the System's own folding rule)."""
    return key.split("_scale")[0]


@dataclass(frozen=True)
class Load:
    """Utilisations in [0, 1]: compute (MFU-like), memory bandwidth, network."""

    compute: float = 1.0
    memory: float = 1.0
    network: float = 1.0

    def __post_init__(self) -> None:
        for name in ("compute", "memory", "network"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0) or math.isnan(v):
                raise SpecError("a utilization must lie in [0, 1]", field=name, value=v)

    @classmethod
    def uniform(cls, utilization: float) -> Load:
        return cls(utilization, utilization, utilization)

    @classmethod
    def idle(cls) -> Load:
        return cls(0.0, 0.0, 0.0)

    def accelerator_activity(self, shares: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
                             ) -> float:
        """Formula (2): a = s_c u_c + s_m u_m + s_l u_l for shares (s_c, s_m, s_l)."""
        s_c, s_m, s_l = shares
        return s_c * self.compute + s_m * self.memory + s_l * self.network


@dataclass(frozen=True)
class PowerModel:
    """Idle fractions f_g of formula (1) (see the module docstring for their basis)."""

    accelerator_idle_fraction: float = 0.30
    cpu_idle_fraction: float = 0.50
    nic_idle_fraction: float = 0.80
    switch_idle_fraction: float = 0.80
    optics_idle_fraction: float = 1.0

    def __post_init__(self) -> None:
        for name, v in self.__dict__.items():
            if not 0.0 <= v <= 1.0:
                raise SpecError("an idle fraction must lie in [0, 1]", field=name, value=v)

    def idle_fraction(self, group: str) -> float:
        return {"accelerators": self.accelerator_idle_fraction,
                "cpus": self.cpu_idle_fraction, "nics": self.nic_idle_fraction,
                "switches": self.switch_idle_fraction,
                "optics": self.optics_idle_fraction}[group]


def _scaled(full_w: float, idle_fraction: float, activity: float) -> float:
    """Formula (1) for one group."""
    return full_w * (idle_fraction + (1.0 - idle_fraction) * activity)


def _activity(group: str, load: Load, system: System) -> float:
    if group in ("accelerators", "cpus"):
        return load.accelerator_activity(component_shares(system.chip))
    return load.network if group in ("nics", "switches") else 1.0


def power_breakdown_w(system: System, load: Load | None = None,
                      model: PowerModel | None = None) -> dict[str, float]:
    """IT power by ``System.power_breakdown_w`` key at ``load`` (default: full load)."""
    load = load or Load()
    model = model or PowerModel()
    full = system.power_breakdown_w
    out: dict[str, float] = {}
    for key, watts in full.items():
        group = group_of(key)
        if group == "other":
            continue
        out[key] = _scaled(watts, model.idle_fraction(group), _activity(group, load, system))
    base_full = full["accelerators"] + full["cpus"]
    base_now = out["accelerators"] + out["cpus"]
    out["other"] = full["other"] * (base_now / base_full if base_full else 1.0)
    return {k: out[k] for k in full}  # the System's key order


def idle_power_w(system: System, model: PowerModel | None = None) -> float:
    """sum_g f_g P_g,full, with ``other`` following accelerators + CPUs."""
    model = model or PowerModel()
    full = system.power_breakdown_w
    total, base_full, base_idle = 0.0, 0.0, 0.0
    for key, watts in full.items():
        group = group_of(key)
        if group == "other":
            continue
        idle = watts * model.idle_fraction(group)
        total += idle
        if group in ("accelerators", "cpus"):
            base_full, base_idle = base_full + watts, base_idle + idle
    return total + full["other"] * (base_idle / base_full if base_full else 1.0)


def groups_w(breakdown_w: dict[str, float]) -> dict[str, float]:
    """A breakdown folded into accelerators / cpus / nics / switches / optics / other."""
    out = dict.fromkeys(GROUPS, 0.0)
    for key, watts in breakdown_w.items():
        out[group_of(key)] += watts
    return out


def energy_per_token_j(power_w: float, tokens_per_s: float) -> float:
    """Joules per token at a steady ``tokens_per_s``."""
    if not tokens_per_s > 0:
        raise SpecError("must be positive", field="--tokens-per-s", value=tokens_per_s)
    return power_w / tokens_per_s


@dataclass(frozen=True)
class PowerReport:
    """Power of one system at one load (W), and per token if a rate is given."""

    load: Load
    breakdown_w: dict[str, float]
    pue: float
    idle_w: float
    tokens_per_s: float | None = None

    @property
    def it_w(self) -> float:
        return sum(self.breakdown_w.values())

    @property
    def facility_w(self) -> float:
        return self.it_w * self.pue

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "load": {"compute": self.load.compute, "memory": self.load.memory,
                     "network": self.load.network},
            "it_power_w": self.it_w, "facility_power_w": self.facility_w, "pue": self.pue,
            "idle_it_power_w": self.idle_w,
            "power_breakdown_w": groups_w(self.breakdown_w),
            "power_detail_w": dict(self.breakdown_w),
        }
        if self.tokens_per_s:
            out |= {"tokens_per_s": self.tokens_per_s,
                    "it_j_per_token": energy_per_token_j(self.it_w, self.tokens_per_s),
                    "facility_j_per_token":
                        energy_per_token_j(self.facility_w, self.tokens_per_s),
                    "tokens_per_j": self.tokens_per_s / self.facility_w,
                    "tokens_per_it_j": self.tokens_per_s / self.it_w}
        return out


def power_report(system: System, load: Load | None = None, tokens_per_s: float | None = None,
                 pue: float | None = None, model: PowerModel | None = None) -> PowerReport:
    """Power by component at ``load``, facility power at ``pue`` (default: the system's)."""
    pue = system.spec.pue if pue is None else pue
    if not 1.0 <= pue <= 3.0:
        raise SpecError("PUE must lie in [1, 3]", field="pue", value=pue)
    return PowerReport(load=load or Load(), breakdown_w=power_breakdown_w(system, load, model),
                       pue=pue, idle_w=idle_power_w(system, model), tokens_per_s=tokens_per_s)
