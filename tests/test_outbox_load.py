"""The outbox under load: four consumer processes drain 200,000 events from PostgreSQL with
lease/ack/nack while consumers are killed at random (SIGKILL).

Every lease is recorded in a ``deliveries`` table in the lease's own transaction and every nack
in ``nacks``, so the test sees each delivery. Afterwards: every event is sent, none is lost or
dead-lettered, each lease was recorded (``sum(attempts)`` equals the deliveries), and an event
was delivered again only after its lease expired or its consumer nacked it.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa

from fault_fixtures import START, TESTS, generate_into, master_db  # noqa: F401 - fixture
from pg_fixtures import Schemas, pg_schemas  # noqa: F401 - fixture
from retail_datagen.db import schema
from retail_datagen.db.duckdb_engine import to_arrow_table
from retail_datagen.db.sql_engine import SqlTarget
from retail_datagen.streaming.outbox import counts

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
EVENTS = 200_000
CONSUMERS = 4
BATCH = 2_000
LEASE_S = 2
KILLS = 10
SEED = 20241125

_CONSUMER = textwrap.dedent("""
    import os, random, signal, sys, time
    from datetime import UTC, datetime
    import sqlalchemy as sa
    from retail_datagen.streaming.outbox import ack, lease, nack
    url, me = sys.argv[1], int(sys.argv[2])
    chance = random.Random(me)
    engine = sa.create_engine(url)
    record = sa.text("INSERT INTO deliveries (outbox_id, consumer, leased_at) "
                     "SELECT unnest(CAST(:ids AS BIGINT[])), :me, :at")
    returned = sa.text("INSERT INTO nacks (outbox_id, consumer, nacked_at) "
                       "SELECT unnest(CAST(:ids AS BIGINT[])), :me, :at")
    with engine.connect() as conn:
        while True:
            stamp = datetime.now(UTC).replace(tzinfo=None)
            with conn.begin():  # the lease and its record commit together
                events = lease(conn, {batch}, lease_timeout_s={lease_s}, now=stamp)
                ids = [e.outbox_id for e in events]
                if ids:
                    conn.execute(record, {{"ids": ids, "me": me, "at": stamp}})
            if ids and me < 0:  # the crasher dies holding its first lease
                os.kill(os.getpid(), signal.SIGKILL)
            if not ids:
                left = conn.execute(sa.text(
                    "SELECT count(*) FROM streaming_outbox WHERE status <> 'sent'")).scalar()
                conn.rollback()
                if left == 0:
                    break
                time.sleep(0.2)
                continue
            if chance.random() < 0.05:  # a failed send: the batch goes back
                with conn.begin():
                    conn.execute(returned, {{"ids": ids, "me": me,
                                            "at": datetime.now(UTC).replace(tzinfo=None)}})
                    nack(conn, ids, dead_letter=False)
            else:
                ack(conn, ids)
""").format(batch=BATCH, lease_s=LEASE_S)


def _events(master: Path, folder: Path) -> pa.Table:
    """200,000 outbox rows: one generated day's events, repeated on the following days."""
    path = generate_into(master, folder, START, START, publish_to_outbox=True)
    con = duckdb.connect(str(path), read_only=True)
    try:
        day = con.execute("SELECT count(*) FROM streaming_outbox").fetchone()[0]
        copies = -(-EVENTS // day)
        return to_arrow_table(con.execute(
            "SELECT outbox_id + c * 1000000000 AS outbox_id, "
            "event_ts + c * INTERVAL 1 DAY AS event_ts, message_type, payload, status, "
            "attempts, last_attempt_ts, sent_ts, partition_key, "
            "trace_id || '#' || c AS trace_id, correlation_id, schema_version, source "
            f"FROM streaming_outbox, range({copies}) r(c) ORDER BY outbox_id LIMIT {EVENTS}"))
    finally:
        con.close()


def _spawn(url: str, number: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CONSUMER, url, str(number)], cwd=TESTS)


