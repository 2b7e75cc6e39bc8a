"""Writing a lake: plan once, then run each unit over the range (sharding.md §4–§5).

:func:`prepare_lake` checks or writes ``_metadata.json``, writes the dimensions and builds the
static inputs; :func:`run_unit` runs one unit from its own last complete day through the end
of the range, writing its table files and its state after each day. Units share nothing but
the static inputs, so any executor may run them anywhere: :func:`generate_lake` runs them in
this process or in a local process pool, the Spark executor in its tasks.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from retail_datagen.config.models import RetailConfig
from retail_datagen.db import schema
from retail_datagen.db.contract import map_batch
from retail_datagen.errors import DateRangeError, GenerationError, StateMismatchError
from retail_datagen.generators.fact_generators.data_loading_mixin import MasterData, StorePools
from retail_datagen.generators.fact_generators.day_types import DayResult
from retail_datagen.generators.fact_generators.unit_day import StaticInputs, generate_unit_day
from retail_datagen.generators.fact_generators.units import unit_order
from retail_datagen.generators.fact_generators.utils_mixin import resolve_fact_tables
from retail_datagen.lake.layout import (
    dim_file,
    lake_units,
    last_complete_day,
    stale_state_dirs,
    table_file,
)
from retail_datagen.lake.metadata import (
    check_metadata,
    first_day_of,
    lake_metadata,
    read_metadata,
    write_metadata,
)
from retail_datagen.lake.state_files import read_unit_state, write_unit_state
from retail_datagen.lake.writer import remove_temporary_files, write_parquet

#: One row per file a unit wrote: its table (database name), day, unit and row count.
MANIFEST_SCHEMA = pa.schema([
    pa.field("table", pa.string(), nullable=False),
    pa.field("date", pa.date32(), nullable=False),
    pa.field("unit", pa.int16(), nullable=False),
    pa.field("rows", pa.int64(), nullable=False),
])


@dataclass
class LakePlan:
    """What :func:`prepare_lake` hands to the executors.

    Attributes:
        out: the lake folder.
        static: the inputs every unit-day reads.
        start, end: the requested range (inclusive).
        units: every unit id, largest first (the order executors start them in).
        first_day: the lake's first day (from its metadata).
    """

    out: Path
    static: StaticInputs
    start: date
    end: date
    units: list[int]
    first_day: date | None = None


@dataclass
class LakeSummary:
    """What one :func:`generate_lake` call wrote.

    Attributes:
        out: the lake folder; ``start``/``end`` the requested range.
        watermark: the lake's watermark after the call.
        facts_generated: logical fact name → rows written by this call.
        outbox_events: outbox rows written by this call.
        files: table files written; ``unit_days`` unit-days run.
        generation_time_seconds: wall time of the call.
        manifest: every file written (``MANIFEST_SCHEMA``).
    """

    out: Path
    start: date
    end: date
    watermark: date | None
    facts_generated: dict[str, int]
    outbox_events: int
    files: int
    unit_days: int
    generation_time_seconds: float
    manifest: pa.Table = field(repr=False)

    @property
    def total_records(self) -> int:
        return sum(self.facts_generated.values())


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# -- master data --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Master:
    data: MasterData
    pools: StorePools
    dims: dict[str, pa.Table]  # contract tables in key order
    generated_for: str  # the fingerprint in the database's gen_metadata


def _load_master(config: RetailConfig, session: Any) -> _Master:
    """The master data of ``session`` (default: the config's DuckDB file); refuses master
    data of another config or schema version."""
    from retail_datagen.generators.fact_generators import FactDataGenerator

    gen = FactDataGenerator(config, session)
    try:
        meta = gen._read_metadata()
        found_version = meta.get("schema_version")
        if found_version is not None and found_version != schema.SCHEMA_VERSION:
            raise StateMismatchError(
                f"the master data was written by schema version {found_version!r}, not "
                f"{schema.SCHEMA_VERSION!r}; regenerate it with 'retail-datagen master --force'")
        gen.load_master_data()  # MasterDataMissingError when absent
        if meta.get("master_generated_for") != config.fingerprint():
            raise StateMismatchError(
                "master data was generated for another configuration or data files; "
                "regenerate it with 'retail-datagen master --force'")
        dims = {}
        for name in schema.DIM_TABLES:
            order = ", ".join(schema.quote_ident(c) for c in schema.primary_key(name))
            dims[name] = gen._target.query_arrow(
                f"SELECT * FROM {schema.quote_ident(name)} ORDER BY {order}"
            ).cast(schema.arrow_schema(name))
        return _Master(gen._master, gen._pools, dims, meta["master_generated_for"])
    finally:
        gen.close()


# -- planning -----------------------------------------------------------------------------------
def unit_progress(out: Path, units: list[int]) -> dict[int, date | None]:
    """Each unit's last complete day (None: none yet)."""
    return {unit: last_complete_day(out, unit) for unit in units}


def _check_range(start: date, first_day: date, progress: dict[int, date | None]) -> None:
    """Every unit must be able to continue into ``start`` without a gap."""
    if start < first_day:
        raise DateRangeError(f"range starts {start}, before the lake's first day {first_day}")
    for unit, last in progress.items():
        following = first_day if last is None else last + timedelta(days=1)
        if start > following:
            raise DateRangeError(
                f"range starting {start} is not contiguous with unit {unit}, whose next day is "
                f"{following}; start at the lake's watermark + 1 or earlier")


def prepare_lake(config: RetailConfig, out: str | Path, start: date | datetime,
                 end: date | datetime, *, tables: Iterable[str] | None = None,
                 outbox: bool = False, session: Any = None,
                 store_workers: int | None = None) -> LakePlan:
    """Check or start the lake in ``out`` and return the plan its executors run.

    Master data is read from ``session`` (default: the config's DuckDB file). Nothing is
    written when a check fails. On a new lake the dimensions are written, then
    ``_metadata.json``; on an existing one the metadata must match this call.

    Raises:
        DateRangeError: ``end < start``, or the range leaves a gap after a unit's last day.
        StateMismatchError: the lake or the master data belong to another config, schema
            version, table choice, outbox choice or library versions.
        MasterDataMissingError: the config's database holds no master data.
        UnknownTableError: a name in ``tables`` is not a fact table.
    """
    out = Path(out)
    start, end = _as_date(start), _as_date(end)
    if end < start:
        raise DateRangeError(f"end date {end} is before start date {start}")
    included = frozenset(resolve_fact_tables(tables))
    found = read_metadata(out)
    if found is not None:  # before the master data is read: another config fails here
        check_metadata(found, lake_metadata(config, found.get("master_generated_for"), start,
                                            included, outbox), out)
    master = _load_master(config, session)
    wanted = lake_metadata(config, master.generated_for, start, included, outbox)
    units = unit_order(master.data)
    first_day = start
    if found is not None:
        check_metadata(found, wanted, out)
        first_day = first_day_of(found)
        _check_range(start, first_day, unit_progress(out, units))
    if out.is_dir():
        remove_temporary_files(out)  # left by a killed run
    for name, table in master.dims.items():  # all on a new lake; on an old one, any a kill left out
        if found is None or not dim_file(out, name).is_file():
            write_parquet(table, dim_file(out, name))
    if found is None:
        write_metadata(out, wanted)
    if store_workers is None:
        store_workers = max(1, config.performance.get_max_workers())
    static = StaticInputs.build(config, master.data, master.pools, included_tables=included,
                                publish_outbox=outbox, store_workers=store_workers)
    return LakePlan(out=out, static=static, start=start, end=end, units=units,
                    first_day=first_day)


# -- one unit -----------------------------------------------------------------------------------
def _sorted_by_key(name: str, table: pa.Table) -> pa.Table:
    return table.sort_by([(c, "ascending") for c in schema.primary_key(name)])


def write_unit_day(out: Path, unit: int, day: date, result: DayResult) -> list[tuple[str, int]]:
    """Write the unit-day's table files (those with rows); returns (table, rows) per file."""
    written = []
    for name, parts in result.batches.items():
        db_name = schema.FACT_TABLE_DB_NAMES[name]
        mapped = pa.concat_tables([map_batch(name, part) for part in parts])
        if mapped.num_rows:
            write_parquet(_sorted_by_key(db_name, mapped), table_file(out, db_name, day, unit))
            written.append((db_name, mapped.num_rows))
    if result.outbox is not None and result.outbox.num_rows:
        rows = result.outbox.cast(schema.arrow_schema(schema.OUTBOX_TABLE))
        write_parquet(_sorted_by_key(schema.OUTBOX_TABLE, rows),
                      table_file(out, schema.OUTBOX_TABLE, day, unit))
        written.append((schema.OUTBOX_TABLE, rows.num_rows))
    return written


def run_unit(static: StaticInputs, out: str | Path, unit: int, start: date | datetime,
             end: date | datetime) -> pa.Table:
    """Run ``unit`` from its last complete day + 1 (or the lake's first day) through ``end``.

    Writes the unit's table files and, after each day's, its state; touches nothing else.
    A rerun (or a retried task) writes the same bytes and continues where the unit stopped.

    Returns:
        One manifest row per table file written (``MANIFEST_SCHEMA``).

    Raises:
        DateRangeError: ``start`` lies after the unit's next day (a gap).
        GenerationError: a unit-day failed; its files may be in place, its state is not, so a
            rerun generates it again.
    """
    out = Path(out)
    start, end = _as_date(start), _as_date(end)
    meta = read_metadata(out)
    if meta is None:
        raise StateMismatchError(f"{out} is not a lake (no _metadata.json): run prepare_lake")
    if (sorted(static.included_tables) != meta.get("included_tables")
            or static.publish_outbox != meta.get("outbox")):
        raise StateMismatchError(
            f"the static inputs (tables, outbox) differ from the lake {out}'s metadata")
    first_day = first_day_of(meta)
    last = last_complete_day(out, unit)
    _check_range(start, first_day, {unit: last})
    state = None if last is None else read_unit_state(out, static, unit, last, first_day)
    begin = first_day if last is None else last + timedelta(days=1)
    rows: dict[str, list] = {name: [] for name in MANIFEST_SCHEMA.names}
    for day in _days(begin, end):
        try:
            result = generate_unit_day(static, unit, day, state)
            written = write_unit_day(out, unit, day, result)
            write_unit_state(out, static, unit, day, result, day == first_day)
        except (GenerationError, StateMismatchError):
            raise
        except Exception as exc:
            raise GenerationError(f"unit {unit}, {day} failed: {exc}", day=day) from exc
        state = result.state
        for table, count in written:
            for key, value in zip(MANIFEST_SCHEMA.names, (table, day, unit, count), strict=True):
                rows[key].append(value)
    return pa.table(rows, schema=MANIFEST_SCHEMA)


# -- executors ----------------------------------------------------------------------------------
def generate_lake(config: RetailConfig, out: str | Path, start: date | datetime,
                  end: date | datetime, *, workers: int = 1, tables: Iterable[str] | None = None,
                  outbox: bool = False, session: Any = None,
                  on_unit_done: Callable[[int, pa.Table], None] | None = None) -> LakeSummary:
    """Write the facts of ``start..end`` into the lake ``out``, continuing every unit.

    ``workers`` > 1 runs the units in that many local processes (largest unit first); the
    files are the same bytes whatever the number. ``on_unit_done(unit, manifest)`` is called
    in this process as each unit ends. Raises as :func:`prepare_lake` and :func:`run_unit` do.
    """
    def done(unit: int, manifest: pa.Table) -> pa.Table:
        if on_unit_done is not None:
            on_unit_done(unit, manifest)
        return manifest

    began = time.monotonic()
    plan = prepare_lake(config, out, start, end, tables=tables, outbox=outbox, session=session)
    if workers > 1 and len(plan.units) > 1:
        from retail_datagen.lake.pool import run_units_in_pool

        manifests = run_units_in_pool(plan.static, plan.out, plan.units, plan.start, plan.end,
                                      workers, done)
    else:
        manifests = [done(unit, run_unit(plan.static, plan.out, unit, plan.start, plan.end))
                     for unit in plan.units]
    manifest = pa.concat_tables(manifests) if manifests else MANIFEST_SCHEMA.empty_table()
    prune_state(plan.out)
    return summarize(plan, manifest, time.monotonic() - began)


def summarize(plan: LakePlan, manifest: pa.Table, seconds: float) -> LakeSummary:
    """The summary of a run from the manifest rows of its files."""
    by_table: dict[str, int] = {}
    for table, rows in zip(manifest.column("table").to_pylist(),
                           manifest.column("rows").to_pylist(), strict=True):
        by_table[table] = by_table.get(table, 0) + rows
    unit_days = len(set(zip(manifest.column("date").to_pylist(),
                            manifest.column("unit").to_pylist(), strict=True)))
    facts = {name: by_table.get(schema.FACT_TABLE_DB_NAMES[name], 0)
             for name in schema.FACT_TABLES}
    return LakeSummary(out=plan.out, start=plan.start, end=plan.end,
                       watermark=lake_watermark(plan.out), facts_generated=facts,
                       outbox_events=by_table.get(schema.OUTBOX_TABLE, 0),
                       files=manifest.num_rows, unit_days=unit_days,
                       generation_time_seconds=seconds, manifest=manifest)


def prune_state(out: str | Path) -> int:
    """Remove every unit's state folders before the lake's watermark; returns how many.

    Call it once no unit runs (after an executor has ended): a rerun continues from each
    unit's latest folder, and readers read the folders of the watermark day.
    """
    out = Path(out)
    watermark = lake_watermark(out)
    if watermark is None:
        return 0
    stale = [folder for unit in lake_units(out)
             for folder in stale_state_dirs(out, unit, watermark)]
    for folder in stale:
        shutil.rmtree(folder)
    return len(stale)


def lake_watermark(out: str | Path) -> date | None:
    """The smallest last complete day over all units; None before every unit has one."""
    out = Path(out)
    meta = read_metadata(out)
    if meta is None:
        return None
    days = unit_progress(out, lake_units(out)).values()
    return None if any(d is None for d in days) else min(days)


__all__ = ["MANIFEST_SCHEMA", "LakePlan", "LakeSummary", "generate_lake", "lake_watermark",
           "prepare_lake", "prune_state", "run_unit", "summarize", "unit_progress",
           "write_unit_day"]
