"""A training parallel layout (the Plan of ``evaluate(system, workload, plan)``).

Degrees follow Megatron-LM's conventions (Shoeybi et al. 2019; Narayanan et al. SC'21;
Korthikanti et al. 2022): ``tp x pp x cp x dp`` ranks; expert layers re-partition the
``tp x cp x dp`` ranks of a stage as ``etp x ep x edp``. ``micro_batch`` sequences per
micro-batch, ``global_batch`` sequences per optimizer step, so each pipeline runs
``global_batch / (dp x micro_batch)`` micro-batches per step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from superpod.errors import Infeasible, SpecError

RECOMPUTE = ("none", "selective", "op", "full")
SCHEDULES = ("1f1b", "interleaved", "dualpipe", "zero_bubble")
PRECISIONS = ("bf16", "fp8", "fp4")
ATTENTION_KERNELS = ("auto", "fa2", "fa3", "cudnn", "unfused")
FP8_RECIPES = ("delayed", "current", "dynamic", "mx")
CP_ROTATES = ("p2p", "allgather", "gather_kv")
EP_DISPATCHERS = ("fused", "alltoall")
#: modules whose outputs are discarded after forward and recomputed in backward
#: (Megatron-Core's output-discarding ``--recompute-modules``; ``workload.ops``)
RECOMPUTE_MODULES = ("layernorm", "mla_up_proj", "moe_act")
ORDER_DIMS = ("tp", "cp", "dp", "pp")


@dataclass(frozen=True)
class TrainPlan:
    tp: int = 1
    pp: int = 1
    vpp: int = 1
    dp: int = 1
    cp: int = 1
    ep: int = 1
    etp: int = 1
    sequence_parallel: bool = False
    zero: int = 1
    micro_batch: int = 1
    global_batch: int = 1
    seq_len: int = 2048
    recompute: str = "none"
    precision: str = "bf16"
    pp_schedule: str = "1f1b"
    attention_kernel: str = "auto"  # fa2 | fa3 | cudnn | unfused | auto (best calibrated)
    #: YYYY-MM of the framework release: picks the attention kernel generation (None: newest)
    attention_released: str | None = None
    tp_comm_overlap: bool = False  # TP all-gather / reduce-scatter pipelined with the GEMMs
    #: FSDP (zero 3): re-gather parameters (forward and backward) and reduce-scatter
    #: gradients every micro-batch (FSDP2's default, reshard_after_forward=True), or keep
    #: them gathered across the step: one all-gather, one reduce-scatter (False)
    fsdp_regather: bool = True
    #: element-wise work fused (torch.compile, Transformer Engine kernels) or eager PyTorch
    compiled: bool = True
    #: FP8 scaling: delayed (amax history), current (an amax pass per tensor, weights cast
    #: once a step), dynamic (torchao: current scaling, weights re-cast every micro-batch),
    #: mx (block scales computed in the cast)
    fp8_recipe: str = "delayed"
    #: backward FP8 GEMMs (data and weight gradients) promote partial sums to FP32 at
    #: intervals instead of fast accumulation (Transformer Engine, torchao), which costs
    #: time on chips with a calibrated penalty (``calibration.split_accumulator_ratio``)
    fp8_split_accumulation: bool = False
    #: data-parallel gradient reduction overlapped with the backward pass (bucketed: Megatron-
    #: Core --overlap-grad-reduce, PyTorch DDP / FSDP), or one reduction after the last
    #: backward (Megatron-LM's local DDP, 2019-2021)
    dp_overlap: bool = True
    #: main gradients accumulated and reduced across data-parallel ranks in FP32 (4 B a
    #: parameter); False: in the parameter dtype, BF16 (Megatron-Core
    #: ``grad_reduce_in_fp32 = False``): half the gradient memory and reduction bytes
    grad_reduce_fp32: bool = True
    #: context parallel K/V exchange: p2p (Transformer Engine's ring, one hop per step under
    #: the step's attention) or allgather (PyTorch context_parallel's default: all shards
    #: gathered once, under the first step only; gradients passed back in fp32) or gather_kv
    #: (Llama 3's all-gather-based CP: K/V all-gathered before one attention call over the
    #: local queries, exposed; their gradients reduce-scattered back; the gathered K/V are
    #: the kernel's saved inputs, kept for the backward unless the layer is recomputed)
    cp_rotate: str = "p2p"
    #: K/V expanded to every query head before attention (torchtitan's repeat_kv), so
    #: context parallelism exchanges query-head-sized K/V
    cp_kv_expanded: bool = False
    #: expert-parallel token exchange: fused (DeepEP-style dispatch / combine kernels, one
    #: row per token and destination rank) or alltoall (Megatron-Core's
    #: MoEAlltoAllTokenDispatcher: an NCCL all-to-all of every (token, expert) row in the
    #: activation dtype, dispatch and combine)
    ep_dispatcher: str = "fused"
    #: comma-separated modules of RECOMPUTE_MODULES recomputed on top of ``recompute``
    #: (Megatron-Core --recompute-modules layernorm / moe_act / mla_up_proj: their outputs
    #: are discarded after forward and recomputed before their consumer's backward)
    recompute_modules: str = ""
    #: the router probabilities are applied inside the expert activation function, so the
    #: combine's scatter-add keeps no expert output for backward (Megatron-Core >= 0.13)
    moe_probs_in_act: bool = False
    #: the gated MLP's activation input (fc1 output) is saved in FP8, one byte an element
    #: (Megatron-Core activation_func_fp8_input_store; DeepSeek-V3's FP8 SwiGLU input cache)
    act_fp8_store: bool = False
    #: interleaved schedule: micro-batches run back to back on one virtual stage before the
    #: next (N); 0: the pipeline degree, Megatron's interleaved 1F1B
    pp_group: int = 0
    #: FSDP keeping parameters gathered across the step (``fsdp_regather`` False) still
    #: shards the gradients: they are reduce-scattered after each micro-batch (1F1B) or
    #: after each group run back to back on a virtual stage (interleaved), so only one
    #: virtual stage's FP32 accumulation buffer is held unsharded (Llama 3, arXiv
    #: 2407.21783 section 3.3.2)
    fsdp_shard_grads: bool = False
    #: the input embedding and the output head each take one layer's place in the pipeline
    #: (the first virtual stage of the first rank holds only the embedding, the last of the
    #: last rank only the head and loss: Llama 3, arXiv 2407.21783 section 3.3.2), so the
    #: first and last ranks hold one transformer layer fewer
    pp_edge_slots: bool = False
    # rank placement, innermost first (Megatron's --order convention): consecutive ranks
    # (one scale-up domain, then the next) fill the first dimension, then the second, ...
    order: str = "tp-cp-dp-pp"

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "vpp", "dp", "cp", "ep", "etp", "micro_batch",
                     "global_batch", "seq_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise SpecError("must be a positive integer", field=name, value=v)
        if self.zero not in (0, 1, 2, 3):
            raise SpecError("unknown ZeRO stage", field="zero", value=self.zero,
                            allowed="0, 1, 2, 3")
        for name, allowed in (("recompute", RECOMPUTE), ("precision", PRECISIONS),
                              ("pp_schedule", SCHEDULES),
                              ("attention_kernel", ATTENTION_KERNELS),
                              ("fp8_recipe", FP8_RECIPES), ("cp_rotate", CP_ROTATES),
                              ("ep_dispatcher", EP_DISPATCHERS)):
            if getattr(self, name) not in allowed:
                raise SpecError("not a known choice", field=name, value=getattr(self, name),
                                allowed=", ".join(allowed))

        for mod in filter(None, self.recompute_modules.split(",")):
            if mod not in RECOMPUTE_MODULES:
                raise SpecError("not a known recompute module", field="recompute_modules",
                                value=mod, allowed=", ".join(RECOMPUTE_MODULES))
        if not isinstance(self.pp_group, int) or self.pp_group < 0:
            raise SpecError("must be a non-negative integer", field="pp_group",
                            value=self.pp_group)

        dims = self.order.split("-")
        if sorted(dims) != sorted(ORDER_DIMS):
            raise SpecError("must list tp, cp, dp and pp once each, innermost first",
                            field="order", value=self.order, allowed="e.g. tp-cp-dp-pp")

    def stride(self, dim: str) -> int:
        """Rank distance between neighbours of a ``dim`` group: the product of the degrees
        placed inside it (``order``)."""
        return _stride(self.order, self.tp, self.cp, self.dp, self.pp, dim)

    @property
    def world(self) -> int:
        return self.tp * self.pp * self.cp * self.dp

    @property
    def microbatches(self) -> int:
        return self.global_batch // (self.dp * self.micro_batch)

    @property
    def edge_slots(self) -> bool:
        """Whether the embedding and the head take pipeline slots of their own
        (``pp_edge_slots``, with a pipeline to take them)."""
        return self.pp_edge_slots and self.pp > 1

    def pipeline_slots(self, layers: int) -> int:
        """Layer slots the pipeline distributes: the layers, and the embedding and head
        where they take slots of their own."""
        return layers + (2 if self.edge_slots else 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def derive(self, **changes: Any) -> TrainPlan:
        """``dataclasses.replace(self, **changes)`` without ``__post_init__``'s checks, for
        callers that only ever change fields to values known valid (the layout search builds
        hundreds of thousands of plans from the choices of its own space). The result is
        equal to, and hashes as, the checked plan with the same fields."""
        out = object.__new__(TrainPlan)
        d = out.__dict__
        d.update(self.__dict__)
        d.update(changes)
        return out


@lru_cache(maxsize=4096)
def _stride(order: str, tp: int, cp: int, dp: int, pp: int, dim: str) -> int:
    """``TrainPlan.stride`` of the degrees and order given (memoised: the step model asks
    for the same strides of every plan it costs)."""
    deg = {"tp": tp, "cp": cp, "dp": dp, "pp": pp}
    out = 1
    for d in order.split("-"):
        if d == dim:
            return out
        out *= deg[d]
    raise SpecError("unknown parallel dimension", field="order", value=dim,
                    allowed=", ".join(ORDER_DIMS))


def edge_split_only(layers: int, stages: int) -> bool:
    """Whether the layers split evenly over ``stages`` (pp x vpp) only with the embedding and
    the head in slots of their own (``pp_edge_slots``; Megatron-Core's
    account_for_embedding/loss_in_pipeline_split)."""
    return layers % stages != 0 and (layers + 2) % stages == 0


def rank_layers(plan: TrainPlan, layers: int) -> int:
    """Transformer layers on the slowest pipeline rank (all its virtual stages)."""
    p = plan
    return min(math.ceil(p.pipeline_slots(layers) / (p.pp * p.vpp)) * p.vpp, layers)


def check_plan(plan: TrainPlan, ranks: int, layers: int, experts: int, heads: int,
               kv_heads: int, ranks_per_domain: int) -> Infeasible | None:
    """Why a plan cannot run on ``ranks`` ranks, or None. Reasons are short stable keys."""
    p = plan
    if p.world != ranks:
        return Infeasible("world_size", f"tp*pp*cp*dp = {p.world} but the system has "
                                        f"{ranks} ranks")
    if p.global_batch % (p.dp * p.micro_batch):
        return Infeasible("batch_divisibility", f"global batch {p.global_batch} is not a "
                          f"multiple of dp*micro_batch = {p.dp * p.micro_batch}")
    if p.pipeline_slots(layers) < p.pp * p.vpp:
        return Infeasible("too_few_layers", f"{layers} layers cannot fill pp*vpp = "
                          f"{p.pp * p.vpp} stages")
    if heads % p.tp or (kv_heads % p.tp and p.tp % kv_heads):
        return Infeasible("heads_divisibility", f"{heads} heads / {kv_heads} KV heads do not "
                          f"split over tp = {p.tp}")
    if p.seq_len % (2 * p.cp) and p.cp > 1:
        return Infeasible("seq_divisibility", f"sequence {p.seq_len} does not split into "
                          f"2*cp = {2 * p.cp} chunks")
    if experts:
        if experts % p.ep:
            return Infeasible("experts_divisibility", f"{experts} experts do not split over "
                              f"ep = {p.ep}")
        if (p.tp * p.cp * p.dp) % (p.ep * p.etp):
            return Infeasible("expert_group", f"ep*etp = {p.ep * p.etp} does not divide "
                              f"tp*cp*dp = {p.tp * p.cp * p.dp}")
    elif p.ep > 1 or p.etp > 1:
        return Infeasible("no_experts", "ep/etp > 1 on a dense model")
    if p.vpp > 1 and p.pp == 1:
        return Infeasible("vpp_without_pp", "virtual stages need pp > 1")
    # Megatron's interleaved schedule runs whole groups of pp micro-batches; a schedule with
    # a chosen group runs any number (Llama 3, arXiv 2407.21783 section 3.3.2)
    if p.vpp > 1 and not p.pp_group and p.microbatches % p.pp:
        return Infeasible("interleave_microbatches", f"{p.microbatches} micro-batches are "
                          f"not a multiple of pp = {p.pp} (interleaved schedule)")
    if p.pp_group > p.pp:
        return Infeasible("pp_group", f"a group of {p.pp_group} micro-batches exceeds "
                          f"pp = {p.pp}")
    if p.tp > ranks_per_domain:
        return Infeasible("tp_beyond_scale_up", f"tp = {p.tp} spans beyond the scale-up "
                          f"domain of {ranks_per_domain} ranks")
    return None
