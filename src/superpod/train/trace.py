"""Chrome trace (``chrome://tracing``, Perfetto) of one training step's timeline.

One track per activity on the slowest pipeline stage: the micro-batches' forward and
backward compute, recompute, exposed communication by kind, the pipeline bubble, the
exposed data-parallel communication, the optimizer and the compute lost to communication
running beside it, laid end to end in the order they
cost time (the breakdown, not a kernel-level replay).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from superpod.train.step import TrainResult


def trace_events(res: TrainResult) -> list[dict[str, Any]]:
    b, m = res.breakdown_s, res.plan.microbatches
    per_mb = [("compute", b["compute"] / m), ("recompute", b["recompute"] / m),
              ("tp_comm", b["tp_comm"] / m), ("cp_comm", b["cp_comm"] / m),
              ("ep_comm", b["ep_comm"] / m), ("pp_comm", b["pp_comm"] / m)]
    events: list[dict[str, Any]] = []
    t = 0.0
    tid = {name: i for i, name in enumerate(b)}
    for i in range(m):
        for name, dur in per_mb:
            if dur > 0:
                events.append({"name": f"{name} mb{i}", "ph": "X", "pid": 0,
                               "tid": tid[name], "ts": t * 1e6, "dur": dur * 1e6})
                t += dur
    per_step = [name for name in b if name not in dict(per_mb)]
    for name in per_step:
        if b[name] > 0:
            events.append({"name": name, "ph": "X", "pid": 0, "tid": tid[name],
                           "ts": t * 1e6, "dur": b[name] * 1e6})
            t += b[name]
    events += [{"name": "thread_name", "ph": "M", "pid": 0, "tid": i, "args": {"name": n}}
               for n, i in tid.items()]
    return events


def write_trace(res: TrainResult, path: str | Path) -> None:
    """Write the Chrome trace; a path that cannot be written is one ``SpecError`` line."""
    from superpod.boundary.files import write_text

    write_text(path, json.dumps({"traceEvents": trace_events(res), "displayTimeUnit": "ms"}),
               "--trace")
