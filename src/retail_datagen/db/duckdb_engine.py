"""DuckDB access: opening files with lock handling, DDL, schema checks and Arrow bulk I/O.

Everything here works on whole Arrow tables. Rows are appended by registering the Arrow table
as a temporary view and running one ``INSERT … SELECT``, which DuckDB executes as a vectorised
bulk load; nothing is ever inserted row by row.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
import pyarrow as pa

from retail_datagen.db.contract import (
    check_existing_tables,
    checked_columns,
    require_state_table,
)
from retail_datagen.db.schema import (
    CONTRACT_TABLES,
    UNINDEXED_STATE_TABLES,
    db_table_name,
    duckdb_ddl,
    primary_key,
    quote_ident,
)
from retail_datagen.errors import (
    DatabaseError,
    DatabaseLockedError,
)

MEMORY = ":memory:"

# A process-wide counter keeps temporary view names unique across threads sharing a connection.
_VIEW_IDS = itertools.count(1)
# information_schema rows of the connection's current database and schema only.
_IN_CURRENT_SCHEMA = "table_catalog = current_database() AND table_schema = current_schema()"


def _is_lock_error(exc: BaseException) -> bool:
    message = str(exc).lower()
    return "lock" in message


def open_duckdb(
    path: str | os.PathLike[str], *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open (and, unless read-only, create) a DuckDB database file.

    A relative path is resolved against the current working directory and the parent folder is
    created. ``":memory:"`` opens a private in-memory database.

    Args:
        path: The database file.
        read_only: Open without write access. A missing file is then an error rather than being
            created, so that read-only commands (``status``, ``validate``, ``export``) never leave
            an empty database behind.

    Returns:
        An open connection.

    Raises:
        DatabaseLockedError: Another process holds the file; the message names the path.
        DatabaseError: ``read_only`` and the file does not exist, or DuckDB cannot open it.
    """
    if os.fspath(path) == MEMORY:
        return duckdb.connect(MEMORY, read_only=False)
    resolved = Path(os.fspath(path)).expanduser().absolute()
    if read_only:
        if not resolved.exists():
            raise DatabaseError(f"DuckDB file {resolved} does not exist (opened read-only)")
    else:
        resolved.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(resolved), read_only=read_only)
    except duckdb.Error as exc:
        if _is_lock_error(exc):
            raise DatabaseLockedError(
                f"DuckDB file {resolved} is locked by another process. Close the other process "
                f"(or its connection) that has the file open and try again. ({exc})"
            ) from exc
        raise DatabaseError(f"cannot open DuckDB file {resolved}: {exc}") from exc


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Tell whether a table exists in the connection's current database and schema.

    Args:
        con: An open connection.
        name: A logical or database table name of the contract.

    Returns:
        ``True`` if the table (or a view of that name) exists.

    Raises:
        UnknownTableError: The name is not part of the schema.
    """
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        f"WHERE {_IN_CURRENT_SCHEMA} AND table_name = ?",
        [db_table_name(name)],
    ).fetchone()
    return bool(row and row[0])


def existing_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str]]:
    """Return the ``(column name, DuckDB type)`` pairs of an existing table, in column order.

    Args:
        con: An open connection.
        name: A logical or database table name of the contract.

    Returns:
        The pairs with upper-case type names as DuckDB reports them (e.g. ``DECIMAL(18,2)``);
        an empty list if the table does not exist.

    Raises:
        UnknownTableError: The name is not part of the schema.
    """
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE {_IN_CURRENT_SCHEMA} AND table_name = ? ORDER BY ordinal_position",
        [db_table_name(name)],
    ).fetchall()
    return [(str(col), str(type_).upper()) for col, type_ in rows]


def create_tables(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> None:
    """Create the given tables from the contract DDL if they do not exist yet.

    Existing tables are left untouched; call :func:`check_schema` to verify them.

    Args:
        con: An open, writable connection.
        names: Logical or database table names.

    Raises:
        UnknownTableError: A name is not part of the schema (nothing is created then).
    """
    statements = [duckdb_ddl(name) for name in names]
    for statement in statements:
        con.execute(statement)


def check_schema(con: duckdb.DuckDBPyConnection, names: Iterable[str] | None = None) -> None:
    """Compare every existing contract table with its contract; raise on any difference.

    Column names, their order and their DuckDB types must match exactly. Tables that do not
    exist are skipped (they are created on the first write). Nothing is ever changed or dropped.

    Args:
        con: An open connection.
        names: Tables to check (logical or database names); ``None`` checks the dimension
            tables, the 18 fact tables and ``streaming_outbox``.

    Raises:
        SchemaMismatchError: One or more tables differ; the message holds a per-table diff and
            the remedy.
        UnknownTableError: A name is not part of the schema.
    """
    db_names = CONTRACT_TABLES if names is None else tuple(db_table_name(n) for n in names)
    found = ((name, existing_columns(con, name)) for name in db_names)
    check_existing_tables((name, columns) for name, columns in found if columns)


def _insert_from_arrow(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table, verb: str,
                       column: str | None = None,
                       bounds: list[tuple[object, object]] | None = None) -> int:
    """``{verb} INTO name … SELECT`` from ``data`` registered as a view, once or per range.

    Without ``bounds`` one statement takes every row; with them, one statement per
    ``(lo, hi)`` selects the rows with ``lo <= column < hi``.
    """
    db_name = db_table_name(name)
    columns = checked_columns(db_name, data)
    if data.num_rows == 0:
        return 0
    cols = ", ".join(quote_ident(c) for c in columns)
    with _arrow_view(con, data) as view:
        sql = f"{verb} INTO {quote_ident(db_name)} ({cols}) SELECT {cols} FROM {view}"
        if bounds is None:
            con.execute(sql)
        else:
            ranged = f"{sql} WHERE {quote_ident(column)} >= ? AND {quote_ident(column)} < ?"
            for lo, hi in bounds:
                con.execute(ranged, [lo, hi])
    return data.num_rows


@contextmanager
def _arrow_view(con: duckdb.DuckDBPyConnection, data: pa.Table) -> Iterator[str]:
    """``data`` registered as a view for the block; yields its quoted name."""
    name = f"_retail_datagen_arrow_{os.getpid()}_{next(_VIEW_IDS)}"
    con.register(name, data)
    try:
        yield quote_ident(name)
    finally:
        con.unregister(name)


def append_arrow(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> int:
    """Append an Arrow table to a table in one bulk ``INSERT … SELECT``.

    Columns are matched by name, so the batch may list them in any order; columns it omits get
    their default (NULL or the server default).

    Args:
        con: An open, writable connection.
        name: A logical or database table name; the table must exist.
        data: The rows, with contract column names (snake_case).

    Returns:
        The number of rows appended.

    Raises:
        UnknownTableError: The name is not part of the schema.
        SchemaContractError: The batch has a column the table does not have.
    """
    return _insert_from_arrow(con, name, data, "INSERT")


def append_arrow_chunked(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table,
                         column: str, bounds: list[tuple[object, object]]) -> int:
    """Append an Arrow table in several ``INSERT … SELECT`` statements, one per range.

    The table is registered once and each statement selects the rows with
    ``lo <= column < hi``, so chunking costs no copies of the data.

    Args:
        con: An open, writable connection.
        name: A logical or database table name; the table must exist.
        data: The rows, with contract column names (snake_case).
        column: The column the ranges apply to (e.g. ``event_ts``).
        bounds: ``(lo, hi)`` pairs that together cover every row exactly once.

    Returns:
        The number of rows appended.
    """
    return _insert_from_arrow(con, name, data, "INSERT", column, bounds)


def upsert_arrow(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> int:
    """Insert or replace rows of a generator-state table by its primary key.

    Args:
        con: An open, writable connection.
        name: A ``gen_*`` table name; the table must exist. It declares its key in DuckDB,
            but for ``schema.UNINDEXED_STATE_TABLES``, whose rows are matched by a join.
        data: The rows; each key may appear at most once in the batch.

    Returns:
        The number of rows written.

    Raises:
        UnknownTableError: ``name`` is not a ``gen_*`` state table (only those carry a key).
        SchemaContractError: The batch has a column the table does not have.
    """
    require_state_table(name, "upsert")
    if db_table_name(name) in UNINDEXED_STATE_TABLES:
        return _update_by_key(con, name, data)
    return _insert_from_arrow(con, name, data, "INSERT OR REPLACE")


def _update_by_key(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> int:
    """The upsert of a table without an index: ``UPDATE … FROM`` the batch joined by key, then
    an insert of the batch's keys the table did not have (none when every row matched)."""
    db_name = db_table_name(name)
    columns = checked_columns(db_name, data)
    if data.num_rows == 0:
        return 0
    key = primary_key(db_name)
    target = quote_ident(db_name)
    matches = " AND ".join(f"t.{quote_ident(c)} = v.{quote_ident(c)}" for c in key)
    assignments = ", ".join(f"{quote_ident(c)} = v.{quote_ident(c)}"
                            for c in columns if c not in key)
    with _arrow_view(con, data) as view:
        (updated,) = con.execute(
            f"UPDATE {target} AS t SET {assignments} FROM {view} AS v WHERE {matches}").fetchone()
        if updated < data.num_rows:
            cols = ", ".join(quote_ident(c) for c in columns)
            con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {view} AS v "
                        f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {matches})")
    return data.num_rows


