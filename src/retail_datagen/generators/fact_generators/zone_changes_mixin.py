"""Customer zone changes derived from BLE pings (behaviour.md §14.3, fact-tables.md §9).

A visit is ``(store_id, date, visit_seq)``. Its pings, ordered by ``(event_ts, ping_id)``, form
runs of one zone; every ping whose zone differs from the previous ping's is a boundary and
becomes one row, timed at that first ping in the new zone. No random draws are involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen import domain
from retail_datagen.ids import dsid_unit, unit_day_ids

from .utils_mixin import (
    EPOCH_ORDINAL,
    US_PER_DAY,
    dict_strings,
    generator_schema,
    group_starts,
    nullable_int,
    rank_within_groups,
    sort_indices_by,
    ts_array,
)

ZONE_CHANGES_SCHEMA = generator_schema("customer_zone_changes")
_BLE_ZONE_VALUES = pa.array(list(domain.BLE_ZONES), pa.string())
_SEQ_SPAN = 1_000_000  # visit seqs have 6 digits


def _int_column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)


def customer_zone_changes_table(pings: pa.Table) -> pa.Table:
    """The ``customer_zone_changes`` batch of a ``ble_pings`` batch, rows in DSID order.

    DSID order is (event_ts, store_id, visit_seq, boundary position in the visit); ids are
    numbered per date of event_ts and unit (the unit its pings' ids carry).

    Args:
        pings: a ``ble_pings`` batch (columns PingId, EventTS, StoreID, Zone, CustomerBLEId,
            CustomerID, VisitSeq), in any row order.

    Returns:
        One row per zone boundary of every visit (k − 1 rows for a visit with k zones).
    """
    ts = _int_column(pings, "EventTS")
    store = _int_column(pings, "StoreID")
    seq = _int_column(pings, "VisitSeq")
    ping_id = _int_column(pings, "PingId")
    zone = pc.index_in(pings.column("Zone").combine_chunks(), value_set=_BLE_ZONE_VALUES)
    zone = zone.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    day_ord = ts // US_PER_DAY

    # Rows already in (event_ts, ping_id) order (a unit-day's batch, in PingId order) need
    # only a stable sort by visit.
    in_time_order = ts.size < 2 or bool(
        ((ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (ping_id[1:] > ping_id[:-1]))).all())
    if ts.size and (seq.min() < 0 or seq.max() >= _SEQ_SPAN):
        order = np.lexsort((ping_id, ts, seq, day_ord, store))
    else:
        # One composite visit key: store, then date, then seq.
        day_rel = day_ord - (day_ord.min() if ts.size else 0)
        visit_key = (store * (int(day_rel.max(initial=0)) + 1) + day_rel) * _SEQ_SPAN + seq
        order = (np.argsort(visit_key, kind="stable") if in_time_order
                 else np.lexsort((ping_id, ts, visit_key)))
    s_store, s_day, s_seq, s_zone = store[order], day_ord[order], seq[order], zone[order]
    new_visit = group_starts(s_store) | group_starts(s_day) | group_starts(s_seq)
    prev_zone = np.empty_like(s_zone)
    prev_zone[1:] = s_zone[:-1]
    boundary = np.flatnonzero(~new_visit & (s_zone != prev_zone))

    visit_id = np.cumsum(new_visit)[boundary]
    position = rank_within_groups(visit_id) + 1
    rows = order[boundary]  # the first ping in the new zone
    prev_rows = order[boundary - 1]  # the last ping in the old zone
    b_ts, b_store, b_seq = ts[rows], store[rows], seq[rows]
    dsid_order = sort_indices_by([b_ts, b_store, b_seq, position])
    rows, prev_rows = rows[dsid_order], prev_rows[dsid_order]
    b_ts, b_store, b_seq = b_ts[dsid_order], b_store[dsid_order], b_seq[dsid_order]

    ids = np.zeros(rows.size, dtype=np.int64)
    b_day = b_ts // US_PER_DAY
    # A zone change belongs to the unit of its store, which its pings' ids carry.
    b_unit = dsid_unit(ping_id[rows])
    for day_ordinal in np.unique(b_day):
        # One pass per date in the batch (a day's batch has exactly one).
        sel = np.flatnonzero(b_day == day_ordinal)
        the_day = date.fromordinal(int(day_ordinal) + EPOCH_ORDINAL)
        ids[sel] = unit_day_ids(the_day, b_unit[sel])

    take = pa.array(rows, pa.int64())
    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.int64()),
            ts_array(b_ts),
            pa.array(b_store, pa.int64()),
            pings.column("CustomerBLEId").take(take).combine_chunks().cast(pa.string()),
            pings.column("CustomerID").take(take).combine_chunks().cast(pa.int64()),
            pa.array(b_seq.astype(np.int32), pa.int32()),
            dict_strings(zone[prev_rows], domain.BLE_ZONES),
            dict_strings(zone[rows], domain.BLE_ZONES),
        ],
        schema=ZONE_CHANGES_SCHEMA,
    )


@dataclass(frozen=True)
class PingCells:
    """A day's pings grouped into cells, one per (visit, zone position), in (visit, position)
    order: the cell's zone and its earliest and latest ping times (int64 arrays)."""

    visit: np.ndarray
    pos: np.ndarray
    zone: np.ndarray
    first_ts: np.ndarray
    last_ts: np.ndarray

    @staticmethod
    def of(visit: np.ndarray, pos: np.ndarray, zone: np.ndarray, ts: np.ndarray) -> PingCells:
        """The cells of pings listed cell by cell (visit, then zone position)."""
        if visit.size == 0:
            z = np.zeros(0, dtype=np.int64)
            return PingCells(z, z, z, z, z)
        starts = np.flatnonzero(group_starts(visit) | group_starts(pos))
        return PingCells(visit[starts], pos[starts], zone[starts],
                         np.minimum.reduceat(ts, starts), np.maximum.reduceat(ts, starts))


@dataclass(frozen=True)
class VisitIdentity:
    """Per visit (rows of ``PingCells.visit``): store, seq, DC unit, BLE id string, customer
    id and whether the visit is anonymous (NULL CustomerID)."""

    store: np.ndarray
    seq: np.ndarray
    unit: np.ndarray
    ble_id: pa.Array
    customer: np.ndarray
    anonymous: np.ndarray


def visit_zone_changes(cells: PingCells, who: VisitIdentity) -> pa.Table | None:
    """:func:`customer_zone_changes_table` of a unit-day's pings, from their cells.

    When each visit's cells follow its zone positions 0, 1, ... in time (no ping of a
    position later than one of the next position), have distinct neighbouring zones and lie
    on one date, the boundaries are exactly the first ping of every position ≥ 1, timed at
    the cell's earliest ping. Otherwise returns None (derive the changes from the pings).
    """
    n = cells.visit.size
    if n == 0:
        return None
    if not bool((cells.visit[1:] >= cells.visit[:-1]).all()):
        return None
    b = np.flatnonzero(cells.pos >= 1)
    day_ord = int(cells.first_ts.min()) // US_PER_DAY
    if not (bool((cells.pos == rank_within_groups(cells.visit)).all())
            and bool((cells.last_ts[b - 1] <= cells.first_ts[b]).all())
            and bool((cells.zone[b - 1] != cells.zone[b]).all())
            and int(cells.last_ts.max()) // US_PER_DAY == day_ord):
        return None
    b_visit, position, b_ts = cells.visit[b], cells.pos[b], cells.first_ts[b]
    b_store, b_seq = who.store[b_visit], who.seq[b_visit]
    dsid_order = sort_indices_by([b_ts, b_store, b_seq, position])
    b, b_visit, b_ts = b[dsid_order], b_visit[dsid_order], b_ts[dsid_order]
    b_store, b_seq = b_store[dsid_order], b_seq[dsid_order]
    the_day = date.fromordinal(day_ord + EPOCH_ORDINAL)
    take = pa.array(b_visit, pa.int64())
    return pa.Table.from_arrays(
        [
            pa.array(unit_day_ids(the_day, who.unit[b_visit]), pa.int64()),
            ts_array(b_ts),
            pa.array(b_store, pa.int64()),
            who.ble_id.take(take).cast(pa.string()),
            nullable_int(who.customer[b_visit], who.anonymous[b_visit]),
            pa.array(b_seq.astype(np.int32), pa.int32()),
            dict_strings(cells.zone[b - 1], domain.BLE_ZONES),
            dict_strings(cells.zone[b], domain.BLE_ZONES),
        ],
        schema=ZONE_CHANGES_SCHEMA,
    )


class ZoneChangesMixin:
    """Zone-to-zone movements of store visitors.

    This mixin defines the following functionality:

    Adds:
        ``_generate_customer_zone_changes`` (table ``customer_zone_changes``).
    Reads:
        nothing on self (only the ``ble_pings`` batch it is given).
    Writes:
        nothing on self.
    Streams:
        none.
    """

    def _generate_customer_zone_changes(self, pings: pa.Table) -> pa.Table:
        """Zone changes of the day's visits, from the day's ``ble_pings`` batch."""
        return customer_zone_changes_table(pings)


__all__ = ["ZONE_CHANGES_SCHEMA", "PingCells", "VisitIdentity", "ZoneChangesMixin",
           "customer_zone_changes_table", "visit_zone_changes"]
