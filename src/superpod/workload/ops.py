"""Operator accounting for one transformer layer: GEMMs, attention FLOPs, weights, activations.

GEMMs (forward). A GEMM of an (m x k) by a (k x n) matrix costs ``2*m*n*k`` FLOPs. Per
layer, on one rank, for ``tokens`` tokens (the tokens of this rank's attention
tensor-parallel group):

* attention, MHA / GQA: fused ``qkv`` (k = h, n = (H + 2 H_kv) d / tp; KV heads are replicated
  when tp > H_kv) and ``o`` (k = H d / tp, n = h) - Megatron-LM's column / row split
  (Shoeybi et al. 2019, arXiv 1909.08053 §3).
* attention, MLA (DeepSeek-V2, arXiv 2405.04434 §2.1): ``q_down`` (h -> r_q) and ``kv_down``
  (h -> r_kv + d_r) are replicated on every tensor-parallel rank (they are small, as in
  Megatron-Core's MLA); ``q_up`` (or ``q_proj`` without a query rank), ``kv_up`` and ``o``
  are split by heads.
* MLP: ``fc1`` (n = I / tp, or 2 I / tp gated) and ``fc2`` (k = I / tp).
* MoE layer: the ``router`` (n = E, replicated), shared experts split like a dense MLP, and
  the routed experts under expert parallelism ``ep`` and expert tensor parallelism ``etp``.
  Each rank holds E / ep experts, each split ``etp`` ways. With balanced routing the work is
  conserved across the ranks: the group of ``tp`` ranks holding ``tokens`` tokens sends
  ``tokens * k`` token-expert pairs, and each rank computes ``tokens * k * etp / tp`` of them
  on its 1/etp slices. When the expert group is the attention group (ep = tp, etp = 1) this
  is ``tokens * k / ep`` pairs a rank; with attention data parallel (tp = 1) each rank keeps
  ``tokens * k`` pairs. Those pairs fall on the fraction f of local experts that receive at
  least one token: for uniform routing of the T = tokens * ep * etp / tp tokens one expert
  replica serves, ``f = 1 - (1 - k/E)^T``; expert GEMMs are listed with ``count = f E / ep``
  and ``m`` = tokens per active expert (expected values, so m and count may be fractional;
  FLOPs do not depend on f, weight reads do).
* LM head: ``n = V / tp``, ``k = h``; the input embedding is a lookup (no GEMM).

Attention core (FlashAttention, Dao et al. 2022, arXiv 2205.14135): ``Q K^T`` and ``P V`` per
query head cost ``2 * s * d_qk`` and ``2 * s * d_v`` FLOPs a query token against ``s`` keys
(``4 s d`` when d_qk = d_v), halved when causal (each query sees half the keys on average),
divided by tp (heads are split). MLA uses d_qk = qk_nope + qk_rope, d_v = v_head_dim
(the non-absorbed form used in training and prefill).

Backward = 2 x forward, for GEMMs (one GEMM for the input gradient, one for the weight
gradient, each the size of the forward one) and, by the same convention, for attention.
(FlashAttention's backward does 2.5x the forward matmul FLOPs because it recomputes
``Q K^T``; that is hardware work the MFU convention does not count.)

Model FLOPs per token, the MFU convention of PaLM (Chowdhery et al. 2022, arXiv 2204.02311,
Appendix B): ``6 N + 12 L H d_qk s``, N = active non-embedding parameters with the LM head
(``ModelSpec.params_active_nonembedding``), L layers, H heads, s the sequence length;
attention is counted in full (not halved for causal masking), MTP modules excluded.
Hardware FLOPs per token count what runs: 3 x the forward GEMMs and causal attention at half,
plus the recomputed forward (full: every layer's forward again; selective: the attention
core only).

Activation memory: Korthikanti et al. 2022, 'Reducing Activation Recomputation in Large
Transformer Models', arXiv 2205.05198, §4 and Table 2. Per layer, 16-bit activations and
1-byte dropout masks, s sequence, b micro-batch, h hidden, a heads, t tensor parallel:

    no parallelism          s b h (34 + 5 a s / h)
    tensor parallel         s b h (10 + 24/t + 5 a s / (h t))
    tensor + sequence par.  s b h (34/t + 5 a s / (h t))
    + selective recompute   the 5 a s / h term is dropped
    full recompute          2 s b h (the layer input only; / t with sequence parallelism)

Under FP8 (``gemm_input_bytes=1``) the saved inputs of linear layers are their FP8 casts,
as Transformer Engine keeps them: the LayerNorm outputs, the fc2 input and the routed
tokens at one byte, plus an FP8 copy of the attention output beside flash attention's BF16
one.

The 34 is generalised term by term, in bytes per token with e bytes an element and
mask bytes 1 (0 without dropout):

    outside the TP region:  e (2h LayerNorm inputs + 2h GEMM inputs) + 2h masks      (10h)
                            + MLA latents e (2 r_q + 2 r_kv + d_r) + MoE router e E
    inside the TP region:   e (q + k + v + attention output widths)                   (8h)
                            + e (2I two-matrix MLP | 3I gated: 2I fc1 output + I fc2 input)
                                                                                      (16h)
                            MoE layer: e k (2h permuted input and expert output + 2 or 3 I_e)
                            + shared experts as a dense MLP of their width
    attention scores:       a s (e softmax output + e dropout output + mask)          (5as)

so the paper's numbers come back exactly for the GPT case (MHA, I = 4h, gelu, dropout).

What a stack saves beyond that accounting (``SavedActivations``):

* module-level recompute with output-discarding checkpoints (Megatron-Core
  ``--recompute-modules``, transformer_config.py at
  https://github.com/NVIDIA/Megatron-LM/blob/core_r0.14.0/megatron/core/transformer/transformer_config.py:
  "layernorm", "moe_act" and "mla_up_proj" discard their outputs after forward and recompute
  them before the consumer's backward): ``layernorm`` drops the outputs of the norms not
  fused into the next linear layer (a MoE layer's pre-MLP norm feeding router and experts,
  MLA's input norm and its two latent norms), ``moe_act`` the routed experts' activation
  output (their fc2 input), ``mla_up_proj`` MLA's q, k and v (the up-projections' outputs,
  the attention kernel's inputs);
* router probabilities applied inside the expert activation (Megatron-Core's
  ``weighted_bias_swiglu_impl`` in TEGroupedMLP, experts.py at
  https://github.com/NVIDIA/Megatron-LM/blob/core_r0.13.0/megatron/core/transformer/moe/experts.py):
  the combine is an unweighted scatter-add that keeps no expert output;
* the activation input in FP8 (``activation_func_fp8_input_store``; DeepSeek-V3, arXiv
  2412.19437 section 3.3.2, "cache the inputs of the SwiGLU operator ... in FP8"): the gated
  MLP's fc1 output at one byte an element.
Routed-expert activations assume etp = 1, where the expert-parallel token split divides
them by t like the rest of the TP region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from superpod.errors import SpecError
from superpod.workload.model import ModelSpec

GemmKind = Literal["dense", "expert", "attention_proj", "lm_head"]
Recompute = Literal["none", "selective", "op", "full"]
RECOMPUTE_MODES: tuple[Recompute, ...] = ("none", "selective", "op", "full")

#: backward FLOPs per forward FLOP (input gradient + weight gradient GEMMs)
BACKWARD_TO_FORWARD = 2.0
#: fraction of the keys a causal query attends to, on average
CAUSAL_FRACTION = 0.5
#: dropout masks are stored as one byte an element (Korthikanti et al. 2022 §4.1)
MASK_BYTES_PER_EL = 1.0


@dataclass(frozen=True, slots=True)
class Gemm:
    """``count`` GEMMs of (m x k) @ (k x n) on one rank.

    For ``kind="expert"``, ``count`` is the expected number of local experts that receive
    tokens and ``m`` the expected tokens each receives (both may be fractional).
    """

    name: str
    m: float
    n: int
    k: int
    count: float = 1.0
    kind: GemmKind = "dense"

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.n * self.k * self.count


@dataclass(frozen=True, slots=True)
class _Matrix:
    """One weight matrix of a layer as held on one rank (k inputs -> n outputs)."""

    name: str
    n: int
    k: int
    kind: GemmKind
    bias: bool = False


def _split(dim: int, parts: int) -> int:
    """A dimension split ``parts`` ways (rounded up: uneven splits pad)."""
    return -(-dim // parts)


def _check_degree(name: str, value: int, divides: int, what: str) -> None:
    if not isinstance(value, int) or value < 1 or divides % value:
        raise SpecError(f"must divide {what}", field=name, value=value,
                        allowed=f"a divisor of {divides}")


def _kv_heads_per_rank(model: ModelSpec, tp: int) -> int:
    kv = model.num_key_value_heads
    if kv >= tp:
        _check_degree("tp", tp, kv, "num_key_value_heads")
        return kv // tp
    if tp % kv:
        raise SpecError("KV heads can be neither split nor replicated evenly", field="tp",
                        value=tp, allowed=f"a divisor or multiple of {kv}")
    return 1


# ---------------------------------------------------------------------- layer matrices


def _attention_matrices(model: ModelSpec, tp: int) -> list[_Matrix]:
    _check_degree("tp", tp, model.num_attention_heads, "num_attention_heads")
    h, heads, bias = model.hidden_size, model.num_attention_heads // tp, model.attention_bias
    o = _Matrix("o_proj", h, heads * model.head_dim_v, "attention_proj", bias)
    if not model.is_mla:
        qkv = (heads + 2 * _kv_heads_per_rank(model, tp)) * model.head_dim
        return [_Matrix("qkv_proj", qkv, h, "attention_proj", bias), o]
    q_out, r_q, r_kv = heads * model.head_dim_qk, model.q_lora_rank, model.kv_lora_rank or 0
    q = [_Matrix("q_down", r_q, h, "attention_proj", bias),
         _Matrix("q_up", q_out, r_q, "attention_proj")] if r_q else \
        [_Matrix("q_proj", q_out, h, "attention_proj")]
    return [*q,
            _Matrix("kv_down", r_kv + model.qk_rope_head_dim, h, "attention_proj", bias),
            _Matrix("kv_up", heads * (model.qk_nope_head_dim + model.v_head_dim), r_kv,
                    "attention_proj"),
            o]


def _mlp_matrices(model: ModelSpec, width: int, parts: int, prefix: str,
                  kind: GemmKind) -> list[_Matrix]:
    inner = _split(width, parts)
    up = 2 * inner if model.gated_mlp else inner
    return [_Matrix(f"{prefix}fc1", up, model.hidden_size, kind, model.mlp_bias),
            _Matrix(f"{prefix}fc2", model.hidden_size, inner, kind, model.mlp_bias)]


def _ffn_matrices(model: ModelSpec, layer: int, tp: int, etp: int) -> list[_Matrix]:
    if not model.is_moe_layer(layer):
        return _mlp_matrices(model, model.intermediate_size, tp, "", "dense")
    _check_degree("etp", etp, model.moe_intermediate_size, "moe_intermediate_size")
    out = [_Matrix("router", model.n_routed_experts, model.hidden_size, "dense")]
    if model.shared_intermediate_size:
        out += _mlp_matrices(model, model.shared_intermediate_size, tp, "shared_", "dense")
    if model.shared_expert_intermediate_size:
        out.append(_Matrix("shared_expert_gate", 1, model.hidden_size, "dense"))
    return out + _mlp_matrices(model, model.moe_intermediate_size, etp, "expert_", "expert")


def _layer_matrices(model: ModelSpec, layer: int, tp: int, etp: int) -> list[_Matrix]:
    last = model.num_hidden_layers + model.num_nextn_predict_layers
    if not 0 <= layer < last:
        raise IndexError(f"layer {layer} outside 0..{last - 1}")
    mtp: list[_Matrix] = []
    if layer >= model.num_hidden_layers:  # MTP block: [norm(h); norm(emb)] -> h first
        mtp = [_Matrix("mtp_eh_proj", _split(model.hidden_size, tp), 2 * model.hidden_size,
                       "dense")]
    return mtp + _attention_matrices(model, tp) + _ffn_matrices(model, layer, tp, etp)


# ---------------------------------------------------------------------- GEMMs


def expected_active_expert_fraction(model: ModelSpec, tokens: float, *, tp: int = 1,
                                    ep: int = 1, etp: int = 1) -> float:
    """Expected fraction of a rank's experts that receive at least one token.

    Uniform routing of the ``tokens * ep * etp / tp`` tokens one expert replica serves:
    ``1 - (1 - k/E)^T``.
    """
    if not model.is_moe:
        return 0.0
    served = tokens * ep * etp / tp
    miss = 1.0 - model.num_experts_per_tok / model.n_routed_experts
    return 1.0 - float(miss**served)


def layer_gemms(model: ModelSpec, layer: int, tokens: float, *, tp: int = 1, ep: int = 1,
                etp: int = 1, experts_active_fraction: float | None = None) -> list[Gemm]:
    """Forward GEMMs of layer ``layer`` on one rank for ``tokens`` tokens (module docstring).

    ``experts_active_fraction``: fraction of local experts that get tokens (default: the
    uniform-routing expectation, ``expected_active_expert_fraction``).
    """
    if tokens <= 0:
        raise SpecError("must be positive", field="tokens", value=tokens)
    matrices = _layer_matrices(model, layer, tp, etp)
    if not any(mx.kind == "expert" for mx in matrices):
        return [Gemm(mx.name, tokens, mx.n, mx.k, 1.0, mx.kind) for mx in matrices]
    _check_degree("ep", ep, model.n_routed_experts, "the routed-expert count")
    f = experts_active_fraction
    if f is None:
        f = expected_active_expert_fraction(model, tokens, tp=tp, ep=ep, etp=etp)
    if not 0.0 < f <= 1.0:
        raise SpecError("must be in (0, 1]", field="experts_active_fraction", value=f)
    active = f * model.n_routed_experts / ep
    per_expert = tokens * model.num_experts_per_tok * etp / tp / active
    return [Gemm(mx.name, per_expert, mx.n, mx.k, active, mx.kind) if mx.kind == "expert"
            else Gemm(mx.name, tokens, mx.n, mx.k, 1.0, mx.kind) for mx in matrices]


def head_gemms(model: ModelSpec, tokens: float, tp: int = 1, *,
               include_mtp: bool = False) -> list[Gemm]:
    """The LM head (vocabulary split ``tp`` ways); the embedding is a lookup, no GEMM.

    ``include_mtp``: the shared head runs once more per MTP depth.
    """
    count = 1 + (model.num_nextn_predict_layers if include_mtp else 0)
    return [Gemm("lm_head", tokens, _split(model.vocab_size, tp), model.hidden_size,
                 float(count), "lm_head")]


def total_flops(gemms: Sequence[Gemm]) -> float:
    return sum(g.flops for g in gemms)


def attention_core_flops(model: ModelSpec, tokens: float, seq_len: float,
                         causal: bool = True, tp: int = 1) -> float:
    """Forward ``QK^T`` + ``PV`` FLOPs of one layer: ``tokens`` queries against ``seq_len`` keys.

    ``causal=True`` is for queries that are the sequence itself (training, prefill); use
    ``causal=False`` with ``seq_len`` = context length for decode steps.
    """
    _check_degree("tp", tp, model.num_attention_heads, "num_attention_heads")
    heads = model.num_attention_heads / tp
    flops = 2.0 * tokens * seq_len * heads * (model.head_dim_qk + model.head_dim_v)
    return flops * (CAUSAL_FRACTION if causal else 1.0)


# ---------------------------------------------------------------------- FLOPs per token


def model_flops_per_token(model: ModelSpec, seq_len: float) -> float:
    """PaLM's MFU convention: ``6 N + 12 L H d_qk s`` (module docstring)."""
    attention = 12.0 * model.num_hidden_layers * model.num_attention_heads \
        * model.head_dim_qk * seq_len
    return 6.0 * model.params_active_nonembedding + attention


