"""The memory hierarchy: host DRAM per node, the path to it, and pooling (hand-checked)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpod import api
from superpod.errors import SpecError
from superpod.hardware.catalog import load_catalog
from superpod.hardware.system import build_system

CAT = load_catalog()


def tiers(sid: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {t["name"]: t for t in api.show(sid)["memory"]["tiers"]}


def test_dgx_h100_host_memory_over_pcie() -> None:
    r = api.show("dgx-h100")
    assert r["host_memory_bytes"] == 2e12  # one node, 2 TB
    t = tiers("dgx-h100")
    host = t["host"]
    # min(PCIe 5.0 x16 64 GB/s, 614.4 GB/s DRAM / 8 GPUs = 76.8 GB/s) = 64 GB/s
    assert host["bandwidth_bytes_per_s"] == pytest.approx(64e9)
    assert host["peak_bandwidth_bytes_per_s"] == pytest.approx(64e9)
    assert host["capacity_bytes"] == 2e12  # NUMA: a GPU addresses both sockets' DRAM
    assert host["share_bytes"] == pytest.approx(250e9)
    assert "pool" not in t
    # reachable: own HBM (81,559 MiB as the device reports it) + 7 peers + 2 TB
    assert r["memory"]["reachable_bytes_per_chip"] == pytest.approx(8 * 81559 * 2**20 + 2e12)
    assert not r["memory"]["pooled"]


def test_gb200_grace_over_c2c() -> None:
    r = api.show("gb200-nvl72")
    assert r["host_memory_bytes"] == pytest.approx(18 * 960e9)  # 17.28 TB
    host = tiers("gb200-nvl72")["host"]
    # min(450 GB/s C2C / 2 GPUs = 225, 684 GB/s / 4 GPUs = 171) = 171 GB/s
    assert host["bandwidth_bytes_per_s"] == pytest.approx(171e9)
    assert host["peak_bandwidth_bytes_per_s"] == pytest.approx(450e9)
    assert host["capacity_bytes"] == pytest.approx(480e9)  # its own Grace only
    # 72 x 192 GB HBM + its Grace's 480 GB
    assert r["memory"]["reachable_bytes_per_chip"] == pytest.approx(72 * 192e9 + 480e9)


def test_cloudmatrix_pool_over_ub() -> None:
    r = api.show("cloudmatrix384")
    m = r["memory"]
    assert m["pooled"]
    assert r["host_memory_bytes"] == pytest.approx(48 * 2e12)
    pool = tiers("cloudmatrix384")["pool"]
    assert pool["capacity_bytes"] == pytest.approx(96e12)
    # every NPU pulling at once: min(350 GB/s UB, 640 GB/s CPU UB / 8, 750.8 / 8) = 80 GB/s
    assert pool["bandwidth_bytes_per_s"] == pytest.approx(80e9)
    # alone: min(350 GB/s, 48 x 640 GB/s, ...) = the NPU's own UB bandwidth across nodes
    assert pool["peak_bandwidth_bytes_per_s"] == pytest.approx(350e9)
    assert pool["latency_s"] == pytest.approx(2e-6)  # host hop + scale-up hop
    # reachable: all HBM of the supernode + all host DRAM (the local host counted once)
    assert m["reachable_bytes_per_chip"] == pytest.approx(384 * 128e9 + 96e12)
    assert any("host DRAM" in a for a in r["assumptions"])


def test_systems_without_host_memory_say_so() -> None:
    r = api.show("tpu-v5p-pod")
    assert r["host_memory_bytes"] == 0
    assert [t["name"] for t in r["memory"]["tiers"]] == ["hbm", "peer_hbm"]


def test_extends_inherits_host_memory_and_vr200_overrides_it() -> None:
    assert api.show("hgx-h200")["host_memory_bytes"] == 2e12
    assert api.show("gb300-nvl72")["host_memory_bytes"] == pytest.approx(17.28e12)
    vr = api.show("vr200-nvl144")
    assert vr["host_memory_bytes"] == pytest.approx(18 * 3e12)  # 36 Vera x 1.5 TB


def test_every_host_memory_figure_has_a_source_and_evidence() -> None:
    for spec in CAT.systems.values():
        hm = spec.node.host_memory
        if hm is None:
            continue
        for fig in (hm.capacity, hm.bandwidth, hm.link.bandwidth_unidir, hm.link.latency):
            assert len(fig.source) > 10 and fig.evidence


@given(st.sampled_from(sorted(CAT.systems)), st.integers(1, 4096))
@settings(max_examples=60, deadline=None)
def test_tier_invariants(sid: str, chips: int) -> None:
    s = build_system(CAT.system(sid), CAT, chips)
    h = s.memory
    for t in h.tiers:
        assert 0 < t.bandwidth_bytes_per_s <= t.peak_bandwidth_bytes_per_s * (1 + 1e-12)
        assert t.capacity_bytes >= t.share_bytes >= 0
        assert t.transfer_time_s(0) == 0.0
        if t.name != "hbm":
            b = 1e9
            assert t.transfer_time_s(b) == pytest.approx(t.latency_s + b / t.bandwidth_bytes_per_s)
            assert t.transfer_time_s(b, alone=True) <= t.transfer_time_s(b)
    assert h.reachable_bytes_per_chip >= s.chip.hbm_bytes
    assert math.isclose(s.host_memory_bytes,
                        s.counts.nodes * h.host_memory_per_node_bytes, rel_tol=1e-12)


def test_zero_host_capacity_is_bad_input(tmp_path: Path) -> None:
    f = tmp_path / "sys.yaml"
    f.write_text("""
systems:
  - id: my-h100
    extends: dgx-h100
    node:
      name: my node
      chips: 8
      host_memory:
        capacity: {value: 0 TB, evidence: assumption, source: "mine, none"}
        bandwidth: {value: 600 GB/s, evidence: assumption, source: "mine, none"}
        link:
          kind: pcie
          protocol: PCIe 5.0 x16
          bandwidth_unidir: {value: 64 GB/s, evidence: derived, source: "mine, none"}
          latency: {value: 2 us, evidence: assumption, source: "mine, none"}
""")
    with pytest.raises(SpecError, match="capacity"):
        load_catalog(f)


def test_api_memory_is_the_show_block() -> None:
    assert api.memory("cloudmatrix384") == api.show("cloudmatrix384")["memory"]
