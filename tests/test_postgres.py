"""The SQLAlchemy target: PostgreSQL holds the same rows as DuckDB; SQLite works too.

PostgreSQL tests need ``RETAIL_DATAGEN_TEST_PG_URL`` (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/retail_datagen_test``). Without it they are
skipped, unless ``CI`` is set, in which case they fail. Every scenario writes into its own
fresh PostgreSQL schema (selected through the connection's ``search_path``); all of them are dropped
when the module ends.

Tables are compared as Arrow tables in the contract schema, sorted by primary key in Arrow (so
no database collation is involved). The PostgreSQL side is read with plain driver rows, not
through the code under test.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import OperationalError

from conftest import TEST_WEEK, config_in
from pg_fixtures import PG_URL_ENV, schema_url, unavailable
from retail_datagen.config.settings import create_test_config
from retail_datagen.db import duckdb_engine, schema, sql_engine
from retail_datagen.db.sql_engine import SqlTarget, to_text
from retail_datagen.errors import (
    DateRangeError,
    RetailDatagenError,
    SchemaMismatchError,
    StateMismatchError,
    UnknownTableError,
)
from retail_datagen.generators.fact_generators import FactDataGenerator
from retail_datagen.generators.master_generator import MasterDataGenerator

FACT_DB_NAMES = tuple(schema.FACT_TABLE_DB_NAMES[t] for t in schema.FACT_TABLES)
ALL_TABLES = (*schema.DIM_TABLES, *FACT_DB_NAMES, schema.OUTBOX_TABLE, *schema.STATE_TABLES)
DAY1, DAY2 = TEST_WEEK[0], TEST_WEEK[0] + timedelta(days=1)


# --- servers and schemas ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[Callable[[str], str]]:
    """A factory of fresh schemas: ``pg_schema(label)`` returns a URL whose search_path is a
    new, empty schema. Every schema made is dropped when the module ends."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        unavailable(f"{PG_URL_ENV} is not set")
    admin = create_engine(schema_url(url, "public"))
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL at {PG_URL_ENV} is not reachable: {exc}")
    created: list[str] = []

    def make(label: str) -> str:
        name = f"rdg_test_{os.getpid()}_{len(created)}_{label}"
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        created.append(name)
        return schema_url(url, name)

    yield make
    with admin.begin() as conn:
        for name in created:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    admin.dispose()


# --- generation helpers -----------------------------------------------------------------------


def _master(config, session) -> dict[str, int]:
    with MasterDataGenerator(config, session) as gen:
        return gen.generate_all()


def _facts(config, session, start: date, end: date, **kwargs):
    gen = FactDataGenerator(config, session)
    try:
        kwargs.setdefault("validate", False)
        return asyncio.run(gen.generate_historical_data(start, end, **kwargs))
    finally:
        gen.close()


def _error_of(config, session, start: date, end: date) -> tuple[str, str] | None:
    try:
        summary = _facts(config, session, start, end)
    except RetailDatagenError as exc:
        return type(exc).__name__, str(exc)
    return None if summary.days_generated == 0 else ("generated", str(summary.days_generated))


# --- reading tables for comparison ------------------------------------------------------------


def _sorted(name: str, table: pa.Table) -> pa.Table:
    key = [(c, "ascending") for c in schema.primary_key(name)]
    return table.cast(schema.arrow_schema(name)).sort_by(key).combine_chunks()


def _duck_tables(path: Path, names=ALL_TABLES) -> dict[str, pa.Table]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {n: _sorted(n, duckdb_engine.read_table(con, n))
                for n in names if duckdb_engine.table_exists(con, n)}
    finally:
        con.close()


def _pg_tables(url: str, names=ALL_TABLES) -> dict[str, pa.Table]:
    """Plain driver rows turned into Arrow column by column (independent of SqlTarget)."""
    engine = create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            for name in names:
                if name not in present:
                    continue
                target = schema.arrow_schema(name)
                cols = ", ".join(schema.quote_ident(f.name) for f in target)
                rows = conn.exec_driver_sql(f"SELECT {cols} FROM {name}").fetchall()
                columns = list(zip(*rows, strict=True)) if rows else [[] for _ in target]
                arrays = [pa.array(list(c), f.type) for c, f in zip(columns, target, strict=True)]
                out[name] = _sorted(name, pa.Table.from_arrays(arrays, schema=target))
    finally:
        engine.dispose()
    return out


