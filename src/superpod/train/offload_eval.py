"""Training layouts that fit only with state offloaded to host or pooled memory.

``evaluate_with_offload`` evaluates a layout as ``evaluate_train`` does; where that runs out
of HBM it offloads, in this order, until the rank fits: the optimizer state (ZeRO-Offload,
``superpod.train.offload.optimizer_offload``: HBM frees the fp32 optimizer state and half the
fp32 gradients, which become a bf16 buffer), then saved activations
(``activation_offload``). The exposed transfer and CPU time is added to the step as
``offload``; forward is taken as a third of the step's compute and backward two thirds (the
2:1 FLOP ratio of backward to forward). A layout whose offloaded state does not fit the
chip's share of the tier stays infeasible. ``plan_train_with_offload`` is ``plan train``'s
search with this evaluator.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal

from superpod.errors import Infeasible, SpecError
from superpod.hardware.memory import Tier
from superpod.hardware.system import System
from superpod.train import memory as mem
from superpod.train.offload import (
    Overlap,
    activation_offload,
    layer_activation_offload,
    optimizer_offload,
)
from superpod.train.plan import TrainPlan
from superpod.train.search import SearchResult, plan_train
from superpod.train.step import TrainResult, evaluate_train
from superpod.workload.model import ModelSpec

FORWARD_SHARE = 1.0 / 3.0  #: forward's share of a step's compute (backward does 2x the FLOPs)
Mode = Literal["none", "auto"]


def offload_tier(system: System, name: str | None, field: str = "--offload-tier") -> Tier:
    """The host or pool tier to offload to (default: the pool where host memory is pooled)."""
    h = system.memory
    if name is None:
        name = "pool" if h.has("pool") else "host"
    if name not in ("host", "pool") or not h.has(name):
        have = ", ".join(t.name for t in h.tiers if t.name in ("host", "pool")) or "none"
        raise SpecError(f"{system.spec.id} has no such host memory tier to offload to",
                        field=field, value=name, allowed=have)
    return h.tier(name)


def evaluate_with_offload(system: System, model: ModelSpec, plan: TrainPlan, *,
                          ranks_per_chip: int = 1, tier: Tier | None = None,
                          overlap: Overlap = "overlapped") -> TrainResult | Infeasible:
    """``evaluate_train``, offloading to ``tier`` where HBM alone does not fit (module doc)."""
    res = evaluate_train(system, model, plan, ranks_per_chip=ranks_per_chip)
    if not (isinstance(res, Infeasible) and res.reason == "out_of_memory"):
        return res
    h = system.memory
    if tier is None:
        if not (h.has("pool") or h.has("host")):
            return res
        tier = offload_tier(system, None)
    raw = evaluate_train(system, model, plan, ranks_per_chip=ranks_per_chip,
                         check_memory=False)
    if isinstance(raw, Infeasible):
        return res
    r = ranks_per_chip
    m = raw.memory
    cap = system.chip.hbm_bytes / r * mem.USABLE_FRACTION
    compute = sum(v for k, v in raw.breakdown_s.items() if "compute" in k) or raw.step_time_s
    fwd, bwd = FORWARD_SHARE * compute, (1.0 - FORWARD_SHARE) * compute
    hm = system.spec.node.host_memory
    if hm is None:
        return res
    dram = hm.bandwidth.value_bytes_per_s / system.spec.node.chips  # the chip's DRAM share
    opt = optimizer_offload(params_per_rank=m.optimizer / mem.OPTIMIZER_BYTES, tier=tier,
                            dram_bytes_per_s=dram, forward_s=fwd, backward_s=bwd,
                            ranks_per_chip=r, overlap=overlap)
    freed = m.optimizer + m.gradients / 2.0
    new = dataclasses.replace(m, optimizer=0.0, gradients=m.gradients / 2.0)
    costs = [opt]
    offloaded = m.optimizer + m.gradients
    if new.total > cap:
        held = mem.in_flight_microbatches(plan.pp, plan.vpp, plan.microbatches,
                                          plan.pp_schedule)
        act = activation_offload(activation_bytes_per_microbatch=m.activations / held,
                                 microbatches=plan.microbatches, held_microbatches=held,
                                 tier=tier, compute_s=compute, ranks_per_chip=r)
        costs.append(act)
        freed += act.hbm_freed_bytes
        offloaded += act.offloaded_bytes
        new = dataclasses.replace(new, activations=m.activations - act.hbm_freed_bytes)
    if new.total > cap:
        return Infeasible("out_of_memory", f"{res.detail}; still {new.total / 1e9:.1f} GB "
                          f"with optimizer and activations offloaded to {tier.name}")
    if offloaded * r > tier.share_bytes:
        return Infeasible("out_of_memory", f"{res.detail}; offloading needs "
                          f"{offloaded * r / 1e9:.0f} GB of {tier.name} memory a chip, its "
                          f"share is {tier.share_bytes / 1e9:.0f} GB")
    exposed = sum(c.exposed_s for c in costs)
    gpu_adam = raw.breakdown_s.get("optimizer", 0.0)  # the host CPUs now run the update
    kinds = " and ".join(c.kind for c in costs)
    note = (f"offload: {kinds} to {tier.name} ({tier.what}) frees {freed / 1e9:.1f} GB a "
            f"rank; {exposed * 1e3:.4g} ms exposed a step ({overlap})")
    return _offloaded(raw, raw.step_time_s - gpu_adam + exposed, new,
                      {"optimizer": 0.0, "offload": exposed}, note)


def _offloaded(raw: TrainResult, step_s: float, memory: mem.MemoryBreakdown,
               breakdown: dict[str, float], note: str) -> TrainResult:
    """``raw`` (evaluated without the memory check) as it runs with the offload: its step,
    the throughput and MFU scaled to it, the HBM left, the breakdown terms it changes and
    its note in place of the memory model's."""
    scale = raw.step_time_s / step_s
    notes = tuple(n for n in raw.notes if not n.startswith("memory model:")) + (note,)
    return dataclasses.replace(
        raw, step_time_s=step_s, tokens_per_s=raw.tokens_per_s * scale, mfu=raw.mfu * scale,
        hfu=raw.hfu * scale, memory=memory, breakdown_s=dict(raw.breakdown_s) | breakdown,
        notes=notes)


