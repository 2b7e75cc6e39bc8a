"""Content hashes of every table of a DuckDB file or a lake, for determinism tests."""

from __future__ import annotations

from pathlib import Path

import duckdb

from retail_datagen.db import schema

ALL_TABLES: tuple[str, ...] = (*schema.DIM_TABLES, *schema.FACT_TABLE_DB_NAMES.values())


def connection_hashes(con: duckdb.DuckDBPyConnection,
                      tables: tuple[str, ...] | None = None) -> dict[str, str]:
    """md5 of each table's rows in a total order (every column), for dims and facts."""
    out = {}
    for name in tables or ALL_TABLES:
        row = con.execute(
            f'SELECT count(*), md5(coalesce(string_agg(CAST(t AS VARCHAR), chr(10) '
            f'ORDER BY CAST(t AS VARCHAR)), \'\')) FROM "{name}" t').fetchone()
        out[name] = f"{row[0]}:{row[1]}"
    return out


def table_hashes(path: Path, tables: tuple[str, ...] | None = None) -> dict[str, str]:
    """:func:`connection_hashes` of a DuckDB file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return connection_hashes(con, tables)
    finally:
        con.close()


def lake_hashes(out: Path, tables: tuple[str, ...] | None = None) -> dict[str, str]:
    """:func:`connection_hashes` of a lake read through its DuckDB views (``date`` left out)."""
    from retail_datagen.lake import open_lake

    con = open_lake(out)
    try:
        return connection_hashes(con, tables)
    finally:
        con.close()
