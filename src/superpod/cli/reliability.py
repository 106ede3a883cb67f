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
from superpod.cli.common import Chips, Json, api_defaults
from superpod.cli.common import emit_json as _emit_json
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import render as _render
from superpod.units import si

if TYPE_CHECKING:
    from rich.console import Group

_R = api_defaults("reliability")
_K = api_defaults("cost")

SystemArg = Annotated[str, typer.Option(
    "--system", "-s", help="System id, or a YAML file (FILE or FILE:ID).")]


# ----------------------------------------------------------------------------- reliability


@_friendly
def reliability(
        system_arg: SystemArg,
        chips: Chips = _R["chips"],
        model_params: Annotated[float | None, typer.Option(
            help="Model parameters (e.g. 405e9): checkpoint = params x bytes per param.")]
        = _R["model_params"],
        checkpoint_bytes: Annotated[str | None, typer.Option(
            help="Checkpoint size instead, e.g. 5.7TB.")] = _R["checkpoint_bytes"],
        bytes_per_param: Annotated[float, typer.Option(
            help="Checkpoint bytes per parameter (mixed-precision Adam: 14).")]
        = _R["bytes_per_param"],
        days: Annotated[float, typer.Option(
            help="Failure-free compute the job needs, in days (also the period of "
                 "expected_interruptions).")] = _R["days"],
        storage_bandwidth: Annotated[str | None, typer.Option(
            help="Aggregate checkpoint storage bandwidth, e.g. 2TB/s (default: Llama 3's "
                 "Tectonic, 2 TB/s).")] = _R["storage_bandwidth"],
        node_storage_bandwidth: Annotated[str | None, typer.Option(
            help="Per-node storage bandwidth limit, e.g. 25GB/s.")]
        = _R["node_storage_bandwidth"],
        async_checkpoint: Annotated[bool, typer.Option(
            "--async-checkpoint/--sync-checkpoint",
            help="Asynchronous: only the device-to-host snapshot blocks training.")]
        = _R["async_checkpoint"],
        interval: Annotated[str | None, typer.Option(
            help="Checkpoint interval, e.g. 10min (default: Daly's optimum).")] = _R["interval"],
        spares: Annotated[str | None, typer.Option(
            help="Hot spares as GROUP+SPARES, e.g. 64+1 (UB-Mesh).")] = _R["spares"],
        spare_level: Annotated[str, choice(SPARE_LEVELS, "What a spare replaces.")]
        = _R["spare_level"],
        link_protection: Annotated[bool | None, typer.Option(
            "--link-protection/--no-link-protection",
            help="Scale-up link failures degrade instead of interrupting (default: on for "
                 "UB-generation Huawei systems, a vendor claim).")] = _R["link_protection"],
        dual_plane_scale_out: Annotated[bool, typer.Option(
            help="Scale-out link failures degrade (dual-plane fabric).")]
        = _R["dual_plane_scale_out"],
        trials: Annotated[int, typer.Option(min=0, help="Monte Carlo trials (0: none).")]
        = _R["trials"],
        seed: Annotated[int, typer.Option(help="Monte Carlo seed.")] = _R["seed"],
        progress: Annotated[bool | None, typer.Option(
            "--progress/--no-progress",
            help="A progress bar on stderr (default: when stderr is a terminal and no "
                 "--json).")] = None,
        as_json: Json = False) -> None:
    """Interruptions by cause, MTBF, checkpoints, goodput (ETTR)."""
    from superpod import api
    from superpod.progress import wanted

    row = api.reliability(
        system_arg, chips=chips, model_params=model_params, checkpoint_bytes=checkpoint_bytes,
        bytes_per_param=bytes_per_param, days=days, storage_bandwidth=storage_bandwidth,
        node_storage_bandwidth=node_storage_bandwidth, async_checkpoint=async_checkpoint,
        interval=interval, spares=spares, spare_level=spare_level,
        link_protection=link_protection, dual_plane_scale_out=dual_plane_scale_out,
        trials=trials, seed=seed,
        progress=wanted(as_json) if progress is None else progress)
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
    """Summary, then causes sorted by events, then the cross-checks (rates shown per day,
    FIT per 1e9 component-hours; the JSON carries them per second)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from superpod.reliability.rates import FIT_PER_S, S_PER_DAY

    def day(rate: float) -> str:
        return f"{rate * S_PER_DAY:.3g}"

    ck = r["checkpoint"]
    t = Table(title=f"{r['system']}: {r['chips']:,} chips, {r['work_s'] / S_PER_DAY:g} days "
                    "of work", title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    mc = r["monte_carlo"]
    rows = [
        ("interruptions per day (hardware)",
         f"{day(r['interruptions_per_s'])} ({day(r['hardware_interruptions_per_s'])})"),
        ("expected interruptions in the period", f"{r['expected_interruptions']:,.1f}"),
        ("degradations per day (no restart)", day(r["degradations_per_s"])),
        ("job MTBF", _days(r["mtbf_s"])),
        ("checkpoint", f"{si(ck['bytes'], 'B')}, write {ck['write_s']:.3g} s, "
                       f"blocks {ck['blocking_s']:.3g} s"
                       f"{' (async)' if ck['asynchronous'] else ''}"),
        ("checkpoint interval (Daly; Young)",
         f"{_days(r['checkpoint_interval_s'])}; {_days(r['checkpoint_interval_young_s'])}"),
        ("recovery per interruption (restart; swap)",
         f"{_days(r['recovery_s']['restart'])}; {_days(r['recovery_s']['swap'])}"),
        ("ETTR (analytic; first order)", f"{r['ettr']:.4f}; {r['ettr_first_order']:.4f}"),
        ("expected completion", f"{r['expected_completion_s'] / S_PER_DAY:.4g} d"),
    ]
    if mc:
        cd = {k: v / S_PER_DAY for k, v in mc["completion_s"].items()}
        rows += [("Monte Carlo completion mean / p50 / p90 / p99",
                  f"{cd['mean']:.4g} / {cd['p50']:.4g} / {cd['p90']:.4g} / {cd['p99']:.4g} d"),
                 (f"Monte Carlo ETTR ({mc['trials']:,} trials, 99% CI)",
                  f"{mc['ettr']:.4f} [{mc['ettr_ci'][0]:.4f}, {mc['ettr_ci'][1]:.4f}]")]
    for row in rows:
        t.add_row(*row)
    swaps = any(c["swaps_per_s"] for c in r["by_cause"])
    causes = Table(title="by cause, events per day (FIT: per 1e9 component-hours)",
                   title_justify="left")
    cols = ["cause", "count", "FIT", "events", "interrupt", *(["swap"] if swaps else []),
            "degrade"]
    for col in cols:
        causes.add_column(col, justify="left" if col == "cause" else "right")
    for c in sorted(r["by_cause"], key=lambda c: -c["events_per_s"]):
        if c["events_per_s"] <= 0:
            continue
        cells = [c["id"], f"{c['population']:,.0f}",
                 "-" if c["per_job"] else f"{c['rate_per_component_per_s'] / FIT_PER_S:,.0f}",
                 day(c["events_per_s"]), day(c["interruptions_per_s"])]
        cells += [day(c["swaps_per_s"])] if swaps else []
        causes.add_row(*cells, day(c["degradations_per_s"]))
    notes = [r["calibration"]["note"] + f" ({r['calibration']['run']})."]
    notes += r["notes"] + r["warnings"]
    return Group(t, causes, Text("\n".join(f"note: {n}" for n in notes), style="dim"))


# ----------------------------------------------------------------------------- cost


@_friendly
def cost(
        system_arg: SystemArg,
        tokens_per_s: Annotated[float, typer.Option(
            help="Tokens per second while busy (trained or served).")],
        chips: Chips = _K["chips"],
        utilization: Annotated[float, typer.Option(
            "--utilization", "--utilisation",
            help="Share of the year the system is busy at --tokens-per-s (idle otherwise).")]
        = _K["utilization"],
        load: Annotated[float, typer.Option(
            help="Compute, memory and network utilization while busy (power model).")]
        = _K["load"],
        electricity_usd_per_kwh: Annotated[float | None, typer.Option(
            help="Electricity price (default: by region, US 0.078, China 0.056).")]
        = _K["electricity_usd_per_kwh"],
        region: Annotated[str | None, choice(
            REGIONS, "Electricity region (default: by vendor).")] = _K["region"],
        years: Annotated[float | None, typer.Option(
            help="IT depreciation years (default 4).")] = _K["years"],
        chip_price_usd: Annotated[float | None, typer.Option(
            help="Price per accelerator (default: the price book).")]
        = _K["chip_price_usd"],
        pue: Annotated[float | None, typer.Option(help="PUE (default 1.2).")] = _K["pue"],
        as_json: Json = False) -> None:
    """Capex, opex, power, tokens per joule, dollars per Mtoken."""
    from superpod import api

    row = api.cost(system_arg, tokens_per_s, chips=chips, utilization=utilization, load=load,
                   electricity_usd_per_kwh=electricity_usd_per_kwh, region=region,
                   years=years, chip_price_usd=chip_price_usd, pue=pue)
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

    from superpod.cost.prices import J_PER_KWH

    chips = r["chips"]
    t = Table(title=f"{r['system']}: {chips:,} chips at {r['tokens_per_s']:,.0f} tokens/s, "
                    f"busy {r['utilization']:.0%}", title_justify="left")
    for col in ("", "total", "per chip"):
        t.add_column(col, justify="left" if not col else "right")
    for group, usd in r["capex_breakdown_usd"].items():
        t.add_row(f"  capex {group}", _usd(usd), _usd(usd / chips))
    t.add_row("capex", _usd(r["capex_usd"]), _usd(r["capex_per_chip_usd"]))
    t.add_row("IT power (at load; idle)",
              f"{r['it_power_w'] / 1e3:,.1f} kW; {r['idle_it_power_w'] / 1e3:,.1f} kW",
              f"{r['it_power_w'] / chips:,.0f} W")
    inp = r["inputs"]
    t.add_row(f"opex per year (${inp['electricity_usd_per_j'] * J_PER_KWH:.3f}/kWh, "
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
