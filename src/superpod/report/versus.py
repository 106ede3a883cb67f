"""Text view of ``superpod versus``: per side (training, serving) a table of figures per
system with their bands and the winner per row, then the layouts, where each loses time,
and what every figure rests on."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from superpod.units import si

SIDES = (("train", "training"), ("serve", "serving"))


def fmt(value: float | None, unit: str) -> str:
    """A table value: SI prefix for W and USD, thousands separators otherwise."""
    if value is None:
        return "-"
    if unit == "W":
        return si(value, "W")
    if unit == "USD":
        return f"${value:,.3f}" if value < 100 else f"${value / 1e6:,.1f}M"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.3g}k"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def shown(row: dict[str, Any], key: str) -> dict[str, Any]:
    """A table cell as displayed: value and band times the row's ``display_scale`` (the
    JSON keeps SI: tokens/s per W is shown per MW)."""
    c, k = row["cells"][key], float(row.get("display_scale", 1.0))
    return {**c, "value": None if c["value"] is None else c["value"] * k,
            "band": None if c["band"] is None else [b * k for b in c["band"]]}


def _cell(c: dict[str, Any], unit: str) -> str:
    if c["value"] is None:
        return "n/a"
    b = c["band"]
    return fmt(c["value"], unit) + (f" ({fmt(b[0], unit)}-{fmt(b[1], unit)})" if b else "")


def winner_text(w: dict[str, Any] | None) -> str:
    """The winner cell: the system, and whether its lead clears the bands."""
    if w is None:
        return ""
    if w["decisive"]:
        return str(w["system"])
    return str(w["system"]) + (" (within bands)" if w["banded"] else " (no band)")


def side_table(doc: dict[str, Any], kind: str, title: str) -> Table:
    keys = [s["key"] for s in doc["systems"] if kind in s]
    t = Table(title=f"{title}: {doc['model']} (80 % bands)", title_justify="left")
    t.add_column("figure")
    for k in keys:
        t.add_column(escape(k), justify="right")
    t.add_column("winner")
    for row in doc[kind]["rows"]:
        w = row["winner"]
        win = escape(winner_text(w))
        t.add_row(row["label"], *[_cell(shown(row, k), row["unit"]) for k in keys], win)
    return t


def layout_text(side: dict[str, Any], kind: str) -> str:
    """One line: the layout a side runs (and the batch it moved to, and why)."""
    if "infeasible" in side:
        return "infeasible: " + str(side["infeasible"])
    if kind == "train":
        p, b = side["plan"], side["batch"]
        lay = (f"tp={p['tp']} pp={p['pp']} dp={p['dp']} ep={p['ep']} cp={p['cp']} "
               f"zero={p['zero']} recompute={p['recompute']} {p['pp_schedule']}, "
               f"global batch {b['global_batch']}")
        if b["reason"]:
            lay += f" (asked {b['asked_global_batch']}: {b['reason']})"
        return lay
    degrees: dict[str, Any] = side.get("layout") or {}
    text = (f"{side['phase']} {side['precision']} "
            + " ".join(f"{k}={v}" for k, v in degrees.items() if k != "chips")
            + f", batch {side['batch']}, {side['instances']} x {side['instance_chips']} chips")
    return text + (f", {side['idle_chips']} idle" if side.get("idle_chips") else "")


def _losses(parts: dict[str, float]) -> str:
    total = sum(parts.values())
    if not total:
        return "-"
    top = sorted(parts.items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{k} {v / total:.0%}" for k, v in top if v > 0)


def notes(doc: dict[str, Any]) -> list[str]:
    """Layouts, losses, evidence, missing prices and extrapolation, one line each."""
    out: list[str] = []
    if doc.get("equal"):
        for s in doc["systems"]:
            b = s["budget"]
            out.append(f"{s['key']}: {s['chips']:,} chips at the {doc['equal']} budget "
                       f"{fmt(b['reference_budget'], _unit(doc['equal']))} (uses "
                       f"{fmt(b['budget'], _unit(doc['equal']))})")
    for kind, title in SIDES:
        if kind not in doc:
            continue
        for s in doc["systems"]:
            side = s[kind]
            out.append(f"{title} {s['key']}: {layout_text(side, kind)}")
            parts = doc[kind]["breakdown_s"].get(s["key"])
            if parts:
                out.append(f"  time goes to: {_losses(parts)}")
            ev = side.get("evidence") or {}
            if ev:
                out.append("  rests on: " + ", ".join(f"{k} {v['basis']}" for k, v in
                                                      ev.items()))
            for cell_row in doc[kind]["rows"]:
                miss = cell_row["cells"][s["key"]]["missing"]
                if miss and cell_row["metric"] == "usd_per_million_tokens":
                    out.append(f"  not priced: {miss} ($ figures left out, power shown)")
            for why in side.get("extrapolates") or []:
                out.append(f"  extrapolates: {why}")
    if doc.get("power_basis"):
        out.append("power at load by activity rests on: " + "; ".join(doc["power_basis"]))
    for rat in doc.get("ratios", []):
        pub = rat["published"] or {}
        parts = [f"{k} {v:.1f}x" + (f" (published {pub[k]:g}x)" if k in pub else "")
                 for k, v in rat["model"].items() if v]
        out.append(f"{rat['a']} / {rat['b']}: " + ", ".join(parts))
    for s in doc["systems"]:
        if s["assumptions"]:
            out.append(f"{s['key']} assumes: " + "; ".join(s["assumptions"]))
    return out


def _unit(basis: str) -> str:
    return {"power": "W", "capex": "USD"}.get(basis, "")


def versus_view(doc: dict[str, Any]) -> Group:
    parts: list[Any] = [side_table(doc, kind, title) for kind, title in SIDES if kind in doc]
    parts.extend(Text(line) for line in notes(doc))
    return Group(*parts)
