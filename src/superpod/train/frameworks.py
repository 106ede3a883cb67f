"""Training frameworks: what a named framework does that changes a prediction.

A validation case names its ``framework`` in free text; the profile it maps to sets the
choices that framework makes, applied to every case that names it (never per case). Each
choice records the document it comes from (``Choice.source``, URL first); under
leave-one-source-out a choice whose document is held out falls back to the generic default
(``superpod.trust.holdout``).

* torchtitan (commit eaea6f6, Feb 2025): attention through PyTorch's
  ``scaled_dot_product_attention`` (flash backend = FlashAttention-2, ``fa2``); its
  "selective" checkpointing is op-level (every other matmul recomputed, mode ``op``); FSDP2
  ``reshard_after_forward = not pp_enabled`` (parameters re-gathered every micro-batch only
  without pipeline parallelism; under it, torch.distributed.pipelining reduces a stage's
  gradients after its last backward); pipeline micro-batches default to the pipeline degree
  (ranks, not stages: torchtitan 9dec370 of 2024-12-26, the version its performance figures
  name; counting stages came on 2025-01-07), two stages per rank for interleaved schedules;
  Float8 is torchao's tensor-wise dynamic (current) scaling, fast accumulation in the output
  GEMM only; ``torch.compile`` only when the run says so (eager otherwise);
  AsyncTP pipelines TP collectives with the GEMMs; context parallelism through PyTorch's
  context_parallel with the all-gather rotation, on K/V already repeated to every query
  head (``repeat_kv``).
* Transformer Engine stacks (Megatron-Core, NeMo, Megatron-Bridge): cuDNN fused attention on
  Hopper and later (TE's backend selection), the kernel generation of the framework's
  release; NeMo and Megatron-Bridge recipes run the distributed optimizer (ZeRO-1) and
  userbuffer TP overlap; FP8 is TE delayed scaling unless the run says current scaling
  ("FP8-CS", "cs"); the backward FP8 GEMMs use TE's split accumulator (no fast
  accumulation).
* Megatron-LM as of 2019-2021 predates FlashAttention (Dao et al. 2022) and materialises the
  score matrix (``unfused``); its local DDP all-reduces the gradients after the last
  backward, not overlapped.
* MindSpeed (Ascend): MC2 matmul-communication fusion overlaps TP collectives where the run
  says it was on.
* "DualPipe" (DeepSeek-V3's HAI-LLM): the DualPipe schedule, when the case gives none;
  HAI-LLM recomputes every RMSNorm and the MLA up-projections, caches the SwiGLU inputs in
  FP8 and recomputes its output (``recompute_modules`` layernorm, mla_up_proj, moe_act;
  ``act_fp8_store``).
* Megatron-Core stacks (Megatron-LM, NeMo, Megatron-Bridge) split a pipeline with the
  embedding and the loss counted as one layer each where the layers alone do not divide
  evenly over pp x vpp but with those two they do (Llama 3.1 405B's 126 + 2 over 16 x 8):
  account_for_embedding/loss_in_pipeline_split, the only even split such a run can have.
* Megatron-Bridge's performance recipes accumulate and reduce gradients in BF16
  (``grad_reduce_in_fp32 = False``); its Megatron-FSDP recipes on Grace Blackwell keep the
  activations that do not fit HBM in Grace memory, layer by layer, instead of recomputing.
* Megatron-Bridge (Megatron-Core 0.14+): router probabilities applied in the expert
  activation (no expert output kept for the combine's backward).
* Meta's Llama 3 stack (arXiv 2407.21783 section 3.3.2): the interleaved schedule's group
  N is open (best feasible taken), the embedding and the output head each take a layer's
  place in the pipeline, and FSDP shards the gradients (reduce-scattered every
  micro-batch) while keeping the parameters gathered.
* Meta's internal 4D parallelism (Llama 3, arXiv 2407.21783 section 3.3.2): an interleaved
  schedule with an open number of stages per rank; tensor parallelism after Korthikanti et
  al. (the paper's citation for its TP), i.e. with sequence parallelism; 8K-token sequences
  pre-trained without activation checkpointing (its stated result of balanced stages and
  freeing each stage's input and output tensors), so a run of at most 8K tokens that leaves
  recompute unstated runs none - even where the memory model here says it needs more than
  the HBM (the result then says so) - and a longer one checkpoints activations (the paper
  states the no-checkpointing result for 8K sequences only): selective or full, the best
  feasible. Its context parallelism is all-gather based (``cp_rotate`` gather_kv): K/V
  all-gathered, then one attention call for the local queries, the gather exposed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from superpod.train.plan import edge_split_only
from superpod.trust.holdout import held_out

T = TypeVar("T")

TORCHTITAN = "https://github.com/pytorch/torchtitan/blob/eaea6f6a2fa940f03a10906be1df3489cf30af85"
SRC_TT_SDPA = (f"{TORCHTITAN}/torchtitan/models/llama/model.py (Attention.forward: "
               "F.scaled_dot_product_attention(is_causal=True), whose flash backend on CUDA is "
               "FlashAttention-2)")
SRC_TT_SAC = (f"{TORCHTITAN}/torchtitan/parallelisms/parallelize_llama.py (op-level selective "
              "checkpointing: _save_list, every other aten.mm output not saved)")
SRC_TT_FSDP = (f"{TORCHTITAN}/torchtitan/parallelisms/parallelize_llama.py (apply_fsdp: "
               "reshard_after_forward = not pp_enabled)")
SRC_TT_TP = (f"{TORCHTITAN}/torchtitan/parallelisms/parallelize_llama.py (apply_tp: "
             "SequenceParallel on the norms, activations sharded along the sequence "
             "outside the TP region)")
#: the torchtitan commit docs/performance.md names for its measurements ("Versions used for
#: performance testing": torch 1963fc8 and torchtitan 9dec370, both of December 2024)
TORCHTITAN_PERF = ("https://github.com/pytorch/torchtitan/blob/"
                   "9dec370ad26b5f8e9a7333a0e36165018262644b")
SRC_TT_PP = (f"{TORCHTITAN_PERF}/torchtitan/parallelisms/pipelining_utils.py "
             "(build_pipeline_schedule: n_microbatches defaults to pipeline_parallel_degree, the "
             "number of pipeline ranks, whatever the stages per rank; generate_split_points: "
             "2 stages per rank for a PipelineScheduleMulti schedule)")
SRC_TT_FP8 = (f"{TORCHTITAN}/docs/float8.md (torchao Float8Linear: tensor-wise scaling with "
              "dynamic scales)")
SRC_TT_CP = (f"{TORCHTITAN}/torchtitan/config_manager.py (context_parallel_rotate_method "
             "default 'allgather'); torchtitan/models/llama/model.py (repeat_kv expands K/V to "
             "every query head before scaled_dot_product_attention, which context_parallel "
             "shards)")
SRC_TE_ACC = ("https://github.com/NVIDIA/TransformerEngine/blob/v1.4/transformer_engine/pytorch/"
              "module/base.py (_2X_ACC_FPROP = False, _2X_ACC_DGRAD = True, _2X_ACC_WGRAD = "
              "True: the backward FP8 GEMMs use the split accumulator, as through v2.4)")
SRC_TAO_ACC = ("https://github.com/pytorch/ao/blob/6243040807b9ceee889a58cba8e68c5fc4e2ebd8/"
               "torchao/float8/config.py (Float8LinearConfig: use_fast_accum for the output "
               "GEMM only, not grad_input / grad_weight)")
SRC_MEGATRON_2021 = ("https://github.com/NVIDIA/Megatron-LM/blob/v2.5/megatron/training.py "
                     "(train_step: with --DDP-impl local, the default in arguments.py, "
                     "allreduce_gradients() runs after forward_backward_func, on the fp32 "
                     "gradient buffer bf16 training forces)")
SRC_PT_PIPE_FSDP = ("https://github.com/pytorch/pytorch/blob/1963fc83a1c32e162162e2414f78b043f0674bae/"
                    "torch/distributed/pipelining/stage.py (backward_maybe_with_nosync: an "
                    "FSDP stage runs with set_requires_gradient_sync(False) and calls "
                    "post_backward - the gradient reduce-scatter - after its last backward)")
SRC_TE_ATTN = ("https://github.com/NVIDIA/TransformerEngine/blob/v2.4/transformer_engine/"
               "pytorch/attention/dot_product_attention/utils.py (get_attention_backend: "
               "'give FusedAttention preference on Hopper+'); v1.4 attention.py does the same "
               "on sm90")
SRC_NEMO_OPT = ("https://github.com/NVIDIA/NeMo/blob/00617962f84fb2b31562f6a23b59330747e1d4b6/"
                "nemo/collections/llm/recipes/llama3_8b.py (pretrain recipes use "
                "distributed_fused_adam_with_cosine_annealing: the distributed optimizer)")
SRC_LLAMA3 = ("https://arxiv.org/abs/2407.21783 (Llama 3 Herd of Models, section 3.3.2: "
              "interleaved pipeline schedule with a tunable number of micro-batches)")
SRC_LLAMA3_TP = ("https://arxiv.org/abs/2407.21783 (Llama 3 Herd of Models, section 3.3.2: "
                 "tensor parallelism after Shoeybi et al. 2019 and Korthikanti et al. 2023, "
                 "whose tensor parallelism shards the sequence outside the TP region)")
SRC_LLAMA3_CP = ("https://arxiv.org/abs/2407.21783 (Llama 3 Herd of Models, section 3.3.2, "
                 "context parallelism: 'all-gather based': K and V all-gathered first, then "
                 "attention computed for the local Q chunk; 'the all-gather communication "
                 "latency is exposed in the critical path')")
SRC_LLAMA3_AC = ("https://arxiv.org/abs/2407.21783 (Llama 3 Herd of Models, section 3.3.2, "
                 "pipeline parallelism improvements: 'we could pre-train Llama 3 on sequences "
                 "of 8K tokens without activation checkpointing')")
SRC_NEMO_SP = ("https://github.com/NVIDIA/NeMo/blob/0189a3b38dcfc89e916ca4396459433c8ba326d2/"
               "nemo/collections/llm/recipes/llama3_70b.py (trainer: sequence_parallelism=True "
               "with tensor parallelism)")
SRC_MC2 = ("https://arxiv.org/abs/2504.07866 (Pangu Ultra, section 4: MindSpeed's MC2 fuses the "
           "tensor-parallel collectives with the matrix multiplications they feed)")
SRC_MBRIDGE_A2A = ("https://github.com/NVIDIA-NeMo/Megatron-Bridge/blob/"
                   "97ad8cc6fb27a58bb79ff51ce73897c3887aa2c6/src/megatron/bridge/models/qwen/"
                   "qwen_provider.py (Qwen3MoEModelProvider: moe_token_dispatcher_type = "
                   "'alltoall'; gpt_oss/gpt_oss_provider.py likewise; the 25.11 performance "
                   "recipes for H100 name no flex backend)")
SRC_MCORE_PROBS = ("https://github.com/NVIDIA/Megatron-LM/blob/core_r0.13.0/megatron/core/"
                   "transformer/moe/experts.py (TEGroupedMLP.forward: the router probabilities "
                   "enter weighted_bias_swiglu_impl, so the combine keeps no expert output; "
                   "Megatron-Bridge runs Megatron-Core 0.14 and later)")
SRC_DSV3_MEM = ("https://arxiv.org/abs/2412.19437 (DeepSeek-V3 technical report, section "
                "3.2.3: recomputation of all RMSNorm operations and the MLA up-projections; "
                "section 3.3.2: the SwiGLU inputs cached in FP8 and its output recomputed)")
SRC_DSV3_COMBINE = ("https://arxiv.org/abs/2412.19437 (DeepSeek-V3 technical report, section "
                    "3.3.2: the SwiGLU output is recomputed in the backward pass, so the gate "
                    "weight's gradient <dL/dh, h> / g comes from the down-projection's input "
                    "gradient and the recomputed SwiGLU output, and no expert output is kept "
                    "for the combine)")
SRC_LLAMA3_GROUP = ("https://arxiv.org/abs/2407.21783 (Llama 3 Herd of Models, section 3.3.2: "
                    "the schedule 'allows setting N flexibly', fewer micro-batches than stages "
                    "in a round, a sweet spot between depth-first and breadth-first for "
                    "communication and memory)")
SRC_LLAMA3_FSDP = ("https://arxiv.org/abs/2407.21783 (Llama 3 Herd of Models, section 3.3.2: "
                   "FSDP shards optimizer states and gradients; model shards are not "
                   "resharded after forward)")
SRC_LLAMA3_EDGES = ("https://arxiv.org/abs/2407.21783 (Llama 3 Herd of Models, section "
                    "3.3.2: one Transformer layer fewer on the first and last stages; the "
                    "first model chunk of the first stage holds only the embedding, the last "
                    "of the last stage only the output projection and loss)")
SRC_MCORE_EDGES = ("https://github.com/NVIDIA-NeMo/Megatron-Bridge/blob/v0.4.0/src/megatron/"
                   "bridge/recipes/llama/llama3.py (llama31_405b_pretrain_config sets "
                   "account_for_embedding_in_pipeline_split and "
                   "account_for_loss_in_pipeline_split: 126 + 2 layers; Megatron-Core's "
                   "TransformerConfig documents each flag as treating the embedding, or the "
                   "loss, as a standard transformer layer in the pipeline's partition and "
                   "placement)")
SRC_MBRIDGE_GRADS = ("https://github.com/NVIDIA-NeMo/Megatron-Bridge/blob/v0.2.0/scripts/"
                     "performance/configs/llama31/llama31_llm_pretrain.py (every performance "
                     "recipe sets cfg.ddp.grad_reduce_in_fp32 = False and "
                     "cfg.mixed_precision.grad_reduce_in_fp32 = False: gradients accumulated "
                     "and reduced in BF16; likewise the llama3, deepseek, gpt_oss, qwen3 and "
                     "nemotronh configs)")
SRC_MBRIDGE_OFFLOAD = ("https://github.com/NVIDIA-NeMo/Megatron-Bridge/blob/v0.2.0/scripts/"
                       "performance/configs/llama3/workload_base_configs.py (the Megatron-FSDP "
                       "recipes on GB300 and GB200 set cpu_offloading_num_layers - Llama 3 "
                       "70B: 20-40 of 80 layers' activations kept in Grace memory - and no "
                       "recompute; llama31/workload_base_configs.py likewise for 405B, 10-92 "
                       "of 126)")
SRC_TE_FP8 = ("https://github.com/NVIDIA/TransformerEngine/blob/v1.4/transformer_engine/common/"
              "recipe.py (DelayedScaling is TE's default FP8 recipe: scales from an amax "
              "history, no separate amax pass)")


@dataclass(frozen=True)
class Choice(Generic[T]):
    """One framework default and the document it comes from."""

    value: T
    source: str

    def get(self, default: T) -> T:
        """The value, or ``default`` while its document is held out."""
        return default if held_out(self.source) else self.value


@dataclass(frozen=True)
class TrainFramework:
    """Choices a framework makes (``TrainPlan`` fields and evaluation defaults)."""

    attention_kernel: str = "auto"
    released: str | None = None  #: YYYY-MM of the framework release (kernel generation)
    tp_comm_overlap: bool = False
    op_level_selective: bool = False  #: its "selective" recompute is ``op``
    dualpipe: bool = False
    #: FSDP re-gathers per micro-batch only without pipeline parallelism (torchtitan's
    #: reshard_after_forward = not pp_enabled; the generic default as well)
    fsdp_regather_without_pp: bool = True
    distributed_optimizer: bool = False  #: ZeRO-1 when the case states no sharding
    #: pipeline micro-batches = pipeline ranks x this (the framework's default split)
    microbatches_per_rank: int | None = None
    interleaved_stages_per_rank: int | None = None
    #: the framework interleaves pipeline stages but the run does not say how many per
    #: rank: the evaluator takes the best feasible count, as for an unstated micro-batch
    interleaves: bool = False
    sequence_parallel: bool = False  #: tensor parallelism always shards the sequence too
    #: sequences of at most this many tokens train without activation recompute where the
    #: run does not say, longer ones with it (the framework's documented practice); None:
    #: no such statement
    no_recompute_max_seq: int | None = None
    compiled: bool = True  #: element-wise ops fused (torch.compile / TE fused kernels)
    fp8_recipe: str = "delayed"
    fp8_split_accumulation: bool = False  #: backward FP8 GEMMs without fast accumulation
    dp_overlap: bool = True  #: gradient reduction overlapped with the backward pass
    #: under pipeline parallelism FSDP reduces a stage's gradients only after its last
    #: backward (torch.distributed.pipelining), not overlapped
    fsdp_sync_after_pp_backward: bool = False
    cp_rotate: str = "p2p"  #: context-parallel K/V exchange (TrainPlan.cp_rotate)
    cp_kv_expanded: bool = False  #: K/V repeated to every query head before attention
    ep_dispatcher: str = "fused"  #: expert token exchange (TrainPlan.ep_dispatcher)
    #: output-discarding module recompute the stack applies where the run states selective
    #: or no recompute (TrainPlan.recompute_modules)
    recompute_modules: str = ""
    moe_probs_in_act: bool = False  #: TrainPlan.moe_probs_in_act
    act_fp8_store: bool = False  #: TrainPlan.act_fp8_store (FP8 runs only)
    #: the interleaved schedule's micro-batch group (N) is open: the evaluator takes the best
    #: feasible one, as for an unstated micro-batch
    flexible_pp_group: bool = False
    fsdp_shard_grads: bool = False  #: TrainPlan.fsdp_shard_grads (FSDP runs)
    pp_edge_slots: bool = False  #: TrainPlan.pp_edge_slots
    #: the embedding and the loss take a layer's place each where the layers alone do not
    #: split evenly over pp x vpp but with those two they do (Megatron-Core's
    #: account_for_embedding/loss_in_pipeline_split: the only even split such a run has)
    edge_slots_when_uneven: bool = False
    grad_reduce_fp32: bool = True  #: TrainPlan.grad_reduce_fp32
    #: under FSDP (ZeRO-3) on a host reached over NVLink-C2C (Grace), activations that do not
    #: fit HBM are offloaded layer by layer rather than recomputed (``train.offload_eval.
    #: evaluate_with_layer_offload``)
    fsdp_layer_offload: bool = False
    sources: tuple[str, ...] = field(default=())

    def edge_slots(self, layers: int, pp: int, vpp: int) -> bool:
        """Whether the embedding and the head take pipeline slots of their own for this
        layout (``pp_edge_slots``, or ``edge_slots_when_uneven`` where only they make the
        layers split evenly)."""
        if self.pp_edge_slots:
            return True
        return self.edge_slots_when_uneven and pp > 1 and edge_split_only(layers, pp * vpp)

    def plan_fields(self, *, layers: int, pp: int, vpp: int, zero: int, recompute: str,
                    precision: str) -> dict[str, object]:
        """The ``TrainPlan`` fields this framework decides for a layout (its degrees, ZeRO
        stage, stated recompute and precision): kernels, overlaps, recipes, dispatcher and
        what its memory keeps. The one mapping validation cases and ``superpod train
        --framework`` share."""
        regather = self.regathers(pp)
        return dict(
            self.layout_free_fields(precision),
            recompute=self.recompute(recompute), tp_comm_overlap=self.tp_comm_overlap,
            fsdp_regather=regather, dp_overlap=self.overlaps_dp(pp, zero),
            recompute_modules=self.recompute_modules if recompute != "full" else "",
            fsdp_shard_grads=self.fsdp_shard_grads and not regather,
            pp_edge_slots=self.edge_slots(layers, pp, vpp))

    def layout_free_fields(self, precision: str) -> dict[str, object]:
        """The ``TrainPlan`` fields this framework decides whatever the layout: kernels, FP8
        recipe, context-parallel rotation, dispatcher, gradient dtype, what the MoE keeps
        (``plan train --framework`` applies these to every layout it searches)."""
        return dict(
            attention_kernel=self.attention_kernel, attention_released=self.released,
            compiled=self.compiled, fp8_recipe=self.fp8_recipe,
            fp8_split_accumulation=self.fp8_split_accumulation, cp_rotate=self.cp_rotate,
            cp_kv_expanded=self.cp_kv_expanded, ep_dispatcher=self.ep_dispatcher,
            moe_probs_in_act=self.moe_probs_in_act, grad_reduce_fp32=self.grad_reduce_fp32,
            act_fp8_store=self.act_fp8_store and precision in ("fp8", "fp4"))

    def regathers(self, pp: int) -> bool:
        return self.fsdp_regather_without_pp and pp == 1

    def overlaps_dp(self, pp: int, zero: int) -> bool:
        """Whether gradient reduction overlaps the backward pass for this layout."""
        return self.dp_overlap and not (self.fsdp_sync_after_pp_backward and pp > 1
                                        and zero >= 3)

    def recompute(self, stated: str) -> str:
        return "op" if stated == "selective" and self.op_level_selective else stated

    def schedule(self, stated: str | None, vpp: int) -> str:
        return stated or ("dualpipe" if self.dualpipe else
                          "interleaved" if vpp > 1 else "1f1b")

    def virtual_stages(self, stated_vpp: int, schedule: str) -> int:
        """Virtual stages per rank: the stated count, or the framework's default for an
        interleaved schedule the run names without a count."""
        if stated_vpp > 1 or schedule != "interleaved":
            return stated_vpp
        return self.interleaved_stages_per_rank or stated_vpp


_SCHEDULE = re.compile(r"\bPP schedule (interleaved|1F1B|zero.bubble|dualpipe)", re.IGNORECASE)


def stated_schedule(notes: str) -> str | None:
    """A pipeline schedule the case's notes name ('PP schedule interleaved-1F1B')."""
    m = _SCHEDULE.search(notes)
    if not m:
        return None
    word = m.group(1).lower()
    return {"1f1b": "1f1b", "interleaved": "interleaved", "dualpipe": "dualpipe"}.get(
        word, "zero_bubble")


