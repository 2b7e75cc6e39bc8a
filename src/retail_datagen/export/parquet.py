"""Monthly Parquet export of the fact tables (api.md §8, CLI ``export``).

Each fact table is written as one file per calendar month of ``event_ts`` that has rows:
``<out_dir>/<db_table>/<db_table>_YYYY-MM.parquet``. A file always holds its whole month, even
when ``start``/``end`` cut into it, so a month file never silently loses rows; ``start`` and
``end`` only choose which months are written. Rows are sorted by primary key (byte order for
strings, as DuckDB sorts), and the columns keep their contract types: DECIMAL(18,2) stays
``decimal128(18, 2)``, TIMESTAMP is ``timestamp("us")`` and NOT NULL columns are required fields.

Files are streamed batch by batch into a temporary file in the target folder, which then
atomically replaces the month file, so readers see either the old or the new file, never a
partial one. The writer and its options are the lake's (:mod:`retail_datagen.lake.writer`).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from datetime import date, datetime

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from retail_datagen.db import duckdb_engine, schema
from retail_datagen.db.target import Session, open_bind
from retail_datagen.lake.writer import ParquetFile

DEFAULT_OUT_DIR = "data/export"
# Rows per Arrow batch read from the database and per Parquet row group write.
_BATCH_ROWS = 256_000


def _month_starts(first: datetime, last: datetime) -> list[date]:
    months = []
    month = date(first.year, first.month, 1)
    while month <= last.date():
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def _month_range(month: date) -> tuple[datetime, datetime]:
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return datetime.combine(month, datetime.min.time()), datetime.combine(
        following, datetime.min.time())


def _bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    # Whole months: from the first of start's month to the end of end's month.
    low = None if start is None else datetime(start.year, start.month, 1)
    high = None if end is None else _month_range(date(end.year, end.month, 1))[1]
    return low, high


def _logical_names(tables: Iterable[str] | None) -> list[str]:
    if tables is None:
        return list(schema.FACT_TABLES)
    if isinstance(tables, str):
        tables = [tables]
    # logical_fact_name raises UnknownTableError (listing the valid names) before any write.
    return list(dict.fromkeys(schema.logical_fact_name(name) for name in tables))


def _reader(result: duckdb.DuckDBPyConnection) -> pa.RecordBatchReader:
    # DuckDB ≥ 1.4 names it to_arrow_reader() and deprecates fetch_record_batch().
    to_reader = getattr(result, "to_arrow_reader", None)
    if to_reader is not None:
        return to_reader(_BATCH_ROWS)
    return result.fetch_record_batch(_BATCH_ROWS)


def _duckdb_months(con: duckdb.DuckDBPyConnection, logical: str,
                   low: datetime | None, high: datetime | None) -> Iterator[
                       tuple[date, Iterator[pa.RecordBatch]]]:
    if not duckdb_engine.table_exists(con, logical):
        return
    db_name = schema.quote_ident(schema.FACT_TABLE_DB_NAMES[logical])
    order = ", ".join(schema.quote_ident(c) for c in schema.primary_key(logical))
    # A private cursor leaves any result the caller holds on ``con`` untouched.
    cursor = con.cursor()
    try:
        span = cursor.execute(f"SELECT min(event_ts), max(event_ts) FROM {db_name}").fetchone()
        if span is None or span[0] is None:
            return
        for month in _month_starts(span[0], span[1]):
            lo, hi = _month_range(month)
            if (low is not None and hi <= low) or (high is not None and lo >= high):
                continue
            result = cursor.execute(
                f"SELECT * FROM {db_name} WHERE event_ts >= ? AND event_ts < ? "
                f"ORDER BY {order}", [lo, hi])
            yield month, iter(_reader(result))
    finally:
        cursor.close()


def _sql_months(bind: Engine | Connection, logical: str, low: datetime | None,
                high: datetime | None) -> Iterator[tuple[date, Iterator[pa.Table]]]:
    if not sa.inspect(bind).has_table(schema.FACT_TABLE_DB_NAMES[logical]):
        return
    table = schema.table(logical)
    arrow_schema = schema.arrow_schema(logical)
    with bind.connect() if isinstance(bind, Engine) else nullcontext(bind) as conn:
        span = conn.execute(sa.select(sa.func.min(table.c.event_ts),
                                      sa.func.max(table.c.event_ts))).one()
        if span[0] is None:
            return
        keys = [table.c[name] for name in schema.primary_key(logical)]
        if conn.dialect.name == "postgresql":
            # Byte order for strings, as in DuckDB, whatever the database's collation.
            keys = [k.collate("C") if isinstance(k.type, sa.String) else k for k in keys]
        for month in _month_starts(span[0], span[1]):
            lo, hi = _month_range(month)
            if (low is not None and hi <= low) or (high is not None and lo >= high):
                continue
            query = sa.select(table).where(table.c.event_ts >= lo, table.c.event_ts < hi)
            result = conn.execution_options(yield_per=_BATCH_ROWS).execute(
                query.order_by(*keys))
            yield month, (_rows_to_arrow(part, arrow_schema) for part in result.partitions())


def _rows_to_arrow(rows: list[sa.Row], arrow_schema: pa.Schema) -> pa.Table:
    # SQLAlchemy hands rows over as tuples; transposing them once per chunk is the cheapest way
    # to Arrow columns. Decimals arrive as decimal.Decimal and convert exactly.
    columns = list(zip(*rows, strict=True))
    return pa.table([pa.array(col, f.type) for col, f in zip(columns, arrow_schema, strict=True)],
                    schema=arrow_schema)


def export_monthly_parquet(
    target: Session,
    out_dir: str | os.PathLike[str] = DEFAULT_OUT_DIR,
    tables: Iterable[str] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> list[pathlib.Path]:
    """Write each fact table as one Parquet file per month of ``event_ts``.

    Args:
        target: The database (api.md §4.2); a DuckDB file is opened read-only.
        out_dir: Root folder; files go to ``<out_dir>/<db_table>/<db_table>_YYYY-MM.parquet``.
        tables: Logical or database fact table names; ``None`` exports all 18. Tables that do
            not exist in the database, and months without rows, produce no file.
        start: First day of interest; every month from ``start``'s month on is exported.
        end: Last day of interest; every month up to ``end``'s month is exported.

    Returns:
        The files written, by table (``FACT_TABLES`` order or the order given), then month.

    Raises:
        UnknownTableError: A name in ``tables`` is not a fact table (nothing is written).
        DatabaseError: The DuckDB file does not exist or cannot be opened.
    """
    names = _logical_names(tables)
    low, high = _bounds(start, end)
    root = pathlib.Path(out_dir)
    written: list[pathlib.Path] = []
    with open_bind(target, read_only=True) as bind:
        for logical in names:
            db_name = schema.FACT_TABLE_DB_NAMES[logical]
            arrow_schema = schema.arrow_schema(logical)
            months = (_duckdb_months(bind, logical, low, high)
                      if isinstance(bind, duckdb.DuckDBPyConnection)
                      else _sql_months(bind, logical, low, high))
            for month, batches in months:
                path = root / db_name / f"{db_name}_{month:%Y-%m}.parquet"
                out = ParquetFile(path, arrow_schema)
                try:
                    for batch in batches:
                        out.write(batch)
                    if out.commit():
                        written.append(path)
                except BaseException:
                    out.discard()
                    raise
    return written


__all__ = ["DEFAULT_OUT_DIR", "export_monthly_parquet"]