def _digest(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def _first_difference(a: pa.Table, b: pa.Table) -> str:
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} rows vs {b.num_rows} rows"
    for name in a.column_names:
        left, right = a.column(name), b.column(name)
        if not left.equals(right):
            equal = pc.fill_null(pc.equal(left, right), False)
            row = pc.index(equal, False).as_py()
            return f"column {name}, row {row}: {left[row]!r} vs {right[row]!r}"
    return "schemas differ"


def _assert_same(expected: dict[str, pa.Table], actual: dict[str, pa.Table]) -> None:
    assert sorted(actual) == sorted(expected)
    for name, table in expected.items():
        other = actual[name]
        assert other.equals(table), f"{name}: {_first_difference(table, other)}"
        assert _digest(other) == _digest(table), name


def _until(table: pa.Table, end: date) -> pa.Table:
    """The rows of a fact table whose event_ts is before ``end`` 00:00."""
    limit = pa.scalar(datetime.combine(end, datetime.min.time()), pa.timestamp("us"))
    return table.filter(pc.less(table.column("event_ts"), limit))


# --- the test week on PostgreSQL --------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_week(pg_schema, tmp_path_factory) -> tuple[str, object]:
    """Master data and the facts of the test week in a fresh schema: (URL, summary)."""
    url = pg_schema("week")
    config = config_in(tmp_path_factory.mktemp("pg_week"))
    _master(config, url)
    summary = _facts(config, url, *TEST_WEEK)
    return url, summary


@pytest.mark.postgres
def test_week_matches_duckdb(pg_week, generated_week):
    url, summary = pg_week
    assert summary.days_generated == 7 and summary.total_records > 0
    duck = _duck_tables(generated_week)
    pg = _pg_tables(url)
    for name in (*schema.DIM_TABLES, *FACT_DB_NAMES):
        assert duck[name].num_rows > 0, name
    _assert_same(duck, pg)


@pytest.mark.postgres
def test_invariants_pass_on_postgres(pg_week, generated_week):
    from retail_datagen.validation.invariants import run_invariants

    url, _ = pg_week
    engine = create_engine(url)
    try:
        report = run_invariants(engine, *TEST_WEEK)
    finally:
        engine.dispose()
    assert report.passed, report.errors
    duck = run_invariants(str(generated_week), *TEST_WEEK)
    assert [c.id for c in report.checks] == [c.id for c in duck.checks]
    assert report.failed_ids == duck.failed_ids


@pytest.mark.postgres
def test_model_tables_and_declared_keys(pg_week):
    url, _ = pg_week
    gen = FactDataGenerator(create_test_config(), url)
    try:
        assert gen._get_model_for_table("receipts") is schema.table("fact_receipts")
        assert gen._get_model_for_table("fact_receipts") is schema.metadata.tables["fact_receipts"]
    finally:
        gen.close()
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        for name in (*schema.DIM_TABLES, *FACT_DB_NAMES, schema.OUTBOX_TABLE,
                     *schema.STATE_TABLES):
            table = schema.table(name)
            pk = insp.get_pk_constraint(name)["constrained_columns"]
            assert sorted(pk) == sorted(schema.primary_key(name)), name
            declared = {(fk.parent.name, fk.column.table.name, fk.column.name)
                        for fk in table.foreign_keys}
            found = {(col, fk["referred_table"], ref)
                     for fk in insp.get_foreign_keys(name)
                     for col, ref in zip(fk["constrained_columns"], fk["referred_columns"],
                                         strict=True)}
            assert found == declared, name
            # Fact-to-fact references are never declared (fact-tables.md §0).
            assert all(t in schema.DIM_TABLES for _, t, _ in found), name
        receipt_fks = {fk["referred_table"] for fk in insp.get_foreign_keys("fact_receipts")}
        assert {"dim_stores", "dim_customers"} <= receipt_fks
        uniques = insp.get_unique_constraints(schema.OUTBOX_TABLE)
        assert [u["column_names"] for u in uniques] == [["trace_id"]]
        indexes = {i["name"]: i["column_names"] for i in insp.get_indexes(schema.OUTBOX_TABLE)}
        assert indexes["ix_streaming_outbox_status_event_ts"] == ["status", "event_ts"]
    finally:
        engine.dispose()


# --- resume and typed errors ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_two_calls(pg_schema, tmp_path_factory) -> str:
    """DAY1 and DAY2 generated by two calls (two generators) in a fresh schema, with hourly
    INSERT chunks (batch_hours 1) where the one-call reference uses the default 24."""
    url = pg_schema("two_calls")
    config = config_in(tmp_path_factory.mktemp("pg_two"), performance={"batch_hours": 1})
    _master(config, url)
    _facts(config, url, DAY1, DAY1)
    _facts(config, url, DAY2, DAY2)
    return url


