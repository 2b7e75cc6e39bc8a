"""Returns: scheduling at sale time, and the RETURN receipts made on the return day.

A SALE receipt decides at sale time whether, and on which day, it will come back
(behaviour.md §12). The chosen receipts' lines wait in ``gen_state_pending_returns``. On the
return day the receipt comes back at the same store with the same customer: a RETURN header
and lines that are the exact negatives of the sale's non-food lines and of a few of its food
lines (docs/realism.md), one REFUNDED payment, and store inventory
events (RETURN, then DAMAGED or OUTBOUND_SHIPMENT by disposition) that the daily driver
resolves with the other store events of the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen import domain, money
from retail_datagen.db.schema import carried_schema
from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators.day_types import DayContext, InventoryEvents
from retail_datagen.generators.fact_generators.payments_mixin import (
    PROCESSING_MS,
    build_refunds,
)
from retail_datagen.generators.fact_generators.state import merge_pending_returns
from retail_datagen.generators.fact_generators.utils_mixin import (
    US_PER_HOUR,
    US_PER_MINUTE,
    Digits,
    date_array,
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

PENDING_TABLE = "gen_state_pending_returns"
#: Return probability when the return day is Dec 26, and on any other day.
RETURN_P_BOXING_DAY = 0.30
RETURN_P = 0.10
#: Share of a returned receipt's food lines that come back with it (non-food lines always do):
#: groceries are rarely returned.
FOOD_LINE_RETURN_P = 0.2
MAX_DELAY_DAYS = 14
#: Non-food dispositions and their probabilities; food lines are always destroyed.
DISPOSITIONS: tuple[str, ...] = ("RESTOCK", "OPEN_BOX", "RTV", "DAMAGED")
DISPOSITION_P = (0.40, 0.20, 0.30, 0.10)
RTV, DAMAGED = 2, 3
FOOD_DESTROY_OFFSET_US = 15 * US_PER_MINUTE
RTV_OFFSET_US = 30 * US_PER_MINUTE
DAMAGED_OFFSET_US = 45 * US_PER_MINUTE
_RANK = domain.TXN_TYPE_RANK


def return_day(sale_day: date, delay_days: np.ndarray) -> np.ndarray:
    """Return-day ordinals ``sale day + d``, with Dec 25 moved to Dec 26.

    Args:
        sale_day: The SALE receipts' day.
        delay_days: int64 array, shape (n,), each in 1..14.

    Returns:
        int64 array, shape (n,): proleptic ordinals.
    """
    ordinal = sale_day.toordinal() + np.asarray(delay_days, dtype=np.int64)
    # Only the one Dec 25 within 1..14 days of the sale can occur.
    xmas = [date(y, 12, 25).toordinal() for y in (sale_day.year, sale_day.year + 1)]
    return np.where((ordinal == xmas[0]) | (ordinal == xmas[1]), ordinal + 1, ordinal)


def draw_return_schedule(rng: np.random.Generator, sale_day: date, n: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Delay and return coin for one store's SALE receipts in seq order.

    Args:
        rng: The store's ``returns.schedule`` stream of the sale day.
        sale_day: The sale day.
        n: Number of the store's SALE receipts.

    Returns:
        ``(return_ordinal, returned)``: int64 and bool arrays of shape (n,).
    """
    delay = uniform_int(rng, 1, MAX_DELAY_DAYS, n)
    coin = rng.random(n)
    ordinal = return_day(sale_day, delay)
    boxing_days = [date(y, 12, 26).toordinal() for y in (sale_day.year, sale_day.year + 1)]
    is_boxing = (ordinal == boxing_days[0]) | (ordinal == boxing_days[1])
    returned = coin < np.where(is_boxing, RETURN_P_BOXING_DAY, RETURN_P)
    return ordinal, returned


