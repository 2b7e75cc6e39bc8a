"""The Spark executor (sharding.md §4, §5): the units of a lake run as Spark tasks.

The driver prepares the lake (``_metadata.json``, the dimensions and the static inputs, through
:func:`~retail_datagen.lake.prepare_lake`) before any task runs, broadcasts the static inputs
once and runs one job over P task slots: slot k runs the units ``units[k::P]`` (units are
listed largest first, so the largest units start first). Each unit runs through
:func:`~retail_datagen.lake.run_unit`, which writes that unit's files and state itself and
returns its manifest rows; the driver collects them. Tasks share nothing but the broadcast and
the folder, so which task runs a unit, how many run at once and how often one is retried
never change a byte: a retried task continues its units from their last complete day and
rewrites what it rewrites with the same bytes.

On a cluster, ``out`` must be a path that the driver and every executor see as the same
folder (a shared file system mounted at the same path on every node) and that supports an
atomic rename; the executors' Python needs ``retail_datagen`` installed.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen.errors import ConfigError, GenerationError
from retail_datagen.lake.runner import (
    MANIFEST_SCHEMA,
    LakeSummary,
    prepare_lake,
    prune_state,
    run_unit,
    summarize,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from retail_datagen.config.models import RetailConfig

log = logging.getLogger(__name__)

#: Test hook read by the task function: ``"<unit>:exit"`` makes the first attempt of the task
#: that runs that unit write the unit's first day, then end its Python worker at once;
#: ``"<unit>:hang"`` makes it wait there instead (until the job is killed).
FAULT_ENV = "RETAIL_DATAGEN_SPARK_FAULT"

#: The rows a task yields: the manifest rows of its units (sharding.md §4) and, per unit, one
#: row with a null ``table`` whose ``seconds`` and ``cpu_seconds`` are the unit's run time and
#: the CPU time its Python worker spent on it.
TASK_SCHEMA = pa.schema([
    ("table", pa.string()),
    ("date", pa.date32()),
    ("unit", pa.int16()),
    ("rows", pa.int64()),
    ("seconds", pa.float64()),
    ("cpu_seconds", pa.float64()),
])
_TASK_DDL = ("table string, date date, unit smallint, rows bigint, seconds double, "
             "cpu_seconds double")
_HANG_SECONDS = 600


@dataclass
class SparkLakeSummary(LakeSummary):
    """A :class:`~retail_datagen.lake.LakeSummary` with the Spark run's own figures.

    Attributes:
        unit_seconds: each unit's run time inside its task, in seconds (units that had
            nothing left to do included).
        unit_cpu_seconds: the CPU time each unit took (its Python worker's process time),
            which other load on the machine does not inflate.
        partitions: the number of task slots.
    """

    unit_seconds: dict[int, float] = field(default_factory=dict)
    unit_cpu_seconds: dict[int, float] = field(default_factory=dict)
    partitions: int = 0


def _fault_point(unit: int) -> str | None:
    """The test hook's action for ``unit`` in this attempt (None: run normally)."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return None
    target, _, action = spec.partition(":")
    from pyspark import TaskContext

    context = TaskContext.get()
    if int(target) != unit or context is None or context.attemptNumber() != 0:
        return None
    return action


def _task_rows(manifest: pa.Table, unit: int, seconds: float,
               cpu_seconds: float) -> pa.RecordBatch:
    """A unit's manifest rows and its timing row, in ``TASK_SCHEMA``."""
    n = manifest.num_rows + 1
    return pa.RecordBatch.from_arrays([
        pa.concat_arrays([manifest["table"].combine_chunks().cast(pa.string()),
                          pa.nulls(1, pa.string())]),
        pa.concat_arrays([manifest["date"].combine_chunks().cast(pa.date32()),
                          pa.nulls(1, pa.date32())]),
        pa.array([unit] * n, pa.int16()),
        pa.concat_arrays([manifest["rows"].combine_chunks().cast(pa.int64()),
                          pa.array([0], pa.int64())]),
        pa.array([seconds] * n, pa.float64()),
        pa.array([cpu_seconds] * n, pa.float64()),
    ], schema=TASK_SCHEMA)


_EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Invalid)\b[^:\s]*: ")


def _failure_line(exc: Exception) -> str:
    """The line of a failed job's message that names the cause: the task's own exception
    (the last line of a Python worker's traceback), else the first line."""
    lines = [line.strip().lstrip(": ") for line in str(exc).splitlines() if line.strip(" :\t")]
    causes = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return causes[-1] if causes else (lines[0] if lines else type(exc).__name__)


