"""Chip family of a prediction: calibrated, same vendor uncalibrated, or other / roadmap.

The family is read with the data visible now, so inside a held-out evaluation
(``superpod.trust.holdout``) a chip whose only measurements come from the held-out document
is uncalibrated, as it would be for a user whose chip has no published kernels.
"""

from __future__ import annotations

from superpod.compute.calibration import gemm_entry, load_calibration
from superpod.hardware.catalog import Catalog
from superpod.hardware.specs import Chip
from superpod.hardware.system import System
from superpod.infer.config import NATIVE_NEEDS, gemm_dtype
from superpod.network.calibration import load_collective_calibration
from superpod.trust.bands import Family

_VENDORS: dict[tuple[int, int], tuple[object, object, frozenset[str]]] = {}


def _vendor_rule(chip: Chip, cat: Catalog) -> Family:
    cal = load_calibration()
    key = (id(cal), id(cat))  # memoised per calibration (a held-out one is another object)
    hit = _VENDORS.get(key)
    if hit is None or hit[0] is not cal or hit[1] is not cat:
        vendors = frozenset(cat.chips[c].vendor for e in cal.gemm
                            for c in (e.chip, *e.applies_to) if c in cat.chips)
        if len(_VENDORS) > 64:
            _VENDORS.clear()
        hit = _VENDORS[key] = (cal, cat, vendors)
    return "uncalibrated" if chip.vendor in hit[2] else "other"


_FAMILIES: dict[tuple[int, str, int, int], tuple[Chip, Catalog, object, Family]] = {}


def chip_family(chip: Chip, dtype: str, cat: Catalog) -> Family:
    """``calibrated`` when the chip's GEMMs at ``dtype`` are measured, else by vendor. A
    weight format whose GEMMs run in another tensor-core format (MXFP4: FP8 on Blackwell,
    BF16 weight-only on Hopper; ``infer.config``) counts by the format they run in.
    Memoised per chip, catalog and calibration object (a held-out calibration is another
    object), each kept alive beside its answer."""
    cal = load_calibration()
    key = (id(chip), dtype, id(cat), id(cal))
    hit = _FAMILIES.get(key)
    if hit is not None and hit[0] is chip and hit[1] is cat and hit[2] is cal:
        return hit[3]
    fam = _chip_family(chip, dtype, cat)
    if len(_FAMILIES) > 1024:
        _FAMILIES.clear()
    _FAMILIES[key] = (chip, cat, cal, fam)
    return fam


def _chip_family(chip: Chip, dtype: str, cat: Catalog) -> Family:
    if chip.is_roadmap:
        return "other"
    if dtype in NATIVE_NEEDS:
        dtype = gemm_dtype(chip, dtype)
    if gemm_entry(load_calibration(), chip.id, dtype) is not None:
        return "calibrated"
    return _vendor_rule(chip, cat)


def fabric_family(system: System, cat: Catalog, op: str | None = None) -> Family:
    """``calibrated`` when the system's scale-up fabric has measured fits for this kind of
    traffic (fitted collective protocols; for ``ep_dispatch`` / ``ep_combine``, a fitted EP
    library on it), else by the chip's vendor. A fabric that is only named (a registry
    entry with nothing fitted on it, e.g. UB for collectives) is not calibrated."""
    if system.chip.is_roadmap:
        return "other"
    key = system.spec.scale_up.calibration
    if key is not None:
        cal = load_collective_calibration()
        if op in ("ep_dispatch", "ep_combine"):
            if any(e.up == key for e in cal.expert_parallel):
                return "calibrated"
        elif any(f.fabric == key for f in cal.fits):
            return "calibrated"
    return _vendor_rule(system.chip, cat)
