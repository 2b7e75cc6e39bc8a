"""In-store promotions (behaviour.md §6, §7).

The decision is made per visit on the merged candidate basket, before fulfilment
(:func:`decide_promotions`, streams ``promo.apply`` and ``promo.code``). The discount is computed
after fulfilment on the final lines (:func:`promotion_discounts`): a code whose minimum gross or
eligible lines no longer hold gives nothing, and only lines with a discount > 0 carry the code.
:func:`build_promotion_tables` makes the ``promotions`` and ``promo_lines`` batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen import domain, money, rng
from retail_datagen.generators.fact_generators.day_types import CandidateLines, DayContext, Visits
from retail_datagen.generators.fact_generators.receipts_mixin import SaleLines
from retail_datagen.generators.fact_generators.utils_mixin import (
    dict_strings,
    rank_within_groups,
    ts_array,
)

DISCOUNT_TYPES: tuple[str, ...] = ("PERCENTAGE", "FIXED_AMOUNT", "BOGO")
PERCENTAGE, FIXED_AMOUNT, BOGO = range(3)


@dataclass(frozen=True)
class PromoCodeRule:
    """One row of the §7 code table. ``value`` is basis points (PERCENTAGE, BOGO) or cents."""

    code: str
    discount_type: int  # into DISCOUNT_TYPES
    value: int
    min_gross_cents: int
    months: tuple[int, ...] | None  # None = every month
    categories: tuple[str, ...] | None  # basket categories; None = all
    weight: float


_CLOTH_ELEC = ("clothing", "electronics")
PROMO_RULES: tuple[PromoCodeRule, ...] = (
    PromoCodeRule("SAVE10", PERCENTAGE, 1000, 0, None, None, 10),
    PromoCodeRule("SAVE15", PERCENTAGE, 1500, 2500, None, None, 15),
    PromoCodeRule("SAVE20", PERCENTAGE, 2000, 5000, None, None, 20),
    PromoCodeRule("SAVE25", PERCENTAGE, 2500, 7500, None, None, 25),
    PromoCodeRule("TAKE5", FIXED_AMOUNT, 500, 4000, None, None, 10),
    PromoCodeRule("TAKE10", FIXED_AMOUNT, 1000, 7500, None, None, 15),
    PromoCodeRule("BOGO50", BOGO, 5000, 0, None, None, 50),
    PromoCodeRule("CLEARANCE30", PERCENTAGE, 3000, 0, None, (*_CLOTH_ELEC, "home_garden"), 30),
    PromoCodeRule("CLEARANCE50", PERCENTAGE, 5000, 0, (1, 2, 7, 8), _CLOTH_ELEC, 50),
    PromoCodeRule("BFRIDAY30", PERCENTAGE, 3000, 0, (11,), None, 30),
    PromoCodeRule("BFRIDAY40", PERCENTAGE, 4000, 10000, (11,), None, 40),
    PromoCodeRule("SUMMER25", PERCENTAGE, 2500, 0, (6, 7, 8), None, 25),
    PromoCodeRule("BACKTOSCHOOL", PERCENTAGE, 2000, 0, (8, 9), _CLOTH_ELEC, 20),
    PromoCodeRule("HOLIDAY20", PERCENTAGE, 2000, 0, (12,), None, 20),
    PromoCodeRule("NEWYEAR15", PERCENTAGE, 1500, 0, (1, 2), None, 15),
)
if tuple(r.code for r in PROMO_RULES) != domain.PROMO_CODES:
    raise RuntimeError("PROMO_RULES must follow domain.PROMO_CODES order")

_N_CODES = len(PROMO_RULES)
CODE_WEIGHT = np.array([r.weight for r in PROMO_RULES], dtype=np.float64)
CODE_TYPE = np.array([r.discount_type for r in PROMO_RULES], dtype=np.int64)
CODE_MONTHS = np.array([[r.months is None or m in r.months for m in range(1, 13)]
                        for r in PROMO_RULES])
CODE_CATEGORIES = np.array([[r.categories is None or c in r.categories
                             for c in domain.BASKET_CATEGORIES] for r in PROMO_RULES])

#: §7 promotion rates, in ``domain.SHOPPER_SEGMENTS`` order.
SEGMENT_RATE = np.array([0.30, 0.08, 0.10, 0.15])
#: §7 month multipliers, January first.
MONTH_MULT = (1.3, 1.2, 0.9, 1.0, 1.0, 1.1, 1.3, 1.4, 1.1, 1.0, 2.0, 1.6)
#: §7 category multipliers, in ``domain.BASKET_CATEGORIES`` order.
CATEGORY_MULT = np.array([0.6, 0.7, 0.8, 0.9, 1.2, 1.8, 1.1, 1.0])
MAX_PROMO_P = 0.60


def _group_sum(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, group, np.asarray(values, dtype=np.int64))
    return out


def promo_code_eligibility(group: np.ndarray, category: np.ndarray, gross: np.ndarray,
                           qty: np.ndarray, n_groups: int, month: int) -> np.ndarray:
    """Which codes each basket may use: month allowed, gross ≥ minimum, and ≥ 1 line in the
    code's categories (BOGO: a line with qty ≥ 2).

    Args:
        group: int64 (n_lines,) basket of each line (0..n_groups−1).
        category: int (n_lines,) basket category codes. gross: int64 (n_lines,) unit × qty.
        qty: int64 (n_lines,). month: 1..12.

    Returns:
        bool (n_groups, 15), codes in ``domain.PROMO_CODES`` order.
    """
    group = np.asarray(group, dtype=np.int64)
    category = np.asarray(category, dtype=np.int64)
    basket_gross = _group_sum(group, gross, n_groups)
    out = np.zeros((n_groups, _N_CODES), dtype=bool)
    for c, rule in enumerate(PROMO_RULES):
        if not CODE_MONTHS[c, month - 1]:
            continue
        line_ok = CODE_CATEGORIES[c][category]
        if rule.discount_type == BOGO:
            line_ok = line_ok & (np.asarray(qty) >= 2)
        has_line = np.bincount(group[line_ok], minlength=n_groups) > 0
        out[:, c] = has_line & (basket_gross >= rule.min_gross_cents)
    return out


def decide_promotions(gen_apply: np.random.Generator, gen_code: np.random.Generator, *,
                      segment: np.ndarray, line_visit: np.ndarray, line_category: np.ndarray,
                      line_gross: np.ndarray, line_qty: np.ndarray, month: int) -> np.ndarray:
    """One store's promotion decisions (streams ``promo.apply`` then ``promo.code``).

    ``p = min(0.60, seg_rate × month_mult × mean(cat_mult over the basket's lines))``, 0 for an
    empty basket; the code is a weighted pick over the eligible codes in table order. Both kinds
    are drawn for every visit.

    Args:
        segment: int8 (n_visits,) in seq order.
        line_visit: int64 (n_lines,) local visit of each candidate line, ascending.
        line_category, line_gross, line_qty: per candidate line.
        month: 1..12.

    Returns:
        int8 (n_visits,): code index into ``domain.PROMO_CODES``, −1 = no promotion.
    """
    n = int(np.asarray(segment).shape[0])
    line_visit = np.asarray(line_visit, dtype=np.int64)
    count = np.bincount(line_visit, minlength=n)
    mult = CATEGORY_MULT[np.asarray(line_category, dtype=np.int64)]
    # Σ cat_mult in line order per basket: a running sum along each basket's row of lines
    # (zero-padded; adding 0.0 changes nothing), so every float addition is in line order.
    rank = rank_within_groups(line_visit)
    by_position = np.zeros((n, int(rank.max(initial=-1)) + 1), dtype=np.float64)
    by_position[line_visit, rank] = mult
    acc = (np.cumsum(by_position, axis=1)[:, -1] if by_position.shape[1]
           else np.zeros(n, dtype=np.float64))
    mean = np.divide(acc, count, out=np.zeros(n), where=count > 0)
    p = np.minimum(MAX_PROMO_P, SEGMENT_RATE[np.asarray(segment, dtype=np.int64)]
                   * MONTH_MULT[month - 1] * mean)
    p = np.where(count > 0, p, 0.0)
    apply = gen_apply.random(n) < p
    u = gen_code.random(n)
    weights = CODE_WEIGHT[None, :] * promo_code_eligibility(
        line_visit, line_category, line_gross, line_qty, n, month)
    has = weights.sum(axis=1) > 0
    code = np.full(n, -1, dtype=np.int64)
    code[has] = rng.categorical_rows(u[has], weights[has])
    return np.where(apply & has, code, -1).astype(np.int8)


def promotion_discounts(code_per_receipt: np.ndarray, *, line_receipt: np.ndarray,
                        line_category: np.ndarray, unit_cents: np.ndarray, qty: np.ndarray,
                        gross_cents: np.ndarray, month: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Discounts on the final (fulfilled) lines with the §6 formulas.

    A receipt's code counts only if the final basket still meets its minimum and has an eligible
    line. PERCENTAGE discounts the lines in the code's categories, BOGO the lines with qty ≥ 2,
    FIXED_AMOUNT is ``min(A, eligible gross)`` spread over the eligible lines by
    ``money.allocate_fixed``.

    Args:
        code_per_receipt: int (n_receipts,) decided code, −1 = none.
        line_receipt: int64 (n_lines,) receipt of each line, ascending; lines in line order.
        line_category, unit_cents, qty, gross_cents: per line. month: 1..12.

    Returns:
        ``(discount_cents, promo_code_idx)`` per line: int64 ≥ 0 and int8 (−1 where the discount
        is 0).
    """
    line_receipt = np.asarray(line_receipt, dtype=np.int64)
    category = np.asarray(line_category, dtype=np.int64)
    unit_cents, qty, gross_cents = (np.asarray(a, dtype=np.int64)
                                    for a in (unit_cents, qty, gross_cents))
    code = np.asarray(code_per_receipt, dtype=np.int64).copy()
    n_receipts = code.shape[0]
    elig = promo_code_eligibility(line_receipt, category, gross_cents, qty, n_receipts, month)
    has = code >= 0
    has[has] = elig[np.flatnonzero(has), code[has]]
    code[~has] = -1
    line_code = code[line_receipt] if line_receipt.size else np.zeros(0, dtype=np.int64)
    discount = np.zeros(line_receipt.shape[0], dtype=np.int64)
    for c in np.unique(line_code[line_code >= 0]):
        rule = PROMO_RULES[int(c)]
        sel = np.flatnonzero(line_code == c)
        line_ok = CODE_CATEGORIES[c][category[sel]]
        if rule.discount_type == PERCENTAGE:
            d = np.where(line_ok, money.percent_discount(gross_cents[sel], rule.value), 0)
        elif rule.discount_type == BOGO:
            line_ok = line_ok & (qty[sel] >= 2)
            d = np.where(line_ok, money.bogo_discount(unit_cents[sel], qty[sel]), 0)
        else:
            d = money.allocate_fixed(rule.value, gross_cents[sel], line_receipt[sel], line_ok)
        discount[sel] = d
    promo = np.where(discount > 0, line_code, -1).astype(np.int8)
    return discount, promo


def build_promotion_tables(sale_lines: SaleLines, discount_cents: np.ndarray,
                           promo_code_idx: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """The ``promotions`` (one row per receipt with discount > 0) and ``promo_lines`` (one row
    per line with discount > 0) batches (fact-tables.md §16, §17)."""
    sl = sale_lines
    n_r = sl.n_receipts
    line_pos = np.flatnonzero(np.asarray(discount_cents) > 0)
    rec = sl.receipt_index[line_pos]
    codes = np.asarray(promo_code_idx, dtype=np.int64)[line_pos]
    disc = np.asarray(discount_cents, dtype=np.int64)[line_pos]
    count = np.bincount(rec, minlength=n_r)
    receipts = np.flatnonzero(count > 0)
    code_r = np.full(n_r, -1, dtype=np.int64)
    code_r[rec] = codes
    disc_r = _group_sum(rec, disc, n_r)[receipts]
    # ProductIds: each receipt's discounted product ids ascending, comma-joined.
    order = np.lexsort((sl.product_idx[line_pos], rec))
    offsets = np.concatenate([[0], np.cumsum(count[receipts])]).astype(np.int32)
    ids = pa.array(sl.product_idx[line_pos][order] + 1, pa.int64()).cast(pa.string())
    product_ids = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), ids), ",")
    rcode = code_r[receipts]
    promotions = pa.table({
        "ReceiptId": sl.receipt_id.take(pa.array(receipts, pa.int64())),
        "PromoCode": dict_strings(rcode, domain.PROMO_CODES),
        "EventTS": ts_array(sl.ts_us[receipts]),
        "StoreID": pa.array(sl.store_id[receipts], pa.int64()),
        "CustomerID": pa.array(sl.customer_id[receipts], pa.int64()),
        "DiscountType": dict_strings(CODE_TYPE[rcode], DISCOUNT_TYPES),
        "DiscountAmount": money.cents_to_decimal(disc_r),
        "DiscountCents": pa.array(disc_r, pa.int64()),
        "ProductCount": pa.array(count[receipts].astype(np.int32), pa.int32()),
        "ProductIds": product_ids.cast(pa.string()),
    })
    promo_lines = pa.table({
        "ReceiptId": sl.receipt_id.take(pa.array(rec, pa.int64())),
        "LineNumber": pa.array(sl.line_num[line_pos].astype(np.int32), pa.int32()),
        "PromoCode": dict_strings(codes, domain.PROMO_CODES),
        "EventTS": ts_array(sl.ts_us[rec]),
        "ProductID": pa.array(sl.product_idx[line_pos] + 1, pa.int64()),
        "Qty": pa.array(sl.quantity[line_pos].astype(np.int32), pa.int32()),
        "DiscountAmount": money.cents_to_decimal(disc),
        "DiscountCents": pa.array(disc, pa.int64()),
    })
    return promotions, promo_lines


