"""``superpod sweep SPEC.yaml`` (run a design-space sweep into a DuckDB store),
``superpod sweep show FILE`` (read it back) and ``superpod sweep --example``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from superpod.cli.app import app
from superpod.cli.choices import SWEEP_ENGINES, choice
from superpod.cli.common import Json, err, out
from superpod.cli.common import emit_json as _emit_json
from superpod.cli.common import friendly as _friendly
from superpod.errors import SpecError

DEFAULT_OUT = "results.duckdb"
SHOWN = ("tokens_per_s_per_chip", "mfu", "step_time_s", "usd_per_million_tokens")


@app.command(no_args_is_help=True)
@_friendly
def sweep(args: Annotated[list[str] | None, typer.Argument(
              metavar="SPEC.yaml | show FILE",
              help="A sweep spec to run, or `show FILE` to read a results store.")] = None,
          example: Annotated[bool, typer.Option(
              "--example", help="Print a starter spec (32 points) and exit.")] = False,
          out_file: Annotated[str, typer.Option(
              "--out", "-o", help="The results store (DuckDB file).")] = DEFAULT_OUT,
          workers: Annotated[int | None, typer.Option(
              min=1, help="Worker processes (default: the machine's cores).")] = None,
          engine: Annotated[str, choice(
              SWEEP_ENGINES, "local: a process pool; ray: Ray tasks.")] = "local",
          ray_address: Annotated[str | None, typer.Option(
              help="A running Ray cluster (default: start a local one).")] = None,
          resume: Annotated[bool, typer.Option(
              help="Continue a store: skip the points it holds.")] = False,
          verbose: Annotated[bool, typer.Option(
              "--verbose", "-v", help="One line on stderr per finished point.")] = False,
          pareto: Annotated[str | None, typer.Option(
              help="Show only the Pareto front over these metrics, e.g. "
                   "tokens_per_s_per_chip,usd_per_million_tokens (after a run, of its "
                   "store).")] = None,
          export: Annotated[str | None, typer.Option(
              help="Write every row to a .parquet or .csv file.")] = None,
          as_json: Json = False) -> None:
    """Sweep systems x workloads: every point costed by plan train's functions, each row
    committed to a DuckDB store as it finishes (resumable).

    Run: superpod sweep SPEC.yaml [--out results.duckdb] [--workers N] [--engine local|ray]
    [--resume]. Read: superpod sweep show FILE [--json] [--pareto M,M] [--export F]."""
    _check_options(out_file, engine, ray_address, pareto, export,
                   show=bool(args and args[0] == "show"))
    if example:
        from superpod.sweep import EXAMPLE

        given = [n for n, v in (("SPEC.yaml", args), ("--out", out_file != DEFAULT_OUT),
                                ("--workers", workers), ("--engine", engine != "local"),
                                ("--resume", resume), ("--pareto", pareto),
                                ("--export", export), ("--ray-address", ray_address)) if v]
        if given:
            raise SpecError("--example prints the starter spec and takes nothing else",
                            field=given[0])

        typer.echo(EXAMPLE, nl=False)
        return
    args = args or []
    if args and args[0] == "show":
        if len(args) != 2:
            raise SpecError("give one results file", field="show", allowed="show FILE")
        _show(args[1], pareto, export, as_json)
        return
    if len(args) != 1:
        raise SpecError("give one sweep spec file", field="SPEC.yaml",
                        allowed="SPEC.yaml, show FILE, or --example")
    _run(args[0], out_file, workers, engine, ray_address, resume, verbose, as_json,
         shown_after=bool(pareto or export))
    if pareto or export:  # then the store, as `sweep show` reads it
        _show(out_file, pareto, export, as_json)


def _check_options(out_file: str, engine: str, ray_address: str | None, pareto: str | None,
                   export: str | None, show: bool) -> None:
    """Every option checked before any work (and before ``--example``)."""
    from superpod.boundary.files import check_output
    from superpod.cli.common import check_choice
    from superpod.sweep.point import BETTER

    check_choice("--engine", engine, SWEEP_ENGINES)
    if ray_address is not None and (engine != "ray" or not ray_address.strip()
                                    or "\x00" in ray_address or len(ray_address) > 1000):
        raise SpecError("needs --engine ray and an address (host:port or ray://...)",
                        field="--ray-address", value=ray_address[:80])
    if not show:
        check_output(out_file, "--out")
    if export is not None:
        check_output(export, "--export")
        if not export.endswith((".parquet", ".csv")):
            raise SpecError("unknown export format", field="--export", value=export[:80],
                            allowed="a .parquet or .csv file")
    if pareto is not None:
        names = [m.strip() for m in pareto.split(",")]
        bad = [m for m in names if m not in BETTER]
        if bad or not names:
            raise SpecError("not a metric of the store", field="--pareto",
                            value=(bad or [pareto])[0][:80], allowed=", ".join(BETTER))


def _run(spec_file: str, out_file: str, workers: int | None, engine: str,
         ray_address: str | None, resume: bool, verbose: bool, as_json: bool,
         shown_after: bool = False) -> None:
    """Run a spec into its store; print the run's summary (with ``--json``, unless the
    store's rows are printed after it: then they are the one JSON document)."""
    from superpod.progress import Bar, wanted
    from superpod.sweep.run import run_sweep, stderr_log
    from superpod.sweep.spec import load_spec
    from superpod.sweep.validate import check_spec

    spec = load_spec(spec_file)
    check_spec(spec)
    with Bar(f"sweep {spec.name}", len(spec.points()), wanted(as_json)) as bar:
        run = run_sweep(spec, out_file, workers=workers, engine=engine, resume=resume,
                        ray_address=ray_address, bar=bar,
                        log=stderr_log if verbose else None)
    doc = run.to_dict() | {"out": out_file}
    if as_json:
        if not shown_after:
            _emit_json(doc)
        return
    st = ", ".join(f"{v} {k}" for k, v in sorted(run.status.items())) or "nothing new"
    out.print(f"{run.total} points: {run.skipped} already stored, {run.evaluated} evaluated "
              f"({st}) in {run.wall_s:.1f} s -> {out_file}", highlight=False)


