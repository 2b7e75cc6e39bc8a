"""Run the invariant catalogue of invariants.md against a generated database.

:func:`run_invariants` executes every check as read-only SQL on DuckDB or on a SQLAlchemy
database (PostgreSQL), and returns an :class:`InvariantReport`:

* each check is one or more queries returning its violating rows; the report keeps the count and
  the first 5 rows (JSON-friendly) as its sample;
* a check left with nothing to judge (every query skipped by the scope or filtered-run rules, or
  by a missing table, watermark or ``config_data``) is reported as passed and skipped;
* ``INV-*`` checks are errors, ``W-*`` checks warnings; only errors make ``passed`` false;
* a query that the database rejects is reported as a failure of its check (``error`` is set and
  the sample holds the database message) rather than raised, so that one broken check never
  hides the others.

``InvariantReport.errors`` and ``.warnings`` are readable strings such as
``"INV-13: Receipt header = its lines (3 violations)"``; ``failed_ids`` lists the ids.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any, Protocol

import duckdb
from sqlalchemy import Connection, Engine, create_engine, inspect, text

from retail_datagen.db.duckdb_engine import open_duckdb
from retail_datagen.db.fact_schema import FACT_TABLES
from retail_datagen.db.target import target_kind
from retail_datagen.errors import DateRangeError
from retail_datagen.validation import (
    checks_inventory,
    checks_keys,
    checks_logistics,
    checks_money,
    checks_online_returns,
    checks_outbox,
    checks_sensors,
    checks_time,
)
from retail_datagen.validation.core import (
    FACT_DB_NAMES,
    LOGICAL_BY_DB,
    Check,
    Context,
    Dialect,
    LoggedDay,
    Query,
    Severity,
    SkipQuery,
)

logger = logging.getLogger(__name__)

SAMPLE_SIZE = 5
_ALL_LOGICAL: frozenset[str] = frozenset(FACT_TABLES)

#: The catalogue in invariants.md order.
CATALOGUE: tuple[Check, ...] = (
    *checks_keys.CHECKS,
    *checks_money.CHECKS,
    *checks_time.CHECKS,
    *checks_inventory.CHECKS,
    *checks_online_returns.CHECKS,
    *checks_logistics.CHECKS,
    *checks_sensors.CHECKS,
    *checks_outbox.CHECKS,
    *checks_sensors.WARNINGS,
)
CHECK_IDS: tuple[str, ...] = tuple(c.id for c in CATALOGUE)


@dataclass
class CheckResult:
    """The outcome of one check.

    Attributes:
        id: ``INV-13`` or ``W-02``.
        title: The invariant's short name.
        severity: ``error`` or ``warning``.
        violations: Number of violating rows over all of the check's queries.
        sample: Up to 5 violating rows, with JSON-friendly values.
        skipped: True when the check had nothing to judge (it then passes).
        error: The database error of a query that could not run, if any.
        notes: Remarks, e.g. a sub-check that could not run.
        seconds: Wall time spent on the check.
    """

    id: str
    title: str
    severity: Severity
    violations: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    skipped: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when no violating row was found and every query ran."""
        return self.violations == 0 and self.error is None

    def describe(self) -> str:
        """``"INV-13: Receipt header = its lines (3 violations)"``."""
        if self.error is not None:
            return f"{self.id}: {self.title} (query failed: {self.error})"
        noun = "violation" if self.violations == 1 else "violations"
        return f"{self.id}: {self.title} ({self.violations} {noun})"


