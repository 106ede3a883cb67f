"""Benchmark: the goodput Monte Carlo (30 days x 16,384 chips x 10,000 trials).

Prints the Monte Carlo's wall time for a 16,384-H100 job (``dgx-h100`` preset, Llama 3
405B checkpoint, Daly interval) needing 30 days of compute, against a baseline measured in
the same run: NumPy drawing as many exponentials as the Monte Carlo has failures in all
(the least any per-failure simulation must do), and the peak memory (tracemalloc, which
NumPy reports its buffers to) of each. Then the same at 131,072 chips.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from superpod import api
from superpod.reliability import ReliabilityQuery, checkpoint_bytes, goodput_model, monte_carlo

TRIALS = 10_000
DAYS = 30.0


def timed(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, float, Any]:
    """(median wall s, peak traced MB of one call, last result)."""
    walls, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(walls), peak / 1e6, result


def run(chips: int) -> None:
    q = ReliabilityQuery(checkpoint_bytes=checkpoint_bytes(405e9), work_days=DAYS, trials=0)
    fm, _, gm = goodput_model(api.system("dgx-h100", chips), q)
    mc_wall, mc_mb, mc = timed(lambda: monte_carlo(gm, TRIALS, seed=0))
    draws = int(round(mc.mean_failures * TRIALS))
    rng = np.random.default_rng(0)
    base_wall, base_mb, _ = timed(lambda: rng.exponential(gm.mtbf_s, size=draws))
    print(f"{chips:,} chips, {DAYS:g} days of work, {TRIALS:,} trials "
          f"(MTBF {fm.mtbf_s / 3600:.3g} h, interval {gm.interval_s:.0f} s, "
          f"{mc.mean_failures:.0f} failures per run, {draws:,} in all)")
    print(f"  Monte Carlo                         {mc_wall:8.3f} s   peak {mc_mb:7.1f} MB"
          f"   ETTR {mc.ettr:.4f} [{mc.ettr_ci[0]:.4f}, {mc.ettr_ci[1]:.4f}]")
    print(f"  baseline: numpy {draws:,} exponentials {base_wall:8.3f} s   peak "
          f"{base_mb:7.1f} MB   ({mc_wall / base_wall:.1f}x baseline)")


def main() -> None:
    print("goodput Monte Carlo (median of 3, wall seconds; peak = tracemalloc of one run)")
    run(16_384)
    run(131_072)


if __name__ == "__main__":
    main()
