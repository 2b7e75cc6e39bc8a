"""The ``facts`` command: generate daily facts into the database, or a lake with ``--out``.

Body of the ``facts`` command of :mod:`retail_datagen.cli`, which declares the options and
calls :func:`run_facts`. Like the rest of the CLI it holds no generation logic: it calls the
fact generator (or :mod:`retail_datagen.cli_lake` for a lake) and draws the results.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import typer

from retail_datagen.cli_render import FactsProgress, render_table
from retail_datagen.cli_state import CliState


def run_facts(state: CliState, end: date, start: date | None, tables: list[str] | None, *,
              outbox: bool, validate: bool, reset: bool, progress: bool, workers: int | None,
              out: Path | None, spark_master: str | None) -> None:
    """Generate facts from ``start`` (default: after the watermark) through ``end``.

    Args:
        state: The global options.
        end: The last day.
        start: The first day, or None to continue after the generated range.
        tables: The ``--tables`` names (logical or DB), or None for every table.
        outbox: Also write outbox events.
        validate: Run the invariant checks afterwards (exit 1 if they fail).
        reset: Drop the facts and generator state first (database only).
        progress: Draw progress on stderr (unless ``--quiet``).
        workers: Generation processes, overriding ``performance.max_workers``.
        out: Write a Parquet lake into this folder instead of the database.
        spark_master: Run the units as Spark tasks on this master (``--engine spark``).
    """
    import asyncio

    from retail_datagen.generators.fact_generators import FactDataGenerator
    from retail_datagen.generators.master_generator import MasterDataGenerator

    config, target = state.config(), state.target()
    if workers is not None:
        config = config.model_copy(update={"performance": config.performance.model_copy(
            update={"max_workers": workers})})
    from retail_datagen.generators.fact_generators.core import resolve_fact_tables

    resolve_fact_tables(tables)  # a bad name must fail before --reset drops
    if out is not None or spark_master is not None:
        if reset or out is None:
            raise typer.BadParameter("--reset drops database facts; for a lake use a new folder"
                                     if reset else "--engine spark writes a lake: give --out DIR")
        from retail_datagen.cli_lake import facts_to_lake

        facts_to_lake(state, config, out, start, end, tables, outbox, validate, spark_master)
        return
    if reset:
        # Before the generator is built: it refuses tables that differ from the contract,
        # which is what --reset repairs.
        from retail_datagen.db.target import open_target
        from retail_datagen.generators.fact_generators.persistence_mixin import (
            drop_fact_tables,
        )

        opened = open_target(target, config.paths.duckdb)
        try:
            drop_fact_tables(opened)
        finally:
            opened.close()
        state.notice("facts and generator state dropped (--reset)")
    generator = FactDataGenerator(config, target)
    try:
        generator.set_included_tables(tables)
        with MasterDataGenerator(config, target) as master_generator:
            if not master_generator.master_data_exists():
                state.notice("master data not found; generating it first")
                counts = master_generator.generate_all()
                state.notice(f"master data: {sum(counts.values()):,} rows in {len(counts)} tables")
        if start is not None:
            first = start
        else:
            watermark = generator._read_watermark()
            if watermark is not None and end <= watermark[1]:
                state.notice(f"facts already generated through {watermark[1]}; nothing to do")
                return
            first = watermark[1] + timedelta(days=1) if watermark else config.historical.start
        show_progress = progress and not state.quiet
        drawn = FactsProgress(state.err, end, live=show_progress and sys.stderr.isatty())
        if show_progress:
            generator.set_progress_callback(drawn)
        with drawn:
            summary = asyncio.run(generator.generate_historical_data(
                first, end, publish_to_outbox=outbox, validate=validate))
    finally:
        generator.close()
    print_facts_summary(state, summary, set(tables or ()))


def print_facts_summary(state: CliState, summary: Any, wanted: set[str] | None = None) -> None:
    """The summary table and the validation verdict; exit 1 when validation failed.

    Args:
        state: The global options.
        summary: The ``FactGenerationSummary`` of the run.
        wanted: The ``--tables`` names (logical or DB); empty or None lists every table.
    """
    from retail_datagen.db.schema import FACT_TABLE_DB_NAMES

    seconds = summary.generation_time_seconds
    rate = summary.total_records / seconds if seconds > 0 else 0.0
    rows: list[list[Any]] = [[name, n] for name, n in summary.facts_generated.items()
                             if not wanted or {name, FACT_TABLE_DB_NAMES.get(name)} & wanted]
    rows.append(["total", summary.total_records])
    first, last = (d.strftime("%Y-%m-%d") for d in summary.date_range)
    state.show(render_table(f"Facts {first}..{last}", ["table", "rows"], rows))
    line = (f"{summary.days_generated} days generated, {summary.days_skipped} skipped; "
            f"{summary.total_records:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s)")
    if summary.outbox_events:
        line += f"; {summary.outbox_events:,} outbox events"
    state.show(line)
    state.finish_with_verdict(summary.validation_results or {"skipped": True})


__all__ = ["print_facts_summary", "run_facts"]
