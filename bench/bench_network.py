"""Benchmark: speed of the network model.

Prints (1) the analytic estimate of one collective (microseconds per call), against a
baseline measured in the same run (building the request alone); (2) the flow engine on an
all-to-all among the 384 chips of CloudMatrix 384; (3) how flow-engine time and peak memory
grow with endpoints on an Atlas 950-class nD full mesh, 64 to 8,192 chips (each size in its
own process, so peak RSS is that size's alone).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from superpod import api
from superpod.network.collectives import CollectiveRequest, collective

CHILD = """
import json, resource, sys, time
from superpod import api
from superpod.network.collectives import CollectiveRequest
from superpod.network.flow_engine import flow_collective
sid, n = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
s = api.system(sid, n)
r = flow_collective(s, CollectiveRequest("all_to_all", n, 2.0**30))
print(json.dumps({"wall_s": time.perf_counter() - t0, "time_s": r.time_s,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                  "notes": r.notes}))
"""


def per_call_us(fn, repeats: int = 2000) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats * 1e6


def child(sid: str, n: int) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, "-c", CHILD, sid, str(n)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> None:
    s = api.system("cloudmatrix384")
    base = per_call_us(lambda: CollectiveRequest("all_to_all", 384, 2.0**30))
    est = per_call_us(lambda: collective(s, CollectiveRequest("all_to_all", 384, 2.0**30)))
    print("analytic estimate of one collective (auto algorithm), per call")
    print(f"  baseline: build the request      {base:8.2f} us")
    print(f"  all_to_all, CloudMatrix 384      {est:8.2f} us  ({est / base:.0f}x baseline)")
    h = api.system("dgx-h100", 1024)
    est2 = per_call_us(lambda: collective(h, CollectiveRequest("all_reduce", 1024, 2.0**30)))
    print(f"  all_reduce, 1,024 H100           {est2:8.2f} us")
    r = child("cloudmatrix384", 384)
    print(f"flow engine, all-to-all 1 GiB/rank, CloudMatrix 384: {r['wall_s']:.2f} s wall, "
          f"peak RSS {r['rss_gb']:.2f} GB")
    print("flow engine scaling, all-to-all 1 GiB/rank, Atlas 950-class nD full mesh")
    print(f"  {'chips':>6} {'wall_s':>8} {'peak_GB':>8}  method")
    for n in (64, 128, 256, 512, 1024, 2048, 4096, 8192):
        r = child("atlas-950-superpod", n)
        last = r["notes"][-1] if r["notes"] else ""
        method = last if "flows" in last else "max-min simulation"
        print(f"  {n:>6} {r['wall_s']:>8.2f} {r['rss_gb']:>8.2f}  {method}")


if __name__ == "__main__":
    main()
