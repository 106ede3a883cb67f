"""Error bands: how far a prediction is from what was measured, learned from the cases.

A band is empirical. Leave-one-source-out validation (``superpod.validate.loso``) predicts
every published case with every datum of that case's own document held out; the ratio
``q = measured / predicted`` of each such prediction is a residual of a *new-source*
prediction. Residuals are pooled by class and a prediction's 80 % band is

    [value * q10, value * q90]

with q10 / q90 the 10th / 90th percentiles of its class's residuals, widened for the
effective number of independent residuals behind them (``conformal_probs``). A document's
cases share its bias, so they are neither independent (one weight per case would let twenty
cases of one README outvote three other documents) nor one observation (one weight per
document would throw away that a document's cases differ in layout, size and model): each
residual weighs ``1 / sqrt(n)`` for a source with ``n`` cases in the class, so a source's
total weight grows as ``sqrt(n)``, and the conformal widening counts Kish's effective sample
size of those weights (``effective_count``; Kish, "Survey Sampling", 1965, section 11.7),
which lies between the number of sources and the number of cases. Where few documents
disagree, their residuals say little about a new document's bias, so each end of the band
is also widened to a random-effects prediction interval for a new source
(``new_source_interval``: Student's t over the sources' median biases plus the scatter
within them, both from median absolute deviations). A class is
kind x quantity x chip family x scale:

* quantity: ``throughput`` (tokens/s, MFU, busbw, TFLOP/s; a time of the same work is its
  inverse, so a step time's band is ``[t / q90, t / q10]``), ``ttft`` or ``tpot``;
* chip family: ``calibrated`` (the chip's GEMMs, or for a collective the fabric, have
  measured calibration), ``uncalibrated`` (same vendor as a calibrated chip, not itself
  calibrated), ``other`` (another vendor, or roadmap hardware);
* scale: up to ``SCALE_LIMIT_CHIPS`` chips, or above.

A class with fewer than ``MIN_CASES`` residuals or ``MIN_SOURCES`` sources falls back to its
parent (scale dropped,
then chip family, then quantity) and the band says which class it used. Bands rest on the
public cases only; a prediction outside what they cover says so in its ``extrapolates``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

LEVEL = 0.80  #: central probability of a band (10th to 90th percentile)
MIN_CASES = 8  #: fewer residuals than this: the parent class is used
MIN_SOURCES = 3  #: fewer documents than this: the parent class is used
SCALE_LIMIT_CHIPS = 512  #: the scale boundary of the classes
BANDS_FILE = Path(__file__).resolve().parent.parent / "calibration" / "bands.yaml"

Family = Literal["calibrated", "uncalibrated", "other"]

#: metric -> (quantity, +1 if the metric grows with throughput, -1 if it is a time of it)
QUANTITY: dict[str, tuple[str, int]] = {
    "step_time_s": ("throughput", -1), "tokens_per_s_per_chip": ("throughput", 1),
    "mfu": ("throughput", 1), "busbw_gbps": ("throughput", 1),
    "algbw_gbps": ("throughput", 1), "per_rank_gbps": ("throughput", 1),
    "time_us": ("throughput", -1), "tflops": ("throughput", 1),
    "bandwidth_gbps": ("throughput", 1), "ttft_ms": ("ttft", 1), "tpot_ms": ("tpot", 1),
}


@dataclass(frozen=True)
class BandClass:
    """Where a prediction sits among the validated ones."""

    kind: str
    quantity: str
    family: str
    scale: str  #: "small" (<= SCALE_LIMIT_CHIPS chips) or "large"

    def chain(self) -> tuple[str, ...]:
        """Class names from the most specific to the broadest."""
        k, q, f, s = self.kind, self.quantity, self.family, self.scale
        return (f"{k}/{q}/{f}/{s}", f"{k}/{q}/{f}", f"{k}/{q}", k)


def classify(kind: str, metric: str, family: str, chips: int) -> BandClass:
    """The class of a prediction of ``metric`` (a key of ``QUANTITY``)."""
    return BandClass(kind=kind, quantity=QUANTITY[metric][0], family=family,
                     scale="small" if chips <= SCALE_LIMIT_CHIPS else "large")


def residual(metric: str, measured: float, predicted: float) -> float:
    """``q``: measured over predicted, in the throughput orientation of the quantity."""
    sign = QUANTITY[metric][1]
    return measured / predicted if sign > 0 else predicted / measured


@dataclass(frozen=True)
class ClassStats:
    cases: int
    sources: int
    q10: float
    q90: float

    @property
    def enough(self) -> bool:
        return self.cases >= MIN_CASES and self.sources >= MIN_SOURCES


@dataclass(frozen=True)
class Band:
    """An 80 % band around one predicted value (same unit as the value)."""

    low: float
    high: float
    level: float
    cases: int
    class_name: str
    requested: str  #: the most specific class; differs from ``class_name`` on fallback

    def to_dict(self) -> dict[str, Any]:
        return band_dict(self.low, self.high, self.cases, self.class_name, self.requested,
                         self.level)

    def text(self, fmt: str = "{:,.4g}") -> str:
        """``1,050-1,420; 80 % band, 31 cases`` (and the class when it fell back)."""
        tail = f", class {self.class_name}" if self.requested != self.class_name else ""
        return (f"{fmt.format(self.low)}-{fmt.format(self.high)}; {self.level:.0%} band, "
                f"{self.cases} cases{tail}")

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def band_dict(low: float, high: float, cases: int, class_name: str, requested: str,
              level: float = LEVEL) -> dict[str, Any]:
    """A band as result rows carry it (``Band.to_dict``): ends to 6 significant digits, the
    class, and the class it fell back from where that differs."""
    d: dict[str, Any] = {"low": _round(low), "high": _round(high), "level": level,
                         "cases": cases, "class": class_name}
    if requested != class_name:
        d["fallback_from"] = requested
    return d


def source_weights(sources: list[str]) -> list[float]:
    """Each residual's weight: ``1 / sqrt(n)`` for a source with ``n`` residuals."""
    count: dict[str, int] = {}
    for s in sources:
        count[s] = count.get(s, 0) + 1
    return [count[s] ** -0.5 for s in sources]


