"""Inventory: customer pools, initial stock, cycle counts and the exact running balances.

Every stock movement of a day, at a store or a DC, is an :class:`InventoryEvents` row. Resolving
them applies the min-rule of behaviour.md §9 in closed form: with ``S`` the running sum of the
signed requests from the opening balance, the balance is ``S - min(0, cummin(S))`` per
(node, product), computed for all nodes and products at once with sorted arrays.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from retail_datagen import domain
from retail_datagen.generators.fact_generators.data_loading_mixin import (
    MasterData,
    StorePools,
)
from retail_datagen.generators.fact_generators.day_types import (
    DayContext,
    InventoryEvents,
    ResolvedEvents,
)
from retail_datagen.generators.fact_generators.utils_mixin import (
    US_PER_HOUR,
    dict_strings,
    group_starts,
    sort_indices_by,
    ts_array,
)
from retail_datagen.geo import haversine_miles
from retail_datagen.ids import unit_day_ids
from retail_datagen.rng import stream

# behaviour.md §4: weight by location rank, or by distance for the other 8 locations.
_MOBILITY_PROPENSITY = np.array([0.10, 0.25, 0.50, 0.80, 0.60])
_POOL_LOCATIONS = 10
ADJUSTMENT = domain.TXN_TYPE_RANK["ADJUSTMENT"]
#: Units lost (theft, damage, admin error) per unit asked for at the till, found by the 22:00
#: count; at most SHRINK_MAX_UNITS per store-product and day (docs/realism.md).
SHRINK_P = 0.017
SHRINK_MAX_UNITS = 5


def per_store_cumulative(weights: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``cumsum(p) / sum(p)`` of each store's own weights (behaviour.md §1).

    Store i owns ``weights[offsets[i]:offsets[i + 1]]``; normalising each store alone (not as
    differences of one network-wide cumsum) keeps a store's draws independent of the others.
    """
    out = np.empty(len(weights), dtype=np.float64)
    for lo, hi in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True):
        p = weights[lo:hi]
        out[lo:hi] = np.cumsum(p) / np.sum(p)
    return out


def build_store_pools(master: MasterData) -> StorePools:
    """The customer pool of every store (behaviour.md §4), from master columns only."""
    stores, customers, geos = master.stores, master.customers, master.geographies
    n_mob = len(domain.MOBILITY_SEGMENTS)
    n_geo = len(geos.geography_id)
    # Class c = (home geography, mobility); members in customer_id order.
    class_of = (customers.geography_id - 1) * n_mob + customers.mobility_code.astype(np.int64)
    order = np.argsort(class_of, kind="stable")
    class_size = np.bincount(class_of, minlength=n_geo * n_mob).astype(np.int64)
    class_start = np.concatenate([[0], np.cumsum(class_size)[:-1]]).astype(np.int64)

    locations = np.unique(stores.geography_id)  # geographies with stores, ascending
    loc_idx = locations - 1
    dist = haversine_miles(geos.latitude[:, None], geos.longitude[:, None],
                           geos.latitude[loc_idx][None, :], geos.longitude[loc_idx][None, :])
    # Rank by distance, ties to the lower geography_id (locations are ascending already).
    rank_order = np.lexsort((np.broadcast_to(locations, dist.shape), dist), axis=1)
    keep = min(_POOL_LOCATIONS, len(locations))
    nearest = rank_order[:, :keep]  # (n_geo, keep) location positions
    near_dist = np.take_along_axis(dist, nearest, axis=1)
    base = np.where(near_dist < 5, 0.15, np.where(near_dist < 15, 0.10, 0.05))
    # weight[g, mobility, rank]
    weight = base[:, None, :] * _MOBILITY_PROPENSITY[None, :, None]
    weight[:, :, 0] = 0.50
    if keep > 1:
        weight[:, :, 1] = 0.20
    weight = weight / weight.sum(axis=2, keepdims=True)
    stores_at = np.bincount(np.searchsorted(locations, stores.geography_id),
                            minlength=len(locations))
    per_store = weight / stores_at[nearest][:, None, :]
    # Entries (class, store) with weight n_c × w_c(s), for every store at each kept location.
    cls = np.arange(n_geo * n_mob).reshape(n_geo, n_mob)
    cls_b = np.broadcast_to(cls[:, :, None], per_store.shape).ravel()
    loc_b = np.broadcast_to(nearest[:, None, :], per_store.shape).ravel()
    w_b = per_store.ravel() * class_size[cls_b]
    store_loc = np.searchsorted(locations, stores.geography_id)
    # Expand location entries to each store at that location.
    loc_store_order = np.argsort(store_loc, kind="stable")
    loc_store_start = np.concatenate([[0], np.cumsum(stores_at)[:-1]])
    reps = stores_at[loc_b]
    entry_cls = np.repeat(cls_b, reps)
    entry_w = np.repeat(w_b, reps)
    offsets_in_loc = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
    entry_store = loc_store_order[np.repeat(loc_store_start[loc_b], reps) + offsets_in_loc]
    positive = entry_w > 0
    entry_cls, entry_w, entry_store = entry_cls[positive], entry_w[positive], entry_store[positive]
    # Pool order per store: (geography_id, mobility order) = class id order.
    srt = np.lexsort((entry_cls, entry_store))
    entry_cls, entry_w, entry_store = entry_cls[srt], entry_w[srt], entry_store[srt]
    n_stores = len(stores.store_id)
    counts = np.bincount(entry_store, minlength=n_stores)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    cum_weight = per_store_cumulative(entry_w, offsets)
    return StorePools(
        offsets=offsets,
        class_id=entry_cls.astype(np.int64),
        cum_weight=cum_weight,
        class_start=class_start,
        class_size=class_size,
        class_members=customers.customer_id[order],
    )


