"""Text view of a ``validate`` result: the evaluated cases, the summary per kind and, with
``--cross-validate``, the leave-one-source-out errors by kind and by source."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def _band(c: dict[str, Any], key: str) -> str:
    b = c.get(key)
    return "" if not b else f"{b['low']:,.4g}-{b['high']:,.4g}"


def _cases(result: dict[str, Any], notes: bool, loso: bool) -> Table:
    cases = Table(title="evaluated cases", title_justify="left")
    cols = ["id", "metric", "measured", "predicted", "error %"]
    cols += ["LOSO error %", "80 % band (LOSO)"] if loso else ["80 % band"]
    cols += ["note"] if notes else []
    for col in cols:
        cases.add_column(col, justify="left" if col in ("id", "metric", "note") else "right",
                         no_wrap=col == "id")
    for c in result["cases"]:
        if c["status"] == "ok":
            row = [str(c["id"]), c["metric"], f"{c['measured']:,.4g}",
                   f"{c['predicted']:,.4g}", f"{c['error_pct']:+.1f}"]
            if loso:
                row += [f"{c['loso_error_pct']:+.1f}" if "loso_error_pct" in c else "-",
                        _band(c, "loso_band")]
            else:
                row += [_band(c, "band")]
            cases.add_row(*row, *([str(c.get("notes", ""))] if notes else []))
        elif c["status"] == "error":
            cases.add_row(str(c["id"]), c.get("metric", ""), "", "", "",
                          *([""] * (len(cols) - 6)),
                          Text("error", style="red") + f": {c['reason']}")
    return cases


def _pct(v: float | None, fmt: str = ".1f") -> str:
    return "-" if v is None else format(v, fmt)


def summary_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the per-kind summary (with LOSO columns when cross-validated)."""
    cv = (result.get("cross_validation") or {}).get("by_kind", {})
    cols = ["kind", "cases", "ok", "unsup.", "error", "median |err| %", "max |err| %"]
    if cv:
        cols += ["LOSO median %", "band coverage", "band width %"]
    rows = []
    for kind, s in result["summary"].items():
        row = [kind, str(s["cases"]), str(s["ok"]), str(s["unsupported"]), str(s["error"]),
               _pct(s["median_abs_error_pct"]), _pct(s["max_abs_error_pct"])]
        if cv:
            k = cv.get(kind, {})
            row += [_pct(k.get("loso_median_abs_error_pct")), _pct(k.get("band_coverage"), ".0%"),
                    _pct(k.get("median_band_width_pct"), ".0f")]
        rows.append(row)
    return cols, rows


def source_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Columns and rows by source, the worst leave-one-source-out error first."""
    cols = ["source", "kinds", "cases", "median |err| %", "LOSO median %"]
    by = result["cross_validation"]["by_source"]
    rows = [[str(key), ", ".join(s["kinds"]), str(s["cases"]), _pct(s["median_abs_error_pct"]),
             _pct(s["loso_median_abs_error_pct"])]
            for key, s in sorted(by.items(),
                                 key=lambda kv: -(kv[1]["loso_median_abs_error_pct"] or 0.0))]
    return cols, rows


def _table(title: str, cols: list[str], rows: list[list[str]], left: tuple[str, ...]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in cols:
        t.add_column(col, justify="left" if col in left else "right", overflow="fold")
    for r in rows:
        t.add_row(*r)
    return t


def validation_view(result: dict[str, Any], *, notes: bool = False) -> Group:
    """Cases, summary, (sources), unsupported reasons."""
    loso = "cross_validation" in result
    parts: list[RenderableType] = [_cases(result, notes, loso),
                                   _table("summary", *summary_rows(result), left=("kind",))]
    if loso:
        parts.append(_table("by source (leave-one-source-out)", *source_rows(result),
                            left=("source", "kinds")))
    reasons = sorted({c["reason"] for c in result["cases"] if c["status"] == "unsupported"})
    extra = Table(show_header=False, box=None)
    for r in reasons:
        extra.add_row(f"unsupported: {str(r)}")
    parts.append(extra)
    return Group(*parts)
