"""Tests for online orders (behaviour.md §11): candidates, requests and finished batches."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from online_fixtures import (
    GEO_TAX_PPM,
    N_PRODUCTS,
    PRICE_CENTS,
    STORE_DC,
    STORE_TAX_PPM,
    TAX_FACTOR,
    Host,
    customers,
    day_context,
)
from retail_datagen import domain, money
from retail_datagen.db.fact_schema import GENERATOR_NAMES
from retail_datagen.db.schema import arrow_schema
from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators.online_orders_mixin import (
    BOPIS,
    SHIP_FROM_DC,
    OnlineCandidates,
    generate_online_candidates,
)
from retail_datagen.generators.fact_generators.utils_mixin import US_PER_DAY, day_start_us
from retail_datagen.rng import stream

DAY = date(2024, 11, 27)
XMAS = date(2024, 12, 25)
PROMO_BP = {"PROMO5": 500, "PROMO10": 1_000, "PROMO20": 2_000}


def _np(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy(zero_copy_only=False)


def _requested(cand: OnlineCandidates) -> tuple[np.ndarray, np.ndarray]:
    return -cand.store_events.delta, -cand.dc_events.delta


def fills(cand: OnlineCandidates, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Simulated min-rule results: full, partial (a mix of full, reduced and 0) or zero."""
    store, dc = _requested(cand)
    if kind == "full":
        return store, dc
    if kind == "zero":
        return np.zeros_like(store), np.zeros_like(dc)

    def mix(req: np.ndarray) -> np.ndarray:
        pattern = np.arange(req.shape[0]) % 3
        return np.select([pattern == 0, pattern == 1], [req, req // 2], 0)

    return mix(store), mix(dc)


@pytest.fixture(scope="module")
def host() -> Host:
    return Host(orders_per_day=400)


@pytest.fixture(scope="module")
def cand(host: Host) -> OnlineCandidates:
    return host._generate_online_orders(day_context(DAY))


@pytest.fixture(scope="module")
def full(host: Host, cand: OnlineCandidates) -> tuple[pa.Table, pa.Table, pa.Table]:
    return host._finalize_online_orders(day_context(DAY), cand, *fills(cand, "full"))


@pytest.fixture(scope="module")
def partial(host: Host, cand: OnlineCandidates) -> tuple[pa.Table, pa.Table, pa.Table]:
    return host._finalize_online_orders(day_context(DAY), cand, *fills(cand, "partial"))


# --- candidates and requests --------------------------------------------------------------------


def test_candidates_are_deterministic(host: Host, cand: OnlineCandidates) -> None:
    again = host._generate_online_orders(day_context(DAY))
    assert again.order_id.equals(cand.order_id)
    for name in ("created_us", "customer_id", "mode_code", "cancelled", "picked_us",
                 "line_order", "line_product_idx", "line_qty", "line_promo"):
        np.testing.assert_array_equal(getattr(again, name), getattr(cand, name))
    assert again.store_events.source.equals(cand.store_events.source)
    other = Host(seed=1, orders_per_day=400)._generate_online_orders(day_context(DAY))
    assert not np.array_equal(other.created_us[:5], cand.created_us[:5])


def test_order_ids_follow_created_time(cand: OnlineCandidates) -> None:
    n = len(cand)
    assert n > 300
    ids = cand.order_id.to_pylist()
    assert len(set(ids)) == n
    assert all(i.startswith("ONL20241127") and len(i) == 22 for i in ids)
    # ONL + YYYYMMDD + dc_id(4) + seq(7): seq runs 1.. within each DC unit by created time.
    assert [int(i[11:15]) for i in ids] == cand.unit_id.tolist()
    assert [int(i[15:]) for i in ids] == cand.seq.tolist()
    assert set(cand.unit_id.tolist()) == {1, 2}
    for unit in (1, 2):
        mine = np.flatnonzero(cand.unit_id == unit)
        by_seq = mine[np.argsort(cand.seq[mine])]
        np.testing.assert_array_equal(cand.seq[by_seq], np.arange(1, mine.size + 1))
        assert (np.diff(cand.created_us[by_seq]) >= 0).all()
    offset = cand.created_us - day_start_us(DAY)
    assert offset.min() >= 0 and offset.max() < 86_340_000_000


def test_lines_merge_duplicates_and_follow_the_draw_order(cand: OnlineCandidates) -> None:
    key = cand.line_order * N_PRODUCTS + cand.line_product_idx
    assert np.unique(key).shape[0] == key.shape[0]
    assert (np.diff(cand.line_order) >= 0).all()
    per_order = np.bincount(cand.line_order, minlength=len(cand))
    assert per_order.min() >= 1 and per_order.max() <= 8
    assert cand.line_qty.min() >= 1
    assert set(np.unique(cand.line_promo)) <= {-1, 0, 1, 2}


def test_requests_one_per_live_line_at_the_right_node(cand: OnlineCandidates) -> None:
    cancelled = cand.cancelled[cand.line_order]
    lines = np.concatenate([cand.store_event_line, cand.dc_event_line])
    np.testing.assert_array_equal(np.sort(lines), np.flatnonzero(~cancelled))
    cust_store = customers().primary_store_id[cand.customer_id - 1]
    for events, line, to_dc in ((cand.store_events, cand.store_event_line, False),
                                (cand.dc_events, cand.dc_event_line, True)):
        order = cand.line_order[line]
        assert ((cand.mode_code[order] == SHIP_FROM_DC) == to_dc).all()
        node = STORE_DC[cust_store[order] - 1] if to_dc else cust_store[order]
        np.testing.assert_array_equal(events.node_idx, node - 1)
        np.testing.assert_array_equal(events.product_idx, cand.line_product_idx[line])
        np.testing.assert_array_equal(events.delta, -cand.line_qty[line])
        np.testing.assert_array_equal(events.ts_us, cand.created_us[order])
        assert (events.txn_type == domain.TXN_TYPE_RANK["SALE"]).all()
        assert events.source.equals(cand.order_id.take(pa.array(order)))


def test_exactly_one_node_per_order(cand: OnlineCandidates) -> None:
    dc_mode = cand.mode_code == SHIP_FROM_DC
    assert ((cand.store_id > 0) != (cand.dc_id > 0)).all()
    assert (cand.dc_id[dc_mode] > 0).all() and (cand.store_id[~dc_mode] > 0).all()
    assert set(np.unique(cand.mode_code)) == {0, 1, 2}


def test_dec25_has_no_store_modes() -> None:
    host = Host(orders_per_day=300)
    ctx = day_context(XMAS)
    cand = host._generate_online_orders(ctx)
    assert len(cand) > 0
    assert (cand.mode_code == SHIP_FROM_DC).all()
    assert len(cand.store_events) == 0 and len(cand.dc_events) > 0
    headers, _, _ = host._finalize_online_orders(ctx, cand, *fills(cand, "full"))
    assert set(headers.column("FulfillmentMode").to_pylist()) == {"SHIP_FROM_DC"}
    assert headers.column("StoreID").null_count == headers.num_rows


def test_no_available_products_writes_nothing() -> None:
    host = Host(orders_per_day=50)
    ctx = day_context(DAY, available=np.zeros(0, dtype=np.int64))
    cand = host._generate_online_orders(ctx)
    assert len(cand) > 0 and cand.line_qty.shape[0] == 0
    headers, lines, payments = host._finalize_online_orders(ctx, cand, *fills(cand, "full"))
    assert headers.num_rows == lines.num_rows == payments.num_rows == 0
    # Only the available products are ever drawn.
    only = host._generate_online_orders(day_context(DAY, available=np.array([2, 5])))
    assert set(np.unique(only.line_product_idx)) <= {2, 5}


# --- finished batches ---------------------------------------------------------------------------


def test_columns_match_the_contract(full: tuple[pa.Table, pa.Table, pa.Table]) -> None:
    headers, lines, payments = full
    for logical, batch in (("online_orders", headers), ("online_order_lines", lines),
                           ("fact_payments", payments)):
        assert batch.column_names == list(GENERATOR_NAMES[logical])
        renamed = batch.rename_columns([GENERATOR_NAMES[logical][c] for c in batch.column_names])
        renamed.cast(arrow_schema(logical))


def _header_sums(lines: pa.Table) -> pa.Table:
    return lines.group_by("OrderId").aggregate([
        ("Qty", "sum"), ("Qty", "count"), ("UnitCents", "sum"), ("DiscountCents", "sum"),
        ("ExtCents", "sum"), ("TaxCents", "sum"),
    ])


@pytest.mark.parametrize("which", ["full", "partial"])
def test_header_is_the_sum_of_its_lines(which: str, full, partial) -> None:
    headers, lines, _ = full if which == "full" else partial
    gross = pa.array(_np(lines, "UnitCents") * _np(lines, "Qty"))
    sums = lines.append_column("Gross", gross).group_by("OrderId").aggregate([
        ("Qty", "sum"), ("Qty", "count"), ("Gross", "sum"), ("DiscountCents", "sum"),
        ("ExtCents", "sum"), ("TaxCents", "sum"),
    ])
    joined = headers.join(sums, "OrderId").sort_by("OrderId")
    assert joined.num_rows == headers.num_rows
    for header_col, line_col in (("ItemCount", "Qty_sum"), ("LineCount", "Qty_count"),
                                 ("GrossSubtotalCents", "Gross_sum"),
                                 ("DiscountCents", "DiscountCents_sum"),
                                 ("SubtotalCents", "ExtCents_sum"), ("TaxCents", "TaxCents_sum")):
        np.testing.assert_array_equal(_np(joined, header_col), _np(joined, line_col))
    np.testing.assert_array_equal(_np(headers, "TotalCents"),
                                  _np(headers, "SubtotalCents") + _np(headers, "TaxCents"))
    for amount, cents in (("Total", "TotalCents"), ("Tax", "TaxCents")):
        np.testing.assert_array_equal(money.decimal_to_cents(headers.column(amount)),
                                      _np(headers, cents))


@pytest.mark.parametrize("which", ["full", "partial"])
def test_line_money_discount_and_tax(which: str, full, partial, cand) -> None:
    headers, lines, _ = full if which == "full" else partial
    product = _np(lines, "ProductID") - 1
    qty = _np(lines, "Qty")
    unit = _np(lines, "UnitCents")
    np.testing.assert_array_equal(unit, PRICE_CENTS[product])
    codes = lines.column("PromoCode").to_pylist()
    discount = _np(lines, "DiscountCents")
    assert ((discount == 0) == np.array([c is None for c in codes])).all()
    bp = np.array([PROMO_BP.get(c, 0) for c in codes])
    has = discount > 0
    np.testing.assert_array_equal(discount[has], (unit * qty * bp + 5_000)[has] // 10_000)
    ext = _np(lines, "ExtCents")
    np.testing.assert_array_equal(ext, unit * qty - discount)
    # Tax: BOPIS at the store's rate, ship modes at the customer's home rate.
    info = headers.select(["OrderId", "FulfillmentMode", "StoreID", "CustomerID"])
    joined = lines.join(info, "OrderId")
    mode = joined.column("FulfillmentMode").to_pylist()
    store = joined.column("StoreID").fill_null(1).to_numpy()
    cust = _np(joined, "CustomerID")
    ppm = np.where(np.array(mode) == "BOPIS", STORE_TAX_PPM[store - 1],
                   customers().home_tax_ppm[cust - 1])
    assert set(GEO_TAX_PPM) >= set(customers().home_tax_ppm)
    expected = money.line_tax(_np(joined, "ExtCents"), ppm,
                              TAX_FACTOR[_np(joined, "ProductID") - 1])
    np.testing.assert_array_equal(_np(joined, "TaxCents"), expected)
    # Every drawn promo with a positive discount keeps its code (full fill: none lost).
    if which == "full":
        assert has.sum() > 0


def test_lifecycle_order(full) -> None:
    headers, lines, _ = full
    ts = {c: lines.column(c).cast(pa.int64()).to_numpy(zero_copy_only=False)
          for c in ("EventTS", "PickedTS", "ShippedTS", "DeliveredTS")}
    status = np.array(lines.column("FulfillmentStatus").to_pylist())
    ship = status == "DELIVERED"
    bopis = status == "PICKED_UP"
    assert ship.any() and bopis.any()
    assert (ts["EventTS"][ship] < ts["PickedTS"][ship]).all()
    assert (ts["PickedTS"][ship] <= ts["ShippedTS"][ship]).all()
    assert (ts["ShippedTS"][ship] <= ts["DeliveredTS"][ship]).all()
    assert lines.column("ShippedTS").filter(pa.array(bopis)).null_count == bopis.sum()
    assert (ts["EventTS"][bopis] < ts["PickedTS"][bopis]).all()
    assert (ts["PickedTS"][bopis] <= ts["DeliveredTS"][bopis]).all()
    # BOPIS pick-up at least 4 h after the order, picked on a whole hour offset.
    assert (ts["DeliveredTS"][bopis] - ts["EventTS"][bopis] >= 4 * 3_600_000_000).all()
    assert ((ts["PickedTS"][bopis] - ts["EventTS"][bopis]) % 3_600_000_000 == 0).all()
    # Completed orders: completed_ts = max(delivered_ts) of their lines.
    done = headers.filter(pc.equal(headers.column("OrderStatus"), "COMPLETED"))
    latest = lines.group_by("OrderId").aggregate([("DeliveredTS", "max")])
    joined = done.join(latest, "OrderId")
    assert joined.column("CompletedTS").equals(joined.column("DeliveredTS_max"))
    assert done.column("CancelledTS").null_count == done.num_rows
    assert (_np(headers, "EventTS").astype("datetime64[D]") == np.datetime64(DAY)).all()


def test_cancelled_orders(full, cand) -> None:
    headers, lines, payments = full
    cancelled = headers.filter(pc.equal(headers.column("OrderStatus"), "CANCELLED"))
    assert cancelled.num_rows == int(cand.cancelled.sum()) > 0
    ids = cancelled.column("OrderId")
    c_lines = lines.filter(pc.is_in(lines.column("OrderId"), value_set=ids))
    assert set(c_lines.column("FulfillmentStatus").to_pylist()) == {"CANCELLED"}
    for col in ("PickedTS", "ShippedTS", "DeliveredTS"):
        assert c_lines.column(col).null_count == c_lines.num_rows
    assert cancelled.column("CompletedTS").null_count == cancelled.num_rows
    gap = (cancelled.column("CancelledTS").cast(pa.int64()).to_numpy()
           - cancelled.column("EventTS").cast(pa.int64()).to_numpy())
    assert (gap >= 5 * 60_000_000).all() and (gap <= 60 * 60_000_000).all()
    assert (gap % 1_000_000 == 0).all()
    # Amounts from the requested quantities; no stock request; no payment.
    idx = np.flatnonzero(cand.cancelled)
    requested = np.bincount(cand.line_order, weights=cand.line_qty, minlength=len(cand))
    by_id = dict(zip(cand.order_id.take(pa.array(idx)).to_pylist(), requested[idx], strict=True))
    for oid, items in zip(ids.to_pylist(), _np(cancelled, "ItemCount"), strict=True):
        assert by_id[oid] == items
    sources = set(cand.store_events.source.to_pylist()) | set(cand.dc_events.source.to_pylist())
    assert not sources & set(ids.to_pylist())
    assert not pc.any(pc.is_in(payments.column("OrderId"), value_set=ids)).as_py()
    assert set(cancelled.column("TenderType").to_pylist()) <= set(domain.ONLINE_TENDERS)


def test_payments_settle_every_completed_order(full) -> None:
    headers, _, payments = full
    assert payments.column("ReceiptId").null_count == payments.num_rows
    assert payments.column("StoreID").null_count == payments.num_rows
    approved = payments.filter(pc.equal(payments.column("Status"), "APPROVED"))
    done = headers.filter(pc.equal(headers.column("OrderStatus"), "COMPLETED"))
    assert approved.num_rows == done.num_rows
    joined = done.join(approved.select(["OrderId", "AmountCents", "TenderType", "EventTS"])
                       .rename_columns(["OrderId", "PaidCents", "PaidMethod", "PaidTS"]),
                       "OrderId")
    assert joined.num_rows == done.num_rows
    np.testing.assert_array_equal(_np(joined, "PaidCents"), _np(joined, "TotalCents"))
    assert joined.column("PaidMethod").equals(joined.column("TenderType"))
    paid_ts = joined.column("PaidTS").cast(pa.int64()).to_numpy()
    order_ts = joined.column("EventTS").cast(pa.int64()).to_numpy()
    assert (paid_ts > order_ts).all()
    assert (paid_ts < day_start_us(DAY) + US_PER_DAY).all()


def test_partial_fills_keep_filled_quantities_and_renumber(partial, cand) -> None:
    headers, lines, _ = partial
    store_fill, dc_fill = fills(cand, "partial")
    filled = np.where(cand.cancelled[cand.line_order], cand.line_qty, 0)
    filled[cand.store_event_line] = store_fill
    filled[cand.dc_event_line] = dc_fill
    kept = filled > 0
    assert lines.num_rows == int(kept.sum())
    # Every line keeps its filled quantity, and line numbers run 1..line_count per order.
    key = zip(cand.order_id.take(pa.array(cand.line_order[kept])).to_pylist(),
              (cand.line_product_idx[kept] + 1).tolist(), strict=True)
    expect = dict(zip(key, filled[kept].tolist(), strict=True))
    got = dict(zip(zip(lines.column("OrderId").to_pylist(), _np(lines, "ProductID").tolist(),
                       strict=True), _np(lines, "Qty").tolist(), strict=True))
    assert got == expect
    nums = lines.group_by("OrderId").aggregate([("LineNumber", "max"), ("LineNumber", "count"),
                                                ("LineNumber", "min")])
    np.testing.assert_array_equal(_np(nums, "LineNumber_max"), _np(nums, "LineNumber_count"))
    assert (_np(nums, "LineNumber_min") == 1).all()
    # Orders whose lines all filled 0 are not written and leave gaps in the ids.
    written = np.bincount(cand.line_order[kept], minlength=len(cand)) > 0
    assert headers.num_rows == int(written.sum()) < len(cand)
    ids = headers.column("OrderId").to_pylist()
    for unit in ("0001", "0002"):
        seqs = np.sort([int(i[-7:]) for i in ids if i[11:15] == unit])
        assert seqs.max() - seqs.min() + 1 > seqs.shape[0]
    assert headers.column("OrderId").to_pylist() == sorted(headers.column("OrderId").to_pylist())


def test_zero_fills_leave_only_cancelled_orders(host: Host, cand: OnlineCandidates) -> None:
    headers, lines, payments = host._finalize_online_orders(day_context(DAY), cand,
                                                            *fills(cand, "zero"))
    assert set(headers.column("OrderStatus").to_pylist()) == {"CANCELLED"}
    assert set(lines.column("FulfillmentStatus").to_pylist()) == {"CANCELLED"}
    assert payments.num_rows == 0


def test_header_nodes_and_modes(full) -> None:
    headers, lines, _ = full
    mode = np.array(headers.column("FulfillmentMode").to_pylist())
    store_set = headers.column("StoreID").is_valid().to_numpy(zero_copy_only=False)
    dc_set = headers.column("DCID").is_valid().to_numpy(zero_copy_only=False)
    assert (store_set != dc_set).all()
    np.testing.assert_array_equal(dc_set, mode == "SHIP_FROM_DC")
    status = dict(zip(headers.column("OrderId").to_pylist(), mode, strict=True))
    line_mode = np.array([status[o] for o in lines.column("OrderId").to_pylist()])
    line_status = np.array(lines.column("FulfillmentStatus").to_pylist())
    live = line_status != "CANCELLED"
    np.testing.assert_array_equal(line_status[live] == "PICKED_UP",
                                  line_mode[live] == domain.FULFILLMENT_MODES[BOPIS])


def test_finalize_is_deterministic(host: Host, cand: OnlineCandidates, full) -> None:
    again = host._finalize_online_orders(day_context(DAY), cand, *fills(cand, "full"))
    for a, b in zip(again, full, strict=True):
        assert a.equals(b)


def test_fills_must_match_the_events(host: Host, cand: OnlineCandidates) -> None:
    store, dc = fills(cand, "full")
    with pytest.raises(GenerationError):
        host._finalize_online_orders(day_context(DAY), cand, store[:-1], dc)
    with pytest.raises(GenerationError):
        host._finalize_online_orders(day_context(DAY), cand, store + 1, dc)


def test_pure_function_takes_an_explicit_stream() -> None:
    cust = customers()
    members = cust.customer_id[STORE_DC[cust.primary_store_id - 1] == 2]
    kwargs = dict(unit_id=2, orders_per_day=60, seasonal=1.0, unit_customers=members,
                  total_customers=len(cust.customer_id),
                  customer_primary_store=cust.primary_store_id,
                  store_dc_id=STORE_DC, popularity=np.ones(N_PRODUCTS),
                  available=np.arange(N_PRODUCTS))
    a = generate_online_candidates(stream(3, "online.orders", DAY, 2), DAY, **kwargs)
    b = generate_online_candidates(stream(3, "online.orders", DAY, 2), DAY, **kwargs)
    np.testing.assert_array_equal(a.created_us, b.created_us)
    np.testing.assert_array_equal(a.line_qty, b.line_qty)
    # Customers come only from the unit's list; its count ~ Poisson(60 × c_u / C).
    assert len(a) > 0 and np.isin(a.customer_id, members).all()
    rng = stream(3, "online.orders", DAY, 2)
    assert len(a) == int(rng.poisson(np.array([60.0 * len(members) / len(cust.customer_id)]))[0])


def test_unit_without_customers_draws_nothing() -> None:
    cust = customers()
    rng = stream(3, "online.orders", DAY, 3)
    state = rng.bit_generator.state
    cand = generate_online_candidates(
        rng, DAY, unit_id=3, orders_per_day=60, seasonal=1.0,
        unit_customers=np.zeros(0, np.int64), total_customers=len(cust.customer_id),
        customer_primary_store=cust.primary_store_id, store_dc_id=STORE_DC,
        popularity=np.ones(N_PRODUCTS), available=np.arange(N_PRODUCTS))
    assert len(cand) == 0 and len(cand.store_events) == 0 and len(cand.dc_events) == 0
    assert rng.bit_generator.state == state  # nothing was drawn
