"""MoE expert-parallel dispatch and combine over the fabric (DeepEP-style kernels).

A client of the collective model's placement (``superpod.network.placement``): ranks sit on
the system as for any collective, ``m`` ranks per scale-up domain, ``g`` domains. Each rank
holds ``tokens`` tokens of ``hidden`` elements, each routed to ``top_k`` experts spread evenly
over the ``n`` ranks. Per rank (``u(s, k) = s (1 - (1 - 1/s)^k)``, the expected number of
distinct slots ``k`` uniform picks hit among ``s``; one token row = hidden x element bytes):

* **low-latency** kernels send one copy per (token, expert), ``tokens x top_k`` rows, a
  share 1/n to itself. Library versions with NVLink-aware low-latency kernels (DeepEP since
  June 2025; any single-tier domain such as UB) send the ``(m-1)/n`` share over the
  scale-up links and the ``(n-m)/n`` share over RDMA, concurrently; older ones (DeepEP
  February 2025, "pure RDMA") send all ``(n-1)/n`` over RDMA.
* **normal** kernels inside one domain send each token once per distinct destination rank,
  ``u(n, top_k)`` rows, ``(n-1)/n`` of them to peers. Across domains (DeepEP internode) a
  token goes once over RDMA to each distinct destination domain, ``D = u(G, top_k)`` of them
  (``G`` = min(domains, the library's group limit): node-limited routing), the
  ``(g-1)/g`` share remote, and is forwarded inside each over the scale-up links to
  ``u(m, top_k / D)`` ranks, ``(m-1)/m`` of those copies leaving the receiving rank.

Time: ``t = alpha + per_token_peer x tokens x (n - 1) + max(up / (e b_up), out / (e b_out))``
-- a fixed cost (the latency floor at small token counts), a cost per (token, peer) pair
(layout and signalling work that makes per-rank bandwidth fall with EP size on UB as on
InfiniBand) and the transfer. ``alpha``, ``per_token_peer`` and ``e`` are fitted per
library version, mode and op, dispatch and combine separately (``calibration/
collectives.yaml``; ``refit_ep`` reproduces them). A dispatch with no fit of its own
borrows its library's combine fit and is costed at the combine's (wider) element type:
quantisation runs inside the dispatch kernel, so its time does not shrink with the narrower
bytes. With no fit of this library, another library's fit on the same fabrics serves (UB has
two documents: the sgl-kernel-npu DeepEP-Ascend README and the CloudMatrix384 paper's
FusedDispatch / FusedCombine, arXiv 2506.12708, so either calibrates UB with the other held
out); a mode with no fit at all on these fabrics keeps the defaults but takes the other
mode's per-(token, peer) cost (``_other_mode_fit``).

Reported per-rank bandwidth follows the source library's own definition: DeepEP's
low-latency "bandwidth" counts every copy, including those to the sender itself (DeepEP
issue #141); its internode "RDMA bandwidth" counts one row per destination domain including
the sender's own (issue #51, PR #130); intranode, rows received per rank. The CloudMatrix384
paper's bandwidths count 9 copies per token (8 routed experts and the shared expert, served
from dies of its own) in binary gigabytes; its fits use its latencies, which need no
definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from superpod.errors import SpecError
from superpod.hardware.system import System
from superpod.network.calibration import (
    ANY_FABRIC,
    CollectiveCalibration,
    EpFit,
    EpLibrary,
    ep_library,
    lookup_ep,
)
from superpod.network.placement import (
    ELEMENT_BYTES,
    CollectiveRequest,
    CollectiveResult,
    Levels,
    Wire,
    levels,
    make_result,
)

LOW_LATENCY_MAX_TOKENS = 256  # DeepEP's low-latency kernels serve decode-sized batches
EP_ALGORITHMS = ("auto", "normal", "low_latency")


def distinct(slots: float, picks: float) -> float:
    """Expected distinct slots among ``slots`` hit by ``picks`` uniform independent picks."""
    if slots <= 1:
        return 1.0
    return float(slots * (1.0 - (1.0 - 1.0 / slots) ** picks))


@dataclass(frozen=True)
class EpTraffic:
    """Per-rank bytes of one dispatch or combine: over the scale-up links, over the NIC, and
    what the library's reported "bandwidth" counts."""

    up_bytes: float
    out_bytes: float
    reported_bytes: float


