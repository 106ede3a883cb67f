"""Collective algorithms on a placement, costed with calibrated protocols.

Model (alpha-beta per algorithm, Thakur, Rabenseifner & Gropp, IJHPCA 2005; Hockney 1994),
with the bandwidth term taken at the **bottleneck link class of the actual placement**:

    t = min over protocols p ( alpha_p + wire_s / efficiency_p ) + extra_steps * hop_latency_s

``wire_s`` is the algorithm's bytes through its bottleneck divided by that link's nominal
one-direction bandwidth; ``alpha_p`` and ``efficiency_p`` come from measurements
(``superpod/calibration/collectives.yaml``), never per case. A ring that crosses domains is
limited per rank by ``min(b_up, m * b_out)``: each domain's crossing edges can use all of the
domain's NICs (NCCL's multiple channels).

Which calibration an algorithm may use (what NCCL's tuner would see on that platform):
point-to-point algorithms (ring, tree, halving-doubling, direct, hierarchical) move data with
the same copy protocols (LL / LL128 / Simple) and use the fabric's ring fit; in-network
reduction (NVLS) has its own wire term and needs its own fit, or one borrowed from NVLS on
the nearest generation of the same fabric family. An NVLS without either does not compete in
``auto`` (it is costed with the documented defaults, flagged, only when asked for by name).
NVLS fixed costs grow with the ranks (one multicast synchronisation per member; the 8-GPU
NVLink 4 and 72-GPU NVLink 5 fits both give 8-9 us per rank for the Simple protocol).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

from superpod.hardware.system import System
from superpod.network.calibration import (
    CollectiveCalibration,
    Lookup,
    Protocol,
    load_collective_calibration,
    lookup_fit,
    lookup_link,
)
from superpod.network.placement import (
    CollectiveRequest,
    CollectiveResult,
    Levels,
    Wire,
    levels,
    make_result,
)
from superpod.trust.holdout import excluded


def _ring(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Ring (pipelined). Across domains every domain's crossing edges share its m NICs."""
    n, s = lv.n, req.bytes_
    factor = {"all_reduce": 2 * (n - 1) / n, "all_gather": (n - 1) / n,
              "reduce_scatter": (n - 1) / n, "broadcast": 1.0}.get(req.op)
    if factor is None:
        return None
    steps = {"all_reduce": 2 * (n - 1), "broadcast": n - 1}.get(req.op, n - 1)
    up_s = factor * s / lv.b_up_bytes_per_s
    if lv.g == 1:
        return Wire(((up_s, 0.0),), steps, factor * s, 0.0)
    # each of the m channels leaves a domain from a different rank, over its NIC: a rank
    # sends (m-1)/m of its ring traffic over the scale-up links and 1/m over its NIC
    up_share = (lv.m - 1) / lv.m
    out_s = factor * s / (lv.m * lv.b_out_bytes_per_s)
    return Wire(((up_s * up_share, out_s),), steps, factor * s * up_share, factor * s / lv.m)