def build_pending_returns(receipts: pa.Table, receipt_lines: pa.Table,
                          return_ordinal: np.ndarray, returned: np.ndarray) -> pa.Table:
    """The pending-return rows of the returned receipts (one per sale line).

    Args:
        receipts: SALE headers with ReceiptId, StoreID, CustomerID and TenderType.
        receipt_lines: their lines with ReceiptId, LineNumber, ProductID, Qty, UnitCents,
            DiscountCents, ExtCents, TaxCents and PromoCode.
        return_ordinal: int64 array, shape (receipts.num_rows,).
        returned: bool array, shape (receipts.num_rows,).

    Returns:
        A table with the ``gen_state_pending_returns`` columns and types, sorted by
        (return_date, receipt_id_ext, line_num).
    """
    chosen = np.flatnonzero(returned)
    ids = receipts.column("ReceiptId").combine_chunks().take(pa.array(chosen, pa.int64()))
    hit = pc.index_in(receipt_lines.column("ReceiptId"), value_set=ids)
    keep = pc.is_valid(hit)
    lines = receipt_lines.filter(keep)
    head = chosen[pc.filter(hit, keep).to_numpy(zero_copy_only=False).astype(np.int64)]
    head_arr = pa.array(head, pa.int64())

    def from_receipts(column: str) -> pa.Array:
        return receipts.column(column).combine_chunks().take(head_arr)

    table = pa.table({
        "return_date": date_array(np.asarray(return_ordinal, dtype=np.int64)[head]),
        "receipt_id_ext": lines.column("ReceiptId"),
        "store_id": from_receipts("StoreID"),
        "customer_id": from_receipts("CustomerID"),
        "line_num": lines.column("LineNumber"),
        "product_id": lines.column("ProductID"),
        "quantity": lines.column("Qty"),
        "unit_cents": lines.column("UnitCents"),
        "discount_cents": lines.column("DiscountCents"),
        "ext_cents": lines.column("ExtCents"),
        "tax_cents": lines.column("TaxCents"),
        "promo_code": lines.column("PromoCode"),
        "payment_method": from_receipts("TenderType"),
    }).cast(carried_schema(PENDING_TABLE))
    return table.sort_by([("return_date", "ascending"), ("receipt_id_ext", "ascending"),
                          ("line_num", "ascending")])


