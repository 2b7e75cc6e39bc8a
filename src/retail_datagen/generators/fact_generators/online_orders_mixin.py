"""Online orders: candidate orders, their stock requests, and the finished order batches.

An online day runs in two halves around inventory resolution (behaviour.md §11, §15 steps 5
and 8). :func:`generate_online_candidates` draws every candidate order and line from the
``online.orders`` stream and emits one SALE request per non-cancelled line at the order's node.
Once the daily driver has applied the min-rule, :func:`finalize_online_orders` keeps the filled
quantities, prices the lines and builds the header, line and payment batches.

Orders are referred to by their *draw index* (position in the stream); the order id seq follows
(created time, draw index). Lines are the merged candidate lines, in (order, first occurrence)
order. Products, stores and DCs are referred to by index (id − 1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from retail_datagen import domain, money
from retail_datagen.calendar import is_store_closed
from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators.day_types import DayContext, InventoryEvents
from retail_datagen.generators.fact_generators.payments_mixin import (
    PaymentDraws,
    build_payments,
    draw_payment_attempts,
)
from retail_datagen.generators.fact_generators.utils_mixin import (
    US_PER_HOUR,
    US_PER_SECOND,
    Digits,
    day_start_us,
    day_tag,
    dict_strings,
    fixed_width_strings,
    group_starts,
    rank_within_groups,
    rows_of,
    ts_array,
)
from retail_datagen.rng import categorical, stream, uniform_int

#: Created time offset within the day: U{0..86,339,999,999} µs (before 23:59:00).
CREATED_SPAN_US = 86_340_000_000
#: Fulfilment mode probabilities, in ``domain.FULFILLMENT_MODES`` order.
MODE_P = (0.60, 0.30, 0.10)
SHIP_FROM_DC, SHIP_FROM_STORE, BOPIS = 0, 1, 2
#: Line-count buckets: probability and the U{lo..hi} of drawn lines.
LINE_BUCKET_P = (0.60, 0.30, 0.10)
LINE_BUCKET_LO = np.array([1, 2, 5], dtype=np.int64)
LINE_BUCKET_HI = np.array([3, 5, 8], dtype=np.int64)
#: Quantity {1, 2, 3} weights.
QTY_P = (0.70, 0.25, 0.05)
#: Line promo codes, in ``domain.ONLINE_PROMO_CODES`` order: weights and basis points.
PROMO_P = (0.50, 0.35, 0.15)
PROMO_BP = np.array([500, 1_000, 2_000], dtype=np.int64)
CANCEL_P = 0.02
SALE = domain.TXN_TYPE_RANK["SALE"]
ORDER_STATUSES = ("COMPLETED", "CANCELLED")
LINE_STATUSES = ("DELIVERED", "PICKED_UP", "CANCELLED")


@dataclass
class OnlineCandidates:
    """Every candidate online order of one day and its merged lines, before allocation.

    Order arrays have shape (n,) in draw index order; line arrays have shape (m,) in
    (order draw index, first occurrence) order. Event-to-line maps give, for each row of
    ``store_events`` / ``dc_events``, the line it requests stock for.
    """

    day: date
    order_id: pa.Array  # string (n,) ONL + YYYYMMDD + dc_id(4) + seq(7)
    seq: np.ndarray  # int64 (n,) 1-based within the unit, by (created, draw index)
    unit_id: np.ndarray  # int64 (n,) the DC unit of the order (its customer's primary store)
    order_rank: np.ndarray  # int64 (n,) 0-based position in (unit, seq) order
    created_us: np.ndarray  # int64 (n,) wall-time µs on the day
    customer_id: np.ndarray  # int64 (n,)
    mode_code: np.ndarray  # int8 (n,) into domain.FULFILLMENT_MODES (Dec 25 remap applied)
    store_id: np.ndarray  # int64 (n,) fulfilling store for store modes, 0 otherwise
    dc_id: np.ndarray  # int64 (n,) fulfilling DC for SHIP_FROM_DC, 0 otherwise
    cancelled: np.ndarray  # bool (n,)
    cancelled_us: np.ndarray  # int64 (n,) created + cancel delay (meaningful if cancelled)
    picked_us: np.ndarray  # int64 (n,)
    shipped_us: np.ndarray  # int64 (n,) (meaningless for BOPIS)
    delivered_us: np.ndarray  # int64 (n,) delivery or pick-up time
    line_order: np.ndarray  # int64 (m,) draw index of the line's order
    line_product_idx: np.ndarray  # int64 (m,)
    line_qty: np.ndarray  # int64 (m,) requested units (merged), > 0
    line_promo: np.ndarray  # int8 (m,) into domain.ONLINE_PROMO_CODES, −1 = no promo drawn
    store_events: InventoryEvents  # SALE requests at stores (store modes)
    dc_events: InventoryEvents  # SALE requests at DCs (SHIP_FROM_DC)
    store_event_line: np.ndarray  # int64 (len(store_events),) line index per event
    dc_event_line: np.ndarray  # int64 (len(dc_events),) line index per event

    def __len__(self) -> int:
        return int(self.created_us.shape[0])

    @staticmethod
    def concat(day: date, parts: list[OnlineCandidates]) -> OnlineCandidates:
        """The candidates of several units (at least one) as one set, in the order given."""
        if len(parts) == 1:
            return parts[0]
        order_off = np.cumsum([0] + [len(p) for p in parts[:-1]])
        line_off = np.cumsum([0] + [len(p.line_order) for p in parts[:-1]])

        def cat(name: str, offsets=None) -> np.ndarray:
            arrays = [getattr(p, name) for p in parts]
            if offsets is not None:
                arrays = [a + o for a, o in zip(arrays, offsets, strict=True)]
            return np.concatenate(arrays)

        per_order = ("seq", "unit_id", "created_us", "customer_id", "mode_code", "store_id",
                     "dc_id", "cancelled", "cancelled_us", "picked_us", "shipped_us",
                     "delivered_us")
        per_line = ("line_product_idx", "line_qty", "line_promo")
        return OnlineCandidates(
            day=day,
            order_id=pa.concat_arrays([p.order_id for p in parts]),
            order_rank=cat("order_rank", order_off),
            line_order=cat("line_order", order_off),
            store_events=InventoryEvents.concat([p.store_events for p in parts]),
            dc_events=InventoryEvents.concat([p.dc_events for p in parts]),
            store_event_line=cat("store_event_line", line_off),
            dc_event_line=cat("dc_event_line", line_off),
            **{name: cat(name) for name in per_order + per_line},
        )


def _seconds_us(seconds: np.ndarray) -> np.ndarray:
    """A float duration in seconds as whole seconds (half-up), in µs."""
    return np.floor(seconds + 0.5).astype(np.int64) * US_PER_SECOND


def online_order_count_lambda(orders_per_day: int, seasonal: float, unit_customers: int = 1,
                              total_customers: int = 1) -> float:
    """``online_orders_per_day × clamp(seasonal(D), 0.5, 2.5) × c_u / C``, left to right."""
    return float(orders_per_day) * min(max(seasonal, 0.5), 2.5) * unit_customers \
        / total_customers


def online_slowdown(seasonal: float) -> float:
    """``hf = clamp(0.8 + 0.6 × seasonal(D), 1.0, 2.0)``."""
    return min(max(0.8 + 0.6 * seasonal, 1.0), 2.0)


def _merge_duplicate_lines(order: np.ndarray, product: np.ndarray, qty: np.ndarray,
                           n_products: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge repeated (order, product) lines into their first occurrence.

    Returns:
        ``(first, qty)``: the drawn-line index of each kept first occurrence, ascending, and the
        summed quantity of its group.
    """
    if order.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    key = order * n_products + product
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    # Quantities are small integers, so the float64 bincount is exact.
    summed = np.bincount(inverse.reshape(-1), weights=qty, minlength=first.size).astype(np.int64)
    keep = np.argsort(first, kind="stable")
    return first[keep].astype(np.int64), summed[keep]


