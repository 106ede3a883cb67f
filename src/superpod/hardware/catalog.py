"""The catalog: chips, parts and system presets, from the package's YAML and the user's.

The built-in catalog lives in ``superpod/catalog/{chips,parts,systems}.yaml``. A user file
(``--system my.yaml``) may add or replace entries under the same top-level keys, or describe
one system at top level. ``extends: <id>`` lets a chip start from another chip and a system
from another system (maps such as ``peak_dense`` or ``scale_out`` merge key by key; every
other key replaces). A file's problems are reported together, up to 20.
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
#: keys whose maps merge under ``extends`` (by section); every other key replaces.
MERGED_KEYS = {"systems": frozenset({"node", "scale_up", "scale_out", "cabinets"}),
               "chips": frozenset({"peak_dense"})}
PART_SECTIONS = ("chips", "transceivers", "switches", "cpus", "nics")
Raw = dict[str, dict[str, dict[str, Any]]]  #: section -> id -> the entry as written

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


def _resolve_extends(section: str, raw: list[Any], base: Mapping[str, dict[str, Any]],
                     file: str, problems: list[SpecError]) -> list[Any]:
    """Expand ``extends:`` chains into full mappings (a chip from a chip, a system from a
    system); a broken chain is a problem of its entry, which is then left out."""
    by_id = dict(base) | {r["id"]: r for r in raw
                          if isinstance(r, dict) and isinstance(r.get("id"), str)}
    merged = MERGED_KEYS.get(section, frozenset())

    def expand(entry: dict[str, Any], trail: tuple[str, ...]) -> dict[str, Any]:
        parent_id = entry.get("extends")
        if parent_id is None:
            return entry
        what_id = section.removesuffix("s")
        if not isinstance(parent_id, str):
            raise SpecError(f"must be a {what_id} id", file=file,
                            field=f"{section}.{entry.get('id')}.extends",
                            value=parent_id if isinstance(parent_id, int | float) else None,
                            allowed=f"a {what_id} id (text)")
        if parent_id in trail or parent_id not in by_id:
            what = "circular extends" if parent_id in trail else f"extends an unknown {what_id}"
            raise SpecError(what, file=file, field=f"{section}.{entry.get('id')}.extends",
                            value=parent_id, allowed=", ".join(sorted(by_id)))
        parent = expand(by_id[parent_id], (*trail, parent_id))
        out = copy.deepcopy({k: v for k, v in parent.items() if k != "extends"})
        for key, value in entry.items():
            if key == "extends":
                continue
            if key in merged and isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = copy.deepcopy(value)
        return out

    expanded: list[Any] = []
    for r in raw:
        try:
            expanded.append(expand(r, (str(r.get("id")),)) if isinstance(r, dict) else r)
        except SpecError as exc:
            problems.append(exc)
            expanded.append(None)
    return expanded


def _validate(model: type[M], raw: Any, *, file: str, where: str) -> M:
    if not isinstance(raw, dict):
        raise SpecError("expected a mapping of keys", file=file, field=where,
                        value=raw if isinstance(raw, str | int | float) else None)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise spec_error(exc, file=file, model=model, prefix=where) from None


def _check_refs(cat: Catalog, spec: SystemSpec, file: str, where: str) -> None:
    """Every part and chip a system names must exist in the catalog, in the right section
    (every unknown reference reported)."""
    problems: list[SpecError] = []

    def need(section: Mapping[str, Any], part: str | None, field_: str, kind: str) -> None:
        if part is not None and part not in section:
            problems.append(SpecError(f"unknown {kind}", file=file, field=f"{where}.{field_}",
                                      value=part, allowed=", ".join(sorted(section))))

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
    if problems:
        raise SpecError.combine(problems)
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


def merge_file(cat: Catalog, path: str | Path, raw: Raw) -> tuple[Catalog, Raw]:
    """Add (or replace) the entries of one YAML file to a catalog.

    Every entry is checked; the file's problems are raised together (one ``SpecError``
    with a line each, up to ``MAX_PROBLEMS``)."""
    file = str(path)
    return merge_doc(cat, read_yaml(path), raw, file)


def merge_doc(cat: Catalog, doc: Any, raw: Raw, file: str) -> tuple[Catalog, Raw]:
    """``merge_file`` for a document already parsed (``file`` names it in errors)."""
    sections = _sections(doc, file)
    problems: list[SpecError] = []
    new_raw: Raw = {k: dict(v) for k, v in raw.items()}
    updates: dict[str, dict[str, Any]] = {}
    for name in PART_SECTIONS:
        entries = dict(getattr(cat, name))
        expanded = _resolve_extends(name, sections.get(name, []), raw.get(name, {}), file,
                                    problems)
        for i, item_raw in enumerate(expanded):
            if item_raw is None:
                continue
            try:
                item = _validate(SECTIONS[name], item_raw, file=file, where=f"{name}[{i}]")
            except SpecError as exc:
                problems.append(exc)
                continue
            item_id = str(getattr(item, "id"))  # noqa: B009 - every section has ids
            entries[item_id] = item
            new_raw.setdefault(name, {})[item_id] = item_raw
        updates[name] = entries
    cat = replace(cat, **updates)
    expanded = _resolve_extends("systems", sections.get("systems", []),
                                raw.get("systems", {}), file, problems)
    systems, origins = dict(cat.systems), dict(cat.origins)
    for i, sys_raw in enumerate(expanded):
        if sys_raw is None:
            continue
        where = f"systems[{i}]"
        try:
            spec = _validate(SystemSpec, sys_raw, file=file, where=where)
            _check_refs(cat, spec, file, where)
        except SpecError as exc:
            problems.append(exc)
            continue
        systems[spec.id], origins[spec.id] = spec, file
        new_raw.setdefault("systems", {})[spec.id] = sys_raw
    if problems:
        raise SpecError.combine(problems)
    return replace(cat, systems=systems, origins=origins), new_raw


BUILTIN_FILES = tuple(CATALOG_DIR / n for n in ("chips.yaml", "parts.yaml", "systems.yaml"))


@lru_cache(maxsize=1)
def _builtin() -> tuple[Catalog, Raw]:
    """The built-in catalog, validated; from the load cache when it holds it for these
    files' texts and this code (``superpod.boundary.load_cache``)."""
    from superpod.boundary.load_cache import cached_build

    def build() -> tuple[Catalog, Raw]:
        cat, raw = Catalog(), Raw()
        for path in BUILTIN_FILES:
            cat, raw = merge_file(cat, path, raw)
        return cat, raw

    return cached_build("catalog", BUILTIN_FILES, build)


def builtin_raw_system(system_id: str) -> dict[str, Any]:
    """A copy of a built-in system's mapping as its YAML gives it (``extends`` expanded,
    catalog units): the starting point for variants (sweeps)."""
    cat, raw = _builtin()
    cat.system(system_id)  # an unknown id: a SpecError listing the known ones
    return copy.deepcopy(raw["systems"][system_id])


def builtin_raw_chip(chip_id: str) -> dict[str, Any]:
    """A copy of a built-in chip's mapping as its YAML gives it (``extends`` expanded,
    catalog units)."""
    raw = _builtin()[1].get("chips", {})
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
