"""Training commands: ``train`` (one layout) and ``plan train`` (the layout search)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from superpod import api
from superpod.cli.app import app, plan_app
from superpod.cli.choices import (
    ATTENTION_KERNELS,
    OFFLOAD,
    OFFLOAD_OVERLAP,
    OFFLOAD_TIERS,
    PP_SCHEDULES,
    RECOMPUTE,
    SEARCH_SPACES,
    TRAIN_FRAMEWORKS,
    TRAIN_PRECISIONS,
    choice,
)
from superpod.cli.common import Chips, Json, Model, Report, err
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import show_result as _show

Offload = Annotated[str, choice(
    OFFLOAD, "auto: where HBM does not fit, offload the optimizer state (ZeRO-Offload) "
             "and then activations to host or pooled memory.")]
OffloadTier = Annotated[str | None, choice(
    OFFLOAD_TIERS, "Default: pool where host memory is pooled, else host.")]
TrainPrecision = Annotated[str, choice(TRAIN_PRECISIONS, "Compute precision.")]


_T = api.defaults(api.train)
_P = api.defaults(api.plan_train)


@app.command()
@_friendly
def train(system_arg: Annotated[str, typer.Option("--system", "-s", help="System id or YAML.")],
          model: Model,
          global_batch: Annotated[int, typer.Option(min=1, help="Sequences per step.")],
          seq_len: Annotated[int, typer.Option(min=1, help="Tokens per sequence.")],
          tp: int = _T["tp"], pp: int = _T["pp"], vpp: int = _T["vpp"],
          dp: Annotated[int | None, typer.Option(help="Default: chips / (tp pp cp).")]
          = _T["dp"], cp: int = _T["cp"], ep: int = _T["ep"], etp: int = _T["etp"],
          sequence_parallel: bool = _T["sequence_parallel"], zero: int = _T["zero"],
          micro_batch: int = _T["micro_batch"],
          recompute: Annotated[str, choice(
              RECOMPUTE, "selective: attention core; op: every other matmul.")]
          = _T["recompute"],
          precision: TrainPrecision = _T["precision"],
          pp_schedule: Annotated[str, choice(PP_SCHEDULES)] = _T["pp_schedule"],
          attention_kernel: Annotated[str, choice(
              ATTENTION_KERNELS, "unfused: the score matrix in memory.")]
          = _T["attention_kernel"],
          tp_comm_overlap: Annotated[bool, typer.Option(
              help="Pipeline TP collectives with the GEMMs (Megatron-Core / TE, AsyncTP).")
          ] = _T["tp_comm_overlap"],
          ranks_per_chip: Annotated[int | None, typer.Option(
              min=1, help="Ranks per package (default: the devices the chip exposes; "
                          "Ascend 910C: 2).")] = _T["ranks_per_chip"],
          order: Annotated[str, typer.Option(
              help="Rank placement, innermost first (tp-cp-dp-pp: TP inside the scale-up "
                   "domain).")] = _T["order"],
          chips: Chips = _T["chips"],
          trace: Annotated[Path | None, typer.Option(help="Write a Chrome trace here.")]
          = _T["trace"],
          economics: Annotated[bool, typer.Option(
              help="Add goodput after failures, power, tokens/J and $/Mtok.")]
          = _T["economics"],
          offload: Offload = _T["offload"], offload_tier: OffloadTier = _T["offload_tier"],
          offload_overlap: Annotated[str, choice(
              OFFLOAD_OVERLAP, "overlapped: transfers under backward / forward; delayed: "
                               "ZeRO-Offload's one-step delayed update.")]
          = _T["offload_overlap"],
          framework: Annotated[str, choice(
              TRAIN_FRAMEWORKS, "What this framework does for the layout: attention "
                                "kernel, overlaps, FP8 recipe, gradients, pipeline split "
                                "(validation's profiles; sources in the output).")]
          = _T["framework"],
          as_json: Json = False) -> None:
    """One training layout: step time, tokens/s, MFU, memory."""
    from superpod.report.train import train_view

    row = api.train(system_arg, model, global_batch, seq_len, tp=tp, pp=pp, vpp=vpp, dp=dp,
                    cp=cp, ep=ep, etp=etp, sequence_parallel=sequence_parallel, zero=zero,
                    micro_batch=micro_batch, recompute=recompute, precision=precision,
                    pp_schedule=pp_schedule, attention_kernel=attention_kernel,
                    tp_comm_overlap=tp_comm_overlap, ranks_per_chip=ranks_per_chip,
                    order=order, chips=chips, trace=trace, economics=economics,
                    offload=offload, offload_tier=offload_tier,
                    offload_overlap=offload_overlap, framework=framework)
    _show(row, as_json, train_view)


@plan_app.command(name="train")
@_friendly
def plan_train_cmd(
        system_arg: Annotated[str, typer.Option("--system", "-s", help="System id or YAML.")],
        model: Model,
        global_batch: Annotated[int, typer.Option(min=1, help="Sequences per step.")],
        seq_len: Annotated[int, typer.Option(min=1, help="Tokens per sequence.")],
        precision: TrainPrecision = _P["precision"],
        top: Annotated[int, typer.Option(min=1)] = _P["top"],
        tp_comm_overlap: Annotated[bool, typer.Option(
            help="Layouts pipeline TP collectives with the GEMMs (Megatron-Core / TE).")
        ] = _P["tp_comm_overlap"],
        ranks_per_chip: Annotated[int | None, typer.Option(
            min=1, help="Ranks per package (default: the devices the chip exposes; "
                        "Ascend 910C: 2).")] = _P["ranks_per_chip"],
        offload: Offload = _P["offload"], offload_tier: OffloadTier = _P["offload_tier"],
        space: Annotated[str, choice(
            SEARCH_SPACES, "full: every axis (ZeRO 0-3, four recompute modes, all vpp, "
            "placement orders, TP overlap); quick: the narrower space for many searches.")
        ] = _P["space"],
        framework: Annotated[str, choice(
            TRAIN_FRAMEWORKS, "Every layout runs with this framework's layout-independent "
                              "choices: kernels, FP8 recipe, dispatcher, gradient dtype.")]
        = _P["framework"],
        chips: Chips = _P["chips"], report: Report = None, as_json: Json = False) -> None:
    """The best K training layouts, infeasible ones counted by reason.

    The whole layout space is searched by branch and bound (layouts considered, evaluated,
    pruned and infeasible are reported); the best layout is the exhaustive search's."""
    from superpod.progress import Bar, wanted
    from superpod.report.train import plan_view

    with Bar("plan train", 1, wanted(as_json)) as bar:
        doc = api.plan_train(system_arg, model, global_batch, seq_len, precision=precision,
                             top=top, tp_comm_overlap=tp_comm_overlap,
                             ranks_per_chip=ranks_per_chip, offload=offload,
                             offload_tier=offload_tier, space=space, chips=chips,
                             progress=lambda d, t: bar.update(d, t, "structures"),
                             framework=framework)
    if report is not None:
        from superpod.api.resolve import system_arg as parse
        from superpod.report.html import write_report
        from superpod.report.html_views import plan_train_report
        from superpod.workload.model import load_model

        write_report(report, plan_train_report(doc, f"plan train: {parse(system_arg)[0]}, "
                                                    f"{load_model(model).name}"))
    _show(doc, as_json, plan_view)
    if not doc["candidates"]:
        sug = doc["suggestion"]
        if as_json:  # the suggestion is in the JSON document
            raise typer.Exit(1)
        err.print(f"infeasible: {sug['reason']}" + (
            f"; nearest that works: --global-batch {sug['global_batch']}"
            if sug["global_batch"] else "; no nearby batch works either"), highlight=False,
            markup=False)
        raise typer.Exit(1)

