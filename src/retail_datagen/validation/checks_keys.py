"""Invariants A: keys, required columns, enum domains and references (INV-01 … INV-08).

Dimension tables are read whole; fact rows are judged on their ``event_ts`` (``<<rows:…>>``).
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Table

from retail_datagen import domain
from retail_datagen.db.fact_schema import FACT_TABLES
from retail_datagen.db.schema import (
    DIM_TABLES,
    FACT_TABLE_DB_NAMES,
    primary_key,
    quote_ident,
    table,
)
from retail_datagen.geo import EARTH_RADIUS_MI
from retail_datagen.validation.core import (
    Check,
    Context,
    Query,
    sql_list,
    values_table,
    violations,
)

FACT_DB_TABLES: tuple[str, ...] = tuple(FACT_TABLE_DB_NAMES[n] for n in FACT_TABLES)

# Vocabularies the spec lists but domain.py does not carry.
DC_TXN_TYPES = ("INBOUND_SHIPMENT", "OUTBOUND_SHIPMENT", "SALE")
STORE_TXN_TYPES = tuple(domain.TXN_TYPE_RANK)
TRUCK_ACTIONS = ("LOAD", "UNLOAD")
LOCATION_TYPES = ("DC", "STORE")
RECEIPT_TYPES = ("SALE", "RETURN")
ORDER_STATUSES = ("COMPLETED", "CANCELLED")
LINE_FULFILLMENT_STATUSES = ("DELIVERED", "PICKED_UP", "CANCELLED")
PAYMENT_STATUSES = ("APPROVED", "DECLINED", "REFUNDED")
STORE_OPERATIONS = ("OPENED", "CLOSED")
DISCOUNT_TYPES = ("PERCENTAGE", "FIXED_AMOUNT", "BOGO")
PRIORITIES = ("URGENT", "HIGH", "NORMAL")

#: INV-03: (table, column) → domain. NULL is allowed only where the column is nullable, and a
#: NULL in a NOT NULL column is INV-02's concern, so the domain test ignores NULLs.
ENUM_DOMAINS: dict[tuple[str, str], tuple[str, ...]] = {
    ("dim_geographies", "region"): domain.REGIONS,
    ("dim_stores", "location_type"): domain.LOCATION_TYPES,
    ("dim_stores", "volume_class"): domain.VOLUME_CLASSES,
    ("dim_stores", "store_format"): domain.STORE_FORMATS,
    ("dim_stores", "operating_hours"): domain.OPERATING_HOURS,
    ("dim_trucks", "truck_type"): domain.TRUCK_TYPES,
    ("dim_customers", "shopper_segment"): domain.SHOPPER_SEGMENTS,
    ("dim_customers", "mobility_segment"): domain.MOBILITY_SEGMENTS,
    ("dim_products", "basket_category"): domain.BASKET_CATEGORIES,
    ("dim_products", "taxability"): domain.TAXABILITY,
    ("fact_dc_inventory_txn", "txn_type"): DC_TXN_TYPES,
    ("fact_store_inventory_txn", "txn_type"): STORE_TXN_TYPES,
    ("fact_truck_moves", "status"): domain.TRUCK_STATUSES,
    ("fact_truck_inventory", "action"): TRUCK_ACTIONS,
    ("fact_truck_inventory", "location_type"): LOCATION_TYPES,
    ("fact_receipts", "receipt_type"): RECEIPT_TYPES,
    ("fact_receipts", "payment_method"): domain.IN_STORE_TENDERS,
    ("fact_receipt_lines", "promo_code"): domain.PROMO_CODES,
    ("fact_promotions", "promo_code"): domain.PROMO_CODES,
    ("fact_promo_lines", "promo_code"): domain.PROMO_CODES,
    ("fact_foot_traffic", "zone"): domain.FOOT_TRAFFIC_ZONES,
    ("fact_ble_pings", "zone"): domain.BLE_ZONES,
    ("fact_customer_zone_changes", "from_zone"): domain.BLE_ZONES,
    ("fact_customer_zone_changes", "to_zone"): domain.BLE_ZONES,
    ("fact_marketing", "campaign_type"): domain.CAMPAIGN_TYPES,
    ("fact_marketing", "channel"): domain.MARKETING_CHANNELS,
    ("fact_marketing", "device"): domain.DEVICES,
    ("fact_online_order_headers", "fulfillment_mode"): domain.FULFILLMENT_MODES,
    ("fact_online_order_headers", "order_status"): ORDER_STATUSES,
    ("fact_online_order_headers", "payment_method"): domain.ONLINE_TENDERS,
    ("fact_online_order_lines", "promo_code"): domain.ONLINE_PROMO_CODES,
    ("fact_online_order_lines", "fulfillment_status"): LINE_FULFILLMENT_STATUSES,
    ("fact_payments", "payment_method"): domain.PAYMENT_METHODS,
    ("fact_payments", "status"): PAYMENT_STATUSES,
    ("fact_payments", "decline_reason"): domain.DECLINE_REASONS,
    ("fact_store_ops", "operation_type"): STORE_OPERATIONS,
    ("fact_promotions", "discount_type"): DISCOUNT_TYPES,
    ("fact_reorders", "priority"): PRIORITIES,
}


def key_columns(name: str) -> str:
    """The quoted primary-key columns of a table, comma-separated (sample identification)."""
    return ", ".join(quote_ident(c) for c in primary_key(name))


def row_filter(name: str, alias: str = "") -> str:
    """``<<rows:event_ts>>`` for fact tables; dimension tables are read whole (``TRUE``)."""
    prefix = f"{alias}." if alias else ""
    return f"<<rows:{prefix}event_ts>>" if name in FACT_DB_TABLES else "TRUE"


def _tables() -> tuple[Table, ...]:
    return tuple(table(n) for n in (*DIM_TABLES, *FACT_DB_TABLES))


def _inv01(ctx: Context) -> Iterator[Query]:
    for t in _tables():
        keys = key_columns(t.name)
        yield Query(
            f"SELECT {sql_list([t.name])} AS table_name, {keys}, count(*) AS copies "
            f"FROM {t.name} WHERE {row_filter(t.name)} GROUP BY {keys} HAVING count(*) > 1"
        )


def _inv02(ctx: Context) -> Iterator[Query]:
    for t in _tables():
        required = [c.name for c in t.c if not c.nullable]
        cond = " OR ".join(f"{quote_ident(c)} IS NULL" for c in required)
        nulls = ", ".join(
            f"CASE WHEN {quote_ident(c)} IS NULL THEN {sql_list([c])} END" for c in required
        )
        # A NULL event_ts cannot be placed in the scope, so it is judged wherever it is.
        scope = (
            f"(event_ts IS NULL OR {row_filter(t.name)})" if t.name in FACT_DB_TABLES else "TRUE"
        )
        yield Query(
            f"SELECT {sql_list([t.name])} AS table_name, {key_columns(t.name)}, "
            f"concat_ws(',', {nulls}) AS null_columns FROM {t.name} WHERE ({cond}) AND {scope}"
        )


def _inv03(ctx: Context) -> Iterator[Query]:
    by_table: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for (tname, col), values in ENUM_DOMAINS.items():
        by_table.setdefault(tname, []).append((col, values))
    for tname, cols in by_table.items():
        # The rule names the offending value, e.g. 'zone=XYZ'.
        bad = ", ".join(
            f"CASE WHEN {quote_ident(c)} NOT IN ({sql_list(v)}) THEN {sql_list([c + '='])} "
            f"|| {quote_ident(c)} END"
            for c, v in cols
        )
        yield Query(
            "SELECT * FROM (SELECT "
            f"{sql_list([tname])} AS table_name, {key_columns(tname)}, "
            f"concat_ws('; ', {bad}) AS rule FROM {tname} WHERE {row_filter(tname)}) v "
            "WHERE rule <> ''"
        )


def _inv04(ctx: Context) -> Iterator[Query]:
    for t in _tables():
        fks = [(c.name, fk.column.table.name, fk.column.name) for c in t.c for fk in c.foreign_keys]
        if not fks:
            continue
        joins = " ".join(
            f"LEFT JOIN {dim} j{i} ON j{i}.{dcol} = x.{quote_ident(col)}"
            for i, (col, dim, dcol) in enumerate(fks)
        )
        rule = violations(
            *(
                (f"x.{quote_ident(col)} IS NOT NULL AND j{i}.{dcol} IS NULL", f"{col} not in {dim}")
                for i, (col, dim, dcol) in enumerate(fks)
            )
        )
        keys = ", ".join(f"x.{quote_ident(c)}" for c in primary_key(t.name))
        yield Query(
            f"SELECT * FROM (SELECT {sql_list([t.name])} AS table_name, {keys}, {rule} AS rule "
            f"FROM {t.name} x {joins} WHERE {row_filter(t.name, 'x')}) v WHERE rule <> ''"
        )


def _inv05(ctx: Context) -> Iterator[Query]:
    yield Query(
        "SELECT 'receipt line without receipt' AS rule, l.receipt_id_ext, l.line_num "
        "FROM fact_receipt_lines l "
        "LEFT JOIN fact_receipts r ON r.receipt_id_ext = l.receipt_id_ext "
        "WHERE r.receipt_id_ext IS NULL AND <<rows:l.event_ts>>"
    )
    yield Query(
        "SELECT 'receipt without lines' AS rule, r.receipt_id_ext FROM fact_receipts r "
        "WHERE <<rows:r.event_ts>> AND NOT EXISTS "
        "(SELECT 1 FROM fact_receipt_lines l WHERE l.receipt_id_ext = r.receipt_id_ext)"
    )
    yield Query(
        "SELECT 'promotion without SALE receipt' AS rule, p.receipt_id_ext FROM fact_promotions p "
        "LEFT JOIN fact_receipts r ON r.receipt_id_ext = p.receipt_id_ext "
        "WHERE <<rows:p.event_ts>> AND (r.receipt_id_ext IS NULL OR r.receipt_type <> 'SALE')"
    )
    yield Query(
        "SELECT * FROM (SELECT pl.receipt_id_ext, pl.line_num, "
        + violations(
            ("l.receipt_id_ext IS NULL", "promo line without receipt line"),
            ("p.receipt_id_ext IS NULL", "promo line without promotion"),
        )
        + " AS rule FROM fact_promo_lines pl "
        "LEFT JOIN fact_receipt_lines l ON l.receipt_id_ext = pl.receipt_id_ext "
        "AND l.line_num = pl.line_num "
        "LEFT JOIN fact_promotions p ON p.receipt_id_ext = pl.receipt_id_ext "
        "WHERE <<rows:pl.event_ts>>) v WHERE rule <> ''"
    )
    yield Query(
        "SELECT 'payment without receipt' AS rule, x.transaction_id, x.receipt_id_ext "
        "FROM fact_payments x LEFT JOIN fact_receipts r ON r.receipt_id_ext = x.receipt_id_ext "
        "WHERE x.receipt_id_ext IS NOT NULL AND r.receipt_id_ext IS NULL AND <<rows:x.event_ts>>"
    )
    yield Query(
        "SELECT 'payment without order' AS rule, x.transaction_id, x.order_id_ext "
        "FROM fact_payments x LEFT JOIN fact_online_order_headers h "
        "ON h.order_id_ext = x.order_id_ext "
        "WHERE x.order_id_ext IS NOT NULL AND h.order_id_ext IS NULL AND <<rows:x.event_ts>>"
    )
    yield Query(
        "SELECT 'online line without header' AS rule, l.order_id_ext, l.line_num "
        "FROM fact_online_order_lines l LEFT JOIN fact_online_order_headers h "
        "ON h.order_id_ext = l.order_id_ext WHERE h.order_id_ext IS NULL AND <<rows:l.event_ts>>"
    )
    yield Query(
        "SELECT 'online header without lines' AS rule, h.order_id_ext "
        "FROM fact_online_order_headers h WHERE <<rows:h.event_ts>> AND NOT EXISTS "
        "(SELECT 1 FROM fact_online_order_lines l WHERE l.order_id_ext = h.order_id_ext)"
    )
    # A return is judged with its original sale: every logged day from 15 days before it (the
    # longest return delay) when the sale is missing.
    yield Query(
        "SELECT * FROM (SELECT r.receipt_id_ext, r.return_for_receipt_id_ext, "
        + violations(
            (
                "r.receipt_type = 'RETURN' "
                "AND (o.receipt_id_ext IS NULL OR o.receipt_type <> 'SALE')",
                "return_for_receipt_id_ext does not name a SALE receipt",
            ),
            ("r.receipt_type = 'SALE' AND r.return_for_receipt_id_ext IS NOT NULL",
             "SALE receipt with return_for_receipt_id_ext"),
        )
        + " AS rule FROM fact_receipts r LEFT JOIN fact_receipts o "
        "ON o.receipt_id_ext = r.return_for_receipt_id_ext "
        "WHERE (r.receipt_type = 'RETURN' OR r.return_for_receipt_id_ext IS NOT NULL) "
        "AND <<scope:r.event_ts>> AND "
        "<<span:COALESCE(o.event_ts, r.event_ts - INTERVAL '15 days');r.event_ts>>) v "
        "WHERE rule <> ''"
    )
    yield Query(
        "SELECT 'truck_inventory shipment without truck_moves' AS rule, ti.shipment_id, "
        "ti.product_id, ti.action FROM fact_truck_inventory ti WHERE <<rows:ti.event_ts>> "
        "AND NOT EXISTS (SELECT 1 FROM fact_truck_moves m WHERE m.shipment_id = ti.shipment_id)"
    )


def _inv06(ctx: Context) -> Iterator[Query]:
    yield Query(
        "SELECT 'payment needs exactly one of receipt_id_ext, order_id_ext' AS rule, "
        "transaction_id "
        "FROM fact_payments WHERE (receipt_id_ext IS NULL) = (order_id_ext IS NULL) "
        "AND <<rows:event_ts>>"
    )
    yield Query(
        "SELECT 'stockout needs exactly one of store_id, dc_id' AS rule, stockout_id "
        "FROM fact_stockouts WHERE (store_id IS NULL) = (dc_id IS NULL) AND <<rows:event_ts>>"
    )
    yield Query(
        "SELECT * FROM (SELECT order_id_ext, "
        + violations(
            ("(fulfillment_mode = 'SHIP_FROM_DC') <> (dc_id IS NOT NULL)",
             "dc_id set iff SHIP_FROM_DC"),
            ("(store_id IS NULL) = (dc_id IS NULL)", "exactly one of store_id, dc_id"),
        )
        + " AS rule FROM fact_online_order_headers WHERE <<rows:event_ts>>) v WHERE rule <> ''"
    )
    yield Query(
        "SELECT 'dc_id NULL iff SUPPLIER' AS rule, truck_id FROM dim_trucks "
        "WHERE (truck_type = 'SUPPLIER') <> (dc_id IS NULL)"
    )
    # Servability (sharding.md §2.1): every DC with stores has a refrigerated truck of its own.
    yield Query(
        "SELECT 'DC with stores has no refrigerated truck' AS rule, d.dc_id "
        "FROM dim_distribution_centers d WHERE EXISTS "
        "(SELECT 1 FROM dim_stores s WHERE s.dc_id = d.dc_id) AND NOT EXISTS "
        "(SELECT 1 FROM dim_trucks k WHERE k.dc_id = d.dc_id AND k.refrigeration "
        "AND k.truck_type IN ('DC_FLEET', 'POOL'))"
    )


def _inv07(ctx: Context) -> Iterator[Query]:
    yield Query(
        "SELECT product_id, cost_cents, sale_price_cents, msrp_cents FROM dim_products "
        "WHERE NOT (0 < cost_cents AND cost_cents < sale_price_cents "
        "AND sale_price_cents <= msrp_cents)"
    )


# Haversine in miles; ties within this tolerance go to the lower dc_id, so that float
# rounding differences between numpy and the database never decide a tie.
_TIE_MI = 1e-6


def _inv08(ctx: Context) -> Iterator[Query]:
    dist = (
        f"2 * {EARTH_RADIUS_MI} * asin(sqrt("
        "power(sin(radians(gd.latitude - gs.latitude) / 2), 2) + "
        "cos(radians(gs.latitude)) * cos(radians(gd.latitude)) * "
        "power(sin(radians(gd.longitude - gs.longitude) / 2), 2)))"
    )
    yield Query(
        "WITH dd AS (SELECT s.store_id, s.dc_id AS assigned, c.dc_id, " + dist + " AS miles "
        "FROM dim_stores s JOIN dim_geographies gs ON gs.geography_id = s.geography_id "
        "CROSS JOIN dim_distribution_centers c "
        "JOIN dim_geographies gd ON gd.geography_id = c.geography_id), "
        "a AS (SELECT store_id, assigned, miles FROM dd WHERE dc_id = assigned) "
        "SELECT 'dc_id is not the nearest DC' AS rule, a.store_id, a.assigned AS dc_id, "
        "min(dd.dc_id) AS nearer_dc_id FROM a JOIN dd ON dd.store_id = a.store_id "
        f"WHERE dd.miles < a.miles - {_TIE_MI} "
        f"OR (dd.dc_id < a.assigned AND dd.miles <= a.miles + {_TIE_MI}) "
        "GROUP BY a.store_id, a.assigned"
    )
    hours = values_table(
        "h",
        ("operating_hours", "open_hour", "close_hour"),
        ((k, o, c) for k, (o, c) in domain.OPEN_CLOSE_HOURS.items()),
    )
    yield Query(
        "SELECT * FROM (SELECT s.store_id, "
        + violations(
            ("h.operating_hours IS NULL OR s.open_hour <> h.open_hour "
             "OR s.close_hour <> h.close_hour", "open/close hours do not match operating_hours"),
            ("s.tax_rate <> g.tax_rate", "tax_rate differs from its geography's"),
        )
        + f" AS rule FROM dim_stores s LEFT JOIN {hours} ON h.operating_hours = s.operating_hours "
        "LEFT JOIN dim_geographies g ON g.geography_id = s.geography_id) v WHERE rule <> ''"
    )


CHECKS: tuple[Check, ...] = (
    Check("INV-01", "Primary keys unique", _inv01),
    Check("INV-02", "Required columns filled", _inv02),
    Check("INV-03", "Enum domains", _inv03),
    Check("INV-04", "Dimension foreign keys", _inv04),
    Check("INV-05", "Fact-to-fact references", _inv05),
    Check("INV-06", "Exactly-one rules", _inv06),
    Check("INV-07", "Product pricing", _inv07),
    Check("INV-08", "Store → nearest DC; hours; tax rate", _inv08),
)
