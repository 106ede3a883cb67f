"""Every command's ``--json`` has a JSON Schema shipped in the package, real outputs
validate against it, and its keys follow the one vocabulary (README, "JSON vocabulary")."""

from __future__ import annotations

import re
from typing import Any

import pytest
from schema_samples import SAMPLES, run
from typer.main import get_command

from superpod import schemas
from superpod.cli import app

jsonschema = pytest.importorskip("jsonschema")

#: units a key may end in, and names that must not appear (one key per quantity)
FORBIDDEN = re.compile(r"(_kwh|_kw(_|$)|_ms(_|$)|_days?(_|$)|_per_day|_(gb|tb|mb|gib)(_|$)|"
                       r"_us(_|$)|joule|utilisation|_gbps|_tflops|_hours?(_|$)|_mw(_|$))")


def _commands() -> set[str]:
    root: Any = get_command(app)
    out = set()
    for name, cmd in root.commands.items():
        out |= ({f"{name}-{n}" for n in cmd.commands} if hasattr(cmd, "commands") else {name})
    return out


def test_every_command_has_a_schema() -> None:
    assert set(schemas.names()) == _commands()


@pytest.mark.parametrize("name", schemas.names())
def test_schema_is_valid(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schemas.schema(name))


@pytest.mark.parametrize("name,argv", [(n, a) for n, argvs in SAMPLES.items() for a in argvs],
                         ids=[f"{n}-{i}" for n, argvs in SAMPLES.items()
                              for i in range(len(argvs))])
def test_real_output_fits_its_schema(name: str, argv: list[str]) -> None:
    jsonschema.Draft202012Validator(schemas.schema(name)).validate(run(argv))


def test_calibrate_output_fits(calibrate_json: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schemas.schema("calibrate")).validate(calibrate_json)


def test_a_renamed_key_fails() -> None:
    """The schemas are strict: an unknown key (an old spelling) does not validate."""
    doc = run(SAMPLES["cost"][0])
    doc["tokens_per_joule"] = doc.pop("tokens_per_j")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schemas.schema("cost")).validate(doc)


def _keys(s: Any) -> set[str]:
    """Every record key a schema lists (map keys are ids, not vocabulary)."""
    if not isinstance(s, dict):
        return set()
    out = set(s.get("properties", {}))
    for v in s.get("properties", {}).values():
        out |= _keys(v)
    for k in ("items", "additionalProperties"):
        out |= _keys(s.get(k))
    for v in [*s.get("anyOf", []), *s.get("$defs", {}).values()]:
        out |= _keys(v)
    return out


@pytest.mark.parametrize("name", schemas.names())
def test_keys_follow_the_vocabulary(name: str) -> None:
    keys = _keys(schemas.schema(name))
    assert keys
    # a sweep row names its inputs by dotted path (system.set.scale_out.nic_bandwidth)
    word = r"[a-z][a-z0-9_]*"
    pattern = rf"{word}(\.{word})*" if name == "sweep" else word
    assert all(re.fullmatch(pattern, k) for k in keys), keys
    assert not sorted(k for k in keys if FORBIDDEN.search(k))
    if name != "chips":  # a chip's rated power; a system's power is it_power_w
        assert "power_w" not in keys


def test_one_key_per_quantity_across_commands() -> None:
    every = set().union(*(_keys(schemas.schema(n)) for n in schemas.names()))
    for old in ("tokens_per_joule", "it_power_kw", "utilisation", "power_kw",
                "facility_energy_kwh_per_year", "interruptions_per_day"):
        assert old not in every
    assert {"tokens_per_j", "it_power_w", "utilization", "interruptions_per_s"} <= every
