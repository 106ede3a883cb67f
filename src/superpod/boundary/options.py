"""Command-line numbers at the boundary: finite, in range, counts bounded.

Every ``superpod`` command's numeric options pass ``check_options`` before the command runs
(``superpod.cli.common.friendly``): a NaN or infinite float, a negative number, zero where
zero is not an answer, and a count beyond what the model can evaluate in seconds are one
``SpecError`` line naming the option. Bounds are data (``BOUNDS``), one entry per option
whose limit differs from the default rule:

* integers: ``>= 1`` (``>= 0`` where zero is an answer: ``ZERO_OK``), at most ``MAX_INT``;
* floats: finite and ``> 0`` (``>= 0`` where zero is an answer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from superpod.errors import SpecError

#: the largest integer option value without its own bound (2**31 - 1)
MAX_INT = 2**31 - 1
#: chips one system may be scaled to (CloudMatrix-class SuperClusters are ~500k chips)
MAX_CHIPS = 2**21
#: options whose zero is a real answer
ZERO_OK = frozenset({
    "mtp", "fail_links", "trials", "zero", "seed", "utilization", "load",
    "electricity_usd_per_kwh", "chip_price_usd", "weight_offload", "prefix_cache_hit",
    "mtp_acceptance"})
#: (lowest, highest) per option, where the default rule is not enough
BOUNDS: Mapping[str, tuple[float, float]] = {
    "chips": (1, MAX_CHIPS),
    "prefill_chips": (1, MAX_CHIPS),
    "decode_chips": (1, MAX_CHIPS),
    "ranks": (1, MAX_CHIPS * 4),
    "mtp": (0, 16),
    "trials": (0, 1_000_000),
    "seed": (0, 2**63 - 1),
    "top": (1, 10_000),
    "fail_links": (0, 1_000_000),
    "concurrent_groups": (1, 1_000_000),
    "ranks_per_chip": (1, 64),
    "zero": (0, 3),
    "utilization": (0, 1),
    "load": (0, 1),
    "mtp_acceptance": (0, 1),
    "weight_offload": (0, 1),
    "repeats": (1, 100_000),
    "years": (0.01, 100),
    "pue": (1, 10),
    "days": (1e-6, 1e6),
    "duration": (1e-6, 1e7),
    "context_len": (1, 1e8),
    "input_len": (1, 100_000_000),
    "output_len": (1, 100_000_000),
    "seq_len": (1, 100_000_000),
    "bytes_per_param": (1e-3, 1e3),
    "model_params": (1, 1e16),
}


def option_name(param: str, names: Mapping[str, str] | None = None) -> str:
    """The option a parameter is given with (``--global-batch`` for ``global_batch``)."""
    if names and param in names:
        return names[param]
    return "--" + param.replace("_", "-")


def check_number(param: str, value: Any, names: Mapping[str, str] | None = None) -> None:
    """One option's number against the rules above (``None`` and non-numbers pass)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    field = option_name(param, names)
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError("must be a finite number", field=field, value=value)
    low, high = BOUNDS.get(param, (0 if param in ZERO_OK else _tiny(value), _high(value)))
    if value < low or value > high or (low == 0 and value < 0):
        zero_ok = low <= 0
        allowed = (f"{_fmt(low)} to {_fmt(high)}" if param in BOUNDS
                   else f"{'>= 0' if zero_ok else '> 0'}, at most {_fmt(high)}")
        what = "must not be negative" if value < 0 else (
            "must be positive" if value == 0 else "out of range")
        raise SpecError(what, field=field, value=value, allowed=allowed)


def _tiny(value: int | float) -> float:
    return 1 if isinstance(value, int) else math.ulp(0.0)


def _high(value: int | float) -> float:
    return MAX_INT if isinstance(value, int) else 1e300


def _fmt(x: float) -> str:
    return f"{x:,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def check_options(kwargs: Mapping[str, Any], names: Mapping[str, str] | None = None) -> None:
    """Every numeric keyword argument of a command (lists of numbers included)."""
    for param, value in kwargs.items():
        if isinstance(value, list | tuple):
            for v in value:
                check_number(param, v, names)
        else:
            check_number(param, value, names)
