"""Held-out sources: the documents a leave-one-source-out evaluation must not learn from.

Outside ``holding_out`` nothing is held out and every lookup sees all the data. Inside it,
every fitted constant, calibration point and framework or runtime default whose ``source``
names a held-out document (``superpod.trust.sources.source_key``) must be left out by the
code that looks it up, which falls back to what it would use with no such data (a documented
default, or the same mechanism fitted on the remaining points). Lookups call ``held_out``.

A context variable, so the evaluation functions stay pure functions of their arguments and of
this one switch; the validation runner sets it per source.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, TypeVar

from superpod.trust.sources import source_key


class _Sourced(Protocol):
    @property
    def source(self) -> str: ...


T = TypeVar("T", bound=_Sourced)
_EXCLUDED: ContextVar[frozenset[str]] = ContextVar("superpod_excluded_sources",
                                                   default=frozenset())


def excluded() -> frozenset[str]:
    """The source keys held out now (empty: nothing is)."""
    return _EXCLUDED.get()


def held_out(*sources: str) -> bool:
    """Whether a datum citing ``sources`` is held out: all of its sources are excluded (a
    datum that another, kept document also states survives)."""
    ex = _EXCLUDED.get()
    if not ex or not sources:
        return False
    return all(source_key(s) in ex for s in sources)


def kept(entries: Iterable[T], held: frozenset[str]) -> list[T]:
    """The ``entries`` (anything with a ``source`` text) whose document is not in ``held``
    (source keys): what a loader keeps while those documents are held out."""
    return [e for e in entries if source_key(e.source) not in held]


@contextmanager
def holding_out(keys: Iterable[str]) -> Iterator[None]:
    """Hold out the documents ``keys`` (source keys) inside the block."""
    token = _EXCLUDED.set(frozenset(keys))
    try:
        yield
    finally:
        _EXCLUDED.reset(token)
