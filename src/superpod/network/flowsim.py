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

Numerics. The subflow x link incidence is built once per call in both orientations (CSR by
subflow, CSC by link; the CSC order comes from a 16-bit radix argsort). Progressive filling
tracks, per link, the number of unfrozen subflows (a ``np.bincount`` over their path entries,
i.e. a sparse matrix-vector product with the 0/1 incidence), the rate already frozen on it,
and the level at which it would saturate, ``(capacity - frozen) / unfrozen``. Each round takes
the lowest level, freezes the subflows crossing every link within a relative 1e-9 of it
(found through the CSC), and updates only the links those subflows cross. A rate computation
therefore costs O(nnz + rounds x n_links), with one round per distinct bottleneck level, and
memory stays linear in the path entries (no dense subflow x link matrix). Subflows whose
completion times agree within a relative 1e-12 finish in the same event, so symmetric cases
take one event. The number of events is the number of distinct completion times, so
heterogeneous workloads with many subflows can need many (bounded by ``max_events``).
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


def _ranges(starts: IntArray, stops: IntArray) -> IntArray:
    """Concatenation of ``arange(starts[i], stops[i])`` over i, without a Python loop."""
    if starts.shape[0] == 1:
        return np.arange(starts[0], stops[0], dtype=np.int64)
    lengths = stops - starts
    ends = lengths.cumsum()
    total = int(ends[-1]) if ends.shape[0] else 0
    return np.repeat(starts - ends + lengths, lengths) + np.arange(total, dtype=np.int64)


