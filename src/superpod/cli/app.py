"""The ``superpod`` Typer app and its ``plan`` group; the command modules attach to them.

The app carries ``--version`` and Typer's shell completion (``--install-completion``,
``--show-completion``)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="superpod", no_args_is_help=True, add_completion=True, rich_markup_mode=None,
    context_settings={"max_content_width": 80},
    help="Model an accelerator system (chip -> supernode -> SuperCluster) as one logical "
         "machine and predict what it delivers.")
plan_app = typer.Typer(help="Search layouts for a workload.", no_args_is_help=True,
                       rich_markup_mode=None,
                       context_settings={"max_content_width": 80})
app.add_typer(plan_app, name="plan")


def _version(value: bool) -> None:
    if value:
        from superpod import __version__

        typer.echo(f"superpod {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_version,
        help="Print the version and exit.")] = False) -> None:
    """Model an accelerator system (chip -> supernode -> SuperCluster) as one logical
    machine and predict what it delivers."""
