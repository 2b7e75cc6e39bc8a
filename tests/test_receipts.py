"""Visits, candidate baskets, holiday overlay and SALE receipts (behaviour.md §4–6, §5.6)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow.compute as pc
import pytest

from fact_fixtures import (
    CAT,
    make_context,
    make_customers,
    make_host,
    make_pools,
    make_products,
    make_stores,
    run_sales,
)
from retail_datagen import calendar, domain, money, rng
from retail_datagen.db.fact_schema import GENERATOR_NAMES
from retail_datagen.generators.fact_generators import receipts_mixin as rm
from retail_datagen.generators.fact_generators.payments_mixin import PaymentsMixin
from retail_datagen.generators.fact_generators.promotions_mixin import PromotionsMixin
from retail_datagen.generators.fact_generators.receipts_mixin import ReceiptsMixin
from retail_datagen.generators.fact_generators.seasonal_mixin import (
    KEYWORD_GROUPS,
    HolidayBasket,
    SeasonalMixin,
    apply_holiday_overlay,
    product_keyword_groups,
    product_multiplier,
)
from retail_datagen.generators.fact_generators.utils_mixin import US_PER_HOUR, day_start_us

PLAIN_DAY = date(2024, 3, 13)  # a Wednesday outside every overlay window
THANKSGIVING = date(2024, 11, 28)


# --- §5.3 line count ---------------------------------------------------------------------------


def _lhs(k: float) -> float:
    return sum(p * max(1.0, k * mid) * q for p, mid, q in
               zip(rm.BEHAVIOUR_MIX, rm.BEHAVIOUR_MID, rm.BEHAVIOUR_QTY, strict=True))


def test_ticket_k_example_and_exact_solution() -> None:
    assert round(rm.solve_ticket_k(8.2), 4) == 0.5182
    for t in (1.4, 1.6, 2.5, 4.2, 8.2, 15.0, 40.0):
        assert _lhs(rm.solve_ticket_k(t)) == pytest.approx(t, rel=1e-12)
    assert rm.solve_ticket_k(1.3141) == 0.0
    assert rm.solve_ticket_k(0.5) == 0.0


def test_low_ticket_mean_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        rm._ticket_k(1.0123)
        rm._ticket_k(1.0123)
    assert sum("items_per_ticket_mean" in r.message for r in caplog.records) == 1


def test_mu_by_format() -> None:
    k = rm.solve_ticket_k(8.2)
    mu = rm.basket_mu(k)
    std = domain.STORE_FORMATS.index("standard")
    hyper = domain.STORE_FORMATS.index("hypermarket")
    assert mu[std].tolist() == [max(1.0, k * 1.0 * m) for m in rm.BEHAVIOUR_MID]
    assert mu[hyper].tolist() == [max(1.0, k * 1.3 * m) for m in rm.BEHAVIOUR_MID]
    assert ((mu[rm.EXPRESS] >= 1.0) & (mu[rm.EXPRESS] <= 2.0)).all()


# --- §4 visits ---------------------------------------------------------------------------------


def _one_store_visits(lam: np.ndarray, open_mask: np.ndarray, shard: int = 1, empty=()):
    pools = make_pools(1, empty=empty)
    gens = [rng.stream(3, name, PLAIN_DAY, shard) for name in
            ("visits.count", "visits.time", "visits.customer", "basket.behaviour")]
    return rm.draw_store_visits(
        *gens, store_index=0, lam=lam, open_mask=open_mask, day_start_us=day_start_us(PLAIN_DAY),
        pools=pools, customer_segment=make_customers().segment_code, total_customers=400)


def test_lambda_formula() -> None:
    stores = make_stores(["standard", "standard"])
    mult = np.full((2, 24), 1.5)
    curve = calendar.hour_curve(PLAIN_DAY)
    lam = rm.visit_lambda(427, np.array([1.0, 2.0]), mult, curve)
    assert lam[1, 12] == 427 * 2.0 * 1.5 * curve[12] / calendar.CURVE_NORM
    open_mask = make_context(PLAIN_DAY, stores, make_products()).open_mask
    # A store open 08–22 on a weekday with every multiplier 1 expects customers_per_day visits.
    lam1 = rm.visit_lambda(427, np.ones(2), np.ones((2, 24)), curve)
    assert lam1[0][open_mask[0]].sum() == pytest.approx(427, rel=1e-9)


def test_poisson_counts_match_lambda() -> None:
    lam = np.full(24, 400.0)
    open_mask = np.zeros(24, dtype=bool)
    open_mask[8:22] = True
    totals = [len(_one_store_visits(lam, open_mask, shard=s)) for s in range(1, 21)]
    mean = float(np.mean(totals))
    expected = 400.0 * 14
    assert abs(mean - expected) < 4 * np.sqrt(expected / 20)
    v = _one_store_visits(lam, open_mask)
    assert v.visits_per_hour.shape == (1, 24)
    assert v.visits_per_hour[0, :8].sum() == 0 and v.visits_per_hour[0, 22:].sum() == 0
    assert np.array_equal(np.bincount(v.hour, minlength=24), v.visits_per_hour[0])


def test_visit_times_seq_and_hour_23() -> None:
    lam = np.full(24, 300.0)
    v = _one_store_visits(lam, np.ones(24, dtype=bool))
    start = day_start_us(PLAIN_DAY)
    assert np.array_equal(v.visit_seq, np.arange(1, len(v) + 1))
    assert (np.diff(v.ts_us) >= 0).all()
    assert np.array_equal((v.ts_us - start) // US_PER_HOUR, v.hour)
    late = v.ts_us[v.hour == 23]
    assert late.size > 0 and (late < start + 23 * US_PER_HOUR + 59 * 60 * 1_000_000).all()


def test_visits_only_in_open_hours_and_closed_day() -> None:
    host = make_host(["standard", "express"], hours=[(9, 21), (6, 24)])
    r = run_sales(host, PLAIN_DAY)
    stores = host._master.stores
    opened = stores.open_hour[r.visits.store_idx]
    closed = stores.close_hour[r.visits.store_idx]
    assert ((r.visits.hour >= opened) & (r.visits.hour < closed)).all()
    assert r.visits.visits_per_hour.shape == (2, 24)
    assert np.array_equal(np.diff(r.visits.store_offsets),
                          r.visits.visits_per_hour.sum(axis=1))
    xmas = run_sales(host, date(2024, 12, 25))
    assert len(xmas.visits) == 0 and xmas.receipts.num_rows == 0
    assert xmas.visits.visits_per_hour.shape == (2, 24)


def test_customers_from_pool_and_empty_pool() -> None:
    lam = np.full(24, 100.0)
    v = _one_store_visits(lam, np.ones(24, dtype=bool))
    assert ((v.customer_id >= 1) & (v.customer_id <= 400)).all()
    # Class 0 (customers 1..200) has weight .6.
    assert abs((v.customer_id <= 200).mean() - 0.6) < 0.03
    seg = make_customers().segment_code
    assert np.array_equal(v.segment_code, seg[v.customer_id - 1])
    e = _one_store_visits(lam, np.ones(24, dtype=bool), empty=(0,))
    u1 = rng.stream(3, "visits.customer", PLAIN_DAY, 1).random(len(e))
    assert np.array_equal(e.customer_id, 1 + np.floor(u1 * 400).astype(np.int64))


def test_behaviour_follows_segment() -> None:
    lam = np.full(24, 500.0)
    v = _one_store_visits(lam, np.ones(24, dtype=bool))
    conv = v.segment_code == domain.SHOPPER_SEGMENTS.index("CONVENIENCE_FOCUSED")
    share_quick = (v.behaviour_code[conv] == 0).mean()
    assert abs(share_quick - 0.50) < 0.05


# --- §5.2–5.4 baskets --------------------------------------------------------------------------


def test_mean_units_per_ticket_standard_store() -> None:
    host = make_host(["standard"], customers_per_day=2600, copies=3)
    r = run_sales(host, PLAIN_DAY)
    assert r.receipts.num_rows >= 2000
    mean_units = pc.mean(r.receipts.column("ItemCount")).as_py()
    assert abs(mean_units / 8.2 - 1) < 0.07


def test_express_line_cap_and_merged_lines_unique() -> None:
    host = make_host(["express", "hypermarket"], customers_per_day=600)
    r = run_sales(host, PLAIN_DAY)
    lines, visits = r.lines, r.visits
    per_visit = np.bincount(lines.visit_index, minlength=len(visits))
    express = visits.store_idx == 0
    assert per_visit[express].max() <= rm.EXPRESS_MAX_LINES
    assert per_visit[~express].max() > rm.EXPRESS_MAX_LINES
    key = lines.visit_index * 10_000 + lines.product_idx
    assert np.unique(key).size == key.size
    # Lines numbered 1..n per visit in candidate order.
    starts = np.r_[True, lines.visit_index[1:] != lines.visit_index[:-1]]
    assert (lines.line_num[starts] == 1).all()
    assert (np.diff(lines.line_num)[~starts[1:]] == 1).all()
    assert (lines.quantity > 0).all()


def test_merge_keeps_first_position_and_sums() -> None:
    visit = np.array([0, 0, 0, 0, 1, 1])
    product = np.array([5, 3, 5, 7, 3, 3])
    qty = np.array([1, 2, 3, 1, 1, 2])
    v, num, p, q = rm.merge_basket_lines(visit, product, qty, 10)
    assert v.tolist() == [0, 0, 0, 1]
    assert num.tolist() == [1, 2, 3, 1]
    assert p.tolist() == [5, 3, 7, 3]
    assert q.tolist() == [4, 2, 1, 3]


def test_price_bands_and_fallbacks() -> None:
    products = make_products(copies=2)
    avail = np.arange(products.product_id.size)
    mult = np.ones(avail.size)
    t = rm.basket_day_tables(avail, products.category_code, products.sale_price_cents,
                             products.popularity, mult, rm.basket_mu(0.5), False)
    food = avail[products.category_code == CAT["food"]]
    by_price = food[np.lexsort((food, products.sale_price_cents[food]))]
    n = by_price.size
    g = CAT["food"] * 4
    assert t.candidates[g + 0].tolist() == by_price[: (7 * n + 9) // 10].tolist()  # budget
    assert t.candidates[g + 1].tolist() == by_price.tolist()  # convenience
    assert t.candidates[g + 2].tolist() == by_price[7 * n // 10:].tolist()  # quality
    assert t.candidates[g + 3].tolist() == by_price[n // 2:].tolist()  # brand loyal
    other = avail[np.isin(products.category_code, [CAT["other"], CAT["home_garden"]])]
    assert sorted(t.candidates[CAT["other"] * 4 + 1].tolist()) == sorted(other.tolist())
    assert t.cum[g][-1] == 1.0
    # Empty category → all available products; nothing available → lines dropped.
    no_food = avail[products.category_code != CAT["food"]]
    t2 = rm.basket_day_tables(no_food, products.category_code, products.sale_price_cents,
                              products.popularity, mult, rm.basket_mu(0.5), False)
    assert sorted(t2.candidates[g].tolist()) == sorted(no_food.tolist())
    t3 = rm.basket_day_tables(avail[:0], products.category_code, products.sale_price_cents,
                              products.popularity, mult, rm.basket_mu(0.5), False)
    gens = [rng.stream(1, s, PLAIN_DAY, 1) for s in "abcde"]
    out = rm.draw_store_baskets(*gens, behaviour=np.zeros(5, np.int8),
                                segment=np.zeros(5, np.int8), format_code=2, tables=t3)
    assert all(a.size == 0 for a in out)


def test_drawn_products_respect_band_and_launch() -> None:
    host = make_host(["standard"], customers_per_day=800, unlaunched=5)
    r = run_sales(host, PLAIN_DAY)
    products = host._master.products
    assert (products.launch_ordinal[r.lines.product_idx] <= PLAIN_DAY.toordinal()).all()
    budget = r.visits.segment_code[r.lines.visit_index] == 0
    cat = products.category_code[r.lines.product_idx]
    food = r.ctx.available[products.category_code[r.ctx.available] == CAT["food"]]
    by_price = food[np.lexsort((food, products.sale_price_cents[food]))]
    band = set(by_price[: (7 * by_price.size + 9) // 10].tolist())
    sel = budget & (cat == CAT["food"])
    assert sel.sum() > 50 and set(r.lines.product_idx[sel].tolist()) <= band


# --- §5.6 overlay ------------------------------------------------------------------------------


def test_keyword_groups_whole_words() -> None:
    products = make_products()
    kw = product_keyword_groups(products)
    assert kw.shape == (products.product_id.size, len(KEYWORD_GROUPS))
    names = list(products.item_name)

    def groups(name: str) -> set[str]:
        row = kw[names.index(name)]
        return {KEYWORD_GROUPS[g][0] for g in np.flatnonzero(row)}

    assert groups("Roast Turkey Breast") == {"thanksgiving_food", "december_food"}
    assert groups("Pineapple Chunks") == set()  # "pie" is not a whole word here
    assert groups("Green Bean Casserole") == {"thanksgiving_food"}
    assert groups("Hot Dog Buns") == {"grilling"}
    assert groups("Toy Robot") == {"toy"}
    assert groups("Toys Bundle") == set()


def test_product_multiplier_windows() -> None:
    products = make_products()
    kw = product_keyword_groups(products)
    names = list(products.item_name)
    m_tg = product_multiplier(THANKSGIVING, products.category_code, kw)
    assert m_tg[names.index("Roast Turkey Breast")] == 3.5
    assert m_tg[names.index("Pasta")] == 1.3
    assert m_tg[names.index("Headphones")] == 1.0
    m_bf = product_multiplier(calendar.black_friday(2024), products.category_code, kw)
    assert m_bf[names.index("Headphones")] == 5.0
    assert m_bf[names.index("Jacket")] == 2.3
    assert m_bf[names.index("Rake")] == 2.2
    assert m_bf[names.index("Toys Bundle")] == 1.0
    m_dec = product_multiplier(date(2024, 12, 15), products.category_code, kw)
    assert m_dec[names.index("Eggnog")] == 1.8 and m_dec[names.index("Socks")] == 1.6
    m_jul = product_multiplier(date(2024, 7, 5), products.category_code, kw)
    assert m_jul[names.index("Charcoal Briquettes")] == 2.5
    assert (product_multiplier(PLAIN_DAY, products.category_code, kw) == 1.0).all()


def test_overlay_bumps_and_extra_lines() -> None:
    mult = np.array([3.5, 1.8, 1.3, 1.0])
    visit = np.array([0, 0, 0, 0, 1, 1])
    product = np.array([0, 1, 2, 3, -1, 0])
    qty = np.array([3, 3, 3, 3, 1, 2])
    gen = rng.stream(5, "holiday.overlay", THANKSGIVING, 1)
    b = rng.stream(5, "holiday.overlay", THANKSGIVING, 1).integers(0, 2, 6)
    eligible = np.array([0, 1, 2])
    v, p, q = apply_holiday_overlay(gen, visit, product, qty, mult, eligible, 2, True)
    bumped = np.array([3 + 1 + b[0], 3 + b[1], 3, 3])
    assert q[:4].tolist() == bumped.tolist()
    n_extra0 = int(bumped.sum()) // 10
    assert (v == 0).sum() == 4 + n_extra0
    assert set(p[4:4 + n_extra0].tolist()) <= {0, 1, 2} and (q[4:4 + n_extra0] == 1).all()
    assert p[v == 1].tolist() == [0]  # the dropped line is gone; 3 units → no extra line
    v2, _, q2 = apply_holiday_overlay(rng.stream(5, "x", THANKSGIVING, 1), visit, product,
                                      qty, mult, eligible, 2, False)
    assert v2.size == 5 and q2.sum() <= qty[product >= 0].sum() + 4


# --- §5.5, §6 fulfilment and money -------------------------------------------------------------


def test_sale_requests_align_with_lines() -> None:
    host = make_host(["standard", "neighborhood"], customers_per_day=100)
    r = run_sales(host, PLAIN_DAY)
    req, lines, visits = r.requests, r.lines, r.visits
    assert len(req) == len(lines)
    assert np.array_equal(req.delta, -lines.quantity)
    assert np.array_equal(req.ts_us, visits.ts_us[lines.visit_index])
    assert (req.txn_type == domain.TXN_TYPE_RANK["SALE"]).all()
    i = int(np.flatnonzero(visits.store_idx[lines.visit_index] == 1)[0])
    seq = visits.visit_seq[lines.visit_index[i]]
    assert req.source[i].as_py() == f"RCP20240313{2:05d}{seq:06d}"


def test_fulfilment_drops_and_renumbers() -> None:
    host = make_host(["standard"], customers_per_day=200)
    r = run_sales(host, PLAIN_DAY, stock=1)
    assert (r.sale_lines.quantity == 1).all()
    r0 = run_sales(host, PLAIN_DAY)
    ctx, visits, lines = r0.ctx, r0.visits, r0.lines
    filled = lines.quantity.copy()
    filled[::3] = 0  # drop every third candidate line
    sl = host._finalize_sale_lines(ctx, visits, lines, -filled)
    kept = filled > 0
    assert np.array_equal(sl.product_idx, lines.product_idx[kept])
    starts = np.r_[True, sl.visit_index[1:] != sl.visit_index[:-1]]
    assert (sl.line_num[starts] == 1).all() and (np.diff(sl.line_num)[~starts[1:]] == 1).all()
    assert np.array_equal(sl.receipt_visit, np.unique(lines.visit_index[kept]))
    assert np.array_equal(np.diff(sl.line_offsets), np.bincount(sl.receipt_index))


def test_money_identities_and_schema() -> None:
    host = make_host(["standard", "superstore"], customers_per_day=300)
    r = run_sales(host, date(2024, 11, 15))
    rec, lines = r.receipts, r.receipt_lines
    assert rec.column_names == list(GENERATOR_NAMES["receipts"])
    assert lines.column_names == list(GENERATOR_NAMES["receipt_lines"])
    col = {k: lines.column(k).to_numpy() for k in
           ("Qty", "UnitCents", "DiscountCents", "ExtCents", "TaxCents", "ProductID")}
    assert (col["ExtCents"] == col["UnitCents"] * col["Qty"] - col["DiscountCents"]).all()
    assert ((col["DiscountCents"] >= 0) & (col["ExtCents"] >= 0)).all()
    factor = host._master.products.tax_factor[col["ProductID"] - 1]
    assert (col["TaxCents"] == (col["ExtCents"] * 82_500 * factor + 50_000_000)
            // 100_000_000).all()
    assert (col["TaxCents"] == money.line_tax(col["ExtCents"], 82_500, factor)).all()
    idx = np.repeat(np.arange(rec.num_rows), rec.column("LineCount").to_numpy())
    h = {k: rec.column(k).to_numpy() for k in (
        "GrossSubtotalCents", "DiscountCents", "SubtotalCents", "TaxCents", "TotalCents",
        "ItemCount")}
    assert np.array_equal(np.bincount(idx, col["UnitCents"] * col["Qty"]), h["GrossSubtotalCents"])
    assert np.array_equal(np.bincount(idx, col["DiscountCents"]), h["DiscountCents"])
    assert np.array_equal(np.bincount(idx, col["ExtCents"]), h["SubtotalCents"])
    assert np.array_equal(np.bincount(idx, col["TaxCents"]), h["TaxCents"])
    assert np.array_equal(np.bincount(idx, col["Qty"]), h["ItemCount"])
    assert (h["TotalCents"] == h["SubtotalCents"] + h["TaxCents"]).all()
    assert (h["GrossSubtotalCents"] - h["DiscountCents"] == h["SubtotalCents"]).all()
    assert rec.column("Total").cast("double").to_numpy().tolist() == pytest.approx(
        (h["TotalCents"] / 100).tolist())
    assert money.decimal_to_cents(rec.column("Total")).tolist() == h["TotalCents"].tolist()
    promo = lines.column("PromoCode").is_null().to_numpy(zero_copy_only=False)
    assert np.array_equal(promo, col["DiscountCents"] == 0)
    assert set(pc.unique(rec.column("ReceiptType")).to_pylist()) == {"SALE"}
    assert rec.column("ReturnForReceiptId").null_count == rec.num_rows
    assert set(pc.unique(rec.column("TenderType")).to_pylist()) <= set(domain.IN_STORE_TENDERS)
    assert pc.all(pc.equal(rec.column("ReceiptId"), pc.unique(rec.column("ReceiptId"))))


def test_determinism() -> None:
    a = run_sales(make_host(["standard", "express"], seed=11), date(2024, 11, 29))
    b = run_sales(make_host(["standard", "express"], seed=11), date(2024, 11, 29))
    c = run_sales(make_host(["standard", "express"], seed=12), date(2024, 11, 29))
    for name in ("receipts", "receipt_lines", "promotions", "promo_lines", "payments"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert not a.receipts.equals(c.receipts)


def test_seasonal_mixin_methods_delegate() -> None:
    host = make_host(["standard"])
    products = host._master.products
    assert host._thanksgiving_date(2024) == THANKSGIVING
    ids = np.array([1, 3, 5])
    m = product_multiplier(THANKSGIVING, products.category_code, host._keyword_groups)
    assert np.array_equal(host._get_product_multiplier(THANKSGIVING, ids), m[ids - 1])
    basket = HolidayBasket(store_id=4, n_visits=2, visit_index=np.array([0, 0, 1]),
                           product_idx=np.array([0, 2, 4]), quantity=np.array([5, 4, 3]))
    got = host._apply_holiday_overlay_to_basket(THANKSGIVING, basket)
    eligible = np.flatnonzero(m > 1.0)
    want = apply_holiday_overlay(rng.stream(host._seed, "holiday.overlay", THANKSGIVING, 4),
                                 basket.visit_index, basket.product_idx, basket.quantity, m,
                                 eligible, 2, True)
    assert got.store_id == 4 and got.n_visits == 2
    for a, b in zip((got.visit_index, got.product_idx, got.quantity), want, strict=True):
        assert np.array_equal(a, b)


def test_mixin_method_names_do_not_collide() -> None:
    seen: dict[str, str] = {}
    for cls in (ReceiptsMixin, PromotionsMixin, PaymentsMixin, SeasonalMixin):
        for name, value in vars(cls).items():
            if callable(value) and not name.startswith("__"):
                assert name not in seen, f"{name} in {seen.get(name)} and {cls.__name__}"
                seen[name] = cls.__name__
