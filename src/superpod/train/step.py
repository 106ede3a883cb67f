"""Training step time: a per-stage timeline of compute and communication.

Per micro-batch and pipeline stage (the slowest stage sets the pace):

* compute: every layer's GEMMs (``compute.kernels.gemm``: calibrated roofline per chip,
  precision and shape), the attention core (flash-style FLOPs at a per-chip attention
  efficiency) and the memory-bound element-wise work (the layer's activation bytes over
  the chip's copy bandwidth); backward = 2 x forward; recompute adds a forward (full) or
  the attention core (selective);
* attention: a flash-style kernel (``fa2``/``fa3``/``cudnn``: causal FLOPs at the efficiency
  measured for that kernel, chip and key length, in the generation the framework release
  shipped - ``compute.kernels.attention_efficiency``; no score matrix in memory), or
  ``unfused`` as before FlashAttention (Megatron-LM 2021):
  ``QK^T`` and ``PV`` as batched GEMMs over the full square (the causal mask skips no
  work), and the score matrix streamed through memory by the fused scale-mask-softmax and
  dropout kernels, ``SCORE_BYTES_FWD`` bytes per score element forward;
* tensor parallel: all-gather + reduce-scatter (sequence parallel) or all-reduce pairs, two
  per layer each way (Megatron, Shoeybi et al. 2019), costed on the TP group's placement.
  Exposed, unless ``tp_comm_overlap`` (Transformer Engine userbuffers, PyTorch AsyncTP):
  then each collective is split into ``tp`` ring chunks pipelined with the GEMM it feeds
  (Wang et al., ASPLOS'23), so one chunk stays exposed and the rest hides under the layer's
  GEMMs up to their duration;
* context parallel: ring attention passes K/V chunks to the next rank (cp - 1 hops per
  layer), overlapped with attention compute: only the excess is exposed; PyTorch's
  context_parallel (torchtitan) instead all-gathers the shards under the first step and
  passes fp32 K/V gradients back step by step, and Llama 3's all-gather-based CP gathers
  the K/V once before one attention call, exposed, and reduce-scatters their gradients,
  keeping the gathered K/V for the backward (``_cp_exchange``, ``cp_gathered_kv_bytes``);
* expert parallel: dispatch + combine all-to-all per MoE layer each way, by the plan's token
  dispatcher (``_ep_exchange_s``: fused DeepEP-style kernels, one row per token and
  destination rank, FP8 dispatch under FP8; or Megatron-Core's all-to-all dispatcher, every
  (token, expert) row in BF16 over an NCCL all-to-all); exposed, except under DualPipe,
  which overlaps them with the compute of the other direction's chunk, up to that compute
  (DeepSeek-V3 report, arXiv 2412.19437);
* pipeline: 1F1B takes (m + p - 1) stage-slots, interleaving cuts the bubble to
  (p - 1)/v slots (Narayanan et al. SC'21), with (v - 1)(p - N)/v more for groups of
  N < p micro-batches per virtual stage (``TrainPlan.pp_group``, Llama 3's schedule);
  zero-bubble / DualPipe schedules are modelled with a bubble of (p - 1)/3 slots (Qi et
  al. 2023); activations and gradients cross a stage boundary once per virtual stage,
  blocking under 1F1B, overlapped with the next chunk under interleaving (Megatron-LM's
  overlap_p2p_comm);
* data parallel: gradient reduce-scatter (or all-reduce) overlapped with the last
  micro-batch's backward and parameter all-gather with the first forward (Megatron's
  distributed optimizer), except the unit reduced last and gathered first (the input
  embedding's bucket, FSDP's root unit), which waits for no compute; Megatron-LM's local
  DDP of 2019-2021 all-reduces once after the last backward, fully exposed
  (``dp_overlap``); FSDP (ZeRO-3) likewise once a step when it keeps parameters
  gathered across micro-batches (Llama 3 section 3.3.2; FSDP2 under pipeline parallelism),
  or gathers and reduces per micro-batch (``fsdp_regather``: FSDP2 resharding after
  forward), overlapped with that micro-batch's compute; only the excess is exposed;
* FP8 / FP4 GEMMs: the casts of their inputs (and of output gradients in backward) to the
  narrow format, with the transposed copy Hopper's FP8 tensor cores need for the weight
  gradient, streamed through memory (``FP8_CAST_BYTES`` per element); current and dynamic
  scaling read each tensor once more for its amax (``FP8_AMAX_BYTES``); weights are cast
  once a step (Transformer Engine caches them) or every micro-batch (torchao); the LM head
  stays BF16; the backward GEMMs run without fast accumulation where the framework says so
  (``fp8_split_accumulation``), slower by the chip's calibrated factor (Hopper);
* eager execution (no ``torch.compile``): each element-wise op its own kernel, the extra
  bytes counted op by op (``EAGER_*``);
* a board power limit below the TDP lowers the sustained clock of compute-bound kernels
  (``Chip.clock_fraction``);
* loss: the fp32 cross entropy over the logits on the last stage, streamed through memory
  (``LOSS_BYTES_PER_LOGIT`` per logit), which weighs on small models with large vocabularies;
* optimizer: Adam's memory traffic (about 30 B per local parameter) over copy bandwidth;
* overlap interference: communication hidden under compute is not free: NCCL and userbuffer
  kernels run one block per channel on SMs taken from the GEMMs and stream through the same
  HBM, so each second of hidden communication slows compute by ``COMM_SM_SHARE`` seconds.

The breakdown (compute, recompute, exposed communication by kind, bubble, optimizer) adds
up to the step time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from superpod.compute import kernels
from superpod.compute.calibration import load_calibration, split_accumulator_ratio
from superpod.errors import Infeasible, SpecError
from superpod.hardware.specs import Chip
from superpod.hardware.system import System
from superpod.network.collectives import CollectiveRequest, collective
from superpod.train import memory as mem
from superpod.train.modelfacts import ModelFacts, activation_mode, model_facts
from superpod.train.plan import TrainPlan, check_plan, rank_layers
from superpod.trust.holdout import excluded
from superpod.workload import ops
from superpod.workload.model import ModelSpec

# assumption: NCCL on Hopper runs 16-32 channels, one thread block each on its own SM
# (132 SMs), i.e. 12-24 % of the SMs while a collective is in flight; 0.15 is the middle of
# the lower half (overlap studies report 10-25 % GEMM slowdown: Pati et al., T3, ASPLOS'24)
COMM_SM_SHARE = 0.15
OPTIMIZER_BYTES_PER_PARAM = 30.0  # Adam: read p, g, m, v (fp32) + bf16 copy; write p, m, v
ACT_BYTES = 2.0  # bf16 activations on the wire
ELEMENTWISE_TRAFFIC = 2.0  # bytes streamed forward per byte of stored activation
# unfused attention, bytes moved per score element forward beyond the two batched GEMMs
# (whose roofline already counts writing the scores and reading the probabilities): the
# fused scale-mask-softmax reads the scores and writes probabilities (2 + 2), dropout reads
# them and writes its output and a 1-byte mask (2 + 2 + 1) (Korthikanti et al. 2022, 5as/h)
SCORE_BYTES_FWD = 9.0
# backward: dropout's gradient reads the incoming gradient and the mask and writes (2 + 1 +
# 2), the softmax gradient reads the gradient and the probabilities and writes (2 + 2 + 2)
SCORE_BYTES_BWD = 11.0
# vocabulary-parallel cross entropy in fp32 over the logits (Megatron-LM's loss): bytes
# moved per logit element. Forward: cast to fp32 (read 2, write 4), max (4), subtract (4+4),
# exp (4+4), sum (4), normalise (4+4) = 38; backward: copy the softmax (4+4), scale by the
# incoming gradient (4+4), cast to bf16 for the head's backward GEMM (4+2) = 22
LOSS_BYTES_PER_LOGIT = 60.0
LOSS_FWD_SHARE = 38.0 / 60.0
FP8_CAST_BYTES = 4.0  # per element cast to FP8: read 2 (bf16) + write 1 + write 1 transposed
# current / dynamic scaling computes each tensor's amax from the tensor itself before the
# cast: one more read of the bf16 input (Transformer Engine Float8CurrentScaling, torchao
# Float8Linear); delayed scaling takes the scale from an amax history, fused in the cast
FP8_AMAX_BYTES = 2.0
# NVFP4 (Transformer Engine's NVFP4 recipe, docs/features/low_precision_training/nvfp4/
# nvfp4.rst at https://github.com/NVIDIA/TransformerEngine/blob/41f6cbf17263a17f1c0fad7f591bf2d527318891/docs/features/low_precision_training/nvfp4/nvfp4.rst):
# a global FP32 scale from the tensor's amax on top of the 16-element E4M3 block scales, and
# TN-only GEMMs, so each GEMM input is quantized twice - rowwise, and columnwise for the
# weight gradient after a random Hadamard transform whose own amax sets that copy's scale.
# Per element: one read for both amaxes (2 B), then each quantization reads 2 B and writes
# half a byte and a sixteenth of a scale byte
NVFP4_CAST_BYTES = 2.0 + 2 * (2.0 + 0.5 + 1.0 / 16)
# eager PyTorch (torchtitan's Llama, model.py at commit eaea6f6) runs each element-wise op
# as its own kernel; bytes per token moved beyond the fused kernels, counted op by op:
# RMSNorm (x.float(), pow, mean, rsqrt, mul, type_as, mul by weight: 32 B per element of h
# vs 4 fused; two per layer), rotary embedding (float, complex mul, type_as: 22 B per
# element of q and k vs 4), SwiGLU (silu then mul: 10 B per element of I vs 6)
EAGER_NORM_EXTRA = 2 * (32.0 - 4.0)
EAGER_ROPE_EXTRA = 22.0 - 4.0
EAGER_GLU_EXTRA = 10.0 - 6.0
# context-parallel ring merges, bytes per element per ring step: (output, dQ, dK/dV).
# p2p, Transformer Engine v1.4 attention.py (AttnFuncWithCP): forward
# flash_attn_fwd_out_correction adds out_step * exp(lse_step - lse) into the bf16 output
# (read the step's output 2, write the scaled copy 2, read it 2, read and write the output
# 2 + 2 = 10); backward dq.add_ and dkv.add_ in bf16 (read 2 + 2, write 2 = 6 each).
# allgather, PyTorch _attention.py (_SDPAMerger.step with convert_to_f32, at torch 1963fc8):
# the step's output cast to fp32 (read 2, write 4), out - out_step (read 4 + 4, write 4),
# times sigmoid(lse_step - lse) (read 4, write 4), subtracted from the output (read 4 + 4,
# write 4) = 38; backward grad_query += in fp32 (read 4 + 2, write 4 = 10), grad_key /
# grad_value += likewise (10) and concatenated in fp32 for the next rank (read 4, write 4)
RING_MERGE_BYTES = {"p2p": (10.0, 6.0, 6.0), "allgather": (38.0, 10.0, 18.0)}
# Megatron-Core's default gradient bucket: max(40M, 1M x data-parallel size) parameters
# (megatron/core/distributed/distributed_data_parallel.py, DistributedDataParallelConfig
# bucket_size docstring: https://github.com/NVIDIA/Megatron-LM/blob/core_r0.8.0/megatron/core/distributed/distributed_data_parallel_config.py)
DDP_BUCKET_PARAMS = 40_000_000
DDP_BUCKET_PARAMS_PER_RANK = 1_000_000
# MoE token permutation (Megatron-Core MoEAlltoAllTokenDispatcher, token_dispatcher.py and
# moe_utils.py at https://github.com/NVIDIA/Megatron-LM/blob/bed33f89945f41ae792d7b36a0d770b00f61ed42/megatron/core/transformer/moe/token_dispatcher.py):
# forward, "permutation 1" gathers each token once per chosen expert (index_select: read 2 B,
# write 2 B per routed element), "permutation 2" (sort_chunks_by_idxs, only with several
# local experts under expert parallelism) regroups the received rows by local expert (read 2,
# write 2), and the combine side undoes both (sort back, then unpermute's probability-
# weighted scatter-add: read 2, write 2); backward moves the gradients through the same
# passes in reverse. Bytes per routed (token, expert) hidden element and pass:
MOE_PERMUTE_BYTES = 4.0


@dataclass(frozen=True)
class TrainResult:
    system: str
    model: str
    chips: int
    plan: TrainPlan
    step_time_s: float
    tokens_per_s: float
    mfu: float
    hfu: float
    memory: mem.MemoryBreakdown
    breakdown_s: dict[str, float]
    notes: tuple[str, ...] = field(default=())

    @property
    def tokens_per_s_per_chip(self) -> float:
        return self.tokens_per_s / self.chips

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "model": self.model, "chips": self.chips,
                "step_time_s": self.step_time_s, "tokens_per_s": self.tokens_per_s,
                "tokens_per_s_per_chip": self.tokens_per_s_per_chip, "mfu": self.mfu,
                "hfu": self.hfu, "memory_bytes_per_chip": self.memory.total,
                "memory_breakdown_bytes": self.memory.to_dict(),
                "breakdown_s": dict(self.breakdown_s), "plan": self.plan.to_dict(),
                "notes": list(self.notes)}


@dataclass(frozen=True)
class _Ctx:
    system: System
    facts: ModelFacts
    plan: TrainPlan
    r: int  # ranks per chip
    gemm_dtype: str
    clock: float = 1.0  # sustained tensor-core clock under the power limit (Chip.clock_fraction)


def _gemm_s(ctx: _Ctx, gemms: tuple[tuple[int, int, int, int], ...]) -> float:
    chip = ctx.system.chip
    cal = load_calibration()
    dtype = ctx.gemm_dtype
    total = 0.0
    key = _chip_key(chip)
    for m, n, k, count in gemms:
        total += count * _gemm_time(key, m, n, k, dtype, ctx.r, ctx.clock, id(cal),
                                    excluded())  # per calibration and held-out set
    return total


#: chips by the key ``_gemm_time`` is memoised on, and each chip object's key (the object
#: is held so that its id is not reused while it is a key)
_CHIPS: dict[str, Chip] = {}
_KEYS: dict[int, tuple[Chip, str]] = {}


def _chip_key(chip: Chip) -> str:
    """The memo key of a chip: all its fields, so that a user's chip that reuses a catalog
    id (or a chip only the user's file defines) is the chip the GEMMs run on. One chip
    resolution: the system's own chip, never a catalog lookup by id."""
    hit = _KEYS.get(id(chip))
    if hit is not None and hit[0] is chip:
        return hit[1]
    if len(_KEYS) > 256:
        _KEYS.clear()
    key = repr(chip)  # every field, exactly (floats round-trip); no serializer to build
    _KEYS[id(chip)] = (chip, key)
    _CHIPS.setdefault(key, chip)
    return key


@lru_cache(maxsize=65536)
def _gemm_time(chip_key: str, m: int, n: int, k: int, dtype: str, r: int, clock: float,
               _cal: int, _held_out: frozenset[str]) -> float:
    chip = _CHIPS[chip_key]
    est = kernels.gemm(chip, m, n, k, dtype)
    # a rank that is one of r dies owns 1/r of the package: scale time by r; a power-capped
    # clock slows compute-bound kernels (HBM runs on its own clock)
    return est.time_s * r / (clock if est.bound == "compute" else 1.0)


_ATTN_CACHE: dict[tuple[Any, ...], tuple[Any, float]] = {}


def _attention_s(ctx: _Ctx, flops: float) -> float:
    chip, p = ctx.system.chip, ctx.plan
    # one kernel call sees the keys of one ring step under context parallelism; memoised
    # per chip object (kept alive beside its value), calibration and held-out set
    cal = load_calibration()
    key = (id(chip), p.attention_kernel, p.seq_len // p.cp, p.attention_released, id(cal),
           excluded())
    hit = _ATTN_CACHE.get(key)
    if hit is not None and hit[0] is chip:
        eff = hit[1]
    else:
        eff = kernels.attention_efficiency(chip, p.attention_kernel, seq_len=p.seq_len // p.cp,
                                           released_by=p.attention_released)
        if len(_ATTN_CACHE) > 4096:
            _ATTN_CACHE.clear()
        _ATTN_CACHE[key] = (chip, eff)
    peak = chip.peak_flop_per_s.get("bf16") or max(chip.peak_flop_per_s.values())
    return flops / (peak / ctx.r * eff * ctx.clock)


#: copy bandwidth per (chip, calibration) object, both kept alive beside the value
_BW_CACHE: dict[tuple[int, int], tuple[Chip, object, float]] = {}


def _copy_s(ctx: _Ctx, nbytes: float) -> float:
    chip, cal = ctx.system.chip, load_calibration()
    hit = _BW_CACHE.get((id(chip), id(cal)))
    if hit is not None and hit[0] is chip and hit[1] is cal:
        bw = hit[2]
    else:
        bw, _, _ = kernels.copy_bandwidth(chip, cal)
        if len(_BW_CACHE) > 1024:
            _BW_CACHE.clear()
        _BW_CACHE[id(chip), id(cal)] = (chip, cal, bw)
    return nbytes / (bw / ctx.r)


_COLL_CACHE: dict[tuple[Any, ...], tuple[System, float]] = {}


def _coll(ctx: _Ctx, op: str, ranks: int, nbytes: float, stride: int = 1,
          groups: int = 1, **ep: Any) -> float:
    if ranks <= 1 or nbytes <= 0 and not ep:
        return 0.0
    # a group can never span more ranks than exist (the layout check ensures it; clamp
    # the stride so that uneven groupings are costed on the nearest real placement)
    total = ctx.system.counts.chips * ctx.r
    stride = max(1, min(stride, (total - 1) // (ranks - 1)))
    # memoised per system object (kept alive beside its value, so an id is never reused)
    # and per held-out set: the search and validation repeat the same collectives
    key = (id(ctx.system), op, ranks, nbytes, ctx.r, stride, groups,
           tuple(sorted(ep.items())), excluded())
    hit = _COLL_CACHE.get(key)
    if hit is not None and hit[0] is ctx.system:
        return hit[1]
    req = CollectiveRequest(op=op, ranks=ranks, bytes_=nbytes, ranks_per_chip=ctx.r,
                            stride=stride, concurrent_groups=groups, **ep)
    t = collective(ctx.system, req).time_s
    if len(_COLL_CACHE) > 200_000:
        _COLL_CACHE.clear()
    _COLL_CACHE[key] = (ctx.system, t)
    return t


@dataclass(frozen=True)
class _Layer:
    fwd_s: float
    bwd_s: float
    recompute_s: float
    tp_s: float
    cp_s: float
    ep_s: float
    hidden_s: float  # communication overlapped with compute (costs COMM_SM_SHARE of it)


_LAYER_CACHE: dict[tuple[Any, ...], tuple[Any, _LayerParts]] = {}
_NOT_LAYER_FIELDS = frozenset({"pp", "vpp", "dp", "zero", "global_batch", "order",
                               "fsdp_regather", "pp_schedule", "pp_group",
                               "moe_probs_in_act", "act_fp8_store"})
#: a dense layer reads no expert degree either (its GEMMs, element-wise work and
#: communication are those of attention and the dense MLP)
_NOT_DENSE_FIELDS = _NOT_LAYER_FIELDS | {"ep", "etp", "ep_dispatcher"}


def _layer_key(ctx: _Ctx, moe: bool | None, dualpipe: bool = True) -> tuple[Any, ...]:
    """The memo key of a layer's costs (``moe``: its kind; None: the stage's per-layer
    units, ``_stage_units``, which read what a MoE layer reads); ``dualpipe=False``: without
    the schedule (``_layer_costs`` leaves it to ``_with_schedule``)."""
    p = ctx.plan
    # every plan field but those a layer never reads (pipeline shape, ZeRO, placement order
    # and batch enter only through the micro-batch count and the TP / CP strides), and the
    # module's numeric constants (tests and what-if studies patch them)
    skip = _NOT_DENSE_FIELDS if moe is False else _NOT_LAYER_FIELDS
    fields = tuple([v for k, v in p.__dict__.items() if k not in skip])
    return (id(ctx.system), id(ctx.facts), moe, fields,
            p.pp_schedule == "dualpipe" if dualpipe else None,
            p.microbatches if ctx.gemm_dtype in ("fp8", "fp4") else 0,
            p.stride("tp") if p.tp > 1 else 0, p.stride("cp") if p.cp > 1 else 0,
            ctx.r, ctx.clock, ctx.gemm_dtype, id(load_calibration()), excluded(),
            _constants(), RING_MERGE_BYTES.get(p.cp_rotate))


def _layer(ctx: _Ctx, moe: bool) -> _Layer:
    """One layer's costs (``_layer_costs``), memoised on every plan field they read: a
    search costs the same layer under many ZeRO stages, pipeline shapes and orders."""
    key = _layer_key(ctx, moe, dualpipe=False)
    hit = _LAYER_CACHE.get(key)
    if hit is not None and hit[0][0] is ctx.system and hit[0][1] is ctx.facts:
        return _with_schedule(hit[1], ctx.plan.pp_schedule == "dualpipe")
    out = _layer_costs(ctx, moe)
    if len(_LAYER_CACHE) > 100_000:
        _LAYER_CACHE.clear()
    _LAYER_CACHE[key] = ((ctx.system, ctx.facts), out)
    return _with_schedule(out, ctx.plan.pp_schedule == "dualpipe")


@dataclass(frozen=True)
class _LayerParts:
    """A layer's costs before the pipeline schedule decides how much of the expert
    all-to-all (``ep_one_s``: dispatch + combine one way, None without it) stays exposed."""

    fwd_s: float
    bwd_s: float
    recompute_s: float
    tp_s: float
    cp_s: float
    hidden_s: float  # TP and CP traffic overlapped with compute
    ep_one_s: float | None
    cast_fwd_s: float
    cast_bwd_s: float


def _with_schedule(lp: _LayerParts, dualpipe: bool) -> _Layer:
    fwd, bwd, hidden, ep_s = lp.fwd_s, lp.bwd_s, lp.hidden_s, 0.0
    one = lp.ep_one_s
    if one is not None:
        if dualpipe:
            # a forward chunk's dispatch/combine runs under a backward chunk's compute and
            # vice versa: hidden up to the layer's forward + backward compute
            ep_s = max(0.0, 2 * one - (fwd - lp.cast_fwd_s + bwd - lp.cast_bwd_s))
        else:
            ep_s = 2 * one
        hidden += 2 * one - ep_s
    return _Layer(fwd_s=fwd, bwd_s=bwd, recompute_s=lp.recompute_s, tp_s=lp.tp_s,
                  cp_s=lp.cp_s, ep_s=ep_s, hidden_s=hidden)


_CONST_NAMES: list[str] = []


def _constants() -> tuple[float, ...]:
    """The current values of the module's numeric constants (the names are found once: a
    patch changes a value, never which names exist)."""
    g = globals()
    if not _CONST_NAMES:
        _CONST_NAMES.extend(k for k, v in g.items() if k.isupper() and isinstance(v, int | float))
    return tuple([g[k] for k in _CONST_NAMES])


def _layer_costs(ctx: _Ctx, moe: bool) -> _LayerParts:
    p, f = ctx.plan, ctx.facts
    tokens = p.micro_batch * p.seq_len // p.cp
    shapes = f.layer_gemms(moe, tokens, p.tp, p.ep, p.etp)
    gemm = _gemm_s(ctx, shapes)
    # element-wise work (norms, activation functions, residuals, casts) streams about
    # twice the stored activations forward (read + write) and twice that backward
    elem = ELEMENTWISE_TRAFFIC * _copy_s(ctx, f.activation_bytes(
        p.seq_len // p.cp, p.micro_batch, p.tp, p.sequence_parallel, "none"))
    if not p.compiled:
        elem += _copy_s(ctx, tokens * _eager_extra_bytes_per_token(f, moe, p))
    if p.attention_kernel == "unfused":
        m = f.model
        bh = p.micro_batch * m.num_attention_heads // p.tp  # (sequence, head) pairs
        sq = p.seq_len // p.cp
        # one strided-batched GEMM each (cuBLAS batches the heads in one launch): costed as
        # the (bh sq)-row GEMM it tiles like, so launch and per-wave costs are paid once
        core = _gemm_s(ctx, ((bh * sq, p.seq_len, m.head_dim_qk, 1),
                             (bh * sq, m.head_dim_v, p.seq_len, 1)))
        attn = core + _copy_s(ctx, SCORE_BYTES_FWD * bh * sq * p.seq_len)
        attn_bwd = 2 * core + _copy_s(ctx, SCORE_BYTES_BWD * bh * sq * p.seq_len)
    else:
        attn = _attention_s(ctx, f.attention_flops(tokens, p.seq_len, p.tp))
        attn_bwd = 2 * attn
        if p.cp > 1 and p.cp_rotate in RING_MERGE_BYTES:  # gather_kv: one call, no merge
            merge_fwd, merge_bwd = _ring_merge_s(ctx, tokens)
            attn, attn_bwd = attn + merge_fwd, attn_bwd + merge_bwd
    cast_fwd = cast_bwd = 0.0
    if ctx.gemm_dtype in ("fp8", "fp4"):
        # Transformer Engine-style FP8: every GEMM input activation is cast (read 2 B,
        # write 1 B) and written once more transposed for the weight-gradient GEMM, and so
        # is every output gradient in backward (FP8 tensor cores take only TN layouts); NVFP4
        # quantizes each twice with its amaxes (NVFP4_CAST_BYTES)
        per_el = NVFP4_CAST_BYTES if ctx.gemm_dtype == "fp4" else FP8_CAST_BYTES + (
            FP8_AMAX_BYTES if p.fp8_recipe in ("current", "dynamic") else 0.0)
        cast_fwd = _copy_s(ctx, per_el * sum(c * m_ * k_ for m_, _, k_, c in shapes))
        cast_bwd = _copy_s(ctx, per_el * sum(c * m_ * n_ for m_, n_, _, c in shapes))
        # weights: cast once a step and cached across micro-batches (Transformer Engine),
        # or re-cast every micro-batch, forward and transposed for backward (torchao)
        weights = sum(c * n_ * k_ for _, n_, k_, c in shapes)
        if p.fp8_recipe == "dynamic":
            cast_fwd += _copy_s(ctx, per_el * weights)
            cast_bwd += _copy_s(ctx, per_el * weights)
        else:
            cast_fwd += _copy_s(ctx, per_el * weights) / max(1, p.microbatches)
    # token permutation of a MoE layer: the same passes forward and (on the gradients) back
    perm = _copy_s(ctx, MOE_PERMUTE_BYTES * _permute_passes(f, p) * _routed_elements(f, p)
                   ) if moe else 0.0
    fwd = gemm + attn + elem + perm + cast_fwd
    bwd = 2 * gemm * _split_accumulation(ctx) + attn_bwd + 2 * elem + perm + cast_bwd
    # selective (Korthikanti et al.): the attention core; op (PyTorch op-level selective
    # checkpointing, torchtitan): every other matmul and the element-wise work; full: all
    recompute = {"full": fwd, "selective": attn, "op": gemm / 2 + elem + perm + cast_fwd
                 }.get(p.recompute, 0.0)
    if p.recompute != "full" and p.recompute_modules:
        recompute += _module_recompute_s(ctx, moe, tokens)
    act = tokens * f.hidden * ACT_BYTES
    if p.tp > 1:
        st = p.stride("tp")
        one = (_coll(ctx, "all_gather", p.tp, act, st)
               + _coll(ctx, "reduce_scatter", p.tp, act, st)
               if p.sequence_parallel else _coll(ctx, "all_reduce", p.tp, act, st))
        comm = 2 * one  # two per layer each way
        if p.tp_comm_overlap:
            tp_s = sum(comm / p.tp + max(0.0, comm * (p.tp - 1) / p.tp - g)
                       for g in (gemm, 2 * gemm))  # forward, backward
        else:
            tp_s = 2 * comm
        hidden = 2 * comm - tp_s
    else:
        tp_s = hidden = 0.0
    cp_s = 0.0
    if p.cp > 1:
        cp_s, cp_hidden = _cp_exchange(ctx, tokens, attn)
        hidden += cp_hidden
    ep_one = _ep_exchange_s(ctx, tokens) if moe and p.ep > 1 else None
    return _LayerParts(fwd_s=fwd, bwd_s=bwd, recompute_s=recompute, tp_s=tp_s, cp_s=cp_s,
                       hidden_s=hidden, ep_one_s=ep_one, cast_fwd_s=cast_fwd,
                       cast_bwd_s=cast_bwd)


def _module_recompute_s(ctx: _Ctx, moe: bool, tokens: int) -> float:
    """Seconds one layer spends recomputing the modules of ``plan.recompute_modules``
    before their consumers' backward (Megatron-Core output-discarding checkpoints,
    ``workload.ops``): a norm reads its input and writes its output (2 + 2 B an element),
    the routed experts' SwiGLU reads the fc1 output and writes its own (2 x 2 + 2 B per
    intermediate element), MLA's up-projections rerun their GEMMs."""
    p, f = ctx.plan, ctx.facts
    m = f.model
    mods = saved_activations(p).discard
    nbytes, out = 0.0, 0.0
    if "layernorm" in mods:
        h = f.hidden / (p.tp if p.sequence_parallel else 1)
        norms = (float(m.is_mla) + float(moe)) * h
        if m.is_mla:
            norms += (m.q_lora_rank or 0) + (m.kv_lora_rank or 0)
        nbytes += 4.0 * tokens * norms
    if "moe_act" in mods and moe:
        local = tokens // p.tp if p.sequence_parallel else tokens
        nbytes += 6.0 * local * f.top_k * m.moe_intermediate_size
    if nbytes:
        out += _copy_s(ctx, nbytes)
    if "mla_up_proj" in mods and m.is_mla:
        heads = m.num_attention_heads // p.tp
        ups = [(tokens, heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank or 0, 1)]
        if m.q_lora_rank:
            ups.append((tokens, heads * m.head_dim_qk, m.q_lora_rank, 1))
        out += _gemm_s(ctx, tuple(ups))
    return out


def _ep_exchange_s(ctx: _Ctx, tokens: int) -> float:
    """Dispatch + combine of one MoE layer one way (forward, or the backward's mirror),
    seconds, by the plan's token dispatcher (``TrainPlan.ep_dispatcher``).

    fused: DeepEP-style kernels (``network.expert_parallel``), each token sent once per
    distinct destination rank, dispatched in FP8 under FP8 training (DeepSeek-V3 report,
    arXiv 2412.19437 section 3.3), combined in BF16.
    alltoall: Megatron-Core's MoEAlltoAllTokenDispatcher (token_dispatcher.py at
    https://github.com/NVIDIA/Megatron-LM/blob/bed33f89945f41ae792d7b36a0d770b00f61ed42/megatron/core/transformer/moe/token_dispatcher.py):
    ``permute`` copies each token once per chosen expert and ``all_to_all`` over the expert
    group moves every (token, expert) row in the hidden states' dtype (BF16; Transformer
    Engine casts to FP8 only inside the grouped linear layer), the combine moves them back;
    with tensor parallelism the received rows are also all-gathered over the TP group
    (``gather_from_sequence_parallel_region``) and reduce-scattered back.
    """
    p, f = ctx.plan, ctx.facts
    local = tokens // p.tp if p.sequence_parallel else tokens
    if p.ep_dispatcher == "alltoall":
        rows = float(local * f.top_k * f.hidden * ACT_BYTES)  # per-rank send buffer
        t = 2 * _coll(ctx, "all_to_all", p.ep, rows, stride=p.tp * p.etp)
        if p.tp > 1 and p.sequence_parallel:
            st = p.stride("tp")
            t += (_coll(ctx, "all_gather", p.tp, rows * p.tp, st)
                  + _coll(ctx, "reduce_scatter", p.tp, rows * p.tp, st))
        return t
    dtype = "fp8" if p.precision in ("fp8", "fp4") else "bf16"
    kw = {"tokens": local, "hidden": f.hidden, "top_k": f.top_k}
    return (_coll(ctx, "ep_dispatch", p.ep, 0.0, stride=p.tp * p.etp, dtype=dtype, **kw)
            + _coll(ctx, "ep_combine", p.ep, 0.0, stride=p.tp * p.etp, dtype="bf16", **kw))


def _cp_kv_per_token(f: ModelFacts, p: TrainPlan) -> float:
    """K/V bytes (bf16) one token of one layer exchanges under context parallelism."""
    m = f.model
    if p.cp_kv_expanded and not m.is_mla:
        return 2.0 * 2 * m.num_attention_heads * m.head_dim
    return f.kv_bytes_per_token


def _ring_merge_s(ctx: _Ctx, tokens: int) -> tuple[float, float]:
    """(forward, backward) seconds one layer spends merging the ring steps' partial results:
    every step rescales and adds its partial output into the running output (forward), its
    partial dQ into dQ and its dK/dV into the gradients it passes on (backward), streamed
    through memory (``RING_MERGE_BYTES``; each step charged over the whole local output)."""
    p, f = ctx.plan, ctx.facts
    m = f.model
    q_el = tokens * m.num_attention_heads * m.head_dim_v / p.tp
    kv_el = tokens * _cp_kv_per_token(f, p) / 2.0 / p.tp  # K and V elements
    out_b, dq_b, dkv_b = RING_MERGE_BYTES[p.cp_rotate]
    return (_copy_s(ctx, p.cp * q_el * out_b),
            _copy_s(ctx, p.cp * (q_el * dq_b + kv_el * dkv_b)))


def _cp_exchange(ctx: _Ctx, tokens: int, attn: float) -> tuple[float, float]:
    """(exposed, hidden) context-parallel K/V traffic of one layer and micro-batch, seconds;
    ``attn``: the layer's forward attention time on this rank (``cp`` balanced steps).

    p2p (Transformer Engine AttnFuncWithCP, v1.4 attention.py): forward passes K/V to the
    next rank each step under that step's attention; backward passes K/V and the partial
    dK/dV together (twice the bytes) under each backward step.
    allgather (PyTorch context_parallel, torch/distributed/tensor/experimental/_attention.py
    at torch 1963fc8, the version torchtitan's performance figures used: rotate_method
    ALL_GATHER, convert_to_f32): forward all-gathers every K/V shard once, waited for after
    the first (diagonal) step; backward gathers again, and passes dK/dV accumulated in fp32
    to the next rank after each step, waited for under the next step, the last one after
    the loop.
    gather_kv (Llama 3, arXiv 2407.21783 section 3.3.2: K/V all-gathered, then attention
    for the local queries; "the all-gather communication latency is exposed in the
    critical path"): forward one exposed all-gather of every K/V shard, backward the
    all-gather's adjoint, one exposed reduce-scatter of the full-sequence dK/dV (bf16);
    the backward reads the gathered K/V the forward kept (``cp_gathered_kv_bytes``).
    A fully recomputed forward repeats its exchange.
    """
    p = ctx.plan
    kv = tokens * _cp_kv_per_token(ctx.facts, p) / p.tp
    stride, steps = p.stride("cp"), p.cp
    fwd_times = 2 if p.recompute == "full" else 1
    if p.cp_rotate == "gather_kv":
        gather = _coll(ctx, "all_gather", steps, kv * steps, stride)
        scatter = _coll(ctx, "reduce_scatter", steps, kv * steps, stride)
        return fwd_times * gather + scatter, 0.0
    if p.cp_rotate == "allgather":
        gather = _coll(ctx, "all_gather", steps, kv * steps, stride)
        grads = _coll(ctx, "send_recv", 2, 2 * kv, stride=stride)  # fp32 dK, dV
        step_fwd, step_bwd = attn / steps, 2 * attn / steps
        fwd = max(0.0, gather - step_fwd)
        bwd = max(0.0, gather - step_bwd) + grads + (steps - 1) * max(0.0, grads - step_bwd)
        total = (fwd_times + 1) * gather + steps * grads
    else:
        hop = _coll(ctx, "send_recv", 2, kv, stride=stride)
        fwd = max(0.0, (steps - 1) * hop - attn)
        bwd = max(0.0, 2 * (steps - 1) * hop - 2 * attn)
        total = (fwd_times + 2) * (steps - 1) * hop
    exposed = fwd_times * fwd + bwd
    return exposed, total - exposed


def cp_gathered_kv_bytes(f: ModelFacts, p: TrainPlan) -> float:
    """Bytes of other ranks' K/V one layer keeps per micro-batch for its backward pass.

    Under gather_kv (Llama 3's all-gather-based CP) the attention kernel's inputs are the
    gathered full-sequence K/V, and an attention kernel saves its inputs for the backward
    (FlashAttention's FlashAttnFunc.forward: ctx.save_for_backward(q, k, v, out_padded,
    softmax_lse, rng_state), https://github.com/Dao-AILab/flash-attention/blob/v2.6.3/
    flash_attn/flash_attn_interface.py), so the (cp - 1) / cp of the sequence gathered
    from the other ranks stay alive until then, unless the layer is fully recomputed (its
    forward, gather included, rerun in the backward). The paper names no re-gather in the
    backward; this is the plain autograd behaviour. The ring methods keep only the local
    shard: Transformer Engine's AttnFuncWithCP (v1.4 attention.py) rotates K/V again in
    its backward, and PyTorch's context_parallel dispatches the SDPA forward and backward
    aten ops to its own handlers, so autograd saves the local shards and
    _templated_ring_attention_backward gathers them again through a new rotater
    (https://github.com/pytorch/pytorch/blob/0123248a484ffe531edb5098b986c1bac08cd296/
    torch/distributed/tensor/experimental/_attention.py).
    """
    if p.cp <= 1 or p.cp_rotate != "gather_kv" or p.recompute == "full":
        return 0.0
    others = p.micro_batch * p.seq_len * (p.cp - 1) // p.cp
    return others * _cp_kv_per_token(f, p) / p.tp


def _split_accumulation(ctx: _Ctx) -> float:
    """Time factor of the backward FP8 GEMMs: promoted (split) accumulation where the
    framework runs it, on a chip with a calibrated penalty; else 1."""
    if not (ctx.plan.fp8_split_accumulation and ctx.gemm_dtype == "fp8"):
        return 1.0
    return split_accumulator_ratio(load_calibration(), ctx.system.chip.id)


def head_dtype(gemm_dtype: str) -> str:
    """The LM head's GEMM precision: FP8 / FP4 recipes leave it in BF16."""
    return "bf16" if gemm_dtype in ("fp8", "fp4") else gemm_dtype


def _eager_extra_bytes_per_token(f: ModelFacts, moe: bool, p: TrainPlan) -> float:
    """Forward bytes per token of one layer that eager execution adds (EAGER_* above)."""
    m = f.model
    h = f.hidden / (p.tp if p.sequence_parallel else 1)
    qk = (m.num_attention_heads * m.head_dim_qk
          + max(1, m.num_key_value_heads // p.tp) * p.tp * m.head_dim_qk) / p.tp
    if moe:
        inner = (f.top_k * m.moe_intermediate_size + m.shared_intermediate_size) / p.tp
    else:
        inner = m.intermediate_size / p.tp
    glu = EAGER_GLU_EXTRA * inner if m.gated_mlp else 0.0
    return EAGER_NORM_EXTRA * h + EAGER_ROPE_EXTRA * qk + glu


def _routed_elements(f: ModelFacts, p: TrainPlan) -> float:
    """Hidden elements of the (token, expert) rows one rank routes per micro-batch."""
    tokens = p.micro_batch * p.seq_len // p.cp
    local = tokens // p.tp if p.sequence_parallel else tokens
    return float(local * f.top_k * f.hidden)


def _permute_passes(f: ModelFacts, p: TrainPlan) -> int:
    """Token permutation passes of one MoE layer's forward (MOE_PERMUTE_BYTES): gather and
    scatter back, plus the regrouping by local expert and its inverse under expert
    parallelism with several experts per rank, plus the FP8 row padding of dropless
    grouped experts (``_fp8_padding_passes``)."""
    local_experts = f.experts // max(1, p.ep)
    return (2 + (2 if p.ep > 1 and local_experts > 1 else 0)
            + _fp8_padding_passes(p))


def _fp8_padding_passes(p: TrainPlan) -> int:
    """Row-padding passes of one MoE layer's forward that FP8 / FP4 grouped experts add
    under Megatron-Core's all-to-all dispatcher, dropless (MOE_PERMUTE_BYTES each; the
    backward repeats them on the gradients).

    Megatron-Core's TEGroupedMLP under FP8 / FP4 pads every local expert's rows to the
    quantised GEMM's alignment before fc1 and strips the padding from fc2's output
    (``quantization_padding`` / ``quantization_unpadding``, Transformer Engine's Fp8Padding
    and Fp8Unpadding: experts.py at https://github.com/NVIDIA/Megatron-LM/blob/
    92c8482e6dcd11c3666c61bb8d1f7e8d0730ed13/megatron/core/transformer/moe/experts.py,
    the Megatron-LM commit Megatron-Bridge 25.11 pins). Fp8Padding returns its input
    untouched only when every split is already a multiple of the alignment (16 rows, 32
    under MXFP8), which drop-and-pad's fixed capacity gives; dropless routing leaves
    arbitrary per-expert counts, so both become a full copy of the routed BF16 rows
    (``tex.fused_multi_row_padding`` / ``fused_multi_row_unpadding``: read 2 B, write
    2 B a hidden element), and their backwards copy the gradients the other way
    (transformer_engine/pytorch/module/fp8_padding.py and fp8_unpadding.py at
    https://github.com/NVIDIA/TransformerEngine/tree/release_v2.9). Megatron-Bridge 25.11
    runs dropless ("all benchmarks are token-dropless", docs/performance-summary.md at
    https://github.com/NVIDIA-NeMo/Megatron-Bridge/blob/00b7660be0254ac6f95f44164ddd0c3e9cc798ed/docs/performance-summary.md)
    and sets no router padding (``moe_router_padding_for_quantization``, default False,
    which Megatron-Core's MoE README at that commit suggests "for dropless training with
    FP8 precision when num_local_experts > 1" because it "eliminates the explicit padding
    in the GroupedMLP layer"). The fused (DeepEP-style) dispatcher stands for several
    frameworks' expert layers, so it gets no such pass."""
    if p.ep_dispatcher != "alltoall" or p.precision not in ("fp8", "fp4"):
        return 0
    return 2


def _bubble_slots(p: TrainPlan) -> float:
    if p.pp == 1:
        return 0.0
    if p.pp_schedule in ("dualpipe", "zero_bubble"):
        return (p.pp - 1) / 3.0
    if p.vpp == 1:
        return float(p.pp - 1)
    # a group of N < pp micro-batches leaves the first rank idle for pp - N chunk-forwards
    # at each of its vpp - 1 virtual-stage changes in warm-up, and as long in backward at
    # cool-down: (vpp - 1)(pp - N)/vpp stage-slots beyond the interleaved (pp - 1)/vpp
    n = p.pp_group or p.pp
    return ((p.pp - 1) + (p.vpp - 1) * (p.pp - n)) / p.vpp


def _dp_exposed(ctx: _Ctx, per_mb_compute: float, fwd_mb: float, bwd_mb: float,
                params_rank: float, expert_params_rank: float) -> tuple[float, float]:
    """(exposed, hidden) data-parallel communication per step, seconds."""
    p = ctx.plan
    # the gradient group spans dp x cp ranks; its tightest neighbours set the placement
    n = p.dp * p.cp
    stride = min(p.stride("dp"), p.stride("cp")) if p.cp > 1 else p.stride("dp")
    # expert parameters synchronise over their own data-parallel group (edp ranks)
    edp, estride = max(1, (p.dp * p.cp * p.tp) // (p.ep * p.etp)), p.ep * p.etp
    groups = ((n, stride, params_rank), (edp, estride, expert_params_rank))

    def both(op: str, per_param: float) -> float:
        return sum(_coll(ctx, op, g, count * per_param, st) for g, st, count in groups
                   if count)

    grad_b = grad_bytes(p)

    # the unit synchronised last in backward and gathered first in forward (the input
    # embedding's bucket or FSDP unit) waits for no compute: its collectives are exposed
    tail = min(_dp_tail_params(ctx), params_rank)
    reduce_op = "reduce_scatter" if p.zero >= 1 else "all_reduce"
    rs_tail = _coll(ctx, reduce_op, n, tail * grad_b, stride) if tail else 0.0
    ag_tail = _coll(ctx, "all_gather", n, tail * mem.WEIGHT_BYTES, stride) \
        if tail and p.zero >= 1 else 0.0
    if p.zero >= 3 and p.fsdp_regather:
        # FSDP2 resharding after forward: gather weights forward and again backward,
        # reduce-scatter grads, every micro-batch, each overlapped with its compute
        per_mb = (2 * both("all_gather", mem.WEIGHT_BYTES)
                  + both("reduce_scatter", grad_b))
        exposed = max(per_mb - per_mb_compute, rs_tail + ag_tail, 0.0)
        return p.microbatches * exposed, p.microbatches * (per_mb - exposed)
    if p.zero >= 3 and p.fsdp_shard_grads:
        # parameters gathered once a step under the first forward; gradients accumulated
        # in FP32 over the micro-batches that run back to back on a virtual stage and
        # reduce-scattered in FP32 after them (``_grad_syncs``): each sync but the last
        # under the next group's compute, the last - the step's final reduction - under
        # the last micro-batch's backward, as the one reduction of the path below
        syncs = _grad_syncs(p)
        per_sync = both("reduce_scatter", grad_b)
        ag = both("all_gather", mem.WEIGHT_BYTES)
        under = per_mb_compute * p.microbatches / syncs
        if p.dp_overlap:
            rs_exposed = (syncs - 1) * max(per_sync - under, rs_tail, 0.0) \
                + max(per_sync - bwd_mb, rs_tail, 0.0)
        else:
            rs_exposed = syncs * per_sync
        exposed = rs_exposed + max(ag - fwd_mb, ag_tail, 0.0)
        return exposed, syncs * per_sync + ag - exposed
    if p.zero >= 1:
        # distributed optimizer, or FSDP keeping parameters gathered across the step's
        # micro-batches (Llama 3, arXiv 2407.21783 section 3.3.2; torchtitan under PP): one
        # gradient reduce-scatter under the last backward, one weight all-gather under the
        # first forward
        rs, ag = both("reduce_scatter", grad_b), both("all_gather", mem.WEIGHT_BYTES)
    else:
        rs, ag = both("all_reduce", grad_b), 0.0
    # the reduction after the last backward (Megatron-LM 2021's local DDP; FSDP stages under
    # torch.distributed.pipelining) is all exposed; the weight gathers still overlap
    rs_exposed = rs if not p.dp_overlap else max(rs - bwd_mb, rs_tail, 0.0)
    exposed = rs_exposed + max(ag - fwd_mb, ag_tail, 0.0)
    return exposed, rs + ag - exposed


def grad_bytes(p: TrainPlan) -> float:
    """Bytes of one main gradient: FP32, or the BF16 parameter dtype where the framework
    accumulates and reduces in it (``TrainPlan.grad_reduce_fp32``)."""
    return mem.GRAD_BYTES if p.grad_reduce_fp32 else mem.WEIGHT_BYTES


def _grad_syncs(p: TrainPlan) -> int:
    """Gradient reduce-scatters a step under FSDP with sharded gradients
    (``TrainPlan.fsdp_shard_grads``): one per micro-batch without interleaving (a
    micro-batch's backward visits the whole stage), one per group of micro-batches run back
    to back on each virtual stage with it (Llama 3, arXiv 2407.21783 section 3.3.2: FP32
    gradient accumulation over micro-batches and FP32 reduce-scatter; the group trades
    communication against memory)."""
    if p.vpp == 1:
        return p.microbatches
    return math.ceil(p.microbatches / (p.pp_group or p.pp))


def _dp_tail_params(ctx: _Ctx) -> float:
    """Parameters of the data-parallel unit reduced last and gathered first on the first
    pipeline stage: Megatron-Core's gradient bucket holding the input embedding (buckets
    follow the parameters in reverse, at least ``DDP_BUCKET_PARAMS``; a larger parameter is
    a bucket of its own), or FSDP's root unit (embedding, and the LM head without pipeline
    parallelism); 0 when the data-parallel group is one rank."""
    p, f = ctx.plan, ctx.facts
    m = f.model
    if p.dp * p.cp == 1:
        return 0.0
    embedding = m.params_embedding / p.tp
    if p.zero >= 3:
        head = m.params_lm_head / p.tp if p.pp == 1 else 0.0
        return float(embedding + head)
    bucket = max(DDP_BUCKET_PARAMS, DDP_BUCKET_PARAMS_PER_RANK * p.dp * p.cp)
    return float(max(bucket, embedding))


def evaluate_train(system: System, model: ModelSpec, plan: TrainPlan, *, ranks_per_chip: int = 1,
                   check_memory: bool = True, power_limit_w: float | None = None
                   ) -> TrainResult | Infeasible:
    """Step time, throughput, MFU, memory and breakdown of one layout, or why it cannot run.

    ``check_memory=False`` predicts the time of a layout even where the memory model says
    it does not fit (validation of runs that did fit); the result then says so.
    ``power_limit_w``: a board power limit below the TDP, which lowers the sustained clock
    of compute-bound kernels (``Chip.clock_fraction``).
    """
    facts = model_facts(model)
    r = ranks_per_chip
    ranks = system.counts.chips * r
    bad = check_plan(plan, ranks, facts.layers, facts.experts, facts.heads, facts.kv_heads,
                     system.counts.chips_per_domain * r)
    if bad:
        return bad
    chip = system.chip
    if plan.precision not in chip.peak_flop_per_s:
        return Infeasible("precision_unsupported",
                          f"{chip.id} has no dense {plan.precision} peak (it has "
                          f"{', '.join(chip.peak_flop_per_s)}); nothing is costed at another "
                          "precision")
    dtype = plan.precision
    ctx = _Ctx(system, facts, plan, r, dtype, chip.clock_fraction(power_limit_w))
    notes: list[str] = []
    if ctx.clock < 1.0:
        notes.append(f"{power_limit_w:.0f} W power limit: sustained clock "
                     f"{ctx.clock:.2f} of rated")
    memory = _memory(ctx)
    cap = chip.hbm_bytes / r * mem.USABLE_FRACTION
    if memory.total > cap:
        worst = max(memory.to_dict().items(), key=lambda kv: kv[1])
        detail = (f"needs {memory.total / 1e9:.1f} GB per rank, {cap / 1e9:.1f} GB usable; "
                  f"largest: {worst[0]} {worst[1] / 1e9:.1f} GB (over by "
                  f"{(memory.total - cap) / 1e9:.1f} GB)")
        if check_memory:
            return Infeasible("out_of_memory", detail)
        notes.append(f"memory model: {detail}")
    return _timeline(ctx, memory, notes)


def memory_fits(system: System, model: ModelSpec, plan: TrainPlan, *,
                ranks_per_chip: int = 1) -> bool:
    """Does the layout's memory per rank fit the usable HBM (``evaluate_train``'s check,
    without the timeline)? The layout must pass ``check_plan``."""
    chip = system.chip
    ctx = _Ctx(system, model_facts(model), plan, ranks_per_chip, plan.precision)
    return _memory(ctx).total <= chip.hbm_bytes / ranks_per_chip * mem.USABLE_FRACTION


def memory_fits_table(system: System, model: ModelSpec, plan: TrainPlan,
                      zeros: tuple[int, ...], recomputes: tuple[str, ...], *,
                      ranks_per_chip: int = 1) -> dict[tuple[int, str], bool]:
    """``memory_fits`` of ``plan`` at every (ZeRO stage, recompute choice) pair. The memory
    model reads the recompute choice only through the activations it stores
    (``activation_mode``), so each (stage, mode) is computed once."""
    chip, facts = system.chip, model_facts(model)
    cap = chip.hbm_bytes / ranks_per_chip * mem.USABLE_FRACTION
    by_mode: dict[tuple[int, str], bool] = {}
    out = {}
    for z in zeros:
        for rec in recomputes:
            key = (z, activation_mode(rec))
            if key not in by_mode:
                ctx = _Ctx(system, facts, plan.derive(zero=z, recompute=rec), ranks_per_chip,
                           plan.precision)
                by_mode[key] = _memory(ctx).total <= cap
            out[z, rec] = by_mode[key]
    return out


def placement_signature(system: System, plan: TrainPlan, ranks_per_chip: int = 1
                        ) -> tuple[tuple[int, bool, bool], ...]:
    """What the step's costs read of the rank placement (``plan.order``): the placement key
    (``network.placement.placement_key``) of each group whose stride the order sets (TP, CP
    and PP neighbours, the gradient group), clamped as ``_coll`` clamps. Two orders with the
    same signature cost the same step."""
    from superpod.network.placement import placement_key

    p, total = plan, system.counts.chips * ranks_per_chip
    dp_stride = min(p.stride("dp"), p.stride("cp")) if p.cp > 1 else p.stride("dp")
    out = []
    for n, stride in ((p.tp, p.stride("tp")), (2 if p.cp > 1 else 1, p.stride("cp")),
                      (2 if p.pp > 1 else 1, p.stride("pp")), (p.dp * p.cp, dp_stride)):
        if n <= 1:
            out.append((0, True, True))
            continue
        stride = max(1, min(stride, (total - 1) // (n - 1)))
        out.append(placement_key(system, n, stride, ranks_per_chip))
    return tuple(out)


def _runnable(system: System, model: ModelSpec, plan: TrainPlan, r: int
              ) -> Infeasible | None:
    """Why ``plan`` cannot run on ``system`` at ``r`` ranks a chip (None: it can)."""
    facts = model_facts(model)
    bad = check_plan(plan, system.counts.chips * r, facts.layers, facts.experts, facts.heads,
                     facts.kv_heads, system.counts.chips_per_domain * r)
    if bad:
        return bad
    if plan.precision not in system.chip.peak_flop_per_s:
        return Infeasible("precision_unsupported", f"{system.chip.id} has no dense "
                          f"{plan.precision} peak")
    return None


def compute_bound_terms(system: System, model: ModelSpec, plan: TrainPlan, *,
                        ranks_per_chip: int = 1) -> tuple[float, float] | Infeasible:
    """(compute + expert all-to-all, optimizer) seconds of a step, the terms a layout search
    bounds with (``superpod.train.search``), without the memory model."""
    facts = model_facts(model)
    r = ranks_per_chip
    bad = _runnable(system, model, plan, r)
    if bad is not None:
        return bad
    ctx = _Ctx(system, facts, plan, r, plan.precision)
    layers, fwd, bwd = _stage_compute(ctx)
    m = plan.microbatches
    ep = sum(lay.ep_s * n for lay, n in layers)
    return m * (fwd + bwd + ep), _optimizer_s(ctx, *facts.params_per_rank(
        plan.tp, plan.pp, plan.ep, plan.etp))


def bubble_slots(plan: TrainPlan) -> float:
    """Pipeline-bubble length in stage slots (``_bubble_slots``), for search bounds."""
    return _bubble_slots(plan)


def _stage_layers(ctx: _Ctx) -> tuple[int, int]:
    """(dense, MoE) layers on the slowest rank (all its virtual stages)."""
    per_rank = rank_layers(ctx.plan, ctx.facts.layers)
    moe = min(per_rank, ctx.facts.moe_layers)
    return per_rank - moe, moe


_UNIT_CACHE: dict[tuple[Any, ...], tuple[Any, tuple[_Layer, _Layer, float, float]]] = {}


def _stage_units(ctx: _Ctx) -> tuple[_Layer, _Layer, float, float]:
    """(dense layer, MoE layer, LM head seconds, loss seconds) of one micro-batch: what the
    slowest rank's compute is made of, memoised as the layers are (the pipeline shape only
    counts them)."""
    key = _layer_key(ctx, None)
    hit = _UNIT_CACHE.get(key)
    if hit is not None and hit[0][0] is ctx.system and hit[0][1] is ctx.facts:
        return hit[1]
    p, f = ctx.plan, ctx.facts
    tokens = p.micro_batch * p.seq_len // p.cp
    # the last stage carries the LM head, in BF16 even in FP8 runs: FP8 recipes convert the
    # transformer blocks' linear layers only (torchtitan float8.py: module_filter_fn skips
    # "output", https://github.com/pytorch/torchtitan/blob/eaea6f6a2fa940f03a10906be1df3489cf30af85/torchtitan/float8.py;
    # Megatron-Core's output layer is a plain ColumnParallelLinear outside Transformer Engine)
    head_ctx = _Ctx(ctx.system, f, p, ctx.r, head_dtype(ctx.gemm_dtype), ctx.clock)
    head = _gemm_s(head_ctx, f.head_gemms(tokens, p.tp))
    loss = _copy_s(ctx, LOSS_BYTES_PER_LOGIT * tokens * math.ceil(f.model.vocab_size / p.tp))
    out = (_layer(ctx, False), _layer(ctx, True), head, loss)
    if len(_UNIT_CACHE) > 100_000:
        _UNIT_CACHE.clear()
    _UNIT_CACHE[key] = ((ctx.system, ctx.facts), out)
    return out


def _stage_compute(ctx: _Ctx) -> tuple[list[tuple[_Layer, int]], float, float]:
    """The slowest rank's layers (with counts) and its forward and backward compute per
    micro-batch, LM head and loss included."""
    dense_n, moe_n = _stage_layers(ctx)
    dense, moe, head, loss = _stage_units(ctx)
    layers = [(dense, dense_n), (moe, moe_n)]
    fwd = sum(lay.fwd_s * n for lay, n in layers) + head + loss * LOSS_FWD_SHARE
    bwd = sum(lay.bwd_s * n for lay, n in layers) + 2 * head + loss * (1 - LOSS_FWD_SHARE)
    return layers, fwd, bwd


def _optimizer_s(ctx: _Ctx, params_rank: float, expert_rank: float) -> float:
    p = ctx.plan
    shard = p.dp * p.cp if p.zero >= 1 else 1
    return _copy_s(ctx, (params_rank + expert_rank) * OPTIMIZER_BYTES_PER_PARAM / shard)


@dataclass(frozen=True)
class _Shared:
    """The part of a step's timeline that no ZeRO stage changes: per micro-batch compute,
    recompute and exposed communication of the slowest rank, the pipeline's slot, the
    micro-batch count and the parameters per rank."""

    layers: list[tuple[_Layer, int]]
    fwd: float
    bwd: float
    rec: float
    comm: dict[str, float]
    pp_p2p: float
    pp_hidden: float
    slot: float
    m: int
    params_rank: float
    expert_rank: float


def _shared(ctx: _Ctx) -> _Shared:
    p, f = ctx.plan, ctx.facts
    layers, fwd, bwd = _stage_compute(ctx)
    tokens = p.micro_batch * p.seq_len // p.cp
    rec = sum(lay.recompute_s * n for lay, n in layers)
    comm = {k: sum(getattr(lay, f"{k}_s") * n for lay, n in layers) for k in ("tp", "cp", "ep")}
    pp_p2p = pp_hidden = 0.0
    if p.pp > 1:
        act = tokens * f.hidden * ACT_BYTES / (p.tp if p.sequence_parallel else 1)
        hop = _coll(ctx, "send_recv", 2, act, stride=p.stride("pp"))
        if p.vpp > 1:
            # every virtual stage hands its activations on forward and its gradients back
            # (Narayanan et al. SC'21: interleaving multiplies the messages by vpp), sent
            # asynchronously under the next chunk's compute (Megatron-LM's
            # overlap_p2p_comm, on by default for interleaved schedules:
            # https://github.com/NVIDIA/Megatron-LM/blob/main/megatron/training/arguments.py
            # --no-overlap-p2p-communication); only the excess over a chunk is exposed
            pp_p2p = p.vpp * (max(0.0, hop - fwd / p.vpp) + max(0.0, hop - bwd / p.vpp))
            pp_hidden = 2 * p.vpp * hop - pp_p2p
        else:
            pp_p2p = 2 * hop  # 1F1B: blocking send / receive between steps
    slot = fwd + bwd + rec + sum(comm.values()) + pp_p2p
    params_rank, expert_rank = f.params_per_rank(p.tp, p.pp, p.ep, p.etp)
    return _Shared(layers, fwd, bwd, rec, comm, pp_p2p, pp_hidden, slot, p.microbatches,
                   params_rank, expert_rank)


def _breakdown(ctx: _Ctx, sh: _Shared) -> dict[str, float]:
    """The step's terms (they add up to the step time) for ``ctx.plan``'s ZeRO stage."""
    p, m = ctx.plan, sh.m
    dp, dp_hidden = _dp_exposed(ctx, sh.fwd + sh.bwd + sh.rec, sh.fwd, sh.bwd, sh.params_rank,
                                sh.expert_rank)
    hidden = m * (sum(lay.hidden_s * n for lay, n in sh.layers) + sh.pp_hidden) + dp_hidden
    opt = _optimizer_s(ctx, sh.params_rank, sh.expert_rank)
    bubble = _bubble_slots(p) * sh.slot
    return {
        "compute": m * (sh.fwd + sh.bwd), "recompute": m * sh.rec,
        "tp_comm": m * sh.comm["tp"], "cp_comm": m * sh.comm["cp"],
        "ep_comm": m * sh.comm["ep"], "pp_comm": m * sh.pp_p2p, "pipeline_bubble": bubble,
        "dp_comm": dp, "optimizer": opt, "overlap_interference": COMM_SM_SHARE * hidden,
    }


def step_times_by_zero(system: System, model: ModelSpec, plan: TrainPlan,
                       zeros: tuple[int, ...], *, ranks_per_chip: int = 1
                       ) -> dict[int, float] | Infeasible:
    """The step time of ``plan`` at each ZeRO stage of ``zeros``, seconds: exactly
    ``evaluate_train(..., check_memory=False).step_time_s`` of the plan with that stage (the
    same arithmetic), the timeline the stages share costed once (the layout search).
    ``plan`` must be valid; ``zeros`` ZeRO stages (0-3)."""
    facts = model_facts(model)
    r = ranks_per_chip
    bad = _runnable(system, model, plan, r)
    if bad is not None:
        return bad
    chip = system.chip
    ctx = _Ctx(system, facts, plan, r, plan.precision, chip.clock_fraction(None))
    sh = _shared(ctx)
    out: dict[int, float] = {}
    for z in zeros:
        # ZeRO-1 and ZeRO-2 read the same terms (the same reduce-scatter, all-gather and
        # sharded optimizer; only memory differs): one is costed for both
        twin = {1: 2, 2: 1}.get(z)
        if twin in out:
            out[z] = out[twin]
            continue
        zctx = ctx if z == plan.zero else _Ctx(system, facts, plan.derive(zero=z), r,
                                               ctx.gemm_dtype, ctx.clock)
        out[z] = sum(_breakdown(zctx, sh).values())
    return out


def dp_floor_s(system: System, model: ModelSpec, plan: TrainPlan, orders: list[str],
               zeros: tuple[int, ...], *, ranks_per_chip: int = 1) -> dict[int, float]:
    """For each ZeRO stage of ``zeros``: a lower bound, seconds, on the data-parallel share
    of the step (exposed data-parallel communication plus the overlap interference of its
    hidden part) of ``plan`` placed in any of ``orders``, under any recompute choice and TP
    overlap (the layout search). The share reads neither the overlap nor, below ZeRO 3 or
    without re-gathering, the recompute choice, so the bound is then the least exact value;
    re-gathering FSDP hides its traffic under each micro-batch's compute, which recompute
    lengthens by at most the forward: the bound takes that longest compute. ``plan`` must
    pass ``check_plan``."""
    facts = model_facts(model)
    ctx = _Ctx(system, facts, plan, ranks_per_chip, plan.precision,
               system.chip.clock_fraction(None))
    _, fwd, bwd = _stage_compute(ctx)
    params_rank, expert_rank = facts.params_per_rank(plan.tp, plan.pp, plan.ep, plan.etp)
    # the share reads the order only through the gradient group's placement (the dp and cp
    # strides): one order per placement
    placed: dict[tuple[int, int], str] = {}
    for o in orders:
        q = plan.derive(order=o)
        placed.setdefault((q.stride("dp"), q.stride("cp")), o)
    out: dict[int, float] = {}
    for z in zeros:
        twin = {1: 2, 2: 1}.get(z)  # ZeRO-1 and ZeRO-2: the same terms
        if twin in out:
            out[z] = out[twin]
            continue
        best = math.inf
        for o in placed.values():
            zctx = _Ctx(system, facts, plan.derive(zero=z, order=o), ranks_per_chip,
                        ctx.gemm_dtype, ctx.clock)
            exposed, hidden = _dp_exposed(zctx, 2 * fwd + bwd, fwd, bwd, params_rank,
                                          expert_rank)
            best = min(best, exposed + COMM_SM_SHARE * hidden)
        out[z] = best
    return out


def _timeline(ctx: _Ctx, memory: mem.MemoryBreakdown, notes: list[str]) -> TrainResult:
    p, f, s = ctx.plan, ctx.facts, ctx.system
    breakdown = _breakdown(ctx, _shared(ctx))
    step = sum(breakdown.values())
    tokens_step = p.global_batch * p.seq_len
    chips = s.counts.chips
    peaks: dict[str, float] = {str(k): v for k, v in s.chip.peak_flop_per_s.items()}
    peak = peaks.get(p.precision) or peaks[ctx.gemm_dtype]
    mfu = f.model_flops_per_token(p.seq_len) * tokens_step / step / (chips * peak)
    # HFU: MFU's FLOPs plus what recomputation executes again, counted in the same
    # convention (the MFU convention counts the full score matrix, the kernels a causal half;
    # a ratio of hardware FLOPs keeps HFU >= MFU, equal without recomputation)
    hfu = mfu * (f.hardware_flops_per_token(p.seq_len, p.recompute)
                 / f.hardware_flops_per_token(p.seq_len, "none"))
    return TrainResult(system=s.spec.id, model=f.name, chips=chips, plan=p, step_time_s=step,
                       tokens_per_s=tokens_step / step, mfu=mfu, hfu=hfu, memory=memory,
                       breakdown_s=breakdown, notes=tuple(notes))


@lru_cache(maxsize=256)
def _saved(modules: str, probs_in_act: bool, fp8_store: bool) -> ops.SavedActivations:
    return ops.SavedActivations(frozenset(filter(None, modules.split(","))), probs_in_act,
                                fp8_store)


def saved_activations(p: TrainPlan) -> ops.SavedActivations:
    """What the plan's stack discards or narrows among the saved activations."""
    return _saved(p.recompute_modules, p.moe_probs_in_act, p.act_fp8_store)


def _memory(ctx: _Ctx) -> mem.MemoryBreakdown:
    p, f = ctx.plan, ctx.facts
    params_rank, expert_rank = f.params_per_rank(p.tp, p.pp, p.ep, p.etp)
    w, g, o = mem.state_bytes(params_rank, p.dp * p.cp, p.zero, grad_bytes(p))
    edp = max(1, (p.dp * p.cp * p.tp) // (p.ep * p.etp))
    we, ge, oe = mem.state_bytes(expert_rank, edp, p.zero, grad_bytes(p))
    dense_n, moe_n = _stage_layers(ctx)
    per_layer = f.activation_bytes(p.seq_len // p.cp, p.micro_batch, p.tp,
                                   p.sequence_parallel, p.recompute,
                                   fp8=ctx.gemm_dtype in ("fp8", "fp4"), saved=saved_activations(p))
    per_layer += cp_gathered_kv_bytes(f, p)
    held = mem.in_flight_microbatches(p.pp, p.vpp, p.microbatches, p.pp_schedule,
                                      p.pp_group)
    acts = per_layer * (dense_n + moe_n) * held
    if p.edge_slots:
        # the first rank holds one layer fewer (its first virtual stage is the embedding);
        # the second holds them all, two chunk-forwards fewer in flight (its warm-up)
        warm = mem.warmup_microbatches(p.pp, p.vpp, p.pp_schedule, p.pp_group)
        second = min(max(0.0, warm - (2.0 / p.vpp if p.vpp > 1 else 1.0)),
                     float(p.microbatches))
        acts = per_layer * max((dense_n + moe_n - 1) * held, (dense_n + moe_n) * second)
    if p.pp_schedule == "dualpipe":  # both pipeline directions hold the stage's weights
        w, we = 2 * w, 2 * we
    if p.zero >= 3 and p.fsdp_regather:  # one gathered layer (and the next) in flight
        w += 2 * f.largest_layer_params(p.tp, p.ep, p.etp) * mem.WEIGHT_BYTES
    elif p.zero >= 3:
        # parameters kept gathered across the step, gradients accumulated unsharded in the
        # parameter dtype until the one reduce-scatter (FSDP2 without gradient sync)
        w += (params_rank + expert_rank) * mem.WEIGHT_BYTES
        if not p.fsdp_shard_grads:
            g += (params_rank + expert_rank) * mem.WEIGHT_BYTES
        elif p.vpp > 1:  # one virtual stage's FP32 accumulation buffer until its sync
            g += (params_rank + expert_rank) / p.vpp * grad_bytes(p)
    return mem.MemoryBreakdown(weights=w + we, gradients=g + ge, optimizer=o + oe,
                               activations=acts, workspace=mem.WORKSPACE_BYTES)


def evaluate_or_raise(system: System, model: ModelSpec, plan: TrainPlan, **kw: Any
                      ) -> TrainResult:
    res = evaluate_train(system, model, plan, **kw)
    if isinstance(res, Infeasible):
        raise SpecError(f"infeasible ({res.reason}): {res.detail}", field="plan")
    return res
