"""Throttled progress callbacks with an ETA, for day-level and table-level listeners.

Callbacks are user code: they are filtered to the keyword arguments they accept, delivered at
most every 100 ms, and their exceptions never stop generation.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

#: Minimum spacing of two deliveries to the same listener, in seconds.
PROGRESS_THROTTLE_SECONDS = 0.1
#: Number of ``(monotonic time, overall progress)`` samples the ETA rate is measured over.
ETA_WINDOW = 10

_DAY = "day"
_TABLE = "table"
_STATE_ATTRIBUTES = (
    "_progress_callback", "_table_progress_callback", "_progress_clock", "_progress_lock",
    "_progress_last_sent", "_progress_samples", "_callback_warned", "_table_last_sent",
)


def init_progress_state(host: ProgressReportingMixin) -> None:
    """Create on ``host`` every attribute :class:`ProgressReportingMixin` uses.

    The host calls this once from its ``__init__``; no callback is set afterwards.

    Args:
        host: The object that inherits :class:`ProgressReportingMixin`.
    """
    host._progress_callback = None
    host._table_progress_callback = None
    host._progress_clock = time.monotonic
    host._progress_lock = threading.Lock()
    host._callback_warned = set()
    host._progress_last_sent = None
    host._progress_samples = deque(maxlen=ETA_WINDOW)
    host._table_last_sent = {}


def _throttled(now: float, last: float | None, *, force: bool) -> bool:
    """Whether an update at ``now`` falls in the throttle window of the one sent at ``last``."""
    return not force and last is not None and now - last < PROGRESS_THROTTLE_SECONDS


def _keywords_for(callback: Callable[..., Any], payload: dict[str, Any]) -> dict[str, Any] | None:
    """The part of ``payload`` that ``callback`` accepts after ``(day_counter, message)``.

    Returns:
        All of ``payload`` if the callback takes ``**kwargs``; only its keyword-capable
        parameters other than the first two positional ones otherwise; None if its signature
        cannot be inspected (it is then called with the two positional arguments only).
    """
    try:
        params = list(inspect.signature(callback).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return payload
    positional_kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    # day_counter and message fill the first two positional slots, whatever they are named.
    taken = [p.name for p in params if p.kind in positional_kinds][:2]
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = {p.name for p in params if p.kind in keyword_kinds and p.name not in taken}
    return {k: v for k, v in payload.items() if k in named}


def linear_eta(samples: list[tuple[float, float]]) -> tuple[float | None, float | None]:
    """The ETA and rate of a linear progress over ``(time, progress)`` samples.

    Args:
        samples: Oldest first; progress is a fraction 0–1.

    Returns:
        ``(estimated_seconds_remaining, progress_rate)``; both None with fewer than 2 samples
        or no elapsed time; the ETA is None while progress does not advance.
    """
    if len(samples) < 2:
        return None, None
    (t0, p0), (t1, p1) = samples[0], samples[-1]
    elapsed = t1 - t0
    if elapsed <= 0:
        return None, None
    rate = (p1 - p0) / elapsed
    if p1 >= 1.0:
        return 0.0, rate
    if rate <= 0:
        return None, rate
    return (1.0 - p1) / rate, rate


class ProgressReportingMixin:
    """Delivers progress to the day-level and table-level callbacks of ``api.md`` §7.

    This mixin defines the following functionality:

    Adds:
        ``set_progress_callback``, ``set_table_progress_callback``,
        ``_send_throttled_progress_update``, ``_emit_table_progress`` and
        ``_reset_progress_reporting``. No tables.
    Reads:
        nothing outside the attributes below.
    Writes:
        only these attributes, all created by :func:`init_progress_state`, which the host
        calls from its ``__init__``:

        * ``_progress_callback``: the day callback, or None.
        * ``_table_progress_callback``: the table callback, or None.
        * ``_progress_clock``: ``() -> float`` monotonic seconds (``time.monotonic``).
        * ``_progress_lock``: ``threading.Lock`` guarding the throttle and sample state.
        * ``_progress_last_sent``: clock value of the last day delivery, None before any.
        * ``_progress_samples``: ``deque[(clock, overall progress)]`` of at most 10 entries.
        * ``_callback_warned``: set of ``"day"``/``"table"`` whose exception was logged.
        * ``_table_last_sent``: table -> clock value of its last delivery.
    Streams:
        none.
    """

    def set_progress_callback(self, callback: Callable[..., Any] | None) -> None:
        """Set the day-level callback, ``callback(day_counter, message, **kwargs)``.

        Args:
            callback: The listener, or None to stop reporting.
        """
        self._require_progress_state()
        self._progress_callback = callback
        self._callback_warned.discard(_DAY)

    def set_table_progress_callback(
        self, callback: Callable[[str, float, str, dict[str, int] | None], Any] | None
    ) -> None:
        """Set the table-level callback, ``cb(table_name, progress, message, table_counts)``.

        Args:
            callback: The listener, or None to stop reporting.
        """
        self._require_progress_state()
        self._table_progress_callback = callback
        self._callback_warned.discard(_TABLE)

    def _reset_progress_reporting(self) -> None:
        """Start a new generation call: the next update is a "first" one and the ETA restarts.

        Callbacks and the once-only warning record are kept.
        """
        self._require_progress_state()
        with self._progress_lock:
            self._progress_last_sent = None
            self._progress_samples.clear()
            self._table_last_sent.clear()

    def _send_throttled_progress_update(
        self,
        day_counter: int,
        message: str,
        *,
        force: bool = False,
        progress: float | None = None,
        **kwargs: Any,
    ) -> bool:
        """Deliver a day-level update unless one went out less than 100 ms ago.

        The first update after :meth:`_reset_progress_reporting` (or construction) and every
        ``force=True`` update are always delivered; the caller forces the final one.
        ``estimated_seconds_remaining`` and ``progress_rate`` are added from the samples
        unless given.

        Args:
            day_counter: Days completed so far (0 while preparing).
            message: Human-readable status line.
            force: Deliver even inside the throttle window.
            progress: Overall progress 0–1, recorded as an ETA sample and not forwarded.
                When None, the largest value of ``hourly_progress`` (the tracker's overall
                progress) is used if that keyword is given.
            **kwargs: Candidate keywords of ``api.md`` §7; None values are dropped and the
                rest are filtered to what the callback accepts.

        Returns:
            Whether the callback was called.
        """
        self._require_progress_state()
        callback = self._progress_callback
        if callback is None:
            return False
        if progress is None and kwargs.get("hourly_progress"):
            progress = max(kwargs["hourly_progress"].values())
        with self._progress_lock:
            now = self._progress_clock()
            if progress is not None:
                self._progress_samples.append((now, float(progress)))
            last = self._progress_last_sent
            if _throttled(now, last, force=force):
                return False
            self._progress_last_sent = now
            eta, rate = linear_eta(list(self._progress_samples))
        kwargs.setdefault("estimated_seconds_remaining", eta)
        kwargs.setdefault("progress_rate", rate)
        payload = {k: v for k, v in kwargs.items() if v is not None}
        keywords = _keywords_for(callback, payload)
        try:
            if keywords is None:
                callback(day_counter, message)
            else:
                callback(day_counter, message, **keywords)
        except Exception:  # user code must not stop generation
            self._log_progress_callback_failure(_DAY)
        return True

    def _emit_table_progress(
        self,
        table: str,
        progress: float,
        message: str,
        table_counts: Mapping[str, int] | None,
        *,
        force: bool = False,
    ) -> bool:
        """Deliver a table-level update unless that table had one less than 100 ms ago.

        Each table is throttled on its own; its first update and every ``force=True`` update
        are always delivered.

        Args:
            table: Logical table name.
            progress: The table's progress, clamped to 0–1 (NaN counts as 0).
            message: For example ``"Writing receipts (1,234)"``.
            table_counts: ``{table: cumulative_rows}``, or None.
            force: Deliver even inside the throttle window.

        Returns:
            Whether the callback was called.
        """
        self._require_progress_state()
        callback = self._table_progress_callback
        if callback is None:
            return False
        with self._progress_lock:
            now = self._progress_clock()
            last = self._table_last_sent.get(table)
            if _throttled(now, last, force=force):
                return False
            self._table_last_sent[table] = now
        value = 0.0 if math.isnan(progress) else min(1.0, max(0.0, float(progress)))
        counts = dict(table_counts) if table_counts is not None else None
        try:
            callback(table, value, message, counts)
        except Exception:  # user code must not stop generation
            self._log_progress_callback_failure(_TABLE)
        return True

    def _log_progress_callback_failure(self, kind: str) -> None:
        # Once at WARNING per callback so a broken listener cannot flood the log.
        if kind in self._callback_warned:
            logger.debug("%s progress callback raised again", kind, exc_info=True)
            return
        self._callback_warned.add(kind)
        logger.warning(
            "%s progress callback raised; generation continues (further errors are logged "
            "at DEBUG)", kind, exc_info=True,
        )

    def _require_progress_state(self) -> None:
        missing = [name for name in _STATE_ATTRIBUTES if not hasattr(self, name)]
        if missing:
            raise AttributeError(
                f"{type(self).__name__} lacks {', '.join(missing)}; its __init__ must call "
                "progress_reporting_mixin.init_progress_state(self)"
            )
