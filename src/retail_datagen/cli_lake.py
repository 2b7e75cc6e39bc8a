"""The lake side of the command line: ``facts --out`` and ``status --lake``.

Bodies of the lake options: :mod:`retail_datagen.cli` parses the options and calls these,
``facts_to_lake`` by way of :mod:`retail_datagen.cli_facts`. Like the rest of the CLI they hold
no generation logic: they call :mod:`retail_datagen.lake` and draw the results.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retail_datagen.cli_render import render_table
from retail_datagen.cli_state import CliState

if TYPE_CHECKING:
    from retail_datagen.config.models import RetailConfig


def _next_day(out: Path, fallback: date) -> tuple[date, date | None]:
    """The day a lake continues from, and its watermark."""
    from retail_datagen.lake import lake_watermark
    from retail_datagen.lake.metadata import first_day_of, read_metadata

    meta = read_metadata(out)
    if meta is None:
        return fallback, None
    watermark = lake_watermark(out)
    return (watermark + timedelta(days=1) if watermark else first_day_of(meta)), watermark


def facts_to_lake(state: CliState, config: RetailConfig, out: Path, start: date | None,
                  end: date, tables: list[str] | None, outbox: bool, validate: bool,
                  spark_master: str | None = None) -> None:
    """``facts --out DIR``: master data first if missing, the lake, then its validation.

    ``config.performance.max_workers`` processes run the units (``--workers``), or Spark
    tasks on ``spark_master`` (``--engine spark``)."""
    from retail_datagen.generators.master_generator import MasterDataGenerator
    from retail_datagen.lake import generate_lake, validate_lake

    target = state.target()
    with MasterDataGenerator(config, target) as master_generator:
        if not master_generator.master_data_exists():
            state.notice("master data not found; generating it first")
            counts = master_generator.generate_all()
            state.notice(f"master data: {sum(counts.values()):,} rows in {len(counts)} tables")
    first, watermark = _next_day(out, config.historical.start)
    if start is not None:
        first = start
    elif watermark is not None and end <= watermark:
        state.notice(f"the lake is complete through {watermark}; nothing to do")
        return
    processes = config.performance.get_max_workers()
    if spark_master is not None:
        from retail_datagen.lake.spark import generate_lake_on

        summary = generate_lake_on(spark_master, config, out, first, end, tables=tables,
                                   outbox=outbox, session=target)
        runner = f"{summary.partitions} Spark tasks on {spark_master}"
    else:
        runner = f"{processes} process(es)"
        summary = generate_lake(
            config, out, first, end, workers=processes, tables=tables, outbox=outbox,
            session=target,
            on_unit_done=lambda unit, manifest: state.notice(
                f"unit {unit}: {manifest.num_rows:,} files, "
                f"{sum(manifest.column('rows').to_pylist()):,} rows"))
    rows: list[list[Any]] = [[name, n] for name, n in summary.facts_generated.items() if n]
    rows.append(["total", summary.total_records])
    state.show(render_table(f"Lake {out} {first}..{end}", ["table", "rows"], rows))
    seconds = summary.generation_time_seconds
    line = (f"{summary.unit_days} unit-days, {summary.files:,} files, "
            f"{summary.total_records:,} rows in {seconds:.1f} s with {runner}; "
            f"watermark {summary.watermark}")
    if summary.outbox_events:
        line += f"; {summary.outbox_events:,} outbox events"
    state.show(line)
    if not validate:
        return
    state.finish_with_verdict(validate_lake(out, first, end).to_dict())


def show_lake_status(state: CliState, lake: Path) -> None:
    """``status --lake DIR``: each unit's last complete day, the watermark and the metadata."""
    from retail_datagen.errors import DatabaseError
    from retail_datagen.lake import lake_watermark, unit_progress
    from retail_datagen.lake.layout import lake_units
    from retail_datagen.lake.metadata import first_day_of, read_metadata

    meta = read_metadata(lake)
    if meta is None:
        raise DatabaseError(f"{lake} is not a lake: it holds no _metadata.json")
    first_day = first_day_of(meta)
    progress = unit_progress(lake, lake_units(lake))
    watermark = lake_watermark(lake)
    say = partial(state.out.print, markup=False, highlight=False)
    say(f"lake: {lake}")
    span = (f"{first_day}..{watermark} ({(watermark - first_day).days + 1} days)"
            if watermark else f"none (first day {first_day})")
    say(f"watermark: {span}")
    rows = [[unit, str(last) if last else "-",
             (last - first_day).days + 1 if last else 0] for unit, last in progress.items()]
    say(render_table("Units", ["unit", "last complete day", "days"], rows))
    shown = [[key, str(meta.get(key))] for key in
             ("schema_version", "config_fingerprint", "included_tables", "outbox",
              "library_versions")]
    say(render_table("_metadata.json", ["key", "value"], shown))


__all__ = ["facts_to_lake", "show_lake_status"]
