"""Option values converted without a pydantic ``TypeAdapter`` per parameter (start-up).

Recent Typer (0.2x, click vendored as ``typer._click``) converts every parameter's value,
defaults included, through a pydantic ``TypeAdapter`` that it builds on first use. With the
package's files loaded from the load cache, nothing else in a run builds a pydantic schema,
so those ~30 adapters pay pydantic's whole schema machinery: ~20 ms of ``superpod train``.
``install`` makes each Typer parameter convert the plain cases itself and hand everything
else to Typer's own converter, built only then:

* ``int`` / ``float`` from an ``int`` / ``float`` or from plain decimal text (``64``, ``-3``,
  ``0.5``, ``1e-3``) inside the option's ``min`` / ``max``;
* ``str`` from text; ``pathlib.Path`` from non-empty text, by Typer's own path check
  (``coerce_cli_path``: its ``exists`` / ``dir_okay`` / ``readable`` rules and messages);
* ``list[...]`` of those from a tuple of such values.

Everything else (an out-of-range or malformed number, a boolean from text, a custom parser,
an enum, a file, a tuple) goes to Typer's converter, so every error message is Typer's;
where the plain case converts, the value equals Typer's (``tests/test_startup.py`` checks
both on the same inputs). On a Typer without the adapter layer ``install`` does nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

try:  # the recent layout; an older Typer converts with click types and needs none of this
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer._param_types import coerce_cli_path
    from typer.core import _TyperParameter
except ImportError:  # pragma: no cover - older Typer
    RuntimeParam = None  # type: ignore[assignment,misc]

#: the value is not a plain case: Typer's converter decides
MISS: Any = object()
_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})", re.ASCII)
_FLOAT = re.compile(r"-?(?:[0-9]{1,18}(?:\.[0-9]{0,18})?|\.[0-9]{1,18})(?:[eE][-+]?[0-9]{1,3})?",
                    re.ASCII)


def _in_range(value: float, info: Any) -> bool:
    lo, hi = info.min, info.max
    return not ((lo is not None and value < lo) or (hi is not None and value > hi))


def convert(annotation: Any, info: Any, value: Any) -> Any:
    """``value`` converted as Typer would, or ``MISS`` where this cannot tell."""
    if info.parser is not None or info.clamp:
        return MISS
    out: Any
    if annotation is int:
        if type(value) is int:
            out = value
        elif type(value) is str and _INT.fullmatch(value):
            out = int(value)
        else:
            return MISS
        return out if _in_range(out, info) else MISS
    if annotation is float:
        if type(value) is float:
            out = value
        elif type(value) is int or (type(value) is str and _FLOAT.fullmatch(value)):
            out = float(value)
        else:
            return MISS
        return out if not math.isnan(out) and _in_range(out, info) else MISS
    if annotation is str:
        return value if type(value) is str else MISS
    if get_origin(annotation) is list and len(get_args(annotation)) == 1:
        if not isinstance(value, tuple | list):
            return MISS
        items = [convert(get_args(annotation)[0], info, v) for v in value]
        return MISS if any(i is MISS for i in items) else items
    return MISS


def convert_path(info: Any, value: Any, param: Any = None, ctx: Any = None) -> Any:
    """A ``Path`` option's value from text, by Typer's own path check, or ``MISS``."""
    if (type(value) is not str or not value or "\0" in value or info.path_type is not None
            or info.parser is not None):
        return MISS
    try:
        return coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
    except Exception:  # Typer's converter raises its own message
        return MISS


if RuntimeParam is not None:
    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        """The plain cases here; the rest by Typer's converter (built at first need)."""

        descriptor: TypeDescriptor

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            ann: Any = self.annotation
            info = self.parameter_info
            if ann is Path:
                out = convert_path(info, value, param, ctx)
            elif get_origin(ann) is list and get_args(ann) == (Path,):
                items = ([convert_path(info, v, param, ctx) for v in value]
                         if isinstance(value, tuple | list) else [MISS])
                out = MISS if any(i is MISS for i in items) else items
            else:
                out = convert(ann, info, value)
            if out is not MISS:
                return out
            return build_runtime_param(self.descriptor)._coerce_value(value, param, ctx)

    def _runtime_param(self: Any) -> Any:
        """``_TyperParameter.get_runtime_param``, the plain converter first."""
        if self._runtime_param is None:
            desc = self.type_descriptor
            self._runtime_param = (
                build_runtime_param(desc) if desc.file_annotation is not None
                else PlainParam(parameter_info=desc.parameter_info, annotation=desc.annotation,
                                descriptor=desc))
        return self._runtime_param


def install() -> None:
    """Convert Typer parameters' values with the plain converter first (idempotent)."""
    if RuntimeParam is None:  # pragma: no cover - older Typer
        return
    if getattr(_TyperParameter, "get_runtime_param", None) is not _runtime_param:
        _TyperParameter.get_runtime_param = _runtime_param  # type: ignore[method-assign]
