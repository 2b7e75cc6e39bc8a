"""HourlyProgressTracker and the progress callbacks of ProgressReportingMixin (api.md §6–7)."""

from __future__ import annotations

import logging
import threading

import pytest

from retail_datagen.generators.fact_generators.progress import HourlyProgressTracker
from retail_datagen.generators.fact_generators.progress_reporting_mixin import (
    ETA_WINDOW,
    ProgressReportingMixin,
    init_progress_state,
    linear_eta,
)

TRACKER_LOGGER = "retail_datagen.generators.fact_generators.progress"
MIXIN_LOGGER = "retail_datagen.generators.fact_generators.progress_reporting_mixin"


class FakeClock:
    """A monotonic clock moved by hand, in whole milliseconds to avoid float drift."""

    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> float:
        return self.ms / 1000

    def advance(self, ms: int) -> None:
        self.ms += ms


class Host(ProgressReportingMixin):
    def __init__(self) -> None:
        init_progress_state(self)
        self.clock = FakeClock()
        self._progress_clock = self.clock


class Recorder:
    """A day callback that accepts everything and records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, dict]] = []

    def __call__(self, day_counter, message, **kwargs):
        self.calls.append((day_counter, message, kwargs))


def mark_day(tracker: HourlyProgressTracker, table: str, day: int, total_days: int) -> None:
    for hour in range(24):
        tracker.update_hourly_progress(table, day, hour, total_days)


# --- HourlyProgressTracker -------------------------------------------------------------------


def test_tracker_partial_progress_reports_every_key():
    tracker = HourlyProgressTracker(["receipts", "ble_pings"])
    mark_day(tracker, "receipts", 1, total_days=2)
    progress = tracker.get_current_progress()
    assert progress == {
        "overall_progress": 0.5,
        "tables_in_progress": ["ble_pings", "receipts"],
        "current_day": 1,
        "current_hour": 23,
        "per_table_progress": {"receipts": 0.5, "ble_pings": 0.0},
        "completed_hours": {"receipts": 24, "ble_pings": 0},
        "total_days": 2,
    }


def test_tracker_overall_is_the_largest_table_and_complete_means_no_tables_in_progress():
    tracker = HourlyProgressTracker(["a", "b"])
    mark_day(tracker, "a", 1, total_days=1)
    tracker.update_hourly_progress("b", 1, 0, 1)
    progress = tracker.get_current_progress()
    assert progress["overall_progress"] == 1.0
    assert progress["per_table_progress"]["b"] == pytest.approx(1 / 24)
    assert progress["tables_in_progress"] == []


def test_tracker_overall_is_one_when_total_days_is_zero():
    tracker = HourlyProgressTracker(["a"])
    tracker.update_hourly_progress("a", 1, 0, total_days=0)
    progress = tracker.get_current_progress()
    assert progress["overall_progress"] == 1.0
    assert progress["tables_in_progress"] == []
    assert progress["total_days"] == 0


def test_tracker_counts_an_hour_once_and_caps_progress_at_one():
    tracker = HourlyProgressTracker(["a"])
    mark_day(tracker, "a", 1, total_days=1)
    mark_day(tracker, "a", 1, total_days=1)
    assert tracker.get_current_progress()["completed_hours"] == {"a": 24}
    mark_day(tracker, "a", 2, total_days=1)
    progress = tracker.get_current_progress()
    assert progress["completed_hours"] == {"a": 48}
    assert progress["per_table_progress"] == {"a": 1.0}


def test_tracker_current_position_is_the_latest_day_then_hour():
    tracker = HourlyProgressTracker(["a"])
    tracker.update_hourly_progress("a", 2, 3, 5)
    tracker.update_hourly_progress("a", 1, 23, 5)
    progress = tracker.get_current_progress()
    assert (progress["current_day"], progress["current_hour"]) == (2, 3)


@pytest.mark.parametrize(
    ("table", "day", "hour"),
    [("unknown", 1, 0), ("a", 1, 24), ("a", 1, -1), ("a", 0, 5)],
)
def test_tracker_ignores_bad_updates_and_logs_at_debug(caplog, table, day, hour):
    tracker = HourlyProgressTracker(["a"])
    before = tracker.get_current_progress()
    with caplog.at_level(logging.DEBUG, logger=TRACKER_LOGGER):
        tracker.update_hourly_progress(table, day, hour, 3)
    assert tracker.get_current_progress() == before
    records = [r for r in caplog.records if r.name == TRACKER_LOGGER]
    assert records and all(r.levelno == logging.DEBUG for r in records)


def test_tracker_reset_clears_everything():
    tracker = HourlyProgressTracker(["a"])
    fresh = tracker.get_current_progress()
    mark_day(tracker, "a", 1, total_days=4)
    tracker.reset()
    assert tracker.get_current_progress() == fresh


def test_tracker_is_thread_safe():
    tables = ["receipts", "receipt_lines", "ble_pings"]
    tracker = HourlyProgressTracker(tables)
    n_threads, days_per_thread = 8, 5
    total_days = n_threads * days_per_thread
    barrier = threading.Barrier(n_threads + 1)
    snapshots: list[dict] = []

    def worker(index: int) -> None:
        barrier.wait()
        for day in range(index * days_per_thread + 1, (index + 1) * days_per_thread + 1):
            for table in tables:
                mark_day(tracker, table, day, total_days)

    def reader() -> None:
        barrier.wait()
        for _ in range(200):
            snapshots.append(tracker.get_current_progress())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    threads.append(threading.Thread(target=reader))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    progress = tracker.get_current_progress()
    assert progress["completed_hours"] == {t: total_days * 24 for t in tables}
    assert progress["overall_progress"] == 1.0
    assert (progress["current_day"], progress["current_hour"]) == (total_days, 23)
    assert all(0.0 <= s["overall_progress"] <= 1.0 for s in snapshots)


# --- day callback: keyword filtering ---------------------------------------------------------


def test_callback_with_var_keywords_gets_every_non_none_keyword():
    host, rec = Host(), Recorder()
    host.set_progress_callback(rec)
    host._send_throttled_progress_update(
        3, "msg", current_table="receipts", table_counts={"receipts": 5}, current_hour=None
    )
    assert rec.calls == [(3, "msg", {"current_table": "receipts", "table_counts": {"receipts": 5}})]


def test_callback_with_named_parameters_gets_only_those():
    host = Host()
    seen: list[tuple] = []

    def callback(day, message, table_counts=None, *, current_table=None):
        seen.append((day, message, table_counts, current_table))

    host.set_progress_callback(callback)
    host._send_throttled_progress_update(
        1, "m", table_counts={"a": 1}, current_table="a", tables_remaining=["b"]
    )
    assert seen == [(1, "m", {"a": 1}, "a")]


def test_first_two_parameters_never_receive_keywords_whatever_their_names():
    host = Host()
    seen: list[tuple] = []

    def callback(current_table, message):
        seen.append((current_table, message))

    host.set_progress_callback(callback)
    host._send_throttled_progress_update(7, "m", current_table="receipts")
    assert seen == [(7, "m")]


def test_two_parameter_lambda_gets_no_keywords():
    host = Host()
    seen: list[tuple] = []
    host.set_progress_callback(lambda day, message: seen.append((day, message)))
    host._send_throttled_progress_update(
        2, "m", current_table="a", table_progress={"a": 0.5}, progress=0.5
    )
    assert seen == [(2, "m")]


def test_uninspectable_callback_is_called_with_day_and_message_only():
    seen: list[tuple] = []

    class Opaque:
        __signature__ = "not a signature"  # makes inspect.signature raise TypeError

        def __call__(self, *args, **kwargs):
            seen.append((args, kwargs))

    host = Host()
    host.set_progress_callback(Opaque())
    host._send_throttled_progress_update(4, "m", current_table="a")
    assert seen == [((4, "m"), {})]


# --- day callback: throttling and ETA --------------------------------------------------------


def test_rapid_updates_are_throttled_but_first_and_forced_final_are_delivered():
    host, rec = Host(), Recorder()
    host.set_progress_callback(rec)
    delivered = []
    for i in range(100):
        delivered.append(host._send_throttled_progress_update(i, f"step {i}"))
        host.clock.advance(10)
    assert delivered[0] is True
    assert host._send_throttled_progress_update(100, "done", force=True) is True
    messages = [m for _, m, _ in rec.calls]
    assert messages[0] == "step 0"
    assert messages[-1] == "done"
    # One delivery per 100 ms over one second, plus the forced final one.
    assert len(rec.calls) == 11
    assert sum(delivered) == 10


def test_no_callback_means_no_delivery_and_no_logging(caplog):
    host = Host()
    with caplog.at_level(logging.DEBUG):
        assert host._send_throttled_progress_update(0, "m", force=True) is False
        assert host._emit_table_progress("a", 0.5, "m", None, force=True) is False
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]


def test_eta_is_none_until_two_samples_then_linear():
    host, rec = Host(), Recorder()
    host.set_progress_callback(rec)
    host._send_throttled_progress_update(0, "start", progress=0.0)
    assert "estimated_seconds_remaining" not in rec.calls[-1][2]
    assert "progress_rate" not in rec.calls[-1][2]
    host.clock.advance(1000)
    host._send_throttled_progress_update(1, "next", progress=0.1)
    kwargs = rec.calls[-1][2]
    assert kwargs["progress_rate"] == pytest.approx(0.1)
    assert kwargs["estimated_seconds_remaining"] == pytest.approx(9.0)


def test_eta_uses_only_the_last_ten_samples():
    host, rec = Host(), Recorder()
    host.set_progress_callback(rec)
    # A slow start (0.1 in 10 s), then steady progress of 0.05 per second.
    host._send_throttled_progress_update(0, "m", progress=0.0)
    host.clock.advance(10_000)
    progress = 0.1
    for _ in range(ETA_WINDOW):
        host._send_throttled_progress_update(0, "m", progress=progress, force=True)
        host.clock.advance(1000)
        progress += 0.05
    kwargs = rec.calls[-1][2]
    assert kwargs["progress_rate"] == pytest.approx(0.05)
    assert kwargs["estimated_seconds_remaining"] == pytest.approx((1 - 0.55) / 0.05)


def test_eta_falls_back_to_hourly_progress():
    host, rec = Host(), Recorder()
    host.set_progress_callback(rec)
    host._send_throttled_progress_update(0, "m", hourly_progress={"a": 0.2, "b": 0.1})
    host.clock.advance(2000)
    host._send_throttled_progress_update(1, "m", hourly_progress={"a": 0.4, "b": 0.3})
    assert rec.calls[-1][2]["progress_rate"] == pytest.approx(0.1)


def test_explicit_eta_keywords_win_over_computed_ones():
    host, rec = Host(), Recorder()
    host.set_progress_callback(rec)
    host._send_throttled_progress_update(0, "m", progress=0.0)
    host.clock.advance(1000)
    host._send_throttled_progress_update(1, "m", progress=0.5, estimated_seconds_remaining=42.0)
    assert rec.calls[-1][2]["estimated_seconds_remaining"] == 42.0


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([], (None, None)),
        ([(0.0, 0.3)], (None, None)),
        ([(1.0, 0.2), (1.0, 0.4)], (None, None)),
        ([(0.0, 0.5), (2.0, 0.5)], (None, 0.0)),
        ([(0.0, 0.5), (1.0, 1.0)], (0.0, 0.5)),
        ([(0.0, 0.0), (2.0, 0.5)], (2.0, 0.25)),
    ],
)
def test_linear_eta(samples, expected):
    assert linear_eta(samples) == expected


def test_reset_makes_the_next_update_a_first_one_and_restarts_the_eta():
    host, rec = Host(), Recorder()
    host.set_progress_callback(rec)
    host._send_throttled_progress_update(0, "a", progress=0.0)
    host.clock.advance(500)
    host._send_throttled_progress_update(1, "b", progress=0.5)
    host._reset_progress_reporting()
    assert host._send_throttled_progress_update(0, "c", progress=0.0) is True
    assert "progress_rate" not in rec.calls[-1][2]


# --- callback failures -----------------------------------------------------------------------


def test_raising_callback_is_logged_once_at_warning_and_generation_continues(caplog):
    host = Host()
    calls = []

    def broken(day, message):
        calls.append(day)
        raise RuntimeError("listener bug")

    host.set_progress_callback(broken)
    with caplog.at_level(logging.DEBUG, logger=MIXIN_LOGGER):
        for day in range(3):
            assert host._send_throttled_progress_update(day, "m", force=True) is True
    assert calls == [0, 1, 2]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].exc_info is not None


def test_raising_table_callback_is_logged_once_at_warning(caplog):
    host = Host()

    def broken(table, progress, message, counts):
        raise ValueError("listener bug")

    host.set_table_progress_callback(broken)
    with caplog.at_level(logging.WARNING, logger=MIXIN_LOGGER):
        for _ in range(3):
            host._emit_table_progress("receipts", 0.5, "m", None, force=True)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_mixin_without_state_explains_how_to_initialise():
    class Bare(ProgressReportingMixin):
        pass

    with pytest.raises(AttributeError, match="init_progress_state"):
        Bare().set_progress_callback(print)


# --- table callback --------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "delivered"), [(1.7, 1.0), (-0.2, 0.0), (float("nan"), 0.0),
                                                  (0.25, 0.25)])
def test_table_callback_clamps_progress(given, delivered):
    host = Host()
    seen: list[tuple] = []
    host.set_table_progress_callback(lambda *args: seen.append(args))
    host._emit_table_progress("receipts", given, "Writing receipts (1,234)", {"receipts": 1234})
    assert seen == [("receipts", delivered, "Writing receipts (1,234)", {"receipts": 1234})]


def test_table_callback_is_throttled_per_table_with_forced_final():
    host = Host()
    seen: list[tuple] = []
    host.set_table_progress_callback(lambda *args: seen.append(args[:3]))
    assert host._emit_table_progress("a", 0.1, "a1", None) is True
    host.clock.advance(10)
    assert host._emit_table_progress("b", 0.1, "b1", None) is True
    host.clock.advance(40)
    assert host._emit_table_progress("a", 0.2, "a2", None) is False
    assert host._emit_table_progress("a", 1.0, "a-final", None, force=True) is True
    host.clock.advance(100)
    assert host._emit_table_progress("b", 0.3, "b2", None) is True
    assert [m for _, _, m in seen] == ["a1", "b1", "a-final", "b2"]
