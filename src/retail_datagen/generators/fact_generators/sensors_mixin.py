"""Foot-traffic counters and BLE beacon pings (behaviour.md §14.1 and §14.2).

Both tables are drawn per store from the store's own streams (shard = store_id), vectorised
over the store's open hours or visits, and assembled into one Arrow batch for the day:

* :func:`draw_foot_traffic` and :func:`foot_traffic_table` build ``foot_traffic``
  (fact-tables.md §7);
* :func:`draw_ble_pings` and :func:`ble_pings_table` build ``ble_pings`` (fact-tables.md §8).

The pings table carries everything ``customer_zone_changes`` needs (store, visit seq, zone,
event time, ping id and the visit's identity), so zone changes are derived from it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen import domain
from retail_datagen.ids import unit_day_ids
from retail_datagen.rng import stream

from .day_types import DayContext, Visits
from .utils_mixin import (
    US_PER_HOUR,
    US_PER_SECOND,
    Digits,
    day_tag,
    dict_strings,
    fixed_width_strings,
    generator_schema,
    join_strings,
    nullable_int,
    rows_of,
    ts_array,
    zero_pad,
)
from .zone_changes_mixin import (
    PingCells,
    VisitIdentity,
    customer_zone_changes_table,
    visit_zone_changes,
)

# --- §14.1 foot traffic --------------------------------------------------------------------------

#: Zone share in percent, rows in domain.STORE_FORMATS order, columns in FOOT_TRAFFIC_ZONES order.
FOOT_ZONE_SHARE = np.array(
    [
        [20, 10, 35, 25, 10],  # hypermarket
        [25, 10, 30, 25, 10],  # superstore
        [30, 15, 25, 15, 15],  # standard
        [35, 15, 20, 10, 20],  # neighborhood
        [45, 15, 10, 5, 25],  # express
    ],
    dtype=np.int64,
)
#: Count variation in percent per store format.
FOOT_ZONE_VAR = np.array([20, 15, 10, 12, 10], dtype=np.int64)
#: dwell_seconds U{min..max} per zone.
FOOT_DWELL_MIN = np.array([45, 30, 180, 120, 90], dtype=np.int64)
FOOT_DWELL_MAX = np.array([90, 75, 420, 300, 240], dtype=np.int64)
#: HF = 10 × hour_factor per hour of the day.
FOOT_HOUR_FACTOR_X10 = np.full(24, 5, dtype=np.int64)
FOOT_HOUR_FACTOR_X10[[12, 13, 17, 18, 19]] = 13
FOOT_HOUR_FACTOR_X10[[10, 11, 14, 15, 16]] = 10
FOOT_HOUR_FACTOR_X10[[8, 9, 20, 21]] = 7
FOOT_EMPTY_HOUR_SKIP_P = 0.70
_N_FOOT_ZONES = len(domain.FOOT_TRAFFIC_ZONES)

FOOT_TRAFFIC_SCHEMA = generator_schema("foot_traffic")


@dataclass(frozen=True)
class FootTrafficDraw:
    """One store's written hours: ``hour`` (h,) and per-zone ``count``/``dwell`` (h, 5) int64."""

    store_id: int
    hour: np.ndarray
    count: np.ndarray
    dwell: np.ndarray