def offloads_layers(fsdp_layer_offload: bool, zero: int, system: System) -> bool:
    """Whether a framework that offloads FSDP activations layer by layer
    (``TrainFramework.fsdp_layer_offload``) does so here: ZeRO-3 on a host reached over
    NVLink-C2C (Grace)."""
    return (fsdp_layer_offload and zero >= 3 and system.memory.has("host")
            and system.memory.tier("host").via == "nvlink_c2c")


def evaluate_with_layer_offload(system: System, model: ModelSpec, plan: TrainPlan, *,
                                ranks_per_chip: int = 1, tier: Tier | None = None,
                                power_limit_w: float | None = None
                                ) -> TrainResult | Infeasible:
    """``evaluate_train``, offloading the saved activations of as few of the rank's layers
    as make it fit to the host tier (Megatron-Core ``cpu_offloading_num_layers``, module
    doc of ``superpod.train.offload``) where HBM alone does not fit; the exposed transfer
    time is the step's ``offload``."""
    res = evaluate_train(system, model, plan, ranks_per_chip=ranks_per_chip,
                         power_limit_w=power_limit_w)
    if not (isinstance(res, Infeasible) and res.reason == "out_of_memory"):
        return res
    if tier is None:
        if not system.memory.has("host"):
            return res
        tier = system.memory.tier("host")
    raw = evaluate_train(system, model, plan, ranks_per_chip=ranks_per_chip,
                         check_memory=False, power_limit_w=power_limit_w)
    if isinstance(raw, Infeasible):
        return res
    from superpod.train.modelfacts import model_facts
    from superpod.train.plan import rank_layers

    m = raw.memory
    layers = rank_layers(plan, model_facts(model).layers)
    held = mem.in_flight_microbatches(plan.pp, plan.vpp, plan.microbatches, plan.pp_schedule,
                                      plan.pp_group)
    per_layer = m.activations / (layers * held)
    cap = system.chip.hbm_bytes / ranks_per_chip * mem.USABLE_FRACTION
    over = m.total - cap
    k = math.ceil(over / (per_layer * held)) if per_layer > 0 else layers
    if k >= layers:  # one layer's activations stay resident for its own compute
        return res
    compute = sum(v for key, v in raw.breakdown_s.items() if "compute" in key) \
        or raw.step_time_s
    cost = layer_activation_offload(layer_bytes=per_layer, layers=k,
                                    microbatches=plan.microbatches, held_microbatches=held,
                                    tier=tier, compute_s=compute, ranks_per_chip=ranks_per_chip)
    if not cost.fits:
        return Infeasible("out_of_memory", f"{res.detail}; offloading {k} layers' "
                          f"activations needs {cost.offloaded_bytes * ranks_per_chip / 1e9:.0f}"
                          f" GB of {tier.name} memory a chip, its share is "
                          f"{tier.share_bytes / 1e9:.0f} GB")
    new = dataclasses.replace(m, activations=m.activations - cost.hbm_freed_bytes)
    note = (f"offload: activations of {k} of {layers} layers to {tier.name} ({tier.what}) "
            f"free {cost.hbm_freed_bytes / 1e9:.1f} GB a rank; {cost.exposed_s * 1e3:.4g} ms "
            "exposed a step")
    return _offloaded(raw, raw.step_time_s + cost.exposed_s, new,
                      {"offload": cost.exposed_s}, note)


def plan_train_with_offload(system: System, model: ModelSpec, global_batch: int,
                            seq_len: int, precision: str = "bf16", top: int = 5,
                            ranks_per_chip: int = 1, tp_comm_overlap: bool = True,
                            tier: Tier | None = None, space: str = "full") -> SearchResult:
    """``plan train``'s search (``superpod.train.search``) with ``evaluate_with_offload``."""
    return plan_train(system, model, global_batch, seq_len, precision, top, ranks_per_chip,
                      tp_comm_overlap, evaluate=functools.partial(evaluate_with_offload,
                                                                  tier=tier), space=space)
