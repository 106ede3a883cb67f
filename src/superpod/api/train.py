"""``train`` (one layout) and ``plan_train`` (the layout search): the objects that
``superpod train --json`` and ``superpod plan train --json`` print, with the same defaults
(the commands read their defaults from these signatures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from superpod.choices import (
    ATTENTION_KERNELS,
    OFFLOAD,
    OFFLOAD_OVERLAP,
    PP_SCHEDULES,
    RECOMPUTE,
    SEARCH_SPACES,
    TRAIN_FRAMEWORKS,
    TRAIN_PRECISIONS,
    check_choice,
)
from superpod.errors import SpecError

Row = dict[str, Any]


def train(system: str, model: str, global_batch: int, seq_len: int, *, tp: int = 1,
          pp: int = 1, vpp: int = 1, dp: int | None = None, cp: int = 1, ep: int = 1,
          etp: int = 1, sequence_parallel: bool = True, zero: int = 1, micro_batch: int = 1,
          recompute: str = "none", precision: str = "bf16", pp_schedule: str = "auto",
          attention_kernel: str = "auto", tp_comm_overlap: bool = True,
          ranks_per_chip: int | None = None, order: str = "tp-cp-dp-pp",
          chips: int | None = None, trace: str | Path | None = None, economics: bool = True,
          offload: str = "none", offload_tier: str | None = None,
          offload_overlap: str = "overlapped", framework: str = "none") -> Row:
    """Step time, tokens/s, MFU, memory and breakdown of one training layout (SI units), or
    ``{"status": "infeasible", "reason", "detail"}``.

    ``framework``: what a named framework does for this layout (``TRAIN_FRAMEWORKS``; the
    profiles validation cases use, ``superpod.train.frameworks``): its attention kernel
    (unless ``attention_kernel`` names one), TP overlap, FP8 recipe, FSDP and gradient
    handling, dispatcher, pipeline split and what its memory keeps; "none": the options as
    given.

    ``system``: a catalog id, a YAML file or ``FILE:ID``; ``model``: a preset id or a Hugging
    Face ``config.json``; ``ranks_per_chip`` default: the devices the chip exposes (Ascend
    910C: 2); ``dp`` default: the ranks over ``tp x pp x cp``; ``trace``: write a Chrome
    trace there."""
    from superpod.api.catalog import catalog
    from superpod.api.catalog import system as build
    from superpod.api.resolve import system_arg
    from superpod.errors import Infeasible
    from superpod.train.plan import TrainPlan
    from superpod.train.step import evaluate_train
    from superpod.train.trace import write_trace
    from superpod.trust.annotate import annotate_train
    from superpod.workload.model import load_model

    if trace is not None:
        from superpod.boundary.files import check_output

        check_output(trace, "--trace")
    sid, files = system_arg(system)
    sysm = build(sid, chips, files)
    spec = load_model(model)
    ranks_per_chip = ranks_per_chip or sysm.chip.devices
    ranks = sysm.counts.chips * ranks_per_chip
    check_choice("--recompute", recompute, RECOMPUTE)
    check_choice("--precision", precision, TRAIN_PRECISIONS)
    check_choice("--pp-schedule", pp_schedule, PP_SCHEDULES)
    check_choice("--attention-kernel", attention_kernel, ATTENTION_KERNELS)
    check_choice("--framework", framework, TRAIN_FRAMEWORKS)
    for name, v in (("--tp", tp), ("--pp", pp), ("--cp", cp)):
        if v < 1:
            raise SpecError("must be a positive integer", field=name, value=v)
    if dp is None and ranks % (tp * pp * cp):
        raise SpecError(f"does not divide the {ranks} ranks", field="--tp x --pp x --cp",
                        value=tp * pp * cp, allowed=f"a divisor of {ranks}")
    schedule = ("interleaved" if vpp > 1 else "1f1b") if pp_schedule == "auto" else pp_schedule
    fields: dict[str, Any] = dict(recompute=recompute, attention_kernel=attention_kernel,
                                  tp_comm_overlap=tp_comm_overlap and tp > 1)
    used: tuple[str, ...] = ()
    layer_offload = False
    if framework != "none":
        from superpod.train.frameworks import NAMED_FRAMEWORKS, framework_for

        fw = framework_for(NAMED_FRAMEWORKS[framework])
        if pp_schedule == "auto":
            schedule = fw.schedule(None, vpp)
        fields = fw.plan_fields(layers=spec.num_hidden_layers, pp=pp, vpp=vpp, zero=zero,
                                recompute=recompute, precision=precision)
        fields["tp_comm_overlap"] = bool(fields["tp_comm_overlap"]) and tp > 1
        if attention_kernel != "auto":
            fields["attention_kernel"] = attention_kernel
        sequence_parallel = sequence_parallel or fw.sequence_parallel
        used = fw.sources
        from superpod.train.offload_eval import offloads_layers

        layer_offload = offloads_layers(fw.fsdp_layer_offload, zero, sysm)
    plan = TrainPlan(tp=tp, pp=pp, vpp=vpp, dp=dp if dp is not None else max(
                         1, ranks // (tp * pp * cp)), cp=cp,
                     ep=ep, etp=etp, sequence_parallel=sequence_parallel and tp > 1,
                     zero=zero, micro_batch=micro_batch, global_batch=global_batch,
                     seq_len=seq_len, precision=precision, pp_schedule=schedule,
                     order=order, **fields)
    if precision not in sysm.chip.peak_flop_per_s:
        raise SpecError(f"{sysm.chip.id} has no dense {precision} peak", field="--precision",
                        value=precision, allowed=", ".join(
                            p for p in ("bf16", "fp8", "fp4") if p in sysm.chip.peak_flop_per_s))
    tier = _offload_tier(sysm, offload, offload_tier)
    check_choice("--offload-overlap", offload_overlap, OFFLOAD_OVERLAP)
    if tier is not None:
        from superpod.train.offload_eval import evaluate_with_offload

        res = evaluate_with_offload(sysm, spec, plan, ranks_per_chip=ranks_per_chip,
                                    tier=tier, overlap=offload_overlap)  # type: ignore[arg-type]
    elif layer_offload:  # the framework keeps what HBM cannot hold in Grace memory
        from superpod.train.offload_eval import evaluate_with_layer_offload

        res = evaluate_with_layer_offload(sysm, spec, plan, ranks_per_chip=ranks_per_chip)
    else:
        res = evaluate_train(sysm, spec, plan, ranks_per_chip=ranks_per_chip)
    if isinstance(res, Infeasible):
        return res.to_dict()
    if trace:
        write_trace(res, Path(trace))
    row = res.to_dict()
    if framework != "none":
        row["framework"] = {"name": framework, "sources": list(used)}
    if economics:
        from superpod.train.economics import train_economics

        row |= train_economics(sysm, catalog(files), spec, res)
    annotate_train(row, sysm, catalog(files), spec, precision)
    return row


def plan_train(system: str, model: str, global_batch: int, seq_len: int, *,
               precision: str = "bf16", top: int = 5, tp_comm_overlap: bool = True,
               ranks_per_chip: int | None = None, offload: str = "none",
               offload_tier: str | None = None, space: str = "full",
               chips: int | None = None,
               progress: Callable[[int, int], None] | None = None,
               framework: str = "none") -> Row:
    """The whole layout space (``space``: full, or the narrower quick one) searched by
    branch and bound, the best layout the exhaustive search's: the best ``top``
    (``candidates``, with power, tokens/J and $/Mtok), the layouts considered, evaluated,
    pruned and infeasible, the infeasible ones counted by reason (``infeasible``); with
    none feasible, ``suggestion`` says why and the nearest global batch that has a layout.
    ``progress(done, total)`` hears of the search's structures. ``framework``: every layout
    runs with that framework's layout-independent choices (kernels, FP8 recipe, dispatcher,
    gradient dtype; ``TrainFramework.layout_free_fields``)."""
    from superpod.api.catalog import catalog
    from superpod.api.catalog import system as build
    from superpod.api.resolve import system_arg
    from superpod.train.search import plan_train as search
    from superpod.trust.annotate import annotate_train
    from superpod.workload.model import load_model

    check_choice("--precision", precision, TRAIN_PRECISIONS)
    check_choice("--space", space, SEARCH_SPACES)
    check_choice("--framework", framework, TRAIN_FRAMEWORKS)
    sid, files = system_arg(system)
    sysm = build(sid, chips, files)
    spec = load_model(model)
    tier = _offload_tier(sysm, offload, offload_tier)
    r = ranks_per_chip or sysm.chip.devices
    fields: dict[str, Any] = {}
    used: tuple[str, ...] = ()
    if framework != "none":
        from superpod.train.frameworks import NAMED_FRAMEWORKS, framework_for

        fw = framework_for(NAMED_FRAMEWORKS[framework])
        fields, used = fw.layout_free_fields(precision), fw.sources
        if tier is not None:
            raise SpecError("cannot combine --offload with --framework (the framework "
                            "states what it offloads)", field="--offload", value=offload,
                            allowed="none with --framework")

    def run(batch: int, k: int = top) -> Any:
        if tier is not None:
            from superpod.train.offload_eval import plan_train_with_offload

            return plan_train_with_offload(sysm, spec, batch, seq_len, precision, k,
                                           ranks_per_chip=r, tp_comm_overlap=tp_comm_overlap,
                                           tier=tier, space=space)
        return search(sysm, spec, batch, seq_len, precision, k, ranks_per_chip=r,
                      tp_comm_overlap=tp_comm_overlap, space=space, progress=progress,
                      fields=fields)

    res = run(global_batch)
    doc: Row = res.to_dict()
    if framework != "none":
        doc["framework"] = {"name": framework, "sources": list(used)}
    cat = catalog(files)
    from superpod.train.economics import with_economics

    doc["candidates"] = [annotate_train(with_economics(c, cand, sysm, cat, spec), sysm, cat,
                                        spec, precision)
                         for c, cand in zip(doc["candidates"], res.candidates, strict=True)]
    if not res.candidates:
        doc["suggestion"] = _suggest_batch(sysm, spec, seq_len, precision, r, global_batch,
                                           res, lambda b: run(b, 1))
    return doc


def _suggest_batch(sysm: Any, spec: Any, seq_len: int, precision: str, r: int, asked: int,
                   res: Any, search: Any) -> dict[str, Any]:
    """Why ``asked`` has no layout, and the nearest batch that has one (None if none)."""
    from superpod.train.batch import (
        BATCH_REASONS,
        data_parallel_degrees,
        nearest_batches,
        why_none,
    )

    degrees = data_parallel_degrees(sysm, spec, seq_len, precision, r)
    curable = (not any(asked % d == 0 for d in degrees)
               or bool(BATCH_REASONS & set(res.infeasible)))  # memory: another batch won't
    found = next((b for b in nearest_batches(asked, degrees)
                  if b != asked and search(b).candidates), None) if curable else None
    return {"reason": why_none(res, asked, degrees), "global_batch": found,
            "data_parallel_degrees": degrees}


def _offload_tier(sysm: Any, offload: str, tier: str | None) -> Any:
    """The tier ``--offload auto`` offloads to, or None for ``--offload none``."""
    check_choice("--offload", offload, OFFLOAD)
    if offload == "none":
        if tier is not None:
            raise SpecError("--offload-tier needs --offload auto", field="--offload-tier",
                            value=tier)
        return None
    from superpod.train.offload_eval import offload_tier

    return offload_tier(sysm, tier)
