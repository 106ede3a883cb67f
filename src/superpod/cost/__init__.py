"""Cost: capex from parts, opex from facility energy, amortisation, USD per million tokens.

* ``prices`` - ``catalog/prices.yaml`` (every default price with its source and evidence);
* ``model``  - capex by group, opex, capital recovery, cost per token, the ``cost`` answer.
"""

from superpod.cost.model import (
    Capex,
    CostQuery,
    Prices,
    capex,
    capital_recovery_factor,
    cost_report,
    default_prices,
    usd_per_million_tokens,
    with_overrides,
)
from superpod.cost.prices import PriceBook, load_price_book

__all__ = ["Capex", "CostQuery", "PriceBook", "Prices", "capex", "capital_recovery_factor",
           "cost_report", "default_prices", "load_price_book", "usd_per_million_tokens",
           "with_overrides"]
