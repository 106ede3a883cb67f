"""Decoder-only transformer specs, read from a Hugging Face ``config.json``, and their sizes.

A ``ModelSpec`` is the frozen, validated form of a ``config.json`` mapping (or of a preset in
``superpod/catalog/models.yaml``). It holds shapes only; every count below is a property.

Parameter counts (h = hidden_size, H = attention heads, H_kv = key/value heads, d = head
dim, I = intermediate size, V = vocabulary, E = routed experts, k = experts per token):

* attention, MHA / GQA (Ainslie et al. 2023, arXiv 2305.13245):
  ``h*(H + 2*H_kv)*d + H*d*h`` (q, k, v, o), plus ``(H + 2*H_kv)*d + h`` with attention_bias.
* attention, MLA (DeepSeek-V2, arXiv 2405.04434 §2.1; DeepSeek-V3, arXiv 2412.19437 §2.1.1),
  with ranks r_q, r_kv and per-head dims d_n (no-rope), d_r (rope), d_v:
  ``h*r_q + r_q*H*(d_n + d_r)`` (or ``h*H*(d_n + d_r)`` when q_lora_rank is null)
  ``+ h*(r_kv + d_r) + r_kv*H*(d_n + d_v) + H*d_v*h``, plus the two latent RMSNorms.
* MLP: ``2*h*I`` for a two-matrix MLP (gelu, relu, relu2), ``3*h*I`` for a gated one (SwiGLU;
  Shazeer 2020, arXiv 2002.05202), plus ``I + h`` (``2I + h`` gated) with mlp_bias.
* MoE layer (DeepSeekMoE, arXiv 2401.06066; Mixtral, arXiv 2401.04088): E routed experts and
  the shared experts, each an MLP of width moe_intermediate_size, and a router ``E*h``.
  Active per token: attention + shared experts + router + k routed experts.
* norms: two per layer (RMSNorm h weights; LayerNorm h weights + h biases), one final norm.
* embedding ``V*h`` (+ ``P*h`` learned positions, GPT-style); LM head ``V*h`` unless tied.

Multi-token prediction (DeepSeek-V3 §2.2) adds, per depth, a transformer block like the main
model's MoE layers, a ``2h -> h`` projection and three RMSNorms; its embedding and output head
are shared with the main model. Counts exclude MTP unless ``include_mtp=True``: DeepSeek-V3's
671B excludes it, and its Hugging Face checkpoint's 685B is 671B + the MTP block (11.6B) +
copies of the embedding and head stored again inside the MTP layer (2 x 0.93B).

Which layers are MoE: every layer once there are routed experts (Mixtral, Qwen-MoE), except
the first ``first_k_dense_replace`` (DeepSeek), the ``mlp_only_layers`` and, where given,
layers off ``decoder_sparse_step`` (Qwen: layer i is MoE when (i+1) % step == 0) or
``moe_layer_freq`` (DeepSeek: when i % freq == 0).

Strict keys: every key of the mapping is either used, or on the documented allow-list of
Hugging Face keys that do not change shapes (``HARMLESS_CONFIG_KEYS``; keys starting with
``_`` are Hugging Face metadata and count as harmless too). Harmless keys are kept, sorted, in
``ModelSpec.ignored_keys`` so a caller can report them; any other key is a ``SpecError``
naming the file and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from superpod.boundary.load_cache import cached_build
from superpod.errors import SpecError
from superpod.hardware.loading import read_yaml, spec_error
from superpod.hardware.specs import Evidence, Slug, Spec

CATALOG_FILE = Path(__file__).resolve().parent.parent / "catalog" / "models.yaml"

NormType = Literal["rmsnorm", "layernorm"]

#: ``hidden_act`` values whose MLP has two matrices (up, down).
PLAIN_ACTIVATIONS = frozenset({"gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh",
                               "quick_gelu", "relu", "relu2"})
#: ``hidden_act`` values whose MLP is gated: three matrices (gate, up, down). Gemma's GeGLU is
#: gated but writes ``gelu_pytorch_tanh``: write ``geglu`` for it.
GATED_ACTIVATIONS = frozenset({"silu", "swish", "swiglu", "geglu"})

#: Keys naming the routed-expert count (DeepSeek, Mixtral, Qwen-MoE spellings).
EXPERT_COUNT_KEYS = ("n_routed_experts", "num_local_experts", "num_experts")

#: Every key ``model_from_config`` reads.
CONFIG_KEYS = frozenset({
    "name", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "head_dim", "intermediate_size", "vocab_size", "tie_word_embeddings", "hidden_act",
    *EXPERT_COUNT_KEYS, "num_experts_per_tok", "moe_intermediate_size", "n_shared_experts",
    "shared_expert_intermediate_size", "first_k_dense_replace", "decoder_sparse_step",
    "moe_layer_freq", "mlp_only_layers", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
    "qk_rope_head_dim", "v_head_dim", "num_nextn_predict_layers", "attention_bias",
    "mlp_bias", "layer_norm_eps", "layer_norm_epsilon", "position_embedding_type",
})

#: Hugging Face keys accepted and reported in ``ignored_keys``: none changes a weight shape.
HARMLESS_CONFIG_KEYS = frozenset({
    # metadata and tooling
    "architectures", "model_type", "auto_map", "transformers_version", "torch_dtype", "dtype",
    "tokenizer_class", "bos_token_id", "eos_token_id", "pad_token_id",
    # runtime switches
    "use_cache", "output_router_logits", "pretraining_tp", "ep_size",
    # training-only hyper-parameters (dropout, init, auxiliary losses)
    "initializer_range", "attention_dropout", "hidden_dropout", "aux_loss_alpha", "seq_aux",
    "router_aux_loss_coef", "router_jitter_noise",
    # numerics and storage format
    "rms_norm_eps", "quantization_config",
    # rotary positions (no parameters); max_position_embeddings is used for learned positions
    "rope_theta", "rope_scaling", "partial_rotary_factor", "max_position_embeddings",
    # routing rules that change which experts fire, not how many or how big
    "norm_topk_prob", "scoring_func", "topk_method", "n_group", "topk_group",
    "routed_scaling_factor",
    # attention window: changes attention FLOPs, which superpod does not model for windows
    "sliding_window", "use_sliding_window", "max_window_layers",
})

#: the value types of the numeric and boolean keys that are read only to be checked
#: (a config that writes ``layer_norm_epsilon: 'abc'`` is broken, whatever we use of it)
NUMBER_KEYS = frozenset({
    "layer_norm_eps", "layer_norm_epsilon", "rms_norm_eps", "initializer_range",
    "attention_dropout", "hidden_dropout", "aux_loss_alpha", "router_aux_loss_coef",
    "router_jitter_noise", "rope_theta", "partial_rotary_factor", "routed_scaling_factor"})
BOOLEAN_KEYS = frozenset({"use_cache", "output_router_logits", "norm_topk_prob",
                          "use_sliding_window", "attention_bias", "mlp_bias"})
#: the largest value of a shape key (2**24: ~16.8 M; vocabularies are ~10**5 - 10**6)
MAX_SHAPE = 2**24
#: the most layers a config may have (the largest published models have ~10**2)
MAX_LAYERS = 10_000
_MAXIMA = {"num_hidden_layers": MAX_LAYERS, "num_nextn_predict_layers": 16,
           "first_k_dense_replace": MAX_LAYERS}

_LEARNED_POSITIONS = frozenset({"absolute", "learned"})
_ROTARY_POSITIONS = frozenset({"rope", "rotary", "alibi", "none"})


@dataclass(frozen=True, slots=True)
class LayerParams:
    """Parameters of one transformer layer, by part (counts, not bytes)."""

    attention: int
    mlp: int  #: dense MLP (0 in an MoE layer)
    moe_routed: int  #: all routed experts
    moe_routed_active: int  #: the k routed experts one token uses
    moe_shared: int  #: shared experts
    router: int  #: router (and a shared-expert gate where there is one)
    norms: int
    mtp_proj: int = 0  #: MTP blocks only: the 2h -> h projection

    @property
    def total(self) -> int:
        return (self.attention + self.mlp + self.moe_routed + self.moe_shared + self.router
                + self.norms + self.mtp_proj)

    @property
    def active(self) -> int:
        """Parameters that touch one token: the total less the routed experts it skips."""
        return self.total - self.moe_routed + self.moe_routed_active


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A decoder-only transformer's shapes, in Hugging Face ``config.json`` terms."""

    name: str
    hidden_size: int
    num_hidden_layers: int  #: main-model layers (MTP blocks not included)
    num_attention_heads: int
    num_key_value_heads: int  #: unused by MLA (its K and V come from the latent)
    head_dim: int  #: q/k/v head dim (MHA, GQA); for MLA qk_nope + qk_rope
    intermediate_size: int  #: dense-layer MLP width
    vocab_size: int
    tie_word_embeddings: bool = False
    hidden_act: str = "silu"
    n_routed_experts: int = 0  #: 0 for a dense model
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0  #: width of one expert
    n_shared_experts: int = 0
    shared_expert_intermediate_size: int = 0  #: Qwen2-MoE: one gated shared expert this wide
    first_k_dense_replace: int = 0
    decoder_sparse_step: int = 1
    moe_layer_freq: int = 1
    mlp_only_layers: tuple[int, ...] = ()
    q_lora_rank: int | None = None  #: MLA query rank; None: direct query projection
    kv_lora_rank: int | None = None  #: MLA key/value rank; None: not MLA
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    num_nextn_predict_layers: int = 0  #: MTP depth
    attention_bias: bool = False
    mlp_bias: bool = False
    norm_type: NormType = "rmsnorm"
    position_embeddings: int = 0  #: rows of a learned position table (0: rotary)
    ignored_keys: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        _check_spec(self)

    # ------------------------------------------------------------------ structure

    @property
    def is_moe(self) -> bool:
        return self.n_routed_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def gated_mlp(self) -> bool:
        return self.hidden_act in GATED_ACTIVATIONS

    @property
    def head_dim_qk(self) -> int:
        """Per-head query/key width (MLA: no-rope + rope parts)."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim if self.is_mla else self.head_dim

    @property
    def head_dim_v(self) -> int:
        return self.v_head_dim if self.is_mla else self.head_dim

    @property
    def shared_intermediate_size(self) -> int:
        """Total width of the shared experts of an MoE layer (0 without them)."""
        if self.shared_expert_intermediate_size:
            return self.shared_expert_intermediate_size
        return self.n_shared_experts * self.moe_intermediate_size

    def is_moe_layer(self, layer: int) -> bool:
        """Whether ``layer`` (0-based; MTP blocks follow the main layers) has routed experts."""
        return (self.is_moe and layer >= self.first_k_dense_replace
                and layer not in self.mlp_only_layers
                and (layer + 1) % self.decoder_sparse_step == 0
                and layer % self.moe_layer_freq == 0)

    @property
    def num_moe_layers(self) -> int:
        return sum(self.is_moe_layer(i) for i in range(self.num_hidden_layers))

    # ------------------------------------------------------------------ parameter counts

    def norm_params(self, width: int) -> int:
        """One norm over ``width`` features: RMSNorm a weight each, LayerNorm weight + bias."""
        return width * (2 if self.norm_type == "layernorm" else 1)

    def mlp_params(self, intermediate: int) -> int:
        """One MLP (or one expert) of width ``intermediate``."""
        h = self.hidden_size
        matrices = 3 if self.gated_mlp else 2
        bias = (intermediate * (matrices - 1) + h) if self.mlp_bias else 0
        return matrices * h * intermediate + bias

    def params_per_layer(self, layer: int) -> LayerParams:
        """Parameters of layer ``layer``: 0 .. L-1 main layers, L .. L+D-1 the MTP blocks."""
        last = self.num_hidden_layers + self.num_nextn_predict_layers
        if not 0 <= layer < last:
            raise IndexError(f"layer {layer} outside 0..{last - 1}")
        h, moe = self.hidden_size, self.is_moe_layer(layer)
        mtp = layer >= self.num_hidden_layers
        expert = self.mlp_params(self.moe_intermediate_size) if moe else 0
        shared = self.mlp_params(self.shared_intermediate_size) if moe and \
            self.shared_intermediate_size else 0
        gate = h if moe and self.shared_expert_intermediate_size else 0
        return LayerParams(
            attention=_attention_params(self),
            mlp=0 if moe else self.mlp_params(self.intermediate_size),
            moe_routed=self.n_routed_experts * expert,
            moe_routed_active=self.num_experts_per_tok * expert,
            moe_shared=shared,
            router=(self.n_routed_experts * h + gate) if moe else 0,
            norms=2 * self.norm_params(h) + _latent_norm_params(self)
            + (3 * self.norm_params(h) if mtp else 0),
            mtp_proj=2 * h * h if mtp else 0,
        )

    @property
    def params_embedding(self) -> int:
        """Input embedding table (plus a learned position table where there is one)."""
        return (self.vocab_size + self.position_embeddings) * self.hidden_size

    @property
    def params_lm_head(self) -> int:
        """Output projection; 0 when tied to the input embedding."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    @property
    def params_final_norm(self) -> int:
        return self.norm_params(self.hidden_size)

    def count_params(self, *, active: bool = False, include_mtp: bool = False) -> int:
        """All parameters, or (``active``) those one token touches; MTP blocks on request."""
        depth = self.num_nextn_predict_layers if include_mtp else 0
        layers = (self.params_per_layer(i) for i in range(self.num_hidden_layers + depth))
        body = sum(p.active if active else p.total for p in layers)
        return self.params_embedding + self.params_lm_head + self.params_final_norm + body

    @property
    def params_total(self) -> int:
        """Every parameter of the main model (MTP excluded, as in DeepSeek-V3's 671B)."""
        return self.count_params()

    @property
    def params_active(self) -> int:
        """Parameters one token touches: all but the routed experts it skips (MTP excluded)."""
        return self.count_params(active=True)

    @property
    def params_mtp(self) -> int:
        """The MTP blocks' own parameters (embedding and head are shared, not counted)."""
        return self.count_params(include_mtp=True) - self.params_total

    @property
    def params_active_nonembedding(self) -> int:
        """The ``N`` of ``6N``: active parameters less the input embedding, with the LM head.

        The head is a GEMM even when tied to the embedding, so it counts either way.
        """
        tied_head = self.vocab_size * self.hidden_size if self.tie_word_embeddings else 0
        return self.params_active - self.params_embedding + tied_head


