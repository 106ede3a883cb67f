"""Pieces every ``superpod`` command shares: consoles, option types, the bad-input wrapper,
JSON output and the ``--system`` argument of the workload commands."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from superpod.api.resolve import resolve_id, system_arg
from superpod.choices import check_choice
from superpod.errors import SpecError

#: NO_COLOR (https://no-color.org) set to anything non-empty: no ANSI styling at all
_PLAIN: dict[str, Any] = {"color_system": None} if os.environ.get("NO_COLOR") else {}
out = Console(**_PLAIN)
err = Console(stderr=True, **_PLAIN)
F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Chips", "Json", "Model", "SystemFile", "api_defaults", "check_choice", "emit_json",
"err",
           "files_of", "friendly", "out", "render", "resolve_id", "system_arg"]

Json = Annotated[bool, typer.Option("--json", help="Print JSON (SI units) for scripts.")]
Report = Annotated[Path | None, typer.Option(
    "--report", help="Also write a self-contained HTML report here (needs the `report` "
                     "extra: plotly).")]
Chips = Annotated[int | None, typer.Option(
    "--chips", "-n", min=1, help="Scale the system to N chips (replicates building blocks).")]


def friendly(fn: F) -> F:
    """Turn bad input into one line on stderr and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpecError as exc:
            for line in str(exc).splitlines():  # one line per problem
                err.print(f"[red]error:[/red] {escape(line)}", highlight=False,
                          soft_wrap=True)
            raise typer.Exit(2) from None
    return wrapper  # type: ignore[return-value]


def render(obj: Any) -> None:
    """Print a view on stdout; a table too wide for the terminal prints as records."""
    from superpod.report.fit import fit

    out.print(fit(out, obj))


def api_defaults(name: str) -> dict[str, Any]:
    """The defaults of ``superpod.api.<name>``: what the command's options default to."""
    from superpod import api

    return api.defaults(getattr(api, name))


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


SystemFile = Annotated[list[Path] | None, typer.Option(
    "--system", "-s", help="YAML file with your own chips / parts / systems (repeatable).")]
Model = Annotated[str, typer.Option("--model", "-m",
                                     help="Preset id or a Hugging Face config.json path.")]


def files_of(system: list[Path] | None) -> list[str]:
    """The ``--system`` files as strings."""
    return [str(p) for p in system or []]
