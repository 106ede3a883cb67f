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


def _summary(result: dict[str, Any]) -> Table:
    cv = (result.get("cross_validation") or {}).get("by_kind", {})
    summary = Table(title="summary", title_justify="left")
    cols = ["kind", "cases", "ok", "unsup.", "error", "median |err| %", "max |err| %"]
    if cv:
        cols += ["LOSO median %", "band coverage", "band width %"]
    for col in cols:
        summary.add_column(col, justify="left" if col == "kind" else "right")
    for kind, s in result["summary"].items():
        med, mx = s["median_abs_error_pct"], s["max_abs_error_pct"]
        row = [kind, str(s["cases"]), str(s["ok"]), str(s["unsupported"]), str(s["error"]),
               "-" if med is None else f"{med:.1f}", "-" if mx is None else f"{mx:.1f}"]
        if cv:
            k = cv.get(kind, {})
            lo, cov, w = (k.get("loso_median_abs_error_pct"), k.get("band_coverage"),
                          k.get("median_band_width_pct"))
            row += ["-" if lo is None else f"{lo:.1f}", "-" if cov is None else f"{cov:.0%}",
                    "-" if w is None else f"{w:.0f}"]
        summary.add_row(*row)
    return summary


def _sources(result: dict[str, Any]) -> Table:
    t = Table(title="by source (leave-one-source-out)", title_justify="left")
    for col in ("source", "kinds", "cases", "median |err| %", "LOSO median %"):
        t.add_column(col, justify="left" if col in ("source", "kinds") else "right",
                     overflow="fold")
    cv = result["cross_validation"]
    for key, s in sorted(cv["by_source"].items(),
                         key=lambda kv: -(kv[1]["loso_median_abs_error_pct"] or 0.0)):
        med, lo = s["median_abs_error_pct"], s["loso_median_abs_error_pct"]
        t.add_row(str(key), ", ".join(s["kinds"]), str(s["cases"]),
                  "-" if med is None else f"{med:.1f}", "-" if lo is None else f"{lo:.1f}")
    return t


def validation_view(result: dict[str, Any], *, notes: bool = False) -> Group:
    """Cases, summary, (sources), unsupported reasons."""
    loso = "cross_validation" in result
    parts: list[RenderableType] = [_cases(result, notes, loso), _summary(result)]
    if loso:
        parts.append(_sources(result))
    reasons = sorted({c["reason"] for c in result["cases"] if c["status"] == "unsupported"})
    extra = Table(show_header=False, box=None)
    for r in reasons:
        extra.add_row(f"unsupported: {str(r)}")
    parts.append(extra)
    return Group(*parts)
