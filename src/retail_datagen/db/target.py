"""Write targets: one small interface over DuckDB and SQLAlchemy databases.

The fact engine and the master generator speak only to a target, so the same code writes a
DuckDB file or a PostgreSQL database. ``open_target`` applies the API's rule: a DuckDB
connection, an ``Engine`` or a ``Connection`` is used as given; a ``str`` containing ``://`` is a
SQLAlchemy URL; any other ``str`` or ``os.PathLike`` is a DuckDB file path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from retail_datagen.db import duckdb_engine, schema


class Target(Protocol):
    """What the engine needs from a database."""

    dialect: str
    raw: Any  # the DuckDB connection or the SQLAlchemy Engine (for run_invariants & co.)

    def table_exists(self, name: str) -> bool: ...
    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...
    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]: ...
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def create_tables(self, names: Iterable[str]) -> None: ...
    def check_schema(self) -> None: ...
    def transaction(self) -> Any: ...
    def append(self, name: str, data: pa.Table,
               bounds: list[tuple[object, object]] | None = None) -> int: ...
    def upsert(self, name: str, data: pa.Table) -> int: ...
    def set_threads(self, threads: int) -> None: ...
    def close(self) -> None: ...


class DuckDBTarget:
    """A DuckDB database file (or connection); bulk appends from Arrow."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, *, owned: bool) -> None:
        self.raw = con
        self._owned = owned

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> DuckDBTarget:
        return cls(duckdb_engine.open_duckdb(path), owned=True)

    def table_exists(self, name: str) -> bool:
        return duckdb_engine.table_exists(self.raw, name)

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return duckdb_engine._to_arrow_table(self.raw.execute(sql, list(params)))

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.raw.execute(sql, list(params)).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.raw.execute(sql, list(params))

    def create_tables(self, names: Iterable[str]) -> None:
        duckdb_engine.create_tables(self.raw, names)

    def check_schema(self) -> None:
        duckdb_engine.check_schema(self.raw)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with duckdb_engine.transaction(self.raw):
            yield

    def append(self, name: str, data: pa.Table,
               bounds: list[tuple[object, object]] | None = None) -> int:
        if bounds is None:
            return duckdb_engine.append_arrow(self.raw, name, data)
        return duckdb_engine.append_arrow_chunked(self.raw, name, data, "event_ts", bounds)

    def upsert(self, name: str, data: pa.Table) -> int:
        return duckdb_engine.upsert_arrow(self.raw, name, data)

    def set_threads(self, threads: int) -> None:
        self.raw.execute(f"SET threads = {max(1, int(threads))}")

    def close(self) -> None:
        if self._owned:
            self.raw.close()


def is_sqlalchemy(session: Any) -> bool:
    """Whether ``session`` names a SQLAlchemy database rather than DuckDB."""
    if isinstance(session, str):
        return "://" in session
    try:
        from sqlalchemy.engine import Connection, Engine
    except ImportError:  # pragma: no cover - sqlalchemy is a core dependency
        return False
    return isinstance(session, Engine | Connection)


def open_target(session: Any, default_path: str | os.PathLike[str]) -> Target:
    """The target for a ``session`` argument (None means the DuckDB file ``default_path``)."""
    if isinstance(session, duckdb.DuckDBPyConnection):
        return DuckDBTarget(session, owned=False)
    if session is not None and is_sqlalchemy(session):
        from retail_datagen.db.sql_engine import SqlTarget

        return SqlTarget.open(session)
    return DuckDBTarget.open(default_path if session is None else session)


def quote(name: str) -> str:
    return schema.quote_ident(name)
