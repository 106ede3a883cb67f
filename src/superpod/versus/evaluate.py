"""One system of a comparison: its best training layout at the batch nearest the shared
tokens per step, its best serving layout within the SLOs, and what each costs.

Training: the target batch is tokens_per_step / seq_len; when no layout meets it, the
nearest batch that one does (``train.batch``), stated. The best layout's row carries
goodput after failures (ETTR), power by activity, tokens per joule and $/Mtok
(``train.economics``), its band and evidence (``trust.annotate``).

Serving: ``plan infer``'s best layout within TPOT (and TTFT) SLOs at the serving precision
(``serve_precision``: FP8 where the chip has it, else INT8, else BF16), with power, tokens
per joule and $/Mtok at its load (``infer.economics``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from superpod.errors import Infeasible
from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System
from superpod.workload.model import ModelSpec

POINT_LAYOUTS = 6  #: layouts whose batch ladders the report's frontier plot shows


@dataclass(frozen=True)
class Workload:
    """What every system of a comparison is asked to do."""

    tokens_per_step: int = 1536 * 4096
    seq_len: int = 4096
    train_precision: str = "bf16"
    serve_precision: str = "auto"
    slo_tpot_s: float = 0.05
    slo_ttft_s: float | None = None
    input_len: int = 2048
    output_len: int = 1024

    @property
    def global_batch(self) -> int:
        return max(1, round(self.tokens_per_step / self.seq_len))


def serve_precision(system: System, asked: str) -> str:
    """``asked``, or for ``auto`` the narrowest of FP8 / INT8 the chip has a peak for."""
    if asked != "auto":
        return asked
    peaks = system.chip.peak_flop_per_s
    return next((p for p in ("fp8", "int8") if p in peaks), "bf16")


def train_side(system: System, cat: Catalog, model: ModelSpec, w: Workload
               ) -> dict[str, Any]:
    """The best training layout's annotated row, with ``batch`` (asked / used / why)."""
    from superpod.train.batch import data_parallel_degrees, nearest_feasible
    from superpod.train.economics import with_economics
    from superpod.train.search import plan_train
    from superpod.trust.annotate import annotate_train

    r = system.chip.devices
    if w.train_precision not in system.chip.peak_flop_per_s:
        return {"infeasible": f"{system.chip.id} has no dense {w.train_precision} peak"}
    degrees = data_parallel_degrees(system, model, w.seq_len, w.train_precision, r,
                                    space="quick")
    choice = nearest_feasible(
        lambda b: plan_train(system, model, b, w.seq_len, w.train_precision, 1,
                             ranks_per_chip=r, space="quick"),  # many searches: the quick space
        w.global_batch, degrees)
    if isinstance(choice, Infeasible):
        return {"infeasible": choice.detail}
    best = choice.result.candidates[0]
    row = with_economics(best.to_dict(), best, system, cat, model)
    row = annotate_train(row, system, cat, model, w.train_precision)
    row["batch"] = choice.to_dict()
    row["evaluated"] = choice.result.evaluated
    return row


def interruptions_per_s(system: System, model: ModelSpec) -> float:
    """Job interruptions per second on the whole system (the failure-rate book)."""
    from superpod.reliability import ReliabilityQuery, analyse, checkpoint_bytes

    rel = analyse(system, ReliabilityQuery(checkpoint_bytes=checkpoint_bytes(
        model.params_total), work_days=30.0, trials=0))
    return float(rel["interruptions_per_s"])


def serve_side(system: System, cat: Catalog, model: ModelSpec, w: Workload,
               points: bool = False) -> dict[str, Any]:
    """The best serving layout's annotated row (``pareto``: every candidate's tokens/s per
    chip and TPOT when ``points``)."""
    from superpod.infer.config import InferOptions
    from superpod.infer.economics import infer_economics, replicated
    from superpod.infer.search import plan_infer
    from superpod.infer.serving import Workload as ServeWork
    from superpod.trust.annotate import annotate_infer

    precision = serve_precision(system, w.serve_precision)
    opts = InferOptions(precision=precision)
    res = plan_infer(system, model, opts, ServeWork(input_len=w.input_len,
                                                    output_len=w.output_len),
                     slo_tpot_s=w.slo_tpot_s, slo_ttft_s=w.slo_ttft_s,
                     top=12 if points else 1)
    if not res.candidates:
        from superpod.infer.slo_hint import nearest_slo

        sug = nearest_slo(system, model, opts, ServeWork(input_len=w.input_len,
                                                         output_len=w.output_len),
                          w.slo_tpot_s, w.slo_ttft_s, res.infeasible)
        hint = (f"; nearest that works: {sug['option']} {sug['value_s'] * 1e3:g}"
                if sug["option"] else "")
        return {"infeasible": sug["reason"] + hint, "suggestion": sug,
                "precision": precision}
    row = replicated(res.candidates[0].to_dict(), system.counts.chips)
    row = annotate_infer(row | infer_economics(system, cat, row), system, cat, model,
                         precision)
    row["precision"] = precision
    row["evaluated"] = res.evaluated
    row["goodput"] = {"interruptions_per_s": interruptions_per_s(system, model)}
    if points:
        from superpod.infer.frontier import frontier_points

        row["points"] = frontier_points(system, model, opts, ServeWork(
            input_len=w.input_len, output_len=w.output_len),
            [c.layout for c in res.candidates[:POINT_LAYOUTS]])
    return row


SCALING_FRACTIONS = (0.25, 0.5)  #: smaller sizes a report's tokens/s-against-chips plot adds


def train_scaling(system: System, cat: Catalog, model: ModelSpec, w: Workload
                  ) -> list[dict[str, float]]:
    """(chips, tokens/s) of the best training layout at a quarter and half of the system
    (whole scale-up domains; whole nodes in a system of one domain) at the same tokens per
    step; sizes with no feasible layout are left out."""
    from superpod.hardware.system import build_system
    from superpod.train.batch import data_parallel_degrees, nearest_feasible
    from superpod.train.search import SearchResult, plan_train

    c = system.counts
    d = c.chips_per_domain if c.domains > 1 else max(1, c.chips // max(1, c.nodes))
    sizes = sorted({max(d, int(c.chips * f) // d * d) for f in SCALING_FRACTIONS}
                   - {c.chips})
    out = []
    for n in sizes:
        s = build_system(system.spec, cat, n)
        r = s.chip.devices

        def search(b: int, s: System = s, r: int = r) -> SearchResult:
            return plan_train(s, model, b, w.seq_len, w.train_precision, 1, ranks_per_chip=r)

        choice = nearest_feasible(search, w.global_batch, data_parallel_degrees(
            s, model, w.seq_len, w.train_precision, r))
        if not isinstance(choice, Infeasible):
            out.append({"chips": float(n),
                        "tokens_per_s": choice.result.candidates[0].tokens_per_s})
    return out
