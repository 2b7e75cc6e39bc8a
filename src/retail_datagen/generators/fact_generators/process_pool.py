"""The local process-pool executor (sharding.md §4): unit-days in worker processes, whole days
committed by one writer.

Design:

* **Processes.** ``performance.max_workers`` worker processes run :func:`generate_unit_day`;
  the calling process is the writer. Workers start with the ``forkserver`` method (the server
  is a fresh interpreter, so neither the writer's open DuckDB connection nor its threads are
  inherited) and preload this module, so a new worker costs a fork, not an import. Each
  worker receives the pickled :class:`StaticInputs` once (the pool's initializer), runs
  per-store work on one thread (``store_workers = 1``) and ignores SIGINT: the writer decides
  when workers end and terminates them.
* **What crosses the process boundary.** A task carries (unit, day, the unit's state after the
  day before); the state is numpy arrays and Arrow tables, pickled whole. A result returns
  every batch, state row table and the outbox as Arrow IPC stream buffers
  (:func:`encode_result`), never Python rows, plus the unit's next state.
* **Schedule.** Units are submitted largest first (``StaticInputs.units``). A unit submits
  day k + 1 as soon as its day k arrived, unless k + 1 lies more than one day ahead of the
  oldest uncommitted day; then it waits for the commit that allows it. So at most two days
  of results are held, whatever the range, and any unit-day may run in any worker: the data
  never depend on which worker ran what, or in which order.
* **Faults.** A worker that raises or dies (BrokenProcessPool) fails its day: the caller gets
  :class:`GenerationError` naming the earliest day that cannot complete, after every earlier
  complete day was handed out. :meth:`ProcessPoolDays.close` (always called) terminates the
  workers, also on cancellation and KeyboardInterrupt, and a worker whose writer died
  (SIGKILL) exits by itself; nothing of an unfinished day is
  written because a day is handed to the writer only once all its unit-days arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields
from datetime import date
from typing import Any

import pyarrow as pa

from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators.day_types import DayResult
from retail_datagen.generators.fact_generators.persistence_mixin import StateWrites
from retail_datagen.generators.fact_generators.state import CarriedState
from retail_datagen.generators.fact_generators.unit_day import (
    StaticInputs,
    generate_unit_day,
    merge_unit_days,
)
from retail_datagen.generators.fact_generators.units import split_state
from retail_datagen.generators.fact_generators.utils_mixin import release_free_memory

#: How long a terminated worker may take to exit before it is killed.
_TERMINATE_TIMEOUT_S = 5.0

# --- Arrow IPC encoding ---------------------------------------------------------------------


def table_to_ipc(table: pa.Table) -> bytes:
    """One Arrow IPC stream holding ``table`` (schema and metadata included)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def ipc_to_table(data: bytes) -> pa.Table:
    """The table of :func:`table_to_ipc` (zero-copy over ``data``)."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def _encode_optional(table: pa.Table | None) -> bytes | None:
    return None if table is None else table_to_ipc(table)


def _decode_optional(data: bytes | None) -> pa.Table | None:
    return None if data is None else ipc_to_table(data)


def encode_result(result: DayResult) -> dict[str, Any]:
    """A unit-day's result for the trip to the writer: every table as Arrow IPC bytes.

    The unit's next state stays a :class:`CarriedState` (arrays, not rows).
    """
    writes = {f.name: getattr(result.state_writes, f.name) for f in fields(StateWrites)}
    return {
        "batches": {name: [table_to_ipc(t) for t in parts]
                    for name, parts in result.batches.items()},
        "writes": {name: (_encode_optional(value) if value is None
                          or isinstance(value, pa.Table) else value)
                   for name, value in writes.items()},
        "outbox": _encode_optional(result.outbox),
        "state": result.state,
    }


def decode_result(payload: dict[str, Any]) -> DayResult:
    """The :class:`DayResult` of :func:`encode_result`."""
    writes = {name: ipc_to_table(value) if isinstance(value, bytes) else value
              for name, value in payload["writes"].items()}
    return DayResult(
        batches={name: [ipc_to_table(b) for b in parts]
                 for name, parts in payload["batches"].items()},
        state=payload["state"],
        state_writes=StateWrites(**writes),
        outbox=_decode_optional(payload["outbox"]),
    )


# --- the worker side ------------------------------------------------------------------------

_static: StaticInputs | None = None


def _exit_with_the_parent() -> None:
    """End this worker when the process that started it ends, however it ends (even SIGKILL):
    an idle worker would otherwise wait on the task queue forever."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def start_worker_process(static_pickle: bytes) -> StaticInputs:
    """What every pool worker does first: leave SIGINT to its parent (Ctrl-C reaches the whole
    process group; the parent ends the workers), exit with the parent, and unpickle the
    static inputs once, with per-store work on one thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_the_parent()
    static = pickle.loads(static_pickle)
    static.store_workers = 1
    return static


def _init_worker(static_pickle: bytes) -> None:
    """Pool initializer: the static inputs, once per worker process."""
    global _static
    _static = start_worker_process(static_pickle)


def _run_unit_day(unit: int, day: date, state: CarriedState | None) -> dict[str, Any]:
    """One unit-day in a worker, encoded for the writer."""
    assert _static is not None, "worker started without its static inputs"
    payload = encode_result(generate_unit_day(_static, unit, day, state))
    release_free_memory()  # the unit-day's arrays are gone; keep the worker's size flat
    return payload


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


# --- the writer side ------------------------------------------------------------------------


class ProcessPoolDays:
    """Whole days of ``days`` from a pool of ``workers`` processes, in date order.

    Use as an async context manager; ``await next_day(i)`` returns day ``days[i]`` merged
    (``merge_unit_days``), and the caller reports each commit with ``committed(i)`` so that
    units may move on. Must be driven from one event loop thread.

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
        self._states: dict[int, CarriedState | None] = (
            split_state(state, static.views, static.master.stores.dc_id)
            if state is not None else dict.fromkeys(self._units))
        self._arrived: dict[int, dict[int, DayResult]] = {}
        self._parked: dict[int, list[int]] = {}
        self._running: set[asyncio.Future] = set()
        self._committed = -1
        self._error: tuple[int, BaseException] | None = None
        self._changed: asyncio.Event | None = None
        self._pool: ProcessPoolExecutor | None = None

    async def __aenter__(self) -> ProcessPoolDays:
        self._changed = asyncio.Event()
        if not self._days:
            return self
        static_pickle = pickle.dumps(self._static, protocol=pickle.HIGHEST_PROTOCOL)
        self._pool = ProcessPoolExecutor(self._workers, mp_context=_pool_context(),
                                         initializer=_init_worker, initargs=(static_pickle,))
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
        try:
            result = decode_result(done.result())
        except Exception as exc:  # a malformed payload fails the day like a worker error
            self._fail(index, exc)
            return
        self._arrived.setdefault(index, {})[unit] = result
        self._states[unit] = result.state
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
    async def next_day(self, index: int) -> DayResult:
        """Day ``days[index]``, once all its unit-days arrived, merged into one result.

        Raises:
            GenerationError: a unit-day of this day (or of an earlier one) failed, or a
                worker died; the pool is shut down.
        """
        units = len(self._units)
        while len(self._arrived.get(index, ())) < units:
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
        results = self._arrived.pop(index)
        return await asyncio.to_thread(merge_unit_days, self._static, results)

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


__all__ = [
    "ProcessPoolDays",
    "decode_result",
    "encode_result",
    "ipc_to_table",
    "start_worker_process",
    "table_to_ipc",
]
