"""The ``superpod`` Typer app and its ``plan`` group; the command modules attach to them."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="superpod", no_args_is_help=True, add_completion=False,
    help="Model an accelerator system (chip -> supernode -> SuperCluster) as one logical "
         "machine and predict what it delivers.")
plan_app = typer.Typer(help="Search layouts for a workload.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")