# ---------------------------------------------------------------------- per-part counts


def _attention_params(m: ModelSpec) -> int:
    h, heads = m.hidden_size, m.num_attention_heads
    if not m.is_mla:
        qkv_out = (heads + 2 * m.num_key_value_heads) * m.head_dim
        bias = qkv_out + h if m.attention_bias else 0
        return h * qkv_out + heads * m.head_dim * h + bias
    kv_rank = m.kv_lora_rank or 0
    q_out = heads * m.head_dim_qk
    q = (h * m.q_lora_rank + m.q_lora_rank * q_out) if m.q_lora_rank else h * q_out
    kv_down = kv_rank + m.qk_rope_head_dim
    kv = h * kv_down + kv_rank * heads * (m.qk_nope_head_dim + m.v_head_dim)
    o = heads * m.v_head_dim * h
    bias = ((m.q_lora_rank or 0) + kv_down + h) if m.attention_bias else 0
    return q + kv + o + bias


def _latent_norm_params(m: ModelSpec) -> int:
    """MLA's RMSNorms on the query and key/value latents."""
    if not m.is_mla:
        return 0
    return m.norm_params(m.q_lora_rank or 0) + m.norm_params(m.kv_lora_rank or 0)


def _check_spec(m: ModelSpec) -> None:
    """Consistency of a spec; each failure names the field and what is allowed."""
    heads, kv = m.num_attention_heads, m.num_key_value_heads
    if not m.is_mla and heads % kv:
        raise SpecError("must divide num_attention_heads", field="num_key_value_heads",
                        value=kv, allowed=f"a divisor of {heads}")
    if m.hidden_act not in PLAIN_ACTIVATIONS | GATED_ACTIVATIONS:
        raise SpecError("unknown activation", field="hidden_act", value=m.hidden_act,
                        allowed=", ".join(sorted(PLAIN_ACTIVATIONS | GATED_ACTIVATIONS)))
    if m.is_moe and not 1 <= m.num_experts_per_tok <= m.n_routed_experts:
        raise SpecError("must be between 1 and the routed-expert count",
                        field="num_experts_per_tok", value=m.num_experts_per_tok,
                        allowed=f"1..{m.n_routed_experts}")
    if m.first_k_dense_replace > m.num_hidden_layers:
        raise SpecError("more leading dense layers than layers", field="first_k_dense_replace",
                        value=m.first_k_dense_replace, allowed=f"0..{m.num_hidden_layers}")
    if m.is_mla and min(m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim) < 1:
        raise SpecError("multi-head latent attention needs qk_nope_head_dim, "
                        "qk_rope_head_dim and v_head_dim", field="kv_lora_rank",
                        value=m.kv_lora_rank)


