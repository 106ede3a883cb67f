"""Start-up: the load cache of the package's YAML files (parsed documents, validated
objects) and the one-command app of ``superpod.cli.main`` change nothing that a run prints
or returns."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from superpod.boundary import load_cache
from superpod.cli import app, app_for
from superpod.errors import SpecError
from superpod.hardware import loading
from superpod.hardware.catalog import CATALOG_DIR

runner = CliRunner()
CHIPS = CATALOG_DIR / "chips.yaml"


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("SUPERPOD_CACHE_DIR", str(folder))
    return folder


def _fresh(path: Path) -> object:
    return loading.parse_yaml_text(path.read_text(encoding="utf-8"), str(path))


def _refuse(*_: object) -> object:
    raise AssertionError("parsed again: the cache was not used")


# ------------------------------------------------------------------------- parse cache


def test_cached_document_equals_a_fresh_parse(cache: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    first = loading.read_yaml(CHIPS)
    assert first == _fresh(CHIPS)
    assert len(list(cache.iterdir())) == 1
    monkeypatch.setattr(loading, "parse_yaml_text", _refuse)
    second = loading.read_yaml(CHIPS)
    assert second == first and second is not first  # new objects each read


def test_every_packaged_yaml_file_round_trips(cache: Path) -> None:
    pkg = Path(load_cache.PACKAGE_DIR)
    files = sorted(pkg.glob("catalog/*.yaml")) + sorted(pkg.glob("calibration/*.yaml"))
    for f in files:
        loading.read_yaml(f)  # writes the entry
        assert loading.read_yaml(f) == _fresh(f), f.name


def test_an_edited_file_is_parsed_again(cache: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is the text: a changed file (same path) is read anew, never stale."""
    monkeypatch.setattr(load_cache, "PACKAGE_DIR", tmp_path)  # its files count as ours
    f = tmp_path / "catalog.yaml"
    f.write_text("a: 1\nb: [x, y]\n", encoding="utf-8")
    assert loading.read_yaml(f) == {"a": 1, "b": ["x", "y"]}
    assert len(list(cache.iterdir())) == 1
    f.write_text("a: 2\n", encoding="utf-8")
    assert loading.read_yaml(f) == {"a": 2}
    assert loading.read_yaml(f) == {"a": 2}
    f.write_text("a: 2\na: 3\n", encoding="utf-8")
    with pytest.raises(SpecError, match="duplicate key"):
        loading.read_yaml(f)  # a malformed file is refused as without the cache
    with pytest.raises(SpecError, match="duplicate key"):
        loading.read_yaml(f)
    f.write_text("when: 2024-01-02\n", encoding="utf-8")  # a date: marshal cannot hold it
    assert str(loading.read_yaml(f)["when"]) == "2024-01-02"
    assert str(loading.read_yaml(f)["when"]) == "2024-01-02"


