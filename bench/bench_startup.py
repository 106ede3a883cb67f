"""Benchmark: start-up of the ``superpod`` command.

Wall time (best of ``REPEATS`` runs, so one noisy neighbour does not decide the figure) of
``superpod --help`` and of the README's ``superpod train`` example, each in a fresh process,
against baselines measured in the same run: ``python -c pass`` (the interpreter) and
``python -c "import numpy"`` (one scientific import). Targets: --help <= 0.25 s, train <=
0.5 s. Bytecode is compiled first (``compileall``), as an installed package has it; the
environment's PYTHONDONTWRITEBYTECODE would otherwise make every run recompile the sources.
Also prints the five slowest imports of the train command (``-X importtime``, cumulative).
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import time
from pathlib import Path

REPEATS = int(os.environ.get("SUPERPOD_BENCH_REPEATS", "5"))
SRC = Path(__file__).resolve().parent.parent / "src" / "superpod"
TRAIN = ["train", "--system", "dgx-h100", "--chips", "64", "--model", "llama3-70b",
         "--global-batch", "128", "--seq-len", "8192", "--tp", "4", "--pp", "4", "--vpp",
         "5", "--cp", "2", "--precision", "fp8"]
CLI = "import sys; from superpod.cli import main; sys.argv[0] = 'superpod'; main()"


def best_wall_s(args: list[str]) -> float:
    """Fastest of REPEATS runs of ``python args`` (output discarded), seconds."""
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t)
    return best


def slowest_imports(args: list[str], n: int = 5) -> list[tuple[int, str]]:
    """The ``n`` largest cumulative import times (us) of one run."""
    p = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True,
                       text=True, check=True)
    rows = []
    for line in p.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].strip()))
    top = [r for r in rows if r[1].count(".") == 0 or r[1].startswith("superpod.")]
    return sorted(top, reverse=True)[:n]


def main() -> None:
    compileall.compile_dir(str(SRC), quiet=1)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    base = best_wall_s(["-c", "pass"])
    numpy = best_wall_s(["-c", "import numpy"])
    helps = best_wall_s(["-c", CLI, "--help"])
    train = best_wall_s(["-c", CLI, *TRAIN])
    print(f"start-up, best of {REPEATS} fresh processes (wall)")
    print(f"  baseline: python -c pass       {base:6.3f} s")
    print(f"  baseline: import numpy         {numpy:6.3f} s")
    print(f"  superpod --help                {helps:6.3f} s  ({helps / numpy:.1f}x import "
          f"numpy; target 0.25 s)")
    print(f"  superpod train (README)        {train:6.3f} s  ({train / numpy:.1f}x import "
          f"numpy; target 0.5 s)")
    print("  slowest top-level imports of train (cumulative):")
    for us, name in slowest_imports(["-c", CLI, *TRAIN]):
        print(f"    {us / 1e3:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