def mode_of(req: CollectiveRequest) -> str:
    if req.algorithm in ("normal", "low_latency"):
        return req.algorithm
    if req.algorithm != "auto":
        raise SpecError("unknown EP kernel mode", field="algorithm", value=req.algorithm,
                        allowed=", ".join(EP_ALGORITHMS))
    return "low_latency" if (req.tokens or 0) <= LOW_LATENCY_MAX_TOKENS else "normal"


def ep_traffic(req: CollectiveRequest, lv: Levels, lib: EpLibrary | None, mode: str,
               element_bytes: float) -> EpTraffic:
    """Bytes per rank for ``req`` on placement ``lv`` (module docstring)."""
    if not (req.tokens and req.hidden and req.top_k):
        raise SpecError(f"{req.op} needs tokens, hidden and top_k", field="collective")
    n, m, g = lv.n, lv.m, lv.g
    row = req.hidden * element_bytes
    copies = req.tokens * req.top_k * row
    if mode == "low_latency" or lib is None:  # no known library: one send per copy
        if lib is None or lib.low_latency_nvlink or lv.b_out_bytes_per_s <= 0:
            return EpTraffic(copies * (m - 1) / n, copies * (n - m) / n, copies)
        return EpTraffic(0.0, copies * (n - 1) / n, copies)  # pure RDMA, own domain too
    if g == 1:
        rows = req.tokens * distinct(n, req.top_k) * row
        return EpTraffic(rows * (n - 1) / n, 0.0, rows)
    limit = lib.group_limit
    d = distinct(min(g, limit), req.top_k)
    node_rows = req.tokens * d * row
    forward = node_rows * distinct(m, req.top_k / d) * (m - 1) / m
    return EpTraffic(forward, node_rows * (g - 1) / g, node_rows)


def ep_time(tr: EpTraffic, lv: Levels, tokens: int, alpha_s: float, per_token_peer_s: float,
            e_up: float, e_out: float) -> tuple[float, str]:
    """(seconds, bottleneck level) of a dispatch / combine with these parameters."""
    up_s = tr.up_bytes / (e_up * lv.b_up_bytes_per_s) if tr.up_bytes else 0.0
    out_s = (tr.out_bytes / (e_out * lv.b_out_bytes_per_s)
             if tr.out_bytes and lv.b_out_bytes_per_s > 0 else 0.0)
    if tr.out_bytes and lv.b_out_bytes_per_s <= 0:
        raise SpecError("expert-parallel traffic crosses scale-up domains but the system has "
                        "no scale-out network", field="ranks", value=lv.n)
    fixed = alpha_s + per_token_peer_s * tokens * (lv.n - 1)
    return fixed + max(up_s, out_s), ("out" if out_s > up_s else "up")


def _scope(lv: Levels) -> str:
    return "domain" if lv.g == 1 else "cross"


def choose_library(system: System, cal: CollectiveCalibration, name: str | None
                   ) -> EpLibrary | None:
    """The named library version, or the newest one calibrated on this system's fabrics
    (None where none is: the library-independent traffic model and the defaults)."""
    if name is not None:
        lib = ep_library(cal, name)
        if lib is None:
            raise SpecError("unknown EP library", field="ep_library", value=name,
                            allowed=", ".join(x.name for x in cal.ep_libraries))
        return lib
    up, out = system.spec.scale_up.calibration, system.spec.scale_out.calibration
    del out  # the scale-up fabric names the platform; its libraries run on any scale-out
    mine = {e.library for e in cal.expert_parallel if e.up == up}
    libs = [x for x in cal.ep_libraries if x.name in mine]
    return max(libs, key=lambda x: x.released) if libs else None


