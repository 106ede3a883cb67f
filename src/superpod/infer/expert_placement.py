"""Where the shared expert runs when expert parallelism outnumbers the routed experts.

At decode-scale expert parallelism every rank holds at most one expert, and the ranks left
over after one per routed expert host redundant experts and the shared expert - which is then
served like a routed expert that every token selects, from ranks of its own:

* DeepSeek-V3 (arXiv 2412.19437, §3.4 "Decoding"): the decode unit is EP320 on 40 nodes,
  "each GPU hosts only one expert, and 64 GPUs are responsible for hosting redundant experts
  and shared experts"; "we treat the shared expert as a routed one. From this perspective,
  each token will select 9 experts during routing, where the shared expert is regarded as a
  heavy-load one that will always be selected."
* CloudMatrix-Infer (arXiv 2506.12708) deploys the same EP320 decode: 256 routed experts,
  32 redundant ones and 32 shared-expert replicas, one expert a 910C die.

A rank that runs attention for its own sequences then computes no shared expert for them:
their tokens go out to ``k + 1`` destinations (``k`` routed experts and one shared-expert
replica) and the shared-expert ranks each take ``1 / S`` of the group's tokens.

How many ranks hold shared replicas, ``S``: as many as balance their load against the routed
ranks' (each rank then receives ``T (k + s) / ep`` token-expert rows of one expert's width,
``s`` the shared experts, ``T`` the group's tokens): ``S = ep s / (k + s)``, at most the
ranks left over once each routed expert has one (``ep - E``). For EP320, k = 8, s = 1 this is
36 (DeepSeek-V3 places 64 shared + redundant; CloudMatrix-Infer 32 shared).

Applies to DeepSeek-style shared experts (``n_shared_experts``); a gated shared expert
(Qwen2-MoE's ``shared_expert_intermediate_size`` with its sigmoid gate) stays on every rank.
"""

from __future__ import annotations

from superpod.workload.model import ModelSpec


def shared_expert_ranks(model: ModelSpec, ep: int) -> int:
    """Expert ranks that hold shared-expert replicas (0: the shared expert runs on every
    rank beside its routed experts, or the model has none) - module docstring."""
    e, k, s = model.n_routed_experts, model.num_experts_per_tok, model.n_shared_experts
    if not (model.is_moe and s > 0 and k > 0) or model.shared_expert_intermediate_size \
            or ep <= e:
        return 0
    balanced = round(ep * s / (k + s))
    return max(1, min(ep - e, balanced))
