"""The library API that the ``superpod`` command is a thin layer over.

Each function returns the object the matching command prints with ``--json`` (SI units),
with the command's defaults: the commands read their defaults from these signatures
(``defaults``), so a layout that fits from the CLI fits from a notebook. A valid question
that cannot run returns ``{"status": "infeasible", "reason", "detail"}``; bad input raises
``superpod.SpecError``.

>>> from superpod import api
>>> api.show("cloudmatrix384")["chips"]
384
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from superpod.api.catalog import catalog, compare, memory, show, system, systems
from superpod.api.infer import infer, plan_infer, serve_sim
from superpod.api.network import collective, topology
from superpod.api.reliability import cost, reliability
from superpod.api.train import plan_train, train
from superpod.api.validate import validate

__all__ = ["catalog", "collective", "compare", "cost", "defaults", "infer", "is_infeasible",
           "memory", "plan_infer", "plan_train", "reliability", "serve_sim", "show", "system",
           "systems", "topology", "train", "validate"]


def defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of an API function (what a command's options default to)."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def is_infeasible(row: dict[str, Any]) -> bool:
    """Whether a result is the infeasible object (``status: infeasible``)."""
    return row.get("status") == "infeasible"