@pytest.mark.postgres
def test_two_calls_equal_one_call(pg_schema, pg_two_calls, generated_week, tmp_path):
    split_url = pg_two_calls
    one_url = pg_schema("one_call")
    config = config_in(tmp_path)
    _master(config, one_url)
    summary = _facts(config, one_url, DAY1, DAY2)
    assert summary.days_generated == 2
    one, two = _pg_tables(one_url), _pg_tables(split_url)
    _assert_same(one, two)
    # The two PostgreSQL days are also the first two days of the DuckDB week.
    week = _duck_tables(generated_week, FACT_DB_NAMES)
    _assert_same({n: _until(t, DAY2 + timedelta(days=1)) for n, t in week.items()},
                 {n: one[n] for n in FACT_DB_NAMES})


@pytest.mark.postgres
def test_outbox_matches_duckdb(pg_schema, tmp_path):
    url = pg_schema("outbox")
    config = config_in(tmp_path)
    for session in (url, None):
        _master(config, session)
        summary = _facts(config, session, DAY1, DAY1, publish_to_outbox=True)
        assert summary.outbox_events == summary.total_records > 0
    names = (schema.OUTBOX_TABLE, *FACT_DB_NAMES)
    _assert_same(_duck_tables(Path(config.paths.duckdb), names), _pg_tables(url, names))


def _error_scenarios(config, session) -> list[tuple[str, str] | None]:
    other = config.model_copy(update={"seed": config.seed + 1})
    return [
        _error_of(config, session, DAY2, DAY1),  # end before start
        _error_of(config, session, DAY1 + timedelta(days=3), DAY1 + timedelta(days=4)),  # gap
        _error_of(config, session, DAY1 - timedelta(days=1), DAY2),  # before first_day
        _error_of(config, session, DAY1, DAY2),  # already generated: skipped, no error
        _error_of(other, session, DAY2 + timedelta(days=1), DAY2 + timedelta(days=1)),
    ]


def _tamper(execute: Callable[[str], object]) -> None:
    execute("UPDATE gen_metadata SET value = '0.9' WHERE key = 'schema_version'")


@pytest.mark.postgres
def test_typed_errors_match_duckdb(pg_schema, tmp_path):
    url = pg_schema("errors")
    config = config_in(tmp_path)
    _master(config, url)
    _facts(config, url, DAY1, DAY2)
    duck_path = Path(config.paths.duckdb)
    _master(config, None)
    _facts(config, None, DAY1, DAY2)

    pg_errors, duck_errors = _error_scenarios(config, url), _error_scenarios(config, None)
    assert pg_errors == duck_errors
    assert [e and e[0] for e in pg_errors] == [
        "DateRangeError", "DateRangeError", "DateRangeError", None, "StateMismatchError"]
    assert "next day is 2024-11-27" in pg_errors[1][1]

    engine = create_engine(url)
    with engine.begin() as conn:
        _tamper(conn.exec_driver_sql)
    engine.dispose()
    with duckdb.connect(str(duck_path)) as con:
        _tamper(con.execute)
    day3 = DAY2 + timedelta(days=1)
    pg_error, duck_error = _error_of(config, url, day3, day3), _error_of(config, None, day3, day3)
    assert pg_error == duck_error and pg_error[0] == "StateMismatchError"
    with pytest.raises(StateMismatchError):
        _facts(config, url, day3, day3)
    with pytest.raises(DateRangeError):
        _facts(config, url, DAY2, DAY1)

    # reset_facts is the remedy: it drops the facts (declared FKs and all) and keeps the dims.
    gen = FactDataGenerator(config, url)
    try:
        gen.reset_facts()
        assert not gen._target.table_exists("fact_receipts")
        assert gen._target.table_exists("dim_customers")
    finally:
        gen.close()
    # A version 1.0 database is refused even without facts: only master --force rewrites it.
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE gen_metadata SET value = '1.0' WHERE key = 'schema_version'")
    with pytest.raises(StateMismatchError, match="master --force"):
        _facts(config, url, day3, day3)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE gen_metadata SET value = '{schema.SCHEMA_VERSION}' "
                             "WHERE key = 'schema_version'")
    engine.dispose()
    assert _facts(config, url, day3, day3).days_generated == 1