def initial_inventory(seed: int, first_day: date, name: str, node_ids: np.ndarray,
                      n_products: int, qty_range: tuple[int, int], rp_range: tuple[int, int]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Opening on-hand and reorder points (n_nodes, n_products) for stores or DCs (§9)."""
    on_hand = np.empty((len(node_ids), n_products), dtype=np.int64)
    rp = np.empty_like(on_hand)
    for row, node_id in enumerate(node_ids.tolist()):
        rng = stream(seed, name, first_day, node_id)
        on_hand[row] = rng.integers(qty_range[0], qty_range[1] + 1, n_products)
        rp[row] = rng.integers(rp_range[0], rp_range[1] + 1, n_products)
    return on_hand, rp


def resolve_events(events: InventoryEvents, on_hand: np.ndarray
                   ) -> tuple[np.ndarray, ResolvedEvents]:
    """Apply ``events`` to ``on_hand`` (n_nodes, n_products) in place with the min-rule.

    Events of one (node, product) apply in (event_ts, type rank, source) order.

    Returns:
        ``order``: the permutation that sorts the events into application order (grouped by
        node and product), and the :class:`ResolvedEvents` in **input** order.
    """
    n = len(events)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, ResolvedEvents(z, z, z)
    n_products = on_hand.shape[1]
    key = events.node_idx * n_products + events.product_idx
    order = sort_indices_by([key, events.ts_us, events.txn_type],
                            lambda rows: events.source.take(pa.array(rows)))
    k = key[order]
    d = events.delta[order]
    flat = on_hand.reshape(-1)
    starts = group_starts(k)
    gid = np.cumsum(starts) - 1
    start_pos = np.flatnonzero(starts)
    opening = flat[k[start_pos]]
    csum = np.cumsum(d)
    before_group = np.concatenate([[0], csum[start_pos[1:] - 1]])
    running = opening[gid] + csum - before_group[gid]
    # Grouped cumulative minimum: shift each later group far below the earlier ones.
    spread = 2 * (int(np.abs(running).max()) + int(opening.max(initial=0)) + 1)
    shifted = running - gid * spread
    cummin = np.minimum.accumulate(shifted) + gid * spread
    balance = running - np.minimum(0, cummin)
    previous = np.empty_like(balance)
    previous[1:] = balance[:-1]
    previous[start_pos] = opening
    ends = np.append(start_pos[1:] - 1, n - 1)
    flat[k[ends]] = balance[ends]
    resolved = ResolvedEvents(
        applied=np.empty(n, dtype=np.int64),
        balance=np.empty(n, dtype=np.int64),
        previous=np.empty(n, dtype=np.int64),
    )
    resolved.applied[order] = balance - previous
    resolved.balance[order] = balance
    resolved.previous[order] = previous
    return order, resolved


def balance_before(events: InventoryEvents, order: np.ndarray, resolved: ResolvedEvents,
                   opening: np.ndarray, cutoff_us: int) -> np.ndarray:
    """On-hand (n_nodes, n_products) after every event with event_ts < ``cutoff_us``.

    ``order`` is the application order returned by :func:`resolve_events`; within one
    (node, product) it is by time, so the early events of each pair form a prefix.
    """
    result = opening.copy()
    ordered = order[events.ts_us[order] < cutoff_us]
    if ordered.size == 0:
        return result
    key = events.node_idx[ordered] * opening.shape[1] + events.product_idx[ordered]
    last = np.append(key[1:] != key[:-1], True)
    result.reshape(-1)[key[last]] = resolved.balance[ordered[last]]
    return result


def cycle_count_events(seed: int, ctx: DayContext, store_ids: np.ndarray,
                       network_stores: int | None = None) -> InventoryEvents:
    """Daily cycle counts at 22:00 (behaviour.md §9): ADJUSTMENT requests for a few stores.

    The stores are drawn over the whole network (``network_stores`` stores, ids 1..; by
    default ``store_ids`` is the network), and only those of ``store_ids`` (ascending) are
    kept, so a unit's counts are the network's counts at its stores (sharding.md §2.4).
    ``node_idx`` is the position in ``store_ids``.
    """
    n_network = len(store_ids) if network_stores is None else network_stores
    if ctx.closed or len(store_ids) == 0:
        return InventoryEvents.empty()
    k = max(1, n_network // 10)
    keys = stream(seed, "adjust.stores", ctx.day, 0).random(n_network)
    # k largest keys in descending key order (ties: lower index).
    chosen_ids = np.sort(np.lexsort((np.arange(n_network), -keys))[:k]) + 1
    local = np.minimum(np.searchsorted(store_ids, chosen_ids), len(store_ids) - 1)
    local = local[store_ids[local] == chosen_ids]
    if local.size == 0:
        return InventoryEvents.empty()
    available = ctx.available
    nodes, products, deltas = [], [], []
    for store_idx in local.tolist():
        rng = stream(seed, "adjust.lines", ctx.day, int(store_ids[store_idx]))
        count = int(rng.integers(1, 4))
        pkeys = rng.random(len(available))
        v = rng.integers(0, 10, 3)
        count = min(count, len(available))
        picked = available[_largest_keys(pkeys, count)]
        delta = np.where(v[:count] < 5, v[:count] - 5, v[:count] - 4)
        nodes.append(np.full(count, store_idx, dtype=np.int64))
        products.append(picked.astype(np.int64))
        deltas.append(delta.astype(np.int64))
    node = np.concatenate(nodes)
    m = len(node)
    return InventoryEvents(
        node_idx=node,
        product_idx=np.concatenate(products),
        ts_us=np.full(m, ctx.day_start_us + 22 * US_PER_HOUR, dtype=np.int64),
        txn_type=np.full(m, ADJUSTMENT, dtype=np.int8),
        source=pa.repeat("CYCLE_COUNT", m),
        delta=np.concatenate(deltas),
    )


def _largest_keys(keys: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` largest keys, largest first, ties to the lower position:
    ``np.lexsort((positions, -keys))[:count]`` without sorting every key."""
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    neg = -keys
    threshold = np.partition(neg, count - 1)[count - 1]
    candidates = np.flatnonzero(neg <= threshold)
    return candidates[np.lexsort((candidates, neg[candidates]))[:count]]


def shrink_events(seed: int, ctx: DayContext, store_ids: np.ndarray,
                  sales: InventoryEvents) -> InventoryEvents:
    """Shrink found by the 22:00 count: ADJUSTMENT requests of the units lost (docs/realism.md).

    Each store-product loses Binomial(units asked for at the till that day, ``SHRINK_P``) units,
    capped at ``SHRINK_MAX_UNITS``; each store draws from stream ``adjust.shrink`` (shard
    store_id) in product order.
    """
    if ctx.closed or len(sales) == 0:
        return InventoryEvents.empty()
    key = sales.node_idx.astype(np.int64) << 32 | sales.product_idx.astype(np.int64)
    pairs, inverse = np.unique(key, return_inverse=True)
    units = np.bincount(inverse, weights=-sales.delta).astype(np.int64)
    node, product = pairs >> 32, pairs & 0xFFFFFFFF
    lost = np.zeros(len(pairs), dtype=np.int64)
    starts = np.flatnonzero(group_starts(node))
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(pairs)], strict=True):
        rng = stream(seed, "adjust.shrink", ctx.day, int(store_ids[node[a]]))
        lost[a:b] = rng.binomial(units[a:b], SHRINK_P)
    hit = np.flatnonzero(lost > 0)
    m = len(hit)
    return InventoryEvents(
        node_idx=node[hit],
        product_idx=product[hit],
        ts_us=np.full(m, ctx.day_start_us + 22 * US_PER_HOUR, dtype=np.int64),
        txn_type=np.full(m, ADJUSTMENT, dtype=np.int8),
        source=pa.repeat("SHRINK", m),
        delta=-np.minimum(lost[hit], SHRINK_MAX_UNITS),
    )


