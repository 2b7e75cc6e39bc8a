"""Replenishment and logistics: reorders, DC allocation, legs, trucks and supplier deliveries.

Legs are planned at 23:00 with every status time fixed at once (behaviour.md §10), kept in the
carried state, and each later day writes the lifecycle rows that fall on it. Truck choice is a
queue: each leg takes the truck that can leave earliest, which changes when that truck is next
free, so legs are assigned one after another (a few per store a day) with the candidate trucks
compared as arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from retail_datagen import domain
from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators.data_loading_mixin import MasterData
from retail_datagen.generators.fact_generators.day_types import DayContext, InventoryEvents
from retail_datagen.generators.fact_generators.inventory_mixin import resolve_events
from retail_datagen.generators.fact_generators.state import LegLines, Legs, SupplierOrders
from retail_datagen.generators.fact_generators.utils_mixin import (
    US_PER_HOUR,
    US_PER_MINUTE,
    US_PER_SECOND,
    Digits,
    day_tag,
    dict_strings,
    fixed_width_strings,
    group_starts,
    rank_within_groups,
    rows_of,
    ts_array,
)
from retail_datagen.geo import haversine_miles
from retail_datagen.rng import stream

PRIORITIES = ("URGENT", "HIGH", "NORMAL")
INBOUND = domain.TXN_TYPE_RANK["INBOUND_SHIPMENT"]
OUTBOUND = domain.TXN_TYPE_RANK["OUTBOUND_SHIPMENT"]
_FLEET, _POOL, _SUPPLIER = (domain.TRUCK_TYPES.index(t) for t in domain.TRUCK_TYPES)
_MIN_UNLOAD_MINUTES = 30
#: Departure delays (docs/realism.md): a leg leaves late with probability LATE_P, then
#: 15 min + an exponential tail of mean LATE_MEAN_MINUTES, at most LATE_MAX_MINUTES.
LATE_P = 0.10
LATE_MEAN_MINUTES = 45.0
LATE_MAX_MINUTES = 8 * 60
#: Stores review each product's stock once every REVIEW_DAYS days (periodic review), on a day
#: staggered by store and product, so an empty shelf waits for its next review (docs/realism.md).
REVIEW_DAYS = 7


@dataclass
class Reorders:
    """Store reorder requests of one day, in (store, product) order."""

    store_idx: np.ndarray
    product_idx: np.ndarray
    current: np.ndarray
    in_transit: np.ndarray
    reorder_point: np.ndarray
    quantity: np.ndarray
    priority: np.ndarray  # int8 into PRIORITIES
    allocated: np.ndarray


def reorder_priority(rp: np.ndarray, on_hand: np.ndarray, in_transit: np.ndarray) -> np.ndarray:
    """URGENT / HIGH / NORMAL codes from the integer deficit rule of behaviour.md §10.1."""
    g = rp - on_hand - in_transit
    urgent = (rp > 0) & (2 * g >= rp)
    high = (rp > 0) & (4 * g >= rp)
    return np.where(urgent, 0, np.where(high, 1, 2)).astype(np.int8)


def review_due(day: date, store_ids: np.ndarray, n_products: int) -> np.ndarray:
    """bool (n_stores, n_products): the store-products whose stock is reviewed on ``day``."""
    phase = np.asarray(store_ids, dtype=np.int64)[:, None] + np.arange(1, n_products + 1)
    return (phase + day.toordinal()) % REVIEW_DAYS == 0


def store_reorders(seed: int, ctx: DayContext, store_ids: np.ndarray, on_hand: np.ndarray,
                   in_transit: np.ndarray, rp: np.ndarray) -> Reorders:
    """The 23:00 reorder check of the store-products reviewed today (behaviour.md §10.1)."""
    available = np.zeros(on_hand.shape[1], dtype=bool)
    available[ctx.available] = True
    due = (on_hand + in_transit <= rp) & available[None, :] & review_due(ctx.day, store_ids,
                                                                         on_hand.shape[1])
    store_idx, product_idx = np.nonzero(due)
    qty = np.empty(len(store_idx), dtype=np.int64)
    counts = np.bincount(store_idx, minlength=len(store_ids))
    start = 0
    for s in np.flatnonzero(counts).tolist():
        n = int(counts[s])
        qty[start:start + n] = stream(seed, "reorder.qty", ctx.day, int(store_ids[s])).integers(
            50, 201, n)
        start += n
    cur = on_hand[store_idx, product_idx]
    transit = in_transit[store_idx, product_idx]
    point = rp[store_idx, product_idx]
    return Reorders(store_idx, product_idx, cur, transit, point, qty,
                    reorder_priority(point, cur, transit), np.zeros_like(qty))


def allocate_reorders(reorders: Reorders, store_dc_idx: np.ndarray,
                      dc_balance: np.ndarray) -> np.ndarray:
    """Grant requests per DC in (priority, store, product) order up to the DC balance."""
    if len(reorders.quantity) == 0:
        return np.zeros(0, dtype=np.int64)
    dc = store_dc_idx[reorders.store_idx]
    key = dc * dc_balance.shape[1] + reorders.product_idx
    order = np.lexsort((reorders.store_idx, reorders.priority, key))
    k = key[order]
    q = reorders.quantity[order]
    csum = np.cumsum(q)
    starts = np.flatnonzero(group_starts(k))
    gid = np.cumsum(group_starts(k)) - 1
    before = csum - q - np.concatenate([[0], csum[starts[1:] - 1]])[gid]
    granted = np.clip(dc_balance.reshape(-1)[k] - before, 0, q)
    allocated = np.empty_like(granted)
    allocated[order] = granted
    return allocated


def pack_into_legs(group: np.ndarray, product_idx: np.ndarray, qty: np.ndarray,
                   capacity: int) -> tuple[np.ndarray, ...]:
    """Pack lines (sorted by group, then product) into legs of at most ``capacity`` units.

    A product that does not fit is split across legs. Returns per piece: line index, leg
    number within the group (0-based) and quantity.
    """
    if len(qty) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    csum = np.cumsum(qty)
    starts = np.flatnonzero(group_starts(group))
    gid = np.cumsum(group_starts(group)) - 1
    offset = np.concatenate([[0], csum[starts[1:] - 1]])[gid]
    end = csum - offset
    begin = end - qty
    first_leg = begin // capacity
    last_leg = (end - 1) // capacity
    pieces = last_leg - first_leg + 1
    line = np.repeat(np.arange(len(qty)), pieces)
    leg = first_leg[line] + rank_within_groups(line)
    piece_qty = (np.minimum(end[line], (leg + 1) * capacity)
                 - np.maximum(begin[line], leg * capacity))
    return line, leg, piece_qty


def _leg_numbers(dc: np.ndarray, store: np.ndarray, refrigerated: np.ndarray,
                 product_idx: np.ndarray, qty: np.ndarray, capacity: int):
    """Pieces of allocated lines with their leg number per (dc, store): refrigerated legs
    first, then ambient, numbered from 1. Input lines in any order."""
    order = np.lexsort((product_idx, ~refrigerated, store, dc))
    cls_group = (dc[order] * 1_000_000 + store[order]) * 2 + (~refrigerated[order])
    line, leg, piece_qty = pack_into_legs(cls_group, product_idx[order], qty[order], capacity)
    src = order[line]
    pair = dc[src] * 1_000_000 + store[src]
    # Ambient legs are numbered after the refrigerated legs of the same (dc, store).
    ref_piece = refrigerated[src]
    shift = np.zeros(len(src), dtype=np.int64)
    if ref_piece.any():
        pairs_ref, last_ref_leg = _group_max(pair[ref_piece], leg[ref_piece])
        pos = np.minimum(np.searchsorted(pairs_ref, pair), len(pairs_ref) - 1)
        has_ref = pairs_ref[pos] == pair
        shift = np.where(has_ref & ~ref_piece, last_ref_leg[pos] + 1, 0)
    return src, leg + shift + 1, piece_qty


def _group_max(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inverse = np.unique(keys, return_inverse=True)
    out = np.full(len(uniq), -1, dtype=np.int64)
    np.maximum.at(out, inverse, values)
    return uniq, out


def leg_times(departure: np.ndarray, travel_s: np.ndarray, wait_s: np.ndarray,
              units: np.ndarray, capacity: int, scheduled: int) -> np.ndarray:
    """(n, 6) status times from the departure (behaviour.md §10.3–10.4)."""
    unload_min = _unload_minutes(np.minimum(units, capacity), capacity)
    arrived = departure + travel_s * US_PER_SECOND
    unloading = arrived + wait_s * US_PER_SECOND
    completed = unloading + unload_min * US_PER_MINUTE
    return np.stack([np.full(len(departure), scheduled, dtype=np.int64),
                     departure - 2 * US_PER_HOUR, departure, arrived, unloading, completed],
                    axis=1)


def _unload_minutes(units, capacity: int):
    """Unloading minutes of a leg carrying ``units`` (at most ``capacity``)."""
    return _MIN_UNLOAD_MINUTES + (180 * units + capacity) // (2 * capacity)


def _completed_us(departure: int, travel_s: int, wait_s: int, units: int, capacity: int) -> int:
    """The COMPLETED time of one leg, as :func:`leg_times` computes it (Python ints)."""
    arrived = departure + travel_s * US_PER_SECOND
    unloading = arrived + wait_s * US_PER_SECOND
    return unloading + _unload_minutes(min(units, capacity), capacity) * US_PER_MINUTE


def departure_delays(rng: np.random.Generator, n: int) -> np.ndarray:
    """Delay after plan (µs) of ``n`` legs: on time, or late with an exponential tail."""
    late = rng.random(n) < LATE_P
    minutes = 15.0 + rng.exponential(LATE_MEAN_MINUTES, n)
    minutes = np.minimum(minutes, LATE_MAX_MINUTES)
    return np.where(late, np.floor(minutes * 60) * US_PER_SECOND, 0).astype(np.int64)


def truck_tiers(master: MasterData, dc_id: int, refrigerated: bool) -> np.ndarray:
    """Candidate tier (1–4, 0 = not a candidate) of every truck for a leg (§10.3).

    Only trucks homed at the leg's DC are candidates (own DC_FLEET, then that DC's POOL), so
    truck availability is state of one DC unit (sharding.md §2.1).
    """
    t = master.trucks
    home = t.dc_id == dc_id
    own = (t.type_code == _FLEET) & home
    pool = (t.type_code == _POOL) & home
    same = t.refrigerated == refrigerated
    tier = np.where(own & same, 1, np.where(pool & same, 2, 0))
    if not refrigerated:
        tier = np.where(tier == 0, np.where(own & t.refrigerated, 3,
                                            np.where(pool & t.refrigerated, 4, 0)), tier)
    return tier


class LogisticsMixin:
    """Store replenishment, trucks and supplier deliveries to DCs.

    This mixin defines the following functionality:

    Adds:
        ``_generate_truck_movements`` (reorders, allocation, legs; tables ``reorders`` and the
        DC OUTBOUND events), ``_process_truck_lifecycle`` (``truck_moves``,
        ``truck_inventory``), ``_process_truck_deliveries`` (store INBOUND events),
        ``_supplier_arrivals`` (DC INBOUND events) and ``_generate_supplier_orders``; the
        day-to-day bookkeeping of logistics state: ``_in_transit_at``,
        ``_dc_balance_at_allocation`` (the 23:00 cut-off), ``_receive_supplier_orders`` and
        ``_order_supplier_stock`` (on-order units), ``_in_transit_after_day`` and
        ``_open_legs_after_day``.
    Reads:
        ``config.volume``, ``_master``.
    Writes:
        nothing on self: legs, truck availability and supplier orders are returned to the
        driver, which keeps them in ``_state``.
    Streams:
        ``reorder.qty``, ``logistics.legs``, ``logistics.delay``, ``supplier.order``,
        ``supplier.arrival``.
    """

    def _process_truck_deliveries(self, ctx: DayContext, legs: Legs, lines: LegLines
                                  ) -> InventoryEvents:
        """Store INBOUND_SHIPMENT events for the legs COMPLETED on ``ctx.day``."""
        day_end = ctx.day_start_us + 24 * US_PER_HOUR
        done = (legs.times[:, 5] >= ctx.day_start_us) & (legs.times[:, 5] < day_end)
        leg_pos = np.searchsorted(legs.shipment_id, lines.shipment_id)
        line_idx = np.flatnonzero(done[leg_pos]) if len(lines) else np.zeros(0, dtype=np.int64)
        lp = leg_pos[line_idx]
        events = InventoryEvents(
            node_idx=rows_of(self._master.stores.store_id, legs.store_id[lp]),
            product_idx=lines.product_id[line_idx] - 1,
            ts_us=legs.times[lp, 5],
            txn_type=np.full(len(line_idx), INBOUND, dtype=np.int8),
            source=pa.array(lines.shipment_id[line_idx].astype(object), pa.string()),
            delta=lines.quantity[line_idx],
        )
        return events

    def _in_transit_at(self, in_transit: np.ndarray, inbound: InventoryEvents, at_us: int
                       ) -> np.ndarray:
        """Store in-transit units at ``at_us``: legs that completed before it have arrived."""
        out = in_transit.copy()
        early = inbound.ts_us < at_us
        np.subtract.at(out, (inbound.node_idx[early], inbound.product_idx[early]),
                       inbound.delta[early])
        return out

    def _dc_balance_at_allocation(self, ctx: DayContext, dc_requests: InventoryEvents,
                                  dc_on_hand: np.ndarray) -> np.ndarray:
        """DC balances allocation sees at 23:00: every DC event before it, and those at 23:00
        that rank before OUTBOUND_SHIPMENT (behaviour.md §10.2)."""
        at_2300 = ctx.day_start_us + 23 * US_PER_HOUR
        balance = dc_on_hand.copy()
        before = (dc_requests.ts_us < at_2300) | (
            (dc_requests.ts_us == at_2300) & (dc_requests.txn_type < OUTBOUND))
        resolve_events(dc_requests.take(np.flatnonzero(before)), balance)
        return balance

    def _receive_supplier_orders(self, ctx: DayContext, orders: SupplierOrders,
                                 dc_on_order: np.ndarray
                                 ) -> tuple[InventoryEvents, SupplierOrders]:
        """DC INBOUND events of the supplier lines arriving today and the orders still pending;
        the arrived units leave ``dc_on_order`` (updated in place)."""
        events, pending, arrived = self._supplier_arrivals(ctx, orders)
        dc_on_order -= arrived
        return events, pending

    def _order_supplier_stock(self, ctx: DayContext, dc_on_hand: np.ndarray,
                              dc_on_order: np.ndarray, dc_rp: np.ndarray,
                              pending: SupplierOrders) -> SupplierOrders:
        """End-of-day supplier orders added to the pending ones; the ordered units join
        ``dc_on_order`` (updated in place)."""
        new = self._generate_supplier_orders(ctx, dc_on_hand, dc_on_order, dc_rp)
        np.add.at(dc_on_order, (rows_of(self._master.dcs.dc_id, new.dc_id), new.product_id - 1),
                  new.quantity)
        return SupplierOrders.concat(pending, new)

    def _in_transit_after_day(self, in_transit: np.ndarray, inbound: InventoryEvents,
                              new_legs: Legs, new_lines: LegLines) -> None:
        """Carry store in-transit units to the next day (in place): today's completed legs
        have arrived, today's new legs are on their way."""
        np.subtract.at(in_transit, (inbound.node_idx, inbound.product_idx), inbound.delta)
        store = new_legs.store_id[np.searchsorted(new_legs.shipment_id, new_lines.shipment_id)]
        np.add.at(in_transit, (rows_of(self._master.stores.store_id, store),
                               new_lines.product_id - 1), new_lines.quantity)

    def _open_legs_after_day(self, ctx: DayContext, legs: Legs, lines: LegLines
                             ) -> tuple[Legs, LegLines]:
        """The legs not yet COMPLETED at the end of ``ctx.day``, with their lines."""
        open_legs = legs.take(np.flatnonzero(legs.times[:, 5] >= ctx.day_start_us
                                             + 24 * US_PER_HOUR))
        keep = np.isin(lines.shipment_id, open_legs.shipment_id)
        return open_legs, lines.take(np.flatnonzero(keep))

    def _generate_truck_movements(self, ctx: DayContext, on_hand_2300: np.ndarray,
                                  in_transit_2300: np.ndarray, store_rp: np.ndarray,
                                  dc_balance_2300: np.ndarray, truck_available: np.ndarray
                                  ) -> tuple[pa.Table, InventoryEvents, Legs, LegLines]:
        """Reorder check, DC allocation, legs and trucks at 23:00 (§10.1–10.3).

        ``truck_available`` is updated in place. Returns the ``reorders`` table, the DC
        OUTBOUND_SHIPMENT events, and the new legs with their lines.
        """
        master = self._master
        stores = master.stores
        reorders = store_reorders(self._seed, ctx, stores.store_id, on_hand_2300,
                                  in_transit_2300, store_rp)
        store_dc_idx = rows_of(master.dcs.dc_id, stores.dc_id)
        reorders.allocated = allocate_reorders(reorders, store_dc_idx, dc_balance_2300)
        table = self._reorders_table(ctx, reorders)
        granted = np.flatnonzero(reorders.allocated > 0)
        store_idx = reorders.store_idx[granted]
        product_idx = reorders.product_idx[granted]
        dc_id = stores.dc_id[store_idx]
        capacity = self.config.volume.truck_capacity
        refrigerated = master.products.refrigerated[product_idx]
        src, leg_no, qty = _leg_numbers(dc_id, stores.store_id[store_idx], refrigerated,
                                        product_idx,
                                        reorders.allocated[granted], capacity)
        # One leg per (dc, store, leg number), in leg order over the network.
        piece_dc, piece_store = dc_id[src], stores.store_id[store_idx[src]]
        leg_key = (piece_dc * 1_000_000 + piece_store) * 1000 + leg_no
        order = np.argsort(leg_key, kind="stable")
        src, leg_no, qty, leg_key = src[order], leg_no[order], qty[order], leg_key[order]
        piece_dc, piece_store = piece_dc[order], piece_store[order]
        first = group_starts(leg_key)
        leg_of_piece = np.cumsum(first) - 1
        n_legs = int(first.sum())
        l_dc, l_store, l_no = piece_dc[first], piece_store[first], leg_no[first]
        l_ref = refrigerated[src][first]
        units = np.bincount(leg_of_piece, weights=qty, minlength=n_legs).astype(np.int64)
        ship_ids = fixed_width_strings(["SHP" + day_tag(ctx.day), Digits(l_dc, 4, "dc_id"),
                                        Digits(l_store, 5, "store_id"), Digits(l_no, 3, "leg")],
                                       n_legs)
        ship_np = np.asarray(ship_ids.to_numpy(zero_copy_only=False), dtype="U32")
        trucks, times = self._assign_trucks(ctx, l_dc, l_store, l_no, l_ref, units,
                                            truck_available)
        legs = Legs(ship_np, trucks, l_dc, l_store, l_ref, units, times)
        lines = LegLines(ship_np[leg_of_piece], product_idx[src] + 1, qty)
        leg_sort = np.argsort(legs.shipment_id, kind="stable")
        outbound = InventoryEvents(
            node_idx=rows_of(master.dcs.dc_id, piece_dc),
            product_idx=product_idx[src],
            ts_us=np.full(len(qty), ctx.day_start_us + 23 * US_PER_HOUR, dtype=np.int64),
            txn_type=np.full(len(qty), OUTBOUND, dtype=np.int8),
            source=ship_ids.take(pa.array(leg_of_piece, pa.int64())),
            delta=-qty,
            truck_id=trucks[leg_of_piece],
        )
        line_sort = np.lexsort((lines.product_id, lines.shipment_id))
        return table, outbound, legs.take(leg_sort), lines.take(line_sort)

    def _assign_trucks(self, ctx: DayContext, dc_id: np.ndarray, store_id: np.ndarray,
                       leg_no: np.ndarray, refrigerated: np.ndarray, units: np.ndarray,
                       available: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        master = self._master
        n = len(dc_id)
        capacity = self.config.volume.truck_capacity
        travel_factor = np.empty(n)
        wait_s = np.empty(n, dtype=np.int64)
        delay = np.empty(n, dtype=np.int64)
        for dc in np.unique(dc_id).tolist():
            idx = np.flatnonzero(dc_id == dc)
            rng = stream(self._seed, "logistics.legs", ctx.day, dc)
            travel_factor[idx] = 0.95 + (1.25 - 0.95) * rng.random(len(idx))
            wait_s[idx] = rng.integers(0, 1801, len(idx))
            delay[idx] = departure_delays(stream(self._seed, "logistics.delay", ctx.day, dc),
                                          len(idx))
        geos = master.geographies
        dc_geo = master.dcs.geography_id[rows_of(master.dcs.dc_id, dc_id)] - 1
        st_geo = master.stores.geography_id[rows_of(master.stores.store_id, store_id)] - 1
        dist = haversine_miles(geos.latitude[dc_geo], geos.longitude[dc_geo],
                               geos.latitude[st_geo], geos.longitude[st_geo])
        travel_h = 0.5 + dist / 45 * travel_factor
        travel_s = np.floor(travel_h * 3600 + 0.5).astype(np.int64)
        planned = (ctx.day_start_us + 30 * US_PER_HOUR
                   + (leg_no - 1) * 30 * US_PER_MINUTE) + delay
        tiers = {(int(d), bool(r)): truck_tiers(master, int(d), bool(r))
                 for d, r in set(zip(dc_id.tolist(), refrigerated.tolist(), strict=True))}
        candidates = {key: np.flatnonzero(tier > 0) for key, tier in tiers.items()}
        truck_ids = master.trucks.truck_id
        chosen = np.empty(n, dtype=np.int64)
        departure = np.empty(n, dtype=np.int64)
        for i in range(n):  # a queue: each leg changes when its truck is next free
            key = (int(dc_id[i]), bool(refrigerated[i]))
            tier, cand = tiers[key], candidates[key]
            if cand.size == 0:
                raise GenerationError(
                    f"no truck can carry leg {i + 1} of DC {dc_id[i]} (refrigerated="
                    f"{bool(refrigerated[i])}); add trucks to the fleet", day=ctx.day)
            dep = np.maximum(planned[i], available[cand] + 2 * US_PER_HOUR)
            best = cand[np.lexsort((truck_ids[cand], tier[cand], dep))[0]]
            departure[i] = max(int(planned[i]), int(available[best]) + 2 * US_PER_HOUR)
            chosen[i] = truck_ids[best]
            completed = _completed_us(int(departure[i]), int(travel_s[i]), int(wait_s[i]),
                                      int(units[i]), capacity)
            available[best] = completed + int(travel_s[i]) * US_PER_SECOND
        times = leg_times(departure, travel_s, wait_s, units, capacity,
                          ctx.day_start_us + 23 * US_PER_HOUR)
        return chosen, times

    def _reorders_table(self, ctx: DayContext, r: Reorders) -> pa.Table:
        stores = self._master.stores
        n = len(r.quantity)
        return pa.table({
            "EventTS": ts_array(np.full(n, ctx.day_start_us + 23 * US_PER_HOUR)),
            "StoreID": pa.array(stores.store_id[r.store_idx]),
            "DCID": pa.array(stores.dc_id[r.store_idx]),
            "ProductID": pa.array(r.product_idx + 1),
            "CurrentQuantity": pa.array(r.current.astype(np.int32)),
            "InTransitQuantity": pa.array(r.in_transit.astype(np.int32)),
            "ReorderPoint": pa.array(r.reorder_point.astype(np.int32)),
            "ReorderQuantity": pa.array(r.quantity.astype(np.int32)),
            "AllocatedQuantity": pa.array(r.allocated.astype(np.int32)),
            "Priority": dict_strings(r.priority, PRIORITIES),
        })

    def _process_truck_lifecycle(self, ctx: DayContext, legs: Legs, lines: LegLines
                                 ) -> tuple[pa.Table, pa.Table]:
        """``truck_moves`` and ``truck_inventory`` rows whose time falls on ``ctx.day``."""
        day_end = ctx.day_start_us + 24 * US_PER_HOUR
        on_day = (legs.times >= ctx.day_start_us) & (legs.times < day_end)
        leg_idx, status = np.nonzero(on_day)  # row-major: shipment order, then status
        ts = legs.times[leg_idx, status]
        completed = status == 5
        unload_min = (legs.times[leg_idx, 5] - legs.times[leg_idx, 4]) // US_PER_MINUTE
        moves = pa.table({
            "ShipmentId": pa.array(legs.shipment_id[leg_idx].astype(object), pa.string()),
            "Status": dict_strings(status, domain.TRUCK_STATUSES),
            "EventTS": ts_array(ts),
            "TruckID": pa.array(legs.truck_id[leg_idx]),
            "DCID": pa.array(legs.dc_id[leg_idx]),
            "StoreID": pa.array(legs.store_id[leg_idx]),
            "Refrigerated": pa.array(legs.refrigerated[leg_idx]),
            "UnitCount": pa.array(legs.unit_count[leg_idx].astype(np.int32)),
            "DepartureTime": ts_array(legs.times[leg_idx, 2]),
            "ETA": ts_array(legs.times[leg_idx, 3]),
            "ETD": ts_array(legs.times[leg_idx, 5]),
            "UnloadDurationMinutes": pa.array(unload_min.astype(np.int32), mask=~completed),
        })
        leg_pos = np.searchsorted(legs.shipment_id, lines.shipment_id) if len(lines) else \
            np.zeros(0, dtype=np.int64)
        parts = []
        for status_pos, action, loc_type in ((1, "LOAD", "DC"), (4, "UNLOAD", "STORE")):
            sel = np.flatnonzero(on_day[leg_pos, status_pos]) if len(lines) else leg_pos
            lp = leg_pos[sel]
            loc = legs.dc_id[lp] if action == "LOAD" else legs.store_id[lp]
            parts.append(pa.table({
                "EventTS": ts_array(legs.times[lp, status_pos]),
                "TruckID": pa.array(legs.truck_id[lp]),
                "ShipmentId": pa.array(lines.shipment_id[sel].astype(object), pa.string()),
                "ProductID": pa.array(lines.product_id[sel]),
                "Quantity": pa.array(lines.quantity[sel].astype(np.int32)),
                "Action": pa.repeat(action, len(sel)),
                "LocationID": pa.array(loc.astype(np.int64)),
                "LocationType": pa.repeat(loc_type, len(sel)),
            }))
        return moves, pa.concat_tables(parts)

    def _supplier_arrivals(self, ctx: DayContext, orders: SupplierOrders
                           ) -> tuple[InventoryEvents, SupplierOrders, np.ndarray]:
        """DC INBOUND_SHIPMENT events for supplier lines arriving on ``ctx.day`` (§10.5).

        Returns the events, the orders still pending, and the arrived quantity per
        (dc, product) as a dense (n_dcs, n_products) array (to take off ``on_order``).
        """
        master = self._master
        n_dcs, n_products = len(master.dcs.dc_id), len(master.products.product_id)
        arrived_qty = np.zeros((n_dcs, n_products), dtype=np.int64)
        due = orders.arrival_ordinal == ctx.day.toordinal()
        if not due.any():
            return InventoryEvents.empty(), orders, arrived_qty
        np.add.at(arrived_qty, (rows_of(master.dcs.dc_id, orders.dc_id[due]),
                                orders.product_id[due] - 1),
                  orders.quantity[due])
        dc_idx, product_idx = np.nonzero(arrived_qty)
        qty = arrived_qty[dc_idx, product_idx]
        refrigerated = master.products.refrigerated[product_idx]
        src, leg_no, piece_qty = _leg_numbers(master.dcs.dc_id[dc_idx], np.zeros_like(dc_idx),
                                              refrigerated, product_idx, qty,
                                              self.config.volume.truck_capacity)
        piece_dc = master.dcs.dc_id[dc_idx[src]]
        piece_ref = refrigerated[src]
        trucks = self._supplier_trucks(ctx.day, piece_dc, leg_no, piece_ref)
        offset_s = np.zeros(int(piece_dc.max()) + 1, dtype=np.int64)
        for dc in np.unique(piece_dc).tolist():
            offset_s[dc] = stream(self._seed, "supplier.arrival", ctx.day, dc).integers(0, 43_200)
        arrive = ctx.day_start_us + 6 * US_PER_HOUR + offset_s[piece_dc] * US_PER_SECOND
        n = len(src)
        source = fixed_width_strings(["SUP" + day_tag(ctx.day), Digits(piece_dc, 4, "dc_id"),
                                      Digits(leg_no, 3, "leg")], n)
        events = InventoryEvents(
            node_idx=rows_of(master.dcs.dc_id, piece_dc), product_idx=product_idx[src],
            ts_us=arrive,
            txn_type=np.full(n, INBOUND, dtype=np.int8), source=source, delta=piece_qty,
            truck_id=trucks,
        )
        return events, orders.take(np.flatnonzero(~due)), arrived_qty

    def _supplier_trucks(self, day: date, dc_id: np.ndarray, leg_no: np.ndarray,
                         refrigerated: np.ndarray) -> np.ndarray:
        t = self._master.trucks
        supplier = t.type_code == _SUPPLIER
        out = np.zeros(len(dc_id), dtype=np.int64)
        if not supplier.any():
            return out
        for ref in (True, False):
            pool = t.truck_id[supplier & (t.refrigerated == ref)]
            if pool.size == 0:
                pool = t.truck_id[supplier]
            sel = refrigerated == ref
            # Legs of a class are numbered after the other class's; count within the class.
            first_leg = np.zeros(len(dc_id), dtype=np.int64)
            if sel.any():
                uniq, mins = _group_min(dc_id[sel], leg_no[sel])
                first_leg[sel] = mins[np.searchsorted(uniq, dc_id[sel])]
            pos = (day.toordinal() + dc_id + leg_no - first_leg) % pool.size
            out[sel] = pool[pos[sel]]
        return out

    def _generate_supplier_orders(self, ctx: DayContext, dc_on_hand: np.ndarray,
                                  dc_on_order: np.ndarray, dc_rp: np.ndarray
                                  ) -> SupplierOrders:
        """End-of-day supplier orders for DC products at or below the reorder point."""
        vol = self.config.volume
        available = np.zeros(dc_on_hand.shape[1], dtype=bool)
        available[ctx.available] = True
        due = (dc_on_hand + dc_on_order <= dc_rp) & available[None, :]
        dc_idx, product_idx = np.nonzero(due)
        qty = np.empty(len(dc_idx), dtype=np.int64)
        lead = np.empty(len(dc_idx), dtype=np.int64)
        lo = max(1, vol.dc_initial_inventory_min)
        hi = max(lo, vol.dc_initial_inventory_max)
        for dc in np.unique(dc_idx).tolist():
            idx = np.flatnonzero(dc_idx == dc)
            rng = stream(self._seed, "supplier.order", ctx.day, int(self._master.dcs.dc_id[dc]))
            qty[idx] = rng.integers(lo, hi + 1, len(idx))
            lead[idx] = rng.integers(1, 4, len(idx))
        ordinal = ctx.day.toordinal()
        return SupplierOrders(self._master.dcs.dc_id[dc_idx], product_idx + 1, qty,
                              np.full(len(qty), ordinal, dtype=np.int64), ordinal + lead)


def _group_min(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inverse = np.unique(keys, return_inverse=True)
    out = np.full(len(uniq), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, inverse, values)
    return uniq, out


__all__ = [
    "LogisticsMixin",
    "Reorders",
    "allocate_reorders",
    "leg_times",
    "pack_into_legs",
    "reorder_priority",
    "store_reorders",
]