def _fit_for(cal: CollectiveCalibration, lib: EpLibrary | None, req: CollectiveRequest,
             mode: str, lv: Levels) -> tuple[EpFit | None, str, float]:
    """The fit to use, its origin, and the element bytes to cost the payload at."""
    name = lib.name if lib is not None else ""
    elem = ELEMENT_BYTES[req.dtype]
    out = lv.out_key if ep_traffic(req, lv, lib, mode, elem).out_bytes > 0 else ANY_FABRIC
    fit, origin = lookup_ep(cal, name, req.op, mode, _scope(lv), lv.up_key, out)
    if req.op == "ep_dispatch" and origin not in ("own", "other-version"):
        comb, c_origin = lookup_ep(cal, name, "ep_combine", mode, _scope(lv), lv.up_key, out)
        if comb is not None and c_origin in ("own", "other-version"):
            return comb, f"combine fit ({c_origin})", max(elem, ELEMENT_BYTES[comb.setup.dtype])
    return fit, origin, elem


def _other_mode_fit(cal: CollectiveCalibration, lib: EpLibrary | None,
                    req: CollectiveRequest, mode: str, lv: Levels) -> EpFit | None:
    """A fit of the other kernel mode on these fabrics, whose per-(token, peer) cost serves a
    mode with no fit of its own. That cost is the fabric's and runtime's signalling and layout
    work per peer, not the mode's: the DeepEP-Ascend README's normal and low-latency dispatch
    on UB fit 4.34 and 4.26 ns (``collectives.yaml``). The fixed cost (a decode latency floor)
    and the efficiency (a mode's pipelining) do not carry over; they stay the defaults."""
    other = "normal" if mode == "low_latency" else "low_latency"
    fit, _, _ = _fit_for(cal, lib, req, other, lv)
    return fit


def ep_collective(system: System, req: CollectiveRequest, cal: CollectiveCalibration
                  ) -> CollectiveResult:
    """Cost of one ``ep_dispatch`` / ``ep_combine`` (module docstring)."""
    lv = levels(system, req)
    mode = mode_of(req)
    lib = choose_library(system, cal, req.ep_library)
    fit, origin, elem = _fit_for(cal, lib, req, mode, lv)
    d = cal.defaults
    peer: EpFit | None = None
    if fit is None:
        alpha, gamma, e_up, e_out = d.alpha_s, 0.0, d.efficiency, d.scale_out_efficiency
        peer = _other_mode_fit(cal, lib, req, mode, lv)
        if peer is not None:
            gamma = peer.per_token_peer_s
    else:
        alpha, gamma, e_up, e_out = fit.alpha_s, fit.per_token_peer_s, fit.efficiency, \
            fit.efficiency
    tr = ep_traffic(req, lv, lib, mode, elem)
    t, level = ep_time(tr, lv, req.tokens or 0, alpha, gamma, e_up, e_out)
    notes = [f"{lib.name if lib else 'no library'} {mode}"]
    if fit is None:
        notes.append("not calibrated: documented defaults")
        if peer is not None:
            notes.append(f"per-(token, peer) cost from {peer.library} {peer.mode} {peer.op} on "
                         f"{peer.up}, {peer.source.split(';')[0].split(' ')[0]}")
    elif origin != "own":
        notes.append(f"{origin}: {fit.library} {fit.op} on {fit.up}/{fit.out}, "
                     f"{fit.source.split(';')[0].split(' ')[0]}")
    payload = req.tokens * req.top_k * req.hidden * ELEMENT_BYTES[req.dtype]  # type: ignore[operator]
    wire = Wire(((tr.up_bytes / lv.b_up_bytes_per_s,
                  tr.out_bytes / lv.b_out_bytes_per_s if lv.b_out_bytes_per_s else 0.0),),
                1, tr.up_bytes, tr.out_bytes)
    res = make_result(replace(req, bytes_=payload), lv, mode, "ep", t, level, wire,
                      origin == "own", tuple(notes))
    fixed = alpha + gamma * (req.tokens or 0) * (lv.n - 1)
    return replace(res, per_rank_bytes_per_s=tr.reported_bytes / t if t > 0 else 0.0,
                   alpha_s=fixed, efficiency=e_up, efficiency_out=e_out)


