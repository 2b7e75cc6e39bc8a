"""FactDataGenerator: the daily simulation, composed from one mixin per domain.

The daily pipeline is :class:`~.simulation.DaySimulation`, run per unit-day
(``unit_day.generate_unit_day``). An executor produces whole days: by default the local process
pool (``process_pool.ProcessPoolDays``, ``performance.max_workers`` processes), or
:class:`InProcessDays` (``run_by_units``; or the whole network at once, the reference). This
process is the one writer: ``_write_day`` commits each day in one transaction, appending its
facts and outbox as the executor hands out its unit-days (``day_parts``), then its state and
watermark, while the executor generates the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from retail_datagen.config.models import RetailConfig
from retail_datagen.db import schema
from retail_datagen.db.target import Target, open_target
from retail_datagen.errors import (
    DateRangeError,
    GenerationError,
    StateMismatchError,
)
from retail_datagen.generators.fact_generators.data_loading_mixin import DataLoadingMixin
from retail_datagen.generators.fact_generators.day_types import (
    DayResult,
    config_metadata_rows,
)
from retail_datagen.generators.fact_generators.models import FactGenerationSummary
from retail_datagen.generators.fact_generators.persistence_mixin import (
    PersistenceMixin,
    _Cancelled,
)
from retail_datagen.generators.fact_generators.process_pool import (
    ProcessPoolDays,
    start_fork_server,
)
from retail_datagen.generators.fact_generators.progress import HourlyProgressTracker
from retail_datagen.generators.fact_generators.progress_reporting_mixin import (
    ProgressReportingMixin,
    init_progress_state,
)
from retail_datagen.generators.fact_generators.seasonal_mixin import (
    product_keyword_groups,
)
from retail_datagen.generators.fact_generators.simulation import DaySimulation
from retail_datagen.generators.fact_generators.state import (
    CarriedState,
    state_from_tables,
)
from retail_datagen.generators.fact_generators.unit_day import StaticInputs, generate_day
from retail_datagen.generators.fact_generators.utils_mixin import (
    release_free_memory,
    resolve_fact_tables,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)

#: The executors of ``FactDataGenerator.set_executor``.
EXECUTORS = ("pool", "in-process", "network")


class InProcessDays:
    """Days generated in this process, each one day ahead of the writer: day d + 1 is
    generated on a thread while day d is written (generation needs only d's state).

    The same protocol as ``process_pool.ProcessPoolDays``: ``day_parts(i)``, then
    ``committed(i)`` once written; here a day is one part, facts and state together.
    """

    def __init__(self, generate: Any, days: list[date], state: CarriedState | None) -> None:
        self._generate, self._days, self._state = generate, days, state
        self._upcoming: asyncio.Future | None = None

    async def __aenter__(self) -> InProcessDays:
        if self._days:
            self._upcoming = asyncio.ensure_future(self._generate(self._days[0], self._state))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._upcoming is not None and not self._upcoming.done():
            self._upcoming.cancel()

    async def day_parts(self, index: int) -> AsyncIterator[DayResult]:
        result = await self._upcoming
        following = index + 1
        self._upcoming = (asyncio.ensure_future(self._generate(self._days[following],
                                                               result.state))
                          if following < len(self._days) else None)
        yield result

    def committed(self, index: int) -> None:
        """Nothing waits for commits here: generation is always one day ahead."""


def _as_date(value: date | datetime) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.date()
    return value


class FactDataGenerator(
    DataLoadingMixin,
    PersistenceMixin,
    ProgressReportingMixin,
    DaySimulation,
):
    """Generates every fact table day by day into a database.

    The daily pipeline itself is :class:`~.simulation.DaySimulation`; this class loads the
    inputs, plans the range, has an executor (``set_executor``) run the unit-days of each day
    and commits whole days.

    Attributes:
        config: the :class:`~retail_datagen.config.models.RetailConfig` given.
        _seed: ``config.seed``; every stream is keyed by it.
        _target: the open database (:class:`~retail_datagen.db.target.Target`).
        _master: :class:`~.data_loading_mixin.MasterData`, set by ``load_master_data``.
        _pools: :class:`~.data_loading_mixin.StorePools`, set by ``load_master_data``.
        _keyword_groups: bool (n_products, n_groups), the holiday keyword matches of every
            product (``seasonal_mixin.product_keyword_groups``), set at load.
        _state: :class:`~.state.CarriedState` after the last committed day (None until the
            first day or after ``reset_facts``); mirrored in the ``gen_state_*`` tables.
        _state_last_day: the day ``_state`` belongs to; both change together, at a commit.
        _executor: ``"pool"`` (default), ``"in-process"`` or ``"network"`` (``set_executor``).
        _included_tables: logical names written (``set_included_tables``).
        _publish_outbox: whether the current call writes outbox events (and builds TraceId).
        _tables_created: whether the fact and state tables exist (persistence).
        progress attributes: created by ``init_progress_state`` (progress_reporting_mixin).
    """

    FACT_TABLES: ClassVar[tuple[str, ...]] = schema.FACT_TABLES
    FACT_TABLE_DB_NAMES: ClassVar[dict[str, str]] = dict(schema.FACT_TABLE_DB_NAMES)
    REORDER_PRIORITY_URGENT_THRESHOLD: ClassVar[float] = 50.0
    REORDER_PRIORITY_HIGH_THRESHOLD: ClassVar[float] = 25.0
    MIN_UNLOAD_DURATION_MINUTES: ClassVar[int] = 30
    BASE_DECLINE_RATE: ClassVar[float] = 0.025

    def __init__(self, config: RetailConfig, session: Any = None) -> None:
        self.config = config
        self._seed = config.seed
        self._target: Target = open_target(session, config.paths.duckdb)
        self._target.check_schema()
        # One worker of the budget writes day d while the others generate day d + 1.
        self._store_workers = max(1, config.performance.get_max_workers() - 1)
        self._target.set_threads(self._store_workers)
        if self._target.dialect == "duckdb":
            # DuckDB's cache of written blocks would otherwise grow with the database; the
            # engine never reads facts back, so a fixed budget keeps memory flat over a year.
            # A day's transaction must still fit: about 1 MB per store (15,000 rows a day),
            # and at least 384 MB, below which the starter network's days spill their
            # uncommitted rows to temporary files (8-15 % slower).
            limit_mb = max(384, config.volume.stores)
            self._target.execute(f"SET memory_limit = '{limit_mb}MB'")
            # Facts are read back by key (every reader orders explicitly), never by
            # position, so DuckDB may append without keeping the batch order.
            self._target.execute("SET preserve_insertion_order = false")
            # A checkpoint's cost grows with the database, so checkpointing at every daily
            # commit (DuckDB's default of 16 MB of WAL) made the twelfth starter day's commit
            # three times the first's. Days commit to the WAL and checkpoint about weekly
            # (on the starter network), and each call ends with a checkpoint
            # (``generate_historical_data``).
            self._target.execute("SET checkpoint_threshold = '256MB'")
        self._master = None
        self._pools = None
        self._keyword_groups = None
        # The unit being generated: None for the whole network at once, else the unit whose
        # view ``_master`` and ``_pools`` hold (units.py).
        self._unit: int | None = None
        self._executor = "pool"
        self._static: StaticInputs | None = None  # the unit executors' inputs, when used
        self._network_stores: int | None = None
        self._state: CarriedState | None = None
        self._state_last_day: date | None = None
        self._included_tables: set[str] = set(self.FACT_TABLES)
        self._publish_outbox = False
        self._tables_created = False
        init_progress_state(self)

    def close(self) -> None:
        """Close the database connection if this generator opened it."""
        self._target.close()

    # -- public API --------------------------------------------------------------------
    def set_included_tables(self, tables: Iterable[str] | None) -> None:
        """Write only these fact tables (logical or DB names); None or empty means all.

        Raises:
            UnknownTableError: a name is not a fact table; the message lists the valid names.
        """
        self._included_tables = resolve_fact_tables(tables)

    def set_executor(self, executor: str) -> None:
        """Choose how unit-days run; the data are identical with every executor.

        ``"pool"`` (the default): ``performance.max_workers`` worker processes generate
        unit-days while this process commits whole days (``process_pool``).
        ``"in-process"``: every unit-day in this process, one day ahead of the writer's
        thread; for debugging and notebooks. ``"network"``: the whole network as one
        computation per day, the reference the unit executors are tested against.

        Raises:
            ValueError: an unknown executor name.
        """
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
        self._executor = executor

    def run_by_units(self, enabled: bool = True) -> None:
        """Run every unit-day in this process (the in-process executor) instead of the
        process pool; ``enabled=False`` returns to the pool."""
        self.set_executor("in-process" if enabled else "pool")

    def static_inputs(self) -> StaticInputs:
        """The inputs every unit-day reads (``unit_day.StaticInputs``) for the current tables
        and outbox choice; built once per loaded master data."""
        if self._master is None:
            self.load_master_data()
        static = self._static
        if (static is None or static.included_tables != frozenset(self._included_tables)
                or static.publish_outbox != self._publish_outbox):
            static = StaticInputs.build(
                self.config, self._master, self._pools, included_tables=self._included_tables,
                publish_outbox=self._publish_outbox, store_workers=self._store_workers)
            self._static = static
        return static

    def get_generation_summary(self, summary: FactGenerationSummary) -> dict[str, Any]:
        """A JSON-friendly summary of a generation call (api.md §4.3)."""
        start, end = summary.date_range
        master = self._master
        vol = self.config.volume
        days = (end.date() - start.date()).days + 1
        return {
            "date_range": {"start": start.isoformat(), "end": end.isoformat(), "days": days},
            "facts_generated": dict(summary.facts_generated),
            "total_records": summary.total_records,
            "partitions_created": summary.partitions_created,
            "generation_time_seconds": summary.generation_time_seconds,
            "records_per_second": (summary.total_records / summary.generation_time_seconds
                                   if summary.generation_time_seconds else 0.0),
            "validation_results": summary.validation_results,
            "config": {
                "seed": self._seed,
                "stores": len(master.stores.store_id) if master else vol.stores,
                "customers": len(master.customers.customer_id) if master else
                vol.total_customers,
                "products": len(master.products.product_id) if master else vol.total_products,
                "customers_per_day": vol.customers_per_day,
                "items_per_ticket_mean": vol.items_per_ticket_mean,
            },
        }

    def load_master_data(self) -> None:  # noqa: D102 - documented in DataLoadingMixin
        super().load_master_data()
        self._keyword_groups = product_keyword_groups(self._master.products)
        self._network_stores = len(self._master.stores.store_id)
        self._static = None

    async def generate_historical_data(
        self, start_date: date | datetime, end_date: date | datetime, *,
        publish_to_outbox: bool = False, validate: bool = True,
    ) -> FactGenerationSummary:
        """Generate and write every day of ``start_date..end_date`` (inclusive).

        Each day is one transaction; a later call continues the series. See api.md §4.4.

        Raises:
            DateRangeError: ``end < start`` or a range not contiguous with the watermark.
            StateMismatchError: master data or state belong to another configuration.
            MasterDataMissingError: the dimension tables are missing.
            GenerationError: a day failed (it was rolled back; earlier days remain).
        """
        started = time.monotonic()
        start, end = _as_date(start_date), _as_date(end_date)
        if end < start:
            raise DateRangeError(f"end date {end} is before start date {start}")
        if self._executor == "pool":
            start_fork_server()
        self._reset_progress_reporting()
        self._send_throttled_progress_update(0, "Preparing historical data generation",
                                             force=True, progress=0.0)
        if self._master is None:
            self.load_master_data()
        days, skipped, state = self._plan_range(start, end)
        self._publish_outbox = publish_to_outbox
        counts = {name: 0 for name in self.FACT_TABLES}
        partitions: set[tuple[str, date]] = set()
        outbox_events = 0
        tracker = HourlyProgressTracker(sorted(self._included_tables))
        async with self._day_source(days, state) as source:
            for number, day in enumerate(days, start=1):
                self._send_throttled_progress_update(
                    number, f"Generating {day} (day {number}/{len(days)})",
                    progress=(number - 1) / len(days), table_counts=dict(counts))
                written, events = await self._write_result(day, source.day_parts(number - 1))
                source.committed(number - 1)
                outbox_events += events
                release_free_memory()
                for name, rows in written.items():
                    counts[name] += rows
                    if rows:
                        partitions.add((name, day))
                for table in self._included_tables:
                    for hour in range(24):
                        tracker.update_hourly_progress(table, number, hour, len(days))
                hourly = tracker.get_current_progress()
                self._send_throttled_progress_update(
                    number,
                    f"Generated {day} (day {number}/{len(days)}) "
                    f"({len(self._included_tables)}/{len(self._included_tables)} "
                    "tables complete)",
                    force=number == len(days), progress=number / len(days),
                    table_counts=dict(counts), hourly_progress=hourly["per_table_progress"],
                    current_hour=23, total_hours_completed=number * 24)
        if days and self._target.dialect == "duckdb":
            # The call's days leave the WAL for the file: a reader opening it does not have
            # to replay them, and the next call starts with an empty WAL. The workers are
            # done, so the checkpoint compresses on all of their cores.
            self._target.set_threads(self.config.performance.get_max_workers())
            try:
                self._target.execute("CHECKPOINT")
            finally:
                self._target.set_threads(self._store_workers)
        validation: dict[str, Any] = {"skipped": True}
        if validate and days:
            from retail_datagen.validation.invariants import run_invariants

            validation = run_invariants(self._target.raw, start, end).to_dict()
        self._send_throttled_progress_update(len(days), "Historical generation complete",
                                             force=True, progress=1.0)
        total = sum(counts.values())
        return FactGenerationSummary(
            date_range=(datetime.combine(start, datetime.min.time()),
                        datetime.combine(end, datetime.min.time())),
            facts_generated=counts,
            total_records=total,
            validation_results=validation,
            generation_time_seconds=time.monotonic() - started,
            partitions_created=len(partitions),
            days_generated=len(days),
            days_skipped=skipped,
            outbox_events=outbox_events,
        )

    # -- range planning and the per-day loop ----------------------------------------------
    def _plan_range(self, start: date, end: date) -> tuple[list[date], int, CarriedState | None]:
        meta = self._read_metadata()
        fingerprint = self.config.fingerprint()
        version = meta.get("schema_version")
        if version is not None and version != schema.SCHEMA_VERSION:
            # Even master data alone: version 2 homes every truck at a DC.
            raise StateMismatchError(
                f"this database was written by schema version {version!r}, not "
                f"{schema.SCHEMA_VERSION!r}; regenerate it with 'retail-datagen master --force'")
        if meta.get("master_generated_for") != fingerprint:
            raise StateMismatchError(
                "master data was generated for another configuration or data files; "
                "regenerate it with 'retail-datagen master --force'")
        watermark = self._read_watermark()
        if watermark is None:
            return [start + timedelta(days=i) for i in range((end - start).days + 1)], 0, None
        first_day, last_day = watermark
        if meta.get("config_fingerprint") != fingerprint:
            raise StateMismatchError(
                "the facts in this database were generated with another configuration; "
                "use reset_facts() (CLI: --reset) or the original config")
        next_day = last_day + timedelta(days=1)
        if start < first_day or (end > last_day and start > next_day):
            raise DateRangeError(
                f"range {start}..{end} is not contiguous with the generated range "
                f"{first_day}..{last_day}; next day is {next_day}")
        skipped = (min(end, last_day) - start).days + 1 if start <= last_day else 0
        begin = max(start, next_day)
        days = [begin + timedelta(days=i) for i in range((end - begin).days + 1)]
        state = self._state if self._state_last_day == last_day else None
        if days and state is None:
            state = self._load_state(first_day)
        return days, max(skipped, 0), state

    def _load_state(self, first_day: date) -> CarriedState:
        master = self._master
        return state_from_tables(first_day, self._read_generator_tables(),
                                 len(master.stores.store_id), len(master.dcs.dc_id),
                                 len(master.products.product_id), master.trucks.truck_id)

    def _day_source(self, days: list[date], state: CarriedState | None
                    ) -> ProcessPoolDays | InProcessDays:
        """The days of ``days`` from the chosen executor (``set_executor``)."""
        if self._executor == "pool":
            return ProcessPoolDays(self.static_inputs(), self.config.performance.get_max_workers(),
                                   days, state)
        return InProcessDays(self._generate, days, state)

    def _generate_day(self, day: date, carried: CarriedState | None) -> DayResult:
        """One day of the whole network in this process: unit by unit (the in-process
        executor), or all units at once (the ``network`` reference executor)."""
        if self._executor == "network":
            return DaySimulation._generate_day(self, day, carried)
        return generate_day(self.static_inputs(), day, carried)

    async def _generate(self, day: date, state: CarriedState | None) -> DayResult:
        try:
            return await asyncio.to_thread(self._generate_day, day, state)
        except Exception as exc:
            raise GenerationError(f"generating {day} failed: {exc}", day=day) from exc

    async def _write_result(self, day: date, parts: AsyncIterator[DayResult]
                            ) -> tuple[dict[str, int], int]:
        """Commit one day from its parts as the executor hands them out; a failure of the
        executor or a cancellation before COMMIT rolls the day back.

        Returns the rows written per logical table and the outbox events. The in-memory
        state and its day move together, at the commit only, so whatever ends a call, the
        next one continues from the state of the last committed day.
        """
        cancelled = threading.Event()
        feed: queue.SimpleQueue[DayResult | None] = queue.SimpleQueue()
        # A part is taken from the executor only when the writer asks for one, so that the
        # unit-days that arrive while it writes make one part (fewer, larger appends).
        wanted = asyncio.Event()
        loop = asyncio.get_running_loop()
        write = asyncio.ensure_future(asyncio.to_thread(
            self._write_day, day, _fed_parts(feed, lambda: loop.call_soon_threadsafe(wanted.set)),
            cancelled))
        write.add_done_callback(lambda _: wanted.set())
        awake = asyncio.ensure_future(_keep_awake_while(write))
        state: CarriedState | None = None
        events = 0
        try:
            try:
                async with contextlib.aclosing(parts):
                    while not write.done():
                        await wanted.wait()
                        wanted.clear()
                        part = await anext(parts, None)
                        if part is None:
                            break
                        feed.put(part)
                        events += part.outbox.num_rows if part.outbox is not None else 0
                        state = part.state if part.state is not None else state
            except BaseException:
                cancelled.set()  # the day is abandoned: the write rolls back
                raise
            finally:
                feed.put(None)
            written = await asyncio.shield(write)
        except BaseException as exc:
            cancelled.set()
            awake.cancel()
            # The write thread uses this object's connection until it ends: however often the
            # caller cancels, return only then, so no transaction outlives the call.
            while not write.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([write])
            error = None if write.cancelled() else write.exception()
            if error is None and not write.cancelled():  # committed before it saw the end
                self._state, self._state_last_day = state, day
            if error is not None and not isinstance(error, _Cancelled) and (
                    error is exc or isinstance(exc, asyncio.CancelledError)):
                raise GenerationError(f"writing {day} failed: {error}", day=day) from error
            raise
        awake.cancel()
        self._state, self._state_last_day = state, day
        return written, events


async def _keep_awake_while(write: asyncio.Future) -> None:
    """Wake the event loop every 0.1 s until ``write`` ends.

    A SIGINT that the kernel delivers to the write thread (the usual case when that thread
    sends it) runs its Python handler, which cancels the call, only once the main thread runs
    again; an idle loop waiting for the write would not, and the write would never see the
    cancellation it waits for.
    """
    while not write.done():
        await asyncio.sleep(0.1)


def _fed_parts(feed: queue.SimpleQueue, want: Callable[[], object]) -> Iterator[DayResult]:
    """The parts put on ``feed`` until None, each asked for with ``want()`` (on the write
    thread)."""
    while True:
        want()
        part = feed.get()
        if part is None:
            return
        yield part


__all__ = ["FactDataGenerator", "config_metadata_rows"]
