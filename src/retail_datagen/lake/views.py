"""A lake read back as a database: DuckDB views over its Parquet files (sharding.md §5).

:func:`open_lake` returns an in-memory DuckDB connection in which every contract table of a
database target exists under its own name: the dimensions, the fact tables and the outbox
(Hive-partitioned files, the ``date`` column left out, days up to the lake's watermark only),
and the ``gen_*`` tables the invariant catalogue reads (the units' state after the watermark
day, the initial inventory, the metadata, the watermark and a day log). So
``run_invariants``, the reports and the hash tests read a lake exactly as they read a database.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from retail_datagen.db import schema
from retail_datagen.errors import DatabaseError, DateRangeError
from retail_datagen.lake.layout import (
    INITIAL_INVENTORY,
    STATE_TABLES,
    dim_file,
    initial_inventory_file,
    lake_units,
    state_file,
)
from retail_datagen.lake.metadata import first_day_of, read_metadata
from retail_datagen.lake.runner import lake_watermark


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _files_literal(paths: list[Path]) -> str:
    return "[" + ", ".join(_literal(str(p)) for p in paths) + "]"


def _table_view(con: duckdb.DuckDBPyConnection, out: Path, name: str,
                through: date | None) -> None:
    quoted = schema.quote_ident(name)
    folder = out / name
    has_files = through is not None and any(folder.glob("date=*/*.parquet"))
    if not has_files:
        con.execute(schema.duckdb_ddl(name))
        return
    columns = ", ".join(schema.quote_ident(c) for c in schema.arrow_schema(name).names)
    pattern = _literal(str(folder / "date=*" / "*.parquet"))
    con.execute(
        f"CREATE VIEW {quoted} AS SELECT {columns} FROM read_parquet({pattern}, "
        f"hive_partitioning = true) WHERE date <= DATE '{through.isoformat()}'")


def open_lake(out: str | Path, through: date | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the lake's tables as views (module docstring).

    Args:
        out: the lake folder.
        through: the last day to show; default and at most the lake's watermark.

    Raises:
        DatabaseError: ``out`` is not a lake (no ``_metadata.json``).
    """
    out = Path(out)
    meta = read_metadata(out)
    if meta is None:
        raise DatabaseError(f"{out} is not a lake: it holds no _metadata.json")
    first_day = first_day_of(meta)
    watermark = lake_watermark(out)
    if watermark is not None and through is not None:
        watermark = min(watermark, through)
    if watermark is not None and watermark < first_day:
        watermark = None
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # stdout may carry a report (--json)
    for name in schema.DIM_TABLES:
        con.execute(f"CREATE VIEW {schema.quote_ident(name)} AS SELECT * FROM "
                    f"read_parquet({_literal(str(dim_file(out, name)))})")
    for name in (*schema.FACT_TABLE_DB_NAMES.values(), schema.OUTBOX_TABLE):
        _table_view(con, out, name, watermark)
    units = lake_units(out)
    for name in (INITIAL_INVENTORY, *STATE_TABLES):
        if watermark is None:
            con.execute(schema.duckdb_ddl(name))
            continue
        files = _files_literal([initial_inventory_file(out, unit) if name == INITIAL_INVENTORY
                                else state_file(out, unit, watermark, name) for unit in units])
        con.execute(f"CREATE VIEW {schema.quote_ident(name)} AS SELECT * FROM "
                    f"read_parquet({files})")
    con.execute(schema.duckdb_ddl("gen_metadata"))
    con.executemany("INSERT INTO gen_metadata VALUES (?, ?)", [
        [key, str(meta.get(key))] for key in
        ("schema_version", "master_generated_for", "config_fingerprint", "config_data")])
    con.execute(schema.duckdb_ddl("gen_watermark"))
    con.execute("CREATE TABLE gen_day_log (day DATE, included_tables VARCHAR, outbox BOOLEAN)")
    if watermark is not None:
        con.execute("INSERT INTO gen_watermark VALUES (1, ?, ?)", [first_day, watermark])
        included = ",".join(meta.get("included_tables") or [])
        days = [first_day + timedelta(days=i) for i in range((watermark - first_day).days + 1)]
        con.executemany("INSERT INTO gen_day_log VALUES (?, ?, ?)",
                        [[day, included, bool(meta.get("outbox"))] for day in days])
    return con


def validate_lake(out: str | Path, start: date | None = None, end: date | None = None, *,
                  only=None):
    """Run the invariant catalogue over the lake's days up to its watermark.

    Returns:
        The ``InvariantReport`` (``report.has_fact_rows`` is False before any complete day).

    Raises:
        DateRangeError: ``end`` is before ``start``.
        DatabaseError: ``out`` is not a lake.
    """
    from retail_datagen.validation.invariants import run_invariants

    if start is not None and end is not None and end < start:
        raise DateRangeError(f"end {end} is before start {start}")
    watermark = lake_watermark(out)
    if end is not None and watermark is not None:
        end = min(end, watermark)
    con = open_lake(out)
    try:
        return run_invariants(con, start, end, only=only)
    finally:
        con.close()


__all__ = ["open_lake", "validate_lake"]
