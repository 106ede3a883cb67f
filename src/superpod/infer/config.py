"""What an inference prediction is asked about: the serving layout and the numeric formats.

Layout (one serving instance; SGLang / vLLM / TensorRT-LLM conventions):

* ``tp``  - attention tensor parallel: heads split ``tp`` ways (Megatron column / row split);
* ``dp``  - attention data parallel: ``dp`` copies of attention, each serving ``B / dp`` of
  the instance's ``B`` sequences with its own KV cache (DeepSeek's "DP attention");
* ``pp``  - pipeline stages (layers split ``pp`` ways, ``pp`` micro-batches in flight);
* ``ep``  - expert parallel inside a stage: the routed experts are spread over ``ep`` of the
  stage's ``tp x dp`` ranks, each expert split ``etp = tp dp / ep`` ways. ``ep`` may exceed
  the routed-expert count (redundant and replicated experts, as CloudMatrix-Infer's EP320
  for 256 experts); the load is then shared by the replicas.

An instance has ``tp x dp x pp`` ranks; ``ranks_per_chip`` ranks share one package (dies,
e.g. Ascend 910C: 2), each rank owning 1/r of the package's FLOP/s, HBM and bandwidth.

Formats. Weights (``precision``) set the bytes streamed per parameter and the GEMM's tensor
core format; embedding and LM head stay BF16 (DeepSeek-V3's FP8 checkpoint and NVIDIA
ModelOpt's FP8 / NVFP4 checkpoints leave them unquantised). NVFP4 carries one FP8 scale per
16 elements (NVIDIA, "Introducing NVFP4", 2025): 0.5 + 1/16 bytes a parameter. A format the
chip has no tensor-core peak for is bad input (FP8 on the Ascend 910C, FP4 on Hopper),
never costed silently at another format, unless asked for as **weight-only** quantisation
(``weight_only``; W8A16 / W4A16 kernels such as Marlin, Frantar et al., arXiv 2408.11743):
the weights stream in their stored format and the GEMMs run in 16-bit.

MXFP4 (``mxfp4``; OCP Microscaling Formats v1.0: E2M1 elements, one E8M0 scale per 32, so
0.5 + 1/32 bytes a parameter) is the format gpt-oss ships its experts in. It runs as the
serving frameworks run it (TensorRT-LLM, "Deployment Guide for GPT-OSS", MoE backend support
matrix): on a chip with FP4 tensor cores (Blackwell) the MXFP4 weights meet MXFP8
activations - a mixed-input FP8 x FP4 MMA (PTX ISA, ``tcgen05.mma .kind::f8f6f4``), issued
at the FP8 rate, not FP4's (FP4 throughput needs both operands FP4, ``.kind::mxf4``); on a
chip without (Hopper) the TRITON backend dequantises them in the kernel and multiplies BF16
activations: weight-only W4A16, the weights streamed at 4 bits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from superpod.errors import Infeasible, SpecError

if TYPE_CHECKING:
    from superpod.hardware.specs import Chip
    from superpod.workload.model import ModelSpec

PRECISIONS = ("bf16", "fp16", "fp8", "int8", "fp4", "int4", "mxfp4")
KV_PRECISIONS = ("auto", "bf16", "fp16", "fp8", "int8", "fp4")
PHASES = ("prefill", "decode", "e2e")

#: bytes a weight parameter takes in HBM (block scales included where they are not tiny)
WEIGHT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5 + 1 / 16,
                "int4": 0.5 + 2 / 128, "mxfp4": 0.5 + 1 / 32}
#: bytes of one cached K / V (or MLA latent) element
KV_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5}
#: tensor-core formats to try, in order, for each weight format
GEMM_FORMATS = {"bf16": ("bf16", "fp16"), "fp16": ("fp16", "bf16"),
                "fp8": ("fp8", "bf16", "fp16"), "int8": ("int8", "fp8", "bf16", "fp16"),
                "fp4": ("fp4", "fp8", "bf16", "fp16"), "int4": ("int8", "fp8", "bf16", "fp16"),
               "mxfp4": ("fp8", "bf16", "fp16")}
#: a weight format whose native GEMM needs a tensor-core format beyond its own: MXFP4's
#: mixed FP8 x FP4 MMA exists only where the chip has FP4 tensor cores; elsewhere the
#: weights run weight-only (W4A16, module docstring)
NATIVE_NEEDS = {"mxfp4": "fp4"}
#: MoE dispatch payload element: 8-bit when the weights are 8-bit or narrower (DeepEP
#: dispatches FP8, CloudMatrix-Infer INT8); combine is always BF16
DISPATCH_DTYPE = {"fp8": "fp8", "fp4": "fp8", "int8": "int8", "int4": "int8", "mxfp4": "fp8"}
#: bytes an element of the all-gathered MoE input takes where it is gathered quantised
#: (``InferOptions.moe_allgather``): NVFP4 as FP4 with one FP8 scale a 16-element block
#: (TensorRT-LLM tech blog 3, "FP4 Allgather"; NVFP4: E2M1 + E4M3 per 16); other formats
#: at their dispatch type's bytes - except FP8 with block scales, whose activations
#: TensorRT-LLM quantises inside the fused MoE op ("dynamic quant + scatter + gemm1 + ...",
#: CutlassFusedMoE: ``use_deepseek_fp8_block_scale``, no quantisation before the
#: all-gather; ``runtime.TRTLLM_MOE_ALLGATHER``): BF16
ALLGATHER_BYTES = {"fp4": 0.5 + 1.0 / 16.0}

#: DeepSeek-V3 report (arXiv 2412.19437, §5.4.3): the second token predicted by MTP is
#: accepted 85-90% of the time. superpod takes 0.80, below that range, for sampling at
#: production temperatures (CloudMatrix-Infer assumes ~0.7; the user can set it).
DEFAULT_MTP_ACCEPTANCE = 0.80


@dataclass(frozen=True, kw_only=True)
class ServingLayout:
    """Parallel degrees of one serving instance (module docstring)."""

    tp: int = 1
    dp: int = 1
    ep: int = 1
    pp: int = 1
    ranks_per_chip: int = 1

    @property
    def ranks(self) -> int:
        return self.tp * self.dp * self.pp

    @property
    def stage_ranks(self) -> int:
        return self.tp * self.dp

    @property
    def etp(self) -> int:
        """Tensor-parallel split of each expert: the stage's ranks not used by ``ep``."""
        return max(1, self.stage_ranks // self.ep)

    @property
    def chips(self) -> int:
        return math.ceil(self.ranks / self.ranks_per_chip)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"chips": self.chips}

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in (("tp", self.tp), ("dp", self.dp), ("ep", self.ep),
                                          ("pp", self.pp)) if v > 1]
        r = f" ({self.ranks_per_chip} ranks/chip)" if self.ranks_per_chip > 1 else ""
        return (" ".join(parts) or "tp=1") + r


