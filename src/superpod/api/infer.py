"""``infer`` (one serving layout), ``plan_infer`` (the layout search within SLOs) and
``serve_sim`` (the request-level simulation): the objects ``superpod infer --json``,
``superpod plan infer --json`` and ``superpod serve-sim --json`` print, with the same
defaults (the commands read their defaults from these signatures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from superpod.choices import check_choice
from superpod.errors import Infeasible, SpecError
from superpod.infer.config import (
    DEFAULT_MTP_ACCEPTANCE,
    KV_PRECISIONS,
    PHASES,
    PRECISIONS,
    InferOptions,
    ServingLayout,
)

Row = dict[str, Any]


def _system(system: str, chips: int | None) -> Any:
    from superpod.api.catalog import system as build
    from superpod.api.resolve import system_arg

    sid, files = system_arg(system)
    return build(sid, chips, files)


def infer(system: str, model: str, *, phase: str = "e2e", batch: int | None = None,
          input_len: int = 1024, output_len: int = 1024, context_len: float | None = None,
          tp: int = 1, dp: int | None = None, ep: int = 1, pp: int = 1,
          ranks_per_chip: int | None = None, precision: str = "bf16",
          kv_precision: str = "auto", mtp: int = 0, weight_only: bool = False,
          mtp_acceptance: float = DEFAULT_MTP_ACCEPTANCE,
          two_batch_overlap: bool | None = None, eplb: bool = True,
          ep_imbalance: float | None = None, ep_library: str | None = None,
          slo_tpot_ms: float | None = None,
          slo_ttft_ms: float | None = None, prefill_chips: int | None = None,
          decode_chips: int | None = None, prefill_layout: str | None = None,
          decode_layout: str | None = None, prefix_cache_hit: float | None = None,
          prefix_cache_tier: str | None = None, kv_spill: str | None = None,
          weight_offload: float | None = None, weight_offload_tier: str | None = None,
          chips: int | None = None) -> Row:
    """TTFT, TPOT, tokens/s (per chip), memory and breakdown of one serving layout:
    prefill, decode or e2e (``phase``), or disaggregated pools (``prefill_chips`` /
    ``decode_chips``, ``prefill_layout`` / ``decode_layout`` as ``"dp=4,ep=4"``). ``batch``
    default: the most throughput within memory and the SLOs (milliseconds); ``dp`` default:
    fills the chips; ``ranks_per_chip`` default: the devices the chip exposes (Ascend
    910C: 2); ``ep_library``: the expert-parallel kernel library version (default: the
    newest calibrated on the system's fabrics)."""
    from superpod.infer.serving import Workload, best_batch, disaggregated, serve
    from superpod.workload.model import load_model

    check_choice("--phase", phase, PHASES)
    sysm = _system(system, chips)
    ranks_per_chip = ranks_per_chip or sysm.chip.devices
    _check_prefix(sysm, prefix_cache_hit, prefix_cache_tier)
    spec = load_model(model)
    opts = _options(precision, kv_precision, mtp, mtp_acceptance, two_batch_overlap,
                    eplb=eplb, ep_imbalance=ep_imbalance, weight_only=weight_only,
                    ep_library=_ep_library(ep_library))
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
        return res.to_dict()
    from superpod.api.catalog import catalog
    from superpod.trust.annotate import annotate_infer

    base = res if isinstance(res, dict) else res.to_dict()
    from superpod.infer.economics import infer_economics

    row = _with_prefix(base, sysm, spec, lay, opts, prefix_cache_hit, prefix_cache_tier)
    return annotate_infer(row | infer_economics(sysm, catalog(), row), sysm, catalog(), spec,
                          opts.precision)




def plan_infer(system: str, model: str, slo_tpot_ms: float, *,
               slo_ttft_ms: float | None = None, input_len: int = 1024,
               output_len: int = 1024, precision: str = "bf16", kv_precision: str = "auto",
               mtp: int = 0, weight_only: bool = False,
               mtp_acceptance: float = DEFAULT_MTP_ACCEPTANCE, eplb: bool = True,
               disaggregate: bool = True, top: int = 5, prefill_layout: str | None = None,
               decode_layout: str | None = None, prefix_cache_hit: float | None = None,
               prefix_cache_tier: str | None = None, ranks_per_chip: int | None = None,
               all_chips: bool = False, chips: int | None = None) -> Row:
    """The ``top`` serving layouts by output tokens/s per chip within the SLOs
    (milliseconds), colocated and (``disaggregate``) prefill / decode pools; each says how
    many chips it leaves idle (``all_chips``: only those leaving none) and carries power,
    tokens/J and $/Mtok; infeasible layouts counted by reason; with none feasible,
    ``suggestion`` says why and the nearest looser SLO that one layout meets."""
    from superpod.api.catalog import catalog
    from superpod.infer.search import plan_infer as search
    from superpod.infer.serving import Workload
    from superpod.trust.annotate import annotate_infer
    from superpod.workload.model import load_model

    sysm = _system(system, chips)
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
    cat = catalog()
    cands = [_with_prefix(d, sysm, spec, c.layout, opts, prefix_cache_hit, prefix_cache_tier)
             for d, c in zip(doc["candidates"], res.candidates, strict=True)]
    if prefix_cache_hit is not None:
        doc["notes"] = [*doc.get("notes", []), "prefix cache: applied to the candidates the "
                        "search returns; the search itself ranks them without it"]
    from superpod.infer.economics import infer_economics, replicated

    doc["candidates"] = [annotate_infer(  # economics with the instance filling the system
        c | infer_economics(sysm, cat, replicated(c, sysm.counts.chips)), sysm, cat, spec,
        opts.precision) for c in cands]
    if not res.candidates:
        from superpod.infer.slo_hint import nearest_slo

        doc["suggestion"] = nearest_slo(
            sysm, spec, opts, Workload(input_len=input_len, output_len=output_len),
            slo_tpot_ms / 1e3, slo_ttft_ms / 1e3 if slo_ttft_ms else None, res.infeasible)
    return doc


def plan_infer_frontier(system: str, model: str, doc: Row, *, input_len: int = 1024,
                        output_len: int = 1024, precision: str = "bf16",
                        kv_precision: str = "auto", mtp: int = 0, weight_only: bool = False,
                        mtp_acceptance: float = DEFAULT_MTP_ACCEPTANCE, eplb: bool = True,
                        chips: int | None = None) -> list[dict[str, Any]]:
    """The serving frontier of ``plan_infer``'s candidates (each layout at a ladder of
    decode batches), for its report."""
    import dataclasses

    from superpod.infer.frontier import frontier_points
    from superpod.infer.serving import Workload
    from superpod.workload.model import load_model

    sysm = _system(system, chips)
    opts = _options(precision, kv_precision, mtp, mtp_acceptance, None, eplb=eplb,
                    weight_only=weight_only)
    names = {f.name for f in dataclasses.fields(ServingLayout)}
    layouts = [ServingLayout(**{k: v for k, v in c["layout"].items() if k in names})
               for c in doc["candidates"]]
    return frontier_points(sysm, load_model(model), opts,
                           Workload(input_len=input_len, output_len=output_len), layouts)


def serve_sim(system: str, model: str, *, rate: float | None = None, duration: float = 600.0,
              input_len: int = 1024, output_len: int = 256, trace: str | Path | None = None,
              seed: int = 0, max_batch: int | None = None, tp: int = 1, dp: int | None = None,
              ep: int = 1, pp: int = 1, ranks_per_chip: int | None = None,
              precision: str = "bf16", kv_precision: str = "auto", weight_only: bool = False,
              mtp: int = 0, mtp_acceptance: float = DEFAULT_MTP_ACCEPTANCE, eplb: bool = True,
              progress: bool | None = None, prefix_cache_hit: float | None = None,
              prefix_cache_tier: str | None = None, chips: int | None = None) -> Row:
    """Request-level simulation (Poisson arrivals at ``rate`` per second for ``duration``
    seconds, or a CSV / JSON ``trace``): TTFT / TPOT / latency percentiles and throughput.
    A trace with prefix_id and prefix_len columns caches shared prefixes (or give
    ``prefix_cache_hit`` for every request); ``progress`` default: a bar on stderr when it
    is a terminal."""
    from superpod.infer.simulate import poisson_requests, simulate, trace_requests
    from superpod.progress import wanted
    from superpod.workload.model import load_model

    sysm = _system(system, chips)
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
    from superpod.api.catalog import catalog
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
                   progress=wanted() if progress is None else progress,
                   cached_tokens=cache.skipped_tokens if cache else None,
                   load_s=cache.load_s if cache else None)
    doc = res.to_dict() | {"layout": lay.to_dict()}
    if cache is not None:
        doc["prefix_cache"] = cache.summary(reqs.input_len)
    return annotate_sim(doc, sysm, catalog(), spec, opts.precision)



