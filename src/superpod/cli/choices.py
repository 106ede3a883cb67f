"""The enumerated options of the ``superpod`` commands: their allowed values, listed in
``--help`` and offered by shell completion.

The tuples are literals so that the CLI starts without importing the models; a test checks
each against the library's own list (``tests/test_cli_conventions.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer

TRAIN_PRECISIONS = ("bf16", "fp8", "fp4")
RECOMPUTE = ("none", "selective", "op", "full")
PP_SCHEDULES = ("auto", "1f1b", "interleaved", "dualpipe", "zero_bubble")
ATTENTION_KERNELS = ("auto", "fa2", "fa3", "unfused")
OFFLOAD = ("none", "auto")
OFFLOAD_TIERS = ("host", "pool")
OFFLOAD_OVERLAP = ("serial", "overlapped", "delayed")
PREFIX_TIERS = ("hbm", "peer_hbm", "host", "pool")
#: ``superpod.network.placement.OPS`` / ``ELEMENT_BYTES``
COLLECTIVE_OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast",
                  "send_recv", "ep_dispatch", "ep_combine")
COLLECTIVE_ALGORITHMS = ("auto", "ring", "tree", "halving_doubling", "nvls", "nvls_tree",
                         "direct", "hierarchical", "normal", "low_latency")
ENGINES = ("analytic", "flow")
DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4")
SPARE_LEVELS = ("chip", "node")
REGIONS = ("us", "us-eia", "china")
CALIBRATE_DTYPES = ("bf16", "fp16", "fp32")
SEARCH_SPACES = ("full", "quick")  #: ``superpod.train.search.SPACES``
SWEEP_ENGINES = ("local", "ray")  #: ``superpod.sweep.run.ENGINES``


def completer(values: Sequence[str]) -> Callable[[str], list[str]]:
    """Shell completion over ``values``."""
    def complete(incomplete: str) -> list[str]:
        return [v for v in values if v.startswith(incomplete)]
    return complete


def choice(values: Sequence[str], help: str = "", *names: str, **kw: Any) -> Any:
    """A ``typer.Option`` whose help ends with its allowed values, completed by the shell."""
    text = f"{help} One of: {', '.join(values)}." if help else f"One of: {', '.join(values)}."
    return typer.Option(*names, help=text, autocompletion=completer(values), **kw)
