"""The ``superpod`` command: a thin layer over the library and the renderers, one module per
command group (catalog, network, train, infer, reliability / cost, validate).

Every command has ``--json``. Bad input prints one line naming the file, field, value and
what is allowed, and exits with code 2; it never prints a traceback.
"""

from __future__ import annotations

from superpod.cli import catalog, infer, network, reliability, train, validate, versus
from superpod.cli.app import app, plan_app

infer.register(app)
reliability.register(app)

__all__ = ["app", "plan_app", "main", "catalog", "network", "train", "validate", "versus"]


def main() -> None:
    """Entry point of the ``superpod`` script."""
    app()
