"""Hostile input over every command and loader (issue 14's closing target), a few thousand
inputs in all: no traceback, exit code 0 / 1 / 2, strict JSON, the JSON error object with
``--json``, no hang, no bad value answered. The strategies and the judge live in
``tests/fuzzing.py``; ``bench/bench_fuzz.py`` runs the long version and prints the counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import fuzzing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: inputs per command here (x 17 commands and their loaders); the long run is in bench/
EXAMPLES = 120
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def ws() -> Iterator[fuzzing.Workspace]:
    w = fuzzing.Workspace()
    yield w
    w.close()


def check(case: fuzzing.Case, ws: fuzzing.Workspace) -> None:
    o = fuzzing.run_case(case, ws)
    failures = fuzzing.judge(case, o)
    assert not failures, (failures, case.command, case.notes, o.exit_code,
                          (o.stderr or o.stdout)[-400:], repr(o.exception))


def test_every_command_is_fuzzed() -> None:
    """A command added to the CLI without a fuzz base fails here."""
    root = fuzzing._root()
    names = {(name,) for name in root.commands if name != "plan"}
    names |= {("plan", sub) for sub in root.commands["plan"].commands}
    assert names == {b.path for b in fuzzing.BASES.values()}


@pytest.mark.parametrize("command", sorted(fuzzing.BASES))
def test_hostile_arguments(command: str, ws: fuzzing.Workspace) -> None:
    @FUZZ
    @given(fuzzing.command_case(command))
    def one(case: fuzzing.Case) -> None:
        check(case, ws)

    one()


LOADERS = {
    "system and chip YAML": ("chips", "--system", fuzzing.system_yaml()),
    "model config.json": ("train", "--model", fuzzing.model_json()),
    "trace": ("serve-sim", "--trace", fuzzing.trace_file()),
    "calibration": ("validate", "--calibration", fuzzing.calibration_file()),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_hostile_files(loader: str, ws: fuzzing.Workspace) -> None:
    command, option, files = LOADERS[loader]
    base = fuzzing.BASES[command]

    @FUZZ
    @given(files, st.booleans())
    def one(drawn: tuple[fuzzing.FileArg, bool], as_json: bool) -> None:
        file, must = drawn
        args = fuzzing._set(list(base.args), option, file)
        if command == "validate":
            args[0] = fuzzing.FileArg("bytes", fuzzing._dump_yaml(fuzzing.CASE_BASE))
        check(fuzzing.Case(command, args, must, as_json, [f"{option}={file!r:.80}"]), ws)

    one()


@FUZZ
@given(fuzzing.case_file())
def test_hostile_case_files(drawn: tuple[fuzzing.FileArg, bool | str]) -> None:
    file, verdict = drawn
    ws = fuzzing.Workspace()
    try:
        check(fuzzing.Case("validate", [file], verdict, True, [repr(file)[:80]]), ws)
    finally:
        ws.close()