# ---------------------------------------------------------------------- reading config.json


class _Config:
    """Typed reads from a config mapping; each failure names the file and the key."""

    def __init__(self, raw: Mapping[str, Any], file: str) -> None:
        self.raw, self.file = raw, file
        self.read: set[str] = set()

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def _get(self, key: str) -> Any:
        self.read.add(key)
        return self.raw.get(key)

    def _error(self, what: str, key: str, value: Any = None, allowed: str | None = None
               ) -> SpecError:
        shown = value if isinstance(value, str | int | float | bool) else None
        return SpecError(what, file=self.file, field=key, value=shown, allowed=allowed)

    def integer(self, key: str, default: int | None = None, *, minimum: int = 1) -> int:
        value = self._get(key)
        if value is None:
            if default is None:
                raise self._error("missing required field", key)
            return default
        top = _MAXIMA.get(key, MAX_SHAPE)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= top:
            raise self._error("must be a whole number", key, value,
                              f"{minimum} to {top:,}")
        return value

    def optional_integer(self, key: str) -> int | None:
        return self.integer(key) if self.has(key) else self._get(key)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._error("must be true or false", key, value, "true, false")
        return value

    def text(self, key: str, default: str) -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._error("must be a string", key, value)
        return value

    def layer_list(self, key: str) -> tuple[int, ...]:
        value = self._get(key) or []
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
            raise self._error("must be a list of layer indexes", key, allowed="[0, 3, ...]")
        return tuple(value)