@dataclass
class InvariantReport:
    """All check results of one run, in catalogue order."""

    checks: list[CheckResult]
    #: False when no fact table has a row in the scope: the checks then judged nothing.
    has_fact_rows: bool = True

    @property
    def passed(self) -> bool:
        """True when no error-severity check failed (warnings never fail a report)."""
        return not any(c.severity == "error" and not c.passed for c in self.checks)

    @property
    def errors(self) -> list[str]:
        """Failed error-severity checks, as readable strings."""
        return [c.describe() for c in self.checks if c.severity == "error" and not c.passed]

    @property
    def warnings(self) -> list[str]:
        """Failed warning-severity checks, as readable strings."""
        return [c.describe() for c in self.checks if c.severity == "warning" and not c.passed]

    @property
    def failed_ids(self) -> list[str]:
        """Ids of every failed check, errors and warnings alike."""
        return [c.id for c in self.checks if not c.passed]

    def check(self, check_id: str) -> CheckResult:
        """Return the result of one check.

        Raises:
            KeyError: The check was not run.
        """
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def to_dict(self) -> dict[str, Any]:
        """The ``validation_results`` mapping of api.md §5 (JSON-serialisable)."""
        errors, warnings = self.errors, self.warnings
        return {
            "passed": self.passed,
            "error_count": len(errors),
            "warning_count": len(warnings),
            "errors": errors,
            "warnings": warnings,
            "checks": {
                c.id: {
                    "name": c.title,
                    "severity": c.severity,
                    "passed": c.passed,
                    "skipped": c.skipped,
                    "violations": c.violations,
                    "sample": c.sample,
                }
                for c in self.checks
            },
        }


# --- database access --------------------------------------------------------------------------


class _Database(Protocol):
    dialect: Dialect

    def fetch(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]: ...

    def table_names(self) -> set[str]: ...


