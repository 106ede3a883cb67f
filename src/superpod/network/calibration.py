"""Collective calibration data: fitted protocols per fabric and algorithm, with provenance.

Reads ``superpod/calibration/collectives.yaml`` (format described at its top). Every fit
stores the measured points it comes from and the document they are from (``source``, URL
first); ``refit`` reproduces the stored constants (a test checks that it does).

Lookups honour leave-one-source-out: a fit whose source is held out
(``superpod.trust.holdout.held_out``) is invisible. An algorithm with no visible fit on a
fabric borrows the same algorithm's fit from the nearest generation of the same fabric
family (NVLink 4 from NVLink 5 or 3, NDR from XDR or HDR), and the lookup says what it
borrowed and from where; with nothing to borrow it reports "uncalibrated" and the caller
uses the documented defaults (or, for an algorithm that may not compete uncalibrated, drops
it: the ring's efficiency is never put on NVLS's wire term).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from superpod.hardware.loading import read_model_file
from superpod.hardware.specs import BytesPerS, Evidence, Seconds
from superpod.trust.holdout import excluded, held_out, kept

if TYPE_CHECKING:  # imported at use: only refits need numpy (start-up)
    import numpy as np

COLLECTIVES_FILE = Path(__file__).resolve().parent.parent / "calibration" / "collectives.yaml"
Fraction = Annotated[float, Field(gt=0, le=1)]
Pos = Annotated[int, Field(ge=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              defer_build=True)  # schema built on first use (start-up)


class Protocol(_Strict):
    protocol: str
    alpha_s: Seconds = Field(alias="alpha")
    efficiency: Fraction


class FabricInfo(_Strict):
    """A calibration key: which family and generation it belongs to (for borrowing)."""

    family: str
    generation: float
    description: str


class FitSetup(_Strict):
    op: Literal["all_reduce", "all_gather", "reduce_scatter"]
    ranks: Annotated[int, Field(ge=2)]
    link_bandwidth_bytes_per_s: BytesPerS = Field(alias="link_bandwidth")


class Fit(_Strict):
    """One algorithm's protocols on one fabric, fitted to one document's measured points.

    ``points``: message bytes -> nccl-tests busbw in GB/s. ``alpha_per_rank``: the fixed
    costs grow in proportion to the ranks (NVLS: one multicast synchronisation per member),
    so ``alpha`` at ``n`` ranks is the stored value x n / ``setup.ranks``.
    """

    fabric: str
    algorithm: str
    evidence: Evidence
    source: str
    notes: str = ""
    setup: FitSetup
    points: dict[int, Annotated[float, Field(gt=0)]]
    protocols: tuple[Protocol, ...]
    alpha_per_rank: bool = False


class LinkFit(_Strict):
    """A scale-out link's sustained fraction of its nominal per-NIC bandwidth, from a stated
    measurement: ``efficiency = measured_bandwidth / link_bandwidth`` (a test checks it)."""

    fabric: str
    evidence: Evidence
    source: str
    measured_bandwidth_bytes_per_s: BytesPerS = Field(alias="measured_bandwidth")
    link_bandwidth_bytes_per_s: BytesPerS = Field(alias="link_bandwidth")
    efficiency: Fraction


class EpLibrary(_Strict):
    """An expert-parallel kernel library version and the paths its low-latency kernels take.

    ``low_latency_nvlink``: copies to peers in the sender's scale-up domain go over it (DeepEP
    since the June 2025 NVLink-aware kernels); otherwise every copy goes over RDMA.
    ``documented_at``: the document (URL with commit) whose measurements are of this version;
    a validation case citing it was measured with it. ``group_limit``: the most scale-up
    domains one token is sent to in normal mode (node-limited routing of the test script).
    """

    name: str
    released: str
    low_latency_nvlink: bool
    group_limit: Pos
    documented_at: tuple[str, ...]
    source: str


class EpPointSetup(_Strict):
    """The measured setup: a catalog system (ranks fill it in order) and the token shape."""

    system: str
    ranks_per_chip: Pos = 1
    tokens: Pos
    hidden: Pos
    top_k: Pos
    dtype: str


class EpFit(_Strict):
    """Dispatch or combine of one library version on one pair of fabrics.

    Time model (``expert_parallel``): t = alpha + per_token_peer x tokens x (peers) +
    max(up bytes / (efficiency x b_up), out bytes / (efficiency x b_out)). ``points``: EP size
    -> measured value of ``metric`` (``time_us``, or ``per_rank_gbps`` in the library's own
    definition).
    """

    library: str
    op: Literal["ep_dispatch", "ep_combine"]
    mode: Literal["normal", "low_latency"]
    scope: Literal["domain", "cross", "any"]
    up: str | None
    out: str | None
    evidence: Evidence
    source: str
    notes: str = ""
    metric: Literal["time_us", "per_rank_gbps"]
    setup: EpPointSetup
    points: dict[int, Annotated[float, Field(gt=0)]]
    alpha_s: Seconds = Field(alias="alpha")
    per_token_peer_s: Seconds = Field(alias="per_token_peer")
    efficiency: Fraction


class CommLibrary(_Strict):
    """A vendor's collective library and the algorithms it implements."""

    name: str
    vendors: tuple[str, ...]
    algorithms: tuple[str, ...]
    source: str


