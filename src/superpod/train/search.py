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

* memory is checked without the timeline (once per ZeRO stage and stored-activation mode:
  recompute none, selective and op store the same); layouts that do not fit are
  infeasible, and a group where nothing fits is infeasible as a whole;
* the data-parallel share of a step (exposed dp communication and the interference of its
  hidden part) is a separate term the group bound leaves out; its least value over the
  group's placements, recompute choices and overlaps (``step.dp_floor_s``) at the ZeRO
  stages that fit is added to the bound before any placement is costed;
* each (order, overlap) block costs one timeline shared by its ZeRO stages
  (``step.step_times_by_zero``: exactly each stage's step without recompute), which bounds
  the block and each stage's recompute choices; only a layout that enters the top K is
  evaluated again for its full result;
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
from dataclasses import dataclass, field
from typing import Any

from superpod.degrees import divisors, powers_of_two
from superpod.errors import Infeasible
from superpod.hardware.system import System
from superpod.train.modelfacts import ModelFacts, model_facts
from superpod.train.plan import ORDER_DIMS, TrainPlan, check_plan, edge_split_only
from superpod.train.step import (
    TrainResult,
    bubble_slots,
    compute_bound_terms,
    dp_floor_s,
    evaluate_train,
    memory_fits_table,
    placement_signature,
    step_times_by_zero,
)
from superpod.workload.model import ModelSpec

MICRO_BATCHES = (1, 2, 4, 8, 16)
ZERO_STAGES = (0, 1, 2, 3)
RECOMPUTE = ("none", "selective", "op", "full")
#: recompute choices never faster than each one (the partial order of the module doc)
RECOMPUTE_BELOW = {"none": (), "selective": ("none",), "op": ("none",),
                   "full": ("none", "selective", "op")}
DEFAULT_ORDER = "tp-cp-dp-pp"
_PROBE = TrainPlan()  # derived (unchecked) for the pipeline shape of a bound
MAX_PP = 64
#: virtual-stage counts tried even where they split the layers unevenly (the slowest
#: rank then carries the extra layers); any other count must divide layers / pp evenly
UNEVEN_VPP = (2, 4, 8)
MIN_TOKENS_PER_CP_RANK = 1024  # context parallelism below this splits attention too thin

@dataclass(frozen=True)
class Space:
    """The layout axes a search covers (axes as data). ``FULL`` is the whole space;
    ``QUICK`` the narrower one ``plan train`` searched before (ZeRO 1 / 3, no op-level
    recompute, micro-batches to 8, the default placement, TP overlap as asked, vpp 1/2/4/8,
    context parallelism only from 8k tokens a rank, etp 1, DualPipe only for MoE models):
    for sweeps and comparisons that run many searches."""

    name: str = "full"
    micro_batches: tuple[int, ...] = MICRO_BATCHES
    zero_stages: tuple[int, ...] = ZERO_STAGES
    recompute: tuple[str, ...] = RECOMPUTE
    all_orders: bool = True
    both_overlaps: bool = True
    every_vpp: bool = True
    min_tokens_per_cp_rank: int = MIN_TOKENS_PER_CP_RANK
    expert_tp: bool = True
    schedules: tuple[str, ...] = ("1f1b", "interleaved", "zero_bubble", "dualpipe")
    dense_dualpipe: bool = True


FULL = Space()
QUICK = Space(name="quick", micro_batches=(1, 2, 4, 8), zero_stages=(1, 3),
              recompute=("none", "selective", "full"), all_orders=False, both_overlaps=False,
              every_vpp=False, min_tokens_per_cp_rank=8192, expert_tp=False,
              schedules=("1f1b", "interleaved", "dualpipe"), dense_dualpipe=False)
SPACES = {"full": FULL, "quick": QUICK}

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
    #: the embedding and the head take a pipeline slot each (``TrainPlan.pp_edge_slots``):
    #: tried where only the two extra slots split the layers evenly over pp x vpp
    edge: bool = False

    def plan(self, global_batch: int, seq_len: int, precision: str, *, order: str,
             overlap: bool, zero: int, recompute: str) -> TrainPlan:
        return TrainPlan(tp=self.tp, pp=self.pp, vpp=self.vpp, dp=self.dp, cp=self.cp,
                         ep=self.ep, etp=self.etp, sequence_parallel=self.tp > 1,
                         zero=zero, micro_batch=self.micro_batch, global_batch=global_batch,
                         seq_len=seq_len, recompute=recompute, precision=precision,
                         pp_schedule=self.schedule, tp_comm_overlap=overlap, order=order,
                         pp_edge_slots=self.edge)


@functools.lru_cache(maxsize=1024)
def _slots(pp: int, vpp: int, schedule: str) -> float:
    """Pipeline-bubble slots of a pipeline shape (``bubble_slots``)."""
    return bubble_slots(_PROBE.derive(pp=pp, vpp=vpp, pp_schedule=schedule))


def orders(g: Group, space: Space = FULL) -> list[str]:
    """The group's distinct placement orders (``_orders``; the default one alone unless the
    space takes every order)."""
    if not space.all_orders:
        return [DEFAULT_ORDER]
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


def _inner_size(g: Group, allowed: bool, space: Space = FULL) -> int:
    """Layouts in one group: orders x TP overlaps x ZeRO stages x recompute choices."""
    n_orders = len(_orders(g.tp > 1, g.cp > 1, g.dp > 1, g.pp > 1)) if space.all_orders else 1
    return (n_orders * len(_overlaps(g, allowed, space))
            * len(space.zero_stages) * len(space.recompute))


def _schedules(f: ModelFacts, pp: int, space: Space = FULL) -> list[tuple[str, int, bool]]:
    """(schedule, virtual stages, edge slots) a pipeline of ``pp`` ranks is tried with."""
    if pp == 1:
        return [("1f1b", 1, False)]
    want = space.schedules
    out: list[tuple[str, int, bool]] = [(x, 1, False) for x in ("1f1b", "zero_bubble")
                                        if x in want]
    if edge_split_only(f.layers, pp):
        out += [(x, 1, True) for x in ("1f1b", "zero_bubble") if x in want]
    if "dualpipe" in want and pp % 2 == 0 and (f.experts or space.dense_dualpipe):
        out.append(("dualpipe", 1, False))
    if "interleaved" in want:
        if space.every_vpp:
            vs = [v for v in range(2, f.layers // pp + 1)
                  if f.layers % (pp * v) == 0 or v in UNEVEN_VPP]
            edges = [v for v in range(2, (f.layers + 2) // pp + 1)
                     if edge_split_only(f.layers, pp * v)]
        else:
            vs = [v for v in UNEVEN_VPP if f.layers >= pp * v * 2]
            edges = [v for v in UNEVEN_VPP if edge_split_only(f.layers, pp * v)]
        out += [("interleaved", v, False) for v in vs]
        out += [("interleaved", v, True) for v in edges]
    return out


def groups(system: System, model: ModelSpec, global_batch: int, seq_len: int,
           ranks_per_chip: int = 1, space: Space = FULL) -> Iterator[Group]:
    """Every layout structure worth a bound: degrees that multiply to the ranks and pass the
    divisibility rules that need no costing (the rest are reported by ``check_plan``)."""
    f = model_facts(model)
    world = system.counts.chips * ranks_per_chip
    domain = system.counts.chips_per_domain * ranks_per_chip
    tps = [t for t in powers_of_two(min(domain, f.heads)) if world % t == 0]
    pps = sorted({p for p in [*divisors(f.layers, MAX_PP), *powers_of_two(MAX_PP)]
                  if world % p == 0 and p <= f.layers})
    cps = [c for c in powers_of_two(16) if seq_len % (2 * c) == 0 and
           (c == 1 or seq_len // c >= space.min_tokens_per_cp_rank)]
    eps = [e for e in powers_of_two(min(f.experts, world)) if f.experts % e == 0
           ] if f.experts else [1]
    for tp, pp, cp in itertools.product(tps, pps, cps):
        if world % (tp * pp * cp):
            continue
        dp = world // (tp * pp * cp)
        etps = powers_of_two(tp) if f.experts and space.expert_tp else [1]
        for (sched, vpp, edge), ep, etp, mb in itertools.product(
                _schedules(f, pp, space), eps, etps, space.micro_batches):
            if global_batch % (dp * mb) or (tp * cp * dp) % (ep * etp):
                continue
            yield Group(tp, pp, vpp, dp, cp, ep, etp, mb, sched, edge)


def candidates(system: System, model: ModelSpec, global_batch: int, seq_len: int,
               precision: str, ranks_per_chip: int = 1, tp_comm_overlap: bool = True,
               space: Space = FULL) -> Iterator[TrainPlan]:
    """Every layout of the space (the exhaustive enumeration)."""
    for g in groups(system, model, global_batch, seq_len, ranks_per_chip, space):
        for order, ov, zero, rec in itertools.product(
                orders(g, space), _overlaps(g, tp_comm_overlap, space), space.zero_stages,
                space.recompute):
            yield g.plan(global_batch, seq_len, precision, order=order, overlap=ov,
                         zero=zero, recompute=rec)


def _overlaps(g: Group, allowed: bool, space: Space = FULL) -> tuple[bool, ...]:
    if g.tp == 1:
        return (False,)
    if not space.both_overlaps:
        return (allowed,)
    return (True, False) if allowed else (False,)


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
    space: Space = FULL
    #: TrainPlan fields every layout shares (a framework's layout-free choices)
    fields: dict[str, Any] = field(default_factory=dict)
    _bounds: dict[tuple[int, ...], tuple[float, float] | str] = field(default_factory=dict)
    _orders: dict[tuple[int, ...], list[str]] = field(default_factory=dict)
    _template: TrainPlan | None = None

    def plan(self, g: Group, *, order: str, overlap: bool, zero: int, recompute: str
             ) -> TrainPlan:
        """``g.plan`` without the plan's own checks: every value comes from the space, and
        ``plan_train`` checks the caller's batch, sequence and precision once."""
        if self._template is None:
            self._template = TrainPlan(global_batch=self.global_batch, seq_len=self.seq_len,
                                       precision=self.precision, **self.fields)
        return self._template.derive(
            tp=g.tp, pp=g.pp, vpp=g.vpp, dp=g.dp, cp=g.cp, ep=g.ep, etp=g.etp,
            sequence_parallel=g.tp > 1, zero=zero, micro_batch=g.micro_batch,
            recompute=recompute, pp_schedule=g.schedule, tp_comm_overlap=overlap,
            order=order, pp_edge_slots=g.edge)

    def bound(self, g: Group) -> float | str:
        """The group's lower bound on step time (module doc), or why it cannot run."""
        dual = g.schedule == "dualpipe"
        key = (g.tp, g.pp, g.cp, g.ep, g.etp, g.micro_batch, int(dual))
        if key not in self._bounds:
            base = Group(g.tp, g.pp, 1, g.dp, g.cp, g.ep, g.etp, g.micro_batch,
                         "dualpipe" if dual else "1f1b")
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
        return c * (1.0 + _slots(g.pp, g.vpp, g.schedule) / m) + opt

    def expand(self, g: Group, lb: float) -> None:
        """Cost the group's layouts that can still enter the top K."""
        sp = self.space
        ovs = _overlaps(g, self.overlap_allowed, sp)
        per_block = len(sp.zero_stages) * len(sp.recompute)
        fits: dict[tuple[int, str], bool] = {}
        if self.exact_inner:
            p = self.plan(g, order=DEFAULT_ORDER, overlap=False, zero=2, recompute="none")
            fits = memory_fits_table(self.system, self.model, p, sp.zero_stages, sp.recompute,
                                     ranks_per_chip=self.ranks_per_chip)
            zeros = tuple(z for z in sp.zero_stages
                          if any(fits[z, rec] for rec in sp.recompute))
            if not zeros:  # memory reads neither order nor overlap: nothing here fits
                self.out.infeasible["out_of_memory"] += _inner_size(g, self.overlap_allowed,
                                                                    sp)
                return
            if self._floor_prunes(g, lb, zeros):
                self.out.pruned += _inner_size(g, self.overlap_allowed, sp)
                return
        if self.exact_inner and len(ovs) == 2:
            ovs = (True,)  # TP overlap never lengthens a step (module doc): off is dominated
            self.out.pruned += len(orders(g, sp)) * per_block
        blocks = [(o, ov) for o in self._distinct_orders(g) for ov in ovs]
        self.out.pruned += (len(orders(g, sp)) - len(blocks) // len(ovs)) * len(ovs) * per_block
        for i, (order, ov) in enumerate(blocks):
            if lb >= self.top.bar:
                self.out.pruned += (len(blocks) - i) * per_block
                return
            none_s: dict[int, float] = {}
            if self.exact_inner:
                none_s = self._block_times(g, order, ov)
                if not none_s or min(none_s[z] for z in zeros) >= self.top.bar:
                    self.out.pruned += per_block
                    continue
            for zero in sorted(sp.zero_stages, key=(2, 0, 3, 1).index):
                self._zero_block(g, order, ov, zero, fits, none_s.get(zero))

    def _floor_prunes(self, g: Group, lb: float, zeros: tuple[int, ...]) -> bool:
        """Whether the group bound plus the least data-parallel share of a step
        (``dp_floor_s``: over the group's placements, recompute choices and TP overlaps)
        reaches the K-th best at every ZeRO stage of ``zeros`` (those whose layouts may
        fit): the share is a separate non-negative term of every layout's step that the
        group bound leaves out. The sum is taken less a relative 1e-12, so that rounding
        never lifts it above a layout's step time. Stages in the order the search tries."""
        p = self.plan(g, order=DEFAULT_ORDER, overlap=False, zero=2, recompute="none")
        for z in sorted(zeros, key=(2, 1, 0, 3).index):
            if z == 1 and 2 in zeros:
                continue  # ZeRO-1's floor is ZeRO-2's (``dp_floor_s``)
            floor = dp_floor_s(self.system, self.model, p, self._distinct_orders(g), (z,),
                               ranks_per_chip=self.ranks_per_chip)[z]
            if (lb + floor) * (1.0 - 1e-12) < self.top.bar:
                return False
        return True

    def _distinct_orders(self, g: Group) -> list[str]:
        """One order per placement signature (orders with the same one cost the same step;
        the others are pruned as equivalent). Any evaluator sees the same placement, which
        reads only tp, cp, dp and pp (memoised on them)."""
        key = (g.tp, g.cp, g.dp, g.pp)
        hit = self._orders.get(key)
        if hit is None:
            seen: dict[tuple[object, ...], str] = {}
            for o in orders(g, self.space):
                p = self.plan(g, order=o, overlap=False, zero=1, recompute="none")
                seen.setdefault(placement_signature(self.system, p, self.ranks_per_chip), o)
            hit = self._orders[key] = list(seen.values())
        return hit

    def _block_times(self, g: Group, order: str, ov: bool) -> dict[int, float]:
        """The step time without recompute of one (order, overlap) block at each ZeRO stage
        of the space (memory unchecked), from one shared timeline: each is exact, and a
        lower bound on the stage's layouts with recompute (recompute only adds). Empty if
        the block cannot run."""
        p = self.plan(g, order=order, overlap=ov, zero=2, recompute="none")
        res = step_times_by_zero(self.system, self.model, p, self.space.zero_stages,
                                 ranks_per_chip=self.ranks_per_chip)
        self.out.bound_evaluations += 1
        return {} if isinstance(res, Infeasible) else res

    def _zero_block(self, g: Group, order: str, ov: bool, zero: int,
                    fits: dict[tuple[int, str], bool], none_s: float | None = None) -> None:
        """The layouts of one (order, overlap, ZeRO) block; ``none_s``: the block's exact
        step time without recompute, where known (``_block_times``)."""
        times: dict[str, float] = {} if none_s is None else {"none": none_s}
        for rec in self.space.recompute:
            if self.exact_inner:
                if not fits[zero, rec]:
                    self.out.infeasible["out_of_memory"] += 1
                    continue
                if zero == 1 and fits.get((2, rec)):
                    self.out.pruned += 1  # ZeRO-2: the same time in less memory
                    continue
                if rec == "none" and none_s is not None:
                    # costed by the block's shared timeline; only a layout that enters the
                    # top K is evaluated again for its full result (the same step time)
                    self.out.evaluated += 1
                    if none_s < self.top.bar:
                        self._add(self.evaluate(
                            self.system, self.model,
                            self.plan(g, order=order, overlap=ov, zero=zero, recompute=rec),
                            ranks_per_chip=self.ranks_per_chip))
                    continue
                below = [times[b] for b in RECOMPUTE_BELOW[rec] if b in times]
                if below and max(below) >= self.top.bar:
                    self.out.pruned += 1
                    times[rec] = max(below)
                    continue
            p = self.plan(g, order=order, overlap=ov, zero=zero, recompute=rec)
            res = self.evaluate(self.system, self.model, p, ranks_per_chip=self.ranks_per_chip)
            if isinstance(res, Infeasible):
                self.out.infeasible[res.reason] += 1
                continue
            self.out.evaluated += 1
            times[rec] = res.step_time_s
            self.top.add(res)

    def _add(self, res: TrainResult | Infeasible) -> None:
        if isinstance(res, Infeasible):  # pragma: no cover - memory was checked as fitting
            raise AssertionError(f"a layout that fits was refused: {res.reason}")
        self.top.add(res)


def plan_train(system: System, model: ModelSpec, global_batch: int, seq_len: int,
               precision: str = "bf16", top: int = 5, ranks_per_chip: int = 1,
               tp_comm_overlap: bool = True, evaluate: Evaluate = evaluate_train,
               exhaustive: bool = False, progress: Progress | None = None,
               space: Space | str = FULL, fields: dict[str, Any] | None = None
               ) -> SearchResult:
    """The ``top`` fastest feasible layouts of ``space`` (``FULL``, ``QUICK`` or their
    names), the rest counted (``SearchResult``); ``evaluate(system, model, plan,
    ranks_per_chip=...)`` costs one layout. ``exhaustive`` costs every layout instead of
    bounding; ``progress(done, total)`` is told of the structures done; ``fields``: plan
    fields every layout shares (``TrainFramework.layout_free_fields``)."""
    sp = SPACES[space] if isinstance(space, str) else space
    fields = dict(fields or {})
    TrainPlan(global_batch=global_batch, seq_len=seq_len, precision=precision,
              **fields)  # checks them
    out = SearchResult(candidates=[])
    best = _Top(top)
    s = _Search(system, model, global_batch, seq_len, precision, ranks_per_chip,
                tp_comm_overlap, evaluate, best, out, exact_inner=evaluate is evaluate_train,
                space=sp, fields=fields)
    ovn = tp_comm_overlap
    todo: list[tuple[float, int, Group]] = []
    all_groups = list(groups(system, model, global_batch, seq_len, ranks_per_chip, sp))
    f = model_facts(model)
    ranks = system.counts.chips * ranks_per_chip
    domain = system.counts.chips_per_domain * ranks_per_chip
    sizes: list[int] = []
    for i, g in enumerate(all_groups):
        n = _inner_size(g, ovn, sp)
        sizes.append(n)
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
            out.pruned += sum(sizes[i] for _, i, _ in todo[j:])
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
    sp = s.space
    for order, ov, zero, rec in itertools.product(
            orders(g, sp), _overlaps(g, s.overlap_allowed, sp), sp.zero_stages, sp.recompute):
        yield s.plan(g, order=order, overlap=ov, zero=zero, recompute=rec)


__all__ = ["FULL", "ORDER_DIMS", "QUICK", "SPACES", "Group", "SearchResult", "Space",
           "candidates", "groups", "orders", "plan_train"]
