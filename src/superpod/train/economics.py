"""What a training layout costs beyond its step time: failures, watts and dollars.

Joins the training result to the reliability model (interruptions, Daly-optimal
checkpointing, ETTR for a checkpoint of the model's mixed-precision Adam state), the power
model (by activity, ``train_activity``) and the cost model (capex amortised + electricity),
giving goodput-adjusted tokens/s, kW, tokens per joule and $ per million tokens.

Activity of one rank over a step (``superpod.power.activity``):

* tensor / vector cores: u_c = (compute + recompute + overlap_interference) / step, the
  share of the step the compute stream runs kernels (a GEMM at its achieved efficiency, at
  any precision, keeps the cores near their share of the power limit; MFU against the
  chosen precision's peak would count an FP8 GEMM that finishes twice as fast as half as
  busy for its whole duration);
* HBM: u_m = bytes / (step x B_hbm per rank), with bytes estimated per step as
  m x (WEIGHT_PASSES x W + ACT_PASSES x A) + STATE_PASSES x (weights + grads + optimizer):
  W the rank's parameters at 2 bytes (forward, data-gradient and weight-gradient GEMMs read
  them, a recomputed forward once more), A one micro-batch's stored activations (written
  forward, read backward, element-wise passes), the optimizer reading and writing the
  rank's state once (estimate: the timeline does not carry byte counts);
* links: u_l = (exposed + overlapped communication) / step; overlapped communication is
  what the timeline charges as ``overlap_interference`` divided by the SM share it costs.
"""

from __future__ import annotations

from typing import Any

from superpod.cost.at_load import economics_at_load
from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System
from superpod.power.activity import clamp01
from superpod.power.load import Load
from superpod.reliability import ReliabilityQuery, analyse, checkpoint_bytes
from superpod.train.step import TrainResult
from superpod.workload.model import ModelSpec

WEIGHT_PASSES = 3.0
ACT_PASSES = 4.0
STATE_PASSES = 2.0


def train_activity(system: System, model: ModelSpec, res: TrainResult) -> Load:
    """Tensor-core, HBM and link activity of a training step (module docstring)."""
    from superpod.train.modelfacts import model_facts
    from superpod.train.step import COMM_SM_SHARE

    b, step, p = res.breakdown_s, res.step_time_s, res.plan
    if not step > 0:
        return Load.idle()
    dense, expert = model_facts(model).params_per_rank(p.tp, p.pp, p.ep, p.etp)
    passes = WEIGHT_PASSES + (1.0 if p.recompute != "none" else 0.0)
    mem = res.memory
    in_flight = max(1, min(p.microbatches, p.pp * p.vpp))
    act_micro = mem.activations / in_flight
    hbm_bytes = (p.microbatches * (passes * 2.0 * (dense + expert) + ACT_PASSES * act_micro)
                 + STATE_PASSES * (mem.weights + mem.gradients + mem.optimizer))
    ranks = res.plan.world
    bw_rank = system.hbm_bandwidth_bytes_per_s / ranks
    comm = sum(v for k, v in b.items() if k.endswith("_comm"))
    hidden = b.get("overlap_interference", 0.0) / COMM_SM_SHARE
    busy = b.get("compute", 0.0) + b.get("recompute", 0.0) + b.get("overlap_interference", 0.0)
    return Load(compute=clamp01(busy / step), memory=clamp01(hbm_bytes / (step * bw_rank)),
                network=clamp01((comm + hidden) / step))


def train_economics(system: System, cat: Catalog, model: ModelSpec, res: TrainResult,
                    days: float = 30.0) -> dict[str, Any]:
    """Goodput, power and cost keys added to a ``train --json`` object."""
    rel = analyse(system, ReliabilityQuery(checkpoint_bytes=checkpoint_bytes(
        model.params_total), work_days=days, trials=0))
    ettr = rel["ettr"]
    goodput = res.tokens_per_s * ettr
    out: dict[str, Any] = {
        "goodput": {"ettr": ettr, "tokens_per_s": goodput,
                    "interruptions_per_s": rel["interruptions_per_s"],
                    "checkpoint_interval_s": rel["checkpoint_interval_s"]},
    }
    load = train_activity(system, model, res)
    out["activity"] = {"tensor_cores": load.compute, "hbm": load.memory, "links": load.network}
    return out | economics_at_load(system, cat, goodput, load)


def with_economics(row: dict[str, Any], res: TrainResult, system: System, cat: Catalog,
                   model: ModelSpec) -> dict[str, Any]:
    """A ``plan train`` candidate's row with the keys ``train`` adds (goodput, power,
    tokens per joule, $/Mtok): applied to the search's results, not inside the search."""
    row.update(train_economics(system, cat, model, res))
    return row