def _store_runs(store_id: np.ndarray) -> list[tuple[int, int, int]]:
    """``(store_id, start, stop)`` of each run of a store-sorted column."""
    if store_id.shape[0] == 0:
        return []
    starts = np.flatnonzero(group_starts(store_id))
    stops = np.append(starts[1:], store_id.shape[0])
    return [(int(store_id[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def returned_lines(seed: int, sale_day: date, pending: pa.Table, is_food: np.ndarray
                   ) -> pa.Table:
    """The pending lines that come back: every non-food line, a few food lines.

    Each store draws one coin per pending line (in pending order) from stream
    ``returns.lines``; a receipt left without lines is not returned at all.
    """
    store_id = pending.column("store_id").to_numpy().astype(np.int64)
    food = is_food[pending.column("product_id").to_numpy().astype(np.int64) - 1]
    coin = np.zeros(store_id.shape[0])
    order = np.argsort(store_id, kind="stable")
    sorted_ids = store_id[order]
    for sid, a, b in _store_runs(sorted_ids):
        coin[order[a:b]] = stream(seed, "returns.lines", sale_day, sid).random(b - a)
    return pending.filter(pa.array(~food | (coin < FOOD_LINE_RETURN_P)))


def schedule_pending_returns(seed: int, sale_day: date, receipts: pa.Table,
                             receipt_lines: pa.Table, is_food: np.ndarray | None = None
                             ) -> pa.Table:
    """Schedule the returns of a day's SALE receipts (behaviour.md §12, docs/realism.md).

    Args:
        seed: The run seed.
        sale_day: The day of the receipts.
        receipts: SALE headers in (StoreID, seq) order (see :func:`build_pending_returns`).
        receipt_lines: Their lines.
        is_food: bool array, shape (n_products,); when given, only the lines chosen by
            :func:`returned_lines` come back.

    Returns:
        The new pending-return rows (see :func:`build_pending_returns`).
    """
    if "ReceiptType" in receipts.column_names:
        sale = pc.equal(receipts.column("ReceiptType"), "SALE")
        if not pc.all(sale, skip_nulls=False).as_py():  # a SALE batch needs no copy
            receipts = receipts.filter(sale)
    store_id = receipts.column("StoreID").to_numpy().astype(np.int64)
    ordinal = np.zeros(store_id.shape[0], dtype=np.int64)
    returned = np.zeros(store_id.shape[0], dtype=bool)
    for sid, a, b in _store_runs(store_id):
        rng = stream(seed, "returns.schedule", sale_day, sid)
        ordinal[a:b], returned[a:b] = draw_return_schedule(rng, sale_day, b - a)
    pending = build_pending_returns(receipts, receipt_lines, ordinal, returned)
    return pending if is_food is None else returned_lines(seed, sale_day, pending, is_food)


@dataclass
class ReturnsBatch:
    """The returns made on one day.

    ``receipts`` (RETURN headers by (StoreID, seq)) and ``receipt_lines`` (by receipt, then line)
    carry the generator columns of fact-tables.md §5–6, ``payments`` the REFUNDED rows of §13.
    ``store_events`` holds the RETURN arrivals and the disposition requests, and
    ``line_disposition`` the disposition of each receipt line (index into
    :data:`DISPOSITIONS`, −1 for food, which is destroyed).
    """

    receipts: pa.Table
    receipt_lines: pa.Table
    payments: pa.Table
    store_events: InventoryEvents
    line_disposition: np.ndarray  # int8 (n_lines,)


def draw_return_details(rng: np.random.Generator, n_returns: int, n_lines: int,
                        open_hour: int, close_hour: int, method_code: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One store's return times, line dispositions and refund processing times.

    Args:
        rng: The store's ``returns.make`` stream of the return day.
        n_returns: Due returns of the store (by original receipt id).
        n_lines: Their lines (return, then line order).
        open_hour: The store's open hour.
        close_hour: The store's close hour (24 = midnight).
        method_code: int array, shape (n_returns,): original method, into
            ``domain.PAYMENT_METHODS``.

    Returns:
        ``(offset_us, disposition, refund_ms)``: int64 (n_returns,) µs after ``open_hour:00``,
        int8 (n_lines,) into :data:`DISPOSITIONS`, int64 (n_returns,).
    """
    span_us = (min(close_hour, 23) - open_hour) * US_PER_HOUR
    offset = uniform_int(rng, 0, span_us - 1, n_returns)
    disposition = categorical(rng, DISPOSITION_P, n_lines).astype(np.int8)
    lo, hi = PROCESSING_MS[:, 0], PROCESSING_MS[:, 1]
    code = np.asarray(method_code, dtype=np.int64)
    refund_ms = uniform_int(rng, lo[code], hi[code], n_returns)
    return offset.astype(np.int64), disposition, refund_ms.astype(np.int64)


def _i64(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy().astype(np.int64)


@dataclass
class _DueReturns:
    """The due lines sorted by (store_id, original receipt id, line_num), grouped by return."""

    lines: pa.Table  # gen_state_pending_returns rows
    orig_id: pa.Array  # string (n_lines,)
    first_line: np.ndarray  # int64 (n_returns,) first line of each return
    line_return: np.ndarray  # int64 (n_lines,) return of each line
    store_id: np.ndarray  # int64 (n_returns,)
    method: np.ndarray  # int64 (n_returns,) original method into domain.PAYMENT_METHODS


def _group_due(day: date, due: pa.Table) -> _DueReturns:
    lines = due.sort_by([("store_id", "ascending"), ("receipt_id_ext", "ascending"),
                         ("line_num", "ascending")])
    orig_id = lines.column("receipt_id_ext").combine_chunks()
    n = lines.num_rows
    new_return = np.ones(n, dtype=bool)
    if n > 1:
        new_return[1:] = pc.not_equal(orig_id.slice(1), orig_id.slice(0, n - 1)
                                      ).to_numpy(zero_copy_only=False)
    first_line = np.flatnonzero(new_return)
    methods = lines.column("payment_method").combine_chunks().take(pa.array(first_line))
    method = pc.index_in(methods, value_set=pa.array(domain.PAYMENT_METHODS))
    if method.null_count:
        raise GenerationError(f"{day}: a pending return has an unknown payment_method")
    return _DueReturns(
        lines=lines,
        orig_id=orig_id,
        first_line=first_line,
        line_return=np.cumsum(new_return) - 1,
        store_id=_i64(lines, "store_id")[first_line],
        method=method.to_numpy(zero_copy_only=False).astype(np.int64),
    )


def draw_due_details(seed: int, name: str, day: date, g: _DueReturns, open_hour: np.ndarray,
                     close_hour: np.ndarray, store_row: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each due return's time and refund ms, and each line's disposition.

    Per store (stream ``name``, shard store_id): its returns in original id order, then their
    lines. ``store_row`` is each return's row in ``open_hour``/``close_hour``. Returns
    ``(ts_us, disposition, refund_ms)`` as :func:`draw_return_details`, with the times as
    wall-time µs on ``day``.
    """
    n_ret, n_lines = int(g.first_line.shape[0]), g.lines.num_rows
    offset = np.zeros(n_ret, dtype=np.int64)
    refund_ms = np.zeros(n_ret, dtype=np.int64)
    disposition = np.zeros(n_lines, dtype=np.int8)
    line_bounds = np.append(g.first_line, n_lines)
    for sid, a, b in _store_runs(g.store_id):
        la, lb = int(line_bounds[a]), int(line_bounds[b])
        offset[a:b], disposition[la:lb], refund_ms[a:b] = draw_return_details(
            stream(seed, name, day, sid), b - a, lb - la,
            int(open_hour[store_row[a]]), int(close_hour[store_row[a]]), g.method[a:b])
    ts = day_start_us(day) + open_hour[store_row].astype(np.int64) * US_PER_HOUR + offset
    return ts, disposition, refund_ms


def make_returns(seed: int, day: date, due: pa.Table, *, open_hour: np.ndarray,
                 close_hour: np.ndarray, is_food: np.ndarray,
                 store_ids: np.ndarray | None = None) -> ReturnsBatch:
    """Make the returns due on ``day`` (behaviour.md §12, fact-tables.md §19).

    Args:
        seed: The run seed.
        day: The return day D.
        due: Pending-return rows with return_date = D (``gen_state_pending_returns`` columns),
            in any order.
        open_hour: int64 array, shape (n_stores,): open hour by store index.
        store_ids: the ascending store ids whose positions are the store indices (also the
            events' ``node_idx``); None: the dense network ids 1...
        close_hour: int64 array, shape (n_stores,): close hour by store index.
        is_food: bool array, shape (n_products,): food, beverage or refrigerated.

    Returns:
        The day's :class:`ReturnsBatch`.
    """
    g = _group_due(day, due)
    store_ids = np.arange(1, len(open_hour) + 1) if store_ids is None else store_ids
    store_row = rows_of(store_ids, g.store_id)
    n_ret, n_lines = int(g.first_line.shape[0]), g.lines.num_rows
    ts, disposition, refund_ms = draw_due_details(seed, "returns.make", day, g, open_hour,
                                                  close_hour, store_row)

    # seq within store by (return time, original id); returns are already by original id.
    order = np.lexsort((np.arange(n_ret), ts, g.store_id))
    seq = np.empty(n_ret, dtype=np.int64)
    seq[order] = rank_within_groups(g.store_id[order]) + 1
    ret_id = fixed_width_strings(["RET" + day_tag(day), Digits(g.store_id, 5, "store_id"),
                                  Digits(seq, 6, "return seq")], n_ret)

    # Output order: returns by (store, seq), each with its lines in line order.
    rank = np.empty(n_ret, dtype=np.int64)
    rank[order] = np.arange(n_ret)
    line_order = np.lexsort((np.arange(n_lines), rank[g.line_return]))
    lr = g.line_return[line_order]
    src = g.lines.take(pa.array(line_order, pa.int64()))
    qty = -_i64(src, "quantity")
    unit = _i64(src, "unit_cents")
    discount, ext, tax = (-_i64(src, c) for c in ("discount_cents", "ext_cents", "tax_cents"))
    product_id = _i64(src, "product_id")
    line_ids = ret_id.take(pa.array(lr, pa.int64()))
    line_cols: dict[str, pa.Array] = {
        "ReceiptId": line_ids,
        "LineNumber": src.column("line_num").combine_chunks().cast(pa.int32()),
        "EventTS": ts_array(ts[lr]),
        "ProductID": pa.array(product_id, pa.int64()),
        "Qty": pa.array(qty, pa.int32()),
        **money.money_columns("UnitPrice", "UnitCents", unit),
        **money.money_columns("DiscountAmount", "DiscountCents", discount),
        **money.money_columns("ExtPrice", "ExtCents", ext),
        **money.money_columns("Tax", "TaxCents", tax),
    }
    line_cols["PromoCode"] = src.column("promo_code").combine_chunks().cast(pa.string())

    # Header sums: each return's lines are contiguous in output order.
    starts = np.flatnonzero(group_starts(lr))

    def per_return(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, starts).astype(np.int64) if n_lines else values[:0]

    subtotal, tax_sum = per_return(ext), per_return(tax)
    total = subtotal + tax_sum
    first = pa.array(g.first_line[order], pa.int64())
    customer_id = _i64(g.lines, "customer_id")[g.first_line[order]]
    head_cols: dict[str, pa.Array] = {
        "ReceiptId": ret_id.take(pa.array(order, pa.int64())),
        "ReceiptType": pa.array(np.full(n_ret, "RETURN", dtype=object), pa.string()),
        "ReturnForReceiptId": g.orig_id.take(first),
        "EventTS": ts_array(ts[order]),
        "StoreID": pa.array(g.store_id[order], pa.int64()),
        "CustomerID": pa.array(customer_id, pa.int64()),
        "LineCount": pa.array(np.diff(np.append(starts, n_lines)), pa.int32()),
        "ItemCount": pa.array(per_return(qty), pa.int32()),
        **money.money_columns("GrossSubtotal", "GrossSubtotalCents", per_return(unit * qty)),
        **money.money_columns("DiscountAmount", "DiscountCents", per_return(discount)),
        **money.money_columns("Subtotal", "SubtotalCents", subtotal),
        **money.money_columns("Tax", "TaxCents", tax_sum),
        **money.money_columns("Total", "TotalCents", total),
    }
    head_cols["TenderType"] = dict_strings(g.method[order], domain.PAYMENT_METHODS)

    payments = build_refunds(head_cols["ReceiptId"], ts[order], total, g.method[order],
                             refund_ms[order], customer_id, g.store_id[order])
    food = is_food[product_id - 1]
    disp = disposition[line_order]
    events = _return_events(store_row[lr], product_id - 1, ts[lr], line_ids, -qty, food,
                            disp)
    return ReturnsBatch(pa.table(head_cols), pa.table(line_cols), payments, events,
                        np.where(food, -1, disp).astype(np.int8))


def _return_events(node: np.ndarray, product: np.ndarray, ts: np.ndarray, source: pa.Array,
                   units: np.ndarray, food: np.ndarray, disposition: np.ndarray
                   ) -> InventoryEvents:
    """RETURN +units at the return time, then each line's disposition request."""
    follow_ts = np.select([food, disposition == RTV, disposition == DAMAGED],
                          [ts + FOOD_DESTROY_OFFSET_US, ts + RTV_OFFSET_US,
                           ts + DAMAGED_OFFSET_US], ts)
    follow_type = np.where(disposition == RTV, _RANK["OUTBOUND_SHIPMENT"], _RANK["DAMAGED"])
    follow = np.flatnonzero(food | (disposition == RTV) | (disposition == DAMAGED))
    n = node.shape[0]
    f = pa.array(follow, pa.int64())
    return InventoryEvents(
        node_idx=np.concatenate([node, node[follow]]).astype(np.int64),
        product_idx=np.concatenate([product, product[follow]]).astype(np.int64),
        ts_us=np.concatenate([ts, follow_ts[follow]]).astype(np.int64),
        txn_type=np.concatenate([np.full(n, _RANK["RETURN"]),
                                 np.where(food, _RANK["DAMAGED"], follow_type)[follow]]
                                ).astype(np.int8),
        source=pa.concat_arrays([source, source.take(f)]),
        delta=np.concatenate([units, -units[follow]]).astype(np.int64),
    )


class ReturnsMixin:
    """Returns: scheduling at sale and the RETURN receipts of the day (behaviour.md §12).

    This mixin defines the following functionality:

    Adds:
        ``_schedule_returns`` (new ``gen_state_pending_returns`` rows from the day's SALE
        receipts) and ``_generate_returns`` (RETURN rows for ``receipts`` and
        ``receipt_lines``, REFUNDED ``fact_payments`` rows and the store inventory events);
        ``_returns_due`` and ``_pending_returns_after_day`` carry the pending rows over days.
    Reads:
        ``_seed``, ``_master.stores`` (open_hour, close_hour) and ``_master.products``
        (is_food).
    Writes:
        nothing on self (``core`` carries the pending rows in its state).
    Streams:
        ``returns.schedule``, ``returns.lines`` and ``returns.make`` (shard store_id);
        ``online.returns`` (shard DC unit) and ``online.returns.make`` (shard store_id).
    """

    def _schedule_returns(self, ctx: DayContext, receipts: pa.Table,
                          receipt_lines: pa.Table) -> pa.Table:
        """Pending-return rows for the day's SALE receipts (in (StoreID, seq) order)."""
        return schedule_pending_returns(self._seed, ctx.day, receipts, receipt_lines,
                                        self._master.products.is_food)

    def _returns_due(self, ctx: DayContext, pending: pa.Table) -> pa.Table:
        """The pending-return rows whose return_date is ``ctx.day``."""
        return pending.filter(pc.equal(pending.column("return_date"),
                                       pa.scalar(ctx.day, pa.date32())))

    def _pending_returns_after_day(self, ctx: DayContext, pending: pa.Table,
                                   scheduled: pa.Table) -> pa.Table:
        """The pending rows still due after ``ctx.day`` plus the day's new ones, in key order."""
        later = pc.greater(pending.column("return_date"), pa.scalar(ctx.day, pa.date32()))
        return merge_pending_returns(pending.filter(later), scheduled)

    def _generate_returns(self, ctx: DayContext, due: pa.Table) -> ReturnsBatch:
        """The returns made on the day from the pending rows due on it (in store and online)."""
        from retail_datagen.generators.fact_generators import online_returns

        stores = self._master.stores
        hours = {"open_hour": stores.open_hour, "close_hour": stores.close_hour,
                 "is_food": self._master.products.is_food, "store_ids": stores.store_id}
        online = online_returns.is_online(due)
        made = make_returns(self._seed, ctx.day, due.filter(pc.invert(online)), **hours)
        if not pc.any(online).as_py():
            return made
        refunds, events = online_returns.make_online_returns(self._seed, ctx.day,
                                                             due.filter(online), **hours)
        return ReturnsBatch(made.receipts, made.receipt_lines,
                            pa.concat_tables([made.payments, refunds]),
                            InventoryEvents.concat([made.store_events, events]),
                            made.line_disposition)

    def _with_online_returns(self, ctx: DayContext, pending: pa.Table, headers: pa.Table,
                             lines: pa.Table) -> pa.Table:
        """The day's new pending returns plus those of its completed online orders."""
        from retail_datagen.generators.fact_generators import online_returns

        master = self._master
        online = online_returns.schedule_online_returns(
            self._seed, ctx.day, headers, lines,
            customer_primary_store=master.customers.primary_store_id,
            store_ids=master.stores.store_id, store_dc_id=master.stores.dc_id,
            is_food=master.products.is_food,
            food_line_p=online_returns.ONLINE_FOOD_LINE_RETURN_P)
        return merge_pending_returns(pending, online)


__all__ = [
    "DISPOSITIONS",
    "ReturnsBatch",
    "ReturnsMixin",
    "build_pending_returns",
    "draw_due_details",
    "draw_return_details",
    "draw_return_schedule",
    "make_returns",
    "return_day",
    "returned_lines",
    "schedule_pending_returns",
]
