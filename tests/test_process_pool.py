"""The local process-pool executor (sharding.md §4, §6): every worker count, the in-process
executor, a split range and other PYTHONHASHSEED and TZ give identical tables; a killed worker
or a killed writer leaves whole days only and a rerun ends identical to an uninterrupted run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import TEST_WEEK, config_in
from fault_fixtures import (
    BEFORE_FAULT,
    END,
    FAULT_DAY,
    START,
    TESTS,
    Hashes,
    check_duckdb_whole_days,
    check_target_whole_days,
    continue_in_new_process,
    fresh_folder,
    hashes,
    master_db,  # noqa: F401 - fixture
    on_day,
    reference_hashes,  # noqa: F401 - fixture
)
from pool_fixtures import FaultyStatic, descendants, wait_until_ended, worker_pids
from retail_datagen.config.settings import create_test_config
from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators import FactDataGenerator
from retail_datagen.generators.fact_generators.result_files import result_folder_base
from test_unit_executor import _all_hashes

CLI = Path(sys.executable).parent / "retail-datagen"


def _week(folder: Path, *, workers: int | None = None, executor: str | None = None,
          ranges=(TEST_WEEK,)) -> dict[str, str]:
    """The test week with the outbox, one generator per range; every table's hash."""
    config = config_in(folder, performance={"max_workers": workers})
    for start, end in ranges:
        gen = FactDataGenerator(config)
        try:
            if executor is not None:
                gen.set_executor(executor)
            asyncio.run(gen.generate_historical_data(start, end, validate=False,
                                                     publish_to_outbox=True))
        finally:
            gen.close()
    return _all_hashes(folder / "retail.duckdb")


@pytest.fixture(scope="module")
def in_process_week(master_db: Path, tmp_path_factory) -> dict[str, str]:  # noqa: F811
    folder = fresh_folder(master_db, tmp_path_factory.mktemp("in-process"))
    return _week(folder, executor="in-process")


