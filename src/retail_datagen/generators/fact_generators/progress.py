"""Hour-granular progress of a generation call, safe to update from several threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

_HOURS_PER_DAY = 24


class HourlyProgressTracker:
    """Counts the (day, hour) slots completed for each tracked fact table.

    The engine marks hours 0–23 of every included table once a day is committed, so the
    per-table progress is the share of the call's hours that are safely written. Marking the
    same slot twice counts it once.

    Args:
        fact_tables: Logical names of the tables to track.
    """

    def __init__(self, fact_tables: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._tables: tuple[str, ...] = tuple(dict.fromkeys(fact_tables))
        self._completed: dict[str, set[tuple[int, int]]] = {t: set() for t in self._tables}
        self._current: tuple[int, int] = (0, 0)
        self._total_days = 0
        self._recorded = False

    def update_hourly_progress(self, table: str, day: int, hour: int, total_days: int) -> None:
        """Mark one hour of one table as complete.

        An unknown table, an hour outside 0–23, a day below 1 or a negative ``total_days`` is
        ignored and logged at DEBUG, because progress reporting must never stop generation.

        Args:
            table: Logical table name.
            day: 1-based day within the current call.
            hour: Hour of that day, 0–23.
            total_days: Number of days in the current call.
        """
        if table not in self._completed:
            logger.debug("progress update for untracked table %r ignored", table)
            return
        if not 0 <= hour < _HOURS_PER_DAY or day < 1 or total_days < 0:
            logger.debug(
                "progress update ignored for %s: day=%r hour=%r total_days=%r",
                table, day, hour, total_days,
            )
            return
        with self._lock:
            self._completed[table].add((day, hour))
            self._current = max(self._current, (day, hour))
            self._total_days = total_days
            self._recorded = True

    def get_current_progress(self) -> dict[str, Any]:
        """A snapshot of the progress, in the format of earlier releases of this class.

        Returns:
            A dict with these keys:

            * ``overall_progress``: the largest per-table progress (0–1); 0.0 before any
              update (new or reset: nothing recorded); 1.0 when an update gave
              ``total_days`` 0, since there is then nothing left to do.
            * ``tables_in_progress``: every tracked table, sorted, while
              0 < ``overall_progress`` < 1; otherwise empty.
            * ``current_day``, ``current_hour``: the latest (day, hour) recorded, (0, 0) before
              any update.
            * ``per_table_progress``: table -> completed_hours / (total_days × 24), capped at 1.
            * ``completed_hours``: table -> number of distinct completed hours.
            * ``total_days``: from the latest update, 0 before any.
        """
        with self._lock:
            completed = {t: len(slots) for t, slots in self._completed.items()}
            current_day, current_hour = self._current
            total_days = self._total_days
            recorded = self._recorded
        total_hours = total_days * _HOURS_PER_DAY
        if not recorded:
            per_table = {t: 0.0 for t in completed}
            overall = 0.0
        elif total_hours == 0:
            per_table = {t: 1.0 for t in completed}
            overall = 1.0
        else:
            per_table = {t: min(1.0, n / total_hours) for t, n in completed.items()}
            overall = max(per_table.values(), default=0.0)
        in_progress = sorted(completed) if 0.0 < overall < 1.0 else []
        return {
            "overall_progress": overall,
            "tables_in_progress": in_progress,
            "current_day": current_day,
            "current_hour": current_hour,
            "per_table_progress": per_table,
            "completed_hours": completed,
            "total_days": total_days,
        }

    def reset(self) -> None:
        """Forget every recorded hour, the current position and ``total_days``."""
        with self._lock:
            for slots in self._completed.values():
                slots.clear()
            self._current = (0, 0)
            self._total_days = 0
            self._recorded = False
