"""An SLO no serving layout meets: why, and the nearest looser SLO one layout meets.

The search (``infer.search.plan_infer``, colocated only: the cheapest that can answer) is
rerun with the binding SLO loosened by factors of 2 up to ``MAX_FACTOR``; TPOT is loosened
first (TTFT kept), then, where a TTFT SLO is given, TTFT (TPOT kept). The first that finds a
layout is the suggestion; None when no factor does.
"""

from __future__ import annotations

from typing import Any

from superpod.hardware.system import System
from superpod.infer.config import InferOptions
from superpod.infer.serving import Workload
from superpod.workload.model import ModelSpec

FACTORS = (2, 4, 8, 16, 32, 64)
MAX_FACTOR = FACTORS[-1]


def nearest_slo(system: System, model: ModelSpec, opts: InferOptions, work: Workload,
                tpot_s: float, ttft_s: float | None, infeasible: Any) -> dict[str, Any]:
    """``{"reason", "option", "value_s"}``: ``option`` the CLI flag to loosen and
    ``value_s`` its SLO in seconds, None (and ``value_s`` None) when no factor up to
    ``MAX_FACTOR`` works. ``infeasible``: the failed search's reasons (a Counter)."""
    from superpod.infer.search import plan_infer

    top = ", ".join(f"{k} x{v}" for k, v in infeasible.most_common(3))
    reason = f"no layout meets TPOT <= {tpot_s * 1e3:g} ms" + (
        f" and TTFT <= {ttft_s * 1e3:g} ms" if ttft_s else "") + f" ({top})"
    for option in ("--slo-tpot-ms", "--slo-ttft-ms") if ttft_s else ("--slo-tpot-ms",):
        for k in FACTORS:
            tp = tpot_s * (k if option == "--slo-tpot-ms" else 1)
            tt = ttft_s * (k if option == "--slo-ttft-ms" else 1) if ttft_s else None
            r = plan_infer(system, model, opts, work, slo_tpot_s=tp, slo_ttft_s=tt, top=1,
                           disaggregate=False)
            if r.candidates:
                return {"reason": reason, "option": option,
                        "value_s": tp if option == "--slo-tpot-ms" else tt or 0.0}
    return {"reason": reason, "option": None, "value_s": None}
