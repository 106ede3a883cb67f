"""The inference commands, added to the ``superpod`` app by ``register``:

* ``superpod infer``     - one serving configuration: prefill, decode, end to end, or
  disaggregated pools; TTFT, TPOT, tokens/s (per chip), memory and a breakdown;
* ``superpod plan infer`` - the layout with the most tokens/s per chip within TPOT / TTFT SLOs;
* ``superpod serve-sim`` - the request-level simulation (Poisson arrivals or a trace).

A thin layer like ``superpod.cli``: parse, call ``superpod.infer``, print a rich table or
``--json`` (SI units). Bad input prints one line and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from superpod.cli.choices import OFFLOAD_TIERS, PREFIX_TIERS, choice
from superpod.cli.common import Chips, Json, Report, api_defaults, err
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import show_result as _show
from superpod.infer.config import (
    KV_PRECISIONS,
    PHASES,
    PRECISIONS,
)

_I = api_defaults("infer")
_PI = api_defaults("plan_infer")
_S = api_defaults("serve_sim")

SystemArg = Annotated[str, typer.Option("--system", "-s",
                                        help="System id, or a YAML file (FILE or FILE:ID).")]
ModelArg = Annotated[str, typer.Option("--model", "-m",
                                       help="Preset id or a Hugging Face config.json path.")]
InputLen = Annotated[int, typer.Option(min=1, help="Prompt tokens per request.")]
OutputLen = Annotated[int, typer.Option(min=1, help="Generated tokens per request.")]
Precision = Annotated[str, choice(PRECISIONS, "Weights.")]
KvPrecision = Annotated[str, choice(
    KV_PRECISIONS, "KV cache (auto: FP8 with FP8/FP4 weights on chips with FP8, else BF16).")]
Mtp = Annotated[int, typer.Option(min=0, help="Speculative (MTP) tokens per decode step.")]
WeightOnly = Annotated[bool, typer.Option(
    "--weight-only", help="Weight-only quantisation: weights stored in --precision, GEMMs in "
                          "16-bit (W8A16 / W4A16); needed for a format the chip has no "
                          "tensor-core peak for.")]
MtpAcc = Annotated[float, typer.Option(
    min=0.0, max=1.0, help="Acceptance per drafted token (DeepSeek-V3 report: 85-90%).")]
Degree = Annotated[int, typer.Option(min=1)]
SloTpot = Annotated[float | None, typer.Option(min=0.001, help="TPOT SLO in milliseconds.")]
SloTtft = Annotated[float | None, typer.Option(min=0.001, help="TTFT SLO in milliseconds.")]
PrefillLayout = Annotated[str | None, typer.Option(
    help="Disaggregated: one prefill instance's degrees, e.g. 'dp=4,ep=4' (tp, dp, ep, pp).")]
DecodeLayout = Annotated[str | None, typer.Option(
    help="Disaggregated: one decode instance's degrees, e.g. 'dp=32,ep=32'.")]
PrefixHit = Annotated[float | None, typer.Option(
    "--prefix-cache-hit", help="Fraction of prompt tokens whose KV is cached (0 <= H < 1): "
                               "loaded over the memory path instead of recomputed.")]
PrefixTier = Annotated[str | None, choice(
    PREFIX_TIERS, "Where the prefix cache lives (default: pool where host memory is pooled, "
                  "else host).", "--prefix-cache-tier")]


RanksPerChip = Annotated[int | None, typer.Option(
    min=1, help="Ranks per package (default: the devices the chip exposes, from the catalog; "
                "Ascend 910C: 2, one per die).")]
Eplb = Annotated[bool, typer.Option(
    "--eplb/--no-eplb", help="Experts placed by load (DeepSeek EPLB), as large-EP "
                             "deployments run; --no-eplb: the measured unbalanced router.")]


@_friendly
def infer(system_arg: SystemArg, model: ModelArg,
          phase: Annotated[str, choice(PHASES)] = _I["phase"],
          batch: Annotated[int | None, typer.Option(
              min=1, help="Sequences per instance (default: the most throughput within "
                          "memory and the SLOs).")] = _I["batch"],
          input_len: InputLen = _I["input_len"], output_len: OutputLen = _I["output_len"],
          context_len: Annotated[float | None, typer.Option(
              help="Decode: mean KV length (default input + output/2).")] = _I["context_len"],
          tp: Degree = _I["tp"], dp: Annotated[int | None, typer.Option(
              min=1, help="Attention data parallel (default: fills the chips).")] = _I["dp"],
          ep: Degree = _I["ep"], pp: Degree = _I["pp"],
          ranks_per_chip: RanksPerChip = _I["ranks_per_chip"],
          precision: Precision = _I["precision"], kv_precision: KvPrecision = _I["kv_precision"],
          mtp: Mtp = _I["mtp"],
          weight_only: WeightOnly = _I["weight_only"],
          mtp_acceptance: MtpAcc = _I["mtp_acceptance"],
          two_batch_overlap: Annotated[bool | None, typer.Option(
              "--two-batch-overlap/--no-two-batch-overlap",
              help="Overlap communication with a second micro-batch (default: if faster).")]
          = _I["two_batch_overlap"],
          eplb: Eplb = _I["eplb"],
          ep_imbalance: Annotated[float | None, typer.Option(
              min=1.0, help="Busiest expert rank's load over the mean (default: measured, "
                            "by EP size).")] = _I["ep_imbalance"],
          ep_library: Annotated[str | None, typer.Option(
              help="EP kernel library version, e.g. deepep-2025-06, "
                   "cloudmatrix_infer-2025-06 (default: the newest calibrated on the "
                   "system's fabrics).")] = _I["ep_library"],
          slo_tpot_ms: SloTpot = _I["slo_tpot_ms"], slo_ttft_ms: SloTtft = _I["slo_ttft_ms"],
          prefill_chips: Annotated[int | None, typer.Option(
              min=1, help="Disaggregated: chips of the prefill pool.")] = _I["prefill_chips"],
          decode_chips: Annotated[int | None, typer.Option(
              min=1, help="Disaggregated: chips of the decode pool.")] = _I["decode_chips"],
          prefill_layout: PrefillLayout = _I["prefill_layout"],
          decode_layout: DecodeLayout = _I["decode_layout"],
          prefix_cache_hit: PrefixHit = _I["prefix_cache_hit"],
          prefix_cache_tier: PrefixTier = _I["prefix_cache_tier"],
          kv_spill: Annotated[str | None, choice(
              OFFLOAD_TIERS, "With --batch: KV cache beyond the HBM pool spills here, read "
                             "back every decode step.")] = _I["kv_spill"],
          weight_offload: Annotated[float | None, typer.Option(
              help="With --batch: this fraction (0-1) of the weights lives in host or pooled "
                   "memory (--weight-offload-tier) and streams in each forward.")]
          = _I["weight_offload"],
          weight_offload_tier: Annotated[str | None, choice(
              OFFLOAD_TIERS,
              "Default: pool where host memory is pooled.")] = _I["weight_offload_tier"],
          chips: Chips = _I["chips"], as_json: Json = False) -> None:
    """One serving layout: TTFT, TPOT, tokens/s, memory, breakdown."""
    from superpod import api
    from superpod.report.infer import infer_view

    row = api.infer(
        system_arg, model, phase=phase, batch=batch, input_len=input_len,
        output_len=output_len, context_len=context_len, tp=tp, dp=dp, ep=ep, pp=pp,
        ranks_per_chip=ranks_per_chip, precision=precision, kv_precision=kv_precision,
        mtp=mtp, weight_only=weight_only, mtp_acceptance=mtp_acceptance,
        two_batch_overlap=two_batch_overlap, eplb=eplb, ep_imbalance=ep_imbalance,
        ep_library=ep_library, slo_tpot_ms=slo_tpot_ms, slo_ttft_ms=slo_ttft_ms,
        prefill_chips=prefill_chips,
        decode_chips=decode_chips, prefill_layout=prefill_layout, decode_layout=decode_layout,
        prefix_cache_hit=prefix_cache_hit, prefix_cache_tier=prefix_cache_tier,
        kv_spill=kv_spill, weight_offload=weight_offload,
        weight_offload_tier=weight_offload_tier, chips=chips)
    _show(row, as_json, infer_view)


@_friendly
def plan_infer(system_arg: SystemArg, model: ModelArg,
               slo_tpot_ms: Annotated[float, typer.Option(
                   min=0.001, help="TPOT SLO in milliseconds.")],
               slo_ttft_ms: SloTtft = _PI["slo_ttft_ms"], input_len: InputLen = _PI["input_len"],
               output_len: OutputLen = _PI["output_len"], precision: Precision = _PI["precision"],
               kv_precision: KvPrecision = _PI["kv_precision"], mtp: Mtp = _PI["mtp"],
               weight_only: WeightOnly = _PI["weight_only"],
               mtp_acceptance: MtpAcc = _PI["mtp_acceptance"], eplb: Eplb = _PI["eplb"],
               disaggregate: Annotated[bool, typer.Option(
                   help="Also try prefill / decode pools.")] = _PI["disaggregate"],
               top: Annotated[int, typer.Option(min=1)] = _PI["top"],
               prefill_layout: PrefillLayout = _PI["prefill_layout"],
               decode_layout: DecodeLayout = _PI["decode_layout"],
               prefix_cache_hit: PrefixHit = _PI["prefix_cache_hit"],
               prefix_cache_tier: PrefixTier = _PI["prefix_cache_tier"],
               ranks_per_chip: RanksPerChip = _PI["ranks_per_chip"],
               all_chips: Annotated[bool, typer.Option(
                   "--all-chips/--allow-idle-chips",
                   help="Only layouts whose replicas (or pools) use every chip of the system; "
                        "by default a layout may leave chips idle (each candidate says how "
                        "many).")] = _PI["all_chips"],
               chips: Chips = _PI["chips"], report: Report = None,
               as_json: Json = False) -> None:
    """Serving layouts with the most tokens/s per chip within the SLOs."""
    from superpod import api
    from superpod.report.infer import plan_infer_view

    doc = api.plan_infer(
        system_arg, model, slo_tpot_ms, slo_ttft_ms=slo_ttft_ms, input_len=input_len,
        output_len=output_len, precision=precision, kv_precision=kv_precision, mtp=mtp,
        weight_only=weight_only, mtp_acceptance=mtp_acceptance, eplb=eplb,
        disaggregate=disaggregate, top=top, prefill_layout=prefill_layout,
        decode_layout=decode_layout, prefix_cache_hit=prefix_cache_hit,
        prefix_cache_tier=prefix_cache_tier, ranks_per_chip=ranks_per_chip,
        all_chips=all_chips, chips=chips)
    if report is not None:
        from superpod.api.infer import plan_infer_frontier
        from superpod.report.html import write_report
        from superpod.report.html_views import plan_infer_report

        points = plan_infer_frontier(
            system_arg, model, doc, input_len=input_len, output_len=output_len,
            precision=precision, kv_precision=kv_precision, mtp=mtp, weight_only=weight_only,
            mtp_acceptance=mtp_acceptance, eplb=eplb, chips=chips)
        write_report(report, plan_infer_report(doc, f"plan infer: {_title(system_arg, model)}",
                                               points))
    _show(doc, as_json, plan_infer_view)
    if not doc["candidates"]:
        if as_json:  # the suggestion is in the JSON document
            raise typer.Exit(1)
        sug = doc["suggestion"]
        err.print(f"infeasible: {sug['reason']}" + (
            f"; nearest that works: {sug['option']} {sug['value_s'] * 1e3:g}" if sug["value_s"]
            else "; no SLO up to 64x this one works either"), highlight=False, markup=False)
        raise typer.Exit(1)


def _title(system_arg: str, model: str) -> str:
    """``system id, model name`` for a report's title."""
    from superpod.api.resolve import system_arg as parse
    from superpod.workload.model import load_model

    return f"{parse(system_arg)[0]}, {load_model(model).name}"


