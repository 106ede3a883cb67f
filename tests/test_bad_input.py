"""Bad input through the CLI: one line naming file, field, value and what is allowed; exit 2.

Every test runs the CLI in process (``typer.testing.CliRunner``) on YAML written to
``tmp_path``. The vendored click mixes stderr into ``result.output``, which is what a user
sees on the terminal, so the checks read that (and check that it went to stderr).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from superpod.cli import app
from superpod.errors import SpecError

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

#: a complete system, written at top level (the "one system per file" form)
SYSTEM = """\
id: mine
name: My pod
vendor: Me
year: 2024
status: user
evidence: assumption
source: my own notes
chip: h100-sxm
chips: 16
node: {name: box, chips: 8}
scale_up: {kind: switched, protocol: NVLink, domain_chips: 8, latency: 1 us}
scale_out: {kind: none}
cabinets: {chips_per_compute_cabinet: 32}
"""

#: a complete user chip, under ``chips:``
CHIP = """\
chips:
  - id: mychip
    name: My chip
    vendor: Me
    year: 2025
    status: user
    evidence: assumption
    source: my own notes
    peak_dense: {bf16: "1 PFLOP/s"}
    hbm_capacity: "80 GB"
    hbm_bandwidth: "3 TB/s"
    scale_up_bandwidth_unidir: "450 GB/s"
    power: "700 W"
    power_evidence: assumption
