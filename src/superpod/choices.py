"""Allowed values of the enumerated options of the commands and the API (``superpod.api``),
and the check that names the option of a value outside them.

The tuples are literals so that importing them is free; ``tests/test_cli_conventions.py``
checks each against the library's own list.
"""

from __future__ import annotations

from superpod.errors import SpecError

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
#: ``superpod.train.frameworks.NAMED_FRAMEWORKS``
TRAIN_FRAMEWORKS = ("none", "megatron-core", "nemo", "megatron-bridge", "torchtitan",
                    "torchtitan-compile", "meta-llama3", "hai-llm", "mindspeed-mc2")


def check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    """A value that is not one of ``allowed`` is bad input naming the option."""
    if value not in allowed:
        raise SpecError("not a known choice", field=field, value=value,
                        allowed=", ".join(allowed))
