"""SQLAlchemy write target: PostgreSQL through ``COPY``, any other dialect through executemany.

:class:`SqlTarget` implements :class:`~retail_datagen.db.target.Target` over a SQLAlchemy
``Engine`` (or a caller's ``Connection``), so the fact engine and the master generator write
PostgreSQL with the code that writes DuckDB (api.md §4.5). Tables come from
``metadata.create_all`` (keys, dimension FKs, outbox UNIQUE and index as declared). PostgreSQL
(psycopg 3) appends stream Arrow-formatted CSV into ``COPY … FROM STDIN`` and upserts use
``ON CONFLICT … DO UPDATE``; other dialects get ``insert(t)`` executemany in chunks of
:data:`SQL_CHUNK_ROWS` rows and delete-then-insert. Reads come back as Arrow with the contract
types of the table selected from. The engine's ``?`` placeholders become bound parameters. The
``COPY`` paths themselves are in :mod:`retail_datagen.db.pg_copy`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Double,
    Engine,
    Float,
    Numeric,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeEngine

from retail_datagen.db import pg_copy, schema
from retail_datagen.db.contract import (
    check_existing_tables,
    checked_columns,
    require_state_table,
)
from retail_datagen.db.pg_copy import COPY_BATCH_ROWS
from retail_datagen.errors import (
    DatabaseError,
    SchemaContractError,
)

#: Rows per ``execute(insert(t), rows)`` call on dialects without a bulk path.
SQL_CHUNK_ROWS = 10_000
#: Rows fetched per round trip when reading into Arrow.
FETCH_ROWS = 65_536
#: Upserts up to this size go through one multi-row ``INSERT … ON CONFLICT``; larger ones are
#: copied into a temporary table first, because COPY is far faster than bound parameters.
UPSERT_COPY_THRESHOLD = 2_000

# Strings to skip ('…', "…") and the placeholders to translate, in one left-to-right scan.
_PLACEHOLDER_SCAN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")
# What text() would take for a named parameter; escaped so that SQL such as 'store:1' is safe.
_TEXT_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")
_FROM_TABLE = re.compile(r"\bFROM\s+(\"?)(\w+)\1", re.IGNORECASE)


def contract_type_name(type_: TypeEngine) -> str:
    """The contract name (as in ``schema.duckdb_columns``) of a reflected column type.

    Args:
        type_: A type reflected by SQLAlchemy's inspector (any dialect).

    Returns:
        ``BIGINT``, ``DOUBLE``, ``DECIMAL(p,s)``, ``TIMESTAMP``, ``VARCHAR`` …; a type the
        contract does not use keeps its own upper-case name, so the diff shows it.
    """
    if isinstance(type_, DateTime) and getattr(type_, "timezone", False):
        return "TIMESTAMP WITH TIME ZONE"
    if isinstance(type_, Float) and not isinstance(type_, Double):
        # REAL and FLOAT(n ≤ 24) would otherwise read as a DECIMAL without precision.
        return "REAL" if (getattr(type_, "precision", None) or 0) <= 24 else "DOUBLE"
    try:
        return schema.duckdb_type(type_)
    except TypeError:
        return str(type_).upper()


def _bind_type(value: Any) -> TypeEngine | None:
    # datetime before date: a datetime is a date. Typed binds make SQLite store and compare
    # dates in the same text format that insert(t) uses.
    if isinstance(value, datetime):
        return DateTime()
    if isinstance(value, date):
        return Date()
    if isinstance(value, Decimal):
        return Numeric(38, 10)
    return None


def to_text(sql: str, params: Sequence[Any] = ()) -> TextClause:
    """Turn engine SQL with ``?`` placeholders into a ``text()`` clause with bound parameters.

    ``?`` inside quoted strings and identifiers is left alone, and colons that ``text()``
    would read as named parameters are escaped, so the SQL reaches the database unchanged.

    Args:
        sql: One SQL statement in the engine's dialect-neutral style.
        params: One value per ``?``, in order.

    Returns:
        The clause, with ``:p0, :p1, …`` bound to ``params``.

    Raises:
        ValueError: The number of placeholders differs from ``len(params)``.
    """
    pieces: list[str] = []
    count = 0
    last = 0
    for match in _PLACEHOLDER_SCAN.finditer(sql):
        pieces.append(_TEXT_BIND.sub(r"\\:\1", sql[last:match.start()]))
        token = match.group(0)
        if token == "?":
            pieces.append(f":p{count}")
            count += 1
        else:
            pieces.append(_TEXT_BIND.sub(r"\\:\1", token))
        last = match.end()
    pieces.append(_TEXT_BIND.sub(r"\\:\1", sql[last:]))
    if count != len(params):
        raise ValueError(f"SQL has {count} '?' placeholders but {len(params)} parameters")
    clause = text("".join(pieces))
    if params:
        clause = clause.bindparams(*(
            bindparam(f"p{i}", value, type_=_bind_type(value))
            for i, value in enumerate(params)
        ))
    return clause


def _from_table(sql: str) -> str | None:
    match = _FROM_TABLE.search(sql)
    if match and match.group(2) in schema.metadata.tables:
        return match.group(2)
    return None


def _in_range_order(data: pa.Table, column: str,
                    bounds: Sequence[tuple[object, object]]) -> pa.Table:
    """The rows of ``data`` range by range (``lo <= column < hi``), as one filter per range
    would give them, in a single vectorised pass; rows outside every range are dropped.

    The ranges must not overlap (each row belongs to at most one).
    """
    if not bounds:
        return data.slice(0, 0)
    unit = data.schema.field(column).type
    lo = pa.array([b[0] for b in bounds], unit).cast(pa.int64()).to_numpy()
    hi = pa.array([b[1] for b in bounds], unit).cast(pa.int64()).to_numpy()
    values = data.column(column).cast(pa.int64()).to_numpy()
    by_lo = np.argsort(lo, kind="stable")
    slot = np.searchsorted(lo[by_lo], values, side="right") - 1
    candidate = by_lo[np.clip(slot, 0, None)]
    inside = (slot >= 0) & (values < hi[candidate])
    rank = np.where(inside, candidate, len(bounds))
    if inside.all() and (rank[1:] >= rank[:-1]).all():
        return data  # already in range order: no copy
    order = np.argsort(rank, kind="stable")[: int(inside.sum())]
    return data.take(pa.array(order))


class SqlTarget:
    """A SQLAlchemy database as a write target (PostgreSQL with COPY, others generic).

    Outside :meth:`transaction`, every write commits on its own and every read uses a short
    connection. Inside it, every method uses the transaction's connection, so the statements
    of one generated day commit or roll back together.

    Args:
        bind: An ``Engine``, or a ``Connection`` that is used as given (never closed here).
        owned: Whether :meth:`close` disposes of the engine (it was created from a URL).

    Attributes:
        dialect: The SQLAlchemy dialect name (``"postgresql"``, ``"sqlite"`` …).
        raw: The ``Engine`` or ``Connection`` (what ``run_invariants`` and co. accept).
    """

    def __init__(self, bind: Engine | Connection, *, owned: bool = False) -> None:
        self.raw: Engine | Connection = bind
        self.dialect: str = bind.dialect.name
        self._owned = owned
        # The transaction belongs to the thread that opened it: the engine generates the next
        # day on another thread while one is written, and that thread must not join it.
        self._local = threading.local()
        # COPY needs psycopg 3's cursor.copy(); other PostgreSQL drivers use executemany.
        self._copy = self.dialect == "postgresql" and bind.dialect.driver == "psycopg"

    @classmethod
    def open(cls, session: str | Engine | Connection) -> SqlTarget:
        """Open a target for a SQLAlchemy URL, ``Engine`` or ``Connection``.

        A bare ``postgresql://`` URL selects the psycopg 3 driver, the one the ``[postgres]``
        extra installs.

        Args:
            session: A URL such as ``postgresql+psycopg://user@host/db`` or
                ``sqlite:///file.db``, or an ``Engine``/``Connection`` used as given.

        Returns:
            The target; it owns (and :meth:`close` disposes of) an engine made from a URL.

        Raises:
            DatabaseError: The URL is malformed or its driver is not installed.
        """
        if isinstance(session, Engine | Connection):
            return cls(session, owned=False)
        try:
            url = make_url(session)
            if url.drivername == "postgresql":
                url = url.set(drivername="postgresql+psycopg")
            engine = create_engine(url)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise DatabaseError(f"cannot open database URL {session!r}: {exc}") from exc
        if engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite":
            _transactional_sqlite(engine)
        return cls(engine, owned=True)

    # -- connections -----------------------------------------------------------------------
    @property
    def _tx(self) -> Connection | None:
        return getattr(self._local, "tx", None)

    @_tx.setter
    def _tx(self, conn: Connection | None) -> None:
        self._local.tx = conn

    @contextmanager
    def _connection(self, *, write: bool) -> Iterator[Connection]:
        if self._tx is not None:
            yield self._tx
            return
        if isinstance(self.raw, Engine):
            with self.raw.begin() if write else self.raw.connect() as conn:
                yield conn
            return
        conn = self.raw
        if conn.in_transaction():
            # The caller's transaction: it decides when to commit.
            yield conn
        elif write:
            with conn.begin():
                yield conn
        else:
            try:
                yield conn
            finally:
                # End the transaction the read began (autobegin), so that a later write
                # starts and commits its own instead of nesting in one nobody commits.
                if conn.in_transaction():
                    conn.rollback()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Run a block in one transaction: COMMIT on success, ROLLBACK on any exception.

        Cancellation (``BaseException``) rolls back too. A nested call joins the open
        transaction. On a caller's ``Connection`` that is already in a transaction, the block
        runs in a SAVEPOINT and the caller keeps control of the outer transaction.

        Yields:
            The connection every method uses until the block ends.
        """
        if self._tx is not None:
            yield self._tx
            return
        if isinstance(self.raw, Engine):
            with self.raw.begin() as conn:
                self._tx = conn
                try:
                    yield conn
                finally:
                    self._tx = None
            return
        conn = self.raw
        with conn.begin_nested() if conn.in_transaction() else conn.begin():
            self._tx = conn
            try:
                yield conn
            finally:
                self._tx = None

    # -- reading ---------------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        """Tell whether a contract or state table exists (in the search path on PostgreSQL).

        Raises:
            UnknownTableError: The name is not part of the schema.
        """
        db_name = schema.db_table_name(name)
        with self._connection(write=False) as conn:
            return bool(inspect(conn).has_table(db_name))

    def _typed(self, sql: str, params: Sequence[Any]) -> tuple[TextClause, str | None]:
        clause = to_text(sql, params)
        source = _from_table(sql)
        if source is None:
            return clause, None
        # Contract types make every dialect hand back date, datetime, Decimal and bool
        # objects (SQLite stores them as text and numbers).
        types = {c.name: c.type for c in schema.table(source).c}
        return clause.columns(**types), source

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a query and return its rows as tuples.

        Args:
            sql: A query with ``?`` placeholders.
            params: One value per placeholder.

        Returns:
            The rows; columns of the table in the ``FROM`` clause come back with their
            contract Python types.
        """
        clause, _ = self._typed(sql, params)
        with self._connection(write=False) as conn:
            return [tuple(row) for row in conn.execute(clause).fetchall()]

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a query and return the result as an Arrow table, converted column by column.

        Columns of the table named in the ``FROM`` clause get their contract Arrow type;
        other columns the type of their PostgreSQL OID, or what Arrow infers. On PostgreSQL
        (psycopg) a query without parameters is read through ``COPY (…) TO STDOUT`` and parsed
        by Arrow's CSV reader; otherwise rows are fetched in chunks and transposed.

        Args:
            sql: A query with ``?`` placeholders.
            params: One value per placeholder.

        Returns:
            The result, columns in query order.
        """
        clause, source = self._typed(sql, params)
        contract = {} if source is None else {f.name: f.type
                                              for f in schema.arrow_schema(source)}
        with self._connection(write=False) as conn:
            if self._copy and not params:
                copied = pg_copy.copy_out(conn, sql, contract)
                if copied is not None:
                    return copied
            return _fetch_arrow(conn, clause, contract, postgres=self.dialect == "postgresql")

    def check_schema(self) -> None:
        """Compare every existing contract table with its contract; raise on any difference.

        Reflected types are mapped to the contract names (``DOUBLE PRECISION`` → ``DOUBLE``,
        ``NUMERIC(18, 2)`` → ``DECIMAL(18,2)``, ``TIMESTAMP WITHOUT TIME ZONE`` →
        ``TIMESTAMP``, ``VARCHAR(n)``/``TEXT`` → ``VARCHAR``); names, order and types must
        match. Missing tables are skipped; nothing is changed.

        Raises:
            SchemaMismatchError: One or more tables differ; the message holds a per-table diff
                and the remedy.
        """
        with self._connection(write=False) as conn:
            inspector = inspect(conn)
            existing = set(inspector.get_table_names())
            found = [(name, [(c["name"], contract_type_name(c["type"]))
                             for c in inspector.get_columns(name)])
                     for name in schema.CONTRACT_TABLES if name in existing]
        check_existing_tables(found)

    # -- writing ---------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement (DDL or DML) with ``?`` placeholders.

        Outside a transaction it commits on its own.
        """
        clause = to_text(sql, params)
        with self._connection(write=True) as conn:
            conn.execute(clause)

    def create_tables(self, names: Iterable[str]) -> None:
        """Create the given tables with ``metadata.create_all`` if they do not exist yet.

        Primary keys, dimension FKs, the outbox ``UNIQUE(trace_id)`` and index are created as
        declared; existing tables are left untouched.

        Raises:
            UnknownTableError: A name is not part of the schema (nothing is created then).
        """
        tables = [schema.table(n) for n in names]
        with self._connection(write=True) as conn:
            schema.metadata.create_all(conn, tables=tables, checkfirst=True)

    def append(self, name: str, data: pa.Table,
               bounds: list[tuple[object, object]] | None = None) -> int:
        """Append an Arrow table: ``COPY`` on PostgreSQL, chunked executemany elsewhere.

        Columns are matched by name; omitted columns get their server default.

        Args:
            name: A logical or database table name; the table must exist.
            data: The rows, with contract column names and Arrow contract types.
            bounds: Disjoint ``(lo, hi)`` ranges of ``event_ts``; the rows are written range
                by range (rows outside every range are not written). ``None`` writes all.

        Returns:
            The number of rows in ``data``.

        Raises:
            UnknownTableError: The name is not part of the schema.
            SchemaContractError: The batch has a column the table does not have.
        """
        db_name = schema.db_table_name(name)
        checked_columns(db_name, data)
        if data.num_rows == 0:
            return 0
        # The ranges stream one after the other through a single COPY (or insert series):
        # the same rows in the same order as one statement per range, without the statements.
        rows = data if bounds is None else _in_range_order(data, "event_ts", bounds)
        with self._connection(write=True) as conn:
            if self._copy:
                pg_copy.copy_in(conn, schema.quote_ident(db_name), rows)
            else:
                _insert_chunks(conn, db_name, rows)
        return data.num_rows

    def upsert(self, name: str, data: pa.Table) -> int:
        """Insert or replace rows of a generator-state table by its primary key.

        PostgreSQL uses ``INSERT … ON CONFLICT (<pk>) DO UPDATE``; other dialects delete the
        keys of ``data`` and insert the rows, in the same transaction.

        Args:
            name: A ``gen_*`` table name; the table must exist.
            data: The rows; each key may appear at most once.

        Returns:
            The number of rows written.

        Raises:
            UnknownTableError: ``name`` is not a ``gen_*`` state table.
            SchemaContractError: The batch has a column the table does not have.
        """
        require_state_table(name, "upsert")
        checked_columns(name, data)
        if data.num_rows == 0:
            return 0
        with self._connection(write=True) as conn:
            if self.dialect == "postgresql":
                _pg_upsert(conn, name, data, use_copy=self._copy)
            else:
                _delete_keys(conn, name, data)
                _insert_chunks(conn, name, data)
        return data.num_rows

    def replace(self, name: str, data: pa.Table) -> int:
        """Replace every row of a ``gen_*`` table with ``data`` (``DELETE`` then append).

        Raises:
            UnknownTableError: ``name`` is not a ``gen_*`` state table.
        """
        require_state_table(name, "replace")
        self.execute(f"DELETE FROM {schema.quote_ident(name)}")
        return self.append(name, data)

    def retain(self, name: str, condition: str, params: Sequence[Any] = ()) -> None:
        """Keep only the rows of a ``gen_*`` table for which ``condition`` (never NULL) holds.

        Raises:
            UnknownTableError: ``name`` is not a ``gen_*`` state table.
        """
        require_state_table(name, "retain")
        self.execute(f"DELETE FROM {schema.quote_ident(name)} WHERE NOT ({condition})", params)

    def set_threads(self, threads: int) -> None:
        """Accept the engine's thread budget; the database server schedules its own work."""

    def close(self) -> None:
        """Dispose of the engine if this target created it; a given bind stays open."""
        if self._owned and isinstance(self.raw, Engine):
            self.raw.dispose()


