"""``superpod validate --markdown``: the scoreboard's tables, from a hand-made result."""

from __future__ import annotations

from typing import Any

from superpod.report.validation_md import validation_markdown


def _result(cross: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"cases": [], "summary": {
        "infer": {"cases": 3, "ok": 2, "unsupported": 1, "error": 0,
                  "median_abs_error_pct": 12.34, "max_abs_error_pct": 40.0},
        "train": {"cases": 2, "ok": 2, "unsupported": 0, "error": 0,
                  "median_abs_error_pct": None, "max_abs_error_pct": None}}}
    if cross:
        doc["cross_validation"] = {
            "by_kind": {"infer": {"loso_median_abs_error_pct": 20.06, "band_coverage": 0.875,
                                  "median_band_width_pct": 61.4},
                        "train": {"loso_median_abs_error_pct": None, "band_coverage": None,
                                  "median_band_width_pct": None}},
            "by_source": {
                "a.org/x": {"kinds": ["infer"], "cases": 1, "median_abs_error_pct": 3.0,
                            "loso_median_abs_error_pct": 5.0},
                "b.org/y|z": {"kinds": ["infer", "train"], "cases": 4,
                              "median_abs_error_pct": 9.0, "loso_median_abs_error_pct": 30.0}},
            "worst_sources": []}
    return doc


def test_summary_only_without_cross_validation() -> None:
    md = validation_markdown(_result(False))
    assert "| infer | 3 | 2 | 1 | 0 | 12.3 | 40.0 |" in md
    assert "| train | 2 | 2 | 0 | 0 | - | - |" in md  # no error yet: a dash, not 0
    assert "LOSO" not in md and "by source" not in md


def test_cross_validated_tables_and_worst_source_first() -> None:
    md = validation_markdown(_result(True))
    assert "| infer | 3 | 2 | 1 | 0 | 12.3 | 40.0 | 20.1 | 88% | 61 |" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and ".org/" in ln]
    assert rows == ["| b.org/y\\|z | infer, train | 4 | 9.0 | 30.0 |",  # '|' escaped
                    "| a.org/x | infer | 1 | 3.0 | 5.0 |"]
    # every table row has as many cells as its header
    for block in md.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        cells = {ln.replace("\\|", "").count("|") for ln in lines}
        assert len(cells) <= 1, block
