"""The HTML reports of ``versus``, ``plan train``, ``plan infer``, ``serve-sim`` and
``validate``: each a ``report.html.Report`` built from the command's JSON object.

Figures: bars per metric with the 80 % band as error bars; stacked time breakdowns (the
parts add up to the total); serving: tokens/s per chip against TPOT across layouts and
batches with the Pareto front; training: tokens/s against chips; validate: predicted
against measured by kind with the bands. Text shown in figures is escaped (``esc``).
"""

from __future__ import annotations

from typing import Any

from superpod.report.html import Figure, Lines, Report, Table, esc
from superpod.report.versus import fmt, notes, shown, winner_text


def _band_error(values: list[float | None], bands: list[list[float] | None]
                ) -> dict[str, Any]:
    plus = [(b[1] - v) if b and v is not None else 0.0 for v, b in zip(values, bands,
                                                                         strict=True)]
    minus = [(v - b[0]) if b and v is not None else 0.0 for v, b in zip(values, bands,
                                                                          strict=True)]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus}


def bars(name: str, title: str, labels: list[str], values: list[float | None],
         bands: list[list[float] | None], unit: str = "") -> Figure:
    """One bar per label with its band."""
    trace = {"type": "bar", "x": [esc(x) for x in labels], "y": values,
             "error_y": _band_error(values, bands)}
    return Figure(name, title, {"data": [trace], "layout": {"yaxis": {"title": {
        "text": esc(unit)}}, "showlegend": False}})


