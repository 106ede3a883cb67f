"""The ``reliability`` and ``cost`` commands, added to the ``superpod`` app by ``register``.

A thin layer like ``superpod.cli``: parse the options, call ``superpod.reliability.analyse``
or ``superpod.cost.cost_report``, print a rich table or ``--json`` (SI units). Bad input
prints one line and exits with code 2 (the shared pieces live in ``superpod.cli.common``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import typer

from superpod.cli.choices import REGIONS, SPARE_LEVELS, choice
from superpod.cli.common import Chips, Json
from superpod.cli.common import emit_json as _emit_json
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import render as _render
from superpod.errors import SpecError
from superpod.units import Dim, UnitError, parse_quantity, parse_size_bytes, si

if TYPE_CHECKING:
    from rich.console import Group

SystemArg = Annotated[str, typer.Option(
    "--system", "-s", help="System id, or a YAML file (FILE or FILE:ID).")]


def _system(system_arg: str, chips: int | None) -> Any:
    from superpod import api
    from superpod.cli.common import system_arg as _system_arg

    system_id, files = _system_arg(system_arg)
    return api.system(system_id, chips, files), api.catalog(files)


def _quantity(text: str | None, dim: Dim, option: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_quantity(text.replace(" ", ""), dim) if dim is not Dim.BYTES \
            else parse_size_bytes(text.replace(" ", ""))
    except UnitError as exc:
        raise SpecError(str(exc), field=option, value=text) from None


# ----------------------------------------------------------------------------- reliability


@_friendly
def reliability(
        system_arg: SystemArg,
        chips: Chips = None,
        model_params: Annotated[float | None, typer.Option(
            help="Model parameters (e.g. 405e9): checkpoint = params x bytes per param.")]
        = None,
        checkpoint_bytes: Annotated[str | None, typer.Option(
            help="Checkpoint size instead, e.g. 5.7TB.")] = None,
        bytes_per_param: Annotated[float, typer.Option(
            help="Checkpoint bytes per parameter (mixed-precision Adam: 14).")] = 14.0,
        days: Annotated[float, typer.Option(
            help="Failure-free compute the job needs, in days (also the period of "
                 "expected_interruptions).")] = 30.0,
        storage_bandwidth: Annotated[str | None, typer.Option(
            help="Aggregate checkpoint storage bandwidth, e.g. 2TB/s (default: Llama 3's "
                 "Tectonic, 2 TB/s).")] = None,
        node_storage_bandwidth: Annotated[str | None, typer.Option(
            help="Per-node storage bandwidth limit, e.g. 25GB/s.")] = None,
        async_checkpoint: Annotated[bool, typer.Option(
            "--async-checkpoint/--sync-checkpoint",
            help="Asynchronous: only the device-to-host snapshot blocks training.")] = False,
        interval: Annotated[str | None, typer.Option(
            help="Checkpoint interval, e.g. 10min (default: Daly's optimum).")] = None,
        spares: Annotated[str | None, typer.Option(
            help="Hot spares as GROUP+SPARES, e.g. 64+1 (UB-Mesh).")] = None,
        spare_level: Annotated[str, choice(SPARE_LEVELS, "What a spare replaces.")] = "chip",
        link_protection: Annotated[bool | None, typer.Option(
            "--link-protection/--no-link-protection",
            help="Scale-up link failures degrade instead of interrupting (default: on for "
                 "UB-generation Huawei systems, a vendor claim).")] = None,
        dual_plane_scale_out: Annotated[bool, typer.Option(
            help="Scale-out link failures degrade (dual-plane fabric).")] = False,
        trials: Annotated[int, typer.Option(min=0, help="Monte Carlo trials (0: none).")]
        = 10_000,
        seed: Annotated[int, typer.Option(help="Monte Carlo seed.")] = 0,
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = False,
        as_json: Json = False) -> None:
    """Interruptions by cause, MTBF, checkpoints, goodput (ETTR)."""
    from superpod.reliability import (
        FailureOptions,
        ReliabilityQuery,
        SparePolicy,
        Storage,
        analyse,
        load_rate_book,
    )
    from superpod.reliability import (
        checkpoint_bytes as ckpt_bytes,
    )

    if (model_params is None) == (checkpoint_bytes is None):
        raise SpecError("give exactly one of --model-params or --checkpoint-bytes",
                        field="--model-params")
    nbytes = (ckpt_bytes(model_params, bytes_per_param) if model_params is not None
              else _quantity(checkpoint_bytes, Dim.BYTES, "--checkpoint-bytes"))
    sysm, _ = _system(system_arg, chips)
    book = load_rate_book()
    storage = Storage.defaults(book)
    bw = _quantity(storage_bandwidth, Dim.BYTES_PER_S, "--storage-bandwidth")
    node_bw = _quantity(node_storage_bandwidth, Dim.BYTES_PER_S, "--node-storage-bandwidth")
    storage = Storage(write_bytes_per_s=bw or storage.write_bytes_per_s,
                      read_bytes_per_s=bw or storage.read_bytes_per_s,
                      node_bytes_per_s=node_bw or storage.node_bytes_per_s,
                      snapshot_bytes_per_s=storage.snapshot_bytes_per_s)
    options = FailureOptions(
        link_protection=link_protection, scale_out_dual_plane=dual_plane_scale_out,
        spares=SparePolicy.parse(spares, spare_level) if spares else None)
    query = ReliabilityQuery(
        checkpoint_bytes=nbytes or 0.0, work_days=days, asynchronous=async_checkpoint,
        storage=storage, options=options,
        interval_s=_quantity(interval, Dim.TIME, "--interval"), trials=trials, seed=seed)
    row = analyse(sysm, query, book, progress=progress)
    if as_json:
        _emit_json(row)
    else:
        _render(reliability_view(row))


def _days(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds >= 86400:
        return f"{seconds / 86400:.3g} d"
    return f"{seconds / 3600:.3g} h" if seconds >= 3600 else f"{seconds / 60:.3g} min"


def reliability_view(r: dict[str, Any]) -> Group:
    """Summary, then causes sorted by events, then the cross-checks."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    ck = r["checkpoint"]
    t = Table(title=f"{r['system']}: {r['chips']:,} chips, {r['days']:g} days of work",
              title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    mc = r["monte_carlo"]
    rows = [
        ("interruptions per day (hardware)",
         f"{r['interruptions_per_day']:.3g} ({r['interruptions_per_day_hardware']:.3g})"),
        ("expected interruptions in the period", f"{r['expected_interruptions']:,.1f}"),
        ("degradations per day (no restart)", f"{r['degradations_per_day']:.3g}"),
        ("job MTBF", _days(r["mtbf_s"])),
        ("checkpoint", f"{si(ck['bytes'], 'B')}, write {ck['write_s']:.3g} s, "
                       f"blocks {ck['blocking_s']:.3g} s"
                       f"{' (async)' if ck['asynchronous'] else ''}"),
        ("checkpoint interval (Daly; Young)",
         f"{_days(r['checkpoint_interval_s'])}; {_days(r['checkpoint_interval_young_s'])}"),
        ("recovery per interruption (restart; swap)",
         f"{_days(r['recovery_s']['restart'])}; {_days(r['recovery_s']['swap'])}"),
        ("ETTR (analytic; first order)", f"{r['ettr']:.4f}; {r['ettr_first_order']:.4f}"),
        ("expected completion", f"{r['expected_completion_days']:.4g} d"),
    ]
    if mc:
        cd = mc["completion_days"]
        rows += [("Monte Carlo completion mean / p50 / p90 / p99",
                  f"{cd['mean']:.4g} / {cd['p50']:.4g} / {cd['p90']:.4g} / {cd['p99']:.4g} d"),
                 (f"Monte Carlo ETTR ({mc['trials']:,} trials, 99% CI)",
                  f"{mc['ettr']:.4f} [{mc['ettr_ci'][0]:.4f}, {mc['ettr_ci'][1]:.4f}]")]
    for row in rows:
        t.add_row(*row)
    swaps = any(c["swaps_per_day"] for c in r["by_cause"])
    causes = Table(title="by cause, events per day (FIT: per 1e9 component-hours)",
                   title_justify="left")
    cols = ["cause", "count", "FIT", "events", "interrupt", *(["swap"] if swaps else []),
            "degrade"]
    for col in cols:
        causes.add_column(col, justify="left" if col == "cause" else "right")
    for c in sorted(r["by_cause"], key=lambda c: -c["events_per_day"]):
        if c["events_per_day"] <= 0:
            continue
        cells = [c["id"], f"{c['population']:,.0f}",
                 "-" if c["rate_fit"] is None else f"{c['rate_fit']:,.0f}",
                 f"{c['events_per_day']:.3g}", f"{c['interruptions_per_day']:.3g}"]
        cells += [f"{c['swaps_per_day']:.3g}"] if swaps else []
        causes.add_row(*cells, f"{c['degradations_per_day']:.3g}")
    notes = [r["calibration"]["note"] + f" ({r['calibration']['run']})."]
    notes += r["notes"] + r["warnings"]
    return Group(t, causes, Text("\n".join(f"note: {n}" for n in notes), style="dim"))


# ----------------------------------------------------------------------------- cost


@_friendly
def cost(
        system_arg: SystemArg,
        tokens_per_s: Annotated[float, typer.Option(
            help="Tokens per second while busy (trained or served).")],
        chips: Chips = None,
        utilisation: Annotated[float, typer.Option(
            help="Share of the year the system is busy at --tokens-per-s (idle otherwise).")]
        = 1.0,
        load: Annotated[float, typer.Option(
            help="Compute, memory and network utilisation while busy (power model).")]
        = 1.0,
        electricity_usd_per_kwh: Annotated[float | None, typer.Option(
            help="Electricity price (default: by region, US 0.078, China 0.056).")] = None,
        region: Annotated[str | None, choice(
            REGIONS, "Electricity region (default: by vendor).")] = None,
        years: Annotated[float | None, typer.Option(
            help="IT depreciation years (default 4).")] = None,
        chip_price_usd: Annotated[float | None, typer.Option(
            help="Price per accelerator (default: the price book).")] = None,
        pue: Annotated[float | None, typer.Option(help="PUE (default 1.2).")] = None,
        as_json: Json = False) -> None:
    """Capex, opex, power, tokens per joule, dollars per Mtoken."""
    from superpod.cost import CostQuery, cost_report, default_prices, with_overrides
    from superpod.cost.prices import J_PER_KWH

    sysm, cat = _system(system_arg, chips)
    prices = default_prices(sysm, cat, region=region, chip_usd=chip_price_usd)
    prices = with_overrides(
        prices, pue=pue, depreciation_years=years,
        electricity_usd_per_j=None if electricity_usd_per_kwh is None
        else electricity_usd_per_kwh / J_PER_KWH)
    row = cost_report(sysm, prices, CostQuery(tokens_per_s, utilisation, load))
    if as_json:
        _emit_json(row)
    else:
        _render(cost_view(row))


def _usd(x: float) -> str:
    return f"${x / 1e6:,.3g}M" if abs(x) >= 1e6 else f"${x:,.0f}"


def cost_view(r: dict[str, Any]) -> Group:
    """Capex by group, then power, opex and the cost per token."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    chips = r["chips"]
    t = Table(title=f"{r['system']}: {chips:,} chips at {r['tokens_per_s']:,.0f} tokens/s, "
                    f"busy {r['utilisation']:.0%}", title_justify="left")
    for col in ("", "total", "per chip"):
        t.add_column(col, justify="left" if not col else "right")
    for group, usd in r["capex_breakdown_usd"].items():
        t.add_row(f"  capex {group}", _usd(usd), _usd(usd / chips))
    t.add_row("capex", _usd(r["capex_usd"]), _usd(r["capex_per_chip_usd"]))
    t.add_row("IT power (at load; idle)",
              f"{r['it_power_w'] / 1e3:,.1f} kW; {r['idle_it_power_w'] / 1e3:,.1f} kW",
              f"{r['it_power_w'] / chips:,.0f} W")
    inp = r["inputs"]
    t.add_row(f"opex per year (${inp['electricity_usd_per_kwh']:.3f}/kWh, "
              f"PUE {inp['pue']:g})", _usd(r["opex_usd_per_year"]),
              _usd(r["opex_usd_per_year"] / chips))
    a = r["annual_cost_usd"]
    t.add_row(f"annual cost ({inp['years']:g}-yr IT, {inp['facility_years']:g}-yr facility)",
              _usd(a["total"]), _usd(a["total"] / chips))
    t.add_row("tokens per joule (facility)", f"{r['tokens_per_j']:.3g}", "")
    t.add_row("USD per million tokens", f"${r['usd_per_million_tokens']:.4g}", "")
    ev = ", ".join(f"{k} {v}" for k, v in inp["evidence"].items())
    lines = [f"evidence: {ev}"] + [f"warning: {w}" for w in r["warnings"]]
    return Group(t, Text("\n".join(lines), style="dim"))


def register(app: typer.Typer) -> None:
    """Add ``reliability`` and ``cost`` to a Typer app (``superpod.cli.app``)."""
    app.command(name="reliability")(reliability)
    app.command(name="cost")(cost)