def _transactional_sqlite(engine: Engine) -> None:
    """Make pysqlite run DDL inside the transaction too (SQLAlchemy's documented recipe).

    By default the driver only opens a transaction before DML, so a ``DROP``/``CREATE`` at
    the start of a block would commit on its own and survive a rollback.
    """

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def _fetch_arrow(conn: Connection, clause: TextClause, contract: dict[str, pa.DataType], *,
                 postgres: bool) -> pa.Table:
    """Fetch rows in chunks and build each chunk column by column."""
    result = conn.execution_options(stream_results=True).execute(clause)
    names = list(result.keys())
    types = [contract.get(n) for n in names]
    description = result.cursor.description if result.cursor is not None else None
    if postgres and description is not None:
        types = [t if t is not None else pg_copy.arrow_type_of(d)
                 for t, d in zip(types, description, strict=True)]
    chunks: list[pa.Table] = []
    while rows := result.fetchmany(FETCH_ROWS):
        columns = list(zip(*rows, strict=True))
        arrays = [pa.array(col, type=kind) for col, kind in zip(columns, types, strict=True)]
        # Later chunks keep the types the first one inferred.
        types = [a.type for a in arrays]
        chunks.append(pa.Table.from_arrays(arrays, names=names))
    if not chunks:
        return pa.schema([pa.field(n, t or pa.null())
                          for n, t in zip(names, types, strict=True)]).empty_table()
    return pa.concat_tables(chunks, promote_options="permissive")


