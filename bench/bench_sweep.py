"""Benchmark: ``superpod sweep`` throughput and resume.

A sweep over scale-up domain size x NIC speed x three models (Llama 3 70B, Llama 3.1 405B,
DeepSeek-V3) on 8,192 GB200-class chips, the best layout per point (quick space), on 2 local
workers into a DuckDB store; the baseline, measured in the same run, is the same points'
first few evaluated serially in this process (points per second). Then a resume check: a
sweep process killed with SIGKILL after a few points, resumed, and the store counted (no
point lost, none twice). Default: 24 points (CI); ``SUPERPOD_BENCH_FULL=1``: 990 points
(domain 8 ... 8,192 in 11 doublings x NIC 200 ... 1,600 Gb/s in 30 steps x 3 models; target
<= 10 min on 2 workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from superpod.sweep.point import evaluate_point
from superpod.sweep.run import run_sweep
from superpod.sweep.spec import parse_spec
from superpod.sweep.store import Store

FULL = bool(os.environ.get("SUPERPOD_BENCH_FULL"))
DOMAIN = ("{min: 8, max: 8192, log: true, integer: true, steps: 11}" if FULL
          else "[8, 64, 512, 4096]")
NIC = "{min: 200 Gb/s, max: 1600 Gb/s, steps: 30}" if FULL else '["400 Gb/s", "800 Gb/s"]'
SPEC = f"""\
name: domain-x-nic
system:
  preset: gb200-nvl72
  chips: 8192
  set:
    scale_up.domain_chips: {DOMAIN}
    scale_out.nic_bandwidth: {NIC}
workload:
  model: [llama3-70b, llama3.1-405b, deepseek-v3]
  global_batch: 2048
  seq_len: 4096
  precision: bf16
"""


def main() -> None:
    spec = parse_spec(yaml.safe_load(SPEC), "bench.yaml", SPEC)
    points = spec.points()
    t = time.perf_counter()
    for p in points[:6]:
        evaluate_point(spec, p)
    serial = 6 / (time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as d:
        db = str(Path(d) / "r.duckdb")
        run = run_sweep(spec, db, workers=2)
        rate = run.evaluated / run.wall_s
        print(f"sweep of {len(points)} points on 2 workers: {run.wall_s:.1f} s, "
              f"{rate:.2f} points/s ({rate / serial:.2f}x the serial baseline of "
              f"{serial:.2f} points/s); {run.status}")
        if FULL:
            print(f"  target: <= 600 s for ~1,000 points -> {run.wall_s:.0f} s")
        print(f"resume after SIGKILL: {resume_check(Path(d))}")


def resume_check(d: Path) -> str:
    """Kill a sweep after 3 points, resume it, and count the store's rows."""
    spec_file, db = d / "s.yaml", d / "k.duckdb"
    spec_file.write_text("system: {preset: dgx-h100, chips: [8, 16, 32, 64]}\n"
                         "workload: {model: [llama3-8b, llama3-70b], global_batch: 64,\n"
                         "           seq_len: 4096, precision: [bf16, fp8]}\n")
    cmd = [sys.executable, "-c", "from superpod.cli import main; main()", "sweep",
           str(spec_file), "--out", str(db), "--workers", "1", "--verbose"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"SUPERPOD_PROGRESS": "0"})
    assert proc.stderr is not None
    done = []
    for line in proc.stderr:
        if line.startswith("point "):
            done.append(line.split()[2])
            if len(done) == 3:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    spec = parse_spec(yaml.safe_load(spec_file.read_text()), str(spec_file))
    run = run_sweep(spec, str(db), workers=1, resume=True)
    with Store(db, read_only=True) as st:
        ids = [r["id"] for r in st.rows()]
    lost = len(set(done) - set(ids))
    return (f"{len(done)} finished before the kill, {run.skipped} skipped on resume, "
            f"{run.evaluated} evaluated; {len(ids)} rows for {run.total} points, "
            f"{len(ids) - len(set(ids))} duplicates, {lost} lost")


if __name__ == "__main__":
    main()
