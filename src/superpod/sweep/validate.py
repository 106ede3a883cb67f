"""Checking a sweep spec against the catalog before any point runs: every model id loads,
and the system of the first point, and of each single-axis change from it, builds (a bad
preset, chip count or field value fails here, naming the spec field, not in a worker)."""

from __future__ import annotations

from superpod.errors import SpecError
from superpod.sweep.point import point_system
from superpod.sweep.spec import SweepSpec


def check_spec(spec: SweepSpec) -> None:
    """Raise the first ``SpecError`` a point of ``spec`` would meet in its inputs."""
    from superpod.workload.model import load_model

    points = spec.points()
    if not points:
        raise SpecError("the spec has no points", file=spec.file, field="system")
    first = points[0]
    variants = [first]
    for a in spec.axes:
        vals = list(a.values) or [first[a.name]]
        variants += [first | {a.name: v} for v in vals]
    for p in variants:
        for name in ("workload.model", "system.preset", "system.chips"):
            _checked(spec, p, name)
        try:
            point_system(p, spec.file)
        except SpecError as exc:
            raise SpecError(f"system.set: {exc}", file=spec.file) from None
        try:
            load_model(str(p["workload.model"]))
        except SpecError as exc:
            raise SpecError(str(exc), file=spec.file, field="workload.model",
                            value=str(p["workload.model"])) from None


def _checked(spec: SweepSpec, p: dict[str, object], name: str) -> None:
    if name == "system.preset":
        from superpod.hardware.catalog import load_catalog

        sid = str(p[name])
        if sid not in load_catalog().systems:
            raise SpecError("unknown system", file=spec.file, field=name, value=sid,
                            allowed=", ".join(sorted(load_catalog().systems)))
