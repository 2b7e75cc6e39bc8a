"""Adversarial corruptions of the invariant catalogue, one per check id.

Each entry corrupts one row (or one entity) with generic SQL that works on any valid database,
the hand-built fixture or a generated one, and declares the exact set of checks that must then
fail. On a database with outbox events, corruptions that add or remove fact rows or move a row's
``event_ts`` also break INV-54 (:func:`expected_with_outbox`).

W-01 needs at least ``W01_MIN_RECEIPTS`` standard-store sales on plain days (no holiday effect,
no overlay) to be judged; the fixture's tests lower that floor.
"""

from __future__ import annotations

_FIRST_FOOT = (
    "(store_id, zone, event_ts) IN (SELECT store_id, zone, event_ts FROM fact_foot_traffic "
    "ORDER BY store_id, zone, event_ts LIMIT 1)"
)
_FIRST_SALE_NOT_RETURNED = (
    "SELECT receipt_id_ext, line_num FROM fact_receipt_lines WHERE quantity > 0 "
    "AND receipt_id_ext NOT IN (SELECT return_for_receipt_id_ext FROM fact_receipts "
    "WHERE return_for_receipt_id_ext IS NOT NULL) ORDER BY receipt_id_ext, line_num LIMIT 1"
)
_FIRST_ORDER_PAYMENT = (
    "SELECT min(transaction_id) FROM fact_payments WHERE order_id_ext IS NOT NULL "
    "AND status = 'APPROVED' AND attempt = 1"
)
_LINE_COLUMNS = (
    "line_num, event_ts, product_id, quantity, unit_price, unit_cents, discount_amount, "
    "discount_cents, ext_price, ext_cents, tax_amount, tax_cents, promo_code"
)
_STOCKOUT_COLUMNS = (
    "stockout_id, event_ts, store_id, dc_id, product_id, last_known_quantity, "
    "unfilled_quantity, source, detection_time"
)
_STORE_COLUMNS = (
    "address, geography_id, dc_id, tax_rate, location_type, volume_class, store_format, "
    "operating_hours, open_hour, close_hour, daily_traffic_multiplier"
)