def inventory_txn_table(day: date, events: InventoryEvents, resolved: ResolvedEvents,
                        node_ids: np.ndarray, node_units: np.ndarray, *, dc: bool
                        ) -> tuple[pa.Table, np.ndarray]:
    """Rows of the store or DC txn table for the events that moved stock, in DSID order.

    ``node_units`` (int64, by node index) is each node's DC unit, which numbers its TxnIds.
    Returns the table and the event positions (input order) of its rows.
    """
    moved = np.flatnonzero(resolved.applied != 0)
    node_id = node_ids[events.node_idx[moved]]
    product_id = events.product_idx[moved] + 1
    srt = sort_indices_by([events.ts_us[moved], node_id, product_id, events.txn_type[moved]],
                          lambda rows: events.source.take(pa.array(moved[rows])))
    rows = moved[srt]
    columns: dict[str, pa.Array] = {
        "TxnId": pa.array(unit_day_ids(day, node_units[events.node_idx[rows]])),
        "EventTS": ts_array(events.ts_us[rows]),
        ("DCID" if dc else "StoreID"): pa.array(node_ids[events.node_idx[rows]]),
        "ProductID": pa.array(events.product_idx[rows] + 1),
        "TxnType": dict_strings(events.txn_type[rows], domain.TXN_TYPES_BY_RANK),
        "Quantity": pa.array(resolved.applied[rows].astype(np.int32)),
        "Balance": pa.array(resolved.balance[rows].astype(np.int32)),
        "Source": events.source.take(pa.array(rows)),
    }
    if dc:
        truck = events.truck_id[rows]
        columns["TruckID"] = pa.array(truck, mask=truck == 0)
    return pa.table(columns), rows


