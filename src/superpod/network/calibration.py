"""Collective calibration data: fitted protocols per fabric and algorithm, with provenance.

Reads ``superpod/calibration/collectives.yaml`` (format described at its top). The fitted
``alpha`` / ``efficiency`` pairs are stored next to the measured points they come from;
``refit`` reproduces them (a test checks that it does).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from superpod.hardware.loading import read_model_file
from superpod.hardware.specs import BytesPerS, Evidence, Seconds
from superpod.trust.holdout import excluded
from superpod.trust.sources import source_key

COLLECTIVES_FILE = Path(__file__).resolve().parent.parent / "calibration" / "collectives.yaml"
Fraction = Annotated[float, Field(gt=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Protocol(_Strict):
    protocol: str
    alpha_s: Seconds = Field(alias="alpha")
    efficiency: Fraction


class FitSetup(_Strict):
    op: Literal["all_reduce", "all_gather", "reduce_scatter"]
    algorithm: str
    ranks: Annotated[int, Field(ge=2)]
    link_bandwidth_bytes_per_s: BytesPerS = Field(alias="link_bandwidth")


class Fabric(_Strict):
    description: str
    evidence: Evidence
    source: str
    notes: str = ""
    fit: FitSetup
    points: dict[int, Annotated[float, Field(gt=0)]]
    algorithms: dict[str, tuple[Protocol, ...]]


class EpEntry(_Strict):
    fabric: str
    mode: Literal["normal", "low_latency"]
    efficiency: Fraction
    alpha_s: Seconds = Field(alias="alpha")
    evidence: Evidence
    source: str


class Defaults(_Strict):
    alpha_s: Seconds = Field(alias="alpha")
    efficiency: Fraction
    scale_out_efficiency: Fraction
    source: str


class CollectiveCalibration(_Strict):
    fabrics: dict[str, Fabric]
    expert_parallel: list[EpEntry] = Field(default_factory=list)
    defaults: Defaults

    def ep(self, fabric: str | None, mode: str) -> EpEntry | None:
        return next((e for e in self.expert_parallel
                     if e.fabric == fabric and e.mode == mode), None)


@lru_cache(maxsize=4)
def _read(path: str) -> CollectiveCalibration:
    return read_model_file(path, CollectiveCalibration)


@lru_cache(maxsize=64)
def _without(path: str, held: frozenset[str]) -> CollectiveCalibration:
    cal = _read(path)
    return cal.model_copy(update={
        "fabrics": {k: f for k, f in cal.fabrics.items() if source_key(f.source) not in held},
        "expert_parallel": [e for e in cal.expert_parallel
                            if source_key(e.source) not in held]})


def load_collective_calibration(path: str | None = None) -> CollectiveCalibration:
    """The collective calibration (default: the one shipped), without the entries whose
    source is held out (``superpod.trust.holdout``)."""
    p = str(path or COLLECTIVES_FILE)
    held = excluded()
    return _without(p, held) if held else _read(p)


def wire_factor(op: str, algorithm: str, ranks: int) -> float:
    """Bytes on the bottleneck link per byte of message, for the fitted setup."""
    if algorithm == "nvls":
        return 1.0
    n = ranks
    return 2 * (n - 1) / n if op == "all_reduce" else (n - 1) / n


def measured_times(fab: Fabric) -> tuple[np.ndarray, np.ndarray]:
    """(message bytes, measured seconds) from the busbw points of a fabric entry."""
    n = fab.fit.ranks
    bus = {"all_reduce": 2 * (n - 1) / n}.get(fab.fit.op, (n - 1) / n)
    sizes = np.array(sorted(fab.points), dtype=float)
    busbw = np.array([fab.points[int(s)] * 1e9 for s in sizes])
    return sizes, sizes * bus / busbw


def refit(fab: Fabric, protocols: int = 2) -> list[tuple[float, float]]:
    """Least-squares (on log time) fit of ``protocols`` (alpha_s, efficiency) pairs,
    time = min_p(alpha_p + wire / efficiency_p)."""
    from scipy.optimize import least_squares

    sizes, t = measured_times(fab)
    wire = sizes * wire_factor(fab.fit.op, fab.fit.algorithm, fab.fit.ranks) \
        / fab.fit.link_bandwidth_bytes_per_s

    def model(p: np.ndarray) -> np.ndarray:
        terms = [p[2 * i] * 1e-6 + wire / p[2 * i + 1] for i in range(protocols)]
        return np.asarray(np.minimum.reduce(terms))

    start = np.array([v for i in range(protocols) for v in (20.0 * (i + 1), 0.3 + 0.3 * i)])
    lo = np.array([0.0, 1e-3] * protocols)
    hi = np.array([1e4, 1.0] * protocols)
    sol = least_squares(lambda p: np.log(model(p) / t), start, bounds=(lo, hi))
    pairs = [(float(sol.x[2 * i]) * 1e-6, float(sol.x[2 * i + 1])) for i in range(protocols)]
    return sorted(pairs)
