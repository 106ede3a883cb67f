"""Memory of one serving rank: weights, KV cache, activations, workspace; the largest batch.

KV cache per token (all layers, one copy), e the KV element bytes:

* MHA / GQA: ``2 x L x H_kv x d x e`` (K and V of every KV head; Ainslie et al. 2023);
* MLA (DeepSeek-V2, arXiv 2405.04434 §2.1.2): the compressed latent and the shared RoPE key,
  ``(r_kv + d_r) x L x e`` - DeepSeek-V3: (512 + 64) x 61 = 35,136 elements a token.

Per rank: GQA heads split over ``tp`` (replicated when tp > H_kv); the MLA latent is needed
by every head, so each tensor-parallel rank holds all of it. A rank holds the layers of its
pipeline stage for every sequence of its data-parallel group (``ceil(B / dp)``). With MTP the
MTP block's attention keeps a KV cache too.

Weights per rank (busiest stage: the first, with the embedding; with pp = 1 also the head):
non-expert parameters split by ``tp`` (``ops.layer_weight_params``), ``ceil(E / ep)`` routed
experts (at least one: ep > E replicates) each split ``etp`` ways, at the weight format's
bytes, except the GEMMs the checkpoint keeps in BF16 (``InferOptions.bf16_gemms``) at 2 bytes;
embedding and LM head in BF16, vocabulary-parallel over ``tp``.

KV pool: 0.90 of the memory left after weights, workspace and activations - TensorRT-LLM's
default ``free_gpu_memory_fraction`` (vLLM's ``gpu_memory_utilization`` is the same 0.90 of
the whole HBM); workspace 3 GiB a rank (CUDA graphs, NCCL / DeepEP buffers, allocator
slack: the training model's figure); activations are those of the widest layer for the
tokens in flight (nothing is kept between layers when serving).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

from superpod.infer.config import WEIGHT_BYTES, InferOptions, ServingLayout
from superpod.workload import ops
from superpod.workload.model import ModelSpec

KV_POOL_FRACTION = 0.90
WORKSPACE_BYTES = 3.0 * 2**30
HEAD_BYTES = 2.0  #: embedding and LM head stay BF16
ACT_BYTES = 2.0  #: BF16 activations
LOGIT_BYTES = 4.0  #: FP32 logits


def kv_elements_per_token_layer(model: ModelSpec) -> int:
    """Cached elements of one token in one layer, whole model (one copy)."""
    if model.is_mla:
        return (model.kv_lora_rank or 0) + model.qk_rope_head_dim
    return 2 * model.num_key_value_heads * model.head_dim


def kv_bytes_per_token(model: ModelSpec, kv_bytes: float = 2.0) -> float:
    """KV cache of one token over all main-model layers (module docstring closed forms)."""
    return kv_elements_per_token_layer(model) * model.num_hidden_layers * kv_bytes


def kv_elements_per_token_layer_rank(model: ModelSpec, tp: int) -> float:
    """Cached elements of one token in one layer on one tensor-parallel rank."""
    if model.is_mla:
        return float(kv_elements_per_token_layer(model))
    heads = max(1, model.num_key_value_heads // tp)
    return 2.0 * heads * model.head_dim


def stage_layers(model: ModelSpec, pp: int) -> int:
    """Layers on the busiest pipeline stage."""
    return math.ceil(model.num_hidden_layers / pp)


def kv_layers_rank(model: ModelSpec, layout: ServingLayout, opts: InferOptions) -> int:
    mtp_layers = min(opts.mtp, model.num_nextn_predict_layers) if opts.mtp else 0
    return stage_layers(model, layout.pp) + (mtp_layers if layout.pp == 1 else 0)


def kv_bytes_per_token_rank(model: ModelSpec, layout: ServingLayout, opts: InferOptions
                            ) -> float:
    """KV bytes one cached token costs on one rank of the busiest stage."""
    return (kv_elements_per_token_layer_rank(model, layout.tp)
            * kv_layers_rank(model, layout, opts) * opts.kv_bytes)


def experts_per_rank(model: ModelSpec, ep: int) -> int:
    """Routed experts a rank stores: ceil(E / ep), at least one (replicas when ep > E)."""
    return max(1, math.ceil(model.n_routed_experts / ep)) if model.is_moe else 0


@lru_cache(maxsize=65536)
def _layer_weight_bytes(model: ModelSpec, layer: int, layout: ServingLayout,
                        opts: InferOptions) -> float:
    full = ops.layer_weight_params(model, layer, layout.tp, 1, 1)
    wide = 0.0  # weights the checkpoint keeps in BF16 (``InferOptions.bf16_gemms``)
    if opts.bf16_gemms:
        wide = sum(g.n * g.k for g in ops.layer_gemms(model, layer, 1.0, tp=layout.tp)
                   if g.name in opts.bf16_gemms and g.kind != "expert")
    extra = wide * (WEIGHT_BYTES["bf16"] - opts.weight_bytes)
    if not model.is_moe_layer(layer):
        return full * opts.weight_bytes + extra
    routed = model.params_per_layer(layer).moe_routed
    one_expert = routed / model.n_routed_experts
    local = experts_per_rank(model, layout.ep) * one_expert / layout.etp
    return (full - routed + local) * opts.weight_bytes + extra


@lru_cache(maxsize=4096)
def weight_bytes_rank(model: ModelSpec, layout: ServingLayout, opts: InferOptions) -> float:
    """Weight bytes on the busiest rank (module docstring; memoised)."""
    layers = stage_layers(model, layout.pp)
    # layers of one kind (dense / MoE) hold the same parameters, as the iteration model
    # takes them: each kind is counted once and multiplied
    kinds: dict[bool, tuple[int, int]] = {}
    for i in range(layers):
        first, n = kinds.get(model.is_moe_layer(i), (i, 0))
        kinds[model.is_moe_layer(i)] = (first, n + 1)
    body = sum(n * _layer_weight_bytes(model, first, layout, opts)
               for first, n in kinds.values())
    head = model.params_embedding + (model.params_lm_head if layout.pp == 1 else 0)
    if model.tie_word_embeddings and layout.pp > 1:
        head += model.vocab_size * model.hidden_size  # the last stage keeps its own copy
    mtp = 0.0
    if opts.mtp and layout.pp == 1:
        first = model.num_hidden_layers
        depth = min(opts.mtp, model.num_nextn_predict_layers)
        mtp = sum(_layer_weight_bytes(model, first + d, layout, opts) for d in range(depth))
    return body + mtp + head / layout.tp * HEAD_BYTES


def activation_bytes_per_token(model: ModelSpec, layout: ServingLayout) -> float:
    """Live activation bytes per token in flight: the residual stream, the normed input,
    the attention output and the widest MLP intermediate, in BF16."""
    widths = [model.intermediate_size / layout.tp]
    if model.is_moe:
        widths.append(model.num_experts_per_tok * model.moe_intermediate_size / layout.etp)
    mlp = (3.0 if model.gated_mlp else 2.0) * max(widths)
    attn = model.num_attention_heads / layout.tp * (model.head_dim_qk + model.head_dim_v)
    return ACT_BYTES * (3 * model.hidden_size + attn + mlp)


@dataclass(frozen=True)
class ServingMemory:
    """Bytes on the busiest rank; the KV cache must fit in the KV pool."""

    weights: float
    kv_cache: float
    activations: float
    workspace: float
    hbm: float  #: the rank's HBM

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache + self.activations + self.workspace

    @property
    def kv_pool(self) -> float:
        """Bytes the KV cache may take: a fraction of what the rest leaves free."""
        return max(0.0, KV_POOL_FRACTION * (self.hbm - self.weights - self.activations
                                            - self.workspace))

    @property
    def fits(self) -> bool:
        return self.weights + self.activations + self.workspace <= self.hbm and \
            self.kv_cache <= self.kv_pool

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if k != "hbm"}

    def excess_detail(self) -> str:
        fixed = self.weights + self.activations + self.workspace
        if fixed > self.hbm:
            worst = max(("weights", self.weights), ("activations", self.activations),
                        key=lambda kv: kv[1])
            return (f"weights + activations + workspace need {fixed / 1e9:.1f} GB per rank, "
                    f"HBM is {self.hbm / 1e9:.1f} GB; largest: {worst[0]} "
                    f"{worst[1] / 1e9:.1f} GB (over by {(fixed - self.hbm) / 1e9:.1f} GB)")
        return (f"kv_cache needs {self.kv_cache / 1e9:.1f} GB per rank, the KV pool is "
                f"{self.kv_pool / 1e9:.1f} GB ({KV_POOL_FRACTION:.0%} of the "
                f"{(self.hbm - fixed) / 1e9:.1f} GB beside {self.weights / 1e9:.1f} GB of "
                f"weights; over by {(self.kv_cache - self.kv_pool) / 1e9:.1f} GB)")


def serving_memory(model: ModelSpec, layout: ServingLayout, opts: InferOptions,
                   hbm_bytes: float, *, batch: int, context: float, tokens_in_flight: float
                   ) -> ServingMemory:
    """Memory of the busiest rank serving ``batch`` sequences of ``context`` cached tokens,
    with ``tokens_in_flight`` tokens going through a layer at once."""
    seqs = math.ceil(batch / layout.dp)
    kv = seqs * context * kv_bytes_per_token_rank(model, layout, opts)
    logits = seqs * model.vocab_size / layout.tp * LOGIT_BYTES
    act = tokens_in_flight * activation_bytes_per_token(model, layout) + logits
    return ServingMemory(weights=weight_bytes_rank(model, layout, opts), kv_cache=kv,
                         activations=act, workspace=WORKSPACE_BYTES,
                         hbm=hbm_bytes / layout.ranks_per_chip)


def max_batch(model: ModelSpec, layout: ServingLayout, opts: InferOptions, hbm_bytes: float,
              *, context: float, tokens_per_seq: float) -> int:
    """Largest instance batch whose KV cache fits its pool (0: not even one sequence).

    Per sequence of a DP group: ``context`` KV tokens in the pool, and its activations
    (``tokens_per_seq`` tokens in flight, plus its logits) out of the free memory:
    ``s (kv + 0.9 act) <= 0.9 (HBM - weights - workspace)``.
    """
    base = serving_memory(model, layout, opts, hbm_bytes, batch=0, context=context,
                          tokens_in_flight=0.0)
    kv = context * kv_bytes_per_token_rank(model, layout, opts)
    act = (tokens_per_seq * activation_bytes_per_token(model, layout)
           + model.vocab_size / layout.tp * LOGIT_BYTES)
    free = KV_POOL_FRACTION * (base.hbm - base.weights - base.workspace)
    per_seq = kv + KV_POOL_FRACTION * act
    if free <= 0 or per_seq <= 0:
        return 0
    return int(free // per_seq) * layout.dp