@dataclass(frozen=True, kw_only=True)
class InferOptions:
    """Numeric formats and serving techniques."""

    precision: str = "bf16"  #: weights
    kv_precision: str = "bf16"  #: KV cache; "auto": ``auto_kv_precision`` (on a chip)
    mtp: int = 0  #: speculative (multi-token-prediction) tokens per step
    mtp_acceptance: float = DEFAULT_MTP_ACCEPTANCE  #: per drafted token
    #: two-batch overlap (two micro-batches, one's communication under the other's
    #: compute); None: whichever is faster, as serving frameworks enable it where it helps
    two_batch_overlap: bool | None = None
    #: busiest expert rank's load over the mean (1.0: perfectly balanced); None: the
    #: measured default for the layout, ``imbalance.ep_imbalance`` (with or without EPLB)
    ep_imbalance: float | None = None
    #: experts placed (and hot ones replicated) by a load balancer such as DeepSeek's EPLB,
    #: as large-EP deployments run (DeepSeek, CloudMatrix-Infer, SGLang / TensorRT-LLM wide
    #: EP); only read when ``ep_imbalance`` is None
    eplb: bool = True
    #: decode batch sizes a rank has CUDA graphs for, padding a batch up to the next one
    #: (TensorRT-LLM ``cuda_graph_config: enable_padding``); () for no padding
    graph_batch_sizes: tuple[int, ...] = ()
    #: weights stored in ``precision``, activations and GEMMs in 16-bit (W8A16 / W4A16)
    weight_only: bool = False
    #: expert-parallel kernel library (a name in ``calibration/collectives.yaml``
    #: ``ep_libraries``); None: the newest one calibrated on the system's fabrics
    ep_library: str | None = None
    #: attention data parallel's MoE exchange is an all-gather of the DP ranks' tokens and
    #: a reduce-scatter of the expert outputs (NCCL) wherever the EP degree is at most the
    #: experts a token selects - TensorRT-LLM's rule (``iteration`` module docstring); False:
    #: dispatch / combine kernels at every EP degree
    moe_allgather: bool = False
    #: FP8 weights stored with 128 x 128 block scales (DeepSeek's published checkpoints):
    #: TensorRT-LLM quantises their activations inside its fused MoE op, after the
    #: all-gather, which therefore carries BF16 (``allgather_bytes``)
    fp8_block_scales: bool = False
    #: layer GEMMs (``workload.ops`` names) whose weights the checkpoint keeps in BF16 beside
    #: lower-precision ones: read at 2 bytes an element and run on the 16-bit tensor cores
    #: (NVIDIA's NVFP4 DeepSeek checkpoints keep the MLA projections but ``o_proj`` in BF16,
    #: ``runtime.MODELOPT_MLA_BF16``)
    bf16_gemms: tuple[str, ...] = ()
    #: MLA decode attention as FP8 multi-query attention - the query quantised to FP8
    #: against the FP8 latent cache, on the FP8 tensor cores - where the KV cache is FP8
    #: and the chip has FP4 tensor cores (Blackwell): TensorRT-LLM's generation MLA kernels
    #: (its tech blog 3, "FP8 KV Cache": "In the generation phase, both Q and KV are
    #: quantized to FP8, and FP8 Multi-Query Attention (MQA) is used"; github.com/NVIDIA/
    #: TensorRT-LLM/blob/02643c1f8dd5e0f3bed08da2b90f515d8884a1d7/docs/source/blogs/
    #: tech_blog/blog3_Optimizing_DeepSeek_R1_Throughput_on_NVIDIA_Blackwell_GPUs.md);
    #: False: 16-bit attention math (FlashMLA)
    fp8_mla_decode: bool = False

    def __post_init__(self) -> None:
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("kv_precision", self.kv_precision, KV_PRECISIONS)
        if self.mtp < 0:
            raise SpecError("must be >= 0", field="mtp", value=self.mtp)
        if not 0.0 <= self.mtp_acceptance <= 1.0:
            raise SpecError("must be in [0, 1]", field="mtp_acceptance",
                            value=self.mtp_acceptance)
        if self.ep_imbalance is not None and self.ep_imbalance < 1.0:
            raise SpecError("must be >= 1 (busiest rank over the mean)", field="ep_imbalance",
                            value=self.ep_imbalance)
        if any(b < 1 for b in self.graph_batch_sizes):
            raise SpecError("must be >= 1", field="graph_batch_sizes",
                            value=self.graph_batch_sizes)
        object.__setattr__(self, "graph_batch_sizes",
                           tuple(sorted(set(self.graph_batch_sizes))))
        object.__setattr__(self, "bf16_gemms", tuple(sorted(set(self.bf16_gemms))))

    def imbalance(self, model: ModelSpec, layout: ServingLayout,
                  prompts: float | None = None) -> float:
        """Busiest expert rank's load over the mean for ``model`` on ``layout``: as set, or
        the measured default (``imbalance.ep_imbalance``; 1 for a dense model or ep = 1).
        ``prompts``: prefill, the prompts in the EP group's micro-batch."""
        if not model.is_moe or layout.ep <= 1:
            return 1.0
        if self.ep_imbalance is not None:
            return self.ep_imbalance
        from superpod.infer.imbalance import ep_imbalance

        return ep_imbalance(model.n_routed_experts, layout.ep, eplb=self.eplb, prompts=prompts)

    def padded_batch(self, batch: int) -> int:
        """The CUDA-graph batch a decode step of ``batch`` sequences a rank runs as: the
        smallest captured size >= ``batch``; past the largest, the batch itself (eager)."""
        for size in self.graph_batch_sizes:
            if size >= batch:
                return size
        return batch

    @property
    def tokens_per_step(self) -> float:
        """Tokens a sequence gains per decode step: 1 + mtp x acceptance (a drafted token
        counts only when every earlier one was accepted: 1 + a + a^2 + ... for mtp > 1)."""
        return 1.0 + sum(self.mtp_acceptance ** i for i in range(1, self.mtp + 1))

    @property
    def weight_bytes(self) -> float:
        return WEIGHT_BYTES[self.precision]

    @property
    def kv_bytes(self) -> float:
        if self.kv_precision == "auto":
            raise SpecError("resolve kv_precision 'auto' for a chip first (for_chip)",
                            field="kv_precision")
        return KV_BYTES[self.kv_precision]

    def for_chip(self, chip: Chip) -> InferOptions:
        """These options with ``kv_precision="auto"`` resolved for ``chip``; a weight format
        the chip has no tensor-core peak for is bad input unless ``weight_only``."""
        check_precision(chip, self.precision, self.weight_only)
        opts = self
        if not self.weight_only and not native_gemm(chip, self.precision):
            opts = replace(opts, weight_only=True)  # MXFP4 without FP4 tensor cores: W4A16
        if opts.kv_precision != "auto":
            return opts
        return replace(opts, kv_precision=auto_kv_precision(chip, opts.precision))

    @property
    def dispatch_dtype(self) -> str:
        """Dispatch payload element: 8-bit for 8-bit-or-narrower GEMM inputs; BF16 when the
        activations stay 16-bit (weight-only)."""
        return "bf16" if self.weight_only else DISPATCH_DTYPE.get(self.precision, "bf16")

    @property
    def allgather_bytes(self) -> float:
        """Bytes an element of the all-gathered MoE input takes (``ALLGATHER_BYTES``)."""
        if self.weight_only or (self.fp8_block_scales and self.precision == "fp8"):
            return 2.0
        return ALLGATHER_BYTES.get(self.precision,
                                   {"fp8": 1.0, "int8": 1.0}.get(self.dispatch_dtype, 2.0))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"tokens_per_step": self.tokens_per_step}