class Defaults(_Strict):
    alpha_s: Seconds = Field(alias="alpha")
    efficiency: Fraction
    scale_out_efficiency: Fraction
    source: str


class CollectiveCalibration(_Strict):
    fabrics: dict[str, FabricInfo]
    fits: tuple[Fit, ...]
    comm_libraries: tuple[CommLibrary, ...] = ()
    links: tuple[LinkFit, ...] = ()
    ep_libraries: tuple[EpLibrary, ...] = ()
    expert_parallel: tuple[EpFit, ...] = ()
    defaults: Defaults


@dataclass(frozen=True)
class Lookup:
    """What a lookup found: the fit's protocols and where they come from.

    ``origin`` is ``own`` (this fabric), ``borrowed`` (the same algorithm on ``fabric`` of
    the same family) or ``none``.
    """

    protocols: tuple[Protocol, ...]
    ranks: int
    origin: str
    fabric: str | None
    source: str
    alpha_per_rank: bool = False

    def note(self, what: str) -> str | None:
        if self.origin == "borrowed":
            return (f"{what}: borrowed from {self.fabric} (same algorithm, nearest fabric "
                    f"generation), {self.source.split(';')[0].split(' ')[0]}")
        if self.origin == "none":
            return f"{what}: not calibrated; documented defaults"
        return None


@lru_cache(maxsize=4)
def _read(path: str) -> CollectiveCalibration:
    return read_model_file(path, CollectiveCalibration)


@lru_cache(maxsize=64)
def _without(path: str, held: frozenset[str]) -> CollectiveCalibration:
    cal = _read(path)
    return cal.model_copy(update={
        "fits": tuple(kept(cal.fits, held)), "links": tuple(kept(cal.links, held)),
        "expert_parallel": tuple(kept(cal.expert_parallel, held))})


def load_collective_calibration(path: str | None = None) -> CollectiveCalibration:
    """The collective calibration (default: the one shipped), without the fits whose source
    is held out (``superpod.trust.holdout``). The lookups below skip held-out entries too,
    so a calibration object loaded before a holdout began is safe to pass. Library versions
    and comm-library facts stay: they say what software ran, not how fast."""
    p = str(path or COLLECTIVES_FILE)
    held = excluded()
    return _without(p, held) if held else _read(p)


def _nearest(cal: CollectiveCalibration, fabric: str, keys: set[str]) -> str | None:
    """The member of ``keys`` of ``fabric``'s family nearest in generation (ties: newer)."""
    info = cal.fabrics.get(fabric)
    if info is None:
        return None
    same = [k for k in keys if k != fabric and k in cal.fabrics
            and cal.fabrics[k].family == info.family]
    if not same:
        return None
    return min(same, key=lambda k: (abs(math.log(cal.fabrics[k].generation / info.generation)),
                                    -cal.fabrics[k].generation))


