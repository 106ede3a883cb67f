"""The click pieces the CLI uses, from wherever this Typer keeps them (recent Typer vendors
click as ``typer._click``; older Typer depends on click itself). Looked up by name, so the
module type-checks the same whether or not a separate click is installed (Ray brings one)."""

from __future__ import annotations

import importlib
from typing import Any


def _load() -> tuple[Any, Any]:
    for base in ("typer._click", "click"):
        try:
            exc = importlib.import_module(f"{base}.exceptions")
            glb = importlib.import_module(f"{base}.globals")
        except ImportError:  # pragma: no cover - the other layout
            continue
        return exc.ClickException, glb.get_current_context
    raise ImportError("neither typer._click nor click is importable")  # pragma: no cover


ClickException, get_current_context = _load()

__all__ = ["ClickException", "get_current_context"]
