"""Memory comparisons between systems, each on a stated basis, and the seeds' memory claim.

Vendors count different memory when they compare systems. Huawei's Atlas 950 SuperPoD is
"15x the memory" of NVIDIA's Vera Rubin NVL144 (Huawei Connect 2025 keynote,
https://www.huawei.com/en/news/2025/9/hc-xu-keynote-speech): the 1,152 TB it counts is HBM
only (8,192 x 144 GB, divided by 1,024), while the 75 TB on NVIDIA's side is its "fast
memory", HBM4 plus the Vera CPUs' LPDDR5X (shared/reference/hardware.md B.1-B.2). Compared
on one basis the ratio is ~57x (HBM to HBM), not 15x.

Bases (all in bytes, from the system model; nothing here is quoted):

* ``hbm``                - all accelerator HBM.
* ``host``               - all CPU DRAM (0 where a system describes none).
* ``hbm_plus_host``      - both ("fast memory" in NVIDIA's sense).
* ``reachable_per_chip`` - the distinct memory one chip can address (own and peers' HBM,
                           its host's DRAM or, where pooled, every host's DRAM in the domain).
* ``share_per_chip``     - HBM plus host DRAM per chip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from superpod.hardware.system import System

BASES = ("hbm", "host", "hbm_plus_host", "reachable_per_chip", "share_per_chip")
BASIS_WHAT = {
    "hbm": "accelerator HBM, all chips",
    "host": "CPU DRAM, all nodes",
    "hbm_plus_host": "HBM + CPU DRAM (NVIDIA's 'fast memory')",
    "reachable_per_chip": "memory one chip can address (pooled host DRAM included)",
    "share_per_chip": "HBM + host DRAM per chip",
}


def memory_bases(s: System) -> dict[str, float]:
    """Bytes of ``s`` on every basis of ``BASES``."""
    m = s.memory
    return {
        "hbm": s.hbm_bytes,
        "host": s.host_memory_bytes,
        "hbm_plus_host": s.hbm_bytes + s.host_memory_bytes,
        "reachable_per_chip": m.reachable_bytes_per_chip,
        "share_per_chip": m.share_bytes_per_chip,
    }


def memory_line(a: System, b: System) -> dict[str, Any]:
    """``a`` against ``b`` on every basis: bytes of each and the ratio a / b (None where b
    has none of that memory)."""
    ma, mb = memory_bases(a), memory_bases(b)
    return {
        "a": a.spec.id, "b": b.spec.id,
        "bases": {k: {"what": BASIS_WHAT[k], "a_bytes": ma[k], "b_bytes": mb[k],
                      "ratio": ma[k] / mb[k] if mb[k] else None} for k in BASES},
    }


@dataclass(frozen=True)
class MemoryClaim:
    """A published memory ratio between two systems and the basis each side counts."""

    claim: str
    a: str
    b: str
    published_ratio: float
    a_basis: str
    b_basis: str
    a_counts: str
    b_counts: str
    source: str


SEED_CLAIMS: tuple[MemoryClaim, ...] = (
    MemoryClaim(
        claim="Atlas 950 SuperPoD has 15x the memory of NVL144",
        a="atlas-950-superpod", b="vr200-nvl144", published_ratio=15.0,
        a_basis="hbm", b_basis="hbm_plus_host",
        a_counts="HBM only: 8,192 x 144 GB (Huawei's 1,152 TB divides by 1,024)",
        b_counts="HBM4 + Vera LPDDR5X ('fast memory', ~75 TB)",
        source="https://www.huawei.com/en/news/2025/9/hc-xu-keynote-speech ; "
               "shared/reference/hardware.md B.1 (ratio denominators)"),
)


def claim_check(claim: MemoryClaim, a: System, b: System) -> dict[str, Any]:
    """The claim recomputed from the model on the bases each side counts, and like for like.

    ``reproduced_ratio`` = a's bytes on ``a_basis`` / b's bytes on ``b_basis``.
    """
    ma, mb = memory_bases(a), memory_bases(b)
    like = {k: (ma[k] / mb[k] if mb[k] else None)
            for k in ("hbm", "hbm_plus_host", "reachable_per_chip")}
    return {
        "claim": claim.claim, "a": claim.a, "b": claim.b,
        "published_ratio": claim.published_ratio,
        "a_counts": claim.a_counts, "b_counts": claim.b_counts,
        "a_bytes": ma[claim.a_basis], "b_bytes": mb[claim.b_basis],
        "reproduced_ratio": ma[claim.a_basis] / mb[claim.b_basis],
        "like_for_like_ratio": like, "source": claim.source,
    }


def claims_for(systems: list[System]) -> list[dict[str, Any]]:
    """Every seed claim whose two systems are both among ``systems`` (at product size)."""
    by_id = {s.spec.id: s for s in systems}
    return [claim_check(c, by_id[c.a], by_id[c.b]) for c in SEED_CLAIMS
            if c.a in by_id and c.b in by_id]
