"""Design-space sweeps: a spec of axes over systems and workloads (``spec``), one pure
evaluation per point (``point``), a DuckDB results store (``store``) and the engines that
run points on local cores or a Ray cluster (``run``)."""

from __future__ import annotations

EXAMPLE = """\
# superpod sweep: which NIC speed and precision pay off, on two systems and two models?
# 2 systems x 2 NIC speeds x 2 sizes x 2 models x 2 precisions = 32 points; the best
# training layout of each (plan train's quick space). Run:
#   superpod sweep sweep.yaml --out results.duckdb
#   superpod sweep show results.duckdb --pareto tokens_per_s_per_chip,usd_per_million_tokens
name: starter
mode: best
search: quick
sampling: grid
system:
  preset: [dgx-h100, gb200-nvl72]
  chips: [72, 144]
  set:
    scale_out.nic_bandwidth: ["400 Gb/s", "800 Gb/s"]
workload:
  model: [llama3-8b, llama3-70b]
  global_batch: 576                  # sequences per step (or tokens_per_step)
  seq_len: 8192
  precision: [bf16, fp8]
"""
