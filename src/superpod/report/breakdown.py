"""A breakdown table: where a step's time goes, each part's share of the total."""

from __future__ import annotations

from rich.table import Table

from superpod.units import si


def breakdown_table(breakdown_s: dict[str, float], total_s: float, title: str) -> Table:
    """Rows for the parts above zero, seconds and share of ``total_s``."""
    b = Table(title=title, title_justify="left")
    b.add_column("part")
    b.add_column("seconds", justify="right")
    b.add_column("share", justify="right")
    for k, v in breakdown_s.items():
        if v > 0:
            b.add_row(k, si(v, "s"), f"{v / (total_s or 1.0):.1%}")
    return b