def _sale_events(mask: np.ndarray, node_idx: np.ndarray, line_order: np.ndarray,
                 product_idx: np.ndarray, qty: np.ndarray, order_id: pa.Array,
                 created_us: np.ndarray) -> tuple[InventoryEvents, np.ndarray]:
    """SALE requests (−qty at the created time, source = order id) of the masked lines.

    Returns:
        ``(events, lines)``: the events and, per event, its line index.
    """
    lines = np.flatnonzero(mask).astype(np.int64)
    orders = line_order[lines]
    events = InventoryEvents(
        node_idx=node_idx[orders].astype(np.int64),
        product_idx=product_idx[lines],
        ts_us=created_us[orders],
        txn_type=np.full(lines.size, SALE, dtype=np.int8),
        source=order_id.take(pa.array(orders)),
        delta=-qty[lines],
    )
    return events, lines


def generate_online_candidates(
    rng: np.random.Generator,
    day: date,
    *,
    unit_id: int,
    orders_per_day: int,
    seasonal: float,
    unit_customers: np.ndarray,
    total_customers: int,
    customer_primary_store: np.ndarray,
    store_dc_id: np.ndarray,
    popularity: np.ndarray,
    available: np.ndarray,
    store_ids: np.ndarray | None = None,
    dc_ids: np.ndarray | None = None,
) -> OnlineCandidates:
    """Draw one DC unit's candidate online orders and their stock requests (behaviour.md §11,
    sharding.md §2.3).

    Args:
        rng: The ``online.orders`` stream of the day with shard = ``unit_id``. A unit with no
            customers draws nothing from it.
        day: The simulated day D.
        unit_id: The DC unit u (its dc_id).
        orders_per_day: ``config.volume.online_orders_per_day``.
        seasonal: ``seasonal(D)``.
        unit_customers: int64 array, shape (c_u,): the customer ids whose primary store
            belongs to the unit, ascending.
        total_customers: C, ``volume.total_customers``.
        customer_primary_store: int64 array, shape (n_customers,): primary_store_id by
            customer index.
        store_dc_id: int64 array, shape (n_stores,): dc_id by store index.
        popularity: float64 array, shape (n_products,): popularity_weight by product index.
        available: int64 array: available product indices, ascending (product_id order).
        store_ids, dc_ids: the ascending ids whose positions are the store and DC indices
            (``store_dc_id`` is by store index, and the events' ``node_idx``); None: the
            dense network ids 1...

    Returns:
        The candidates, with their SALE requests split into store and DC events.
    """
    c_u = int(unit_customers.shape[0])
    n = 0
    if c_u:
        lam = online_order_count_lambda(orders_per_day, seasonal, c_u, total_customers)
        n = int(rng.poisson(np.array([lam]))[0])
    # Per order, one call per kind in the stream's canonical order.
    created = day_start_us(day) + rng.integers(0, CREATED_SPAN_US, n)
    customer_id = unit_customers[rng.integers(0, max(c_u, 1), n)] if c_u else \
        np.zeros(0, np.int64)
    mode = categorical(rng, MODE_P, n).astype(np.int8)
    bucket = categorical(rng, LINE_BUCKET_P, n)
    line_count = uniform_int(rng, LINE_BUCKET_LO[bucket], LINE_BUCKET_HI[bucket], n)
    promo_rate = 0.10 + (0.30 - 0.10) * rng.random(n)
    cancelled = rng.random(n) < CANCEL_P
    cancel_min = 5.0 + (60.0 - 5.0) * rng.random(n)
    ship_tri = rng.triangular(8.0, 18.0, 48.0, n)
    picked_min = 30.0 + (240.0 - 30.0) * rng.random(n)
    transit_days = 1.0 + (3.0 - 1.0) * rng.random(n)
    pickup_tri = rng.triangular(4.0, 12.0, 24.0, n)

    # Per drawn line (order, then line).
    drawn_order = np.repeat(np.arange(n, dtype=np.int64), line_count)
    m = int(drawn_order.shape[0])
    avail = np.asarray(available, dtype=np.int64)
    if avail.size:
        product = avail[categorical(rng, popularity[avail], m)]
    else:
        rng.random(m)  # drawn and unused: with no available product no line exists
        product = np.zeros(m, dtype=np.int64)
    qty = categorical(rng, QTY_P, m).astype(np.int64) + 1
    promo_hit = rng.random(m) < promo_rate[drawn_order]
    promo_code = categorical(rng, PROMO_P, m).astype(np.int8)
    # With no available product, no line exists (the order is not written).
    real = m if avail.size else 0
    first, merged_qty = _merge_duplicate_lines(drawn_order[:real], product[:real], qty[:real],
                                               int(popularity.shape[0]))
    line_order = drawn_order[first]
    line_product = product[first]
    line_promo = np.where(promo_hit[first], promo_code[first], -1).astype(np.int8)

    # Ids, nodes and lifecycle per order.
    by_seq = np.lexsort((np.arange(n), created))
    seq = np.empty(n, dtype=np.int64)
    seq[by_seq] = np.arange(1, n + 1, dtype=np.int64)
    order_id = fixed_width_strings(["ONL" + day_tag(day), Digits(np.full(n, unit_id), 4, "dc_id"),
                                    Digits(seq, 7, "order_id_ext seq")], n)
    if is_store_closed(day):
        mode[mode != SHIP_FROM_DC] = SHIP_FROM_DC
    home_store = customer_primary_store[customer_id - 1].astype(np.int64)
    is_dc = mode == SHIP_FROM_DC
    store_id = np.where(is_dc, 0, home_store)
    store_ids = np.arange(1, len(store_dc_id) + 1) if store_ids is None else store_ids
    dc_ids = np.arange(1, int(store_dc_id.max(initial=0)) + 1) if dc_ids is None else dc_ids
    dc_id = np.where(is_dc, store_dc_id[rows_of(store_ids, home_store)], 0).astype(np.int64)

    hf = online_slowdown(seasonal)
    cancelled_us = created + _seconds_us(cancel_min * 60.0)
    picked_ship = created + _seconds_us(picked_min * 60.0)
    delay_h = ship_tri * hf
    shipped = created + _seconds_us(delay_h * 3600.0)
    transit = np.where(mode == SHIP_FROM_DC, transit_days, 1.0)
    delivered_ship = shipped + _seconds_us(transit * 24.0 * hf * 3600.0)
    pickup_h = np.maximum(4.0, pickup_tri * hf)
    picked_bopis = created + np.maximum(1, np.floor(pickup_h / 2.0)).astype(np.int64) * US_PER_HOUR
    delivered_bopis = created + _seconds_us(pickup_h * 3600.0)
    is_bopis = mode == BOPIS

    live = ~cancelled[line_order]
    to_dc = is_dc[line_order]
    store_events, store_event_line = _sale_events(
        live & ~to_dc, rows_of(store_ids, store_id), line_order, line_product, merged_qty,
        order_id, created)
    dc_events, dc_event_line = _sale_events(
        live & to_dc, rows_of(dc_ids, dc_id), line_order, line_product, merged_qty, order_id,
        created)
    return OnlineCandidates(
        day=day,
        order_id=order_id,
        seq=seq,
        unit_id=np.full(n, unit_id, dtype=np.int64),
        order_rank=seq - 1,
        created_us=created,
        customer_id=customer_id.astype(np.int64),
        mode_code=mode,
        store_id=store_id.astype(np.int64),
        dc_id=dc_id,
        cancelled=cancelled,
        cancelled_us=cancelled_us,
        picked_us=np.where(is_bopis, picked_bopis, picked_ship),
        shipped_us=shipped,
        delivered_us=np.where(is_bopis, delivered_bopis, delivered_ship),
        line_order=line_order,
        line_product_idx=line_product,
        line_qty=merged_qty,
        line_promo=line_promo,
        store_events=store_events,
        dc_events=dc_events,
        store_event_line=store_event_line,
        dc_event_line=dc_event_line,
    )


