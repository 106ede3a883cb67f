"""The ``superpod`` command: a thin layer over ``superpod.api`` and the renderers.

Every command has ``--json``. Bad input prints one line naming the file, field, value and
what is allowed, and exits with code 2; it never prints a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from superpod import api
from superpod.cli_common import Chips, Json, err, out
from superpod.cli_common import emit_json as _emit_json
from superpod.cli_common import friendly as _friendly
from superpod.cli_common import resolve_id as _resolve_id
from superpod.cli_common import system_arg as _system_arg
from superpod.cli_infer import register as register_infer
from superpod.cli_reliability import register as register_reliability
from superpod.errors import SpecError
from superpod.report.systems import compare_view, show_view, systems_view

app = typer.Typer(
    name="superpod", no_args_is_help=True, add_completion=False,
    help="Model an accelerator system (chip -> supernode -> SuperCluster) as one logical "
         "machine and predict what it delivers.")
SystemFile = Annotated[list[Path] | None, typer.Option(
    "--system", "-s", help="YAML file with your own chips / parts / systems (repeatable).")]


def _files(system: list[Path] | None) -> list[str]:
    return [str(p) for p in system or []]


@app.command()
@_friendly
def systems(system: SystemFile = None, as_json: Json = False) -> None:
    """List the system catalog, one line each."""
    cat = api.catalog(_files(system))
    if as_json:
        _emit_json({"systems": [{"id": s.id, "name": s.name, "chip": s.chip, "chips": s.chips,
                                 "status": s.status, "evidence": s.evidence,
                                 "scale_up": s.scale_up.kind, "source": s.source}
                                for s in cat.systems.values()]})
        return
    out.print(systems_view(cat.systems))


@app.command()
@_friendly
def chips(system: SystemFile = None, as_json: Json = False) -> None:
    """List the chip catalog with its key figures and evidence."""
    cat = api.catalog(_files(system))
    rows = [c.model_dump(mode="json") for c in cat.chips.values()]
    if as_json:
        _emit_json({"chips": rows})
        return
    table = Table(title="superpod chips (dense peaks; bandwidths one direction)",
                  title_justify="left")
    for col in ("id", "BF16 TF", "FP8 TF", "HBM GB", "HBM TB/s", "scale-up GB/s", "NIC Gb/s",
                "W", "status", "evidence"):
        table.add_column(col, justify="left" if col in ("id", "status", "evidence") else "right")
    for c in cat.chips.values():
        p = c.peak_flop_per_s
        table.add_row(c.id, f"{p['bf16'] / 1e12:,.0f}" if "bf16" in p else "-",
                      f"{p['fp8'] / 1e12:,.0f}" if "fp8" in p else "-",
                      f"{c.hbm_bytes / 1e9:,.0f}", f"{c.hbm_bandwidth_bytes_per_s / 1e12:.2f}",
                      f"{c.scale_up_bandwidth_bytes_per_s / 1e9:,.0f}",
                      f"{c.scale_out_bandwidth_bits_per_s / 1e9:,.0f}", f"{c.power_w:,.0f}",
                      c.status, c.evidence)
    out.print(table)


@app.command()
@_friendly
def show(system_id: Annotated[str | None, typer.Argument(
             metavar="SYSTEM", help="System id (see `superpod systems`).")] = None,
         chips: Chips = None, system: SystemFile = None, as_json: Json = False) -> None:
    """Everything a system adds up to, computed from its parts, with sources."""
    files = _files(system)
    row = api.show(_resolve_id(system_id, files), chips, files)
    if as_json:
        _emit_json(row)
    else:
        out.print(show_view(row))


@app.command()
@_friendly
def compare(system_ids: Annotated[list[str], typer.Argument(
                metavar="SYSTEM...", help="Two or more system ids.")],
            chips: Chips = None, system: SystemFile = None, as_json: Json = False) -> None:
    """Side-by-side table with ratios to the first system."""
    result = api.compare(system_ids, chips, _files(system))
    if as_json:
        _emit_json(result)
    else:
        out.print(compare_view(result["systems"]))


@app.command()
@_friendly
def validate(case_file: Annotated[Path, typer.Argument(metavar="FILE",
                                                       help="Case file (YAML list).")],
             system: SystemFile = None,
             calibration: Annotated[Path | None, typer.Option(
                 help="Kernel calibration YAML (default: the one shipped).")] = None,
             as_json: Json = False) -> None:
    """Predict every published measurement in a case file and report the errors."""
    from superpod.report.validation import validation_view
    from superpod.validate.runner import validate_file

    result = validate_file(str(case_file), tuple(_files(system)),
                           str(calibration) if calibration else None)
    if as_json:
        _emit_json(result)
    else:
        out.print(validation_view(result))


@app.command(name="collective")
@_friendly
def collective_cmd(
        system_arg: Annotated[str, typer.Option(
            "--system", "-s", help="System id, or a YAML file (FILE or FILE:ID).")],
        op: Annotated[str, typer.Option(help="all_reduce, all_gather, reduce_scatter, "
                                             "all_to_all, broadcast, send_recv, ep_dispatch, "
                                             "ep_combine")],
        nbytes: Annotated[str, typer.Option("--bytes", help="Buffer per rank, e.g. 256MiB.")]
        = "0",
        ranks: Annotated[int | None, typer.Option(min=1, help="Ranks (default: all chips).")]
        = None,
        algorithm: Annotated[str, typer.Option(help="auto, ring, tree, halving_doubling, "
                                                    "nvls, direct, hierarchical")] = "auto",
        engine: Annotated[str, typer.Option(help="analytic or flow.")] = "analytic",
        fail_links: Annotated[int, typer.Option(
            min=0, help="Fail N scale-up links (seeded; flow engine).")] = 0,
        seed: Annotated[int, typer.Option(help="Seed for --fail-links.")] = 0,
        concurrent_groups: Annotated[int, typer.Option(
            min=1, help="Identical groups running at once (contention).")] = 1,
        tokens: Annotated[int | None, typer.Option(help="EP: tokens per rank.")] = None,
        hidden: Annotated[int | None, typer.Option(help="EP: hidden size.")] = None,
        top_k: Annotated[int | None, typer.Option(help="EP: experts per token.")] = None,
        dtype: Annotated[str, typer.Option(help="Element type.")] = "bf16",
        chips: Chips = None, as_json: Json = False) -> None:
    """Time, algbw and busbw of one collective on the system's real topology."""
    from superpod.network.collectives import CollectiveRequest, collective
    from superpod.network.flow_engine import check_engine, flow_collective
    from superpod.network.topology import build_fabric, failed_sample
    from superpod.report.network import collective_view
    from superpod.units import UnitError, parse_size_bytes

    try:
        size = parse_size_bytes(nbytes)
    except UnitError as exc:
        raise SpecError(str(exc), field="--bytes", value=nbytes) from None
    system_id, files = _system_arg(system_arg)
    sysm = api.system(system_id, chips, files)
    req = CollectiveRequest(op=op, ranks=ranks or sysm.counts.chips, bytes_=size,
                            algorithm=algorithm, dtype=dtype, tokens=tokens, hidden=hidden,
                            top_k=top_k, concurrent_groups=concurrent_groups)
    failed = failed_sample(build_fabric(sysm), fail_links, seed) if fail_links else []
    check_engine(engine, failed)
    res = flow_collective(sysm, req, failed) if engine == "flow" else collective(sysm, req)
    row = {"system": system_id, **res.to_dict()}
    if as_json:
        _emit_json(row)
    else:
        out.print(collective_view(row))


