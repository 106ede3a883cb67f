"""``collective`` (one collective on the system's real topology) and ``topology`` (its
facts): the objects ``superpod collective --json`` and ``superpod topology --json`` print."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superpod.choices import (
    COLLECTIVE_ALGORITHMS,
    COLLECTIVE_OPS,
    DTYPES,
    ENGINES,
    check_choice,
)
from superpod.errors import SpecError

#: the largest system the flow engine builds a graph of (~5 s at 32k chips on one core)
MAX_FLOW_CHIPS = 32_768


def collective(system: str, op: str, *, nbytes: str | float = "0", ranks: int | None = None,
               algorithm: str = "auto", engine: str = "analytic", fail_links: int = 0,
               seed: int = 0, concurrent_groups: int = 1, tokens: int | None = None,
               hidden: int | None = None, top_k: int | None = None, dtype: str | None = None,
               ep_library: str | None = None, chips: int | None = None) -> dict[str, Any]:
    """Time, algbw and busbw of one collective (``nbytes``: per rank, bytes or a size such
    as ``"256MiB"``; ``ranks`` default: all chips; EP ops take ``tokens``, ``hidden``,
    ``top_k``, ``dtype`` (default bf16) and ``ep_library``; the other ops move ``nbytes``
    whatever the type)."""
    from superpod.api.catalog import catalog
    from superpod.api.catalog import system as build
    from superpod.api.resolve import system_arg
    from superpod.network.collectives import CollectiveRequest
    from superpod.network.collectives import collective as run
    from superpod.network.flow_engine import check_engine, flow_collective
    from superpod.network.topology import build_fabric, failed_sample
    from superpod.trust.annotate import annotate_collective
    from superpod.units import UnitError, parse_size_bytes

    try:
        size = parse_size_bytes(nbytes) if isinstance(nbytes, str) else float(nbytes)
    except UnitError as exc:
        raise SpecError(str(exc), field="--bytes", value=nbytes) from None
    check_choice("--op", op, COLLECTIVE_OPS)
    check_choice("--engine", engine, ENGINES)
    check_choice("--algorithm", algorithm, COLLECTIVE_ALGORITHMS)
    ep = op in ("ep_dispatch", "ep_combine")
    if dtype is not None:
        check_choice("--dtype", dtype, DTYPES)
    for name, given in (("--dtype", dtype), ("--tokens", tokens), ("--hidden", hidden),
                        ("--top-k", top_k), ("--ep-library", ep_library)):
        if given is not None and not ep:
            raise SpecError(f"applies to ep_dispatch / ep_combine only, not {op}", field=name,
                            value=given)
    system_id, files = system_arg(system)
    sysm = build(system_id, chips, files)
    req = CollectiveRequest(op=op, ranks=ranks or sysm.counts.chips, bytes_=size,
                            algorithm=algorithm, dtype=dtype or "bf16", tokens=tokens,
                            hidden=hidden, top_k=top_k, concurrent_groups=concurrent_groups,
                            ep_library=ep_library)
    if engine == "flow" and sysm.counts.chips > MAX_FLOW_CHIPS:
        raise SpecError(f"the flow engine simulates every link of the {sysm.counts.chips:,} "
                        "chips; too large", field="--engine", value=engine,
                        allowed=f"--engine flow up to {MAX_FLOW_CHIPS:,} chips (--chips N), "
                                "else analytic")
    failed = failed_sample(build_fabric(sysm), fail_links, seed) if fail_links else []
    check_engine(engine, failed)
    res = flow_collective(sysm, req, failed) if engine == "flow" else run(sysm, req)
    return annotate_collective({"system": system_id, **res.to_dict()}, sysm, catalog(files))


def topology(system_id: str, chips: int | None = None,
             system_files: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Structure, diameter, bisection, links, switches, optics and fabric cost."""
    from superpod.api.catalog import catalog
    from superpod.api.catalog import system as build
    from superpod.network.facts import topology_facts

    return topology_facts(build(system_id, chips, system_files), catalog(system_files))
