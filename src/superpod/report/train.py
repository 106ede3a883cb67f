"""Text views of training results: one layout, and a layout search."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from superpod.report.breakdown import breakdown_table, infeasible_table
from superpod.report.trust import band_text, trust_lines
from superpod.units import si


def _plan_text(p: dict[str, Any]) -> str:
    keys = ("tp", "pp", "vpp", "cp", "dp", "ep", "etp", "micro_batch")
    core = " ".join(f"{k}={p[k]}" for k in keys if p[k] != 1 or k in ("tp", "pp", "dp"))
    extra = "" if p.get("order", "tp-cp-dp-pp") == "tp-cp-dp-pp" else f" order={p['order']}"
    if p["tp"] > 1 and not p.get("tp_comm_overlap", True):
        extra += " no-tp-overlap"
    if p.get("pp_edge_slots") and p["pp"] > 1:
        extra += " embedding+head-slots"
    return f"{core} zero={p['zero']} recompute={p['recompute']} {p['pp_schedule']}{extra}"


def framework_line(fw: dict[str, Any]) -> str:
    """``framework NAME: its profile rests on N documents (URLs)``."""
    srcs = "; ".join(s.split(" ", 1)[0] for s in fw["sources"]) or "none"
    return f"framework {fw['name']}: its profile rests on {len(fw['sources'])} documents ({srcs})"


def train_view(r: dict[str, Any]) -> Group:
    t = Table(title=f"train {r['model']} on {r['system']} ({r['chips']:,} chips): "
                    f"{_plan_text(r['plan'])}", title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("step time", si(r["step_time_s"], "s") + band_text(r, "step_time_s", "{:.4g}"))
    t.add_row("tokens/s", f"{r['tokens_per_s']:,.0f}")
    t.add_row("tokens/s per chip", f"{r['tokens_per_s_per_chip']:,.1f}"
              + band_text(r, "tokens_per_s_per_chip"))
    t.add_row("MFU (6N + attention)", f"{r['mfu']:.1%}" + band_text(r, "mfu", "{:.1%}"))
    t.add_row("HFU", f"{r['hfu']:.1%}")
    if "goodput" in r:
        g = r["goodput"]
        t.add_row("goodput tokens/s (x ETTR)", f"{g['tokens_per_s']:,.0f} (x {g['ettr']:.3f})")
        t.add_row("interruptions per day", f"{g['interruptions_per_s'] * 86400:.2f}")
    if "it_power_w" in r:
        t.add_row("IT power at this load", si(r["it_power_w"], "W"))
        t.add_row("tokens per joule (facility)", f"{r['tokens_per_j']:.3g}")
        usd = r.get("usd_per_million_tokens")
        t.add_row("$ per million tokens", f"${usd:.3f}" if usd is not None else
                  "no price (" + str(r.get("cost_error") or "unpriced parts") + ")")
    t.add_row("memory per chip", si(r["memory_bytes_per_chip"], "B"))
    for k, v in r["memory_breakdown_bytes"].items():
        t.add_row(f"  {k}", si(v, "B"))
    b = breakdown_table(r["breakdown_s"], r["step_time_s"],
                        "where the step goes (adds up to the step)")
    parts: list[Any] = [t, b]
    parts += [f"note: {n}" for n in r["notes"]]
    if "framework" in r:
        parts.append(framework_line(r["framework"]))
    return Group(*parts, *trust_lines(r))


def economics_cells(c: dict[str, Any]) -> tuple[str, str]:
    """IT power at the candidate's load and $/Mtok ("no price" where the book has none)."""
    power = si(c["it_power_w"], "W") if c.get("it_power_w") is not None else "-"
    usd = c.get("usd_per_million_tokens")
    return power, (f"${usd:.3f}" if usd is not None else "no price")


def plan_view(res: dict[str, Any]) -> Group:
    n = res.get("layouts") or {"evaluated": res["evaluated"]}
    counts = ", ".join(f"{v:,} {k}" for k, v in n.items())
    t = Table(title=f"best layouts ({counts})", title_justify="left")
    for col in ("#", "layout", "step", "tokens/s/chip", "80 % band", "MFU", "memory",
                "IT power", "$/Mtok", "largest overhead"):
        t.add_column(col, justify="left" if col in ("layout", "largest overhead") else "right")
    for i, c in enumerate(res["candidates"], 1):
        over = max(((k, v) for k, v in c["breakdown_s"].items() if k != "compute"),
                   key=lambda kv: kv[1])
        b = (c.get("bands") or {}).get("tokens_per_s_per_chip")
        t.add_row(str(i), _plan_text(c["plan"]), si(c["step_time_s"], "s"),
                  f"{c['tokens_per_s_per_chip']:,.1f}",
                  f"{b['low']:,.0f}-{b['high']:,.0f}" if b else "-", f"{c['mfu']:.1%}",
                  si(c["memory_bytes_per_chip"], "B"), *economics_cells(c),
                  f"{over[0]} {si(over[1], 's')}")
    first = res["candidates"][0] if res["candidates"] else {}
    notes = [f"note (#1): {n}" for n in first.get("notes", [])]
    if "framework" in res:
        notes.append(framework_line(res["framework"]))
    return Group(t, infeasible_table(res["infeasible"]), *notes, *trust_lines(first))
