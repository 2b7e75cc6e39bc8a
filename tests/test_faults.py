"""Faults during generation into a real DuckDB file: whole days remain, and continuing (with the
same object, a new object or a new process) ends identical to an uninterrupted run.

Each scenario runs ``START..END`` with a fault at ``FAULT_DAY`` (or the first day), checks the
database holds whole days only, snapshots the file as the fault left it, and continues three
ways. Faults are injected by wrapping the generator's own methods on the one instance.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from conftest import config_in
from fault_fixtures import (
    BEFORE_FAULT,
    END,
    FAULT_DAY,
    START,
    TESTS,
    Gate,
    Hashes,
    capture_cancel_flag,
    check_duckdb_whole_days,
    check_target_whole_days,
    continue_in_new_process,
    fresh_folder,
    hashes,
    inside_write,
    kill_when,
    master_db,  # noqa: F401 - fixture
    on_day,
    raise_,
    reference_hashes,  # noqa: F401 - fixture
    snapshot,
)
from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators import FactDataGenerator


def _run(gen: FactDataGenerator, start: date = START, end: date = END, **kwargs):
    kwargs.setdefault("validate", False)
    return asyncio.run(gen.generate_historical_data(start, end, **kwargs))


# --- the stale-state path ----------------------------------------------------------------------


def test_failed_call_then_full_range_on_the_same_object_equals_one_run(
        generated_week: Path, master_db: Path, tmp_path: Path) -> None:  # noqa: F811
    folder = fresh_folder(master_db, tmp_path / "db")
    gen = FactDataGenerator(config_in(folder))
    try:
        _run(gen, date(2024, 11, 25), date(2024, 11, 26))
        gen.run_by_units()  # the hook below runs in this process
        on_day(gen, "_generate_day", date(2024, 11, 29), before=raise_(RuntimeError("injected")))
        with pytest.raises(GenerationError, match="2024-11-29"):
            _run(gen, date(2024, 11, 27), date(2024, 12, 1))
        check_target_whole_days(gen._target, date(2024, 11, 28), date(2024, 11, 25))
        del gen._generate_day
        summary = _run(gen, date(2024, 11, 25), date(2024, 12, 1), validate=True)
    finally:
        gen.close()
    assert (summary.days_skipped, summary.days_generated) == (4, 3)
    assert summary.validation_results["error_count"] == 0, summary.validation_results["errors"]
    assert hashes(folder) == hashes(generated_week.parent)


# --- in-process faults (generation faults use the in-process executor; faults in the writer
# run with the default process pool) --------------------------------------------------------

Scenario = Callable[[FactDataGenerator], "date | None"]


def _generation_error(gen: FactDataGenerator) -> date | None:
    gen.run_by_units()  # hooks on _generate_day run in this process
    on_day(gen, "_generate_day", FAULT_DAY, before=raise_(RuntimeError("injected")))
    with pytest.raises(GenerationError, match=f"generating {FAULT_DAY}"):
        _run(gen)
    return BEFORE_FAULT


def _write_error_before_commit(gen: FactDataGenerator) -> date | None:
    inside_write(gen, FAULT_DAY, raise_(OSError("injected")))
    with pytest.raises(GenerationError, match=f"writing {FAULT_DAY}"):
        _run(gen)
    return BEFORE_FAULT


def _write_error_after_commit(gen: FactDataGenerator) -> date | None:
    on_day(gen, "_write_day", FAULT_DAY, after=raise_(OSError("injected")))
    with pytest.raises(GenerationError, match=f"writing {FAULT_DAY}"):
        _run(gen)
    return FAULT_DAY


def _interrupt_at_progress(message: str) -> Scenario:
    """A KeyboardInterrupt on the main thread, in the progress report starting with message."""
    def scenario(gen: FactDataGenerator) -> date | None:
        original = gen._send_throttled_progress_update

        def report(day_counter, text, *args, **kwargs):
            if text.startswith(message):
                raise KeyboardInterrupt
            return original(day_counter, text, *args, **kwargs)

        gen._send_throttled_progress_update = report
        with pytest.raises(KeyboardInterrupt):
            _run(gen)
        return FAULT_DAY if message.startswith("Generated") else BEFORE_FAULT
    return scenario


def _sigint_while_generating(gen: FactDataGenerator) -> date | None:
    # Ctrl-C while day k is generated, once day k - 1 is committed.
    committed = threading.Event()
    on_day(gen, "_write_day", BEFORE_FAULT, after=lambda *_: committed.set())

    def interrupt(*_):
        assert committed.wait(60)
        os.kill(os.getpid(), signal.SIGINT)

    gen.run_by_units()
    on_day(gen, "_generate_day", FAULT_DAY, before=interrupt)
    with pytest.raises(KeyboardInterrupt):
        _run(gen)
    return BEFORE_FAULT


def _sigint_inside_write(gen: FactDataGenerator) -> date | None:
    flag = capture_cancel_flag(gen)

    def interrupt() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        assert flag["flag"].wait(60)

    inside_write(gen, FAULT_DAY, interrupt)
    with pytest.raises(KeyboardInterrupt):
        _run(gen)
    return BEFORE_FAULT


def _cancelled(gen: FactDataGenerator, reached: threading.Event, *, release=None,
               cancels: int = 1) -> None:
    """Run the range as a task and cancel it ``cancels`` times once ``reached`` is set."""
    async def drive() -> None:
        task = asyncio.ensure_future(gen.generate_historical_data(START, END, validate=False))
        while not reached.is_set():
            assert not task.done(), task
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the task reaches the await it is blocked on
        for _ in range(cancels):
            task.cancel()
            await asyncio.sleep(0.1)
        if cancels > 1:
            assert not task.done(), "returned while its write thread was running"
        if release is not None:
            release()
        with pytest.raises(asyncio.CancelledError):
            await task
        if gen._target.dialect == "duckdb":
            # No transaction of the cancelled call is left on the shared connection.
            gen._target.execute("BEGIN TRANSACTION")
            gen._target.execute("ROLLBACK")

    asyncio.run(drive())


def _cancel_awaiting_generation(day: date) -> Scenario:
    def scenario(gen: FactDataGenerator) -> date | None:
        gate, committed = Gate(), threading.Event()
        before = date.fromordinal(day.toordinal() - 1)
        if day == START:
            committed.set()
        else:
            on_day(gen, "_write_day", before, after=lambda *_: committed.set())
        gen.run_by_units()
        on_day(gen, "_generate_day", day, before=lambda *_: gate.arrive_and_hold())
        both = threading.Event()
        threading.Thread(target=lambda: (gate.arrived.wait(60), committed.wait(60),
                                         both.set()), daemon=True).start()
        _cancelled(gen, both, release=gate.release)
        return None if day == START else before
    return scenario


def _cancel_awaiting_write(*, after_commit: bool, cancels: int = 1) -> Scenario:
    def scenario(gen: FactDataGenerator) -> date | None:
        gate = Gate()
        if after_commit:
            on_day(gen, "_write_day", FAULT_DAY, after=lambda *_: gate.arrive_and_hold())
        else:
            inside_write(gen, FAULT_DAY, gate.arrive_and_hold)
        _cancelled(gen, gate.arrived, release=gate.release, cancels=cancels)
        return FAULT_DAY if after_commit else BEFORE_FAULT
    return scenario


SCENARIOS: dict[str, Scenario] = {
    "exception generating day k": _generation_error,
    "exception writing before COMMIT": _write_error_before_commit,
    "exception writing after COMMIT": _write_error_after_commit,
    "KeyboardInterrupt before day k": _interrupt_at_progress(f"Generating {FAULT_DAY}"),
    "KeyboardInterrupt after day k": _interrupt_at_progress(f"Generated {FAULT_DAY}"),
    "SIGINT while generating": _sigint_while_generating,
    "SIGINT inside the write transaction": _sigint_inside_write,
    "cancel awaiting the first day": _cancel_awaiting_generation(START),
    "cancel awaiting day k": _cancel_awaiting_generation(FAULT_DAY),
    "cancel awaiting the write before COMMIT": _cancel_awaiting_write(after_commit=False),
    "cancel awaiting the write after COMMIT": _cancel_awaiting_write(after_commit=True),
    "cancel twice awaiting the write": _cancel_awaiting_write(after_commit=False, cancels=2),
}


@pytest.fixture(scope="module")
def left_by_fault() -> dict[str, tuple[Path, date | None]]:
    """Snapshots of the database as each scenario's fault left it, for the new process."""
    return {}


