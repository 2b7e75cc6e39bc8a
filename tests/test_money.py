"""Tests for retail_datagen.money (behaviour.md §6)."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retail_datagen import money

CENTS = st.integers(min_value=-(10**15), max_value=10**15)
GROSS = st.integers(min_value=0, max_value=10**11)
PPM = st.integers(min_value=0, max_value=150_000)
FACTOR = st.sampled_from(sorted(money.TAXABILITY_FACTOR.values()))


def half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


# --- rounding and discounts ----------------------------------------------------------------------


def test_round_half_up_examples() -> None:
    got = money.round_half_up(np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, -2.6]))
    assert got.dtype == np.int64
    assert got.tolist() == [1, 2, 3, 0, -1, 2, -3]
    assert money.round_half_up(2.5) == 3 and isinstance(money.round_half_up(2.5), int)
    assert money.round_half_up(np.array([7, -7])).tolist() == [7, -7]


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_round_half_up_is_floor_plus_half(x: float) -> None:
    assert money.round_half_up(x) == math.floor(x + 0.5)


@given(GROSS, st.integers(min_value=0, max_value=10_000))
def test_percent_discount(gross: int, bp: int) -> None:
    d = money.percent_discount(gross, bp)
    assert isinstance(d, int)
    assert d == half_up(Fraction(gross * bp, 10_000))
    assert 0 <= d <= gross
    arr = money.percent_discount(np.array([gross, gross], dtype=np.int64), bp)
    assert arr.dtype == np.int64 and arr.tolist() == [d, d]


def test_percent_discount_examples() -> None:
    assert money.percent_discount(1999, 1000) == 200  # 199.9 → 200
    assert money.percent_discount(5, 1000) == 1  # 0.5 → 1 (half-up)
    assert money.percent_discount(4, 1000) == 0
    got = money.percent_discount(np.array([100, 250]), np.array([2500, 1500]))
    assert got.tolist() == [25, 38]


@given(st.integers(min_value=0, max_value=10**8), st.integers(min_value=0, max_value=1000))
def test_bogo_discount(unit: int, qty: int) -> None:
    d = money.bogo_discount(unit, qty)
    assert d == half_up(Fraction(unit * (qty // 2), 2))
    assert 0 <= d <= unit * qty


def test_bogo_examples() -> None:
    got = money.bogo_discount(np.array([999, 999, 999, 1]), np.array([1, 2, 5, 2]))
    assert got.tolist() == [0, 500, 999, 1]


# --- tax -----------------------------------------------------------------------------------------


def exact_tax(ext: int, ppm: int, f: int) -> int:
    sign = (ext > 0) - (ext < 0)
    return sign * half_up(Fraction(abs(ext) * ppm * f, 100_000_000))


@given(CENTS, PPM, FACTOR)
def test_line_tax_exact(ext: int, ppm: int, f: int) -> None:
    t = money.line_tax(ext, ppm, f)
    assert isinstance(t, int)
    assert t == exact_tax(ext, ppm, f)
    assert money.line_tax(-ext, ppm, f) == -t


@given(st.lists(st.tuples(CENTS, PPM, FACTOR), min_size=1, max_size=50))
def test_line_tax_vectorised(rows: list[tuple[int, int, int]]) -> None:
    ext, ppm, f = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True))
    got = money.line_tax(ext, ppm, f)
    assert got.dtype == np.int64
    assert got.tolist() == [exact_tax(*row) for row in rows]


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1), st.integers(0, 1_000_000))
def test_line_tax_full_int64_range(ext: int, ppm: int) -> None:
    assert money.line_tax(np.array([ext]), ppm, 100).tolist() == [exact_tax(ext, ppm, 100)]


def test_line_tax_examples() -> None:
    assert money.line_tax(1000, 82_500, 100) == 83  # 82.5 → 83
    assert money.line_tax(-1000, 82_500, 100) == -83
    assert money.line_tax(1000, 82_500, 50) == 41  # 41.25
    assert money.line_tax(1000, 82_500, 0) == 0
    assert money.line_tax(0, 82_500, 100) == 0


def test_tax_rate_ppm() -> None:
    assert money.tax_rate_ppm(Decimal("0.0825")) == 82_500
    assert money.tax_rate_ppm("0.06875") == 68_750
    assert money.tax_rate_ppm(0.0725) == 72_500
    assert money.tax_rate_ppm("0.0000005") == 1  # half-up
    assert money.tax_rate_ppm("0.00000049") == 0
    assert money.tax_rate_ppm(0) == 0
    got = money.tax_rate_ppm(np.array([0.0825, 0.07, 0.0825]))
    assert got.dtype == np.int64 and got.tolist() == [82_500, 70_000, 82_500]
    got = money.tax_rate_ppm(np.array([Decimal("0.06"), Decimal("0.104375")], dtype=object))
    assert got.tolist() == [60_000, 104_375]
    arr = pa.array([Decimal("0.0825"), Decimal("0.0600")], pa.decimal128(6, 4))
    assert money.tax_rate_ppm(arr).tolist() == [82_500, 60_000]


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=8))
def test_tax_rate_ppm_exact_for_decimal(unscaled: int, scale: int) -> None:
    d = Decimal(unscaled).scaleb(-scale)
    assert money.tax_rate_ppm(d) == half_up(Fraction(unscaled * 10**6, 10**scale))
    assert money.tax_rate_ppm(str(d)) == money.tax_rate_ppm(d)


# --- allocation ----------------------------------------------------------------------------------


def reference_largest_remainder(total: int, weights: list[int]) -> list[int]:
    s = sum(weights)
    if s == 0:
        return [0] * len(weights)
    base = [total * w // s for w in weights]
    rems = [total * w % s for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-rems[i], i))
    for i in order[: total - sum(base)]:
        base[i] += 1
    return base


def test_largest_remainder_examples() -> None:
    assert money.largest_remainder(10, [1, 1, 1]).tolist() == [4, 3, 3]
    assert money.largest_remainder(2, [1, 1, 1, 1]).tolist() == [1, 1, 0, 0]
    assert money.largest_remainder(7, [0, 3, 0, 1]).tolist() == [0, 5, 0, 2]
    assert money.largest_remainder(0, [0, 0]).tolist() == [0, 0]
    assert money.largest_remainder(10**18, [1, 2, 3]).sum() == 10**18
    with pytest.raises(ValueError):
        money.largest_remainder(5, [0, 0])


@given(
    st.integers(min_value=0, max_value=10**9),
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30).filter(any),
)
def test_largest_remainder_property(total: int, weights: list[int]) -> None:
    got = money.largest_remainder(total, np.array(weights))
    assert got.dtype == np.int64
    assert int(got.sum()) == total
    assert got.tolist() == reference_largest_remainder(total, weights)


LINE = st.tuples(st.integers(min_value=0, max_value=10**6), st.booleans())
GROUPS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=10**7), st.lists(LINE, min_size=1, max_size=12)),
    min_size=1,
    max_size=15,
)


@given(GROUPS)
def test_allocate_fixed_property(groups: list[tuple[int, list[tuple[int, bool]]]]) -> None:
    amounts = np.array([a for a, _ in groups], dtype=np.int64)
    gross = np.array([g for _, lines in groups for g, _ in lines], dtype=np.int64)
    elig = np.array([e for _, lines in groups for _, e in lines], dtype=bool)
    gid = np.repeat(np.arange(len(groups)) * 3 + 5, [len(lines) for _, lines in groups])
    got = money.allocate_fixed(amounts, gross, gid, elig)
    assert got.dtype == np.int64 and got.shape == gross.shape
    assert np.all(got >= 0) and np.all(got <= gross)
    assert np.all(got[~elig] == 0)
    pos = 0
    for amount, lines in groups:
        share = got[pos : pos + len(lines)].tolist()
        weights = [g if e else 0 for g, e in lines]
        target = min(amount, sum(weights))
        assert sum(share) == target
        assert share == reference_largest_remainder(target, weights)
        pos += len(lines)


def test_allocate_fixed_examples() -> None:
    gross = np.array([100, 200, 300, 50, 50, 50, 10])
    group = np.array([1, 1, 1, 2, 2, 2, 3])
    elig = np.array([1, 1, 1, 1, 0, 1, 1], dtype=bool)
    assert money.allocate_fixed(500, gross, group, elig).tolist() == [83, 167, 250, 50, 0, 50, 10]
    # Equal remainders go to the lower position within the group.
    gross2, group2 = np.array([5, 5, 7, 7, 7]), np.array([0, 0, 1, 1, 1])
    got = money.allocate_fixed(np.array([1, 2]), gross2, group2, np.ones(5, dtype=bool))
    assert got.tolist() == [1, 0, 1, 1, 0]
    # One amount per line is also accepted (the group's first line is used).
    per_line = money.allocate_fixed(
        np.array([500, 500, 500, 1000, 1000, 1000, 0]), gross, group, elig
    )
    assert per_line.tolist() == [83, 167, 250, 50, 0, 50, 0]
    assert money.allocate_fixed(500, np.array([], dtype=np.int64), [], []).tolist() == []
    with pytest.raises(ValueError):
        money.allocate_fixed(500, np.array([1, 2]), np.array([2, 1]), np.ones(2, dtype=bool))


# --- decimal conversion --------------------------------------------------------------------------


@given(st.lists(st.integers(min_value=-(10**16) + 1, max_value=10**16 - 1), max_size=60))
def test_cents_to_decimal_round_trip(values: list[int]) -> None:
    cents = np.array(values, dtype=np.int64)
    arr = money.cents_to_decimal(cents)
    assert arr.type == pa.decimal128(18, 2)
    assert arr.null_count == 0
    assert arr.to_pylist() == [Decimal(c) / 100 for c in values]
    back = money.decimal_to_cents(arr)
    assert back.dtype == np.int64 and back.tolist() == values


def test_cents_to_decimal_edges() -> None:
    top = 10**18 - 1
    arr = money.cents_to_decimal(np.array([top, -top, 0, 1, -1]))
    assert arr.to_pylist()[:2] == [Decimal("9999999999999999.99"), Decimal("-9999999999999999.99")]
    assert money.decimal_to_cents(arr).tolist() == [top, -top, 0, 1, -1]
    with pytest.raises(ValueError):
        money.cents_to_decimal(np.array([10**18]))
    assert money.cents_to_decimal([]).to_pylist() == []
    assert money.cents_to_decimal([12345]).to_pylist() == [Decimal("123.45")]


def test_decimal_to_cents_variants() -> None:
    arr = money.cents_to_decimal(np.arange(-5, 5, dtype=np.int64) * 101)
    assert money.decimal_to_cents(arr.slice(3, 4)).tolist() == [-202, -101, 0, 101]
    chunked = pa.chunked_array([arr.slice(0, 2), arr.slice(8, 2)])
    assert money.decimal_to_cents(chunked).tolist() == [-505, -404, 303, 404]
    other_scale = pa.array([Decimal("1.5"), Decimal("-2")], pa.decimal128(10, 1))
    assert money.decimal_to_cents(other_scale).tolist() == [150, -200]
    with pytest.raises(pa.ArrowInvalid):
        money.decimal_to_cents(pa.array([Decimal("1.005")], pa.decimal128(10, 3)))
    with pytest.raises(ValueError):
        money.decimal_to_cents(pa.array([Decimal("1.00"), None], pa.decimal128(18, 2)))


def test_cents_to_decimal_large_batch() -> None:
    cents = np.random.default_rng(3).integers(-(10**15), 10**15, 1_000_000)
    arr = money.cents_to_decimal(cents)
    assert np.array_equal(money.decimal_to_cents(arr), cents)
    sample = arr.slice(123_456, 3).to_pylist()
    assert sample == [Decimal(int(c)) / 100 for c in cents[123_456:123_459]]
