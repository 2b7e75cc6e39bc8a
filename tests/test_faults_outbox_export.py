"""The outbox drain and the Parquet export interrupted midway (an exception, a full disk, a
SIGKILL): no partial file under a final name, no event lost, and a rerun gives the output of an
uninterrupted run.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from conftest import config_in
from fault_fixtures import (  # noqa: F401 - master_db is a fixture
    START,
    TESTS,
    generate_into,
    kill_when,
    master_db,
)
from retail_datagen.db import schema
from retail_datagen.export import parquet
from retail_datagen.export.parquet import export_monthly_parquet
from retail_datagen.streaming import outbox

SCRIPT = Path(sys.executable).with_name("retail-datagen")
BATCH = 1_000
# Consumer bookkeeping (wall clock, attempts) differs between runs; the events do not.
BOOKKEEPING = ("status", "attempts", "last_attempt_ts", "sent_ts")


@pytest.fixture(scope="module")
def with_outbox(master_db: Path, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
                ) -> Path:
    """A generated day with its outbox events (copy the file before writing to it)."""
    return generate_into(master_db, tmp_path_factory.mktemp("outbox"), START, START,
                         publish_to_outbox=True)


def _copy(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / source.name).write_bytes(source.read_bytes())
    return folder / source.name


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            stdout=subprocess.PIPE, text=True, cwd=TESTS)


# --- Parquet export ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_export(with_outbox: Path, tmp_path_factory: pytest.TempPathFactory
                     ) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("export-reference")
    export_monthly_parquet(with_outbox, root)
    return _files(root)


def test_export_failing_midway_keeps_whole_files_and_reruns_identically(
        with_outbox: Path, reference_export: dict[str, bytes], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    commits = []
    original = parquet.ParquetFile.commit

    def disk_full(self: parquet.ParquetFile) -> bool:
        commits.append(self.path)
        if len(commits) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self)

    monkeypatch.setattr(parquet.ParquetFile, "commit", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export_monthly_parquet(with_outbox, tmp_path)
    monkeypatch.undo()
    left = _files(tmp_path)
    assert len(left) == 4 and all(reference_export[name] == data for name, data in left.items())
    export_monthly_parquet(with_outbox, tmp_path)
    assert _files(tmp_path) == reference_export


def test_export_killed_inside_a_file_leaves_no_partial_file_and_reruns_identically(
        with_outbox: Path, reference_export: dict[str, bytes], tmp_path: Path) -> None:
    kill_when(_child(f"""
        import time
        from retail_datagen.export import parquet
        original, calls = parquet.ParquetFile.write, []
        def write(self, batch):
            original(self, batch)  # the batch is in the temporary file, not yet closed
            calls.append(1)
            if len(calls) == 5:
                print("writing", flush=True)
                time.sleep(120)
        parquet.ParquetFile.write = write
        parquet.export_monthly_parquet({str(with_outbox)!r}, {str(tmp_path)!r})
    """), "writing")
    left = _files(tmp_path)
    finals = {name: data for name, data in left.items() if not Path(name).name.startswith(".")}
    assert len(finals) == 4 and all(reference_export[n] == d for n, d in finals.items())
    # What the kill left is a hidden temporary file, never a file under a final name.
    assert all(Path(n).name.endswith(".tmp") for n in left.keys() - finals.keys())
    export_monthly_parquet(with_outbox, tmp_path)
    assert {n: d for n, d in _files(tmp_path).items()
            if not Path(n).name.startswith(".")} == reference_export


# --- outbox drain --------------------------------------------------------------------------------


def _events(path: Path) -> list[dict]:
    """The drained lines without the consumer bookkeeping, each event once, in file order."""
    seen: dict[int, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        for key in BOOKKEEPING:
            event.pop(key)
        seen.setdefault(event["outbox_id"], event)
    return list(seen.values())


@pytest.fixture(scope="module")
def reference_drain(with_outbox: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    folder = tmp_path_factory.mktemp("drain-reference")
    db = _copy(with_outbox, folder)
    out = folder / "events.jsonl"
    with outbox.open_jsonl_for_append(out) as stream:
        outbox.drain(db, stream, hub=config_in(folder).stream.hub, batch=BATCH)
    events = _events(out)
    assert len(out.read_text().splitlines()) == len(events) == outbox.counts(db)["sent"]
    return events


class _FullDisk:
    """A real file whose third write fails as a full disk does, before writing anything."""

    def __init__(self, stream, fail_at: int) -> None:
        self.stream, self.fail_at, self.writes = stream, fail_at, 0

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes == self.fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def test_drain_failing_midway_returns_the_batch_and_reruns_identically(
        with_outbox: Path, reference_drain: list[dict], tmp_path: Path) -> None:
    db = _copy(with_outbox, tmp_path)
    out = tmp_path / "events.jsonl"
    hub = config_in(tmp_path).stream.hub
    with outbox.open_jsonl_for_append(out) as stream, pytest.raises(OSError):
        outbox.drain(db, _FullDisk(stream, 3), hub=hub, batch=BATCH)
    assert outbox.counts(db)["sent"] == 2 * BATCH
    assert outbox.counts(db)["processing"] == 0  # the failed batch went back
    with outbox.open_jsonl_for_append(out) as stream:
        outbox.drain(db, stream, hub=hub, batch=BATCH)
    assert len(out.read_text().splitlines()) == len(reference_drain)
    assert _events(out) == reference_drain
    assert outbox.counts(db)["sent"] == len(reference_drain)


def test_drain_killed_inside_a_line_then_the_cli_drains_the_rest(
        with_outbox: Path, reference_drain: list[dict], tmp_path: Path) -> None:
    db = _copy(with_outbox, tmp_path)
    config = config_in(tmp_path)
    config.to_file(tmp_path / "config.json")
    out = tmp_path / "events.jsonl"
    kill_when(_child(f"""
        import time
        from retail_datagen.streaming import outbox
        class Torn:
            def __init__(self, stream):
                self.stream, self.writes = stream, 0
            def write(self, text):
                self.writes += 1
                if self.writes == 3:  # half of the third batch reaches the disk
                    self.stream.write(text[:len(text) // 2])
                    self.stream.flush()
                    print("torn", flush=True)
                    time.sleep(120)
                return self.stream.write(text)
            def flush(self):
                self.stream.flush()
        with outbox.open_jsonl_for_append({str(out)!r}) as stream:
            outbox.drain({str(db)!r}, Torn(stream), hub={config.stream.hub!r}, batch={BATCH})
    """), "torn")
    assert not out.read_text().endswith("\n")
    con = duckdb.connect(str(db))
    try:
        # The killed consumer's lease runs out (as the lease timeout would, later).
        con.execute(f"UPDATE {schema.OUTBOX_TABLE} SET last_attempt_ts = last_attempt_ts - ? "
                    "WHERE status = 'processing'", [timedelta(hours=1)])
    finally:
        con.close()
    drained = subprocess.run([str(SCRIPT), "--config", str(tmp_path / "config.json"), "outbox",
                              "drain", "--batch", str(BATCH), "--out", str(out)],
                             capture_output=True, text=True, timeout=300)
    assert drained.returncode == 0, drained.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    ids = [json.loads(line)["outbox_id"] for line in lines]  # every line is whole JSON
    # Delivered again: only events of the batch that was being written when it was killed.
    again = {i for i, n in Counter(ids).items() if n > 1}
    torn_batch = {e["outbox_id"] for e in reference_drain[2 * BATCH:3 * BATCH]}
    assert again and again <= torn_batch
    assert _events(out) == reference_drain
    assert outbox.counts(db)["sent"] == len(reference_drain)


# --- lease through UPDATE … RETURNING (SQLite) ---------------------------------------------------


def test_sqlite_lease_takes_pending_and_expired_events_in_order(
        with_outbox: Path, tmp_path: Path) -> None:
    con = duckdb.connect(str(with_outbox), read_only=True)
    try:
        rows = con.execute(f"SELECT * FROM {schema.OUTBOX_TABLE} ORDER BY event_ts, outbox_id "
                           "LIMIT 40").fetchall()
        names = [d[0] for d in con.description]
    finally:
        con.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    schema.metadata.create_all(engine, tables=[schema.table(schema.OUTBOX_TABLE)])
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.table(schema.OUTBOX_TABLE)),
                     [dict(zip(names, row, strict=True)) for row in rows])
    order = [row[names.index("outbox_id")] for row in rows]
    first = outbox.lease(engine, 10, now=None)
    assert [e.outbox_id for e in first] == order[:10]
    assert outbox.ack(engine, order[:5]) == 5
    # Half of the lease is still held; once it expired, it comes back in order with the rest.
    later = first[0].last_attempt_ts + timedelta(seconds=301)
    again = outbox.lease(engine, 10, lease_timeout_s=300, now=later)
    assert [e.outbox_id for e in again] == order[5:15]
    assert [e.attempts for e in again] == [2] * 5 + [1] * 5
