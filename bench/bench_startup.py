"""Benchmark: start-up of the ``superpod`` command.

Wall time (best of ``REPEATS`` runs, so one noisy neighbour does not decide the figure) of
``superpod --help`` and of the README's ``superpod train`` example (with its ``--trace``),
each in a fresh process, against baselines measured in the same run: ``python -c pass``
(the interpreter) and ``python -c "import numpy"`` (one scientific import). Targets: --help
<= 0.25 s, train <= 0.5 s. Each line also gives the best CPU time (user + system) of the
same runs, which a busy machine inflates less than wall time. Bytecode is compiled first
(``compileall``), as an installed package has it; the environment's PYTHONDONTWRITEBYTECODE
would otherwise make every run recompile the sources. ``train, no load cache`` is the train
example with the load cache of the package's YAML off (``SUPERPOD_CACHE_DIR=``, see
``superpod.boundary.load_cache``): what a first run after installing, or after editing the
package, costs. Also prints the slowest imports of the train command (``-X importtime``,
cumulative).
"""

from __future__ import annotations

import compileall
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = int(os.environ.get("SUPERPOD_BENCH_REPEATS", "5"))
SRC = Path(__file__).resolve().parent.parent / "src" / "superpod"
TRACE = Path(tempfile.gettempdir()) / "superpod-bench-step.json"
TRAIN = ["train", "--system", "dgx-h100", "--chips", "64", "--model", "llama3-70b",
         "--global-batch", "128", "--seq-len", "8192", "--tp", "4", "--pp", "4", "--vpp",
         "5", "--cp", "2", "--precision", "fp8", "--trace", str(TRACE)]
CLI = "import sys; from superpod.cli import main; sys.argv[0] = 'superpod'; main()"


def best_s(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Fastest wall and fastest CPU (user + system) time of REPEATS runs of ``python args``
    (output discarded), seconds."""
    wall = cpu = float("inf")
    for _ in range(REPEATS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env)
        wall = min(wall, time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = min(cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


def slowest_imports(args: list[str], n: int = 6) -> list[tuple[int, str]]:
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
    base = best_s(["-c", "pass"])
    numpy = best_s(["-c", "import numpy"])
    helps = best_s(["-c", CLI, "--help"])
    train = best_s(["-c", CLI, *TRAIN])
    cold = best_s(["-c", CLI, *TRAIN], env=dict(os.environ, SUPERPOD_CACHE_DIR=""))
    print(f"start-up, best of {REPEATS} fresh processes: wall (cpu)")
    print(f"  baseline: python -c pass        {base[0]:6.3f} s ({base[1]:.3f})")
    print(f"  baseline: import numpy          {numpy[0]:6.3f} s ({numpy[1]:.3f})")
    for name, (wall, cpu), target in (("superpod --help", helps, "0.25 s"),
                                      ("superpod train (README)", train, "0.5 s"),
                                      ("train, no load cache", cold, "")):
        goal = f"; target {target}" if target else ""
        print(f"  {name:30s}  {wall:6.3f} s ({cpu:.3f})  {wall / numpy[0]:.1f}x import "
              f"numpy{goal}")
    print("  slowest top-level imports of train (cumulative):")
    for us, name in slowest_imports(["-c", CLI, *TRAIN]):
        print(f"    {us / 1e3:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
