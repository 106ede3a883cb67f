"""Time of one serving iteration (a prefill forward, or one decode step) on one instance.

Per layer, on the busiest rank of a stage (``b`` sequences of its data-parallel group,
``T = b q`` tokens: q = prompt length in prefill, 1 + mtp in decode):

* GEMMs (``workload.ops.layer_gemms``; routed experts below): the calibrated roofline of
  ``compute.kernels`` - ``max(2mnk / (P e q_wave) + waves c_tile, bytes / B_copy) + t0`` - with
  the weight bytes of the stored format, so a small-``m`` GEMM is bound by streaming its
  weights; a GEMM the checkpoint keeps in BF16 beside lower-precision ones
  (``InferOptions.bf16_gemms``: the MLA projections of NVIDIA's NVFP4 DeepSeek checkpoints)
  streams 2-byte weights and runs on the 16-bit tensor cores. Routed experts run as one
  grouped GEMM over the ``f E / ep`` local experts that receive tokens (f = 1 - (1 -
  k/E)^(T_group / replicas), uniform routing), ``T dp k / ep`` token-expert pairs a rank
  times the busiest rank's excess ``gamma`` (``infer.imbalance``:
  measured, by EP size, with or without EPLB; in prefill with a per-prompt term over the
  ``b ep / tp`` prompts of the EP group's micro-batch), weights read once per active expert.
  Each expert's rows pad to the tile: the one of the calibrated and half-height tiles that
  pads less, or where the experts run through ``triton_kernels`` ``matmul_ogs`` (MXFP4 on a
  chip without FP4 MMA) the library's own ``block_m`` (``triton_moe_block_m``).
* attention: prefill is compute-bound, ``ops.attention_core_flops`` (causal) at the chip's
  calibrated flash-attention efficiency of its BF16 peak; decode takes the larger of its
  FLOPs and streaming the KV cache, ``b x L x (KV bytes per token per layer)`` over the copy
  bandwidth. MLA decodes in the absorbed form (DeepSeek-V2 §2.1.2; FlashMLA): every head
  attends over the 512 + 64 latent, ``2 q L H (2 r_kv + d_r)`` FLOPs - compute-bound on
  Hopper at serving batches, while MHA / GQA decode is memory-bound. With
  ``InferOptions.fp8_mla_decode`` over an FP8 latent cache on a chip with FP4 tensor cores
  those FLOPs run on the FP8 tensor cores (``config.decode_attention_dtype``), at the
  measured FP8 / BF16 speed-up of TensorRT-LLM's attention kernels
  (``FP8_ATTENTION_SPEEDUP``).
* element-wise work (norms, residual adds, activation function, MoE permutation): the bytes
  it streams over the copy bandwidth - 10 h-wide BF16 passes a token (two RMSNorms read and
  write 4h, two residual adds 6h), 1.5 x the fc1 output (SwiGLU reads it, writes half) and
  2 x h per token-expert pair (permute, un-permute).
* shared experts at EP larger than the routed-expert count (``infer.expert_placement``;
  DeepSeek-V3 §3.4 decode, CloudMatrix-Infer EP320): replicas on ranks of their own, served
  like a routed expert every token selects - no shared-expert GEMM on the attention ranks,
  ``k + 1`` dispatch destinations a token, the busiest expert rank the slower of a routed one
  (``T k gamma / (ep - S)`` rows) and a shared one (``T / S``).
* tensor parallel: two all-reduces of ``T h`` BF16 per layer (Megatron) on the TP group;
* expert parallel: dispatch (8-bit when the weights are) + combine (BF16) per MoE layer via
  ``network.collectives`` (DeepEP-style kernels on the real topology) for every token the
  rank holds. DeepEP's normal (prefill) kernels send a token once per destination scale-up
  domain over RDMA and fan out over NVLink (DeepEP README, "asymmetric-domain bandwidth
  forwarding"); that per-domain de-duplication is the network model's
  (``network.expert_parallel.ep_traffic``, fitted to the README's internode table at its own
  4,096 tokens a rank), so the engine passes the tokens as they are. At 8,192 tokens a rank
  (one prefill micro-batch of DeepSeek's profile) on 4 H800 nodes that is
  ``8192 x 4(1 - (3/4)^8) x 7168 B x (1 / 58 + 2 / 57 GB/s) ~ 11 ms`` a MoE layer
  (https://github.com/deepseek-ai/DeepEP/blob/de8cfca3cf86464c856f0e393f6a17359ff28c70/README.md,
  internode EP32: 58 GB/s dispatch, 57 GB/s combine RDMA bandwidth).
  The busiest expert rank receives and returns ``gamma`` x the mean rows: the bandwidth
  part scales by it (the exchange's slope in tokens below the rank's own, in the same kernel
  mode), the kernels' fixed latency does not.
* TensorRT-LLM's attention-DP MoE (``InferOptions.moe_allgather``): where the EP degree is at
  most the experts a token selects (``moe_ep_size <= top_k``) no all-to-all is enabled
  (``CutlassFusedMoE.enable_alltoall``; ``runtime.TRTLLM_MOE_ALLGATHER``):
  every EP rank all-gathers the DP ranks' tokens (quantised first where the format allows:
  ``InferOptions.allgather_bytes``) and reduce-scatters its BF16 expert outputs - an NCCL
  ``all_gather`` of ``T ep h`` elements and a ``reduce_scatter`` of ``T ep h`` BF16 per MoE
  layer, the same on every rank (no ``gamma``: each receives every token).
* CUDA graphs (``InferOptions.graph_batch_sizes``; TensorRT-LLM ``enable_padding``): a
  decode step of ``b`` sequences a rank runs as the next captured batch - the padded rows
  cost what real ones do and generate nothing.
* two-batch overlap (DeepSeek's inference system, Day-6 write-up; SGLang TBO): the batch is
  split in two micro-batches and one's communication runs under the other's compute:
  ``t = sqrt((2 compute(b/2) + s)^2 + (2 comm(b/2))^2)`` - a soft maximum, as a layer's
  stages never pair off exactly - where ``s`` is the compute lost to the compute units the
  communication kernels hold (``COMM_UNIT_FRACTION``; in prefill with DeepEP's normal
  kernels the units are partitioned for the whole layer, ``PREFILL_PARTITION_FRACTION``:
  compute runs on 108 of 132 SMs throughout, DeepSeek's profile-data). It re-reads the
  weights once per micro-batch, so it loses at small batches; ``None`` picks the faster,
  as frameworks do.
* MTP (DeepSeek-V3 §2.2): each decode step verifies ``1 + mtp`` positions a sequence and
  runs the MTP block (one MoE layer + the shared head) ``mtp`` times on ``b`` tokens; the
  sequence gains ``1 + a + ... + a^mtp`` tokens (``InferOptions.tokens_per_step``).
* pipeline (``pp``): ``pp`` micro-batches in flight; each stage runs its layers for one
  micro-batch of ``B / (dp pp)`` sequences and sends ``T h`` BF16 on; an iteration (every
  sequence advanced once) takes ``pp`` stage times.

The breakdown (GEMM compute, weight streaming, attention compute, KV streaming, element-wise,
exposed TP / EP / PP communication) adds up to the iteration time.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from superpod.compute import kernels
from superpod.compute.calibration import CalibrationFile, gemm_entry, load_calibration
from superpod.errors import Infeasible, SpecError
from superpod.hardware.specs import Chip
from superpod.hardware.system import System
from superpod.infer import memory as mem
from superpod.infer.config import (
    GEMM_FORMATS,
    NATIVE_NEEDS,
    WEIGHT_BYTES,
    InferOptions,
    ServingLayout,
    attention_dtype,
    check_layout,
    decode_attention_dtype,
    gemm_dtype,
    native_gemm,
)
from superpod.infer.expert_placement import shared_expert_ranks
from superpod.network.collectives import CollectiveRequest, collective
from superpod.network.expert_parallel import LOW_LATENCY_MAX_TOKENS
from superpod.trust.holdout import excluded
from superpod.workload import ops
from superpod.workload.model import ModelSpec

ACT_BYTES = 2.0  #: BF16 activations between layers and on the wire (TP, PP, combine)
ELEMENTWISE_PASSES_H = 10.0  #: h-wide BF16 reads + writes per token per layer (docstring)
FC1_ELEMENTWISE = 1.5  #: activation function: read the fc1 output, write half of it
PERMUTE_PASSES_H = 2.0  #: MoE permute + un-permute, h-wide per token-expert pair
SPLIT_K_MIN = 256  #: smallest k slice of a split-K GEMM
#: rows of the half-height tile a GEMM runs where it pads fewer rows than the calibrated
#: tile (Hopper's smallest wgmma M; cuBLAS and CUTLASS pick such tiles for skinny shapes)
SMALL_M_TILE = 64
#: tile rows of OpenAI's ``triton_kernels`` ``matmul_ogs`` (the grouped GEMM of MXFP4 experts
#: where the chip has no FP4 MMA: TensorRT-LLM's TRITON MoE backend on Hopper, config
#: docstring): ``block_m = max(16, min(next_power_of_2(tokens_per_expt), 128))`` with
#: ``tokens_per_expt = m // n_expts_tot`` - ``m`` the gathered gate slots (tokens x top-k),
#: ``n_expts_tot`` the rank's local experts (``TritonEPRouter`` passes ``n_expts_local``); one
#: block size for every expert, each padded to a multiple of it
#: (https://github.com/triton-lang/triton/blob/v3.5.0/python/triton_kernels/triton_kernels/
#: matmul_ogs_details/opt_flags.py, ``make_default_opt_flags_nvidia``; TensorRT-LLM pins
#: ``triton==3.5.0``, requirements.txt; https://github.com/NVIDIA/TensorRT-LLM/blob/
#: 03e27c7d5ff0c6e89f8328838c0a8e64f1b34f9d/tensorrt_llm/_torch/modules/fused_moe/
#: fused_moe_triton.py). Below SMALL_M_TILE the model keeps its own smallest tile (it costs
#: no sub-wgmma tiles).
TRITON_MOE_MAX_BLOCK_M = 128
TRITON_MOE_MIN_BLOCK_M = 16


def triton_moe_block_m(tokens_per_expert: float) -> int:
    """``matmul_ogs``'s tile rows for ``tokens_per_expert`` gate slots an expert (the
    integer ``m // n_expts_tot`` of ``opt_flags``; ``TRITON_MOE_MAX_BLOCK_M``)."""
    tpe = max(1, int(tokens_per_expert))
    return max(TRITON_MOE_MIN_BLOCK_M,
               min(1 << (tpe - 1).bit_length(), TRITON_MOE_MAX_BLOCK_M))
