"""SQL machinery of the invariant catalogue: checks, queries, scope and dialect rendering.

A check (:class:`Check`) builds one or more :class:`Query` objects from the run's
:class:`Context`. Each query is SQL that returns the *violating rows*. Scope, filtered-run and
dialect details are written into the SQL as markers that :meth:`Context.render` expands:

``<<rows:e>>``
    ``e`` (a timestamp) lies in ``[start, end + 1 day)`` *and* on a day whose
    ``gen_day_log.included_tables`` lists every fact table the query reads.
``<<scope:e>>``
    ``e`` lies in ``[start, end + 1 day)`` (entity anchors).
``<<span:f;l>>``
    Every logged day from ``f`` to ``l`` includes every fact table the query reads.
``<<days>>``, ``<<outbox_days>>``
    A derived table ``d(dd)`` of the judged days (only those logged with ``outbox = true``).
``<<first_day>>``, ``<<end_ts>>``
    ``gen_watermark.first_day`` at 00:00, and ``last_day + 1`` at 00:00.
``<<cap_last:e>>``
    ``least(e, last_day 00:00)``.
``<<idiv:a;b>>``
    Integer division (``//`` in DuckDB, ``/`` in PostgreSQL).
``<<ymd:e>>``, ``<<isots:e>>``
    ``e`` formatted ``YYYYMMDD``, or ``YYYY-MM-DDTHH:MM:SS.ffffff``.
``<<parse_ymd:e>>``
    A ``YYYYMMDD`` string as a DATE (NULL when malformed).
``<<json_keys:e>>``, ``<<key_set:k>>``
    The top-level keys of a JSON object (NULL when ``e`` is not valid JSON), and such a key
    value as its sorted, comma-joined string.

A marker that cannot be rendered (no watermark, no judged day) skips the query: a check whose
queries are all skipped has nothing to judge and is reported as passed and skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from retail_datagen.db.schema import FACT_TABLE_DB_NAMES, metadata

Severity = Literal["error", "warning"]
Dialect = Literal["duckdb", "postgresql"]
Range = tuple[datetime | None, datetime | None]

#: Database names of the fact tables, and their logical names (as logged in ``gen_day_log``).
FACT_DB_NAMES: frozenset[str] = frozenset(FACT_TABLE_DB_NAMES.values())
LOGICAL_BY_DB: dict[str, str] = {db: logical for logical, db in FACT_TABLE_DB_NAMES.items()}

# Longest names first, so that fact_receipt_lines is never read as fact_receipts.
_TABLE_RE = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, metadata.tables), key=len, reverse=True)) + r")\b"
)
# Innermost markers first: the argument may not contain another marker.
_MARKER_RE = re.compile(r"<<(\w+)(?::((?:(?!<<|>>).)*?))?>>", re.S)


class SkipQuery(Exception):
    """Raised while rendering or post-processing a query that has nothing to judge."""


@dataclass(frozen=True)
class Query:
    """One read-only SQL query returning violating rows.

    Attributes:
        sql: The SQL text with markers (module docstring).
        tables: Overrides the fact tables the query is taken to read; by default they are found
            in ``sql``.
        whole: Fact tables (DB names) whose full history the query needs: it is skipped unless
            each was included on every logged day up to the end of the scope.
        whole_to_last: Like ``whole``, but every logged day counts (state comparisons).
        post: Turns the fetched rows into violating rows in Python (it may raise
            :class:`SkipQuery`); without it, every fetched row is a violation.
        guard: SQL returning one value; when it is false the query has nothing to judge.
    """

    sql: str
    tables: tuple[str, ...] | None = None
    whole: tuple[str, ...] = ()
    whole_to_last: bool = False
    post: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    guard: str | None = None


@dataclass(frozen=True)
class Check:
    """A numbered invariant: an id, a title and a builder of its queries."""

    id: str
    title: str
    build: Callable[[Context], Iterable[Query]]

    @property
    def severity(self) -> Severity:
        """``warning`` for ``W-*`` checks, ``error`` for ``INV-*``."""
        return "warning" if self.id.startswith("W-") else "error"


@dataclass(frozen=True)
class LoggedDay:
    """A ``gen_day_log`` row: the day, its included logical tables and its outbox flag."""

    day: date
    tables: frozenset[str]
    outbox: bool


def _ts(value: datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def sql_date(value: date) -> str:
    """Render a DATE literal both dialects accept."""
    return f"DATE '{value.isoformat()}'"


def sql_str(value: str) -> str:
    """Render a string literal, doubling embedded quotes."""
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: Iterable[str]) -> str:
    """Render ``'a', 'b'`` for an ``IN (...)`` list."""
    return ", ".join(sql_str(v) for v in values)


def violations(*rules: tuple[str, str]) -> str:
    """Return a ``rule`` column naming every broken rule of a row (``''`` when none is).

    Args:
        *rules: ``(condition, label)`` pairs; a NULL condition counts as not broken.

    Returns:
        A ``concat_ws('; ', CASE WHEN cond THEN 'label' END, ...)`` expression; wrap the query
        and keep the rows ``WHERE rule <> ''``.
    """
    parts = ", ".join(f"CASE WHEN {cond} THEN {sql_str(label)} END" for cond, label in rules)
    return f"concat_ws('; ', {parts})"


def values_table(alias: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Render a ``(VALUES ...) AS alias(columns)`` derived table of string/int literals."""

    def lit(v: Any) -> str:
        if isinstance(v, bool) or v is None:
            raise TypeError("values_table takes strings and integers only")
        return str(v) if isinstance(v, int) else sql_str(str(v))

    body = ", ".join("(" + ", ".join(lit(v) for v in row) + ")" for row in rows)
    return f"(VALUES {body}) AS {alias}({', '.join(columns)})"


