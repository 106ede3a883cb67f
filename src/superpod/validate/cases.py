"""The validation case format (``shared/validation/README.md``), read strictly.

A case file is a YAML list of cases. Each case is validated on its own: a broken case becomes
an ``error`` result naming the field, and the rest of the file goes on. Every documented key
is accepted; an undocumented key is an error for that case, never silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from superpod.boundary.models import FileModel
from superpod.errors import SpecError
from superpod.hardware.loading import format_loc, read_yaml, spec_error

#: The published cases shipped with superpod (a copy of ``shared/validation/public.yaml``).
PUBLIC_CASES = Path(__file__).resolve().parent.parent / "validation" / "public.yaml"

Kind = Literal["train", "infer", "collective", "kernel"]
Metric = Literal["step_time_s", "tokens_per_s_per_chip", "mfu", "ttft_ms", "tpot_ms",
                 "busbw_gbps", "algbw_gbps", "per_rank_gbps", "time_us", "tflops",
                 "bandwidth_gbps"]
METRICS_BY_KIND: dict[str, frozenset[str]] = {
    "train": frozenset({"step_time_s", "tokens_per_s_per_chip", "mfu"}),
    "infer": frozenset({"tokens_per_s_per_chip", "ttft_ms", "tpot_ms"}),
    "collective": frozenset({"busbw_gbps", "algbw_gbps", "per_rank_gbps", "time_us"}),
    "kernel": frozenset({"time_us", "tflops", "bandwidth_gbps"}),
}
Pos = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
NonNeg = Annotated[int, Field(ge=0, le=2**53, strict=True)]
Dtype = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4"]


class _Strict(FileModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              defer_build=True)


class CaseSystem(_Strict):
    preset: str
    chips: Pos
    scale_out_gbps: Annotated[float, Field(gt=0)] | None = None
    ranks_per_chip: Pos = 1


class Measured(_Strict):
    metric: Metric
    value: Annotated[float, Field(gt=0)]
    derived_from: str = ""


class ModelConfig(_Strict):
    """The Hugging Face ``config.json`` keys a case may give."""

    name: str = ""
    hidden_size: Pos
    num_hidden_layers: Pos
    num_attention_heads: Pos
    num_key_value_heads: Pos | None = None
    intermediate_size: Pos | None = None
    vocab_size: Pos
    head_dim: Pos | None = None
    tie_word_embeddings: bool = False
    n_routed_experts: NonNeg | None = None
    num_local_experts: NonNeg | None = None
    num_experts_per_tok: NonNeg | None = None
    moe_intermediate_size: Pos | None = None
    n_shared_experts: NonNeg | None = None
    first_k_dense_replace: NonNeg | None = None
    q_lora_rank: Pos | None = None
    kv_lora_rank: Pos | None = None
    qk_nope_head_dim: Pos | None = None
    qk_rope_head_dim: Pos | None = None
    v_head_dim: Pos | None = None
    num_nextn_predict_layers: NonNeg | None = None
    hidden_act: Literal["gelu", "relu2", "silu", "swiglu", "gelu_new", "gelu_pytorch_tanh",
                        "relu"] = "silu"


class Parallel(_Strict):
    tp: Pos = 1
    pp: Pos = 1
    vpp: Pos = 1
    dp: Pos = 1
    cp: Pos = 1
    ep: Pos = 1
    etp: Pos = 1
    sequence_parallel: bool = False
    zero: Annotated[int, Field(ge=0, le=3)] = 0
    micro_batch: Pos | None = None
    global_batch: Pos
    seq_len: Pos
    recompute: Literal["none", "selective", "full"] = "none"
    precision: Literal["bf16", "fp8", "fp4"] = "bf16"
    pp_schedule: Literal["1f1b", "interleaved", "dualpipe", "zero_bubble"] | None = None
    framework: str = ""


class Pool(_Strict):
    """One pool of a disaggregated deployment: its chips and one instance's degrees."""

    chips: Pos
    tp: Pos = 1
    dp: Pos = 1
    ep: Pos = 1
    pp: Pos = 1


