"""Batch helpers shared by every fact domain: time columns, ids, schemas and product filters.

Timestamps travel through generation as ``int64`` microseconds since 1970-01-01 in store wall
time (no time zone is ever applied) and become ``timestamp("us")`` Arrow columns only when a
batch is built. Ids are built column-wise with pyarrow compute, never one string per Python call.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen.db import schema
from retail_datagen.errors import GenerationError, UnknownTableError
from retail_datagen.ids import day_tag as day_tag  # the domain mixins import it from here
from retail_datagen.ids import unit_day_ids

US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
US_PER_HOUR = 60 * US_PER_MINUTE
US_PER_DAY = 24 * US_PER_HOUR
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_start_us(day: date) -> int:
    """Microseconds from 1970-01-01 00:00 to ``day`` 00:00 (wall time)."""
    return (day.toordinal() - EPOCH_ORDINAL) * US_PER_DAY


def ts_array(ts_us: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """An Arrow ``timestamp("us")`` column from int64 microseconds (``mask`` true = NULL)."""
    return pa.array(np.asarray(ts_us, dtype=np.int64), type=pa.timestamp("us"), mask=mask)


def date_array(ordinals: np.ndarray) -> pa.Array:
    """An Arrow ``date32`` column from proleptic day ordinals."""
    days = np.asarray(ordinals, dtype=np.int64) - EPOCH_ORDINAL
    return pa.array(days.astype(np.int32), type=pa.date32())


class Digits(NamedTuple):
    """Non-negative integers written as decimal strings left-padded with zeros to ``width``."""

    values: np.ndarray
    width: int
    what: str = "id"


def fixed_width_strings(parts: Sequence[str | Digits | np.ndarray], n: int) -> pa.Array:
    """``n`` strings of one width: literals, zero-padded integer columns and byte matrices
    (uint8 (n, w), one string per row), concatenated.

    Built as one byte matrix (a row per string, a column per character), which is several
    times cheaper than formatting and joining Arrow string columns.

    Raises:
        GenerationError: a value is negative or needs more than its width in digits.
    """
    encoded = [p.encode() if isinstance(p, str) else p for p in parts]
    width = sum(len(p) if isinstance(p, bytes) else p.width if isinstance(p, Digits)
                else p.shape[1] for p in encoded)
    buf = np.empty((n, width), dtype=np.uint8)
    col = 0
    for part in encoded:
        if isinstance(part, bytes):
            buf[:, col:col + len(part)] = np.frombuffer(part, dtype=np.uint8)
            col += len(part)
            continue
        if isinstance(part, np.ndarray):
            buf[:, col:col + part.shape[1]] = part
            col += part.shape[1]
            continue
        values = np.asarray(part.values, dtype=np.int64)
        if values.size and (int(values.max()) >= 10**part.width or int(values.min()) < 0):
            bad = int(values.max()) if int(values.min()) >= 0 else int(values.min())
            raise GenerationError(f"{part.what}: value {bad} does not fit {part.width} digits")
        for c in range(col + part.width - 1, col, -1):
            quotient = values // 10
            buf[:, c] = values - quotient * 10 + 48
            values = quotient
        if part.width:
            buf[:, col] = values + 48
        col += part.width
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32) if width else np.zeros(
        n + 1, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf))


def zero_pad(values: np.ndarray, width: int, *, what: str = "id") -> pa.Array:
    """Decimal strings of non-negative integers, left-padded with zeros to ``width``.

    Raises:
        GenerationError: a value is negative or needs more than ``width`` digits (the id
            format overflows).
    """
    values = np.asarray(values, dtype=np.int64)
    return fixed_width_strings([Digits(values, width, what)], values.shape[0])


def string_bytes(values: pa.Array) -> np.ndarray | None:
    """The uint8 (n, w) matrix of a string column whose values all have w bytes and none is
    NULL, else None."""
    if not pa.types.is_string(values.type) or values.null_count:
        return None
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=n + 1,
                            offset=values.offset * 4)
    width = int(offsets[1] - offsets[0]) if n else 0
    if n > 1 and not bool((np.diff(offsets) == width).all()):
        return None
    if n * width == 0:
        return np.zeros((n, width), dtype=np.uint8)
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8, count=n * width,
                         offset=int(offsets[0]))
    return data.reshape(n, width)


def join_strings(parts: Sequence[pa.Array | str], n: int) -> pa.Array:
    """Concatenate string columns and literals element-wise into ``n`` strings."""
    if not any(isinstance(p, pa.Array | pa.ChunkedArray) for p in parts):
        return pa.repeat("".join(parts), n).cast(pa.string())
    parts = [p.combine_chunks() if isinstance(p, pa.ChunkedArray) else p for p in parts]
    matrices = [p if isinstance(p, str) else string_bytes(p) for p in parts]
    if all(m is not None for m in matrices):  # every column has one width: join as bytes
        return fixed_width_strings(matrices, n)
    # Literals broadcast as scalars: no per-row Python objects.
    arrays = [pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*arrays, "")


def generator_schema(name: str) -> pa.Schema:
    """The Arrow schema of a fact table's generator batch: PascalCase names, contract types.

    Fields follow ``schema.GENERATOR_NAMES`` (column order) and are all nullable, as the
    batches are built; the contract nullability is ``schema.arrow_schema``'s.

    Raises:
        UnknownTableError: ``name`` is not a fact table.
    """
    logical = schema.logical_fact_name(name)
    columns = schema.table(logical).c
    return pa.schema([pa.field(gen, schema.arrow_type(columns[db].type))
                      for gen, db in schema.GENERATOR_NAMES[logical].items()])


def dict_strings(codes: np.ndarray, vocabulary: Sequence[str], mask: np.ndarray | None = None
                 ) -> pa.Array:
    """A plain string column from integer codes into ``vocabulary`` (``mask`` true = NULL)."""
    codes = np.asarray(codes)
    indices = pa.array(np.where(mask, 0, codes).astype(np.int32) if mask is not None
                       else codes.astype(np.int32), mask=mask)
    return _vocabulary_array(tuple(vocabulary)).take(indices)


@functools.lru_cache(maxsize=256)
def _vocabulary_array(vocabulary: tuple[str, ...]) -> pa.Array:
    return pa.array(list(vocabulary), pa.string())


def nullable_int(values: np.ndarray, mask: np.ndarray, type_: pa.DataType = pa.int64()
                 ) -> pa.Array:
    """An integer column where ``mask`` true is NULL."""
    return pa.array(np.asarray(values), type=type_, mask=np.asarray(mask, dtype=bool))


def rows_of(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The row of each id in ``sorted_ids`` (ascending ids of a column set, e.g. the stores
    of a unit or of the whole network), where every id of ``ids`` is present."""
    return np.searchsorted(sorted_ids, np.asarray(ids, dtype=np.int64))


