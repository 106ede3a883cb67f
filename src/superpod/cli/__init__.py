"""The ``superpod`` command: a thin layer over the library and the renderers, one module per
command group (catalog, network, train, infer, reliability / cost, validate).

Every command has ``--json``. Bad input prints one line naming the file, field, value and
what is allowed, and exits with code 2; it never prints a traceback.
"""

from __future__ import annotations

import copy
import os
import sys

import typer

from superpod.cli import catalog, infer, network, reliability, sweep, train, validate, versus
from superpod.cli.app import app, plan_app

infer.register(app)
reliability.register(app)

__all__ = ["app", "plan_app", "main", "catalog", "network", "sweep", "train", "validate",
           "versus"]


def main() -> None:
    """Entry point of the ``superpod`` script."""
    app_for(sys.argv[1:])()


def app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command (or group) that ``argv`` names, when it names one
    first: Typer builds every registered command's parameters before parsing, ~1 ms each,
    and a run needs one. Anything else (an option first, no command, an unknown name, shell
    completion) gets the whole app, so listings and "No such command" are unchanged."""
    if not argv or argv[0].startswith("-") or any(k.endswith("_COMPLETE") for k in os.environ):
        return app
    name = argv[0]
    commands = [c for c in app.registered_commands
                if c.callback is not None
                and (c.name or typer.main.get_command_name(c.callback.__name__)) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if len(commands) + len(groups) != 1:
        return app
    one = copy.copy(app)
    one.registered_commands, one.registered_groups = commands, groups
    return one
