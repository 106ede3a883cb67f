"""One reliability answer for one system: failures, checkpointing and goodput together.

``analyse(system, query)`` joins the three models: the failure model gives the job MTBF M
and the share of interruptions a spare absorbs (``failures``); the checkpoint model gives
delta (blocking time), the restore time and the interval (``checkpoint``); the goodput model
gives ETTR analytically (Daly) and by Monte Carlo (``goodput``). The recovery after an
interruption is

    R_restart = detection + restart + restore (+ async lag)
    R_swap    = detection + min(swap, restart) + restore (+ async lag)

where the async lag is the write time of the checkpoint in flight: a failure during it
falls back one more interval, which costs about one write time of work on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from superpod.errors import SpecError
from superpod.hardware.system import System
from superpod.reliability.checkpoint import (
    Checkpoint,
    Storage,
    daly_interval_s,
    optimal_interval_s,
    plan_checkpoint,
    young_interval_s,
)
from superpod.reliability.failures import (
    FailureModel,
    FailureOptions,
    cross_checks,
    failure_model,
)
from superpod.reliability.goodput import (
    GoodputModel,
    Recovery,
    ettr,
    ettr_first_order,
    expected_completion_s,
    monte_carlo,
)
from superpod.reliability.rates import S_PER_DAY, RateBook, load_rate_book


@dataclass(frozen=True)
class ReliabilityQuery:
    """What to ask about a job on a system. ``None`` times take the rate book's defaults."""

    checkpoint_bytes: float
    work_days: float = 30.0
    asynchronous: bool = False
    storage: Storage | None = None
    options: FailureOptions = field(default_factory=FailureOptions)
    interval_s: float | None = None  # None: Daly's optimum
    detection_s: float | None = None
    restart_s: float | None = None
    trials: int = 10_000  # 0: no Monte Carlo
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.work_days > 0 and math.isfinite(self.work_days)):
            raise SpecError("must be a positive number of days", field="--days",
                            value=self.work_days)
        if self.trials < 0 or self.trials == 1:
            raise SpecError("0 (no Monte Carlo) or at least 2", field="--trials",
                            value=self.trials)


def recoveries(model: FailureModel, ckpt: Checkpoint, book: RateBook,
               q: ReliabilityQuery) -> tuple[Recovery, ...]:
    """The restart and swap recovery kinds with their shares of interruptions."""
    rec = book.recovery
    detect = rec["detection"] if q.detection_s is None else q.detection_s
    restart = rec["restart"] if q.restart_s is None else q.restart_s
    sp = q.options.spares
    swap = rec["swap"] if sp is None or sp.swap_s is None else sp.swap_s
    tail = ckpt.restore_s + ckpt.durable_lag_s
    share = model.swap_fraction
    out = [Recovery(1.0 - share, detect + restart + tail)]
    if share > 0:
        out.append(Recovery(share, detect + min(swap, restart) + tail))
    return tuple(out)


def goodput_model(system: System, q: ReliabilityQuery, book: RateBook | None = None
                  ) -> tuple[FailureModel, Checkpoint, GoodputModel]:
    """The three models for a job on ``system``."""
    book = book or load_rate_book()
    fm = failure_model(system, book, q.options)
    c = system.counts
    ckpt = plan_checkpoint(q.checkpoint_bytes, c.chips, c.nodes,
                           q.storage or Storage.defaults(book), q.asynchronous)
    tau = q.interval_s if q.interval_s is not None else optimal_interval_s(ckpt, fm.mtbf_s)
    gm = GoodputModel(work_s=q.work_days * S_PER_DAY, interval_s=tau,
                      overhead_s=ckpt.blocking_s, mtbf_s=fm.mtbf_s,
                      recoveries=recoveries(fm, ckpt, book, q))
    return fm, ckpt, gm


def analyse(system: System, q: ReliabilityQuery, book: RateBook | None = None,
            progress: bool = False) -> dict[str, Any]:
    """The ``reliability --json`` object (SI units: seconds, events per second)."""
    book = book or load_rate_book()
    fm, ckpt, gm = goodput_model(system, q, book)
    completion = expected_completion_s(gm)
    restart = gm.recoveries[0].recovery_s
    mc = monte_carlo(gm, q.trials, q.seed, progress) if q.trials else None
    finite = math.isfinite(fm.mtbf_s)
    sp = q.options.spares
    return {
        "system": system.spec.id, "chips": system.counts.chips, "nodes": system.counts.nodes,
        "work_s": q.work_days * S_PER_DAY,
        "interruptions_per_s": fm.interruptions_per_s,
        "hardware_interruptions_per_s": fm.hardware_interruptions_per_s,
        "swaps_per_s": fm.swaps_per_s,
        "degradations_per_s": fm.degradations_per_s,
        "expected_interruptions": fm.expected_interruptions(q.work_days * S_PER_DAY),
        "expected_interruptions_to_completion": fm.interruptions_per_s * completion,
        "mtbf_s": fm.mtbf_s if finite else None,
        "link_protection": fm.link_protection,
        "scale_out_dual_plane": q.options.scale_out_dual_plane,
        "spares": None if sp is None else {"group": sp.group, "spares": sp.spares,
                                           "level": sp.level,
                                           "absorbed_fraction": fm.spare_absorbed_fraction},
        "checkpoint": {"bytes": ckpt.bytes_, "write_s": ckpt.write_s,
                       "snapshot_s": ckpt.snapshot_s, "blocking_s": ckpt.blocking_s,
                       "restore_s": ckpt.restore_s, "asynchronous": ckpt.asynchronous,
                       "durable_lag_s": ckpt.durable_lag_s},
        "checkpoint_interval_s": gm.interval_s if math.isfinite(gm.interval_s) else None,
        "checkpoint_interval_young_s":
            young_interval_s(ckpt.blocking_s, fm.mtbf_s) if finite else None,
        "checkpoint_interval_daly_s":
            daly_interval_s(ckpt.blocking_s, fm.mtbf_s) if finite else None,
        "recovery_s": {"restart": restart,
                       "swap": gm.recoveries[1].recovery_s if len(gm.recoveries) > 1
                       else None},
        "ettr": ettr(gm),
        "ettr_first_order": ettr_first_order(ckpt.blocking_s, gm.interval_s, fm.mtbf_s,
                                             restart) if finite else ettr(gm),
        "expected_completion_s": completion,
        "by_cause": [c.to_dict() for c in fm.by_cause],
        "monte_carlo": mc.to_dict() if mc else None,
        "cross_checks": cross_checks(book),
        "calibration": {
            "run": book.run.id, "name": book.run.name,
            "note": "per-component rates of the counted causes are calibrated on this one "
                    "run (count / population / duration); re-predicting it checks "
                    "bookkeeping and scaling, not foresight",
            "job_size_exponent": book.job_scaling.exponent,
            "job_size_reference_chips": book.job_scaling.reference_chips,
            "job_size_source": book.job_scaling.source},
        "notes": list(fm.notes),
        "warnings": list(system.warnings),
    }