def _fault(name: str, master: Path, folder: Path) -> tuple[FactDataGenerator, date | None]:
    """Run scenario ``name`` on a fresh database; the generator is left open, hooks removed."""
    gen = FactDataGenerator(config_in(fresh_folder(master, folder)))
    try:
        last_day = SCENARIOS[name](gen)
        check_target_whole_days(gen._target, last_day)
    except BaseException:
        gen.close()
        raise
    for attr in ("_generate_day", "_write_day", "_write_state",
                 "_send_throttled_progress_update"):
        gen.__dict__.pop(attr, None)
    return gen, last_day


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_leaves_whole_days_and_the_same_or_a_new_object_ends_identical(
        name: str, master_db: Path, reference_hashes: Hashes,  # noqa: F811
        left_by_fault: dict[str, tuple[Path, date | None]], tmp_path: Path) -> None:
    gen, last_day = _fault(name, master_db, tmp_path / "same")
    try:
        other = snapshot(tmp_path / "same", tmp_path / "new-object")
        left_by_fault[name] = (snapshot(tmp_path / "same", tmp_path / "new-process"), last_day)
        _run(gen)
    finally:
        gen.close()
    assert hashes(tmp_path / "same") == reference_hashes
    assert _continued_by_a_new_object(other, last_day) == reference_hashes