def auto_kv_precision(chip: Chip, precision: str) -> str:
    """The KV format a framework picks when none is set: FP8 for FP8 / FP4 weights on a chip
    with FP8 tensor cores, else BF16. NVIDIA's ModelOpt FP8 and NVFP4 checkpoints (the ones
    TensorRT-LLM publishes its performance with) record ``kv_cache_quant_algo: FP8`` and the
    runtime's ``auto`` KV dtype follows the checkpoint; unquantised and INT8 checkpoints keep
    a 16-bit cache."""
    if precision in ("fp8", "fp4") and "fp8" in chip.peak_flop_per_s:
        return "fp8"
    return "bf16"


def check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError("not a known choice", field=field, value=value,
                        allowed=", ".join(allowed))


def native_gemm(chip: Chip, precision: str) -> bool:
    """Whether ``chip`` runs ``precision`` weights' own GEMM (its first tensor-core format,
    and for MXFP4 the FP4 tensor cores its mixed-input MMA needs)."""
    peaks = chip.peak_flop_per_s
    need = NATIVE_NEEDS.get(precision)
    return GEMM_FORMATS[precision][0] in peaks and (need is None or need in peaks)


def check_precision(chip: Chip, precision: str, weight_only: bool = False) -> None:
    """Bad input when ``precision`` weights have no tensor-core format on ``chip`` to run
    in (its own, or INT8 for INT4's W4A8), unless they are weight-only (16-bit GEMMs) -
    which MXFP4 is wherever it has no native MMA (module docstring)."""
    peaks = chip.peak_flop_per_s
    weight_only = weight_only or precision in NATIVE_NEEDS
    if native_gemm(chip, precision) or (weight_only and ("bf16" in peaks or "fp16" in peaks)):
        return
    native = GEMM_FORMATS[precision][0]
    raise SpecError(f"{chip.id} has no {native} tensor-core peak", field="precision",
                    value=precision,
                    allowed=", ".join(p for p in PRECISIONS if GEMM_FORMATS[p][0] in peaks)
                    + "; or weight-only (--weight-only: stored in this format, GEMMs in "
                      "16-bit)")