def _show(file: str, pareto: str | None, export: str | None, as_json: bool) -> None:
    from superpod.sweep.store import Store
    from superpod.sweep.store import pareto as front

    with Store(file, read_only=True) as st:
        if not st.has_points():
            raise SpecError("not a sweep results store (no points table)", file=file)
        rows = st.rows()
        if export:
            st.export(export)
            err.print(f"wrote {len(rows)} rows to {export}", highlight=False)
    if pareto:
        rows = front(rows, [m.strip() for m in pareto.split(",") if m.strip()])
    if as_json:
        _emit_json({"rows": rows})
        return
    out.print(_table(rows, file))


def _table(rows: list[dict[str, Any]], file: str) -> Any:
    from rich.table import Table

    inputs = [k for k in (rows[0] if rows else {}) if k.startswith(("system.", "workload."))]
    varying = [k for k in inputs if len({str(r[k]) for r in rows}) > 1] or inputs[:3]
    t = Table(title=f"{file}: {len(rows)} points", title_justify="left")
    for c in ("#", *(k.split(".")[-1] for k in varying), "status", *SHOWN, "layout"):
        t.add_column(c, justify="right" if c in SHOWN or c == "#" else "left")
    for r in rows:
        vals = [_fmt(r.get(m)) for m in SHOWN]
        t.add_row(str(r["idx"]), *(str(r[k]) for k in varying),
                  r["status"] if r["status"] == "ok" else f"{r['status']}: {r['reason']}",
                  *vals, r.get("layout") or "-")
    return t


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    x = float(v)
    return f"{x:.3g}" if abs(x) < 10 else f"{x:,.0f}"
