"""``reliability`` (interruptions, MTBF, checkpoints, goodput) and ``cost`` (capex, opex,
power, $ per million tokens): the objects ``superpod reliability --json`` and
``superpod cost --json`` print, with the same defaults."""

from __future__ import annotations

from typing import Any

from superpod.choices import REGIONS, SPARE_LEVELS, check_choice
from superpod.errors import SpecError
from superpod.units import Dim, UnitError, parse_quantity, parse_size_bytes


def _quantity(text: str | float | None, dim: Dim, option: str) -> float | None:
    """A quantity given as text with its unit (``"2TB/s"``) or as an SI number, positive (a
    zero bandwidth, size or interval is never a default in disguise), or None when not
    given."""
    if text is None:
        return None
    if isinstance(text, int | float):
        value = float(text)
    else:
        try:
            value = parse_quantity(text.replace(" ", ""), dim, positive=True) \
                if dim is not Dim.BYTES else parse_size_bytes(text.replace(" ", ""))
        except UnitError as exc:
            raise SpecError(str(exc), field=option, value=text) from None
    if not value > 0 or value == float("inf"):
        raise SpecError("must be positive and finite", field=option, value=text)
    return value


def _built(system: str, chips: int | None) -> tuple[Any, Any]:
    from superpod.api.catalog import catalog
    from superpod.api.catalog import system as build
    from superpod.api.resolve import system_arg

    system_id, files = system_arg(system)
    return build(system_id, chips, files), catalog(files)


def reliability(system: str, *, chips: int | None = None, model_params: float | None = None,
                checkpoint_bytes: str | float | None = None, bytes_per_param: float = 14.0,
                days: float = 30.0, storage_bandwidth: str | float | None = None,
                node_storage_bandwidth: str | float | None = None,
                async_checkpoint: bool = False, interval: str | float | None = None,
                spares: str | None = None, spare_level: str = "chip",
                link_protection: bool | None = None, dual_plane_scale_out: bool = False,
                trials: int = 10_000, seed: int = 0, progress: bool | None = None
                ) -> dict[str, Any]:
    """Interruptions by cause, job MTBF, checkpoint interval and goodput (ETTR) for a job
    on the whole system. Give ``model_params`` (checkpoint = params x ``bytes_per_param``)
    or ``checkpoint_bytes``; quantities as text with units or SI numbers (bytes, bytes/s,
    seconds); ``spares`` as ``GROUP+SPARES`` (``"64+1"``)."""
    from superpod.reliability import (
        FailureOptions,
        ReliabilityQuery,
        SparePolicy,
        Storage,
        analyse,
        load_rate_book,
    )
    from superpod.reliability import checkpoint_bytes as ckpt_bytes

    check_choice("--spare-level", spare_level, SPARE_LEVELS)
    if (model_params is None) == (checkpoint_bytes is None):
        raise SpecError("give exactly one of --model-params or --checkpoint-bytes",
                        field="--model-params")
    nbytes = (ckpt_bytes(model_params, bytes_per_param) if model_params is not None
              else _quantity(checkpoint_bytes, Dim.BYTES, "--checkpoint-bytes"))
    sysm, _ = _built(system, chips)
    book = load_rate_book()
    storage = Storage.defaults(book)
    bw = _quantity(storage_bandwidth, Dim.BYTES_PER_S, "--storage-bandwidth")
    node_bw = _quantity(node_storage_bandwidth, Dim.BYTES_PER_S, "--node-storage-bandwidth")
    storage = Storage(write_bytes_per_s=storage.write_bytes_per_s if bw is None else bw,
                      read_bytes_per_s=storage.read_bytes_per_s if bw is None else bw,
                      node_bytes_per_s=storage.node_bytes_per_s if node_bw is None
                      else node_bw,
                      snapshot_bytes_per_s=storage.snapshot_bytes_per_s)
    options = FailureOptions(
        link_protection=link_protection, scale_out_dual_plane=dual_plane_scale_out,
        spares=SparePolicy.parse(spares, spare_level) if spares is not None else None)
    query = ReliabilityQuery(
        checkpoint_bytes=0.0 if nbytes is None else nbytes, work_days=days,
        asynchronous=async_checkpoint,
        storage=storage, options=options,
        interval_s=_quantity(interval, Dim.TIME, "--interval"), trials=trials, seed=seed)
    from superpod.progress import wanted

    return analyse(sysm, query, book, progress=wanted() if progress is None else progress)


def cost(system: str, tokens_per_s: float, *, chips: int | None = None,
         utilization: float = 1.0, load: float = 1.0,
         electricity_usd_per_kwh: float | None = None, region: str | None = None,
         years: float | None = None, chip_price_usd: float | None = None,
         pue: float | None = None) -> dict[str, Any]:
    """Capex, opex, power, tokens per joule and dollars per million tokens at
    ``tokens_per_s`` while busy, busy ``utilization`` of the year at ``load``
    (defaults: the price book by region and vendor)."""
    from superpod.cost import CostQuery, cost_report, default_prices, with_overrides
    from superpod.cost.prices import J_PER_KWH

    sysm, cat = _built(system, chips)
    if region is not None:
        check_choice("--region", region, REGIONS)
    prices = default_prices(sysm, cat, region=region, chip_usd=chip_price_usd)
    prices = with_overrides(
        prices, pue=pue, depreciation_years=years,
        electricity_usd_per_j=None if electricity_usd_per_kwh is None
        else electricity_usd_per_kwh / J_PER_KWH)
    return cost_report(sysm, prices, CostQuery(tokens_per_s, utilization, load))
