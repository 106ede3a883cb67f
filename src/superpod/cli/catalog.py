"""Catalog commands: ``systems``, ``chips``, ``show``, ``compare``, ``topology``."""

from __future__ import annotations

from typing import Annotated

import typer

from superpod import api
from superpod.cli.app import app
from superpod.cli.common import Chips, Json, SystemFile
from superpod.cli.common import emit_json as _emit_json
from superpod.cli.common import files_of as _files
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import render as _render
from superpod.cli.common import resolve_id as _resolve_id


@app.command()
@_friendly
def systems(system: SystemFile = None, as_json: Json = False) -> None:
    """List the system catalog, one line each."""
    from superpod.report.systems import systems_view

    if as_json:
        _emit_json(api.systems(_files(system)))
        return
    cat = api.catalog(_files(system))
    _render(systems_view(cat.systems))


@app.command()
@_friendly
def chips(system: SystemFile = None, as_json: Json = False) -> None:
    """List the chip catalog with its key figures and evidence."""
    from rich.table import Table

    cat = api.catalog(_files(system))
    rows = [c.model_dump(mode="json") for c in cat.chips.values()]
    if as_json:
        _emit_json({"chips": rows})
        return
    table = Table(title="superpod chips (dense peaks; bandwidths one direction)",
                  title_justify="left")
    for col in ("id", "BF16 TF", "FP8 TF", "HBM GB", "HBM TB/s", "scale-up GB/s", "NIC Gb/s",
                "W", "status", "evidence"):
        table.add_column(col, justify="left" if col in ("id", "status", "evidence") else "right")
    for c in cat.chips.values():
        p = c.peak_flop_per_s
        table.add_row(c.id, f"{p['bf16'] / 1e12:,.0f}" if "bf16" in p else "-",
                      f"{p['fp8'] / 1e12:,.0f}" if "fp8" in p else "-",
                      f"{c.hbm_bytes / 1e9:,.0f}", f"{c.hbm_bandwidth_bytes_per_s / 1e12:.2f}",
                      f"{c.scale_up_bandwidth_bytes_per_s / 1e9:,.0f}",
                      f"{c.scale_out_bandwidth_bits_per_s / 1e9:,.0f}", f"{c.power_w:,.0f}",
                      c.status, c.evidence)
    _render(table)


@app.command()
@_friendly
def show(system_id: Annotated[str | None, typer.Argument(
             metavar="SYSTEM", help="System id (see `superpod systems`).")] = None,
         chips: Chips = None, system: SystemFile = None, as_json: Json = False) -> None:
    """What a system adds up to from its parts, with sources."""
    from superpod.report.systems import show_view

    files = _files(system)
    row = api.show(_resolve_id(system_id, files), chips, files)
    if as_json:
        _emit_json(row)
    else:
        _render(show_view(row))


@app.command()
@_friendly
def compare(system_ids: Annotated[list[str], typer.Argument(
                metavar="SYSTEM...", help="Two or more system ids.")],
            chips: Chips = None, system: SystemFile = None, as_json: Json = False) -> None:
    """Side-by-side table with ratios to the first system."""
    from superpod.report.systems import compare_view

    result = api.compare(system_ids, chips, _files(system))
    if as_json:
        _emit_json(result)
    else:
        _render(compare_view(result["systems"], result["memory"], result["memory_claims"]))


@app.command()
@_friendly
def topology(system_id: Annotated[str | None, typer.Argument(metavar="SYSTEM")] = None,
             chips: Chips = None, system: SystemFile = None, as_json: Json = False) -> None:
    """Topology: diameter, bisection, links, optics, fabric cost.

    Also the structure per level and the switches."""
    from superpod.report.network import topology_view

    files = _files(system)
    facts = api.topology(_resolve_id(system_id, files), chips, files)
    if as_json:
        _emit_json(facts)
    else:
        _render(topology_view(facts))
