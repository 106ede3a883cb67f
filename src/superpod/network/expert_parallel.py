"""MoE expert-parallel dispatch and combine over the fabric (DeepEP-style kernels).

Each rank sends ``tokens x top_k`` token copies of ``hidden`` elements to the ranks holding
their experts. With experts spread evenly over ``n`` ranks, a rank keeps 1/n of its copies,
sends ``(m-1)/n`` over the scale-up fabric to its own domain and ``(n-m)/n`` over its NIC.

* normal mode (throughput kernels): the two link classes run concurrently,
  t = alpha + max(local / (e_up b_up), remote / (e_out b_out));
* low-latency mode (small batches, one-sided writes): DeepEP on NVIDIA sends every copy over
  RDMA ("pure RDMA"); on a single-tier UB domain all copies go over UB:
  t = alpha + (n-1)/n * bytes / (e b).

The reported per-rank bandwidth follows DeepEP's "bottleneck bandwidth": bytes through the
bottleneck link class per rank divided by the kernel time. ``e`` and ``alpha`` are fitted
from combine measurements (``calibration/collectives.yaml``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from superpod.hardware.system import System
from superpod.network.calibration import CollectiveCalibration

if TYPE_CHECKING:
    from superpod.network.collectives import CollectiveRequest, CollectiveResult

LOW_LATENCY_MAX_TOKENS = 256  # DeepEP's low-latency kernels serve decode-sized batches


def _mode(req: CollectiveRequest) -> str:
    if req.algorithm in ("normal", "low_latency"):
        return req.algorithm
    return "low_latency" if (req.tokens or 0) <= LOW_LATENCY_MAX_TOKENS else "normal"


def ep_collective(system: System, req: CollectiveRequest, cal: CollectiveCalibration
                  ) -> CollectiveResult:
    from superpod.network.collectives import Wire, _result, levels

    lv = levels(system, req)
    payload, mode, n = req.ep_bytes(), _mode(req), req.ranks
    local, remote = (lv.m - 1) / n * payload, (n - lv.m) / n * payload
    over_ub = lv.g == 1 and system.spec.scale_up.kind != "none" and lv.up_key == "ub-cm384"
    calibrated = True
    if mode == "low_latency" and not over_ub and system.nic_bandwidth_bits_per_s > 0:
        key, level, through = lv.out_key, "out", local + remote
    elif mode == "low_latency":
        key, level, through = lv.up_key, "up", local + remote
    else:
        up_t, out_t = local / lv.b_up_bytes_per_s, remote / lv.b_out_bytes_per_s
        key, level, through = ((lv.out_key, "out", remote) if out_t > up_t
                               else (lv.up_key, "up", local))
    entry = cal.ep(key, mode)
    if entry is None:
        calibrated = False
        eff = cal.defaults.efficiency if level == "up" else cal.defaults.scale_out_efficiency
        alpha = cal.defaults.alpha_s
    else:
        eff, alpha = entry.efficiency, entry.alpha_s
    bw = lv.b_up_bytes_per_s if level == "up" else lv.b_out_bytes_per_s
    phase = (through / bw, 0.0) if level == "up" else (0.0, through / bw)
    wire = Wire((phase,), 1, through if level == "up" else 0.0,
                through if level == "out" else 0.0)
    t = alpha + through / bw / eff
    res = _result(replace(req, bytes_=payload), lv, mode, "ep", t, level, wire, calibrated)
    return replace(res, alpha_s=alpha, efficiency=eff, efficiency_out=eff)