def _differing(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    assert set(expected) == set(actual)
    assert int(actual["streaming_outbox"].split(":")[0]) > 0
    return [name for name in expected if expected[name] != actual[name]]


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_every_worker_count_equals_the_in_process_executor(
        workers: int, master_db: Path, in_process_week: dict[str, str],  # noqa: F811
        tmp_path: Path) -> None:
    actual = _week(fresh_folder(master_db, tmp_path), workers=workers)
    assert _differing(in_process_week, actual) == []
    assert _result_folders(os.getpid()) == []


def test_a_range_split_into_two_calls_equals_one_call(
        master_db: Path, in_process_week: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    first, last = TEST_WEEK
    middle = first + timedelta(days=2)
    actual = _week(fresh_folder(master_db, tmp_path), workers=2,
                   ranges=((first, middle), (middle + timedelta(days=1), last)))
    assert _differing(in_process_week, actual) == []


@pytest.mark.parametrize(("hash_seed", "zone", "workers"),
                         [("1", "Pacific/Kiritimati", "2"), ("4242", "America/Adak", "1")])
def test_the_cli_in_other_hash_seeds_and_time_zones_writes_the_same_tables(
        hash_seed: str, zone: str, workers: str, master_db: Path,  # noqa: F811
        in_process_week: dict[str, str], tmp_path: Path) -> None:
    folder = fresh_folder(master_db, tmp_path)
    config = folder / "config.json"
    config_in(folder).to_file(config)
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "TZ": zone}
    first, last = TEST_WEEK
    subprocess.run([str(CLI), "--config", str(config), "--quiet", "facts",
                    "--start", first.isoformat(), "--end", last.isoformat(), "--outbox",
                    "--no-validate", "--no-progress", "--workers", workers],
                   env=env, check=True, timeout=300)
    assert _differing(in_process_week, _all_hashes(folder / "retail.duckdb")) == []


def test_workers_option_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    create_test_config(paths={"duckdb": str(tmp_path / "x.duckdb")}).to_file(config)
    done = subprocess.run([str(CLI), "--config", str(config), "facts", "--end", "2024-01-01",
                           "--workers", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--workers" in done.stderr, done.stderr


def test_a_worker_loads_no_database_driver() -> None:
    # Whatever the fork server preloads is resident in every worker too.
    code = ("import sys, retail_datagen.generators.fact_generators.process_pool; "
            "print(sorted(m for m in ('duckdb', 'psycopg') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"


# --- faults -----------------------------------------------------------------------------------


def _faulty_generator(folder: Path, **fault) -> tuple[FactDataGenerator, Path]:
    """A 2-worker generator on ``folder`` whose unit 1 misbehaves on ``FAULT_DAY``."""
    gen = FactDataGenerator(config_in(folder, performance={"max_workers": 2}))
    marker = folder / "fault"
    static = FaultyStatic.of(gen.static_inputs(), fault_day=FAULT_DAY, marker=str(marker),
                             **fault)
    gen.static_inputs = lambda: static
    return gen, marker


async def _when_hanging(task: asyncio.Future, marker: Path) -> int:
    """The pid of the worker hanging mid-day, once it announced itself."""
    for _ in range(6000):
        if marker.exists() and marker.read_text():
            return int(marker.read_text())
        assert not task.done(), task
        await asyncio.sleep(0.02)
    raise AssertionError("no worker reached the faulty unit-day")


async def _hanging_after_the_day_before(gen: FactDataGenerator, marker: Path,
                                        committed: threading.Event
                                        ) -> tuple[asyncio.Future, int]:
    """Start the range; return its task and the hanging worker's pid once the day before the
    fault day is committed (so only the fault day is unfinished)."""
    task = asyncio.ensure_future(gen.generate_historical_data(START, END, validate=False))
    pid = await _when_hanging(task, marker)
    while not committed.is_set():
        await asyncio.sleep(0.02)
    return task, pid


def _rerun_equals_reference(folder: Path, reference: Hashes) -> None:
    continue_in_new_process(folder)
    assert hashes(folder) == reference


def test_a_killed_worker_fails_its_day_and_a_rerun_ends_identical(
        master_db: Path, reference_hashes: Hashes, tmp_path: Path) -> None:  # noqa: F811
    folder = fresh_folder(master_db, tmp_path)
    gen, marker = _faulty_generator(folder)
    committed = threading.Event()
    on_day(gen, "_write_day", BEFORE_FAULT, after=lambda *_: committed.set())

    async def drive() -> GenerationError:
        task, pid = await _hanging_after_the_day_before(gen, marker, committed)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(GenerationError) as raised:
            await task
        return raised.value

    try:
        error = asyncio.run(drive())
        assert error.day == FAULT_DAY and "worker process ended" in str(error), error
        check_target_whole_days(gen._target, BEFORE_FAULT)
        assert wait_until_ended(worker_pids(marker)) == set()
        assert _result_folders(os.getpid()) == []
    finally:
        gen.close()
    _rerun_equals_reference(folder, reference_hashes)


def test_an_exception_in_a_worker_names_the_day(master_db: Path,  # noqa: F811
                                                tmp_path: Path) -> None:
    folder = fresh_folder(master_db, tmp_path)
    gen, marker = _faulty_generator(folder, fault="raise")
    try:
        with pytest.raises(GenerationError, match=f"generating {FAULT_DAY} failed: "
                                                  "RuntimeError: injected") as raised:
            asyncio.run(gen.generate_historical_data(START, END, validate=False))
        assert raised.value.day == FAULT_DAY
        check_target_whole_days(gen._target, BEFORE_FAULT)
        assert wait_until_ended(worker_pids(marker)) == set()
    finally:
        gen.close()


def test_cancelling_ends_the_workers_and_keeps_whole_days(
        master_db: Path, reference_hashes: Hashes, tmp_path: Path) -> None:  # noqa: F811
    folder = fresh_folder(master_db, tmp_path)
    gen, marker = _faulty_generator(folder)
    committed = threading.Event()
    on_day(gen, "_write_day", BEFORE_FAULT, after=lambda *_: committed.set())

    async def drive() -> None:
        task, _ = await _hanging_after_the_day_before(gen, marker, committed)
        task.cancel()  # while only the workers are busy
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(drive())
        check_target_whole_days(gen._target, BEFORE_FAULT)
        assert wait_until_ended(worker_pids(marker)) == set()
        assert _result_folders(os.getpid()) == []
    finally:
        gen.close()
    _rerun_equals_reference(folder, reference_hashes)


_WRITER = textwrap.dedent("""
    import asyncio, sys, time
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from conftest import config_in
    from fault_fixtures import FAULT_DAY, START, END, inside_write
    from retail_datagen.generators.fact_generators import FactDataGenerator

    def hold():
        print("in-transaction", flush=True)
        time.sleep(120)

    if __name__ == "__main__":
        gen = FactDataGenerator(config_in(Path({folder!r}), performance={{"max_workers": 2}}))
        inside_write(gen, FAULT_DAY, hold)
        asyncio.run(gen.generate_historical_data(START, END, validate=False))
""")


def test_a_killed_writer_leaves_whole_days_and_no_worker(
        master_db: Path, reference_hashes: Hashes, tmp_path: Path) -> None:  # noqa: F811
    folder = fresh_folder(master_db, tmp_path)
    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(tests=str(TESTS), folder=str(folder)))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if line.strip() == "in-transaction":
                break
        below = descendants(child.pid)
        assert len(below) >= 2, below  # the fork server and the workers
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    assert wait_until_ended(below) == set()
    assert _result_folders(child.pid) == []  # the workers removed the writer's result files
    check_duckdb_whole_days(folder / "retail.duckdb", BEFORE_FAULT)
    _rerun_equals_reference(folder, reference_hashes)


def _result_folders(writer_pid: int) -> list[Path]:
    return sorted(result_folder_base().glob(f"retail-datagen-{writer_pid}-*"))
