"""The two ways an answer can fail: bad input, and valid input that cannot run.

``SpecError`` is the user's input being wrong (malformed YAML, unknown key, negative
bandwidth, unknown chip): the CLI prints its one line and exits with code 2.
``Infeasible`` is a well-formed question whose answer is "this cannot run" (does not fit
in memory, degrees do not divide): it is a result with a reason, counted by searches.
"""

from __future__ import annotations

from dataclasses import dataclass


class SpecError(Exception):
    """Bad input. The message names the file, the field, the value and what is allowed."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 value: object = None, allowed: str | None = None) -> None:
        self.file = file
        self.field = field
        self.value = value
        self.allowed = allowed
        self.detail = message
        super().__init__(self._line())

    def _line(self) -> str:
        where = ": ".join(p for p in (self.file, self.field) if p)
        head = f"{where}: " if where else ""
        val = f" = {self.value!r}" if self.value is not None else ""
        tail = f" (allowed: {self.allowed})" if self.allowed else ""
        return f"{head}{self.detail.strip()}{val if val and head else ''}{tail}"


class Unsupported(Exception):
    """A well-formed validation case that superpod does not model yet (reported with the
    reason as ``unsupported``, never as an error)."""


@dataclass(frozen=True, slots=True)
class Infeasible:
    """A valid question that cannot run; ``reason`` is a short stable key, ``detail`` prose."""

    reason: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"status": "infeasible", "reason": self.reason, "detail": self.detail}
