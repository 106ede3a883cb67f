"""Power, tokens per joule, capex and $ per million tokens of a system at one load.

Shared by the training and serving economics (``train.economics``, ``infer.economics``):
the activity ``load`` (``power.load.Load``) sets the power, ``tokens_per_s`` the output.
A chip the price book does not know still gets its power (``cost_error`` says why the
dollars are missing); a part without a price leaves capex and $/Mtok out, never at $0.
"""

from __future__ import annotations

from typing import Any

from superpod.cost.model import CostQuery, cost_report, default_prices
from superpod.errors import SpecError
from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System
from superpod.power.load import Load


def economics_at_load(system: System, cat: Catalog, tokens_per_s: float, load: Load
                      ) -> dict[str, Any]:
    """``it_power_w``, ``facility_power_w``, ``tokens_per_j``, ``usd_per_million_tokens``,
    ``capex_usd`` (W, W, tokens/J, $, $), and ``unpriced_parts`` / ``cost_error``."""
    try:
        cost = cost_report(system, default_prices(system, cat),
                           CostQuery(tokens_per_s=tokens_per_s, load=load.compute,
                                     activity=load))
    except SpecError as exc:  # a chip the price book does not know: power still shown
        from superpod.power.load import power_report

        rep = power_report(system, load, tokens_per_s)
        return {"it_power_w": rep.it_w, "facility_power_w": rep.facility_w,
                "tokens_per_j": tokens_per_s / rep.facility_w,
                "usd_per_million_tokens": None, "capex_usd": None, "cost_error": str(exc)}
    out: dict[str, Any] = {
        "it_power_w": cost["it_power_w"], "facility_power_w": cost["facility_power_w"],
        "tokens_per_j": cost["tokens_per_j"],
        "usd_per_million_tokens": cost["usd_per_million_tokens"],
        "capex_usd": cost["capex_usd"], "unpriced_parts": cost["unpriced_parts"]}
    if cost["unpriced_parts"]:  # a missing price is never counted as $0
        out |= {"usd_per_million_tokens": None, "capex_usd": None,
                "cost_error": f"no price for {', '.join(cost['unpriced_parts'])}"}
    return out