"""


def write(tmp_path: Path, text: str, name: str = "my.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def extends(body: str, parent: str = "dgx-h100") -> str:
    """A ``systems:`` list with one system ``mine`` extending ``parent`` plus ``body``."""
    return f"systems:\n  - id: mine\n    extends: {parent}\n" + "".join(
        f"    {line}\n" for line in body.splitlines())


def bad(args: list[str]) -> str:
    """Run the CLI, check the bad-input contract, and return the one line it printed."""
    r = runner.invoke(app, args)
    text = ANSI.sub("", r.output)
    assert r.exit_code == 2, text
    assert isinstance(r.exception, SystemExit), repr(r.exception)  # no uncaught exception
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert r.stdout.strip() == "" and ANSI.sub("", r.stderr).strip() == lines[0]  # on stderr
    if "--json" in args:  # the JSON error object, as its one line would read
        e = json.loads(lines[0])["error"]
        assert set(e) == {"message", "file", "field", "value", "allowed"}
        return "error: " + str(SpecError(e["message"], file=e["file"], field=e["field"],
                                          value=e["value"], allowed=e["allowed"]))
    assert lines[0].startswith("error: ")
    return lines[0]


def bad_file(tmp_path: Path, text: str, command: tuple[str, ...] = ("show",)) -> tuple[str, str]:
    path = write(tmp_path, text)
    return bad([*command, "--system", path]), path


# ----------------------------------------------------------------------------- YAML itself


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, "systems: [\n  {id: mine, chip: h100-sxm\n")
    assert path in line
    assert "malformed YAML" in line
    assert re.search(r"line \d+", line)
    assert "expected ',' or '}'" in line  # what would have been allowed there


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, SYSTEM + "chips: 32\n")
    assert path in line
    assert "duplicate key 'chips'" in line
    assert re.search(r"line 14\b", line)


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, "- a\n- b\n")
    assert path in line and "expected a mapping" in line and "systems" in line


def test_unknown_top_level_key_lists_sections(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, "sytems: []\n")
    assert path in line and "sytems" in line and "unknown top-level key" in line
    assert "allowed: chips, transceivers, switches, cpus, nics, systems" in line


# ----------------------------------------------------------------------------- keys and fields


def test_unknown_key_lists_allowed_keys(tmp_path: Path) -> None:
    text = SYSTEM.replace("latency: 1 us}", "latency: 1 us, bandwith_unidir: 450 GB/s}")
    line, path = bad_file(tmp_path, text)
    assert path in line
    assert "systems[0].scale_up.bandwith_unidir" in line
    assert "unknown key" in line
    allowed = line.split("allowed:")[1]
    assert "bandwidth_unidir" in allowed and "domain_chips" in allowed and "latency" in allowed


def test_unknown_key_in_a_chip(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, CHIP + '    hbm_capacty: "80 GB"\n', ("chips",))
    assert path in line and "chips[0].hbm_capacty" in line and "unknown key" in line
    assert "hbm_capacity" in line.split("allowed:")[1]


def test_missing_required_field_in_a_listed_system(tmp_path: Path) -> None:
    listed = "systems:\n" + "".join(
        ("  - " if i == 0 else "    ") + ln + "\n"
        for i, ln in enumerate(SYSTEM.replace("chip: h100-sxm\n", "").splitlines()))
    line, path = bad_file(tmp_path, listed)
    assert path in line and "systems[0].chip" in line and "missing required field" in line


def test_missing_required_field_in_a_top_level_system(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, SYSTEM.replace("chip: h100-sxm\n", ""))
    assert path in line and "systems[0].chip" in line and "missing required field" in line


# ----------------------------------------------------------------------------- quantities


def test_negative_bandwidth(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, extends('scale_out: {nic_bandwidth: "-400 Gb/s"}'))
    assert path in line
    assert "systems[0].scale_out.nic_bandwidth" in line
    assert "-400 Gb/s" in line
    assert "must not be negative" in line


def test_unitless_number(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, CHIP.replace('"80 GB"', "80"), ("chips",))
    assert path in line and "chips[0].hbm_capacity" in line
    assert "= 80" in line
    assert "needs a number with a unit" in line and "GB" in line and "GiB" in line


def test_wrong_unit_dimension(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, CHIP.replace('"3 TB/s"', '"3 W"'), ("chips",))
    assert path in line and "chips[0].hbm_bandwidth" in line
    assert "'3 W'" in line
    assert "not a bytes/s unit" in line and "TB/s" in line


def test_wrong_type_names_value(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, CHIP.replace("year: 2025", "year: soon"), ("chips",))
    assert path in line and "chips[0].year" in line and "'soon'" in line and "integer" in line


# ----------------------------------------------------------------------------- references


def test_unknown_chip_lists_known_chips(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, SYSTEM.replace("chip: h100-sxm", "chip: h1000"))
    assert path in line and "systems[0].chip" in line
    assert "unknown chip" in line and "'h1000'" in line
    allowed = line.split("allowed:")[1]
    assert "h100-sxm" in allowed and "gb200" in allowed


def test_user_chip_becomes_known(tmp_path: Path) -> None:
    """The allowed list of an unknown chip includes chips defined in the same file."""
    line, _ = bad_file(tmp_path, CHIP + "systems:\n  - id: mine\n    extends: dgx-h100\n"
                       "    chip: mychip2\n")
    assert "'mychip2'" in line and "mychip" in line.split("allowed:")[1]


@pytest.mark.parametrize(("body", "field"), [
    ("scale_out: {switch: quantum-nosuch}", "systems[0].scale_out.switch"),
    ("scale_up: {switches: [{name: x, part: quantum-nosuch, count: 1, per: node}]}",
     "systems[0].scale_up.switches[0].part"),
])
def test_unknown_switch_part(tmp_path: Path, body: str, field: str) -> None:
    line, path = bad_file(tmp_path, extends(body))
    assert path in line and field in line
    assert "unknown switch" in line and "'quantum-nosuch'" in line
    assert "quantum2-qm9700" in line.split("allowed:")[1]


def test_unknown_transceiver_part(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, extends("scale_out: {nic_transceiver: osfp-9000g}"))
    assert path in line and "systems[0].scale_out.nic_transceiver" in line
    assert "unknown transceiver" in line and "'osfp-9000g'" in line
    assert "osfp-400g-dr4" in line.split("allowed:")[1]


def test_extends_unknown_system(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, extends("chips: 16", parent="dgx-h1000"))
    assert path in line and "systems.mine.extends" in line
    assert "'dgx-h1000'" in line and "dgx-h100" in line.split("allowed:")[1]


def test_unknown_system_on_the_command_line() -> None:
    line = bad(["show", "nosuch"])
    assert "system" in line and "unknown system" in line and "'nosuch'" in line
    allowed = line.split("allowed:")[1]
    assert "dgx-h100" in allowed and "gb200-nvl72" in allowed


def test_unknown_system_in_compare() -> None:
    line = bad(["compare", "dgx-h100", "nosuch"])
    assert "'nosuch'" in line and "dgx-h100" in line.split("allowed:")[1]


# ----------------------------------------------------------------------------- structure


def test_torus_dims_must_multiply_to_domain(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, extends("scale_up: {kind: torus, dims: [2, 3]}"))
    assert path in line and "systems[0].scale_up.dims" in line
    assert "[2, 3]" in line
    assert "multiply to domain_chips (8)" in line


def test_domain_must_hold_whole_nodes(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, extends("scale_up: {domain_chips: 12}"))
    assert path in line and "systems[0].scale_up.domain_chips" in line
    assert "= 12" in line
    assert "whole nodes of 8 chips" in line


def test_fat_tree_needs_switch_and_transceiver(tmp_path: Path) -> None:
    line, path = bad_file(tmp_path, SYSTEM.replace("{kind: none}", "{kind: fat_tree}"))
    assert path in line and "systems[0].scale_out" in line
    assert "'switch'" in line and "'transceiver'" in line


# ----------------------------------------------------------------------------- command line


def test_system_file_not_found(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    line = bad(["show", "dgx-h100", "--system", missing])
    assert missing in line and "file not found" in line


def test_case_file_not_found(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    line = bad(["validate", missing])
    assert missing in line and "file not found" in line


def test_zero_chips_is_a_usage_error() -> None:
    r = runner.invoke(app, ["show", "dgx-h100", "--chips", "0"])
    assert r.exit_code == 2
    assert "Traceback" not in r.output and "--chips" in r.output


def test_two_systems_in_file_need_an_id(tmp_path: Path) -> None:
    path = write(tmp_path, "systems:\n  - {id: a, extends: dgx-h100}\n"
                           "  - {id: b, extends: dgx-h100}\n")
    line = bad(["show", "--system", path])
    assert "SYSTEM" in line and "a, b" in line


# ----------------------------------------------------------------------------- good files


def test_user_system_shown_without_an_id(tmp_path: Path) -> None:
    path = write(tmp_path, SYSTEM)
    r = runner.invoke(app, ["show", "--system", path, "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["id"] == "mine" and row["chips"] == 16 and row["chip"] == "h100-sxm"
    text = runner.invoke(app, ["show", "--system", path])
    assert text.exit_code == 0 and "My pod" in text.stdout


def test_top_level_system_may_extend_a_preset(tmp_path: Path) -> None:
    path = write(tmp_path, "id: mine\nextends: dgx-h100\nchips: 64\n")
    r = runner.invoke(app, ["show", "--system", path, "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["id"] == "mine" and row["chips"] == 64 and row["chip"] == "h100-sxm"


def test_user_chip_and_system_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, CHIP + "systems:\n  - id: mine\n    extends: dgx-h100\n"
                           "    chip: mychip\n    chips: 32\n")
    r = runner.invoke(app, ["show", "--system", path, "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["chip"] == "mychip" and row["chips"] == 32
    assert row["hbm_bytes"] == pytest.approx(32 * 80e9)
    assert row["peak_flop_per_s"]["bf16"] == pytest.approx(32 * 1e15)


# ----------------------------------------------------------------------------- validate

GOOD_CASE = """\
- id: good-gemm
  kind: kernel
  source: Azure/AI-benchmarking-guide ND_H200_v5_results.md, GEMM CuBLASLt (FP8) table
  confidence: high
  system: {preset: hgx-h200, chips: 1}
  kernel: {op: gemm, m: 8192, n: 8192, k: 8192, dtype: fp8}
  measured: {metric: tflops, value: 1300.6}
