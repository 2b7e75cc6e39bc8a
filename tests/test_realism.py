"""Calibration bands (docs/realism.md) on generated data, and the online returns it adds.

One generated test-config range of 28 days around Black Friday; every metric is computed here
with its own SQL, independently of the generator and of any report code.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from conftest import config_in, generate
from retail_datagen.validation.invariants import run_invariants

FIRST, LAST = date(2024, 11, 11), date(2024, 12, 8)
BLACK_FRIDAY = date(2024, 11, 29)
OTHER_FRIDAYS = ("2024-11-15", "2024-11-22", "2024-12-06")
# Saturdays and Mondays of the range without a holiday effect (Veterans Day ±1, Thanksgiving
# ±1 and Black Friday ±3 days excluded).
SATURDAYS = ("2024-11-16", "2024-11-23", "2024-12-07")
MONDAYS = ("2024-11-18", "2024-11-25")
# Sales whose 15-day return window ends inside the range.
COHORT_LAST = "2024-11-23"
SEED = 2


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("realism")
    generate(config_in(folder, seed=SEED), FIRST, LAST)
    return folder / "retail.duckdb"


@pytest.fixture(scope="module")
def con(season: Path):
    connection = duckdb.connect(str(season), read_only=True)
    yield connection
    connection.close()


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    return float(con.execute(sql).fetchone()[0])


def _in_list(days: tuple[str, ...]) -> str:
    return ", ".join(f"DATE '{d}'" for d in days)


def test_black_friday_against_an_average_friday(con) -> None:
    ratio = _one(con, f"""
        WITH d AS (SELECT CAST(event_ts AS DATE) AS day, count(*) AS n FROM fact_receipts
                   WHERE receipt_type = 'SALE' GROUP BY 1)
        SELECT (SELECT n FROM d WHERE day = DATE '{BLACK_FRIDAY}')
             / (SELECT avg(n) FROM d WHERE day IN ({_in_list(OTHER_FRIDAYS)}))""")
    assert 1.3 <= ratio <= 2.0


def test_saturday_against_monday_per_store(con) -> None:
    ratio = _one(con, f"""
        WITH d AS (SELECT CAST(event_ts AS DATE) AS day, count(*) / count(DISTINCT store_id) AS n
                   FROM fact_receipts WHERE receipt_type = 'SALE' GROUP BY 1)
        SELECT (SELECT avg(n) FROM d WHERE day IN ({_in_list(SATURDAYS)}))
             / (SELECT avg(n) FROM d WHERE day IN ({_in_list(MONDAYS)}))""")
    assert 1.2 <= ratio <= 1.6


def test_in_store_payment_mix(con) -> None:
    rows = dict(con.execute("""
        SELECT payment_method, count(*) / sum(count(*)) OVER () FROM fact_payments
        WHERE status = 'APPROVED' AND receipt_id_ext IS NOT NULL GROUP BY 1""").fetchall())
    assert 0.10 <= rows["CASH"] <= 0.18
    assert rows["CREDIT_CARD"] == pytest.approx(0.35, abs=0.03)
    assert rows["DEBIT_CARD"] == pytest.approx(0.30, abs=0.03)
    assert rows["MOBILE_PAY"] > rows["CASH"]


def test_in_store_returns_and_food_far_lower(con) -> None:
    share = _one(con, f"""
        WITH s AS (SELECT receipt_id_ext, total_cents FROM fact_receipts
                   WHERE receipt_type = 'SALE' AND CAST(event_ts AS DATE) <= DATE '{COHORT_LAST}')
        SELECT -(SELECT sum(r.total_cents) FROM fact_receipts r
                 JOIN s ON s.receipt_id_ext = r.return_for_receipt_id_ext)
             / (SELECT sum(total_cents) FROM s)""")
    assert 0.05 <= share <= 0.10
    food, other = con.execute(f"""
        WITH s AS (SELECT receipt_id_ext FROM fact_receipts WHERE receipt_type = 'SALE'
                   AND CAST(event_ts AS DATE) <= DATE '{COHORT_LAST}'),
        l AS (SELECT l.product_id, l.ext_cents AS sold, 0 AS back FROM fact_receipt_lines l
              JOIN s USING (receipt_id_ext)
              UNION ALL
              SELECT l.product_id, 0, -l.ext_cents FROM fact_receipt_lines l
              JOIN fact_receipts r ON r.receipt_id_ext = l.receipt_id_ext
              JOIN s ON s.receipt_id_ext = r.return_for_receipt_id_ext)
        SELECT sum(back) FILTER (WHERE f) / sum(sold) FILTER (WHERE f),
               sum(back) FILTER (WHERE NOT f) / sum(sold) FILTER (WHERE NOT f)
        FROM (SELECT l.*, p.basket_category IN ('food', 'beverages') OR p.requires_refrigeration
              AS f FROM l JOIN dim_products p USING (product_id))""").fetchone()
    assert food <= 0.5 * other


def test_online_returns(con) -> None:
    share = _one(con, f"""
        WITH o AS (SELECT order_id_ext, total_cents FROM fact_online_order_headers
                   WHERE order_status <> 'CANCELLED'
                   AND CAST(event_ts AS DATE) <= DATE '{COHORT_LAST}')
        SELECT -(SELECT sum(p.amount_cents) FROM fact_payments p JOIN o USING (order_id_ext)
                 WHERE p.status = 'REFUNDED') / (SELECT sum(total_cents) FROM o)""")
    assert 0.15 <= share <= 0.25


def test_online_share_of_sales(con) -> None:
    share = _one(con, """
        SELECT o / (o + s) FROM
            (SELECT sum(subtotal_cents) AS o FROM fact_online_order_headers
             WHERE order_status <> 'CANCELLED'),
            (SELECT sum(subtotal_cents) AS s FROM fact_receipts WHERE receipt_type = 'SALE')""")
    assert 0.10 <= share <= 0.18


def test_store_products_out_of_stock_at_day_end(con) -> None:
    # Each store-product's balance at each day's end: its last txn up to that day, else its
    # opening stock.
    share = _one(con, f"""
        WITH days AS (SELECT CAST(unnest(generate_series(DATE '{FIRST}', DATE '{LAST}',
                                                         INTERVAL 1 DAY)) AS DATE) AS day),
        ends AS (SELECT store_id, product_id, CAST(event_ts AS DATE) AS day,
                        arg_max(balance, txn_id) AS balance
                 FROM fact_store_inventory_txn GROUP BY ALL),
        grid AS (SELECT s.store_id, p.product_id, days.day
                 FROM dim_stores s, dim_products p, days WHERE p.launch_date <= days.day),
        filled AS (SELECT g.*, e.balance FROM grid g ASOF LEFT JOIN ends e
                   ON g.store_id = e.store_id AND g.product_id = e.product_id AND g.day >= e.day)
        SELECT avg(empty) FROM (
            SELECT f.day, avg(CASE WHEN COALESCE(f.balance, i.quantity) = 0 THEN 1 ELSE 0 END)
                   AS empty
            FROM filled f JOIN gen_initial_inventory i ON i.node_type = 'STORE'
            AND i.node_id = f.store_id AND i.product_id = f.product_id GROUP BY f.day)""")
    assert 0.05 <= share <= 0.10


def test_shrink_is_net_negative_adjustments(con) -> None:
    share = _one(con, """
        SELECT -sum(t.quantity * p.sale_price_cents) FILTER (WHERE t.txn_type = 'ADJUSTMENT')
             / -sum(t.quantity * p.sale_price_cents) FILTER (WHERE t.txn_type = 'SALE')
        FROM fact_store_inventory_txn t JOIN dim_products p USING (product_id)""")
    assert 0.010 <= share <= 0.020


def test_truck_departures_have_a_delay_tail(con) -> None:
    # Plan: the day after the shipment's creation at 06:00, plus 30 minutes per leg number.
    on_time, late = con.execute("""
        WITH d AS (SELECT date_diff('minute', strptime(substr(shipment_id, 4, 8), '%Y%m%d')
                       + INTERVAL 30 HOUR
                       + (CAST(right(shipment_id, 3) AS INTEGER) - 1) * INTERVAL 30 MINUTE,
                       event_ts) AS late FROM fact_truck_moves WHERE status = 'IN_TRANSIT')
        SELECT avg(CASE WHEN late <= 15 THEN 1 ELSE 0 END),
               avg(CASE WHEN late > 120 THEN 1 ELSE 0 END) FROM d""").fetchone()
    assert 0.85 <= on_time <= 0.97
    assert 0.005 <= late <= 0.05


def test_the_season_validates(season: Path) -> None:
    report = run_invariants(season)
    assert report.errors == []
    assert not report.check("INV-37").skipped


# --- online returns: corruptions that INV-37 must catch ---------------------------------------

_REFUND = ("SELECT min(transaction_id) FROM fact_payments "
           "WHERE status = 'REFUNDED' AND order_id_ext IS NOT NULL")


@pytest.mark.parametrize(("corruption", "expected"), [
    # The refund is a cent less than the returned lines.
    (f"UPDATE fact_payments SET amount_cents = amount_cents + 1, amount = amount + 0.01 "
     f"WHERE transaction_id = ({_REFUND})", {"INV-37"}),
    # The refund is made before the goods come back.
    (f"UPDATE fact_payments SET event_ts = event_ts - INTERVAL '1 day' "
     f"WHERE transaction_id = ({_REFUND})", {"INV-37"}),
    # The goods come back and nothing is refunded.
    (f"DELETE FROM fact_payments WHERE transaction_id = ({_REFUND})", {"INV-37"}),
    # A second refund of the same order.
    ("INSERT INTO fact_payments SELECT * REPLACE (transaction_id || 'X' AS transaction_id) "
     f"FROM fact_payments WHERE transaction_id = ({_REFUND})", {"INV-16"}),
], ids=["amount", "before-return", "missing", "twice"])
def test_online_return_corruptions(season: Path, tmp_path: Path, corruption: str,
                                   expected: set[str]) -> None:
    copy = tmp_path / season.name
    shutil.copy(season, copy)
    with duckdb.connect(str(copy)) as db:
        db.execute(corruption)
    report = run_invariants(copy, only=["INV-16", "INV-23", "INV-34", "INV-37"])
    assert set(report.failed_ids) == expected
