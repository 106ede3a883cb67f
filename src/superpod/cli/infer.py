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
from superpod.cli.common import Chips, Json, err
from superpod.cli.common import emit_json as _emit_json
from superpod.cli.common import friendly as _friendly
from superpod.cli.common import render as _render
from superpod.errors import Infeasible, SpecError
from superpod.infer.config import (
    DEFAULT_MTP_ACCEPTANCE,
    KV_PRECISIONS,
    PHASES,
    PRECISIONS,
    InferOptions,
    ServingLayout,
    check_choice,
)

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


def _system(system_arg: str, chips: int | None) -> Any:
    from superpod import api
    from superpod.cli.common import system_arg as parse

    sid, files = parse(system_arg)
    return api.system(sid, chips, files)


RanksPerChip = Annotated[int | None, typer.Option(
    min=1, help="Ranks per package (default: the devices the chip exposes, from the catalog; "
                "Ascend 910C: 2, one per die).")]
Eplb = Annotated[bool, typer.Option(
    "--eplb/--no-eplb", help="Experts placed by load (DeepSeek EPLB), as large-EP "
                             "deployments run; --no-eplb: the measured unbalanced router.")]


def _options(precision: str, kv_precision: str, mtp: int, mtp_acceptance: float,
             tbo: bool | None, **experts: Any) -> InferOptions:
    """``experts``: ``eplb`` and ``ep_imbalance`` (``infer.imbalance``) when given."""
    check_choice("--precision", precision, PRECISIONS)
    check_choice("--kv-precision", kv_precision, KV_PRECISIONS)
    return InferOptions(precision=precision, kv_precision=kv_precision, mtp=mtp,
                        mtp_acceptance=mtp_acceptance, two_batch_overlap=tbo, **experts)


def _layout(sysm: Any, tp: int, dp: int | None, ep: int, pp: int, r: int) -> ServingLayout:
    ranks = sysm.counts.chips * r
    if dp is None:
        if ranks % (tp * pp):
            raise SpecError(f"tp*pp = {tp * pp} does not divide the {ranks} ranks",
                            field="--tp", value=tp)
        dp = ranks // (tp * pp)
    return ServingLayout(tp=tp, dp=dp, ep=ep, pp=pp, ranks_per_chip=r)


def _fail(res: Infeasible, as_json: bool) -> None:
    if as_json:
        _emit_json(res.to_dict())
    else:
        err.print(f"infeasible ({res.reason}): {res.detail}", highlight=False)
    raise typer.Exit(1)