class _DuckDb:
    dialect: Dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def fetch(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self.con.execute(sql)
        return [d[0] for d in cur.description or ()], cur.fetchall()

    def table_names(self) -> set[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema = current_schema()"
        ).fetchall()
        return {r[0] for r in rows}


class _SqlAlchemy:
    def __init__(self, conn: Connection, *, own: bool) -> None:
        self.conn = conn
        self.own = own
        name = conn.dialect.name
        self.dialect: Dialect = "duckdb" if name == "duckdb" else "postgresql"

    def fetch(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        # Colons are escaped so that text() sees no bind parameters ('12:00', 'store:1').
        stmt = text(sql.replace(":", "\\:"))
        if self.own:
            try:
                result = self.conn.execute(stmt)
                return list(result.keys()), [tuple(r) for r in result.fetchall()]
            except Exception:
                self.conn.rollback()
                raise
        # A caller's connection keeps its transaction: a failed query only drops a savepoint.
        with self.conn.begin_nested():
            result = self.conn.execute(stmt)
            return list(result.keys()), [tuple(r) for r in result.fetchall()]

    def table_names(self) -> set[str]:
        return set(inspect(self.conn).get_table_names())


@contextmanager
def _full_memory(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Lift a caller's DuckDB memory limit while the catalogue runs, then restore it.

    The generator caps its connection's memory for writing; the catalogue's joins and
    aggregates over weeks of facts need DuckDB's default budget.
    """
    (limit,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
    # DuckDB's own default (80% of RAM), set explicitly: RESET leaves the buffer pool's cap.
    default_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 8 // 10 >> 20
    con.execute(f"SET memory_limit = '{default_mb}MB'")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{limit}'")


@contextmanager
def _open(target: Any) -> Iterator[_Database]:
    kind = target_kind(target)
    if kind == "duckdb":
        with _full_memory(target):
            yield _DuckDb(target)
    elif isinstance(target, Connection):
        yield _SqlAlchemy(target, own=False)
    elif kind in ("sqlalchemy", "url"):
        engine = target if isinstance(target, Engine) else create_engine(target)
        try:
            options = {"postgresql_readonly": True} if engine.dialect.name == "postgresql" else {}
            with engine.connect().execution_options(**options) as conn:
                try:
                    yield _SqlAlchemy(conn, own=True)
                finally:
                    conn.rollback()
        finally:
            if engine is not target:
                engine.dispose()
    elif kind == "path":
        con = open_duckdb(target, read_only=True)
        try:
            yield _DuckDb(con)
        finally:
            con.close()
    else:
        raise TypeError(
            "target must be a DuckDB connection, a SQLAlchemy Engine or Connection, a database "
            f"URL or a DuckDB file path, not {type(target).__name__}"
        )


# --- context ----------------------------------------------------------------------------------


def _as_date(value: date | datetime | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def _load_context(db: _Database, start: date | None, end: date | None) -> Context:
    tables = frozenset(db.table_names())
    first_day = last_day = None
    if "gen_watermark" in tables:
        _, rows = db.fetch("SELECT first_day, last_day FROM gen_watermark")
        if rows and rows[0][0] is not None and rows[0][1] is not None:
            first_day, last_day = _as_date(rows[0][0]), _as_date(rows[0][1])
    logged: tuple[LoggedDay, ...] | None = None
    if "gen_day_log" in tables:
        _, rows = db.fetch("SELECT day, included_tables, outbox FROM gen_day_log ORDER BY day")
        entries = []
        for day, included, outbox in rows:
            names = {n.strip() for n in (included or "").split(",") if n.strip()}
            names = {LOGICAL_BY_DB.get(n, n) for n in names}
            # An empty list means "all tables", as set_included_tables(None) does.
            entries.append(
                LoggedDay(_as_date(day), frozenset(names or _ALL_LOGICAL), bool(outbox))
            )
        logged = tuple(entries) or None
    config = None
    if "gen_metadata" in tables:
        _, rows = db.fetch("SELECT value FROM gen_metadata WHERE key = 'config_data'")
        if rows and rows[0][0]:
            try:
                parsed = json.loads(rows[0][0])
                config = parsed if isinstance(parsed, dict) else None
            except ValueError:
                config = None
    lo_day = start if start is not None else first_day
    hi_day = end if end is not None else last_day
    return Context(
        dialect=db.dialect,
        tables=tables,
        first_day=first_day,
        last_day=last_day,
        lo=datetime.combine(lo_day, dtime()) if lo_day else None,
        hi=datetime.combine(hi_day + timedelta(days=1), dtime()) if hi_day else None,
        logged=logged,
        config=config,
    )


def _has_fact_rows(db: _Database, ctx: Context) -> bool:
    """Whether any fact table holds a row whose event_ts lies in the scope."""
    bounds = [f"event_ts {op} TIMESTAMP '{value.isoformat(sep=' ')}'"
              for op, value in ((">=", ctx.lo), ("<", ctx.hi)) if value is not None]
    where = f" WHERE {' AND '.join(bounds)}" if bounds else ""
    for table in sorted(FACT_DB_NAMES & ctx.tables):
        _, rows = db.fetch(f'SELECT 1 FROM "{table}"{where} LIMIT 1')
        if rows:
            return True
    return False


# --- running ----------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date, dtime)):
        return value.isoformat()
    if isinstance(value, (Decimal, timedelta)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _row_dict(columns: list[str], row: Iterable[Any]) -> dict[str, Any]:
    return {c: _jsonable(v) for c, v in zip(columns, row, strict=False)}


class _Runner:
    def __init__(self, db: _Database, ctx: Context) -> None:
        self.db = db
        self.ctx = ctx
        self.guards: dict[str, bool] = {}

    def _guard(self, sql: str) -> bool:
        if sql not in self.guards:
            _, rows = self.db.fetch(sql)
            self.guards[sql] = bool(rows and rows[0][0])
        return self.guards[sql]

    def _run_query(self, query: Query) -> tuple[int, list[dict[str, Any]]]:
        sql = self.ctx.render(query)
        if query.guard is not None and not self._guard(query.guard):
            raise SkipQuery("guard")
        if query.post is not None:
            columns, rows = self.db.fetch(sql)
            bad = query.post([dict(zip(columns, r, strict=False)) for r in rows])
            return len(bad), [{k: _jsonable(v) for k, v in r.items()} for r in bad[:SAMPLE_SIZE]]
        # One pass: the total count rides along with the first rows.
        columns, rows = self.db.fetch(
            f"SELECT v.*, count(*) OVER () AS violations_total FROM ({sql}) AS v "
            f"LIMIT {SAMPLE_SIZE}"
        )
        if not rows:
            return 0, []
        return int(rows[0][-1]), [_row_dict(columns[:-1], r[:-1]) for r in rows]

    def run(self, check: Check) -> CheckResult:
        began = time.perf_counter()
        self.ctx.notes = []
        result = CheckResult(check.id, check.title, check.severity)
        judged = 0
        for query in check.build(self.ctx):
            try:
                n, sample = self._run_query(query)
            except SkipQuery:
                continue
            except Exception as exc:  # the database rejected the SQL: report, keep going
                message = " ".join(str(exc).split())[:500]
                logger.warning("invariant %s: query failed: %s", check.id, message)
                result.error = result.error or message
                result.sample = (result.sample + [{"error": message}])[:SAMPLE_SIZE]
                judged += 1
                continue
            judged += 1
            result.violations += n
            result.sample = (result.sample + sample)[:SAMPLE_SIZE]
        result.skipped = judged == 0
        result.notes = list(self.ctx.notes)
        for note in result.notes:
            logger.info("invariant %s: %s", check.id, note)
        result.seconds = time.perf_counter() - began
        return result


def _select(only: Iterable[str] | None) -> list[Check]:
    if only is None:
        return list(CATALOGUE)
    wanted = {str(i).strip().upper() for i in only if str(i).strip()}
    unknown = wanted - set(CHECK_IDS)
    if unknown:
        raise ValueError(
            f"unknown check id(s) {sorted(unknown)}; valid ids are: {', '.join(CHECK_IDS)}"
        )
    return [c for c in CATALOGUE if c.id in wanted]


def run_invariants(
    target: duckdb.DuckDBPyConnection | Engine | Connection | str | os.PathLike[str],
    start: date | None = None,
    end: date | None = None,
    *,
    only: Iterable[str] | None = None,
) -> InvariantReport:
    """Run the invariant catalogue (invariants.md) read-only and report every check.

    Args:
        target: A DuckDB connection, a SQLAlchemy ``Engine`` or ``Connection``, a ``str``
            containing ``://`` (a SQLAlchemy URL), or another ``str``/path (a DuckDB file,
            opened read-only).
        start: First day of the scope; defaults to ``gen_watermark.first_day``.
        end: Last day of the scope (inclusive); defaults to ``gen_watermark.last_day``.
        only: Check ids to run (e.g. ``["INV-01", "W-02"]``); all of them by default.

    Returns:
        The report, with one :class:`CheckResult` per check run, in catalogue order. Violations
        never raise.

    Raises:
        DateRangeError: ``end`` is before ``start``.
        ValueError: ``only`` names an unknown check.
        TypeError: ``target`` is of an unsupported type.
        DatabaseError: A DuckDB file does not exist or cannot be opened.
    """
    start, end = _as_date(start), _as_date(end)
    if start is not None and end is not None and end < start:
        raise DateRangeError(f"end {end} is before start {start}")
    checks = _select(only)
    began = time.perf_counter()
    with _open(target) as db:
        ctx = _load_context(db, start, end)
        runner = _Runner(db, ctx)
        results = [runner.run(check) for check in checks]
        has_rows = _has_fact_rows(db, ctx)
    report = InvariantReport(results, has_fact_rows=has_rows)
    logger.debug(
        "ran %d invariant checks in %.2f s: %d errors, %d warnings",
        len(results), time.perf_counter() - began, len(report.errors), len(report.warnings),
    )
    return report


__all__ = [
    "CATALOGUE",
    "CHECK_IDS",
    "CheckResult",
    "InvariantReport",
    "run_invariants",
]
