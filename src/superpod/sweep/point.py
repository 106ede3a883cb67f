"""One sweep point: build its system and workload, cost it with the functions ``plan train``
and ``train`` use, and return one flat row for the store.

``evaluate_point`` is pure apart from memoised system builds (a worker reuses a system for
every point that shares it, so the evaluator's per-system caches stay warm); a point that
cannot run is a row with ``status`` ``infeasible`` (and the reason), bad input one with
``status`` ``error`` and the one-line message.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from superpod.errors import Infeasible, SpecError

#: numeric outputs kept as their own columns (the full row is kept as JSON too)
METRICS = ("step_time_s", "tokens_per_s", "tokens_per_s_per_chip", "mfu", "hfu",
           "memory_bytes_per_chip", "it_power_w", "facility_power_w", "tokens_per_j",
           "usd_per_million_tokens", "capex_usd", "chips")
#: which way each metric is better (``sweep show --pareto``)
BETTER = {"step_time_s": "min", "tokens_per_s": "max", "tokens_per_s_per_chip": "max",
          "mfu": "max", "hfu": "max", "memory_bytes_per_chip": "min", "it_power_w": "min",
          "facility_power_w": "min", "tokens_per_j": "max",
          "usd_per_million_tokens": "min", "capex_usd": "min", "chips": "min"}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _v

    try:
        return _v("superpod")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _set_path(doc: dict[str, Any], path: str, value: Any, file: str) -> None:
    keys = path.split(".")
    cur: Any = doc
    for k in keys[:-1]:
        if isinstance(cur, list) and k.isdigit() and int(k) < len(cur):
            cur = cur[int(k)]
        elif isinstance(cur, dict):
            cur = cur.setdefault(k, {})
        else:
            raise SpecError("no such field", file=file, field=f"system.set.{path}")
    last = keys[-1]
    if isinstance(cur, list) and last.isdigit() and int(last) < len(cur):
        cur[int(last)] = value
    elif isinstance(cur, dict):
        cur[last] = value
    else:
        raise SpecError("no such field", file=file, field=f"system.set.{path}")


@functools.lru_cache(maxsize=32)
def _system(preset: str, chips: int | None, sets: str, file: str) -> Any:
    """The system of a point (memoised: the same object for every point that shares it)."""
    from superpod import api
    from superpod.hardware.catalog import builtin_raw_chip, builtin_raw_system, catalog_with
    from superpod.hardware.system import build_system

    overrides: dict[str, Any] = json.loads(sets)
    if not overrides:
        return api.system(preset, chips), api.catalog()
    raw = builtin_raw_system(preset)
    sid = f"{preset}.sweep"
    raw["id"] = sid
    doc: dict[str, list[dict[str, Any]]] = {"systems": [raw]}
    chip_sets = {k[5:]: v for k, v in overrides.items() if k.startswith("chip.")}
    if chip_sets:
        chip = builtin_raw_chip(str(raw["chip"]))
        chip["id"] = f"{raw['chip']}.sweep"
        for k, v in chip_sets.items():
            if k not in chip and k not in _CHIP_FIELDS:
                raise SpecError("no such chip field", file=file, field=f"system.set.chip.{k}",
                                allowed=", ".join(sorted(_CHIP_FIELDS)))
            _set_path(chip, k, v, file)
        raw["chip"] = chip["id"]
        doc["chips"] = [chip]
    for k, v in overrides.items():
        if not k.startswith("chip."):
            _set_path(raw, k, v, file)
    cat = catalog_with(doc, f"{file} (system.set)")
    return build_system(cat.system(sid), cat, chips), cat


_CHIP_FIELDS = frozenset({"peak_dense", "hbm_capacity", "hbm_bandwidth",
                          "scale_up_bandwidth_unidir", "scale_up_links", "scale_out_nic",
                          "power", "price", "dies", "devices"})


def point_system(inputs: dict[str, Any], file: str) -> Any:
    """Build (or reuse) the point's (system, catalog); bad fields are a SpecError naming
    them."""
    sets = {k[len("system.set."):]: v for k, v in inputs.items()
            if k.startswith("system.set.")}
    chips = inputs.get("system.chips")
    return _system(str(inputs["system.preset"]), int(chips) if chips else None,
                   json.dumps(sets, sort_keys=True), file)


def _layout_text(plan: dict[str, Any]) -> str:
    keys = ("tp", "pp", "vpp", "dp", "cp", "ep", "etp", "micro_batch")
    core = " ".join(f"{k}={plan[k]}" for k in keys if plan[k] != 1 or k in ("tp", "pp", "dp"))
    return (f"{core} zero={plan['zero']} recompute={plan['recompute']} "
            f"{plan['pp_schedule']} order={plan['order']}")


def evaluate_point(spec: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """The store row of one point (``spec`` is the ``SweepSpec``)."""
    t0 = time.perf_counter()
    row: dict[str, Any] = {"id": spec.point_id(inputs), "inputs": inputs,
                           "superpod_version": version(), "status": "ok", "reason": None,
                           "detail": None}
    try:
        row |= _evaluate(spec, inputs)
    except SpecError as exc:
        row |= {"status": "error", "reason": "bad_input", "detail": str(exc)}
    row["elapsed_s"] = time.perf_counter() - t0
    return row


def _evaluate(spec: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    from superpod.train.economics import with_economics
    from superpod.train.plan import TrainPlan
    from superpod.train.search import plan_train
    from superpod.train.step import evaluate_train
    from superpod.trust.annotate import annotate_train
    from superpod.workload.model import load_model

    system, cat = point_system(inputs, spec.file)
    model = load_model(str(inputs["workload.model"]))
    seq = int(inputs["workload.seq_len"])
    gb = int(inputs.get("workload.global_batch") or
             max(1, round(int(inputs["workload.tokens_per_step"]) / seq)))
    precision = str(inputs.get("workload.precision", "bf16"))
    if precision not in system.chip.peak_flop_per_s:
        return {"status": "infeasible", "reason": "precision_unsupported",
                "detail": f"{system.chip.id} has no dense {precision} peak"}
    r = system.chip.devices
    out: dict[str, Any] = {"global_batch": gb}
    if spec.mode == "best":
        res = plan_train(system, model, gb, seq, precision, 1, ranks_per_chip=r,
                         space=spec.search)
        out["layouts"] = res.layouts()
        if not res.candidates:
            reason = res.infeasible.most_common(1)[0][0] if res.infeasible else "no_layout"
            return out | {"status": "infeasible", "reason": reason,
                          "detail": json.dumps(dict(res.infeasible.most_common()))}
        best = res.candidates[0]
    else:
        lay = dict(spec.layout)
        ranks = system.counts.chips * r
        tp, pp, cp = (int(lay.get(k, 1)) for k in ("tp", "pp", "cp"))
        if ranks % (tp * pp * cp):
            return out | {"status": "infeasible", "reason": "world_size",
                          "detail": f"tp*pp*cp = {tp * pp * cp} does not divide {ranks} ranks"}
        lay.setdefault("dp", ranks // (tp * pp * cp))
        vpp = int(lay.get("vpp", 1))
        lay.setdefault("pp_schedule", "interleaved" if vpp > 1 else "1f1b")
        plan = TrainPlan(global_batch=gb, seq_len=seq, precision=precision,
                         sequence_parallel=tp > 1, **lay)
        got = evaluate_train(system, model, plan, ranks_per_chip=r)
        if isinstance(got, Infeasible):
            return out | {"status": "infeasible", "reason": got.reason, "detail": got.detail}
        best = got
    full = annotate_train(with_economics(best.to_dict(), best, system, cat, model), system,
                          cat, model, precision)
    out |= {k: full.get(k) for k in METRICS}
    out |= {"layout": _layout_text(full["plan"]), "bands": full.get("bands"),
            "evidence": full.get("evidence"), "row": full}
    return out
