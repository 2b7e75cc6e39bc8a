"""The report's SQL: aggregates over the fact and dimension tables, by their DB names.

Every query runs on any DuckDB connection where ``fact_*`` and ``dim_*`` are visible as tables
or views (a generated DuckDB file, or Parquet files mapped to views of the same names), and
returns small aggregated results: the heavy lifting stays in DuckDB.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb

#: Days after a sale within which every return is made (behaviour: 1–14 days, 15 off Dec 25).
RETURN_WINDOW_DAYS = 15
#: A leg leaving at most this many minutes after its plan is on time.
ON_TIME_MINUTES = 15
#: A leg leaving more than this many minutes after its plan is in the delay tail.
LATE_TAIL_MINUTES = 120

Rows = list[tuple[Any, ...]]

_DAYS = ("SELECT CAST(unnest(generate_series(CAST(? AS DATE), CAST(? AS DATE), "
         "INTERVAL 1 DAY)) AS DATE) AS day")


def visible_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables and views the connection sees in its current schema."""
    rows = con.execute("SELECT table_name FROM information_schema.tables "
                       "WHERE table_catalog = current_database() "
                       "AND table_schema = current_schema()").fetchall()
    return {str(row[0]) for row in rows}


def date_range(con: duckdb.DuckDBPyConnection, tables: set[str]) -> tuple[date, date] | None:
    """First and last day with in-store receipts or online orders; None when there are none."""
    parts = [f"SELECT min(event_ts) AS lo, max(event_ts) AS hi FROM {name}"
             for name in ("fact_receipts", "fact_online_order_headers") if name in tables]
    if not parts:
        return None
    row = con.execute("SELECT CAST(min(lo) AS DATE), CAST(max(hi) AS DATE) FROM ("
                      + " UNION ALL ".join(parts) + ")").fetchone()
    return None if row is None or row[0] is None else (row[0], row[1])


def daily_sales(con: duckdb.DuckDBPyConnection, first: date, last: date,
                with_online: bool) -> Rows:
    """``(day, receipts, instore_cents, selling_stores, orders, online_cents)`` for every day.

    Receipts and cents are SALE receipts (subtotal, before tax); orders are non-cancelled.
    """
    online = ("SELECT CAST(event_ts AS DATE) AS day, count(*) AS orders, "
              "sum(subtotal_cents) AS cents FROM fact_online_order_headers "
              "WHERE order_status <> 'CANCELLED' GROUP BY 1") if with_online else (
        "SELECT CAST(NULL AS DATE) AS day, 0 AS orders, 0 AS cents WHERE false")
    sql = f"""
        WITH days AS ({_DAYS}),
        instore AS (
            SELECT CAST(event_ts AS DATE) AS day, count(*) AS receipts,
                   sum(subtotal_cents) AS cents, count(DISTINCT store_id) AS stores
            FROM fact_receipts WHERE receipt_type = 'SALE' GROUP BY 1),
        online AS ({online})
        SELECT days.day, coalesce(instore.receipts, 0), coalesce(instore.cents, 0),
               coalesce(instore.stores, 0), coalesce(online.orders, 0), coalesce(online.cents, 0)
        FROM days LEFT JOIN instore USING (day) LEFT JOIN online USING (day)
        ORDER BY days.day"""
    return [(d, int(r), int(c), int(s), int(o), int(oc))
            for d, r, c, s, o, oc in con.execute(sql, [first, last]).fetchall()]


def hourly_counts(con: duckdb.DuckDBPyConnection, table: str, where: str) -> dict[int, int]:
    """Rows of ``table`` matching ``where`` by hour of ``event_ts``."""
    sql = f"SELECT hour(event_ts), count(*) FROM {table} WHERE {where} GROUP BY 1"
    return {int(h): int(n) for h, n in con.execute(sql).fetchall()}


def basket_sizes(con: duckdb.DuckDBPyConnection) -> Rows:
    """``(item_count, receipts)`` of SALE receipts, by item count."""
    return con.execute("SELECT item_count, count(*) FROM fact_receipts "
                       "WHERE receipt_type = 'SALE' GROUP BY 1 ORDER BY 1").fetchall()