def _continued_by_a_new_object(folder: Path, last_day: date | None) -> Hashes:
    """Check the whole days the fault left, continue with a new generator, hash the result."""
    check_duckdb_whole_days(folder / "retail.duckdb", last_day)
    gen = FactDataGenerator(config_in(folder))
    try:
        _run(gen)
    finally:
        gen.close()
    return hashes(folder)


@pytest.mark.slow
def test_a_new_process_continues_after_every_fault_identically(
        master_db: Path, reference_hashes: Hashes,  # noqa: F811
        left_by_fault: dict[str, tuple[Path, date | None]], tmp_path: Path) -> None:
    # The scenarios above leave their snapshots here; run alone, this test makes its own.
    for number, name in enumerate(SCENARIOS):
        if name not in left_by_fault:
            gen, last_day = _fault(name, master_db, tmp_path / str(number))
            gen.close()
            left_by_fault[name] = (tmp_path / str(number), last_day)
    for folder, last_day in left_by_fault.values():
        check_duckdb_whole_days(folder / "retail.duckdb", last_day)
    continue_in_new_process(*(folder for folder, _ in left_by_fault.values()))
    differing = [name for name, (folder, _) in left_by_fault.items()
                 if hashes(folder) != reference_hashes]
    assert differing == []


# --- faults that end the process ----------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import asyncio, os, resource, signal, sys, time
    from datetime import date
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from conftest import config_in
    from fault_fixtures import FAULT_DAY, START, END, inside_write, on_day
    from retail_datagen.generators.fact_generators import FactDataGenerator
    folder = Path({folder!r})
    gen = FactDataGenerator(config_in(folder), {session!r} or None)
    {hook}
    try:
        asyncio.run(gen.generate_historical_data(START, END, validate=False))
    except Exception as exc:
        print("failed:", type(exc).__name__, exc, flush=True)
        sys.exit(3)
""")


def child_process(folder: Path, hook: str, session: str | None = None) -> subprocess.Popen:
    code = _CHILD.format(tests=str(TESTS), folder=str(folder), session=session or "",
                         hook=textwrap.indent(textwrap.dedent(hook), "").strip())
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


SIGKILL_IN_TRANSACTION = """
def hold():
    print("in-transaction", flush=True)
    time.sleep(120)
inside_write(gen, FAULT_DAY, hold)
"""


@pytest.mark.slow
def test_sigkill_inside_the_write_transaction(master_db: Path,  # noqa: F811
                                             reference_hashes: Hashes,  # noqa: F811
                                             tmp_path: Path) -> None:
    folder = fresh_folder(master_db, tmp_path / "killed")
    kill_when(child_process(folder, SIGKILL_IN_TRANSACTION), "in-transaction")
    _resume_after_the_process_ended(folder, tmp_path, reference_hashes)


def _resume_after_the_process_ended(folder: Path, tmp_path: Path,
                                    reference: Hashes) -> None:
    """Whole days up to the day before the fault; a new object and a new process end equal."""
    other = snapshot(folder, tmp_path / "new-process")
    assert _continued_by_a_new_object(folder, BEFORE_FAULT) == reference
    continue_in_new_process(other)
    assert hashes(other) == reference


# The day's write fails with EFBIG once the process may not grow a file any more: the same
# failure a full disk gives, without needing a filesystem of its own.
DISK_FULL = """
def fill():
    sizes = [os.path.getsize(p) for p in folder.iterdir() if p.is_file()]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes) + 4096, resource.RLIM_INFINITY))
on_day(gen, "_write_day", FAULT_DAY, before=lambda *_: fill())
"""


@pytest.mark.slow
def test_disk_full_during_a_write(master_db: Path, reference_hashes: Hashes,  # noqa: F811
                                  tmp_path: Path) -> None:
    folder = fresh_folder(master_db, tmp_path / "full")
    child = child_process(folder, DISK_FULL)
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 3 and f"writing {FAULT_DAY} failed" in out, out
    _resume_after_the_process_ended(folder, tmp_path, reference_hashes)
