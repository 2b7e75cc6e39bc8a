"""The local process pool of the lake (sharding.md §4): whole units in worker processes.

Units share nothing, so each task runs one whole unit over the range and writes its own files
(:func:`~retail_datagen.lake.runner.run_unit`); no day waits for another unit. Workers start
with the ``forkserver`` method (a fresh interpreter that preloads this module, so no open
connection or thread of the caller is inherited, and a worker costs a fork, not an import),
receive the pickled static inputs once, run per-store work on one thread, ignore SIGINT (the
caller ends them) and exit by themselves when the calling process dies, even by SIGKILL.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import date
from pathlib import Path

import pyarrow as pa

from retail_datagen.generators.fact_generators.process_pool import start_worker_process
from retail_datagen.generators.fact_generators.unit_day import StaticInputs

_static: StaticInputs | None = None


def _init_worker(static_pickle: bytes) -> None:
    global _static
    _static = start_worker_process(static_pickle)


def _run_unit(out: Path, unit: int, start: date, end: date) -> pa.Table:
    from retail_datagen.lake.runner import run_unit

    assert _static is not None, "worker started without its static inputs"
    return run_unit(_static, out, unit, start, end)


def _context() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "retail_datagen.lake.runner"])
    return context


def run_units_in_pool(static: StaticInputs, out: Path, units: list[int], start: date,
                      end: date, workers: int,
                      on_unit_done: Callable[[int, pa.Table], object] | None = None
                      ) -> list[pa.Table]:
    """Run every unit of ``units`` (in that order: largest first) in ``workers`` processes.

    Returns the manifests in ``units`` order; ``on_unit_done(unit, manifest)`` is called here
    as each unit ends. The first failure (or an interrupt) ends every worker and is raised.
    """
    static_pickle = pickle.dumps(static, protocol=pickle.HIGHEST_PROTOCOL)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(units)), mp_context=_context(),
                               initializer=_init_worker, initargs=(static_pickle,))
    try:
        futures = {pool.submit(_run_unit, out, unit, start, end): unit for unit in units}
        for future in as_completed(futures):
            manifest = future.result()
            if on_unit_done is not None:
                on_unit_done(futures[future], manifest)
        return [future.result() for future in futures]
    except BaseException:
        _terminate(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """End the workers now: a unit may run for hours, and whatever it leaves is either a
    complete file or a temporary one that the next run removes."""
    # The executor offers no public way to stop running tasks.
    for process in list((pool._processes or {}).values()):
        process.terminate()

__all__ = ["run_units_in_pool"]