def _argsort_ids(ids: IntArray, n_ids: int) -> IntArray:
    """Stable argsort of non-negative ids < ``n_ids``: LSD radix sort in 16-bit digits.

    numpy sorts 16-bit keys with a radix sort (O(n)); this is several times faster than a
    comparison argsort of int64 keys for millions of path entries.
    """
    order = np.argsort((ids & 0xFFFF).astype(np.uint16), kind="stable").astype(np.int64)
    shift = 16
    while shift < max(n_ids - 1, 0).bit_length():
        digit = ((ids[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
    return order


@dataclass(frozen=True, eq=False)
class _Incidence:
    """Subflow x link incidence in both orientations: CSR (by subflow) and CSC (by link)."""

    sub_ptr: IntArray  # (n_sub + 1,): entries of subflow j are sub_ptr[j]:sub_ptr[j+1]
    sub_links: IntArray  # (nnz,): link of each CSR entry
    entry_sub: IntArray  # (nnz,): subflow of each CSR entry
    link_ptr: IntArray  # (n_links + 1,): entries of link l are link_ptr[l]:link_ptr[l+1]
    link_subs: IntArray  # (nnz,): subflow of each CSC entry

    @staticmethod
    def build(flows: FlowSet, n_links: int) -> _Incidence:
        entry_sub = np.repeat(np.arange(flows.n_sub, dtype=np.int64), np.diff(flows.sub_indptr))
        order = _argsort_ids(flows.sub_links, n_links)
        per_link = np.bincount(flows.sub_links, minlength=n_links)
        link_ptr = np.concatenate(([0], np.cumsum(per_link))).astype(np.int64)
        return _Incidence(flows.sub_indptr, flows.sub_links, entry_sub, link_ptr,
                          entry_sub[order])


@dataclass(eq=False)
class _FillState:
    """Progressive filling in progress: per link, unfrozen subflows, frozen load, fair level."""

    count: FloatArray  # unfrozen subflows crossing the link
    load: FloatArray  # total rate of frozen subflows crossing the link
    level: FloatArray  # rate at which the link saturates (+inf when count == 0)
    unfrozen: BoolArray  # per subflow
    rates: FloatArray  # per subflow
    scratch: IntArray  # per subflow, uninitialised: used to drop duplicate subflow ids


def _distinct(ids: IntArray, scratch: IntArray) -> IntArray:
    """``ids`` without repeats, in O(len(ids)) (no sort): one position per id survives."""
    pos = np.arange(ids.shape[0], dtype=np.int64)
    scratch[ids] = pos
    first: IntArray = ids[scratch[ids] == pos]
    return first


def _start_fill(cap: FloatArray, n_sub: int, live: BoolArray,
                live_links: IntArray) -> _FillState:
    count = np.bincount(live_links, minlength=cap.shape[0]).astype(np.float64)
    level = np.full(cap.shape[0], np.inf)
    used = count > 0
    level[used] = cap[used] / count[used]
    return _FillState(count=count, load=np.zeros(cap.shape[0]), level=level,
                      unfrozen=live.copy(), rates=np.zeros(n_sub),
                      scratch=np.empty(n_sub, dtype=np.int64))


def _fill_round(st: _FillState, cap: FloatArray, inc: _Incidence) -> int:
    """Saturate the links at the lowest fair level, freeze their subflows; return how many."""
    level = float(st.level.min())
    saturated = (st.level <= level * (1.0 + SATURATION_RTOL)).nonzero()[0]
    subs = inc.link_subs[_ranges(inc.link_ptr[saturated], inc.link_ptr[saturated + 1])]
    new = _distinct(subs[st.unfrozen[subs]], st.scratch)
    st.unfrozen[new] = False
    st.rates[new] = level
    touched = inc.sub_links[_ranges(inc.sub_ptr[new], inc.sub_ptr[new + 1])]
    upd, delta = _nonzero_counts(touched, cap.shape[0])
    left = st.count[upd] - delta
    st.count[upd] = left
    st.load[upd] += level * delta
    fair = (cap[upd] - st.load[upd]) / np.maximum(left, 1.0)
    st.level[upd] = np.where(left > 0, np.maximum(fair, level), np.inf)
    return int(new.shape[0])


def _nonzero_counts(ids: IntArray, n_ids: int) -> tuple[IntArray, IntArray]:
    """The distinct values in ``ids`` and how often each occurs."""
    counts = np.bincount(ids, minlength=n_ids)
    nz = counts.nonzero()[0]
    return nz, counts[nz]


def _progressive_fill(cap: FloatArray, inc: _Incidence, live: BoolArray,
                      live_links: IntArray) -> FloatArray:
    """Max-min fair rates of the ``live`` subflows (each has >= 1 link); 0 for the others.

    ``live_links`` lists the links of the live subflows (one entry per CSR entry). A link
    saturates when its fair level is within a relative 1e-9 of the current level, i.e. its
    leftover capacity is below about 1e-9 of its capacity.
    """
    st = _start_fill(cap, live.shape[0], live, live_links)
    n_left = int(np.count_nonzero(live))
    while n_left:
        frozen = _fill_round(st, cap, inc)
        if frozen == 0:  # cannot happen: the lowest-level link has an unfrozen subflow
            raise RuntimeError("progressive filling made no progress")
        n_left -= frozen
    return st.rates


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
    inc = _Incidence.build(flows, cap.shape[0])
    live = act & has_links
    rates = _progressive_fill(cap, inc, live, inc.sub_links[live[inc.entry_sub]])
    rates[act & ~has_links] = np.inf
    return rates


def _check_no_dead_links(cap: FloatArray, flows: FlowSet, sub_bytes: FloatArray) -> None:
    """Raise if a subflow with bytes to move crosses a zero-capacity link."""
    dead = cap[flows.sub_links] == 0
    if not dead.any():
        return
    rows = np.repeat(np.arange(flows.n_sub, dtype=np.int64), np.diff(flows.sub_indptr))
    hit = np.flatnonzero(dead & (sub_bytes[rows] > 0))
    if hit.size:
        e = int(hit[0])
        j = int(rows[e])
        raise ValueError(
            f"link {int(flows.sub_links[e])} has capacity 0 but subflow {j} of flow "
            f"{int(flows.sub_flow[j])} must send {sub_bytes[j]!r} bytes over it; remove "
            "failed links from the routes")


def _transfer_times(cap: FloatArray, inc: _Incidence, sub_bytes: FloatArray,
                    max_events: int) -> tuple[FloatArray, int]:
    """Event loop: per subflow, when its last byte is delivered; and the number of events."""
    done_s = np.zeros(sub_bytes.shape[0], dtype=np.float64)
    live = (sub_bytes > 0) & (np.diff(inc.sub_ptr) > 0)
    idx = np.flatnonzero(live)
    entries = np.flatnonzero(live[inc.entry_sub])
    left = sub_bytes[idx]
    t_s, events = 0.0, 0
    while idx.size:
        if events >= max_events:
            raise RuntimeError(f"simulation needs more than max_events={max_events} events "
                               f"({idx.size} subflows still active at t={t_s!r} s)")
        rate = _progressive_fill(cap, inc, live, inc.sub_links[entries])[idx]
        events += 1
        to_go_s = left / rate
        dt_s = float(to_go_s.min())
        t_s += dt_s
        finished = to_go_s <= dt_s + FINISH_RTOL * t_s
        done_s[idx[finished]] = t_s
        live[idx[finished]] = False
        left = (left - rate * dt_s)[~finished]
        idx = idx[~finished]
        entries = entries[live[inc.entry_sub[entries]]]
    return done_s, events


def _link_stats(cap: FloatArray, inc: _Incidence, sub_bytes: FloatArray,
                makespan_s: float) -> tuple[FloatArray, FloatArray, int]:
    """Bytes per link, utilization over the makespan, and the most utilized link."""
    link_bytes = np.bincount(inc.sub_links, weights=sub_bytes[inc.entry_sub],
                             minlength=cap.shape[0]).astype(np.float64)
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
    inc = _Incidence.build(flows, cap.shape[0])
    done_s, events = _transfer_times(cap, inc, sub_bytes, max_events)
    if flows.latency_s is not None:
        done_s += flows.latency_s
    finish_s = np.zeros(flows.n_flows, dtype=np.float64)
    np.maximum.at(finish_s, flows.sub_flow, done_s)
    makespan_s = float(finish_s.max()) if finish_s.size else 0.0
    link_bytes, util, bottleneck = _link_stats(cap, inc, sub_bytes, makespan_s)
    return FlowResult(finish_s=finish_s, makespan_s=makespan_s, link_bytes=link_bytes,
                      link_utilization=util, bottleneck_link=bottleneck, events=events)
