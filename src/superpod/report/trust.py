"""Text of a result's trust: its band, what it rests on, where it extrapolates."""

from __future__ import annotations

from typing import Any


def band_text(row: dict[str, Any], metric: str, fmt: str = "{:,.0f}") -> str:
    """``(1,050-1,420; 80 % band, 31 cases)`` for ``metric``'s band, or ``""``."""
    b = (row.get("bands") or {}).get(metric)
    if not b:
        return ""
    fell = f", class {b['class']}" if "fallback_from" in b else ""
    return (f" ({fmt.format(b['low'])}-{fmt.format(b['high'])}; {b['level']:.0%} band, "
            f"{b['cases']} cases{fell})")


def trust_lines(row: dict[str, Any]) -> list[str]:
    """``extrapolates:`` and ``rests on:`` lines (text as written: no markup is read)."""
    lines = [f"extrapolates: {str(w)}" for w in row.get("extrapolates") or []]
    ev = row.get("evidence") or {}
    if ev:
        lines.append("rests on: " + ", ".join(f"{k.replace('_', ' ')} {v['basis']}"
                                              for k, v in ev.items()))
    return lines
