"""Cost: capex from parts, opex from energy, amortisation, and dollars per million tokens.

Capex by group (every price an input; defaults in ``catalog/prices.yaml``):

    accelerators     = chips x p_chip
    hosts            = nodes x p_host            (everything in a node but chips and NICs)
    nics             = sum_n count_n x p_n
    scale_up_fabric  = chips x p_up             if an analyst figure exists, else
                       per-domain switches x p_sw + scale-up modules x p_mod
    scale_out_fabric = switches x p_sw + NIC-side modules x p_mod + switch-side x p_mod
    facility         = P_IT,full x c_facility   (USD per watt of IT load)

Opex: electricity for the facility's energy. The system is busy a fraction U of the time at
the given load, idle otherwise:

    P_avg = PUE x [U x P_IT(load) + (1 - U) x P_IT,idle]                        (1)
    opex per year = P_avg x 8,760 h x price per kWh                            (2)

Amortisation: capital recovery factor crf(r, n) = r / (1 - (1 + r)^-n), = 1/n at r = 0
(straight line), over n_IT years for IT capex and n_facility for the facility. Cost per
token:

    USD per Mtok = (crf_IT x capex_IT + crf_fac x capex_fac + opex) / (R x U x year / 1e6)  (3)

with R the tokens per second while busy (trained or served).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from superpod.cost.prices import J_PER_KWH, PriceBook, load_price_book
from superpod.errors import SpecError
from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System
from superpod.power.load import Load, power_report

S_PER_YEAR = 8760.0 * 3600.0


@dataclass(frozen=True)
class Prices:
    """Every price and financial input of one cost evaluation (SI: USD, W, J, years)."""

    chip_usd: float
    host_per_node_usd: float
    facility_usd_per_w: float
    electricity_usd_per_j: float
    pue: float
    depreciation_years: float
    facility_depreciation_years: float
    cost_of_capital: float = 0.0
    scale_up_per_chip_usd: float | None = None  # replaces per-part scale-up pricing
    part_usd: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)  # input -> evidence label
    electricity_region: str = ""

    def __post_init__(self) -> None:
        for name in ("chip_usd", "host_per_node_usd", "facility_usd_per_w",
                     "electricity_usd_per_j", "cost_of_capital"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise SpecError("must be a finite, non-negative number", field=name, value=v)
        if not 1.0 <= self.pue <= 3.0:
            raise SpecError("PUE must lie in [1, 3]", field="pue", value=self.pue)
        if not (self.depreciation_years > 0 and self.facility_depreciation_years > 0):
            raise SpecError("depreciation must be a positive number of years",
                            field="--years", value=self.depreciation_years)

    @property
    def electricity_usd_per_kwh(self) -> float:
        return self.electricity_usd_per_j * J_PER_KWH


def default_prices(system: System, cat: Catalog, book: PriceBook | None = None,
                   region: str | None = None, chip_usd: float | None = None) -> Prices:
    """The price book's defaults for ``system``; a chip the book does not price needs
    ``chip_usd``."""
    book = book or load_price_book()
    spec, d = system.spec, book.data
    chip = book.chip(spec.chip)
    if chip is None and chip_usd is None:
        raise SpecError(f"no price for chip '{spec.chip}' in {book.file}; give one",
                        field="--chip-price-usd",
                        allowed="priced chips: " + ", ".join(c.id for c in d.chips))
    host = book.host(spec.id)
    cpus_per_node = spec.node.cpus.count if spec.node.cpus else 0.0
    up = book.scale_up(spec.id)
    elec = book.electricity(region or book.default_region(spec))
    parts = _part_ids(system)
    prices = {p: v for p in parts if (v := book.part_usd(p, cat)) is not None}
    evidence = {
        "chip_usd": "user" if chip_usd is not None or chip is None else chip.evidence,
        "host_per_node_usd": host.evidence if host else d.host_default_per_cpu.evidence,
        "facility_usd_per_w": d.facility.capex_per_w.evidence,
        "electricity_usd_per_j": elec.evidence, "pue": d.facility.pue.evidence,
        "depreciation_years": d.finance.depreciation_years.evidence,
    }
    if up:
        evidence["scale_up_per_chip_usd"] = up.evidence
    return Prices(
        chip_usd=chip_usd if chip_usd is not None else chip.price_usd if chip else 0.0,
        host_per_node_usd=host.price_per_node_usd if host
        else cpus_per_node * d.host_default_per_cpu.value_usd,
        facility_usd_per_w=d.facility.capex_per_w.value_usd_per_w,
        electricity_usd_per_j=elec.usd_per_j, pue=d.facility.pue.value,
        depreciation_years=d.finance.depreciation_years.value,
        facility_depreciation_years=d.facility.depreciation_years.value,
        cost_of_capital=d.finance.cost_of_capital.value,
        scale_up_per_chip_usd=up.price_per_chip_usd if up else None,
        part_usd=prices, evidence=evidence, electricity_region=elec.id)


def _part_ids(system: System) -> set[str]:
    spec = system.spec
    su, so = spec.scale_up, spec.scale_out
    ids = {n.part for n in spec.node.nics} | {t.part for t in su.switches if t.per == "domain"}
    ids |= {p for p in (so.switch, so.transceiver, so.nic_transceiver) if p}
    if su.optics:
        ids.add(su.optics.part)
    return ids


@dataclass(frozen=True)
class Capex:
    """Capital cost by group (USD), and the parts that had no price."""

    breakdown_usd: dict[str, float]
    unpriced: tuple[str, ...] = ()

    @property
    def total_usd(self) -> float:
        return sum(self.breakdown_usd.values())

    @property
    def it_usd(self) -> float:
        """Everything but the facility."""
        return self.total_usd - self.breakdown_usd["facility"]


class _Tally:
    """Sums count x price per group and remembers the parts without a price."""

    def __init__(self, prices: Prices) -> None:
        self.prices, self.unpriced = prices, set[str]()

    def __call__(self, part: str | None, count: float) -> float:
        if part is None or count <= 0:
            return 0.0
        price = self.prices.part_usd.get(part)
        if price is None:
            self.unpriced.add(part)
            return 0.0
        return count * price


def capex(system: System, prices: Prices) -> Capex:
    """Capex by group; the facility is sized on IT power at full load."""
    spec, c, tally = system.spec, system.counts, _Tally(prices)
    su, so = spec.scale_up, spec.scale_out
    nics = sum(tally(n.part, n.count * c.nodes) for n in spec.node.nics)
    if prices.scale_up_per_chip_usd is not None:
        up = prices.scale_up_per_chip_usd * c.chips if c.chips_per_domain > 1 else 0.0
    else:
        up = sum(tally(t.part, n) for n, t in zip(c.scale_up_switches_per_tier, su.switches,
                                                   strict=True) if t.per == "domain")
        up += tally(su.optics.part if su.optics else None, c.scale_up_optical_modules)
    out = tally(so.switch, c.scale_out_switches)
    out += tally(so.nic_transceiver or so.transceiver, c.scale_out_nic_modules)
    out += tally(so.transceiver, c.scale_out_switch_modules)
    breakdown = {
        "accelerators": c.chips * prices.chip_usd, "hosts": c.nodes * prices.host_per_node_usd,
        "nics": nics, "scale_up_fabric": up, "scale_out_fabric": out,
        "facility": system.power_w * prices.facility_usd_per_w,
    }
    return Capex(breakdown_usd=breakdown, unpriced=tuple(sorted(tally.unpriced)))


def capital_recovery_factor(rate: float, years: float) -> float:
    """crf(r, n) = r / (1 - (1 + r)^-n); 1/n when r = 0."""
    if rate == 0:
        return 1.0 / years
    return float(rate / (1.0 - math.pow(1.0 + rate, -years)))


def average_facility_power_w(busy_it_w: float, idle_it_w: float, utilization: float,
                             pue: float) -> float:
    """(1): PUE x [U x P_busy + (1 - U) x P_idle]."""
    return pue * (utilization * busy_it_w + (1.0 - utilization) * idle_it_w)


def usd_per_million_tokens(annual_usd: float, tokens_per_s: float, utilization: float
                           ) -> float:
    """(3): annual cost over the tokens of a year (busy a fraction U of it)."""
    tokens = tokens_per_s * utilization * S_PER_YEAR
    return math.inf if tokens <= 0 else annual_usd / tokens * 1e6


@dataclass(frozen=True)
class CostQuery:
    """A throughput and how busy the system is; ``load`` is the power model's load."""

    tokens_per_s: float
    utilization: float = 1.0  # share of the year the system is busy at tokens_per_s
    load: float = 1.0  # compute = memory = network utilization while busy
    #: the job's activity (tensor cores, HBM, links) while busy; replaces ``load``
    activity: Load | None = None

    def __post_init__(self) -> None:
        if not (self.tokens_per_s > 0 and math.isfinite(self.tokens_per_s)):
            raise SpecError("must be positive", field="--tokens-per-s", value=self.tokens_per_s)
        for name in ("utilization", "load"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise SpecError("must lie in [0, 1]", field=f"--{name}", value=v)


def cost_report(system: System, prices: Prices, q: CostQuery) -> dict[str, Any]:
    """The ``cost --json`` object."""
    cap = capex(system, prices)
    power = power_report(system, q.activity or Load.uniform(q.load), q.tokens_per_s,
                         prices.pue)
    avg_w = average_facility_power_w(power.it_w, power.idle_w, q.utilization, prices.pue)
    energy_j = avg_w * S_PER_YEAR
    opex = energy_j * prices.electricity_usd_per_j
    amort_it = cap.it_usd * capital_recovery_factor(prices.cost_of_capital,
                                                    prices.depreciation_years)
    amort_fac = cap.breakdown_usd["facility"] * capital_recovery_factor(
        prices.cost_of_capital, prices.facility_depreciation_years)
    annual = amort_it + amort_fac + opex
    return {
        "system": system.spec.id, "chips": system.counts.chips,
        "tokens_per_s": q.tokens_per_s, "utilization": q.utilization, "load": q.load,
        "capex_usd": cap.total_usd, "capex_it_usd": cap.it_usd,
        "capex_per_chip_usd": cap.total_usd / system.counts.chips,
        "capex_breakdown_usd": cap.breakdown_usd, "unpriced_parts": list(cap.unpriced),
        "opex_usd_per_year": opex, "facility_energy_j_per_year": energy_j,
        "annual_cost_usd": {"capex_it": amort_it, "capex_facility": amort_fac,
                            "opex": opex, "total": annual},
        "usd_per_million_tokens": usd_per_million_tokens(annual, q.tokens_per_s,
                                                         q.utilization),
        "tco_usd": cap.total_usd + opex * prices.depreciation_years,
        "it_power_w": power.it_w,
        "facility_power_w": power.facility_w, "idle_it_power_w": power.idle_w,
        "average_facility_power_w": avg_w,
        "tokens_per_j": power.tokens_per_s / power.facility_w if power.tokens_per_s else None,
        "j_per_token": power.facility_w / q.tokens_per_s,
        "power_breakdown_w": power.to_dict()["power_breakdown_w"],
        "inputs": {
            "chip_usd": prices.chip_usd, "host_per_node_usd": prices.host_per_node_usd,
            "scale_up_per_chip_usd": prices.scale_up_per_chip_usd,
            "facility_usd_per_w": prices.facility_usd_per_w,
            "electricity_usd_per_j": prices.electricity_usd_per_j,
            "electricity_region": prices.electricity_region, "pue": prices.pue,
            "years": prices.depreciation_years,
            "facility_years": prices.facility_depreciation_years,
            "cost_of_capital": prices.cost_of_capital, "evidence": dict(prices.evidence)},
        "warnings": list(system.warnings) + (
            [f"no price for: {', '.join(cap.unpriced)} (counted as 0)"] if cap.unpriced
            else []),
    }


def with_overrides(prices: Prices, **changes: float | None) -> Prices:
    """``prices`` with the given (non-None) inputs replaced; their evidence becomes 'user'."""
    given = {k: v for k, v in changes.items() if v is not None}
    evidence = dict(prices.evidence) | dict.fromkeys(given, "user")
    return replace(prices, **given, evidence=evidence)  # type: ignore[arg-type]
