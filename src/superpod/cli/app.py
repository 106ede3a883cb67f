"""The ``superpod`` Typer app and its ``plan`` group; the command modules attach to them.

The app carries ``--version`` and Typer's shell completion (``--install-completion``,
``--show-completion``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from superpod.cli.clickcompat import ClickException


class SuperpodGroup(TyperGroup):
    """The top-level group: with ``--json`` anywhere on the line, a usage error (an option
    that is not an integer, an unknown option) is the JSON error object on stderr too."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode or "--json" not in argv:
            return super().main(argv, prog_name, complete_var, standalone_mode,
                                windows_expand_args, **extra)
        from superpod.boundary import exits

        try:
            rv = super().main(argv, prog_name, complete_var, False, windows_expand_args,
                              **extra)
        except ClickException as exc:
            param = getattr(exc, "param", None)
            field = max(param.opts, key=len) if param is not None and param.opts else None
            exits.write_json_error(exits.error_object(exc.format_message(), field=field))
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="superpod", no_args_is_help=True, add_completion=True, rich_markup_mode=None,
    context_settings={"max_content_width": 80}, cls=SuperpodGroup,
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
