"""The ``retail-datagen`` command line (api.md §10).

The CLI parses options, builds a :class:`~retail_datagen.config.models.RetailConfig`, calls the
public API and draws the results with rich (the drawing helpers are in
:mod:`retail_datagen.cli_render`, the body of ``facts`` in :mod:`retail_datagen.cli_facts`);
it holds no generation logic. Heavy modules (duckdb, numpy, pyarrow, sqlalchemy, pydantic and
the generators) are imported inside the commands, so ``retail-datagen --help`` stays fast.

Exit codes: 0 success; 1 validation failed (or an unexpected error); 2 usage error,
``ConfigError``, ``DateRangeError`` or ``UnknownTableError``; 3 ``DatabaseError`` (or a raw
database driver error); 4 ``MasterDataError``; 5 ``GenerationError`` (or an engine
``SchemaContractError``); 130 interrupted. Errors print one line, ``error: <message>``, on
stderr; ``-v`` adds the traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from retail_datagen import errors
from retail_datagen.cli_render import (
    check_status,
    clip,
    counts_line,
    event_json,
    mask_secrets,
    render_table,
    validation_verdict,
)
from retail_datagen.cli_state import (
    DATABASE_URL_ENV,
    DEFAULT_CONFIG,
    DEFAULT_EXPORT_DIR,
    EXIT_DATABASE,
    EXIT_FAILED,
    EXIT_GENERATION,
    EXIT_MASTER_DATA,
    EXIT_OK,
    EXIT_USAGE,
    exit_code_for,
)
from retail_datagen.cli_state import CliState as _State
from retail_datagen.cli_state import is_cli_exception as _is_cli_exception

_verbosity = 0  # of the running command; read when reporting its error


def _configure_logging(verbosity: int, quiet: bool, console: Console) -> None:
    from rich.logging import RichHandler

    levels = {0: logging.WARNING, 1: logging.INFO}
    logger = logging.getLogger("retail_datagen")
    logger.addHandler(RichHandler(console=console, show_path=False, show_time=verbosity >= 2))
    logger.setLevel(logging.ERROR if quiet else levels.get(verbosity, logging.DEBUG))


def _state(ctx: typer.Context) -> _State:
    state = ctx.find_object(_State)
    if state is None:
        state = ctx.obj = _State(None, None, None)
    return state


class _Group(TyperGroup):
    """The root group: every error becomes one ``error:`` line and its exit code."""

    def main(self, *args: Any, **kwargs: Any) -> NoReturn:
        global _verbosity
        _verbosity = 0
        # Not standalone: errors reach _report instead of typer's multi-line panels.
        kwargs["standalone_mode"] = False
        # The logging setup is undone afterwards, for callers that run several commands.
        logger = logging.getLogger("retail_datagen")
        saved = logger.level, list(logger.handlers)
        try:
            try:
                result = super().main(*args, **kwargs)
            except Exception as exc:
                sys.exit(_report(exc))
            sys.exit(result if isinstance(result, int) else EXIT_OK)
        finally:
            logger.setLevel(saved[0])
            logger.handlers[:] = saved[1]


def _report(exc: Exception) -> int:
    """Print what went wrong on stderr and return the exit code."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: show its help
        help_text = exc.ctx.get_help()  # type: ignore[attr-defined]  # rich prints it itself
        if help_text:
            typer.echo(help_text)
    elif _is_cli_exception(exc) and hasattr(exc, "format_message"):
        ctx = getattr(exc, "ctx", None)
        hint = f" (try '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
    elif isinstance(exc, typer.Abort):
        typer.echo("error: aborted", err=True)
    else:
        if _verbosity:
            typer.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        typer.echo(f"error: {'; '.join(lines) or type(exc).__name__}", err=True)
    return exit_code_for(exc)


app = typer.Typer(
    cls=_Group, name="retail-datagen", add_completion=False, no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Generate a synthetic, internally consistent retail history into a database.",
)
outbox_app = typer.Typer(help="Inspect and drain the streaming outbox.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")


def _flag(name: str, help_text: str) -> Any:
    return typer.Option(name, help=help_text)


def _date_option(name: str, help_text: str) -> Any:
    return typer.Option(name, formats=["%Y-%m-%d"], metavar="YYYY-MM-DD", help=help_text)