@app.command()
@_friendly
def topology(system_id: Annotated[str | None, typer.Argument(metavar="SYSTEM")] = None,
             chips: Chips = None, system: SystemFile = None, as_json: Json = False) -> None:
    """Topology facts: structure, diameter, bisection, links, switches, optics, fabric cost."""
    from superpod.network.facts import topology_facts
    from superpod.report.network import topology_view

    files = _files(system)
    sid = _resolve_id(system_id, files)
    facts = topology_facts(api.system(sid, chips, files), api.catalog(files))
    if as_json:
        _emit_json(facts)
    else:
        out.print(topology_view(facts))


Model = Annotated[str, typer.Option("--model", "-m",
                                     help="Preset id or a Hugging Face config.json path.")]


@app.command()
@_friendly
def train(system_arg: Annotated[str, typer.Option("--system", "-s", help="System id or YAML.")],
          model: Model,
          global_batch: Annotated[int, typer.Option(min=1, help="Sequences per step.")],
          seq_len: Annotated[int, typer.Option(min=1, help="Tokens per sequence.")],
          tp: int = 1, pp: int = 1, vpp: int = 1, dp: Annotated[int | None, typer.Option(
              help="Default: chips / (tp pp cp).")] = None, cp: int = 1, ep: int = 1,
          etp: int = 1, sequence_parallel: bool = True, zero: int = 1, micro_batch: int = 1,
          recompute: Annotated[str, typer.Option(
              help="none, selective (attention core), op (every other matmul), full.")] = "none",
          precision: str = "bf16", pp_schedule: str = "auto",
          attention_kernel: Annotated[str, typer.Option(
              help="auto, fa2, fa3 or unfused (score matrix in memory).")] = "auto",
          tp_comm_overlap: Annotated[bool, typer.Option(
              help="Pipeline TP collectives with the GEMMs (Megatron-Core / TE, AsyncTP).")
          ] = True,
          ranks_per_chip: Annotated[int, typer.Option(
              min=1, help="Ranks per package (dies; Ascend 910C: 2).")] = 1,
          order: Annotated[str, typer.Option(
              help="Rank placement, innermost first (tp-cp-dp-pp: TP inside the scale-up "
                   "domain).")] = "tp-cp-dp-pp",
          chips: Chips = None,
          trace: Annotated[Path | None, typer.Option(help="Write a Chrome trace here.")] = None,
          economics: Annotated[bool, typer.Option(
              help="Add goodput after failures, power, tokens/J and $/Mtok.")] = True,
          as_json: Json = False) -> None:
    """Step time, tokens/s, MFU, memory and a breakdown for one training layout."""
    from superpod.errors import Infeasible
    from superpod.report.train import train_view
    from superpod.train.plan import TrainPlan
    from superpod.train.step import evaluate_train
    from superpod.train.trace import write_trace
    from superpod.workload.model import load_model

    sid, files = _system_arg(system_arg)
    sysm = api.system(sid, chips, files)
    spec = load_model(model)
    ranks = sysm.counts.chips * ranks_per_chip
    _check_choice("--recompute", recompute, ("none", "selective", "op", "full"))
    _check_choice("--precision", precision, ("bf16", "fp8", "fp4"))
    _check_choice("--pp-schedule", pp_schedule,
                  ("auto", "1f1b", "interleaved", "dualpipe", "zero_bubble"))
    _check_choice("--attention-kernel", attention_kernel, ("auto", "fa2", "fa3", "unfused"))
    for name, v in (("--tp", tp), ("--pp", pp), ("--cp", cp)):
        if v < 1:
            raise SpecError("must be a positive integer", field=name, value=v)
    if dp is None and ranks % (tp * pp * cp):
        raise SpecError(f"does not divide the {ranks} ranks", field="--tp x --pp x --cp",
                        value=tp * pp * cp, allowed=f"a divisor of {ranks}")
    plan = TrainPlan(tp=tp, pp=pp, vpp=vpp, dp=dp or max(1, ranks // (tp * pp * cp)), cp=cp,
                     ep=ep, etp=etp, sequence_parallel=sequence_parallel and tp > 1,
                     zero=zero, micro_batch=micro_batch, global_batch=global_batch,
                     seq_len=seq_len, recompute=recompute, precision=precision,
                     pp_schedule=("interleaved" if vpp > 1 else "1f1b")
                     if pp_schedule == "auto" else pp_schedule,
                     attention_kernel=attention_kernel, tp_comm_overlap=tp_comm_overlap and tp > 1,
                     order=order)
    res = evaluate_train(sysm, spec, plan, ranks_per_chip=ranks_per_chip)
    if isinstance(res, Infeasible):
        if as_json:
            _emit_json(res.to_dict())
        else:
            err.print(f"infeasible ({res.reason}): {res.detail}")
        raise typer.Exit(1)
    if trace:
        write_trace(res, trace)
    row = res.to_dict()
    if economics:
        from superpod.train.economics import train_economics

        row |= train_economics(sysm, api.catalog(files), spec, res)
    if as_json:
        _emit_json(row)
    else:
        out.print(train_view(row))


def _check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError("not a known choice", field=field, value=value,
                        allowed=", ".join(allowed))


@app.command()
@_friendly
def calibrate(chip: Annotated[str, typer.Option(help="Catalog chip id the measurements are for.")],
              output: Annotated[Path, typer.Option("--output", "-o",
                                                   help="Calibration YAML to write.")],
              dtype: str = "bf16", device: Annotated[str | None, typer.Option(
                  help="torch device (default: cuda if present, else cpu).")] = None,
              repeats: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """Measure GEMM and copy throughput here (needs the `calibrate` extra: PyTorch) and
    write a calibration file for `--calibration`."""
    import yaml

    from superpod.compute.measure import measure, with_defaults

    api.catalog().chip(chip)  # an unknown chip id is bad input
    doc = with_defaults(measure(chip, dtype, device, repeats))
    output.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    out.print(f"wrote {output}: {len(doc['gemm'][0]['points'])} GEMM shapes, copy "
              f"{doc['memcpy'][0]['copy_bandwidth']}")


plan_app = typer.Typer(help="Search layouts for a workload.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


@plan_app.command(name="train")
@_friendly
def plan_train_cmd(
        system_arg: Annotated[str, typer.Option("--system", "-s", help="System id or YAML.")],
        model: Model,
        global_batch: Annotated[int, typer.Option(min=1, help="Sequences per step.")],
        seq_len: Annotated[int, typer.Option(min=1, help="Tokens per sequence.")],
        precision: str = "bf16", top: Annotated[int, typer.Option(min=1)] = 5,
        tp_comm_overlap: Annotated[bool, typer.Option(
            help="Layouts pipeline TP collectives with the GEMMs (Megatron-Core / TE).")
        ] = True,
        ranks_per_chip: Annotated[int, typer.Option(
            min=1, help="Ranks per package (dies; Ascend 910C: 2).")] = 1,
        chips: Chips = None, as_json: Json = False) -> None:
    """Enumerate every valid layout, return the best K and the infeasible ones by reason."""
    from superpod.report.train import plan_view
    from superpod.train.search import plan_train
    from superpod.workload.model import load_model

    _check_choice("--precision", precision, ("bf16", "fp8", "fp4"))
    sid, files = _system_arg(system_arg)
    res = plan_train(api.system(sid, chips, files), load_model(model), global_batch, seq_len,
                     precision, top, ranks_per_chip=ranks_per_chip,
                     tp_comm_overlap=tp_comm_overlap)
    if as_json:
        _emit_json(res.to_dict())
    else:
        out.print(plan_view(res.to_dict()))


register_reliability(app)
register_infer(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