def draw_foot_traffic(
    store_id: int,
    format_code: int,
    open_hours: np.ndarray,
    visits_by_hour: np.ndarray,
    weekend: bool,
    rng: np.random.Generator,
) -> FootTrafficDraw:
    """Zone counts and dwell times of one store-day (stream ``foot.noise``).

    Items are the open hours ascending and then the (hour, zone) pairs, zones in
    ``domain.FOOT_TRAFFIC_ZONES`` order. Kinds: empty-hour coin (per hour), noise U{−j..j} and
    dwell (per pair). Every kind is drawn for every open hour; an hour that writes no rows has
    its noise bound computed with v = 1, as it would be if written.

    Args:
        store_id: the store's id.
        format_code: index into ``domain.STORE_FORMATS``.
        open_hours: int64 array, shape (h,), the open hours ascending.
        visits_by_hour: int64 array, shape (24,), visits per hour (with or without purchase).
        weekend: the day is a Saturday or Sunday (WF = 9).
        rng: the store's ``foot.noise`` stream for the day.

    Returns:
        The written hours with their (hours, 5) counts and dwell seconds.
    """
    hours = np.asarray(open_hours, dtype=np.int64)
    n = hours.size
    skip_if_empty = rng.random(n) < FOOT_EMPTY_HOUR_SKIP_P
    v = np.asarray(visits_by_hour, dtype=np.int64)[hours]
    written = (v > 0) | ~skip_if_empty
    v = np.maximum(v, 1)
    hf = FOOT_HOUR_FACTOR_X10[hours]
    wf = 9 if weekend else 10
    total = np.maximum(v + 1, (1000 * v) // (2 * hf * wf))
    base = (total[:, None] * FOOT_ZONE_SHARE[format_code][None, :] // 100).reshape(-1)
    j = base * FOOT_ZONE_VAR[format_code] // 100
    noise = rng.integers(-j, j + 1, n * _N_FOOT_ZONES)
    dwell = rng.integers(
        np.tile(FOOT_DWELL_MIN, n), np.tile(FOOT_DWELL_MAX, n) + 1, n * _N_FOOT_ZONES
    )
    count = np.maximum(0, base + noise).reshape(n, _N_FOOT_ZONES)
    dwell = dwell.reshape(n, _N_FOOT_ZONES)
    return FootTrafficDraw(
        store_id=int(store_id), hour=hours[written], count=count[written], dwell=dwell[written]
    )


def foot_traffic_table(day_start_us: int, draws: list[FootTrafficDraw]) -> pa.Table:
    """The ``foot_traffic`` batch: 5 rows per written store-hour, in (store, hour, zone) order.

    Args:
        day_start_us: wall-time µs of the day's midnight.
        draws: per-store results of :func:`draw_foot_traffic`, in store_id order.
    """
    hours = [d.hour for d in draws]
    n_hours = np.array([h.size for h in hours], dtype=np.int64)
    store_ids = np.array([d.store_id for d in draws], dtype=np.int64)
    store_pos = np.repeat(np.repeat(np.arange(store_ids.size), n_hours), _N_FOOT_ZONES)
    hour = np.concatenate(hours) if hours else np.zeros(0, dtype=np.int64)
    store = store_ids[store_pos]
    ts = day_start_us + np.repeat(hour, _N_FOOT_ZONES) * US_PER_HOUR
    zone_code = np.tile(np.arange(_N_FOOT_ZONES), hour.size)
    empty = np.zeros((0, _N_FOOT_ZONES), dtype=np.int64)
    count = np.concatenate([d.count for d in draws] or [empty]).reshape(-1)
    dwell = np.concatenate([d.dwell for d in draws] or [empty]).reshape(-1)
    zone = dict_strings(zone_code, domain.FOOT_TRAFFIC_ZONES)
    # Each (store, zone) sensor id is built once, then taken per row.
    store_zone = join_strings(
        ["SENSOR_", zero_pad(np.repeat(store_ids, _N_FOOT_ZONES), 5, what="store_id"), "_",
         pa.array(list(domain.FOOT_TRAFFIC_ZONES) * store_ids.size, pa.string())],
        store_ids.size * _N_FOOT_ZONES,
    )
    sensor = store_zone.take(pa.array(store_pos * _N_FOOT_ZONES + zone_code, pa.int64()))
    return pa.Table.from_arrays(
        [
            pa.array(store, pa.int64()),
            sensor,
            zone,
            ts_array(ts),
            pa.array(count.astype(np.int32), pa.int32()),
            pa.array(dwell.astype(np.int32), pa.int32()),
        ],
        schema=FOOT_TRAFFIC_SCHEMA,
    )


# --- §14.2 BLE pings -----------------------------------------------------------------------------

#: Zone weights, rows in domain.STORE_FORMATS order, columns in domain.BLE_ZONES order.
BLE_ZONE_WEIGHT = np.array(
    [
        [0.20, 0.25, 0.30, 0.15, 0.10],
        [0.25, 0.20, 0.30, 0.15, 0.10],
        [0.30, 0.15, 0.25, 0.15, 0.15],
        [0.35, 0.10, 0.25, 0.10, 0.20],
        [0.40, 0.05, 0.20, 0.05, 0.30],
    ],
    dtype=np.float64,
)
BLE_FORMAT_MULT = np.array([1.6, 1.3, 1.0, 0.85, 0.65], dtype=np.float64)
BLE_KNOWN_P = 0.30
BLE_MAX_ZONES = 4
_BLE_ENTRANCE = domain.BLE_ZONES.index("ENTRANCE")
_BLE_CHECKOUT = domain.BLE_ZONES.index("CHECKOUT")
_N_BLE_ZONES = len(domain.BLE_ZONES)

BLE_PINGS_SCHEMA = generator_schema("ble_pings")


@dataclass(frozen=True)
class BlePingDraw:
    """One store's visits and their pings.

    Visit arrays (n,) are in visit seq order: ``visit_seq`` and ``customer_id`` (0 for an
    anonymous visit). Ping arrays (m,) are in (visit, zone position, ping index) order:
    ``visit`` (row in the visit arrays), ``ts_us``, ``zone_code`` (into ``domain.BLE_ZONES``),
    ``zone_pos`` (0-based), ``ping_index`` (0-based) and ``rssi``. All int64.
    """

    store_id: int
    visit_seq: np.ndarray
    customer_id: np.ndarray
    visit: np.ndarray
    ts_us: np.ndarray
    zone_code: np.ndarray
    zone_pos: np.ndarray
    ping_index: np.ndarray
    rssi: np.ndarray


def order_ble_zones(key: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Each visit's zones by position: the k largest keys, ENTRANCE first and CHECKOUT last.

    Args:
        key: float64 (n, 5) selection keys, columns in ``domain.BLE_ZONES`` order.
        k: int64 (n,) zones per visit, 2..4.

    Returns:
        int64 (n, 4) zone codes by position; positions ≥ k are −1.
    """
    n = key.shape[0]
    by_key = np.argsort(-key, axis=1, kind="stable")  # descending key, ties to lower index
    rank = np.empty_like(by_key)
    rank[np.arange(n)[:, None], by_key] = np.arange(_N_BLE_ZONES)[None, :]
    chosen = rank < k[:, None]
    priority = np.where(chosen, rank, _N_BLE_ZONES + 2)
    priority[:, _BLE_ENTRANCE] = np.where(chosen[:, _BLE_ENTRANCE], -1, _N_BLE_ZONES + 2)
    priority[:, _BLE_CHECKOUT] = np.where(chosen[:, _BLE_CHECKOUT], _N_BLE_ZONES, _N_BLE_ZONES + 2)
    zones = np.argsort(priority, axis=1, kind="stable")[:, :BLE_MAX_ZONES].astype(np.int64)
    return np.where(np.arange(BLE_MAX_ZONES)[None, :] < k[:, None], zones, -1)


def draw_ble_pings(
    store_id: int,
    format_code: int,
    traffic_multiplier: float,
    open_us: int,
    visit_ts_us: np.ndarray,
    visit_seq: np.ndarray,
    customer_id: np.ndarray,
    rng_visit: np.random.Generator,
    rng_pings: np.random.Generator,
) -> BlePingDraw:
    """The pings of one store-day's visits (streams ``ble.visit`` and ``ble.pings``).

    ``ble.visit`` items are the visits in seq order; kinds: known coin, window L U{480..2,400} s,
    k U{2..4}, zone keys (n, 5), ping factor U(2, 5) (n, 4). ``ble.pings`` items are the pings
    in (visit, zone position, ping index) order; kinds: time u, rssi U{−80..−30}.

    Args:
        store_id: the store's id.
        format_code: index into ``domain.STORE_FORMATS``.
        traffic_multiplier: the store's ``daily_traffic_multiplier``.
        open_us: wall-time µs of the store's opening that day.
        visit_ts_us: int64 (n,) visit times (the window ends), in visit seq order.
        visit_seq: int64 (n,) the visit seqs.
        customer_id: int64 (n,) the visitors.
        rng_visit: the store's ``ble.visit`` stream for the day.
        rng_pings: the store's ``ble.pings`` stream for the day.
    """
    end = np.asarray(visit_ts_us, dtype=np.int64)
    n = end.size
    known = rng_visit.random(n) < BLE_KNOWN_P
    window_s = rng_visit.integers(480, 2_400 + 1, n)
    k = rng_visit.integers(2, 4 + 1, n)
    key = rng_visit.random((n, _N_BLE_ZONES)) ** (1.0 / BLE_ZONE_WEIGHT[format_code])
    factor = 2.0 + (5.0 - 2.0) * rng_visit.random((n, BLE_MAX_ZONES))

    zones = order_ble_zones(key, k)
    scale = min(max(float(traffic_multiplier), 0.6), 1.8)
    per_zone = np.maximum(1, (factor * BLE_FORMAT_MULT[format_code] * scale).astype(np.int64))
    per_zone = np.where(zones >= 0, per_zone, 0).reshape(-1)

    start = np.maximum(end - window_s * US_PER_SECOND, int(open_us))
    width = end - start
    j = np.arange(BLE_MAX_ZONES + 1, dtype=np.int64)
    bounds = start[:, None] + (j[None, :] * width[:, None]) // k[:, None]  # (n, 5)

    m = int(per_zone.sum())
    cell = np.repeat(np.arange(n * BLE_MAX_ZONES, dtype=np.int64), per_zone)
    visit = cell // BLE_MAX_ZONES
    pos = cell % BLE_MAX_ZONES
    cell_start = np.cumsum(per_zone) - per_zone
    ping_index = np.arange(m, dtype=np.int64) - cell_start[cell]

    u = rng_pings.random(m)
    rssi = rng_pings.integers(-80, -30 + 1, m)
    lo = bounds[visit, pos]
    hi = bounds[visit, pos + 1]
    ts = lo + (u * (hi - lo)).astype(np.int64)
    return BlePingDraw(
        store_id=int(store_id),
        visit_seq=np.asarray(visit_seq, dtype=np.int64),
        customer_id=np.where(known, np.asarray(customer_id, dtype=np.int64), 0),
        visit=visit,
        ts_us=ts,
        zone_code=zones.reshape(-1)[cell],
        zone_pos=pos,
        ping_index=ping_index,
        rssi=rssi.astype(np.int64),
    )


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def ble_pings_table(day: date, draws: list[BlePingDraw], ble_ids: pa.Array,
                    store_unit: np.ndarray, unit_store_ids: np.ndarray | None = None
                    ) -> pa.Table:
    """The ``ble_pings`` batch with its DSIDs, rows in PingId order (see
    :func:`ble_pings_and_zone_changes`)."""
    return ble_pings_and_zone_changes(day, draws, ble_ids, store_unit, unit_store_ids,
                                      zone_changes=False)[0]


def ble_pings_and_zone_changes(day: date, draws: list[BlePingDraw], ble_ids: pa.Array,
                               store_unit: np.ndarray, unit_store_ids: np.ndarray | None = None,
                               *, zone_changes: bool = True) -> tuple[pa.Table, pa.Table | None]:
    """The ``ble_pings`` batch with its DSIDs, rows in PingId order, and (``zone_changes``)
    its ``customer_zone_changes`` batch, derived from the draws' cells (one per visit and
    zone position) instead of re-sorting the pings.

    DSID order is (event_ts, store_id, visit_seq, zone position, ping index). A known visit
    carries its customer's ``ble_id`` and CustomerID; an anonymous visit gets
    ``ANON-<store_id(5)>-<YYYYMMDD>-<visit seq(6)>`` and a NULL CustomerID. Strings are built
    once per visit (and once per store-zone for BeaconId) and then taken per ping.

    Args:
        day: the simulated day.
        draws: per-store results of :func:`draw_ble_pings`, in store_id order.
        ble_ids: string array of ``dim_customers.ble_id``, indexed by customer_id − 1.
        store_unit: int64 array by store index: the store's DC unit, which numbers PingIds.
        unit_store_ids: the ascending store ids whose positions index ``store_unit``; None:
            the dense network ids 1...
    """
    n_visits = np.array([d.visit_seq.size for d in draws], dtype=np.int64)
    n_pings = np.array([d.ts_us.size for d in draws], dtype=np.int64)
    store_ids = np.array([d.store_id for d in draws], dtype=np.int64)
    v_store = np.repeat(store_ids, n_visits)
    v_seq = _concat([d.visit_seq for d in draws])
    v_cust = _concat([d.customer_id for d in draws])
    v_first = np.cumsum(n_visits) - n_visits
    visit = _concat([d.visit for d in draws]) + np.repeat(v_first, n_pings)
    ts = _concat([d.ts_us for d in draws])

    # Pings are concatenated in (store_id, visit_seq, zone position, ping index) order whenever
    # the visits are in (store_id, seq) order, so a stable sort on event_ts gives DSID order.
    v_key = v_store * 1_000_000 + v_seq
    pos = _concat([d.zone_pos for d in draws])
    if v_key.size < 2 or bool((v_key[1:] > v_key[:-1]).all()):
        order = np.argsort(ts, kind="stable")
    else:
        idx = _concat([d.ping_index for d in draws])
        order = np.lexsort((idx, pos, v_seq[visit], v_store[visit], ts))
    drawn_ts, drawn_visit = ts, visit
    drawn_zone = _concat([d.zone_code for d in draws])
    ts, visit = ts[order], visit[order]
    zone_code = drawn_zone[order]
    rssi = _concat([d.rssi for d in draws])[order]
    store_pos = np.repeat(np.arange(store_ids.size), n_pings)[order]

    anonymous = v_cust == 0
    anon_ids = fixed_width_strings(
        ["ANON-", Digits(v_store, 5, "store_id"), "-" + day_tag(day) + "-",
         Digits(v_seq, 6, "visit seq")],
        v_seq.size,
    )
    known_ids = ble_ids.take(pa.array(v_cust - 1, pa.int64(), mask=anonymous))
    v_ble = pc.if_else(pa.array(anonymous, pa.bool_()), anon_ids, known_ids)
    take_visit = pa.array(visit, pa.int64())

    store_zone = join_strings(
        ["BEACON_", zero_pad(np.repeat(store_ids, _N_BLE_ZONES), 5, what="store_id"), "_",
         pa.array(list(domain.BLE_ZONES) * store_ids.size, pa.string())],
        store_ids.size * _N_BLE_ZONES,
    )
    beacon = store_zone.take(pa.array(store_pos * _N_BLE_ZONES + zone_code, pa.int64()))
    unit_rows = np.arange(1, len(store_unit) + 1) if unit_store_ids is None else unit_store_ids
    pings = pa.Table.from_arrays(
        [
            pa.array(unit_day_ids(day, store_unit[rows_of(unit_rows, store_ids[store_pos])]),
                     pa.int64()),
            ts_array(ts),
            pa.array(store_ids[store_pos], pa.int64()),
            beacon,
            dict_strings(zone_code, domain.BLE_ZONES),
            v_ble.take(take_visit).cast(pa.string()),
            nullable_int(v_cust[visit], anonymous[visit]),
            pa.array(v_seq[visit].astype(np.int32), pa.int32()),
            pa.array(rssi.astype(np.int16), pa.int16()),
        ],
        schema=BLE_PINGS_SCHEMA,
    )
    if not zone_changes:
        return pings, None
    changes = visit_zone_changes(
        PingCells.of(drawn_visit, pos, drawn_zone, drawn_ts),
        VisitIdentity(v_store, v_seq, store_unit[rows_of(unit_rows, v_store)], v_ble, v_cust,
                      anonymous))
    return pings, (customer_zone_changes_table(pings) if changes is None else changes)


class SensorsMixin:
    """Store sensors: zone foot-traffic counters and BLE beacon pings.

    This mixin defines the following functionality:

    Adds:
        ``_generate_foot_traffic`` (table ``foot_traffic``) and ``_generate_ble_pings``
        (table ``ble_pings``).
    Reads:
        ``_seed``, ``_master.stores`` (format, open hour, traffic multiplier),
        ``_master.customers.ble_id`` and ``_for_each_store``.
    Writes:
        nothing on self.
    Streams:
        ``foot.noise``, ``ble.visit`` and ``ble.pings`` (shard = store_id).
    """

    def _generate_foot_traffic(self, ctx: DayContext, visits: Visits) -> pa.Table:
        """Zone counts of every open store-hour of the day (behaviour.md §14.1)."""
        stores = self._master.stores
        weekend = ctx.day.weekday() >= 5

        def one_store(i: int) -> FootTrafficDraw | None:
            open_hours = np.flatnonzero(ctx.open_mask[i])
            if open_hours.size == 0:
                return None
            store_id = int(stores.store_id[i])
            rng = stream(self._seed, "foot.noise", ctx.day, store_id)
            return draw_foot_traffic(
                store_id, int(stores.format_code[i]), open_hours, visits.visits_per_hour[i],
                weekend, rng,
            )

        draws = [d for d in self._for_each_store(one_store) if d is not None]
        return foot_traffic_table(ctx.day_start_us, draws)

    def _generate_ble_pings(self, ctx: DayContext, visits: Visits) -> pa.Table:
        """BLE pings of every visit of the day (behaviour.md §14.2), with PingId DSIDs."""
        stores = self._master.stores
        return ble_pings_table(ctx.day, self._ble_ping_draws(ctx, visits),
                               self._master.customers.ble_id, stores.dc_id, stores.store_id)

    def _generate_ble_pings_and_zone_changes(self, ctx: DayContext, visits: Visits
                                             ) -> tuple[pa.Table, pa.Table]:
        """The day's BLE pings and the zone changes they make (behaviour.md §14.2–14.3)."""
        stores = self._master.stores
        pings, changes = ble_pings_and_zone_changes(
            ctx.day, self._ble_ping_draws(ctx, visits), self._master.customers.ble_id,
            stores.dc_id, stores.store_id)
        return pings, changes

    def _ble_ping_draws(self, ctx: DayContext, visits: Visits) -> list[BlePingDraw]:
        stores = self._master.stores
        offsets = visits.store_offsets

        def one_store(i: int) -> BlePingDraw | None:
            lo, hi = int(offsets[i]), int(offsets[i + 1])
            if ctx.closed or hi == lo:
                return None
            store_id = int(stores.store_id[i])
            return draw_ble_pings(
                store_id,
                int(stores.format_code[i]),
                float(stores.traffic_multiplier[i]),
                ctx.day_start_us + int(stores.open_hour[i]) * US_PER_HOUR,
                visits.ts_us[lo:hi],
                visits.visit_seq[lo:hi],
                visits.customer_id[lo:hi],
                stream(self._seed, "ble.visit", ctx.day, store_id),
                stream(self._seed, "ble.pings", ctx.day, store_id),
            )

        return [d for d in self._for_each_store(one_store) if d is not None]


__all__ = [
    "BLE_PINGS_SCHEMA",
    "FOOT_TRAFFIC_SCHEMA",
    "BlePingDraw",
    "FootTrafficDraw",
    "SensorsMixin",
    "ble_pings_table",
    "draw_ble_pings",
    "draw_foot_traffic",
    "foot_traffic_table",
    "order_ble_zones",
]