_FIT_CACHE: dict[tuple[int, str | None, str, frozenset[str]], Lookup] = {}


def lookup_fit(cal: CollectiveCalibration, fabric: str | None, algorithm: str) -> Lookup:
    """The visible fit of ``algorithm`` on ``fabric``, else borrowed, else none (cached per
    calibration object and held-out set)."""
    key = (id(cal), fabric, algorithm, excluded())
    hit = _FIT_CACHE.get(key)
    if hit is None:
        if len(_FIT_CACHE) > 4096:
            _FIT_CACHE.clear()
        hit = _FIT_CACHE[key] = _lookup_fit(cal, fabric, algorithm)
    return hit


def _lookup_fit(cal: CollectiveCalibration, fabric: str | None, algorithm: str) -> Lookup:
    visible = [f for f in cal.fits if f.algorithm == algorithm and not held_out(f.source)]
    origin, key = "own", fabric
    if fabric is not None and not any(f.fabric == fabric for f in visible):
        key, origin = _nearest(cal, fabric, {f.fabric for f in visible}), "borrowed"
    mine = [f for f in visible if f.fabric == key] if key is not None else []
    if not mine:
        return Lookup((), 1, "none", None, "")
    return Lookup(pooled(mine), mine[0].setup.ranks, origin, key,
                  "; ".join(f.source.split(";")[0] for f in mine) + ";",
                  mine[0].alpha_per_rank)


def pooled(fits: list[Fit]) -> tuple[Protocol, ...]:
    """Several documents' fits of one algorithm on one fabric: each protocol's alpha and
    efficiency averaged over the fits that have it at the first fit's rank count (alphas
    scaled to it where they grow with ranks)."""
    base = fits[0]
    out = []
    for p in base.protocols:
        same = [(q, f) for f in fits for q in f.protocols if q.protocol == p.protocol
                and f.alpha_per_rank == base.alpha_per_rank
                and (f.alpha_per_rank or f.setup.ranks == base.setup.ranks)]
        alphas = [q.alpha_s * (base.setup.ranks / f.setup.ranks if f.alpha_per_rank else 1.0)
                  for q, f in same]
        out.append(Protocol.model_construct(
            protocol=p.protocol, alpha_s=sum(alphas) / len(alphas),
            efficiency=sum(q.efficiency for q, _ in same) / len(same)))
    return tuple(out)


def lookup_link(cal: CollectiveCalibration, fabric: str | None) -> tuple[LinkFit | None, str]:
    """The scale-out link fit for ``fabric`` (own, else the nearest generation's) and its
    origin (``own``, ``borrowed``, ``none``)."""
    visible = [f for f in cal.links if not held_out(f.source)]
    own = next((f for f in visible if f.fabric == fabric), None)
    if own is not None:
        return own, "own"
    if fabric is not None:
        near = _nearest(cal, fabric, {f.fabric for f in visible})
        hit = next((f for f in visible if f.fabric == near), None)
        if hit is not None:
            return hit, "borrowed"
    return None, "none"


def fabric_sources(cal: CollectiveCalibration, fabric: str | None) -> tuple[str, ...]:
    """The documents of the visible fits and link measurements of ``fabric`` (empty: the
    fabric runs on the documented defaults)."""
    if fabric is None:
        return ()
    docs = [f.source for f in cal.fits if f.fabric == fabric and not held_out(f.source)]
    docs += [x.source for x in cal.links if x.fabric == fabric and not held_out(x.source)]
    return tuple(dict.fromkeys(docs))


def platform_algorithms(cal: CollectiveCalibration, vendor: str) -> tuple[str, ...] | None:
    """The algorithms the vendor's collective library implements (None: not restricted)."""
    lib = next((x for x in cal.comm_libraries if vendor in x.vendors), None)
    return lib.algorithms if lib is not None else None


def ep_library(cal: CollectiveCalibration, name: str | None) -> EpLibrary | None:
    """A library version by name (None: the newest released)."""
    if not cal.ep_libraries:
        return None
    if name is None:
        return max(cal.ep_libraries, key=lambda lib: lib.released)
    return next((lib for lib in cal.ep_libraries if lib.name == name), None)


