"""Invariants D: inventory (INV-30 … INV-36).

Running balances are evaluated over each (node, product) series' full row set (ordered by
``txn_id``); a series is in scope when any of its txns is. Checks that need a series' whole
history are skipped for a txn table that some logged day excluded (``Query.whole``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from retail_datagen.validation.core import Check, Context, Query, violations


@dataclass(frozen=True)
class TxnTable:
    """One of the two inventory txn tables, with its node column and ``gen_*`` node type."""

    name: str
    node: str
    node_type: str


TXN_TABLES: tuple[TxnTable, ...] = (
    TxnTable("fact_store_inventory_txn", "store_id", "STORE"),
    TxnTable("fact_dc_inventory_txn", "dc_id", "DC"),
)


def _inv30(ctx: Context) -> Iterator[Query]:
    for t in TXN_TABLES:
        yield Query(
            f"WITH s AS (SELECT x.txn_id, x.{t.node} AS node, x.product_id, x.event_ts, "
            "x.quantity, x.balance, g.quantity AS initial, "
            f"lag(x.balance) OVER (PARTITION BY x.{t.node}, x.product_id ORDER BY x.txn_id) "
            "AS prev, "
            f"row_number() OVER (PARTITION BY x.{t.node}, x.product_id ORDER BY x.txn_id) AS rn, "
            f"max(CASE WHEN <<scope:x.event_ts>> THEN 1 ELSE 0 END) OVER "
            f"(PARTITION BY x.{t.node}, x.product_id) AS in_scope "
            f"FROM {t.name} x LEFT JOIN gen_initial_inventory g ON g.node_type = '{t.node_type}' "
            f"AND g.node_id = x.{t.node} AND g.product_id = x.product_id) "
            f"SELECT '{t.name}' AS table_name, txn_id, node, product_id, quantity, balance, "
            "CASE WHEN rn = 1 THEN initial ELSE prev END AS previous_balance FROM s "
            "WHERE in_scope = 1 AND ((rn > 1 AND balance <> prev + quantity) "
            "OR (rn = 1 AND balance - quantity IS DISTINCT FROM initial))",
            whole=(t.name,),
        )


def _inv31(ctx: Context) -> Iterator[Query]:
    for t in TXN_TABLES:
        yield Query(
            f"SELECT * FROM (SELECT '{t.name}' AS table_name, txn_id, "
            + violations(("balance < 0", "balance < 0"), ("quantity = 0", "quantity = 0"))
            + f" AS rule FROM {t.name} WHERE <<rows:event_ts>>) v WHERE rule <> ''"
        )
    yield Query(
        "SELECT * FROM (SELECT node_type, node_id, product_id, "
        + violations(
            ("on_hand < 0", "on_hand < 0"),
            ("in_transit < 0", "in_transit < 0"),
            ("on_order < 0", "on_order < 0"),
        )
        + " AS rule FROM gen_state_inventory) v WHERE rule <> ''"
    )
    # The state holds the end of the generated range, so every logged day must include the
    # table for its last balance to be comparable.
    for t in TXN_TABLES:
        yield Query(
            f"WITH s AS (SELECT {t.node} AS node, product_id, balance, "
            f"row_number() OVER (PARTITION BY {t.node}, product_id ORDER BY txn_id DESC) AS rn, "
            f"max(CASE WHEN <<scope:event_ts>> THEN 1 ELSE 0 END) OVER "
            f"(PARTITION BY {t.node}, product_id) AS in_scope FROM {t.name}) "
            "SELECT 'on_hand differs from the last balance' AS rule, "
            f"'{t.node_type}' AS node_type, "
            "s.node, s.product_id, s.balance AS last_balance, g.on_hand FROM s "
            f"LEFT JOIN gen_state_inventory g ON g.node_type = '{t.node_type}' "
            "AND g.node_id = s.node AND g.product_id = s.product_id "
            "WHERE s.rn = 1 AND s.in_scope = 1 AND g.on_hand IS DISTINCT FROM s.balance",
            whole=(t.name,),
            whole_to_last=True,
        )


def _match(name: str, left: str, right: str) -> Query:
    """Full outer join of line-side and txn-side rows; unmatched rows on either side."""
    return Query(
        f"WITH l AS ({left}), t AS ({right}) "
        f"SELECT CASE WHEN t.txn_id IS NULL THEN 'line without {name} txn' "
        f"ELSE '{name} txn without line' END AS rule, COALESCE(l.source, t.source) AS source, "
        "COALESCE(l.product_id, t.product_id) AS product_id, l.line_num, t.txn_id "
        "FROM l FULL OUTER JOIN t ON l.node = t.node AND l.product_id = t.product_id "
        "AND l.source = t.source AND l.qty = t.qty AND l.event_ts = t.event_ts "
        "WHERE l.source IS NULL OR t.txn_id IS NULL"
    )


def _inv32(ctx: Context) -> Iterator[Query]:
    def receipt_lines(receipt_type: str) -> str:
        return (
            "SELECT r.store_id AS node, l.product_id, l.receipt_id_ext AS source, "
            "-l.quantity AS qty, l.event_ts, l.line_num FROM fact_receipt_lines l "
            "JOIN fact_receipts r ON r.receipt_id_ext = l.receipt_id_ext "
            f"WHERE r.receipt_type = '{receipt_type}' AND <<rows:l.event_ts>>"
        )

    def txns(table: str, node: str, txn_type: str, prefix: str) -> str:
        return (
            f"SELECT txn_id, {node} AS node, product_id, source, quantity AS qty, event_ts "
            f"FROM {table} WHERE txn_type = '{txn_type}' AND source LIKE '{prefix}%' "
            "AND <<rows:event_ts>>"
        )

    def online_lines(node: str, dc_mode: bool) -> str:
        mode = "=" if dc_mode else "<>"
        return (
            f"SELECT h.{node} AS node, l.product_id, l.order_id_ext AS source, "
            "-l.quantity AS qty, l.event_ts, l.line_num FROM fact_online_order_lines l "
            "JOIN fact_online_order_headers h ON h.order_id_ext = l.order_id_ext "
            f"WHERE h.fulfillment_mode {mode} 'SHIP_FROM_DC' "
            "AND l.fulfillment_status <> 'CANCELLED' AND <<rows:l.event_ts>>"
        )

    store = "fact_store_inventory_txn"
    yield _match("SALE", receipt_lines("SALE"), txns(store, "store_id", "SALE", "RCP"))
    yield _match("SALE", online_lines("store_id", False), txns(store, "store_id", "SALE", "ONL"))
    yield _match(
        "SALE", online_lines("dc_id", True), txns("fact_dc_inventory_txn", "dc_id", "SALE", "ONL")
    )
    # Both sides compare the txn quantity with −line.quantity: −qty for a sale, +qty back in.
    yield _match("RETURN", receipt_lines("RETURN"), txns(store, "store_id", "RETURN", "RET"))


def _inv33(ctx: Context) -> Iterator[Query]:
    for t in TXN_TABLES:
        yield Query(
            f"WITH s AS (SELECT x.txn_id, x.{t.node} AS node, x.product_id, x.event_ts, x.source, "
            "x.balance, COALESCE(lag(x.balance) OVER "
            f"(PARTITION BY x.{t.node}, x.product_id ORDER BY x.txn_id), g.quantity) AS prev "
            f"FROM {t.name} x LEFT JOIN gen_initial_inventory g ON g.node_type = '{t.node_type}' "
            f"AND g.node_id = x.{t.node} AND g.product_id = x.product_id), "
            "d AS (SELECT * FROM s WHERE balance = 0 AND prev > 0 AND <<rows:event_ts>>), "
            f"o AS (SELECT stockout_id, {t.node} AS node, product_id, event_ts, source, "
            "last_known_quantity, unfilled_quantity, detection_time FROM fact_stockouts "
            f"WHERE {t.node} IS NOT NULL AND <<rows:event_ts>>) "
            "SELECT * FROM (SELECT o.stockout_id, d.txn_id, COALESCE(o.node, d.node) AS node, "
            "COALESCE(o.product_id, d.product_id) AS product_id, "
            "COALESCE(o.event_ts, d.event_ts) AS event_ts, "
            + violations(
                ("d.txn_id IS NULL", "stockout without a depleting txn"),
                ("o.stockout_id IS NULL", "depleting txn without a stockout"),
                ("o.last_known_quantity <> d.prev", "last_known_quantity <> previous balance"),
                ("o.detection_time <> o.event_ts", "detection_time <> event_ts"),
                ("o.unfilled_quantity < 0", "unfilled_quantity < 0"),
            )
            + " AS rule FROM d FULL OUTER JOIN o ON d.node = o.node "
            "AND d.product_id = o.product_id AND d.event_ts = o.event_ts "
            "AND d.source = o.source) v "
            "WHERE rule <> ''",
            whole=(t.name,),
        )


def _inv34(ctx: Context) -> Iterator[Query]:
    yield Query(
        "SELECT 'SALE receipt returned more than once' AS rule, return_for_receipt_id_ext, "
        "count(*) AS returns FROM fact_receipts WHERE receipt_type = 'RETURN' "
        "AND return_for_receipt_id_ext IS NOT NULL GROUP BY return_for_receipt_id_ext "
        "HAVING count(*) > 1 AND max(CASE WHEN <<rows:event_ts>> THEN 1 ELSE 0 END) = 1"
    )
    yield Query(
        "WITH r AS (SELECT r.receipt_id_ext AS ret, r.return_for_receipt_id_ext AS orig "
        "FROM fact_receipts r LEFT JOIN fact_receipts o "
        "ON o.receipt_id_ext = r.return_for_receipt_id_ext "
        "WHERE r.receipt_type = 'RETURN' AND <<scope:r.event_ts>> "
        "AND <<span:COALESCE(o.event_ts, r.event_ts - INTERVAL '15 days');r.event_ts>>), "
        # A return brings back some of the sale's lines (every non-food line, few food lines):
        # each return line is the exact negative of the sale line with its line number.
        "rl AS (SELECT r.ret, r.orig, l.line_num, l.product_id, -l.quantity AS qty, "
        "-l.discount_cents AS discount, -l.ext_cents AS ext, -l.tax_cents AS tax FROM r "
        "JOIN fact_receipt_lines l ON l.receipt_id_ext = r.ret) "
        "SELECT 'return line not matching its sale line' AS rule, rl.ret AS receipt_id_ext, "
        "rl.line_num, rl.product_id FROM rl LEFT JOIN fact_receipt_lines o "
        "ON o.receipt_id_ext = rl.orig AND o.line_num = rl.line_num "
        "AND o.product_id = rl.product_id AND o.quantity = rl.qty "
        "AND o.discount_cents = rl.discount AND o.ext_cents = rl.ext AND o.tax_cents = rl.tax "
        "WHERE o.receipt_id_ext IS NULL"
    )
    yield Query(
        "WITH t AS (SELECT txn_id, txn_type, product_id, source, quantity "
        "FROM fact_store_inventory_txn WHERE txn_type IN ('DAMAGED', 'OUTBOUND_SHIPMENT') "
        "AND source LIKE 'RET%' AND <<rows:event_ts>>), "
        "rl AS (SELECT receipt_id_ext, product_id, -sum(quantity) AS returned "
        "FROM fact_receipt_lines WHERE receipt_id_ext IN (SELECT source FROM t) "
        "GROUP BY receipt_id_ext, product_id) "
        "SELECT 'disposition above the returned quantity' AS rule, t.txn_id, t.txn_type, t.source, "
        "t.product_id, t.quantity, COALESCE(rl.returned, 0) AS returned FROM t "
        "LEFT JOIN rl ON rl.receipt_id_ext = t.source AND rl.product_id = t.product_id "
        "WHERE abs(t.quantity) > COALESCE(rl.returned, 0)"
    )


def _inv35(ctx: Context) -> Iterator[Query]:
    gap = "(r.reorder_point - r.current_quantity - r.in_transit_quantity)"
    priority = (
        f"CASE WHEN r.reorder_point > 0 AND 2 * {gap} >= r.reorder_point THEN 'URGENT' "
        f"WHEN r.reorder_point > 0 AND 4 * {gap} >= r.reorder_point THEN 'HIGH' ELSE 'NORMAL' END"
    )
    yield Query(
        "SELECT * FROM (SELECT r.store_id, r.product_id, r.event_ts, "
        + violations(
            ("r.current_quantity + r.in_transit_quantity > r.reorder_point",
             "on hand + in transit above the reorder point"),
            (f"r.priority <> {priority}", "priority differs from the rule"),
            ("r.allocated_quantity NOT BETWEEN 0 AND r.reorder_quantity",
             "allocated outside [0, reorder_quantity]"),
            ("r.reorder_quantity NOT BETWEEN 50 AND 200", "reorder_quantity outside [50, 200]"),
            ("r.dc_id <> s.dc_id", "dc_id differs from the store's"),
        )
        + " AS rule FROM fact_reorders r LEFT JOIN dim_stores s ON s.store_id = r.store_id "
        "WHERE <<rows:r.event_ts>>) v WHERE rule <> ''"
    )
    yield Query(
        "SELECT 'reorder_point differs from the initial one' AS rule, r.store_id, r.product_id, "
        "r.event_ts, r.reorder_point, g.reorder_point AS initial_reorder_point "
        "FROM fact_reorders r LEFT JOIN gen_initial_inventory g ON g.node_type = 'STORE' "
        "AND g.node_id = r.store_id AND g.product_id = r.product_id "
        "WHERE <<rows:r.event_ts>> AND r.reorder_point IS DISTINCT FROM g.reorder_point"
    )
    yield Query(
        "WITH a AS (SELECT store_id, CAST(event_ts AS DATE) AS dd, "
        "sum(allocated_quantity) AS allocated FROM fact_reorders WHERE <<rows:event_ts>> "
        "GROUP BY store_id, CAST(event_ts AS DATE)), "
        "o AS (SELECT m.store_id, CAST(m.event_ts AS DATE) AS dd, -sum(t.quantity) AS shipped "
        "FROM fact_dc_inventory_txn t JOIN fact_truck_moves m ON m.shipment_id = t.source "
        "AND m.status = 'SCHEDULED' WHERE t.txn_type = 'OUTBOUND_SHIPMENT' "
        "AND <<rows:m.event_ts>> GROUP BY m.store_id, CAST(m.event_ts AS DATE)) "
        "SELECT 'Σ allocated <> units shipped to the store that day' AS rule, "
        "COALESCE(a.store_id, o.store_id) AS store_id, COALESCE(a.dd, o.dd) AS day, "
        "COALESCE(a.allocated, 0) AS allocated, COALESCE(o.shipped, 0) AS shipped "
        "FROM a FULL OUTER JOIN o ON a.store_id = o.store_id AND a.dd = o.dd "
        "WHERE COALESCE(a.allocated, 0) <> COALESCE(o.shipped, 0)"
    )


def _inv36(ctx: Context) -> Iterator[Query]:
    yield Query(
        "SELECT * FROM (SELECT txn_id, "
        + violations(
            ("CAST(event_ts AS TIME) <> TIME '22:00:00'", "not at 22:00:00"),
            ("abs(quantity) > 5", "|quantity| > 5"),
            ("EXTRACT(month FROM event_ts) = 12 AND EXTRACT(day FROM event_ts) = 25", "on Dec 25"),
        )
        + " AS rule FROM fact_store_inventory_txn WHERE txn_type = 'ADJUSTMENT' "
        "AND <<rows:event_ts>>) v WHERE rule <> ''"
    )


CHECKS: tuple[Check, ...] = (
    Check("INV-30", "Running-balance continuity", _inv30),
    Check("INV-31", "Never negative", _inv31),
    Check("INV-32", "Sales ↔ inventory", _inv32),
    Check("INV-33", "Stockouts ↔ depletions", _inv33),
    Check("INV-34", "Returns are consistent", _inv34),
    Check("INV-35", "Reorders follow the rule", _inv35),
    Check("INV-36", "Cycle counts", _inv36),
)