_Start = Annotated[datetime | None, _date_option("--start", "First day, YYYY-MM-DD.")]
_End = Annotated[datetime | None, _date_option("--end", "Last day, YYYY-MM-DD.")]
_Tables = Annotated[str | None, typer.Option(
    "--tables", metavar="A,B", help="Comma-separated fact tables (logical or DB names).")]


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="PATH",
        help="Config file (default ./config.json, then ./config/config.json).")] = None,
    db: Annotated[str | None, typer.Option(
        "--db", metavar="PATH", help="DuckDB file; overrides paths.duckdb.")] = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", metavar="URL", envvar=DATABASE_URL_ENV,
        help="SQLAlchemy database URL instead of a DuckDB file.")] = None,
    verbose: Annotated[int, typer.Option(
        "-v", "--verbose", count=True, help="More logging (-vv: debug); show tracebacks.")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors and results.")] = False,
) -> None:
    """Generate a synthetic, internally consistent retail history into a database."""
    global _verbosity
    if verbose and quiet:
        raise typer.BadParameter("use either --verbose or --quiet, not both")
    if db and database_url:
        source = ctx.get_parameter_source("database_url")
        if source is None or source.name != "ENVIRONMENT":
            raise typer.BadParameter("use either --db or --database-url, not both")
        database_url = None  # an explicit --db beats the environment
    _verbosity = verbose
    ctx.obj = _State(config, db, database_url, verbose, quiet)
    _configure_logging(verbose, quiet, ctx.obj.err)


@app.command("init-config")
def init_config(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(
        metavar="PATH", help="Where to write (default: --config, else ./config.json).")] = None,
    force: Annotated[bool, _flag("--force", "Overwrite an existing file.")] = False,
) -> None:
    """Write the starter configuration."""
    from retail_datagen.config.settings import create_default_config

    state = _state(ctx)
    target = path or state.config_path or DEFAULT_CONFIG
    if target.exists() and not force:
        raise errors.ConfigError(f"{target} exists (use --force)")
    create_default_config().to_file(target)
    state.notice(f"wrote {target}")


@app.command()
def master(
    ctx: typer.Context,
    force: Annotated[bool, _flag("--force", "Replace master data (drops every fact table).")
                     ] = False,
    csv: Annotated[bool, _flag("--csv", "Also write <paths.master>/<dim>.csv.")] = False,
) -> None:
    """Generate the six dimension tables and print their row counts."""
    from retail_datagen.generators.master_generator import MasterDataGenerator

    state = _state(ctx)
    config = state.config()
    started = time.monotonic()
    with MasterDataGenerator(config, state.target()) as generator:
        counts = generator.generate_all(force=force)
        files = generator.write_csv(config.paths.master) if csv else []
    rows: list[list[Any]] = [[name, n] for name, n in counts.items()]
    rows.append(["total", sum(counts.values())])
    title = f"Master data ({time.monotonic() - started:.1f} s)"
    state.show(render_table(title, ["table", "rows"], rows))
    for file in files:
        typer.echo(str(file))


# --- facts -------------------------------------------------------------------------------------
Engine = StrEnum("Engine", ["local", "spark"])

@app.command()
def facts(
    ctx: typer.Context,
    end: Annotated[datetime, _date_option("--end", "Last day, YYYY-MM-DD (required).")],
    start: Annotated[datetime | None, _date_option(
        "--start", "First day (default: the day after the generated range, "
        "else historical.start_date).")] = None,
    tables: _Tables = None,
    outbox: Annotated[bool, _flag("--outbox", "Also write outbox events.")] = False,
    no_validate: Annotated[bool, _flag("--no-validate", "Skip the invariant checks.")] = False,
    reset: Annotated[bool, _flag("--reset", "Drop facts and state first (keeps dims).")] = False,
    no_progress: Annotated[bool, _flag("--no-progress", "No progress output.")] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, metavar="N",
        help="Generation processes (performance.max_workers; default: the CPU count). "
             "The data do not depend on it.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", help="Write a Parquet lake into this folder instead of the "
        "database (master data is read from the database).")] = None,
    engine: Annotated[Engine, typer.Option(help="Run the units in local processes, or as "
                                           "Spark tasks writing the lake (--out).")] = Engine.local,
    spark_master: Annotated[str, typer.Option(
        metavar="URL", help="The Spark master of --engine spark.")] = "local[*]",
) -> None:
    """Generate daily facts for a date range, then validate them (exit 1 if that fails)."""
    from retail_datagen.cli_facts import run_facts

    run_facts(_state(ctx), end.date(), _day(start), _split(tables) or None, outbox=outbox,
              validate=not no_validate, reset=reset, progress=not no_progress, workers=workers,
              out=out, spark_master=spark_master if engine is Engine.spark else None)


