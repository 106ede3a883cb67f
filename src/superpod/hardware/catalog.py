"""The catalog: chips, parts and system presets, from the package's YAML and the user's.

The built-in catalog lives in ``superpod/catalog/{chips,parts,systems}.yaml``. A user file
(``--system my.yaml``) may add or replace entries under the same top-level keys, or describe
one system at top level. ``extends: <id>`` lets a system start from another one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from superpod.errors import SpecError
from superpod.hardware.loading import read_yaml, spec_error
from superpod.hardware.specs import Chip, Cpu, Nic, Switch, SystemSpec, Transceiver

CATALOG_DIR = Path(__file__).resolve().parent.parent / "catalog"
SECTIONS: dict[str, type[BaseModel]] = {
    "chips": Chip, "transceivers": Transceiver, "switches": Switch, "cpus": Cpu, "nics": Nic,
    "systems": SystemSpec,
}
#: system keys whose maps merge under ``extends``; every other key replaces.
MERGED_KEYS = frozenset({"node", "scale_up", "scale_out", "cabinets"})

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Catalog:
    """Every known chip, part and system, by id."""

    chips: Mapping[str, Chip] = field(default_factory=dict)
    transceivers: Mapping[str, Transceiver] = field(default_factory=dict)
    switches: Mapping[str, Switch] = field(default_factory=dict)
    cpus: Mapping[str, Cpu] = field(default_factory=dict)
    nics: Mapping[str, Nic] = field(default_factory=dict)
    systems: Mapping[str, SystemSpec] = field(default_factory=dict)
    #: where each system came from (file path), for error messages
    origins: Mapping[str, str] = field(default_factory=dict)

    def system(self, system_id: str) -> SystemSpec:
        """A system by id, or a ``SpecError`` listing the known ids."""
        try:
            return self.systems[system_id]
        except KeyError:
            raise SpecError("unknown system", field="system", value=system_id,
                            allowed=", ".join(sorted(self.systems))) from None

    def chip(self, chip_id: str) -> Chip:
        try:
            return self.chips[chip_id]
        except KeyError:
            raise SpecError("unknown chip", field="chip", value=chip_id,
                            allowed=", ".join(sorted(self.chips))) from None


def _resolve_extends(raw: list[dict[str, Any]], base: Mapping[str, dict[str, Any]],
                     file: str) -> list[dict[str, Any]]:
    """Expand ``extends:`` chains into full system mappings."""
    by_id = dict(base) | {r["id"]: r for r in raw if isinstance(r.get("id"), str)}

    def expand(entry: dict[str, Any], trail: tuple[str, ...]) -> dict[str, Any]:
        parent_id = entry.get("extends")
        if parent_id is None:
            return entry
        if not isinstance(parent_id, str):
            raise SpecError("must be a system id", file=file,
                            field=f"systems.{entry.get('id')}.extends",
                            value=parent_id if isinstance(parent_id, int | float) else None,
                            allowed="a system id (text)")
        if parent_id in trail or parent_id not in by_id:
            what = "circular extends" if parent_id in trail else "extends an unknown system"
            raise SpecError(what, file=file, field=f"systems.{entry.get('id')}.extends",
                            value=parent_id, allowed=", ".join(sorted(by_id)))
        parent = expand(by_id[parent_id], (*trail, parent_id))
        out = copy.deepcopy({k: v for k, v in parent.items() if k != "extends"})
        for key, value in entry.items():
            if key == "extends":
                continue
            if key in MERGED_KEYS and isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = copy.deepcopy(value)
        return out

    return [expand(r, (str(r.get("id")),)) if isinstance(r, dict) else r for r in raw]


def _validate(model: type[M], raw: Any, *, file: str, where: str) -> M:
    if not isinstance(raw, dict):
        raise SpecError("expected a mapping of keys", file=file, field=where,
                        value=raw if isinstance(raw, str | int | float) else None)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise spec_error(exc, file=file, model=model, prefix=where) from None


def _check_refs(cat: Catalog, spec: SystemSpec, file: str, where: str) -> None:
    """Every part and chip a system names must exist in the catalog, in the right section."""
    def need(section: Mapping[str, Any], part: str | None, field_: str, kind: str) -> None:
        if part is not None and part not in section:
            raise SpecError(f"unknown {kind}", file=file, field=f"{where}.{field_}", value=part,
                            allowed=", ".join(sorted(section)))

    need(cat.chips, spec.chip, "chip", "chip")
    if spec.node.cpus:
        need(cat.cpus, spec.node.cpus.part, "node.cpus.part", "cpu")
    for i, n in enumerate(spec.node.nics):
        need(cat.nics, n.part, f"node.nics[{i}].part", "nic")
    for i, t in enumerate(spec.scale_up.switches):
        need(cat.switches, t.part, f"scale_up.switches[{i}].part", "switch")
    if spec.scale_up.optics:
        need(cat.transceivers, spec.scale_up.optics.part, "scale_up.optics.part", "transceiver")
    so = spec.scale_out
    need(cat.switches, so.switch, "scale_out.switch", "switch")
    need(cat.transceivers, so.transceiver, "scale_out.transceiver", "transceiver")
    need(cat.transceivers, so.nic_transceiver, "scale_out.nic_transceiver", "transceiver")
    _check_structure(spec, file, where)


def _check_structure(spec: SystemSpec, file: str, where: str) -> None:
    """Structural consistency that a single field cannot express."""
    su, so = spec.scale_up, spec.scale_out
    if su.domain_chips % spec.node.chips:
        raise SpecError(f"scale-up domain must hold whole nodes of {spec.node.chips} chips",
                        file=file, field=f"{where}.scale_up.domain_chips",
                        value=su.domain_chips)
    if su.kind in ("torus", "nd_full_mesh"):
        product = 1
        for d in su.dims:
            product *= d
        if not su.dims or product != su.domain_chips:
            raise SpecError(f"dims must multiply to domain_chips ({su.domain_chips}) for a "
                            f"{su.kind}", file=file, field=f"{where}.scale_up.dims",
                            value=str(su.dims))
    if so.kind == "fat_tree" and (so.switch is None or so.transceiver is None):
        raise SpecError("a fat_tree scale-out needs both 'switch' and 'transceiver'",
                        file=file, field=f"{where}.scale_out")


def _sections(doc: Any, file: str) -> dict[str, list[Any]]:
    """The top-level sections of a catalog file (a lone system is accepted at top level)."""
    # ``id`` is never a section name, so it marks a lone system (which may take its ``chip``
    # from ``extends``, or lack it and be told so by validation).
    if isinstance(doc, dict) and "id" in doc:
        doc = {"systems": [doc]}
    if not isinstance(doc, dict):
        raise SpecError("expected a mapping with keys " + ", ".join(SECTIONS), file=file)
    out: dict[str, list[Any]] = {}
    for key, value in doc.items():
        if key not in SECTIONS:
            raise SpecError("unknown top-level key", file=file, field=str(key),
                            allowed=", ".join(SECTIONS))
        if not isinstance(value, list):
            raise SpecError("expected a list of entries", file=file, field=str(key))
        out[key] = value
    return out


def merge_file(cat: Catalog, path: str | Path, raw_systems: Mapping[str, dict[str, Any]]
               ) -> tuple[Catalog, dict[str, dict[str, Any]]]:
    """Add (or replace) the entries of one YAML file to a catalog."""
    file = str(path)
    return merge_doc(cat, read_yaml(path), raw_systems, file)


def merge_doc(cat: Catalog, doc: Any, raw_systems: Mapping[str, dict[str, Any]], file: str
              ) -> tuple[Catalog, dict[str, dict[str, Any]]]:
    """``merge_file`` for a document already parsed (``file`` names it in errors)."""
    sections = _sections(doc, file)
    updates: dict[str, dict[str, Any]] = {}
    for name in ("chips", "transceivers", "switches", "cpus", "nics"):
        entries = dict(getattr(cat, name))
        for i, raw in enumerate(sections.get(name, [])):
            item = _validate(SECTIONS[name], raw, file=file, where=f"{name}[{i}]")
            entries[str(getattr(item, "id"))] = item  # noqa: B009 - every section has ids
        updates[name] = entries
    cat = replace(cat, **updates)
    raw_list = sections.get("systems", [])
    expanded = _resolve_extends(raw_list, raw_systems, file)
    systems, origins = dict(cat.systems), dict(cat.origins)
    new_raw = dict(raw_systems)
    for i, raw in enumerate(expanded):
        where = f"systems[{i}]"
        spec = _validate(SystemSpec, raw, file=file, where=where)
        _check_refs(cat, spec, file, where)
        systems[spec.id], origins[spec.id], new_raw[spec.id] = spec, file, raw
    return replace(cat, systems=systems, origins=origins), new_raw


@lru_cache(maxsize=1)
def _builtin() -> tuple[Catalog, dict[str, dict[str, Any]]]:
    cat, raw = Catalog(), dict[str, dict[str, Any]]()
    for name in ("chips.yaml", "parts.yaml", "systems.yaml"):
        cat, raw = merge_file(cat, CATALOG_DIR / name, raw)
    return cat, raw


def builtin_raw_system(system_id: str) -> dict[str, Any]:
    """A copy of a built-in system's mapping as its YAML gives it (``extends`` expanded,
    catalog units): the starting point for variants (sweeps)."""
    cat, raw = _builtin()
    cat.system(system_id)  # an unknown id: a SpecError listing the known ones
    return copy.deepcopy(raw[system_id])


@lru_cache(maxsize=1)
def _raw_chips() -> dict[str, dict[str, Any]]:
    doc = read_yaml(CATALOG_DIR / "chips.yaml")
    return {str(c["id"]): c for c in doc.get("chips", []) if isinstance(c, dict)}


def builtin_raw_chip(chip_id: str) -> dict[str, Any]:
    """A copy of a built-in chip's mapping as its YAML gives it (catalog units)."""
    raw = _raw_chips()
    if chip_id not in raw:
        raise SpecError("unknown chip", field="chip", value=chip_id,
                        allowed=", ".join(sorted(raw)))
    return copy.deepcopy(raw[chip_id])


def catalog_with(doc: Mapping[str, Any], file: str) -> Catalog:
    """The built-in catalog with the entries of ``doc`` (a user file's sections) added."""
    cat, raw = _builtin()
    return merge_doc(cat, dict(doc), raw, file)[0]


def load_catalog(*user_files: str | Path) -> Catalog:
    """The built-in catalog, with each user file's entries added on top."""
    cat, raw = _builtin()
    for f in user_files:
        cat, raw = merge_file(cat, f, raw)
    return cat


def user_system_ids(path: str | Path) -> list[str]:
    """The system ids a user file defines, in order (for ``--system file.yaml``)."""
    sections = _sections(read_yaml(path), str(path))
    return [str(s.get("id")) for s in sections.get("systems", []) if isinstance(s, dict)]
