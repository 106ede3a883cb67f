"""The ``collective`` command: one collective on the system's real topology."""

from __future__ import annotations

from typing import Annotated

import typer

from superpod import api
from superpod.cli.app import app
from superpod.cli.choices import COLLECTIVE_ALGORITHMS, COLLECTIVE_OPS, DTYPES, ENGINES, choice
from superpod.cli.common import Chips, Json
from superpod.cli.common import emit_json as _emit_json
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import render as _render

_C = api.defaults(api.collective)


@app.command(name="collective")
@_friendly
def collective_cmd(
        system_arg: Annotated[str, typer.Option(
            "--system", "-s", help="System id, or a YAML file (FILE or FILE:ID).")],
        op: Annotated[str, choice(COLLECTIVE_OPS, "The collective.")],
        nbytes: Annotated[str, typer.Option("--bytes", help="Buffer per rank, e.g. 256MiB.")]
        = _C["nbytes"],
        ranks: Annotated[int | None, typer.Option(min=1, help="Ranks (default: all chips).")]
        = _C["ranks"],
        algorithm: Annotated[str, choice(
            COLLECTIVE_ALGORITHMS, "EP ops take auto, normal or low_latency; the others the "
                                   "rest.")] = _C["algorithm"],
        engine: Annotated[str, choice(ENGINES)] = _C["engine"],
        fail_links: Annotated[int, typer.Option(
            min=0, help="Fail N scale-up links (seeded; flow engine).")]
        = _C["fail_links"],
        seed: Annotated[int, typer.Option(help="Seed for --fail-links.")] = _C["seed"],
        concurrent_groups: Annotated[int, typer.Option(
            min=1, help="Identical groups running at once (contention).")]
        = _C["concurrent_groups"],
        tokens: Annotated[int | None, typer.Option(help="EP: tokens per rank.")] = _C["tokens"],
        hidden: Annotated[int | None, typer.Option(help="EP: hidden size.")] = _C["hidden"],
        top_k: Annotated[int | None, typer.Option(help="EP: experts per token.")] = _C["top_k"],
        dtype: Annotated[str | None, choice(
            DTYPES, "EP: element type of the tokens (default bf16); other collectives move "
                    "--bytes whatever the type.")] = _C["dtype"],
        ep_library: Annotated[str | None, typer.Option(
            help="EP: kernel library version, e.g. deepep-2025-02 (pure-RDMA low-latency), "
                 "deepep-2025-06 (NVLink-aware), deepep_ascend-2025-09 (default: the newest "
                 "calibrated on the system's fabrics).")] = _C["ep_library"],
        chips: Chips = _C["chips"], as_json: Json = False) -> None:
    """Time, algbw and busbw of one collective on the real topology."""
    from superpod.report.network import collective_view

    row = api.collective(system_arg, op, nbytes=nbytes, ranks=ranks, algorithm=algorithm,
                         engine=engine, fail_links=fail_links, seed=seed,
                         concurrent_groups=concurrent_groups, tokens=tokens, hidden=hidden,
                         top_k=top_k, dtype=dtype, ep_library=ep_library, chips=chips)
    if as_json:
        _emit_json(row)
    else:
        _render(collective_view(row))