@_friendly
def serve_sim(system_arg: SystemArg, model: ModelArg,
              rate: Annotated[float | None, typer.Option(
                  help="Poisson arrivals per second (with --trace: when it has no "
                       "arrival_s).")] = _S["rate"],
              duration: Annotated[float, typer.Option(help="Seconds of arrivals.")]
              = _S["duration"],
              input_len: InputLen = _S["input_len"], output_len: OutputLen = _S["output_len"],
              trace: Annotated[Path | None, typer.Option(
                  help="CSV / JSON trace: input_len, output_len[, arrival_s].")] = _S["trace"],
              seed: int = _S["seed"],
              max_batch: Annotated[int | None, typer.Option(
                  min=1, help="Batch slots (default: as many as the KV cache holds).")]
              = _S["max_batch"],
              tp: Degree = _S["tp"], dp: Annotated[int | None, typer.Option(min=1)] = _S["dp"],
              ep: Degree = _S["ep"], pp: Degree = _S["pp"],
              ranks_per_chip: RanksPerChip = _S["ranks_per_chip"],
              precision: Precision = _S["precision"],
              kv_precision: KvPrecision = _S["kv_precision"],
              weight_only: WeightOnly = _S["weight_only"],
              mtp: Mtp = _S["mtp"], mtp_acceptance: MtpAcc = _S["mtp_acceptance"],
              eplb: Eplb = _S["eplb"],
              progress: Annotated[bool | None, typer.Option(
                  "--progress/--no-progress",
                  help="A progress bar on stderr (default: when stderr is a terminal and "
                       "no --json).")] = None,
              prefix_cache_hit: PrefixHit = _S["prefix_cache_hit"],
              prefix_cache_tier: PrefixTier = _S["prefix_cache_tier"],
              chips: Chips = _S["chips"], report: Report = None,
              as_json: Json = False) -> None:
    """Request-level simulation: TTFT / TPOT / latency percentiles.

    Also the throughput.

    A trace with prefix_id and prefix_len columns caches shared prefixes (or give
    --prefix-cache-hit for every request)."""
    from superpod import api
    from superpod.report.infer import sim_view

    row = api.serve_sim(
        system_arg, model, rate=rate, duration=duration, input_len=input_len,
        output_len=output_len, trace=trace, seed=seed, max_batch=max_batch, tp=tp, dp=dp,
        ep=ep, pp=pp, ranks_per_chip=ranks_per_chip, precision=precision,
        kv_precision=kv_precision, weight_only=weight_only, mtp=mtp,
        mtp_acceptance=mtp_acceptance, eplb=eplb, progress=_auto_progress(progress, as_json),
        prefix_cache_hit=prefix_cache_hit, prefix_cache_tier=prefix_cache_tier, chips=chips)
    if report is not None and not api.is_infeasible(row):
        from superpod.report.html import write_report
        from superpod.report.html_views import serve_sim_report

        write_report(report, serve_sim_report(row, f"serve-sim: {_title(system_arg, model)}"))
    _show(row, as_json, sim_view)


