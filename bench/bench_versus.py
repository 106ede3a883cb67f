"""Benchmark: ``superpod versus cloudmatrix384 gb200-nvl72 --model deepseek-v3 --train
--serve`` from a fresh process (target: <= 10 s on this machine's 2 cores), against the same
answers asked the old way in the same run: two ``plan train`` and two ``plan infer`` calls
(each a fresh process), whose figures then still lack goodput, power and $ per chip, rack
and MW. Prints both wall times and their ratio."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

SUPERPOD = str(Path(sys.executable).with_name("superpod"))
VERSUS = ["versus", "cloudmatrix384", "gb200-nvl72", "--model", "deepseek-v3", "--train",
          "--serve", "--json"]
SEPARATE = [
    ["plan", "train", "-s", "cloudmatrix384", "-m", "deepseek-v3", "--global-batch", "1536",
     "--seq-len", "4096", "--top", "1", "--json"],
    ["plan", "train", "-s", "gb200-nvl72", "-m", "deepseek-v3", "--global-batch", "1539",
     "--seq-len", "4096", "--top", "1", "--json"],
    ["plan", "infer", "-s", "cloudmatrix384", "-m", "deepseek-v3", "--slo-tpot-ms", "50",
     "--input-len", "2048", "--output-len", "1024", "--precision", "int8", "--top", "1",
     "--json"],
    ["plan", "infer", "-s", "gb200-nvl72", "-m", "deepseek-v3", "--slo-tpot-ms", "50",
     "--input-len", "2048", "--output-len", "1024", "--precision", "fp8", "--top", "1",
     "--json"],
]
TARGET_S = 10.0


def _wall(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([SUPERPOD, *args], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    _wall(["systems"])  # warm the file cache
    versus_s = min(_wall(VERSUS) for _ in range(2))
    separate_s = min(sum(_wall(a) for a in SEPARATE) for _ in range(2))
    print(f"versus cloudmatrix384 gb200-nvl72 deepseek-v3 --train --serve: {versus_s:.2f} s "
          f"(target <= {TARGET_S:.0f} s: {'met' if versus_s <= TARGET_S else 'MISSED'})")
    print(f"the same as 2 plan train + 2 plan infer calls: {separate_s:.2f} s; "
          f"ratio versus / separate = {versus_s / separate_s:.2f}")


if __name__ == "__main__":
    main()
