"""The local process-pool executor (sharding.md §4): unit-days in worker processes, whole days
committed by one writer.

Design:

* **Processes.** ``performance.max_workers`` worker processes run :func:`generate_unit_day`;
  the calling process is the writer. Workers start with the ``forkserver`` method (the server
  is a fresh interpreter, so neither the writer's open DuckDB connection nor its threads are
  inherited) and preload this module, so a new worker costs a fork, not an import. Each
  worker reads the pickled :class:`StaticInputs` once (the pool's initializer, from a file
  of the result folder), runs
  per-store work on one thread (``store_workers = 1``) and ignores SIGINT: the writer decides
  when workers end and terminates them.
* **What crosses the process boundary.** Files in shared memory (``result_files``): a worker
  writes every batch, state row table and the outbox of a unit-day as Arrow IPC streams into
  one file, which the writer maps and reads zero-copy, and the unit's next state into a
  pickle file that the unit's next task reads. The pipe carries only names and byte spans.
* **Schedule.** Units are submitted largest first (``StaticInputs.units``). A unit submits
  day k + 1 as soon as its day k arrived, unless k + 1 lies more than one day ahead of the
  oldest uncommitted day; then it waits for the commit that allows it. So at most two days
  of results are held, whatever the range, and any unit-day may run in any worker: the data
  never depend on which worker ran what, or in which order. The writer takes a day in parts
  (``day_parts``): the unit-days that arrived so far, as soon as it is free, so it appends
  the largest unit's facts while the small units still run.
* **Faults.** A worker that raises or dies (BrokenProcessPool) fails its day: the caller gets
  :class:`GenerationError` naming the earliest day that cannot complete, after every earlier
  complete day was handed out. :meth:`ProcessPoolDays.close` (always called) terminates the
  workers, also on cancellation and KeyboardInterrupt, and a worker whose writer died
  (SIGKILL) exits by itself and removes the result files; nothing of an unfinished day is
  committed because the day's transaction ends only with the part that carries its state,
  handed out once all its unit-days arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from pathlib import Path

from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators.day_types import DayResult
from retail_datagen.generators.fact_generators.result_files import (
    ResultFile,
    make_result_folder,
    read_result,
    remove_result_folder,
    take_state,
    write_result,
)
from retail_datagen.generators.fact_generators.state import CarriedState
from retail_datagen.generators.fact_generators.unit_day import (
    StaticInputs,
    generate_unit_day,
    merge_unit_days,
    merge_unit_facts,
)
from retail_datagen.generators.fact_generators.units import split_state
from retail_datagen.generators.fact_generators.utils_mixin import release_free_memory

#: How much lower than the writer's the workers' scheduling priority is: the lowest, so that
#: a worker sharing a core with the writer takes about 1.5 % of it (10 would take 10 %).
_WORKER_NICENESS = 19

#: How long a terminated worker may take to exit before it is killed.
_TERMINATE_TIMEOUT_S = 5.0

# --- the worker side ------------------------------------------------------------------------

_static: StaticInputs | None = None
_result_folder: Path | None = None


def _exit_with_the_parent(result_folder: Path | None) -> None:
    """End this worker when the process that started it ends, however it ends (even SIGKILL):
    an idle worker would otherwise wait on the task queue forever. The pool's result folder
    goes with it: nobody else is left to remove it."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        if result_folder is not None:
            remove_result_folder(result_folder)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def start_worker_process(static_pickle: bytes, result_folder: Path | None = None
                         ) -> StaticInputs:
    """What every pool worker does first: leave SIGINT to its parent (Ctrl-C reaches the whole
    process group; the parent ends the workers), exit with the parent (removing
    ``result_folder``), and unpickle the static inputs once, with per-store work on one
    thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_the_parent(result_folder)
    static = pickle.loads(static_pickle)
    static.store_workers = 1
    return static


def _init_worker(static_file: Path, result_folder: Path) -> None:
    """Pool initializer: the static inputs, once per worker process, from the pickle file the
    writer left in the result folder. (As pickled bytes in the initializer's arguments they
    would stay in the writer and in every worker for the pool's lifetime.)"""
    global _static, _result_folder
    # The writer bounds the pipeline (DuckDB compresses every row on one thread): it gets
    # the CPU first, the workers whatever it leaves.
    os.nice(_WORKER_NICENESS)
    _static = start_worker_process(static_file.read_bytes(), result_folder)
    _result_folder = result_folder


def _run_unit_day(unit: int, day: date, state: CarriedState | str | None) -> ResultFile:
    """One unit-day in a worker, written to the pool's result folder."""
    assert _static is not None and _result_folder is not None, \
        "worker started without its static inputs"
    result = generate_unit_day(_static, unit, day, take_state(state))
    written = write_result(result, _result_folder, unit, day)
    del result
    release_free_memory()  # the unit-day's arrays are gone; keep the worker's size flat
    return written


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start workers without the caller's ``__main__``.

    Workers need nothing from it, but ``spawn`` and ``forkserver`` would run the calling
    script again in every new worker (``submit`` starts them), so a script without an
    ``if __name__ == "__main__":`` guard would generate recursively. Without ``__file__`` and
    ``__spec__`` multiprocessing leaves the main module out of a worker's preparation.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__")
             if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _pool_context() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    # Effective only before the fork server starts: later pools reuse it as it is.
    context.set_forkserver_preload([__name__])
    return context


def start_fork_server() -> None:
    """Start the fork server now, so that it imports the engine while the caller still loads
    the master data; the first pool then only forks. Returns at once."""
    _pool_context()
    multiprocessing.forkserver.ensure_running()


# --- the writer side ------------------------------------------------------------------------


class ProcessPoolDays:
    """Whole days of ``days`` from a pool of ``workers`` processes, in date order.

    Use as an async context manager; ``day_parts(i)`` hands out day ``days[i]`` as its
    unit-days arrive, and the caller reports each commit with ``committed(i)`` so that units
    may move on. Must be driven from one event loop thread.

    Args:
        static: the static inputs (the writer's own; workers get a pickled copy).
        workers: the number of worker processes (≥ 1).
        days: the days to generate, consecutive.
        state: the network state after the day before ``days[0]`` (None on the first day).
    """

    def __init__(self, static: StaticInputs, workers: int, days: list[date],
                 state: CarriedState | None) -> None:
        if workers < 1:
            raise ValueError(f"a process pool needs at least one worker, not {workers}")
        self._static, self._workers, self._days = static, workers, days
        self._units = static.units
        self._rank = {u: i for i, u in enumerate(self._units)}
        # A unit's state to start its next day with: the state itself (before the first day)
        # or the state file its last day wrote.
        self._states: dict[int, CarriedState | str | None] = (
            split_state(state, static.views, static.master.stores.dc_id)
            if state is not None else dict.fromkeys(self._units))
        self._arrived: dict[int, dict[int, DayResult]] = {}
        self._parked: dict[int, list[int]] = {}
        self._running: set[asyncio.Future] = set()
        self._committed = -1
        self._error: tuple[int, BaseException] | None = None
        self._changed: asyncio.Event | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._folder: Path | None = None

    async def __aenter__(self) -> ProcessPoolDays:
        self._changed = asyncio.Event()
        if not self._days:
            return self
        self._folder = make_result_folder()
        static_file = self._folder / "static.pickle"
        with static_file.open("wb") as sink:
            pickle.dump(self._static, sink, protocol=pickle.HIGHEST_PROTOCOL)
        release_free_memory()  # what loading the master data and building the inputs freed
        self._pool = ProcessPoolExecutor(self._workers, mp_context=_pool_context(),
                                         initializer=_init_worker,
                                         initargs=(static_file, self._folder))
        for unit in self._units:
            self._submit(unit, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- scheduling ------------------------------------------------------------------------
    def _submit(self, unit: int, index: int) -> None:
        # Days before a failed one may still complete and be committed.
        if self._pool is None or (self._error is not None and self._error[0] <= index):
            return
        try:
            with _main_module_hidden():
                future: Future = self._pool.submit(_run_unit_day, unit, self._days[index],
                                                   self._states[unit])
        except BrokenProcessPool as exc:
            self._fail(index, exc)
            return
        except Exception as exc:  # submit starts workers; one that cannot start breaks it
            broken = BrokenProcessPool(f"could not start a worker process: {exc!r}")
            broken.__cause__ = exc
            self._fail(index, broken)
            return
        waiter = asyncio.wrap_future(future)
        self._running.add(waiter)
        waiter.add_done_callback(lambda done: self._arrive(unit, index, done))

    def _arrive(self, unit: int, index: int, done: asyncio.Future) -> None:
        self._running.discard(done)
        self._changed.set()
        if done.cancelled() or self._pool is None:  # closed: nothing more is scheduled
            return
        error = done.exception()
        if error is not None:
            self._fail(index, error)
            return
        written = done.result()
        try:
            result = read_result(written)
        except Exception as exc:  # an unreadable result fails the day like a worker error
            self._fail(index, exc)
            return
        self._arrived.setdefault(index, {})[unit] = result
        self._states[unit] = written.state_path
        following = index + 1
        if following >= len(self._days):
            return
        if following <= self._committed + 2:
            self._submit(unit, following)
        else:
            self._parked.setdefault(following, []).append(unit)

    def _fail(self, index: int, error: BaseException) -> None:
        if self._error is None or index < self._error[0]:
            self._error = (index, error)
        self._changed.set()

    def committed(self, index: int) -> None:
        """Day ``days[index]`` is committed: units waiting for it may start the day after."""
        self._committed = index
        for unit in sorted(self._parked.pop(index + 2, []), key=self._rank.__getitem__):
            self._submit(unit, index + 2)

    # -- handing out days ------------------------------------------------------------------
    async def day_parts(self, index: int) -> AsyncIterator[DayResult]:
        """Day ``days[index]`` in parts as its unit-days arrive, so that the writer starts on
        a day before its last unit is done: each part holds the facts of the unit-days that
        came since the part before (in unit order); the last part holds no facts but the
        whole day's state.

        Raises:
            GenerationError: a unit-day of this day (or of an earlier one) failed, or a
                worker died; the pool is shut down.
        """
        units = len(self._units)
        done: dict[int, DayResult] = {}  # unit -> its state, once its facts were handed out
        merged_state: asyncio.Future | None = None
        while len(done) < units:
            arrived = self._arrived.get(index, {})
            if arrived:
                fresh = {unit: arrived.pop(unit) for unit in sorted(arrived)}
                for unit, result in fresh.items():
                    done[unit] = DayResult({}, result.state, result.state_writes, None)
                if len(done) == units:
                    # The day's state is merged while the writer appends these last facts.
                    merged_state = asyncio.ensure_future(
                        asyncio.to_thread(merge_unit_days, self._static, done))
                try:
                    yield merge_unit_facts(fresh)
                except BaseException:  # the day is abandoned: nobody wants its state
                    if merged_state is not None:
                        merged_state.cancel()
                    raise
                continue
            if self._error is not None and self._error[0] <= index:
                failed_index, error = self._error
                self.close()
                raise self._generation_error(self._days[failed_index], error) from error
            if not self._running:  # every missing unit-day of this day runs or has failed
                self.close()
                raise GenerationError(f"generating {self._days[index]} failed: the pool has "
                                      "no unit-day of it left to run", day=self._days[index])
            self._changed.clear()
            await self._changed.wait()
        self._arrived.pop(index, None)
        assert merged_state is not None, "the loop ends once every unit-day is merged"
        yield await merged_state

    @staticmethod
    def _generation_error(day: date, error: BaseException) -> GenerationError:
        if isinstance(error, BrokenProcessPool):
            cause = ("a worker process ended abruptly (killed or out of memory), or could "
                     "not start")
        else:
            cause = f"{type(error).__name__}: {error}"
        return GenerationError(f"generating {day} failed: {cause}", day=day)

    def close(self) -> None:
        """Stop the pool: pending unit-days are dropped and every worker is ended."""
        pool, self._pool = self._pool, None
        for waiter in list(self._running):
            waiter.cancel()
        self._running.clear()
        if pool is None:
            return
        processes = list((pool._processes or {}).values())  # no public way to end workers
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(_TERMINATE_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()
        if self._folder is not None:
            remove_result_folder(self._folder)


__all__ = ["ProcessPoolDays", "start_fork_server", "start_worker_process"]