def _unit_task(static_broadcast: Any, out: str, start: date, end: date, units: list[int],
               slots: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function every task runs: slot k runs ``units[k::slots]``, one after the other."""

    def run_slots(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # The broadcast is loaded once per Python worker and kept there across tasks.
        static = static_broadcast.value
        for batch in batches:
            for slot in batch.column(0).to_pylist():
                for unit in units[slot::slots]:
                    began, cpu_began = time.perf_counter(), time.process_time()
                    action = _fault_point(unit)
                    if action is not None:
                        run_unit(static, Path(out), unit, start, start)
                        if action == "hang":
                            time.sleep(_HANG_SECONDS)
                        os._exit(17)
                    manifest = run_unit(static, Path(out), unit, start, end)
                    yield _task_rows(manifest, unit, time.perf_counter() - began,
                                     time.process_time() - cpu_began)

    return run_slots


def generate_lake_spark(spark: SparkSession, config: RetailConfig, out: str | Path,
                        start: date, end: date, *, partitions: int | None = None,
                        tables: list[str] | None = None, outbox: bool = False,
                        session: Any = None) -> SparkLakeSummary:
    """Generate ``start..end`` into the lake folder ``out`` with Spark tasks.

    Args:
        spark: a running SparkSession (``local[N]`` or a cluster; speculation off).
        config: the configuration; its DuckDB file holds the master data.
        out: the lake folder; on a cluster a path every node sees (see the module docstring).
        start, end: the range. Each unit continues from its own last complete day, so a run
            killed part-way is finished by running it again.
        partitions: the number of task slots (default: one per unit); 1 runs every unit in
            one task.
        tables: logical fact tables to generate (default all).
        outbox: also write outbox events.
        session: the database holding the master data (default: the config's DuckDB file);
            only the driver reads it.

    Returns:
        The manifest of the files written and each unit's run time.

    Raises:
        ConfigError: ``partitions`` below 1, ``out`` a URL, or a Spark Connect session.
        StateMismatchError: the folder holds a lake of another configuration or range start.
        GenerationError: a task failed beyond Spark's retries.
    """
    if partitions is not None and partitions < 1:
        raise ConfigError(f"partitions: must be >= 1 (got {partitions})")
    if "://" in str(out):
        raise ConfigError(f"out: {out} is a URL; the lake needs a file system path that the "
                          "driver and every executor share (e.g. a mounted volume)")
    try:
        context = spark.sparkContext
    except Exception as exc:  # Spark Connect sessions have no SparkContext
        raise ConfigError("the Spark executor needs a classic SparkSession with a SparkContext "
                          "(Spark Connect has no broadcast variables)") from exc
    began = time.perf_counter()
    # Tasks on other machines resolve the folder as the driver does. One core per task:
    # Spark runs the tasks side by side.
    plan = prepare_lake(config, Path(out).absolute(), start, end, tables=tables,
                        outbox=outbox, session=session, store_workers=1)
    slots = min(partitions or len(plan.units), len(plan.units))
    if context.getConf().get("spark.speculation", "false").lower() == "true":
        log.warning("spark.speculation is on: a speculative copy of a task writes the same "
                    "files again, which is safe but wasted work")
    static = context.broadcast(plan.static)
    try:
        context.setJobDescription(f"retail-datagen lake {plan.start}..{plan.end}, "
                                  f"{len(plan.units)} units in {slots} tasks")
        task = _unit_task(static, str(plan.out), plan.start, plan.end, plan.units, slots)
        try:
            rows = spark.range(0, slots, 1, slots).mapInArrow(task, _TASK_DDL).toArrow()
        except Exception as exc:  # py4j and PySpark raise their own types
            raise GenerationError(f"the Spark job failed: {_failure_line(exc)}") from exc
    finally:
        context.setJobDescription(None)
        static.destroy()
    timing = rows.filter(pc.is_null(rows["table"]))
    manifest = rows.filter(pc.is_valid(rows["table"])).select(list(MANIFEST_SCHEMA.names))
    manifest = manifest.cast(MANIFEST_SCHEMA).sort_by(
        [("table", "ascending"), ("date", "ascending"), ("unit", "ascending")])
    prune_state(plan.out)
    base = summarize(plan, manifest, time.perf_counter() - began)
    units = timing["unit"].to_pylist()
    unit_seconds = dict(sorted(zip(units, timing["seconds"].to_pylist(), strict=True)))
    unit_cpu = dict(sorted(zip(units, timing["cpu_seconds"].to_pylist(), strict=True)))
    return SparkLakeSummary(**vars(base), unit_seconds=unit_seconds, unit_cpu_seconds=unit_cpu,
                            partitions=slots)


def generate_lake_on(master: str, config: RetailConfig, out: str | Path, start: date,
                     end: date, *, partitions: int | None = None,
                     tables: list[str] | None = None, outbox: bool = False,
                     session: Any = None) -> SparkLakeSummary:
    """:func:`generate_lake_spark` in a session of its own on ``master`` (``local[N]`` or a
    cluster URL), stopped afterwards: the CLI's ``facts --engine spark``."""
    spark = spark_session(master)
    try:
        return generate_lake_spark(spark, config, out, start, end, partitions=partitions,
                                   tables=tables, outbox=outbox, session=session)
    finally:
        spark.stop()


def spark_session(master: str, *, app_name: str = "retail-datagen",
                  conf: dict[str, str] | None = None) -> SparkSession:
    """A SparkSession for the CLI and benchmarks: UI and speculation off, quiet logs.

    For a local master the Python workers run this interpreter (``PYSPARK_PYTHON``, unless set).
    """
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.speculation", "false"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


__all__ = ["FAULT_ENV", "SparkLakeSummary", "generate_lake_on", "generate_lake_spark",
           "spark_session"]