def test_a_changed_loader_invalidates_entries(cache: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    loading.read_yaml(CHIPS)
    expected = _fresh(CHIPS)
    monkeypatch.setattr(load_cache, "_parse_salt", lambda: b"another loader")
    calls: list[str] = []
    real = loading.parse_yaml_text

    def counting(text: str, file: str) -> object:
        calls.append(file)
        return real(text, file)

    monkeypatch.setattr(loading, "parse_yaml_text", counting)
    assert loading.read_yaml(CHIPS) == expected
    assert loading.read_yaml(CHIPS) == expected  # rewritten under the new key
    assert calls == [str(CHIPS)]


def test_a_damaged_entry_is_ignored_and_rewritten(cache: Path) -> None:
    loading.read_yaml(CHIPS)
    (entry,) = cache.iterdir()
    good = entry.read_bytes()
    for junk in (b"", b"\x00garbage", good[:32] + b"\xff" * 40, b"\x01" * 32 + good[32:]):
        entry.write_bytes(junk)
        assert loading.read_yaml(CHIPS) == _fresh(CHIPS)
        assert entry.read_bytes() == good


def test_user_files_are_not_cached(cache: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    shutil.copy(CHIPS, mine)
    assert loading.read_yaml(mine) == _fresh(CHIPS)
    assert not cache.exists()


def test_no_cache_when_the_folder_is_empty_or_unwritable(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setenv("SUPERPOD_CACHE_DIR", "")
    assert load_cache.cache_dir() is None
    assert loading.read_yaml(CHIPS) == _fresh(CHIPS)
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("SUPERPOD_CACHE_DIR", str(blocker / "cache"))  # under a file
    assert loading.read_yaml(CHIPS) == _fresh(CHIPS)


def test_default_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SUPERPOD_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert load_cache.cache_dir() == tmp_path / "superpod"


def test_a_run_from_the_cache_imports_no_yaml(tmp_path: Path) -> None:
    code = ("import sys\nfrom superpod.cli import main\n"
            "sys.argv = ['superpod', 'train', '--system', 'dgx-h100', '--chips', '64', "
            "'--model', 'llama3-70b', '--global-batch', '128', '--seq-len', '8192', "
            "'--tp', '4', '--pp', '4', '--precision', 'fp8']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('yaml' in sys.modules, file=sys.stderr)\n")
    env = dict(os.environ, SUPERPOD_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env=env) for _ in range(2)]
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stderr.strip().splitlines()[-1] == "True"  # parsed, entries written
    assert runs[1].stderr.strip().splitlines()[-1] == "False"  # all from the cache


# ------------------------------------------------------------------ validated objects


def _builders() -> dict[str, object]:
    from superpod.compute import calibration
    from superpod.cost import prices
    from superpod.hardware import catalog
    from superpod.network import calibration as net
    from superpod.reliability import rates
    from superpod.trust import bands
    from superpod.workload import model

    return {
        "catalog": catalog._builtin.__wrapped__,
        "kernels": lambda: calibration._read_calibration.__wrapped__(
            str(calibration.CALIBRATION_FILE)),
        "prices": prices._default_book.__wrapped__,
        "collectives": lambda: net._read.__wrapped__(str(net.COLLECTIVES_FILE)),
        "reliability": rates._default_book.__wrapped__,
        "bands": bands.load_bands_file.__wrapped__,
        "presets": lambda: load_cache.cached_build("model-presets", [model.CATALOG_FILE],
                                                   model.load_presets),
    }


def test_validated_objects_from_the_cache_equal_fresh_ones(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builders = _builders()
    monkeypatch.setenv("SUPERPOD_CACHE_DIR", "")
    fresh = {k: b() for k, b in builders.items()}  # type: ignore[operator]
    monkeypatch.setenv("SUPERPOD_CACHE_DIR", str(cache))
    first = {k: b() for k, b in builders.items()}  # type: ignore[operator]
    assert len(list(cache.glob("*.pickle"))) >= len(builders)
    from superpod.boundary import files

    monkeypatch.setattr(files, "read_text", _refuse)  # no file is read, parsed or validated
    second = {k: b() for k, b in builders.items()}  # type: ignore[operator]
    for k in builders:
        assert first[k] == fresh[k] and second[k] == fresh[k], k
        assert second[k] is not first[k]


def _build_counter(calls: list[str], path: Path) -> object:
    calls.append(str(path))
    return loading.parse_yaml_text(path.read_text(encoding="utf-8"), str(path))


def test_a_build_is_cached_for_its_texts_and_code_only(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_cache, "PACKAGE_DIR", tmp_path)
    f = tmp_path / "book.yaml"
    f.write_text("a: 1\n", encoding="utf-8")
    calls: list[str] = []

    def build() -> object:
        return load_cache.cached_build("book", [f], lambda: _build_counter(calls, f))

    assert build() == {"a": 1} and build() == {"a": 1}
    assert len(calls) == 1
    f.write_text("a: 2\n", encoding="utf-8")  # an edited file: built again
    assert build() == {"a": 2} and build() == {"a": 2}
    assert len(calls) == 2
    monkeypatch.setattr(load_cache, "_code_salt", lambda: b"edited code")
    assert build() == {"a": 2}  # edited code: built again
    assert len(calls) == 3
    f.write_text("a: 2\na: 3\n", encoding="utf-8")  # a bad file raises every time
    for _ in range(2):
        with pytest.raises(SpecError, match="duplicate key"):
            build()
    f.unlink()
    with pytest.raises(FileNotFoundError):
        build()  # a missing file: the build's own error


def test_code_identity_follows_the_package_modules(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n", encoding="utf-8")
    (pkg / "sub" / "b.py").write_text("y = 1\n", encoding="utf-8")
    monkeypatch.setattr(load_cache, "PACKAGE_DIR", pkg)
    load_cache._code_salt.cache_clear()
    try:
        before = load_cache._code_salt()
        load_cache._code_salt.cache_clear()
        assert load_cache._code_salt() == before  # stable
        (pkg / "sub" / "b.py").write_text("y = 22\n", encoding="utf-8")
        load_cache._code_salt.cache_clear()
        assert load_cache._code_salt() != before
    finally:
        load_cache._code_salt.cache_clear()


def test_a_user_catalog_file_is_validated_each_time(cache: Path, tmp_path: Path) -> None:
    from superpod.hardware.catalog import load_catalog

    mine = tmp_path / "mine.yaml"
    mine.write_text("systems:\n  - id: mine\n    extends: dgx-h100\n    name: Mine\n",
                    encoding="utf-8")
    assert "mine" in load_catalog(mine).systems
    assert not any("mine" in p.name for p in cache.glob("*")) if cache.exists() else True
    mine.write_text("systems:\n  - id: mine\n    extends: no-such\n", encoding="utf-8")
    with pytest.raises(SpecError, match="extends an unknown system"):
        load_catalog(mine)


# ----------------------------------------------------------------- the one-command app


CASES = [
    ["train", "--system", "dgx-h100", "--chips", "64", "--model", "llama3-70b",
     "--global-batch", "128", "--seq-len", "8192", "--tp", "4", "--pp", "4", "--json"],
    ["train", "--system", "dgx-h100", "--chips", "64", "--model", "llama3-70b",
     "--global-batch", "128", "--seq-len", "8192", "--tp", "3"],
    ["train", "--system", "dgx-h100", "--model", "llama3-70b", "--global-batch", "x",
     "--seq-len", "8192"],
    ["train", "--bogus"],
    ["train", "--help"],
    ["plan", "--help"],
    ["plan", "train", "--help"],
    ["plan", "infer", "--help"],
    ["show", "gb200-nvl72"],
    ["show", "no-such-system", "--json"],
    ["serve-sim", "--help"],
    ["cost", "--help"],
]


@pytest.mark.parametrize("argv", CASES, ids=lambda a: " ".join(a[:3]))
def test_one_command_app_runs_as_the_whole_app(argv: list[str]) -> None:
    whole = runner.invoke(app, argv, env={"COLUMNS": "80"})
    one = runner.invoke(app_for(argv), argv, env={"COLUMNS": "80"})
    assert (one.exit_code, one.stdout, one.stderr) == (whole.exit_code, whole.stdout,
                                                      whole.stderr)


@pytest.mark.parametrize("argv", [[], ["--help"], ["--version"], ["trian"], ["-x", "train"],
                                  ["--json", "train"]])
def test_anything_but_a_command_first_gets_the_whole_app(argv: list[str]) -> None:
    assert app_for(argv) is app


def test_one_command_app_holds_just_that_command() -> None:
    one = app_for(["plan", "train"])
    assert one is not app and not one.registered_commands
    assert [g.name for g in one.registered_groups] == ["plan"]
    assert [c.name for c in app_for(["serve-sim"]).registered_commands] == ["serve-sim"]
    assert len(app.registered_commands) > 10  # the whole app is left as it was


def test_shell_completion_gets_the_whole_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_SUPERPOD_COMPLETE", "complete_bash")
    assert app_for(["train"]) is app
