"""Invariants E: online returns (INV-37).

A returned online order brings whole lines back to a store (the fulfilling store, or the
customer's primary store for an order shipped from a DC) after its delivery, and gets one
REFUNDED payment of exactly the ext + tax of those lines (docs/realism.md).
"""

from __future__ import annotations

from collections.abc import Iterator

from retail_datagen.validation.core import Check, Context, Query, violations

_BACK = ("SELECT txn_id, store_id, product_id, source, quantity, event_ts "
         "FROM fact_store_inventory_txn WHERE txn_type = 'RETURN' AND source LIKE 'ONL%'")


def _inv37(ctx: Context) -> Iterator[Query]:
    yield Query(
        f"WITH t AS ({_BACK} AND <<rows:event_ts>>) "
        "SELECT * FROM (SELECT t.txn_id, t.source, t.store_id, t.product_id, "
        + violations(
            ("h.order_id_ext IS NULL", "online RETURN without its order"),
            ("h.order_status <> 'COMPLETED'", "online RETURN of an order that is not COMPLETED"),
            ("t.store_id <> COALESCE(h.store_id, c.primary_store_id)",
             "online RETURN at another store than the fulfilling or the customer's primary one"),
            ("t.event_ts <= h.completed_ts", "online RETURN not after the delivery"),
            ("l.order_id_ext IS NULL", "online RETURN of a product not on the order"),
            ("t.quantity <> l.quantity", "online RETURN quantity differs from the line filled"),
        )
        + " AS rule FROM t LEFT JOIN fact_online_order_headers h ON h.order_id_ext = t.source "
        "LEFT JOIN dim_customers c ON c.customer_id = h.customer_id "
        "LEFT JOIN fact_online_order_lines l ON l.order_id_ext = t.source "
        "AND l.product_id = t.product_id) v WHERE rule <> ''"
    )
    yield Query(
        "SELECT 'online order line returned more than once' AS rule, source, product_id, "
        f"count(*) AS returns FROM ({_BACK}) t GROUP BY source, product_id "
        "HAVING count(*) > 1 AND max(CASE WHEN <<rows:event_ts>> THEN 1 ELSE 0 END) = 1"
    )
    yield Query(
        "WITH r AS (SELECT transaction_id, order_id_ext, amount_cents, event_ts FROM fact_payments "
        "WHERE status = 'REFUNDED' AND order_id_ext IS NOT NULL AND <<rows:event_ts>>), "
        "b AS (SELECT t.source, sum(l.ext_cents + l.tax_cents) AS cents, max(t.event_ts) AS ts "
        f"FROM ({_BACK}) t JOIN fact_online_order_lines l ON l.order_id_ext = t.source "
        "AND l.product_id = t.product_id "
        "WHERE t.source IN (SELECT order_id_ext FROM r) GROUP BY t.source) "
        "SELECT * FROM (SELECT r.transaction_id, r.order_id_ext, r.amount_cents, b.cents, "
        + violations(
            ("b.source IS NULL", "order refund without returned lines"),
            ("-r.amount_cents <> b.cents", "order refund differs from the returned lines' ext + tax"),
            ("r.event_ts <= b.ts", "order refund not after the return"),
        )
        + " AS rule FROM r LEFT JOIN b ON b.source = r.order_id_ext) v WHERE rule <> ''"
    )
    yield Query(
        f"SELECT 'online RETURN without a refund' AS rule, t.txn_id, t.source FROM ({_BACK}) t "
        "WHERE <<rows:t.event_ts>> AND NOT EXISTS (SELECT 1 FROM fact_payments p "
        "WHERE p.order_id_ext = t.source AND p.status = 'REFUNDED')"
    )
    yield Query(
        "WITH d AS (SELECT txn_id, txn_type, source, store_id, product_id, quantity "
        "FROM fact_store_inventory_txn WHERE txn_type IN ('DAMAGED', 'OUTBOUND_SHIPMENT') "
        "AND source LIKE 'ONL%' AND <<rows:event_ts>>), "
        "b AS (SELECT source, store_id, product_id, sum(quantity) AS back "
        f"FROM ({_BACK}) t GROUP BY source, store_id, product_id) "
        "SELECT 'disposition above the quantity returned online' AS rule, d.txn_id, d.txn_type, "
        "d.source, d.product_id, d.quantity, COALESCE(b.back, 0) AS back FROM d LEFT JOIN b "
        "ON b.source = d.source AND b.store_id = d.store_id AND b.product_id = d.product_id "
        "WHERE -d.quantity > COALESCE(b.back, 0)"
    )


CHECKS: tuple[Check, ...] = (
    Check("INV-37", "Online returns are consistent", _inv37),
)
