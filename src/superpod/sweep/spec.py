"""A sweep spec (YAML): axes over systems and workloads, a mode, a sampling; and its points.

```yaml
name: scale-up-vs-nic
mode: best             # best: the best training layout per point; fixed: the layout below
search: quick          # quick | full: the layout space of ``plan train`` (mode best)
sampling: grid         # grid (every combination) | random | lhs (Latin hypercube)
samples: 64            # random / lhs
seed: 0
system:
  preset: [gb200-nvl72, dgx-h100]     # a value, or a list: an axis
  chips: [72, 144]
  set:                                # any system field by dotted path, in catalog units
    scale_out.nic_bandwidth: ["400 Gb/s", "800 Gb/s"]
    chip.hbm_capacity: ["192 GB", "288 GB"]          # chip fields: chip.<field>
    scale_up.domain_chips: {min: 8, max: 512, log: true, integer: true, steps: 7}
workload:
  model: [llama3-70b, deepseek-v3]
  tokens_per_step: 4194304            # or global_batch (sequences)
  seq_len: 8192
  precision: bf16
layout: {tp: 8, pp: 4}                # mode fixed (dp defaults to the rest)
```

A range (``{min, max}``, optional ``log``, ``integer``, ``steps`` for grids) takes numbers or
quantities with one unit (``"200 Gb/s"``). Every point has an id (a hash of its inputs and
the mode) that the store keys on, so a resumed sweep skips what is done. Bad input is a
``SpecError`` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from superpod.errors import SpecError

MODES = ("best", "fixed")
SEARCHES = ("quick", "full")
SAMPLINGS = ("grid", "random", "lhs")
TOP_KEYS = ("name", "mode", "search", "sampling", "samples", "seed", "system", "workload",
            "layout", "workers")
SYSTEM_KEYS = ("preset", "chips", "set")
WORKLOAD_KEYS = ("model", "tokens_per_step", "global_batch", "seq_len", "precision")
LAYOUT_KEYS = ("tp", "pp", "vpp", "dp", "cp", "ep", "etp", "zero", "micro_batch", "recompute",
               "pp_schedule", "tp_comm_overlap", "order")
PRECISIONS = ("bf16", "fp8", "fp4")
MAX_POINTS = 1_000_000
_QTY = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(\S.*)?$")


@dataclass(frozen=True)
class Axis:
    """One swept input: ``values`` (a list), or a range ``lo..hi`` (``unit`` kept)."""

    name: str
    values: tuple[Any, ...] = ()
    lo: float = 0.0
    hi: float = 0.0
    log: bool = False
    integer: bool = False
    unit: str = ""
    steps: int = 0

    @property
    def is_range(self) -> bool:
        return not self.values

    def at(self, u: float) -> Any:
        """The value at quantile ``u`` in [0, 1)."""
        if self.values:
            return self.values[min(len(self.values) - 1, int(u * len(self.values)))]
        if self.log:
            x = math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo)))
        else:
            x = self.lo + u * (self.hi - self.lo)
        return self._fmt(x)

    def grid(self, file: str) -> list[Any]:
        if self.values:
            return list(self.values)
        if self.steps < 2:
            raise SpecError("a range needs steps >= 2 on a grid", file=file, field=self.name,
                            allowed="steps: N, or sampling: random / lhs")
        return [self._fmt_edge(i / (self.steps - 1)) for i in range(self.steps)]

    def _fmt_edge(self, u: float) -> Any:
        if self.log:
            x = math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo)))
        else:
            x = self.lo + u * (self.hi - self.lo)
        return self._fmt(x)

    def _fmt(self, x: float) -> Any:
        v: float | int = int(round(x)) if self.integer else float(f"{x:.6g}")
        return f"{v} {self.unit}" if self.unit else v


@dataclass(frozen=True)
class SweepSpec:
    """A parsed spec: the fixed settings, the axes, and where it came from."""

    file: str
    name: str
    mode: str
    search: str
    sampling: str
    samples: int
    seed: int
    fixed: dict[str, Any]  # input name -> value (not swept)
    axes: tuple[Axis, ...]
    layout: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def points(self) -> list[dict[str, Any]]:
        """Every point's inputs (fixed ones included), in a stable order."""
        if self.sampling == "grid":
            grids = [a.grid(self.file) for a in self.axes]
            n = math.prod(len(g) for g in grids)
            if n > MAX_POINTS:
                raise SpecError(f"the grid has {n:,} points", file=self.file, field="system",
                                allowed=f"at most {MAX_POINTS:,}; sample with random / lhs")
            combos: list[tuple[Any, ...]] = list(itertools.product(*grids))
        else:
            us = _unit_samples(self.sampling, self.samples, len(self.axes), self.seed)
            combos = [tuple(a.at(u) for a, u in zip(self.axes, row, strict=True))
                      for row in us]
        out = []
        for c in combos:
            p = dict(self.fixed)
            p.update({a.name: v for a, v in zip(self.axes, c, strict=True)})
            out.append(p)
        return out

    def point_id(self, inputs: dict[str, Any]) -> str:
        """A stable key for one point: its inputs, the mode, search and layout."""
        doc = {"inputs": inputs, "mode": self.mode, "search": self.search,
               "layout": self.layout}
        return hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _unit_samples(method: str, n: int, d: int, seed: int) -> list[list[float]]:
    """``n`` points in [0, 1)^d: independent uniform draws, or a Latin hypercube."""
    if d == 0:
        return [[] for _ in range(n)]
    if method == "lhs":
        from scipy.stats import qmc  # imported here only: scipy.stats costs ~1 s

        return [list(map(float, row)) for row in qmc.LatinHypercube(d=d, seed=seed).random(n)]
    rng = random.Random(seed)
    return [[rng.random() for _ in range(d)] for _ in range(n)]


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep spec file."""
    from superpod.hardware.loading import read_yaml

    p = Path(path)
    doc = read_yaml(p)
    return parse_spec(doc, str(p), p.read_text(encoding="utf-8"))


def _mapping(v: Any, file: str, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise SpecError("expected a mapping", file=file, field=where,
                        allowed=", ".join(allowed))
    for k in v:
        if k not in allowed:
            raise SpecError("unknown key", file=file, field=f"{where}.{k}" if where else str(k),
                            allowed=", ".join(allowed))
    return v


def _choice(v: Any, file: str, where: str, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise SpecError("not a known choice", file=file, field=where,
                        value=v if isinstance(v, str | int | float) else None,
                        allowed=", ".join(allowed))
    return str(v)


def _int(v: Any, file: str, where: str, lo: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise SpecError(f"must be an integer >= {lo}", file=file, field=where,
                        value=v if isinstance(v, str | int | float) else None)
    return v


def parse_spec(doc: Any, file: str = "<spec>", text: str = "") -> SweepSpec:
    """Check a parsed spec document and turn it into a ``SweepSpec``."""
    top = _mapping(doc, file, "", TOP_KEYS)
    if not top:
        raise SpecError("empty sweep spec", file=file, allowed="system, workload, mode, ...")
    mode = _choice(top.get("mode", "best"), file, "mode", MODES)
    search = _choice(top.get("search", "quick"), file, "search", SEARCHES)
    sampling = _choice(top.get("sampling", "grid"), file, "sampling", SAMPLINGS)
    samples = _int(top.get("samples", 32), file, "samples", 1)
    seed = _int(top.get("seed", 0), file, "seed", 0)
    name = str(top.get("name") or Path(file).stem)
    sysd = _mapping(top.get("system"), file, "system", SYSTEM_KEYS)
    work = _mapping(top.get("workload"), file, "workload", WORKLOAD_KEYS)
    if "preset" not in sysd:
        raise SpecError("missing", file=file, field="system.preset", allowed="a system id")
    if "model" not in work:
        raise SpecError("missing", file=file, field="workload.model", allowed="a model preset")
    if "seq_len" not in work:
        raise SpecError("missing", file=file, field="workload.seq_len", allowed="tokens")
    if ("tokens_per_step" in work) == ("global_batch" in work):
        raise SpecError("give exactly one of tokens_per_step, global_batch", file=file,
                        field="workload")
    entries: dict[str, Any] = {f"system.{k}": v for k, v in sysd.items() if k != "set"}
    sets = _mapping(sysd.get("set"), file, "system.set", tuple(sysd.get("set") or ()))
    for path, v in sets.items():
        if not isinstance(path, str) or not re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*",
                                                         path):
            raise SpecError("must be a dotted field path", file=file, field="system.set",
                            value=str(path), allowed="e.g. scale_out.nic_bandwidth")
        entries[f"system.set.{path}"] = v
    entries.update({f"workload.{k}": v for k, v in work.items()})
    layout = _mapping(top.get("layout"), file, "layout", LAYOUT_KEYS)
    if mode == "fixed" and not layout:
        raise SpecError("mode fixed needs a layout", file=file, field="layout",
                        allowed=", ".join(LAYOUT_KEYS))
    if mode == "best" and layout:
        raise SpecError("a layout is given only with mode: fixed", file=file, field="layout")
    fixed: dict[str, Any] = {}
    axes: list[Axis] = []
    for name_, v in entries.items():
        if isinstance(v, list | dict):
            axes.append(_axis(name_, v, file))
            for x in axes[-1].values:
                _check_value(name_, x, file)
        else:
            _check_value(name_, v, file)
            fixed[name_] = v
    return SweepSpec(file=file, name=name, mode=mode, search=search, sampling=sampling,
                     samples=samples, seed=seed, fixed=fixed, axes=tuple(axes),
                     layout=dict(layout), text=text)


def _axis(name: str, v: Any, file: str) -> Axis:
    if isinstance(v, list):
        if not v:
            raise SpecError("an axis needs at least one value", file=file, field=name)
        return Axis(name=name, values=tuple(v))
    keys = ("min", "max", "log", "integer", "steps")
    _mapping(v, file, name, keys)
    if "min" not in v or "max" not in v:
        raise SpecError("a range needs min and max", file=file, field=name)
    lo, unit_lo = _number(v["min"], file, f"{name}.min")
    hi, unit_hi = _number(v["max"], file, f"{name}.max")
    if unit_lo != unit_hi:
        raise SpecError("min and max need the same unit", file=file, field=name,
                        value=f"{v['min']} .. {v['max']}")
    log = bool(v.get("log", False))
    if hi < lo or (log and lo <= 0):
        raise SpecError("needs min <= max (and min > 0 on a log scale)", file=file, field=name,
                        value=f"{v['min']} .. {v['max']}")
    steps = _int(v.get("steps", 0), file, f"{name}.steps", 0)
    return Axis(name=name, lo=lo, hi=hi, log=log, integer=bool(v.get("integer", False)),
                unit=unit_lo, steps=steps)


def _number(v: Any, file: str, where: str) -> tuple[float, str]:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v), ""
    m = _QTY.match(str(v)) if isinstance(v, str) else None
    if not m:
        raise SpecError("must be a number or a quantity with a unit", file=file, field=where,
                        value=v if isinstance(v, str | int | float) else None,
                        allowed="e.g. 400 Gb/s")
    return float(m.group(1)), (m.group(2) or "").strip()


def _check_value(name: str, v: Any, file: str) -> None:
    """Type checks that need no catalog (system fields are checked by building them)."""
    if name in ("system.chips", "workload.tokens_per_step", "workload.global_batch",
                "workload.seq_len"):
        _int(v, file, name, 1)
    elif name == "workload.precision":
        _choice(v, file, name, PRECISIONS)
    elif name in ("system.preset", "workload.model") and not isinstance(v, str):
        raise SpecError("must be an id (text)", file=file, field=name,
                        value=v if isinstance(v, int | float) else None)
