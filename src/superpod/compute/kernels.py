"""Single-kernel time on one chip: a roofline with calibrated efficiency.

GEMM:   t = max(2mnk / (P * e_max * q(m, n)) + W c_tile,  bytes / B_copy) + t0
        (P: dense peak at the precision; q: wave quantization; B_copy: the chip's sustained
        copy bandwidth; e_max, t0 fitted per chip and precision, see ``calibration``).
memcpy: t = 2 * bytes / B_copy + t0   (read + write, the STREAM-copy convention).

Chips without a calibration entry use the documented defaults and are flagged
``calibrated=False``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from superpod.compute.calibration import (
    AttentionEntry,
    CalibrationFile,
    GemmEntry,
    GemmFit,
    fitted,
    gemm_entry,
    load_calibration,
    memcpy_entry,
    wave_efficiency,
    waves,
)
from superpod.errors import SpecError
from superpod.hardware.specs import Chip
from superpod.trust.holdout import held_out

BYTES_PER_ELEMENT = {"fp64": 8.0, "fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0,
                     "fp8": 1.0, "int8": 1.0, "fp6": 0.75, "fp4": 0.5, "int4": 0.5}
#: GEMMs in 8-bit and narrower formats write a 16-bit output.
OUTPUT_BYTES = {"fp8": 2.0, "int8": 2.0, "fp6": 2.0, "fp4": 2.0, "int4": 2.0}


@dataclass(frozen=True)
class KernelEstimate:
    """A kernel's predicted time and what bounds it."""

    time_s: float
    flop: float
    bytes: float
    bound: str  # "compute" | "memory"
    calibrated: bool
    source: str

    @property
    def flop_per_s(self) -> float:
        return self.flop / self.time_s

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.time_s


def peak_for(chip: Chip, dtype: str) -> float:
    """The chip's dense peak FLOP/s at ``dtype`` (a clear error if it is not published)."""
    peak = chip.peak_flop_per_s.get(dtype)  # type: ignore[call-overload]
    if peak is None:
        raise SpecError(f"{chip.id} has no published dense {dtype} peak", field="dtype",
                        value=dtype, allowed=", ".join(chip.peak_flop_per_s))
    return float(peak)


def copy_bandwidth(chip: Chip, cal: CalibrationFile) -> tuple[float, bool, str]:
    """Sustained copy bandwidth (bytes/s), whether it is measured, and its source."""
    entry = memcpy_entry(cal, chip.id)
    if entry:
        return entry.copy_bandwidth_bytes_per_s, True, entry.source
    d = cal.defaults
    return chip.hbm_bandwidth_bytes_per_s * d.memcpy_efficiency, False, d.source


#: FlashAttention's convention: backward FLOPs = 2.5 x forward (it recomputes Q K^T);
#: the step model charges the backward at 2 x the forward FLOPs at one efficiency
ATTENTION_BWD_FLOP_RATIO = 2.5
ATTENTION_BWD_CHARGED = 2.0


def attention_point_efficiency(fwd_flop_per_s: float, bwd_flop_per_s: float,
                               peak_flop_per_s: float) -> float:
    """Efficiency of one measured (forward, backward) pair as the step model charges it:
    forward + 2 x forward FLOPs at one rate, over the time the two kernels took
    (forward F / r_f + backward 2.5 F / r_b)."""
    return (1.0 + ATTENTION_BWD_CHARGED) / (
        peak_flop_per_s * (1.0 / fwd_flop_per_s + ATTENTION_BWD_FLOP_RATIO / bwd_flop_per_s))


def attention_combined_efficiency(fwd_bwd_flop_per_s: float, peak_flop_per_s: float) -> float:
    """Efficiency from a combined forward + backward rate (FLOPs counted 1 + 2.5 = 3.5 x the
    forward), charged as 1 + 2 = 3 x the forward at one rate."""
    return ((1.0 + ATTENTION_BWD_CHARGED) / (1.0 + ATTENTION_BWD_FLOP_RATIO)
            * fwd_bwd_flop_per_s / peak_flop_per_s)


def _entry_peak(entry: AttentionEntry) -> float:
    from superpod.hardware.catalog import load_catalog

    chip = load_catalog().chips[entry.chip]
    return float(chip.peak_flop_per_s.get("bf16") or max(chip.peak_flop_per_s.values()))