def _check_keys(raw: Mapping[str, Any], file: str) -> None:
    for key, value in raw.items():
        if not isinstance(key, str):
            raise SpecError("keys must be strings", file=file, field=str(key))
        if key in NUMBER_KEYS and value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value < 0):
            raise SpecError("must be a finite number >= 0", file=file, field=key,
                            value=value if isinstance(value, str | int | float) else None)
        if key in BOOLEAN_KEYS and value is not None and not isinstance(value, bool):
            raise SpecError("must be true or false", file=file, field=key,
                            value=value if isinstance(value, str | int | float) else None,
                            allowed="true, false")
        if key not in CONFIG_KEYS and key not in HARMLESS_CONFIG_KEYS and \
                not key.startswith("_"):
            raise SpecError(
                "unknown key", file=file, field=key,
                allowed=", ".join(sorted(CONFIG_KEYS))
                + " (and the shape-neutral Hugging Face keys in HARMLESS_CONFIG_KEYS)")


def _dense_fields(c: _Config) -> dict[str, Any]:
    h = c.integer("hidden_size")
    heads = c.integer("num_attention_heads")
    if not c.has("head_dim") and h % heads:
        raise c._error("hidden_size is not a multiple of num_attention_heads; give head_dim",
                       "head_dim")
    norm: NormType = "layernorm" if c.has("layer_norm_eps") or c.has("layer_norm_epsilon") \
        else "rmsnorm"
    c.read.update({"layer_norm_eps", "layer_norm_epsilon"})
    return {
        "hidden_size": h, "num_hidden_layers": c.integer("num_hidden_layers"),
        "num_attention_heads": heads,
        "num_key_value_heads": c.integer("num_key_value_heads", heads),
        "head_dim": c.integer("head_dim", h // heads),
        "intermediate_size": c.integer("intermediate_size"),
        "vocab_size": c.integer("vocab_size"),
        "tie_word_embeddings": c.boolean("tie_word_embeddings", False),
        "hidden_act": c.text("hidden_act", "silu"),
        "attention_bias": c.boolean("attention_bias", False),
        "mlp_bias": c.boolean("mlp_bias", False),
        "norm_type": norm, "position_embeddings": _position_rows(c),
    }


def _position_rows(c: _Config) -> int:
    kind = c.text("position_embedding_type", "rope")
    if kind in _ROTARY_POSITIONS:
        return 0
    if kind not in _LEARNED_POSITIONS:
        raise c._error("unknown position embedding", "position_embedding_type", kind,
                       ", ".join(sorted(_LEARNED_POSITIONS | _ROTARY_POSITIONS)))
    return c.integer("max_position_embeddings")


def _expert_count(c: _Config) -> int:
    found = {k: c.integer(k, minimum=0) for k in EXPERT_COUNT_KEYS if c.has(k)}
    if len(set(found.values())) > 1:
        raise c._error("conflicting routed-expert counts", ", ".join(found),
                       allowed="one value")
    return next(iter(found.values()), 0)


_MOE_ONLY_KEYS = ("num_experts_per_tok", "moe_intermediate_size", "n_shared_experts",
                  "shared_expert_intermediate_size", "first_k_dense_replace")


def _moe_fields(c: _Config, intermediate: int) -> dict[str, Any]:
    experts = _expert_count(c)
    if not experts:
        stray = [k for k in _MOE_ONLY_KEYS if c.raw.get(k)]
        if stray:
            raise c._error("set for a model without routed experts", stray[0],
                           c.raw[stray[0]], "n_routed_experts / num_local_experts > 0")
        c.read.update(_MOE_ONLY_KEYS)
        return {}
    return {
        "n_routed_experts": experts,
        "num_experts_per_tok": c.integer("num_experts_per_tok"),
        "moe_intermediate_size": c.integer("moe_intermediate_size", intermediate),
        "n_shared_experts": c.integer("n_shared_experts", 0, minimum=0),
        "shared_expert_intermediate_size": c.integer("shared_expert_intermediate_size", 0,
                                                     minimum=0),
        "first_k_dense_replace": c.integer("first_k_dense_replace", 0, minimum=0),
        "decoder_sparse_step": c.integer("decoder_sparse_step", 1),
        "moe_layer_freq": c.integer("moe_layer_freq", 1),
        "mlp_only_layers": c.layer_list("mlp_only_layers"),
    }


_MLA_DIM_KEYS = ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")


def _mla_fields(c: _Config) -> dict[str, Any]:
    kv_rank = c.optional_integer("kv_lora_rank")
    if kv_rank is None:
        stray = [k for k in ("q_lora_rank", *_MLA_DIM_KEYS) if c.has(k)]
        if stray:
            raise c._error("multi-head latent attention key without kv_lora_rank", stray[0],
                           c.raw[stray[0]])
        c.read.update(("q_lora_rank", *_MLA_DIM_KEYS))
        return {}
    dims = {k: c.integer(k) for k in _MLA_DIM_KEYS}
    return {"kv_lora_rank": kv_rank, "q_lora_rank": c.optional_integer("q_lora_rank"),
            "head_dim": dims["qk_nope_head_dim"] + dims["qk_rope_head_dim"], **dims}


def model_from_config(mapping: Mapping[str, Any], *, file: str = "config") -> ModelSpec:
    """Validate a Hugging Face ``config.json`` mapping into a ``ModelSpec``.

    Unknown keys and bad values raise ``SpecError`` naming ``file`` and the key.
    """
    if not isinstance(mapping, Mapping):
        raise SpecError("expected a mapping of config keys", file=file)
    _check_keys(mapping, file)
    c = _Config(mapping, file)
    dense = _dense_fields(c)
    fields = {**dense, **_moe_fields(c, dense["intermediate_size"]), **_mla_fields(c)}
    fields["num_nextn_predict_layers"] = c.integer("num_nextn_predict_layers", 0, minimum=0)
    fields["name"] = c.text("name", Path(file).stem)
    ignored = tuple(sorted(k for k in mapping if k not in c.read))
    try:
        return ModelSpec(**fields, ignored_keys=ignored)
    except SpecError as exc:
        raise SpecError(exc.detail, file=file, field=exc.field, value=exc.value,
                        allowed=exc.allowed) from None


# ---------------------------------------------------------------------- presets and files


class PublishedParams(Spec):
    """Parameter counts as the model's authors state them."""

    total: float = Field(gt=0, description="all parameters (MTP excluded where it applies)")
    active: float | None = Field(default=None, gt=0, description="per token, MoE only")
    source: str = Field(min_length=3)


class _PresetEntry(Spec):
    id: Slug
    source: str = Field(min_length=3, description="where the config keys come from")
    evidence: Evidence
    notes: str = ""
    published_params: PublishedParams
    config: dict[str, Any]


@dataclass(frozen=True)
class ModelPreset:
    """A catalog model: its spec, its provenance and its published parameter counts."""

    id: str
    model: ModelSpec
    source: str
    evidence: str
    notes: str
    published: PublishedParams


def _preset(raw: Any, file: str, index: int) -> ModelPreset:
    where = f"models[{index}]"
    if not isinstance(raw, dict):
        raise SpecError("expected a mapping", file=file, field=where)
    try:
        entry = _PresetEntry.model_validate(raw)
    except ValidationError as exc:
        raise spec_error(exc, file=file, model=_PresetEntry, prefix=where) from None
    model = model_from_config(entry.config, file=f"{file}: {where}.config")
    return ModelPreset(id=entry.id, model=model, source=entry.source, evidence=entry.evidence,
                       notes=entry.notes, published=entry.published_params)


def load_presets(path: str | Path = CATALOG_FILE) -> dict[str, ModelPreset]:
    """The model presets in ``path`` (default: the built-in catalog), by id."""
    doc = read_yaml(path)
    if not isinstance(doc, dict) or set(doc) != {"models"} or not isinstance(doc["models"],
                                                                              list):
        raise SpecError("expected one top-level key 'models' holding a list", file=str(path))
    out: dict[str, ModelPreset] = {}
    for i, raw in enumerate(doc["models"]):
        preset = _preset(raw, str(path), i)
        if preset.id in out:
            raise SpecError("duplicate id", file=str(path), field=f"models[{i}].id",
                            value=preset.id)
        out[preset.id] = preset
    return out


#: The built-in model presets (``superpod/catalog/models.yaml``), by id (from the load cache
#: when it holds them for this file's text and this code: ``superpod.boundary.load_cache``).
MODEL_PRESETS: Mapping[str, ModelPreset] = cached_build("model-presets", [CATALOG_FILE],
                                                        load_presets)


def _read_config_file(path: Path) -> Any:
    if path.suffix.lower() != ".json":
        return read_yaml(path)
    from superpod.boundary import jsonio
    from superpod.boundary.files import read_text

    return jsonio.loads(read_text(path), str(path))


def _exists(path: Path) -> bool:
    """Whether a path names something (a name too long for the system names nothing)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def load_model(path_or_preset_id: str | Path) -> ModelSpec:
    """A preset id (``llama3-70b``) or a ``.json`` / ``.yaml`` config file, as a ``ModelSpec``."""
    key = str(path_or_preset_id)
    if key in MODEL_PRESETS:
        return MODEL_PRESETS[key].model
    path = Path(key)
    if path.suffix.lower() in (".json", ".yaml", ".yml") or _exists(path):
        return model_from_config(_read_config_file(path), file=str(path))
    raise SpecError("unknown model: neither a preset id nor a .json/.yaml file", field="model",
                    value=key, allowed=", ".join(sorted(MODEL_PRESETS)))
