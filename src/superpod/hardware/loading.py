"""Reading YAML safely and turning validation failures into one clear line.

Every error names the file, the field (``systems[0].scale_up.latency``), the value and what
is allowed. Duplicate keys in a mapping are refused rather than silently overwritten.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from superpod.errors import SpecError

M = TypeVar("M", bound=BaseModel)


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where present: ~10x


class _StrictLoader(_Base):  # type: ignore[misc]
    """A SafeLoader (libyaml's parser where available) that refuses duplicate mapping keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or malformed YAML is a ``SpecError``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file not found", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read file: {exc}", file=str(p)) from None
    return parse_yaml_text(text, str(p))


def parse_yaml_text(text: str, file: str) -> Any:
    """Parse YAML text; errors name the file, line and column."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"malformed YAML{where}: {exc.problem or exc.context}",
                        file=file) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", file=file) from None


def format_loc(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """``("node", "cpus", "count")`` -> ``"node.cpus.count"``; list indexes as ``[i]``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic model classes inside an annotation (through Optional, list, dict)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (list, dict, typing.Union, types.UnionType) or origin is not None:
        for arg in typing.get_args(annotation):
            found += _models_in(arg)
    return found


def allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys a file may use at ``loc`` inside ``model`` (aliases where a field has one)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items()
                      if part in (n, f.alias)), None)
        if field is None:
            continue  # a dict key (e.g. a precision name): stay on the same model
        models = _models_in(field.annotation)
        current = models[0] if models else None
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def read_model_file(path: str | Path, model: type[M]) -> M:
    """A YAML file validated as ``model``; any problem is one ``SpecError`` line."""
    try:
        return model.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise spec_error(exc, file=str(path), model=model) from None


def spec_error(exc: ValidationError, *, file: str, model: type[BaseModel],
               prefix: str = "") -> SpecError:
    """Every pydantic error (one per field, up to ``MAX_PROBLEMS``) as one ``SpecError``
    with a line per problem."""
    seen: set[tuple[int | str, ...]] = set()
    problems = []
    for e in exc.errors():
        loc = tuple(e["loc"])
        if loc in seen:  # a union reports each branch; the first says enough
            continue
        seen.add(loc)
        problems.append(_problem(e, loc, file=file, model=model, prefix=prefix))
    return SpecError.combine(problems)


def _problem(error: Any, loc: tuple[int | str, ...], *, file: str, model: type[BaseModel],
             prefix: str) -> SpecError:
    """One pydantic error as one line: file, field, value, allowed."""
    field = format_loc(loc, prefix)
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        keys = ", ".join(allowed_keys(model, loc[:-1]))
        return SpecError("unknown key", file=file, field=field, allowed=keys or None)
    if kind == "missing":
        return SpecError("missing required field", file=file, field=field)
    msg = str(error["msg"]).removeprefix("Value error, ")
    shown = value if isinstance(value, str | int | float | bool) else None
    return SpecError(msg, file=file, field=field, value=shown)
