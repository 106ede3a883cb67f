"""Benchmark: the fluid max-min simulator on all-to-all over one non-blocking switch.

N endpoints, each with an uplink and a downlink of 50e9 B/s into a single non-blocking
switch (links 0..N-1 up, N..2N-1 down; flow i -> j crosses up[i] and down[j]). All-to-all
sends 1 MiB from every endpoint to every other. The analytic time is (N-1) * 1 MiB / 50e9:
each uplink must carry N-1 MiB. When N*(N-1) <= 2,000,000 the N*(N-1) flows are simulated
at once; above that the exchange is run as N-1 shift-permutation phases (phase k: i -> i+k
mod N) simulated one after another, and the makespans summed. Phases are isomorphic, so if
simulating all of them would not fit the time budget, a sample of them is simulated and the
sum extrapolated (the output says so).

Also times one max-min rate computation for 1,000,000 subflows on random 4-link ECMP paths
through a 2-tier leaf-spine (many distinct bottleneck levels, unlike the symmetric case).

Prints wall seconds, the tracemalloc peak of each case, and the process's max RSS.
"""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import numpy as np

from superpod.network.flowsim import FlowSet, max_min_rates, simulate

LINK_BYTES_PER_S = 50e9
MIB = float(1 << 20)
MAX_FLOWS_AT_ONCE = 2_000_000
PHASE_BUDGET_S = 20.0
T = TypeVar("T")


def single_switch(src: np.ndarray, dst: np.ndarray, n: int) -> FlowSet:
    m = src.shape[0]
    links = np.empty(2 * m, dtype=np.int64)
    links[0::2] = src
    links[1::2] = n + dst
    return FlowSet(bytes_=np.full(m, MIB), sub_flow=np.arange(m, dtype=np.int64),
                   sub_weight=np.ones(m), sub_indptr=np.arange(0, 2 * m + 1, 2, dtype=np.int64),
                   sub_links=links)


def all_to_all_at_once(n: int) -> tuple[float, int, int, str]:
    src = np.repeat(np.arange(n, dtype=np.int64), n - 1)
    dst = (src + np.tile(np.arange(1, n, dtype=np.int64), n)) % n
    r = simulate(np.full(2 * n, LINK_BYTES_PER_S), single_switch(src, dst, n))
    return r.makespan_s, src.shape[0], r.events, "one simulation"


def all_to_all_phases(n: int) -> tuple[float, int, int, str]:
    cap = np.full(2 * n, LINK_BYTES_PER_S)
    src = np.arange(n, dtype=np.int64)
    start = time.perf_counter()
    total_s, events, done = 0.0, 0, 0
    shifts = np.arange(1, n)
    for k in shifts:
        r = simulate(cap, single_switch(src, (src + k) % n, n))
        total_s, events, done = total_s + r.makespan_s, events + r.events, done + 1
        if time.perf_counter() - start > PHASE_BUDGET_S:
            break
    note = f"{n - 1} shift phases"
    if done < n - 1:
        total_s *= (n - 1) / done
        note = f"{done} of {n - 1} shift phases simulated, sum extrapolated"
    return total_s, n * (n - 1), events, note


def measured(fn: Callable[[], T]) -> tuple[float, float, T]:
    """Wall seconds, tracemalloc peak (MiB) and result of ``fn()``."""
    tracemalloc.start()
    start = time.perf_counter()
    out = fn()
    wall_s = time.perf_counter() - start
    peak_mib = tracemalloc.get_traced_memory()[1] / MIB
    tracemalloc.stop()
    return wall_s, peak_mib, out


def all_to_all_table() -> None:
    head = (f"{'N':>5} {'flows':>10} {'events':>6} {'wall_s':>7} {'peak_MiB':>9} "
            f"{'makespan_s':>12} {'analytic_s':>12} {'ratio':>8}  how")
    print(head)
    for n in (64, 256, 1024, 4096):
        at_once = n * (n - 1) <= MAX_FLOWS_AT_ONCE
        run = all_to_all_at_once if at_once else all_to_all_phases
        wall_s, peak, (makespan_s, flows, events, note) = measured(partial(run, n))
        analytic_s = (n - 1) * MIB / LINK_BYTES_PER_S
        print(f"{n:>5} {flows:>10} {events:>6} {wall_s:>7.2f} {peak:>9.1f} "
              f"{makespan_s:>12.6e} {analytic_s:>12.6e} {makespan_s / analytic_s:>8.6f}  {note}")
        sys.stdout.flush()


def random_ecmp_rates(n_sub: int = 1_000_000, n_ep: int = 1024, leaf_ports: int = 32,
                      n_spine: int = 32) -> tuple[int, int]:
    """One rate computation: n_sub single-path flows, up -> leaf-spine -> spine-leaf -> down."""
    rng = np.random.default_rng(0)
    n_leaf = n_ep // leaf_ports
    src, dst = rng.integers(0, n_ep, n_sub), rng.integers(0, n_ep, n_sub)
    spine = rng.integers(0, n_spine, n_sub)
    up_mid, down_mid = n_ep, n_ep + n_leaf * n_spine
    down = n_ep + 2 * n_leaf * n_spine
    links = np.stack([src, up_mid + (src // leaf_ports) * n_spine + spine,
                      down_mid + (dst // leaf_ports) * n_spine + spine, down + dst], axis=1)
    fs = FlowSet(bytes_=np.full(n_sub, MIB), sub_flow=np.arange(n_sub), sub_weight=np.ones(n_sub),
                 sub_indptr=np.arange(0, 4 * n_sub + 1, 4), sub_links=links.ravel())
    rates = max_min_rates(np.full(down + n_ep, LINK_BYTES_PER_S), fs, np.ones(n_sub, bool))
    return n_sub, int(np.unique(rates).shape[0])


def main() -> None:
    print("all-to-all, 1 MiB per pair, one non-blocking switch, 50e9 B/s up and down links")
    all_to_all_table()
    wall_s, peak, (n_sub, levels) = measured(random_ecmp_rates)
    print(f"\nmax_min_rates, {n_sub} subflows x 4 links, random ECMP over a 2-tier leaf-spine "
          f"(1024 endpoints, 32 spines): {levels} distinct rates, {wall_s:.2f} s, "
          f"peak {peak:.1f} MiB")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
