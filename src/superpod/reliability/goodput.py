"""Goodput: the expected fraction of wall-clock time spent on useful work (ETTR), analytic
and by Monte Carlo.

Model (Daly 2006, "A higher order estimate of the optimum checkpoint interval for restart
dumps", FGCS 22(3), section 3). A job needs W seconds of failure-free compute. It computes
in segments of tau seconds, each followed by a blocking checkpoint of delta seconds
(the last segment is the remainder of W). Interruptions arrive as a Poisson process of rate
1/M (M = job MTBF) at all times, including during checkpoints and recovery. A failure loses
the work since the last checkpoint and costs a recovery of R_c seconds (detection +
restart or swap + checkpoint read); a failure during a recovery starts that recovery again.
Recovery kinds c (restart, swap to a spare) occur with probabilities p_c.

One segment of length a = tau + delta is attempted until it completes without a failure;
the number of failed attempts is geometric, each costs E[X | X < a] + C, and

    C = sum_c p_c M (exp(R_c / M) - 1)               expected recovery cost     (1)
    E[T_seg(a)] = (M + C) (exp(a / M) - 1)           expected segment time      (2)
    E[T] = n E[T_seg(tau + delta)] + E[T_seg(tau_last + delta)]                (3)
    ETTR = W / E[T]                                                             (4)

With one recovery kind, (2) is Daly's T_w = M e^{R/M} (e^{(tau+delta)/M} - 1) per segment
(his eq. 20). To first order in tau/M, delta/tau and R/M, the waste is
delta/tau + (tau/2 + R)/M (Young 1974), given as ``ettr_first_order``.

The Monte Carlo samples exactly this process, vectorised over trials (no per-event Python
loop): failed attempts per trial are one negative-binomial draw (the sum of n geometric
counts), the work each loses is a truncated exponential on [0, a) (inverse CDF), summed per
trial with ``bincount``; failures during recovery likewise. Its mean therefore converges on
(3), which the tests check against the 99% confidence interval.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from superpod.errors import SpecError

if TYPE_CHECKING:  # imported at use: only the Monte Carlo needs numpy (start-up)
    import numpy as np
    from numpy.typing import NDArray

Z_99 = 2.5758293035489  # two-sided 99% normal quantile
EVENTS_PER_CHUNK = 2_000_000  # bounds the Monte Carlo's memory (about 50 MB a chunk)
MAX_EVENTS_PER_TRIAL = 50_000_000  # beyond this the job effectively never finishes
_EXP_LIMIT = 700.0  # exp(700) is near the float limit


@dataclass(frozen=True)
class Recovery:
    """A recovery kind: its probability among interruptions and its duration (s)."""

    probability: float
    recovery_s: float


@dataclass(frozen=True)
class GoodputModel:
    """The inputs of (1)-(4): work, interval, checkpoint cost, MTBF, recovery kinds."""

    work_s: float
    interval_s: float  # tau; inf: no checkpoints (one segment)
    overhead_s: float  # delta, blocking time per checkpoint
    mtbf_s: float  # M; inf: no interruptions
    recoveries: tuple[Recovery, ...]

    def __post_init__(self) -> None:
        if not (self.work_s > 0 and math.isfinite(self.work_s)):
            raise SpecError("work must be a positive, finite time", field="--days",
                            value=self.work_s)
        if not self.interval_s > 0 or self.overhead_s < 0 or not self.mtbf_s > 0:
            raise SpecError("interval and MTBF must be positive, the overhead non-negative",
                            field="checkpoint_interval_s", value=self.interval_s)
        total = sum(r.probability for r in self.recoveries)
        if not self.recoveries or abs(total - 1.0) > 1e-9 or any(
                r.probability < 0 or r.recovery_s < 0 for r in self.recoveries):
            raise SpecError("recovery probabilities must be non-negative and sum to 1",
                            field="recoveries", value=total)

    @property
    def segments(self) -> tuple[int, float]:
        """(full segments of tau, length of the last one)."""
        if self.interval_s >= self.work_s:
            return 0, self.work_s
        n = math.ceil(self.work_s / self.interval_s - 1e-9)
        return n - 1, self.work_s - (n - 1) * self.interval_s


def _expm1_ratio(x_s: float, mtbf_s: float) -> float:
    """exp(x/M) - 1, inf when it overflows."""
    ratio = x_s / mtbf_s
    return math.inf if ratio > _EXP_LIMIT else math.expm1(ratio)


def expected_recovery_cost_s(mtbf_s: float, recoveries: tuple[Recovery, ...]) -> float:
    """(1): C = sum_c p_c M (exp(R_c/M) - 1); -> sum_c p_c R_c as M -> inf."""
    if math.isinf(mtbf_s):
        return sum(r.probability * r.recovery_s for r in recoveries)
    return sum(r.probability * mtbf_s * _expm1_ratio(r.recovery_s, mtbf_s)
               for r in recoveries)


def expected_segment_s(attempt_s: float, mtbf_s: float, recovery_cost_s: float) -> float:
    """(2): E[T_seg] = (M + C)(exp(a/M) - 1); = a when M is infinite."""
    if math.isinf(mtbf_s):
        return attempt_s
    return (mtbf_s + recovery_cost_s) * _expm1_ratio(attempt_s, mtbf_s)


def expected_completion_s(m: GoodputModel) -> float:
    """(3): expected wall-clock time to finish the work."""
    n_full, last = m.segments
    cost = expected_recovery_cost_s(m.mtbf_s, m.recoveries)
    full = expected_segment_s(m.interval_s + m.overhead_s, m.mtbf_s, cost) if n_full else 0.0
    return n_full * full + expected_segment_s(last + m.overhead_s, m.mtbf_s, cost)


def ettr(m: GoodputModel) -> float:
    """(4): W / E[T]."""
    return m.work_s / expected_completion_s(m)


def ettr_first_order(delta_s: float, tau_s: float, mtbf_s: float, recovery_s: float) -> float:
    """1 - delta/tau - (tau/2 + R)/M, the first-order (Young) estimate, floored at 0."""
    return max(0.0, 1.0 - delta_s / tau_s - (tau_s / 2.0 + recovery_s) / mtbf_s)


# ----------------------------------------------------------------------------- Monte Carlo


@dataclass(frozen=True)
class MonteCarloResult:
    """Completion-time distribution over ``trials`` seeded trials (seconds)."""

    trials: int
    seed: int
    work_s: float
    mean_s: float
    std_s: float
    p50_s: float
    p90_s: float
    p99_s: float
    mean_failures: float
    completion_s: NDArray[np.float64] = field(repr=False, compare=False)

    @property
    def ettr(self) -> float:
        """W / mean completion time (the estimator of (4))."""
        return self.work_s / self.mean_s

    @property
    def ettr_ci(self) -> tuple[float, float]:
        """99% confidence interval of ETTR, from that of the mean completion time."""
        half = Z_99 * self.std_s / math.sqrt(self.trials)
        low = self.work_s / (self.mean_s + half)
        return low, (self.work_s / (self.mean_s - half) if self.mean_s > half else math.inf)

    def to_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "seed": self.seed,
                "completion_s": {"mean": self.mean_s, "p50": self.p50_s, "p90": self.p90_s,
                                 "p99": self.p99_s},
                "completion_std_s": self.std_s,
                "ettr": self.ettr, "ettr_ci": list(self.ettr_ci), "ettr_ci_level": 0.99,
                "mean_failures": self.mean_failures}


#: a trial with this many draws or more sums them as one normal draw (central limit theorem):
#: the work stays bounded by the trials, not by trials x failures (a million chips fail tens of
#: thousands of times a run; the normal's relative error on such a sum is ~1/sqrt(count))
CLT_COUNT = 1000


def truncexp_moments(limit_s: float, mtbf_s: float) -> tuple[float, float]:
    """Mean and variance of an exponential(M) draw conditioned below L (s, s^2):
    mu = M - L / (e^(L/M) - 1), E[X^2] = 2 M^2 - (L^2 + 2 M L) / (e^(L/M) - 1)."""
    x = limit_s / mtbf_s
    if x < 1e-4:  # all but uniform on [0, L]
        return limit_s / 2.0, limit_s**2 / 12.0
    if x > 700:  # the limit never binds
        return mtbf_s, mtbf_s**2
    d = math.expm1(x)
    mean = mtbf_s - limit_s / d
    second = 2.0 * mtbf_s**2 - (limit_s**2 + 2.0 * mtbf_s * limit_s) / d
    return mean, max(0.0, second - mean**2)


def _truncexp_sums(rng: np.random.Generator, counts: NDArray[np.int64], limit_s: float,
                   mtbf_s: float) -> NDArray[np.float64]:
    """Per trial, the sum of ``counts[i]`` exponential(M) draws conditioned below limit;
    counts of ``CLT_COUNT`` or more as one normal draw with the sum's mean and variance."""
    import numpy as np

    big = counts >= CLT_COUNT
    small = np.where(big, 0, counts)
    total = int(small.sum())
    out = np.zeros(counts.shape[0])
    if total:
        u = rng.random(total)
        x = -mtbf_s * np.log1p(u * math.expm1(-limit_s / mtbf_s))
        owner = np.repeat(np.arange(counts.shape[0]), small)
        out = np.bincount(owner, weights=x, minlength=counts.shape[0]).astype(np.float64)
    if big.any():
        mean, var = truncexp_moments(limit_s, mtbf_s)
        k = counts[big].astype(np.float64)
        out[big] = np.maximum(0.0, rng.normal(k * mean, np.sqrt(k * var)))
    return out


