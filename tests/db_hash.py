"""Content hashes of every table of a DuckDB file, for determinism tests."""

from __future__ import annotations

from pathlib import Path

import duckdb

from retail_datagen.db import schema


def table_hashes(path: Path, tables: tuple[str, ...] | None = None) -> dict[str, str]:
    """md5 of each table's rows in a total order (every column), for dims and facts."""
    names = tables or (*schema.DIM_TABLES, *schema.FACT_TABLE_DB_NAMES.values())
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for name in names:
            row = con.execute(
                f'SELECT count(*), md5(coalesce(string_agg(CAST(t AS VARCHAR), chr(10) '
                f'ORDER BY CAST(t AS VARCHAR)), \'\')) FROM "{name}" t').fetchone()
            out[name] = f"{row[0]}:{row[1]}"
        return out
    finally:
        con.close()