def library_documented_by(cal: CollectiveCalibration, source: str) -> EpLibrary | None:
    """The library version whose measurements the document ``source`` (a URL with commit)
    reports, or None."""
    return next((lib for lib in cal.ep_libraries
                 if any(doc in source for doc in lib.documented_at)), None)


ANY_FABRIC = "*"


def lookup_ep(cal: CollectiveCalibration, library: str, op: str, mode: str, scope: str,
              up: str | None, out: str | None) -> tuple[EpFit | None, str]:
    """The EP fit for (library, op, mode) on these fabrics, and its origin.

    ``scope``: ``domain`` (all ranks in one scale-up domain) or ``cross``; ``out`` is
    ``ANY_FABRIC`` when nothing crosses the NIC (the scale-out fabric does not matter). Order:
    this
    library on these fabrics (``own``); another version of the same library, else another
    library, on these same fabrics (``other-version``); else ``none`` (the caller uses the
    documented defaults: another vendor's kernels on another fabric say little about these).
    """
    visible = [e for e in cal.expert_parallel
               if e.op == op and e.mode == mode and e.scope in (scope, "any")
               and e.up == up and (out == ANY_FABRIC or e.out == out)
               and not held_out(e.source)]
    hit = next((e for e in visible if e.library == library), None)
    if hit is not None:
        return hit, "own"
    family = library.split("-")[0]
    released = {x.name: x.released for x in cal.ep_libraries}
    same = sorted(visible, key=lambda e: (e.library.split("-")[0] != family,
                                          tuple(-ord(c) for c in released.get(e.library, ""))))
    if same:
        return same[0], "other-version"
    return None, "none"


# ----------------------------------------------------------------------------- refits


def wire_factor(op: str, algorithm: str, ranks: int) -> float:
    """Bytes through one rank's busiest link direction per byte of message, fitted setup.

    NVLS all-reduce (multimem load-reduce then multicast store): a rank's egress carries
    its whole buffer (the switch pulls every shard) plus its shard once, S (n + 1) / n; the
    ring: 2 (n - 1) / n for all-reduce, (n - 1) / n for the others.
    """
    n = ranks
    if algorithm == "nvls":
        return (n + 1) / n
    return 2 * (n - 1) / n if op == "all_reduce" else (n - 1) / n


def measured_times(fit: Fit) -> tuple[np.ndarray, np.ndarray]:
    """(message bytes, measured seconds) from the busbw points of a fit."""
    import numpy as np

    n = fit.setup.ranks
    bus = {"all_reduce": 2 * (n - 1) / n}.get(fit.setup.op, (n - 1) / n)
    sizes = np.array(sorted(fit.points), dtype=float)
    busbw = np.array([fit.points[int(s)] * 1e9 for s in sizes])
    return sizes, sizes * bus / busbw


def refit(fit: Fit, protocols: int | None = None) -> list[tuple[float, float]]:
    """Least-squares (on log time) fit of ``protocols`` (alpha_s, efficiency) pairs (default:
    as many as stored), time = min_p(alpha_p + wire / efficiency_p)."""
    import numpy as np
    from scipy.optimize import least_squares

    k = protocols or len(fit.protocols)
    sizes, t = measured_times(fit)
    wire = sizes * wire_factor(fit.setup.op, fit.algorithm, fit.setup.ranks) \
        / fit.setup.link_bandwidth_bytes_per_s

    def model(p: np.ndarray) -> np.ndarray:
        terms = [p[2 * i] * 1e-6 + wire / p[2 * i + 1] for i in range(k)]
        return np.asarray(np.minimum.reduce(terms))

    start = np.array([v for i in range(k) for v in (20.0 * (i + 1), 0.3 + 0.3 * i)])
    lo = np.array([0.0, 1e-3] * k)
    hi = np.array([1e4, 1.0] * k)
    sol = least_squares(lambda p: np.log(model(p) / t), start, bounds=(lo, hi))
    pairs = [(float(sol.x[2 * i]) * 1e-6, float(sol.x[2 * i + 1])) for i in range(k)]
    return sorted(pairs)