#: check id → (corruption: one SQL statement or several, the checks that must then fail).
ADVERSARIAL: dict[str, tuple[str | tuple[str, ...], frozenset[str]]] = {
    "INV-01": (
        f"INSERT INTO fact_foot_traffic SELECT * FROM fact_foot_traffic WHERE {_FIRST_FOOT}",
        frozenset({"INV-01"}),
    ),
    "INV-02": (
        (
            "ALTER TABLE fact_foot_traffic ALTER COLUMN sensor_id DROP NOT NULL",
            f"UPDATE fact_foot_traffic SET sensor_id = NULL WHERE {_FIRST_FOOT}",
        ),
        frozenset({"INV-02"}),
    ),
    "INV-03": (
        "UPDATE dim_customers SET mobility_segment = 'SPACE_TRAVELER' "
        "WHERE customer_id = (SELECT min(customer_id) FROM dim_customers)",
        frozenset({"INV-03"}),
    ),
    "INV-04": (
        "UPDATE dim_customers SET primary_store_id = (SELECT max(store_id) + 1000 FROM dim_stores) "
        "WHERE customer_id = (SELECT min(customer_id) FROM dim_customers)",
        frozenset({"INV-04"}),
    ),
    "INV-05": (
        f"INSERT INTO fact_receipt_lines (receipt_id_ext, {_LINE_COLUMNS}) "
        f"SELECT 'RCP_ORPHAN', {_LINE_COLUMNS} FROM fact_receipt_lines "
        "WHERE (receipt_id_ext, line_num) IN (SELECT receipt_id_ext, line_num "
        "FROM fact_receipt_lines WHERE quantity > 0 ORDER BY receipt_id_ext, line_num LIMIT 1)",
        frozenset({"INV-05"}),
    ),
    "INV-06": (
        "UPDATE fact_online_order_headers SET dc_id = (SELECT min(dc_id) "
        "FROM dim_distribution_centers) WHERE order_id_ext = (SELECT min(order_id_ext) "
        "FROM fact_online_order_headers WHERE fulfillment_mode <> 'SHIP_FROM_DC')",
        frozenset({"INV-06"}),
    ),
    "INV-07": (
        "UPDATE dim_products SET cost_cents = sale_price_cents, cost = sale_price "
        "WHERE product_id = (SELECT min(product_id) FROM dim_products)",
        frozenset({"INV-07"}),
    ),
    "INV-08": (
        "UPDATE dim_stores SET operating_hours = CASE WHEN operating_hours = '24/7' "
        "THEN '9am-9pm' ELSE '24/7' END WHERE store_id = (SELECT min(store_id) FROM dim_stores)",
        frozenset({"INV-08"}),
    ),
    "INV-10": (
        "UPDATE fact_marketing SET cost = cost + 0.01 "
        "WHERE impression_id_ext = (SELECT min(impression_id_ext) FROM fact_marketing)",
        frozenset({"INV-10"}),
    ),
    "INV-11": (
        "UPDATE fact_online_order_lines SET promo_code = 'PROMO5' "
        "WHERE (order_id_ext, line_num) IN (SELECT order_id_ext, line_num "
        "FROM fact_online_order_lines WHERE promo_code IS NULL "
        "ORDER BY order_id_ext, line_num LIMIT 1)",
        frozenset({"INV-11"}),
    ),
    "INV-12": (
        "UPDATE fact_receipt_lines SET tax_cents = tax_cents + 1, tax_amount = tax_amount + 0.01 "
        f"WHERE (receipt_id_ext, line_num) IN ({_FIRST_SALE_NOT_RETURNED})",
        frozenset({"INV-12", "INV-13"}),
    ),
    "INV-13": (
        "UPDATE fact_receipts SET item_count = item_count + 1 WHERE receipt_id_ext = "
        "(SELECT min(receipt_id_ext) FROM fact_receipts WHERE receipt_type = 'SALE')",
        frozenset({"INV-13"}),
    ),
    "INV-14": (
        "UPDATE fact_online_order_headers SET item_count = item_count + 1 "
        "WHERE order_id_ext = (SELECT min(order_id_ext) FROM fact_online_order_headers)",
        frozenset({"INV-14"}),
    ),
    "INV-15": (
        "UPDATE fact_promotions SET product_ids = product_ids || ',0' "
        "WHERE receipt_id_ext = (SELECT min(receipt_id_ext) FROM fact_promotions)",
        frozenset({"INV-15"}),
    ),
    "INV-16": (
        "UPDATE fact_receipts SET payment_method = CASE WHEN payment_method = 'CASH' "
        "THEN 'CREDIT_CARD' ELSE 'CASH' END WHERE receipt_id_ext = "
        "(SELECT min(receipt_id_ext) FROM fact_receipts WHERE receipt_type = 'SALE')",
        frozenset({"INV-16"}),
    ),
    "INV-20": (
        "UPDATE fact_marketing SET event_ts = (SELECT CAST(first_day AS TIMESTAMP) "
        "FROM gen_watermark) - INTERVAL '1 minute' "
        "WHERE impression_id_ext = (SELECT min(impression_id_ext) FROM fact_marketing)",
        frozenset({"INV-20"}),
    ),
    "INV-21": (
        "UPDATE fact_store_ops SET event_ts = event_ts + INTERVAL '1 minute' "
        "WHERE (store_id, event_ts, operation_type) IN (SELECT store_id, event_ts, operation_type "
        "FROM fact_store_ops WHERE operation_type = 'OPENED' ORDER BY event_ts, store_id LIMIT 1)",
        frozenset({"INV-21"}),
    ),
    "INV-22": (
        "UPDATE dim_products SET launch_date = (SELECT CAST(min(event_ts) AS DATE) + 1 "
        "FROM fact_reorders) WHERE product_id = (SELECT product_id FROM fact_reorders "
        "ORDER BY event_ts, store_id, product_id LIMIT 1)",
        frozenset({"INV-22"}),
    ),
    "INV-23": (
        "UPDATE fact_payments SET event_ts = (SELECT r.event_ts FROM fact_receipts r "
        "WHERE r.receipt_id_ext = fact_payments.receipt_id_ext) WHERE transaction_id = "
        "(SELECT min(transaction_id) FROM fact_payments WHERE receipt_id_ext IS NOT NULL)",
        frozenset({"INV-23"}),
    ),
    "INV-24": (
        "UPDATE fact_online_order_lines SET picked_ts = event_ts "
        "WHERE (order_id_ext, line_num) IN (SELECT order_id_ext, line_num "
        "FROM fact_online_order_lines WHERE fulfillment_status = 'DELIVERED' "
        "ORDER BY order_id_ext, line_num LIMIT 1)",
        frozenset({"INV-24"}),
    ),
    "INV-30": (
        "UPDATE fact_store_inventory_txn SET balance = balance + 1 WHERE txn_id = "
        "(SELECT min(t.txn_id) FROM fact_store_inventory_txn t WHERE t.balance > 0 AND EXISTS "
        "(SELECT 1 FROM fact_store_inventory_txn u WHERE u.store_id = t.store_id "
        "AND u.product_id = t.product_id AND u.txn_id > t.txn_id AND u.balance > 0))",
        frozenset({"INV-30"}),
    ),
    "INV-31": (
        "UPDATE gen_state_inventory SET on_hand = on_hand + 1 WHERE node_type = 'STORE' "
        "AND (node_id, product_id) IN (SELECT store_id, product_id "
        "FROM fact_store_inventory_txn ORDER BY txn_id LIMIT 1)",
        frozenset({"INV-31"}),
    ),
    "INV-32": (
        "UPDATE fact_store_inventory_txn SET source = source || 'X' WHERE txn_id = "
        "(SELECT min(txn_id) FROM fact_store_inventory_txn WHERE txn_type = 'SALE' "
        "AND source LIKE 'RCP%' AND balance > 0)",
        frozenset({"INV-32"}),
    ),
    "INV-33": (
        "DELETE FROM fact_stockouts "
        "WHERE stockout_id = (SELECT min(stockout_id) FROM fact_stockouts)",
        frozenset({"INV-33"}),
    ),
    "INV-34": (
        "UPDATE fact_store_inventory_txn SET source = source || 'X' WHERE txn_id = "
        "(SELECT min(txn_id) FROM fact_store_inventory_txn "
        "WHERE txn_type IN ('DAMAGED', 'OUTBOUND_SHIPMENT') AND source LIKE 'RET%' "
        "AND balance > 0)",
        frozenset({"INV-34"}),
    ),
    "INV-35": (
        "UPDATE fact_reorders SET reorder_quantity = 201 "
        "WHERE (store_id, product_id, event_ts) IN (SELECT store_id, product_id, event_ts "
        "FROM fact_reorders ORDER BY event_ts, store_id, product_id LIMIT 1)",
        frozenset({"INV-35"}),
    ),
    "INV-36": (
        "UPDATE fact_store_inventory_txn SET event_ts = event_ts - INTERVAL '1 minute' "
        "WHERE txn_id = (SELECT min(txn_id) FROM fact_store_inventory_txn "
        "WHERE txn_type = 'ADJUSTMENT' AND balance > 0)",
        frozenset({"INV-36"}),
    ),
    "INV-37": (
        # A refund of an order that nothing came back for.
        "INSERT INTO fact_payments (transaction_id, event_ts, receipt_id_ext, order_id_ext, "
        "store_id, customer_id, payment_method, attempt, status, decline_reason, amount, "
        "amount_cents, processing_time_ms) SELECT transaction_id || '-R', event_ts, "
        "receipt_id_ext, order_id_ext, store_id, customer_id, payment_method, attempt, "
        "'REFUNDED', decline_reason, -0.01, -1, processing_time_ms FROM fact_payments "
        f"WHERE transaction_id = ({_FIRST_ORDER_PAYMENT})",
        frozenset({"INV-37"}),
    ),
    "INV-40": (
        "UPDATE fact_truck_moves SET event_ts = event_ts + INTERVAL '1 minute' "
        "WHERE status = 'SCHEDULED' "
        "AND shipment_id = (SELECT min(shipment_id) FROM fact_truck_moves)",
        frozenset({"INV-40"}),
    ),
    "INV-41": (
        "DELETE FROM gen_state_shipments "
        "WHERE shipment_id = (SELECT min(shipment_id) FROM gen_state_shipments)",
        frozenset({"INV-41"}),
    ),
    "INV-42": (
        "UPDATE fact_truck_inventory SET quantity = quantity + 1 WHERE action = 'UNLOAD' "
        "AND (shipment_id, product_id) IN (SELECT shipment_id, product_id "
        "FROM fact_truck_inventory WHERE action = 'UNLOAD' "
        "ORDER BY shipment_id, product_id LIMIT 1)",
        frozenset({"INV-42"}),
    ),
    "INV-43": (
        "UPDATE fact_truck_moves SET truck_id = (SELECT min(truck_id) FROM dim_trucks "
        "WHERE truck_type = 'SUPPLIER') "
        "WHERE shipment_id = (SELECT min(shipment_id) FROM fact_truck_moves)",
        frozenset({"INV-43"}),
    ),
    "INV-44": (
        "UPDATE fact_dc_inventory_txn SET event_ts = CAST(CAST(event_ts AS DATE) AS TIMESTAMP) "
        "+ INTERVAL '5 hours' WHERE txn_id = (SELECT min(txn_id) FROM fact_dc_inventory_txn "
        "WHERE txn_type = 'INBOUND_SHIPMENT')",
        frozenset({"INV-44"}),
    ),
    "INV-50": (
        f"UPDATE fact_foot_traffic SET dwell_seconds = 10000 WHERE {_FIRST_FOOT}",
        frozenset({"INV-50"}),
    ),
    "INV-51": (
        "UPDATE fact_ble_pings SET rssi = -10 "
        "WHERE ping_id = (SELECT min(ping_id) FROM fact_ble_pings)",
        frozenset({"INV-51"}),
    ),
    "INV-52": (
        "DELETE FROM fact_customer_zone_changes "
        "WHERE zone_change_id = (SELECT min(zone_change_id) FROM fact_customer_zone_changes)",
        frozenset({"INV-52"}),
    ),
    "INV-53": (
        "UPDATE fact_marketing SET cost_cents = 0, cost = 0 "
        "WHERE impression_id_ext = (SELECT min(impression_id_ext) FROM fact_marketing)",
        frozenset({"INV-53"}),
    ),
    "INV-54": (
        "INSERT INTO streaming_outbox (outbox_id, event_ts, message_type, payload, status, "
        "attempts, partition_key, trace_id, schema_version, source) "
        "SELECT 1, CAST(first_day AS TIMESTAMP) + INTERVAL '12 hours', 'receipt_created', '{}', "
        "'pending', 0, 'store:1', 'receipts:NO_SUCH_RECEIPT', '1.0', 'retail-datagen' "
        "FROM gen_watermark",
        frozenset({"INV-54"}),
    ),
    "W-01": (
        "UPDATE gen_metadata SET value = replace(value, '\"items_per_ticket_mean\":', "
        "'\"items_per_ticket_mean\":100') WHERE key = 'config_data'",
        frozenset({"W-01"}),
    ),
    # A store without any rows: its open days lack store_ops (INV-21) and sales (W-02).
    "W-02": (
        f"INSERT INTO dim_stores (store_id, store_number, {_STORE_COLUMNS}) "
        f"SELECT (SELECT max(store_id) + 1 FROM dim_stores), 'S_EXTRA', {_STORE_COLUMNS} "
        "FROM dim_stores WHERE store_id = (SELECT min(store_id) FROM dim_stores)",
        frozenset({"INV-21", "W-02"}),
    ),
    # Stockouts of every other product at one store-day: no depletions behind them (INV-33).
    "W-03": (
        f"INSERT INTO fact_stockouts ({_STOCKOUT_COLUMNS}) "
        "SELECT s.stockout_id + 500000000 + p.product_id, s.event_ts, s.store_id, s.dc_id, "
        "p.product_id, s.last_known_quantity, s.unfilled_quantity, s.source, s.detection_time "
        "FROM fact_stockouts s CROSS JOIN dim_products p WHERE s.stockout_id = "
        "(SELECT min(stockout_id) FROM fact_stockouts WHERE store_id IS NOT NULL) "
        "AND p.product_id <> s.product_id",
        frozenset({"INV-33", "W-03"}),
    ),
    "W-04": (
        "UPDATE gen_state_shipments SET scheduled_ts = scheduled_ts - INTERVAL '5 days' "
        "WHERE shipment_id = (SELECT min(shipment_id) FROM gen_state_shipments)",
        frozenset({"W-04"}),
    ),
}


