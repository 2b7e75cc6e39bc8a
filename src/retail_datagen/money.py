"""Integer-cents money arithmetic (behaviour.md §6).

Amounts are int64 cents everywhere; floats never touch a stored amount. The element-wise formulas
(rounding, discounts, tax rate, line tax) take numpy arrays, with numpy broadcasting, or plain
Python ints: when every argument is a scalar the result is a Python ``int``, otherwise an int64
``np.ndarray``. The allocation and Arrow helpers always return arrays.

Rounding is half-up on integers, ``(x + d // 2) // d``, which numpy and Python both evaluate as a
floor division.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = [
    "TAXABILITY_FACTOR",
    "allocate_fixed",
    "bogo_discount",
    "cents_to_decimal",
    "decimal_to_cents",
    "largest_remainder",
    "line_tax",
    "money_columns",
    "percent_discount",
    "round_half_up",
    "tax_rate_ppm",
]

TAXABILITY_FACTOR: dict[str, int] = {"TAXABLE": 100, "REDUCED_RATE": 50, "NON_TAXABLE": 0}

_MONEY_TYPE = pa.decimal128(18, 2)
_MAX_UNSCALED = 10**18 - 1  # the largest unscaled value DECIMAL(18, 2) can hold
_TAX_DENOM = 100_000_000  # ppm (10^6) × taxability percent (10^2)


def _is_scalar(*values: Any) -> bool:
    return all(np.ndim(v) == 0 for v in values)


def _out(result: np.ndarray, scalar: bool) -> int | np.ndarray:
    return int(result) if scalar else result


def _i64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def round_half_up(x: Any) -> int | np.ndarray:
    """``floor(x + 0.5)`` as integers.

    Args:
        x: float or integer scalar or array.

    Returns:
        ``int`` for a scalar, else int64 array of ``x``'s shape.
    """
    scalar = _is_scalar(x)
    arr = np.asarray(x)
    if arr.dtype.kind in "iub":
        result = arr.astype(np.int64)
    else:
        result = np.floor(arr.astype(np.float64) + 0.5).astype(np.int64)
    return _out(result, scalar)


def percent_discount(gross_cents: Any, bp: Any) -> int | np.ndarray:
    """Percent discount ``(gross × bp + 5_000) // 10_000`` with ``bp = percent × 100``.

    Exact while ``gross × bp`` fits in int64 (|gross| < 9.2 × 10^14 cents at 100 %).

    Args:
        gross_cents: int64 scalar or array, the line gross ``unit × qty``.
        bp: int scalar or array broadcastable to ``gross_cents``.

    Returns:
        The discount in cents, ``int`` or int64 array. It never exceeds the gross for bp ≤ 10_000.
    """
    scalar = _is_scalar(gross_cents, bp)
    return _out((_i64(gross_cents) * _i64(bp) + 5_000) // 10_000, scalar)


def bogo_discount(unit_cents: Any, qty: Any) -> int | np.ndarray:
    """BOGO discount, 50 % off ``qty // 2`` units: ``(unit × (qty // 2) × 5_000 + 5_000) // 10_000``.

    Args:
        unit_cents: int64 scalar or array, the unit price.
        qty: int scalar or array broadcastable to ``unit_cents`` (qty ≥ 0).

    Returns:
        The discount in cents, ``int`` or int64 array.
    """
    scalar = _is_scalar(unit_cents, qty)
    units = _i64(unit_cents) * (_i64(qty) // 2)
    return _out((units * 5_000 + 5_000) // 10_000, scalar)


def _grouped_largest_remainder(
    totals: np.ndarray, weights: np.ndarray, starts: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """Split ``totals[g]`` over the weights of group g ∝ weight, largest remainders first.

    Groups are contiguous runs of ``weights`` beginning at ``starts`` with lengths ``sizes``. A
    group whose weights sum to 0 receives nothing.
    """
    n = weights.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    gidx = np.repeat(np.arange(starts.size), sizes)
    wsum = np.add.reduceat(weights, starts)
    safe = np.where(wsum > 0, wsum, 1)
    totals = np.where(wsum > 0, totals, 0)
    if int(np.abs(totals).max(initial=0)) * int(weights.max(initial=0)) < np.iinfo(np.int64).max:
        prod = totals[gidx] * weights
    else:
        # Rare huge totals: fall back to exact Python integers rather than overflow.
        prod = totals[gidx].astype(object) * weights.astype(object)
    base, rem = (part.astype(np.int64, copy=False) for part in np.divmod(prod, safe[gidx]))
    left = totals - np.add.reduceat(base, starts)
    # Σ rem = left × Σw with every rem < Σw, so more than `left` lines of a group have rem > 0 and
    # only those lines can receive a unit: rank just them, by remainder descending, then position.
    cand = np.flatnonzero((rem > 0) & (left[gidx] > 0))
    if cand.size == 0:
        return base
    cg, crem = gidx[cand], rem[cand]
    span = int(crem.max()) + 1
    if (int(cg[-1]) + 1) * span < np.iinfo(np.int64).max:
        # One int64 key (group, then remainder descending); the stable sort keeps position order.
        order = cand[np.argsort(cg * span + (span - 1 - crem), kind="stable")]
    else:
        order = cand[np.lexsort((cand, -crem, cg))]
    og = gidx[order]
    first = np.flatnonzero(np.r_[True, og[1:] != og[:-1]])
    rank = np.arange(order.size) - np.repeat(first, np.diff(np.r_[first, order.size]))
    base[order[rank < left[og]]] += 1
    return base


def largest_remainder(total: int, weights: Any) -> np.ndarray:
    """Apportion a non-negative integer ``total`` ∝ integer ``weights``.

    Each weight first gets ``total × w // Σw``; the units left over go one each to the largest
    remainders ``total × w % Σw``, ties to the lower index.

    Args:
        total: Non-negative int.
        weights: Non-negative integer array of shape (m,).

    Returns:
        int64 array of shape (m,) summing to ``total``.

    Raises:
        ValueError: If ``total`` is positive and every weight is 0, or an input is negative.
    """
    w = _i64(weights).reshape(-1)
    total = int(total)
    if total < 0 or (w < 0).any():
        raise ValueError("largest_remainder needs a non-negative total and weights")
    if total > 0 and int(w.sum()) == 0:
        raise ValueError("largest_remainder cannot split a positive total over zero weights")
    if w.size == 0:
        return np.zeros(0, dtype=np.int64)
    return _grouped_largest_remainder(
        np.array([total], dtype=np.int64),
        w,
        np.array([0], dtype=np.int64),
        np.array([w.size], dtype=np.int64),
    )


def allocate_fixed(amount_cents: Any, gross_cents: Any, group: Any, eligible: Any) -> np.ndarray:
    """Fixed-amount discount per line (behaviour.md §6), for many groups (receipts) at once.

    Group g's discount is ``min(A_g, eligible gross of g)``, split over its eligible lines ∝ line
    gross by largest remainder (ties: lower position within the group). No share exceeds its line
    gross, and non-eligible lines get 0.

    Args:
        amount_cents: A (int) for every group, or an int array with one value per group (in
            ascending group order), or one per line (the group's first line is used).
        gross_cents: int64 array of shape (n,), line gross ≥ 0, lines in line order per group.
        group: integer array of shape (n,), sorted ascending.
        eligible: bool array of shape (n,).

    Returns:
        int64 array of shape (n,): the discount per line.
    """
    gross = _i64(gross_cents).reshape(-1)
    grp = np.asarray(group).reshape(-1)
    elig = np.asarray(eligible, dtype=bool).reshape(-1)
    n = gross.size
    if grp.size != n or elig.size != n:
        raise ValueError("gross_cents, group and eligible must have the same length")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if (grp[1:] < grp[:-1]).any():
        raise ValueError("group must be sorted ascending")
    starts = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1]])
    sizes = np.diff(np.r_[starts, n])
    amount = _i64(amount_cents).reshape(-1)
    if amount.size == 1:
        amount = np.full(starts.size, amount[0], dtype=np.int64)
    elif amount.size == n and amount.size != starts.size:
        amount = amount[starts]
    elif amount.size != starts.size:
        raise ValueError("amount_cents needs one value, one per group or one per line")
    weights = np.where(elig, gross, 0)
    eligible_gross = np.add.reduceat(weights, starts)
    totals = np.clip(amount, 0, eligible_gross)
    return _grouped_largest_remainder(totals, weights, starts, sizes)


def _decimal_of(x: Any) -> Decimal:
    if isinstance(x, Decimal):
        return x
    if isinstance(x, float | np.floating):
        # The shortest repr is the decimal the rate was written as (0.0825, not 0.08249999…).
        return Decimal(repr(float(x)))
    return Decimal(str(x))


def _ppm_of(x: Any) -> int:
    return math.floor(_decimal_of(x) * 1_000_000 + Decimal("0.5"))


def tax_rate_ppm(tax_rate: Any) -> int | np.ndarray:
    """``rate_ppm = round(tax_rate × 1_000_000)``, half-up, with no basis-point truncation.

    Decimal and str inputs are exact; a float is read as its shortest decimal representation.

    Args:
        tax_rate: A scalar (Decimal, str, float, int) or an array / pyarrow array of them.

    Returns:
        ``int`` for a scalar, else int64 array of the input's shape.
    """
    if isinstance(tax_rate, pa.ChunkedArray | pa.Array):
        tax_rate = np.asarray(tax_rate.to_pylist(), dtype=object)
    if isinstance(tax_rate, Decimal | str) or np.ndim(tax_rate) == 0:
        return _ppm_of(tax_rate.item() if isinstance(tax_rate, np.ndarray) else tax_rate)
    arr = np.asarray(tax_rate)
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=np.int64)
    # Rates repeat heavily (one per state); convert each distinct value once.
    uniq, inverse = np.unique(arr.reshape(-1), return_inverse=True)
    ppm = np.array([_ppm_of(u) for u in uniq.tolist()], dtype=np.int64)
    return ppm[inverse].reshape(arr.shape)


def line_tax(ext_cents: Any, rate_ppm: Any, factor: Any) -> int | np.ndarray:
    """Line tax ``sign(ext) × ((|ext| × ppm × f + 50_000_000) // 100_000_000)``.

    The sign rule makes a return line's tax the exact negation of the sale's. The product
    ``|ext| × ppm × f`` is split at 10^8 so nothing overflows: the result is exact for every
    ``|ext| < 2^63`` whenever ``0 ≤ ppm × f ≤ 10^8`` (rates up to 100 %), and for larger
    ``ppm × f`` as long as the tax itself fits in int64 and ``ppm × f < 9.2 × 10^10``.

    Args:
        ext_cents: int64 scalar or array, the extended line amount (negative for returns).
        rate_ppm: int scalar or array, from :func:`tax_rate_ppm`.
        factor: int scalar or array, a ``TAXABILITY_FACTOR`` value.

    Returns:
        The tax in cents, ``int`` or int64 array of the broadcast shape.
    """
    scalar = _is_scalar(ext_cents, rate_ppm, factor)
    ext = _i64(ext_cents)
    k = _i64(rate_ppm) * _i64(factor)
    mag = np.abs(ext)
    hi, lo = np.divmod(mag, _TAX_DENOM)
    # |ext| × k + D/2 = hi × k × D + (lo × k + D/2), and the floor division splits the same way.
    tax = hi * k + (lo * k + _TAX_DENOM // 2) // _TAX_DENOM
    return _out(np.sign(ext) * tax, scalar)


def cents_to_decimal(cents: Any) -> pa.Array:
    """A ``decimal128(18, 2)`` Arrow array whose values are exactly ``cents / 100``.

    The decimal's unscaled 128-bit integers are the cents themselves, so the array is built
    straight from the int64 buffer (low word = cents, high word = its sign extension): no float and
    no per-value Python work.

    Args:
        cents: int64 array of shape (n,) (or anything ``np.asarray`` makes one of).

    Returns:
        ``pa.Array`` of type ``decimal128(18, 2)`` and length n, without nulls.

    Raises:
        ValueError: If a value needs more than 18 digits.
    """
    c = np.ascontiguousarray(_i64(cents).reshape(-1))
    if c.size and (int(c.min()) < -_MAX_UNSCALED or int(c.max()) > _MAX_UNSCALED):
        raise ValueError("cents value out of DECIMAL(18,2) range")
    # Arrow decimals are little-endian 128-bit integers, low word first.
    words = np.empty((c.size, 2), dtype="<i8")
    words[:, 0] = c
    words[:, 1] = c >> 63
    return pa.Array.from_buffers(_MONEY_TYPE, c.size, [None, pa.py_buffer(words)])


def money_columns(amount_name: str, cents_name: str, cents: Any) -> dict[str, pa.Array]:
    """The two columns of one fact amount: the ``decimal128(18, 2)`` value and its int64 cents.

    Every money field of the fact batches is such a pair (``Tax`` and ``TaxCents``, …); the dict
    keeps that order, so it can be spread into a batch's column mapping.

    Args:
        amount_name: The PascalCase name of the decimal column, e.g. ``"Tax"``.
        cents_name: The name of its cents column, e.g. ``"TaxCents"``.
        cents: int64 array of shape (n,), the amounts in cents.

    Returns:
        ``{amount_name: decimal array, cents_name: int64 array}``.
    """
    return {amount_name: cents_to_decimal(cents), cents_name: pa.array(cents, pa.int64())}


def decimal_to_cents(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The inverse of :func:`cents_to_decimal`: exact int64 cents of a decimal array.

    Any decimal type is accepted; a scale other than 2 is rescaled by Arrow, which refuses to drop
    non-zero digits.

    Args:
        arr: Arrow decimal array (or chunked array) of length n, without nulls.

    Returns:
        int64 array of shape (n,).

    Raises:
        ValueError: If the array has nulls or a value does not fit in int64 cents.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        raise ValueError("decimal_to_cents does not accept nulls")
    if not (pa.types.is_decimal128(arr.type) and arr.type.scale == 2):
        arr = arr.cast(pa.decimal128(38, 2))
    buf = arr.buffers()[1]
    words = np.frombuffer(buf, dtype="<i8").reshape(-1, 2)[arr.offset : arr.offset + len(arr)]
    low = words[:, 0].astype(np.int64)  # a native-endian copy, independent of the Arrow buffer
    if (words[:, 1] != (low >> 63)).any():
        raise ValueError("decimal value does not fit in int64 cents")
    return low
