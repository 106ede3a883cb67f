"""``validate`` (the scoreboard against published measurements) and ``calibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from superpod import api
from superpod.cli.app import app
from superpod.cli.choices import CALIBRATE_DTYPES, choice
from superpod.cli.common import Json, Report, SystemFile, out
from superpod.cli.common import emit_json as _emit_json
from superpod.cli.common import files_of as _files
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import render as _render


@app.command()
@_friendly
def validate(case_file: Annotated[Path | None, typer.Argument(
                 metavar="[FILE]", help="Case file (YAML list; default: the published cases "
                                        "shipped with superpod).")] = None,
             system: SystemFile = None,
             calibration: Annotated[Path | None, typer.Option(
                 help="Kernel calibration YAML (default: the one shipped).")] = None,
             cross_validate: Annotated[bool, typer.Option(
                 "--cross-validate", help="Also predict each source's cases with every datum "
                 "from that source held out (leave-one-source-out), with bands.")] = False,
             write_bands: Annotated[Path | None, typer.Option(
                 help="Write the 80 % bands the held-out residuals give (YAML).")] = None,
             notes: Annotated[bool, typer.Option(
                 "--notes", help="Show each case's note (what the prediction rests on).")]
             = False,
             markdown: Annotated[bool, typer.Option(
                 "--markdown", help="Print the summary (and, cross-validated, the table "
                 "by source) as GitHub markdown.")] = False,
             report: Report = None, as_json: Json = False) -> None:
    """Predict published measurements and report the errors."""
    from superpod.progress import Bar, wanted
    from superpod.report.validation import validation_view

    with Bar("validate", 1, wanted(as_json)) as bar:
        result = api.validate(case_file, system_files=_files(system),
                              calibration=calibration, cross_validate=cross_validate,
                              write_bands=write_bands,
                              progress=lambda d, t: bar.update(d, t, "cases"))
    if report is not None:
        from superpod.report.html import write_report
        from superpod.report.html_views import validate_report

        write_report(report, validate_report(result))
    if as_json:
        _emit_json(result)
    elif markdown:
        import sys

        from superpod.report.validation_md import validation_markdown

        sys.stdout.write(validation_markdown(result))
    else:
        _render(validation_view(result, notes=notes))


@app.command()
@_friendly
def calibrate(chip: Annotated[str, typer.Option(help="Catalog chip id the measurements are for.")],
              output: Annotated[Path, typer.Option("--output", "-o",
                                                   help="Calibration YAML to write.")],
              dtype: Annotated[str, choice(CALIBRATE_DTYPES, "Element type.")] = "bf16",
              device: Annotated[str | None, typer.Option(
                  help="torch device (default: cuda if present, else cpu).")] = None,
              repeats: Annotated[int, typer.Option(min=1)] = 20,
              as_json: Json = False) -> None:
    """Measure GEMM and copy throughput here (needs PyTorch).

    Writes a calibration file for `--calibration` (the `calibrate` extra installs PyTorch)."""
    import yaml

    from superpod.boundary.files import check_output, write_text
    from superpod.compute.measure import measure, with_defaults

    api.catalog().chip(chip)  # an unknown chip id is bad input
    check_output(output, "--output")
    measured = measure(chip, dtype, device, repeats)
    doc = with_defaults(measured)
    write_text(output, yaml.safe_dump(doc, sort_keys=False), "--output")
    if as_json:
        _emit_json(calibration_summary(measured, str(output), dtype))
        return
    out.print(f"wrote {output}: {len(doc['gemm'][0]['points'])} GEMM shapes, copy "
              f"{doc['memcpy'][0]['copy_bandwidth']}", highlight=False)


def calibration_summary(measured: dict[str, Any], output: str, dtype: str) -> dict[str, Any]:
    """``calibrate --json``: what was measured, in SI units (the file keeps the YAML form)."""
    from superpod.units import Dim, parse_quantity

    gemm, copy = measured["gemm"][0], measured["memcpy"][0]
    return {"chip": gemm["chip"], "dtype": dtype, "output": output, "source": gemm["source"],
            "gemm": [{"m": m, "n": n, "k": k, "flop_per_s": tflops * 1e12}
                     for m, n, k, tflops in gemm["points"]],
            "copy_bandwidth_bytes_per_s": parse_quantity(
                copy["copy_bandwidth"].replace(" ", ""), Dim.BYTES_PER_S)}
