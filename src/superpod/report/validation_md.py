"""``superpod validate --markdown``: the scoreboard as GitHub markdown tables (the README's
trust table is this output)."""

from __future__ import annotations

from typing import Any

from superpod.report.markdown import md_table
from superpod.report.validation import source_rows, summary_rows


def validation_markdown(result: dict[str, Any]) -> str:
    """The per-kind summary and, when cross-validated, the table by source."""
    lines = ["**by kind** (median |error| %; band coverage: share of measured values inside "
             "the 80 % band built without their own source)", "", *md_table(*summary_rows(result))]
    if "cross_validation" in result:
        lines += ["", "**by source** (worst held-out first)", "",
                  *md_table(*source_rows(result))]
    return "\n".join(lines) + "\n"