def effective_count(weights: list[float]) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of weighted residuals."""
    total = sum(weights)
    return total * total / sum(w * w for w in weights)


def source_weighted_quantiles(values: list[float], sources: list[str],
                              probs: tuple[float, ...]) -> list[float]:
    """Quantiles of ``values`` weighted by ``source_weights`` (the weighted empirical CDF
    at the midpoints of the sorted values, linearly interpolated)."""
    import numpy as np

    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=float)[order]
    w = np.asarray(source_weights(sources), dtype=float)[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return [float(np.interp(p, cdf, v)) for p in probs]


def conformal_probs(n: float) -> tuple[float, float]:
    """The percentiles that give an 80 % band over ``n`` exchangeable residuals (``n`` the
    effective count, ``effective_count``): split-conformal prediction (Lei et al.,
    "Distribution-free predictive inference for regression", JASA 2018) takes the
    ceil((n + 1)(1 - a/2))-th of n residuals, i.e. the (1 - a/2)(n + 1)/n quantile,
    a = 1 - LEVEL; with few residuals the band widens to the extremes instead of pretending
    to a precision the data do not have."""
    hi = min(1.0, (1 + LEVEL) / 2 * (n + 1) / n)
    return 1.0 - hi, hi


def class_stats(rows: Iterable[tuple[BandClass, float, str]]) -> dict[str, ClassStats]:
    """Residual quantiles per class name, every level of every chain, from (class,
    residual, source key) rows."""
    pools: dict[str, tuple[list[float], list[str]]] = {}
    for cls, q, src in rows:
        for name in cls.chain():
            qs, ss = pools.setdefault(name, ([], []))
            qs.append(q)
            ss.append(src)
    out: dict[str, ClassStats] = {}
    for name, (qs, ss) in sorted(pools.items()):
        n_eff = effective_count(source_weights(ss))
        lo, hi = source_weighted_quantiles(qs, ss, conformal_probs(n_eff))
        between = new_source_interval(qs, ss)
        if between is not None:  # the wider of the two at each end
            lo, hi = min(lo, between[0]), max(hi, between[1])
        out[name] = ClassStats(cases=len(qs), sources=len(set(ss)), q10=lo, q90=hi)
    return out


def _robust_var(xs: list[float], centre: float | None = None) -> float:
    """Variance from the median absolute deviation (1.4826 MAD, consistent for a normal)."""
    c = statistics.median(xs) if centre is None else centre
    return (1.4826 * statistics.median(abs(x - c) for x in xs)) ** 2


def new_source_interval(values: list[float], sources: list[str]
                        ) -> tuple[float, float] | None:
    """The central ``LEVEL`` interval of a residual of a source not among ``sources``, under
    a random-effects model of the log residuals: a source's bias (its median) drawn from a
    normal across sources, a case's scatter about its source's bias within it. With K
    sources the predictive interval is ``mu +- t(K-1) sqrt(s_b^2 (1 + 1/K) + s_w^2)``
    (Student's t with K - 1 degrees of freedom; e.g. Higgins, Thompson & Spiegelhalter,
    "A re-evaluation of random-effects meta-analysis", JRSS A 2009, section 4.1, the
    prediction interval for a new study). It widens the empirical band where few sources
    disagree: the residuals of three documents say little about a fourth document's bias.
    None with fewer than two sources."""
    by: dict[str, list[float]] = {}
    for q, s in zip(values, sources, strict=True):
        by.setdefault(s, []).append(math.log(q))
    k = len(by)
    if k < 2:
        return None
    from scipy.special import stdtrit

    biases = [statistics.median(v) for v in by.values()]
    scatter = [x - b for v, b in zip(by.values(), biases, strict=True) for x in v]
    var_b = _robust_var(biases)
    var_w = _robust_var(scatter, centre=0.0)
    half = float(stdtrit(k - 1, (1 + LEVEL) / 2)) * math.sqrt(var_b * (1 + 1 / k) + var_w)
    mu = statistics.fmean(biases)
    return math.exp(mu - half), math.exp(mu + half)


def band(stats: Mapping[str, ClassStats], cls: BandClass, metric: str,
         value: float) -> Band | None:
    """The band of ``value`` (a prediction of ``metric``), or None when no validated case
    of its kind exists."""
    chain = cls.chain()
    name = next((n for n in chain if n in stats and stats[n].enough),
                next((n for n in reversed(chain) if n in stats), None))
    if name is None:
        return None
    s = stats[name]
    if QUANTITY[metric][1] > 0:
        low, high = value * s.q10, value * s.q90
    else:
        low, high = value / s.q90, value / s.q10
    return Band(low=low, high=high, level=LEVEL, cases=s.cases, class_name=name,
                requested=chain[0])


def domains(rows: Iterable[tuple[str, int, float | None]]) -> dict[str, Domain]:
    """The validated region from (domain key, chips, published MFU or None) per case; the
    key is ``kind/vendor`` or ``kind/vendor/family`` (``annotate``)."""
    acc: dict[str, tuple[int, int, float | None]] = {}
    for key, chips, mfu in rows:
        n, most, best = acc.get(key, (0, 0, None))
        if mfu is not None:
            best = mfu if best is None else max(best, mfu)
        acc[key] = (n + 1, max(most, chips), best)
    return {k: Domain(cases=n, max_chips=m, best_mfu=None if b is None else round(b, 4))
            for k, (n, m, b) in sorted(acc.items())}


def dump(stats: Mapping[str, ClassStats], source: str,
         validated: Mapping[str, Domain] | None = None) -> str:
    """The YAML text of a bands file."""
    doc = {"level": LEVEL, "min_cases": MIN_CASES, "min_sources": MIN_SOURCES,
           "scale_limit_chips": SCALE_LIMIT_CHIPS, "source": source,
           "classes": {n: {"cases": s.cases, "sources": s.sources, "q10": round(s.q10, 4),
                           "q90": round(s.q90, 4)} for n, s in stats.items()},
           "validated": {k: d.model_dump(exclude_none=True)
                         for k, d in (validated or {}).items()}}
    import yaml  # at use: a run that writes no bands need not import PyYAML (start-up)

    return yaml.safe_dump(doc, sort_keys=False)


class _StatsEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    cases: int = Field(ge=1)
    sources: int = Field(ge=1)
    q10: float = Field(gt=0)
    q90: float = Field(gt=0)


class Domain(BaseModel):
    """What the public cases cover for one kind on one vendor's chips (and model family):
    how many cases, the largest job, and for training the best published MFU."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    cases: int = Field(ge=1)
    max_chips: int = Field(ge=1)
    best_mfu: float | None = Field(default=None, gt=0, le=1)


