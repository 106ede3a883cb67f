"""``superpod versus --markdown``: the comparison as GitHub markdown tables (the README's
seed comparisons are this output)."""

from __future__ import annotations

from typing import Any

from superpod.report.markdown import md_row
from superpod.report.versus import SIDES, fmt, layout_text, shown, winner_text

RATIO_LABELS = (("npus", "NPUs"), ("bf16", "dense BF16"), ("fp8", "dense FP8"),
                ("fp4", "dense FP4"),
                ("memory", "memory (each side's basis)"), ("memory_hbm", "HBM"),
                ("memory_hbm_plus_host", "HBM + host DRAM"),
                ("interconnect", "scale-up bandwidth"))


def _md_cell(c: dict[str, Any], unit: str) -> str:
    if c["value"] is None:
        miss = c.get("missing") or ""
        return "n/a (no price)" if "no price" in miss else "n/a"
    b = c["band"]
    return fmt(c["value"], unit) + (f" ({fmt(b[0], unit)}-{fmt(b[1], unit)})" if b else "")


def versus_markdown(doc: dict[str, Any]) -> str:
    keys = [s["key"] for s in doc["systems"]]
    lines: list[str] = []
    for kind, title in SIDES:
        if kind not in doc:
            continue
        lines += [f"**{title}, {doc['model']}** (80 % bands)", "",
                  md_row(["", *keys, "winner"]), md_row(["---"] * (len(keys) + 2))]
        for r in doc[kind]["rows"]:
            lines.append(md_row([r["label"], *[_md_cell(shown(r, k), r["unit"])
                                             for k in keys], winner_text(r["winner"])]))
        lines.append("")
        for s in doc["systems"]:
            lines.append(f"- {s['key']}: {layout_text(s[kind], kind)}")
        lines.append("")
    for rat in doc.get("ratios", []):
        pub = rat["published"] or {}
        if not pub:
            continue
        lines += [f"**{rat['a']} / {rat['b']}**", "", md_row(["ratio", "superpod", "published"]),
                  md_row(["---"] * 3)]
        for k, label in RATIO_LABELS:
            v = rat["model"].get(k)
            lines.append(md_row([label, f"{v:.1f}x" if v else "-",
                               f"{pub[k]:g}x" if k in pub else ""]))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