def attention_entry_efficiency(entry: AttentionEntry, seq_len: int | None = None) -> float:
    """One entry's efficiency at key length ``seq_len``: its measured points interpolated
    in log(seq_len) and held flat beyond the measured range; ``None``: the longest measured
    sequence (where flash kernels reach their plateau)."""
    if entry.efficiency is not None:
        return entry.efficiency
    peak = _entry_peak(entry)
    pts = sorted((s, attention_point_efficiency(f * 1e12, b * 1e12, peak))
                 for s, f, b in entry.points)
    pts += sorted((s, attention_combined_efficiency(r * 1e12, peak))
                  for s, r in entry.fwd_bwd_points)
    pts.sort()
    if seq_len is None or seq_len >= pts[-1][0]:
        return pts[-1][1]
    if seq_len <= pts[0][0]:
        return pts[0][1]
    for (s0, e0), (s1, e1) in zip(pts, pts[1:], strict=False):
        if s0 <= seq_len <= s1:
            w = math.log(seq_len / s0) / math.log(s1 / s0)
            return e0 + w * (e1 - e0)
    return pts[-1][1]  # pragma: no cover - the loop always brackets seq_len


def attention_entries(chip: Chip, kernel: str = "auto", cal: CalibrationFile | None = None,
                      released_by: str | None = None) -> list[AttentionEntry]:
    """The calibrated attention kernels for ``chip`` (``kernel``, or all for ``auto``),
    without held-out sources, one generation per kernel: the newest one released by
    ``released_by`` (YYYY-MM; the oldest measured one if all are later; ``None``: the newest).
    Entries without a release date count as the oldest."""
    cal = cal or load_calibration()
    entries = [e for e in cal.attention if chip.id in (e.chip, *e.applies_to)
               and kernel in ("auto", e.kernel) and not held_out(e.source)]
    released_by = released_by or "9999-12"
    out = []
    for name in sorted({e.kernel for e in entries}):
        gens = sorted((e for e in entries if e.kernel == name),
                      key=lambda e: e.released or "0000-00")
        ok = [e for e in gens if (e.released or "0000-00") <= released_by]
        out.append(ok[-1] if ok else gens[0])
    return out


def attention_efficiency(chip: Chip, kernel: str = "auto",
                         cal: CalibrationFile | None = None, *, seq_len: int | None = None,
                         released_by: str | None = None) -> float:
    """Fraction of the dense BF16 peak a flash-style attention core reaches on ``chip``,
    forward + backward as the step model charges them.

    ``kernel`` names the implementation (``fa2``, ``fa3``, ``cudnn``); ``auto`` takes the
    best one calibrated for the chip. ``seq_len``: the key length one kernel call sees
    (short sequences reach less). ``released_by``: the framework's release (YYYY-MM), which
    picks the kernel generation it shipped; a release older than every measured generation of
    ``kernel`` is costed at the dated kernels measured as released by then, where there are
    any (``_released_stand_in``). Chips with no entry get
    ``defaults.attention_efficiency``; nothing goes below ``defaults.attention_floor``
    (both shared with inference).
    """
    cal = cal or load_calibration()
    entries = attention_entries(chip, kernel, cal, released_by)
    if not entries:
        return cal.defaults.attention_efficiency
    best = max(attention_entry_efficiency(e, seq_len) for e in entries)
    stand_in = _released_stand_in(chip, kernel, cal, released_by, entries)
    if stand_in:
        # the release predates every measured generation of its kernel: it ran an earlier,
        # unmeasured one; the kernels measured as released by then stand in for it (what it
        # could at least run), never more than the oldest measured generation
        best = min(best, max(attention_entry_efficiency(e, seq_len) for e in stand_in))
    return max(best, cal.defaults.attention_floor)


def _released_stand_in(chip: Chip, kernel: str, cal: CalibrationFile,
                       released_by: str | None, entries: list[AttentionEntry]
                       ) -> list[AttentionEntry]:
    """Dated entries of any kernel on ``chip`` released by ``released_by``, when the named
    ``kernel`` has no generation released by then (else none). Undated entries prove no
    release date and do not stand in."""
    if kernel == "auto" or released_by is None:
        return []
    if any(e.released is None or e.released <= released_by for e in entries):
        return []
    return [e for e in attention_entries(chip, "auto", cal, released_by)
            if e.released is not None and e.released <= released_by]


