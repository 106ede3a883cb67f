"""A production service's day-average load: how busy its instances were on average.

A throughput a service publishes as a day average over the nodes it held (DeepSeek, Day 6
of its open-source week: "each H800 node delivers an average throughput of ~73.7k tokens/s
input ... during prefilling", https://github.com/deepseek-ai/open-infra-index, 24-h
statistics) is delivered work over provisioned node time, not the instances' capacity: the
service scales its nodes with the load in whole deployment groups (its node-count chart
steps by 30 nodes), so between steps and below the daytime plateau its instances run below
the batch they are configured for.

The decode pool shows how far below. By Little's law the sequences it holds on average are
its output rate over the per-user speed, so the batch a decode rank holds is the one at
which the iteration model's per-user speed ``(1 + a + ...) / t_step(b)`` equals the
published mean output speed (Day 6: 20-22 tokens/s; taken at 21): the largest ``b`` not
slower than it (``decode_occupancy``). Over the batch the deployment is configured for
(profile-data: 128 requests a GPU, "closely matching the actual online deployment") that is
the service's load factor ``rho = b / b_config``. The prefill and decode pools are scaled
together and sized to carry the same request rate at the configured point, so a prefill
instance is busy ``rho`` of the time: its delivered throughput is ``rho`` x that of a
prefill at the configured batch (profile-data: 16,384 tokens a GPU), the rest idle
(``service_prefill``). The decode layout (EP144, Day 6) and its MTP depth are the service's;
no measured throughput enters.

Assumes the two pools are balanced at the configured point (the same ``rho`` for both); the
service's request distribution is not published (its mean request is used).
"""

from __future__ import annotations

from dataclasses import replace

from superpod.errors import Infeasible
from superpod.hardware.system import System
from superpod.infer.config import InferOptions, ServingLayout
from superpod.infer.runtime import ServiceProfile
from superpod.infer.serving import ServingResult, Workload, serve
from superpod.workload.model import ModelSpec


def decode_occupancy(system: System, model: ModelSpec, opts: InferOptions, work: Workload,
                     prof: ServiceProfile) -> int:
    """Sequences a decode rank holds when its per-user speed is the published mean: the
    largest batch (at most the configured one) whose speed is not below it, by bisection
    (the speed falls as the batch grows); at least 1. ``system`` must hold the decode
    instance's ``decode_ep`` ranks."""
    lay = ServingLayout(dp=prof.decode_ep, ep=prof.decode_ep)
    o = replace(opts, mtp=prof.decode_mtp)

    def fast_enough(b: int) -> bool:
        res = serve(system, model, lay, o, phase="decode", batch=b * lay.dp, work=work,
                    check_memory=False)
        if isinstance(res, Infeasible) or not res.tpot_s:
            return False
        return 1.0 / res.tpot_s >= prof.output_speed_tokens_per_s

    lo, hi = 1, prof.decode_batch_per_rank
    if fast_enough(hi):
        return hi
    while lo < hi - 1:
        mid = (lo + hi) // 2
        if fast_enough(mid):
            lo = mid
        else:
            hi = mid
    return lo


def service_prefill(pre: ServingResult, load: float) -> ServingResult:
    """A prefill instance's delivered day average: ``load`` x its throughput at the
    configured batch, the rest of its time idle (``idle`` in the breakdown, which still adds
    up to the time an iteration's prompts take on average)."""
    if not 0.0 < load <= 1.0:
        raise ValueError(f"load factor {load} outside (0, 1]")
    total = sum(pre.breakdown_s.values())
    breakdown = dict(pre.breakdown_s) | {"idle": total * (1.0 / load - 1.0)}
    note = f"service day-average load {load:.0%} of the configured batch (the rest idle)"
    return replace(pre, tokens_per_s=pre.tokens_per_s * load, breakdown_s=breakdown,
                   notes=(*pre.notes, note))