def _filled_line_qty(cand: OnlineCandidates, filled_store: np.ndarray,
                     filled_dc: np.ndarray) -> np.ndarray:
    """Final units per line: the filled quantity, or the requested one for cancelled orders."""
    filled_store = np.asarray(filled_store, dtype=np.int64)
    filled_dc = np.asarray(filled_dc, dtype=np.int64)
    if filled_store.shape != cand.store_event_line.shape or \
            filled_dc.shape != cand.dc_event_line.shape:
        raise GenerationError(
            f"{cand.day}: online fills do not match the events "
            f"({filled_store.shape[0]}/{cand.store_event_line.shape[0]} store, "
            f"{filled_dc.shape[0]}/{cand.dc_event_line.shape[0]} DC)")
    qty = np.where(cand.cancelled[cand.line_order], cand.line_qty, 0)
    qty[cand.store_event_line] = filled_store
    qty[cand.dc_event_line] = filled_dc
    if (qty < 0).any() or (qty > cand.line_qty).any():
        raise GenerationError(f"{cand.day}: an online fill is outside 0..requested")
    return qty


def finalize_online_orders(
    cand: OnlineCandidates,
    filled_store: np.ndarray,
    filled_dc: np.ndarray,
    pay_draws: PaymentDraws,
    *,
    unit_cents: np.ndarray,
    tax_factor: np.ndarray,
    store_tax_ppm: np.ndarray,
    customer_home_ppm: np.ndarray,
    store_ids: np.ndarray | None = None,
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Price the allocated lines and build the order batches (behaviour.md §6, §8, §11).

    Args:
        cand: The day's candidates from :func:`generate_online_candidates`.
        filled_store: int64 array, shape (len(cand.store_events),): units filled per store
            event (−applied, 0..requested).
        filled_dc: int64 array, shape (len(cand.dc_events),): the same for the DC events.
        pay_draws: ``draw_payment_attempts`` for all ``len(cand)`` candidates in (unit, seq)
            order, each unit from its own stream.
        unit_cents: int64 array, shape (n_products,): sale price by product index.
        tax_factor: int64 array, shape (n_products,): taxability factor by product index.
        store_tax_ppm: int64 array, shape (n_stores,).
        customer_home_ppm: int64 array, shape (n_customers,): tax ppm of the home geography.
        store_ids: the ascending store ids whose positions index ``store_tax_ppm``; None:
            the dense network ids 1...

    Returns:
        ``(headers, lines, payments)`` with the generator columns of fact-tables.md §11–13,
        headers in order id order, lines by (order id, line number).
    """
    qty_all = _filled_line_qty(cand, filled_store, filled_dc)
    kept = np.flatnonzero(qty_all > 0)
    # Lines of written orders, by (seq, first occurrence); renumbered 1.. per order.
    kept = kept[np.lexsort((kept, cand.order_rank[cand.line_order[kept]]))]
    order = cand.line_order[kept]
    qty = qty_all[kept]
    starts = np.flatnonzero(group_starts(order))
    line_num = rank_within_groups(order) + 1
    written = order[starts]  # draw indices of the written orders, in seq order
    k = int(kept.shape[0])

    product = cand.line_product_idx[kept]
    unit = unit_cents[product].astype(np.int64)
    gross = unit * qty
    promo = cand.line_promo[kept].astype(np.int64)
    discount = money.percent_discount(gross, np.where(promo >= 0, PROMO_BP[promo], 0))
    ext = gross - discount
    mode = cand.mode_code[order]
    store_ids = np.arange(1, len(store_tax_ppm) + 1) if store_ids is None else store_ids
    # Orders shipped from a DC have store id 0, which finds row 0: read, then discarded.
    ppm = np.where(mode == BOPIS, store_tax_ppm[rows_of(store_ids, cand.store_id[order])],
                   customer_home_ppm[cand.customer_id[order] - 1])
    tax = money.line_tax(ext, ppm, tax_factor[product])

    cancelled_line = cand.cancelled[order]
    line_status = np.where(cancelled_line, 2, np.where(mode == BOPIS, 1, 0))
    lines_cols: dict[str, pa.Array] = {
        "OrderId": cand.order_id.take(pa.array(order)),
        "LineNumber": pa.array(line_num, pa.int32()),
        "EventTS": ts_array(cand.created_us[order]),
        "ProductID": pa.array(product + 1, pa.int64()),
        "Qty": pa.array(qty, pa.int32()),
        **money.money_columns("UnitPrice", "UnitCents", unit),
        **money.money_columns("DiscountAmount", "DiscountCents", discount),
        **money.money_columns("ExtPrice", "ExtCents", ext),
        **money.money_columns("Tax", "TaxCents", tax),
    }
    lines_cols["PromoCode"] = dict_strings(np.maximum(promo, 0), domain.ONLINE_PROMO_CODES,
                                           mask=discount == 0)
    lines_cols["FulfillmentStatus"] = dict_strings(line_status, LINE_STATUSES)
    lines_cols["PickedTS"] = ts_array(cand.picked_us[order], mask=cancelled_line)
    lines_cols["ShippedTS"] = ts_array(cand.shipped_us[order],
                                       mask=cancelled_line | (mode == BOPIS))
    lines_cols["DeliveredTS"] = ts_array(cand.delivered_us[order], mask=cancelled_line)
    lines = pa.table(lines_cols)

    # Header sums per written order (its lines are contiguous from `starts`).
    def per_order(values: np.ndarray) -> np.ndarray:
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        return np.add.reduceat(values, starts).astype(np.int64)

    subtotal, tax_sum = per_order(ext), per_order(tax)
    total = subtotal + tax_sum

    # Payments: drawn for every candidate in seq order, rows only for written live orders.
    n = len(cand)
    by_seq = np.argsort(cand.order_rank, kind="stable")
    total_all = np.zeros(n, dtype=np.int64)
    total_all[written] = total
    paid = np.zeros(n, dtype=bool)
    paid[written] = ~cand.cancelled[written]
    payments, approved = build_payments(
        pay_draws,
        cand.order_id.take(pa.array(by_seq)),
        cand.created_us[by_seq],
        total_all[by_seq],
        cand.customer_id[by_seq],
        None,
        "order",
        paid[by_seq],
    )
    method = np.empty(n, dtype=np.int64)
    method[by_seq] = np.where(paid[by_seq], approved, pay_draws.method1)

    status = cand.cancelled[written].astype(np.int64)
    w_mode = cand.mode_code[written]
    headers_cols: dict[str, pa.Array] = {
        "OrderId": cand.order_id.take(pa.array(written)),
        "EventTS": ts_array(cand.created_us[written]),
        "CustomerID": pa.array(cand.customer_id[written], pa.int64()),
        "FulfillmentMode": dict_strings(w_mode, domain.FULFILLMENT_MODES),
        "StoreID": pa.array(cand.store_id[written], pa.int64(), mask=w_mode == SHIP_FROM_DC),
        "DCID": pa.array(cand.dc_id[written], pa.int64(), mask=w_mode != SHIP_FROM_DC),
        "OrderStatus": dict_strings(status, ORDER_STATUSES),
        "LineCount": pa.array(np.diff(np.append(starts, k)), pa.int32()),
        "ItemCount": pa.array(per_order(qty), pa.int32()),
        **money.money_columns("GrossSubtotal", "GrossSubtotalCents", per_order(gross)),
        **money.money_columns("DiscountAmount", "DiscountCents", per_order(discount)),
        **money.money_columns("Subtotal", "SubtotalCents", subtotal),
        **money.money_columns("Tax", "TaxCents", tax_sum),
        **money.money_columns("Total", "TotalCents", total),
    }
    headers_cols["TenderType"] = dict_strings(method[written], domain.PAYMENT_METHODS)
    w_cancelled = cand.cancelled[written]
    headers_cols["CancelledTS"] = ts_array(cand.cancelled_us[written], mask=~w_cancelled)
    headers_cols["CompletedTS"] = ts_array(cand.delivered_us[written], mask=w_cancelled)
    return pa.table(headers_cols), lines, payments


class OnlineOrdersMixin:
    """Online orders, from candidates to finished batches (behaviour.md §11).

    This mixin defines the following functionality:

    Adds:
        ``_generate_online_orders`` (candidate orders and their SALE requests) and
        ``_finalize_online_orders`` (the ``online_orders``, ``online_order_lines`` and the
        orders' ``fact_payments`` batches).
    Reads:
        ``config.volume.online_orders_per_day``, ``_seed``, ``_master.customers``
        (primary_store_id, home_tax_ppm), ``_master.stores`` (dc_id, tax_ppm) and
        ``_master.products`` (popularity, sale_price_cents, tax_factor).
    Writes:
        nothing on self.
    Streams:
        ``online.orders`` and ``online.payment``, shard = the DC unit.
    """

    def _generate_online_orders(self, ctx: DayContext) -> OnlineCandidates:
        """Draw the day's candidate orders of every DC unit, in unit order; their requests
        are ``store_events``/``dc_events``."""
        master = self._master
        customers = master.customers
        parts = []
        # A generator without DCs (the network unit) still builds an empty batch, from a unit
        # without customers, which draws nothing.
        for unit, members in self._unit_customers.items():
            parts.append(generate_online_candidates(
                stream(self._seed, "online.orders", ctx.day, unit),
                ctx.day,
                unit_id=unit,
                orders_per_day=self.config.volume.online_orders_per_day,
                seasonal=ctx.seasonal,
                unit_customers=members,
                total_customers=len(customers.customer_id),
                customer_primary_store=customers.primary_store_id,
                store_dc_id=master.stores.dc_id,
                store_ids=master.stores.store_id,
                dc_ids=master.dcs.dc_id,
                popularity=master.products.popularity,
                available=ctx.available,
            ))
        return OnlineCandidates.concat(ctx.day, parts)

    @functools.cached_property
    def _unit_customers(self) -> dict[int, np.ndarray]:
        """The customer ids of each DC unit, in unit order (0 alone without DCs): fixed by
        the dimensions, so computed once."""
        unit_of_customer = self._customer_units()
        return {unit: self._master.customers.customer_id[unit_of_customer == unit]
                for unit in self._master.dcs.dc_id.tolist() or [0]}

    def _customer_units(self) -> np.ndarray:
        """The DC unit of every customer (the dc_id of its primary store, c_u of
        sharding.md §2.3), or -1 where the primary store is not among the stores this
        generator sees (another unit's)."""
        stores, primary = self._master.stores, self._master.customers.primary_store_id
        if len(stores.store_id) == 0:
            return np.full(len(primary), -1, dtype=np.int64)
        row = np.minimum(rows_of(stores.store_id, primary), len(stores.store_id) - 1)
        return np.where(stores.store_id[row] == primary, stores.dc_id[row], -1)

    def _finalize_online_orders(
        self, ctx: DayContext, candidates: OnlineCandidates, filled_store: np.ndarray,
        filled_dc: np.ndarray,
    ) -> tuple[pa.Table, pa.Table, pa.Table]:
        """``(headers, lines, payments)`` of the day from the filled request quantities."""
        master = self._master
        units, sizes = np.unique(candidates.unit_id, return_counts=True)
        draws = PaymentDraws.concat([
            draw_payment_attempts(stream(self._seed, "online.payment", ctx.day, unit), size,
                                  "online")
            for unit, size in zip(units.tolist(), sizes.tolist(), strict=True)])
        return finalize_online_orders(
            candidates,
            filled_store,
            filled_dc,
            draws,
            unit_cents=master.products.sale_price_cents,
            tax_factor=master.products.tax_factor,
            store_tax_ppm=master.stores.tax_ppm,
            store_ids=master.stores.store_id,
            customer_home_ppm=master.customers.home_tax_ppm,
        )
