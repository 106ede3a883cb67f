"""``superpod calibrate`` writes a calibration file the kernel model reads back."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from superpod.cli import app
from superpod.compute.calibration import load_calibration


def test_calibrate_without_torch_is_a_clear_error(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import builtins

    real = builtins.__import__

    def no_torch(name, *a, **k):  # type: ignore[no-untyped-def]
        if name == "torch":
            raise ImportError("no torch")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    r = CliRunner().invoke(app, ["calibrate", "--chip", "h100-sxm", "-o", str(tmp_path / "c.yaml")])
    assert r.exit_code == 2 and "PyTorch" in r.output


def test_calibrate_round_trip_on_cpu(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    out = tmp_path / "cal.yaml"
    r = CliRunner().invoke(app, ["calibrate", "--chip", "h100-sxm", "--dtype", "fp32",
                                 "--device", "cpu", "--repeats", "2", "-o", str(out)])
    assert r.exit_code == 0, r.output
    cal = load_calibration(str(out))
    assert cal.gemm[0].chip == "h100-sxm" and len(cal.gemm[0].points) >= 5
    assert cal.memcpy[0].copy_bandwidth_bytes_per_s > 0
