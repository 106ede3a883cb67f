"""``plan train``: the best layouts of the whole layout space, by branch and bound.

The space (axes as data, ``Space``): tp, pp, every virtual-stage count that fits the layers,
dp, cp, ep, etp, micro-batch, ZeRO 0-3, recompute none / selective / op / full, pipeline
schedule (1F1B, interleaved, zero-bubble, DualPipe), TP communication overlap on and off,
and every distinct rank placement order. Each layout goes through the same pure
``evaluate_train``; the search only decides which layouts need not be costed.

A *group* fixes the structure (tp, pp, vpp, dp, cp, ep, etp, micro-batch, schedule); its
layouts differ in placement order, TP overlap, ZeRO stage and recompute. Every term of
``evaluate_train``'s step time is non-negative and its compute (forward + backward, with
the expert all-to-all, which depends on neither order nor overlap) is the same for all of a
group's layouts, so

    step >= C (1 + bubble_slots / m) + optimizer(ZeRO >= 1)

with C the group's compute and expert traffic at vpp = 1 (more virtual stages never put
fewer layers on the slowest rank: ceil(L / (p v)) v >= ceil(L / p)) and m its micro-batches.
That bound costs one timeline per (tp, pp, cp, ep, etp, micro-batch, DualPipe or not),
shared by every vpp, schedule, order, overlap, ZeRO and recompute choice. Groups are
expanded best bound first; once the bound reaches the K-th best step time found, the group
and every later one are pruned. Inside a group (``evaluate_train`` only: another evaluator,
e.g. the offload one, changes what memory and recompute trade, so it gets the group bound
alone):

* memory is checked without the timeline; layouts that do not fit are infeasible;
* recompute never shortens a step (it adds time, and the communication it can hide is at
  most the time it adds): none <= selective, op <= full; a layout whose cheaper recompute
  neighbour already reached the K-th best is pruned;
* ZeRO-1 and ZeRO-2 cost the same time (the same reduce-scatter / all-gather and sharded
  optimizer) and ZeRO-2 holds less: ZeRO-1 is pruned as dominated.

``plan_train(..., exhaustive=True)`` costs every layout (tests check both agree on the best).
Collective costs and GEMM times are memoised inside the evaluator.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from superpod.degrees import divisors, powers_of_two
from superpod.errors import Infeasible
from superpod.hardware.system import System
from superpod.train.modelfacts import ModelFacts, model_facts
from superpod.train.plan import ORDER_DIMS, TrainPlan, check_plan
from superpod.train.step import (
    TrainResult,
    bubble_slots,
    compute_bound_terms,
    evaluate_train,
    memory_fits,
    placement_signature,
)
from superpod.workload.model import ModelSpec

MICRO_BATCHES = (1, 2, 4, 8, 16)
ZERO_STAGES = (0, 1, 2, 3)
RECOMPUTE = ("none", "selective", "op", "full")
#: recompute choices never faster than each one (the partial order of the module doc)
RECOMPUTE_BELOW = {"none": (), "selective": ("none",), "op": ("none",),
                   "full": ("none", "selective", "op")}
DEFAULT_ORDER = "tp-cp-dp-pp"
MAX_PP = 64
#: virtual-stage counts tried even where they split the layers unevenly (the slowest
#: rank then carries the extra layers); any other count must divide layers / pp evenly
UNEVEN_VPP = (2, 4, 8)
MIN_TOKENS_PER_CP_RANK = 1024  # context parallelism below this splits attention too thin

Evaluate = Callable[..., "TrainResult | Infeasible"]
Progress = Callable[[int, int], None]


@dataclass
class SearchResult:
    """The best layouts and what happened to the rest. ``considered`` = ``evaluated``
    (costed by the timeline) + ``pruned`` (shown unable to enter the top K, never costed)
    + the infeasible ones (by reason, in ``infeasible``)."""

    candidates: list[TrainResult]
    infeasible: Counter[str] = field(default_factory=Counter)
    evaluated: int = 0
    pruned: int = 0
    considered: int = 0
    bound_evaluations: int = 0  # timelines run for bounds only

    def layouts(self) -> dict[str, int]:
        return {"considered": self.considered, "evaluated": self.evaluated,
                "pruned": self.pruned, "infeasible": sum(self.infeasible.values())}

    def to_dict(self) -> dict[str, object]:
        return {"candidates": [c.to_dict() for c in self.candidates],
                "infeasible": dict(self.infeasible.most_common()),
                "evaluated": self.evaluated, "layouts": self.layouts(),
                "bound_evaluations": self.bound_evaluations}


@dataclass(frozen=True)
class Group:
    """A layout's structure; its layouts vary order, TP overlap, ZeRO and recompute."""

    tp: int
    pp: int
    vpp: int
    dp: int
    cp: int
    ep: int
    etp: int
    micro_batch: int
    schedule: str

    def plan(self, global_batch: int, seq_len: int, precision: str, *, order: str,
             overlap: bool, zero: int, recompute: str) -> TrainPlan:
        return TrainPlan(tp=self.tp, pp=self.pp, vpp=self.vpp, dp=self.dp, cp=self.cp,
                         ep=self.ep, etp=self.etp, sequence_parallel=self.tp > 1,
                         zero=zero, micro_batch=self.micro_batch, global_batch=global_batch,
                         seq_len=seq_len, recompute=recompute, precision=precision,
                         pp_schedule=self.schedule, tp_comm_overlap=overlap, order=order)


