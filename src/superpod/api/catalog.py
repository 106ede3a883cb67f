"""The catalog part of the API: the catalog, one system built, ``systems``, ``show``,
``compare`` and the memory tiers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported at use: `superpod --help` must not build pydantic models
    from superpod.hardware.catalog import Catalog
    from superpod.hardware.system import System


def catalog(system_files: Sequence[str | Path] = ()) -> Catalog:
    """The built-in catalog plus the user's files."""
    from superpod.hardware.catalog import load_catalog

    return load_catalog(*system_files)


def systems(system_files: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The ``systems --json`` object: the system catalog, one entry each."""
    return {"systems": [{"id": s.id, "name": s.name, "chip": s.chip, "chips": s.chips,
                         "status": s.status, "evidence": s.evidence,
                         "scale_up": s.scale_up.kind, "source": s.source}
                        for s in catalog(system_files).systems.values()]}


def system(system_id: str, chips: int | None = None,
           system_files: Sequence[str | Path] = ()) -> System:
    """Build a system by id (a preset or one defined in ``system_files``)."""
    from superpod.hardware.system import build_system

    cat = catalog(system_files)
    return build_system(cat.system(system_id), cat, chips)


def show(system_id: str, chips: int | None = None,
         system_files: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The ``show --json`` object for one system."""
    from superpod.hardware.system import system_to_dict

    return system_to_dict(system(system_id, chips, system_files))


def compare(system_ids: Sequence[str], chips: int | None = None,
            system_files: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The ``compare --json`` object: ``{"systems": [show, ...], "memory": [the first
    against each other system on every memory basis], "memory_claims": [published memory
    ratios among these systems, recomputed on the bases each side counts]}``."""
    from superpod.hardware.memory_claims import claims_for, memory_line
    from superpod.hardware.system import build_system, system_to_dict

    cat = catalog(system_files)
    built = [build_system(cat.system(s), cat, chips) for s in system_ids]
    return {"systems": [system_to_dict(s) for s in built],
            "memory": [memory_line(built[0], s) for s in built[1:]],
            "memory_claims": claims_for(built) if chips is None else []}


def memory(system_id: str, chips: int | None = None,
           system_files: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The memory tiers one chip of a system reaches (``show --json``'s ``memory`` block)."""
    from superpod.hardware.memory import hierarchy_to_dict

    return hierarchy_to_dict(system(system_id, chips, system_files).memory)
