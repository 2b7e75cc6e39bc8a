"""In-store promotions: decision, eligibility, discounts and tables (behaviour.md §6, §7)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow.compute as pc

from fact_fixtures import CAT, make_host, run_sales
from retail_datagen import domain, money, rng
from retail_datagen.db.fact_schema import GENERATOR_NAMES
from retail_datagen.generators.fact_generators import promotions_mixin as pm

CODE = {c: i for i, c in enumerate(domain.PROMO_CODES)}
NOV = 11


def _stream(name: str, shard: int = 1):
    return rng.stream(21, name, date(2024, 11, 20), shard)


# --- eligibility and decision ------------------------------------------------------------------


def test_code_eligibility_rules() -> None:
    # Basket 0: $30 of food, qty 1. Basket 1: $120 of clothing, qty 2. Basket 2: $45, food qty 3.
    group = np.array([0, 1, 2])
    cat = np.array([CAT["food"], CAT["clothing"], CAT["food"]])
    gross = np.array([3000, 12000, 4500])
    qty = np.array([1, 2, 3])
    e = pm.promo_code_eligibility(group, cat, gross, qty, 3, NOV)
    assert e[0, CODE["SAVE10"]] and e[0, CODE["SAVE15"]] and not e[0, CODE["SAVE20"]]
    assert not e[0, CODE["BOGO50"]] and e[1, CODE["BOGO50"]] and e[2, CODE["BOGO50"]]
    assert not e[0, CODE["CLEARANCE30"]] and e[1, CODE["CLEARANCE30"]]
    assert e[1, CODE["BFRIDAY40"]] and not e[2, CODE["BFRIDAY40"]]
    assert e[2, CODE["TAKE5"]] and not e[2, CODE["TAKE10"]]
    assert not e[:, CODE["HOLIDAY20"]].any() and not e[:, CODE["SUMMER25"]].any()
    dec = pm.promo_code_eligibility(group, cat, gross, qty, 3, 12)
    assert dec[:, CODE["HOLIDAY20"]].all() and not dec[:, CODE["BFRIDAY30"]].any()
    jul = pm.promo_code_eligibility(group, cat, gross, qty, 3, 7)
    assert jul[1, CODE["CLEARANCE50"]] and not jul[0, CODE["CLEARANCE50"]]


def test_decision_rate_and_eligible_codes() -> None:
    n = 20_000
    segment = np.zeros(n, dtype=np.int8)  # BUDGET_CONSCIOUS
    line_visit = np.repeat(np.arange(n), 2)
    category = np.tile([CAT["food"], CAT["clothing"]], n)  # mean cat_mult = 1.2
    gross = np.full(2 * n, 1000)
    qty = np.ones(2 * n, dtype=np.int64)
    codes = pm.decide_promotions(_stream("promo.apply"), _stream("promo.code"), segment=segment,
                                 line_visit=line_visit, line_category=category, line_gross=gross,
                                 line_qty=qty, month=NOV)
    p = min(0.60, 0.30 * 2.0 * 1.2)
    assert abs((codes >= 0).mean() - p) < 0.015
    allowed = pm.promo_code_eligibility(line_visit, category, gross, qty, n, NOV)[0]
    assert set(np.unique(codes[codes >= 0]).tolist()) <= set(np.flatnonzero(allowed).tolist())
    apply = _stream("promo.apply").random(n) < p
    assert np.array_equal(codes >= 0, apply)


def test_decision_empty_basket_and_category_mean() -> None:
    segment = np.array([0, 1, 2, 3], dtype=np.int8)
    # Visit 0 has no line; the others carry one food line each.
    line_visit = np.array([1, 2, 3])
    codes = pm.decide_promotions(_stream("promo.apply"), _stream("promo.code"), segment=segment,
                                 line_visit=line_visit, line_category=np.zeros(3, np.int64),
                                 line_gross=np.full(3, 100), line_qty=np.ones(3, np.int64),
                                 month=NOV)
    assert codes[0] == -1 and codes.dtype == np.int8 and codes.shape == (4,)


# --- discounts after fulfilment ----------------------------------------------------------------


def test_percentage_bogo_and_fixed_discounts() -> None:
    receipts = np.array([CODE["SAVE10"], CODE["BOGO50"], CODE["TAKE5"], CODE["CLEARANCE30"], -1])
    line_receipt = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3, 4])
    cat = np.array([0, 5, 0, 0, 0, 1, 2, 0, 5, 0])
    unit = np.array([1999, 501, 333, 250, 1000, 2000, 1001, 700, 900, 100])
    qty = np.array([1, 2, 3, 1, 2, 1, 1, 1, 2, 5])
    gross = unit * qty
    d, code = pm.promotion_discounts(receipts, line_receipt=line_receipt, line_category=cat,
                                     unit_cents=unit, qty=qty, gross_cents=gross, month=NOV)
    assert d[:2].tolist() == money.percent_discount(gross[:2], 1000).tolist()
    assert d[2] == money.bogo_discount(333, 3) and d[3] == 0  # BOGO only on qty ≥ 2
    assert d[4:7].sum() == 500 and (d[4:7] <= gross[4:7]).all()
    assert d[4:7].tolist() == money.allocate_fixed(500, gross[4:7], [0, 0, 0],
                                                   [True] * 3).tolist()
    assert d[7] == 0 and d[8] == money.percent_discount(1800, 3000)  # clothing only
    assert d[9] == 0
    assert (d <= gross).all() and (d >= 0).all()
    assert np.array_equal(code >= 0, d > 0)
    assert code[8] == CODE["CLEARANCE30"] and code[7] == -1


def test_final_basket_recheck() -> None:
    # SAVE20 needs $50 gross: the fulfilled basket has only $40 → no discount at all.
    d, code = pm.promotion_discounts(np.array([CODE["SAVE20"], CODE["BOGO50"]]),
                                     line_receipt=np.array([0, 1]), line_category=np.array([0, 0]),
                                     unit_cents=np.array([4000, 500]), qty=np.array([1, 1]),
                                     gross_cents=np.array([4000, 500]), month=NOV)
    assert d.tolist() == [0, 0] and code.tolist() == [-1, -1]
    # TAKE10 on a basket of $80: min(A, eligible gross) spread ∝ gross, each ≤ line gross.
    gross = np.array([7000, 999, 1])
    d, _ = pm.promotion_discounts(np.array([CODE["TAKE10"]]), line_receipt=np.zeros(3, np.int64),
                                  line_category=np.zeros(3, np.int64), unit_cents=gross,
                                  qty=np.ones(3, np.int64), gross_cents=gross, month=NOV)
    assert d.sum() == 1000 and (d <= gross).all()


# --- tables ------------------------------------------------------------------------------------


def _sales_with_promotions():
    host = make_host(["standard", "hypermarket"], customers_per_day=500)
    return host, run_sales(host, date(2024, 11, 29))


def test_promotion_tables_match_lines() -> None:
    _, r = _sales_with_promotions()
    promos, plines, lines = r.promotions, r.promo_lines, r.receipt_lines
    assert promos.num_rows > 20
    assert promos.column_names == list(GENERATOR_NAMES["promotions"])
    assert plines.column_names == list(GENERATOR_NAMES["promo_lines"])
    assert (plines.column("DiscountCents").to_numpy() > 0).all()
    assert (promos.column("DiscountCents").to_numpy() > 0).all()
    # Promotions exist exactly for the receipts with a discount.
    disc = r.receipts.filter(pc.greater(r.receipts.column("DiscountCents"), 0))
    assert disc.column("ReceiptId").to_pylist() == promos.column("ReceiptId").to_pylist()
    assert disc.column("DiscountCents").to_pylist() == promos.column("DiscountCents").to_pylist()
    assert disc.column("EventTS").to_pylist() == promos.column("EventTS").to_pylist()
    # One promo line per discounted receipt line, same product, qty, discount and code.
    with_code = lines.filter(pc.is_valid(lines.column("PromoCode")))
    for name in ("ReceiptId", "LineNumber", "ProductID", "Qty", "DiscountCents", "PromoCode",
                 "EventTS"):
        assert with_code.column(name).to_pylist() == plines.column(name).to_pylist(), name
    # Per receipt: count, ascending ids, one code and its type.
    ids = plines.column("ReceiptId").to_pylist()
    pid = plines.column("ProductID").to_pylist()
    by_receipt: dict[str, list[int]] = {}
    for rid, p in zip(ids, pid, strict=True):
        by_receipt.setdefault(rid, []).append(p)
    for row in promos.to_pylist():
        products = sorted(by_receipt[row["ReceiptId"]])
        assert row["ProductCount"] == len(products)
        assert row["ProductIds"] == ",".join(str(p) for p in products)
        rule = pm.PROMO_RULES[CODE[row["PromoCode"]]]
        assert row["DiscountType"] == pm.DISCOUNT_TYPES[rule.discount_type]
    codes = plines.group_by("ReceiptId").aggregate([("PromoCode", "count_distinct")])
    assert set(codes.column("PromoCode_count_distinct").to_pylist()) == {1}


def test_bogo_lines_have_qty_two_or_more() -> None:
    _, r = _sales_with_promotions()
    bogo = r.promo_lines.filter(pc.equal(r.promo_lines.column("PromoCode"), "BOGO50"))
    assert (bogo.column("Qty").to_numpy() >= 2).all()


def test_decide_returns_codes_and_is_deterministic() -> None:
    host, r = _sales_with_promotions()
    assert r.codes.dtype == np.int8 and r.codes.shape == (len(r.visits),)
    assert (r.codes >= 0).any()
    # Visits with no candidate line never get a code.
    has_line = np.bincount(r.lines.visit_index, minlength=len(r.visits)) > 0
    assert (r.codes[~has_line] == -1).all()
    before = {name: getattr(r.visits, name).copy() for name in vars(r.visits)}
    again = host._decide_promotions(r.ctx, r.visits, r.lines)
    assert np.array_equal(again, r.codes)
    # Deciding leaves the visits as they were.
    assert all(np.array_equal(getattr(r.visits, k), v) for k, v in before.items())
    _, r2 = _sales_with_promotions()
    assert r.promotions.equals(r2.promotions) and r.promo_lines.equals(r2.promo_lines)


def test_no_promotions_on_empty_day() -> None:
    host = make_host(["standard"])
    r = run_sales(host, date(2024, 12, 25))
    assert r.promotions.num_rows == 0 and r.promo_lines.num_rows == 0
    assert r.promotions.column_names == list(GENERATOR_NAMES["promotions"])
