"""The long hostile-input run: every command and loader, >= 10,000 inputs by default.

    python bench/bench_fuzz.py [N] [--show K]

Prints the counts issue 14 asks for: tracebacks, hangs, exit codes, internal errors (exit
3), non-strict JSON, JSON errors not in the error object, silently accepted bad values, and
inputs per second. ``--show K`` prints up to K failing inputs per class. Memory is capped
(address space 3 GiB) so that an input that allocates without bound is a MemoryError, not a
machine out of memory. The cases come from ``tests/fuzzing.py`` (the same strategies as the
CI fuzz test), derandomised, so two runs draw the same inputs.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fuzzing  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

#: issue 14's unbounded-work commands: each must answer or refuse in seconds
BOUNDED = [
    ["topology", "dgx-h100", "--chips", "2147483648", "--json"],
    ["topology", "dgx-h100", "--chips", "2097152", "--json"],
    ["infer", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8", "--batch", "8", "--mtp",
     "1000000", "--json"],
    ["reliability", "-s", "dgx-h100", "--chips", "1000000", "--model-params", "405e9",
     "--json"],
    ["collective", "-s", "tpu-v5p-pod", "--op", "all_to_all", "--bytes", "1GiB", "--engine",
     "flow", "--json"],
    ["plan", "infer", "-s", "dgx-h100", "-m", "llama3-8b", "--slo-tpot-ms", "50",
     "--chips", "1000000", "--json"],
]
CLASSES = ("traceback", "hang", "exit_code", "internal", "nonstrict_json", "json_error",
           "silent")


def main() -> None:
    args = sys.argv[1:]
    show = 3  # examples printed per failure class (--show N)
    if "--show" in args:
        i = args.index("--show")
        show = int(args[i + 1])
        del args[i:i + 2]
    n = int(args[0]) if args else 10_000
    limit = 3 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    ws = fuzzing.Workspace()
    counts: Counter[str] = Counter()
    by_command: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[str]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)

    @settings(max_examples=n, database=None, derandomize=True, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(fuzzing.any_case())
    def one(case: fuzzing.Case) -> None:
        t0 = time.perf_counter()
        try:
            o = fuzzing.run_case(case, ws, limit_s=5.0)
        except MemoryError:
            o = fuzzing.Outcome(None, "", "", MemoryError(), False)
        seconds[case.command] += time.perf_counter() - t0
        counts["runs"] += 1
        counts[f"exit {o.exit_code}"] += 1
        by_command[case.command]["runs"] += 1
        for cls in fuzzing.judge(case, o):
            counts[cls] += 1
            by_command[case.command][cls] += 1
            if len(examples[cls]) < show:
                tail = (o.stderr or o.stdout or repr(o.exception)).strip().splitlines()
                examples[cls].append(f"{case.command} {' '.join(case.notes)} -> "
                                     f"exit {o.exit_code}: {(tail or [''])[-1][:160]}"
                                     f"{' ' + repr(o.exception)[:160] if o.exception else ''}")

    start = time.perf_counter()
    try:
        one()
    finally:
        ws.close()
    wall = time.perf_counter() - start
    print(f"inputs: {counts['runs']:,} in {wall:.1f} s ({counts['runs'] / wall:,.1f} inputs/s)")
    for cls in CLASSES:
        print(f"  {cls:<15} {counts[cls]:>6,}")
    codes = sorted((k for k in counts if k.startswith("exit ")), key=str)
    print("  exit codes:     " + ", ".join(f"{k[5:]}: {counts[k]:,}" for k in codes))
    print(f"  running the inputs: {sum(seconds.values()):.1f} s (the rest: drawing them)")
    print("by command (runs, seconds, failures):")
    for cmd, c in sorted(by_command.items()):
        fails = ", ".join(f"{k} {c[k]}" for k in CLASSES if c[k])
        print(f"  {cmd:<14} {c['runs']:>5} {seconds[cmd]:>7.1f}  {fails or '-'}")
    print("bounded work (issue 14, point 10):")
    for words in BOUNDED:
        t0 = time.perf_counter()
        r = fuzzing.runner.invoke(fuzzing.app, words)
        print(f"  {time.perf_counter() - t0:6.2f} s  exit {r.exit_code}  superpod "
              f"{' '.join(words[:-1])}")
    for cls, lines in examples.items():
        print(f"examples of {cls}:")
        for line in lines:
            print(f"  {line}")


if __name__ == "__main__":
    main()