# ----------------------------------------------------------------------------- refits


def fit_levels(fit: EpFit, ranks: int) -> tuple[System, Levels, CollectiveRequest]:
    """The placement of one of a fit's measured points (its catalog system, filled in order)."""
    from superpod.hardware.catalog import load_catalog
    from superpod.hardware.system import build_system

    cat = load_catalog()
    s = fit.setup
    chips = math.ceil(ranks / s.ranks_per_chip)
    system = build_system(cat.system(s.system), cat, chips)
    req = CollectiveRequest(op=fit.op, ranks=ranks, algorithm=fit.mode, dtype=s.dtype,
                            tokens=s.tokens, hidden=s.hidden, top_k=s.top_k,
                            ranks_per_chip=s.ranks_per_chip, ep_library=fit.library)
    return system, levels(system, req), req


def _library(fit: EpFit) -> EpLibrary | None:
    from superpod.network.calibration import load_collective_calibration

    return ep_library(load_collective_calibration(), fit.library)


def predicted(fit: EpFit, ranks: int, alpha_s: float, per_token_peer_s: float,
              efficiency: float) -> float:
    """The fit's metric at one EP size with these parameters (the model of ``ep_collective``)."""
    _, lv, req = fit_levels(fit, ranks)
    tr = ep_traffic(req, lv, _library(fit), fit.mode, ELEMENT_BYTES[fit.setup.dtype])
    t, _ = ep_time(tr, lv, fit.setup.tokens, alpha_s, per_token_peer_s, efficiency, efficiency)
    return t * 1e6 if fit.metric == "time_us" else tr.reported_bytes / t / 1e9


def refit_ep(fit: EpFit) -> tuple[float, float, float]:
    """(alpha_s, per_token_peer_s, efficiency) fitted (least squares on log value) to the
    fit's points. Free parameters, as the points allow: efficiency; then the per-(token,
    peer) cost (bandwidth metrics) or the fixed cost (times); then the third (times only).
    Two times only (a latency table's smallest and largest EP size): the fixed cost and the
    per-(token, peer) cost, efficiency held at its bound 1.0 -- at decode-sized batches the
    transfer is a small share that two points cannot tell apart from the fixed cost, and the
    three-point low-latency fits on UB and NVLink find the bound (``collectives.yaml``)."""
    import numpy as np
    from scipy.optimize import least_squares

    sizes = sorted(fit.points)
    measured = np.array([fit.points[k] for k in sizes], dtype=float)
    if fit.metric == "per_rank_gbps":
        free = ["efficiency", "per_token_peer"][:len(sizes)]
    elif len(sizes) == 2:
        free = ["alpha", "per_token_peer"]
    else:
        free = ["efficiency", "alpha", "per_token_peer"][:len(sizes)]
    scale = {"efficiency": 1.0, "alpha": 1e-6, "per_token_peer": 1e-9}
    bounds = {"efficiency": (1e-3, 1.0), "alpha": (0.0, 1e4), "per_token_peer": (0.0, 1e3)}
    start = {"efficiency": 0.7, "alpha": 20.0, "per_token_peer": 1.0}

    def params(x: np.ndarray) -> dict[str, float]:
        p = {"efficiency": 1.0, "alpha": 0.0, "per_token_peer": 0.0}
        for name, v in zip(free, x, strict=True):
            p[name] = float(v) * scale[name]
        return p

    def resid(x: np.ndarray) -> np.ndarray:
        p = params(x)
        pred = np.array([predicted(fit, k, p["alpha"], p["per_token_peer"], p["efficiency"])
                         for k in sizes])
        return np.asarray(np.log(pred / measured))

    sol = least_squares(resid, np.array([start[f] for f in free]),
                        bounds=(np.array([bounds[f][0] for f in free]),
                                np.array([bounds[f][1] for f in free])))
    p = params(sol.x)
    return p["alpha"], p["per_token_peer"], p["efficiency"]