class InventoryMixin:
    """Stock at stores and DCs.

    This mixin defines the following functionality:

    Adds:
        ``_build_store_customer_pools``, ``_initial_inventory_state``,
        ``_generate_store_adjustments`` (cycle counts and shrink), ``_resolve_inventory`` (the min-rule),
        ``_generate_dc_inventory_transactions`` and ``_store_inventory_transactions``
        (rows of ``dc_inventory_txn`` / ``store_inventory_txn``).
    Reads:
        ``config.volume``, ``_master``, ``_network_stores`` (the network's store count, which
        cycle counts draw over when ``_master`` is a unit's view; unset: ``_master``'s).
    Writes:
        nothing on self; balances live in ``_state`` and are passed in by the driver.
    Streams:
        ``init.store_inventory``, ``init.dc_inventory``, ``adjust.stores``, ``adjust.lines``,
        ``adjust.shrink``.
    """

    def _build_store_customer_pools(self) -> StorePools:
        return build_store_pools(self._master)

    def _initial_inventory_state(self, first_day: date) -> tuple[np.ndarray, ...]:
        """(store_on_hand, store_rp, dc_on_hand, dc_rp) drawn on the first day F."""
        vol = self.config.volume
        n_products = len(self._master.products.product_id)
        store_on_hand, store_rp = initial_inventory(
            self._seed, first_day, "init.store_inventory", self._master.stores.store_id,
            n_products, (vol.store_initial_inventory_min, vol.store_initial_inventory_max),
            (vol.store_reorder_point_min, vol.store_reorder_point_max))
        dc_on_hand, dc_rp = initial_inventory(
            self._seed, first_day, "init.dc_inventory", self._master.dcs.dc_id, n_products,
            (vol.dc_initial_inventory_min, vol.dc_initial_inventory_max),
            (vol.dc_reorder_point_min, vol.dc_reorder_point_max))
        return store_on_hand, store_rp, dc_on_hand, dc_rp

    def _generate_store_adjustments(self, ctx: DayContext,
                                    sales: InventoryEvents) -> InventoryEvents:
        """Cycle counts and the shrink they find among the day's ``sales`` requests."""
        store_ids = self._master.stores.store_id
        counts = cycle_count_events(self._seed, ctx, store_ids,
                                    getattr(self, "_network_stores", None))
        return InventoryEvents.concat([counts, shrink_events(self._seed, ctx, store_ids, sales)])

    def _resolve_inventory(self, events: InventoryEvents, on_hand: np.ndarray
                           ) -> tuple[np.ndarray, ResolvedEvents]:
        """Resolve a day's events against ``on_hand`` (updated in place).

        Returns the application order and the per-event results (input order).
        """
        return resolve_events(events, on_hand)

    def _store_inventory_transactions(self, ctx: DayContext, events: InventoryEvents,
                                      resolved: ResolvedEvents) -> pa.Table:
        stores = self._master.stores
        return inventory_txn_table(ctx.day, events, resolved, stores.store_id, stores.dc_id,
                                   dc=False)[0]

    def _generate_dc_inventory_transactions(self, ctx: DayContext, events: InventoryEvents,
                                            resolved: ResolvedEvents) -> pa.Table:
        dc_ids = self._master.dcs.dc_id
        return inventory_txn_table(ctx.day, events, resolved, dc_ids, dc_ids, dc=True)[0]


__all__ = [
    "InventoryMixin",
    "balance_before",
    "build_store_pools",
    "per_store_cumulative",
    "cycle_count_events",
    "initial_inventory",
    "inventory_txn_table",
    "resolve_events",
    "shrink_events",
]