def gemm_dtype(chip: Chip, precision: str, weight_only: bool = False) -> str:
    """The tensor-core format GEMMs of ``precision`` weights run in on ``chip`` (16-bit
    when ``weight_only``)."""
    peaks = chip.peak_flop_per_s
    weight_only = weight_only or not native_gemm(chip, precision) and precision in NATIVE_NEEDS
    for fmt in ("bf16", "fp16") if weight_only else GEMM_FORMATS[precision]:
        if fmt in peaks:
            return fmt
    return max(peaks, key=lambda p: peaks[p])


def attention_dtype(chip: Chip) -> str:
    """Flash-style attention runs in 16-bit (FlashMLA, FlashAttention-3 default)."""
    peaks = chip.peak_flop_per_s
    return "bf16" if "bf16" in peaks else "fp16" if "fp16" in peaks else max(
        peaks, key=lambda p: peaks[p])


def decode_attention_dtype(chip: Chip, model: ModelSpec, opts: InferOptions) -> str:
    """The tensor-core format decode attention runs in: FP8 for MLA over an FP8 latent cache
    on a chip with FP4 (Blackwell) tensor cores where the runtime runs FP8 generation MLA
    (``InferOptions.fp8_mla_decode``), else ``attention_dtype``."""
    peaks = chip.peak_flop_per_s
    if (opts.fp8_mla_decode and model.is_mla and opts.kv_precision == "fp8"
            and "fp8" in peaks and "fp4" in peaks):
        return "fp8"
    return attention_dtype(chip)


