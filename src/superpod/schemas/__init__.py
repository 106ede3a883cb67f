"""JSON Schemas (draft 2020-12) of every command's ``--json`` output, one file per command
(``plan train`` -> ``plan-train.json``); ``tests/test_schemas.py`` validates real outputs
against them. The key vocabulary is in the README ("JSON vocabulary")."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any


def schema(command: str) -> dict[str, Any]:
    """The schema of ``superpod COMMAND --json`` (``"plan train"`` or ``"plan-train"``)."""
    text = files("superpod").joinpath("schemas", f"{command.replace(' ', '-')}.json")
    return json.loads(text.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def names() -> list[str]:
    """Every command that has a schema."""
    return sorted(p.name.removesuffix(".json") for p in files("superpod").joinpath(
        "schemas").iterdir() if p.name.endswith(".json"))