_NEMO_RELEASE = re.compile(r"\b(?:nemo|container)\D{0,12}(\d{2})\.(\d{2})\b")


def _release(fw: str) -> str | None:
    """YYYY-MM of a NeMo-style ``YY.MM`` release named in the text, else None."""
    m = _NEMO_RELEASE.search(fw)
    return f"20{m.group(1)}-{m.group(2)}" if m else None


#: ``superpod train --framework`` names and the free text each stands for (what a validation
#: case's ``framework`` field would say); "none": no framework's choices, the generic defaults
NAMED_FRAMEWORKS: dict[str, str] = {
    "none": "",
    "megatron-core": "Megatron-Core",
    "nemo": "NeMo",
    "megatron-bridge": "Megatron-Bridge",
    "torchtitan": "torchtitan",
    "torchtitan-compile": "torchtitan + compile",
    "meta-llama3": "Meta internal 4D parallelism",
    "hai-llm": "HAI-LLM (DualPipe)",
    "mindspeed-mc2": "MindSpeed with MC2",
}


def framework_for(text: str, notes: str = "") -> TrainFramework:
    """The profile of a case's free-text ``framework`` (module docstring); ``notes`` (the
    case's caveats) may name the FP8 recipe."""
    fw = text.lower()
    used: list[str] = []

    def pick(choice: Choice[T], default: T) -> T:
        value = choice.get(default)
        if value != default:
            used.append(choice.source)
        return value

    if "torchtitan" in fw:
        fp8 = pick(Choice("dynamic", SRC_TT_FP8), "delayed")
        return TrainFramework(
            attention_kernel=pick(Choice("fa2", SRC_TT_SDPA), "auto"),
            tp_comm_overlap="asynctp" in fw,
            op_level_selective=pick(Choice(True, SRC_TT_SAC), False),
            dualpipe="dualpipe" in fw,
            fsdp_regather_without_pp=pick(Choice(True, SRC_TT_FSDP), True),
            microbatches_per_rank=pick(Choice(1, SRC_TT_PP), 0) or None,
            interleaved_stages_per_rank=pick(Choice(2, SRC_TT_PP), 0) or None,
            sequence_parallel=pick(Choice(True, SRC_TT_TP), False),
            compiled="compile" in fw, fp8_recipe=fp8,
            fp8_split_accumulation=pick(Choice(True, SRC_TAO_ACC), False),
            fsdp_sync_after_pp_backward=pick(Choice(True, SRC_PT_PIPE_FSDP), False),
            cp_rotate=pick(Choice("allgather", SRC_TT_CP), "p2p"),
            cp_kv_expanded=pick(Choice(True, SRC_TT_CP), False), sources=tuple(used))
    if "meta internal" in fw:
        return TrainFramework(interleaves=pick(Choice(True, SRC_LLAMA3), False),
                              flexible_pp_group=pick(Choice(True, SRC_LLAMA3_GROUP), False),
                              fsdp_shard_grads=pick(Choice(True, SRC_LLAMA3_FSDP), False),
                              pp_edge_slots=pick(Choice(True, SRC_LLAMA3_EDGES), False),
                              sequence_parallel=pick(Choice(True, SRC_LLAMA3_TP), False),
                              cp_rotate=pick(Choice("gather_kv", SRC_LLAMA3_CP), "p2p"),
                              no_recompute_max_seq=pick(Choice(8192, SRC_LLAMA3_AC), 0) or None,
                              sources=tuple(used))
    legacy = re.search(r"\b20(19|20|21)\b", fw) is not None
    te = not legacy and any(k in fw for k in ("megatron", "nemo"))
    nemo = "nemo" in fw or "megatron-bridge" in fw
    current = re.search(r"\bfp8-cs\b|current \(per-tensor\) scaling|current scaling",
                        f"{fw} {notes.lower()}") is not None
    # MXFP8: FP8 with 32-element block scales computed in the cast (Blackwell)
    mx = re.search(r"\bmxfp8\b|\bfp8-mx\b", f"{fw} {notes.lower()}") is not None
    bridge = "megatron-bridge" in fw and not re.search(r"\b(deepep|hybridep|flex)\b",
                                                        f"{fw} {notes.lower()}")
    dsv3 = "hai-llm" in fw  # DeepSeek's in-house framework (DeepSeek-V3 report)
    mc2 = "mindspeed" in fw and re.search(r"\bmc2\b", f"{fw} {notes.lower()}") is not None
    return TrainFramework(
        attention_kernel="unfused" if legacy else
        (pick(Choice("cudnn", SRC_TE_ATTN), "auto") if te else "auto"),
        released=_release(fw),
        tp_comm_overlap="tp-comm-overlap" in fw or "asynctp" in fw or nemo
        or (pick(Choice(True, SRC_MC2), False) if mc2 else False),
        dualpipe="dualpipe" in fw,
        distributed_optimizer=pick(Choice(True, SRC_NEMO_OPT), False) if nemo else False,
        sequence_parallel=pick(Choice(True, SRC_NEMO_SP), False) if nemo else False,
        fp8_recipe="current" if current else "mx" if mx else
        pick(Choice("delayed", SRC_TE_FP8), "delayed"),
        fp8_split_accumulation=pick(Choice(True, SRC_TE_ACC), False) if te else False,
        dp_overlap=not pick(Choice(True, SRC_MEGATRON_2021), False) if legacy else True,
        ep_dispatcher=pick(Choice("alltoall", SRC_MBRIDGE_A2A), "fused") if bridge else "fused",
        moe_probs_in_act=pick(Choice(True, SRC_MCORE_PROBS), False)
        if "megatron-bridge" in fw else
        (pick(Choice(True, SRC_DSV3_COMBINE), False) if dsv3 else False),
        recompute_modules=pick(Choice("layernorm,mla_up_proj,moe_act", SRC_DSV3_MEM), "")
        if dsv3 else "",
        act_fp8_store=pick(Choice(True, SRC_DSV3_MEM), False) if dsv3 else False,
        edge_slots_when_uneven=pick(Choice(True, SRC_MCORE_EDGES), False) if te else False,
        grad_reduce_fp32=not pick(Choice(True, SRC_MBRIDGE_GRADS), False)
        if "megatron-bridge" in fw else True,
        fsdp_layer_offload=pick(Choice(True, SRC_MBRIDGE_OFFLOAD), False)
        if "megatron-bridge" in fw else False,
        sources=tuple(used))
