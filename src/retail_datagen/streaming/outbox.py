"""The streaming outbox: building events from fact batches, and the consumer helpers.

**Building** (fact-tables.md §20). :func:`build_outbox_rows` takes a generator batch exactly as
the fact mixins return it, i.e. PascalCase columns **including** ``TraceId``, maps it to the
contract with :func:`~retail_datagen.generators.fact_generators.persistence_mixin.map_batch`
and renders every outbox column in one DuckDB ``SELECT`` over the Arrow data (payload JSON via
``to_json(struct_pack(...))``), so no Python code runs per row. :func:`assign_outbox_ids` then
merges the day's tables and numbers the events. :func:`validate_sample` is the write-time guard
that checks a sample against the pydantic models.

**Consuming** (api.md §8). :func:`lease`, :func:`ack`, :func:`nack`, :func:`counts`,
:func:`iter_events` and :func:`drain` accept any target of api.md §4.2: a DuckDB connection or
file path, or a SQLAlchemy ``Engine``, ``Connection`` or URL. Each operation is one
transaction. On PostgreSQL (and other dialects that support it) :func:`lease` selects with
``FOR UPDATE SKIP LOCKED``, so concurrent drainers never receive the same event. Consumer
timestamps (``last_attempt_ts``, ``sent_ts``) are the wall clock: outbox bookkeeping is
operational, never data.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from retail_datagen.db import duckdb_engine, schema
from retail_datagen.errors import DatabaseError, SchemaContractError
from retail_datagen.generators.fact_generators.persistence_mixin import TRACE_ID, map_batch
from retail_datagen.generators.fact_generators.utils_mixin import day_sequenced_ids
from retail_datagen.streaming.schemas import (
    PAYLOAD_TS_FORMAT,
    OutboxEvent,
    message_type_expression,
    payload_columns,
    validate_sample,
)

Target = duckdb.DuckDBPyConnection | Engine | Connection | str | os.PathLike[str]

#: The outbox statuses, in lifecycle order.
STATUSES: tuple[str, ...] = ("pending", "processing", "sent", "failed")
SOURCE = "retail-datagen"

_OUTBOX = schema.OUTBOX_TABLE
_OUTBOX_SCHEMA = schema.arrow_schema(_OUTBOX)
#: The columns :func:`build_outbox_rows` returns: the outbox contract without ``outbox_id``.
ROW_SCHEMA = pa.schema([f for f in _OUTBOX_SCHEMA if f.name != "outbox_id"])
_TABLE_RANK = pa.array(schema.FACT_TABLES, pa.string())
_SKIP_LOCKED_DIALECTS = frozenset({"postgresql", "mysql", "mariadb", "oracle"})
# Bound parameter lists stay well below every driver's limit (PostgreSQL allows 65,535).
_ID_CHUNK = 5_000
_FETCH_ROWS = 1_000

# --- building -----------------------------------------------------------------------------


def _q(ident: str) -> str:
    return schema.quote_ident(ident)


def _text(expr: str) -> str:
    return f"CAST({expr} AS VARCHAR)"


# The store id sits at characters 12–16 of RCP/RET receipt ids and the DC id at 12–15 of SHP
# (and SUP) shipment ids (fact-tables.md §0). TRY_CAST turns a malformed id into NULL, which
# the build then reports instead of failing deep inside DuckDB.
_STORE_OF_RECEIPT = _text("TRY_CAST(substr(receipt_id_ext, 12, 5) AS BIGINT)")
_DC_OF_SHIPMENT = _text("TRY_CAST(substr(shipment_id, 12, 4) AS BIGINT)")
_BY_STORE = "'store:' || " + _text("store_id")
_BY_DC = "'dc:' || " + _text("dc_id")
_BY_ORDER = "'order:' || order_id_ext"

# The rule tables of fact-tables.md §20, grouped as there.
_PARTITION_SQL: dict[str, str] = {
    **dict.fromkeys(("store_inventory_txn", "receipts", "foot_traffic", "ble_pings",
                     "customer_zone_changes", "store_ops", "promotions", "reorders"), _BY_STORE),
    **dict.fromkeys(("receipt_lines", "promo_lines"), "'store:' || " + _STORE_OF_RECEIPT),
    **dict.fromkeys(("dc_inventory_txn", "truck_moves"), _BY_DC),
    "truck_inventory": "'dc:' || " + _DC_OF_SHIPMENT,
    **dict.fromkeys(("online_orders", "online_order_lines"), _BY_ORDER),
    "fact_payments": f"CASE WHEN store_id IS NOT NULL THEN {_BY_STORE} ELSE {_BY_ORDER} END",
    "stockouts": f"CASE WHEN store_id IS NOT NULL THEN {_BY_STORE} ELSE {_BY_DC} END",
    "marketing": "'campaign:' || campaign_id",
}
_CORRELATION_SQL: dict[str, str] = {
    **dict.fromkeys(("receipt_lines", "promotions", "promo_lines"), "receipt_id_ext"),
    "receipts": "CASE WHEN receipt_type = 'RETURN' THEN return_for_receipt_id_ext END",
    **dict.fromkeys(("dc_inventory_txn", "store_inventory_txn"), "source"),
    "fact_payments": "coalesce(receipt_id_ext, order_id_ext)",
    "online_order_lines": "order_id_ext",
    **dict.fromkeys(("truck_moves", "truck_inventory"), "shipment_id"),
}
if set(_PARTITION_SQL) != set(schema.FACT_TABLES):  # import-time guard against a missed table
    raise RuntimeError("partition key rules do not cover exactly the fact tables")

_local = threading.local()


def _builder() -> duckdb.DuckDBPyConnection:
    # One private in-memory database per thread: DuckDB connections must not be shared by
    # threads, and the engine builds days on worker threads.
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(duckdb_engine.MEMORY)
    return con


def _to_arrow(result: duckdb.DuckDBPyConnection) -> pa.Table:
    to_table = getattr(result, "to_arrow_table", None)
    return to_table() if to_table is not None else result.fetch_arrow_table()


def _payload_sql(logical: str) -> str:
    types = {c.name: c.type for c in schema.table(logical).c}
    parts = []
    for column, key in payload_columns(logical):
        ref, type_ = _q(column), types[column]
        if isinstance(type_, sa.Numeric):
            # DECIMAL(18,2) → '12.34'; DuckDB always prints the declared scale.
            ref = _text(ref)
        elif isinstance(type_, sa.DateTime):
            ref = f"strftime({ref}, '{PAYLOAD_TS_FORMAT}')"
        elif isinstance(type_, sa.Date):
            ref = f"strftime({ref}, '%Y-%m-%d')"
        parts.append(f"{_q(key)} := {ref}")
    parts.append('"trace_id" := trace_id')
    return f"CAST(to_json(struct_pack({', '.join(parts)})) AS VARCHAR)"


def _build_sql(logical: str, view: str) -> str:
    # Fact columns named like outbox columns (status, source) are safe here: DuckDB resolves a
    # name to the input column before any SELECT-list alias.
    return (
        f"SELECT event_ts, {message_type_expression(logical)} AS message_type, "
        f"{_payload_sql(logical)} AS payload, 'pending' AS status, "
        "CAST(0 AS INTEGER) AS attempts, CAST(NULL AS TIMESTAMP) AS last_attempt_ts, "
        f"CAST(NULL AS TIMESTAMP) AS sent_ts, {_PARTITION_SQL[logical]} AS partition_key, "
        f"trace_id, CAST({_CORRELATION_SQL.get(logical, 'NULL')} AS VARCHAR) AS correlation_id, "
        f"'{schema.SCHEMA_VERSION}' AS schema_version, '{SOURCE}' AS source "
        f"FROM {_q(view)}"
    )


def _first_null(rows: pa.Table, column: str) -> str | None:
    mask = pc.is_null(rows.column(column))
    if not pc.any(mask).as_py():
        return None
    return str(rows.column("trace_id").filter(mask)[0])


def build_outbox_rows(name: str, batch: pa.Table, *, validate: bool = True) -> pa.Table:
    """Build one outbox event per fact row, in bulk (no Python code per row).

    Args:
        name: The logical or database fact table name.
        batch: The generator batch: PascalCase columns as the fact mixins return them,
            including the ``TraceId`` column (built when ``publish_to_outbox`` is on).
        validate: Run :func:`validate_sample` on the result (the write-time guard).

    Returns:
        The outbox rows in batch order with the columns of :data:`ROW_SCHEMA` (every outbox
        column except ``outbox_id``, which :func:`assign_outbox_ids` adds per day).

    Raises:
        UnknownTableError: ``name`` is not a fact table.
        SchemaContractError: The batch does not match its contract, lacks ``TraceId``, has a
            row with no message type or partition key, or a sampled payload fails its model.
    """
    logical = schema.logical_fact_name(name)
    if TRACE_ID not in batch.column_names:
        raise SchemaContractError(f"{logical}: the batch has no {TRACE_ID} column")
    if batch.num_rows == 0:
        return ROW_SCHEMA.empty_table()
    trace = batch.column(TRACE_ID).cast(pa.string())
    if trace.null_count:
        raise SchemaContractError(f"{logical}: {trace.null_count} rows have a NULL {TRACE_ID}")
    mapped = map_batch(logical, batch).append_column("trace_id", trace)
    con = _builder()
    view = "_outbox_source"
    con.register(view, mapped)
    try:
        rows = _to_arrow(con.execute(_build_sql(logical, view)))
    finally:
        con.unregister(view)
    for column in ("message_type", "partition_key"):
        bad = _first_null(rows, column)
        if bad is not None:
            what = column.replace("_", " ")
            raise SchemaContractError(f"{logical}: row {bad} has no {what} (fact-tables.md §20)")
    rows = rows.cast(ROW_SCHEMA)
    if validate:
        validate_sample(rows)
    return rows


def assign_outbox_ids(day: date, tables: Iterable[pa.Table]) -> pa.Table:
    """Merge a day's outbox rows and number them with a DSID (fact-tables.md §20).

    Events are ordered by (``event_ts``, logical table order of ``FACT_TABLES``, ``trace_id``);
    the table comes from the trace id's prefix. ``outbox_id`` = ``int(YYYYMMDD) × 10⁹ + n``.

    Args:
        day: The day every event belongs to.
        tables: Results of :func:`build_outbox_rows`, in any order.

    Returns:
        The rows in id order, with the full outbox contract schema.

    Raises:
        SchemaContractError: An event lies outside ``day`` or its trace id names no fact table.
        GenerationError: The day has 10⁹ events or more.
    """
    parts = [t.select(ROW_SCHEMA.names).cast(ROW_SCHEMA) for t in tables if t.num_rows]
    rows = pa.concat_tables(parts) if parts else ROW_SCHEMA.empty_table()
    if rows.num_rows == 0:
        return _OUTBOX_SCHEMA.empty_table()
    trace = rows.column("trace_id")
    rank = pc.index_in(pc.list_element(pc.split_pattern(trace, ":", max_splits=1), 0),
                       value_set=_TABLE_RANK)
    if rank.null_count:
        bad = trace.filter(pc.is_null(rank))[0]
        raise SchemaContractError(f"outbox event {bad} does not name a fact table")
    days = pc.cast(rows.column("event_ts"), pa.date32())
    if not pc.all(pc.equal(days, pa.scalar(day, pa.date32()))).as_py():
        raise SchemaContractError(f"outbox rows of {day} hold events of other days")
    keys = pa.table({"e": rows.column("event_ts"), "r": rank, "t": trace})
    order = pc.sort_indices(keys, sort_keys=[("e", "ascending"), ("r", "ascending"),
                                             ("t", "ascending")])
    rows = rows.take(order)
    ids = pa.array(day_sequenced_ids(day, rows.num_rows), pa.int64())
    return rows.add_column(0, _OUTBOX_SCHEMA.field("outbox_id"), ids).cast(_OUTBOX_SCHEMA)


# --- targets ------------------------------------------------------------------------------

Bind = duckdb.DuckDBPyConnection | Engine | Connection


@contextmanager
def open_bind(target: Target, *, read_only: bool = False) -> Iterator[Bind]:
    """Resolve a target (api.md §4.2) for the duration of a block.

    Connections and engines are used as given and left open. A URL (a ``str`` containing
    ``://``) gets a private engine, disposed afterwards. Any other ``str`` or path is a DuckDB
    file, which must exist; it is opened (read-only if asked) and closed afterwards.

    Args:
        target: A DuckDB connection, SQLAlchemy ``Engine``/``Connection``, URL or DuckDB path.
        read_only: Open a DuckDB file without write access.

    Yields:
        A DuckDB connection, an ``Engine`` or a ``Connection``.

    Raises:
        DatabaseError: The DuckDB file does not exist or cannot be opened.
        TypeError: The target is none of the above.
    """
    if isinstance(target, duckdb.DuckDBPyConnection | Engine | Connection):
        yield target
        return
    if isinstance(target, str) and "://" in target:
        engine = sa.create_engine(target)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    if not isinstance(target, str | os.PathLike):
        raise TypeError(f"unsupported target {target!r}")
    if not os.path.exists(os.fspath(target)):
        raise DatabaseError(f"DuckDB file {os.fspath(target)} does not exist")
    con = duckdb_engine.open_duckdb(target, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def _sql_transaction(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    elif bind.in_transaction():
        # The caller's transaction stays in charge; a savepoint keeps this operation atomic.
        with bind.begin_nested():
            yield bind
    else:
        with bind.begin():
            yield bind


@contextmanager
def _session(target: Target, *, read_only: bool = False
             ) -> Iterator[tuple[duckdb.DuckDBPyConnection | Connection, bool]]:
    # One operation = one transaction. Yields the connection and whether the outbox exists;
    # on SQLAlchemy the existence check runs inside the transaction, so a caller's connection
    # is never left with an implicitly begun transaction that would keep row locks open.
    with open_bind(target, read_only=read_only) as bind:
        if isinstance(bind, duckdb.DuckDBPyConnection):
            exists = duckdb_engine.table_exists(bind, _OUTBOX)
            if read_only or not exists:
                yield bind, exists
            else:
                with duckdb_engine.transaction(bind):
                    yield bind, True
        else:
            with _sql_transaction(bind) as conn:
                yield conn, sa.inspect(conn).has_table(_OUTBOX)


def _wall_clock(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if now.tzinfo is not None:
        return now.astimezone(UTC).replace(tzinfo=None)
    return now


def _id_list(outbox_ids: Iterable[int]) -> list[int]:
    return [int(i) for i in dict.fromkeys(outbox_ids)]


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _ID_CHUNK):
        yield ids[start:start + _ID_CHUNK]


_T = schema.table(_OUTBOX)
_DUE_SQL = ("(status = 'pending' OR (status = 'processing' AND last_attempt_ts < ?))")
_ORDER_SQL = "ORDER BY event_ts, outbox_id"
# A semi-join on the unnested list: DuckDB hashes it, where list_contains() would scan the
# list once per outbox row.
_IN_IDS_SQL = "outbox_id IN (SELECT unnest(?::BIGINT[]))"


def _duck_rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
               ) -> list[dict[str, Any]]:
    result = con.execute(sql, list(params))
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


# --- consumer helpers ---------------------------------------------------------------------


def lease(target: Target, limit: int = 256, *, lease_timeout_s: int = 300,
          now: datetime | None = None) -> list[OutboxEvent]:
    """Lease up to ``limit`` due events in one transaction.

    Due events are ``pending`` ones and ``processing`` ones whose ``last_attempt_ts`` is older
    than ``lease_timeout_s``, taken in ``(event_ts, outbox_id)`` order. They become
    ``processing``, their ``attempts`` grows by 1 and ``last_attempt_ts`` becomes ``now``.

    Args:
        target: The database (api.md §4.2).
        limit: Most events to lease.
        lease_timeout_s: Seconds after which a ``processing`` lease is taken over.
        now: Consumer wall clock (naive, or aware and converted to UTC); default: now, UTC.

    Returns:
        The leased events in ``(event_ts, outbox_id)`` order; empty if none is due or the
        outbox does not exist.

    Raises:
        SchemaContractError: A leased payload fails its model (the lease is rolled back).
        ValueError: ``limit`` or ``lease_timeout_s`` is negative.
    """
    if limit < 0 or lease_timeout_s < 0:
        raise ValueError("limit and lease_timeout_s must be >= 0")
    stamp = _wall_clock(now)
    cutoff = stamp - timedelta(seconds=lease_timeout_s)
    if limit == 0:
        return []
    with _session(target) as (conn, exists):
        if not exists:
            return []
        if isinstance(conn, duckdb.DuckDBPyConnection):
            ids = [r[0] for r in conn.execute(
                f"SELECT outbox_id FROM {_OUTBOX} WHERE {_DUE_SQL} {_ORDER_SQL} LIMIT ?",
                [cutoff, limit]).fetchall()]
            if not ids:
                return []
            conn.execute(
                f"UPDATE {_OUTBOX} SET status = 'processing', attempts = attempts + 1, "
                f"last_attempt_ts = ? WHERE {_IN_IDS_SQL}", [stamp, ids])
            rows = _duck_rows(conn, f"SELECT * FROM {_OUTBOX} WHERE {_IN_IDS_SQL} {_ORDER_SQL}",
                              [ids])
            return [OutboxEvent.from_row(r) for r in rows]
        due = sa.or_(_T.c.status == "pending", sa.and_(
            _T.c.status == "processing", _T.c.last_attempt_ts < cutoff))
        pick = sa.select(_T.c.outbox_id).where(due).order_by(
            _T.c.event_ts, _T.c.outbox_id).limit(limit)
        if conn.dialect.name in _SKIP_LOCKED_DIALECTS:
            # Rows locked by a concurrent lease are skipped, never waited for or shared.
            pick = pick.with_for_update(skip_locked=True)
        ids = list(conn.execute(pick).scalars())
        if not ids:
            return []
        conn.execute(sa.update(_T).where(_T.c.outbox_id.in_(ids)).values(
            status="processing", attempts=_T.c.attempts + 1, last_attempt_ts=stamp))
        rows = conn.execute(sa.select(_T).where(_T.c.outbox_id.in_(ids)).order_by(
            _T.c.event_ts, _T.c.outbox_id)).mappings()
        return [OutboxEvent.from_row(dict(r)) for r in rows]


def _update_processing(target: Target, ids: list[int], duck_set: str, duck_params: list[Any],
                       values: dict[str, Any]) -> int:
    # Shared by ack and nack: one UPDATE of the given ids that are still `processing`.
    changed = 0
    if not ids:
        return changed
    with _session(target) as (conn, exists):
        for chunk in _chunks(ids) if exists else ():
            if isinstance(conn, duckdb.DuckDBPyConnection):
                row = conn.execute(
                    f"UPDATE {_OUTBOX} SET {duck_set} WHERE status = 'processing' "
                    f"AND {_IN_IDS_SQL}", [*duck_params, chunk]).fetchone()
                changed += int(row[0]) if row else 0
            else:
                changed += conn.execute(sa.update(_T).where(
                    _T.c.status == "processing", _T.c.outbox_id.in_(chunk)).values(**values)
                ).rowcount
    return changed


def ack(target: Target, outbox_ids: Iterable[int], *, now: datetime | None = None) -> int:
    """Mark leased events as delivered: ``processing`` → ``sent``, with ``sent_ts = now``.

    Args:
        target: The database (api.md §4.2).
        outbox_ids: Events to acknowledge; ids not in ``processing`` are left alone.
        now: Consumer wall clock (default: now, UTC).

    Returns:
        The number of events changed.
    """
    stamp = _wall_clock(now)
    return _update_processing(target, _id_list(outbox_ids), "status = 'sent', sent_ts = ?",
                              [stamp], {"status": "sent", "sent_ts": stamp})


def nack(target: Target, outbox_ids: Iterable[int], *, max_attempts: int = 3,
         dead_letter: bool = True) -> int:
    """Return leased events after a failed delivery.

    A ``processing`` event goes back to ``pending``, or to ``failed`` (the dead letter) once
    ``attempts >= max_attempts`` and ``dead_letter`` is true.

    Args:
        target: The database (api.md §4.2).
        outbox_ids: Events to return; ids not in ``processing`` are left alone.
        max_attempts: Attempts after which an event is dead-lettered.
        dead_letter: When false, events always go back to ``pending``.

    Returns:
        The number of events changed.

    Raises:
        ValueError: ``max_attempts`` < 1.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    limit = max_attempts if dead_letter else None
    status = ("pending" if limit is None else
              sa.case((_T.c.attempts >= limit, "failed"), else_="pending"))
    duck_set = ("status = 'pending'" if limit is None else
                "status = CASE WHEN attempts >= ? THEN 'failed' ELSE 'pending' END")
    return _update_processing(target, _id_list(outbox_ids), duck_set,
                              [] if limit is None else [limit], {"status": status})


def counts(target: Target) -> dict[str, int]:
    """Count the events per status.

    Args:
        target: The database (api.md §4.2); a DuckDB file is opened read-only.

    Returns:
        ``{"pending", "processing", "sent", "failed", "total"}``; all 0 without an outbox.
    """
    out = dict.fromkeys(STATUSES, 0)
    with _session(target, read_only=True) as (conn, exists):
        pairs: list[Any] = []
        if exists and isinstance(conn, duckdb.DuckDBPyConnection):
            pairs = conn.execute(f"SELECT status, count(*) FROM {_OUTBOX} GROUP BY status"
                                 ).fetchall()
        elif exists:
            pairs = list(conn.execute(
                sa.select(_T.c.status, sa.func.count()).group_by(_T.c.status)))
    for status, n in pairs:
        out[str(status)] = out.get(str(status), 0) + int(n)
    out["total"] = sum(out.values())
    return out


def iter_events(target: Target, status: str | None = None, limit: int | None = None
                ) -> Iterator[OutboxEvent]:
    """Read events in ``(event_ts, outbox_id)`` order without changing them.

    Args:
        target: The database (api.md §4.2); a DuckDB file is opened read-only. The file or
            connection stays in use until the iterator is exhausted or closed.
        status: Only events with this status (one of :data:`STATUSES`).
        limit: Most events to yield.

    Yields:
        Validated events.

    Raises:
        ValueError: ``status`` is unknown or ``limit`` is negative.
        SchemaContractError: A payload fails its model.
    """
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown outbox status {status!r}; valid: {', '.join(STATUSES)}")
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    if limit == 0:
        return
    with _session(target, read_only=True) as (conn, exists):
        if not exists:
            return
        if isinstance(conn, duckdb.DuckDBPyConnection):
            where = "" if status is None else "WHERE status = ?"
            tail = "" if limit is None else f" LIMIT {int(limit)}"
            # A private cursor, so the caller may use its connection while iterating.
            cursor = conn.cursor()
            try:
                result = cursor.execute(f"SELECT * FROM {_OUTBOX} {where} {_ORDER_SQL}{tail}",
                                        [] if status is None else [status])
                names = [d[0] for d in result.description]
                while chunk := result.fetchmany(_FETCH_ROWS):
                    for row in chunk:
                        yield OutboxEvent.from_row(dict(zip(names, row, strict=True)))
            finally:
                cursor.close()
            return
        query = sa.select(_T).order_by(_T.c.event_ts, _T.c.outbox_id)
        if status is not None:
            query = query.where(_T.c.status == status)
        if limit is not None:
            query = query.limit(limit)
        for row in conn.execution_options(yield_per=_FETCH_ROWS).execute(query).mappings():
            yield OutboxEvent.from_row(dict(row))


def drain(target: Target, out: TextIO, *, hub: str, limit: int | None = None, batch: int = 256,
          max_attempts: int = 3, dead_letter: bool = True) -> int:
    """Lease, write and acknowledge events until none is due (``outbox drain``).

    Each event is written as one JSON line ``{"hub": hub, **event}``, with the payload as a
    nested object. A batch is acknowledged after it has been written and flushed; if writing
    fails, the batch is nacked (``max_attempts``, ``dead_letter``) and the error re-raised.

    Args:
        target: The database (api.md §4.2).
        out: Text stream receiving the JSON lines.
        hub: The event hub name (``stream.hub``).
        limit: Most events to drain; ``None`` drains everything due.
        batch: Events per lease (``realtime.max_batch_size``).
        max_attempts: Passed to :func:`nack` (``realtime.retry_attempts``).
        dead_letter: Passed to :func:`nack` (``realtime.enable_dead_letter_queue``).

    Returns:
        The number of events written.

    Raises:
        ValueError: ``batch`` < 1 or ``limit`` < 0.
        SchemaContractError: A leased payload fails its model (nothing of that lease is written).
    """
    if batch < 1 or (limit is not None and limit < 0):
        raise ValueError("batch must be >= 1 and limit >= 0")
    written = 0
    with open_bind(target) as bind:
        while limit is None or written < limit:
            size = batch if limit is None else min(batch, limit - written)
            events = lease(bind, size)
            if not events:
                break
            ids = [e.outbox_id for e in events]
            try:
                out.write("".join(
                    json.dumps({"hub": hub, **e.to_json_dict()}, ensure_ascii=False,
                               separators=(",", ":")) + "\n"
                    for e in events))
                out.flush()
            except BaseException:
                nack(bind, ids, max_attempts=max_attempts, dead_letter=dead_letter)
                raise
            ack(bind, ids)
            written += len(events)
    return written


__all__ = [
    "PAYLOAD_TS_FORMAT",
    "ROW_SCHEMA",
    "SOURCE",
    "STATUSES",
    "OutboxEvent",
    "Target",
    "ack",
    "assign_outbox_ids",
    "build_outbox_rows",
    "counts",
    "drain",
    "iter_events",
    "lease",
    "nack",
    "open_bind",
    "validate_sample",
]
