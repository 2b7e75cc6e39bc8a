"""Calendar factors: seasons, weekdays, hour curves, holidays, weather and promo events.

Everything here is a pure function of the date (plus the seed and shard for the random draws), so
any day of any year can be generated on its own. The numbers are those of behaviour.md §2, §3,
§5.6 and §13. Multipliers are Python floats; per-hour and per-store factors are float64 arrays.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from retail_datagen import rng

__all__ = [
    "CURVE_NORM",
    "DOW_MULT",
    "HOLIDAYS",
    "PROMO_EVENTS",
    "PROMO_EVENT_MULT",
    "PROMO_EVENT_P",
    "REGIONS",
    "SEASON_MULT",
    "WEATHER_CONDITIONS",
    "WEATHER_MULT",
    "WEEKDAY_CURVE",
    "WEEKEND_CURVE",
    "Holiday",
    "black_friday",
    "dow_multiplier",
    "draw_promo_events",
    "draw_weather",
    "fathers_day",
    "holiday_dates",
    "holiday_multiplier",
    "hour_curve",
    "is_store_closed",
    "labor_day",
    "marketing_boost",
    "memorial_day",
    "mothers_day",
    "overlay_windows",
    "season_multiplier",
    "season_name",
    "seasonal",
    "store_hour_multiplier",
    "thanksgiving",
    "weather_probabilities",
]


def _frozen(values: list[float]) -> np.ndarray:
    # Module constants are shared by every caller; read-only stops one caller corrupting another.
    arr = np.array(values, dtype=np.float64)
    arr.flags.writeable = False
    return arr


# --- §2.1 season, weekday and hour -------------------------------------------------------------

SEASON_MULT: dict[str, float] = {"spring": 1.0, "summer": 0.9, "fall": 1.2, "winter": 1.4}

_SEASON_BY_MONTH = (
    "winter", "winter", "spring", "spring", "spring", "summer",
    "summer", "summer", "fall", "fall", "fall", "winter",
)  # fmt: skip

DOW_MULT: tuple[float, ...] = (0.9, 0.85, 0.85, 0.95, 1.1, 1.2, 1.1)

WEEKDAY_CURVE: np.ndarray = _frozen(
    [0.02] * 6
    + [0.10, 0.20, 0.30, 0.40, 0.50, 0.80, 1.146, 1.146, 0.70, 0.70, 0.70, 1.20, 1.46, 1.46]
    + [0.90, 0.70, 0.35, 0.15]
)
WEEKEND_CURVE: np.ndarray = _frozen(
    [0.03] * 6
    + [0.08, 0.15, 0.25, 0.40, 0.60, 0.80, 1.00, 1.176, 1.285, 1.285, 1.176, 1.10, 1.00]
    + [0.90, 0.80, 0.60, 0.40, 0.20]
)
CURVE_NORM: float = 12.112


def season_name(day: date) -> str:
    """The season of ``day``: ``"spring"`` (Mar–May), ``"summer"``, ``"fall"`` or ``"winter"``."""
    return _SEASON_BY_MONTH[day.month - 1]


def season_multiplier(day: date) -> float:
    """``season(D)`` of behaviour.md §2.1."""
    return SEASON_MULT[season_name(day)]


def dow_multiplier(day: date) -> float:
    """``dow(D)``: Friday to Sunday busiest, Tuesday and Wednesday lightest (docs/realism.md)."""
    return DOW_MULT[day.weekday()]


def hour_curve(day: date) -> np.ndarray:
    """The hour curve for ``day``.

    Returns:
        Read-only float64 array of shape (24,): the weekday curve Mon–Fri, the weekend curve
        Sat–Sun.
    """
    return WEEKEND_CURVE if day.weekday() >= 5 else WEEKDAY_CURVE


# --- §2.2 holidays -----------------------------------------------------------------------------


class Holiday(NamedTuple):
    """One row of the holiday table (behaviour.md §2.2)."""

    name: str
    multiplier: float
    duration_days: int


HOLIDAYS: tuple[Holiday, ...] = (
    Holiday("New Year's Day", 0.5, 1),
    Holiday("Valentine's Day", 1.4, 3),
    Holiday("Mother's Day", 1.6, 3),
    Holiday("Memorial Day", 1.2, 1),
    Holiday("Father's Day", 1.3, 3),
    Holiday("Independence Day", 1.2, 1),
    Holiday("Back to School", 1.8, 14),
    Holiday("Labor Day", 1.1, 1),
    Holiday("Halloween", 1.3, 7),
    Holiday("Veterans Day", 1.3, 1),
    Holiday("Thanksgiving", 0.8, 1),
    Holiday("Black Friday", 1.6, 3),
    Holiday("Christmas", 2.0, 7),
    Holiday("Boxing Day", 2.5, 1),
)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) ``weekday`` (Monday 0) of the month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def thanksgiving(year: int) -> date:
    """Fourth Thursday of November."""
    return _nth_weekday(year, 11, 3, 4)


def black_friday(year: int) -> date:
    """The day after Thanksgiving."""
    return thanksgiving(year) + timedelta(days=1)


def memorial_day(year: int) -> date:
    """Last Monday of May."""
    last = date(year, 5, 31)
    return last - timedelta(days=last.weekday())


def labor_day(year: int) -> date:
    """First Monday of September."""
    return _nth_weekday(year, 9, 0, 1)


def mothers_day(year: int) -> date:
    """Second Sunday of May."""
    return _nth_weekday(year, 5, 6, 2)


def fathers_day(year: int) -> date:
    """Third Sunday of June."""
    return _nth_weekday(year, 6, 6, 3)


@lru_cache(maxsize=256)
def _holiday_dates(year: int) -> tuple[tuple[Holiday, date], ...]:
    tg = thanksgiving(year)
    dates = (
        date(year, 1, 1),
        date(year, 2, 14),
        mothers_day(year),
        memorial_day(year),
        fathers_day(year),
        date(year, 7, 4),
        date(year, 8, 15),
        labor_day(year),
        date(year, 10, 31),
        date(year, 11, 11),
        tg,
        tg + timedelta(days=1),
        date(year, 12, 25),
        date(year, 12, 26),
    )
    return tuple(zip(HOLIDAYS, dates, strict=True))


def holiday_dates(year: int) -> list[tuple[Holiday, date]]:
    """Every holiday of ``year`` with its date, in table order."""
    return list(_holiday_dates(year))


@lru_cache(maxsize=4096)
def holiday_multiplier(day: date) -> float:
    """``holiday(D)`` of behaviour.md §2.2, from the holidays of years y−1, y and y+1.

    A holiday date returns its own multiplier (largest |m−1| if several share the date). Otherwise
    each holiday within its duration contributes
    ``e = 1 + (m−1) × max(0.3, 1 − 0.7 × |Δ|/duration)`` and the e with the largest |e−1| wins,
    ties to table order. Far from every holiday the result is 1.0.
    """
    by_year = [_holiday_dates(year) for year in (day.year - 1, day.year, day.year + 1)]
    # Table order first, then year, so that "ties go to table order" holds with a strict >.
    candidates = [(holiday, dates[i][1]) for i, holiday in enumerate(HOLIDAYS) for dates in by_year]

    exact = [h.multiplier for h, d in candidates if d == day]
    if exact:
        best = exact[0]
        for m in exact[1:]:
            if abs(m - 1.0) > abs(best - 1.0):
                best = m
        return best

    best_e: float | None = None
    for holiday, d in candidates:
        delta = abs((day - d).days)
        if 1 <= delta <= holiday.duration_days:
            m = holiday.multiplier
            e = 1.0 + (m - 1.0) * max(0.3, 1.0 - 0.7 * delta / holiday.duration_days)
            if best_e is None or abs(e - 1.0) > abs(best_e - 1.0):
                best_e = e
    return 1.0 if best_e is None else best_e


def seasonal(day: date) -> float:
    """``seasonal(D) = season(D) × holiday(D)``, the driver of online volume (behaviour.md §11)."""
    return season_multiplier(day) * holiday_multiplier(day)


# --- §2.3 weather and promo events -------------------------------------------------------------

WEATHER_CONDITIONS: tuple[str, ...] = ("sunny", "cloudy", "rainy", "snowy", "stormy")
WEATHER_MULT: np.ndarray = _frozen([1.05, 1.0, 0.9, 0.85, 0.75])
REGIONS: tuple[str, ...] = ("Northeast", "Southeast", "Midwest", "Southwest", "West")

_WEATHER_P: dict[str, np.ndarray] = {
    "spring": _frozen([0.4, 0.3, 0.3, 0.0, 0.0]),
    "summer": _frozen([0.6, 0.3, 0.1, 0.0, 0.0]),
    "fall": _frozen([0.3, 0.4, 0.2, 0.1, 0.0]),
    "winter": _frozen([0.2, 0.3, 0.1, 0.3, 0.1]),
}

PROMO_EVENTS: tuple[str, ...] = ("flash_sale", "weekend_sale", "clearance", "seasonal_sale", "none")
PROMO_EVENT_P: np.ndarray = _frozen([0.020, 0.098, 0.044, 0.025, 0.813])
PROMO_EVENT_MULT: np.ndarray = _frozen([2.0, 1.5, 1.3, 1.4, 1.0])


def weather_probabilities(day: date) -> np.ndarray:
    """Condition probabilities for the season of ``day``.

    Returns:
        Read-only float64 array of shape (5,), in ``WEATHER_CONDITIONS`` order.
    """
    return _WEATHER_P[season_name(day)]


def draw_weather(seed: int, day: date) -> np.ndarray:
    """Each region's weather condition on ``day``.

    Region ``REGIONS[r]`` draws one categorical from stream ``weather`` with shard ``r + 1``.

    Returns:
        int64 array of shape (5,): condition indices into ``WEATHER_CONDITIONS``, in ``REGIONS``
        order. ``WEATHER_MULT[result]`` gives the multipliers.
    """
    return _weather(seed, day).copy()


@lru_cache(maxsize=64)
def _weather(seed: int, day: date) -> np.ndarray:
    # Every unit-day of a day reads the same network weather: drawn once per process.
    p = weather_probabilities(day)
    out = np.empty(len(REGIONS), dtype=np.int64)
    for r in range(len(REGIONS)):
        out[r] = rng.categorical(rng.stream(seed, "weather", day, r + 1), p, 1)[0]
    out.flags.writeable = False
    return out


def draw_promo_events(seed: int, day: date, store_ids: np.ndarray) -> np.ndarray:
    """The promo-event multiplier of every store-hour on ``day``.

    Each store draws 24 categoricals (hours 0–23) from stream ``promo_event`` with shard
    ``store_id``.

    Args:
        seed: The run seed.
        day: The simulated day.
        store_ids: Integer array of shape (n_stores,).

    Returns:
        float64 array of shape (n_stores, 24): ``promo(s, D, h)``.
    """
    ids = np.asarray(store_ids, dtype=np.int64).reshape(-1)
    idx = np.empty((ids.size, 24), dtype=np.int64)
    for i, store_id in enumerate(ids.tolist()):
        idx[i] = rng.categorical(rng.stream(seed, "promo_event", day, store_id), PROMO_EVENT_P, 24)
    return PROMO_EVENT_MULT[idx]


# --- §2.4 overall store multiplier -------------------------------------------------------------


def store_hour_multiplier(
    day: date, weather_mult_by_store: np.ndarray, promo_mult: np.ndarray
) -> np.ndarray:
    """``M(s, D, h)`` of behaviour.md §2.4 for every store-hour.

    ``clamp(season × holiday × dow × min(3.0, weather × promo), 0, 5)``, evaluated left to right so
    that the float result is reproducible bit for bit.

    Args:
        day: The simulated day.
        weather_mult_by_store: float64 array of shape (n_stores,): the weather multiplier of each
            store's region.
        promo_mult: float64 array of shape (n_stores, 24), as from :func:`draw_promo_events`.

    Returns:
        float64 array of shape (n_stores, 24).
    """
    weather = np.asarray(weather_mult_by_store, dtype=np.float64).reshape(-1, 1)
    promo = np.asarray(promo_mult, dtype=np.float64)
    day_factor = season_multiplier(day) * holiday_multiplier(day) * dow_multiplier(day)
    return np.clip(day_factor * np.minimum(3.0, weather * promo), 0.0, 5.0)


# --- §3, §5.6 and §13 windows ------------------------------------------------------------------


def _within(day: date, centre: date, before: int, after: int) -> bool:
    return centre - timedelta(days=before) <= day <= centre + timedelta(days=after)


def _grilling(day: date) -> bool:
    y = day.year
    return any(_within(day, c, 2, 2) for c in (memorial_day(y), date(y, 7, 4), labor_day(y)))


def marketing_boost(day: date) -> float:
    """The marketing multiplier of behaviour.md §13 (first matching row wins)."""
    tg = thanksgiving(day.year)
    if day == tg + timedelta(days=1):
        return 2.5
    if _within(day, tg, 10, 0):
        return 1.7
    if day.month == 12 and 11 <= day.day <= 25:
        return 1.5
    if _grilling(day):
        return 1.5
    return 1.0


def is_store_closed(day: date) -> bool:
    """All stores are closed on Dec 25 (behaviour.md §3)."""
    return day.month == 12 and day.day == 25


def overlay_windows(day: date) -> dict[str, bool]:
    """Which holiday-overlay windows of behaviour.md §5.6 contain ``day``.

    Returns:
        ``{"thanksgiving": TG−10..TG+1, "black_friday": BF, "december": Dec 11..Dec 24,
        "grilling": Memorial Day, Jul 4 or Labor Day ±2 days, "extra_lines": TG−10..TG+1 or
        Dec 23–24}``.
    """
    tg = thanksgiving(day.year)
    thanks = _within(day, tg, 10, 1)
    december = day.month == 12 and 11 <= day.day <= 24
    return {
        "thanksgiving": thanks,
        "black_friday": day == tg + timedelta(days=1),
        "december": december,
        "grilling": _grilling(day),
        "extra_lines": thanks or (day.month == 12 and day.day in (23, 24)),
    }
