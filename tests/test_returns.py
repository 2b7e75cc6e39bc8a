"""Tests for returns (behaviour.md §12, fact-tables.md §19): scheduling and the return day."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from online_fixtures import (
    N_CUSTOMERS,
    STORE_CLOSE,
    STORE_OPEN,
    Host,
    day_context,
    products,
    sale_batch,
)
from retail_datagen import domain, money
from retail_datagen.db.fact_schema import GENERATOR_NAMES
from retail_datagen.db.schema import arrow_schema, carried_schema
from retail_datagen.generators.fact_generators.payments_mixin import PROCESSING_MS
from retail_datagen.generators.fact_generators.returns_mixin import (
    DISPOSITIONS,
    ReturnsBatch,
    draw_return_schedule,
    return_day,
)
from retail_datagen.generators.fact_generators.utils_mixin import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_MINUTE,
)
from retail_datagen.rng import stream

SALE_DAY = date(2024, 3, 4)
RANK = domain.TXN_TYPE_RANK
PRODUCTS = products()


def _np(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy(zero_copy_only=False)


def _ts(table: pa.Table, column: str = "EventTS") -> np.ndarray:
    return table.column(column).cast(pa.int64()).to_numpy()


@pytest.fixture(scope="module")
def host() -> Host:
    return Host()


@pytest.fixture(scope="module")
def sales() -> tuple[pa.Table, pa.Table]:
    return sale_batch(SALE_DAY, per_store=1_500)


@pytest.fixture(scope="module")
def pending(host: Host, sales) -> pa.Table:
    return host._schedule_returns(day_context(SALE_DAY), *sales)


def _due(pending: pa.Table, day: date) -> pa.Table:
    return pending.filter(pc.equal(pending.column("return_date"), pa.scalar(day, pa.date32())))


@pytest.fixture(scope="module")
def made(host: Host, pending: pa.Table) -> list[tuple[date, ReturnsBatch]]:
    days = sorted(set(pending.column("return_date").to_pylist()))
    return [(d, host._generate_returns(day_context(d), _due(pending, d))) for d in days]


def _all(made, part: str) -> pa.Table:
    return pa.concat_tables([getattr(batch, part) for _, batch in made])


# --- scheduling ---------------------------------------------------------------------------------


def test_pending_rows_have_the_state_schema_and_order(pending: pa.Table) -> None:
    assert pending.schema.equals(carried_schema("gen_state_pending_returns"))
    assert pending.num_rows > 0
    keys = list(zip(pending.column("return_date").to_pylist(),
                    pending.column("receipt_id_ext").to_pylist(),
                    pending.column("line_num").to_pylist(), strict=True))
    assert keys == sorted(keys)


def test_pending_rows_copy_the_returned_lines(pending: pa.Table, sales) -> None:
    receipts, lines = sales
    ids = pc.unique(pending.column("receipt_id_ext"))
    original = lines.filter(pc.is_in(lines.column("ReceiptId"), value_set=ids))
    got = pending.select(["receipt_id_ext", "line_num", "product_id", "quantity", "unit_cents",
                          "discount_cents", "ext_cents", "tax_cents", "promo_code"])
    want = original.select(["ReceiptId", "LineNumber", "ProductID", "Qty", "UnitCents",
                            "DiscountCents", "ExtCents", "TaxCents", "PromoCode"])
    want = want.rename_columns(got.column_names).cast(got.schema)
    # Every pending row is the copy of a sale line: joining on every column loses none.
    assert got.join(want, keys=got.column_names).num_rows == got.num_rows
    # Every non-food line of a returned receipt comes back; about 20% of its food lines do.
    food = PRODUCTS.is_food[_np(want, "product_id") - 1]
    got_food = PRODUCTS.is_food[_np(got, "product_id") - 1]
    assert (~got_food).sum() == (~food).sum()
    assert 0.12 < got_food.sum() / food.sum() < 0.3
    heads = receipts.filter(pc.is_in(receipts.column("ReceiptId"), value_set=ids))
    joined = pending.join(heads, keys="receipt_id_ext", right_keys="ReceiptId")
    np.testing.assert_array_equal(_np(joined, "store_id"), _np(joined, "StoreID"))
    np.testing.assert_array_equal(_np(joined, "customer_id"), _np(joined, "CustomerID"))
    assert joined.column("payment_method").equals(joined.column("TenderType"))
    # About 10% of the 4,500 receipts come back (a few all-food receipts bring nothing back).
    assert 340 <= len(ids) <= 520


def test_return_dates_are_1_to_14_days_later(pending: pa.Table) -> None:
    delay = [(d - SALE_DAY).days for d in pending.column("return_date").to_pylist()]
    assert min(delay) >= 1 and max(delay) <= 14


def test_schedule_is_deterministic(host: Host, sales, pending: pa.Table) -> None:
    assert host._schedule_returns(day_context(SALE_DAY), *sales).equals(pending)
    other = Host(seed=5)._schedule_returns(day_context(SALE_DAY), *sales)
    assert not other.equals(pending)


def test_christmas_moves_to_boxing_day_with_a_higher_rate() -> None:
    days = return_day(date(2024, 12, 20), np.arange(1, 15))
    got = [date.fromordinal(int(o)) for o in days]
    assert date(2024, 12, 25) not in got
    assert got.count(date(2024, 12, 26)) == 2
    assert got[-1] == date(2025, 1, 3)
    # Every return date is Dec 26 for this sale day and delay, so the rate is 30%.
    n = 20_000
    rng = stream(1, "returns.schedule", date(2024, 12, 12), 1)
    ordinal, returned = draw_return_schedule(rng, date(2024, 12, 12), n)
    boxing = ordinal == date(2024, 12, 26).toordinal()
    assert 0.27 < returned[boxing].mean() < 0.33
    assert 0.08 < returned[~boxing].mean() < 0.12


def test_dec26_sale_batch_never_schedules_dec25(host: Host) -> None:
    receipts, lines = sale_batch(date(2024, 12, 18), per_store=1_000, seed=3)
    pending = host._schedule_returns(day_context(date(2024, 12, 18)), receipts, lines)
    dates = set(pending.column("return_date").to_pylist())
    assert date(2024, 12, 25) not in dates
    assert date(2024, 12, 26) in dates


# --- the return day -----------------------------------------------------------------------------


def test_columns_match_the_contract(made) -> None:
    for logical, part in (("receipts", "receipts"), ("receipt_lines", "receipt_lines"),
                          ("fact_payments", "payments")):
        batch = _all(made, part)
        assert batch.column_names == list(GENERATOR_NAMES[logical])
        renamed = batch.rename_columns([GENERATOR_NAMES[logical][c] for c in batch.column_names])
        renamed.cast(arrow_schema(logical))


def test_return_receipts_match_their_sale(made, sales) -> None:
    receipts, _ = sales
    returns = _all(made, "receipts")
    assert set(returns.column("ReceiptType").to_pylist()) == {"RETURN"}
    joined = returns.join(
        receipts.rename_columns([f"S_{c}" for c in receipts.column_names]),
        keys="ReturnForReceiptId", right_keys="S_ReceiptId")
    assert joined.num_rows == returns.num_rows
    np.testing.assert_array_equal(_np(joined, "StoreID"), _np(joined, "S_StoreID"))
    np.testing.assert_array_equal(_np(joined, "CustomerID"), _np(joined, "S_CustomerID"))
    assert joined.column("TenderType").equals(joined.column("S_TenderType"))
    # A return refunds part or all of its sale (lines checked in the next test).
    assert (-_np(joined, "TotalCents") > 0).all()
    assert (-_np(joined, "TotalCents") <= _np(joined, "S_TotalCents")).all()
    ret_ts, sale_ts = _ts(joined), _ts(joined, "S_EventTS")
    assert (ret_ts > sale_ts).all()
    days = ret_ts // US_PER_DAY - sale_ts // US_PER_DAY
    assert days.min() >= 1 and days.max() <= 15
    # Within the store's hours: open_hour:00 up to min(close_hour, 23):00.
    store = _np(joined, "StoreID") - 1
    hour_us = ret_ts % US_PER_DAY
    assert (hour_us >= STORE_OPEN[store] * US_PER_HOUR).all()
    assert (hour_us < np.minimum(STORE_CLOSE[store], 23) * US_PER_HOUR).all()
    assert len(set(returns.column("ReturnForReceiptId").to_pylist())) == returns.num_rows


def test_return_ids_are_sequenced_by_time_within_store(made) -> None:
    for day, batch in made:
        r = batch.receipts
        ids = r.column("ReceiptId").to_pylist()
        store = _np(r, "StoreID")
        assert all(i.startswith("RET" + day.strftime("%Y%m%d")) and len(i) == 22 for i in ids)
        assert [int(i[11:16]) for i in ids] == store.tolist()
        seq = np.array([int(i[16:]) for i in ids])
        for s in np.unique(store):
            mine = store == s
            np.testing.assert_array_equal(seq[mine], np.arange(1, mine.sum() + 1))
            key = list(zip(_ts(r)[mine], r.column("ReturnForReceiptId").filter(
                pa.array(mine)).to_pylist(), strict=True))
            assert key == sorted(key)
        assert (np.diff(store) >= 0).all()


def test_return_lines_are_exact_negatives(made, sales) -> None:
    _, lines = sales
    returns = _all(made, "receipts")
    ret_lines = _all(made, "receipt_lines")
    link = returns.select(["ReceiptId", "ReturnForReceiptId", "EventTS"]).rename_columns(
        ["ReceiptId", "Orig", "HeadTS"])
    joined = ret_lines.join(link, "ReceiptId").join(
        lines.rename_columns([f"S_{c}" for c in lines.column_names]),
        keys=["Orig", "LineNumber"], right_keys=["S_ReceiptId", "S_LineNumber"])
    assert joined.num_rows == ret_lines.num_rows
    originals = lines.filter(pc.is_in(lines.column("ReceiptId"),
                                      value_set=returns.column("ReturnForReceiptId")))
    non_food = ~PRODUCTS.is_food[_np(originals, "ProductID") - 1]
    returned_non_food = ~PRODUCTS.is_food[_np(ret_lines, "ProductID") - 1]
    assert non_food.sum() == returned_non_food.sum() < ret_lines.num_rows < originals.num_rows
    for col in ("Qty", "DiscountCents", "ExtCents", "TaxCents"):
        np.testing.assert_array_equal(_np(joined, col), -_np(joined, f"S_{col}"))
    np.testing.assert_array_equal(_np(joined, "UnitCents"), _np(joined, "S_UnitCents"))
    np.testing.assert_array_equal(_np(joined, "ProductID"), _np(joined, "S_ProductID"))
    assert joined.column("PromoCode").equals(joined.column("S_PromoCode"))
    assert joined.column("EventTS").equals(joined.column("HeadTS"))
    np.testing.assert_array_equal(_np(joined, "ExtCents"),
                                  _np(joined, "UnitCents") * _np(joined, "Qty")
                                  - _np(joined, "DiscountCents"))
    np.testing.assert_array_equal(money.decimal_to_cents(joined.column("ExtPrice")),
                                  _np(joined, "ExtCents"))


def test_return_header_is_the_sum_of_its_lines(made) -> None:
    returns = _all(made, "receipts")
    lines = _all(made, "receipt_lines")
    gross = pa.array(_np(lines, "UnitCents") * _np(lines, "Qty"))
    sums = lines.append_column("Gross", gross).group_by("ReceiptId").aggregate([
        ("Qty", "sum"), ("Qty", "count"), ("Gross", "sum"), ("DiscountCents", "sum"),
        ("ExtCents", "sum"), ("TaxCents", "sum")])
    joined = returns.join(sums, "ReceiptId")
    assert joined.num_rows == returns.num_rows
    for head, line in (("ItemCount", "Qty_sum"), ("LineCount", "Qty_count"),
                       ("GrossSubtotalCents", "Gross_sum"), ("DiscountCents", "DiscountCents_sum"),
                       ("SubtotalCents", "ExtCents_sum"), ("TaxCents", "TaxCents_sum")):
        np.testing.assert_array_equal(_np(joined, head), _np(joined, line))
    np.testing.assert_array_equal(_np(returns, "TotalCents"),
                                  _np(returns, "SubtotalCents") + _np(returns, "TaxCents"))
    assert (_np(returns, "ItemCount") < 0).all()


def test_one_refund_per_return(made) -> None:
    returns = _all(made, "receipts")
    payments = _all(made, "payments")
    assert payments.num_rows == returns.num_rows
    assert set(payments.column("Status").to_pylist()) == {"REFUNDED"}
    assert set(payments.column("Attempt").to_pylist()) == {1}
    joined = returns.select(["ReceiptId", "EventTS", "StoreID", "CustomerID", "TotalCents",
                             "TenderType"]).join(
        payments.rename_columns([f"P_{c}" for c in payments.column_names]),
        keys="ReceiptId", right_keys="P_ReceiptId")
    assert joined.num_rows == returns.num_rows
    np.testing.assert_array_equal(_np(joined, "P_AmountCents"), _np(joined, "TotalCents"))
    assert joined.column("P_TenderType").equals(joined.column("TenderType"))
    np.testing.assert_array_equal(_np(joined, "P_StoreID"), _np(joined, "StoreID"))
    np.testing.assert_array_equal(_np(joined, "P_CustomerID"), _np(joined, "CustomerID"))
    ms = _np(joined, "P_ProcessingTimeMs").astype(np.int64)
    np.testing.assert_array_equal(_ts(joined, "P_EventTS") - _ts(joined), ms * 1_000)
    method = pc.index_in(joined.column("TenderType"),
                         value_set=pa.array(domain.PAYMENT_METHODS)).to_numpy()
    assert (ms >= PROCESSING_MS[method, 0]).all() and (ms <= PROCESSING_MS[method, 1]).all()
    assert payments.column("OrderId").null_count == payments.num_rows


def test_disposition_events(made) -> None:
    is_food = products().is_food
    for _, batch in made:
        lines, ev = batch.receipt_lines, batch.store_events
        n = lines.num_rows
        ids = lines.column("ReceiptId").combine_chunks()
        product = _np(lines, "ProductID") - 1
        units = -_np(lines, "Qty")
        ts = _ts(lines)
        store = np.array([int(i[11:16]) for i in ids.to_pylist()]) - 1
        # One RETURN +qty per line at the return time.
        assert (ev.txn_type[:n] == RANK["RETURN"]).all()
        np.testing.assert_array_equal(ev.delta[:n], units)
        np.testing.assert_array_equal(ev.ts_us[:n], ts)
        np.testing.assert_array_equal(ev.node_idx[:n], store)
        np.testing.assert_array_equal(ev.product_idx[:n], product)
        assert ev.source.slice(0, n).equals(ids)
        # Then the dispositions, in line order.
        disp = batch.line_disposition
        food = is_food[product]
        np.testing.assert_array_equal(disp == -1, food)
        follow = np.flatnonzero(food | (disp == 2) | (disp == 3))
        assert len(ev) == n + follow.size
        offset = np.where(food, 15, np.where(disp == 2, 30, 45))[follow] * US_PER_MINUTE
        np.testing.assert_array_equal(ev.ts_us[n:], ts[follow] + offset)
        np.testing.assert_array_equal(ev.delta[n:], -units[follow])
        kind = np.where(disp[follow] == 2, RANK["OUTBOUND_SHIPMENT"], RANK["DAMAGED"])
        np.testing.assert_array_equal(ev.txn_type[n:], kind)
        assert ev.source.slice(n).equals(ids.take(pa.array(follow)))
        np.testing.assert_array_equal(ev.node_idx[n:], store[follow])
        assert (ev.truck_id == 0).all()
    every = np.concatenate([b.line_disposition for _, b in made])
    assert set(np.unique(every)) <= set(range(-1, len(DISPOSITIONS)))
    assert {0, 1, 2, 3} <= set(np.unique(every).tolist())


def test_returns_are_deterministic(host: Host, pending: pa.Table, made) -> None:
    day, batch = made[0]
    again = host._generate_returns(day_context(day), _due(pending, day))
    assert again.receipts.equals(batch.receipts)
    assert again.receipt_lines.equals(batch.receipt_lines)
    assert again.payments.equals(batch.payments)
    np.testing.assert_array_equal(again.store_events.delta, batch.store_events.delta)
    # The row order of the due table does not matter.
    shuffled = _due(pending, day).take(pa.array(
        np.random.default_rng(0).permutation(_due(pending, day).num_rows)))
    assert host._generate_returns(day_context(day), shuffled).receipts.equals(batch.receipts)


def test_nothing_due_makes_nothing(host: Host) -> None:
    empty = carried_schema("gen_state_pending_returns").empty_table()
    batch = host._generate_returns(day_context(SALE_DAY + timedelta(days=3)), empty)
    assert batch.receipts.num_rows == batch.receipt_lines.num_rows == 0
    assert batch.payments.num_rows == 0 and len(batch.store_events) == 0
    assert batch.receipts.column_names == list(GENERATOR_NAMES["receipts"])
    empty_sales = sale_batch(SALE_DAY, per_store=1)[0].slice(0, 0)
    pending = host._schedule_returns(day_context(SALE_DAY), empty_sales,
                                     sale_batch(SALE_DAY, per_store=1)[1].slice(0, 0))
    assert pending.num_rows == 0
    assert pending.schema.equals(carried_schema("gen_state_pending_returns"))
    assert N_CUSTOMERS > 0
