"""Write targets: one small interface over DuckDB and SQLAlchemy databases.

The fact engine and the master generator speak only to a target, so the same code writes a
DuckDB file or a PostgreSQL database. Every entry point resolves its database argument with one
rule (api.md §4.2), applied by :func:`target_kind`: a DuckDB connection, an ``Engine`` or a
``Connection`` is used as given; a ``str`` containing ``://`` is a SQLAlchemy URL; any other
``str`` or ``os.PathLike`` is a DuckDB file path. :func:`open_target` turns it into a
:class:`Target`; :func:`open_bind` into the raw connection or engine, for one block.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Protocol

import duckdb
import pyarrow as pa
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

from retail_datagen.db import duckdb_engine
from retail_datagen.errors import DatabaseError

#: A database as the public API accepts it (api.md §4.2).
Session = duckdb.DuckDBPyConnection | Engine | Connection | str | os.PathLike[str]
#: A database resolved for use: what :func:`open_bind` yields.
Bind = duckdb.DuckDBPyConnection | Engine | Connection
#: What a session argument is, by the rule of the module docstring.
TargetKind = Literal["duckdb", "sqlalchemy", "url", "path"]


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
    def replace(self, name: str, data: pa.Table) -> int: ...
    def retain(self, name: str, condition: str, params: Sequence[Any] = ()) -> None: ...
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
        return duckdb_engine.to_arrow_table(self.raw.execute(sql, list(params)))

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

    def replace(self, name: str, data: pa.Table) -> int:
        return duckdb_engine.replace_arrow(self.raw, name, data)

    def retain(self, name: str, condition: str, params: Sequence[Any] = ()) -> None:
        duckdb_engine.retain_rows(self.raw, name, condition, params)

    def set_threads(self, threads: int) -> None:
        self.raw.execute(f"SET threads = {max(1, int(threads))}")

    def close(self) -> None:
        if self._owned:
            self.raw.close()


def target_kind(session: Any) -> TargetKind | None:
    """Classify a session argument by the API's rule (see the module docstring).

    Returns:
        ``"duckdb"`` for a DuckDB connection, ``"sqlalchemy"`` for an ``Engine`` or
        ``Connection``, ``"url"`` for a ``str`` containing ``://``, ``"path"`` for any other
        ``str`` or ``os.PathLike``, and ``None`` for anything else.
    """
    if isinstance(session, duckdb.DuckDBPyConnection):
        return "duckdb"
    if isinstance(session, Engine | Connection):
        return "sqlalchemy"
    if isinstance(session, str) and "://" in session:
        return "url"
    if isinstance(session, str | os.PathLike):
        return "path"
    return None


def open_target(session: Any, default_path: str | os.PathLike[str]) -> Target:
    """The target for a ``session`` argument (None means the DuckDB file ``default_path``)."""
    kind = target_kind(session)
    if kind == "duckdb":
        return DuckDBTarget(session, owned=False)
    if kind in ("sqlalchemy", "url"):
        from retail_datagen.db.sql_engine import SqlTarget

        return SqlTarget.open(session)
    return DuckDBTarget.open(default_path if session is None else session)


@contextmanager
def open_bind(target: Session, *, read_only: bool = False) -> Iterator[Bind]:
    """Resolve a session argument for the duration of a block.

    Connections and engines are used as given and left open. A URL gets a private engine,
    disposed afterwards. A DuckDB path must exist; it is opened (read-only if asked) and closed
    afterwards.

    Args:
        target: A DuckDB connection, SQLAlchemy ``Engine``/``Connection``, URL or DuckDB path.
        read_only: Open a DuckDB file without write access.

    Yields:
        A DuckDB connection, an ``Engine`` or a ``Connection``.

    Raises:
        DatabaseError: The DuckDB file does not exist or cannot be opened.
        TypeError: The target is none of the above.
    """
    kind = target_kind(target)
    if kind in ("duckdb", "sqlalchemy"):
        yield target
        return
    if kind == "url":
        engine = create_engine(target)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    if kind is None:
        raise TypeError(f"unsupported target {target!r}")
    if not os.path.exists(os.fspath(target)):
        raise DatabaseError(f"DuckDB file {os.fspath(target)} does not exist")
    con = duckdb_engine.open_duckdb(target, read_only=read_only)
    try:
        yield con
    finally:
        con.close()
