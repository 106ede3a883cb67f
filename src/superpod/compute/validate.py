"""Predict a validation case of kind ``kernel`` (GEMM, memory copy) from the kernel model."""

from __future__ import annotations

from collections.abc import Callable

from superpod.compute import kernels
from superpod.compute.calibration import CalibrationFile
from superpod.errors import SpecError, Unsupported
from superpod.hardware.catalog import Catalog
from superpod.validate.cases import Case


def evaluate_kernel_case(case: Case, cat: Catalog, cal: CalibrationFile) -> tuple[float, str]:
    """(predicted metric value, note) for one ``kernel`` case."""
    k = case.kernel
    assert k is not None  # guaranteed by parse_case
    chip = cat.chip(cat.system(case.system.preset).chip)
    metric = case.measured.metric
    if k.op == "attention":
        raise Unsupported("attention kernels are not modelled yet (they come with the "
                          "operator model for training)")
    if k.op == "gemm":
        if k.m is None or k.n is None or k.k is None:
            raise SpecError("a gemm kernel case needs m, n and k", field="kernel")
        est = kernels.gemm(chip, k.m, k.n, k.k, k.dtype, cal)
    else:
        if k.bytes is None:
            raise SpecError("a memcpy kernel case needs bytes", field="kernel")
        est = kernels.memcpy(chip, k.bytes, cal)
    values: dict[str, Callable[[], float]] = {
        "tflops": lambda: est.flop_per_s / 1e12,
        "time_us": lambda: est.time_s * 1e6,
        "bandwidth_gbps": lambda: est.bytes_per_s / 1e9,
    }
    note = f"{est.bound}-bound; " + ("calibrated" if est.calibrated
                                     else "uncalibrated chip: default efficiency")
    return values[metric](), note