#: share of the compute units communication kernels hold while they run: DeepSeek-V3
#: (arXiv 2412.19437 §3.2.2) runs its all-to-all on 20 of the H800's 132 SMs, DeepEP's
#: normal kernels default to the same; its low-latency (decode) kernels hold none (hook-based
#: receive, DeepEP README). Taken for every chip.
COMM_UNIT_FRACTION = 20 / 132
SM_COMM = "_holds_units"
#: prefill two-batch overlap with DeepEP's normal kernels partitions the compute units for
#: the whole layer: DeepSeek's inference profile runs computation on 108 and communication
#: on 24 of the H800's 132 SMs (github.com/deepseek-ai/profile-data, commit 449602428a1b,
#: README "Prefilling" and assets/prefill.jpg: "Computation 108 SMs / Communication 24
#: SMs"). The communication stream is never idle - a micro-batch's dispatch or combine is
#: launched as the other's compute starts and busy-waits until its peers' data arrive (the
#: lmsys large-scale-EP blog, "Detail Breakdown": both DeepSeek's and SGLang's prefill
#: communication take longer than DeepEP's unit test, which they reach only with TBO off) -
#: so the grouped GEMMs (DeepGEMM, persistent kernels sized to the SMs they are given) and
#: attention run on 108 SMs throughout. Taken for every chip as this share of its units.
PREFILL_PARTITION_FRACTION = 24 / 132
SM_PARTITION = "_partitions_units"
#: EP inside one scale-up domain rides the scale-up links, never the NIC: DeepEP's
#: low-latency kernels on one NVLink domain write over NVLink (DeepEP README, "NVLink
#: domain"; TensorRT-LLM blog 18, one-sided all-to-all over NVLink on NVL72). Until the
#: network model has an NVLink-aware low-latency path, decode-sized EP inside one domain is
#: asked for the two-tier kernel, whose intra-domain traffic is costed on the scale-up
#: fabric (the seam: change this one name when ``network.expert_parallel`` gains it).
INTRA_DOMAIN_EP_ALGORITHM = "normal"
#: FP8 over BF16 attention-kernel throughput where the math runs on the FP8 tensor cores:
#: TensorRT-LLM's trtllm-gen kernels on B200, 1,523.57 against 1,029.13 TFLOP/s (16k keys,
#: 64 query / 4 KV heads, head dim 128, batch 1; 1,621 / 1,038 at 64k) - not the 2x of the
#: peaks (https://github.com/NVIDIA/TensorRT-LLM/blob/0cedc79224f3e8f7afad29b7c6ede012a355d25e/
#: docs/source/blogs/tech_blog/blog16_Accelerating_Long_Context_Inference_with_Skip_Softmax_
#: Attention.md, "Prefill Baseline"). Taken for MLA decode, a compute-bound MQA of the same
#: kernel family (``InferOptions.fp8_mla_decode``).
FP8_ATTENTION_SPEEDUP = 1523.57 / 1029.13
COMPUTE_PARTS = ("gemm_compute", "weight_memory", "attention_compute", "kv_memory",
                 "elementwise")
