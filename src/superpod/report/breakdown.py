"""Tables shared by the views: a time breakdown, infeasible layouts by reason."""

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


def infeasible_table(counts: dict[str, int]) -> Table:
    """Infeasible layouts of a search, counted by reason."""
    t = Table(title="infeasible layouts by reason", title_justify="left")
    t.add_column("reason")
    t.add_column("count", justify="right")
    for k, v in counts.items():
        t.add_row(k, f"{v:,}")
    return t