@_friendly
def infer(system_arg: SystemArg, model: ModelArg,
          phase: Annotated[str, choice(PHASES)] = "e2e",
          batch: Annotated[int | None, typer.Option(
              min=1, help="Sequences per instance (default: the most throughput within "
                          "memory and the SLOs).")] = None,
          input_len: InputLen = 1024, output_len: OutputLen = 1024,
          context_len: Annotated[float | None, typer.Option(
              help="Decode: mean KV length (default input + output/2).")] = None,
          tp: Degree = 1, dp: Annotated[int | None, typer.Option(
              min=1, help="Attention data parallel (default: fills the chips).")] = None,
          ep: Degree = 1, pp: Degree = 1,
          ranks_per_chip: RanksPerChip = None,
          precision: Precision = "bf16", kv_precision: KvPrecision = "auto", mtp: Mtp = 0,
          weight_only: WeightOnly = False,
          mtp_acceptance: MtpAcc = DEFAULT_MTP_ACCEPTANCE,
          two_batch_overlap: Annotated[bool | None, typer.Option(
              "--two-batch-overlap/--no-two-batch-overlap",
              help="Overlap communication with a second micro-batch (default: if faster).")]
          = None,
          eplb: Eplb = True,
          ep_imbalance: Annotated[float | None, typer.Option(
              min=1.0, help="Busiest expert rank's load over the mean (default: measured, "
                            "by EP size).")] = None,
          slo_tpot_ms: SloTpot = None, slo_ttft_ms: SloTtft = None,
          prefill_chips: Annotated[int | None, typer.Option(
              min=1, help="Disaggregated: chips of the prefill pool.")] = None,
          decode_chips: Annotated[int | None, typer.Option(
              min=1, help="Disaggregated: chips of the decode pool.")] = None,
          prefill_layout: PrefillLayout = None, decode_layout: DecodeLayout = None,
          prefix_cache_hit: PrefixHit = None, prefix_cache_tier: PrefixTier = None,
          kv_spill: Annotated[str | None, choice(
              OFFLOAD_TIERS, "With --batch: KV cache beyond the HBM pool spills here, read "
                             "back every decode step.")] = None,
          weight_offload: Annotated[float | None, typer.Option(
              help="With --batch: this fraction (0-1) of the weights lives in host or pooled "
                   "memory (--weight-offload-tier) and streams in each forward.")] = None,
          weight_offload_tier: Annotated[str | None, choice(
              OFFLOAD_TIERS, "Default: pool where host memory is pooled.")] = None,
          chips: Chips = None, as_json: Json = False) -> None:
    """One serving layout: TTFT, TPOT, tokens/s, memory, breakdown."""
    from superpod.infer.serving import Workload, best_batch, disaggregated, serve
    from superpod.report.infer import infer_view
    from superpod.workload.model import load_model

    check_choice("--phase", phase, PHASES)
    sysm = _system(system_arg, chips)
    ranks_per_chip = ranks_per_chip or sysm.chip.devices
    _check_prefix(sysm, prefix_cache_hit, prefix_cache_tier)
    spec = load_model(model)
    opts = _options(precision, kv_precision, mtp, mtp_acceptance, two_batch_overlap,
                    eplb=eplb, ep_imbalance=ep_imbalance, weight_only=weight_only)
    work = Workload(input_len=input_len, output_len=output_len, context_len=context_len)
    slo_tpot = slo_tpot_ms / 1e3 if slo_tpot_ms else None
    slo_ttft = slo_ttft_ms / 1e3 if slo_ttft_ms else None
    res: Any
    if weight_offload_tier is not None and weight_offload is None:
        raise SpecError("--weight-offload-tier needs --weight-offload",
                        field="--weight-offload-tier", value=weight_offload_tier)
    if kv_spill is not None and weight_offload is not None:
        raise SpecError("--kv-spill and --weight-offload are one or the other",
                        field="--weight-offload", value=weight_offload)
    if (kv_spill is not None or weight_offload is not None) and (prefill_chips or decode_chips):
        raise SpecError("--kv-spill / --weight-offload serve one instance: leave out "
                        "--prefill-chips / --decode-chips", field="--kv-spill", value=kv_spill)
    if prefill_layout is not None or decode_layout is not None:
        lay = _pool_layout(sysm, prefill_layout, "--prefill-layout", tp, dp, ep, pp,
                           ranks_per_chip, prefill_chips)
        res = _pools(sysm, spec, opts, work, batch, slo_tpot, slo_ttft, lay,
                     _pool_layout(sysm, decode_layout, "--decode-layout", tp, dp, ep, pp,
                                  ranks_per_chip, decode_chips),
                     prefill_chips, decode_chips)
    elif prefill_chips or decode_chips:
        lay = _layout_for(sysm, tp, dp, ep, pp, ranks_per_chip,
                          min(x for x in (prefill_chips, decode_chips) if x))
        res = disaggregated(sysm, spec, opts, work, prefill_layout=lay, decode_layout=lay,
                            prefill_batch=batch or lay.dp, decode_batch=batch or lay.dp,
                            prefill_chips=prefill_chips, decode_chips=decode_chips)
    elif kv_spill is not None:
        lay = _layout(sysm, tp, dp, ep, pp, ranks_per_chip)
        res = _spill(sysm, spec, lay, opts, phase, batch, work, kv_spill)
    elif weight_offload is not None:
        from superpod.infer.spill_hook import serve_with_weight_offload
        from superpod.train.offload_eval import offload_tier

        if batch is None:
            raise SpecError("--weight-offload needs --batch", field="--weight-offload",
                            value=weight_offload)
        lay = _layout(sysm, tp, dp, ep, pp, ranks_per_chip)
        res = serve_with_weight_offload(
            sysm, spec, lay, opts, phase=phase, batch=batch, work=work, fraction=weight_offload,
            tier=offload_tier(sysm, weight_offload_tier, field="--weight-offload-tier"))
    else:
        lay = _layout(sysm, tp, dp, ep, pp, ranks_per_chip)
        res = (serve(sysm, spec, lay, opts, phase=phase, batch=batch, work=work) if batch
               else best_batch(sysm, spec, lay, opts, phase=phase, work=work,
                               slo_tpot_s=slo_tpot, slo_ttft_s=slo_ttft))
    if isinstance(res, Infeasible):
        _fail(res, as_json)
        return
    from superpod import api
    from superpod.trust.annotate import annotate_infer

    base = res if isinstance(res, dict) else res.to_dict()
    row = _with_prefix(base, sysm, spec, lay, opts, prefix_cache_hit, prefix_cache_tier)
    row = annotate_infer(row, sysm, api.catalog(), spec, opts.precision)
    if as_json:
        _emit_json(row)
    else:
        _render(infer_view(row))