#: Corruptions that add or remove fact rows or move a row's event_ts: on a database with an
#: outbox they also break its one-event-per-row correspondence (INV-54).
OUTBOX_VISIBLE: frozenset[str] = frozenset({
    "INV-01", "INV-05", "INV-20", "INV-21", "INV-23", "INV-33", "INV-36", "INV-37", "INV-40",
    "INV-44",
    "INV-52", "W-03",
})


def expected_with_outbox(check_id: str) -> frozenset[str]:
    """The checks a corruption breaks on a database whose outbox holds every fact row's event."""
    expected = ADVERSARIAL[check_id][1]
    return expected | {"INV-54"} if check_id in OUTBOX_VISIBLE else expected


#: check id → SQL run on the database *before* the corruption, returning one row of values that
#: identify the corrupted row or entity; some sample row of the check must contain them all.
PROBES: dict[str, str] = {
    "INV-01": "SELECT store_id, zone FROM fact_foot_traffic ORDER BY store_id, zone, event_ts "
              "LIMIT 1",
    "INV-02": "SELECT store_id, zone FROM fact_foot_traffic ORDER BY store_id, zone, event_ts "
              "LIMIT 1",
    "INV-03": "SELECT min(customer_id) FROM dim_customers",
    "INV-04": "SELECT min(customer_id) FROM dim_customers",
    "INV-05": "SELECT 'RCP_ORPHAN'",
    "INV-06": "SELECT min(order_id_ext) FROM fact_online_order_headers "
              "WHERE fulfillment_mode <> 'SHIP_FROM_DC'",
    "INV-07": "SELECT min(product_id) FROM dim_products",
    "INV-08": "SELECT min(store_id) FROM dim_stores",
    "INV-10": "SELECT min(impression_id_ext) FROM fact_marketing",
    "INV-11": "SELECT order_id_ext, line_num FROM fact_online_order_lines "
              "WHERE promo_code IS NULL ORDER BY order_id_ext, line_num LIMIT 1",
    "INV-12": _FIRST_SALE_NOT_RETURNED,
    "INV-13": "SELECT min(receipt_id_ext) FROM fact_receipts WHERE receipt_type = 'SALE'",
    "INV-14": "SELECT min(order_id_ext) FROM fact_online_order_headers",
    "INV-15": "SELECT min(receipt_id_ext) FROM fact_promotions",
    "INV-16": "SELECT min(receipt_id_ext) FROM fact_receipts WHERE receipt_type = 'SALE'",
    "INV-20": "SELECT min(impression_id_ext) FROM fact_marketing",
    "INV-21": "SELECT store_id, operation_type FROM fact_store_ops "
              "WHERE operation_type = 'OPENED' ORDER BY event_ts, store_id LIMIT 1",
    "INV-22": "SELECT product_id FROM fact_reorders ORDER BY event_ts, store_id, product_id "
              "LIMIT 1",
    "INV-23": "SELECT min(transaction_id) FROM fact_payments WHERE receipt_id_ext IS NOT NULL",
    "INV-24": "SELECT order_id_ext, line_num FROM fact_online_order_lines "
              "WHERE fulfillment_status = 'DELIVERED' ORDER BY order_id_ext, line_num LIMIT 1",
    "INV-30": "SELECT min(t.txn_id) FROM fact_store_inventory_txn t WHERE t.balance > 0 "
              "AND EXISTS (SELECT 1 FROM fact_store_inventory_txn u WHERE u.store_id = t.store_id "
              "AND u.product_id = t.product_id AND u.txn_id > t.txn_id AND u.balance > 0)",
    "INV-31": "SELECT store_id, product_id FROM fact_store_inventory_txn ORDER BY txn_id LIMIT 1",
    "INV-32": "SELECT min(txn_id) FROM fact_store_inventory_txn WHERE txn_type = 'SALE' "
              "AND source LIKE 'RCP%' AND balance > 0",
    "INV-33": "SELECT COALESCE(store_id, dc_id), product_id FROM fact_stockouts "
              "ORDER BY stockout_id LIMIT 1",
    "INV-34": "SELECT min(txn_id) FROM fact_store_inventory_txn WHERE txn_type IN "
              "('DAMAGED', 'OUTBOUND_SHIPMENT') AND source LIKE 'RET%' AND balance > 0",
    "INV-35": "SELECT store_id, product_id FROM fact_reorders "
              "ORDER BY event_ts, store_id, product_id LIMIT 1",
    "INV-36": "SELECT min(txn_id) FROM fact_store_inventory_txn "
              "WHERE txn_type = 'ADJUSTMENT' AND balance > 0",
    "INV-37": "SELECT order_id_ext FROM fact_payments WHERE transaction_id = "
              f"({_FIRST_ORDER_PAYMENT})",
    "INV-40": "SELECT min(shipment_id) FROM fact_truck_moves",
    "INV-41": "SELECT min(shipment_id) FROM gen_state_shipments",
    "INV-42": "SELECT shipment_id, product_id FROM fact_truck_inventory WHERE action = 'UNLOAD' "
              "ORDER BY shipment_id, product_id LIMIT 1",
    "INV-43": "SELECT min(shipment_id) FROM fact_truck_moves",
    "INV-44": "SELECT min(txn_id) FROM fact_dc_inventory_txn WHERE txn_type = 'INBOUND_SHIPMENT'",
    "INV-50": "SELECT store_id, zone FROM fact_foot_traffic ORDER BY store_id, zone, event_ts "
              "LIMIT 1",
    "INV-51": "SELECT min(ping_id) FROM fact_ble_pings",
    "INV-52": "SELECT store_id, visit_seq FROM fact_customer_zone_changes "
              "ORDER BY zone_change_id LIMIT 1",
    "INV-53": "SELECT min(impression_id_ext) FROM fact_marketing",
    "INV-54": "SELECT 'receipts:NO_SUCH_RECEIPT'",
    "W-02": "SELECT max(store_id) + 1 FROM dim_stores",
    "W-03": "SELECT store_id FROM fact_stockouts WHERE stockout_id = "
            "(SELECT min(stockout_id) FROM fact_stockouts WHERE store_id IS NOT NULL)",
    "W-04": "SELECT min(shipment_id) FROM gen_state_shipments",
}
