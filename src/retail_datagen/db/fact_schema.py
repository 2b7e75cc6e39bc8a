"""Contract definitions of the 18 fact tables (fact-tables.md §1–§18).

Each table is described once, as a list of column specs that carry the DB name, the SQLAlchemy
type, the nullability and the PascalCase generator name. The SQLAlchemy ``Table`` objects, the
generator→DB name maps and the Arrow/DuckDB contracts are all derived from that single list, so
they cannot drift apart. :mod:`retail_datagen.db.schema` owns the ``MetaData`` and re-exports the
public names defined here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.types import TypeEngine

#: Logical fact table names, in the order of api.md §4.1 (also the outbox tie-break order).
FACT_TABLES: tuple[str, ...] = (
    "dc_inventory_txn",
    "truck_moves",
    "truck_inventory",
    "store_inventory_txn",
    "receipts",
    "receipt_lines",
    "foot_traffic",
    "ble_pings",
    "customer_zone_changes",
    "marketing",
    "online_orders",
    "online_order_lines",
    "fact_payments",
    "store_ops",
    "stockouts",
    "promotions",
    "promo_lines",
    "reorders",
)

#: Logical fact table name → database table name (fact-tables.md §0).
FACT_TABLE_DB_NAMES: dict[str, str] = {
    "dc_inventory_txn": "fact_dc_inventory_txn",
    "truck_moves": "fact_truck_moves",
    "truck_inventory": "fact_truck_inventory",
    "store_inventory_txn": "fact_store_inventory_txn",
    "receipts": "fact_receipts",
    "receipt_lines": "fact_receipt_lines",
    "foot_traffic": "fact_foot_traffic",
    "ble_pings": "fact_ble_pings",
    "customer_zone_changes": "fact_customer_zone_changes",
    "marketing": "fact_marketing",
    "online_orders": "fact_online_order_headers",
    "online_order_lines": "fact_online_order_lines",
    "fact_payments": "fact_payments",
    "store_ops": "fact_store_ops",
    "stockouts": "fact_stockouts",
    "promotions": "fact_promotions",
    "promo_lines": "fact_promo_lines",
    "reorders": "fact_reorders",
}

# Every fact FK points at a dimension id of the same column name.
_DIM_FK_TARGETS: dict[str, str] = {
    "store_id": "dim_stores.store_id",
    "dc_id": "dim_distribution_centers.dc_id",
    "product_id": "dim_products.product_id",
    "customer_id": "dim_customers.customer_id",
    "truck_id": "dim_trucks.truck_id",
}


@dataclass(frozen=True)
class _Col:
    name: str
    type_: type[TypeEngine] | TypeEngine
    gen: str
    nullable: bool = False


@dataclass(frozen=True)
class _FactSpec:
    logical: str
    columns: tuple[_Col, ...]
    pk: tuple[str, ...]
    fks: tuple[str, ...] = field(default=())


def _c(name: str, type_: type[TypeEngine] | TypeEngine, gen: str, *, null: bool = False) -> _Col:
    return _Col(name, type_, gen, null)


def _money(base: str, gen_amount: str, gen_cents: str) -> tuple[_Col, _Col]:
    """``MONEY base`` → ``base_amount DECIMAL(18,2)``, ``base_cents BIGINT``."""
    return _money_pair(f"{base}_amount", f"{base}_cents", gen_amount, gen_cents)


def _money_pair(amount: str, cents: str, gen_amount: str, gen_cents: str) -> tuple[_Col, _Col]:
    """A MONEY row that names both of its columns explicitly (e.g. ``unit_price``/``unit_cents``)."""
    return (_Col(amount, Numeric(18, 2), gen_amount), _Col(cents, BigInteger, gen_cents))


_TS = DateTime
_V = String

# Receipt headers and online order headers share these five money rows (fact-tables.md §5, §11).
_HEADER_MONEY: tuple[_Col, ...] = (
    *_money("gross_subtotal", "GrossSubtotal", "GrossSubtotalCents"),
    *_money("discount", "DiscountAmount", "DiscountCents"),
    *_money("subtotal", "Subtotal", "SubtotalCents"),
    *_money("tax", "Tax", "TaxCents"),
    *_money("total", "Total", "TotalCents"),
)

# Receipt lines and online order lines share these four money rows (fact-tables.md §6, §12).
_LINE_MONEY: tuple[_Col, ...] = (
    *_money_pair("unit_price", "unit_cents", "UnitPrice", "UnitCents"),
    *_money("discount", "DiscountAmount", "DiscountCents"),
    *_money_pair("ext_price", "ext_cents", "ExtPrice", "ExtCents"),
    *_money("tax", "Tax", "TaxCents"),
)

_SPECS: tuple[_FactSpec, ...] = (
    _FactSpec(
        "dc_inventory_txn",
        (
            _c("txn_id", BigInteger, "TxnId"),
            _c("event_ts", _TS, "EventTS"),
            _c("dc_id", BigInteger, "DCID"),
            _c("product_id", BigInteger, "ProductID"),
            _c("txn_type", _V, "TxnType"),
            _c("quantity", Integer, "Quantity"),
            _c("balance", Integer, "Balance"),
            _c("source", _V, "Source"),
            _c("truck_id", BigInteger, "TruckID", null=True),
        ),
        pk=("txn_id",),
        fks=("dc_id", "product_id", "truck_id"),
    ),
    _FactSpec(
        "truck_moves",
        (
            _c("shipment_id", _V, "ShipmentId"),
            _c("status", _V, "Status"),
            _c("event_ts", _TS, "EventTS"),
            _c("truck_id", BigInteger, "TruckID"),
            _c("dc_id", BigInteger, "DCID"),
            _c("store_id", BigInteger, "StoreID"),
            _c("refrigerated", Boolean, "Refrigerated"),
            _c("unit_count", Integer, "UnitCount"),
            _c("departure_time", _TS, "DepartureTime"),
            _c("eta", _TS, "ETA"),
            _c("etd", _TS, "ETD"),
            _c("unload_duration_minutes", Integer, "UnloadDurationMinutes", null=True),
        ),
        pk=("shipment_id", "status"),
        fks=("truck_id", "dc_id", "store_id"),
    ),
    _FactSpec(
        "truck_inventory",
        (
            _c("event_ts", _TS, "EventTS"),
            _c("truck_id", BigInteger, "TruckID"),
            _c("shipment_id", _V, "ShipmentId"),
            _c("product_id", BigInteger, "ProductID"),
            _c("quantity", Integer, "Quantity"),
            _c("action", _V, "Action"),
            _c("location_id", BigInteger, "LocationID"),
            _c("location_type", _V, "LocationType"),
        ),
        pk=("shipment_id", "product_id", "action"),
        fks=("truck_id", "product_id"),
    ),
    _FactSpec(
        "store_inventory_txn",
        (
            _c("txn_id", BigInteger, "TxnId"),
            _c("event_ts", _TS, "EventTS"),
            _c("store_id", BigInteger, "StoreID"),
            _c("product_id", BigInteger, "ProductID"),
            _c("txn_type", _V, "TxnType"),
            _c("quantity", Integer, "Quantity"),
            _c("balance", Integer, "Balance"),
            _c("source", _V, "Source"),
        ),
        pk=("txn_id",),
        fks=("store_id", "product_id"),
    ),
    _FactSpec(
        "receipts",
        (
            _c("receipt_id_ext", _V, "ReceiptId"),
            _c("receipt_type", _V, "ReceiptType"),
            _c("return_for_receipt_id_ext", _V, "ReturnForReceiptId", null=True),
            _c("event_ts", _TS, "EventTS"),
            _c("store_id", BigInteger, "StoreID"),
            _c("customer_id", BigInteger, "CustomerID"),
            _c("line_count", Integer, "LineCount"),
            _c("item_count", Integer, "ItemCount"),
            *_HEADER_MONEY,
            _c("payment_method", _V, "TenderType"),
        ),
        pk=("receipt_id_ext",),
        fks=("store_id", "customer_id"),
    ),
    _FactSpec(
        "receipt_lines",
        (
            _c("receipt_id_ext", _V, "ReceiptId"),
            _c("line_num", Integer, "LineNumber"),
            _c("event_ts", _TS, "EventTS"),
            _c("product_id", BigInteger, "ProductID"),
            _c("quantity", Integer, "Qty"),
            *_LINE_MONEY,
            _c("promo_code", _V, "PromoCode", null=True),
        ),
        pk=("receipt_id_ext", "line_num"),
        fks=("product_id",),
    ),
    _FactSpec(
        "foot_traffic",
        (
            _c("store_id", BigInteger, "StoreID"),
            _c("sensor_id", _V, "SensorId"),
            _c("zone", _V, "Zone"),
            _c("event_ts", _TS, "EventTS"),
            _c("count", Integer, "Count"),
            _c("dwell_seconds", Integer, "DwellSeconds"),
        ),
        pk=("store_id", "zone", "event_ts"),
        fks=("store_id",),
    ),
    _FactSpec(
        "ble_pings",
        (
            _c("ping_id", BigInteger, "PingId"),
            _c("event_ts", _TS, "EventTS"),
            _c("store_id", BigInteger, "StoreID"),
            _c("beacon_id", _V, "BeaconId"),
            _c("zone", _V, "Zone"),
            _c("customer_ble_id", _V, "CustomerBLEId"),
            _c("customer_id", BigInteger, "CustomerID", null=True),
            _c("visit_seq", Integer, "VisitSeq"),
            _c("rssi", SmallInteger, "RSSI"),
        ),
        pk=("ping_id",),
        fks=("store_id", "customer_id"),
    ),
    _FactSpec(
        "customer_zone_changes",
        (
            _c("zone_change_id", BigInteger, "ZoneChangeId"),
            _c("event_ts", _TS, "EventTS"),
            _c("store_id", BigInteger, "StoreID"),
            _c("customer_ble_id", _V, "CustomerBLEId"),
            _c("customer_id", BigInteger, "CustomerID", null=True),
            _c("visit_seq", Integer, "VisitSeq"),
            _c("from_zone", _V, "FromZone"),
            _c("to_zone", _V, "ToZone"),
        ),
        pk=("zone_change_id",),
        fks=("store_id", "customer_id"),
    ),
    _FactSpec(
        "marketing",
        (
            _c("impression_id_ext", _V, "ImpressionId"),
            _c("event_ts", _TS, "EventTS"),
            _c("campaign_id", _V, "CampaignId"),
            _c("campaign_type", _V, "CampaignType"),
            _c("creative_id", _V, "CreativeId"),
            _c("channel", _V, "Channel"),
            _c("device", _V, "Device"),
            _c("customer_ad_id", _V, "CustomerAdId"),
            _c("customer_id", BigInteger, "CustomerID", null=True),
            *_money_pair("cost", "cost_cents", "Cost", "CostCents"),
        ),
        pk=("impression_id_ext",),
        fks=("customer_id",),
    ),
    _FactSpec(
        "online_orders",
        (
            _c("order_id_ext", _V, "OrderId"),
            _c("event_ts", _TS, "EventTS"),
            _c("customer_id", BigInteger, "CustomerID"),
            _c("fulfillment_mode", _V, "FulfillmentMode"),
            _c("store_id", BigInteger, "StoreID", null=True),
            _c("dc_id", BigInteger, "DCID", null=True),
            _c("order_status", _V, "OrderStatus"),
            _c("line_count", Integer, "LineCount"),
            _c("item_count", Integer, "ItemCount"),
            *_HEADER_MONEY,
            _c("payment_method", _V, "TenderType"),
            _c("cancelled_ts", _TS, "CancelledTS", null=True),
            _c("completed_ts", _TS, "CompletedTS", null=True),
        ),
        pk=("order_id_ext",),
        fks=("customer_id", "store_id", "dc_id"),
    ),
    _FactSpec(
        "online_order_lines",
        (
            _c("order_id_ext", _V, "OrderId"),
            _c("line_num", Integer, "LineNumber"),
            _c("event_ts", _TS, "EventTS"),
            _c("product_id", BigInteger, "ProductID"),
            _c("quantity", Integer, "Qty"),
            *_LINE_MONEY,
            _c("promo_code", _V, "PromoCode", null=True),
            _c("fulfillment_status", _V, "FulfillmentStatus"),
            _c("picked_ts", _TS, "PickedTS", null=True),
            _c("shipped_ts", _TS, "ShippedTS", null=True),
            _c("delivered_ts", _TS, "DeliveredTS", null=True),
        ),
        pk=("order_id_ext", "line_num"),
        fks=("product_id",),
    ),
    _FactSpec(
        "fact_payments",
        (
            _c("transaction_id", _V, "TransactionId"),
            _c("event_ts", _TS, "EventTS"),
            _c("receipt_id_ext", _V, "ReceiptId", null=True),
            _c("order_id_ext", _V, "OrderId", null=True),
            _c("store_id", BigInteger, "StoreID", null=True),
            _c("customer_id", BigInteger, "CustomerID"),
            _c("payment_method", _V, "TenderType"),
            _c("attempt", SmallInteger, "Attempt"),
            _c("status", _V, "Status"),
            _c("decline_reason", _V, "DeclineReason", null=True),
            *_money_pair("amount", "amount_cents", "Amount", "AmountCents"),
            _c("processing_time_ms", Integer, "ProcessingTimeMs"),
        ),
        pk=("transaction_id",),
        fks=("store_id", "customer_id"),
    ),
    _FactSpec(
        "store_ops",
        (
            _c("event_ts", _TS, "EventTS"),
            _c("store_id", BigInteger, "StoreID"),
            _c("operation_type", _V, "OperationType"),
        ),
        pk=("store_id", "event_ts", "operation_type"),
        fks=("store_id",),
    ),
    _FactSpec(
        "stockouts",
        (
            _c("stockout_id", BigInteger, "StockoutId"),
            _c("event_ts", _TS, "EventTS"),
            _c("store_id", BigInteger, "StoreID", null=True),
            _c("dc_id", BigInteger, "DCID", null=True),
            _c("product_id", BigInteger, "ProductID"),
            _c("last_known_quantity", Integer, "LastKnownQuantity"),
            _c("unfilled_quantity", Integer, "UnfilledQuantity"),
            _c("source", _V, "Source"),
            _c("detection_time", _TS, "DetectionTime"),
        ),
        pk=("stockout_id",),
        fks=("store_id", "dc_id", "product_id"),
    ),
    _FactSpec(
        "promotions",
        (
            _c("receipt_id_ext", _V, "ReceiptId"),
            _c("promo_code", _V, "PromoCode"),
            _c("event_ts", _TS, "EventTS"),
            _c("store_id", BigInteger, "StoreID"),
            _c("customer_id", BigInteger, "CustomerID"),
            _c("discount_type", _V, "DiscountType"),
            *_money("discount", "DiscountAmount", "DiscountCents"),
            _c("product_count", Integer, "ProductCount"),
            _c("product_ids", _V, "ProductIds"),
        ),
        pk=("receipt_id_ext",),
        fks=("store_id", "customer_id"),
    ),
    _FactSpec(
        "promo_lines",
        (
            _c("receipt_id_ext", _V, "ReceiptId"),
            _c("line_num", Integer, "LineNumber"),
            _c("promo_code", _V, "PromoCode"),
            _c("event_ts", _TS, "EventTS"),
            _c("product_id", BigInteger, "ProductID"),
            _c("quantity", Integer, "Qty"),
            *_money("discount", "DiscountAmount", "DiscountCents"),
        ),
        pk=("receipt_id_ext", "line_num"),
        fks=("product_id",),
    ),
    _FactSpec(
        "reorders",
        (
            _c("event_ts", _TS, "EventTS"),
            _c("store_id", BigInteger, "StoreID"),
            _c("dc_id", BigInteger, "DCID"),
            _c("product_id", BigInteger, "ProductID"),
            _c("current_quantity", Integer, "CurrentQuantity"),
            _c("in_transit_quantity", Integer, "InTransitQuantity"),
            _c("reorder_point", Integer, "ReorderPoint"),
            _c("reorder_quantity", Integer, "ReorderQuantity"),
            _c("allocated_quantity", Integer, "AllocatedQuantity"),
            _c("priority", _V, "Priority"),
        ),
        pk=("store_id", "product_id", "event_ts"),
        fks=("store_id", "dc_id", "product_id"),
    ),
)

#: Per logical fact table: PascalCase generator column name → DB column name, in column order.
GENERATOR_NAMES: dict[str, dict[str, str]] = {
    spec.logical: {col.gen: col.name for col in spec.columns} for spec in _SPECS
}

#: Primary-key column names per logical fact table, in key order (also the ``TraceId`` order).
FACT_PRIMARY_KEYS: dict[str, tuple[str, ...]] = {spec.logical: spec.pk for spec in _SPECS}


def build_fact_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the 18 fact tables on ``metadata``.

    Args:
        metadata: The ``MetaData`` that also holds the dimension tables the FKs point at.

    Returns:
        The ``Table`` objects keyed by logical name, in ``FACT_TABLES`` order.
    """
    tables: dict[str, Table] = {}
    for spec in _SPECS:
        columns = [
            Column(
                col.name,
                col.type_,
                *([ForeignKey(_DIM_FK_TARGETS[col.name])] if col.name in spec.fks else []),
                nullable=col.nullable,
                # Ids are generated, never assigned by the database (no SERIAL in PostgreSQL).
                autoincrement=False,
            )
            for col in spec.columns
        ]
        tables[spec.logical] = Table(
            FACT_TABLE_DB_NAMES[spec.logical],
            metadata,
            *columns,
            PrimaryKeyConstraint(*spec.pk),
        )
    return tables


def _self_check() -> None:
    # Import-time guard: a typo in a spec row would otherwise surface only as bad data later.
    if tuple(spec.logical for spec in _SPECS) != FACT_TABLES:
        raise RuntimeError("fact table specs are out of FACT_TABLES order")
    for spec in _SPECS:
        names = [col.name for col in spec.columns]
        if len(set(names)) != len(names) or len(GENERATOR_NAMES[spec.logical]) != len(names):
            raise RuntimeError(f"duplicate column or generator name in {spec.logical}")
        unknown = (set(spec.pk) | set(spec.fks)) - set(names)
        if unknown or not set(spec.fks) <= set(_DIM_FK_TARGETS):
            raise RuntimeError(f"bad key column in {spec.logical}: {sorted(unknown)}")


_self_check()

__all__ = [
    "FACT_PRIMARY_KEYS",
    "FACT_TABLES",
    "FACT_TABLE_DB_NAMES",
    "GENERATOR_NAMES",
    "build_fact_tables",
]