def _fixed(text: str | None, field: str, r: int) -> ServingLayout | None:
    from superpod.infer.config import parse_layout

    return parse_layout(text, field, r) if text is not None else None


def _pool_layout(sysm: Any, text: str | None, field: str, tp: int, dp: int | None, ep: int,
                 pp: int, r: int, chips: int | None) -> ServingLayout:
    """A pool's instance layout: as ``text`` gives it, else the top-level degrees over the
    pool's chips (or the whole system)."""
    from superpod.infer.config import parse_layout

    if text is not None:
        return parse_layout(text, field, r)
    return _layout_for(sysm, tp, dp, ep, pp, r, chips or sysm.counts.chips)


def _pools(sysm: Any, spec: Any, opts: InferOptions, work: Any, batch: int | None,
           slo_tpot: float | None, slo_ttft: float | None, p_lay: ServingLayout,
           d_lay: ServingLayout, prefill_chips: int | None, decode_chips: int | None
           ) -> Any:
    """Prefill and decode pools with their own layouts: the prefill instances at their
    knee batch, the decode instances at ``batch`` or the most tokens/s within the SLO."""
    from superpod.infer.search import PREFILL_KNEE
    from superpod.infer.serving import best_batch, disaggregated

    pre = best_batch(sysm, spec, p_lay, opts, phase="prefill", work=work,
                     slo_ttft_s=slo_ttft, knee=PREFILL_KNEE)
    if isinstance(pre, Infeasible):
        return Infeasible(pre.reason, f"prefill pool: {pre.detail}")
    if batch is None:
        dec = best_batch(sysm, spec, d_lay, opts, phase="decode_pool", work=work,
                         slo_tpot_s=slo_tpot)
        if isinstance(dec, Infeasible):
            return Infeasible(dec.reason, f"decode pool: {dec.detail}")
        batch = dec.batch
    return disaggregated(sysm, spec, opts, work, prefill_layout=p_lay, decode_layout=d_lay,
                         prefill_batch=pre.batch, decode_batch=batch,
                         prefill_chips=prefill_chips, decode_chips=decode_chips)
def _spill(sysm: Any, spec: Any, lay: ServingLayout, opts: InferOptions, phase: str,
           batch: int | None, work: Any, tier: str) -> dict[str, Any] | Infeasible:
    from superpod.infer.spill_hook import serve_with_spill
    from superpod.train.offload_eval import offload_tier

    if batch is None or phase not in ("decode", "e2e"):
        raise SpecError("--kv-spill needs --batch and --phase decode or e2e",
                        field="--kv-spill", value=tier)
    t = offload_tier(sysm, tier, field="--kv-spill")
    return serve_with_spill(sysm, spec, lay, opts, phase=phase, batch=batch, work=work, tier=t)


def _check_prefix(sysm: Any, hit: float | None, tier: str | None, *,
                  trace: bool = False) -> None:
    """Bad prefix-cache options are one line before anything runs (a trace may carry the
    prefixes that a tier is given for)."""
    if hit is None:
        if tier is not None and trace:
            from superpod.infer.prefix_hook import cache_tier

            cache_tier(sysm, tier)
        elif tier is not None:
            raise SpecError("--prefix-cache-tier needs --prefix-cache-hit",
                            field="--prefix-cache-tier", value=tier)
        return
    from superpod.infer.prefix_cache import check_hit_ratio
    from superpod.infer.prefix_hook import cache_tier

    check_hit_ratio(hit, "--prefix-cache-hit")
    cache_tier(sysm, tier)


