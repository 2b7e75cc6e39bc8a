"""In-store visits, candidate baskets and SALE receipts (behaviour.md §4–6).

A day's in-store sales are made in this order; each step is one host method:

1. ``_generate_store_hour_activity(ctx) -> Visits``: visits, their times, seq, customers,
   segments and basket behaviours.
2. ``_build_candidate_baskets(ctx, visits) -> CandidateLines``: drawn lines, holiday overlay,
   duplicates merged, numbered in candidate order.
3. ``_decide_promotions(ctx, visits, lines)`` (promotions mixin): the code of each visit.
4. ``_sale_requests(ctx, visits, lines) -> InventoryEvents``: one store SALE request per
   candidate line, resolved by the inventory mixin into the filled quantity of each line.
5. ``_finalize_sale_lines(ctx, visits, lines, filled) -> SaleLines``: lines filled 0 dropped,
   partial fills kept, lines renumbered; one receipt per visit with a surviving line.
6. ``_apply_promotions(ctx, visits, sale_lines)`` (promotions mixin): line discounts and codes,
   plus the promotions and promo-lines tables.
7. ``_sale_money(ctx, sale_lines, discount_cents) -> SaleMoney``: ext and tax per line, header
   sums per receipt.
8. ``_generate_payments(ctx, money)`` (payments mixin): the payments table and the approved
   method of each receipt.
9. ``_create_receipt(ctx, sale_lines, money, promo_code_idx, tender_codes)``: the receipts and
   receipt-lines tables.

The basket model behind step 2 (behaviours, line counts, category splits, price bands) is
:mod:`~retail_datagen.generators.fact_generators.basket_model`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from retail_datagen import calendar, domain, money, rng
from retail_datagen.generators.fact_generators.basket_model import (
    BEHAVIOUR_MID,
    BEHAVIOUR_MIX,
    BEHAVIOUR_P,
    BEHAVIOUR_QTY,
    EXPRESS,
    EXPRESS_MAX_LINES,
    TICKET_FLOOR,
    BasketDayTables,
    basket_day_tables,
    basket_mu,
    draw_store_baskets,
    merge_basket_lines,
    solve_ticket_k,
)
from retail_datagen.generators.fact_generators.data_loading_mixin import StorePools
from retail_datagen.generators.fact_generators.day_types import (
    CandidateLines,
    DayContext,
    InventoryEvents,
    Visits,
)
from retail_datagen.generators.fact_generators.seasonal_mixin import product_multiplier
from retail_datagen.generators.fact_generators.utils_mixin import (
    US_PER_HOUR,
    Digits,
    day_tag,
    dict_strings,
    fixed_width_strings,
    group_starts,
    rank_within_groups,
    ts_array,
)

logger = logging.getLogger(__name__)

HOUR_US_MAX, HOUR23_US_MAX = 3_599_999_999, 3_539_999_999  # last visit µs within an hour

_warn_lock = threading.Lock()
_warned_ticket_means: set[float] = set()


def _ticket_k(t: float) -> float:
    if t < TICKET_FLOOR:
        with _warn_lock:
            if t not in _warned_ticket_means:
                _warned_ticket_means.add(t)
                logger.warning("items_per_ticket_mean %.4f is below %.4f, the smallest mean the "
                               "basket model can reach; using k = 0", t, TICKET_FLOOR)
    return solve_ticket_k(t)


def visit_lambda(customers_per_day: float, traffic_multiplier: np.ndarray,
                 store_hour_mult: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """``λ(s, D, h) = customers_per_day × traffic(s) × M(s, D, h) × curve(h) / CURVE_NORM``.

    Returns float64 (n_stores, 24) (closed hours are masked by the caller).
    """
    tm = np.asarray(traffic_multiplier, dtype=np.float64)[:, None]
    curve_row = np.asarray(curve, dtype=np.float64)[None, :]
    return customers_per_day * tm * store_hour_mult * curve_row / calendar.CURVE_NORM


def draw_store_visits(
    gen_count: np.random.Generator, gen_time: np.random.Generator,
    gen_customer: np.random.Generator, gen_behaviour: np.random.Generator, *,
    store_index: int, lam: np.ndarray, open_mask: np.ndarray, day_start_us: int,
    pools: StorePools, customer_segment: np.ndarray, total_customers: int,
) -> Visits:
    """One store's visits (streams ``visits.count``, ``visits.time``, ``visits.customer``,
    ``basket.behaviour``), as a :class:`Visits` of this store alone in seq order.

    ``lam`` float64 (24,) and ``open_mask`` bool (24,) are the store's hours; ``store_index``
    selects its pool; ``customer_segment`` int8 (n_customers,); ``total_customers`` serves an
    empty pool.
    """
    hours = np.flatnonzero(open_mask)
    counts = gen_count.poisson(np.asarray(lam, dtype=np.float64)[hours]).astype(np.int64)
    per_hour = np.zeros(24, dtype=np.int64)
    per_hour[hours] = counts
    hour = np.repeat(hours, counts).astype(np.int64)
    n = hour.shape[0]
    offset = rng.uniform_int(gen_time, 0, np.where(hour == 23, HOUR23_US_MAX, HOUR_US_MAX), n)
    ts = day_start_us + hour * US_PER_HOUR + offset
    order = np.argsort(ts, kind="stable")  # ties keep the draw index order
    ts, hour = ts[order], hour[order]
    u1, u2 = gen_customer.random(n), gen_customer.random(n)
    lo, hi = int(pools.offsets[store_index]), int(pools.offsets[store_index + 1])
    if hi > lo:
        pick = np.minimum(np.searchsorted(pools.cum_weight[lo:hi], u1, side="right"), hi - lo - 1)
        cls = pools.class_id[lo + pick]
        member = np.floor(u2 * pools.class_size[cls]).astype(np.int64)
        customer = pools.class_members[pools.class_start[cls] + member]
    else:
        customer = 1 + np.floor(u1 * total_customers).astype(np.int64)
    customer = customer.astype(np.int64)
    segment = np.asarray(customer_segment)[customer - 1].astype(np.int8)
    behaviour = rng.categorical_rows(gen_behaviour.random(n), BEHAVIOUR_P[segment])
    return Visits(
        store_idx=np.full(n, store_index, dtype=np.int64),
        visit_seq=np.arange(1, n + 1, dtype=np.int64),
        ts_us=ts, hour=hour, customer_id=customer, segment_code=segment,
        behaviour_code=behaviour.astype(np.int8),
        store_offsets=np.array([0, n], dtype=np.int64), visits_per_hour=per_hour[None, :],
    )


def concat_visits(parts: list[Visits], n_stores: int | None = None) -> Visits:
    """Per-store :class:`Visits` (in store order) joined into the day's batch; with no parts,
    the empty batch of ``n_stores`` stores."""
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        i8 = z.astype(np.int8)
        return Visits(z, z, z, z, z, i8, i8, np.zeros((n_stores or 0) + 1, dtype=np.int64),
                      np.zeros((n_stores or 0, 24), dtype=np.int64))
    sizes = np.array([len(p) for p in parts], dtype=np.int64)

    def cat(name: str, dtype) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts]).astype(dtype)

    return Visits(
        store_idx=cat("store_idx", np.int64), visit_seq=cat("visit_seq", np.int64),
        ts_us=cat("ts_us", np.int64), hour=cat("hour", np.int64),
        customer_id=cat("customer_id", np.int64), segment_code=cat("segment_code", np.int8),
        behaviour_code=cat("behaviour_code", np.int8),
        store_offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        visits_per_hour=np.concatenate([p.visits_per_hour for p in parts]).astype(np.int64),
    )


def sale_receipt_ids(day: date, store_ids: np.ndarray, visit_seq: np.ndarray) -> pa.Array:
    """``RCP`` + YYYYMMDD + store_id(5) + seq(6) for each (store, visit seq)."""
    n = int(np.asarray(visit_seq).shape[0])
    return fixed_width_strings([
        "RCP" + day_tag(day), Digits(store_ids, 5, "store_id"), Digits(visit_seq, 6, "visit seq"),
    ], n)


@dataclass
class SaleLines:
    """The fulfilled SALE lines of the day and their receipts.

    Lines are in receipt order, then line order; receipt r owns lines
    ``line_offsets[r]:line_offsets[r + 1]``. Receipts are the visits with ≥ 1 surviving line,
    in :class:`Visits` order (store, then seq).
    """

    visit_index: np.ndarray  # int64 (n_lines,) row in Visits
    receipt_index: np.ndarray  # int64 (n_lines,) row among the receipts
    line_num: np.ndarray  # int64 (n_lines,) 1..line_count, candidate order
    product_idx: np.ndarray  # int64 (n_lines,)
    quantity: np.ndarray  # int64 (n_lines,) filled units, > 0
    unit_cents: np.ndarray  # int64 (n_lines,)
    gross_cents: np.ndarray  # int64 (n_lines,) unit × qty
    receipt_visit: np.ndarray  # int64 (n_receipts,) row in Visits
    line_offsets: np.ndarray  # int64 (n_receipts + 1,)
    receipt_id: pa.Array  # string (n_receipts,)
    store_idx: np.ndarray  # int64 (n_receipts,)
    store_id: np.ndarray  # int64 (n_receipts,)
    ts_us: np.ndarray  # int64 (n_receipts,)
    customer_id: np.ndarray  # int64 (n_receipts,)

    def __len__(self) -> int:
        return int(self.quantity.shape[0])

    @property
    def n_receipts(self) -> int:
        return int(self.receipt_visit.shape[0])


@dataclass
class SaleMoney:
    """Money of :class:`SaleLines` (behaviour.md §6): per line and per receipt, integer cents."""

    lines: SaleLines
    discount_cents: np.ndarray  # int64 (n_lines,)
    ext_cents: np.ndarray  # int64 (n_lines,)
    tax_cents: np.ndarray  # int64 (n_lines,)
    line_count: np.ndarray  # int64 (n_receipts,)
    item_count: np.ndarray  # int64 (n_receipts,)
    gross_total: np.ndarray  # int64 (n_receipts,)
    discount_total: np.ndarray  # int64 (n_receipts,)
    subtotal: np.ndarray  # int64 (n_receipts,)
    tax_total: np.ndarray  # int64 (n_receipts,)
    total: np.ndarray  # int64 (n_receipts,) subtotal + tax


def finalize_sale_lines(day: date, visits: Visits, lines: CandidateLines, filled: np.ndarray,
                        sale_price_cents: np.ndarray, store_ids: np.ndarray) -> SaleLines:
    """Drop lines filled 0, keep partial fills, renumber 1..n in candidate order.

    Args:
        filled: int64 (n_candidate_lines,), units filled per candidate line (either sign: the
            applied quantity of the SALE request, or its negation).
        sale_price_cents: int64 (n_products,). store_ids: int64 (n_stores,).
    """
    qty = np.abs(np.asarray(filled, dtype=np.int64))
    keep = qty > 0
    v, p, q = lines.visit_index[keep], lines.product_idx[keep], qty[keep]
    starts = group_starts(v)
    receipt_visit = v[starts]
    unit = np.asarray(sale_price_cents, dtype=np.int64)[p]
    store_idx = visits.store_idx[receipt_visit]
    sid = np.asarray(store_ids, dtype=np.int64)[store_idx]
    return SaleLines(
        visit_index=v, receipt_index=np.cumsum(starts) - 1, line_num=rank_within_groups(v) + 1,
        product_idx=p, quantity=q, unit_cents=unit, gross_cents=unit * q,
        receipt_visit=receipt_visit,
        line_offsets=np.append(np.flatnonzero(starts), v.shape[0]).astype(np.int64),
        receipt_id=sale_receipt_ids(day, sid, visits.visit_seq[receipt_visit]),
        store_idx=store_idx, store_id=sid, ts_us=visits.ts_us[receipt_visit],
        customer_id=visits.customer_id[receipt_visit],
    )


def _receipt_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    if offsets.shape[0] <= 1:
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(np.asarray(values, dtype=np.int64), offsets[:-1])


def compute_sale_money(sale_lines: SaleLines, discount_cents: np.ndarray, line_tax_ppm: np.ndarray,
                       line_tax_factor: np.ndarray) -> SaleMoney:
    """ext = gross − discount, line tax (``money.line_tax``) and the header sums. The
    arguments are int64 (n_lines,): discount (0..gross), store tax ppm, product tax factor."""
    sl = sale_lines
    discount = np.asarray(discount_cents, dtype=np.int64)
    ext = sl.gross_cents - discount
    tax = np.asarray(money.line_tax(ext, line_tax_ppm, line_tax_factor), dtype=np.int64)
    off = sl.line_offsets
    subtotal, tax_total = _receipt_sum(ext, off), _receipt_sum(tax, off)
    return SaleMoney(
        lines=sl, discount_cents=discount, ext_cents=ext, tax_cents=tax,
        line_count=np.diff(off), item_count=_receipt_sum(sl.quantity, off),
        gross_total=_receipt_sum(sl.gross_cents, off), discount_total=_receipt_sum(discount, off),
        subtotal=subtotal, tax_total=tax_total, total=subtotal + tax_total,
    )


def build_receipt_tables(money_: SaleMoney, promo_code_idx: np.ndarray, tender_codes: np.ndarray
                         ) -> tuple[pa.Table, pa.Table]:
    """The SALE ``receipts`` and ``receipt_lines`` batches (fact-tables.md §5, §6), from
    ``promo_code_idx`` int (n_lines,) into ``domain.PROMO_CODES`` (−1 none) and ``tender_codes``
    int (n_receipts,) into ``domain.PAYMENT_METHODS``."""
    sl = money_.lines
    n = sl.n_receipts
    receipts = pa.table({
        "ReceiptId": sl.receipt_id,
        "ReceiptType": pa.array(np.full(n, "SALE", dtype=object), pa.string()),
        "ReturnForReceiptId": pa.nulls(n, pa.string()),
        "EventTS": ts_array(sl.ts_us),
        "StoreID": pa.array(sl.store_id, pa.int64()),
        "CustomerID": pa.array(sl.customer_id, pa.int64()),
        "LineCount": pa.array(money_.line_count.astype(np.int32), pa.int32()),
        "ItemCount": pa.array(money_.item_count.astype(np.int32), pa.int32()),
        **money.money_columns("GrossSubtotal", "GrossSubtotalCents", money_.gross_total),
        **money.money_columns("DiscountAmount", "DiscountCents", money_.discount_total),
        **money.money_columns("Subtotal", "SubtotalCents", money_.subtotal),
        **money.money_columns("Tax", "TaxCents", money_.tax_total),
        **money.money_columns("Total", "TotalCents", money_.total),
        "TenderType": dict_strings(np.asarray(tender_codes), domain.PAYMENT_METHODS),
    })
    code = np.asarray(promo_code_idx)
    receipt_lines = pa.table({
        "ReceiptId": sl.receipt_id.take(pa.array(sl.receipt_index)),
        "LineNumber": pa.array(sl.line_num.astype(np.int32), pa.int32()),
        "EventTS": ts_array(sl.ts_us[sl.receipt_index]),
        "ProductID": pa.array(sl.product_idx + 1, pa.int64()),
        "Qty": pa.array(sl.quantity.astype(np.int32), pa.int32()),
        **money.money_columns("UnitPrice", "UnitCents", sl.unit_cents),
        **money.money_columns("DiscountAmount", "DiscountCents", money_.discount_cents),
        **money.money_columns("ExtPrice", "ExtCents", money_.ext_cents),
        **money.money_columns("Tax", "TaxCents", money_.tax_cents),
        "PromoCode": dict_strings(code, domain.PROMO_CODES, mask=code < 0),
    })
    return receipts, receipt_lines


class ReceiptsMixin:
    """Store visits, candidate baskets and SALE receipts.

    This mixin defines the following functionality:

    Adds:
        ``_generate_store_hour_activity`` (:class:`Visits`), ``_build_candidate_baskets``
        (:class:`CandidateLines`), ``_sale_requests`` (store SALE :class:`InventoryEvents`),
        ``_finalize_sale_lines`` (:class:`SaleLines`), ``_sale_money`` (:class:`SaleMoney`) and
        ``_create_receipt`` (the ``receipts`` and ``receipt_lines`` tables). The calling order
        is in the module docstring.
    Reads:
        ``config.volume`` (customers_per_day, items_per_ticket_mean, total_customers),
        ``_seed``, ``_master.stores``, ``_master.customers``, ``_master.products``, ``_pools``,
        ``_keyword_groups``, ``_for_each_store``.
    Writes:
        nothing on self.
    Streams:
        ``visits.count``, ``visits.time``, ``visits.customer``, ``basket.behaviour``,
        ``basket.lines``, ``basket.category``, ``basket.product``, ``basket.qty``,
        ``holiday.overlay`` (all per store).
    """

    def _generate_store_hour_activity(self, ctx: DayContext) -> Visits:
        """Every store's visits of ``ctx.day`` (none when the stores are closed)."""
        stores = self._master.stores
        n_stores = stores.store_id.shape[0]
        if ctx.closed or n_stores == 0:
            return concat_visits([], n_stores)
        volume = self.config.volume
        lam = visit_lambda(volume.customers_per_day, stores.traffic_multiplier,
                           ctx.store_hour_mult, calendar.hour_curve(ctx.day))
        segment = self._master.customers.segment_code

        def one_store(i: int) -> Visits:
            sid = int(stores.store_id[i])
            gens = [rng.stream(self._seed, name, ctx.day, sid) for name in (
                "visits.count", "visits.time", "visits.customer", "basket.behaviour")]
            return draw_store_visits(
                *gens, store_index=i, lam=lam[i], open_mask=ctx.open_mask[i],
                day_start_us=ctx.day_start_us, pools=self._pools, customer_segment=segment,
                total_customers=volume.total_customers,
            )

        return concat_visits(self._for_each_store(one_store))

    def _build_candidate_baskets(self, ctx: DayContext, visits: Visits) -> CandidateLines:
        """Merged candidate basket lines of every visit (behaviour.md §5.2–5.4, §5.6)."""
        stores, products = self._master.stores, self._master.products

        def build_tables() -> BasketDayTables:
            mult = product_multiplier(ctx.day, products.category_code, self._keyword_groups)
            return basket_day_tables(
                ctx.available, products.category_code, products.sale_price_cents,
                products.popularity, mult,
                basket_mu(_ticket_k(self.config.volume.items_per_ticket_mean)),
                calendar.overlay_windows(ctx.day)["extra_lines"],
            )

        tables = self._per_day(ctx.day, "basket_tables", build_tables)

        def one_store(i: int) -> tuple[np.ndarray, ...]:
            a, b = int(visits.store_offsets[i]), int(visits.store_offsets[i + 1])
            sid = int(stores.store_id[i])
            gens = [rng.stream(self._seed, name, ctx.day, sid) for name in (
                "basket.lines", "basket.category", "basket.product", "basket.qty",
                "holiday.overlay")]
            v, num, p, q = draw_store_baskets(
                *gens, behaviour=visits.behaviour_code[a:b], segment=visits.segment_code[a:b],
                format_code=int(stores.format_code[i]), tables=tables,
            )
            return v + a, num, p, q

        parts = self._for_each_store(one_store) if len(visits) else []
        if not parts:
            z = np.zeros(0, dtype=np.int64)
            return CandidateLines(z, z, z, z)
        v, num, p, q = (np.concatenate(col).astype(np.int64) for col in zip(*parts, strict=True))
        return CandidateLines(visit_index=v, line_num=num, product_idx=p, quantity=q)

    def _sale_requests(self, ctx: DayContext, visits: Visits, lines: CandidateLines
                       ) -> InventoryEvents:
        """One store SALE request per candidate line, aligned 1:1 with ``lines``."""
        vi = lines.visit_index
        store_idx = visits.store_idx[vi]
        source = sale_receipt_ids(ctx.day, self._master.stores.store_id[store_idx],
                                  visits.visit_seq[vi])
        return InventoryEvents(
            node_idx=store_idx.astype(np.int64), product_idx=lines.product_idx.astype(np.int64),
            ts_us=visits.ts_us[vi].astype(np.int64),
            txn_type=np.full(len(lines), domain.TXN_TYPE_RANK["SALE"], dtype=np.int8),
            source=source, delta=-lines.quantity.astype(np.int64),
        )

    def _finalize_sale_lines(self, ctx: DayContext, visits: Visits, lines: CandidateLines,
                             filled: np.ndarray) -> SaleLines:
        """Fulfilled lines and their receipts (behaviour.md §5.5); see :func:`finalize_sale_lines`."""
        return finalize_sale_lines(ctx.day, visits, lines, filled,
                                   self._master.products.sale_price_cents,
                                   self._master.stores.store_id)

    def _sale_money(self, ctx: DayContext, sale_lines: SaleLines, discount_cents: np.ndarray
                    ) -> SaleMoney:
        """ext, tax and header sums with the store's tax rate (behaviour.md §6)."""
        ppm = self._master.stores.tax_ppm[sale_lines.store_idx][sale_lines.receipt_index]
        factor = self._master.products.tax_factor[sale_lines.product_idx]
        return compute_sale_money(sale_lines, discount_cents, ppm, factor)

    def _create_receipt(self, ctx: DayContext, sale_lines: SaleLines, money_: SaleMoney,
                        promo_code_idx: np.ndarray, tender_codes: np.ndarray
                        ) -> tuple[pa.Table, pa.Table]:
        """The SALE ``receipts`` and ``receipt_lines`` tables of the day."""
        if money_.lines is not sale_lines:
            raise ValueError("money_ was computed for other sale lines")
        return build_receipt_tables(money_, promo_code_idx, tender_codes)


# The basket model's public names stay importable from this module, where they began.
__all__ = [
    "BEHAVIOUR_MID",
    "BEHAVIOUR_MIX",
    "BEHAVIOUR_P",
    "BEHAVIOUR_QTY",
    "EXPRESS",
    "EXPRESS_MAX_LINES",
    "TICKET_FLOOR",
    "BasketDayTables",
    "ReceiptsMixin",
    "SaleLines",
    "SaleMoney",
    "basket_day_tables",
    "basket_mu",
    "build_receipt_tables",
    "compute_sale_money",
    "concat_visits",
    "draw_store_baskets",
    "draw_store_visits",
    "finalize_sale_lines",
    "merge_basket_lines",
    "sale_receipt_ids",
    "solve_ticket_k",
    "visit_lambda",
]
