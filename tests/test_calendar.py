"""Tests for retail_datagen.calendar (behaviour.md §2, §3, §5.6, §13)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from retail_datagen import calendar as cal
from retail_datagen import rng

YEARS = range(2023, 2031)


# --- §2.1 ----------------------------------------------------------------------------------------


def test_curve_norm_is_weekday_core_sum() -> None:
    assert cal.WEEKDAY_CURVE.shape == (24,)
    assert cal.WEEKEND_CURVE.shape == (24,)
    assert cal.WEEKDAY_CURVE.dtype == np.float64
    assert cal.WEEKDAY_CURVE[8:22].sum() == pytest.approx(cal.CURVE_NORM, abs=1e-9)
    assert cal.CURVE_NORM == 12.112


def test_curve_values() -> None:
    assert cal.WEEKDAY_CURVE[:6].tolist() == [0.02] * 6
    assert cal.WEEKDAY_CURVE[12] == 1.146 and cal.WEEKDAY_CURVE[23] == 0.15
    assert cal.WEEKEND_CURVE[:6].tolist() == [0.03] * 6
    assert cal.WEEKEND_CURVE[14] == 1.285 and cal.WEEKEND_CURVE[23] == 0.20


def test_hour_curve_by_weekday() -> None:
    friday, saturday, sunday = date(2024, 11, 29), date(2024, 11, 30), date(2024, 12, 1)
    assert cal.hour_curve(friday) is cal.WEEKDAY_CURVE
    assert cal.hour_curve(saturday) is cal.WEEKEND_CURVE
    assert cal.hour_curve(sunday) is cal.WEEKEND_CURVE


def test_constants_are_read_only() -> None:
    with pytest.raises(ValueError):
        cal.WEEKDAY_CURVE[0] = 1.0


@pytest.mark.parametrize(
    ("month", "name", "mult"),
    [(1, "winter", 1.4), (2, "winter", 1.4), (3, "spring", 1.0), (5, "spring", 1.0),
     (6, "summer", 0.9), (8, "summer", 0.9), (9, "fall", 1.2), (11, "fall", 1.2),
     (12, "winter", 1.4)],
)  # fmt: skip
def test_season(month: int, name: str, mult: float) -> None:
    day = date(2024, month, 15)
    assert cal.season_name(day) == name
    assert cal.season_multiplier(day) == mult


def test_dow_multiplier() -> None:
    monday = date(2024, 11, 25)
    got = [cal.dow_multiplier(monday + timedelta(days=i)) for i in range(7)]
    assert got == [0.9, 0.85, 0.85, 0.95, 1.1, 1.2, 1.1]
    assert tuple(got) == cal.DOW_MULT


# --- §2.2 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iso", "expected"),
    [("2024-11-27", 1.32), ("2024-11-28", 0.8), ("2024-11-30", 1.46),
     ("2024-12-24", 1.9), ("2024-12-27", 1.8), ("2025-01-01", 0.5)],
)  # fmt: skip
def test_holiday_check_values(iso: str, expected: float) -> None:
    assert cal.holiday_multiplier(date.fromisoformat(iso)) == pytest.approx(expected, abs=1e-4)


def test_holiday_around_new_year() -> None:
    # Dec 31: Christmas (Δ 6 of 7 → 1.4) beats next year's New Year's Day (Δ 1 → 0.85).
    assert cal.holiday_multiplier(date(2024, 12, 31)) == pytest.approx(1.4)
    assert cal.holiday_multiplier(date(2025, 1, 2)) == pytest.approx(0.85)
    assert cal.holiday_multiplier(date(2024, 3, 20)) == 1.0


def test_2024_rule_dates() -> None:
    assert cal.thanksgiving(2024) == date(2024, 11, 28)
    assert cal.black_friday(2024) == date(2024, 11, 29)
    assert cal.memorial_day(2024) == date(2024, 5, 27)
    assert cal.labor_day(2024) == date(2024, 9, 2)
    assert cal.mothers_day(2024) == date(2024, 5, 12)
    assert cal.fathers_day(2024) == date(2024, 6, 16)


def test_known_rule_dates_other_years() -> None:
    assert cal.thanksgiving(2023) == date(2023, 11, 23)
    assert cal.thanksgiving(2025) == date(2025, 11, 27)
    assert cal.memorial_day(2023) == date(2023, 5, 29)
    assert cal.memorial_day(2025) == date(2025, 5, 26)
    assert cal.labor_day(2023) == date(2023, 9, 4)
    assert cal.labor_day(2025) == date(2025, 9, 1)
    assert cal.mothers_day(2023) == date(2023, 5, 14)
    assert cal.mothers_day(2025) == date(2025, 5, 11)
    assert cal.fathers_day(2023) == date(2023, 6, 18)
    assert cal.fathers_day(2025) == date(2025, 6, 15)


@pytest.mark.parametrize("year", YEARS)
def test_rule_dates_every_year(year: int) -> None:
    tg = cal.thanksgiving(year)
    assert tg.month == 11 and tg.weekday() == 3 and 22 <= tg.day <= 28
    bf = cal.black_friday(year)
    assert bf == tg + timedelta(days=1) and bf.weekday() == 4
    md = cal.memorial_day(year)
    assert md.month == 5 and md.weekday() == 0 and 25 <= md.day <= 31
    ld = cal.labor_day(year)
    assert ld.month == 9 and ld.weekday() == 0 and 1 <= ld.day <= 7
    mom = cal.mothers_day(year)
    assert mom.month == 5 and mom.weekday() == 6 and 8 <= mom.day <= 14
    dad = cal.fathers_day(year)
    assert dad.month == 6 and dad.weekday() == 6 and 15 <= dad.day <= 21


@pytest.mark.parametrize("year", YEARS)
def test_holiday_dates_table_order(year: int) -> None:
    rows = cal.holiday_dates(year)
    assert [h for h, _ in rows] == list(cal.HOLIDAYS)
    assert len(cal.HOLIDAYS) == 14
    named = {h.name: d for h, d in rows}
    assert named["New Year's Day"] == date(year, 1, 1)
    assert named["Thanksgiving"] == cal.thanksgiving(year)
    assert named["Black Friday"] == cal.black_friday(year)
    assert named["Boxing Day"] == date(year, 12, 26)
    for holiday, d in rows:
        assert d.year == year
        assert cal.holiday_multiplier(d) == holiday.multiplier


def _reference_holiday(day: date) -> float:
    """Straightforward reading of behaviour.md §2.2, for comparison."""
    rows = [
        (i, h, d)
        for y in (day.year - 1, day.year, day.year + 1)
        for i, (h, d) in enumerate(cal.holiday_dates(y))
    ]
    rows.sort(key=lambda r: r[0])
    exact = [h.multiplier for _, h, d in rows if d == day]
    if exact:
        return max(exact, key=lambda m: abs(m - 1))
    best = None
    for _, h, d in rows:
        delta = abs((day - d).days)
        if 1 <= delta <= h.duration_days:
            e = 1 + (h.multiplier - 1) * max(0.3, 1 - 0.7 * delta / h.duration_days)
            if best is None or abs(e - 1) > abs(best - 1):
                best = e
    return 1.0 if best is None else best


def test_holiday_matches_reference_over_years() -> None:
    day = date(2023, 1, 1)
    while day <= date(2030, 12, 31):
        assert cal.holiday_multiplier(day) == _reference_holiday(day), day
        day += timedelta(days=1)


def test_seasonal_is_season_times_holiday() -> None:
    bf = date(2024, 11, 29)
    assert cal.seasonal(bf) == 1.2 * 1.6
    assert cal.seasonal(date(2024, 7, 15)) == 0.9


# --- §2.3 and §2.4 -------------------------------------------------------------------------------


def test_weather_probabilities() -> None:
    spring = cal.weather_probabilities(date(2024, 4, 1))
    winter = cal.weather_probabilities(date(2024, 1, 1))
    assert spring.shape == (5,)
    assert spring.tolist() == [0.4, 0.3, 0.3, 0.0, 0.0]
    assert winter.tolist() == [0.2, 0.3, 0.1, 0.3, 0.1]
    assert cal.WEATHER_MULT.tolist() == [1.05, 1.0, 0.9, 0.85, 0.75]
    assert len(cal.REGIONS) == 5 and cal.REGIONS[0] == "Northeast"


def test_draw_weather_layout_and_determinism() -> None:
    day = date(2024, 1, 17)
    got = cal.draw_weather(42, day)
    assert got.shape == (5,) and got.dtype == np.int64
    assert np.array_equal(got, cal.draw_weather(42, day))
    for r in range(5):
        u = rng.stream(42, "weather", day, r + 1).random(1)[0]
        cdf = np.cumsum(cal.weather_probabilities(day))
        expected = min(int(np.searchsorted(cdf / cdf[-1], u, side="right")), 4)
        assert got[r] == expected


def test_draw_weather_respects_season_and_varies() -> None:
    start = date(2024, 4, 1)
    draws = np.array([cal.draw_weather(7, start + timedelta(days=i)) for i in range(60)])
    assert draws.max() <= 2  # spring has no snow or storms
    assert len({tuple(row) for row in draws}) > 10
    other_seed = np.array([cal.draw_weather(8, start + timedelta(days=i)) for i in range(60)])
    assert not np.array_equal(draws, other_seed)


def test_promo_events() -> None:
    assert cal.PROMO_EVENT_P.sum() == pytest.approx(1.0)
    assert cal.PROMO_EVENTS[-1] == "none" and cal.PROMO_EVENT_MULT[-1] == 1.0
    day = date(2024, 6, 3)
    ids = np.arange(1, 41)
    got = cal.draw_promo_events(5, day, ids)
    assert got.shape == (40, 24) and got.dtype == np.float64
    assert set(np.unique(got)) <= set(cal.PROMO_EVENT_MULT.tolist())
    assert np.array_equal(got, cal.draw_promo_events(5, day, ids))
    # A store's row depends only on its own shard.
    assert np.array_equal(got[[9, 3]], cal.draw_promo_events(5, day, np.array([10, 4])))
    other = cal.draw_promo_events(5, day + timedelta(days=1), ids)
    assert not np.array_equal(got, other)
    idx = rng.categorical(rng.stream(5, "promo_event", day, 17), cal.PROMO_EVENT_P, 24)
    assert np.array_equal(got[16], cal.PROMO_EVENT_MULT[idx])
    assert 0.1 < (got != 1.0).mean() < 0.3


def test_draw_promo_events_no_stores() -> None:
    assert cal.draw_promo_events(1, date(2024, 1, 1), np.array([], dtype=np.int64)).shape == (0, 24)


def test_store_hour_multiplier() -> None:
    bf = date(2024, 11, 29)  # fall 1.2 × BF 1.6 × Friday 1.1
    weather = np.array([1.1, 0.5, 1.0])
    promo = np.ones((3, 24))
    promo[0, 5] = 3.0
    got = cal.store_hour_multiplier(bf, weather, promo)
    assert got.shape == (3, 24)
    assert got[0, 5] == 5.0  # clamped
    assert got[1, 0] == 1.2 * 1.6 * 1.1 * 0.5
    plain = date(2024, 3, 20)  # spring 1.0, no holiday, Wednesday 0.85
    got = cal.store_hour_multiplier(plain, np.array([1.1]), np.full((1, 24), 2.0))
    assert np.all(got == 1.0 * 1.0 * 0.85 * min(3.0, 1.1 * 2.0))
    assert np.all(
        cal.store_hour_multiplier(plain, np.array([2.0]), np.full((1, 24), 2.0)) == 0.85 * 3.0
    )


# --- §3, §5.6, §13 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iso", "boost"),
    [("2024-11-29", 2.5), ("2024-11-18", 1.7), ("2024-11-28", 1.7), ("2024-11-17", 1.0),
     ("2024-11-30", 1.0), ("2024-12-10", 1.0), ("2024-12-11", 1.5), ("2024-12-25", 1.5),
     ("2024-12-26", 1.0), ("2024-05-25", 1.5), ("2024-05-29", 1.5), ("2024-05-24", 1.0),
     ("2024-07-02", 1.5), ("2024-07-06", 1.5), ("2024-07-07", 1.0), ("2024-08-31", 1.5),
     ("2024-09-04", 1.5), ("2024-09-05", 1.0), ("2024-03-03", 1.0)],
)  # fmt: skip
def test_marketing_boost(iso: str, boost: float) -> None:
    assert cal.marketing_boost(date.fromisoformat(iso)) == boost


def test_store_closed_only_on_christmas() -> None:
    assert cal.is_store_closed(date(2024, 12, 25))
    assert cal.is_store_closed(date(2030, 12, 25))
    assert not cal.is_store_closed(date(2024, 12, 24))
    assert not cal.is_store_closed(date(2024, 12, 26))


def _windows(iso: str) -> dict[str, bool]:
    return cal.overlay_windows(date.fromisoformat(iso))


def test_overlay_windows() -> None:
    keys = {"thanksgiving", "black_friday", "december", "grilling", "extra_lines"}
    assert set(_windows("2024-01-10")) == keys
    assert not any(_windows("2024-01-10").values())
    assert _windows("2024-11-18")["thanksgiving"] and _windows("2024-11-18")["extra_lines"]
    assert not _windows("2024-11-17")["thanksgiving"]
    bf = _windows("2024-11-29")
    assert bf["thanksgiving"] and bf["black_friday"] and bf["extra_lines"]
    assert not _windows("2024-11-30")["thanksgiving"]
    assert not _windows("2024-11-28")["black_friday"]
    assert _windows("2024-12-11")["december"] and _windows("2024-12-24")["december"]
    assert not _windows("2024-12-10")["december"] and not _windows("2024-12-25")["december"]
    assert not _windows("2024-12-22")["extra_lines"]
    assert _windows("2024-12-23")["extra_lines"] and _windows("2024-12-24")["extra_lines"]
    assert not _windows("2024-12-25")["extra_lines"]
    for iso in ("2024-05-25", "2024-05-27", "2024-05-29", "2024-07-04", "2024-08-31", "2024-09-04"):
        assert _windows(iso)["grilling"], iso
    for iso in ("2024-05-24", "2024-05-30", "2024-07-07", "2024-09-05"):
        assert not _windows(iso)["grilling"], iso
