"""Tests of the schema contract (db/schema.py) and the DuckDB engine (db/duckdb_engine.py)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from sqlalchemy import Numeric

from retail_datagen.db import duckdb_engine as eng
from retail_datagen.db import schema
from retail_datagen.errors import (
    DatabaseError,
    DatabaseLockedError,
    SchemaContractError,
    SchemaMismatchError,
    UnknownTableError,
)

# Column lists copied from fact-tables.md, written out by hand so the test is independent of
# the spec rows in fact_schema.py.
SPEC_COLUMNS: dict[str, list[str]] = {
    "fact_receipts": [
        "receipt_id_ext", "receipt_type", "return_for_receipt_id_ext", "event_ts", "store_id",
        "customer_id", "line_count", "item_count", "gross_subtotal_amount", "gross_subtotal_cents",
        "discount_amount", "discount_cents", "subtotal_amount", "subtotal_cents", "tax_amount",
        "tax_cents", "total_amount", "total_cents", "payment_method",
    ],
    "fact_receipt_lines": [
        "receipt_id_ext", "line_num", "event_ts", "product_id", "quantity", "unit_price",
        "unit_cents", "discount_amount", "discount_cents", "ext_price", "ext_cents", "tax_amount",
        "tax_cents", "promo_code",
    ],
    "fact_truck_moves": [
        "shipment_id", "status", "event_ts", "truck_id", "dc_id", "store_id", "refrigerated",
        "unit_count", "departure_time", "eta", "etd", "unload_duration_minutes",
    ],
    "fact_payments": [
        "transaction_id", "event_ts", "receipt_id_ext", "order_id_ext", "store_id", "customer_id",
        "payment_method", "attempt", "status", "decline_reason", "amount", "amount_cents",
        "processing_time_ms",
    ],
    "fact_online_order_headers": [
        "order_id_ext", "event_ts", "customer_id", "fulfillment_mode", "store_id", "dc_id",
        "order_status", "line_count", "item_count", "gross_subtotal_amount",
        "gross_subtotal_cents", "discount_amount", "discount_cents", "subtotal_amount",
        "subtotal_cents", "tax_amount", "tax_cents", "total_amount", "total_cents",
        "payment_method", "cancelled_ts", "completed_ts",
    ],
    "fact_online_order_lines": [
        "order_id_ext", "line_num", "event_ts", "product_id", "quantity", "unit_price",
        "unit_cents", "discount_amount", "discount_cents", "ext_price", "ext_cents", "tax_amount",
        "tax_cents", "promo_code", "fulfillment_status", "picked_ts", "shipped_ts", "delivered_ts",
    ],
    "fact_marketing": [
        "impression_id_ext", "event_ts", "campaign_id", "campaign_type", "creative_id", "channel",
        "device", "customer_ad_id", "customer_id", "cost", "cost_cents",
    ],
    "fact_store_ops": ["event_ts", "store_id", "operation_type"],
    "fact_dc_inventory_txn": [
        "txn_id", "event_ts", "dc_id", "product_id", "txn_type", "quantity", "balance", "source",
        "truck_id",
    ],
    "fact_promotions": [
        "receipt_id_ext", "promo_code", "event_ts", "store_id", "customer_id", "discount_type",
        "discount_amount", "discount_cents", "product_count", "product_ids",
    ],
    "dim_products": [
        "product_id", "product_name", "brand", "company", "department", "category",
        "subcategory", "basket_category", "cost", "msrp", "sale_price", "cost_cents",
        "msrp_cents", "sale_price_cents", "requires_refrigeration", "launch_date", "taxability",
        "tags", "popularity_weight",
    ],
}  # fmt: skip

SPEC_PRIMARY_KEYS = {
    "truck_moves": ("shipment_id", "status"),
    "truck_inventory": ("shipment_id", "product_id", "action"),
    "foot_traffic": ("store_id", "zone", "event_ts"),
    "store_ops": ("store_id", "event_ts", "operation_type"),
    "reorders": ("store_id", "product_id", "event_ts"),
    "receipt_lines": ("receipt_id_ext", "line_num"),
    "ble_pings": ("ping_id",),
}


def _fact_db_names() -> list[str]:
    return [schema.FACT_TABLE_DB_NAMES[n] for n in schema.FACT_TABLES]


# --- metadata ---------------------------------------------------------------------------------


def test_table_counts_and_order() -> None:
    assert len(schema.FACT_TABLES) == 18
    assert schema.FACT_TABLES[0] == "dc_inventory_txn"
    assert schema.FACT_TABLES[-1] == "reorders"
    assert schema.FACT_TABLE_DB_NAMES["online_orders"] == "fact_online_order_headers"
    assert schema.FACT_TABLE_DB_NAMES["fact_payments"] == "fact_payments"
    assert all(v.startswith("fact_") for v in schema.FACT_TABLE_DB_NAMES.values())
    assert schema.DIM_TABLES[0] == "dim_geographies"
    assert schema.DIM_TABLES[-1] == "dim_products"
    assert schema.OUTBOX_TABLE == "streaming_outbox"
    assert schema.SCHEMA_VERSION == "2.0"
    expected = {*schema.DIM_TABLES, *_fact_db_names(), "streaming_outbox", *schema.STATE_TABLES}
    assert set(schema.metadata.tables) == expected
    assert len(schema.STATE_TABLES) == 11


@pytest.mark.parametrize("db_name", sorted(SPEC_COLUMNS))
def test_columns_match_spec(db_name: str) -> None:
    assert [c.name for c in schema.table(db_name).c] == SPEC_COLUMNS[db_name]


def test_nullability_and_types() -> None:
    receipts = schema.table("receipts")
    nullable = {c.name for c in receipts.c if c.nullable}
    assert nullable == {"return_for_receipt_id_ext"}
    assert isinstance(receipts.c.tax_amount.type, Numeric)
    assert (receipts.c.tax_amount.type.precision, receipts.c.tax_amount.type.scale) == (18, 2)
    headers = schema.table("online_orders")
    assert {c.name for c in headers.c if c.nullable} == {
        "store_id",
        "dc_id",
        "cancelled_ts",
        "completed_ts",
    }
    assert schema.table("dim_geographies").c.tax_rate.type.scale == 6
    assert schema.table("dim_geographies").c.state.type.length == 2
    assert schema.table("dim_trucks").c.dc_id.nullable


@pytest.mark.parametrize("logical", sorted(SPEC_PRIMARY_KEYS))
def test_primary_keys_in_listed_order(logical: str) -> None:
    assert schema.primary_key(logical) == SPEC_PRIMARY_KEYS[logical]
    assert schema.primary_key(schema.FACT_TABLE_DB_NAMES[logical]) == SPEC_PRIMARY_KEYS[logical]


def test_state_table_keys() -> None:
    assert schema.primary_key("gen_watermark") == ("id",)
    assert schema.primary_key("gen_state_inventory") == (
        "unit_id", "node_type", "node_id", "product_id")
    assert schema.primary_key("gen_state_supplier_orders") == (
        "unit_id", "dc_id", "product_id", "order_day")
    assert schema.primary_key("gen_state_pending_returns") == (
        "unit_id", "receipt_id_ext", "line_num")
    # Every unit-scoped state table leads its key with unit_id SMALLINT (sharding.md §4).
    network_wide = {"gen_metadata", "gen_watermark", "gen_day_log"}
    for name in schema.STATE_TABLES:
        leads = schema.primary_key(name)[0] == "unit_id"
        assert leads == (name not in network_wide), name
        if leads:
            assert schema.arrow_schema(name).field("unit_id").type == pa.int16()
            assert schema.arrow_schema(name).names[0] == "unit_id"
            assert "unit_id" not in schema.carried_schema(name).names


def test_foreign_keys_point_only_at_dimensions() -> None:
    for db_name in _fact_db_names():
        for fk in schema.table(db_name).foreign_keys:
            assert fk.column.table.name in schema.DIM_TABLES, (db_name, fk.target_fullname)
    targets = {
        fk.parent.name: fk.target_fullname for fk in schema.table("dc_inventory_txn").foreign_keys
    }
    assert targets == {
        "dc_id": "dim_distribution_centers.dc_id",
        "product_id": "dim_products.product_id",
        "truck_id": "dim_trucks.truck_id",
    }
    customers = {fk.parent.name for fk in schema.table("dim_customers").foreign_keys}
    assert customers == {"geography_id", "primary_store_id"}
    # References to other fact tables are never declared.
    assert not schema.table("promo_lines").c.receipt_id_ext.foreign_keys
    assert not schema.table("fact_payments").c.order_id_ext.foreign_keys


def test_outbox_definition() -> None:
    outbox = schema.table("streaming_outbox")
    assert outbox.c.status.server_default is not None
    assert outbox.c.trace_id.unique
    assert [tuple(c.name for c in ix.columns) for ix in outbox.indexes] == [("status", "event_ts")]
    ddl = schema.duckdb_ddl("streaming_outbox")
    assert "DEFAULT 'pending'" in ddl and "DEFAULT 0" in ddl
    assert "DEFAULT '2.0'" in ddl and "DEFAULT 'retail-datagen'" in ddl
    assert "PRIMARY KEY" not in ddl and "UNIQUE" not in ddl


# --- name resolution --------------------------------------------------------------------------


def test_table_accepts_logical_and_db_names() -> None:
    assert schema.table("receipts") is schema.table("fact_receipts")
    assert schema.table("online_orders").name == "fact_online_order_headers"
    assert schema.table("dim_stores").name == "dim_stores"
    assert schema.table("gen_watermark").name == "gen_watermark"
    assert schema.db_table_name("receipt_lines") == "fact_receipt_lines"
    assert schema.db_table_name("streaming_outbox") == "streaming_outbox"
    assert schema.logical_fact_name("fact_online_order_headers") == "online_orders"
    assert schema.logical_fact_name("fact_payments") == "fact_payments"
    assert schema.logical_fact_name("stockouts") == "stockouts"


def test_unknown_table_lists_valid_names() -> None:
    with pytest.raises(UnknownTableError) as info:
        schema.table("fact_bogus")
    assert "receipts" in str(info.value) and "fact_receipts" in str(info.value)
    with pytest.raises(UnknownTableError):
        schema.db_table_name("bogus")
    with pytest.raises(UnknownTableError):
        schema.logical_fact_name("dim_stores")
    with pytest.raises(UnknownTableError):
        schema.arrow_schema("nope")


# --- generator names --------------------------------------------------------------------------


def test_generator_names_are_a_bijection_onto_columns() -> None:
    assert list(schema.GENERATOR_NAMES) == list(schema.FACT_TABLES)
    for logical, mapping in schema.GENERATOR_NAMES.items():
        columns = [c.name for c in schema.table(logical).c]
        assert list(mapping.values()) == columns, logical
        assert len(set(mapping)) == len(columns), logical
        assert all(gen[:1].isupper() for gen in mapping), logical
        assert "TraceId" not in mapping


def test_generator_names_spot_checks() -> None:
    receipts = schema.GENERATOR_NAMES["receipts"]
    assert receipts["StoreID"] == "store_id"
    assert receipts["ReceiptId"] == "receipt_id_ext"
    assert receipts["TenderType"] == "payment_method"
    assert receipts["Tax"] == "tax_amount" and receipts["TaxCents"] == "tax_cents"
    lines = schema.GENERATOR_NAMES["receipt_lines"]
    assert lines["UnitPrice"] == "unit_price" and lines["UnitCents"] == "unit_cents"
    assert lines["LineNumber"] == "line_num" and lines["Qty"] == "quantity"
    assert schema.GENERATOR_NAMES["online_order_lines"]["ExtCents"] == "ext_cents"
    headers = schema.GENERATOR_NAMES["online_orders"]
    assert headers["GrossSubtotalCents"] == "gross_subtotal_cents"
    assert headers["TenderType"] == "payment_method"
    assert schema.GENERATOR_NAMES["fact_payments"]["AmountCents"] == "amount_cents"
    assert schema.GENERATOR_NAMES["marketing"]["Cost"] == "cost"
    assert schema.GENERATOR_NAMES["ble_pings"]["RSSI"] == "rssi"
    assert schema.GENERATOR_NAMES["truck_moves"]["ETA"] == "eta"


# --- Arrow and DuckDB contracts ---------------------------------------------------------------


def test_arrow_schema_types() -> None:
    receipts = schema.arrow_schema("receipts")
    assert receipts.field("tax_amount").type == pa.decimal128(18, 2)
    assert receipts.field("tax_cents").type == pa.int64()
    assert receipts.field("event_ts").type == pa.timestamp("us")
    assert receipts.field("receipt_id_ext").type == pa.string()
    assert receipts.field("line_count").type == pa.int32()
    assert not receipts.field("receipt_id_ext").nullable
    assert receipts.field("return_for_receipt_id_ext").nullable
    assert schema.arrow_schema("ble_pings").field("rssi").type == pa.int16()
    assert schema.arrow_schema("truck_moves").field("refrigerated").type == pa.bool_()
    geo = schema.arrow_schema("dim_geographies")
    assert geo.field("tax_rate").type == pa.decimal128(7, 6)
    assert geo.field("latitude").type == pa.float64()
    assert schema.arrow_schema("dim_products").field("launch_date").type == pa.date32()


def test_duckdb_ddl_keys_per_table_kind() -> None:
    fact_ddl = schema.duckdb_ddl("receipts")
    assert fact_ddl.startswith('CREATE TABLE IF NOT EXISTS "fact_receipts"')
    assert "PRIMARY KEY" not in fact_ddl and "REFERENCES" not in fact_ddl
    assert '"tax_amount" DECIMAL(18,2) NOT NULL' in fact_ddl
    assert '"return_for_receipt_id_ext" VARCHAR,' in fact_ddl
    dim_ddl = schema.duckdb_ddl("dim_stores")
    assert 'PRIMARY KEY ("store_id")' in dim_ddl and "REFERENCES" not in dim_ddl
    assert '"state" VARCHAR NOT NULL' in schema.duckdb_ddl("dim_geographies")
    assert 'PRIMARY KEY ("unit_id", "truck_id")' in schema.duckdb_ddl("gen_state_trucks")
    # A million rows each on the starter network: no index to build (the daily upsert of the
    # state joins by key instead).
    assert "PRIMARY KEY" not in schema.duckdb_ddl("gen_initial_inventory")
    assert "PRIMARY KEY" not in schema.duckdb_ddl("gen_state_inventory")


def test_duckdb_ddl_creates_every_table(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "sub" / "all.duckdb")
    try:
        names = list(schema.metadata.tables)
        eng.create_tables(con, names)
        eng.create_tables(con, names)  # IF NOT EXISTS: idempotent
        for name in names:
            assert eng.table_exists(con, name)
            assert eng.existing_columns(con, name) == schema.duckdb_columns(name)
        eng.check_schema(con)
        eng.check_schema(con, ["receipts", "gen_watermark"])
    finally:
        con.close()
    assert (tmp_path / "sub" / "all.duckdb").exists()


# --- DuckDB engine ----------------------------------------------------------------------------


def _receipt_batch() -> pa.Table:
    rows = {
        "receipt_id_ext": ["RCP2024112900003000017", "RET2024120300003000001"],
        "receipt_type": ["SALE", "RETURN"],
        "return_for_receipt_id_ext": [None, "RCP2024112900003000017"],
        "event_ts": [datetime(2024, 11, 29, 10, 15, 1, 123456), datetime(2024, 12, 3, 9, 0)],
        "store_id": [3, 3],
        "customer_id": [17, 17],
        "line_count": [1, 1],
        "item_count": [2, -2],
    }
    money = {"gross_subtotal": 1998, "discount": 0, "subtotal": 1998, "tax": 160, "total": 2158}
    for base, cents in money.items():
        rows[f"{base}_amount"] = [Decimal(cents) / 100, Decimal(-cents) / 100]
        rows[f"{base}_cents"] = [cents, -cents]
    rows["payment_method"] = ["CASH", "CASH"]
    return pa.Table.from_pydict(rows, schema=schema.arrow_schema("receipts"))


def test_append_arrow_round_trip(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "rt.duckdb")
    try:
        eng.create_tables(con, ["receipts"])
        batch = _receipt_batch()
        assert eng.append_arrow(con, "receipts", batch) == 2
        assert eng.append_arrow(con, "fact_receipts", batch.slice(0, 0)) == 0
        back = eng.read_table(con, "fact_receipts")
        assert back.schema.field("tax_amount").type == pa.decimal128(18, 2)
        assert back.schema.field("event_ts").type == pa.timestamp("us")
        assert back.to_pylist() == batch.to_pylist()
        assert back.column("tax_amount").to_pylist()[1] == Decimal("-1.60")
        part = eng.read_table(con, "receipts", ["total_cents", "receipt_id_ext"])
        assert part.column_names == ["total_cents", "receipt_id_ext"]
    finally:
        con.close()


def test_append_arrow_rejects_unknown_column(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "bad.duckdb")
    try:
        eng.create_tables(con, ["store_ops"])
        bad = pa.table({"event_ts": [datetime(2024, 1, 1)], "StoreID": [1]})
        with pytest.raises(SchemaContractError, match="StoreID"):
            eng.append_arrow(con, "store_ops", bad)
    finally:
        con.close()


def test_outbox_defaults_apply(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "ob.duckdb")
    try:
        eng.create_tables(con, ["streaming_outbox"])
        event = pa.table(
            {
                "outbox_id": pa.array([20241129000000001], pa.int64()),
                "event_ts": pa.array([datetime(2024, 11, 29, 8)], pa.timestamp("us")),
                "message_type": ["store_opened"],
                "payload": ['{"store_id": 1}'],
                "partition_key": ["store:1"],
                "trace_id": ["store_ops:1:2024-11-29T08:00:00.000000:OPENED"],
            }
        )
        eng.append_arrow(con, "streaming_outbox", event)
        row = con.execute(
            "SELECT status, attempts, schema_version, source FROM streaming_outbox"
        ).fetchone()
        assert row == ("pending", 0, "2.0", "retail-datagen")
    finally:
        con.close()


def test_upsert_arrow_replaces_by_key(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "up.duckdb")
    try:
        eng.create_tables(con, ["gen_watermark", "gen_state_trucks"])
        for last in (date(2024, 11, 25), date(2024, 11, 26)):
            wm = pa.table({"first_day": [date(2024, 11, 25)], "last_day": [last]})
            with eng.transaction(con):
                eng.upsert_arrow(con, "gen_watermark", wm)
        assert con.execute("SELECT id, last_day FROM gen_watermark").fetchall() == [
            (1, date(2024, 11, 26))
        ]
        trucks = pa.table({"unit_id": pa.array([1, 1], pa.int16()), "truck_id": [1, 2],
                           "available_at": [datetime(2024, 1, 1)] * 2})
        eng.upsert_arrow(con, "gen_state_trucks", trucks)
        later = trucks.slice(1).set_column(2, "available_at", pa.array([datetime(2024, 1, 2)]))
        eng.upsert_arrow(con, "gen_state_trucks", later)
        got = con.execute("SELECT * FROM gen_state_trucks ORDER BY truck_id").fetchall()
        assert got == [(1, 1, datetime(2024, 1, 1)), (1, 2, datetime(2024, 1, 2))]
        with pytest.raises(UnknownTableError):
            eng.upsert_arrow(con, "receipts", _receipt_batch())
    finally:
        con.close()


def _inventory(rows: list[tuple]) -> pa.Table:
    unit, node_type, node_id, product_id, on_hand = zip(*rows, strict=True)
    return pa.table({"unit_id": pa.array(unit, pa.int16()), "node_type": list(node_type),
                     "node_id": list(node_id), "product_id": list(product_id),
                     "on_hand": pa.array(on_hand, pa.int32()),
                     "in_transit": pa.array([0] * len(rows), pa.int32()),
                     "on_order": pa.array([0] * len(rows), pa.int32())})


def test_upsert_without_an_index_updates_by_key_and_inserts_new_keys(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "inv.duckdb")
    try:
        eng.create_tables(con, ["gen_state_inventory"])
        assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = "
                           "'gen_state_inventory' AND constraint_type = 'PRIMARY KEY'"
                           ).fetchone() == (0,)
        eng.append_arrow(con, "gen_state_inventory", _inventory(
            [(1, "STORE", 1, 1, 10), (1, "STORE", 1, 2, 20), (1, "DC", 1, 1, 30)]))
        with eng.transaction(con):
            # Same node_id and product_id under another node_type is another key.
            assert eng.upsert_arrow(con, "gen_state_inventory", _inventory(
                [(1, "DC", 1, 1, 31), (1, "STORE", 1, 2, 21)])) == 2
        with eng.transaction(con):
            eng.upsert_arrow(con, "gen_state_inventory", _inventory(
                [(1, "STORE", 1, 1, 11), (2, "STORE", 1, 1, 5)]))
        got = con.execute("SELECT unit_id, node_type, node_id, product_id, on_hand FROM "
                          "gen_state_inventory ORDER BY ALL").fetchall()
        assert got == [(1, "DC", 1, 1, 31), (1, "STORE", 1, 1, 11), (1, "STORE", 1, 2, 21),
                       (2, "STORE", 1, 1, 5)]
        with pytest.raises(RuntimeError), eng.transaction(con):
            eng.upsert_arrow(con, "gen_state_inventory", _inventory([(1, "DC", 1, 1, 99)]))
            raise RuntimeError("abandon the day")
        assert con.execute("SELECT on_hand FROM gen_state_inventory WHERE node_type = 'DC'"
                           ).fetchall() == [(31,)]
    finally:
        con.close()


def test_replace_arrow_swaps_rows_keeps_key_and_rolls_back(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "rp.duckdb")
    try:
        eng.create_tables(con, ["gen_state_trucks"])
        trucks = pa.table({"unit_id": pa.array([1, 1], pa.int16()), "truck_id": [1, 2],
                           "available_at": [datetime(2024, 1, 1)] * 2})
        eng.append_arrow(con, "gen_state_trucks", trucks)
        later = trucks.slice(1).set_column(2, "available_at", pa.array([datetime(2024, 1, 2)]))
        with pytest.raises(RuntimeError), eng.transaction(con):
            eng.replace_arrow(con, "gen_state_trucks", later)
            raise RuntimeError("roll back")
        query = "SELECT * FROM gen_state_trucks ORDER BY truck_id"
        assert con.execute(query).fetchall() == [(1, 1, datetime(2024, 1, 1)),
                                                 (1, 2, datetime(2024, 1, 1))]
        with eng.transaction(con):
            assert eng.replace_arrow(con, "gen_state_trucks", later) == 1
        assert con.execute(query).fetchall() == [(1, 2, datetime(2024, 1, 2))]
        assert eng.existing_columns(con, "gen_state_trucks") == [
            ("unit_id", "SMALLINT"), ("truck_id", "BIGINT"), ("available_at", "TIMESTAMP")]
        with pytest.raises(duckdb.ConstraintException):
            eng.append_arrow(con, "gen_state_trucks", later)
        with pytest.raises(duckdb.Error), eng.transaction(con):
            eng.replace_arrow(con, "gen_state_trucks", pa.concat_tables([trucks, trucks]))
        assert con.execute(query).fetchall() == [(1, 2, datetime(2024, 1, 2))]
        with pytest.raises(UnknownTableError):
            eng.replace_arrow(con, "receipts", _receipt_batch())
    finally:
        con.close()


def test_retain_rows_keeps_matching_rows_and_key(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "rt.duckdb")
    try:
        eng.create_tables(con, ["gen_state_trucks"])
        trucks = pa.table({"unit_id": pa.array([1, 1, 2], pa.int16()), "truck_id": [1, 2, 3],
                           "available_at": [datetime(2024, 1, d) for d in (1, 2, 3)]})
        eng.append_arrow(con, "gen_state_trucks", trucks)
        query = "SELECT truck_id FROM gen_state_trucks ORDER BY truck_id"
        with pytest.raises(RuntimeError), eng.transaction(con):
            eng.retain_rows(con, "gen_state_trucks", "available_at > ?", [datetime(2024, 1, 2)])
            raise RuntimeError("roll back")
        assert con.execute(query).fetchall() == [(1,), (2,), (3,)]
        with eng.transaction(con):
            eng.retain_rows(con, "gen_state_trucks", "available_at > ?", [datetime(2024, 1, 1)])
        assert con.execute(query).fetchall() == [(2,), (3,)]
        with pytest.raises(duckdb.ConstraintException):
            eng.append_arrow(con, "gen_state_trucks", trucks.slice(2))
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
        with pytest.raises(UnknownTableError):
            eng.retain_rows(con, "receipts", "true")
    finally:
        con.close()


def test_failed_transaction_leaves_nothing(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "tx.duckdb")
    try:
        eng.create_tables(con, ["receipts", "gen_day_log"])
        with pytest.raises(RuntimeError, match="boom"), eng.transaction(con):
            eng.append_arrow(con, "receipts", _receipt_batch())
            con.execute("INSERT INTO gen_day_log VALUES (DATE '2024-11-29', 'receipts', false, 2)")
            raise RuntimeError("boom")
        assert con.execute("SELECT count(*) FROM fact_receipts").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM gen_day_log").fetchone() == (0,)
        with eng.transaction(con):
            eng.append_arrow(con, "receipts", _receipt_batch())
        assert con.execute("SELECT count(*) FROM fact_receipts").fetchone() == (2,)
    finally:
        con.close()


def test_check_schema_reports_wrong_column(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "mm.duckdb")
    try:
        ddl = schema.duckdb_ddl("receipts").replace(
            '"return_for_receipt_id_ext" VARCHAR', '"foo" INTEGER'
        )
        con.execute(ddl)
        eng.create_tables(con, ["store_ops"])
        with pytest.raises(SchemaMismatchError) as info:
            eng.check_schema(con)
        message = str(info.value)
        assert "fact_receipts" in message
        assert (
            "column 3 expected 'return_for_receipt_id_ext VARCHAR', found 'foo INTEGER'" in message
        )
        assert "missing column 'return_for_receipt_id_ext'" in message
        assert "unexpected column 'foo'" in message
        assert "reset_facts()" in message and "--reset" in message
        assert "fact_store_ops" not in message
        # Only the named tables are checked.
        eng.check_schema(con, ["store_ops", "ble_pings"])
    finally:
        con.close()


def test_check_schema_reports_wrong_type(tmp_path) -> None:
    con = eng.open_duckdb(tmp_path / "ty.duckdb")
    try:
        con.execute(schema.duckdb_ddl("fact_payments").replace("DECIMAL(18,2)", "DOUBLE"))
        with pytest.raises(SchemaMismatchError, match="amount DECIMAL"):
            eng.check_schema(con)
    finally:
        con.close()


def test_open_read_only_missing_file(tmp_path) -> None:
    target = tmp_path / "missing" / "x.duckdb"
    with pytest.raises(DatabaseError, match="does not exist"):
        eng.open_duckdb(target, read_only=True)
    assert not target.exists() and not target.parent.exists()


def test_open_relative_path_and_read_only(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    con = eng.open_duckdb("data/rel.duckdb")
    eng.create_tables(con, ["dim_geographies"])
    con.close()
    assert (tmp_path / "data" / "rel.duckdb").exists()
    ro = eng.open_duckdb("data/rel.duckdb", read_only=True)
    try:
        assert eng.table_exists(ro, "dim_geographies")
        assert not eng.table_exists(ro, "dim_stores")
    finally:
        ro.close()


def test_locked_file_raises_database_locked(tmp_path) -> None:
    path = tmp_path / "locked.duckdb"
    code = (
        f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ready', flush=True); "
        "time.sleep(30)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseLockedError) as info:
            eng.open_duckdb(path)
        assert str(path) in str(info.value)
        assert "close the other process" in str(info.value).lower()
        assert isinstance(info.value.__cause__, duckdb.Error)
    finally:
        proc.kill()
        proc.wait(timeout=10)