def _with_prefix(row: dict[str, Any], sysm: Any, spec: Any, lay: ServingLayout,
                 opts: InferOptions, hit: float | None, tier: str | None) -> dict[str, Any]:
    if hit is None:
        return row
    from superpod.infer.prefix_hook import apply_prefix_cache

    return apply_prefix_cache(row, sysm, spec, lay, opts, hit, tier_name=tier)


def _layout_for(sysm: Any, tp: int, dp: int | None, ep: int, pp: int, r: int,
                chips: int) -> ServingLayout:
    """An instance layout of ``chips`` chips (disaggregated pools)."""
    if dp is None:
        ranks = chips * r
        if ranks % (tp * pp):
            raise SpecError(f"tp*pp = {tp * pp} does not divide the pool's {ranks} ranks",
                            field="--tp", value=tp)
        dp = ranks // (tp * pp)
    return ServingLayout(tp=tp, dp=dp, ep=ep, pp=pp, ranks_per_chip=r)


@_friendly
def plan_infer(system_arg: SystemArg, model: ModelArg,
               slo_tpot_ms: Annotated[float, typer.Option(
                   min=0.001, help="TPOT SLO in milliseconds.")],
               slo_ttft_ms: SloTtft = None, input_len: InputLen = 1024,
               output_len: OutputLen = 1024, precision: Precision = "bf16",
               kv_precision: KvPrecision = "auto", mtp: Mtp = 0,
               weight_only: WeightOnly = False,
               mtp_acceptance: MtpAcc = DEFAULT_MTP_ACCEPTANCE, eplb: Eplb = True,
               disaggregate: Annotated[bool, typer.Option(
                   help="Also try prefill / decode pools.")] = True,
               top: Annotated[int, typer.Option(min=1)] = 5,
               prefill_layout: PrefillLayout = None, decode_layout: DecodeLayout = None,
               prefix_cache_hit: PrefixHit = None, prefix_cache_tier: PrefixTier = None,
               ranks_per_chip: RanksPerChip = None,
               all_chips: Annotated[bool, typer.Option(
                   "--all-chips/--allow-idle-chips",
                   help="Only layouts whose replicas (or pools) use every chip of the system; "
                        "by default a layout may leave chips idle (each candidate says how "
                        "many).")] = False,
               chips: Chips = None, as_json: Json = False) -> None:
    """Serving layouts with the most tokens/s per chip within the SLOs."""
    from superpod import api
    from superpod.infer.search import plan_infer as search
    from superpod.infer.serving import Workload
    from superpod.report.infer import plan_infer_view
    from superpod.trust.annotate import annotate_infer
    from superpod.workload.model import load_model

    sysm = _system(system_arg, chips)
    _check_prefix(sysm, prefix_cache_hit, prefix_cache_tier)
    opts = _options(precision, kv_precision, mtp, mtp_acceptance, None, eplb=eplb,
                    weight_only=weight_only)
    spec = load_model(model)
    r = ranks_per_chip or sysm.chip.devices
    res = search(sysm, spec, opts,
                 Workload(input_len=input_len, output_len=output_len),
                 slo_tpot_s=slo_tpot_ms / 1e3,
                 slo_ttft_s=slo_ttft_ms / 1e3 if slo_ttft_ms else None, top=top,
                 disaggregate=disaggregate,
                 prefill_layout=_fixed(prefill_layout, "--prefill-layout", r),
                 decode_layout=_fixed(decode_layout, "--decode-layout", r),
                 ranks_per_chip=r, all_chips=all_chips)
    doc = res.to_dict()
    cat = api.catalog()
    cands = [_with_prefix(d, sysm, spec, c.layout, opts, prefix_cache_hit, prefix_cache_tier)
             for d, c in zip(doc["candidates"], res.candidates, strict=True)]
    if prefix_cache_hit is not None:
        doc["notes"] = [*doc.get("notes", []), "prefix cache: applied to the candidates the "
                        "search returns; the search itself ranks them without it"]
    doc["candidates"] = [annotate_infer(c, sysm, cat, spec, opts.precision) for c in cands]
    if as_json:
        _emit_json(doc)
    else:
        _render(plan_infer_view(doc))
    if not res.candidates:
        raise typer.Exit(1)