COMM_PARTS = ("tp_comm", "ep_comm")
BREAKDOWN_KEYS = (*COMPUTE_PARTS, *COMM_PARTS, "pp_comm")


@dataclass(frozen=True)
class Iteration:
    """One prefill forward or one decode step of an instance."""

    phase: str  #: prefill | decode
    batch: int  #: sequences in the instance
    context: float  #: prefill: prompt length; decode: KV length attended to
    time_s: float
    tokens_processed: float  #: token positions through the model (prefill B I; decode B q)
    tokens_generated: float  #: prefill: B first tokens; decode: B x tokens_per_step
    breakdown_s: dict[str, float]
    memory: mem.ServingMemory
    max_batch: int  #: largest batch that fits at this context
    two_batch_overlap: bool
    layout: ServingLayout
    options: InferOptions
    notes: tuple[str, ...] = field(default=())

    @property
    def bound(self) -> str:
        """The largest part of the breakdown."""
        return max(self.breakdown_s.items(), key=lambda kv: kv[1])[0]

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "batch": self.batch, "context": self.context,
                "time_s": self.time_s, "tokens_processed": self.tokens_processed,
                "tokens_generated": self.tokens_generated,
                "breakdown_s": dict(self.breakdown_s), "bound": self.bound,
                "memory_bytes_per_rank": self.memory.total,
                "memory_breakdown_bytes": self.memory.to_dict(),
                "max_batch": self.max_batch, "two_batch_overlap": self.two_batch_overlap,
                "layout": self.layout.to_dict(), "options": self.options.to_dict(),
                "notes": list(self.notes)}


Parts = dict[str, float]


def attention_efficiency(chip: Chip, cal: CalibrationFile) -> float:
    """Flash-attention efficiency a serving engine reaches: the chip's best calibrated
    kernel, but never below the documented default - engines run their own tuned kernels
    (TensorRT-LLM FMHA, FlashInfer, FlashMLA), and a chip whose only calibration is a kernel
    not tuned for it (FlashAttention-2 on Blackwell, marked a floor) is not held to it."""
    return max(kernels.attention_efficiency(chip, "auto", cal),
               cal.defaults.attention_efficiency)


def _add(into: Parts, other: Parts, times: float = 1.0) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0.0) + v * times


