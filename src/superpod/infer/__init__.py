"""Inference: one iteration (prefill / decode step), serving metrics (colocated and
disaggregated), a request-level simulator, offline benchmarks run through it, serving
runtimes' published settings and the serving-layout search.

>>> from superpod import api
>>> from superpod.infer import InferOptions, ServingLayout, Workload, serve
>>> from superpod.workload.model import load_model
>>> r = serve(api.system("dgx-h100", 8), load_model("llama3-70b"), ServingLayout(tp=8),
...           InferOptions(precision="fp8"), phase="decode", batch=64,
...           work=Workload(input_len=1000, output_len=1000))
>>> round(r.tpot_s * 1e3) > 0
True
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {"InferOptions": "config", "ServingLayout": "config", "Iteration": "iteration",
         "iteration": "iteration", "plan_infer": "search", "ServingResult": "serving",
         "Workload": "serving", "best_batch": "serving", "disaggregated": "serving",
         "serve": "serving", "poisson_requests": "simulate", "simulate": "simulate",
         "trace_requests": "simulate", "runtime_for": "runtime"}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    """Import lazily, so that ``superpod --help`` does not load the whole model."""
    if name not in _HOME:
        raise AttributeError(f"module 'superpod.infer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"superpod.infer.{_HOME[name]}"), name)