class _WatchGroups(list):  # type: ignore[type-arg]
    """A Typer app's ``registered_groups`` that attaches our command to the ``plan`` group
    when it is added (``superpod.cli`` registers us before it defines ``plan``)."""

    def __init__(self, items: list[Any], attach: Any) -> None:
        super().__init__(items)
        self.attach = attach

    def append(self, info: Any) -> None:
        super().append(info)
        if getattr(info, "name", None) == "plan":
            self.attach(info.typer_instance)


def register(app: typer.Typer) -> None:
    """Add ``infer``, ``serve-sim`` and ``plan infer`` to a Typer app (``superpod.cli.app``)."""
    app.command(name="infer")(infer)
    app.command(name="serve-sim")(serve_sim)

    def attach(plan: typer.Typer) -> None:
        plan.command(name="infer")(plan_infer)

    for info in app.registered_groups:
        if info.name == "plan":
            attach(info.typer_instance)  # type: ignore[arg-type]
            return
    app.registered_groups = _WatchGroups(app.registered_groups, attach)


def _auto_progress(flag: bool | None, as_json: bool) -> bool:
    """``--progress`` / ``--no-progress``, or by default: stderr a terminal, no JSON."""
    from superpod.progress import wanted

    return wanted(as_json) if flag is None else flag