class _Engine:
    """Costs of one (system, model, layout, options), memoised by shape."""

    def __init__(self, system: System, model: ModelSpec, layout: ServingLayout,
                 opts: InferOptions) -> None:
        self.system, self.model, self.layout, self.opts = system, model, layout, opts
        self.chip = system.chip
        self.r = layout.ranks_per_chip
        self.cal = load_calibration()
        self.dtype = gemm_dtype(self.chip, opts.precision, opts.weight_only)
        self.fit = kernels.gemm_fit(self.chip, self.dtype, self.cal)
        self.head_fit = kernels.gemm_fit(self.chip, attention_dtype(self.chip), self.cal)
        self.bw = kernels.copy_bandwidth(self.chip, self.cal)[0] / self.r
        self.attn_flop_per_s = (kernels.peak_for(self.chip, attention_dtype(self.chip))
                                * attention_efficiency(self.chip, self.cal) / self.r)
        #: decode attention: FP8 MQA where the runtime runs it (``fp8_mla_decode``), at the
        #: measured FP8 / BF16 speed-up of TensorRT-LLM's attention kernels
        fp8 = decode_attention_dtype(self.chip, model, opts) == "fp8"
        self.decode_attn_flop_per_s = self.attn_flop_per_s * (
            FP8_ATTENTION_SPEEDUP if fp8 else 1.0)
        self.kv_elems = mem.kv_elements_per_token_layer_rank(model, layout.tp)
        self.imbalance = opts.imbalance(model, layout)
        #: ranks serving the shared expert as a routed one (0: every rank runs it)
        self.shared_ranks = shared_expert_ranks(model, layout.ep)
        first_dense = next((i for i in range(model.num_hidden_layers)
                            if not model.is_moe_layer(i)), None)
        first_moe = next((i for i in range(model.num_hidden_layers)
                          if model.is_moe_layer(i)), None)
        per_stage = mem.stage_layers(model, layout.pp)
        moe_n = min(per_stage, model.num_moe_layers)
        self.layers = [(i, n) for i, n in ((first_dense, per_stage - moe_n), (first_moe, moe_n))
                       if i is not None and n > 0]
        self.mtp_layer = (model.num_hidden_layers
                          if opts.mtp and model.num_nextn_predict_layers else None)
        self._gemm: dict[tuple[float, ...], tuple[float, float]] = {}
        self._coll: dict[tuple[Any, ...], float] = {}
        self._gamma: dict[float, float] = {}
        self._shapes: dict[int, list[tuple[int, int, float, bool]]] = {}
        consts = {}
        for head, dtype, fit in ((False, self.dtype, self.fit),
                                 (True, attention_dtype(self.chip), self.head_fit)):
            a_el = kernels.BYTES_PER_ELEMENT[dtype]
            consts[head] = (fit, a_el, kernels.OUTPUT_BYTES.get(dtype, a_el),
                            kernels.peak_for(self.chip, dtype) / self.r)
        self._gemm_consts = consts
        self._stage: dict[tuple[Any, ...], tuple[Parts, Parts]] = {}
        self.iterations: OrderedDict[tuple[Any, ...], Iteration | Infeasible] = OrderedDict()
        self.calibrated = gemm_entry(self.cal, self.chip.id, self.dtype) is not None
        #: routed experts run through ``triton_kernels`` ``matmul_ogs``: MXFP4 weights on a
        #: chip without their native MMA (TensorRT-LLM's TRITON backend; config docstring)
        self.triton_moe = opts.precision in NATIVE_NEEDS and not native_gemm(
            self.chip, opts.precision)

    # ------------------------------------------------------------------ kernels

    def gemm(self, m: float, n: int, k: int, count: float, w_bytes: float,
             head: bool = False, tile_m: int | None = None) -> tuple[float, float]:
        """(seconds, share of it due to memory) of ``count`` (m x k)(k x n) GEMMs run as one
        grouped kernel: ``compute.kernels.gemm``'s terms with explicit weight bytes, joined
        as ``sqrt(t_compute^2 + t_memory^2) + t0``. ``head``: on the 16-bit tensor cores
        (the LM head, and weights the checkpoint keeps in BF16). ``tile_m``: the rows of
        the tile the kernel library picks itself (``triton_moe_block_m``), bounded by the
        calibrated tile and ``SMALL_M_TILE``; None: the tile that pads less."""
        key = (m, n, k, count, w_bytes, head, tile_m or 0)
        hit = self._gemm.get(key)
        if hit is not None:
            return hit
        fit, a_el, out_el, peak = self._gemm_consts[head]
        # grouped wave quantization over all groups' output tiles; a GEMM with fewer tiles
        # than compute units splits k (split-K / stream-K, as cuBLAS and CUTLASS do) in
        # slices of at least SPLIT_K_MIN until the units are busy
        tm, tn = fit.tile
        if tile_m is not None:
            tm = max(min(tm, SMALL_M_TILE), min(tm, tile_m))
        elif tm > SMALL_M_TILE and (math.ceil(m / SMALL_M_TILE) * SMALL_M_TILE
                                    < math.ceil(m / tm) * tm):
            tm = SMALL_M_TILE  # the half-height tile pads less
        units = fit.compute_units
        tiles = count * math.ceil(max(m, 1e-9) / tm) * math.ceil(n / tn)
        split = max(1, min(int(units // max(tiles, 1e-9)), k // SPLIT_K_MIN))
        w = max(1, math.ceil(tiles * split / units - 1e-9))
        q = count * m * n * split / (w * units * tm * tn)
        t_compute = 2.0 * m * n * k * count / (peak * fit.e_max * q) \
            + w * fit.tile_overhead_s * self.r
        t_memory = count * (a_el * m * k + w_bytes * k * n + out_el * m * n) / self.bw
        # smooth roofline: near the ridge neither pipe is saturated while the other works
        # (checked against DeepGEMM's H800 table, tests/test_infer.py)
        both = math.hypot(t_compute, t_memory)
        res = (both + fit.overhead_s, t_memory**2 / both**2 if both > 0 else 0.0)
        self._gemm[key] = res
        return res

    def coll(self, op: str, ranks: int, nbytes: float = 0.0, **ep: Any) -> float:
        if ranks <= 1:
            return 0.0
        key = (op, ranks, nbytes, tuple(sorted(ep.items())))
        hit = self._coll.get(key)
        if hit is None:
            stride = ep.pop("stride", 1)
            req = CollectiveRequest(op=op, ranks=ranks, bytes_=nbytes, ranks_per_chip=self.r,
                                    stride=stride, **ep)
            hit = self._coll[key] = _collective_s(self.system, req)
        return hit

    # ------------------------------------------------------------------ one layer

    @staticmethod
    def _gemm_parts(parts: Parts, t: float, memory_share: float) -> None:
        parts["weight_memory"] = parts.get("weight_memory", 0.0) + t * memory_share
        parts["gemm_compute"] = parts.get("gemm_compute", 0.0) + t * (1.0 - memory_share)

    def gamma(self, b: float, prefill: bool) -> float:
        """Busiest expert rank's excess for a micro-batch of ``b`` sequences a DP group: in
        prefill with the per-prompt term of ``infer.imbalance`` (the EP group's micro-batch
        holds ``b ep / tp`` prompts), else the engine's."""
        lay = self.layout
        if not prefill or self.opts.ep_imbalance is not None or self.imbalance <= 1.0:
            return self.imbalance
        hit = self._gamma.get(b)
        if hit is None:
            prompts = b * max(1.0, lay.ep / lay.tp)
            hit = self._gamma[b] = self.opts.imbalance(self.model, lay, prompts=prompts)
        return hit

    def _experts(self, layer: int, tokens: float, parts: Parts, gamma: float) -> float:
        """Routed-expert grouped GEMMs on the busiest expert rank; returns its pairs."""
        m, lay = self.model, self.layout
        e, k = m.n_routed_experts, m.num_experts_per_tok
        group_tokens = tokens * lay.dp  # the stage's tokens (tp ranks share a group's)
        routed_ranks = lay.ep - self.shared_ranks
        # each expert rank works on 1/etp slices of the pairs its experts receive
        pairs = group_tokens * k / routed_ranks * gamma
        if self.shared_ranks:  # shared-expert replicas on ranks of their own
            shared_rows = group_tokens / self.shared_ranks
            width = m.shared_intermediate_size // lay.etp
            shared: Parts = {}
            for n_, k_ in (((2 if m.gated_mlp else 1) * width, m.hidden_size),
                           (m.hidden_size, width)):
                t, mb = self.gemm(shared_rows, n_, k_, 1.0, self.opts.weight_bytes)
                self._gemm_parts(shared, t, mb)
        local = e / routed_ranks if routed_ranks <= e else 1.0
        replicas = max(1.0, routed_ranks / e)
        miss = 1.0 - k / e
        f = 1.0 - miss ** (group_tokens / replicas)
        active = max(min(local, 1.0), local * f)
        per_expert = pairs / active
        width = m.moe_intermediate_size // lay.etp
        up = 2 * width if m.gated_mlp else width
        w = self.opts.weight_bytes
        tile_m = None
        if self.triton_moe:
            # matmul_ogs sizes its tile from the gate slots it is handed: every token the
            # rank holds (all the stage's under the all-gather MoE) x top-k over the local
            # experts; under an all-to-all, the pairs the rank receives
            slots = group_tokens * k if lay.ep == 1 or self._allgather() else pairs
            tile_m = triton_moe_block_m(slots / max(local, 1.0))
        routed: Parts = {}
        for n_, k_ in ((up, m.hidden_size), (m.hidden_size, width)):
            t, mb = self.gemm(per_expert, n_, k_, active, w, tile_m=tile_m)
            self._gemm_parts(routed, t, mb)
        if self.shared_ranks and sum(shared.values()) > sum(routed.values()):
            _add(parts, shared)  # the slowest expert rank is a shared-expert one
            return shared_rows
        _add(parts, routed)
        return pairs

    def _attention(self, b: float, q: float, ctx: float, prefill: bool, parts: Parts) -> None:
        m, tp = self.model, self.layout.tp
        if prefill:  # causal over its own tokens, full over a cached prefix (ctx - q)
            flops = b * ops.attention_core_flops(m, q, q, causal=True, tp=tp)
            if ctx > q:
                flops += b * ops.attention_core_flops(m, q, ctx - q, causal=False, tp=tp)
            parts["attention_compute"] = parts.get("attention_compute", 0.0) + \
                flops / self.attn_flop_per_s
            return
        if m.is_mla:  # absorbed: every head attends over the latent + rope key
            r_kv = m.kv_lora_rank or 0
            flops = 2.0 * b * q * ctx * m.num_attention_heads / tp * (
                2 * r_kv + m.qk_rope_head_dim)
        else:
            flops = b * ops.attention_core_flops(m, q, ctx, causal=False, tp=tp)
        t_flops = flops / self.decode_attn_flop_per_s
        t_bytes = b * ctx * self.kv_elems * self.opts.kv_bytes / self.bw
        key = "kv_memory" if t_bytes >= t_flops else "attention_compute"
        parts[key] = parts.get(key, 0.0) + max(t_flops, t_bytes)

    def _allgather(self) -> bool:
        """Whether the MoE all-gathers the DP ranks' tokens (``InferOptions.moe_allgather``)."""
        lay = self.layout
        return bool(self.opts.moe_allgather and lay.dp > 1
                    and lay.ep <= self.model.num_experts_per_tok)

    def _ep_comm(self, tokens: float, gamma: float) -> tuple[float, bool]:
        """(dispatch + combine seconds, whether the kernels hold compute units)."""
        lay, m = self.layout, self.model
        if lay.ep <= 1:
            return 0.0, False
        if self._allgather():
            return self._allgather_exchange(tokens), True
        per_rank = max(1, math.ceil(tokens / lay.tp))
        # a shared expert served like a routed one is one more destination a token
        k = m.num_experts_per_tok + (1 if self.shared_ranks else 0)
        domain_ranks = self.system.counts.chips_per_domain * self.r
        g = math.ceil(lay.ep / domain_ranks)
        normal = per_rank > LOW_LATENCY_MAX_TOKENS
        kw: dict[str, Any] = {"hidden": m.hidden_size, "top_k": k,
                              "ep_library": self.opts.ep_library}
        up = self.system.spec.scale_up
        if (g == 1 and not normal and up.kind != "none"
                and (up.calibration or "").startswith("nvlink")):
            kw["algorithm"] = INTRA_DOMAIN_EP_ALGORITHM

        def exchange(n: int) -> float:
            one = {**kw, "tokens": n}
            return (self.coll("ep_dispatch", lay.ep, dtype=self.opts.dispatch_dtype, **one)
                    + self.coll("ep_combine", lay.ep, dtype="bf16", **one))

        # every token the rank holds: ``network.expert_parallel`` sends it once per distinct
        # destination domain itself (scaling the tokens here as well counted that twice)
        t = exchange(per_rank)
        if gamma == 1.0:
            return t, normal
        # the busiest expert rank receives (and returns) ``gamma`` x the mean rows: its bytes
        # grow by that, the kernels' fixed latency does not. The cost of a row is the
        # exchange's slope below the rank's own tokens (the same kernel mode)
        half = max(1, per_rank // 2)
        slope = (t - exchange(half)) / (per_rank - half) if half < per_rank else t / per_rank
        return t + (gamma - 1.0) * per_rank * slope, normal

    def _allgather_exchange(self, tokens: float) -> float:
        """Seconds of one MoE layer's all-gather + reduce-scatter over the EP group
        (``InferOptions.moe_allgather``): ``tokens`` a rank, ``ep`` ranks' worth gathered."""
        lay, h = self.layout, self.model.hidden_size
        gathered = max(1, math.ceil(tokens / lay.tp)) * lay.ep * h
        return (self.coll("all_gather", lay.ep, gathered * self.opts.allgather_bytes)
                + self.coll("reduce_scatter", lay.ep, gathered * ACT_BYTES))

    def dense_shapes(self, layer: int) -> list[tuple[int, int, float]]:
        """(n, k, count) of the layer's GEMMs other than the routed experts (their ``m`` is
        the token count), memoised per layer."""
        return [(n, k, c) for n, k, c, _ in self._dense_gemms(layer)]

    def _dense_gemms(self, layer: int) -> list[tuple[int, int, float, bool]]:
        """``dense_shapes`` with whether each GEMM's weights stay BF16 (``bf16_gemms``)."""
        hit = self._shapes.get(layer)
        if hit is None:
            # shared experts served from ranks of their own run no GEMM here
            hit = self._shapes[layer] = [
                (g.n, g.k, g.count, g.name in self.opts.bf16_gemms)
                for g in ops.layer_gemms(self.model, layer, 1.0, tp=self.layout.tp)
                if g.kind != "expert"
                and not (self.shared_ranks and g.name.startswith("shared_"))]
        return hit

    def layer(self, layer: int, b: float, q: float, ctx: float, prefill: bool
              ) -> tuple[Parts, Parts]:
        """(compute parts, communication parts) of one layer for ``b`` sequences."""
        m, lay = self.model, self.layout
        tokens = b * q
        comp: Parts = {}
        moe = m.is_moe_layer(layer)
        for n_, k_, count, bf16 in self._dense_gemms(layer):
            w = WEIGHT_BYTES["bf16"] if bf16 else self.opts.weight_bytes
            t, mb = self.gemm(tokens, n_, k_, count, w, head=bf16)
            self._gemm_parts(comp, t, mb)
        fc1 = (m.moe_intermediate_size if moe else m.intermediate_size) / (
            lay.etp if moe else lay.tp)
        gamma = self.gamma(b, prefill)
        pairs = self._experts(layer, tokens, comp, gamma) if moe else 0.0
        self._attention(b, q, ctx, prefill, comp)
        elem = ACT_BYTES * m.hidden_size * (ELEMENTWISE_PASSES_H * tokens
                                            + PERMUTE_PASSES_H * pairs)
        elem += ACT_BYTES * FC1_ELEMENTWISE * (2 if m.gated_mlp else 1) * fc1 * (
            pairs if moe else tokens)
        comp["elementwise"] = elem / self.bw
        comm: Parts = {}
        if lay.tp > 1:
            comm["tp_comm"] = comm[SM_COMM] = 2 * self.coll(
                "all_reduce", lay.tp, tokens * m.hidden_size * ACT_BYTES)
        if moe:
            comm["ep_comm"], holds_units = self._ep_comm(tokens, gamma)
            if holds_units:
                comm[SM_COMM] = comm.get(SM_COMM, 0.0) + comm["ep_comm"]
                comm[SM_PARTITION] = comm.get(SM_PARTITION, 0.0) + comm["ep_comm"]
        return comp, comm

    def head(self, tokens: float) -> Parts:
        m = self.model
        t, share = self.gemm(tokens, math.ceil(m.vocab_size / self.layout.tp), m.hidden_size,
                             1.0, mem.HEAD_BYTES, head=True)
        out: Parts = {}
        self._gemm_parts(out, t, share)
        return out

    # ------------------------------------------------------------------ one stage

    def stage(self, b: float, q: float, ctx: float, prefill: bool) -> tuple[Parts, Parts]:
        """Compute and communication of the busiest stage for one micro-batch."""
        key = (b, q, ctx, prefill)
        hit = self._stage.get(key)
        if hit is not None:
            return hit
        comp: Parts = {}
        comm: Parts = {}
        for layer, n in self.layers:
            c, x = self.layer(layer, b, q, ctx, prefill)
            _add(comp, c, n)
            _add(comm, x, n)
        _add(comp, self.head(b if prefill else b * q))
        if self.mtp_layer is not None:
            drafts = 1 if prefill else self.opts.mtp
            c, x = self.layer(self.mtp_layer, b, q if prefill else 1.0, ctx, prefill)
            _add(comp, c, drafts)
            _add(comp, self.head(b), drafts)
            _add(comm, x, drafts)
        self._stage[key] = (comp, comm)
        return comp, comm


_COLLECTIVES: OrderedDict[tuple[Any, ...], tuple[System, float]] = OrderedDict()
_MAX_COLLECTIVES = 65536


def _collective_s(system: System, req: CollectiveRequest) -> float:
    """``collective(system, req).time_s``, memoised across engines (layouts of one system
    share their collectives) and per set of held-out sources (the calibration a
    leave-one-source-out fold sees)."""
    key = (id(system), req, excluded())
    hit = _COLLECTIVES.get(key)
    if hit is not None and hit[0] is system:
        return hit[1]
    t = collective(system, req).time_s
    _COLLECTIVES[key] = (system, t)
    if len(_COLLECTIVES) > _MAX_COLLECTIVES:
        _COLLECTIVES.popitem(last=False)
    return t


_ENGINES: OrderedDict[tuple[Any, ...], tuple[System, _Engine]] = OrderedDict()
_MAX_ENGINES = 512


def engine(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions
           ) -> _Engine:
    """The memoised engine of one (system, model, layout, options) and set of held-out
    sources (an engine holds calibration-derived constants)."""
    key = (id(system), model, layout, opts, excluded())
    hit = _ENGINES.get(key)
    if hit is not None and hit[0] is system:
        _ENGINES.move_to_end(key)
        return hit[1]
    eng = _Engine(system, model, layout, opts)
    _ENGINES[key] = (system, eng)
    if len(_ENGINES) > _MAX_ENGINES:
        _ENGINES.popitem(last=False)
    return eng


def _timeline(eng: _Engine, b: float, q: float, ctx: float, prefill: bool, tbo: bool
              ) -> Parts:
    """Breakdown of one stage pass of one micro-batch (``b`` sequences a DP group)."""
    if tbo:
        comp, comm = eng.stage(math.ceil(b / 2), q, ctx, prefill)
        comp, comm = {k: 2 * v for k, v in comp.items()}, {k: 2 * v for k, v in comm.items()}
    else:
        comp, comm = eng.stage(b, q, ctx, prefill)
    comm = dict(comm)
    sm_busy = comm.pop(SM_COMM, 0.0)
    partitioned = comm.pop(SM_PARTITION, 0.0) > 0.0
    t_comp, t_comm = sum(comp.values()), sum(comm.values())
    if tbo:
        if partitioned:  # normal-mode EP: compute on the other units all layer long
            f = PREFILL_PARTITION_FRACTION
            slowed = t_comp * f / (1.0 - f)
        else:  # overlapped kernels take their compute units from the other micro-batch
            slowed = min(sm_busy, t_comp) * COMM_UNIT_FRACTION / (1.0 - COMM_UNIT_FRACTION)
        # soft maximum: the layer's stages never pair off exactly, so when the two streams
        # are comparable part of the communication stays exposed (as the GEMM roofline)
        exposed = math.hypot(t_comp + slowed, t_comm) - t_comp
    else:
        exposed = t_comm
    scale = exposed / t_comm if t_comm > 0 else 0.0
    out = dict.fromkeys(BREAKDOWN_KEYS, 0.0)
    for k, v in comp.items():
        out[k] += v
    for k, v in comm.items():
        out[k] += v * scale
    lay = eng.layout
    if lay.pp > 1:
        out["pp_comm"] = eng.coll("send_recv", 2, b * q * eng.model.hidden_size * ACT_BYTES,
                                  stride=lay.stage_ranks)
    return out


def iteration(system: System, model: ModelSpec, layout: ServingLayout, opts: InferOptions,
              *, phase: str, batch: int, context: float, kv_context: float | None = None,
              check_memory: bool = True, prefix: float = 0.0) -> Iteration | Infeasible:
    """One iteration of ``batch`` sequences (module docstring), or why it cannot run.

    ``phase="prefill"``: ``batch`` prompts of ``context`` tokens; ``"decode"``: one step of
    ``batch`` sequences attending to ``context`` cached tokens. ``kv_context``: tokens a
    sequence's KV cache must hold for the memory check (default: ``context`` + the step's).
    ``prefix`` (prefill): tokens of each prompt already in the KV cache (a prefix-cache
    hit, DeepSeek's on-disk context cache): not computed, but attended to - the prompt's
    ``context`` new tokens attend to the prefix in full and to themselves causally.
    """
    if prefix < 0 or (prefix and phase != "prefill"):
        raise SpecError("a cached prefix is >= 0 and only for prefill", field="prefix",
                        value=prefix)
    if phase not in ("prefill", "decode"):
        raise SpecError("an iteration is a prefill or a decode step", field="phase",
                        value=phase, allowed="prefill, decode")
    if batch < 1 or context < 1:
        raise SpecError("batch and context must be >= 1", field="batch",
                        value=f"{batch} x {context}")
    opts = opts.for_chip(system.chip)
    eng = engine(system, model, layout, opts)
    key = (phase, batch, context, kv_context, check_memory, prefix)
    hit = eng.iterations.get(key)
    if hit is not None:
        return hit
    res = _iteration(eng, phase, batch, context, kv_context, check_memory, prefix)
    eng.iterations[key] = res
    if len(eng.iterations) > 65536:
        eng.iterations.popitem(last=False)
    return res


def _iteration(eng: _Engine, phase: str, batch: int, context: float,
               kv_context: float | None, check_memory: bool, prefix: float = 0.0
               ) -> Iteration | Infeasible:
    system, model, lay, opts = eng.system, eng.model, eng.layout, eng.opts
    bad = check_layout(model, lay, system.counts.chips * lay.ranks_per_chip)
    if bad:
        return bad
    prefill = phase == "prefill"
    notes: list[str] = []
    q = float(context) if prefill else 1.0 + opts.mtp
    b = math.ceil(batch / (lay.dp * lay.pp))  # one micro-batch of one DP group
    if not prefill and opts.graph_batch_sizes:
        padded = opts.padded_batch(b)
        if padded > b:
            notes.append(f"decode batch {b} a rank padded to the CUDA graph of {padded}")
        b = padded
    kv_ctx = kv_context if kv_context is not None else (
        context + prefix if prefill else context + q)
    memory = mem.serving_memory(model, lay, opts, system.chip.hbm_bytes, batch=batch,
                                context=kv_ctx, tokens_in_flight=b * q)
    most = mem.max_batch(model, lay, opts, system.chip.hbm_bytes, context=kv_ctx,
                         tokens_per_seq=q)
    if not memory.fits:
        if check_memory:
            return Infeasible("out_of_memory", memory.excess_detail())
        notes.append(f"memory model: {memory.excess_detail()}")
    if opts.weight_only:
        notes.append(f"{opts.precision} weights run weight-only: GEMMs in {eng.dtype}")
    elif eng.dtype != GEMM_FORMATS[opts.precision][0]:
        notes.append(f"{system.chip.id} has no {opts.precision} tensor-core peak: GEMMs "
                     f"run at {eng.dtype}")
    if not eng.calibrated:
        notes.append(f"no GEMM calibration for {system.chip.id} at {eng.dtype}: default "
                     "efficiency")
    if eng.imbalance > 1.0:
        g = eng.gamma(math.ceil(b / 2) if prefill and b >= 2 else b, prefill)
        notes.append(f"busiest expert rank {g:.2f}x the mean load"
                     + (" (EPLB)" if opts.eplb and opts.ep_imbalance is None else ""))
    if eng.shared_ranks:
        notes.append(f"shared expert served from {eng.shared_ranks} ranks of its own (EP "
                     f"{lay.ep} > {model.n_routed_experts} routed experts)")
    if opts.mtp and eng.mtp_layer is None:
        notes.append("the model has no MTP block: the draft's cost is not counted")
    candidates = [opts.two_batch_overlap] if opts.two_batch_overlap is not None \
        else [False, True]
    if b < 2 and True in candidates:
        if opts.two_batch_overlap:
            notes.append("two-batch overlap needs >= 2 sequences per rank: off")
        candidates = [False]
    runs = [(_timeline(eng, b, q, context + prefix, prefill, tbo), tbo) for tbo in candidates]
    parts, tbo = min(runs, key=lambda r: sum(r[0].values()))
    breakdown = {k: v * lay.pp for k, v in parts.items()}
    time_s = sum(breakdown.values())
    per_seq = 1.0 if prefill else opts.tokens_per_step
    return Iteration(phase=phase, batch=batch, context=context, time_s=time_s,
                     tokens_processed=batch * q, tokens_generated=batch * per_seq,
                     breakdown_s=breakdown, memory=memory, max_batch=most,
                     two_batch_overlap=tbo, layout=lay, options=opts, notes=tuple(notes))