@pytest.mark.postgres
def test_schema_mismatch_names_the_column(pg_schema, tmp_path):
    url = pg_schema("mismatch")
    config = config_in(tmp_path)
    _master(config, url)
    target = SqlTarget.open(url)
    try:
        target.check_schema()  # the dims as written match the contract
        target.create_tables(["fact_store_ops"])
        target.check_schema()
        target.execute('ALTER TABLE fact_store_ops ALTER COLUMN "store_id" TYPE INTEGER')
        target.execute("ALTER TABLE fact_store_ops ADD COLUMN extra TEXT")
    finally:
        target.close()
    with pytest.raises(SchemaMismatchError) as info:
        FactDataGenerator(config, url)
    message = str(info.value)
    assert "fact_store_ops" in message and "'store_id BIGINT', found 'store_id INTEGER'" in message
    assert "unexpected column 'extra'" in message and "reset_facts" in message


# --- the target itself ------------------------------------------------------------------------


def _state_rows(n: int) -> pa.Table:
    """gen_state_pending_returns rows with awkward strings, NULLs and big numbers."""
    promo = ["", None, 'a "quoted", comma', "line\nbreak", "\\N", "ünïcode"]
    return pa.table({
        "unit_id": pa.array([i % 3 for i in range(n)], pa.int16()),
        "return_date": pa.array([date(2024, 11, 25) + timedelta(days=i % 3) for i in range(n)],
                                pa.date32()),
        "receipt_id_ext": [f"RCP{i:012d}" for i in range(n)],
        "store_id": pa.array([i % 7 + 1 for i in range(n)], pa.int64()),
        "customer_id": pa.array([2**40 + i for i in range(n)], pa.int64()),
        "line_num": pa.array([1] * n, pa.int32()),
        "product_id": pa.array([i % 400 + 1 for i in range(n)], pa.int64()),
        "quantity": pa.array([-(i % 5) for i in range(n)], pa.int32()),
        "unit_cents": pa.array([i * 101 for i in range(n)], pa.int64()),
        "discount_cents": pa.array([0] * n, pa.int64()),
        "ext_cents": pa.array([-(2**62) + i for i in range(n)], pa.int64()),
        "tax_cents": pa.array([i for i in range(n)], pa.int64()),
        "promo_code": pa.array([promo[i % len(promo)] for i in range(n)], pa.string()),
        "payment_method": ["CARD"] * n,
    }, schema=schema.arrow_schema("gen_state_pending_returns"))


@pytest.mark.postgres
@pytest.mark.parametrize("rows", [5, sql_engine.UPSERT_COPY_THRESHOLD + 7])
def test_copy_and_upsert_round_trip(pg_schema, rows):
    url = pg_schema(f"roundtrip_{rows}")
    target = SqlTarget.open(url)
    name = "gen_state_pending_returns"
    try:
        assert target.dialect == "postgresql"
        target.create_tables([name, "gen_state_shipments"])
        data = _state_rows(rows)
        with target.transaction():
            assert target.append(name, data) == rows
        query = f"SELECT * FROM {name} ORDER BY receipt_id_ext"
        assert target.query_arrow(query).cast(data.schema).equals(data)
        # With parameters the rows are fetched instead of copied out; same result.
        fetched = target.query_arrow(f"SELECT * FROM {name} WHERE line_num = ? "
                                     "ORDER BY receipt_id_ext", [1])
        assert fetched.cast(data.schema).equals(data)
        changed = data.set_column(12, "promo_code", pa.array(["X"] * rows, pa.string()))
        assert target.upsert(name, changed) == rows
        assert target.query_arrow(query).cast(data.schema).equals(changed)
        target.retain(name, "return_date > ?", [date(2024, 11, 25)])
        remaining = target.fetchall(f"SELECT count(*), min(return_date) FROM {name}")
        assert remaining[0][0] == sum(1 for i in range(rows) if i % 3) and (
            remaining[0][1] in (None, date(2024, 11, 26)))
        with pytest.raises(RuntimeError), target.transaction():
            target.append(name, data.slice(0, 1))
            raise RuntimeError("roll back")
        assert target.fetchall(f"SELECT count(*) FROM {name} WHERE quantity = 0")[0][0] == sum(
            1 for i in range(rows) if i % 3 and i % 5 == 0)
        times = pa.table({
            "unit_id": pa.array([1, 1], pa.int16()), "shipment_id": ["SHP1", "SHP2"], "truck_id": pa.array([1, 2], pa.int64()),
            "dc_id": pa.array([1, 1], pa.int64()), "store_id": pa.array([3, 4], pa.int64()),
            "refrigerated": [True, False], "unit_count": pa.array([10, 0], pa.int32()),
            **{c: pa.array([datetime(2024, 11, 25, 23, 59, 59, 999999),
                            datetime(1999, 12, 31)], pa.timestamp("us"))
               for c in ("scheduled_ts", "loading_ts", "departure_time", "eta", "unloading_ts",
                         "etd")},
        }, schema=schema.arrow_schema("gen_state_shipments"))
        target.append("gen_state_shipments", times)
        back = target.query_arrow("SELECT * FROM gen_state_shipments ORDER BY shipment_id")
        assert back.cast(times.schema).equals(times)
        with pytest.raises(UnknownTableError):
            target.upsert("fact_receipts", data)
        assert target.replace("gen_state_shipments", times.slice(1)) == 1
        assert target.fetchall("SELECT shipment_id FROM gen_state_shipments") == [("SHP2",)]
        with pytest.raises(UnknownTableError):
            target.replace("fact_receipts", data)
    finally:
        target.close()