def _column_lists(data: pa.Table) -> list[list[Any]]:
    return [column.to_pylist() for column in data.columns]


def _insert_chunks(conn: Connection, db_name: str, data: pa.Table) -> None:
    """``execute(insert(t), rows)`` in chunks of :data:`SQL_CHUNK_ROWS` rows."""
    statement = insert(schema.table(db_name))
    names = data.column_names
    for start in range(0, data.num_rows, SQL_CHUNK_ROWS):
        columns = _column_lists(data.slice(start, SQL_CHUNK_ROWS))
        conn.execute(statement, [dict(zip(names, row, strict=True))
                                 for row in zip(*columns, strict=True)])


def _delete_keys(conn: Connection, name: str, data: pa.Table) -> None:
    table = schema.table(name)
    key = schema.primary_key(name)
    if any(k not in data.column_names for k in key):
        raise SchemaContractError(f"upsert into {name} needs its key columns {list(key)}")
    statement = delete(table).where(and_(*(table.c[k] == bindparam(f"key_{k}") for k in key)))
    columns = _column_lists(data.select(list(key)))
    conn.execute(statement, [{f"key_{k}": v for k, v in zip(key, row, strict=True)}
                             for row in zip(*columns, strict=True)])


def _pg_upsert(conn: Connection, name: str, data: pa.Table, *, use_copy: bool) -> None:
    """``INSERT … ON CONFLICT (<pk>) DO UPDATE``; large batches go through a COPY'd temp table."""
    key = schema.primary_key(name)
    cols = data.column_names
    updates = [c for c in cols if c not in key]
    if use_copy and data.num_rows > UPSERT_COPY_THRESHOLD:
        pg_copy.copy_upsert(conn, name, data, key, updates)
        return
    statement = pg_insert(schema.table(name))
    statement = (statement.on_conflict_do_update(
        index_elements=list(key), set_={c: statement.excluded[c] for c in updates})
        if updates else statement.on_conflict_do_nothing(index_elements=list(key)))
    for start in range(0, data.num_rows, SQL_CHUNK_ROWS):
        columns = _column_lists(data.slice(start, SQL_CHUNK_ROWS))
        conn.execute(statement, [dict(zip(cols, row, strict=True))
                                 for row in zip(*columns, strict=True)])


__all__ = [
    "COPY_BATCH_ROWS",
    "SQL_CHUNK_ROWS",
    "SqlTarget",
    "contract_type_name",
    "to_text",
]