# Deliveries that follow an earlier delivery of the same event, by how they were allowed: the
# earlier consumer nacked the event, or its lease had expired; "early" ones had neither.
_REDELIVERIES = """
SELECT count(*) FILTER (WHERE nacked), count(*) FILTER (WHERE NOT nacked AND expired),
       count(*) FILTER (WHERE NOT nacked AND NOT expired)
FROM (SELECT leased_at >= before + make_interval(secs => :lease) AS expired,
             EXISTS (SELECT 1 FROM nacks n WHERE n.outbox_id = d.outbox_id
                     AND n.consumer = d.by_whom AND n.nacked_at >= d.before) AS nacked
      FROM (SELECT outbox_id, leased_at, lag(leased_at) OVER w AS before,
                   lag(consumer) OVER w AS by_whom
            FROM deliveries WINDOW w AS (PARTITION BY outbox_id ORDER BY leased_at)) d
      WHERE before IS NOT NULL) r
"""


def test_four_consumers_drain_everything_while_being_killed(
        pg_schemas: Schemas, master_db: Path, tmp_path: Path) -> None:  # noqa: F811
    _, url = pg_schemas.new("outbox")
    target = SqlTarget.open(url)
    try:
        target.create_tables([schema.OUTBOX_TABLE])
        assert target.append(schema.OUTBOX_TABLE, _events(master_db, tmp_path)) == EVENTS
    finally:
        target.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE deliveries (outbox_id BIGINT, consumer INT, "
                             "leased_at TIMESTAMP)")
        conn.exec_driver_sql("CREATE TABLE nacks (outbox_id BIGINT, consumer INT, "
                             "nacked_at TIMESTAMP)")
    # One consumer is killed for certain while it holds a lease, whatever the timing of the
    # random kills below: its events must wait for the lease to expire.
    crasher = _spawn(url, -1)
    assert crasher.wait(60) == -signal.SIGKILL
    chooser = random.Random(SEED)
    started = time.monotonic()
    numbers = list(range(CONSUMERS))
    consumers = [_spawn(url, n) for n in numbers]
    spawned, kills = CONSUMERS, 0
    leased = sa.text("SELECT count(*) FROM deliveries WHERE consumer = :c")
    try:
        for _ in range(20 * KILLS):  # bounded: rounds whose victim has not leased yet pass
            if kills == KILLS or all(c.poll() is not None for c in consumers):
                break
            time.sleep(chooser.uniform(0.2, 0.8))
            slot = chooser.randrange(CONSUMERS)
            with engine.connect() as conn:
                working = conn.execute(leased, {"c": numbers[slot]}).scalar() > 0
            # Killed once it has leased, so most kills land while it holds a lease.
            if working and consumers[slot].poll() is None:
                consumers[slot].send_signal(signal.SIGKILL)
                consumers[slot].wait(30)
                kills += 1
                consumers[slot] = _spawn(url, spawned)
                numbers[slot] = spawned
                spawned += 1
        for child in consumers:
            assert child.wait(timeout=max(10.0, 110 - (time.monotonic() - started))) == 0
    finally:
        for child in consumers:
            if child.poll() is None:
                child.kill()
                child.wait()
    with engine.connect() as conn:
        delivered = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT outbox_id) FROM deliveries")).one()
        again = conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT outbox_id FROM deliveries GROUP BY outbox_id "
            "HAVING count(*) > 1) r")).scalar()
        attempts = conn.execute(sa.text("SELECT sum(attempts) FROM streaming_outbox")).scalar()
        unsent = conn.execute(sa.text(
            "SELECT count(*) FROM streaming_outbox WHERE sent_ts IS NULL")).scalar()
        after_nack, after_expiry, early = conn.execute(sa.text(_REDELIVERIES),
                                                       {"lease": LEASE_S}).one()
    engine.dispose()
    seconds = time.monotonic() - started
    print(f"\n{EVENTS:,} events, {kills} consumers killed, {delivered[0]:,} deliveries, "
          f"{again:,} events delivered again ({after_nack:,} redeliveries after a nack, "
          f"{after_expiry:,} after an expired lease, {early} early), {seconds:.1f} s")
    assert counts(url) == {"pending": 0, "processing": 0, "sent": EVENTS, "failed": 0,
                           "total": EVENTS}
    assert unsent == 0
    assert delivered[1] == EVENTS and attempts == delivered[0]
    assert early == 0
    # Killed consumers held leases, which expired and were taken over.
    assert kills == KILLS and after_expiry > 0