def _failed_attempts(rng: np.random.Generator, attempts: NDArray[np.int64] | int,
                     length_s: float, mtbf_s: float, size: int) -> NDArray[np.int64]:
    """Failures before ``attempts`` successes of length ``length_s`` (negative binomial)."""
    import numpy as np

    n = np.broadcast_to(np.asarray(attempts, dtype=np.int64), (size,))
    p = math.exp(-length_s / mtbf_s)
    out = np.zeros(size, dtype=np.int64)
    live = n > 0
    if live.any():
        out[live] = rng.negative_binomial(n[live], p)
    return out


def _chunk(m: GoodputModel, rng: np.random.Generator, size: int
           ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Completion times and failure counts of ``size`` trials."""
    import numpy as np

    n_full, last = m.segments
    a, a_last, mtbf = m.interval_s + m.overhead_s, last + m.overhead_s, m.mtbf_s
    k_full = _failed_attempts(rng, n_full, a, mtbf, size)
    k_last = _failed_attempts(rng, 1, a_last, mtbf, size)
    time = n_full * a + a_last + _truncexp_sums(rng, k_full, a, mtbf) + _truncexp_sums(
        rng, k_last, a_last, mtbf)
    k = k_full + k_last
    probs = [r.probability for r in m.recoveries]
    kinds = rng.multinomial(k, probs) if len(probs) > 1 else k[:, None]
    failures = k.copy()
    for j, r in enumerate(m.recoveries):
        kj = kinds[:, j].astype(np.int64)
        again = _failed_attempts(rng, kj, r.recovery_s, mtbf, size)
        time += kj * r.recovery_s + _truncexp_sums(rng, again, r.recovery_s, mtbf)
        failures += again
    return time, failures


def expected_failures_per_trial(m: GoodputModel) -> float:
    """Mean failures of one run (during work, checkpoints and recovery)."""
    if math.isinf(m.mtbf_s):
        return 0.0
    n_full, last = m.segments
    k = n_full * _expm1_ratio(m.interval_s + m.overhead_s, m.mtbf_s) + _expm1_ratio(
        last + m.overhead_s, m.mtbf_s)
    again = sum(r.probability * _expm1_ratio(r.recovery_s, m.mtbf_s) for r in m.recoveries)
    return k * (1.0 + again)


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Any]:
    """A rich progress bar on stderr, or a no-op."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("Monte Carlo trials", total=total)
        yield lambda n: bar.advance(task, n)


def monte_carlo(m: GoodputModel, trials: int = 10_000, seed: int = 0,
                progress: bool = False) -> MonteCarloResult:
    """Sample ``trials`` runs of the model; seeded and vectorised in chunks of trials."""
    import numpy as np

    if trials < 2:
        raise SpecError("needs at least 2 trials", field="--trials", value=trials)
    events = expected_failures_per_trial(m)
    if not events <= MAX_EVENTS_PER_TRIAL:
        raise SpecError(f"the job would not finish: about {events:.3g} failures per run "
                        f"(MTBF {m.mtbf_s:.3g} s against {m.interval_s:.3g} s segments)",
                        field="mtbf_s")
    rng = np.random.default_rng(seed)
    chunk = max(1, min(trials, int(EVENTS_PER_CHUNK / max(1.0, 2.0 * events))))
    times, fails = np.empty(trials), np.empty(trials, dtype=np.int64)
    with _progress(progress, trials) as advance:
        for start in range(0, trials, chunk):
            size = min(chunk, trials - start)
            times[start:start + size], fails[start:start + size] = _chunk(m, rng, size)
            if advance is not None:
                advance(size)
    p50, p90, p99 = np.percentile(times, [50.0, 90.0, 99.0])
    return MonteCarloResult(trials=trials, seed=seed, work_s=m.work_s,
                            mean_s=float(times.mean()), std_s=float(times.std(ddof=1)),
                            p50_s=float(p50), p90_s=float(p90), p99_s=float(p99),
                            mean_failures=float(fails.mean()), completion_s=times)
