"""Reading YAML safely and turning validation failures into one clear line.

Every error names the file, the field (``systems[0].scale_up.latency``), the value and what
is allowed. Duplicate keys in a mapping are refused rather than silently overwritten. The
loader is safe against hostile structure: keys must be scalars (``? [a, b]`` is refused),
an alias may not refer to the node that contains it (``a: &a [*a]``), nesting is at most
``MAX_DEPTH`` deep, at most ``MAX_NODES`` values are expanded (no "billion laughs"), and
an integer has at most ``MAX_INT_DIGITS`` digits. Files are read through
``superpod.boundary.files`` (regular files only, bounded size).
"""

from __future__ import annotations

import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from superpod.errors import SpecError

M = TypeVar("M", bound=BaseModel)


#: deepest nesting of mappings and lists a file may have (the catalog is ~6 deep)
MAX_DEPTH = 64
#: nodes a file may expand to, aliases counted each time they are used (no "billion laughs")
MAX_NODES = 200_000
#: digits of the largest integer read (Python refuses to convert more than 4,300)
MAX_INT_DIGITS = 30


@lru_cache(maxsize=1)
def _loader() -> Any:
    """The strict loader class: a SafeLoader (libyaml's parser where available: ~10x) that
    refuses duplicate and non-scalar keys and giant integers; ``_check_graph`` refuses
    recursive aliases, deep nesting and alias bombs before anything is constructed. Built at
    first use: PyYAML is imported only when a file is parsed, not read from the cache."""
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[misc]
        pass

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)
    StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    return StrictLoader


def _check_graph(root: Any) -> None:
    """Walk the composed node graph (iteratively): an alias that refers to a node containing
    it makes a cycle; nesting deeper than ``MAX_DEPTH``; more than ``MAX_NODES`` expanded."""
    import yaml

    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, True)]
    visits = 0
    while stack:
        node, depth, enter = stack.pop()
        if not enter:
            on_path.discard(id(node))
            continue
        visits += 1
        if visits > MAX_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"expands to more than {MAX_NODES:,} values (aliases)",
                node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            continue
        if id(node) in on_path:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to the node that contains it (recursive)",
                node.start_mark)
        if depth > MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", node.start_mark)
        on_path.add(id(node))
        stack.append((node, depth, False))
        children = (node.value if isinstance(node, yaml.SequenceNode)
                    else [n for pair in node.value for n in pair])
        stack.extend((child, depth + 1, True) for child in reversed(children))


def _construct_int(loader: Any, node: Any) -> Any:
    import yaml

    digits = sum(c.isdigit() for c in str(node.value))
    if digits > MAX_INT_DIGITS:
        raise yaml.constructor.ConstructorError(
            None, None, f"integer with {digits} digits (at most {MAX_INT_DIGITS})",
            node.start_mark)
    return loader.construct_yaml_int(node)


def _construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
    import yaml

    seen: set[Any] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value, not a list or mapping",
                key_node.start_mark)
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or malformed YAML is a ``SpecError``. The package's
    own files come from the parse cache when it holds their text
    (``superpod.boundary.load_cache``)."""
    from superpod.boundary.files import read_text
    from superpod.boundary.load_cache import cached_parse

    return cached_parse(path, read_text(path), parse_yaml_text)


def parse_yaml_text(text: str, file: str) -> Any:
    """Parse YAML text; errors name the file, line and column."""
    import yaml

    try:
        loader = _loader()(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_graph(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"malformed YAML{where}: {exc.problem or exc.context}",
                        file=file) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", file=file) from None
    except (RecursionError, ValueError, TypeError) as exc:
        raise SpecError(f"malformed YAML: {type(exc).__name__}", file=file) from None


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
    """A YAML file validated as ``model``; any problem is one ``SpecError`` line. A package
    file's validated object comes from the load cache when it holds it for this text and
    code (``superpod.boundary.load_cache``)."""
    from superpod.boundary.load_cache import cached_build

    def validate() -> M:
        try:
            return model.model_validate(read_yaml(path))
        except ValidationError as exc:
            raise spec_error(exc, file=str(path), model=model) from None

    return cached_build(f"{model.__module__}.{model.__qualname__}", [path], validate)


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
