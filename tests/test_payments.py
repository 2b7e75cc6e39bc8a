"""Payments: attempts, declines, retries, refunds and the in-store batch (behaviour.md §8)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fact_fixtures import make_host, run_sales
from retail_datagen import domain, rng
from retail_datagen.db.fact_schema import GENERATOR_NAMES
from retail_datagen.generators.fact_generators import payments_mixin as pay

M = {name: i for i, name in enumerate(domain.PAYMENT_METHODS)}
DAY = date(2024, 11, 29)
PARENT_TS = 1_732_838_400_000_000 + 10 * 3_600_000_000


def _draws(n: int = 50_000, mix: str = "instore", seed: int = 5) -> pay.PaymentDraws:
    return pay.draw_payment_attempts(rng.stream(seed, "payment.instore", DAY, 1), n, mix)


def test_draw_layout_matches_kinds() -> None:
    d = _draws(1000)
    g = rng.stream(5, "payment.instore", DAY, 1)
    methods = np.array([M["CREDIT_CARD"], M["DEBIT_CARD"], M["CASH"], M["MOBILE_PAY"]])
    m1 = methods[rng.categorical(g, [0.35, 0.30, 0.14, 0.21], 1000)]
    assert np.array_equal(d.method1, m1)
    assert np.array_equal(d.declined, g.random(1000) < 0.025 * pay.DECLINE_MULT[m1])
    assert np.array_equal(d.reason, g.integers(0, 7, 1000))


def test_mix_decline_rates_and_retry() -> None:
    d = _draws()
    share = np.bincount(d.method1, minlength=6) / len(d)
    assert share[M["CREDIT_CARD"]] == pytest.approx(0.35, abs=0.01)
    assert share[M["CASH"]] == pytest.approx(0.14, abs=0.01)
    assert share[M["PAYPAL"]] == 0 and share[M["OTHER"]] == 0
    assert not d.declined[d.method1 == M["CASH"]].any()
    credit = d.method1 == M["CREDIT_CARD"]
    assert d.declined[credit].mean() == pytest.approx(0.025, abs=0.005)
    assert (d.method2 != d.method1).all()
    assert set(np.unique(d.method2).tolist()) <= {M["CREDIT_CARD"], M["DEBIT_CARD"], M["CASH"],
                                                   M["MOBILE_PAY"]}
    assert ((d.reason >= 0) & (d.reason <= 6)).all()
    for draws_ms, method in ((d.ms1, d.method1), (d.ms2, d.method2)):
        assert (draws_ms >= pay.PROCESSING_MS_LO[method]).all()
        assert (draws_ms <= pay.PROCESSING_MS_HI[method]).all()
    online = _draws(20_000, "online")
    assert set(np.unique(online.method1).tolist()) == {M["CREDIT_CARD"], M["DEBIT_CARD"],
                                                       M["PAYPAL"], M["OTHER"]}
    assert np.array_equal(d.approved_method, np.where(d.declined, d.method2, d.method1))


def _build(n: int = 4000, kind: str = "receipt", valid=None, store=True):
    d = _draws(n)
    ids = pa.array([f"RCP20241129{1:05d}{i + 1:06d}" for i in range(n)])
    ts = PARENT_TS + np.arange(n, dtype=np.int64) * 1_000_000
    total = 1000 + np.arange(n, dtype=np.int64)
    cust = np.arange(1, n + 1, dtype=np.int64)
    store_id = np.full(n, 3, dtype=np.int64) if store else None
    table, approved = pay.build_payments(d, ids, ts, total, cust, store_id, kind, valid)
    return d, ids, ts, total, table, approved


def test_payment_rows_attempts_and_timing() -> None:
    d, ids, ts, total, t, approved = _build()
    assert t.column_names == list(GENERATOR_NAMES["fact_payments"])
    n = len(d)
    assert t.num_rows == n + int(d.declined.sum())
    rows = t.to_pydict()
    parent_pos = {rid: i for i, rid in enumerate(ids.to_pylist())}
    pos = np.array([parent_pos[r] for r in rows["ReceiptId"]])
    attempt = np.array(rows["Attempt"])
    assert (np.diff(pos) >= 0).all()  # parent order, then attempt
    ts_rows = t.column("EventTS").cast(pa.int64()).to_numpy()
    first = attempt == 1
    assert np.array_equal(ts_rows[first], ts + d.ms1 * 1000)
    assert (ts_rows > ts[pos]).all()
    second = np.flatnonzero(attempt == 2)
    assert np.array_equal(pos[second - 1], pos[second])
    assert (ts_rows[second] > ts_rows[second - 1]).all()
    assert np.array_equal(ts_rows[second], ts_rows[second - 1] + d.ms2[pos[second]] * 1000)
    status = np.array(rows["Status"])
    method = np.array(rows["TenderType"])
    assert (status[second - 1] == "DECLINED").all() and (status[second] == "APPROVED").all()
    assert (method[second] != method[second - 1]).all()
    assert "CASH" not in set(method[status == "DECLINED"])
    reason = np.array(rows["DeclineReason"], dtype=object)
    assert all(r in domain.DECLINE_REASONS for r in reason[status == "DECLINED"])
    assert all(r is None for r in reason[status != "DECLINED"])
    assert np.array_equal(np.array(rows["AmountCents"]), total[pos])
    approved_rows = status == "APPROVED"
    assert approved_rows.sum() == n
    assert method[approved_rows].tolist() == [domain.PAYMENT_METHODS[m] for m in approved]
    assert rows["TransactionId"][0] == f"TXN{ids[pos[0]].as_py()}-1"
    assert all(tid.endswith(f"-{a}") for tid, a in zip(rows["TransactionId"], attempt,
                                                       strict=True))
    assert t.column("OrderId").null_count == t.num_rows
    assert pc.all(pc.equal(t.column("StoreID"), 3)).as_py()
    pt = t.column("ProcessingTimeMs").to_numpy()
    assert np.array_equal(pt[first], d.ms1)


def test_orders_valid_mask_and_null_store() -> None:
    valid = np.arange(4000) % 3 != 0
    d, ids, _, _, t, approved = _build(kind="order", valid=valid, store=False)
    assert t.column("ReceiptId").null_count == t.num_rows
    assert t.column("StoreID").null_count == t.num_rows
    assert set(t.column("OrderId").to_pylist()) == set(np.array(ids.to_pylist())[valid])
    assert t.num_rows == valid.sum() + int(d.declined[valid].sum())
    assert approved.shape == (4000,)


def test_refunds() -> None:
    ids = pa.array(["RET202412010000100001", "RET202412010000100002"])
    ts = np.array([PARENT_TS, PARENT_TS + 5], dtype=np.int64)
    t = pay.build_refunds(ids, ts, np.array([-1234, -50]), np.array([M["CASH"], M["PAYPAL"]]),
                          np.array([700, 2500]), np.array([9, 10]), np.array([1, 1]))
    assert t.column_names == list(GENERATOR_NAMES["fact_payments"])
    rows = t.to_pylist()
    assert [r["Status"] for r in rows] == ["REFUNDED", "REFUNDED"]
    assert [r["Attempt"] for r in rows] == [1, 1]
    assert [r["AmountCents"] for r in rows] == [-1234, -50]
    assert [r["TenderType"] for r in rows] == ["CASH", "PAYPAL"]
    assert rows[0]["TransactionId"] == "TXNRET202412010000100001-1"
    got = t.column("EventTS").cast(pa.int64()).to_numpy()
    assert np.array_equal(got, ts + np.array([700, 2500]) * 1000)
    assert t.column("DeclineReason").null_count == 2


def test_instore_payments_settle_receipts() -> None:
    host = make_host(["standard", "express"], customers_per_day=400)
    r = run_sales(host, DAY)
    pays, rec = r.payments, r.receipts
    approved = pays.filter(pc.equal(pays.column("Status"), "APPROVED"))
    assert approved.column("ReceiptId").to_pylist() == rec.column("ReceiptId").to_pylist()
    assert approved.column("AmountCents").to_pylist() == rec.column("TotalCents").to_pylist()
    assert approved.column("TenderType").to_pylist() == rec.column("TenderType").to_pylist()
    assert approved.column("StoreID").to_pylist() == rec.column("StoreID").to_pylist()
    assert approved.column("CustomerID").to_pylist() == rec.column("CustomerID").to_pylist()
    # Per store, the draws come from that store's stream in receipt (seq) order.
    store2 = np.flatnonzero(r.sale_lines.store_idx == 1)
    d = pay.draw_payment_attempts(rng.stream(host._seed, "payment.instore", DAY, 2),
                                  store2.size, "instore")
    assert np.array_equal(r.tender[store2], d.approved_method)
    # Every payment stays on the receipt's day, strictly after the receipt.
    rec_ts = dict(zip(rec.column("ReceiptId").to_pylist(),
                      rec.column("EventTS").cast(pa.int64()).to_pylist(), strict=True))
    pay_ts = pays.column("EventTS").cast(pa.int64()).to_pylist()
    assert all(t > rec_ts[rid] for rid, t in zip(pays.column("ReceiptId").to_pylist(), pay_ts,
                                                 strict=True))
    day_end = (DAY.toordinal() - date(1970, 1, 1).toordinal() + 1) * 86_400_000_000
    assert max(pay_ts) < day_end


def test_payments_deterministic() -> None:
    a = _build()[4]
    b = _build()[4]
    assert a.equals(b)
    c = pay.build_payments(_draws(4000, seed=6), *(_build()[1:4]), np.arange(4000),
                           None, "receipt")[0]
    assert not a.equals(c)
