"""Text views of network results: one collective, and a system's topology facts."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from superpod.report.trust import trust_lines
from superpod.units import si


def collective_view(row: dict[str, Any]) -> Table:
    t = Table(title=f"{row['op']} on {row['system']} ({row['ranks']} ranks, "
                    f"{si(row['bytes'], 'B')} per rank)", title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    bt = (row.get("bands") or {}).get("time_s")
    t.add_row("time", si(row["time_s"], "s") + (
        f" ({si(bt['low'], 's')}-{si(bt['high'], 's')}; {bt['level']:.0%} band, "
        f"{bt['cases']} cases)" if bt else ""))
    t.add_row("algbw", si(row["algbw_bytes_per_s"], "B/s"))
    t.add_row("busbw (nccl-tests)", si(row["busbw_bytes_per_s"], "B/s"))
    t.add_row("algorithm / protocol", f"{row['algorithm']} / {row['protocol']}")
    t.add_row("engine", row["engine"])
    t.add_row("bottleneck", row["bottleneck"])
    t.add_row("bottleneck utilization", f"{row['bottleneck_utilization']:.0%}")
    for k, v in row["breakdown_s"].items():
        t.add_row(f"  {k}", si(v, "s"))
    for n in row["notes"]:
        t.add_row("note", n)
    for line in trust_lines(row):
        t.add_row(*line.split(": ", 1))
    return t


def topology_view(f: dict[str, Any]) -> Table:
    su, so = f["scale_up"], f["scale_out"]
    t = Table(title=f"topology of {f['id']} ({f['chips']:,} chips)", title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    dims = f" dims {su['dims']}" if su["dims"] else ""
    t.add_row("scale-up", f"{su['kind']}{dims}, {su['planes']} plane(s), {su['protocol']}")
    t.add_row("  domains x chips", f"{su['domains']:,} x {su['domain_chips']:,}")
    t.add_row("  per chip (1 dir)", si(su["per_chip_bytes_per_s"], "B/s"))
    t.add_row("scale-out", f"{so['kind']}, {so['tiers']} tier(s) {so['switches_per_tier']}, "
                           f"{so['oversubscription']}:1")
    t.add_row("diameter", f"{f['diameter_hops']} hops")
    t.add_row("bisection (1 dir)", si(f["bisection_bandwidth_bytes_per_s"], "B/s"))
    if "links" in f:
        t.add_row("links (scale-up / scale-out)", f"{f['links']['up']:,} / {f['links']['out']:,}")
    t.add_row("switches (scale-up / scale-out)",
              f"{f['switches']['scale_up']:,} / {f['switches']['scale_out']:,}")
    t.add_row("optical modules", f"{f['optical_modules']:,}")
    t.add_row("fabric power (NICs, switches, optics)", si(f["fabric_power_w"], "W"))
    t.add_row("fabric capex (priced parts)", f"${f['fabric_capex_usd']:,.0f}")
    if f["unpriced_parts"]:
        t.add_row("  no price for", ", ".join(f["unpriced_parts"]))
    return t