"""


def _case(case_id: str, *, kernel: str = "{op: gemm, m: 8192, n: 8192, k: 8192, dtype: fp8}",
          preset: str = "hgx-h200", measured: str = "{metric: tflops, value: 1300.6}",
          kind: str = "kernel", extra: str = "") -> str:
    return (f"- id: {case_id}\n  kind: {kind}\n  source: somewhere\n  confidence: high\n"
            f"  system: {{preset: {preset}, chips: 1}}\n  kernel: {kernel}\n"
            f"  measured: {measured}\n{extra}")


def test_validate_reports_each_broken_case_and_goes_on(tmp_path: Path) -> None:
    text = (GOOD_CASE
            + _case("bad-key", kernel="{op: gemm, m: 8192, n: 8192, k: 8192, mm: 3}")
            + _case("bad-metric", measured="{metric: mfu, value: 0.5}")
            + _case("bad-preset", preset="nosuch-preset")
            + "- just a string\n")
    path = write(tmp_path, text, "cases.yaml")
    r = runner.invoke(app, ["validate", path, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    by_id = {c["id"]: c for c in out["cases"]}
    assert list(by_id) == ["good-gemm", "bad-key", "bad-metric", "bad-preset", "case[4]"]

    good = by_id["good-gemm"]
    assert good["status"] == "ok" and good["metric"] == "tflops" and good["predicted"] > 0

    for case_id in ("bad-key", "bad-metric", "bad-preset", "case[4]"):
        c = by_id[case_id]
        assert c["status"] == "error", c
        assert "\n" not in c["reason"] and "Traceback" not in c["reason"]
    key = by_id["bad-key"]["reason"]
    assert path in key and "kernel.mm" in key and "unknown key" in key and "allowed:" in key
    metric = by_id["bad-metric"]["reason"]
    assert path in metric and "measured.metric" in metric and "'mfu'" in metric
    assert "tflops" in metric.split("allowed:")[1]
    preset = by_id["bad-preset"]["reason"]
    assert "unknown preset" in preset and "system.preset" in preset and "'nosuch-preset'" in preset
    assert "hgx-h200" in preset.split("allowed:")[1]
    item = by_id["case[4]"]["reason"]
    assert path in item and "case[4]" in item and "mapping" in item

    summary = out["summary"]
    assert summary["kernel"]["cases"] == 4 and summary["kernel"]["ok"] == 1
    assert summary["kernel"]["error"] == 3
    assert summary["unknown"]["error"] == 1
    for kind, s in summary.items():
        assert s["cases"] == s["ok"] + s["unsupported"] + s["error"], kind
    assert sum(s["cases"] for s in summary.values()) == len(out["cases"])


def test_validate_unknown_preset_is_an_error_for_any_kind(tmp_path: Path) -> None:
    """A kind superpod does not model yet is still an error when its preset is unknown."""
    collective = ("- id: ar\n  kind: collective\n  source: somewhere\n  confidence: high\n"
                  "  system: {preset: PRESET, chips: 8}\n"
                  "  collective: {op: all_reduce, bytes: 1048576, ranks: 8}\n"
                  "  measured: {metric: busbw_gbps, value: 100}\n")
    text = (collective.replace("PRESET", "nosuch-preset")
            + collective.replace("- id: ar", "- id: ar-ok").replace("PRESET", "dgx-h100"))
    path = write(tmp_path, text, "cases.yaml")
    r = runner.invoke(app, ["validate", path, "--json"])
    assert r.exit_code == 0, r.output
    by_id = {c["id"]: c for c in json.loads(r.stdout)["cases"]}
    assert by_id["ar"]["status"] == "error" and "'nosuch-preset'" in by_id["ar"]["reason"]
    assert by_id["ar-ok"]["status"] == "ok" and by_id["ar-ok"]["predicted"] > 0


def test_validate_file_that_is_not_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "id: x\n", "cases.yaml")
    line = bad(["validate", path])
    assert path in line and "YAML list of cases" in line


def test_validate_malformed_case_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_CASE + "- {id: broken\n", "cases.yaml")
    line = bad(["validate", path, "--json"])
    assert path in line and "malformed YAML" in line and re.search(r"line \d+", line)