def stacked(name: str, title: str, parts: dict[str, dict[str, float]], unit: str = "s"
            ) -> Figure:
    """Bars per label stacked by part (``parts``: label -> part -> value)."""
    labels = list(parts)
    keys = sorted({k for p in parts.values() for k, v in p.items() if v > 0})
    data = [{"type": "bar", "name": esc(k), "x": [esc(x) for x in labels],
             "y": [parts[x].get(k, 0.0) for x in labels]} for k in keys]
    return Figure(name, title, {"data": data, "layout": {"barmode": "stack", "yaxis": {
        "title": {"text": esc(unit)}}}})


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (TPOT, tokens/s per chip) points no other point beats on both (lower TPOT and
    higher throughput), by increasing TPOT."""
    front: list[tuple[float, float]] = []
    for t, v in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or v > front[-1][1]:
            front.append((t, v))
    return front


def scatter(name: str, title: str, series: dict[str, list[tuple[float, float]]],
            x_title: str, y_title: str, front: bool = False, lines: bool = False) -> Figure:
    data: list[dict[str, Any]] = []
    for label, pts in series.items():
        data.append({"type": "scatter", "mode": "lines+markers" if lines else "markers",
                     "name": esc(label),
                     "x": [p[0] for p in pts], "y": [p[1] for p in pts]})
        if front and pts:
            f = pareto(pts)
            data.append({"type": "scatter", "mode": "lines", "name": esc(f"{label} front"),
                         "x": [p[0] for p in f], "y": [p[1] for p in f]})
    return Figure(name, title, {"data": data, "layout": {
        "xaxis": {"title": {"text": esc(x_title)}},
        "yaxis": {"title": {"text": esc(y_title)}}}})


# ----------------------------------------------------------------------------- versus

def versus_report(doc: dict[str, Any]) -> Report:
    keys = [s["key"] for s in doc["systems"]]
    rep = Report(f"superpod versus: {', '.join(keys)} on {doc['model']}")
    for kind, title in (("train", "training"), ("serve", "serving")):
        if kind not in doc:
            continue
        rows = doc[kind]["rows"]
        rep.add(Table(f"{title} (80 % bands)", ["figure", *keys, "winner"], [
            [r["label"], *[_cell(shown(r, k), r["unit"]) for k in keys],
             winner_text(r["winner"])] for r in rows]))
        for r in rows:
            if not r["better"]:
                continue
            rep.add(bars(f"{kind}-{r['metric']}", f"{title}: {r['label']}", keys,
                         [shown(r, k)["value"] for k in keys],
                         [shown(r, k)["band"] for k in keys], r["unit"]))
        unit = "s per step (with failures)" if kind == "train" else "s per decode step"
        rep.add(stacked(f"{kind}-breakdown", f"{title}: where the time goes",
                        doc[kind]["breakdown_s"], unit))
    if "train" in doc:
        pts = {s["key"]: [(p["chips"], p["tokens_per_s"]) for p in s["train"].get(
                   "scaling", [{"chips": s["chips"], "tokens_per_s": s["train"]["tokens_per_s"]}])]
               for s in doc["systems"] if "infeasible" not in s["train"]}
        rep.add(scatter("train-scaling", "training: tokens/s against chips (best layout at "
                                         "each size, same tokens per step)", pts, "chips",
                        "tokens/s (before failures)", lines=True))
    if "serve" in doc:
        pts = {s["key"]: [(p["tpot_s"] * 1e3, p["tokens_per_s_per_chip"])
                          for p in s["serve"].get("points", []) if p.get("tpot_s")]
               for s in doc["systems"] if "infeasible" not in s["serve"]}
        rep.add(scatter("serve-pareto", "serving: tokens/s per chip against TPOT "
                                        "(layouts and batches; Pareto front)", pts,
                        "TPOT (ms)", "tokens/s per chip", front=True))
    rep.add(Lines("what each figure rests on", notes(doc)))
    return rep


def _cell(c: dict[str, Any], unit: str) -> str:
    if c["value"] is None:
        return f"n/a ({c['missing']})" if c.get("missing") else "n/a"
    b = c["band"]
    return fmt(c["value"], unit) + (f" ({fmt(b[0], unit)}-{fmt(b[1], unit)})" if b else "")


# ----------------------------------------------------------------------------- plans

def _band(row: dict[str, Any], metric: str) -> list[float] | None:
    b = (row.get("bands") or {}).get(metric)
    return [b["low"], b["high"]] if b else None


def _sources(rows: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for r in rows[:1]:
        for k, v in (r.get("evidence") or {}).items():
            out.append(f"{k}: {v.get('basis')} ({v.get('source')})")
        out.extend(f"extrapolates: {w}" for w in r.get("extrapolates") or [])
        if r.get("cost_error"):
            out.append(f"not priced: {r['cost_error']} ($ figures left out, power shown)")
    return out or ["no feasible candidate"]


def _econ(r: dict[str, Any]) -> list[str]:
    usd = r.get("usd_per_million_tokens")
    return [fmt(r.get("it_power_w"), "W"), fmt(r.get("tokens_per_j"), ""),
            fmt(usd, "USD") if usd is not None else "n/a (no price)"]


def plan_train_report(doc: dict[str, Any], title: str) -> Report:
    cands = doc["candidates"]
    labels = [f"#{i + 1} tp{c['plan']['tp']} pp{c['plan']['pp']} dp{c['plan']['dp']} "
              f"ep{c['plan']['ep']}" for i, c in enumerate(cands)]
    rep = Report(title).add(Table("best layouts", [
        "layout", "step (s)", "tokens/s per chip", "MFU", "IT power", "tokens/J", "$/Mtok"],
        [[lab, f"{c['step_time_s']:.3g}", fmt(c["tokens_per_s_per_chip"], ""),
          f"{c['mfu']:.1%}", *_econ(c)] for lab, c in zip(labels, cands, strict=True)]))
    rep.add(bars("train-tokens-per-chip", "tokens/s per chip (80 % band)", labels,
                 [c["tokens_per_s_per_chip"] for c in cands],
                 [_band(c, "tokens_per_s_per_chip") for c in cands], "tokens/s per chip"))
    rep.add(stacked("train-breakdown", "where the step goes",
                    {lab: c["breakdown_s"] for lab, c in zip(labels, cands, strict=True)}))
    rep.add(scatter("train-scaling", "tokens/s against chips",
                    {lab: [(float(c["chips"]), c["tokens_per_s"])]
                     for lab, c in zip(labels, cands, strict=True)}, "chips", "tokens/s"))
    if doc.get("suggestion"):
        s = doc["suggestion"]
        rep.add(Lines("no feasible layout", [s["reason"], f"nearest that works: "
                                                         f"{s['global_batch']}"]))
    rep.add(Lines("infeasible layouts by reason",
                  [f"{k}: {v}" for k, v in doc.get("infeasible", {}).items()] or ["none"]))
    return rep.add(Lines("sources and assumptions", _sources(cands)))


def plan_infer_report(doc: dict[str, Any], title: str,
                      points: list[dict[str, Any]] | None = None) -> Report:
    cands = doc["candidates"]
    labels = [f"#{i + 1} {c['phase']} " + " ".join(
        f"{k}{v}" for k, v in (c.get("layout") or {}).items() if k in ("tp", "dp", "ep", "pp"))
        for i, c in enumerate(cands)]
    rep = Report(title).add(Table("best serving layouts", [
        "layout", "batch", "tokens/s per chip", "TPOT (ms)", "TTFT (ms)", "IT power",
        "tokens/J", "$/Mtok"],
        [[lab, str(c["batch"]), fmt(c["tokens_per_s_per_chip"], ""),
          f"{(c.get('tpot_s') or 0) * 1e3:.1f}", f"{(c.get('ttft_s') or 0) * 1e3:.0f}",
          *_econ(c)] for lab, c in zip(labels, cands, strict=True)]))
    rep.add(bars("serve-tokens-per-chip", "tokens/s per chip (80 % band)", labels,
                 [c["tokens_per_s_per_chip"] for c in cands],
                 [_band(c, "tokens_per_s_per_chip") for c in cands], "tokens/s per chip"))
    rep.add(stacked("serve-breakdown", "where a decode step goes",
                    {lab: c["breakdown_s"] for lab, c in zip(labels, cands, strict=True)}))
    pts = [(c["tpot_s"] * 1e3, c["tokens_per_s_per_chip"]) for c in cands if c.get("tpot_s")]
    ladder = [(p["tpot_s"] * 1e3, p["tokens_per_s_per_chip"]) for p in points or []]
    rep.add(scatter("serve-pareto", "tokens/s per chip against TPOT across layouts and "
                                    "batches (Pareto front)",
                    {"best batch per layout": pts, "decode batches": ladder},
                    "TPOT (ms)", "tokens/s per chip", front=True))
    if doc.get("suggestion"):
        s = doc["suggestion"]
        near = (f"nearest that works: {s['option']} {s['value_s'] * 1e3:g}" if s["value_s"]
                else "no SLO up to 64x this one works")
        rep.add(Lines("no layout meets the SLOs", [s["reason"], near]))
    return rep.add(Lines("sources and assumptions", _sources(cands)))


def serve_sim_report(doc: dict[str, Any], title: str) -> Report:
    rows = [[q, *[f"{doc[k][q] * 1e3:.1f}" for k in ("ttft_s", "tpot_s", "e2e_s")]]
            for q in ("p50", "p90", "p99")]
    rep = Report(title).add(Table("latency percentiles (ms)", ["quantile", "TTFT", "TPOT",
                                                                "end to end"], rows))
    rep.add(Table("throughput", ["figure", "value"], [
        ["output tokens/s", fmt(doc["output_tokens_per_s"], "")],
        ["output tokens/s per chip", fmt(doc["output_tokens_per_s_per_chip"], "")],
        ["requests finished", f"{doc['finished']} of {doc['requests']}"]]))
    rep.add(bars("sim-latency", "latency by quantile (ms)", ["TTFT p50", "TTFT p99",
                                                            "TPOT p50", "TPOT p99"],
                 [doc["ttft_s"]["p50"] * 1e3, doc["ttft_s"]["p99"] * 1e3,
                  doc["tpot_s"]["p50"] * 1e3, doc["tpot_s"]["p99"] * 1e3],
                 [None] * 4, "ms"))
    rep.add(bars("sim-throughput", "output tokens/s per chip (80 % band)", ["simulated"],
                 [doc["output_tokens_per_s_per_chip"]],
                 [_band(doc, "output_tokens_per_s_per_chip")], "tokens/s per chip"))
    return rep.add(Lines("sources and assumptions", _sources([doc])))


MAX_CASE_ROWS = 400  #: the cases table keeps the worst ones (the report stays < 5 MB)
MAX_POINTS_PER_KIND = 1500


def validate_report(doc: dict[str, Any], title: str = "superpod validate") -> Report:
    ok = [c for c in doc["cases"] if c.get("status") == "ok"]
    worst = sorted(ok, key=lambda c: -abs(c["error_pct"]))[:MAX_CASE_ROWS]
    rep = Report(title).add(Table(
        "cases" + (f" (the {MAX_CASE_ROWS} largest errors of {len(ok)}; all in --json)"
                   if len(ok) > MAX_CASE_ROWS else ""),
        ["case", "kind", "metric", "measured", "predicted", "error %"],
        [[c["id"], c["kind"], c["metric"], f"{c['measured']:.4g}", f"{c['predicted']:.4g}",
          f"{c['error_pct']:+.1f}"] for c in worst]))
    for kind in sorted({c["kind"] for c in ok}):
        cs = [c for c in ok if c["kind"] == kind][:MAX_POINTS_PER_KIND]
        trace = {"type": "scatter", "mode": "markers", "name": esc(kind),
                 "x": [c["measured"] for c in cs], "y": [c["predicted"] for c in cs],
                 "text": [esc(c["id"]) for c in cs]}
        # the band is where the measured value is expected for this prediction: a
        # horizontal segment at the predicted value, from the band's low to its high
        bx: list[float | None] = []
        by: list[float | None] = []
        for c in cs:
            if c.get("band"):
                bx += [c["band"]["low"], c["band"]["high"], None]
                by += [c["predicted"], c["predicted"], None]
        band = {"type": "scatter", "mode": "lines", "name": "80 % band (measured)",
                "x": bx, "y": by, "line": {"width": 1}, "opacity": 0.5}
        lo = min(min(c["measured"], c["predicted"]) for c in cs)
        hi = max(max(c["measured"], c["predicted"]) for c in cs)
        line = {"type": "scatter", "mode": "lines", "name": "predicted = measured",
                "x": [lo, hi], "y": [lo, hi]}
        rep.add(Figure(f"validate-{kind}", f"{kind}: predicted against measured (band)",
                       {"data": [band, trace, line], "layout": {
                           "xaxis": {"title": {"text": "measured"}, "type": "log"},
                           "yaxis": {"title": {"text": "predicted"}, "type": "log"}}}))
    summary = doc.get("summary")
    lines = [f"{k}: {v}" for k, v in summary.items()] if isinstance(summary, dict) else []
    return rep.add(Lines("summary", lines or ["-"]))
