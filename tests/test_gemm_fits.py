"""The stored GEMM fits (calibration/gemm_fits.yaml) are the least squares they replace,
cover every fit the catalog's chips use, and keep numpy out of ``superpod train``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from superpod.compute import calibration as cal_mod
from superpod.compute.kernels import gemm_fit
from superpod.hardware.catalog import load_catalog
from superpod.hardware.loading import read_yaml


def test_stored_fits_equal_fresh_least_squares() -> None:
    cal = cal_mod.load_calibration()
    doc = read_yaml(cal_mod.GEMM_FITS_FILE)["fits"]
    assert doc
    for key, fit in doc.items():
        entry = next(e for e in cal.gemm if e.chip == fit["chip"] and e.dtype == fit["dtype"]
                     and cal_mod.fit_key(e, fit["peak_flop_per_s"]) == key)
        fresh = cal_mod.fit_coefficients(entry, fit["peak_flop_per_s"])
        assert fresh == pytest.approx(fit["coefficients"], rel=1e-12, abs=1e-18)
        # and the fit read from the table is the fit computed
        stored = cal_mod.fit_gemm(entry, fit["peak_flop_per_s"])
        assert stored.e_max == pytest.approx(min(1.0, 1.0 / fresh[0]), rel=1e-12)
        assert (stored.tile_overhead_s, stored.overhead_s) == pytest.approx(
            (fresh[1], fresh[2]), rel=1e-12, abs=1e-18)


def test_every_catalog_fit_is_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> list[float]:
        raise AssertionError("a catalog chip's GEMM fit is missing from gemm_fits.yaml")

    monkeypatch.setattr(cal_mod, "fit_coefficients", refuse)
    monkeypatch.setattr(cal_mod, "_FITS", {})
    cal = cal_mod.load_calibration()
    for chip in load_catalog().chips.values():
        for dtype in chip.peak_flop_per_s:
            gemm_fit(chip, str(dtype), cal)


def test_train_command_does_not_load_numpy() -> None:
    code = ("import sys\nfrom superpod.cli import main\n"
            "sys.argv = ['superpod', 'train', '--system', 'dgx-h100', '--chips', '64', "
            "'--model', 'llama3-70b', '--global-batch', '128', '--seq-len', '8192', "
            "'--tp', '4', '--pp', '4', '--precision', 'fp8']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('numpy' in sys.modules, file=sys.stderr)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    assert p.stderr.strip().splitlines()[-1] == "False"