class PromotionsMixin:
    """In-store promotion decisions, discounts and the promotion tables.

    This mixin defines the following functionality:

    Adds:
        ``_decide_promotions`` (code per visit, before fulfilment) and ``_apply_promotions``
        (line discounts after fulfilment; the ``promotions`` and ``promo_lines`` tables).
    Reads:
        ``_seed``, ``_master.stores``, ``_master.products``, ``_for_each_store``.
    Writes:
        nothing on self: ``_decide_promotions`` returns the visits' codes, which the driver
        hands to ``_apply_promotions``.
    Streams:
        ``promo.apply``, ``promo.code`` (per store).
    """

    def _decide_promotions(self, ctx: DayContext, visits: Visits, lines: CandidateLines
                           ) -> np.ndarray:
        """Decide each visit's code on its candidate basket (behaviour.md §7).

        Returns int8 (n_visits,): the code of each visit into ``domain.PROMO_CODES`` (−1 none).
        """
        products, stores = self._master.products, self._master.stores
        category = products.category_code[lines.product_idx]
        gross = products.sale_price_cents[lines.product_idx] * lines.quantity
        bounds = np.searchsorted(lines.visit_index, visits.store_offsets)

        def one_store(i: int) -> np.ndarray:
            a, b = int(visits.store_offsets[i]), int(visits.store_offsets[i + 1])
            la, lb = int(bounds[i]), int(bounds[i + 1])
            sid = int(stores.store_id[i])
            return decide_promotions(
                rng.stream(self._seed, "promo.apply", ctx.day, sid),
                rng.stream(self._seed, "promo.code", ctx.day, sid),
                segment=visits.segment_code[a:b], line_visit=lines.visit_index[la:lb] - a,
                line_category=category[la:lb], line_gross=gross[la:lb],
                line_qty=lines.quantity[la:lb], month=ctx.day.month,
            )

        parts = self._for_each_store(one_store) if len(visits) else []
        return np.concatenate(parts).astype(np.int8) if parts else np.zeros(0, dtype=np.int8)

    def _apply_promotions(self, ctx: DayContext, visit_codes: np.ndarray, sale_lines: SaleLines
                          ) -> tuple[np.ndarray, np.ndarray, pa.Table, pa.Table]:
        """Discounts on the fulfilled lines and the promotion tables.

        ``visit_codes`` is int8 (n_visits,), as ``_decide_promotions`` returns it.

        Returns:
            ``(discount_cents, promo_code_idx, promotions, promo_lines)``: int64 and int8 per
            final line (aligned with ``sale_lines``), then the two tables.
        """
        products = self._master.products
        sl = sale_lines
        discount, promo = promotion_discounts(
            visit_codes[sl.receipt_visit], line_receipt=sl.receipt_index,
            line_category=products.category_code[sl.product_idx], unit_cents=sl.unit_cents,
            qty=sl.quantity, gross_cents=sl.gross_cents, month=ctx.day.month,
        )
        promotions, promo_lines = build_promotion_tables(sl, discount, promo)
        return discount, promo, promotions, promo_lines


__all__ = [
    "DISCOUNT_TYPES",
    "PROMO_RULES",
    "PromoCodeRule",
    "PromotionsMixin",
    "build_promotion_tables",
    "decide_promotions",
    "promo_code_eligibility",
    "promotion_discounts",
]
