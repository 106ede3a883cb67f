"""Memory per device for a training layout.

Mixed-precision training with Adam (Micikevicius et al. 2018; Rajbhandari et al., ZeRO,
SC'20), as Megatron-LM keeps it:

* weights: 2 B/param (bf16; FP8 training keeps bf16 weights and casts per GEMM);
* gradients: 4 B/param (fp32 main grads);
* optimizer: 12 B/param (fp32 master copy + Adam m and v);

per rank, parameters are split by tp (and pp); expert parameters by ep x etp. ZeRO stage 1
shards the optimizer state over the data-parallel group (dp x cp), stage 2 also gradients,
stage 3 (FSDP) also weights (keeping one gathered layer in flight, or - parameters kept
gathered across the step's micro-batches - the stage's whole BF16 weights and unsharded
gradients in the parameter dtype until the step's one reduce-scatter). Activations follow
Korthikanti et al. (arXiv 2205.05198) per layer (linear-layer inputs as one-byte FP8 casts
under FP8, as Transformer Engine saves them), times the micro-batches a stage holds in
flight: ``pp`` on the first stage of 1F1B, ``pp (1 + (pp-1)/(pp vpp))`` interleaved with
Megatron's groups of pp micro-batches (``in_flight_microbatches`` for other group sizes).
What a stack discards or narrows among the saved activations (module-level recompute,
router probabilities inside the expert activation, FP8 activation inputs) is
``workload.ops.SavedActivations``; FSDP with sharded gradients under interleaving holds one
virtual stage's FP32 accumulation buffer instead of the unsharded gradients, and with the
embedding and head in pipeline slots of their own the first rank holds one layer fewer
(``train.step._memory``; Llama 3, arXiv 2407.21783 section 3.3.2).
A fixed workspace covers NCCL buffers, cuBLAS/cuDNN workspaces and allocator slack.
"""

from __future__ import annotations

from dataclasses import dataclass

WEIGHT_BYTES = 2.0
GRAD_BYTES = 4.0
OPTIMIZER_BYTES = 12.0
WORKSPACE_BYTES = 3.0 * 2**30  # assumption: NCCL buffers + GEMM workspaces + fragmentation
USABLE_FRACTION = 0.95  # of HBM capacity, the rest held by the runtime and driver


@dataclass(frozen=True)
class MemoryBreakdown:
    weights: float
    gradients: float
    optimizer: float
    activations: float
    workspace: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + \
            self.workspace

    def to_dict(self) -> dict[str, float]:
        return {"weights": self.weights, "gradients": self.gradients,
                "optimizer": self.optimizer, "activations": self.activations,
                "workspace": self.workspace}


def state_bytes(params_per_rank: float, shard: float, zero: int,
                grad_bytes: float = GRAD_BYTES) -> tuple[float, float, float]:
    """(weights, gradients, optimizer) bytes for ``params_per_rank`` and a ZeRO stage over
    ``shard`` data-parallel ranks; ``grad_bytes`` a main gradient (FP32 4, BF16 2)."""
    w = params_per_rank * WEIGHT_BYTES / (shard if zero >= 3 else 1.0)
    g = params_per_rank * grad_bytes / (shard if zero >= 2 else 1.0)
    o = params_per_rank * OPTIMIZER_BYTES / (shard if zero >= 1 else 1.0)
    return w, g, o


def in_flight_microbatches(pp: int, vpp: int, microbatches: int, schedule: str,
                           group: int = 0) -> float:
    """Micro-batches whose activations the first (fullest) stage holds at once, in units of
    one micro-batch through all the stage's layers.

    Interleaved schedules run ``group`` (N) micro-batches back to back on each virtual stage
    (Megatron-LM: N = pp; Llama 3's schedule, arXiv 2407.21783 section 3.3.2, "allows
    setting N flexibly"). The first rank's warm-up runs N forwards on each of its first
    vpp - 1 virtual stages and 2 (pp - 1) + 1 on the last before the first backward
    returns (Megatron-LM's get_num_warmup_microbatches at N = pp): (vpp - 1) N + 2 pp - 1
    chunk-forwards of 1/vpp of the stage's layers each, pp + (pp - 1)/vpp at N = pp."""
    return min(warmup_microbatches(pp, vpp, schedule, group), float(microbatches))


def warmup_microbatches(pp: int, vpp: int, schedule: str, group: int = 0) -> float:
    """``in_flight_microbatches`` before the cap at the step's micro-batches."""
    if pp == 1:
        return 1.0
    if vpp > 1:
        n = group or pp
        held = ((vpp - 1) * n + 2 * pp - 1) / vpp
    else:
        held = float(pp)
    if schedule == "dualpipe":
        # DualPipe: activations of PP + 1 micro-batches, parameters twice (DeepSeek-V3
        # technical report, arXiv 2412.19437, Table 2)
        held = pp + 1.0
    return held
