"""PostgreSQL bulk paths over psycopg 3: ``COPY`` in and out as Arrow-formatted CSV.

:class:`~retail_datagen.db.sql_engine.SqlTarget` uses these when the dialect is PostgreSQL and
the driver psycopg: appends stream CSV into ``COPY … FROM STDIN``, large upserts copy into a
temporary table first, and reads without parameters come back through ``COPY (…) TO STDOUT``
and Arrow's CSV reader. Every function works on the connection's open transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection

from retail_datagen.db import schema

#: Rows formatted as CSV per write into a ``COPY`` stream; bounds the memory of one append.
COPY_BATCH_ROWS = 65_536

# Quote every string so that an empty string ("") and NULL (nothing) stay apart in COPY CSV.
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed")

# Result columns that are not contract columns (expressions) are typed from the PostgreSQL
# type OID; numeric uses the precision/scale psycopg reports.
_PG_OID_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 25: pa.string(),
    700: pa.float32(), 701: pa.float64(), 1042: pa.string(), 1043: pa.string(),
    1082: pa.date32(), 1114: pa.timestamp("us"),
}
_PG_NUMERIC_OID = 1700
# Temporary-table names stay unique when several upserts share one connection.
_TEMP_IDS = itertools.count(1)


def copy_out(conn: Connection, sql: str, contract: dict[str, pa.DataType]) -> pa.Table | None:
    """Read a query through ``COPY (…) TO STDOUT (FORMAT csv)`` into Arrow.

    Returns ``None`` (the caller fetches rows instead) when a result column has no known
    Arrow type, e.g. a ``numeric`` expression without precision.
    """
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) AS q LIMIT 0")
        names = [c.name for c in cursor.description]
        types = [contract.get(c.name) or arrow_type_of(c) for c in cursor.description]
        if any(t is None for t in types) or len(set(names)) != len(names):
            return None
        # ISO dates and shortest exact floats whatever the session's settings; LOCAL settings
        # end with the transaction.
        cursor.execute("SET LOCAL DateStyle = 'ISO'")
        cursor.execute("SET LOCAL extra_float_digits = 3")
        sink = pa.BufferOutputStream()
        with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                sink.write(chunk)
    data = sink.getvalue()
    target = pa.schema([pa.field(n, t) for n, t in zip(names, types, strict=True)])
    if data.size == 0:
        return target.empty_table()
    return pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        # PostgreSQL writes NULL as nothing and an empty string as "".
        convert_options=pacsv.ConvertOptions(
            column_types=target, null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"]),
    )


def arrow_type_of(column: Any) -> pa.DataType | None:
    """The Arrow type of a psycopg result column, from its type OID; ``None`` if unknown."""
    oid = getattr(column, "type_code", None)
    if oid == _PG_NUMERIC_OID:
        precision, scale = getattr(column, "precision", None), getattr(column, "scale", None)
        if precision:
            return pa.decimal128(precision, scale or 0)
        return None
    return _PG_OID_TYPES.get(oid)


def copy_in(conn: Connection, quoted_table: str, data: pa.Table) -> None:
    """Stream ``data`` into ``COPY … FROM STDIN (FORMAT csv)`` on the connection's transaction.

    Arrow writes the CSV (exact decimals, ISO timestamps with microseconds, ``true``/``false``,
    shortest round-trip floats, every string quoted so that NULL and ``""`` differ).
    """
    from psycopg.copy import QueuedLibpqWriter

    if data.num_rows == 0:
        return
    driver = conn.connection.driver_connection
    cols = ", ".join(schema.quote_ident(c) for c in data.column_names)
    sql = f"COPY {quoted_table} ({cols}) FROM STDIN (FORMAT csv)"
    with driver.cursor() as cursor:
        # With several batches, a writer thread sends one while the next is formatted; for a
        # single batch the thread would only add its start-up cost (most appends are small).
        writer = QueuedLibpqWriter(cursor) if data.num_rows > COPY_BATCH_ROWS else None
        with cursor.copy(sql, writer=writer) as copy:
            for batch in data.to_batches(max_chunksize=COPY_BATCH_ROWS):
                sink = pa.BufferOutputStream()
                pacsv.write_csv(batch, sink, _CSV_OPTIONS)
                copy.write(memoryview(sink.getvalue()))


def copy_upsert(conn: Connection, name: str, data: pa.Table, key: Sequence[str],
                updates: Sequence[str]) -> None:
    """``INSERT … SELECT … ON CONFLICT`` from a temporary table that ``data`` is copied into.

    Args:
        conn: A psycopg 3 connection in a transaction (the temporary table drops on commit).
        name: A ``gen_*`` state table.
        data: The rows; each key at most once.
        key: The table's primary-key columns.
        updates: The columns to overwrite on a conflict; empty means ``DO NOTHING``.
    """
    cols = data.column_names
    quoted = ", ".join(schema.quote_ident(c) for c in cols)
    action = ("DO UPDATE SET " + ", ".join(
        f"{schema.quote_ident(c)} = EXCLUDED.{schema.quote_ident(c)}" for c in updates)
        if updates else "DO NOTHING")
    target = schema.quote_ident(name)
    temp = schema.quote_ident(f"_retail_datagen_upsert_{next(_TEMP_IDS)}")
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {temp} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP")
    try:
        copy_in(conn, temp, data)
        conn.exec_driver_sql(
            f"INSERT INTO {target} ({quoted}) SELECT {quoted} FROM {temp} "
            f"ON CONFLICT ({', '.join(schema.quote_ident(k) for k in key)}) {action}")
    finally:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {temp}")


__all__ = ["COPY_BATCH_ROWS", "arrow_type_of", "copy_in", "copy_out", "copy_upsert"]