def group_starts(keys: np.ndarray) -> np.ndarray:
    """Boolean array: True where a sorted key column starts a new group."""
    keys = np.asarray(keys)
    start = np.ones(keys.shape[0], dtype=bool)
    if keys.shape[0] > 1:
        start[1:] = keys[1:] != keys[:-1]
    return start


def rank_within_groups(keys: np.ndarray) -> np.ndarray:
    """0-based position of each row within its run of equal (sorted) keys."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(group_starts(keys))
    lengths = np.diff(np.append(starts, n))
    return np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)


def sort_indices_by(keys: Sequence[np.ndarray],
                    tiebreak: Callable[[np.ndarray], pa.Array] | None = None) -> np.ndarray:
    """The stable ascending sort of rows by integer key columns (most significant first), then
    by a string column: what ``pc.sort_indices`` gives on the same columns, cheaper.

    The keys are packed into one int64 when their ranges fit in 63 bits, so one numpy sort
    does the work; ``tiebreak(rows)`` returns the strings of the given rows and is called only
    for rows whose integer keys are all equal to another row's.
    """
    n = int(np.asarray(keys[0]).shape[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cols = [np.asarray(k).astype(np.int64, copy=False) for k in keys]
    lows = [int(c.min()) for c in cols]
    spans = [int(c.max()) - low for c, low in zip(cols, lows, strict=True)]
    bits = [span.bit_length() for span in spans]
    if sum(bits) <= 63:
        packed = np.zeros(n, dtype=np.int64)
        for c, low, b in zip(cols, lows, bits, strict=True):
            packed = (packed << b) | (c - low)
        order = np.argsort(packed, kind="stable")
        ranked = packed[order]
        same = ranked[1:] == ranked[:-1]
    else:
        order = np.lexsort(cols[::-1])
        same = np.ones(n - 1, dtype=bool)
        for c in cols:
            ranked = c[order]
            same &= ranked[1:] == ranked[:-1]
    if tiebreak is None or not same.any():
        return order
    # Rows in runs of equal integer keys: order each run by the strings (stable).
    in_run = np.zeros(n, dtype=bool)
    in_run[1:] |= same
    in_run[:-1] |= same
    pos = np.flatnonzero(in_run)
    run = np.cumsum(~np.concatenate([[False], same])[pos])
    rows = order[pos]
    by_string = pc.sort_indices(pa.table({"g": run, "s": tiebreak(rows)}),
                                sort_keys=[("g", "ascending"), ("s", "ascending")]).to_numpy()
    order[pos] = rows[by_string]
    return order


def release_free_memory() -> None:
    """Give memory freed by the day's batches back to the operating system.

    A day allocates and frees a few hundred MB of arrays on two threads; without this glibc
    keeps the freed pages, and the resident size creeps up day after day.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _load_libc()


