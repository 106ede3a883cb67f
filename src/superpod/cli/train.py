"""Training commands: ``train`` (one layout) and ``plan train`` (the layout search)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    TRAIN_PRECISIONS,
    choice,
)
from superpod.cli.common import Chips, Json, Model, Report, check_choice, err
from superpod.cli.common import emit_json as _emit_json
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import render as _render
from superpod.cli.common import system_arg as _system_arg
from superpod.errors import SpecError

Offload = Annotated[str, choice(
    OFFLOAD, "auto: where HBM does not fit, offload the optimizer state (ZeRO-Offload) "
             "and then activations to host or pooled memory.")]
OffloadTier = Annotated[str | None, choice(
    OFFLOAD_TIERS, "Default: pool where host memory is pooled, else host.")]
TrainPrecision = Annotated[str, choice(TRAIN_PRECISIONS, "Compute precision.")]


@app.command()
@_friendly
def train(system_arg: Annotated[str, typer.Option("--system", "-s", help="System id or YAML.")],
          model: Model,
          global_batch: Annotated[int, typer.Option(min=1, help="Sequences per step.")],
          seq_len: Annotated[int, typer.Option(min=1, help="Tokens per sequence.")],
          tp: int = 1, pp: int = 1, vpp: int = 1, dp: Annotated[int | None, typer.Option(
              help="Default: chips / (tp pp cp).")] = None, cp: int = 1, ep: int = 1,
          etp: int = 1, sequence_parallel: bool = True, zero: int = 1, micro_batch: int = 1,
          recompute: Annotated[str, choice(
              RECOMPUTE, "selective: attention core; op: every other matmul.")] = "none",
          precision: TrainPrecision = "bf16",
          pp_schedule: Annotated[str, choice(PP_SCHEDULES)] = "auto",
          attention_kernel: Annotated[str, choice(
              ATTENTION_KERNELS, "unfused: the score matrix in memory.")] = "auto",
          tp_comm_overlap: Annotated[bool, typer.Option(
              help="Pipeline TP collectives with the GEMMs (Megatron-Core / TE, AsyncTP).")
          ] = True,
          ranks_per_chip: Annotated[int | None, typer.Option(
              min=1, help="Ranks per package (default: the devices the chip exposes; "
                          "Ascend 910C: 2).")] = None,
          order: Annotated[str, typer.Option(
              help="Rank placement, innermost first (tp-cp-dp-pp: TP inside the scale-up "
                   "domain).")] = "tp-cp-dp-pp",
          chips: Chips = None,
          trace: Annotated[Path | None, typer.Option(help="Write a Chrome trace here.")] = None,
          economics: Annotated[bool, typer.Option(
              help="Add goodput after failures, power, tokens/J and $/Mtok.")] = True,
          offload: Offload = "none", offload_tier: OffloadTier = None,
          offload_overlap: Annotated[str, choice(
              OFFLOAD_OVERLAP, "overlapped: transfers under backward / forward; delayed: "
                               "ZeRO-Offload's one-step delayed update.")] = "overlapped",
          as_json: Json = False) -> None:
    """One training layout: step time, tokens/s, MFU, memory."""
    from superpod.errors import Infeasible
    from superpod.report.train import train_view
    from superpod.train.plan import TrainPlan
    from superpod.train.step import evaluate_train
    from superpod.train.trace import write_trace
    from superpod.trust.annotate import annotate_train
    from superpod.workload.model import load_model

    if trace is not None:
        from superpod.boundary.files import check_output

        check_output(trace, "--trace")
    sid, files = _system_arg(system_arg)
    sysm = api.system(sid, chips, files)
    spec = load_model(model)
    ranks_per_chip = ranks_per_chip or sysm.chip.devices
    ranks = sysm.counts.chips * ranks_per_chip
    check_choice("--recompute", recompute, RECOMPUTE)
    check_choice("--precision", precision, TRAIN_PRECISIONS)
    check_choice("--pp-schedule", pp_schedule, PP_SCHEDULES)
    check_choice("--attention-kernel", attention_kernel, ATTENTION_KERNELS)
    for name, v in (("--tp", tp), ("--pp", pp), ("--cp", cp)):
        if v < 1:
            raise SpecError("must be a positive integer", field=name, value=v)
    if dp is None and ranks % (tp * pp * cp):
        raise SpecError(f"does not divide the {ranks} ranks", field="--tp x --pp x --cp",
                        value=tp * pp * cp, allowed=f"a divisor of {ranks}")
    plan = TrainPlan(tp=tp, pp=pp, vpp=vpp, dp=dp if dp is not None else max(
                         1, ranks // (tp * pp * cp)), cp=cp,
                     ep=ep, etp=etp, sequence_parallel=sequence_parallel and tp > 1,
                     zero=zero, micro_batch=micro_batch, global_batch=global_batch,
                     seq_len=seq_len, recompute=recompute, precision=precision,
                     pp_schedule=("interleaved" if vpp > 1 else "1f1b")
                     if pp_schedule == "auto" else pp_schedule,
                     attention_kernel=attention_kernel, tp_comm_overlap=tp_comm_overlap and tp > 1,
                     order=order)
    if precision not in sysm.chip.peak_flop_per_s:
        raise SpecError(f"{sysm.chip.id} has no dense {precision} peak", field="--precision",
                        value=precision, allowed=", ".join(
                            p for p in ("bf16", "fp8", "fp4") if p in sysm.chip.peak_flop_per_s))
    tier = _offload_tier(sysm, offload, offload_tier)
    check_choice("--offload-overlap", offload_overlap, OFFLOAD_OVERLAP)
    if tier is not None:
        from superpod.train.offload_eval import evaluate_with_offload

        res = evaluate_with_offload(sysm, spec, plan, ranks_per_chip=ranks_per_chip,
                                    tier=tier, overlap=offload_overlap)  # type: ignore[arg-type]
    else:
        res = evaluate_train(sysm, spec, plan, ranks_per_chip=ranks_per_chip)
    if isinstance(res, Infeasible):
        if as_json:
            _emit_json(res.to_dict())
        else:
            err.print(f"infeasible ({res.reason}): {res.detail}")
        raise typer.Exit(1)
    if trace:
        write_trace(res, trace)
    row = res.to_dict()
    if economics:
        from superpod.train.economics import train_economics

        row |= train_economics(sysm, api.catalog(files), spec, res)
    annotate_train(row, sysm, api.catalog(files), spec, precision)
    if as_json:
        _emit_json(row)
    else:
        _render(train_view(row))


@plan_app.command(name="train")
@_friendly
def plan_train_cmd(
        system_arg: Annotated[str, typer.Option("--system", "-s", help="System id or YAML.")],
        model: Model,
        global_batch: Annotated[int, typer.Option(min=1, help="Sequences per step.")],
        seq_len: Annotated[int, typer.Option(min=1, help="Tokens per sequence.")],
        precision: TrainPrecision = "bf16", top: Annotated[int, typer.Option(min=1)] = 5,
        tp_comm_overlap: Annotated[bool, typer.Option(
            help="Layouts pipeline TP collectives with the GEMMs (Megatron-Core / TE).")
        ] = True,
        ranks_per_chip: Annotated[int | None, typer.Option(
            min=1, help="Ranks per package (default: the devices the chip exposes; "
                        "Ascend 910C: 2).")] = None,
        offload: Offload = "none", offload_tier: OffloadTier = None,
        space: Annotated[str, choice(
            SEARCH_SPACES, "full: every axis (ZeRO 0-3, four recompute modes, all vpp, "
            "placement orders, TP overlap); quick: the narrower space for many searches.")
        ] = "full",
        chips: Chips = None, report: Report = None, as_json: Json = False) -> None:
    """The best K training layouts, infeasible ones counted by reason.

    The whole layout space is searched by branch and bound (layouts considered, evaluated,
    pruned and infeasible are reported); the best layout is the exhaustive search's."""
    from superpod.progress import Bar, wanted
    from superpod.report.train import plan_view
    from superpod.train.search import plan_train
    from superpod.trust.annotate import annotate_train
    from superpod.workload.model import load_model

    check_choice("--precision", precision, TRAIN_PRECISIONS)
    check_choice("--space", space, SEARCH_SPACES)
    sid, files = _system_arg(system_arg)
    sysm = api.system(sid, chips, files)
    spec = load_model(model)
    tier = _offload_tier(sysm, offload, offload_tier)
    r = ranks_per_chip or sysm.chip.devices
    bar = Bar("plan train", 1, wanted(as_json))

    def search(batch: int, k: int = top) -> Any:
        if tier is not None:
            from superpod.train.offload_eval import plan_train_with_offload

            return plan_train_with_offload(sysm, spec, batch, seq_len, precision, k,
                                           ranks_per_chip=r, tp_comm_overlap=tp_comm_overlap,
                                           tier=tier, space=space)
        return plan_train(sysm, spec, batch, seq_len, precision, k, ranks_per_chip=r,
                          tp_comm_overlap=tp_comm_overlap, space=space,
                          progress=lambda d, t: bar.update(d, t, "structures"))

    with bar:
        res = search(global_batch)
    doc: dict[str, Any] = res.to_dict()
    cat = api.catalog(files)
    from superpod.train.economics import with_economics

    doc["candidates"] = [annotate_train(with_economics(c, cand, sysm, cat, spec), sysm, cat,
                                        spec, precision)
                         for c, cand in zip(doc["candidates"], res.candidates, strict=True)]
    if not res.candidates:
        doc["suggestion"] = _suggest_batch(sysm, spec, seq_len, precision, r, global_batch,
                                           res, lambda b: search(b, 1))
    if report is not None:
        from superpod.report.html import write_report
        from superpod.report.html_views import plan_train_report

        write_report(report, plan_train_report(doc, f"plan train: {sysm.spec.id}, "
                                                    f"{spec.name}"))
    if as_json:
        _emit_json(doc)
    else:
        _render(plan_view(doc))
    if not res.candidates:
        sug = doc["suggestion"]
        if as_json:  # the suggestion is in the JSON document
            raise typer.Exit(1)
        err.print(f"infeasible: {sug['reason']}" + (
            f"; nearest that works: --global-batch {sug['global_batch']}"
            if sug["global_batch"] else "; no nearby batch works either"), highlight=False,
            markup=False)
        raise typer.Exit(1)


