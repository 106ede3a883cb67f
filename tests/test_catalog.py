"""The catalog loads, knows every id the case format names, and every entry has a source."""

from __future__ import annotations

import re

import pytest

from superpod.hardware.catalog import Catalog
from superpod.hardware.system import build_system

# The ids listed in shared/validation/README.md (the case-format contract).
CHIP_IDS = """a100-sxm-80gb a100-sxm-40gb h100-sxm h200 h800 h20 b200 b300 gb200 gb300 mi300x
mi325x mi355x tpu-v5p tpu-v6e tpu-v7 ascend-910b ascend-910c ascend-950pr ascend-950dt
ascend-960 ascend-970""".split()
PRESET_IDS = """dgx-a100 dgx-h100 hgx-h200 hgx-h800 hgx-h20 dgx-b200 hgx-b300 gb200-nvl72
gb300-nvl72 vr200-nvl144 mi300x-node mi355x-node tpu-v5p-pod atlas-800t-a2
atlas-900-a3-superpod cloudmatrix384 atlas-950-superpod atlas-960-superpod
atlas-950-supercluster atlas-960-supercluster""".split()


def test_every_contract_chip_and_preset_is_known(cat: Catalog) -> None:
    assert set(CHIP_IDS) <= set(cat.chips)
    assert set(PRESET_IDS) <= set(cat.systems)


def test_contract_ids_match_the_case_readme(public_cases) -> None:  # type: ignore[no-untyped-def]
    text = (public_cases.parent / "README.md").read_text()
    listed = set(re.findall(r"`([a-z0-9][a-z0-9.-]+)`", text.split("Chip ids and preset ids")[1]
                            .split("## `model`")[0]))
    assert listed <= set(CHIP_IDS) | set(PRESET_IDS)


@pytest.mark.parametrize("section", ["chips", "transceivers", "switches", "cpus", "nics",
                                     "systems"])
def test_every_entry_has_a_source_and_evidence(cat: Catalog, section: str) -> None:
    entries = getattr(cat, section)
    assert entries
    for entry in entries.values():
        assert len(entry.source) > 10, entry.id
        assert entry.evidence


def test_every_system_builds_at_its_own_size(cat: Catalog) -> None:
    for spec in cat.systems.values():
        s = build_system(spec, cat)
        assert s.counts.chips == spec.chips
        assert s.power_w > 0
        assert s.hbm_bytes > 0


def test_roadmap_systems_say_they_extrapolate(cat: Catalog) -> None:
    for sid in ("atlas-950-superpod", "atlas-960-superpod", "vr200-nvl144"):
        s = build_system(cat.system(sid), cat)
        assert s.extrapolated
        assert any("roadmap" in w for w in s.warnings)
    assert not any("roadmap" in w for w in build_system(cat.system("dgx-h100"), cat).warnings)


def test_scaling_beyond_the_product_is_flagged(cat: Catalog) -> None:
    s = build_system(cat.system("gb200-nvl72"), cat, chips=72 * 10)
    assert any("untested scale" in w for w in s.warnings)
