"""PostgreSQL pieces shared by the fault and outbox-load tests: the server (a failure, not a skip,
when ``CI`` is set), fresh schemas, schema snapshots and content hashes comparable with DuckDB.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from fault_fixtures import Hashes, row_hashes
from retail_datagen.db.sql_engine import SqlTarget

PG_URL_ENV = "RETAIL_DATAGEN_TEST_PG_URL"


def unavailable(reason: str) -> None:
    """Skip a PostgreSQL test, or fail it when ``CI`` is set (CI must run every test)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the PostgreSQL tests must run")
    pytest.skip(reason)


def schema_url(url: str, name: str) -> str:
    """``url`` with ``search_path`` set to the schema ``name`` (psycopg 3 driver)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    parsed = parsed.update_query_dict({"options": f"-csearch_path={name}"})
    return parsed.render_as_string(hide_password=False)


class Schemas:
    """Fresh schemas on the test server; every one made is dropped by :meth:`drop_all`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = sa.create_engine(schema_url(url, "public"))
        self.made: list[str] = []

    def new(self, label: str) -> tuple[str, str]:
        """A new empty schema: its name and a URL that writes into it."""
        name = f"rdg_fault_{uuid.uuid4().hex[:10]}_{label}"
        with self.admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        self.made.append(name)
        return name, schema_url(self.url, name)

    def clone(self, source: str, label: str) -> tuple[str, str]:
        """A new schema holding a copy of every table of ``source`` (keys included)."""
        name, url = self.new(label)
        with self.admin.begin() as conn:
            tables = list(conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": source}).scalars())
            for table in tables:
                conn.exec_driver_sql(f'CREATE TABLE "{name}"."{table}" '
                                     f'(LIKE "{source}"."{table}" INCLUDING ALL)')
                conn.exec_driver_sql(f'INSERT INTO "{name}"."{table}" '
                                     f'SELECT * FROM "{source}"."{table}"')
        return name, url

    def drop_all(self) -> None:
        with self.admin.begin() as conn:
            for name in self.made:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        self.admin.dispose()


@pytest.fixture(scope="module")
def pg_schemas() -> Iterator[Schemas]:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        unavailable(f"{PG_URL_ENV} is not set")
    schemas = Schemas(url)
    try:
        with schemas.admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        schemas.admin.dispose()
        unavailable(f"PostgreSQL at {PG_URL_ENV} is not reachable: {exc}")
    yield schemas
    schemas.drop_all()


def pg_hashes(url: str, tables: tuple[str, ...]) -> Hashes:
    """The :func:`~fault_fixtures.row_hashes` of PostgreSQL tables, comparable with a file's.

    Each table is read in its contract Arrow types and loaded into an in-memory DuckDB.
    """
    target = SqlTarget.open(url)
    con = duckdb.connect()
    try:
        for name in tables:
            if target.table_exists(name):
                con.register("pg_rows", target.query_arrow(f'SELECT * FROM "{name}"'))
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM pg_rows')
                con.unregister("pg_rows")
        return row_hashes(con, tuple(n for n in tables if target.table_exists(n)))
    finally:
        con.close()
        target.close()


def backend_killer(admin: sa.Engine) -> Callable[[int], None]:
    """``kill(pid)``: end a server backend with ``pg_terminate_backend`` and wait until gone."""
    def kill(pid: int) -> None:
        with admin.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:p, 10000)"),
                                {"p": pid}).scalar()
    return kill
