"""Pieces every ``superpod`` command shares: consoles, option types, the error wrapper,
JSON output and the ``--system`` argument of the workload commands.

The consoles never read markup: user and data text (ids, names, error values, hints such as
``superpod[calibrate]``) is printed as written; styles are given as ``rich.text.Text``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from superpod.api.resolve import resolve_id, system_arg
from superpod.boundary import exits, jsonio
from superpod.boundary.files import check_output
from superpod.boundary.options import check_options, option_name
from superpod.choices import check_choice
from superpod.cli.clickcompat import ClickException, get_current_context
from superpod.errors import SpecError

#: NO_COLOR (https://no-color.org) set to anything non-empty: no ANSI styling at all
_PLAIN: dict[str, Any] = {"color_system": None} if os.environ.get("NO_COLOR") else {}
out = Console(markup=False, **_PLAIN)
err = Console(stderr=True, markup=False, **_PLAIN)
F = TypeVar("F", bound=Callable[..., Any])
#: parameters that name a file the command writes (checked before the work starts)
OUTPUT_PARAMS = ("report", "write_bands", "output")

__all__ = ["Chips", "Json", "Model", "Report", "SystemFile", "api_defaults", "check_choice",
           "emit_json", "err", "files_of", "friendly", "out", "render", "resolve_id",
           "system_arg"]

Json = Annotated[bool, typer.Option("--json", help="Print JSON (SI units) for scripts.")]
Report = Annotated[Path | None, typer.Option(
    "--report", help="Also write a self-contained HTML report here (needs the `report` "
                     "extra: plotly).")]
Chips = Annotated[int | None, typer.Option(
    "--chips", "-n", min=1, help="Scale the system to N chips (replicates building blocks).")]


def friendly(fn: F) -> F:
    """Check the numeric options, then run the command: bad input is one line on stderr
    and exit code 2 (a JSON error object with ``--json``); an internal error is one line
    and exit code 3 (the traceback with ``SUPERPOD_DEBUG=1``)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            names = _option_names()
            check_options(kwargs, names)
            for param in OUTPUT_PARAMS:
                if kwargs.get(param) is not None:
                    check_output(kwargs[param], option_name(param, names))
            return fn(*args, **kwargs)
        except SpecError as exc:
            report_spec_error(exc, as_json)
            raise typer.Exit(exits.BAD_INPUT) from None
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except Exception as exc:
            if exits.debug():
                raise
            if as_json:
                exits.write_json_error(exits.error_object(exits.internal_message(exc)))
            else:
                err.print(Text("error: ", style="red") + exits.internal_message(exc),
                          highlight=False, soft_wrap=True)
            raise typer.Exit(exits.INTERNAL) from None
    return wrapper  # type: ignore[return-value]


def report_spec_error(exc: SpecError, as_json: bool) -> None:
    """Bad input: the JSON error object, or ``error: <one line>`` per problem (a file's
    problems come together)."""
    if as_json:
        exits.write_json_error(exits.spec_error_object(exc))
    else:
        for line in str(exc).splitlines():
            err.print(Text("error: ", style="red") + line, highlight=False, soft_wrap=True)


def _option_names() -> dict[str, str]:
    """Parameter name -> the option it is given with, from the running command."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return {}
    return {str(p.name): max(p.opts, key=len) for p in ctx.command.params if p.opts}


def render(obj: Any) -> None:
    """Print a view on stdout; a table too wide for the terminal prints as records."""
    from superpod.report.fit import fit

    out.print(fit(out, obj))


def emit_json(obj: Any) -> None:
    """Print a result as strict JSON (non-finite numbers as null, listed with a reason)."""
    sys.stdout.write(jsonio.dumps(obj) + "\n")


def show_result(row: dict[str, Any], as_json: bool, view: Any) -> None:
    """Print a result (``--json`` or the view); an infeasible one exits 1 with its reason."""
    import typer

    if row.get("status") == "infeasible":
        if as_json:
            emit_json(row)
        else:
            err.print(f"infeasible ({row['reason']}): {row['detail']}", highlight=False)
        raise typer.Exit(1)
    if as_json:
        emit_json(row)
    else:
        render(view(row))


def api_defaults(name: str) -> dict[str, Any]:
    """The defaults of ``superpod.api.<name>``: what the command's options default to."""
    from superpod import api

    return api.defaults(getattr(api, name))


SystemFile = Annotated[list[Path] | None, typer.Option(
    "--system", "-s", help="YAML file with your own chips / parts / systems (repeatable).")]
Model = Annotated[str, typer.Option("--model", "-m",
                                     help="Preset id or a Hugging Face config.json path.")]


def files_of(system: list[Path] | None) -> list[str]:
    """The ``--system`` files as strings."""
    return [str(p) for p in system or []]