def replace_arrow(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> int:
    """Replace every row of a generator-state table with ``data``.

    The table is dropped and created again from the contract DDL rather than emptied with
    ``DELETE``: deleting every row of a keyed table costs DuckDB an index removal per key at
    COMMIT, and re-inserting the same keys in that transaction costs another lookup each. Inside
    a transaction the swap is atomic like the ``DELETE`` it replaces. (The key stays in the
    ``CREATE``: adding it afterwards with ``ALTER TABLE`` is faster for a million rows, but
    DuckDB 1.5 then fails to replay the WAL after a crash.)

    Args:
        con: An open, writable connection.
        name: A ``gen_*`` table name.
        data: The table's new rows.

    Returns:
        The number of rows written.

    Raises:
        UnknownTableError: ``name`` is not a ``gen_*`` state table.
        SchemaContractError: The batch has a column the table does not have.
    """
    require_state_table(name, "replace")
    checked_columns(db_table_name(name), data)
    con.execute(f"DROP TABLE IF EXISTS {quote_ident(db_table_name(name))}")
    con.execute(duckdb_ddl(name))
    return _insert_from_arrow(con, name, data, "INSERT")


def retain_rows(con: duckdb.DuckDBPyConnection, name: str, condition: str,
                params: Sequence[object] = ()) -> None:
    """Keep only the rows of a generator-state table for which ``condition`` holds.

    The kept rows are copied to a temporary table and the table is recreated from the contract
    DDL with them, instead of a ``DELETE`` of the others: a table such as
    ``gen_state_pending_returns`` loses a day of rows out of weeks of them every day, and
    DuckDB's per-key index removal at COMMIT costs about twice the copy. Atomic inside a
    transaction.

    Args:
        con: An open, writable connection.
        name: A ``gen_*`` table name.
        condition: A SQL predicate over the table's columns with ``?`` placeholders; it must
            not be NULL for any row.
        params: The placeholder values.

    Raises:
        UnknownTableError: ``name`` is not a ``gen_*`` state table.
    """
    require_state_table(name, "retain")
    db_name = quote_ident(db_table_name(name))
    kept = quote_ident(f"_retail_datagen_kept_{os.getpid()}_{next(_VIEW_IDS)}")
    con.execute(f"CREATE TEMPORARY TABLE {kept} AS SELECT * FROM {db_name} WHERE {condition}",
                list(params))
    con.execute(f"DROP TABLE {db_name}")
    con.execute(duckdb_ddl(name))
    con.execute(f"INSERT INTO {db_name} SELECT * FROM {kept}")
    # On failure the rollback removes the temporary table with everything else.
    con.execute(f"DROP TABLE {kept}")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run a block in one transaction: COMMIT on success, ROLLBACK on any exception.

    Cancellation and interrupts (``BaseException``) roll back too, so a cancelled day leaves
    nothing behind.

    Args:
        con: An open connection with no transaction in progress.

    Yields:
        The same connection.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        # A failed statement may already have aborted the transaction; the original error is
        # the one worth reporting.
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    try:
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def to_arrow_table(result: duckdb.DuckDBPyConnection) -> pa.Table:
    """The whole result of an executed statement as one Arrow table."""
    # DuckDB ≥ 1.4 returns a RecordBatchReader from .arrow() and deprecates
    # fetch_arrow_table(); older releases only have the latter.
    to_table = getattr(result, "to_arrow_table", None)
    if to_table is not None:
        return to_table()
    return result.fetch_arrow_table()


def read_table(
    con: duckdb.DuckDBPyConnection, name: str, columns: Iterable[str] | None = None
) -> pa.Table:
    """Read a whole table (or some of its columns) into an Arrow table.

    Args:
        con: An open connection.
        name: A logical or database table name.
        columns: Columns to read, in the order wanted; ``None`` reads all of them.

    Returns:
        The rows in storage order (no ORDER BY).

    Raises:
        UnknownTableError: The name is not part of the schema.
        ValueError: ``columns`` is empty.
    """
    db_name = db_table_name(name)
    wanted = None if columns is None else list(columns)
    if wanted is not None and not wanted:
        raise ValueError("columns must name at least one column (or be None for all)")
    select = "*" if wanted is None else ", ".join(quote_ident(c) for c in wanted)
    return to_arrow_table(con.execute(f"SELECT {select} FROM {quote_ident(db_name)}"))


__all__ = [
    "MEMORY",
    "append_arrow",
    "check_schema",
    "create_tables",
    "existing_columns",
    "open_duckdb",
    "read_table",
    "replace_arrow",
    "retain_rows",
    "table_exists",
    "to_arrow_table",
    "transaction",
    "upsert_arrow",
]