@app.command()
def validate(
    ctx: typer.Context,
    start: _Start = None,
    end: _End = None,
    only: Annotated[str | None, typer.Option(
        "--only", metavar="INV-01,INV-07", help="Run only these checks.")] = None,
    as_json: Annotated[bool, _flag("--json", "Print the report as JSON.")] = False,
    lake: Annotated[Path | None, typer.Option(
        "--lake", metavar="DIR", help="Check a Parquet lake (its complete days) instead.")
    ] = None,
) -> None:
    """Run the invariant checks and show every check (exit 1 if an error check fails, or if
    there are no fact rows to check)."""
    from retail_datagen.validation.invariants import run_invariants

    state = _state(ctx)
    if lake is not None:
        from retail_datagen.lake import validate_lake

        report = validate_lake(lake, _day(start), _day(end), only=_split(only) or None)
    else:
        report = run_invariants(state.target(), _day(start), _day(end),
                                only=_split(only) or None)
    result = report.to_dict()
    if not report.has_fact_rows:
        # Checks over no rows pass vacuously: say so instead of reporting "passed".
        scope = (f" from {_day(start) or 'the first day'} to {_day(end) or 'the last day'}"
                 if start or end else "")
        source = lake if lake is not None else mask_secrets(state.target())
        message = f"no fact rows{scope} in {source}: nothing to validate"
        result.update(passed=False, error_count=result["error_count"] + 1,
                      errors=[message, *result["errors"]])
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        rows = [[c.id, c.title, c.severity, int(c.violations or 0), check_status(c)]
                for c in report.checks]
        headers = ["id", "title", "severity", "violations", "status"]
        state.out.print(render_table("Invariants", headers, rows))
        state.out.print(validation_verdict(result)[1], markup=False, highlight=False)
    if not report.has_fact_rows:
        typer.echo(f"error: {result['errors'][0]}", err=True)
    if not result["passed"]:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR", help="Output folder.")] = DEFAULT_EXPORT_DIR,
    tables: _Tables = None,
    start: _Start = None,
    end: _End = None,
) -> None:
    """Export fact tables as monthly Parquet files and print the files written."""
    from retail_datagen.export.parquet import export_monthly_parquet

    state = _state(ctx)
    files = export_monthly_parquet(state.target(), out, _split(tables) or None, _day(start),
                                   _day(end))
    for file in files:
        typer.echo(str(file))
    state.notice(f"{len(files)} file(s) written under {out}")


#: The outbox row states ``outbox show --status`` accepts (StrEnum values are the names).
OutboxStatus = StrEnum("OutboxStatus", ["pending", "processing", "sent", "failed"])


@outbox_app.command("show")
def outbox_show(
    ctx: typer.Context,
    status: Annotated[OutboxStatus | None, typer.Option(
        "--status", help="Only events in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many events.")] = 20,
) -> None:
    """Print the outbox counts (on stderr), then the events as one JSON object per line."""
    from retail_datagen.streaming import outbox

    state = _state(ctx)
    target = state.target()
    state.notice(counts_line(outbox.counts(target)))
    for event in outbox.iter_events(target, status.value if status else None, limit):
        typer.echo(event_json(event))


@outbox_app.command("drain")
def outbox_drain(
    ctx: typer.Context,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="At most this many events (default: all).")] = None,
    batch: Annotated[int | None, typer.Option(
        "--batch", min=1, help="Events leased at a time (default: realtime.max_batch_size).")
    ] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE.jsonl", help="Append the events here (default: stdout).")] = None,
) -> None:
    """Lease pending events, write them as JSON lines tagged with the hub, and ack them."""
    from retail_datagen.streaming import outbox

    state = _state(ctx)
    config = state.config()
    options: dict[str, Any] = {
        "hub": config.stream.hub, "limit": limit,
        "batch": batch or config.realtime.max_batch_size,
        "max_attempts": config.realtime.retry_attempts,
        "dead_letter": config.realtime.enable_dead_letter_queue,
    }
    if out is None:
        drained = outbox.drain(state.target(), sys.stdout, **options)
    else:
        # Append: drained events are acked, so overwriting the file would lose earlier ones.
        with outbox.open_jsonl_for_append(out) as stream:
            drained = outbox.drain(state.target(), stream, **options)
    state.notice(f"{drained:,} event(s) drained" + (f" to {out}" if out else ""))


# --- status ----------------------------------------------------------------------------------

_TABLES_SQL = ("SELECT table_name FROM information_schema.tables "
               "WHERE table_catalog = current_database() AND table_schema = current_schema()")


