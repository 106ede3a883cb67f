"""Text views of system results: ``show``, ``compare`` and the ``systems`` list.

Every view renders the structured dict of ``system_to_dict`` (the JSON contract), so what a
person reads and what a script parses are the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from superpod.hardware.specs import SystemSpec
from superpod.units import binary, si

Row = dict[str, Any]


@dataclass(frozen=True)
class Metric:
    label: str
    get: Callable[[Row], float | None]
    fmt: Callable[[float], str]
    per_chip: str = "total"  # total: divide by chips; count: show a ratio; none: blank


def _peak(precision: str) -> Callable[[Row], float | None]:
    return lambda r: r["peak_flop_per_s"].get(precision)


def _power(group: str) -> Callable[[Row], float | None]:
    return lambda r: r["power_breakdown_w"][group]


def _int(x: float) -> str:
    return f"{x:,.0f}"


METRICS: tuple[Metric, ...] = (
    Metric("chips", lambda r: r["chips"], _int, "none"),
    Metric("dense FP64", _peak("fp64"), lambda x: si(x, "FLOP/s")),
    Metric("dense BF16", _peak("bf16"), lambda x: si(x, "FLOP/s")),
    Metric("dense FP8", _peak("fp8"), lambda x: si(x, "FLOP/s")),
    Metric("dense FP4", _peak("fp4"), lambda x: si(x, "FLOP/s")),
    Metric("HBM capacity", lambda r: r["hbm_bytes"], lambda x: si(x, "B", 4)),
    Metric("HBM bandwidth", lambda r: r["hbm_bandwidth_bytes_per_s"], lambda x: si(x, "B/s", 4)),
    Metric("host DRAM", lambda r: r["host_memory_bytes"] or None, lambda x: si(x, "B", 4)),
    Metric("host DRAM bandwidth", lambda r: r["host_memory_bandwidth_bytes_per_s"] or None,
           lambda x: si(x, "B/s", 4)),
    Metric("HBM + host DRAM", lambda r: r["hbm_bytes"] + r["host_memory_bytes"],
           lambda x: si(x, "B", 4)),
    Metric("memory one chip reaches", lambda r: r["memory"]["reachable_bytes_per_chip"],
           lambda x: si(x, "B", 4), "none"),
    Metric("scale-up domain (chips)", lambda r: r["scale_up_domain_chips"], _int, "none"),
    Metric("scale-up per chip (1 dir)", lambda r: r["scale_up_bandwidth_per_chip_bytes_per_s"],
           lambda x: si(x, "B/s"), "none"),
    Metric("scale-up aggregate (1 dir)", lambda r: r["scale_up_bandwidth_bytes_per_s"] * 8,
           lambda x: f"{x / 1e9:,.0f} Gb/s"),
    Metric("scale-out aggregate (1 dir)", lambda r: r["scale_out_bandwidth_bytes_per_s"] * 8,
           lambda x: f"{x / 1e9:,.0f} Gb/s"),
    Metric("bisection (1 dir)", lambda r: r["bisection_bandwidth_bytes_per_s"],
           lambda x: si(x, "B/s")),
    Metric("CPUs", lambda r: r["cpus"], _int, "count"),
    Metric("switches (scale-up)", lambda r: r["switches"]["scale_up"], _int, "count"),
    Metric("switches (scale-out)", lambda r: r["switches"]["scale_out"], _int, "count"),
    Metric("optical modules", lambda r: r["optical_modules"], _int, "count"),
    Metric("cabinets", lambda r: r["cabinets"], _int, "count"),
    Metric("IT power (full load)", lambda r: r["it_power_w"], lambda x: si(x, "W", 4)),
    Metric("  accelerators", _power("accelerators"), lambda x: si(x, "W")),
    Metric("  CPUs", _power("cpus"), lambda x: si(x, "W")),
    Metric("  NICs", _power("nics"), lambda x: si(x, "W")),
    Metric("  switches", _power("switches"), lambda x: si(x, "W")),
    Metric("  optics", _power("optics"), lambda x: si(x, "W")),
    Metric("  other (fans, conversion, DRAM)", _power("other"), lambda x: si(x, "W")),
    Metric("facility power (x PUE)", lambda r: r["facility_power_w"], lambda x: si(x, "W", 4)),
    Metric("BF16 FLOP/s per IT W",
           lambda r: (r["peak_flop_per_s"].get("bf16") or 0) / r["it_power_w"] or None,
           lambda x: si(x, "FLOP/s/W"), "none"),
)


def show_view(row: Row) -> Group:
    """The ``show`` view: the totals with per-chip values, then caveats and sources."""
    table = Table(title=Text(f"{row['name']}  [{row['id']}]"), title_justify="left")
    table.add_column("quantity")
    table.add_column("system", justify="right")
    table.add_column("per chip", justify="right")
    n = row["chips"]
    for m in METRICS:
        v = m.get(row)
        if v is None:
            continue
        per = {"none": "", "count": f"{v / n:.3g}", "total": m.fmt(v / n)}[m.per_chip]
        table.add_row(m.label, m.fmt(v), per)
    parts: list[Any] = [table, _structure(row), _memory_table(row)]
    if row["hbm_bytes"]:
        parts.append(Text(f"HBM in binary units: {binary(row['hbm_bytes'])}", style="dim"))
    if row["warnings"]:
        parts.append(Text("extrapolates: " + "; ".join(row["warnings"]), style="yellow"))
    if row["assumptions"]:
        parts.append(Text("rests on assumptions: " + "; ".join(row["assumptions"]),
                          style="dim yellow"))
    if row["published"]:
        pub = Table(title="published figures (quoted, not used)", title_justify="left")
        pub.add_column("item")
        pub.add_column("as published")
        for k, v in row["published"].items():
            pub.add_row(k, v)
        parts.append(pub)
    parts.append(Text(f"source: {row['source']}", style="dim"))
    host = next((t for t in row["memory"]["tiers"] if t["name"] == "host"), None)
    if host is not None:
        parts.append(Text("host memory sources: " + " | ".join(host["sources"]), style="dim"))
    return Group(*parts)


#: weakest first: a tier's figures are as good as the weakest of them
_EVIDENCE_ORDER = ("assumption", "recalled_unverified", "press_secondary", "analyst_estimate",
                   "vendor_claim", "derived", "vendor_paper", "vendor_doc", "measured")


def _weakest(labels: Sequence[str]) -> str:
    rank = {e: i for i, e in enumerate(_EVIDENCE_ORDER)}
    return min(labels, key=lambda e: rank.get(e, -1)) if labels else "-"


def _memory_table(row: Row) -> Table:
    """The memory tiers one chip reaches, nearest first, with the weakest evidence behind
    each (the JSON lists every label and source)."""
    mem = row["memory"]
    pooled = "pooled over the scale-up fabric" if mem["pooled"] else "not pooled"
    table = Table(title=f"memory one chip reaches (host DRAM {pooled}; bandwidth per chip, "
                        "1 dir: all chips at once / alone)", title_justify="left")
    labels = [_weakest(t["evidence"]) for t in mem["tiers"]]
    for col in ("tier", "via", "capacity", "share", "bandwidth", "latency", "evidence"):
        whole = col in ("tier", "via", "evidence")  # labels are never cut
        table.add_column(col, justify="right" if col in ("capacity", "share", "bandwidth",
                                                         "latency") else "left",
                         overflow="fold", no_wrap=whole,
                         min_width=max(map(len, labels)) if col == "evidence" else
                         (10 if col == "via" else (8 if col == "tier" else None)))
    for t in mem["tiers"]:
        bw = si(t["bandwidth_bytes_per_s"], "B/s")
        if t["peak_bandwidth_bytes_per_s"] != t["bandwidth_bytes_per_s"]:
            bw += f" / {si(t['peak_bandwidth_bytes_per_s'], 'B/s')}"
        table.add_row(t["name"], t["via"], si(t["capacity_bytes"], "B"),
                      si(t["share_bytes"], "B") if t["share_bytes"] else "-", bw,
                      f"{t['latency_s'] * 1e6:g} us", _weakest(t["evidence"]))
    if not mem["host_memory_per_node_bytes"]:
        table.caption = "host memory: not described for this system"
    return table


def _structure(row: Row) -> Text:
    cab = row["cabinets_breakdown"]
    area = f", {row['floor_area_m2']:,.0f} m2" if row["floor_area_m2"] else ""
    return Text(
        f"{row['nodes']:,} nodes; {row['scale_up_domains']:,} scale-up domain(s) "
        f"({row['scale_up_kind']}); scale-out fat tree of {row['scale_out_tiers']} tier(s); "
        f"cabinets: {cab['compute']} compute + {cab['scale_up_network']} scale-up network "
        f"(+ {cab['scale_out_network']} scale-out network){area}; PUE {row['pue']}",
        style="dim")


def compare_view(rows: Sequence[Row], memory: Sequence[Row] = (),
                 claims: Sequence[Row] = ()) -> Group:
    """Side by side, each system after the first with its ratio to the first; then memory on
    each basis and any published memory claim among them, recomputed."""
    table = Table(title="superpod compare (ratios to the first system)", title_justify="left")
    table.add_column("quantity")
    for r in rows:
        table.add_column(r["id"], justify="right")
    base = rows[0]
    for m in METRICS:
        values = [m.get(r) for r in rows]
        if all(v is None for v in values):
            continue
        b = values[0]
        cells = [m.fmt(values[0]) if values[0] is not None else "-"]
        for v in values[1:]:
            if v is None:
                cells.append("-")
            elif b:
                cells.append(f"{m.fmt(v)} ({v / b:.2f}x)")
            else:
                cells.append(m.fmt(v))
        table.add_row(m.label, *cells)
    notes = [Text(f"{r['id']} extrapolates: " + "; ".join(r["warnings"]), style="yellow")
             for r in rows if r["warnings"]]
    notes += [Text(f"{r['id']} rests on assumptions: " + "; ".join(r["assumptions"]),
                   style="dim yellow") for r in rows if r["assumptions"]]
    del base
    parts: list[Any] = [table]
    if memory:
        parts.append(_memory_bases_table(rows[0]["id"], memory))
    for c in claims:
        like = c["like_for_like_ratio"]
        parts.append(Text(
            f"{c['claim']} (published {c['published_ratio']:g}x): {c['a']} counts "
            f"{c['a_counts']}; {c['b']} counts {c['b_counts']}. On those bases the model gives "
            f"{c['reproduced_ratio']:.1f}x; like for like: HBM {_ratio(like['hbm'])}, HBM + "
            f"host DRAM {_ratio(like['hbm_plus_host'])}, memory one chip reaches "
            f"{_ratio(like['reachable_per_chip'])}. Source: {c['source']}", style="cyan"))
    return Group(*parts, *notes)


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}x"


def _memory_bases_table(first: str, memory: Sequence[Row]) -> Table:
    table = Table(title=f"memory by basis ({first} / each)", title_justify="left")
    table.add_column("basis")
    table.add_column(first, justify="right")
    for line in memory:
        table.add_column(line["b"], justify="right")
    for key, b in memory[0]["bases"].items():
        cells = [si(b["a_bytes"], "B", 4) if b["a_bytes"] else "-"]
        for line in memory:
            x = line["bases"][key]
            cells.append((si(x["b_bytes"], "B", 4) if x["b_bytes"] else "-")
                         + (f" ({_ratio(x['ratio'])})" if x["ratio"] else ""))
        table.add_row(_BASIS_LABEL.get(key, key), *cells)
    table.caption = ("HBM + host DRAM is NVIDIA's 'fast memory'; one chip reaches = own and "
                     "peers' HBM plus its host's DRAM, or every host's where pooled")
    return table


_BASIS_LABEL = {"hbm": "HBM", "host": "host DRAM", "hbm_plus_host": "HBM + host DRAM",
                "reachable_per_chip": "one chip reaches", "share_per_chip": "per-chip share"}


def systems_view(specs: Mapping[str, SystemSpec]) -> Table:
    table = Table(title="superpod systems", title_justify="left")
    for col in ("id", "chips", "chip", "scale-up", "status", "evidence", "name"):
        table.add_column(col, justify="right" if col == "chips" else "left")
    for sid, s in specs.items():
        table.add_row(sid, f"{s.chips:,}", s.chip, f"{s.scale_up.kind} x{s.scale_up.domain_chips}",
                      s.status, s.evidence, s.name)
    return table
