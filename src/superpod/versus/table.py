"""The comparison table: one row per figure, one column per system, a band per value and
the winner per row.

Throughput figures derive from the tokens/s of the best layout (after failures for training:
goodput = tokens/s x ETTR), divided by chips, cabinets, facility megawatts at that load or
millions of dollars of capex. Their band is the headline band of tokens/s per chip
(``trust.annotate``) applied as the same ratios (they are that figure times a constant of
the system); $/Mtok, the inverse of a throughput, takes the inverted ratios. Interruptions
per day come from the failure-rate book, which carries no validated band.

Winner: the highest value (the lowest for $/Mtok and interruptions); ``decisive`` when its
band clears every other system's band (no overlap), else the lead is within the bands;
``banded`` is false where some system's figure has no band (interruptions per day), so the
lead is neither settled nor unsettled by bands. A figure a system lacks (no price) is
``None`` with the reason and never wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

S_PER_DAY = 86400.0  #: the interruption row is shown per day (its unit says so)


@dataclass(frozen=True)
class Metric:
    key: str  # SI, as in the JSON (tokens per s per W, per USD)
    label: str
    unit: str
    better: str  # "high", "low" or "" (no winner: a budget, not a merit)
    banded: str  # "direct", "inverse" or ""
    scale: float = 1.0  # shown as value x scale (per W -> per MW, per USD -> per $M)


METRICS = (
    Metric("tokens_per_s", "tokens/s", "tok/s", "high", "direct"),
    Metric("tokens_per_s_per_chip", "tokens/s per chip", "tok/s", "high", "direct"),
    Metric("tokens_per_s_per_rack", "tokens/s per rack", "tok/s", "high", "direct"),
    Metric("tokens_per_s_per_w", "tokens/s per MW (facility)", "tok/s", "high", "direct",
           1e6),
    Metric("tokens_per_s_per_usd", "tokens/s per $M capex", "tok/s", "high", "direct", 1e6),
    Metric("tokens_per_j", "tokens per joule (facility)", "tok/J", "high", "direct"),
    Metric("usd_per_million_tokens", "$ per million tokens", "USD", "low", "inverse"),
    Metric("interruptions_per_day", "interruptions per day", "/day", "low", ""),
    Metric("chips", "chips", "", "", ""),
    Metric("facility_power_w", "facility power at load", "W", "", ""),
    Metric("capex_usd", "capex", "USD", "", ""),
)


def figures(side: dict[str, Any], chips: int, cabinets: int) -> dict[str, float | None]:
    """The table's figures for one system's training or serving row."""
    good = side.get("goodput") or {}
    tps = good.get("tokens_per_s", side.get("tokens_per_s"))
    fac = side.get("facility_power_w")
    cap = side.get("capex_usd")
    return {
        "tokens_per_s": tps,
        "tokens_per_s_per_chip": tps / chips if tps else None,
        "tokens_per_s_per_rack": tps / cabinets if tps and cabinets else None,
        "tokens_per_s_per_w": tps / fac if tps and fac else None,
        "tokens_per_s_per_usd": tps / cap if tps and cap else None,
        "tokens_per_j": side.get("tokens_per_j"),
        "usd_per_million_tokens": side.get("usd_per_million_tokens"),
        "interruptions_per_day": (good["interruptions_per_s"] * S_PER_DAY
                                  if good.get("interruptions_per_s") is not None else None),
        "chips": float(chips), "facility_power_w": fac, "capex_usd": cap,
    }


def band_ratio(side: dict[str, Any]) -> tuple[float, float] | None:
    """(low / value, high / value) of the headline band, or None without one."""
    b = side.get("band")
    v = side.get(b["metric"]) if b else None
    if not b or not v:
        return None
    return (b["low"] / v, b["high"] / v)


def _band(value: float | None, ratio: tuple[float, float] | None, how: str
          ) -> list[float] | None:
    if value is None or ratio is None or not how:
        return None
    lo, hi = ratio
    return [value * lo, value * hi] if how == "direct" else [value / hi, value / lo]


def _winner(m: Metric, cells: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    have = {k: c for k, c in cells.items() if c["value"] is not None}
    if not m.better or len(have) < 2:
        return None
    sign = 1.0 if m.better == "high" else -1.0
    best = max(have, key=lambda k: sign * have[k]["value"])
    b = have[best]["band"]
    decisive = b is not None and all(
        c["band"] is not None and (b[0] > c["band"][1] if sign > 0 else b[1] < c["band"][0])
        for k, c in have.items() if k != best)
    banded = all(c["band"] is not None for c in have.values())
    return {"system": best, "decisive": decisive, "banded": banded}


def table(sides: dict[str, dict[str, Any]], sizes: dict[str, tuple[int, int]],
          missing: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Rows of the table for one side (training or serving) of every system.

    ``sizes``: chips and cabinets per system; ``missing``: per system, figure -> why it is
    absent (e.g. no price)."""
    figs = {k: figures(s, *sizes[k]) for k, s in sides.items() if "infeasible" not in s}
    rows = []
    for m in METRICS:
        cells: dict[str, dict[str, Any]] = {}
        for k in sides:
            if k not in figs:
                cells[k] = {"value": float(sizes[k][0]) if m.key == "chips" else None,
                            "band": None, "missing": None if m.key == "chips" else
                            sides[k]["infeasible"]}
                continue
            v = figs[k][m.key]
            cells[k] = {"value": v, "band": _band(v, band_ratio(sides[k]), m.banded),
                        "missing": None if v is not None else missing.get(k, {}).get(
                            m.key, "not computed")}
        rows.append({"metric": m.key, "label": m.label, "unit": m.unit, "better": m.better,
                     "display_scale": m.scale, "cells": cells, "winner": _winner(m, cells)})
    return rows
