"""Identifiers shared by the engine, the outbox and the readers (fact-tables.md §0,
sharding.md §3): the day tag of external ids and the day-sequenced ids of a unit-day."""

from __future__ import annotations

from datetime import date

import numpy as np

from retail_datagen.errors import GenerationError


def day_tag(day: date) -> str:
    """``YYYYMMDD`` of a day, as used in every external id."""
    return day.strftime("%Y%m%d")


#: DSID = YYYYMMDD × 10^11 + unit × 10^8 + n (sharding.md §3).
DSID_DAY = 100_000_000_000
DSID_UNIT = 100_000_000
DSID_MAX_ROWS = DSID_UNIT - 1


def unit_day_ids(day: date, units: np.ndarray) -> np.ndarray:
    """DSIDs of rows already in DSID order: n counts 1.. within each row's unit.

    Args:
        day: The day D of every row.
        units: int64 array, shape (n_rows,): the unit of each row (0 = network, else dc_id).

    Raises:
        GenerationError: a unit-day holds more than 99,999,999 rows.
    """
    units = np.asarray(units, dtype=np.int64)
    # A unit-day's rows mostly share one unit: then no sort is needed.
    in_order = units.size < 2 or bool((units[1:] >= units[:-1]).all())
    order = None if in_order else np.argsort(units, kind="stable")
    ranked = units if order is None else units[order]
    # Position within the run of equal units (``ranked`` is sorted), counted from 1.
    n = np.arange(ranked.size, dtype=np.int64) - np.searchsorted(ranked, ranked) + 1
    if n.size and int(n.max()) > DSID_MAX_ROWS:
        raise GenerationError(f"{day}: more than {DSID_MAX_ROWS:,} rows of one unit-day do not "
                              "fit a day-sequenced id", day=day)
    ranked_ids = int(day_tag(day)) * DSID_DAY + ranked * DSID_UNIT + n
    if order is None:
        return ranked_ids
    ids = np.empty(units.size, dtype=np.int64)
    ids[order] = ranked_ids
    return ids


def dsid_unit(ids: np.ndarray) -> np.ndarray:
    """The unit encoded in DSIDs (int64 array)."""
    return np.asarray(ids, dtype=np.int64) // DSID_UNIT % 1000


__all__ = ["DSID_DAY", "DSID_MAX_ROWS", "DSID_UNIT", "day_tag", "dsid_unit", "unit_day_ids"]