def resolve_fact_tables(tables: Iterable[str] | None) -> set[str]:
    """Logical fact table names of ``tables`` (logical or DB names); all when empty."""
    if not tables:
        return set(schema.FACT_TABLES)
    chosen = set()
    for name in tables:
        try:
            chosen.add(schema.logical_fact_name(name))
        except UnknownTableError as exc:
            raise UnknownTableError(f"unknown fact table {name!r}; valid names are: "
                                    + ", ".join(schema.FACT_TABLES)) from exc
    return chosen


class UtilsMixin:
    """Helpers used by several domains.

    This mixin defines the following functionality:

    Adds:
        ``_get_available_products_for_date``, ``_is_food_product``, ``_generate_trace_id``,
        ``_unit_day_ids``. No tables.
    Reads:
        ``_master.products``.
    Writes:
        nothing on self.
    Streams:
        none.
    """

    def _per_day(self, day: date, name: str, build: Callable[[], Any]) -> Any:
        """``build()`` once per day and name among the simulations sharing ``_day_cache``
        (a process's unit-days of one day): for values that depend only on the day and on
        dimensions every unit's view shares, such as the products."""
        cache = self.__dict__.setdefault("_day_cache", {})
        if cache.get("day") != day:
            cache.clear()
            cache["day"] = day
        key = (name, id(self._master.products))
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def _get_available_products_for_date(self, day: date) -> np.ndarray:
        """Indices (product_id − 1) of the products launched on or before ``day``, ascending."""
        return np.flatnonzero(self._master.products.launch_ordinal <= day.toordinal())

    def _is_food_product(self, product_ids: np.ndarray) -> np.ndarray:
        """True for food or beverages, or refrigerated products (returns are destroyed)."""
        products = self._master.products
        idx = np.asarray(product_ids, dtype=np.int64) - 1
        return products.is_food[idx]

    def _generate_trace_id(self, table: str, key_columns: Sequence[pa.Array]) -> pa.Array:
        """``"<table>:" + key values joined by ":"`` (timestamps in payload format)."""
        n = len(key_columns[0]) if key_columns else 0
        parts: list[pa.Array | str] = [table]
        for col in key_columns:
            parts.append(":")
            if pa.types.is_timestamp(col.type):
                # Arrow's %S prints the microseconds of a timestamp("us") column.
                parts.append(pc.strftime(col, format="%Y-%m-%dT%H:%M:%S"))
            else:
                parts.append(pc.cast(col, pa.string()))
        return join_strings(parts, n)

    def _unit_day_ids(self, day: date, units: np.ndarray) -> np.ndarray:
        return unit_day_ids(day, units)
