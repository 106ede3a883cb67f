"""Benchmark: how long `superpod show` takes, as a whole command and in-process.

Prints the median wall time of `superpod show SYSTEM --json` as a subprocess, against a
baseline measured in the same run (`python -c pass`, the interpreter's own start-up), and the
in-process time to build a system (catalog cached) at several sizes.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from superpod.hardware.catalog import load_catalog
from superpod.hardware.system import build_system, system_to_dict

BIN = Path(sys.executable).parent / "superpod"


def wall(cmd: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def in_process(system_id: str, chips: int | None, repeats: int = 200) -> float:
    cat = load_catalog()
    spec = cat.system(system_id)
    t = time.perf_counter()
    for _ in range(repeats):
        system_to_dict(build_system(spec, cat, chips))
    return (time.perf_counter() - t) / repeats


def main() -> None:
    base = wall([sys.executable, "-c", "pass"])
    print("superpod show as a whole command (median of 5, wall seconds)")
    print(f"  baseline python -c pass             {base:7.3f} s")
    for sid in ("cloudmatrix384", "atlas-960-supercluster"):
        t = wall([str(BIN), "show", sid, "--json"])
        print(f"  superpod show {sid:<22}{t:7.3f} s  ({t / base:5.1f}x baseline)")
    t0 = time.perf_counter()
    load_catalog()
    print(f"catalog load (first, in-process)      {time.perf_counter() - t0:7.3f} s")
    print("build + serialise one system, in-process (catalog cached)")
    for sid, n in (("gb200-nvl72", None), ("gb200-nvl72", 100_000),
                   ("atlas-960-supercluster", None)):
        print(f"  {sid:<24} chips={n or 'default':<8} {in_process(sid, n) * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