class Serving(_Strict):
    phase: Literal["prefill", "decode", "e2e"]
    batch: Pos | None = None
    input_len: NonNeg | None = None
    output_len: NonNeg | None = None
    instance_chips: Pos | None = None
    tp: Pos = 1
    dp: Pos = 1
    ep: Pos = 1
    pp: Pos = 1
    precision: Literal["bf16", "fp16", "fp8", "int8", "fp4", "int4", "mxfp4"] = "bf16"
    kv_precision: Literal["bf16", "fp16", "fp8", "int8", "fp4"] | None = None
    mtp: NonNeg = 0
    slo_tpot_ms: Annotated[float, Field(gt=0)] | None = None
    slo_ttft_ms: Annotated[float, Field(gt=0)] | None = None
    context_len: Pos | None = None
    prefill_chips: Pos | None = None
    decode_chips: Pos | None = None
    max_throughput: bool = False
    framework: str = ""
    prefill: Pool | None = None
    decode: Pool | None = None

    @model_validator(mode="after")
    def _pools(self) -> Serving:
        """Per-pool maps replace ``prefill_chips`` / ``decode_chips`` and the top-level
        layout keys; both pools are given together (README, ``serving``)."""
        if self.prefill is None and self.decode is None:
            return self
        if self.prefill is None or self.decode is None:
            raise ValueError("give both 'prefill' and 'decode' pool maps, or neither")
        clash = [k for k in ("prefill_chips", "decode_chips")
                 if getattr(self, k) is not None]
        clash += [k for k in ("tp", "dp", "ep", "pp") if k in self.model_fields_set]
        if clash:
            raise ValueError(f"per-pool maps replace {', '.join(clash)}: give the degrees "
                             "inside 'prefill' / 'decode'")
        total = self.prefill.chips + self.decode.chips
        if self.instance_chips is not None and self.instance_chips != total:
            raise ValueError(f"instance_chips {self.instance_chips} is not the pools' "
                             f"{self.prefill.chips} + {self.decode.chips} chips")
        return self


class Collective(_Strict):
    op: Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast",
                "send_recv", "ep_dispatch", "ep_combine"]
    bytes: NonNeg | None = None
    ranks: Pos
    dtype: Dtype = "bf16"
    algorithm: str | None = None
    tokens: Pos | None = None
    hidden: Pos | None = None
    top_k: Pos | None = None
    experts: Pos | None = None


class Kernel(_Strict):
    op: Literal["gemm", "attention", "memcpy"]
    m: Pos | None = None
    n: Pos | None = None
    k: Pos | None = None
    batch: Pos | None = None
    seq_len: Pos | None = None
    heads: Pos | None = None
    head_dim: Pos | None = None
    bytes: Pos | None = None
    dtype: Dtype = "bf16"


class Case(_Strict):
    id: str
    kind: Kind
    source: str
    confidence: Literal["high", "medium", "low"]
    system: CaseSystem
    measured: Measured
    notes: str = ""
    model: ModelConfig | None = None
    parallel: Parallel | None = None
    serving: Serving | None = None
    collective: Collective | None = None
    kernel: Kernel | None = None


REQUIRED_SECTION: dict[str, tuple[str, ...]] = {
    "train": ("model", "parallel"), "infer": ("model", "serving"),
    "collective": ("collective",), "kernel": ("kernel",),
}


def parse_case(raw: Any, file: str, index: int) -> Case:
    """Validate one case; a problem is a ``SpecError`` naming ``cases[i] (id)``."""
    label = f"case[{index}]"
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and len(raw["id"]) < 200:
        label = f"case[{index}] ({raw['id']})"
    if not isinstance(raw, dict):
        raise SpecError("a case must be a mapping", file=file, field=label)
    try:
        case = Case.model_validate(raw)
    except ValidationError as exc:
        raise spec_error(exc, file=file, model=Case, prefix=label) from None
    for section in REQUIRED_SECTION[case.kind]:
        if getattr(case, section) is None:
            raise SpecError(f"a '{case.kind}' case needs a '{section}' section", file=file,
                            field=label)
    if case.collective is not None and case.collective.bytes is None and \
            case.collective.op not in ("ep_dispatch", "ep_combine"):
        raise SpecError("a collective case needs 'bytes' (the buffer per rank)", file=file,
                        field=format_loc(("collective", "bytes"), label))
    if case.measured.metric not in METRICS_BY_KIND[case.kind]:
        raise SpecError(f"metric does not apply to kind '{case.kind}'", file=file,
                        field=format_loc(("measured", "metric"), label),
                        value=case.measured.metric,
                        allowed=", ".join(sorted(METRICS_BY_KIND[case.kind])))
    return case


@dataclass(frozen=True)
class BrokenCase:
    """A case that could not be read: its id (or position) and the one-line reason."""

    id: str
    kind: str
    reason: str


def load_cases(path: str) -> list[Case | BrokenCase]:
    """Every case of a file, or the reason that one case cannot be read."""
    doc = read_yaml(path)
    if not isinstance(doc, list):
        raise SpecError("a case file is a YAML list of cases", file=path,
                        value=None if doc is None else type(doc).__name__)
    if not doc:
        raise SpecError("the case file has no cases", file=path)
    out: list[Case | BrokenCase] = []
    for i, raw in enumerate(doc):
        try:
            out.append(parse_case(raw, path, i))
        except SpecError as exc:
            ident = raw.get("id") if isinstance(raw, dict) else None
            kind = raw.get("kind") if isinstance(raw, dict) else None
            out.append(BrokenCase(
                id=ident if isinstance(ident, str) and ident else f"case[{i}]",
                kind=kind if isinstance(kind, str) and kind in REQUIRED_SECTION else "unknown",
                reason=str(exc)))
    return out
