"""Units: parse quantities written with their unit, convert to SI once, format for people.

Inside superpod every dimensional number is an SI float whose name carries its unit
(``hbm_bandwidth_bytes_per_s``, ``power_w``). Files carry the unit next to the number
(``"3.35 TB/s"``); this module is the one place where that text becomes a float.

Prefixes are decimal (k = 1e3, G = 1e9, T = 1e12 ...). Binary prefixes are accepted only
when written explicitly (KiB, MiB, GiB, TiB, PiB = 2**10 ... 2**50). Bits and bytes are
told apart by case: ``Gb/s`` is gigabits per second, ``GB/s`` gigabytes per second.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from enum import StrEnum

DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Z": 1e21}
BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}
TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0,
        "d": 86400.0}

BITS_PER_BYTE = 8.0


class Dim(StrEnum):
    """Physical dimensions a quantity field may have."""

    BYTES = "bytes"
    BYTES_PER_S = "bytes/s"
    BITS_PER_S = "bits/s"
    FLOP_PER_S = "FLOP/s"
    POWER = "power"
    TIME = "time"
    AREA = "area"
    MONEY = "money"


def _table(dim: Dim) -> dict[str, float]:
    """Every accepted unit spelling for a dimension, mapped to its SI factor."""
    out: dict[str, float] = {}
    if dim is Dim.BYTES:
        out |= {f"{p}B": f for p, f in DECIMAL.items()}
        out |= {f"{p}B": f for p, f in BINARY.items()}
    elif dim is Dim.BYTES_PER_S:
        out |= {f"{p}B/s": f for p, f in DECIMAL.items()}
        out |= {f"{p}B/s": f for p, f in BINARY.items()}
    elif dim is Dim.BITS_PER_S:
        out |= {f"{p}b/s": f for p, f in DECIMAL.items()}
        out |= {f"{p}bps": f for p, f in DECIMAL.items()}
    elif dim is Dim.FLOP_PER_S:
        for p, f in DECIMAL.items():
            out |= {f"{p}FLOP/s": f, f"{p}FLOPS": f, f"{p}OP/s": f, f"{p}OPS": f}
    elif dim is Dim.POWER:
        out |= {f"{p}W": f for p, f in DECIMAL.items()}
    elif dim is Dim.TIME:
        out |= TIME
    elif dim is Dim.AREA:
        out |= {"m2": 1.0, "m^2": 1.0, "m²": 1.0}
    elif dim is Dim.MONEY:
        out |= {"USD": 1.0, "$": 1.0, "kUSD": 1e3, "MUSD": 1e6}
    return out


_TABLES: Mapping[Dim, dict[str, float]] = {d: _table(d) for d in Dim}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([^\s\d].*?)\s*$")


class UnitError(ValueError):
    """A quantity's text could not be read as the expected dimension."""


def allowed_units(dim: Dim) -> str:
    """A short human list of example units for a dimension (for error messages)."""
    examples = {
        Dim.BYTES: "B, GB, TB, GiB, TiB",
        Dim.BYTES_PER_S: "GB/s, TB/s, GiB/s",
        Dim.BITS_PER_S: "Gb/s, Tb/s, Gbps",
        Dim.FLOP_PER_S: "TFLOP/s, PFLOP/s",
        Dim.POWER: "W, kW, MW",
        Dim.TIME: "s, ms, us, ns",
        Dim.AREA: "m2",
        Dim.MONEY: "USD",
    }
    return examples[dim]


def parse_quantity(value: object, dim: Dim, *, allow_negative: bool = False,
                   positive: bool = False) -> float:
    """Read ``"3.35 TB/s"`` (or ``"1.5 kW"`` ...) as an SI float of dimension ``dim``.

    A bare number is refused: every dimensional value in a file states its unit. The value
    must be finite after scaling to SI (``1e308 PB/s`` overflows); ``positive``: zero is
    refused too (a bandwidth, capacity or peak something is divided by).
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise UnitError(
            f"needs a number with a unit ({allowed_units(dim)}), got a bare "
            f"{type(value).__name__}"
        )
    m = _QUANTITY.match(value)
    if not m:
        raise UnitError(f"is not a number followed by a unit ({allowed_units(dim)})")
    number, unit = float(m.group(1)), m.group(2).strip()
    factor = _TABLES[dim].get(unit)
    if factor is None:
        raise UnitError(f"unit '{unit}' is not a {dim.value} unit ({allowed_units(dim)})")
    if not math.isfinite(number):
        raise UnitError("is not finite")
    if number < 0 and not allow_negative:
        raise UnitError("must not be negative")
    if positive and number == 0:
        raise UnitError("must be positive (it is divided by)")
    si_value = number * factor
    if not math.isfinite(si_value):
        raise UnitError("is too large (not finite in SI units)")
    return si_value


def parse_size_bytes(value: object) -> float:
    """Read a byte count written like ``256MiB``, ``1 GiB``, ``4096`` (plain = bytes)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value > 1e30:
            raise UnitError("is not a finite byte count")
        if value < 0:
            raise UnitError("must not be negative")
        return float(value)
    return parse_quantity(value, Dim.BYTES)


# ----------------------------------------------------------------------------- formatting

_SI_STEPS = [(1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"),
             (1e3, "k"), (1.0, "")]


def si(value: float, unit: str, digits: int = 3) -> str:
    """Format an SI float with a decimal prefix: ``si(3.35e12, "B/s") -> "3.35 TB/s"``."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    mag = abs(value)
    for factor, prefix in _SI_STEPS:
        if mag >= factor:
            return f"{_sig(value / factor, digits)} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def _sig(x: float, digits: int) -> str:
    """Round to ``digits`` significant figures, keeping integers plain (1,075 not 1.08e+03)."""
    if abs(float(f"{x:.{digits}g}")) >= 10 ** digits:  # 999.6 rounds up to 1e+03
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def binary(value: float, unit: str = "B") -> str:
    """Format bytes with an explicit binary prefix: ``binary(2**30) -> "1 GiB"``."""
    for factor, prefix in ((2.0**50, "Pi"), (2.0**40, "Ti"), (2.0**30, "Gi"), (2.0**20, "Mi"),
                           (2.0**10, "Ki")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:g} {unit}"
