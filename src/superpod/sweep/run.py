"""Running a sweep: points to workers, rows into the store as they finish.

``local`` (default): a process pool over the machine's cores (``--workers``), each worker
evaluating points with ``point.evaluate_point`` and keeping its system builds and evaluator
caches warm across points. ``ray``: each point a Ray task on a running cluster
(``--ray-address``; none starts a local one), at most two tasks in flight per CPU, results
streamed into the store in the order they finish. Only this process writes the store, one
transaction per point. A progress bar with ETA goes to stderr (``superpod.progress``).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from superpod.errors import SpecError
from superpod.progress import Bar
from superpod.sweep.point import evaluate_point
from superpod.sweep.spec import SweepSpec
from superpod.sweep.store import Store, input_columns

ENGINES = ("local", "ray")


@dataclass
class SweepRun:
    """What a run did: points in the spec, skipped (already stored), evaluated, by status."""

    total: int = 0
    skipped: int = 0
    evaluated: int = 0
    status: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"points": self.total, "skipped": self.skipped, "evaluated": self.evaluated,
                "status": dict(self.status), "wall_s": self.wall_s,
                "points_per_s": self.evaluated / self.wall_s if self.wall_s else 0.0}


def _work(args: tuple[SweepSpec, int, dict[str, Any]]) -> tuple[int, dict[str, Any], str]:
    spec, idx, inputs = args
    return idx, evaluate_point(spec, inputs), f"pid{os.getpid()}"


def run_sweep(spec: SweepSpec, out: str, *, workers: int | None = None,
              engine: str = "local", resume: bool = False, ray_address: str | None = None,
              bar: Bar | None = None, log: Callable[[str], None] | None = None) -> SweepRun:
    """Evaluate every point of ``spec`` not yet in ``out`` and store each as it finishes."""
    if engine not in ENGINES:
        raise SpecError("not a known choice", field="--engine", value=engine,
                        allowed=", ".join(ENGINES))
    points = spec.points()
    run = SweepRun(total=len(points))
    t0 = time.perf_counter()
    with Store(out) as st:
        if st.has_points() and not resume:
            done = st.finished_ids()
            if done:
                raise SpecError(f"already holds {len(done)} points: --resume to continue, or "
                                "another --out", file=out, field="--out")
        st.create(input_columns(points), spec.text)
        done = st.finished_ids()
        todo = [(i, p) for i, p in enumerate(points) if spec.point_id(p) not in done]
        run.skipped = len(points) - len(todo)
        feed = _ray if engine == "ray" else _local
        n = 0
        for idx, row, worker in feed(spec, todo, workers, ray_address):
            if row["id"] in done:
                continue
            st.insert(idx, row, worker)
            done.add(row["id"])
            n += 1
            run.evaluated = n
            run.status[row["status"]] = run.status.get(row["status"], 0) + 1
            if bar is not None:
                bar.update(n, len(todo), note=f"{row['status']} {row['id'][:8]}")
            if log is not None:
                log(f"point {idx} {row['id']} {row['status']} {row['elapsed_s']:.2f} s")
    run.wall_s = time.perf_counter() - t0
    return run


def _local(spec: SweepSpec, todo: list[tuple[int, dict[str, Any]]], workers: int | None,
           _address: str | None) -> Iterator[tuple[int, dict[str, Any], str]]:
    n = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    if n == 1:  # in this process: no pool to start
        for i, p in todo:
            yield _work((spec, i, p))
        return
    # spawn: a clean interpreter per worker (no inherited store connection or threads)
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        it = iter(todo)
        live: set[cf.Future[tuple[int, dict[str, Any], str]]] = set()
        for i, p in it:  # at most 4 points per worker queued: memory stays flat
            live.add(pool.submit(_work, (spec, i, p)))
            if len(live) >= 4 * n:
                break
        while live:
            ready, live = cf.wait(live, return_when=cf.FIRST_COMPLETED)
            for f in ready:
                yield f.result()
                nxt = next(it, None)
                if nxt is not None:
                    live.add(pool.submit(_work, (spec, nxt[0], nxt[1])))


def _ray(spec: SweepSpec, todo: list[tuple[int, dict[str, Any]]], workers: int | None,
         address: str | None) -> Iterator[tuple[int, dict[str, Any], str]]:
    try:
        import ray
    except ImportError:
        raise SpecError("the ray engine needs Ray: pip install 'superpod[ray]'",
                        field="--engine", value="ray") from None
    started = not ray.is_initialized()
    if started:
        kw: dict[str, Any] = {"address": address} if address else {"num_cpus": workers}
        ray.init(include_dashboard=False, log_to_driver=False, **kw)
    try:
        task = ray.remote(num_cpus=1)(_work)
        resources: Any = ray.cluster_resources  # untyped in Ray
        cpus = max(1, int(resources().get("CPU", 1)))
        it = iter(todo)
        live: list[Any] = []
        for i, p in it:
            live.append(task.remote((spec, i, p)))
            if len(live) >= 2 * cpus:
                break
        while live:
            ready, live = ray.wait(live, num_returns=1)
            for ref in ready:
                yield ray.get(ref)
                nxt = next(it, None)
                if nxt is not None:
                    live.append(task.remote((spec, nxt[0], nxt[1])))
    finally:
        if started:
            ray.shutdown()


def stderr_log(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
