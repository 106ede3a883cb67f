"""User YAML files: ``extends:`` for chips as for systems, and a file's problems reported
together (one line each, up to 20)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from superpod.cli import app
from superpod.errors import MAX_PROBLEMS, SpecError
from superpod.hardware.catalog import load_catalog

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent

CHIP = """\
chips:
  - id: h100-500w
    extends: h100-sxm
    name: H100 capped at 500 W
    status: user
    evidence: assumption
    power_evidence: assumption
    source: my notes
    power: 500 W
    peak_dense: {fp8: 1500 TFLOP/s}
"""


def _write(tmp_path: Path, text: str) -> str:
    f = tmp_path / "mine.yaml"
    f.write_text(text, encoding="utf-8")
    return str(f)


def test_chip_extends_a_catalog_chip(tmp_path: Path) -> None:
    cat = load_catalog(_write(tmp_path, CHIP))
    mine, parent = cat.chip("h100-500w"), cat.chip("h100-sxm")
    assert mine.power_w == 500.0 and mine.name == "H100 capped at 500 W"
    assert mine.peak_flop_per_s["fp8"] == 1.5e15  # the map merges key by key ...
    assert mine.peak_flop_per_s["bf16"] == parent.peak_flop_per_s["bf16"]  # ... keeping bf16
    assert mine.hbm_bytes == parent.hbm_bytes and mine.devices == parent.devices


def test_chip_extends_a_chip_of_the_same_file(tmp_path: Path) -> None:
    text = CHIP + """\
  - id: h100-400w
    extends: h100-500w
    name: H100 capped at 400 W
    power: 400 W
"""
    c = load_catalog(_write(tmp_path, text)).chip("h100-400w")
    assert c.power_w == 400.0 and c.peak_flop_per_s["fp8"] == 1.5e15 and c.status == "user"


def test_example_chip_file_builds_a_system() -> None:
    r = runner.invoke(app, ["show", "--system", str(REPO / "examples/my-h200-1000w.yaml"),
                            "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["chip"] == "h200-1000w" and row["power_breakdown_w"]["accelerators"] == 8000.0


@pytest.mark.parametrize("parent,message", [("h100-sxmx", "extends an unknown chip"),
                                            ("h100-500w", "circular extends")])
def test_bad_chip_extends(tmp_path: Path, parent: str, message: str) -> None:
    text = CHIP.replace("extends: h100-sxm", f"extends: {parent}")
    with pytest.raises(SpecError) as e:
        load_catalog(_write(tmp_path, text))
    assert message in str(e.value) and "chips.h100-500w.extends" in str(e.value)


THREE = """\
chips:
  - id: a
    extends: h100-sxm
    power: -5 W
  - id: b
    extends: h100-sxm
    hbm_capacity: lots
systems:
  - id: mine
    extends: dgx-h100
    colour: blue
  - id: other
    extends: dgx-h100
    scale_out: {nic_transceiver: osfp-9000g}
"""


def test_a_files_problems_are_reported_together(tmp_path: Path) -> None:
    path = _write(tmp_path, THREE)
    r = runner.invoke(app, ["show", "mine", "--system", path])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 4, r.output
    assert all(line.startswith("error: ") and path in line for line in lines)
    fields = ["chips[0].power", "chips[1].hbm_capacity", "systems[0].colour",
              "systems[1].scale_out.nic_transceiver"]
    for f in fields:
        assert sum(f in line for line in lines) == 1, f


def test_at_most_twenty_problems(tmp_path: Path) -> None:
    text = "chips:\n" + "".join(f"  - id: c{i}\n    extends: h100-sxm\n    power: -1 W\n"
                                for i in range(25))
    with pytest.raises(SpecError) as e:
        load_catalog(_write(tmp_path, text))
    lines = str(e.value).splitlines()
    assert len(e.value.all) == MAX_PROBLEMS == 20
    assert len(lines) == 21 and lines[-1].endswith("and 5 more problem(s)")
    assert [f"chips[{i}].power" in lines[i] for i in range(20)] == [True] * 20


def test_one_problem_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        load_catalog(_write(tmp_path, CHIP.replace("500 W", "-500 W")))
    assert len(str(e.value).splitlines()) == 1
