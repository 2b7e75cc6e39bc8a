"""Tests of the monthly Parquet export (export/parquet.py)."""

from __future__ import annotations

import os
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from retail_datagen.db import duckdb_engine, schema
from retail_datagen.errors import DatabaseError, UnknownTableError
from retail_datagen.export import parquet as export_mod
from retail_datagen.export.parquet import export_monthly_parquet

TABLE = "fact_receipt_lines"


def receipt_lines(days: list[date], lines_per_receipt: int = 11, prefix: str = "RCP"
                  ) -> pa.Table:
    """Receipt lines on ``days``, in a scrambled order (line 10 sorts after line 9)."""
    rows = []
    for day in days:
        for store in (12, 3):
            rid = f"{prefix}{day:%Y%m%d}{store:05d}000001"
            for line in range(lines_per_receipt, 0, -1):
                cents = 100 * line + store
                rows.append({
                    "receipt_id_ext": rid, "line_num": line,
                    "event_ts": datetime.combine(day, datetime.min.time())
                    + timedelta(hours=10, microseconds=line),
                    "product_id": line, "quantity": 1,
                    "unit_price": D(cents) / 100, "unit_cents": cents,
                    "discount_amount": D("0.00"), "discount_cents": 0,
                    "ext_price": D(cents) / 100, "ext_cents": cents,
                    "tax_amount": D("-0.07"), "tax_cents": -7,
                    "promo_code": None if line % 2 else "SAVE10",
                })
    return pa.Table.from_pylist(rows, schema=schema.arrow_schema(TABLE))


NOV_DEC = [date(2024, 11, 29), date(2024, 11, 30), date(2024, 12, 1), date(2024, 12, 31)]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "facts.duckdb"
    con = duckdb_engine.open_duckdb(path)
    duckdb_engine.create_tables(con, [TABLE, "fact_store_ops"])
    duckdb_engine.append_arrow(con, TABLE, receipt_lines(NOV_DEC))
    con.close()
    return path


def _month_rows(path: Path, lo: str, hi: str) -> pa.Table:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            f"SELECT * FROM {TABLE} WHERE event_ts >= '{lo}' AND event_ts < '{hi}' "
            "ORDER BY receipt_id_ext, line_num").to_arrow_table()
    finally:
        con.close()


def test_one_file_per_month_sorted_with_contract_types(db, tmp_path):
    out = tmp_path / "export"
    files = export_monthly_parquet(db, out)
    assert files == [out / TABLE / f"{TABLE}_2024-11.parquet",
                     out / TABLE / f"{TABLE}_2024-12.parquet"]
    assert sorted(p.name for p in (out / TABLE).iterdir()) == [p.name for p in files]
    expected_schema = schema.arrow_schema(TABLE)
    for path, (lo, hi) in zip(files, [("2024-11-01", "2024-12-01"),
                                      ("2024-12-01", "2025-01-01")], strict=True):
        table = pq.read_table(path)
        assert table.schema.equals(expected_schema)
        assert table.schema.field("unit_price").type == pa.decimal128(18, 2)
        assert table.schema.field("event_ts").type == pa.timestamp("us")
        assert table.equals(_month_rows(db, lo, hi).cast(expected_schema))
        keys = list(zip(table.column("receipt_id_ext").to_pylist(),
                        table.column("line_num").to_pylist(), strict=True))
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        assert keys[9][1] == 10  # numeric, not text, order of line_num
    nov = pq.read_table(files[0])
    assert nov.num_rows == 2 * 2 * 11
    assert {d.date() for d in nov.column("event_ts").to_pylist()} == set(NOV_DEC[:2])


def test_duckdb_reads_the_files_back(db, tmp_path):
    files = export_monthly_parquet(db, tmp_path / "export")
    con = duckdb.connect()
    for path in files:
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
        types = {row[0]: row[1] for row in described}
        assert types["unit_price"] == "DECIMAL(18,2)"
        assert types["event_ts"] == "TIMESTAMP"
        assert types["line_num"] == "INTEGER"
        assert types["unit_cents"] == "BIGINT"
        month = path.stem.rsplit("_", 1)[1]
        lo = f"{month}-01"
        hi = "2024-12-01" if month == "2024-11" else "2025-01-01"
        con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
        diff = con.execute(
            f"SELECT count(*) FROM ((SELECT * FROM read_parquet('{path}')) EXCEPT ALL "
            f"(SELECT * FROM src.{TABLE} WHERE event_ts >= '{lo}' AND event_ts < '{hi}'))"
        ).fetchone()[0]
        total = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
        assert diff == 0 and total == pq.read_metadata(path).num_rows
        con.execute("DETACH src")


