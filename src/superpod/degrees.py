"""Candidate parallel degrees that layout searches (training and serving) enumerate."""

from __future__ import annotations


def powers_of_two(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit`` inclusive (empty below 1)."""
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def divisors(n: int, limit: int | None = None) -> list[int]:
    """Divisors of ``n`` up to ``limit`` (default ``n``), ascending."""
    return [d for d in range(1, (limit or n) + 1) if n % d == 0]