@_friendly
def serve_sim(system_arg: SystemArg, model: ModelArg,
              rate: Annotated[float | None, typer.Option(
                  help="Poisson arrivals per second (with --trace: when it has no "
                       "arrival_s).")] = None,
              duration: Annotated[float, typer.Option(help="Seconds of arrivals.")] = 600.0,
              input_len: InputLen = 1024, output_len: OutputLen = 256,
              trace: Annotated[Path | None, typer.Option(
                  help="CSV / JSON trace: input_len, output_len[, arrival_s].")] = None,
              seed: int = 0,
              max_batch: Annotated[int | None, typer.Option(
                  min=1, help="Batch slots (default: as many as the KV cache holds).")]
              = None,
              tp: Degree = 1, dp: Annotated[int | None, typer.Option(min=1)] = None,
              ep: Degree = 1, pp: Degree = 1,
              ranks_per_chip: RanksPerChip = None,
              precision: Precision = "bf16", kv_precision: KvPrecision = "auto",
              weight_only: WeightOnly = False,
              mtp: Mtp = 0, mtp_acceptance: MtpAcc = DEFAULT_MTP_ACCEPTANCE, eplb: Eplb = True,
              progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = False,
              prefix_cache_hit: PrefixHit = None, prefix_cache_tier: PrefixTier = None,
              chips: Chips = None, as_json: Json = False) -> None:
    """Request-level simulation: TTFT / TPOT / latency percentiles.

    Also the throughput.

    A trace with prefix_id and prefix_len columns caches shared prefixes (or give
    --prefix-cache-hit for every request)."""
    from superpod.infer.simulate import poisson_requests, simulate, trace_requests
    from superpod.report.infer import sim_view
    from superpod.workload.model import load_model

    sysm = _system(system_arg, chips)
    _check_prefix(sysm, prefix_cache_hit, prefix_cache_tier, trace=trace is not None)
    opts = _options(precision, kv_precision, mtp, mtp_acceptance, None, eplb=eplb,
                    weight_only=weight_only)
    lay = _layout(sysm, tp, dp, ep, pp, ranks_per_chip or sysm.chip.devices)
    if trace is not None:
        reqs = trace_requests(trace, rate, seed)
    elif rate is None:
        raise SpecError("give --rate (or a --trace)", field="--rate")
    else:
        reqs = poisson_requests(rate, duration, input_len, output_len, seed)
    from superpod import api
    from superpod.trust.annotate import annotate_sim

    spec = load_model(model)
    from superpod.infer.cache_calibration import scaling_fraction
    from superpod.infer.prefix_hook import cache_tier
    from superpod.infer.prefix_sim import sim_cache, trace_prefixes

    prefixes = trace_prefixes(trace) if trace is not None else None
    if prefixes is not None and prefix_cache_hit is not None:
        raise SpecError("the trace gives prefix_id / prefix_len: leave out --prefix-cache-hit",
                        field="--prefix-cache-hit", value=prefix_cache_hit)
    cache = (sim_cache(spec, lay, opts.for_chip(sysm.chip), cache_tier(sysm, prefix_cache_tier),
                       reqs.input_len, hit_ratio=prefix_cache_hit, prefixes=prefixes,
                       scaling_fraction=scaling_fraction(sysm.chip.id)[0])
             if prefix_cache_hit is not None or prefixes is not None else None)
    res = simulate(sysm, spec, lay, opts, reqs, max_batch=max_batch,
                   progress=progress and not as_json,
                   cached_tokens=cache.skipped_tokens if cache else None,
                   load_s=cache.load_s if cache else None)
    doc = res.to_dict() | {"layout": lay.to_dict()}
    if cache is not None:
        doc["prefix_cache"] = cache.summary(reqs.input_len)
    row = annotate_sim(doc, sysm, api.catalog(), spec, opts.precision)
    if as_json:
        _emit_json(row)
    else:
        _render(sim_view(row))


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