def _measured_peak(entry: GemmEntry, chip: Chip, dtype: str) -> float:
    """The dense peak at ``dtype`` of the chip an entry was measured on: the catalog's chip
    of that id (a user file that redefines ``h100-sxm`` did not change the H100 the entry
    was measured on), else ``chip`` itself (a chip only the user's files define, measured
    with ``superpod calibrate``), or when the measured chip has no such peak."""
    from superpod.hardware.catalog import load_catalog

    measured = load_catalog().chips.get(entry.chip)
    if measured is None or dtype not in measured.peak_flop_per_s:
        return peak_for(chip, dtype)
    return peak_for(measured, dtype)


def gemm_fit(chip: Chip, dtype: str, cal: CalibrationFile) -> GemmFit:
    """The chip's fitted curve at ``dtype``; else the default large-shape efficiency with
    the per-wave and per-kernel fixed costs measured on the same chip at another precision
    (prologue, epilogue and launch do not depend on the input format; the tile schedule is
    the die's), else the defaults alone."""
    entry = gemm_entry(cal, chip.id, dtype)
    if entry:
        # fitted against the peak of the chip that was measured: a chip the entry applies
        # to reaches the same fraction of its own peak (a lower-clocked SKU of the die is
        # not credited the measured chip's absolute throughput)
        return fitted(entry, _measured_peak(entry, chip, dtype))
    d = cal.defaults
    other = next((e for e in cal.gemm if chip.id in (e.chip, *e.applies_to)), None)
    if other is not None:
        fit = fitted(other, _measured_peak(other, chip, other.dtype))
        return GemmFit(e_max=d.gemm_efficiency, tile_overhead_s=fit.tile_overhead_s,
                       overhead_s=fit.overhead_s, compute_units=fit.compute_units,
                       tile=fit.tile, source=f"{d.source}; fixed costs per wave and kernel "
                       f"from {other.dtype} measurements: {other.source}", calibrated=False)
    return GemmFit(e_max=d.gemm_efficiency, tile_overhead_s=0.0,
                   overhead_s=d.gemm_overhead_s, compute_units=1,
                   tile=(1, 1), source=d.source, calibrated=False)


def gemm(chip: Chip, m: int, n: int, k: int, dtype: str,
         cal: CalibrationFile | None = None) -> KernelEstimate:
    """Predicted time of one (m x k) @ (k x n) GEMM on ``chip``."""
    cal = cal or load_calibration()
    fit = gemm_fit(chip, dtype, cal)
    flop = 2.0 * m * n * k
    el = BYTES_PER_ELEMENT[dtype]
    nbytes = el * (m * k + k * n) + OUTPUT_BYTES.get(dtype, el) * m * n
    q = wave_efficiency(m, n, fit.tile, fit.compute_units)
    t_compute = flop / (peak_for(chip, dtype) * fit.e_max * q)
    bw, _, _ = copy_bandwidth(chip, cal)
    t_memory = nbytes / bw
    bound = "compute" if t_compute >= t_memory else "memory"
    t_tiles = waves(m, n, fit.tile, fit.compute_units) * fit.tile_overhead_s
    return KernelEstimate(time_s=max(t_compute + t_tiles, t_memory) + fit.overhead_s,
                          flop=flop,
                          bytes=nbytes, bound=bound, calibrated=fit.calibrated,
                          source=fit.source)


def memcpy(chip: Chip, nbytes: float, cal: CalibrationFile | None = None) -> KernelEstimate:
    """Predicted time to copy ``nbytes`` within HBM (reads + writes 2 x nbytes)."""
    cal = cal or load_calibration()
    bw, measured, source = copy_bandwidth(chip, cal)
    moved = 2.0 * nbytes
    return KernelEstimate(time_s=moved / bw + cal.defaults.memcpy_overhead_s, flop=0.0,
                          bytes=moved, bound="memory", calibrated=measured, source=source)