def test_reexport_replaces_files_atomically(db, tmp_path, monkeypatch):
    out = tmp_path / "export"
    first = export_monthly_parquet(db, out)
    con = duckdb.connect(str(db))
    duckdb_engine.append_arrow(con, TABLE, receipt_lines([date(2024, 12, 15)], 2))
    con.close()
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((os.fspath(src), os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(export_mod.os, "replace", spy)
    second = export_monthly_parquet(db, out)
    assert second == first
    assert [Path(dst) for _, dst in replaced] == first
    assert all(Path(src).parent == Path(dst).parent and src != dst for src, dst in replaced)
    assert pq.read_table(first[1]).num_rows == 2 * 2 * 11 + 2 * 2
    assert sorted(p.name for p in (out / TABLE).iterdir()) == [p.name for p in first]


def test_failed_export_keeps_the_old_file(db, tmp_path, monkeypatch):
    out = tmp_path / "export"
    files = export_monthly_parquet(db, out)
    before = files[0].read_bytes()

    def boom(self, table, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        export_monthly_parquet(db, out)
    assert files[0].read_bytes() == before
    assert sorted(p.name for p in (out / TABLE).iterdir()) == [p.name for p in files]


def test_table_filter_and_month_range(db, tmp_path):
    out = tmp_path / "export"
    assert export_monthly_parquet(db, out, tables=["receipt_lines"],
                                  start=date(2024, 12, 5)) == [
        out / TABLE / f"{TABLE}_2024-12.parquet"]
    # A month file always holds its whole month, even when start cuts into it.
    assert pq.read_table(out / TABLE / f"{TABLE}_2024-12.parquet").num_rows == 2 * 2 * 11
    assert export_monthly_parquet(db, out, tables=[TABLE], end=date(2024, 11, 1)) == [
        out / TABLE / f"{TABLE}_2024-11.parquet"]
    assert export_monthly_parquet(db, out, start=date(2025, 1, 1)) == []
    # Tables that exist but are empty, or do not exist, produce no file.
    assert export_monthly_parquet(db, out, tables=["store_ops", "fact_receipts"]) == []


def test_unknown_table_writes_nothing(db, tmp_path):
    out = tmp_path / "export"
    with pytest.raises(UnknownTableError, match="no_such_table"):
        export_monthly_parquet(db, out, tables=["receipt_lines", "no_such_table"])
    assert not out.exists()
    with pytest.raises(DatabaseError):
        export_monthly_parquet(tmp_path / "missing.duckdb", out)


def test_connection_target(db, tmp_path):
    con = duckdb.connect(str(db), read_only=True)
    try:
        files = export_monthly_parquet(con, tmp_path / "export", tables=[TABLE])
    finally:
        con.close()
    assert len(files) == 2


@pytest.fixture
def pg_url():
    url = os.environ.get("RETAIL_DATAGEN_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("RETAIL_DATAGEN_TEST_PG_URL is not set but CI is")
        pytest.skip("RETAIL_DATAGEN_TEST_PG_URL is not set")
    name = f"rdg_export_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        yield url, name
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_export_equals_duckdb_export(db, tmp_path, pg_url):
    url, name = pg_url
    # Upper- and lower-case ids sort differently under a linguistic collation than in
    # DuckDB's byte order; the export must follow byte order on every backend.
    rows = pa.concat_tables([receipt_lines(NOV_DEC), receipt_lines(NOV_DEC[:1], 2, "RCPa"),
                             receipt_lines(NOV_DEC[:1], 2, "RCPB")])
    con = duckdb.connect(str(db))
    duckdb_engine.append_arrow(con, TABLE, rows.slice(receipt_lines(NOV_DEC).num_rows))
    con.close()
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={name}"})
    try:
        fact = schema.table(TABLE)
        # The fact table only: its dimension FKs are not needed for an export.
        columns = [sa.Column(c.name, c.type, nullable=c.nullable) for c in fact.c]
        standalone = sa.Table(TABLE, sa.MetaData(), *columns,
                              sa.PrimaryKeyConstraint(*schema.primary_key(TABLE)))
        standalone.create(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(standalone), rows.to_pylist())
        from_pg = export_monthly_parquet(engine, tmp_path / "pg", tables=[TABLE])
        from_duck = export_monthly_parquet(db, tmp_path / "duck", tables=[TABLE])
    finally:
        engine.dispose()
    assert [p.name for p in from_pg] == [p.name for p in from_duck]
    for a, b in zip(from_pg, from_duck, strict=True):
        assert pq.read_table(a).equals(pq.read_table(b))


def test_small_batches_keep_order(db, tmp_path, monkeypatch):
    whole = export_monthly_parquet(db, tmp_path / "whole")
    monkeypatch.setattr(export_mod, "_BATCH_ROWS", 7)
    chunked = export_monthly_parquet(db, tmp_path / "chunked")
    for a, b in zip(whole, chunked, strict=True):
        assert pq.read_metadata(b).num_row_groups > 1
        assert pq.read_table(a).equals(pq.read_table(b))
