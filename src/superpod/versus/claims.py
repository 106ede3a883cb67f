"""Headline ratios between the first system of a comparison and each other one, from the
system model, and the vendor's published ratios where the pair has them.

Huawei compares its Atlas 950 SuperPoD with NVIDIA's Vera Rubin NVL144 as 56.8x the NPUs,
about 6.7x the FP8 / FP4 compute, 15x the memory and 62x the interconnect bandwidth
(Huawei Connect 2025 keynote, https://www.huawei.com/en/news/2025/9/hc-xu-keynote-speech ;
``../shared/reference/hardware.md`` B.1: the denominators are NVL144's 144 Rubin dies,
1.2 EF FP8, ~75 TB "fast memory" HBM + LPDDR and 260 TB/s NVLink both directions). Each
ratio is recomputed on the basis each side counts:

* NPUs: packages on the first side, dies on the second where the vendor counts dies
  (NVIDIA's "144" of NVL144);
* compute: dense FP8 and FP4 peaks;
* memory: ``hardware.memory_claims`` (HBM against HBM + host DRAM), and like for like;
* interconnect: aggregate scale-up bandwidth, one direction on both sides (the ratio is the
  same as both directions on both sides).
"""

from __future__ import annotations

from typing import Any

from superpod.hardware.memory_claims import SEED_CLAIMS, claim_check, memory_bases
from superpod.hardware.system import System

PUBLISHED: dict[tuple[str, str], dict[str, float]] = {
    ("atlas-950-superpod", "vr200-nvl144"): {"npus": 56.8, "fp8": 6.7, "fp4": 6.7,
                                             "memory": 15.0, "interconnect": 62.0},
}
SOURCE = ("https://www.huawei.com/en/news/2025/9/hc-xu-keynote-speech ; "
          "shared/reference/hardware.md B.1")
#: systems whose vendor counts dies as GPUs in the product name (NVL144: 72 packages)
COUNTS_DIES = ("vr200-nvl144",)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def ratios(a: System, b: System) -> dict[str, Any]:
    """``a`` over ``b`` on each headline basis, and the published ratio where one exists."""
    pa, pb = a.peak_flop_per_s, b.peak_flop_per_s
    b_npus = b.counts.chips * (b.chip.dies if b.spec.id in COUNTS_DIES else 1)
    claim = next((claim_check(c, a, b) for c in SEED_CLAIMS
                  if (c.a, c.b) == (a.spec.id, b.spec.id)), None)
    ma, mb = memory_bases(a), memory_bases(b)
    ours = {
        "npus": _ratio(a.counts.chips, b_npus),
        "bf16": _ratio(pa.get("bf16"), pb.get("bf16")),
        "fp8": _ratio(pa.get("fp8"), pb.get("fp8")),
        "fp4": _ratio(pa.get("fp4"), pb.get("fp4")),
        "memory": claim["reproduced_ratio"] if claim else _ratio(ma["hbm"], mb["hbm"]),
        "memory_hbm": _ratio(ma["hbm"], mb["hbm"]),
        "memory_hbm_plus_host": _ratio(ma["hbm_plus_host"], mb["hbm_plus_host"]),
        "interconnect": _ratio(a.scale_up_bandwidth_bytes_per_s,
                               b.scale_up_bandwidth_bytes_per_s),
    }
    published = PUBLISHED.get((a.spec.id, b.spec.id))
    return {"a": a.spec.id, "b": b.spec.id, "model": ours, "published": published,
            "source": SOURCE if published else None,
            "basis": {"npus": f"{b.spec.id} counted in dies" if b.spec.id in COUNTS_DIES
                      else "packages", "memory": (f"{claim['a_counts']} vs "
                                                  f"{claim['b_counts']}") if claim else "HBM"}}
