"""The base of every model read from a file: booleans are not numbers, numbers are finite.

Pydantic's lax mode reads ``true`` as ``1`` for an ``int`` or ``float`` field and accepts
``.nan`` / ``.inf`` for a float; neither is ever what a file means. ``FileModel`` refuses
both; subclasses set their own ``model_config`` keys on top (``allow_inf_nan`` stays off).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def allows_bool(annotation: Any) -> bool:
    """Whether a field's type admits a boolean (``bool``, ``bool | None``, ``Any``)."""
    if annotation is bool or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return allows_bool(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(allows_bool(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return any(isinstance(a, bool) for a in typing.get_args(annotation))
    return False


class FileModel(BaseModel):
    """Booleans only where a field is a boolean; no NaN or infinity anywhere."""

    model_config = ConfigDict(allow_inf_nan=False, defer_build=True)  # a base: never built

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and not allows_bool(field.annotation):
                raise ValueError("a boolean is not allowed here")
        return value
