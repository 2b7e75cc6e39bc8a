"""Invariants C: time (INV-20 … INV-24)."""

from __future__ import annotations

from collections.abc import Iterator

from retail_datagen.validation.checks_keys import FACT_DB_TABLES, key_columns
from retail_datagen.validation.core import Check, Context, Query, sql_list, violations

DEC25 = "(EXTRACT(month FROM {0}) = 12 AND EXTRACT(day FROM {0}) = 25)"


def _midnight(expr: str) -> str:
    return f"CAST(CAST({expr} AS DATE) AS TIMESTAMP)"


def _inv20(ctx: Context) -> Iterator[Query]:
    for name in FACT_DB_TABLES:
        yield Query(
            f"SELECT {sql_list([name])} AS table_name, {key_columns(name)}, event_ts FROM {name} "
            "WHERE event_ts < <<first_day>> OR event_ts >= <<end_ts>>"
        )


def _open_hours(source: str, alias: str, ts: str, keys: str, store: str) -> Query:
    hour = f"EXTRACT(hour FROM {ts})"
    return Query(
        f"SELECT * FROM (SELECT {sql_list([source])} AS table_name, {keys}, {ts} AS event_ts, "
        + violations(
            (f"{hour} < s.open_hour OR {hour} >= s.close_hour", "outside store hours"),
            (DEC25.format(ts), "on Dec 25"),
        )
        + f" AS rule FROM {source} {alias} {store} WHERE <<rows:{ts}>>) v WHERE rule <> ''"
    )


def _inv21(ctx: Context) -> Iterator[Query]:
    direct = "JOIN dim_stores s ON s.store_id = x.store_id"
    yield _open_hours("fact_receipts", "x", "x.event_ts", "x.receipt_id_ext", direct)
    yield _open_hours(
        "fact_receipt_lines",
        "x",
        "x.event_ts",
        "x.receipt_id_ext, x.line_num",
        "JOIN fact_receipts r ON r.receipt_id_ext = x.receipt_id_ext "
        "JOIN dim_stores s ON s.store_id = r.store_id",
    )
    yield _open_hours("fact_foot_traffic", "x", "x.event_ts", "x.store_id, x.zone", direct)
    yield _open_hours("fact_ble_pings", "x", "x.event_ts", "x.ping_id", direct)
    yield _open_hours(
        "fact_customer_zone_changes", "x", "x.event_ts", "x.zone_change_id", direct
    )
    opened = f"{_midnight('o.event_ts')} + s.open_hour * INTERVAL '1 hour'"
    closed = (
        f"CASE WHEN s.close_hour = 24 THEN {_midnight('o.event_ts')} + INTERVAL '23:59:59' "
        f"ELSE {_midnight('o.event_ts')} + s.close_hour * INTERVAL '1 hour' END"
    )
    yield Query(
        "SELECT * FROM (SELECT o.store_id, o.event_ts, o.operation_type, "
        + violations(
            (f"o.operation_type = 'OPENED' AND o.event_ts <> {opened}",
             "OPENED not at open_hour:00"),
            (f"o.operation_type = 'CLOSED' AND o.event_ts <> {closed}",
             "CLOSED not at close_hour:00 (23:59:59 for 24)"),
            (DEC25.format("o.event_ts"), "store_ops row on Dec 25"),
        )
        + " AS rule FROM fact_store_ops o JOIN dim_stores s ON s.store_id = o.store_id "
        "WHERE <<rows:o.event_ts>>) v WHERE rule <> ''"
    )
    yield Query(
        "WITH o AS (SELECT store_id, CAST(event_ts AS DATE) AS dd, "
        "sum(CASE WHEN operation_type = 'OPENED' THEN 1 ELSE 0 END) AS n_open, "
        "sum(CASE WHEN operation_type = 'CLOSED' THEN 1 ELSE 0 END) AS n_close "
        "FROM fact_store_ops WHERE <<rows:event_ts>> GROUP BY store_id, CAST(event_ts AS DATE)) "
        "SELECT 'store-day without exactly one OPENED and one CLOSED' AS rule, s.store_id, d.dd, "
        "COALESCE(o.n_open, 0) AS opened, COALESCE(o.n_close, 0) AS closed "
        "FROM dim_stores s CROSS JOIN <<days>> "
        "LEFT JOIN o ON o.store_id = s.store_id AND o.dd = d.dd "
        f"WHERE NOT {DEC25.format('d.dd')} "
        "AND (COALESCE(o.n_open, 0) <> 1 OR COALESCE(o.n_close, 0) <> 1)"
    )


def _inv22(ctx: Context) -> Iterator[Query]:
    for source, keys, extra in (
        ("fact_receipt_lines", "x.receipt_id_ext, x.line_num", "x.quantity > 0 AND "),
        ("fact_online_order_lines", "x.order_id_ext, x.line_num", ""),
        ("fact_reorders", "x.store_id, x.product_id, x.event_ts", ""),
    ):
        yield Query(
            f"SELECT {sql_list([source])} AS table_name, {keys}, x.product_id, p.launch_date "
            f"FROM {source} x JOIN dim_products p ON p.product_id = x.product_id "
            f"WHERE {extra}CAST(x.event_ts AS DATE) < p.launch_date AND <<rows:x.event_ts>>"
        )


