"""What a training layout costs beyond its step time: failures, watts and dollars.

Joins the training result to the reliability model (interruptions, Daly-optimal
checkpointing, ETTR for a checkpoint of the model's mixed-precision Adam state), the power
model (components at the utilisation the timeline predicts: compute from HFU, memory and
network from their busy shares) and the cost model (capex amortised + electricity), giving
goodput-adjusted tokens/s, kW, tokens per joule and $ per million tokens.
"""

from __future__ import annotations

from typing import Any

from superpod.cost.model import CostQuery, cost_report, default_prices
from superpod.errors import SpecError
from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System
from superpod.power.load import Load
from superpod.reliability import ReliabilityQuery, analyse, checkpoint_bytes
from superpod.train.step import TrainResult
from superpod.workload.model import ModelSpec


def _load(res: TrainResult) -> Load:
    b, step = res.breakdown_s, res.step_time_s
    comm = sum(v for k, v in b.items() if k.endswith("_comm"))
    return Load(compute=min(1.0, res.hfu), memory=min(1.0, 0.5 + 0.5 * res.hfu),
                network=min(1.0, comm / step if step else 0.0))


def train_economics(system: System, cat: Catalog, model: ModelSpec, res: TrainResult,
                    days: float = 30.0) -> dict[str, Any]:
    """Goodput, power and cost keys added to a ``train --json`` object."""
    rel = analyse(system, ReliabilityQuery(checkpoint_bytes=checkpoint_bytes(
        model.params_total), work_days=days, trials=0))
    ettr = rel["ettr"]
    goodput = res.tokens_per_s * ettr
    out: dict[str, Any] = {
        "goodput": {"ettr": ettr, "tokens_per_s": goodput,
                    "interruptions_per_day": rel["interruptions_per_day"],
                    "checkpoint_interval_s": rel["checkpoint_interval_s"]},
    }
    load = _load(res)
    try:
        cost = cost_report(system, default_prices(system, cat),
                           CostQuery(tokens_per_s=goodput, load=load.compute))
    except SpecError as exc:  # a chip the price book does not know
        out["cost_error"] = str(exc)
        return out
    out |= {"power_w": cost["it_power_w"], "facility_power_w": cost["facility_power_w"],
            "tokens_per_joule": cost["tokens_per_j"],
            "usd_per_million_tokens": cost["usd_per_million_tokens"],
            "capex_usd": cost["capex_usd"]}
    return out
