"""Shared fixtures: the built-in catalog and the published validation cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from superpod.hardware.catalog import Catalog, load_catalog
from superpod.validate.cases import PUBLIC_CASES

REPO = Path(__file__).resolve().parent.parent


_CACHE_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """The load cache of the package's YAML in a folder of this run (commands run in
    subprocesses inherit it), never the user's ``~/.cache/superpod``; set before any test
    module is imported (some read the catalog at import)."""
    import os
    import tempfile

    if "SUPERPOD_CACHE_DIR" not in os.environ:
        folder = tempfile.mkdtemp(prefix="superpod-cache-")
        os.environ["SUPERPOD_CACHE_DIR"] = folder
        config.stash[_CACHE_KEY] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    folder = config.stash.get(_CACHE_KEY, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def cat() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def public_cases() -> Path:
    """The packaged copy of ``shared/validation/public.yaml`` (``test_packaged_cases``
    checks it is in sync when the shared folder is beside the checkout)."""
    return PUBLIC_CASES


@pytest.fixture
def few_cases(tmp_path: Path) -> tuple[Path, list[dict[str, object]]]:
    """A case file of the first three published collective cases, and those cases."""
    import yaml

    doc = yaml.safe_load(PUBLIC_CASES.read_text(encoding="utf-8"))
    cases = doc if isinstance(doc, list) else doc["cases"]
    few = [c for c in cases if c.get("kind") == "collective"][:3]
    f = tmp_path / "few.yaml"
    f.write_text(yaml.safe_dump(few if isinstance(doc, list) else {**doc, "cases": few}),
                 encoding="utf-8")
    return f, few


@pytest.fixture
def calibrate_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, object]:
    """What ``superpod calibrate --json`` prints for one measured GEMM point and one copy
    bandwidth (the measurement replaced: no GPU here)."""
    import json

    from typer.testing import CliRunner

    from superpod.cli import app
    from superpod.compute import measure as m

    fake = {"gemm": [{"chip": "h100-sxm", "dtype": "bf16", "evidence": "measured",
                      "source": "test", "compute_units": 1, "tile": [128, 256],
                      "points": [[1024, 1024, 1024, 500.0]]}],
            "memcpy": [{"chip": "h100-sxm", "copy_bandwidth": "2.5000 TB/s",
                        "evidence": "measured", "source": "test"}]}
    monkeypatch.setattr(m, "measure", lambda *a, **k: fake)
    r = CliRunner().invoke(app, ["calibrate", "--chip", "h100-sxm", "-o",
                                 str(tmp_path / "c.yaml"), "--json"])
    assert r.exit_code == 0, r.output
    doc: dict[str, object] = json.loads(r.stdout)
    return doc
