"""Kernel calibration: measured GEMM and memory-copy throughput, fitted per chip and precision.

The data (``superpod/calibration/kernels.yaml``) is kept apart from the datasheet catalog and
carries its provenance. For each GEMM entry two numbers are fitted from its measured points
by least squares on relative time error:

    t(m, n, k) = 2 m n k / (P * e_max * q(m, n)) + W(m, n) * c_tile + t0

with P the chip's dense peak at that precision, q the wave-quantization efficiency of
``ceil(m/tm) * ceil(n/tn)`` output tiles (edge tiles padded) over ``compute_units`` (an
occupancy factor, as in every tile-based GEMM), W the number of waves of tiles, e_max the
large-shape efficiency, c_tile a fixed cost per wave (loading the first k-slices and
writing the output tile: it dominates when k is small)
and t0 a fixed per-kernel overhead. The model is linear in (1/e_max, c_tile, t0), so the
fit is a ``numpy.linalg.lstsq``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from superpod.boundary.models import FileModel
from superpod.hardware.loading import read_model_file, read_yaml
from superpod.hardware.specs import BytesPerS, Evidence, Seconds
from superpod.trust.holdout import excluded, kept

CALIBRATION_FILE = Path(__file__).resolve().parent.parent / "calibration" / "kernels.yaml"


class _Strict(FileModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False,
                              defer_build=True)  # schema built on first use (start-up)


class GemmEntry(_Strict):
    chip: str
    applies_to: list[str] = Field(default_factory=list)
    dtype: str
    also: list[str] = Field(default_factory=list)
    evidence: Evidence
    source: str
    notes: str = ""
    compute_units: Annotated[int, Field(ge=1)]
    tile: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
    points: list[tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)],
                       Annotated[int, Field(ge=1)], Annotated[float, Field(gt=0)]]]


class MemcpyEntry(_Strict):
    chip: str
    applies_to: list[str] = Field(default_factory=list)
    copy_bandwidth_bytes_per_s: BytesPerS = Field(alias="copy_bandwidth")
    evidence: Evidence
    source: str


class AttentionEntry(_Strict):
    """A flash-style attention kernel on one chip: one fixed ``efficiency``, or measured
    ``points`` (key length, forward TFLOP/s, backward TFLOP/s) with the FLOP convention of
    the FlashAttention papers and cuDNN's benchmark (forward 4 s^2 h d, halved when causal;
    backward 2.5 x forward), or ``fwd_bwd_points`` (key length, combined TFLOP/s).
    ``released`` (YYYY-MM) dates the library version measured, so a
    framework release picks the kernel generation it shipped with."""

    chip: str
    applies_to: list[str] = Field(default_factory=list)
    kernel: str
    efficiency: Annotated[float, Field(gt=0, le=1)] | None = None
    points: list[tuple[Annotated[int, Field(ge=1)], Annotated[float, Field(gt=0)],
                       Annotated[float, Field(gt=0)]]] = Field(default_factory=list)
    #: (key length, forward + backward TFLOP/s as the FlashAttention benchmark reports it:
    #: 3.5 x the forward FLOPs over the two kernels' time)
    fwd_bwd_points: list[tuple[Annotated[int, Field(ge=1)], Annotated[float, Field(gt=0)]]] = \
        Field(default_factory=list)
    released: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    evidence: Evidence
    source: str
    notes: str = ""

    @model_validator(mode="after")
    def _one_form(self) -> AttentionEntry:
        forms = (self.efficiency is not None) + bool(self.points) + bool(self.fwd_bwd_points)
        if forms != 1:
            raise ValueError("give exactly one of efficiency, points, fwd_bwd_points")
        return self


class Fp8AccumulationEntry(_Strict):
    """FP8 GEMMs on a chip whose tensor cores accumulate FP8 products in reduced precision
    (Hopper): the time of a GEMM that promotes partial sums to FP32 at intervals (cuBLASLt
    without CUBLASLT_MATMUL_DESC_FAST_ACCUM, Transformer Engine's split accumulator) over the
    same GEMM with fast accumulation, which the ``gemm`` entries measure."""

    chip: str
    applies_to: list[str] = Field(default_factory=list)
    split_accumulator_time_ratio: Annotated[float, Field(ge=1.0)]
    evidence: Evidence
    source: str
    notes: str = ""


class Defaults(_Strict):
    gemm_efficiency: Annotated[float, Field(gt=0, le=1)]
    gemm_overhead_s: Seconds = Field(alias="gemm_overhead")
    memcpy_efficiency: Annotated[float, Field(gt=0, le=1)]
    memcpy_overhead_s: Seconds = Field(alias="memcpy_overhead")
    attention_efficiency: Annotated[float, Field(gt=0, le=1)]
    #: no flash kernel is costed below this fraction of peak (training and inference)
    attention_floor: Annotated[float, Field(gt=0, le=1)]
    source: str


class CalibrationFile(_Strict):
    gemm: list[GemmEntry] = Field(default_factory=list)
    memcpy: list[MemcpyEntry] = Field(default_factory=list)
    attention: list[AttentionEntry] = Field(default_factory=list)
    fp8_accumulation: list[Fp8AccumulationEntry] = Field(default_factory=list)
    defaults: Defaults


@dataclass(frozen=True)
class GemmFit:
    """A fitted GEMM efficiency curve for one chip and precision."""

    e_max: float
    tile_overhead_s: float  # per wave of tiles (prologue / epilogue)
    overhead_s: float  # per kernel
    compute_units: int
    tile: tuple[int, int]
    source: str
    calibrated: bool


def wave_efficiency(m: int, n: int, tile: tuple[int, int], units: int) -> float:
    """Useful fraction of the tile slots a GEMM occupies: m n / (waves * units * tm * tn).

    Counts both partial last waves (tiles not a multiple of the units) and padded edge tiles
    (m or n not a multiple of the tile).
    """
    tiles = math.ceil(m / tile[0]) * math.ceil(n / tile[1])
    waves = math.ceil(tiles / units)
    return (m * n) / (waves * units * tile[0] * tile[1])


def waves(m: int, n: int, tile: tuple[int, int], units: int) -> int:
    """How many rounds of tiles the compute units run."""
    return math.ceil(math.ceil(m / tile[0]) * math.ceil(n / tile[1]) / units)


#: least-squares results of ``fit_gemm`` for the shipped calibration's (entry, peak) pairs,
#: keyed by ``fit_key`` (``python scripts/gemm_fits.py`` rewrites it; tests check it
#: against fresh fits): a start-up saving only, since numpy then need not load (an input
#: not in the table is fitted as before)
GEMM_FITS_FILE = CALIBRATION_FILE.parent / "gemm_fits.yaml"


def fit_key(entry: GemmEntry, peak_flop_per_s: float) -> str:
    """What ``fit_gemm``'s least squares reads of an entry and the peak, hashed."""
    what = (tuple(tuple(p) for p in entry.points), tuple(entry.tile), entry.compute_units,
            float(peak_flop_per_s))
    return hashlib.sha256(repr(what).encode()).hexdigest()[:24]


@lru_cache(maxsize=1)
def _stored_fits() -> dict[str, list[float]]:
    if not GEMM_FITS_FILE.exists():
        return {}
    doc = read_yaml(GEMM_FITS_FILE)
    return {str(k): [float(c) for c in v["coefficients"]] for k, v in doc["fits"].items()}


def fit_coefficients(entry: GemmEntry, peak_flop_per_s: float) -> list[float]:
    """The least-squares coefficients (1/e_max, c_tile, t0) of ``fit_gemm`` (a dropped
    column 0), by ``numpy.linalg.lstsq``."""
    import numpy as np  # at use: the shipped fits are stored (start-up)

    cols: list[list[float]] = []
    for m, n, k, tflops in entry.points:
        flops = 2.0 * m * n * k
        t_meas = flops / (tflops * 1e12)
        q = wave_efficiency(m, n, entry.tile, entry.compute_units)
        w = waves(m, n, entry.tile, entry.compute_units)
        cols.append([flops / (peak_flop_per_s * q) / t_meas, w / t_meas, 1.0 / t_meas])
    a, keep = np.array(cols), [0, 1, 2]
    while True:
        coef, *_ = np.linalg.lstsq(a[:, keep], np.ones(len(a)), rcond=None)
        bad = [j for j, c in zip(keep[1:], coef[1:], strict=True) if c < 0]
        if not bad:
            break
        keep.remove(bad[0])
    full = dict.fromkeys(range(3), 0.0) | dict(zip(keep, map(float, coef), strict=True))
    return [full[0], full[1], full[2]]


def fit_gemm(entry: GemmEntry, peak_flop_per_s: float) -> GemmFit:
    """Least-squares fit of (1/e_max, c_tile, t0) on relative time error over the points.

    A column whose coefficient comes out negative is dropped and the fit repeated, so every
    fitted time constant is physical (>= 0). The shipped calibration's fits are read from
    ``GEMM_FITS_FILE`` (the same numbers).
    """
    full = _stored_fits().get(fit_key(entry, peak_flop_per_s))
    if full is None:
        full = fit_coefficients(entry, peak_flop_per_s)
    e_max = min(1.0, 1.0 / full[0]) if full[0] > 0 else 1.0
    return GemmFit(e_max=e_max, tile_overhead_s=full[1], overhead_s=full[2],
                   compute_units=entry.compute_units, tile=entry.tile, source=entry.source,
                   calibrated=True)


_FITS: dict[tuple[int, float], tuple[GemmEntry, GemmFit]] = {}


def fitted(entry: GemmEntry, peak_flop_per_s: float) -> GemmFit:
    """``fit_gemm``, memoised per entry (the entry is kept alive with its fit, so an id is
    never reused for another entry): the least squares runs once, not per GEMM estimate."""
    key = (id(entry), peak_flop_per_s)
    hit = _FITS.get(key)
    if hit is None or hit[0] is not entry:
        hit = _FITS[key] = (entry, fit_gemm(entry, peak_flop_per_s))
    return hit[1]


@lru_cache(maxsize=4)
def _read_calibration(path: str) -> CalibrationFile:
    return read_model_file(path, CalibrationFile)


@lru_cache(maxsize=64)
def _without(path: str, held: frozenset[str]) -> CalibrationFile:
    cal = _read_calibration(path)
    return cal.model_copy(update={
        "gemm": kept(cal.gemm, held), "memcpy": kept(cal.memcpy, held),
        "attention": kept(cal.attention, held),
        "fp8_accumulation": kept(cal.fp8_accumulation, held)})


def load_calibration(path: str | None = None) -> CalibrationFile:
    """Read a calibration file (default: the one shipped with superpod), without the entries
    whose source is held out (``superpod.trust.holdout``; the entries kept are the same
    objects, so fits memoised per entry stay valid)."""
    p = str(path or CALIBRATION_FILE)
    held = excluded()
    return _without(p, held) if held else _read_calibration(p)


def gemm_entry(cal: CalibrationFile, chip: str, dtype: str) -> GemmEntry | None:
    for e in cal.gemm:
        if chip in (e.chip, *e.applies_to) and dtype in (e.dtype, *e.also):
            return e
    return None


def memcpy_entry(cal: CalibrationFile, chip: str) -> MemcpyEntry | None:
    return next((e for e in cal.memcpy if chip in (e.chip, *e.applies_to)), None)


def split_accumulator_ratio(cal: CalibrationFile, chip: str) -> float:
    """Time of an FP8 GEMM with split (promoted) accumulation over the fast-accumulation GEMM
    the calibration measures, on ``chip`` (1 where no entry: no such penalty known)."""
    e = next((e for e in cal.fp8_accumulation if chip in (e.chip, *e.applies_to)), None)
    return e.split_accumulator_time_ratio if e else 1.0
