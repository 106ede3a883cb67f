"""Flow-level (fluid) network simulation with max-min fair bandwidth sharing.

Model. A network is a set of directed links, link ``l`` carrying at most
``capacity_bytes_per_s[l]``. A flow moves ``bytes_[f]`` bytes; it may be split over several
paths (multi-path / ECMP), each path a *subflow* that carries a fixed fraction of the flow's
bytes over a fixed list of links. Bytes are a fluid: at every instant each active subflow has
a rate, and the rates are the max-min fair allocation among the active subflows (each subflow
is one user of the max-min problem), computed by progressive filling (Bertsekas & Gallager,
*Data Networks*, 2nd ed., Prentice Hall 1992, sec. 6.5.2): raise the rates of all unfrozen
subflows together until some link saturates, freeze every subflow that crosses a saturated
link, and repeat on the residual capacity. The result is feasible (no link carries more than
its capacity) and max-min fair (every subflow crosses a saturated link on which its rate is
the largest), and takes one round per distinct bottleneck level.

All flows start at t = 0. Rates stay constant between events; an event is the completion of
one or more subflows, after which rates are recomputed among those still active (the
discrete-event fluid scheme of flow-level simulators). A subflow's path latency does not
occupy bandwidth: it finishes at (transfer completion + ``latency_s``), and a flow finishes
when its last subflow does.

Numerics. The subflow x link incidence is held in CSR form (``sub_indptr``/``sub_links``);
per-link counts are ``np.bincount`` over the link ids of the still-unfrozen subflows (a
sparse matrix-vector product with a 0/1 matrix), and the active set is compacted as subflows
freeze or finish, so a filling round costs O(entries still in play) and memory stays linear
in the number of path entries (no dense subflow x link matrix). A link is saturated when its
residual capacity is within a relative 1e-9 of its capacity; subflows whose completion times
agree within a relative 1e-12 finish in the same event, so symmetric cases take one event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SATURATION_RTOL = 1e-9
FINISH_RTOL = 1e-12
WEIGHT_SUM_ATOL = 1e-9


@dataclass(frozen=True, eq=False)
class FlowSet:
    """Flows to simulate, in compressed form.

    Flow f carries bytes_[f]. It is split into subflows (multi-path / ECMP): subflow j belongs
    to flow sub_flow[j], carries the fraction sub_weight[j] of its flow's bytes (fractions of
    one flow sum to 1), and crosses the directed links sub_links[sub_indptr[j]:sub_indptr[j+1]]
    (CSR layout). ``latency_s[j]`` (optional) is subflow j's path latency, added to its finish
    time. Arrays are converted to the dtypes below and checked on construction.
    """

    bytes_: FloatArray  # float64, (n_flows,)
    sub_flow: IntArray  # int64, (n_sub,)
    sub_weight: FloatArray  # float64, (n_sub,)
    sub_indptr: IntArray  # int64, (n_sub + 1,)
    sub_links: IntArray  # int64, (nnz,)
    latency_s: FloatArray | None = None  # float64, (n_sub,)

    def __post_init__(self) -> None:
        for name, dtype in (("bytes_", np.float64), ("sub_flow", np.int64),
                            ("sub_weight", np.float64), ("sub_indptr", np.int64),
                            ("sub_links", np.int64), ("latency_s", np.float64)):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, np.ascontiguousarray(value, dtype=dtype))
        _check_flowset(self)

    @property
    def n_flows(self) -> int:
        return int(self.bytes_.shape[0])

    @property
    def n_sub(self) -> int:
        return int(self.sub_flow.shape[0])

    @staticmethod
    def from_paths(bytes_: Sequence[float],
                   paths: Sequence[Sequence[tuple[Sequence[int], float]]],
                   latency_s: Sequence[Sequence[float]] | None = None) -> FlowSet:
        """Build from ``paths[f]`` = [(link ids, weight), ...]; ``latency_s[f][i]`` per path."""
        if len(paths) != len(bytes_):
            raise ValueError(f"paths has {len(paths)} entries for {len(bytes_)} flows")
        sub_flow = [f for f, flow_paths in enumerate(paths) for _ in flow_paths]
        subs = [sub for flow_paths in paths for sub in flow_paths]
        lengths = [len(links) for links, _ in subs]
        latency: list[float] | None = None
        if latency_s is not None:
            if [len(x) for x in latency_s] != [len(p) for p in paths]:
                raise ValueError("latency_s must give one latency per path of every flow")
            latency = [float(x) for per_flow in latency_s for x in per_flow]
        return FlowSet(
            bytes_=np.asarray(bytes_, dtype=np.float64),
            sub_flow=np.asarray(sub_flow, dtype=np.int64),
            sub_weight=np.asarray([w for _, w in subs], dtype=np.float64),
            sub_indptr=np.concatenate(([0], np.cumsum(lengths, dtype=np.int64))),
            sub_links=np.asarray([k for links, _ in subs for k in links], dtype=np.int64),
            latency_s=None if latency is None else np.asarray(latency, dtype=np.float64),
        )


@dataclass(frozen=True, eq=False)
class FlowResult:
    """Outcome of :func:`simulate`."""

    finish_s: FloatArray  # per flow: when its last subflow finishes (incl. latency)
    makespan_s: float  # max finish_s (0 if no flows)
    link_bytes: FloatArray  # bytes carried per link
    link_utilization: FloatArray  # link_bytes / (capacity * makespan); 0 where undefined
    bottleneck_link: int  # link with the highest utilization (-1 if none carries bytes)
    events: int  # number of rate recomputations


def _check_shapes(fs: FlowSet) -> None:
    n_sub = fs.n_sub
    for name in ("bytes_", "sub_flow", "sub_weight", "sub_indptr", "sub_links"):
        if getattr(fs, name).ndim != 1:
            raise ValueError(f"FlowSet.{name} must be one-dimensional")
    if fs.sub_weight.shape[0] != n_sub or fs.sub_indptr.shape[0] != n_sub + 1:
        raise ValueError("sub_weight must have n_sub entries and sub_indptr n_sub + 1")
    if fs.latency_s is not None and fs.latency_s.shape != (n_sub,):
        raise ValueError("latency_s must have one entry per subflow")
    ptr = fs.sub_indptr
    if ptr[0] != 0 or ptr[-1] != fs.sub_links.shape[0] or np.any(np.diff(ptr) < 0):
        raise ValueError("sub_indptr must rise from 0 to len(sub_links)")


def _check_flowset(fs: FlowSet) -> None:
    """Shapes, ranges and the per-flow weight sums (link ids are checked against capacity)."""
    _check_shapes(fs)
    if not np.all(np.isfinite(fs.bytes_) & (fs.bytes_ >= 0)):
        raise ValueError("bytes_ must be finite and >= 0")
    if fs.n_sub and (fs.sub_flow.min() < 0 or fs.sub_flow.max() >= fs.n_flows):
        raise ValueError("sub_flow holds a flow index out of range")
    if not np.all(np.isfinite(fs.sub_weight) & (fs.sub_weight >= 0)):
        raise ValueError("sub_weight must be finite and >= 0")
    if fs.latency_s is not None and not np.all(np.isfinite(fs.latency_s) & (fs.latency_s >= 0)):
        raise ValueError("latency_s must be finite and >= 0")
    if fs.sub_links.size and fs.sub_links.min() < 0:
        raise ValueError("sub_links holds a negative link id")
    weight_sum = np.bincount(fs.sub_flow, weights=fs.sub_weight, minlength=fs.n_flows)
    bad = np.flatnonzero((fs.bytes_ > 0) & (np.abs(weight_sum - 1.0) > WEIGHT_SUM_ATOL))
    if bad.size:
        f = int(bad[0])
        raise ValueError(f"subflow weights of flow {f} sum to {weight_sum[f]!r}, not 1")


def _check_capacity(capacity_bytes_per_s: npt.ArrayLike, flows: FlowSet) -> FloatArray:
    cap = np.ascontiguousarray(capacity_bytes_per_s, dtype=np.float64)
    if cap.ndim != 1:
        raise ValueError("capacity_bytes_per_s must be one-dimensional")
    if not np.all(np.isfinite(cap) & (cap >= 0)):
        raise ValueError("capacity_bytes_per_s must be finite and >= 0")
    if flows.sub_links.size and flows.sub_links.max() >= cap.shape[0]:
        raise ValueError(f"link id {int(flows.sub_links.max())} is out of range: only "
                         f"{cap.shape[0]} links have a capacity")
    return cap


def _entry_rows(indptr: IntArray) -> IntArray:
    """Row (subflow) index of every CSR entry."""
    n_rows = indptr.shape[0] - 1
    return np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))


def _compact(links: IntArray, rows: IntArray, keep: BoolArray) -> tuple[IntArray, IntArray]:
    """Drop the rows not in ``keep`` from an entry list and renumber the rest 0, 1, ..."""
    keep_entry = keep[rows]
    new_row = np.cumsum(keep, dtype=np.int64) - 1
    return links[keep_entry], new_row[rows[keep_entry]]


def _fill_round(remaining: FloatArray, capacity: FloatArray,
                links: IntArray) -> tuple[float, BoolArray]:
    """One progressive-filling step: the common increment and the links it saturates.

    Updates ``remaining`` in place (saturated links are set to exactly 0).
    """
    count = np.bincount(links, minlength=capacity.shape[0])
    used = np.flatnonzero(count)
    used_count = count[used].astype(np.float64)
    increment = max(float(np.min(remaining[used] / used_count)), 0.0)
    remaining[used] -= increment * used_count
    saturated = np.zeros(capacity.shape[0], dtype=np.bool_)
    saturated[used] = remaining[used] <= SATURATION_RTOL * capacity[used]
    remaining[saturated] = 0.0
    return increment, saturated


def _progressive_fill(capacity: FloatArray, links: IntArray, rows: IntArray,
                      n_rows: int) -> FloatArray:
    """Max-min fair rates of ``n_rows`` subflows, each with at least one entry in ``links``."""
    rates = np.zeros(n_rows, dtype=np.float64)
    remaining = capacity.copy()
    row_id = np.arange(n_rows, dtype=np.int64)
    level = 0.0
    while row_id.size:
        increment, saturated = _fill_round(remaining, capacity, links)
        level += increment
        frozen = np.zeros(row_id.shape[0], dtype=np.bool_)
        frozen[rows[saturated[links]]] = True
        rates[row_id[frozen]] = level
        keep = ~frozen
        links, rows = _compact(links, rows, keep)
        row_id = row_id[keep]
    return rates


def max_min_rates(capacity_bytes_per_s: npt.ArrayLike, flows: FlowSet,
                  active: npt.ArrayLike) -> FloatArray:
    """Max-min fair rate (bytes/s) of every subflow; inactive subflows get 0.

    A subflow with no links is limited by nothing and gets rate +inf (``simulate`` treats it
    as instantaneous). An active subflow crossing a zero-capacity link gets rate 0.
    """
    cap = _check_capacity(capacity_bytes_per_s, flows)
    act = np.asarray(active, dtype=np.bool_)
    if act.shape != (flows.n_sub,):
        raise ValueError(f"active must have shape ({flows.n_sub},), got {act.shape}")
    has_links = np.diff(flows.sub_indptr) > 0
    rates = np.zeros(flows.n_sub, dtype=np.float64)
    rates[act & ~has_links] = np.inf
    filled = act & has_links
    links, rows = _compact(flows.sub_links, _entry_rows(flows.sub_indptr), filled)
    rates[filled] = _progressive_fill(cap, links, rows, int(np.count_nonzero(filled)))
    return rates


def _check_no_dead_links(cap: FloatArray, flows: FlowSet, sub_bytes: FloatArray) -> None:
    """Raise if a subflow with bytes to move crosses a zero-capacity link."""
    dead = cap[flows.sub_links] == 0
    if not dead.any():
        return
    rows = _entry_rows(flows.sub_indptr)
    hit = np.flatnonzero(dead & (sub_bytes[rows] > 0))
    if hit.size:
        e = int(hit[0])
        j = int(rows[e])
        raise ValueError(
            f"link {int(flows.sub_links[e])} has capacity 0 but subflow {j} of flow "
            f"{int(flows.sub_flow[j])} must send {sub_bytes[j]!r} bytes over it; remove "
            "failed links from the routes")


def _transfer_times(cap: FloatArray, flows: FlowSet, sub_bytes: FloatArray,
                    max_events: int) -> tuple[FloatArray, int]:
    """Event loop: per subflow, when its last byte is delivered; and the number of events."""
    done_s = np.zeros(flows.n_sub, dtype=np.float64)
    live = (sub_bytes > 0) & (np.diff(flows.sub_indptr) > 0)
    idx = np.flatnonzero(live)
    links, rows = _compact(flows.sub_links, _entry_rows(flows.sub_indptr), live)
    left = sub_bytes[idx]
    t_s, events = 0.0, 0
    while idx.size:
        if events >= max_events:
            raise RuntimeError(f"simulation needs more than max_events={max_events} events "
                               f"({idx.size} subflows still active at t={t_s!r} s)")
        rate = _progressive_fill(cap, links, rows, idx.shape[0])
        events += 1
        to_go_s = left / rate
        dt_s = float(to_go_s.min())
        t_s += dt_s
        finished = to_go_s <= dt_s + FINISH_RTOL * t_s
        done_s[idx[finished]] = t_s
        keep = ~finished
        left = (left - rate * dt_s)[keep]
        links, rows = _compact(links, rows, keep)
        idx = idx[keep]
    return done_s, events


def _link_stats(cap: FloatArray, flows: FlowSet, sub_bytes: FloatArray,
                makespan_s: float) -> tuple[FloatArray, FloatArray, int]:
    """Bytes per link, utilization over the makespan, and the most utilized link."""
    rows = _entry_rows(flows.sub_indptr)
    link_bytes = np.bincount(flows.sub_links, weights=sub_bytes[rows], minlength=cap.shape[0])
    util = np.zeros(cap.shape[0], dtype=np.float64)
    ok = cap > 0
    if makespan_s > 0:
        util[ok] = link_bytes[ok] / (cap[ok] * makespan_s)
    bottleneck = int(np.argmax(util)) if util.size and util.max() > 0 else -1
    return link_bytes, util, bottleneck


def simulate(capacity_bytes_per_s: npt.ArrayLike, flows: FlowSet, *,
             max_events: int = 100_000) -> FlowResult:
    """Fluid simulation of ``flows`` over links of the given capacities.

    All flows start at t = 0; rates are max-min fair among active subflows and are recomputed
    at each event (a subflow finishes). A subflow finishes at its transfer completion plus its
    ``latency_s`` (latency does not occupy bandwidth). Subflows with no bytes or no links take
    no transfer time. Raises ValueError naming the link if a subflow with bytes crosses a link
    of capacity 0, and RuntimeError if more than ``max_events`` events are needed.
    """
    cap = _check_capacity(capacity_bytes_per_s, flows)
    sub_bytes = flows.bytes_[flows.sub_flow] * flows.sub_weight
    _check_no_dead_links(cap, flows, sub_bytes)
    done_s, events = _transfer_times(cap, flows, sub_bytes, max_events)
    if flows.latency_s is not None:
        done_s += flows.latency_s
    finish_s = np.zeros(flows.n_flows, dtype=np.float64)
    np.maximum.at(finish_s, flows.sub_flow, done_s)
    makespan_s = float(finish_s.max()) if finish_s.size else 0.0
    link_bytes, util, bottleneck = _link_stats(cap, flows, sub_bytes, makespan_s)
    return FlowResult(finish_s=finish_s, makespan_s=makespan_s, link_bytes=link_bytes,
                      link_utilization=util, bottleneck_link=bottleneck, events=events)