def _check_recompute(recompute: str) -> None:
    if recompute not in RECOMPUTE_MODES:
        raise SpecError("unknown recompute mode", field="recompute", value=recompute,
                        allowed=", ".join(RECOMPUTE_MODES))


def hardware_flops_per_token(model: ModelSpec, seq_len: int,
                             recompute: Recompute = "none") -> float:
    """Training FLOPs a token costs on the hardware: forward + backward + recomputation."""
    _check_recompute(recompute)
    layers = range(model.num_hidden_layers)
    body = sum(total_flops(layer_gemms(model, i, seq_len)) for i in layers)
    head = total_flops(head_gemms(model, seq_len))
    attention = model.num_hidden_layers * attention_core_flops(model, seq_len, seq_len)
    # "op": PyTorch op-level selective checkpointing (torchtitan's default) saves the
    # attention kernel's output and every other matmul's, recomputing the rest
    redo = {"none": 0.0, "selective": attention, "op": body / 2,
            "full": body + attention}[recompute]
    forward = body + head + attention
    return (forward * (1.0 + BACKWARD_TO_FORWARD) + redo) / seq_len


# ---------------------------------------------------------------------- weights


def layer_weight_params(model: ModelSpec, layer: int, tp: int = 1, ep: int = 1,
                        etp: int = 1) -> float:
    """Parameters of layer ``layer`` held on one rank (experts: E/ep of them, 1/etp each)."""
    matrices = _layer_matrices(model, layer, tp, etp)
    if model.is_moe_layer(layer):
        _check_degree("ep", ep, model.n_routed_experts, "the routed-expert count")
    local_experts = model.n_routed_experts // ep
    total = 0
    for mx in matrices:
        copies = local_experts if mx.kind == "expert" else 1
        total += copies * mx.n * (mx.k + (1 if mx.bias else 0))
    return float(total + model.params_per_layer(layer).norms)