def orders(g: Group) -> list[str]:
    """The group's distinct placement orders (``_orders``)."""
    return list(_orders(g.tp > 1, g.cp > 1, g.dp > 1, g.pp > 1))


@functools.lru_cache(maxsize=16)
def _orders(tp: bool, cp: bool, dp: bool, pp: bool) -> tuple[str, ...]:
    """Distinct placement orders: permutations of the dimensions with degree > 1 (a degree-1
    dimension places nothing). The identity keeps the default string; otherwise degree-1
    dimensions go last, where their stride cannot stand in for a real group's."""
    deg = {"tp": tp, "cp": cp, "dp": dp, "pp": pp}
    real = [d for d in DEFAULT_ORDER.split("-") if deg[d]]
    ones = [d for d in DEFAULT_ORDER.split("-") if not deg[d]]
    out = []
    for perm in itertools.permutations(real):
        out.append(DEFAULT_ORDER if list(perm) == real else "-".join([*perm, *ones]))
    return tuple(out) or (DEFAULT_ORDER,)


def _inner_size(g: Group, overlaps: int) -> int:
    return len(orders(g)) * (overlaps if g.tp > 1 else 1) * len(ZERO_STAGES) * len(RECOMPUTE)


def _schedules(f: ModelFacts, pp: int) -> list[tuple[str, int]]:
    if pp == 1:
        return [("1f1b", 1)]
    out = [("1f1b", 1), ("zero_bubble", 1)]
    if pp % 2 == 0:
        out.append(("dualpipe", 1))
    out += [("interleaved", v) for v in range(2, f.layers // pp + 1)
            if f.layers % (pp * v) == 0 or v in UNEVEN_VPP]
    return out


def groups(system: System, model: ModelSpec, global_batch: int, seq_len: int,
           ranks_per_chip: int = 1) -> Iterator[Group]:
    """Every layout structure worth a bound: degrees that multiply to the ranks and pass the
    divisibility rules that need no costing (the rest are reported by ``check_plan``)."""
    f = model_facts(model)
    world = system.counts.chips * ranks_per_chip
    domain = system.counts.chips_per_domain * ranks_per_chip
    tps = [t for t in powers_of_two(min(domain, f.heads)) if world % t == 0]
    pps = sorted({p for p in [*divisors(f.layers, MAX_PP), *powers_of_two(MAX_PP)]
                  if world % p == 0 and p <= f.layers})
    cps = [c for c in powers_of_two(16) if seq_len % (2 * c) == 0 and
           (c == 1 or seq_len // c >= MIN_TOKENS_PER_CP_RANK)]
    eps = [e for e in powers_of_two(min(f.experts, world)) if f.experts % e == 0
           ] if f.experts else [1]
    for tp, pp, cp in itertools.product(tps, pps, cps):
        if world % (tp * pp * cp):
            continue
        dp = world // (tp * pp * cp)
        etps = powers_of_two(tp) if f.experts else [1]
        for (sched, vpp), ep, etp, mb in itertools.product(
                _schedules(f, pp), eps, etps, MICRO_BATCHES):
            if global_batch % (dp * mb) or (tp * cp * dp) % (ep * etp):
                continue
            yield Group(tp, pp, vpp, dp, cp, ep, etp, mb, sched)


def candidates(system: System, model: ModelSpec, global_batch: int, seq_len: int,
               precision: str, ranks_per_chip: int = 1, tp_comm_overlap: bool = True
               ) -> Iterator[TrainPlan]:
    """Every layout of the space (the exhaustive enumeration)."""
    for g in groups(system, model, global_batch, seq_len, ranks_per_chip):
        for order, ov, zero, rec in itertools.product(
                orders(g), _overlaps(g, tp_comm_overlap), ZERO_STAGES, RECOMPUTE):
            yield g.plan(global_batch, seq_len, precision, order=order, overlap=ov,
                         zero=zero, recompute=rec)


def _overlaps(g: Group, allowed: bool) -> tuple[bool, ...]:
    return (True, False) if allowed and g.tp > 1 else (False,)


@dataclass
class _Top:
    """The K best results so far; ``bar`` is the K-th best step time (inf until K)."""

    k: int
    items: list[TrainResult] = field(default_factory=list)

    @property
    def bar(self) -> float:
        return self.items[-1].step_time_s if len(self.items) >= self.k else math.inf

    def add(self, r: TrainResult) -> None:
        if r.step_time_s >= self.bar:
            return
        self.items.append(r)
        self.items.sort(key=lambda x: x.step_time_s)
        del self.items[self.k:]


@dataclass
class _Search:
    system: System
    model: ModelSpec
    global_batch: int
    seq_len: int
    precision: str
    ranks_per_chip: int
    overlap_allowed: bool
    evaluate: Evaluate
    top: _Top
    out: SearchResult
    exact_inner: bool  # evaluate is evaluate_train: memory and dominance rules apply
    _bounds: dict[tuple[int, ...], tuple[float, float] | str] = field(default_factory=dict)

    def plan(self, g: Group, **kw: object) -> TrainPlan:
        return g.plan(self.global_batch, self.seq_len, self.precision, **kw)  # type: ignore[arg-type]

    def bound(self, g: Group) -> float | str:
        """The group's lower bound on step time (module doc), or why it cannot run."""
        dual = g.schedule == "dualpipe"
        key = (g.tp, g.pp, g.cp, g.ep, g.etp, g.micro_batch, int(dual))
        if key not in self._bounds:
            base = replace(g, vpp=1, schedule="dualpipe" if dual else "1f1b")
            p = self.plan(base, order=DEFAULT_ORDER, overlap=False, zero=1, recompute="none")
            res = compute_bound_terms(self.system, self.model, p,
                                      ranks_per_chip=self.ranks_per_chip)
            self.out.bound_evaluations += 1
            if isinstance(res, Infeasible):
                self._bounds[key] = res.reason
            else:
                c, opt = res
                self._bounds[key] = (c, opt if self.exact_inner else 0.0)
        got = self._bounds[key]
        if isinstance(got, str):
            return got
        c, opt = got
        m = self.global_batch // (g.dp * g.micro_batch)
        probe = TrainPlan(pp=g.pp, vpp=g.vpp, pp_schedule=g.schedule)
        return c * (1.0 + bubble_slots(probe) / m) + opt

    def expand(self, g: Group, lb: float) -> None:
        """Cost the group's layouts that can still enter the top K."""
        ovs = _overlaps(g, self.overlap_allowed)
        per_block = len(ZERO_STAGES) * len(RECOMPUTE)
        fits: dict[tuple[int, str], bool] = {}
        if self.exact_inner:
            for zero, rec in itertools.product(ZERO_STAGES, RECOMPUTE):
                p = self.plan(g, order=DEFAULT_ORDER, overlap=False, zero=zero, recompute=rec)
                fits[zero, rec] = memory_fits(self.system, self.model, p,
                                              ranks_per_chip=self.ranks_per_chip)
        if self.exact_inner and len(ovs) == 2:
            ovs = (True,)  # TP overlap never lengthens a step (module doc): off is dominated
            self.out.pruned += len(orders(g)) * per_block
        blocks = [(o, ov) for o in self._distinct_orders(g) for ov in ovs]
        self.out.pruned += (len(orders(g)) - len(blocks) // len(ovs)) * len(ovs) * per_block
        for i, (order, ov) in enumerate(blocks):
            if lb >= self.top.bar:
                self.out.pruned += (len(blocks) - i) * per_block
                return
            known: dict[int, TrainResult] = {}
            if self.exact_inner:
                bound, res = self._block_bound(g, order, ov)
                if bound >= self.top.bar:
                    self.out.pruned += per_block
                    continue
                if res is not None and fits[2, "none"]:
                    known[2] = res  # the bound's own timeline is this layout's result
            for zero in (2, 0, 3, 1):
                self._zero_block(g, order, ov, zero, fits, known.get(zero))

    def _distinct_orders(self, g: Group) -> list[str]:
        """One order per placement signature (orders with the same one cost the same step;
        the others are pruned as equivalent). Any evaluator sees the same placement."""
        seen: dict[tuple[object, ...], str] = {}
        for o in orders(g):
            p = self.plan(g, order=o, overlap=False, zero=1, recompute="none")
            seen.setdefault(placement_signature(self.system, p, self.ranks_per_chip), o)
        return list(seen.values())

    def _block_bound(self, g: Group, order: str, ov: bool
                     ) -> tuple[float, TrainResult | None]:
        """A bound for one (order, overlap) block: its ZeRO-2, no-recompute step less the
        data-parallel communication and overlap interference, the only terms ZeRO changes
        besides the optimizer (smallest at ZeRO >= 1); recompute only adds."""
        p = self.plan(g, order=order, overlap=ov, zero=2, recompute="none")
        res = evaluate_train(self.system, self.model, p, ranks_per_chip=self.ranks_per_chip,
                             check_memory=False)
        self.out.bound_evaluations += 1
        if isinstance(res, Infeasible):
            return math.inf, None
        bd = res.breakdown_s
        return res.step_time_s - bd["dp_comm"] - bd["overlap_interference"], res

    def _zero_block(self, g: Group, order: str, ov: bool, zero: int,
                    fits: dict[tuple[int, str], bool], known: TrainResult | None = None
                    ) -> None:
        times: dict[str, float] = {}
        for rec in RECOMPUTE:
            if self.exact_inner:
                if not fits[zero, rec]:
                    self.out.infeasible["out_of_memory"] += 1
                    continue
                if zero == 1 and fits[2, rec]:
                    self.out.pruned += 1  # ZeRO-2: the same time in less memory
                    continue
                below = [times[b] for b in RECOMPUTE_BELOW[rec] if b in times]
                if below and max(below) >= self.top.bar:
                    self.out.pruned += 1
                    times[rec] = max(below)
                    continue
            if known is not None and rec == "none":
                res: TrainResult | Infeasible = known
            else:
                p = self.plan(g, order=order, overlap=ov, zero=zero, recompute=rec)
                res = self.evaluate(self.system, self.model, p,
                                    ranks_per_chip=self.ranks_per_chip)
            if isinstance(res, Infeasible):
                self.out.infeasible[res.reason] += 1
                continue
            self.out.evaluated += 1
            times[rec] = res.step_time_s
            self.top.add(res)


def plan_train(system: System, model: ModelSpec, global_batch: int, seq_len: int,
               precision: str = "bf16", top: int = 5, ranks_per_chip: int = 1,
               tp_comm_overlap: bool = True, evaluate: Evaluate = evaluate_train,
               exhaustive: bool = False, progress: Progress | None = None) -> SearchResult:
    """The ``top`` fastest feasible layouts of the space, the rest counted (``SearchResult``);
    ``evaluate(system, model, plan, ranks_per_chip=...)`` costs one layout. ``exhaustive``
    costs every layout instead of bounding; ``progress(done, total)`` is told of groups."""
    out = SearchResult(candidates=[])
    best = _Top(top)
    s = _Search(system, model, global_batch, seq_len, precision, ranks_per_chip,
                tp_comm_overlap, evaluate, best, out, exact_inner=evaluate is evaluate_train)
    ovn = 2 if tp_comm_overlap else 1
    todo: list[tuple[float, int, Group]] = []
    all_groups = list(groups(system, model, global_batch, seq_len, ranks_per_chip))
    f = model_facts(model)
    ranks = system.counts.chips * ranks_per_chip
    domain = system.counts.chips_per_domain * ranks_per_chip
    for i, g in enumerate(all_groups):
        n = _inner_size(g, ovn)
        out.considered += n
        probe = s.plan(g, order=DEFAULT_ORDER, overlap=False, zero=1, recompute="none")
        bad = check_plan(probe, ranks, f.layers, f.experts, f.heads, f.kv_heads, domain)
        if bad:
            out.infeasible[bad.reason] += n
            continue
        if exhaustive:
            todo.append((0.0, i, g))
            continue
        lb = s.bound(g)
        if isinstance(lb, str):
            out.infeasible[lb] += n
            continue
        todo.append((lb, i, g))
    todo.sort()
    for j, (lb, _, g) in enumerate(todo):
        if progress is not None:
            progress(j, len(todo))
        if exhaustive:
            for p in candidates_of(s, g):
                res = evaluate(system, model, p, ranks_per_chip=ranks_per_chip)
                if isinstance(res, Infeasible):
                    out.infeasible[res.reason] += 1
                else:
                    out.evaluated += 1
                    best.add(res)
            continue
        if lb >= best.bar:
            out.pruned += sum(_inner_size(h, ovn) for _, _, h in todo[j:])
            break
        s.expand(g, lb)
    if progress is not None:
        progress(len(todo), len(todo))
    out.candidates = best.items
    if out.considered == 0:  # every (tp, pp, cp) left a dp that does not divide the batch
        out.infeasible["no_dp_divides_global_batch"] += 1
    return out


def candidates_of(s: _Search, g: Group) -> Iterator[TrainPlan]:
    """One group's layouts."""
    for order, ov, zero, rec in itertools.product(
            orders(g), _overlaps(g, s.overlap_allowed), ZERO_STAGES, RECOMPUTE):
        yield s.plan(g, order=order, overlap=ov, zero=zero, recompute=rec)


__all__ = ["ORDER_DIMS", "SearchResult", "Group", "candidates", "groups", "orders",
           "plan_train"]
