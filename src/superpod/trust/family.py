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
from superpod.network.calibration import load_collective_calibration
from superpod.trust.bands import Family


def _vendor_rule(chip: Chip, cat: Catalog) -> Family:
    cal = load_calibration()
    vendors = {cat.chips[c].vendor for e in cal.gemm for c in (e.chip, *e.applies_to)
               if c in cat.chips}
    return "uncalibrated" if chip.vendor in vendors else "other"


def chip_family(chip: Chip, dtype: str, cat: Catalog) -> Family:
    """``calibrated`` when the chip's GEMMs at ``dtype`` are measured, else by vendor."""
    if chip.is_roadmap:
        return "other"
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
