"""CLI conventions: ids whole at 80 columns and in pipes, wide tables as records, help
readable at 80 columns with every enumerated option's values, NO_COLOR, ``--version``,
shell completion, ``calibrate --json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from rich.console import Console
from rich.table import Table
from typer.main import get_command
from typer.testing import CliRunner

from superpod import __version__
from superpod.cli import app, choices
from superpod.cli.common import out
from superpod.report.fit import fit, natural_width

runner = CliRunner()


@pytest.fixture()
def cols80(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console as at 80 columns (a pipe gets 80 too)."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(out, "_width", None)


def _text(argv: list[str], code: int = 0) -> str:
    r = runner.invoke(app, argv, env={"COLUMNS": "80"})
    assert r.exit_code == code, r.output
    assert "…" not in r.stdout
    return r.stdout


def _words(text: str) -> set[str]:
    """Every token between separators (ids never contain these)."""
    for sep in "│┃|;:,()[]{}'\"=":
        text = text.replace(sep, " ")
    return set(text.split())


def _ids_whole(argv: list[str], ids: set[str]) -> None:
    words = _words(_text(argv))
    assert ids <= words, sorted(ids - words)


# --------------------------------------------------------------------------- 80 columns


def test_catalog_lists_keep_every_id_whole(cols80: None, cat: Any) -> None:
    _ids_whole(["systems"], set(cat.systems))
    _ids_whole(["chips"], set(cat.chips))


CASES: list[tuple[list[str], set[str]]] = [
    (["show", "gb200-nvl72"], {"gb200-nvl72"}),
    (["compare", "gb200-nvl72", "cloudmatrix384", "atlas-950-superpod"],
     {"gb200-nvl72", "cloudmatrix384", "atlas-950-superpod"}),
    (["topology", "gb200-nvl72"], {"gb200-nvl72"}),
    (["collective", "--system", "gb200-nvl72", "--op", "all_reduce", "--bytes", "1GiB"],
     {"gb200-nvl72", "all_reduce"}),
    (["train", "--system", "gb200-nvl72", "--model", "llama3-8b", "--global-batch", "72",
      "--seq-len", "4096"], {"gb200-nvl72"}),
    (["plan", "train", "--system", "dgx-h100", "--model", "llama3-8b", "--global-batch", "16",
      "--seq-len", "2048", "--top", "2"], set()),
    (["infer", "--system", "gb200-nvl72", "--model", "llama3-70b", "--tp", "8", "--chips", "8",
      "--phase", "decode", "--batch", "8"], {"gb200-nvl72"}),
    (["plan", "infer", "--system", "dgx-h100", "--model", "llama3-8b", "--slo-tpot-ms", "50",
      "--top", "2", "--no-disaggregate"], set()),
    (["serve-sim", "--system", "dgx-h100", "--model", "llama3-8b", "--rate", "2",
      "--duration", "5", "--tp", "8"], set()),
    (["cost", "--system", "cloudmatrix384", "--tokens-per-s", "1e5"], {"cloudmatrix384"}),
]


@pytest.mark.parametrize("argv,ids", CASES, ids=[" ".join(a[:2]) for a, _ in CASES])
def test_ids_whole_at_80_columns(argv: list[str], ids: set[str], cols80: None) -> None:
    _ids_whole(argv, ids)


def test_reliability_causes_whole(cols80: None) -> None:
    argv = ["reliability", "--system", "dgx-h100", "--chips", "16384", "--model-params",
            "405e9", "--trials", "0"]
    doc = json.loads(runner.invoke(app, [*argv, "--json"]).stdout)
    _ids_whole(argv, {c["id"] for c in doc["by_cause"] if c["events_per_s"] > 0})


def test_validate_case_ids_whole(cols80: None,
                                 few_cases: tuple[Path, list[dict[str, Any]]]) -> None:
    f, few = few_cases
    _ids_whole(["validate", str(f)], {c["id"] for c in few})


def test_wide_table_becomes_records() -> None:
    console = Console(width=40, file=open(os.devnull, "w"))  # noqa: SIM115
    t = Table(title="wide")
    for h in ("id", "alpha", "beta"):
        t.add_column(h)
    t.add_row("gb200-nvl72-superlong-id", "x" * 20, "y" * 20)
    assert natural_width(console, t) > 40
    with console.capture() as cap:
        console.print(fit(console, t))
    text = cap.get()
    assert "gb200-nvl72-superlong-id" in text and "alpha: " + "x" * 20 in text
    narrow = Table()
    narrow.add_column("id")
    narrow.add_row("a")
    assert fit(console, narrow) is narrow


# --------------------------------------------------------------------------- --help


def _commands() -> list[tuple[str, Any]]:
    root: Any = get_command(app)
    found: list[tuple[str, Any]] = []
    for name, cmd in root.commands.items():
        if hasattr(cmd, "commands"):
            found += [(f"{name} {n}", c) for n, c in cmd.commands.items()]
        else:
            found.append((name, cmd))
    return found


#: free-text string options (ids, paths, quantities, layouts)
FREE_TEXT = {"--system", "--model", "--bytes", "--order", "--ep-library", "--device",
             "--checkpoint-bytes", "--storage-bandwidth", "--node-storage-bandwidth",
             "--interval", "--spares", "--prefill-layout", "--decode-layout", "--chip",
             "--out", "--ray-address", "--pareto", "--export"}


@pytest.mark.parametrize("name,cmd", _commands(), ids=[n for n, _ in _commands()])
def test_help_fits_80_columns_and_lists_choices(name: str, cmd: Any) -> None:
    r = runner.invoke(app, [*name.split(), "--help"], env={"COLUMNS": "80"},
                      terminal_width=80)
    assert r.exit_code == 0
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    flat = " ".join(r.stdout.split())
    for p in cmd.params:
        ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)
        if not p.opts[0].startswith("-") or p.is_flag or str not in (ann, *get_args(ann)):
            continue
        opt = max(p.opts, key=len)
        if opt in FREE_TEXT:
            continue
        assert "One of:" in (p.help or ""), f"{name} {opt}: allowed values not listed"
        values = (p.help or "").rsplit("One of:", 1)[1].rstrip(".").split(", ")
        assert all(v.strip() in flat for v in values)


def test_choices_match_the_library() -> None:
    from superpod.infer.config import KV_PRECISIONS, PHASES, PRECISIONS
    from superpod.network.algorithms import ALGORITHMS
    from superpod.network.expert_parallel import EP_ALGORITHMS
    from superpod.network.placement import ELEMENT_BYTES, OPS

    assert choices.COLLECTIVE_OPS == OPS
    assert set(choices.DTYPES) == set(ELEMENT_BYTES)
    assert set(choices.COLLECTIVE_ALGORITHMS) == {"auto", *ALGORITHMS, *EP_ALGORITHMS}
    assert PRECISIONS and KV_PRECISIONS and PHASES  # used directly by the infer commands
    from superpod.cost.prices import load_price_book

    assert set(choices.REGIONS) == {e.id for e in load_price_book().data.electricity}
    from superpod.sweep.run import ENGINES
    from superpod.train.search import SPACES

    assert set(choices.SEARCH_SPACES) == set(SPACES)
    assert choices.SWEEP_ENGINES == ENGINES
    from superpod.train.frameworks import NAMED_FRAMEWORKS

    assert choices.TRAIN_FRAMEWORKS == tuple(NAMED_FRAMEWORKS)


def test_choice_completion() -> None:
    assert choices.completer(choices.RECOMPUTE)("s") == ["selective"]


# --------------------------------------------------------------------------- colour


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([str(Path(sys.executable).parent / "superpod"), *argv],
                          env=full | env | {"COLUMNS": "200"}, capture_output=True,
                          text=True, timeout=60, check=False)


def test_no_color_honoured() -> None:
    coloured = _run({"FORCE_COLOR": "1"}, "chips")
    assert coloured.returncode == 0 and "\x1b[" in coloured.stdout
    plain = _run({"FORCE_COLOR": "1", "NO_COLOR": "1"}, "chips")
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout + plain.stderr


# --------------------------------------------------------------------------- --version etc.


def test_version() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"superpod {__version__}"


def test_show_completion() -> None:
    r = runner.invoke(app, ["--show-completion", "bash"], prog_name="superpod")
    assert r.exit_code == 0 and "complete" in r.stdout and "superpod" in r.stdout


def test_completion_offers_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell asks ``_SUPERPOD_COMPLETE``; an enumerated option completes its values."""
    r = runner.invoke(app, [], prog_name="superpod", env={
        "_SUPERPOD_COMPLETE": "complete_bash", "COMP_WORDS": "superpod train --recompute s",
        "COMP_CWORD": "3"})
    assert "selective" in r.stdout


def test_calibrate_json(calibrate_json: dict[str, Any], tmp_path: Path) -> None:
    doc, f = calibrate_json, tmp_path / "c.yaml"  # the fixture's output file
    assert doc["copy_bandwidth_bytes_per_s"] == 2.5e12
    assert doc["gemm"] == [{"m": 1024, "n": 1024, "k": 1024, "flop_per_s": 5e14}]
    assert f.exists()

