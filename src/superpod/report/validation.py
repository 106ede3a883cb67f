"""Text view of a ``validate`` result: the evaluated cases, then the summary per kind."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table


def validation_view(result: dict[str, Any]) -> Group:
    cases = Table(title="evaluated cases", title_justify="left")
    for col in ("id", "metric", "measured", "predicted", "error %", "note"):
        cases.add_column(col, justify="right" if col in ("measured", "predicted", "error %")
                         else "left")
    for c in result["cases"]:
        if c["status"] == "ok":
            cases.add_row(c["id"], c["metric"], f"{c['measured']:,.4g}",
                          f"{c['predicted']:,.4g}", f"{c['error_pct']:+.1f}", c.get("notes", ""))
        elif c["status"] == "error":
            cases.add_row(c["id"], c.get("metric", ""), "", "", "", f"[red]error[/red]: "
                          f"{c['reason']}")
    summary = Table(title="summary", title_justify="left")
    for col in ("kind", "cases", "ok", "unsupported", "error", "median |err| %", "max |err| %"):
        summary.add_column(col, justify="left" if col == "kind" else "right")
    for kind, s in result["summary"].items():
        med, mx = s["median_abs_error_pct"], s["max_abs_error_pct"]
        summary.add_row(kind, str(s["cases"]), str(s["ok"]), str(s["unsupported"]),
                        str(s["error"]), "-" if med is None else f"{med:.1f}",
                        "-" if mx is None else f"{mx:.1f}")
    reasons = sorted({c["reason"] for c in result["cases"] if c["status"] == "unsupported"})
    notes = Table(show_header=False, box=None)
    for r in reasons:
        notes.add_row(f"unsupported: {r}")
    return Group(cases, summary, notes)