def _tree(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Double binary tree (NCCL): ring-like bandwidth, logarithmic latency."""
    if req.op not in ("all_reduce", "broadcast"):
        return None
    w = _ring(req, lv)
    assert w is not None
    steps = 2 * math.ceil(math.log2(max(2, lv.n)))
    return replace(w, steps=steps if req.op == "all_reduce" else steps // 2)


def _halving_doubling(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Recursive halving-doubling (Rabenseifner): power-of-two ranks, one partner a step."""
    if lv.n & (lv.n - 1) or req.op not in ("all_reduce", "all_gather", "reduce_scatter"):
        return None
    w = _ring(req, lv)
    assert w is not None
    steps = math.ceil(math.log2(lv.n)) * (2 if req.op == "all_reduce" else 1)
    phases = tuple((u / lv.pair_fraction, o) for u, o in w.phases)
    return replace(w, phases=phases, steps=steps)


def _nvls(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """In-network reduction inside one switched domain (NVLink SHARP: multimem load-reduce,
    then multicast store). A rank's egress carries its whole buffer (the switch pulls every
    shard) plus its own shard, S (n + 1) / n; its ingress the same. Needs multicast-capable
    switches (``in_network_reduction``) and, as NCCL requires, more than two GPUs."""
    if not lv.in_network_reduction or lv.g > 1 or req.op != "all_reduce" or lv.n <= 2:
        return None
    through = req.bytes_ * (lv.n + 1) / lv.n
    return Wire(((through / lv.b_up_bytes_per_s, 0.0),), 1, through, 0.0)


def _direct(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """One-shot: every rank exchanges directly with every other (all-to-all, send/recv)."""
    n, s = lv.n, req.bytes_
    if req.op == "send_recv":
        if lv.g == 1:
            return Wire(((s / (lv.b_up_bytes_per_s * lv.pair_fraction), 0.0),), 1, s, 0.0)
        return Wire(((0.0, s / lv.b_out_bytes_per_s),), 1, 0.0, s)
    if req.op != "all_to_all":
        return None
    local, remote = (lv.m - 1) / n * s, (n - lv.m) / n * s
    up_s = local / lv.b_up_bytes_per_s * lv.all_to_all_load
    return Wire(((up_s, remote / lv.b_out_bytes_per_s),), 1, local, remote)


def _hierarchical(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """Reduce-scatter inside each domain, all-reduce across domains, all-gather inside. NCCL
    pipelines the three over chunks, so the link classes run concurrently: one phase."""
    if lv.g == 1 or req.op != "all_reduce":
        return None
    s, m, g = req.bytes_, lv.m, lv.g
    inner = 2 * (m - 1) / m * s
    cross = 2 * (g - 1) / g * (s / m)
    return Wire(((inner / lv.b_up_bytes_per_s, cross / lv.b_out_bytes_per_s),),
                2 * (m - 1) + 2 * (g - 1), inner, cross)


def _nvls_tree(req: CollectiveRequest, lv: Levels) -> Wire | None:
    """NVLS inside each switched domain (multicast reduce-scatter and all-gather, S (m+1)/m
    per rank) with each rank's shard S/m all-reduced across domains over its NIC by NCCL's
    double binary tree, pipelined (NCCL's NVLSTree): one concurrent phase. Tree traffic per
    NIC and direction: the data is halved over two trees; a domain is an inner node of one
    (two children in, one parent out, then the reverse) and a leaf of the other, 2 S/m in
    all; with two domains, one root and one leaf, S/m."""
    if not lv.in_network_reduction or lv.g == 1 or req.op != "all_reduce" or lv.m <= 2:
        return None
    s, m, g = req.bytes_, lv.m, lv.g
    inner = s * (m + 1) / m
    cross = (1.0 if g == 2 else 2.0) * s / m
    return Wire(((inner / lv.b_up_bytes_per_s, cross / lv.b_out_bytes_per_s),),
                1 + 2 * math.ceil(math.log2(g)), inner, cross)


AlgorithmFn = Callable[[CollectiveRequest, Levels], Wire | None]
#: name -> cost function; ``None`` from a function means "does not apply here".
ALGORITHMS: dict[str, AlgorithmFn] = {
    "ring": _ring, "tree": _tree, "halving_doubling": _halving_doubling, "nvls": _nvls,
    "direct": _direct, "hierarchical": _hierarchical, "nvls_tree": _nvls_tree,
}


# ----------------------------------------------------------------------------- evaluation

#: the calibration an algorithm's protocols come from (point-to-point copies: the ring fit)
CALIBRATED_AS = {"ring": "ring", "tree": "ring", "halving_doubling": "ring", "direct": "ring",
                 "hierarchical": "ring", "nvls": "nvls", "nvls_tree": "nvls"}
#: algorithms that may not compete in ``auto`` without a calibration of their own kind
NEEDS_OWN_FIT = frozenset({"nvls", "nvls_tree"})


_CACHE: dict[tuple[object, ...], object] = {}


def _cached(key: tuple[object, ...], make: Callable[[], object]) -> object:
    """Memo of pure lookups keyed by calibration object, inputs and the held-out set."""
    hit = _CACHE.get(key)
    if hit is None:
        if len(_CACHE) > 8192:
            _CACHE.clear()
        hit = _CACHE[key] = make()
    return hit


def _up_protocols(cal: CollectiveCalibration, lv: Levels, algorithm: str
                  ) -> tuple[tuple[Protocol, ...], Lookup]:
    """The scale-up protocols for ``algorithm`` (alpha scaled to the ranks where the fit's
    fixed costs grow with them), and the lookup that found them."""
    key = ("up", id(cal), lv.up_key, algorithm, lv.n, excluded())
    return _cached(key, lambda: _up_protocols_uncached(cal, lv, algorithm))  # type: ignore[return-value]


def _up_protocols_uncached(cal: CollectiveCalibration, lv: Levels, algorithm: str
                           ) -> tuple[tuple[Protocol, ...], Lookup]:
    look = lookup_fit(cal, lv.up_key, CALIBRATED_AS.get(algorithm, algorithm))
    if look.origin == "none":
        default = Protocol.model_construct(protocol="default", alpha_s=cal.defaults.alpha_s,
                                           efficiency=cal.defaults.efficiency)
        return (default,), look
    if look.alpha_per_rank and lv.m != look.ranks:  # the multicast group: a domain's ranks
        scale = lv.m / look.ranks
        return tuple(Protocol.model_construct(protocol=p.protocol, alpha_s=p.alpha_s * scale,
                                              efficiency=p.efficiency)
                     for p in look.protocols), look
    return look.protocols, look


def _out_protocol(cal: CollectiveCalibration, lv: Levels) -> tuple[Protocol, str | None]:
    """The scale-out link's sustained efficiency (own fit, else the nearest generation's,
    else the default) with the documented fixed cost, and a note when not its own."""
    key = ("out", id(cal), lv.out_key, excluded())
    return _cached(key, lambda: _out_protocol_uncached(cal, lv))  # type: ignore[return-value]


def _out_protocol_uncached(cal: CollectiveCalibration, lv: Levels
                           ) -> tuple[Protocol, str | None]:
    link, origin = lookup_link(cal, lv.out_key)
    if link is None:
        return Protocol.model_construct(protocol="default", alpha_s=cal.defaults.alpha_s,
                                        efficiency=cal.defaults.scale_out_efficiency), \
            "scale-out: not calibrated; documented default efficiency"
    note = None if origin == "own" else (
        f"scale-out: efficiency borrowed from {link.fabric} (nearest generation), "
        f"{link.source.split(';')[0].split(' ')[0]}")
    return Protocol.model_construct(protocol="link", alpha_s=cal.defaults.alpha_s,
                                    efficiency=link.efficiency), note


@lru_cache(maxsize=4096)
def _latency_steps(algorithm: str, op: str, n: int) -> int:
    req = CollectiveRequest(op=op, ranks=n, bytes_=1.0)
    lv = Levels(n, n, 1, 1.0, 1.0, 0, 0, True, 1.0, 1.0, "", "", None, None)
    w = ALGORITHMS[algorithm](req, lv)
    return w.steps if w else 1


def estimate(system: System, req: CollectiveRequest, algorithm: str,
             cal: CollectiveCalibration | None = None, *, competing: bool = False,
             placement: Levels | None = None) -> CollectiveResult | None:
    """Cost of ``req`` with one named algorithm, or None where it does not apply (or, with
    ``competing``, where it may not compete in ``auto`` for want of its own calibration).
    ``placement``: ``levels(system, req)`` when the caller has it already.

    t = min over scale-up protocols p of  max(alpha_p, alpha_out) + sum over phases of
    max(up_s / e_p, out_s / e_out)  + extra steps x hop latency. Taking the max of the
    two link classes (not the cost of whichever is the bottleneck) keeps the time monotone
    in every bandwidth.
    """
    cal = cal or load_collective_calibration()
    lv = placement or levels(system, req)
    w = ALGORITHMS[algorithm](req, lv)
    if w is None:
        return None
    uses_up = any(u > 0 for u, _ in w.phases)
    uses_out = any(o > 0 for _, o in w.phases)
    ups, look = _up_protocols(cal, lv, algorithm)
    if competing and uses_up and algorithm in NEEDS_OWN_FIT and look.origin == "none":
        return None
    out_p, out_note = _out_protocol(cal, lv)

    a_out = out_p.alpha_s if uses_out else 0.0
    top = max(p.efficiency for p in ups)
    best, best_t, e_out = ups[0], math.inf, out_p.efficiency
    for p in ups:
        # a protocol's overhead (LL: a flag per data word) is paid on every wire it uses:
        # the NIC sustains its efficiency with the best protocol, less with the others
        e_o = out_p.efficiency * p.efficiency / top
        c = max(p.alpha_s if uses_up else 0.0, a_out) + w.seconds(p.efficiency, e_o)
        if c < best_t:
            best, best_t, e_out = p, c, e_o
    hop = max(lv.hop_up_s, lv.hop_out_s) if uses_out else lv.hop_up_s
    fit_ranks = look.ranks if look.origin != "none" else 1
    extra = max(0, w.steps - _latency_steps(algorithm, req.op, fit_ranks)) * hop
    t = best_t + extra
    kind = CALIBRATED_AS.get(algorithm, algorithm)
    up_cal = look.origin == "own" and kind in (algorithm, "nvls")  # NVLSTree: NVLS's own fit
    calibrated = (up_cal or not uses_up) and (out_note is None or not uses_out)
    notes: list[str] = []
    if uses_up:
        what = f"{lv.up_key or 'scale-up'} {algorithm}"
        if look.origin != "none" and kind == "ring" != algorithm:
            notes.append(f"{what}: protocols of the ring fit (same point-to-point copies)")
        elif look.origin != "none" and kind != algorithm:
            notes.append(f"{what}: protocols of the {kind} fit (its in-domain part)")
        if (n := look.note(what)) is not None:
            notes.append(n)
    if uses_out and out_note is not None:
        notes.append(out_note)
    level = w.level(best.efficiency, e_out)
    return make_result(req, lv, algorithm, best.protocol, t, level, w, calibrated, tuple(notes),
                       alpha_s=max(best.alpha_s if uses_up else 0.0, a_out),
                       step_latency_s=extra, efficiency=best.efficiency, efficiency_out=e_out)