def test_placeholders_become_bound_parameters():
    clause = to_text("SELECT 'a?b:c', x::text FROM t WHERE d <= ? AND s = 'store:1' AND e = ?",
                     [date(2024, 1, 2), Decimal("1.50")])
    assert set(clause.compile().params) == {"p0", "p1"}
    from sqlalchemy.dialects import postgresql

    rendered = str(clause.compile(dialect=postgresql.dialect()))
    assert "'a?b:c'" in rendered and "x::text" in rendered and "'store:1'" in rendered
    with pytest.raises(ValueError, match="placeholders"):
        to_text("SELECT ?", [])


# --- SQLite: master data and one day of facts with chunked inserts ----------------------------


def test_sqlite_master_and_one_day(generated_week, tmp_path, monkeypatch):
    monkeypatch.setattr(sql_engine, "SQL_CHUNK_ROWS", 1_000)
    url = f"sqlite:///{tmp_path / 'retail.sqlite'}"
    config = config_in(tmp_path)
    batches: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if executemany and statement.lstrip().upper().startswith("INSERT"):
            batches.append(len(parameters))

    event.listen(Engine, "before_cursor_execute", count)
    try:
        with warnings.catch_warnings():
            # SQLite keeps DECIMAL as REAL; SQLAlchemy warns about that on every Decimal.
            warnings.simplefilter("ignore")
            counts = _master(config, url)
            summary = _facts(config, url, DAY1, DAY1)
            target = SqlTarget.open(url)
            try:
                assert target.dialect == "sqlite"
                target.check_schema()
                sqlite = {n: _sorted(n, target.query_arrow(f"SELECT * FROM {n}"))
                          for n in (*schema.DIM_TABLES, *FACT_DB_NAMES)}
            finally:
                target.close()
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert counts["dim_customers"] == config.volume.total_customers
    assert summary.days_generated == 1
    assert batches and max(batches) == 1_000 and sum(batches) > 3 * 1_000
    week = _duck_tables(generated_week, (*schema.DIM_TABLES, *FACT_DB_NAMES))
    expected = {n: (_until(t, DAY2) if n in FACT_DB_NAMES else t) for n, t in week.items()}
    _assert_same(expected, sqlite)



def test_ranges_stream_in_range_order():
    import numpy as np

    rng = np.random.default_rng(7)
    base = datetime(2024, 11, 25)
    ts = pa.array([base + timedelta(minutes=int(m)) for m in rng.integers(-90, 26 * 60, 2_000)],
                  pa.timestamp("us"))
    data = pa.table({"event_ts": ts, "n": pa.array(np.arange(2_000))})
    hours = [(base + timedelta(hours=h), base + timedelta(hours=h + 1)) for h in range(24)]
    for bounds in (hours, hours[::-1], hours[5:9], [hours[3], hours[0]], []):
        expected = pa.concat_tables(
            [data.filter(pc.and_(pc.greater_equal(data["event_ts"], pa.scalar(lo, ts.type)),
                                 pc.less(data["event_ts"], pa.scalar(hi, ts.type))))
             for lo, hi in bounds] or [data.slice(0, 0)])
        assert sql_engine._in_range_order(data, "event_ts", bounds).equals(expected)
    # Rows already in range order are written as they are, without a copy.
    in_order = sql_engine._in_range_order(data.sort_by("event_ts"), "event_ts", hours)
    assert sql_engine._in_range_order(in_order, "event_ts", hours) is in_order


def test_sqlite_transaction_rolls_back_ddl_too(tmp_path):
    target = SqlTarget.open(f"sqlite:///{tmp_path / 'rollback.sqlite'}")
    try:
        with pytest.raises(RuntimeError), target.transaction():
            target.create_tables(["gen_day_log"])
            target.execute("INSERT INTO gen_day_log VALUES (?, 'receipts', ?, 1)",
                           [date(2024, 11, 25), False])
            raise RuntimeError("roll back")
        assert not target.table_exists("gen_day_log")
    finally:
        target.close()