def _inv23(ctx: Context) -> Iterator[Query]:
    # An order's refund comes days later, after the return (INV-37 times it).
    for parent, key, extra in (
        ("fact_receipts", "receipt_id_ext", ""),
        ("fact_online_order_headers", "order_id_ext", "AND x.status <> 'REFUNDED' "),
    ):
        yield Query(
            f"SELECT 'payment not after its parent on the same day' AS rule, x.transaction_id, "
            f"x.{key}, x.event_ts, h.event_ts AS parent_ts FROM fact_payments x "
            f"JOIN {parent} h ON h.{key} = x.{key} WHERE <<rows:x.event_ts>> {extra}"
            "AND (x.event_ts <= h.event_ts OR CAST(x.event_ts AS DATE) <> CAST(h.event_ts AS DATE))"
        )
    for child, keys, parent, key in (
        ("fact_receipt_lines", "x.receipt_id_ext, x.line_num", "fact_receipts", "receipt_id_ext"),
        ("fact_promotions", "x.receipt_id_ext", "fact_receipts", "receipt_id_ext"),
        ("fact_promo_lines", "x.receipt_id_ext, x.line_num", "fact_receipts", "receipt_id_ext"),
        ("fact_online_order_lines", "x.order_id_ext, x.line_num", "fact_online_order_headers",
         "order_id_ext"),
    ):
        yield Query(
            f"SELECT {sql_list([child])} AS table_name, {keys}, x.event_ts, "
            f"h.event_ts AS parent_ts FROM {child} x JOIN {parent} h ON h.{key} = x.{key} "
            "WHERE x.event_ts <> h.event_ts AND <<rows:x.event_ts>>"
        )
    # The original sale is context: read whole, whatever its date.
    yield Query(
        "SELECT * FROM (SELECT r.receipt_id_ext, r.return_for_receipt_id_ext, "
        + violations(
            ("r.event_ts <= o.event_ts", "return not after its sale"),
            ("CAST(r.event_ts AS DATE) - CAST(o.event_ts AS DATE) NOT BETWEEN 1 AND 15",
             "return not 1–15 days after its sale"),
            ("r.store_id <> o.store_id", "return at another store"),
            ("r.customer_id <> o.customer_id", "return by another customer"),
        )
        + " AS rule FROM fact_receipts r JOIN fact_receipts o "
        "ON o.receipt_id_ext = r.return_for_receipt_id_ext "
        "WHERE r.receipt_type = 'RETURN' AND <<scope:r.event_ts>> "
        "AND <<span:o.event_ts;r.event_ts>>) v WHERE rule <> ''"
    )


def _inv24(ctx: Context) -> Iterator[Query]:
    ship = "h.fulfillment_mode IN ('SHIP_FROM_DC', 'SHIP_FROM_STORE')"
    live = "l.fulfillment_status <> 'CANCELLED'"
    yield Query(
        "SELECT * FROM (SELECT l.order_id_ext, l.line_num, "
        + violations(
            (f"{live} AND {ship} AND NOT COALESCE(l.event_ts < l.picked_ts "
             "AND l.picked_ts <= l.shipped_ts AND l.shipped_ts <= l.delivered_ts, FALSE)",
             "ship mode: not created < picked <= shipped <= delivered"),
            (f"{live} AND h.fulfillment_mode = 'BOPIS' AND (l.shipped_ts IS NOT NULL "
             "OR NOT COALESCE(l.picked_ts <= l.delivered_ts, FALSE))",
             "BOPIS: shipped set or picked after delivered"),
            ("(l.fulfillment_status = 'CANCELLED') <> (h.order_status = 'CANCELLED')",
             "line CANCELLED iff header CANCELLED"),
            ("l.fulfillment_status = 'CANCELLED' AND (l.picked_ts IS NOT NULL "
             "OR l.shipped_ts IS NOT NULL OR l.delivered_ts IS NOT NULL)",
             "cancelled line with lifecycle times"),
            (f"{live} AND l.fulfillment_status <> CASE WHEN h.fulfillment_mode = 'BOPIS' "
             "THEN 'PICKED_UP' ELSE 'DELIVERED' END",
             "fulfillment_status does not match the mode"),
        )
        + " AS rule FROM fact_online_order_lines l "
        "JOIN fact_online_order_headers h ON h.order_id_ext = l.order_id_ext "
        "WHERE <<rows:l.event_ts>>) v WHERE rule <> ''"
    )
    yield Query(
        "WITH h AS (SELECT * FROM fact_online_order_headers WHERE <<rows:event_ts>>), "
        "a AS (SELECT order_id_ext, max(delivered_ts) AS delivered FROM fact_online_order_lines "
        "WHERE order_id_ext IN (SELECT order_id_ext FROM h) GROUP BY order_id_ext) "
        "SELECT * FROM (SELECT h.order_id_ext, "
        + violations(
            ("h.order_status = 'COMPLETED' AND h.completed_ts IS DISTINCT FROM a.delivered",
             "completed_ts <> max(delivered_ts)"),
            ("h.order_status = 'COMPLETED' AND h.cancelled_ts IS NOT NULL",
             "COMPLETED order with cancelled_ts"),
            ("h.order_status = 'CANCELLED' AND NOT COALESCE(h.cancelled_ts > h.event_ts, FALSE)",
             "cancelled_ts not after event_ts"),
            ("h.order_status = 'CANCELLED' AND h.completed_ts IS NOT NULL",
             "CANCELLED order with completed_ts"),
        )
        + " AS rule FROM h LEFT JOIN a ON a.order_id_ext = h.order_id_ext) v WHERE rule <> ''"
    )


CHECKS: tuple[Check, ...] = (
    Check("INV-20", "Events inside the generated range", _inv20),
    Check("INV-21", "Store operating hours", _inv21),
    Check("INV-22", "No sales before launch", _inv22),
    Check("INV-23", "Dependent timestamps", _inv23),
    Check("INV-24", "Online lifecycle order", _inv24),
)
