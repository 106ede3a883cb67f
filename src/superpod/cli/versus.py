"""``superpod versus``: systems compared on one model, at one budget, training and serving."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from superpod.cli.app import app
from superpod.cli.choices import TRAIN_PRECISIONS, choice
from superpod.cli.common import Json, Model, Report, SystemFile, check_choice, err
from superpod.cli.common import emit_json as _emit_json
from superpod.cli.common import files_of as _files
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import render as _render
from superpod.errors import SpecError

EQUAL = ("chips", "power", "capex", "racks")  #: ``superpod.versus.budget.BASES``
SERVE_PRECISIONS = ("auto", "bf16", "fp16", "fp8", "int8", "fp4", "int4")


@app.command()
@_friendly
def versus(systems: Annotated[list[str], typer.Argument(
               metavar="SYSTEM SYSTEM...", help="Two or more system ids; the first sets "
                                                "the budget with --equal.")],
           model: Model,
           train: Annotated[bool, typer.Option(
               "--train", help="Compare training (the default with neither flag: both).")]
           = False,
           serve: Annotated[bool, typer.Option("--serve", help="Compare serving.")] = False,
           tokens_per_step: Annotated[int, typer.Option(
               min=1, help="Training tokens per optimizer step, the same for every system "
                           "(each gets the nearest feasible global batch).")] = 1536 * 4096,
           seq_len: Annotated[int, typer.Option(min=1, help="Training sequence length.")]
           = 4096,
           equal: Annotated[str | None, choice(
               EQUAL, "Scale every system to the first one's budget (whole scale-up "
                      "domains, within it).")] = None,
           precision: Annotated[str, choice(TRAIN_PRECISIONS, "Training precision.")]
           = "bf16",
           serve_precision: Annotated[str, choice(
               SERVE_PRECISIONS, "Serving weights (auto: FP8 where the chip has it, else "
                                 "INT8).")] = "auto",
           slo_tpot_ms: Annotated[float, typer.Option(min=0.001, help="TPOT SLO (ms).")]
           = 50.0,
           slo_ttft_ms: Annotated[float | None, typer.Option(
               min=0.001, help="TTFT SLO (ms).")] = None,
           input_len: Annotated[int, typer.Option(min=1)] = 2048,
           output_len: Annotated[int, typer.Option(min=1)] = 1024,
           chips: Annotated[int | None, typer.Option(
               "--chips", "-n", min=1, help="Size of the first system.")] = None,
           system: SystemFile = None, report: Report = None,
           markdown: Annotated[bool, typer.Option(
               "--markdown", help="Print the tables as GitHub markdown.")] = False,
           as_json: Json = False) -> None:
    """Each system's best training and serving layouts and what they cost: tokens/s per
    chip, rack, MW and $M, $/Mtok, interruptions, with bands and a winner per row."""
    from superpod.errors import Infeasible
    from superpod.report.versus import versus_view
    from superpod.versus.evaluate import Workload
    from superpod.versus.run import versus as run

    if len(systems) < 2:
        raise SpecError("compare at least two systems", field="SYSTEM", value=systems)
    if equal is not None:
        check_choice("--equal", equal, EQUAL)
    check_choice("--precision", precision, TRAIN_PRECISIONS)
    check_choice("--serve-precision", serve_precision, SERVE_PRECISIONS)
    both = not train and not serve
    work = Workload(tokens_per_step=tokens_per_step, seq_len=seq_len,
                    train_precision=precision, serve_precision=serve_precision,
                    slo_tpot_s=slo_tpot_ms / 1e3,
                    slo_ttft_s=slo_ttft_ms / 1e3 if slo_ttft_ms else None,
                    input_len=input_len, output_len=output_len)
    doc = run(systems, model, do_train=train or both, do_serve=serve or both, work=work,
              equal=equal, chips=chips, system_files=_files(system),
              points=report is not None)
    if isinstance(doc, Infeasible):
        if as_json:
            _emit_json(doc.to_dict())
        else:
            err.print(f"infeasible ({doc.reason}): {doc.detail}", highlight=False,
                      markup=False)
        raise typer.Exit(1)
    if report is not None:
        from superpod.report.html import write_report
        from superpod.report.html_views import versus_report

        write_report(report, versus_report(doc))
        for s in doc["systems"]:  # the plots' data stay in the report
            s.get("serve", {}).pop("points", None)
            s.get("train", {}).pop("scaling", None)
    if as_json:
        _emit_json(doc)
    elif markdown:
        from superpod.report.versus_md import versus_markdown

        sys.stdout.write(versus_markdown(doc))
    else:
        _render(versus_view(doc))
