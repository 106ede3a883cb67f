"""The library API that the CLI is a thin layer over.

>>> from superpod.api import show
>>> show("cloudmatrix384")["chips"]
384
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superpod.hardware.catalog import Catalog, load_catalog
from superpod.hardware.system import System, build_system, system_to_dict


def catalog(system_files: Sequence[str | Path] = ()) -> Catalog:
    """The built-in catalog plus the user's files."""
    return load_catalog(*system_files)


def system(system_id: str, chips: int | None = None,
           system_files: Sequence[str | Path] = ()) -> System:
    """Build a system by id (a preset or one defined in ``system_files``)."""
    cat = catalog(system_files)
    return build_system(cat.system(system_id), cat, chips)


def show(system_id: str, chips: int | None = None,
         system_files: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The ``show --json`` object for one system."""
    return system_to_dict(system(system_id, chips, system_files))


def compare(system_ids: Sequence[str], chips: int | None = None,
            system_files: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The ``compare --json`` object: ``{"systems": [show, ...]}``."""
    cat = catalog(system_files)
    return {"systems": [system_to_dict(build_system(cat.system(s), cat, chips))
                        for s in system_ids]}
