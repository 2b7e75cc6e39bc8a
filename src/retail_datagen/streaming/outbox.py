"""The streaming outbox: the consumer helpers (api.md §8).

:func:`lease`, :func:`ack`, :func:`nack`, :func:`counts`, :func:`iter_events` and :func:`drain`
accept any target of api.md §4.2: a DuckDB connection or file path, or a SQLAlchemy ``Engine``,
``Connection`` or URL. Each operation is one transaction. On PostgreSQL (and other dialects that
support it) :func:`lease` selects with ``FOR UPDATE SKIP LOCKED``, so concurrent drainers never
receive the same event. Consumer timestamps (``last_attempt_ts``, ``sent_ts``) are the wall
clock: outbox bookkeeping is operational, never data.

The events themselves are built from fact batches in
:mod:`retail_datagen.streaming.outbox_rows`; its public names (:func:`build_outbox_rows`,
:func:`assign_outbox_ids`, :data:`ROW_SCHEMA`, :data:`SOURCE`) are re-exported here, as are
:func:`~retail_datagen.db.target.open_bind` and the ``Target`` type of the targets accepted.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import duckdb
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from retail_datagen.db import duckdb_engine, schema
from retail_datagen.db.target import Session, open_bind
from retail_datagen.streaming.outbox_rows import (
    ROW_SCHEMA,
    SOURCE,
    assign_outbox_ids,
    build_outbox_rows,
)
from retail_datagen.streaming.schemas import PAYLOAD_TS_FORMAT, OutboxEvent, validate_sample

#: The targets the consumer helpers accept (api.md §4.2).
Target = Session

#: The outbox statuses, in lifecycle order.
STATUSES: tuple[str, ...] = ("pending", "processing", "sent", "failed")

_OUTBOX = schema.OUTBOX_TABLE
_SKIP_LOCKED_DIALECTS = frozenset({"postgresql", "mysql", "mariadb", "oracle"})
# Bound parameter lists stay well below every driver's limit (PostgreSQL allows 65,535).
_ID_CHUNK = 5_000
_FETCH_ROWS = 1_000
# Bytes read at a time when looking back for the last complete line of a JSON-lines file.
_TAIL_BYTES = 65_536


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
_ID_ARRAY = postgresql.ARRAY(sa.BigInteger)


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
        # One query per status: each walks the (status, event_ts) index in order and stops at
        # the limit, where one OR of both would sort the whole outbox under the row locks.
        # The first ``limit`` of both, merged, are the first ``limit`` due events.
        candidates: list[Any] = []
        for due in (_T.c.status == "pending",
                    sa.and_(_T.c.status == "processing", _T.c.last_attempt_ts < cutoff)):
            pick = sa.select(_T.c.event_ts, _T.c.outbox_id).where(due).order_by(
                _T.c.event_ts, _T.c.outbox_id).limit(limit)
            if conn.dialect.name in _SKIP_LOCKED_DIALECTS:
                # Rows locked by a concurrent lease are skipped, never waited for or shared.
                pick = pick.with_for_update(skip_locked=True)
            candidates.extend(tuple(row) for row in conn.execute(pick))
        ids = [outbox_id for _, outbox_id in sorted(candidates)[:limit]]
        if not ids:
            return []
        update = sa.update(_T).where(_in_ids(conn, ids)).values(
            status="processing", attempts=_T.c.attempts + 1, last_attempt_ts=stamp)
        if conn.dialect.update_returning:
            rows = sorted((dict(r) for r in conn.execute(update.returning(*_T.c)).mappings()),
                          key=lambda r: (r["event_ts"], r["outbox_id"]))
        else:
            conn.execute(update)
            rows = [dict(r) for r in conn.execute(sa.select(_T).where(
                _in_ids(conn, ids)).order_by(_T.c.event_ts, _T.c.outbox_id)).mappings()]
        return [OutboxEvent.from_row(r) for r in rows]


def _in_ids(conn: Connection, ids: list[int]) -> sa.ColumnElement[bool]:
    # On PostgreSQL one array parameter, instead of one bound parameter per id to render.
    if conn.dialect.name == "postgresql":
        return _T.c.outbox_id == sa.any_(sa.bindparam("ids", ids, type_=_ID_ARRAY))
    return _T.c.outbox_id.in_(ids)


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
                    _T.c.status == "processing", _in_ids(conn, chunk)).values(**values)
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


def open_jsonl_for_append(path: str | os.PathLike[str]) -> TextIO:
    """Open a JSON-lines file to append drained events to (``outbox drain --out``).

    A drain that was killed while writing can leave an incomplete last line. Its events were
    never acknowledged, so they are drained again; the fragment is cut off first so that the
    file stays one JSON object per line.

    Args:
        path: The file; it and its folder are created if missing.

    Returns:
        The file, open for appending UTF-8 text.
    """
    file = pathlib.Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("ab+") as raw:
        end = raw.seek(0, os.SEEK_END)
        keep, position = 0, end
        while position > 0:
            step = min(_TAIL_BYTES, position)
            raw.seek(position - step)
            newline = raw.read(step).rfind(b"\n")
            if newline >= 0:
                keep = position - step + newline + 1
                break
            position -= step
        if keep < end:
            raw.truncate(keep)
    return file.open("a", encoding="utf-8")


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
    "open_jsonl_for_append",
    "validate_sample",
]
