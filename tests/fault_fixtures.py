"""Shared pieces of the fault-injection tests: a master-data database, the whole-days check,
content hashes of every deterministic table, and hooks that fail or block at a chosen day.

Faults are injected by wrapping the generator's own methods on one instance; the databases are
real DuckDB files and a real PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import config_in
from retail_datagen.db import schema

FACTS = tuple(schema.FACT_TABLE_DB_NAMES.values())
# Every table whose content is a pure function of the configuration (gen_metadata holds the
# configuration itself, paths included).
# The dimensions are copied from the master file and never written by the fact engine.
HASHED = (*FACTS, *(t for t in schema.STATE_TABLES if t != "gen_metadata"))
START, END = date(2024, 3, 4), date(2024, 3, 6)
FAULT_DAY = date(2024, 3, 5)
BEFORE_FAULT = FAULT_DAY - timedelta(days=1)
TESTS = Path(__file__).parent
#: Row count and hash sum per table (:func:`row_hashes`).
Hashes = dict[str, tuple[int, int]]


@pytest.fixture(scope="session")
def master_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the test configuration's master data and no facts (copy it)."""
    from retail_datagen.generators.master_generator import MasterDataGenerator

    folder = tmp_path_factory.mktemp("master")
    with MasterDataGenerator(config_in(folder)) as gen:
        gen.generate_all()
    return folder / "retail.duckdb"


@pytest.fixture(scope="session")
def reference_hashes(master_db: Path, tmp_path_factory: pytest.TempPathFactory
                     ) -> Hashes:
    """Content hashes of an uninterrupted run of ``START..END``."""
    from conftest import generate

    folder = tmp_path_factory.mktemp("reference")
    shutil.copy(master_db, folder / "retail.duckdb")
    generate(config_in(folder), START, END)
    return hashes(folder)


