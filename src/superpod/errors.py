"""The two ways an answer can fail: bad input, and valid input that cannot run.

``SpecError`` is the user's input being wrong (malformed YAML, unknown key, negative
bandwidth, unknown chip): the CLI prints its one line and exits with code 2.
``Infeasible`` is a well-formed question whose answer is "this cannot run" (does not fit
in memory, degrees do not divide): it is a result with a reason, counted by searches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: problems of one file reported together, at most
MAX_PROBLEMS = 20


class SpecError(Exception):
    """Bad input. The message names the file, the field, the value and what is allowed.

    One error may carry a file's further problems (``problems``, at most ``MAX_PROBLEMS``
    in all): its text is then one line per problem."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 value: object = None, allowed: str | None = None,
                 problems: Sequence[SpecError] = (), more: int = 0) -> None:
        self.file = file
        self.field = field
        self.value = value
        self.allowed = allowed
        self.detail = message
        self.problems = tuple(problems)
        self.more = more  #: problems found beyond ``MAX_PROBLEMS``, not listed
        lines = [self._line(), *(p._line() for p in self.problems)]
        if more:
            lines.append(f"{file + ': ' if file else ''}and {more} more problem(s)")
        super().__init__("\n".join(lines))

    @property
    def all(self) -> tuple[SpecError, ...]:
        """This problem and the ones it carries."""
        return (self, *self.problems)

    @classmethod
    def combine(cls, errors: Sequence[SpecError]) -> SpecError:
        """One error reporting ``errors`` (each may carry its own), the first
        ``MAX_PROBLEMS`` listed."""
        flat = [p for e in errors for p in e.all]
        extra = sum(e.more for e in errors)
        first, rest = flat[0], flat[1:MAX_PROBLEMS]
        return cls(first.detail, file=first.file, field=first.field, value=first.value,
                   allowed=first.allowed, problems=rest,
                   more=extra + max(0, len(flat) - MAX_PROBLEMS))

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
