"""Every command of the README works from a fresh checkout: the ``superpod`` lines of its
``bash`` blocks run in-process from a temporary folder holding only ``examples/``, the YAML
example loads and the Python example runs.

A line may state the exit code it documents with a trailing ``# exits N`` comment; any other
line must exit 0. Paths under ``/tmp/`` are rewritten into the test's temporary folder.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from superpod.cli import app

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
#: options whose value is a file a command writes
OUTPUT_OPTIONS = ("--trace", "--output", "-o", "--write-bands", "--report")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def shell_lines() -> list[str]:
    """The README's shell lines, continuation backslashes joined."""
    return [line.strip() for b in blocks("bash") for line in b.replace("\\\n", " ").splitlines()
            if line.strip()]


def superpod_lines() -> list[str]:
    return [line for line in shell_lines() if line.startswith("superpod ")]


def expected_code(line: str) -> int:
    m = re.search(r"#\s*exits (\d)", line)
    return int(m.group(1)) if m else 0


def _needs(argv: list[str]) -> str | None:
    """Why a README command cannot run here, or None."""
    if argv[0] == "calibrate" or "--calibration" in argv:
        try:
            import torch  # noqa: F401
        except ImportError:
            return "needs the calibrate extra (PyTorch), not installed here"
    return None


def _outputs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in OUTPUT_OPTIONS]


@pytest.fixture()
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder like a fresh clone's working directory, as the current directory."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_has_commands() -> None:
    lines = superpod_lines()
    assert len(lines) >= 25
    assert {shlex.split(line, comments=True)[1] for line in lines} >= {
        "systems", "chips", "show", "compare", "validate", "collective", "topology", "train",
        "plan", "infer", "serve-sim", "reliability", "cost"}


def _id(line: str) -> str:
    return " ".join(shlex.split(line, comments=True)[1:4])


@pytest.mark.parametrize("line", superpod_lines(), ids=[_id(x) for x in superpod_lines()])
def test_readme_command(line: str, fresh: Path) -> None:
    argv = [a.replace("/tmp/", f"{fresh}/") for a in shlex.split(line, comments=True)[1:]]
    reason = _needs(argv)
    if reason:
        pytest.skip(reason)
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == expected_code(line), f"{line}\n{r.output}"
    for path in _outputs(argv):
        assert Path(path).exists(), path
    if "--markdown" in argv:  # the README's tables are its output
        assert r.stdout.strip() in README, (
            f"README table out of date: {line} (python scripts/update_readme_tables.py)")


def test_readme_outputs_go_to_temporary_paths() -> None:
    """A README command writes only under /tmp (never a file a clone would then track)."""
    for line in superpod_lines():
        for path in _outputs(shlex.split(line, comments=True)):
            assert path.startswith("/tmp/"), line


def test_no_generated_file_is_tracked() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    generated = {"step.json", "my-h100.yaml", "bands.json"}
    assert not [t for t in tracked if Path(t).name in generated or t.endswith(".trace.json")]


def test_setup_line(fresh: Path) -> None:
    """The set-up line's venv and install need PyPI (a network: not run here); its extra
    exists and its last command runs."""
    setup = next(line for line in shell_lines() if line.startswith("python3 -m venv"))
    extra = re.search(r"-e '\.\[(\w+)\]'", setup)
    assert extra is not None
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert extra.group(1) in project["optional-dependencies"]
    tail = setup.rsplit("&&", 1)[1].strip().removeprefix(".venv/bin/")
    r = CliRunner().invoke(app, shlex.split(tail)[1:])
    assert r.exit_code == 0, r.output


def test_readme_yaml_example_loads(tmp_path: Path) -> None:
    (yaml_block,) = [b for b in blocks("yaml") if "systems:" in b]
    f = tmp_path / "mine.yaml"
    f.write_text(yaml_block, encoding="utf-8")
    r = CliRunner().invoke(app, ["show", "--system", str(f), "--json"])
    assert r.exit_code == 0, r.output


def test_readme_python_examples_run(fresh: Path) -> None:
    code = blocks("python")
    assert code
    for block in code:
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102