def fresh_folder(master_db: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(master_db, folder / "retail.duckdb")
    return folder


def snapshot(source: Path, folder: Path) -> Path:
    """Copy a DuckDB file and its WAL as they are on disk (what a crash would leave)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("retail.duckdb", "retail.duckdb.wal"):
        if (source / name).exists():
            shutil.copy(source / name, folder / name)
    return folder


def row_hashes(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...] = HASHED
               ) -> Hashes:
    """Row count and the sum of every row's hash, per table: equal for equal row multisets.

    Order-free and computed without sorting, so cheap enough to compare after every fault.
    """
    return {name: con.execute(f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) '
                              f'FROM "{name}" t').fetchone() for name in tables}


def hashes(folder: Path) -> Hashes:
    con = duckdb.connect(str(folder / "retail.duckdb"), read_only=True)
    try:
        return row_hashes(con)
    finally:
        con.close()


# --- the whole-days check ----------------------------------------------------------------------

def _fact_days_sql(facts: list[str]) -> str:
    union = " UNION ALL ".join(f'SELECT CAST(event_ts AS DATE) AS d FROM "{name}"'
                               for name in facts)
    return f"SELECT d, count(*) FROM ({union}) f GROUP BY d"


def check_whole_days(fetch: Callable[[str], list[tuple]], exists: Callable[[str], bool],
                     last_day: date | None, first_day: date = START) -> None:
    """The database holds the days ``first_day..last_day`` completely and nothing else.

    The watermark, the day log and the fact rows agree: the log lists exactly those days, the
    rows of each day are the count the log recorded, and no fact row lies outside them.
    """
    watermark = fetch("SELECT first_day, last_day FROM gen_watermark") if exists(
        "gen_watermark") else []
    facts = [n for n in FACTS if exists(n)]
    per_day = dict(fetch(_fact_days_sql(facts))) if facts else {}
    if last_day is None:
        assert watermark == [] and per_day == {}, (watermark, per_day)
        return
    assert watermark == [(first_day, last_day)]
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    log = dict(fetch("SELECT day, row_count FROM gen_day_log"))
    assert sorted(log) == days
    assert per_day == {d: log[d] for d in days if log[d]}


def check_target_whole_days(target: Any, last_day: date | None,
                            first_day: date = START) -> None:
    """:func:`check_whole_days` through an open generator's own target (DuckDB or SQL)."""
    check_whole_days(target.fetchall, target.table_exists, last_day, first_day)


def check_duckdb_whole_days(path: Path, last_day: date | None) -> None:
    con = duckdb.connect(str(path), read_only=True)
    try:
        check_whole_days(lambda sql: con.execute(sql).fetchall(),
                         lambda name: bool(con.execute(
                             "SELECT count(*) FROM information_schema.tables "
                             "WHERE table_name = ?", [name]).fetchone()[0]),
                         last_day)
    finally:
        con.close()


# --- hooks on one generator instance -----------------------------------------------------------


class Gate:
    """A meeting point between a hooked worker thread and the test.

    The hook calls :meth:`arrive` (the test's :meth:`wait_arrived` returns) and then blocks in
    :meth:`hold` until the test calls :meth:`release`.
    """

    def __init__(self) -> None:
        self.arrived, self.released = threading.Event(), threading.Event()

    def arrive_and_hold(self) -> None:
        self.arrived.set()
        assert self.released.wait(60), "the test never released the hook"

    def release(self) -> None:
        self.released.set()


def on_day(gen: Any, method: str, day: date, before: Callable[..., Any] | None = None,
           after: Callable[..., Any] | None = None) -> None:
    """Wrap ``gen.<method>(day, …)`` so that ``before``/``after`` run around the call of ``day``.

    ``before(*args)`` runs first, ``after(result, *args)`` once the method returned.
    """
    original = getattr(gen, method)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        hit = args and args[0] == day
        if hit and before is not None:
            before(*args)
        out = original(*args, **kwargs)
        if hit and after is not None:
            after(out, *args)
        return out

    setattr(gen, method, wrapped)


def inside_write(gen: Any, day: date, action: Callable[[], Any]) -> None:
    """Run ``action`` inside the write transaction of ``day`` (after its facts, before COMMIT)."""
    on_day(gen, "_write_state", day, before=lambda *_: action())


def capture_cancel_flag(gen: Any) -> dict[str, threading.Event]:
    """Keep the cancellation flag the engine hands to each ``_write_day`` call."""
    seen: dict[str, threading.Event] = {}
    original = gen._write_day

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        seen["flag"] = args[2]
        return original(*args, **kwargs)

    gen._write_day = wrapped
    return seen


def raise_(exc: BaseException) -> Callable[..., Any]:
    def hook(*_: Any) -> None:
        raise exc
    return hook


# --- a continuation in a new process ------------------------------------------------------------

_CONTINUE = textwrap.dedent("""
    import asyncio, sys
    from datetime import date
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from conftest import config_in
    from retail_datagen.generators.fact_generators import FactDataGenerator
    for folder in {folders!r}:
        gen = FactDataGenerator(config_in(Path(folder)), {session!r} or None)
        try:
            asyncio.run(gen.generate_historical_data(
                date.fromisoformat({start!r}), date.fromisoformat({end!r}), validate=False))
        finally:
            gen.close()
""")


def continue_in_new_process(*folders: Path, session: str | None = None,
                            start: date = START, end: date = END) -> None:
    """Continue ``start..end`` in each folder's database, all in one new process."""
    code = _CONTINUE.format(tests=str(TESTS), folders=[str(f) for f in folders],
                            session=session or "", start=start.isoformat(), end=end.isoformat())
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def kill_when(child: subprocess.Popen, line: str) -> None:
    """SIGKILL ``child`` as soon as it prints ``line`` (its stdout is a text pipe)."""
    try:
        for out in child.stdout:
            if out.strip() == line:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        assert child.wait(timeout=120) == -signal.SIGKILL


def generate_into(master: Path, folder: Path, start: date, end: date, **kwargs: Any) -> Path:
    """A copy of ``master`` in ``folder`` with the facts of ``start..end``; the file's path."""
    from retail_datagen.generators.fact_generators import FactDataGenerator

    fresh_folder(master, folder)
    gen = FactDataGenerator(config_in(folder))
    try:
        asyncio.run(gen.generate_historical_data(start, end, validate=False, **kwargs))
    finally:
        gen.close()
    return folder / "retail.duckdb"