def _open_reader(target: str) -> tuple[Any, Any, set[str]]:
    """``(handle, rows(sql) -> list[tuple], existing table names)``, read-only."""
    from retail_datagen.db.target import target_kind

    if target_kind(target) == "url":
        from sqlalchemy import create_engine, inspect, text

        engine = create_engine(target)

        def rows(sql: str) -> list[tuple[Any, ...]]:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql))]

        return engine, rows, set(inspect(engine).get_table_names())
    from retail_datagen.db.duckdb_engine import open_duckdb

    con = open_duckdb(target, read_only=True)
    existing = {str(row[0]) for row in con.execute(_TABLES_SQL).fetchall()}
    return con, lambda sql: con.execute(sql).fetchall(), existing


@app.command()
def status(ctx: typer.Context, lake: Annotated[Path | None, typer.Option(
        "--lake", metavar="DIR", help="Show a Parquet lake's progress per unit instead.")
        ] = None) -> None:
    """Show the generated range, row counts, outbox counts and generator metadata."""
    from retail_datagen.db import schema

    state = _state(ctx)
    if lake is not None:
        from retail_datagen.cli_lake import show_lake_status

        show_lake_status(state, lake)
        return
    target = state.target()
    handle, rows, existing = _open_reader(target)
    try:
        watermark = (rows("SELECT first_day, last_day FROM gen_watermark")
                     if "gen_watermark" in existing else [])
        names = [*schema.DIM_TABLES, *(schema.FACT_TABLE_DB_NAMES[t] for t in schema.FACT_TABLES),
                 schema.OUTBOX_TABLE]
        counts = [[name, int(rows(f"SELECT count(*) FROM {schema.quote_ident(name)}")[0][0])
                   if name in existing else "-"] for name in names]
        outbox_counts = None
        if schema.OUTBOX_TABLE in existing:
            from retail_datagen.streaming import outbox

            outbox_counts = outbox.counts(handle)
        metadata = (rows("SELECT key, value FROM gen_metadata ORDER BY key")
                    if "gen_metadata" in existing else [])
    finally:
        getattr(handle, "dispose", getattr(handle, "close", None))()

    span = "none (no facts generated)"
    if watermark:
        first_day, last_day = watermark[0]
        span = f"{first_day}..{last_day} ({(last_day - first_day).days + 1} days)"
    say = partial(state.out.print, markup=False, highlight=False)
    say(f"database: {mask_secrets(target)}")
    say(f"watermark: {span}")
    say(render_table("Rows", ["table", "rows"], counts))
    say(counts_line(outbox_counts) if outbox_counts is not None else "outbox: no table")
    if metadata:
        # Long values (config_data) are cut unless -v; secrets are always masked.
        width = None if state.verbosity else 80
        shown = [[str(k), clip(mask_secrets(str(v)), width)] for k, v in metadata]
        state.out.print(render_table("gen_metadata", ["key", "value"], shown))


# --- report ----------------------------------------------------------------------------------

@app.command()
def report(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE.html",
        help="Where to write the page (default report.html; with --json, only if given).")
    ] = None,
    as_json: Annotated[bool, _flag("--json", "Print the metrics as JSON.")] = False,
    no_progress: Annotated[bool, _flag("--no-progress", "No progress output.")] = False,
) -> None:
    """Measure realism metrics against published bands and write an HTML page of charts."""
    from retail_datagen.db.target import target_kind
    from retail_datagen.report import report_from_duckdb
    from retail_datagen.report.progress import ReportProgress

    state = _state(ctx)
    if target_kind(state.target()) == "url":
        raise errors.ConfigError("report reads a DuckDB file: use --db or paths.duckdb")
    with ReportProgress(state.err, live=sys.stderr.isatty()) as progress:
        result = report_from_duckdb(state.target(), progress=None if no_progress or state.quiet
                                    else progress)
    page = out if out is not None or as_json else Path("report.html")
    if page is not None:
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(result.to_html(), encoding="utf-8")
        state.notice(f"wrote {page}")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        state.show(render_table(f"Realism {result.first}..{result.last}",
                                ["metric", "value", "band", "status"], result.summary_rows()))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``retail-datagen`` console script; exits with the api.md §10 code.

    Args:
        argv: Arguments without the program name; default ``sys.argv[1:]``.
    """
    # _Group.main maps every exception to its code and always ends in SystemExit.
    app(args=list(argv) if argv is not None else None, prog_name="retail-datagen")


__all__ = ["EXIT_DATABASE", "EXIT_FAILED", "EXIT_GENERATION", "EXIT_MASTER_DATA", "EXIT_OK",
           "EXIT_USAGE", "OutboxStatus", "app", "exit_code_for", "main", "mask_secrets"]


if __name__ == "__main__":
    main()
