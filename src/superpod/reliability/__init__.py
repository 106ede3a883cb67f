"""Reliability: failure rates by cause, checkpointing, and goodput (ETTR).

* ``rates``      - ``catalog/reliability.yaml`` as SI rates per component (with provenance);
* ``failures``   - events by cause on a system, what interrupts a job and what only degrades;
* ``checkpoint`` - checkpoint size, write / snapshot / restore times, Young and Daly intervals;
* ``goodput``    - analytic ETTR (Daly's model) and a vectorised, seeded Monte Carlo;
* ``analysis``   - the three joined into the ``reliability --json`` answer.
"""

from superpod.reliability.analysis import ReliabilityQuery, analyse, goodput_model
from superpod.reliability.checkpoint import (
    Checkpoint,
    Storage,
    checkpoint_bytes,
    daly_interval_s,
    plan_checkpoint,
    young_interval_s,
)
from superpod.reliability.failures import (
    FailureModel,
    FailureOptions,
    SparePolicy,
    failure_model,
    mtbf_by_scale,
)
from superpod.reliability.goodput import GoodputModel, Recovery, ettr, monte_carlo
from superpod.reliability.rates import RateBook, load_rate_book

__all__ = [
    "Checkpoint", "FailureModel", "FailureOptions", "GoodputModel", "RateBook", "Recovery",
    "ReliabilityQuery", "SparePolicy", "Storage", "analyse", "checkpoint_bytes",
    "daly_interval_s", "ettr", "failure_model", "goodput_model", "load_rate_book",
    "monte_carlo", "mtbf_by_scale", "plan_checkpoint", "young_interval_s",
]