class BandsFile(BaseModel):
    """A bands file (``dump``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    level: float = Field(gt=0, lt=1)
    min_cases: int = Field(ge=1)
    min_sources: int = Field(ge=1)
    scale_limit_chips: int = Field(ge=1)
    source: str
    classes: dict[str, _StatsEntry]
    validated: dict[str, Domain] = Field(default_factory=dict)


@lru_cache(maxsize=4)
def load_bands_file(path: str | None = None) -> BandsFile | None:
    """The shipped bands file (``calibration/bands.yaml``, derived by ``superpod validate
    --cross-validate --write-bands`` from the packaged public cases)."""
    from superpod.hardware.loading import read_model_file

    if path is None and not BANDS_FILE.exists():
        return None  # before the first derivation: no bands
    return read_model_file(str(path or BANDS_FILE), BandsFile)


@lru_cache(maxsize=4)
def load_bands(path: str | None = None) -> dict[str, ClassStats]:
    """The shipped bands by class name (built once per file; read it, never change it)."""
    doc = load_bands_file(path)
    return {} if doc is None else {
        n: ClassStats(cases=v.cases, sources=v.sources, q10=v.q10, q90=v.q90)
        for n, v in doc.classes.items()}


def load_validated(path: str | None = None) -> dict[str, Domain]:
    """The shipped validated region by domain key."""
    doc = load_bands_file(path)
    return {} if doc is None else dict(doc.validated)