def _suggest_batch(sysm: Any, spec: Any, seq_len: int, precision: str, r: int, asked: int,
                   res: Any, search: Any) -> dict[str, Any]:
    """Why ``asked`` has no layout, and the nearest batch that has one (None if none)."""
    from superpod.train.batch import (
        BATCH_REASONS,
        data_parallel_degrees,
        nearest_batches,
        why_none,
    )

    degrees = data_parallel_degrees(sysm, spec, seq_len, precision, r)
    curable = (not any(asked % d == 0 for d in degrees)
               or bool(BATCH_REASONS & set(res.infeasible)))  # memory: another batch won't
    found = next((b for b in nearest_batches(asked, degrees)
                  if b != asked and search(b).candidates), None) if curable else None
    return {"reason": why_none(res, asked, degrees), "global_batch": found,
            "data_parallel_degrees": degrees}


def _offload_tier(sysm: Any, offload: str, tier: str | None) -> Any:
    """The tier ``--offload auto`` offloads to, or None for ``--offload none``."""
    check_choice("--offload", offload, OFFLOAD)
    if offload == "none":
        if tier is not None:
            raise SpecError("--offload-tier needs --offload auto", field="--offload-tier",
                            value=tier)
        return None
    from superpod.train.offload_eval import offload_tier

    return offload_tier(sysm, tier)
