"""The click pieces the CLI uses, from wherever this Typer keeps them (recent Typer vendors
click as ``typer._click``; older Typer depends on click itself)."""

from __future__ import annotations

try:
    from typer._click.exceptions import ClickException
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - Typer with click as a dependency
    from click.exceptions import ClickException  # type: ignore[no-redef,import-not-found]
    from click.globals import get_current_context  # type: ignore[no-redef,import-not-found]

__all__ = ["ClickException", "get_current_context"]
