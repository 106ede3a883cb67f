"""The sweep results store: one DuckDB file, one row per point.

Table ``points``: the point's id (primary key: a point is stored once), its index in the
spec, status (``ok`` / ``infeasible`` / ``error``), reason and detail, each input as its own
column (named by its spec path, e.g. ``system.set.scale_out.nic_bandwidth``), the numeric
outputs (``point.METRICS``), the best layout as text, bands and evidence (JSON), the layout
counts of the search, the whole result row (JSON), timings and the superpod version. Table
``meta``: the spec text. Each row is inserted in its own transaction as its point finishes,
so a killed sweep loses no finished point; ``finished_ids`` lets a resumed one skip them.
DuckDB is an optional extra (``sweep``), imported only here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from superpod.errors import SpecError
from superpod.sweep.point import BETTER, METRICS

FIXED = (("id", "VARCHAR PRIMARY KEY"), ("idx", "INTEGER"), ("status", "VARCHAR"),
         ("reason", "VARCHAR"), ("detail", "VARCHAR"))
TAIL = (("layout", "VARCHAR"), ("global_batch", "BIGINT"), ("bands", "JSON"),
        ("evidence", "JSON"), ("layouts", "JSON"), ("elapsed_s", "DOUBLE"),
        ("worker", "VARCHAR"), ("superpod_version", "VARCHAR"), ("finished_at", "TIMESTAMP"),
        ("row", "JSON"))


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise SpecError("the results store needs DuckDB: pip install 'superpod[sweep]'",
                        field="--out") from None
    return duckdb


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Store:
    """An open store file (``with Store(path) as st: ...``)."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = str(path)
        if read_only and not Path(path).exists():
            raise SpecError("file not found", file=self.path)
        try:
            self.con = _duckdb().connect(self.path, read_only=read_only)
        except Exception as exc:  # duckdb raises its own IOException family
            raise SpecError(f"cannot open the results store: {exc}".splitlines()[0],
                            file=self.path) from None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def has_points(self) -> bool:
        got = self.con.execute("SELECT count(*) FROM information_schema.tables "
                               "WHERE table_name = 'points'").fetchone()
        return bool(got and got[0])

    def create(self, input_columns: dict[str, str], spec_text: str) -> None:
        """Create the tables (if new) with one column per input (name -> SQL type)."""
        cols = [*FIXED, *input_columns.items(), *((m, "DOUBLE") for m in METRICS), *TAIL]
        body = ", ".join(f"{_q(n)} {t}" for n, t in cols)
        self.con.execute(f"CREATE TABLE IF NOT EXISTS points ({body})")
        have = {r[0] for r in self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'points'"
        ).fetchall()}
        for n, t in input_columns.items():
            if n not in have:  # a resumed sweep whose spec grew an axis
                self.con.execute(f"ALTER TABLE points ADD COLUMN {_q(n)} {t}")
        self.con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, "
                         "value VARCHAR)")
        self.con.execute("INSERT OR REPLACE INTO meta VALUES ('spec', ?)", [spec_text])

    def finished_ids(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT id FROM points").fetchall()}

    def insert(self, idx: int, row: dict[str, Any], worker: str) -> bool:
        """Commit one point's row; False if the point was already stored."""
        inputs: dict[str, Any] = row["inputs"]
        names = [n for n, _ in FIXED] + list(inputs) + list(METRICS) + [n for n, _ in TAIL]
        vals: list[Any] = [row["id"], idx, row["status"], row.get("reason"), row.get("detail")]
        vals += [_cell(inputs[k]) for k in inputs]
        vals += [_num(row.get(m)) for m in METRICS]
        vals += [row.get("layout"), row.get("global_batch"), _json(row.get("bands")),
                 _json(row.get("evidence")), _json(row.get("layouts")), row.get("elapsed_s"),
                 worker, row.get("superpod_version"), None, _json(row.get("row"))]
        marks = ", ".join("now()" if n == "finished_at" else "?" for n in names)
        vals = [v for n, v in zip(names, vals, strict=True) if n != "finished_at"]
        cur = self.con.execute(
            f"INSERT OR IGNORE INTO points ({', '.join(map(_q, names))}) VALUES ({marks})",
            vals)
        got = cur.fetchone() if cur.description else None
        return bool(got[0]) if got else True

    def rows(self) -> list[dict[str, Any]]:
        cur = self.con.execute("SELECT * FROM points ORDER BY idx")
        names = [d[0] for d in cur.description]
        out = []
        for r in cur.fetchall():
            d = dict(zip(names, r, strict=True))
            for k in ("bands", "evidence", "layouts", "row"):
                if isinstance(d.get(k), str):
                    d[k] = json.loads(d[k])
            if d.get("finished_at") is not None:
                d["finished_at"] = str(d["finished_at"])
            out.append(d)
        return out

    def export(self, target: str) -> None:
        """Write every row to ``target`` (``.parquet`` or ``.csv``)."""
        fmt = "parquet" if target.endswith(".parquet") else "csv" if target.endswith(
            ".csv") else None
        if fmt is None:
            raise SpecError("unknown export format", field="--export", value=target,
                            allowed="a .parquet or .csv file")
        path = target.replace("'", "''")
        self.con.execute(f"COPY (SELECT * FROM points ORDER BY idx) TO '{path}' "
                         f"(FORMAT {fmt})")


def _cell(v: Any) -> Any:
    return v if isinstance(v, int | float | str) and not isinstance(v, bool) else json.dumps(v)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(float(v)) else None


def _json(v: Any) -> str | None:
    return None if v is None else json.dumps(v, default=str)


def input_columns(points: list[dict[str, Any]]) -> dict[str, str]:
    """A SQL type per input name: BIGINT where every value is an integer, DOUBLE where
    every one is a number, else VARCHAR."""
    names: dict[str, str] = {}
    for p in points:
        for k, v in p.items():
            num = isinstance(v, int | float) and not isinstance(v, bool)
            t = ("BIGINT" if isinstance(v, int) else "DOUBLE") if num else "VARCHAR"
            was = names.get(k, t)
            names[k] = t if was == t else "DOUBLE" if {was, t} == {"BIGINT", "DOUBLE"} \
                else "VARCHAR"
    return names


def pareto(rows: list[dict[str, Any]], metrics: list[str]) -> list[dict[str, Any]]:
    """The rows no other row beats on every metric (each metric's better direction from
    ``point.BETTER``; rows without all metrics are left out)."""
    for m in metrics:
        if m not in BETTER:
            raise SpecError("not a metric of the store", field="--pareto", value=m,
                            allowed=", ".join(BETTER))
    sign = [1.0 if BETTER[m] == "min" else -1.0 for m in metrics]
    pts = [(r, [s * float(r[m]) for m, s in zip(metrics, sign, strict=True)])
           for r in rows if r.get("status") == "ok" and all(r.get(m) is not None
                                                             for m in metrics)]

    def beaten(v: list[float]) -> bool:
        return any(all(a <= b for a, b in zip(w, v, strict=True)) and w != v for _, w in pts)

    return [r for r, v in pts if not beaten(v)]
