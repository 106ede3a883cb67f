"""The price book: ``catalog/prices.yaml`` read, validated and converted to SI.

Money is USD; electricity becomes USD per joule (1 kWh = 3.6e6 J) and facility capex USD
per watt, at this boundary only. Part prices come from ``parts.yaml`` (``price:``) first and
from this file's ``parts`` list second, so each part has at most one price in each file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from superpod.errors import SpecError
from superpod.hardware.catalog import CATALOG_DIR, Catalog
from superpod.hardware.loading import read_model_file
from superpod.hardware.specs import Evidence, SystemSpec
from superpod.units import Dim, UnitError, parse_quantity

PRICES_FILE = CATALOG_DIR / "prices.yaml"
J_PER_KWH = 3.6e6
GROUPS = ("accelerators", "hosts", "nics", "scale_up_fabric", "scale_out_fabric", "facility")
Group = Literal["accelerators", "hosts", "nics", "scale_up_fabric", "scale_out_fabric",
                "facility"]
_PER = re.compile(r"^\s*([0-9.eE+-]+)\s*USD\s*/\s*(kWh|MWh|Wh|W|kW|MW)\s*$")
_ENERGY_J = {"Wh": 3600.0, "kWh": J_PER_KWH, "MWh": 1e3 * J_PER_KWH}
_POWER_W = {"W": 1.0, "kW": 1e3, "MW": 1e6}


def _money(v: object) -> float:
    try:
        return parse_quantity(v, Dim.MONEY)
    except UnitError as exc:
        raise ValueError(str(exc)) from None


def _per(table: Mapping[str, float], what: str) -> BeforeValidator:
    def parse(v: object) -> float:
        m = _PER.match(v) if isinstance(v, str) else None
        if m is None or m.group(2) not in table:
            raise ValueError(f"needs USD per {what} with its unit, e.g. "
                             f"'0.08 USD/kWh' or '11 USD/W'")
        number = float(m.group(1))
        if number < 0:
            raise ValueError("must not be negative")
        return number / table[m.group(2)]
    return BeforeValidator(parse)


Usd = Annotated[float, BeforeValidator(_money)]
UsdPerJ = Annotated[float, _per(_ENERGY_J, "energy")]
UsdPerW = Annotated[float, _per(_POWER_W, "power")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class _Sourced(_Spec):
    evidence: Evidence
    source: str = Field(min_length=3)
    notes: str = ""


class ChipPrice(_Sourced):
    id: str
    price_usd: Usd = Field(alias="price")
    low_usd: Usd | None = Field(default=None, alias="low")
    high_usd: Usd | None = Field(default=None, alias="high")


class HostPrice(_Sourced):
    id: str
    systems: list[str]
    price_per_node_usd: Usd = Field(alias="price_per_node")


class ScaleUpPrice(_Sourced):
    id: str
    systems: list[str]
    price_per_chip_usd: Usd = Field(alias="price_per_chip")


class PartPrice(_Sourced):
    id: str
    price_usd: Usd = Field(alias="price")


class ElectricityPrice(_Sourced):
    id: str
    usd_per_j: UsdPerJ = Field(alias="price")


class ElectricityDefault(_Sourced):
    region: str
    by_vendor: dict[str, str] = Field(default_factory=dict)


class SourcedUsd(_Sourced):
    value_usd: Usd = Field(alias="value")


class SourcedNumber(_Sourced):
    value: float = Field(ge=0)


class SourcedUsdPerW(_Sourced):
    value_usd_per_w: UsdPerW = Field(alias="value")


class Facility(_Spec):
    pue: SourcedNumber
    capex_per_w: SourcedUsdPerW
    depreciation_years: SourcedNumber


class Finance(_Spec):
    depreciation_years: SourcedNumber
    cost_of_capital: SourcedNumber


class ReferenceTotal(_Sourced):
    id: str
    system: str
    chips: int = Field(ge=1)
    total_per_chip_usd: Usd = Field(alias="total_per_chip")
    low_usd: Usd = Field(alias="low")
    high_usd: Usd = Field(alias="high")
    groups: list[Group]


class PriceFile(_Spec):
    chips: list[ChipPrice]
    hosts: list[HostPrice]
    host_default_per_cpu: SourcedUsd
    scale_up_interconnect: list[ScaleUpPrice]
    parts: list[PartPrice]
    electricity: list[ElectricityPrice]
    electricity_default: ElectricityDefault
    facility: Facility
    finance: Finance
    reference_totals: list[ReferenceTotal] = Field(default_factory=list)


@dataclass(frozen=True)
class PriceBook:
    """The validated price file with lookups by chip, system and part."""

    data: PriceFile
    file: str

    def chip(self, chip_id: str) -> ChipPrice | None:
        return next((c for c in self.data.chips if c.id == chip_id), None)

    def host(self, system_id: str) -> HostPrice | None:
        return next((h for h in self.data.hosts if system_id in h.systems), None)

    def scale_up(self, system_id: str) -> ScaleUpPrice | None:
        return next((s for s in self.data.scale_up_interconnect if system_id in s.systems),
                    None)

    def part_usd(self, part_id: str, cat: Catalog) -> float | None:
        """A part's price: ``parts.yaml`` first, then this file's ``parts``."""
        for section in (cat.transceivers, cat.switches, cat.nics, cat.cpus):
            part = section.get(part_id)
            if part is not None and part.price_usd is not None:
                return part.price_usd
        return next((p.price_usd for p in self.data.parts if p.id == part_id), None)

    def electricity(self, region: str) -> ElectricityPrice:
        for e in self.data.electricity:
            if e.id == region:
                return e
        raise SpecError("unknown electricity region", file=self.file, field="region",
                        value=region, allowed=", ".join(e.id for e in self.data.electricity))

    def default_region(self, spec: SystemSpec) -> str:
        d = self.data.electricity_default
        return d.by_vendor.get(spec.vendor, d.region)


def load_price_book(path: str | Path | None = None) -> PriceBook:
    """Read and validate a price file (default: the built-in one, cached)."""
    return _default_book() if path is None else _load(Path(path))


@lru_cache(maxsize=1)
def _default_book() -> PriceBook:
    return _load(PRICES_FILE)


def _load(path: Path) -> PriceBook:
    file = str(path)
    data = read_model_file(path, PriceFile)
    book = PriceBook(data=data, file=file)
    book.electricity(data.electricity_default.region)
    for region in data.electricity_default.by_vendor.values():
        book.electricity(region)
    return book