def _range_sql(expr: str, ranges: Sequence[Range]) -> str:
    terms = []
    for lo, hi in ranges:
        parts = ([f"{expr} >= {_ts(lo)}"] if lo else []) + ([f"{expr} < {_ts(hi)}"] if hi else [])
        terms.append("(" + " AND ".join(parts) + ")" if parts else "TRUE")
    if "TRUE" in terms:
        return "TRUE"
    return "(" + " OR ".join(terms) + ")"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


@dataclass
class Context:
    """Everything a check needs to render its SQL: dialect, tables, scope and run metadata.

    Attributes:
        dialect: ``duckdb`` or ``postgresql``.
        tables: Names of the tables that exist in the database.
        first_day: ``gen_watermark.first_day``, or None without a watermark.
        last_day: ``gen_watermark.last_day``, or None.
        lo: Start of the scope (``start`` 00:00), or None for unbounded.
        hi: End of the scope (``end + 1 day`` 00:00, exclusive), or None for unbounded.
        logged: The ``gen_day_log`` rows in day order, or None when the log is absent or empty
            (every table then counts as included every day).
        config: ``gen_metadata.config_data`` parsed, or None.
        notes: Remarks collected while building the current check.
    """

    dialect: Dialect
    tables: frozenset[str]
    first_day: date | None
    last_day: date | None
    lo: datetime | None
    hi: datetime | None
    logged: tuple[LoggedDay, ...] | None
    config: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    # --- filtered runs -----------------------------------------------------------------------

    def _ok(self, day: LoggedDay, db_tables: Iterable[str]) -> bool:
        return all(LOGICAL_BY_DB[t] in day.tables for t in db_tables)

    def ok_ranges(self, db_tables: Iterable[str]) -> list[Range]:
        """Maximal runs of logged days that include every one of ``db_tables``.

        Unlogged days never break a run, so the first and last runs extend without bound when
        they reach the first or last logged day.

        Args:
            db_tables: Fact tables (DB names).

        Returns:
            ``[(from, to)]`` half-open timestamp ranges; ``None`` is unbounded.
        """
        tables = [t for t in db_tables if t in FACT_DB_NAMES]
        if self.logged is None:
            return [(None, None)]
        runs: list[list[date]] = []
        current: list[date] | None = None
        for entry in self.logged:
            if self._ok(entry, tables):
                if current is None:
                    current = [entry.day, entry.day]
                    runs.append(current)
                current[1] = entry.day
            else:
                current = None
        first, last = self.logged[0].day, self.logged[-1].day
        return [
            (
                None if a == first else _midnight(a),
                None if b == last else _midnight(b + timedelta(days=1)),
            )
            for a, b in runs
        ]

    def row_ranges(self, db_tables: Iterable[str]) -> list[Range]:
        """The judged ranges of a row check: ``ok_ranges`` intersected with the scope."""
        out: list[Range] = []
        for a, b in self.ok_ranges(db_tables):
            lo = max((x for x in (a, self.lo) if x is not None), default=None)
            hi = min((x for x in (b, self.hi) if x is not None), default=None)
            if lo is None or hi is None or lo < hi:
                out.append((lo, hi))
        return out

    def judged_days(self, db_tables: Iterable[str], *, outbox_only: bool = False) -> list[date]:
        """The days in scope whose log lists every one of ``db_tables``.

        Without a day log, every day of a bounded scope counts; an unbounded scope without a
        log has no enumerable days.
        """
        tables = list(db_tables)
        if self.logged is None:
            if outbox_only or self.lo is None or self.hi is None:
                return []
            n = (self.hi - self.lo).days
            return [self.lo.date() + timedelta(days=i) for i in range(n)]
        return [
            e.day
            for e in self.logged
            if self._ok(e, tables)
            and (not outbox_only or e.outbox)
            and (self.lo is None or _midnight(e.day) >= self.lo)
            and (self.hi is None or _midnight(e.day) < self.hi)
        ]

    def whole_ok(self, db_tables: Iterable[str], *, to_last: bool) -> bool:
        """Tell whether each table was included on every logged day up to the scope end."""
        if self.logged is None:
            return True
        tables = list(db_tables)
        return all(
            self._ok(e, tables)
            for e in self.logged
            if to_last or self.hi is None or _midnight(e.day) < self.hi
        )

    def note(self, message: str) -> None:
        """Attach a remark to the check being built (e.g. a sub-check that could not run)."""
        self.notes.append(message)

    # --- rendering ---------------------------------------------------------------------------

    def referenced(self, query: Query) -> tuple[set[str], set[str]]:
        """Return (all tables, fact tables) a query reads."""
        found = set(_TABLE_RE.findall(query.sql))
        facts = set(query.tables) if query.tables is not None else found & FACT_DB_NAMES
        return found | facts, facts

    def render(self, query: Query) -> str:
        """Expand the markers of ``query`` into plain SQL of this context's dialect.

        Raises:
            SkipQuery: A table it reads is missing, its ``whole`` tables were not included
                throughout, or a marker has nothing to render (no watermark, no judged day).
        """
        tables, facts = self.referenced(query)
        if not tables <= self.tables:
            raise SkipQuery(f"missing tables: {sorted(tables - self.tables)}")
        if query.whole and not self.whole_ok(query.whole, to_last=query.whole_to_last):
            raise SkipQuery("a table was excluded on a logged day")
        sql = query.sql
        while True:
            new = _MARKER_RE.sub(lambda m: self._expand(m.group(1), m.group(2), facts), sql)
            if new == sql:
                return new
            sql = new

    def _watermark_ts(self, which: str) -> datetime:
        if self.first_day is None or self.last_day is None:
            raise SkipQuery("no gen_watermark")
        if which == "first":
            return _midnight(self.first_day)
        if which == "last":
            return _midnight(self.last_day)
        return _midnight(self.last_day + timedelta(days=1))

    def _days_table(self, days: list[date]) -> str:
        if not days:
            raise SkipQuery("no judged day")
        return "(VALUES " + ", ".join(f"({sql_date(d)})" for d in days) + ") AS d(dd)"

    def _expand(self, name: str, arg: str | None, facts: set[str]) -> str:
        args = [a.strip() for a in arg.split(";")] if arg is not None else []
        duck = self.dialect == "duckdb"
        if name == "rows":
            ranges = self.row_ranges(facts)
            if not ranges:
                raise SkipQuery("no judged day")
            return _range_sql(args[0], ranges)
        if name == "scope":
            return _range_sql(args[0], [(self.lo, self.hi)])
        if name == "span":
            ranges = self.ok_ranges(facts)
            if not ranges:
                raise SkipQuery("no judged day")
            if ranges == [(None, None)]:
                return "TRUE"
            terms = [
                "(" + " AND ".join(
                    ([f"{args[0]} >= {_ts(a)}"] if a else [])
                    + ([f"{args[1]} < {_ts(b)}"] if b else [])
                ) + ")"
                for a, b in ranges
            ]
            return "(" + " OR ".join(terms) + ")"
        if name == "days":
            return self._days_table(self.judged_days(facts))
        if name == "outbox_days":
            return self._days_table(self.judged_days(facts, outbox_only=True))
        if name == "first_day":
            return _ts(self._watermark_ts("first"))
        if name == "end_ts":
            return _ts(self._watermark_ts("end"))
        if name == "cap_last":
            if self.last_day is None:
                return args[0]
            return f"LEAST({args[0]}, {_ts(self._watermark_ts('last'))})"
        if name == "idiv":
            return f"(({args[0]}) {'//' if duck else '/'} ({args[1]}))"
        if name == "ymd":
            return f"strftime({args[0]}, '%Y%m%d')" if duck else f"to_char({args[0]}, 'YYYYMMDD')"
        if name == "isots":
            if duck:
                return f"strftime({args[0]}, '%Y-%m-%dT%H:%M:%S.%f')"
            return f"to_char({args[0]}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
        if name == "parse_ymd":
            if duck:
                return f"CAST(try_strptime({args[0]}, '%Y%m%d') AS DATE)"
            return (
                f"(CASE WHEN ({args[0]}) ~ '^[0-9]{{8}}$' "
                f"THEN to_date({args[0]}, 'YYYYMMDD') END)"
            )
        if name == "json_keys":
            # DuckDB: the unsorted key list (cheap); PostgreSQL: already the sorted string.
            if duck:
                return f"(CASE WHEN json_valid({args[0]}) THEN json_keys({args[0]}) END)"
            return (
                "(SELECT string_agg(k, ',' ORDER BY k COLLATE \"C\") "
                f"FROM jsonb_object_keys(CAST({args[0]} AS jsonb)) AS k)"
            )
        if name == "key_set":
            # A <<json_keys>> value as its sorted, comma-joined string.
            return f"array_to_string(list_sort({args[0]}), ',')" if duck else args[0]
        raise ValueError(f"unknown SQL marker <<{name}>>")


__all__ = [
    "FACT_DB_NAMES",
    "LOGICAL_BY_DB",
    "Check",
    "Context",
    "Dialect",
    "LoggedDay",
    "Query",
    "Severity",
    "SkipQuery",
    "sql_date",
    "sql_list",
    "sql_str",
    "values_table",
    "violations",
]
