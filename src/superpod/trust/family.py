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


def fabric_family(system: System, cat: Catalog) -> Family:
    """``calibrated`` when the system's scale-up fabric has fitted protocols, else by the
    chip's vendor."""
    if system.chip.is_roadmap:
        return "other"
    key = system.spec.scale_up.calibration
    if key is not None and key in load_collective_calibration().fabrics:
        return "calibrated"
    return _vendor_rule(system.chip, cat)