def check_layout(model: ModelSpec, layout: ServingLayout, ranks_available: int
                 ) -> Infeasible | None:
    """Why ``layout`` cannot serve ``model`` on ``ranks_available`` ranks, or None.

    Reasons are short stable keys; the detail names the degree and what would divide.
    """
    lay = layout
    for name in ("tp", "dp", "ep", "pp", "ranks_per_chip"):
        if getattr(lay, name) < 1:
            return Infeasible("bad_degree", f"{name} = {getattr(lay, name)} must be >= 1")
    if lay.ranks > ranks_available:
        return Infeasible("too_few_chips", f"tp*dp*pp = {lay.ranks} ranks, the system has "
                                            f"{ranks_available}")
    heads, kv = model.num_attention_heads, model.num_key_value_heads
    if heads % lay.tp:
        return Infeasible("tp_does_not_divide_heads",
                          f"tp = {lay.tp} does not divide {heads} attention heads")
    if not model.is_mla and kv % lay.tp and lay.tp % kv:
        return Infeasible("tp_does_not_divide_kv_heads",
                          f"tp = {lay.tp} neither divides nor is a multiple of {kv} KV heads")
    if lay.pp > model.num_hidden_layers:
        return Infeasible("pp_exceeds_layers",
                          f"pp = {lay.pp} > {model.num_hidden_layers} layers")
    if not model.is_moe:
        if lay.ep > 1:
            return Infeasible("ep_without_experts", f"ep = {lay.ep} but the model is dense")
        return None
    if lay.stage_ranks % lay.ep:
        return Infeasible("ep_does_not_divide_ranks",
                          f"ep = {lay.ep} does not divide the stage's tp*dp = "
                          f"{lay.stage_ranks} ranks")
    if model.moe_intermediate_size % lay.etp:
        return Infeasible("etp_does_not_divide_experts",
                          f"expert tensor split tp*dp/ep = {lay.etp} does not divide "
                          f"moe_intermediate_size {model.moe_intermediate_size}")
    return None


LAYOUT_KEYS = ("tp", "dp", "ep", "pp")


def parse_layout(text: str, field: str, ranks_per_chip: int = 1) -> ServingLayout:
    """A pool layout from ``"tp=1,dp=4,ep=4"`` (keys tp, dp, ep, pp; absent = 1); strict:
    an unknown key, a repeated key or a degree below 1 is a ``SpecError`` naming ``field``."""
    degrees: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, val = part.partition("=")
        key = key.strip()
        if not sep or key not in LAYOUT_KEYS:
            raise SpecError("expected KEY=N pairs", field=field, value=part,
                            allowed=", ".join(LAYOUT_KEYS))
        if key in degrees:
            raise SpecError("degree given twice", field=field, value=key)
        try:
            n = int(val)
        except ValueError:
            raise SpecError("a degree is a whole number", field=field, value=part) from None
        if n < 1:
            raise SpecError("a degree must be >= 1", field=field, value=part)
        degrees[key] = n
    if not degrees:
        raise SpecError("no degrees given", field=field, value=text,
                        allowed=", ".join(LAYOUT_KEYS))
    return ServingLayout(**degrees, ranks_per_chip=ranks_per_chip)
