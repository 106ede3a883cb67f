"""The ``--system`` argument of the workload commands and ``system`` of the API: a catalog
id, a YAML file, or ``FILE:ID``."""

from __future__ import annotations

from pathlib import Path

from superpod.errors import SpecError


def resolve_id(system_id: str | None, files: list[str]) -> str:
    """The positional id, or the single system a ``--system`` file defines."""
    if system_id is not None:
        return system_id
    from superpod.hardware.catalog import user_system_ids

    ids = [i for f in files for i in user_system_ids(f)]
    if len(ids) == 1:
        return ids[0]
    raise SpecError("name a SYSTEM id" + (f" (the files define: {', '.join(ids)})"
                                          if ids else ""), field="SYSTEM")


def system_arg(value: str) -> tuple[str, list[str]]:
    """A catalog id, a YAML file, or FILE:ID -> (system id, [files])."""
    path, _, sid = value.partition(":") if ".yaml:" in value or ".yml:" in value else (
        value, "", "")
    if path.endswith((".yaml", ".yml")) or _is_file(path):
        return resolve_id(sid or None, [path]), [path]
    return value, []


def _is_file(path: str) -> bool:
    """Whether ``path`` names a file (a name too long for the system names none)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False
