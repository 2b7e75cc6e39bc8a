"""What the ``retail-datagen`` command line draws: tables, verdicts, progress, masked secrets.

Everything here turns results into text with rich and holds no command logic;
:mod:`retail_datagen.cli` parses the options, calls the public API and hands the results over.
Like the CLI module, it imports nothing heavy, so ``retail-datagen --help`` stays fast.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)
_SECRET_PAIR = re.compile(
    r"(?P<key>\b(?:SharedAccessKey|SharedAccessSignature|AccountKey|Password|Pwd|Sig|Token)"
    r"\s*=\s*)[^;&\s]+",
    re.IGNORECASE,
)


def mask_secrets(value: str) -> str:
    """Return ``value`` with URL passwords and connection-string keys replaced by ``***``.

    Args:
        value: Any text, e.g. ``postgresql://user:pw@host/db`` or ``Endpoint=sb://…;
            SharedAccessKey=…``.
    """
    return _SECRET_PAIR.sub(r"\g<key>***", _URL_PASSWORD.sub(r"\g<head>***@", value))


def render_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Group:
    """A title line and a rich table of literal text (never markup), integers right-aligned."""
    table = Table(*headers)
    for i, column in enumerate(table.columns):
        if rows and all(isinstance(row[i], int) for row in rows):
            column.justify = "right"
    for row in rows:
        table.add_row(*(Text(f"{v:,}" if isinstance(v, int) else str(v)) for v in row))
    return Group(Text(title, style="bold"), table)


def validation_verdict(results: dict[str, Any]) -> tuple[bool, str]:
    """``(passed, one-line verdict)`` of a ``validation_results`` / ``to_dict()`` mapping."""
    if results.get("skipped"):
        return True, "validation: skipped"
    passed = bool(results.get("passed"))
    return passed, (f"validation: {'passed' if passed else 'FAILED'} "
                    f"({results.get('error_count', 0)} errors, "
                    f"{results.get('warning_count', 0)} warnings)")


def check_status(check: Any) -> str:
    """The status cell of one invariant check: ``ok``, ``skipped``, ``warn`` or ``FAIL``."""
    if getattr(check, "skipped", False):
        return "skipped"
    violations = getattr(check, "violations", 0) or 0
    if getattr(check, "passed", not violations) and not violations:
        return "ok"
    return "FAIL" if str(getattr(check, "severity", "error")).lower().startswith("e") else "warn"


def event_json(event: Any) -> str:
    """One outbox event as a JSON line."""
    # Same shape as the lines `outbox drain` writes (timestamps as in payloads).
    data = event.to_json_dict() if hasattr(event, "to_json_dict") else event.model_dump(mode="json")
    return json.dumps(data, ensure_ascii=False, default=str)


def counts_line(counts: dict[str, int]) -> str:
    """The one-line outbox summary: events per status and the total."""
    keys = ("pending", "processing", "sent", "failed", "total")
    return "outbox: " + ", ".join(f"{k} {int(counts.get(k, 0)):,}" for k in keys)


def clip(text: str, width: int | None) -> str:
    """``text`` cut to ``width`` characters with an ellipsis (``None``: uncut)."""
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


_DAY_MESSAGE = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2}) \(day (?P<day>\d+)/(?P<total>\d+)\)")


class FactsProgress:
    """The day callback of ``facts``: a live rich bar, or one plain line per committed day.

    The bar (bar, percent, day d/N, current date, rows written, rows/s, ETA) is redrawn by
    rich at most 10 times a second. The engine delivers at most one callback per 100 ms, so
    in plain mode days committed in between are caught up from the day numbers, their dates
    counted back from ``end`` (the generated days always end there).
    """

    def __init__(self, console: Console, end: date, *, live: bool) -> None:
        self._console, self._end, self._live = console, end, live
        self._started = time.monotonic()
        self._total: int | None = None
        self._done = self._printed = self._rows = 0
        self._current = "----------"
        self._eta: float | None = None
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> FactsProgress:
        self._started = time.monotonic()
        if self._live:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            columns = ["day {task.fields[day]}", "{task.fields[date]}", "{task.fields[rows]} rows",
                       "{task.fields[rate]} rows/s", "ETA {task.fields[eta]}"]
            self._progress = Progress(
                TextColumn("facts"), BarColumn(), TaskProgressColumn(),
                *(TextColumn(c, markup=False) for c in columns),
                console=self._console, refresh_per_second=10,
            )
            self._progress.start()
            self._task = self._progress.add_task("facts", total=None, **self._fields())
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return self._rows / elapsed if elapsed > 0 else 0.0

    def _fields(self) -> dict[str, str]:
        eta = 0.0 if self._total is not None and self._done >= self._total else self._eta
        if eta is None and self._total and self._done:
            eta = (time.monotonic() - self._started) / self._done * (self._total - self._done)
        total = "?" if self._total is None else self._total
        return {"day": f"{self._done}/{total}", "date": self._current, "rows": f"{self._rows:,}",
                "rate": f"{self._rate():,.0f}",
                "eta": "-:--:--" if eta is None else str(timedelta(seconds=round(eta)))}

    def __call__(self, day_counter: int, message: str, **kwargs: Any) -> None:
        """Take one engine progress update (api.md §7) and redraw."""
        counts = kwargs.get("table_counts")
        if isinstance(counts, dict):
            self._rows = sum(int(v) for v in counts.values())
        if kwargs.get("estimated_seconds_remaining") is not None:
            self._eta = float(kwargs["estimated_seconds_remaining"])
        match = _DAY_MESSAGE.search(message)
        if match:
            self._total, self._current = int(match["total"]), match["date"]
            day = int(match["day"])
            self._done = day if message.startswith("Generated") else day - 1
        elif message.startswith("Historical generation complete") and self._total is not None:
            self._done = self._total
        if self._progress is not None:
            self._progress.update(self._task, total=self._total, completed=self._done,
                                  **self._fields())
            return
        while self._total is not None and self._printed < self._done:
            self._printed += 1
            day = self._end - timedelta(days=self._total - self._printed)
            line = f"day {self._printed}/{self._total} {day.isoformat()} done"
            if self._printed == self._done:
                line += f"  {self._rows:,} rows  {self._rate():,.0f} rows/s"
            self._console.print(line, markup=False, highlight=False)


__all__ = [
    "FactsProgress",
    "check_status",
    "clip",
    "counts_line",
    "event_json",
    "mask_secrets",
    "render_table",
    "validation_verdict",
]
