"""Online returns: completed orders whose lines come back to a store after delivery.

At order time each COMPLETED order decides whether it comes back (``ONLINE_RETURN_P``) and on
which day: 1–14 days after its delivery day, Dec 25 moved to Dec 26. Its non-food lines and a
few food lines wait in ``gen_state_pending_returns`` beside the in-store returns, keyed by the
order id and the store the customer brings them to: the fulfilling store, or the customer's
primary store for an order shipped from a DC. On the return day that store takes the whole lines
back (RETURN, then each line's disposition, as for in-store returns) and one REFUNDED payment of
the order, ``TXN`` + order id + ``-R-1``, refunds exactly their ext + tax (as a negative amount,
like the refund of a RETURN receipt). Everything is per DC unit: an order's return store belongs
to its unit.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen.db.schema import carried_schema
from retail_datagen.generators.fact_generators.day_types import InventoryEvents
from retail_datagen.generators.fact_generators.payments_mixin import build_refunds
from retail_datagen.generators.fact_generators.returns_mixin import (
    _group_due,
    _return_events,
    _store_runs,
    draw_due_details,
)
from retail_datagen.generators.fact_generators.utils_mixin import (
    EPOCH_ORDINAL,
    US_PER_DAY,
    date_array,
    join_strings,
    rows_of,
)
from retail_datagen.rng import stream, uniform_int

#: Share of completed orders that come back, and of a returning order's food lines that come
#: back with its non-food lines (grocery refunds online cover substitutions and quality).
ONLINE_RETURN_P = 0.25
ONLINE_FOOD_LINE_RETURN_P = 0.6
ONLINE_PREFIX = "ONL"
MAX_DELAY_DAYS = 14
PENDING_TABLE = "gen_state_pending_returns"


def _i64(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy(zero_copy_only=False).astype(np.int64)


def _skip_christmas(ordinal: np.ndarray) -> np.ndarray:
    years = {date.fromordinal(int(o)).year for o in np.unique(ordinal)} if ordinal.size else set()
    xmas = [date(y, 12, 25).toordinal() for y in years]
    return np.where(np.isin(ordinal, xmas), ordinal + 1, ordinal)


def schedule_online_returns(seed: int, day: date, headers: pa.Table, lines: pa.Table, *,
                            customer_primary_store: np.ndarray, store_ids: np.ndarray,
                            store_dc_id: np.ndarray, is_food: np.ndarray,
                            food_line_p: float) -> pa.Table:
    """Pending-return rows of the day's completed orders that will come back.

    Each DC unit draws from stream ``online.returns`` (shard = unit): per order (in order id
    order) the return coin and the delay, then per line of a returning order (in order, then line
    order) the coin that keeps a food line.

    Args:
        seed: The run seed.
        day: The orders' day.
        headers: The day's order headers (generator columns), in order id order.
        lines: Their lines, by (order id, line number).
        customer_primary_store: int64 (n_customers,) primary store id by customer index.
        store_ids: int64 (n_stores,) the ascending store ids of the stores seen (a unit's or
            the network's); every order's store is among them.
        store_dc_id: int64 (n_stores,) dc id by store index.
        is_food: bool (n_products,).
        food_line_p: Share of a returning order's food lines that come back.

    Returns:
        Rows with the ``gen_state_pending_returns`` columns, in key order.
    """
    target = carried_schema(PENDING_TABLE)
    done = headers.filter(pc.equal(headers.column("OrderStatus"), "COMPLETED"))
    n = done.num_rows
    if n == 0:
        return target.empty_table()
    customer = _i64(done, "CustomerID")
    store = done.column("StoreID").fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    store = np.where(store > 0, store, customer_primary_store[customer - 1])
    unit = store_dc_id[rows_of(store_ids, store)].astype(np.int64)
    delivered = done.column("CompletedTS").cast(pa.int64()).to_numpy(zero_copy_only=False)
    delivered_ordinal = EPOCH_ORDINAL + delivered // US_PER_DAY

    order = np.argsort(unit, kind="stable")
    back = np.zeros(n, dtype=bool)
    delay = np.zeros(n, dtype=np.int64)
    rngs = {}
    for u, a, b in _store_runs(unit[order]):
        rng = stream(seed, "online.returns", day, u)
        back[order[a:b]] = rng.random(b - a) < ONLINE_RETURN_P
        delay[order[a:b]] = uniform_int(rng, 1, MAX_DELAY_DAYS, b - a)
        rngs[u] = rng
    ordinal = _skip_christmas(delivered_ordinal + delay)

    chosen = np.flatnonzero(back)
    hit = pc.index_in(lines.column("OrderId"),
                      value_set=done.column("OrderId").take(pa.array(chosen, pa.int64())))
    keep = pc.is_valid(hit)
    picked = lines.filter(keep)
    head = chosen[pc.filter(hit, keep).to_numpy(zero_copy_only=False).astype(np.int64)]
    food = is_food[_i64(picked, "ProductID") - 1]
    coin = np.zeros(head.shape[0])
    line_order = np.argsort(unit[head], kind="stable")
    for u, a, b in _store_runs(unit[head][line_order]):
        coin[line_order[a:b]] = rngs[u].random(b - a)
    returned = ~food | (coin < food_line_p)
    picked, head = picked.filter(pa.array(returned)), head[returned]
    head_arr = pa.array(head, pa.int64())
    table = pa.table({
        "return_date": date_array(ordinal[head]),
        "receipt_id_ext": picked.column("OrderId"),
        "store_id": pa.array(store[head], pa.int64()),
        "customer_id": pa.array(customer[head], pa.int64()),
        "line_num": picked.column("LineNumber"),
        "product_id": picked.column("ProductID"),
        "quantity": picked.column("Qty"),
        "unit_cents": picked.column("UnitCents"),
        "discount_cents": picked.column("DiscountCents"),
        "ext_cents": picked.column("ExtCents"),
        "tax_cents": picked.column("TaxCents"),
        "promo_code": picked.column("PromoCode").cast(pa.string()),
        "payment_method": done.column("TenderType").cast(pa.string()).take(head_arr),
    }).cast(target)
    return table.sort_by([("return_date", "ascending"), ("receipt_id_ext", "ascending"),
                          ("line_num", "ascending")])


def is_online(pending: pa.Table) -> pa.Array:
    """bool per pending row: the row is an online order's line."""
    return pc.starts_with(pending.column("receipt_id_ext"), ONLINE_PREFIX)


def make_online_returns(seed: int, day: date, due: pa.Table, *, open_hour: np.ndarray,
                        close_hour: np.ndarray, is_food: np.ndarray, store_ids: np.ndarray
                        ) -> tuple[pa.Table, InventoryEvents]:
    """The refunds and store inventory events of the online returns due on ``day``.

    Each store draws from stream ``online.returns.make`` (shard store_id), per return (by order
    id) its time in opening hours and refund processing time, per line its disposition.

    Returns:
        ``(payments, store_events)``: one REFUNDED payment per order, and RETURN arrivals with
        their disposition requests.
    """
    g = _group_due(day, due)
    n_ret, n_lines = int(g.first_line.shape[0]), g.lines.num_rows
    store_row = rows_of(store_ids, g.store_id)
    ts, disposition, refund_ms = draw_due_details(seed, "online.returns.make", day, g,
                                                  open_hour, close_hour, store_row)
    ext, tax = _i64(g.lines, "ext_cents"), _i64(g.lines, "tax_cents")
    refund = -(np.add.reduceat(ext + tax, g.first_line) if n_lines else ext[:0])
    order_ids = g.orig_id.take(pa.array(g.first_line, pa.int64()))
    customer = _i64(g.lines, "customer_id")[g.first_line]
    payments = build_refunds(order_ids, ts, refund, g.method, refund_ms, customer, g.store_id,
                             parent_kind="order",
                             txn_parent=join_strings([order_ids, "-R"], n_ret))
    product = _i64(g.lines, "product_id") - 1
    events = _return_events(store_row[g.line_return], product, ts[g.line_return],
                            g.orig_id, _i64(g.lines, "quantity"), is_food[product], disposition)
    return payments, events


__all__ = ["ONLINE_FOOD_LINE_RETURN_P", "ONLINE_RETURN_P", "is_online", "make_online_returns",
           "schedule_online_returns"]