def layer_weight_bytes(model: ModelSpec, layer: int, bytes_per_param: float, tp: int = 1,
                       ep: int = 1, etp: int = 1) -> float:
    """Bytes of layer ``layer``'s weights on one rank."""
    return layer_weight_params(model, layer, tp, ep, etp) * bytes_per_param


# ---------------------------------------------------------------------- activations


@dataclass(frozen=True, slots=True)
class SavedActivations:
    """What a training stack keeps beyond Korthikanti et al.'s accounting (module docstring):
    module outputs discarded and recomputed, router probabilities applied in the expert
    activation, the activation input stored in FP8."""

    discard: frozenset[str] = frozenset()  #: of "layernorm", "moe_act", "mla_up_proj"
    moe_probs_in_act: bool = False
    act_fp8_store: bool = False


KEEP_ALL = SavedActivations()


@dataclass(frozen=True, slots=True)
class _ActivationTerms:
    """Stored activation bytes per token of one layer, by how they shard."""

    outside_tp: float  #: LayerNorm and GEMM inputs, dropout masks: /t only with SP
    inside_tp: float  #: q, k, v, attention output, MLP intermediates: /t
    scores: float  #: attention scores (the a s terms): /t, dropped by selective recompute


def _activation_terms(model: ModelSpec, layer: int, seq_len: float, e: float,
                      dropout: bool, g: float | None = None,
                      saved: SavedActivations = KEEP_ALL) -> _ActivationTerms:
    """``g``: bytes an element of a saved GEMM input (default ``e``; 1 under FP8, where
    Transformer Engine saves the FP8 cast of each linear layer's input for its weight
    gradient: the two LayerNorm outputs, the gated MLP's fc2 input, the routed tokens, and
    an FP8 copy of the attention output beside the BF16 one flash attention keeps);
    ``saved``: what the stack discards or narrows (``SavedActivations``)."""
    h, heads = model.hidden_size, model.num_attention_heads
    g = e if g is None else g
    norms = "layernorm" in saved.discard
    moe = model.is_moe_layer(layer)
    extra_o = g if g != e else 0.0  # the FP8 copy of the attention output for o_proj
    mask = MASK_BYTES_PER_EL if dropout else 0.0
    # two norm inputs; two norm outputs as GEMM inputs, less those discarded: the MLA input
    # norm (not fused: two down-projections read it) and a MoE layer's pre-MLP norm
    norm_out = 2.0 - (float(model.is_mla) + float(moe) if norms else 0.0)
    outside = e * 2 * h + g * norm_out * h + mask * 2 * h
    if model.is_mla:
        r_q, r_kv = model.q_lora_rank or 0, model.kv_lora_rank or 0
        latent_norms = 0 if norms else r_q + r_kv
        outside += e * (r_q + r_kv + model.qk_rope_head_dim + latent_norms)
        qkv = 0.0 if "mla_up_proj" in saved.discard else \
            heads * (2 * model.head_dim_qk + model.head_dim_v)
        qkvo = qkv + heads * model.head_dim_v
        o_dim = heads * model.head_dim_v
    else:
        qkvo = (2 * heads + 2 * model.num_key_value_heads) * model.head_dim
        o_dim = heads * model.head_dim
    inside = e * qkvo + extra_o * o_dim
    act_in = 1.0 if saved.act_fp8_store else e
    if moe:
        outside += e * model.n_routed_experts
        k_top = model.num_experts_per_tok
        expert_out = 0.0 if saved.moe_probs_in_act else e * h
        inside += k_top * (g * h + expert_out + _mlp_act_bytes(
            model, model.moe_intermediate_size, act_in, 0.0 if "moe_act" in saved.discard
            else g))
        inside += _mlp_act_bytes(model, model.shared_intermediate_size, act_in, g)
    else:
        inside += _mlp_act_bytes(model, model.intermediate_size, act_in, g)
    scores = heads * seq_len * (2 * e + mask if dropout else e)
    return _ActivationTerms(outside, inside, scores)


