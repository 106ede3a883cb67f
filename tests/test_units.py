"""Properties of unit parsing and formatting (``superpod.units``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from superpod.units import Dim, UnitError, parse_quantity, parse_size_bytes, si

#: (unit text, dimension, SI factor)
UNITS = [
    ("GB/s", Dim.BYTES_PER_S, 1e9),
    ("TB/s", Dim.BYTES_PER_S, 1e12),
    ("GiB/s", Dim.BYTES_PER_S, 2.0**30),
    ("Gb/s", Dim.BITS_PER_S, 1e9),
    ("Gbps", Dim.BITS_PER_S, 1e9),
    ("GB", Dim.BYTES, 1e9),
    ("TiB", Dim.BYTES, 2.0**40),
    ("PFLOP/s", Dim.FLOP_PER_S, 1e15),
    ("kW", Dim.POWER, 1e3),
    ("us", Dim.TIME, 1e-6),
    ("ms", Dim.TIME, 1e-3),
]
positive = st.floats(min_value=1e-200, max_value=1e200, allow_nan=False, allow_infinity=False)
unit = st.sampled_from(UNITS)
spacing = st.sampled_from(["", " ", "  "])


@given(positive)
def test_gb_per_s_round_trip(x: float) -> None:
    assert parse_quantity(f"{x!r} GB/s", Dim.BYTES_PER_S) == pytest.approx(x * 1e9, rel=1e-12)


@given(positive, unit, spacing)
def test_round_trip_any_unit(x: float, u: tuple[str, Dim, float], sep: str) -> None:
    text, dim, factor = u
    got = parse_quantity(f"{x!r}{sep}{text}", dim)
    assert got == pytest.approx(x * factor, rel=1e-12)


@given(positive, unit)
def test_negative_values_raise(x: float, u: tuple[str, Dim, float]) -> None:
    text, dim, factor = u
    with pytest.raises(UnitError, match="negative"):
        parse_quantity(f"-{x!r} {text}", dim)
    got = parse_quantity(f"-{x!r} {text}", dim, allow_negative=True)
    assert got == pytest.approx(-x * factor, rel=1e-12)


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()),
       st.sampled_from(list(Dim)))
def test_bare_numbers_raise(value: object, dim: Dim) -> None:
    with pytest.raises(UnitError, match="unit"):
        parse_quantity(value, dim)


@given(st.one_of(st.integers(), positive), st.sampled_from(list(Dim)))
def test_bare_numbers_in_text_raise(value: float, dim: Dim) -> None:
    with pytest.raises(UnitError):
        parse_quantity(str(value), dim)


@given(positive, st.sampled_from([(u, d) for u, d, _ in UNITS]))
def test_wrong_dimension_raises(x: float, u: tuple[str, Dim]) -> None:
    text, dim = u
    other = Dim.POWER if dim is not Dim.POWER else Dim.TIME
    with pytest.raises(UnitError, match="is not a"):
        parse_quantity(f"{x!r} {text}", other)


@pytest.mark.parametrize("text", ["", "GB/s", "abc", "1,000 GB/s", "1e999 GB/s", "nan GB/s"])
def test_unreadable_text_raises(text: str) -> None:
    with pytest.raises(UnitError):
        parse_quantity(text, Dim.BYTES_PER_S)


def test_bits_and_bytes_differ_by_case() -> None:
    assert parse_quantity("400 Gb/s", Dim.BITS_PER_S) == 400e9
    with pytest.raises(UnitError):
        parse_quantity("400 Gb/s", Dim.BYTES_PER_S)
    with pytest.raises(UnitError):
        parse_quantity("50 GB/s", Dim.BITS_PER_S)


@given(st.floats(min_value=1.0, max_value=1e23, allow_nan=False))
def test_si_output_parses_back(v: float) -> None:
    text = si(v, "B/s")
    assert "e+" not in text and "e-" not in text, text
    assert parse_quantity(text.replace(",", ""), Dim.BYTES_PER_S) == pytest.approx(v, rel=5e-3)


def test_si_rounding_up_stays_plain() -> None:
    assert si(999.6e9, "B/s") == "1,000 GB/s"
    assert si(3.35e12, "B/s") == "3.35 TB/s"


@given(st.integers(min_value=0, max_value=2**60))
def test_size_bytes_plain_and_binary(n: int) -> None:
    assert parse_size_bytes(n) == float(n)
    assert parse_size_bytes(f"{n} KiB") == pytest.approx(n * 1024.0)
    with pytest.raises(UnitError):
        parse_size_bytes(-n - 1)