_UNITS_RANKED = """
    WITH units AS (
        SELECT product_id, sum(quantity) AS units FROM fact_receipt_lines
        WHERE quantity > 0 GROUP BY 1),
    ranked AS (
        SELECT row_number() OVER w AS rank, sum(units) OVER w AS cumulative,
               count(*) OVER () AS products, sum(units) OVER () AS total
        FROM units WINDOW w AS (ORDER BY units DESC, product_id
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))"""


def pareto_curve(con: duckdb.DuckDBPyConnection, points: int = 400) -> Rows:
    """``(share of products, share of units)`` along the products sold, best sellers first.

    Thinned to about ``points`` points, always keeping the first and the last product.
    """
    sql = f"""{_UNITS_RANKED}
        SELECT rank / products, cumulative / total FROM ranked
        WHERE rank = 1 OR rank = products OR rank % greatest(1, products // {points}) = 0
        ORDER BY rank"""
    return [(float(x), float(y)) for x, y in con.execute(sql).fetchall()]


def pareto_top_share(con: duckdb.DuckDBPyConnection, top: float = 0.2) -> float | None:
    """Share of units sold by the best-selling ``top`` fraction of the products sold."""
    sql = f"""{_UNITS_RANKED}
        SELECT max(cumulative) / max(total) FROM ranked
        WHERE rank <= greatest(1, ceil(products * {top}))"""
    row = con.execute(sql).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def payment_mix(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """APPROVED in-store payments (those of a receipt) by method."""
    sql = ("SELECT payment_method, count(*) FROM fact_payments "
           "WHERE status = 'APPROVED' AND receipt_id_ext IS NOT NULL GROUP BY 1 ORDER BY 1")
    return {str(m): int(n) for m, n in con.execute(sql).fetchall()}


def cohort_last_day(first: date, last: date) -> date:
    """The last sale day whose whole return window lies in the range (or ``last`` if none)."""
    day = last - timedelta(days=RETURN_WINDOW_DAYS)
    return day if day >= first else last


_COHORT_SALES = ("SELECT receipt_id_ext, total_cents FROM fact_receipts "
                 "WHERE receipt_type = 'SALE' AND event_ts < CAST(? AS DATE) + 1")


def _cohort_totals(con: duckdb.DuckDBPyConnection, parents: str, returns: str,
                   cohort_last: date) -> tuple[int, int]:
    """``(Σ total_cents of parents, −Σ cents of returns)``; ``returns`` joins ``parents``."""
    sql = f"""
        WITH parents AS ({parents})
        SELECT (SELECT coalesce(sum(total_cents), 0) FROM parents),
               (SELECT coalesce(-sum(cents), 0) FROM ({returns}))"""
    sold, returned = con.execute(sql, [cohort_last]).fetchone()
    return int(sold), int(returned)


def instore_returns(con: duckdb.DuckDBPyConnection, cohort_last: date) -> tuple[int, int]:
    """``(sales cents, returned cents)`` of the SALE receipts up to ``cohort_last`` (totals)."""
    return _cohort_totals(con, _COHORT_SALES, """
        SELECT r.total_cents AS cents FROM fact_receipts r
        JOIN parents s ON r.return_for_receipt_id_ext = s.receipt_id_ext
        WHERE r.receipt_type = 'RETURN'""", cohort_last)


def online_returns(con: duckdb.DuckDBPyConnection, cohort_last: date) -> tuple[int, int]:
    """``(order cents, refunded cents)`` of the non-cancelled orders up to ``cohort_last``."""
    orders = ("SELECT order_id_ext, total_cents FROM fact_online_order_headers "
              "WHERE order_status <> 'CANCELLED' AND event_ts < CAST(? AS DATE) + 1")
    return _cohort_totals(con, orders, """
        SELECT p.amount_cents AS cents FROM fact_payments p
        JOIN parents o ON p.order_id_ext = o.order_id_ext
        WHERE p.status = 'REFUNDED'""", cohort_last)


def returns_by_category(con: duckdb.DuckDBPyConnection, cohort_last: date) -> Rows:
    """``(basket_category, is_food, sold ext cents, returned ext cents)`` in the return cohort.

    Food is what the return policy destroys: basket category food or beverages, or refrigerated.
    """
    sql = f"""
        WITH sales AS ({_COHORT_SALES}),
        lines AS (
            SELECT l.product_id, l.ext_cents AS sold, 0 AS returned
            FROM fact_receipt_lines l JOIN sales s ON l.receipt_id_ext = s.receipt_id_ext
            UNION ALL
            SELECT l.product_id, 0, -l.ext_cents
            FROM fact_receipt_lines l
            JOIN fact_receipts r ON l.receipt_id_ext = r.receipt_id_ext
            JOIN sales s ON r.return_for_receipt_id_ext = s.receipt_id_ext
            WHERE r.receipt_type = 'RETURN')
        SELECT p.basket_category,
               p.basket_category IN ('food', 'beverages') OR p.requires_refrigeration,
               sum(lines.sold), sum(lines.returned)
        FROM lines JOIN dim_products p ON p.product_id = lines.product_id
        GROUP BY 1, 2 ORDER BY 1, 2"""
    return [(str(c), bool(f), int(s), int(r))
            for c, f, s, r in con.execute(sql, [cohort_last]).fetchall()]


def return_delays(con: duckdb.DuckDBPyConnection, with_online: bool) -> Rows:
    """``(channel, days after sale, returns)`` for the returns of sales in the data."""
    online = """
        UNION ALL
        SELECT 'online', date_diff('day', CAST(o.event_ts AS DATE), CAST(p.event_ts AS DATE)),
               count(*)
        FROM fact_payments p JOIN fact_online_order_headers o ON p.order_id_ext = o.order_id_ext
        WHERE p.status = 'REFUNDED' GROUP BY 1, 2""" if with_online else ""
    sql = f"""
        SELECT 'in store', date_diff('day', CAST(s.event_ts AS DATE), CAST(r.event_ts AS DATE)),
               count(*)
        FROM fact_receipts r JOIN fact_receipts s
          ON r.return_for_receipt_id_ext = s.receipt_id_ext
        WHERE r.receipt_type = 'RETURN' GROUP BY 1, 2 {online}
        ORDER BY 1, 2"""
    return con.execute(sql).fetchall()


def stock_by_day(con: duckdb.DuckDBPyConnection, first: date, last: date,
                 with_stockouts: bool) -> Rows:
    """``(day, empty store-products at day end, store × launched products, store stockouts)``.

    Only the ledger rows where a balance crosses zero change the count: a row leaving the
    balance at 0 adds one, a row lifting it from 0 removes one. So the count at a day's end is
    a running sum of those rows (few, so no window over the whole ledger), plus the
    store-products that start empty: those whose first crossing is a lift from 0.
    """
    stockouts = ("SELECT CAST(event_ts AS DATE) AS day, count(*) AS n FROM fact_stockouts "
                 "WHERE store_id IS NOT NULL GROUP BY 1") if with_stockouts else (
        "SELECT CAST(NULL AS DATE) AS day, 0 AS n WHERE false")
    sql = f"""
        WITH days AS ({_DAYS}),
        crossings AS (
            SELECT store_id, product_id, txn_id, CAST(event_ts AS DATE) AS day,
                   CASE WHEN balance = 0 THEN 1 ELSE -1 END AS change
            FROM fact_store_inventory_txn
            WHERE (balance = 0) <> (balance - quantity = 0)),
        initially_empty AS (
            SELECT count(*) FILTER (WHERE first_change = -1) AS n FROM (
                SELECT arg_min(change, txn_id) AS first_change FROM crossings
                GROUP BY store_id, product_id)),
        changes AS (SELECT day, sum(change) AS change FROM crossings GROUP BY 1),
        launched AS (
            SELECT days.day, count(p.product_id) * (SELECT count(*) FROM dim_stores) AS pairs
            FROM days LEFT JOIN dim_products p ON p.launch_date <= days.day GROUP BY 1),
        stockouts AS ({stockouts})
        SELECT days.day,
               (SELECT n FROM initially_empty)
               + sum(coalesce(changes.change, 0)) OVER (ORDER BY days.day),
               launched.pairs, coalesce(stockouts.n, 0)
        FROM days JOIN launched USING (day) LEFT JOIN changes USING (day)
        LEFT JOIN stockouts USING (day)
        ORDER BY days.day"""
    return [(d, int(e), int(p), int(n))
            for d, e, p, n in con.execute(sql, [first, last]).fetchall()]


def shrink_by_day(con: duckdb.DuckDBPyConnection) -> Rows:
    """``(day, net negative adjustment cents, sale cents)`` of store inventory at sale price."""
    sql = """
        SELECT CAST(t.event_ts AS DATE),
               coalesce(-sum(t.quantity * p.sale_price_cents)
                        FILTER (WHERE t.txn_type = 'ADJUSTMENT'), 0),
               coalesce(-sum(t.quantity * p.sale_price_cents)
                        FILTER (WHERE t.txn_type = 'SALE'), 0)
        FROM fact_store_inventory_txn t JOIN dim_products p ON p.product_id = t.product_id
        WHERE t.txn_type IN ('ADJUSTMENT', 'SALE') GROUP BY 1 ORDER BY 1"""
    return [(d, int(a), int(s)) for d, a, s in con.execute(sql).fetchall()]


# The planned departure is encoded in the shipment id: SHP + created day + dc + store + leg;
# legs leave from created day + 1 at 06:00, 30 minutes apart.
_LEG_DELAYS = """
    SELECT departure_time, eta,
           date_diff('second', strptime(substr(shipment_id, 4, 8), '%Y%m%d')
                     + INTERVAL 30 HOUR
                     + (CAST(right(shipment_id, 3) AS INTEGER) - 1) * INTERVAL 30 MINUTE,
                     departure_time) / 60.0 AS delay_minutes
    FROM fact_truck_moves WHERE status = 'IN_TRANSIT'"""

#: Delay classes of the departure chart: (label, lowest delay in minutes, exclusive).
DELAY_BUCKETS: tuple[tuple[str, float], ...] = (
    ("on time", float("-inf")), ("15–30 min", 15), ("30–60 min", 30), ("1–2 h", 60),
    ("2–4 h", 120), ("4–8 h", 240), ("> 8 h", 480))


def departure_delays(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Legs by delay class of :data:`DELAY_BUCKETS` (every class present, possibly 0)."""
    cases = " ".join(f"WHEN delay_minutes > {low} THEN '{label}'"
                     for label, low in reversed(DELAY_BUCKETS[1:]))
    sql = (f"SELECT CASE {cases} ELSE '{DELAY_BUCKETS[0][0]}' END, count(*) "
           f"FROM ({_LEG_DELAYS}) GROUP BY 1")
    counts = {str(k): int(n) for k, n in con.execute(sql).fetchall()}
    return {label: counts.get(label, 0) for label, _ in DELAY_BUCKETS}


def legs_in_flight(con: duckdb.DuckDBPyConnection, first: date, last: date) -> Rows:
    """``(hour, legs between departure and arrival at that hour)`` over the range."""
    sql = f"""
        WITH hours AS (
            SELECT unnest(generate_series(CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP),
                                          INTERVAL 1 HOUR)) AS ts),
        legs AS ({_LEG_DELAYS})
        SELECT hours.ts, count(legs.departure_time)
        FROM hours LEFT JOIN legs ON legs.departure_time <= hours.ts AND legs.eta > hours.ts
        GROUP BY 1 ORDER BY 1"""
    end = last + timedelta(days=1)
    return [(ts, int(n)) for ts, n in con.execute(sql, [first, end]).fetchall()][:-1]


__all__ = ["DELAY_BUCKETS", "LATE_TAIL_MINUTES", "ON_TIME_MINUTES", "RETURN_WINDOW_DAYS",
           "basket_sizes", "cohort_last_day", "daily_sales", "date_range", "departure_delays",
           "hourly_counts", "instore_returns", "legs_in_flight", "online_returns",
           "pareto_curve", "pareto_top_share", "payment_mix", "return_delays",
           "returns_by_category", "shrink_by_day", "stock_by_day", "visible_tables"]