def _mlp_act_bytes(model: ModelSpec, width: int, e: float, g: float) -> float:
    """fc1 output (2I gated, I otherwise) in e bytes, fc2 input (I) in g bytes."""
    return (2.0 * e if model.gated_mlp else e) * width + g * width


def activation_bytes_per_layer(model: ModelSpec, seq_len: int, micro_batch: int, *,
                               tp: int = 1, sp: bool = False, recompute: Recompute = "none",
                               bytes_per_el: float = 2.0, dropout: bool = True,
                               layer: int | None = None,
                               gemm_input_bytes: float | None = None,
                               saved: SavedActivations = KEEP_ALL) -> float:
    """Activation bytes one layer keeps for the backward pass on one rank.

    Korthikanti et al. 2022 Table 2, generalised (module docstring). ``layer=None`` averages
    over the model's layers (dense and MoE layers differ); ``saved``: what the stack
    discards or narrows (``SavedActivations``).
    """
    _check_recompute(recompute)
    _check_degree("tp", tp, model.num_attention_heads, "num_attention_heads")
    tokens = float(seq_len) * micro_batch
    outside_div = float(tp) if sp else 1.0
    if recompute == "full":
        return tokens * model.hidden_size * bytes_per_el / outside_div
    layers = range(model.num_hidden_layers) if layer is None else (layer,)
    total = 0.0
    for i in layers:
        t = _activation_terms(model, i, seq_len, bytes_per_el, dropout, gemm_input_bytes, saved)
        scores = 0.0 if recompute in ("selective", "op") else t.scores
        total += tokens * (t.outside_tp / outside_div + (t.inside_tp + scores) / tp)
    return total / len(layers)
