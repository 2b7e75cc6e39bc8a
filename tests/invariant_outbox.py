"""Outbox events for the invariant fixture: one event per fact row (fact-tables.md §20).

The payload is the row as written (``*_id_ext`` keys drop their suffix, DECIMAL as ``"12.34"``,
timestamps as ``YYYY-MM-DDTHH:MM:SS.ffffff``) plus ``trace_id``; ``outbox_id`` is a DSID over
each day's events in (event_ts, logical table order, trace_id) order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from retail_datagen.db import schema
from retail_datagen.db.fact_schema import FACT_TABLE_DB_NAMES, FACT_TABLES

Fetch = Callable[[str], list[dict[str, Any]]]


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def trace_id(logical: str, row: dict[str, Any]) -> str:
    """``<logical>:`` + the row's key values (fact-tables.md §0)."""
    parts = []
    for key in schema.primary_key(logical):
        value = row[key]
        parts.append(_iso(value) if isinstance(value, datetime) else str(value))
    return f"{logical}:" + ":".join(parts)


_TYPE_COLUMNS = {
    "receipts": ("receipt_type", {"SALE": "receipt_created", "RETURN": "receipt_returned"}),
    "truck_moves": ("status", {"SCHEDULED": "truck_scheduled", "LOADING": "truck_loading",
                               "IN_TRANSIT": "truck_departed", "ARRIVED": "truck_arrived",
                               "UNLOADING": "truck_unloading", "COMPLETED": "truck_completed"}),
    "truck_inventory": ("action", {"LOAD": "truck_loaded", "UNLOAD": "truck_unloaded"}),
    "store_ops": ("operation_type", {"OPENED": "store_opened", "CLOSED": "store_closed"}),
}
_CONSTANT_TYPES = {
    "dc_inventory_txn": "inventory_updated", "store_inventory_txn": "inventory_updated",
    "receipt_lines": "receipt_line_added", "foot_traffic": "customer_entered",
    "ble_pings": "ble_ping_detected", "customer_zone_changes": "customer_zone_changed",
    "marketing": "ad_impression", "online_orders": "online_order_created",
    "online_order_lines": "online_order_line_added", "fact_payments": "payment_processed",
    "stockouts": "stockout_detected", "promotions": "promotion_applied",
    "promo_lines": "promotion_line_applied", "reorders": "reorder_triggered",
}


def message_type(logical: str, row: dict[str, Any]) -> str:
    """The event's message_type (fact-tables.md §20)."""
    if logical in _TYPE_COLUMNS:
        column, mapping = _TYPE_COLUMNS[logical]
        return mapping[row[column]]
    return _CONSTANT_TYPES[logical]


def dsid(day: date, n: int, unit: int = 1) -> int:
    """Day-sequenced id: YYYYMMDD × 10^11 + unit × 10^8 + n (the fixture's stores are at DC 1)."""
    return int(day.strftime("%Y%m%d")) * 10**11 + unit * 10**8 + n


def outbox_rows(fetch: Fetch) -> list[dict[str, Any]]:
    """One outbox row per fact row, with outbox ids as a DSID over each unit-day's events."""
    rows = {t: fetch(f"SELECT * FROM {FACT_TABLE_DB_NAMES[t]}") for t in FACT_TABLES}
    receipt_store = {r["receipt_id_ext"]: r["store_id"] for r in rows["receipts"]}
    store_dc = {r["store_id"]: r["dc_id"] for r in fetch("SELECT store_id, dc_id FROM dim_stores")}

    def unit(key: str) -> int:
        kind, value = key.split(":", 1)
        if kind == "store":
            return store_dc[int(value)]
        if kind == "dc":
            return int(value)
        return int(value[11:15]) if kind == "order" else 0
    shipment_dc = {r["shipment_id"]: r["dc_id"] for r in rows["truck_moves"]}

    def partition(logical: str, row: dict[str, Any]) -> str:
        if logical in ("receipt_lines", "promo_lines"):
            return f"store:{receipt_store[row['receipt_id_ext']]}"
        if logical in ("truck_moves", "truck_inventory"):
            return f"dc:{shipment_dc[row['shipment_id']]}"
        if logical in ("online_orders", "online_order_lines"):
            return f"order:{row['order_id_ext']}"
        if logical == "marketing":
            return f"campaign:{row['campaign_id']}"
        if logical == "fact_payments" and row["order_id_ext"] is not None:
            return f"order:{row['order_id_ext']}"
        if row.get("store_id") is not None:
            return f"store:{row['store_id']}"
        return f"dc:{row['dc_id']}"

    def correlation(logical: str, row: dict[str, Any]) -> str | None:
        if logical in ("receipt_lines", "promotions", "promo_lines"):
            return row["receipt_id_ext"]
        if logical == "receipts":
            return row["return_for_receipt_id_ext"]
        if logical in ("dc_inventory_txn", "store_inventory_txn"):
            return row["source"]
        if logical == "fact_payments":
            return row["receipt_id_ext"] or row["order_id_ext"]
        if logical == "online_order_lines":
            return row["order_id_ext"]
        if logical in ("truck_moves", "truck_inventory"):
            return row["shipment_id"]
        return None

    events = []
    for order, logical in enumerate(FACT_TABLES):
        for row in rows[logical]:
            payload = {(k[: -len("_ext")] if k.endswith("_id_ext") else k): _json_value(v)
                       for k, v in row.items()}
            trace = trace_id(logical, row)
            payload["trace_id"] = trace
            events.append((row["event_ts"], order, trace, logical, row, payload))
    events.sort(key=lambda e: e[:3])
    out, per_day = [], {}
    for event_ts, _, trace, logical, row, payload in events:
        key = partition(logical, row)
        day_unit = (event_ts.date(), unit(key))
        n = per_day[day_unit] = per_day.get(day_unit, 0) + 1
        out.append({
            "outbox_id": dsid(*day_unit[:1], n, day_unit[1]), "event_ts": event_ts,
            "message_type": message_type(logical, row), "payload": json.dumps(payload),
            "status": "pending", "attempts": 0, "partition_key": key,
            "trace_id": trace, "correlation_id": correlation(logical, row),
            "schema_version": schema.SCHEMA_VERSION, "source": "retail-datagen",
        })
    return out
