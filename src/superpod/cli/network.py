"""The ``collective`` command: one collective on the system's real topology."""

from __future__ import annotations

from typing import Annotated

import typer

from superpod import api
from superpod.cli.app import app
from superpod.cli.choices import COLLECTIVE_ALGORITHMS, COLLECTIVE_OPS, DTYPES, ENGINES, choice
from superpod.cli.common import Chips, Json, check_choice
from superpod.cli.common import emit_json as _emit_json
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import render as _render
from superpod.cli.common import system_arg as _system_arg
from superpod.errors import SpecError

#: the largest system the flow engine builds a graph of (~5 s at 32k chips on one core)
MAX_FLOW_CHIPS = 32_768
#: every operation ``collective --op`` takes
OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "send_recv",
       "ep_dispatch", "ep_combine")


@app.command(name="collective")
@_friendly
def collective_cmd(
        system_arg: Annotated[str, typer.Option(
            "--system", "-s", help="System id, or a YAML file (FILE or FILE:ID).")],
        op: Annotated[str, choice(COLLECTIVE_OPS, "The collective.")],
        nbytes: Annotated[str, typer.Option("--bytes", help="Buffer per rank, e.g. 256MiB.")]
        = "0",
        ranks: Annotated[int | None, typer.Option(min=1, help="Ranks (default: all chips).")]
        = None,
        algorithm: Annotated[str, choice(
            COLLECTIVE_ALGORITHMS, "EP ops take auto, normal or low_latency; the others the "
                                   "rest.")] = "auto",
        engine: Annotated[str, choice(ENGINES)] = "analytic",
        fail_links: Annotated[int, typer.Option(
            min=0, help="Fail N scale-up links (seeded; flow engine).")] = 0,
        seed: Annotated[int, typer.Option(help="Seed for --fail-links.")] = 0,
        concurrent_groups: Annotated[int, typer.Option(
            min=1, help="Identical groups running at once (contention).")] = 1,
        tokens: Annotated[int | None, typer.Option(help="EP: tokens per rank.")] = None,
        hidden: Annotated[int | None, typer.Option(help="EP: hidden size.")] = None,
        top_k: Annotated[int | None, typer.Option(help="EP: experts per token.")] = None,
        dtype: Annotated[str | None, choice(
            DTYPES, "EP: element type of the tokens (default bf16); other collectives move "
                    "--bytes whatever the type.")] = None,
        ep_library: Annotated[str | None, typer.Option(
            help="EP: kernel library version, e.g. deepep-2025-02 (pure-RDMA low-latency), "
                 "deepep-2025-06 (NVLink-aware), deepep_ascend-2025-09 (default: the newest "
                 "calibrated on the system's fabrics).")] = None,
        chips: Chips = None, as_json: Json = False) -> None:
    """Time, algbw and busbw of one collective on the real topology."""
    from superpod.network.collectives import CollectiveRequest, collective
    from superpod.network.flow_engine import check_engine, flow_collective
    from superpod.network.topology import build_fabric, failed_sample
    from superpod.report.network import collective_view
    from superpod.units import UnitError, parse_size_bytes

    try:
        size = parse_size_bytes(nbytes)
    except UnitError as exc:
        raise SpecError(str(exc), field="--bytes", value=nbytes) from None
    check_choice("--op", op, OPS)
    check_choice("--engine", engine, ("analytic", "flow"))
    ep = op in ("ep_dispatch", "ep_combine")
    if dtype is not None:
        from superpod.network.placement import ELEMENT_BYTES  # at use: start-up

        check_choice("--dtype", dtype, tuple(ELEMENT_BYTES))
    for name, given in (("--dtype", dtype), ("--tokens", tokens), ("--hidden", hidden),
                        ("--top-k", top_k), ("--ep-library", ep_library)):
        if given is not None and not ep:
            raise SpecError(f"applies to ep_dispatch / ep_combine only, not {op}", field=name,
                            value=given)
    system_id, files = _system_arg(system_arg)
    sysm = api.system(system_id, chips, files)
    req = CollectiveRequest(op=op, ranks=ranks or sysm.counts.chips, bytes_=size,
                            algorithm=algorithm, dtype=dtype or "bf16", tokens=tokens,
                            hidden=hidden,
                            top_k=top_k, concurrent_groups=concurrent_groups,
                            ep_library=ep_library)
    if engine == "flow" and sysm.counts.chips > MAX_FLOW_CHIPS:
        raise SpecError(f"the flow engine simulates every link of the {sysm.counts.chips:,} "
                        "chips; too large", field="--engine", value=engine,
                        allowed=f"--engine flow up to {MAX_FLOW_CHIPS:,} chips (--chips N), "
                                "else analytic")
    failed = failed_sample(build_fabric(sysm), fail_links, seed) if fail_links else []
    check_engine(engine, failed)
    res = flow_collective(sysm, req, failed) if engine == "flow" else collective(sysm, req)
    from superpod.trust.annotate import annotate_collective

    row = annotate_collective({"system": system_id, **res.to_dict()}, sysm,
                              api.catalog(files))
    if as_json:
        _emit_json(row)
    else:
        _render(collective_view(row))
