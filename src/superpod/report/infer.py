"""Text views of inference results: one serving configuration, a layout search, a simulation."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from superpod.report.breakdown import breakdown_table, infeasible_table
from superpod.report.train import economics_cells
from superpod.report.trust import band_text, trust_lines
from superpod.units import si


def _layout_text(lay: dict[str, Any]) -> str:
    parts = [f"{k}={lay[k]}" for k in ("tp", "dp", "ep", "pp") if lay[k] > 1] or ["tp=1"]
    r = lay.get("ranks_per_chip", 1)
    return " ".join(parts) + (f" ({r} ranks/chip)" if r > 1 else "") + f", {lay['chips']} chips"


def _ms(x: float | None) -> str:
    return "-" if x is None else si(x, "s")


def infer_view(r: dict[str, Any]) -> Group:
    o = r["options"]
    t = Table(title=f"{r['phase']} {r['model']} on {r['system']}: {_layout_text(r['layout'])}; "
                    f"{o['precision']} weights"
                    + (" (weight-only, 16-bit GEMMs)" if o.get("weight_only") else "")
                    + f", {o['kv_precision']} KV"
                    + (f", MTP {o['mtp']} (a={o['mtp_acceptance']:g})" if o["mtp"] else ""),
              title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("batch (sequences per instance)", f"{r['batch']:,} (max {r['max_batch']:,})")
    t.add_row("input / output tokens", f"{r['input_len']:,} / {r['output_len']:,}")
    t.add_row("tokens/s" + (" (output)" if r["phase"] != "prefill" else " (input)"),
              f"{r['tokens_per_s']:,.0f}")
    t.add_row("tokens/s per chip", f"{r['tokens_per_s_per_chip']:,.1f}"
              + band_text(r, "tokens_per_s_per_chip"))
    t.add_row("TTFT", _ms(r["ttft_s"]) + band_text(r, "ttft_s", "{:.3g}"))
    t.add_row("TPOT", _ms(r["tpot_s"]) + band_text(r, "tpot_s", "{:.3g}"))
    t.add_row("memory per chip", si(r["memory_bytes_per_chip"], "B"))
    if r.get("it_power_w") is not None:
        power, usd = economics_cells(r)
        t.add_row("IT power at this load", power)
        t.add_row("tokens per joule (facility)", f"{r['tokens_per_j']:.3g}")
        t.add_row("$ per million tokens", usd)
    for key in ("prefill_instances", "decode_instances", "prefill_chips", "decode_chips",
                "kv_transfer_s"):
        if key in r:
            v = r[key]
            t.add_row(key.replace("_", " "), _ms(v) if key.endswith("_s") else f"{v:,}")
    b = breakdown_table(r["breakdown_s"], sum(r["breakdown_s"].values()),
                        "where a step goes (adds up to the step)")
    parts: list[Any] = [t, b]
    parts += [f"note: {n}" for n in r["notes"]] + trust_lines(r)
    return Group(*parts)


def _idle(c: dict[str, Any], system_chips: int | None) -> str:
    """``idle of total (N instances)``."""
    if "idle_chips" not in c:
        return "-"
    return f"{c['idle_chips']:,} of {system_chips:,} ({c['instances']:,}x)"


def plan_infer_view(res: dict[str, Any]) -> Group:
    t = Table(title=f"best serving layouts ({res['evaluated']:,} layouts)",
              title_justify="left")
    for col in ("#", "mode", "layout", "batch", "tok/s/chip", "80 % band", "TPOT", "TTFT",
                "idle chips", "IT power", "$/Mtok", "largest part"):
        t.add_column(col, justify="left" if col in ("mode", "layout", "largest part")
                     else "right")
    for i, c in enumerate(res["candidates"], 1):
        top = max(c["breakdown_s"].items(), key=lambda kv: kv[1])
        mode = c["phase"]
        if mode == "disaggregated":
            mode += f" {c['prefill_chips']}P+{c['decode_chips']}D"
        b = (c.get("bands") or {}).get("tokens_per_s_per_chip")
        t.add_row(str(i), mode, _layout_text(c["layout"]), f"{c['batch']:,}",
                  f"{c['tokens_per_s_per_chip']:,.0f}",
                  f"{b['low']:,.0f}-{b['high']:,.0f}" if b else "-", _ms(c["tpot_s"]),
                  _ms(c["ttft_s"]), _idle(c, res.get("system_chips")),
                  *economics_cells(c), f"{top[0]} {si(top[1], 's')}")
    first = res["candidates"][0] if res["candidates"] else {}
    return Group(t, infeasible_table(res["infeasible"]), *trust_lines(first))


def sim_view(r: dict[str, Any]) -> Table:
    t = Table(title=f"request-level simulation: {r['requests']:,} requests, "
                    f"{r['steps']:,} engine steps",
              title_justify="left")
    t.add_column("quantity")
    for p in ("p50", "p90", "p99"):
        t.add_column(p, justify="right")
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "end to end")):
        t.add_row(label, *(_ms(r[key][p]) for p in ("p50", "p90", "p99")))
    t.add_row("output tokens/s", f"{r['output_tokens_per_s']:,.0f}", "", "")
    b = (r.get("bands") or {}).get("tokens_per_s_per_chip")
    t.add_row("  per chip", f"{r['output_tokens_per_s_per_chip']:,.1f}",
              f"80 % band {b['low']:,.0f}-{b['high']:,.0f}" if b else "", "")
    t.add_row("finished / simulated time", f"{r['finished']:,}", si(r["duration_s"], "s"), "")
    t.add_row("mean in system (Little: lambda W)", f"{r['mean_in_system']:,.1f}",
              f"{r['littles_law_lambda_w']:,.1f}", "")
    return t
