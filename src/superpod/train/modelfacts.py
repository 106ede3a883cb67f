"""What the training timeline needs from a model, computed once per model and memoised.

A thin adapter over ``superpod.workload`` (model specs and operator accounting): GEMM
shapes per layer type (dense / MoE) for a token count and sharding, attention FLOPs,
activation bytes (flash attention: the score matrix is never stored, so "none" counts like
Korthikanti's selective case in memory), parameters per rank, and the MFU / HFU FLOP
conventions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from superpod.workload import ops
from superpod.workload.model import ModelSpec

GemmShape = tuple[int, int, int, int]  # (m, n, k, count)


@dataclass(frozen=True, eq=False)
class ModelFacts:
    model: ModelSpec
    #: per-instance memo of the shape and byte functions below (keyed by their arguments:
    #: hashing the whole ModelSpec on every call would cost more than the lookups save)
    _memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, init=False, repr=False)

    def _cached(self, key: tuple[Any, ...], make: Any) -> Any:
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = make()
        return hit

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def layers(self) -> int:
        return self.model.num_hidden_layers

    @cached_property
    def moe_layers(self) -> int:
        return self.model.num_moe_layers

    @property
    def experts(self) -> int:
        return self.model.n_routed_experts

    @property
    def top_k(self) -> int:
        return self.model.num_experts_per_tok

    @property
    def heads(self) -> int:
        return self.model.num_attention_heads

    @property
    def kv_heads(self) -> int:
        return self.model.num_key_value_heads

    @property
    def hidden(self) -> int:
        return self.model.hidden_size

    @property
    def kv_bytes_per_token(self) -> float:
        """K and V of one token for one layer in bf16 (MLA passes its compressed latent)."""
        m = self.model
        if m.is_mla:
            return 2.0 * ((m.kv_lora_rank or 0) + m.qk_rope_head_dim)
        return 2.0 * 2 * m.num_key_value_heads * m.head_dim

    def _layer_index(self, moe: bool) -> int:
        return int(self._cached(("layer_index", moe), lambda: self._first_layer(moe)))

    def _first_layer(self, moe: bool) -> int:
        m = self.model
        for i in range(m.num_hidden_layers):
            if m.is_moe_layer(i) == moe:
                return i
        return 0

    def layer_gemms(self, moe: bool, tokens: int, tp: int, ep: int, etp: int
                    ) -> tuple[GemmShape, ...]:
        key = ("gemms", moe, tokens, tp, ep, etp)
        got: tuple[GemmShape, ...] = self._cached(key, lambda: _layer_gemms(
            self.model, self._layer_index(moe), tokens, tp, ep, etp))
        return got

    def head_gemms(self, tokens: int, tp: int) -> tuple[GemmShape, ...]:
        got: tuple[GemmShape, ...] = self._cached(("head", tokens, tp), lambda: tuple(
            (int(g.m), g.n, g.k, int(g.count)) for g in ops.head_gemms(self.model, tokens, tp)))
        return got

    def attention_flops(self, tokens: int, seq_len: int, tp: int) -> float:
        return float(self._cached(("attn", tokens, seq_len, tp), lambda: ops.attention_core_flops(
            self.model, tokens, seq_len, causal=True, tp=tp)))

    def activation_bytes(self, seq_len: int, micro_batch: int, tp: int, sp: bool,
                         recompute: str, fp8: bool = False,
                         saved: ops.SavedActivations = ops.KEEP_ALL) -> float:
        """Stored activation bytes per layer; ``fp8``: linear-layer inputs saved as FP8;
        ``saved``: what the stack discards or narrows (``ops.SavedActivations``)."""
        mode = activation_mode(recompute)
        key = ("act", seq_len, micro_batch, tp, sp, mode, fp8, saved)
        return float(self._cached(key, lambda: _activation(self.model, seq_len, micro_batch,
                                                           tp, sp, mode, fp8, saved)))

    def params_per_rank(self, tp: int, pp: int, ep: int, etp: int) -> tuple[float, float]:
        """(non-expert, expert) parameters on the rank holding the most layers."""
        got: tuple[float, float] = self._cached(("params", tp, pp, ep, etp),
                                                lambda: _params_per_rank(self.model, tp, pp,
                                                                         ep, etp))
        return got

    def largest_layer_params(self, tp: int, ep: int, etp: int) -> float:
        m = self.model
        return float(self._cached(("largest", tp, ep, etp), lambda: max(
            ops.layer_weight_params(m, i, tp, ep, etp)
            for i in {self._layer_index(False), self._layer_index(True)})))

    def model_flops_per_token(self, seq_len: int) -> float:
        return float(self._cached(("mflops", seq_len), lambda: _model_flops(self.model,
                                                                            seq_len)))

    def hardware_flops_per_token(self, seq_len: int, recompute: str) -> float:
        return float(self._cached(("hflops", seq_len, recompute),
                                  lambda: _hfu_flops(self.model, seq_len, recompute)))


def activation_mode(recompute: str) -> str:
    """The activations a recompute choice stores, as ``ModelFacts.activation_bytes`` counts
    them: flash attention keeps no score matrix, so "none" stores what "selective" stores,
    and op-level checkpointing holds at most what selective holds."""
    return "selective" if recompute in ("none", "op") else recompute


@lru_cache(maxsize=64)
def model_facts(model: ModelSpec) -> ModelFacts:
    return ModelFacts(model)


@lru_cache(maxsize=4096)
def _layer_gemms(model: ModelSpec, layer: int, tokens: int, tp: int, ep: int, etp: int
                 ) -> tuple[GemmShape, ...]:
    out = []
    for g in ops.layer_gemms(model, layer, tokens, tp=tp, ep=ep, etp=etp):
        if g.kind == "expert":
            # the local experts with tokens run as one grouped GEMM (Megatron-Core
            # --moe-grouped-gemm, DeepGEMM): one launch whose tiles are every expert's rows
            # stacked; at training token counts it is compute-bound, so the stacked shape's
            # single weight operand does not understate its time
            experts = max(1, round(g.count))
            out.append((experts * max(1, math.ceil(g.m)), g.n, g.k, 1))
        else:
            out.append((int(g.m), g.n, g.k, int(g.count)))
    return tuple(out)


@lru_cache(maxsize=4096)
def _activation(model: ModelSpec, seq_len: int, micro_batch: int, tp: int, sp: bool,
                recompute: str, fp8: bool = False,
                saved: ops.SavedActivations = ops.KEEP_ALL) -> float:
    # modern LLM training runs without dropout (no masks stored)
    return ops.activation_bytes_per_layer(model, seq_len, micro_batch, tp=tp, sp=sp,
                                          recompute=recompute,  # type: ignore[arg-type]
                                          dropout=False,
                                          gemm_input_bytes=1.0 if fp8 else None,
                                          saved=saved)


@lru_cache(maxsize=4096)
def _params_per_rank(model: ModelSpec, tp: int, pp: int, ep: int, etp: int
                     ) -> tuple[float, float]:
    per_stage = math.ceil(model.num_hidden_layers / pp)
    dense = expert = 0.0
    # a main layer's parameters depend on its index only through its kind (dense or MoE):
    # each kind is counted once, the sum still runs layer by layer
    kinds: dict[bool, tuple[float, float]] = {}
    for i in range(per_stage):  # the first stage's layers (plus the embedding)
        moe = model.is_moe_layer(i)
        if moe not in kinds:
            kinds[moe] = (ops.layer_weight_params(model, i, tp, ep, etp),
                          model.params_per_layer(i).moe_routed / (ep * etp) if moe else 0.0)
        full, routed = kinds[moe]
        if moe:
            expert += routed
            dense += full - routed
        else:
            dense += full
    dense += model.params_embedding / tp
    if pp == 1:
        dense += model.params_lm_head / tp
    return dense, expert


@lru_cache(maxsize=256)
def _model_flops(model: ModelSpec, seq_len: int) -> float:
    return ops.model_flops_per_token(model, seq_len)


@lru_cache(maxsize=256)
def _hfu_flops(model: ModelSpec, seq_len: int, recompute: str) -> float:
    return ops.hardware_flops_per_token(model, seq_len, recompute)  # type: ignore[arg-type]
