"""The enumerated options of the ``superpod`` commands: their allowed values
(``superpod.choices``) listed in ``--help`` and offered by shell completion."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer

from superpod.choices import (
    ATTENTION_KERNELS,
    CALIBRATE_DTYPES,
    COLLECTIVE_ALGORITHMS,
    COLLECTIVE_OPS,
    DTYPES,
    ENGINES,
    OFFLOAD,
    OFFLOAD_OVERLAP,
    OFFLOAD_TIERS,
    PP_SCHEDULES,
    PREFIX_TIERS,
    RECOMPUTE,
    REGIONS,
    SEARCH_SPACES,
    SPARE_LEVELS,
    SWEEP_ENGINES,
    TRAIN_FRAMEWORKS,
    TRAIN_PRECISIONS,
)

__all__ = ["ATTENTION_KERNELS", "CALIBRATE_DTYPES", "COLLECTIVE_ALGORITHMS",
           "COLLECTIVE_OPS", "DTYPES", "ENGINES",
           "OFFLOAD", "OFFLOAD_OVERLAP", "OFFLOAD_TIERS", "PP_SCHEDULES", "PREFIX_TIERS",
           "RECOMPUTE", "REGIONS", "SEARCH_SPACES",
           "SPARE_LEVELS", "SWEEP_ENGINES", "TRAIN_FRAMEWORKS", "TRAIN_PRECISIONS", "choice",
           "completer"]


def completer(values: Sequence[str]) -> Callable[[str], list[str]]:
    """Shell completion over ``values``."""
    def complete(incomplete: str) -> list[str]:
        return [v for v in values if v.startswith(incomplete)]
    return complete


def choice(values: Sequence[str], help: str = "", *names: str, **kw: Any) -> Any:
    """A ``typer.Option`` whose help ends with its allowed values, completed by the shell."""
    text = f"{help} One of: {', '.join(values)}." if help else f"One of: {', '.join(values)}."
    return typer.Option(*names, help=text, autocompletion=completer(values), **kw)