def _options(precision: str, kv_precision: str, mtp: int, mtp_acceptance: float,
             tbo: bool | None, **experts: Any) -> InferOptions:
    """``experts``: ``eplb`` and ``ep_imbalance`` (``infer.imbalance``) when given."""
    check_choice("--precision", precision, PRECISIONS)
    check_choice("--kv-precision", kv_precision, KV_PRECISIONS)
    return InferOptions(precision=precision, kv_precision=kv_precision, mtp=mtp,
                        mtp_acceptance=mtp_acceptance, two_batch_overlap=tbo, **experts)


def _ep_library(name: str | None) -> str | None:
    """A named expert-parallel library version, checked against the calibration's."""
    if name is None:
        return None
    from superpod.network.calibration import load_collective_calibration

    known = [x.name for x in load_collective_calibration().ep_libraries]
    if name not in known:
        raise SpecError("unknown EP library", field="--ep-library", value=name,
                        allowed=", ".join(known))
    return name


def _layout(sysm: Any, tp: int, dp: int | None, ep: int, pp: int, r: int) -> ServingLayout:
    ranks = sysm.counts.chips * r
    if dp is None:
        if ranks % (tp * pp):
            raise SpecError(f"tp*pp = {tp * pp} does not divide the {ranks} ranks",
                            field="--tp", value=tp)
        dp = ranks // (tp * pp)
    return _within(ServingLayout(tp=tp, dp=dp, ep=ep, pp=pp, ranks_per_chip=r), ranks)


def _within(lay: ServingLayout, ranks: int) -> ServingLayout:
    """An instance layout no larger than the ranks it runs on (a larger one is bad input,
    never a simulation of chips that are not there)."""
    if lay.ranks > ranks:
        raise SpecError(f"the layout needs {lay.ranks:,} ranks (tp x dp x pp); there are "
                        f"{ranks:,}", field="--dp", value=lay.dp,
                        allowed=f"tp x dp x pp <= {ranks:,}")
    return lay


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
    return _within(ServingLayout(tp=tp, dp=dp, ep=ep, pp=pp, ranks_per_chip=r), chips * r)


