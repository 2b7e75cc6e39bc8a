"""Tests of the outbox: payload models, bulk event building, ids and the consumer helpers."""

from __future__ import annotations

import io
import json
import os
import re
import threading
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from retail_datagen.db import duckdb_engine, schema
from retail_datagen.errors import DatabaseError, SchemaContractError
from retail_datagen.streaming import outbox, schemas
from retail_datagen.streaming.outbox import (
    ack,
    assign_outbox_ids,
    build_outbox_rows,
    counts,
    drain,
    iter_events,
    lease,
    nack,
)

DAY = date(2024, 11, 29)
T = datetime(2024, 11, 29, 10, 15, 30, 250)
T_LATER = datetime(2024, 11, 29, 18, 0, 0)
TS_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$"
DECIMAL_PATTERN = r"^-?\d+\.\d{2}$"
NOW = datetime(2025, 1, 1, 12, 0, 0)

# --- hand-built generator batches (PascalCase, with TraceId) ---------------------------------


def _batch(name: str, columns: dict[str, list], trace: list[str]) -> pa.Table:
    """A generator batch typed as the contract, plus the ``TraceId`` column."""
    types = {gen: schema.arrow_schema(name).field(db).type
             for gen, db in schema.GENERATOR_NAMES[name].items()}
    data = {gen: pa.array(values, types[gen]) for gen, values in columns.items()}
    data["TraceId"] = pa.array([f"{name}:{key}" for key in trace], pa.string())
    return pa.table(data)


def receipts_batch() -> pa.Table:
    ids = ["RCP2024112900003000017", "RET2024112900012000001"]
    return _batch("receipts", {
        "ReceiptId": ids, "ReceiptType": ["SALE", "RETURN"],
        "ReturnForReceiptId": [None, "RCP2024112000012000005"],
        "EventTS": [T, T_LATER], "StoreID": [3, 12], "CustomerID": [10, 11],
        "LineCount": [2, 1], "ItemCount": [3, -1],
        "GrossSubtotal": [D("12.00"), D("-5.50")], "GrossSubtotalCents": [1200, -550],
        "DiscountAmount": [D("1.00"), D("0.00")], "DiscountCents": [100, 0],
        "Subtotal": [D("11.00"), D("-5.50")], "SubtotalCents": [1100, -550],
        "Tax": [D("0.91"), D("-0.45")], "TaxCents": [91, -45],
        "Total": [D("11.91"), D("-5.95")], "TotalCents": [1191, -595],
        "TenderType": ["CASH", "CREDIT_CARD"],
    }, ids)


def receipt_lines_batch() -> pa.Table:
    ids = ["RCP2024112900003000017"] * 2
    return _batch("receipt_lines", {
        "ReceiptId": ids, "LineNumber": [1, 2], "EventTS": [T, T], "ProductID": [7, 9],
        "Qty": [2, 1], "UnitPrice": [D("4.00"), D("4.00")], "UnitCents": [400, 400],
        "DiscountAmount": [D("1.00"), D("0.00")], "DiscountCents": [100, 0],
        "ExtPrice": [D("7.00"), D("4.00")], "ExtCents": [700, 400],
        "Tax": [D("0.58"), D("0.33")], "TaxCents": [58, 33],
        "PromoCode": ["SAVE10", None],
    }, [f"{r}:{n}" for r, n in zip(ids, (1, 2), strict=True)])


def truck_moves_batch() -> pa.Table:
    statuses = list(schemas._RULES["truck_moves"][1])
    shipment = "SHP2024112800070004200001"
    depart = datetime(2024, 11, 29, 6, 0)
    times = [datetime(2024, 11, 29, 0, 0), depart - timedelta(hours=2), depart,
             datetime(2024, 11, 29, 8, 0), datetime(2024, 11, 29, 8, 10),
             datetime(2024, 11, 29, 9, 0)]
    n = len(statuses)
    return _batch("truck_moves", {
        "ShipmentId": [shipment] * n, "Status": statuses, "EventTS": times,
        "TruckID": [5] * n, "DCID": [7] * n, "StoreID": [42] * n,
        "Refrigerated": [True] * n, "UnitCount": [120] * n, "DepartureTime": [depart] * n,
        "ETA": [times[3]] * n, "ETD": [times[5]] * n,
        "UnloadDurationMinutes": [None] * (n - 1) + [50],
    }, [f"{shipment}:{s}" for s in statuses])


def payments_batch() -> pa.Table:
    ids = ["TXNRCP2024112900003000017-1", "TXNONL2024112900070000042-1",
           "TXNONL2024112900070000042-2", "TXNRET2024112900012000001-1"]
    return _batch("fact_payments", {
        "TransactionId": ids,
        "EventTS": [T + timedelta(seconds=2), T, T + timedelta(seconds=1),
                    T_LATER + timedelta(seconds=1)],
        "ReceiptId": ["RCP2024112900003000017", None, None, "RET2024112900012000001"],
        "OrderId": [None, "ONL2024112900070000042", "ONL2024112900070000042", None],
        "StoreID": [3, None, None, 12], "CustomerID": [10, 20, 20, 11],
        "TenderType": ["CASH", "PAYPAL", "PAYPAL", "CREDIT_CARD"], "Attempt": [1, 1, 2, 1],
        "Status": ["APPROVED", "DECLINED", "APPROVED", "REFUNDED"],
        "DeclineReason": [None, "CARD_EXPIRED", None, None],
        "Amount": [D("11.91"), D("30.00"), D("30.00"), D("-5.95")],
        "AmountCents": [1191, 3000, 3000, -595], "ProcessingTimeMs": [800, 1000, 1200, 900],
    }, ids)


def stockouts_batch() -> pa.Table:
    ids = [2024112900700000001, 2024112900700000002]
    return _batch("stockouts", {
        "StockoutId": ids, "EventTS": [T, T_LATER], "StoreID": [3, None], "DCID": [None, 7],
        "ProductID": [7, 9], "LastKnownQuantity": [2, 40], "UnfilledQuantity": [1, 0],
        "Source": ["RCP2024112900003000017", "SHP2024112900070004200001"],
        "DetectionTime": [T, T_LATER],
    }, [str(i) for i in ids])


def store_ops_batch() -> pa.Table:
    opened, closed = datetime(2024, 11, 29, 8, 0), datetime(2024, 11, 29, 22, 0)
    return _batch("store_ops", {
        "EventTS": [opened, closed], "StoreID": [3, 3], "OperationType": ["OPENED", "CLOSED"],
    }, ["3:2024-11-29T08:00:00.000000:OPENED", "3:2024-11-29T22:00:00.000000:CLOSED"])


def dc_txn_batch() -> pa.Table:
    return _batch("dc_inventory_txn", {
        "TxnId": [2024112900700000001], "EventTS": [T], "DCID": [7], "ProductID": [9],
        "TxnType": ["SALE"], "Quantity": [-1], "Balance": [40],
        "Source": ["ONL2024112900070000042"], "TruckID": [None],
    }, ["2024112900700000001"])


def store_txn_batch() -> pa.Table:
    return _batch("store_inventory_txn", {
        "TxnId": [2024112900700000001], "EventTS": [T], "StoreID": [3], "ProductID": [7],
        "TxnType": ["SALE"], "Quantity": [-2], "Balance": [0],
        "Source": ["RCP2024112900003000017"],
    }, ["2024112900700000001"])


def truck_inventory_batch() -> pa.Table:
    shipment = "SHP2024112800070004200001"
    return _batch("truck_inventory", {
        "EventTS": [datetime(2024, 11, 29, 4, 0), datetime(2024, 11, 29, 8, 10)],
        "TruckID": [5, 5], "ShipmentId": [shipment] * 2, "ProductID": [7, 7],
        "Quantity": [30, 30], "Action": ["LOAD", "UNLOAD"], "LocationID": [7, 42],
        "LocationType": ["DC", "STORE"],
    }, [f"{shipment}:7:LOAD", f"{shipment}:7:UNLOAD"])


BATCHES = {
    "receipts": receipts_batch, "receipt_lines": receipt_lines_batch,
    "truck_moves": truck_moves_batch, "fact_payments": payments_batch,
    "stockouts": stockouts_batch, "store_ops": store_ops_batch,
    "dc_inventory_txn": dc_txn_batch, "store_inventory_txn": store_txn_batch,
    "truck_inventory": truck_inventory_batch,
}


def built(name: str) -> pa.Table:
    return build_outbox_rows(name, BATCHES[name]())


# Store → DC unit by store index: every store of the fixtures is at DC 7 except store 12 (DC 2).
STORE_UNIT = np.where(np.arange(1, 43) == 12, 2, 7)


def day_events() -> pa.Table:
    return assign_outbox_ids(DAY, [built(name) for name in BATCHES], STORE_UNIT)


# --- payload models ----------------------------------------------------------------------

SPEC_MESSAGE_TYPES = {
    "receipt_created", "receipt_returned", "receipt_line_added", "inventory_updated",
    "truck_scheduled", "truck_loading", "truck_departed", "truck_arrived", "truck_unloading",
    "truck_completed", "truck_loaded", "truck_unloaded", "customer_entered",
    "ble_ping_detected", "customer_zone_changed", "ad_impression", "online_order_created",
    "online_order_line_added", "payment_processed", "store_opened", "store_closed",
    "stockout_detected", "promotion_applied", "promotion_line_applied", "reorder_triggered",
}


def test_one_model_per_message_type_and_table_coverage():
    assert set(schemas.MESSAGE_MODELS) == SPEC_MESSAGE_TYPES
    assert tuple(schemas.TABLE_MESSAGE_TYPES) == schema.FACT_TABLES
    assert schemas.MESSAGE_TYPE_TABLES["inventory_updated"] == (
        "dc_inventory_txn", "store_inventory_txn")
    assert schemas.ReceiptCreated.__name__ == "ReceiptCreated"
    assert schemas.TruckDeparted is schemas.MESSAGE_MODELS["truck_departed"]
    assert schemas.InventoryUpdated is schemas.MESSAGE_MODELS["inventory_updated"]


@pytest.mark.parametrize("logical", schema.FACT_TABLES)
def test_model_fields_follow_the_ddl(logical):
    expected = [c.name.removesuffix("_ext") for c in schema.table(logical).c] + ["trace_id"]
    for message_type in schemas.TABLE_MESSAGE_TYPES[logical]:
        model = schemas.model_for(logical, message_type)
        assert list(model.model_fields) == expected
        assert model.model_config["extra"] == "forbid"
        for column in schema.table(logical).c:
            assert model.model_fields[column.name.removesuffix("_ext")].is_required()
    assert list(schemas.payload_fields(logical)) == expected


def test_ext_columns_are_renamed():
    fields = schemas.ReceiptReturned.model_fields
    assert {"receipt_id", "return_for_receipt_id"} <= set(fields)
    assert not any(name.endswith("_ext") for name in fields)
    assert "order_id" in schemas.PaymentProcessed.model_fields
    assert "impression_id" in schemas.AdImpression.model_fields


def test_message_type_rules_in_python_and_sql():
    assert schemas.message_type_for("receipts", {"receipt_type": "RETURN"}) == "receipt_returned"
    assert schemas.message_type_for("fact_truck_moves", {"status": "IN_TRANSIT"}) == (
        "truck_departed")
    assert schemas.message_type_for("truck_inventory", {"action": "LOAD"}) == "truck_loaded"
    assert schemas.message_type_for("store_ops", {"operation_type": "CLOSED"}) == "store_closed"
    assert schemas.message_type_for("marketing", {}) == "ad_impression"
    con = duckdb.connect()
    expr = schemas.message_type_expression("truck_moves")
    got = con.execute(f"SELECT {expr} FROM (VALUES ('ARRIVED'), ('BOGUS')) t(status)").fetchall()
    assert got == [("truck_arrived",), (None,)]


# --- building ----------------------------------------------------------------------------


def _payloads(rows: pa.Table) -> list[dict]:
    return [json.loads(p) for p in rows.column("payload").to_pylist()]


@pytest.mark.parametrize("name", list(BATCHES))
def test_one_valid_event_per_fact_row(name):
    batch = BATCHES[name]()
    rows = build_outbox_rows(name, batch)
    assert rows.schema == outbox.ROW_SCHEMA
    assert rows.num_rows == batch.num_rows
    assert set(rows.column("status").to_pylist()) == {"pending"}
    assert set(rows.column("attempts").to_pylist()) == {0}
    assert rows.column("last_attempt_ts").null_count == rows.num_rows
    assert rows.column("sent_ts").null_count == rows.num_rows
    assert set(rows.column("schema_version").to_pylist()) == {"2.0"}
    assert set(rows.column("source").to_pylist()) == {"retail-datagen"}
    assert rows.column("trace_id").to_pylist() == batch.column("TraceId").to_pylist()
    assert rows.column("event_ts").equals(batch.column("EventTS"))
    for row, payload in zip(rows.to_pylist(), _payloads(rows), strict=True):
        model = schemas.model_for(name, row["message_type"])
        assert list(payload) == list(model.model_fields)
        model.model_validate(payload)
        schemas.MESSAGE_MODELS[row["message_type"]].model_validate(payload)
        assert payload["trace_id"] == row["trace_id"]


def test_message_types_per_row():
    assert built("receipts").column("message_type").to_pylist() == [
        "receipt_created", "receipt_returned"]
    assert built("truck_moves").column("message_type").to_pylist() == [
        "truck_scheduled", "truck_loading", "truck_departed", "truck_arrived",
        "truck_unloading", "truck_completed"]
    assert built("truck_inventory").column("message_type").to_pylist() == [
        "truck_loaded", "truck_unloaded"]
    assert built("store_ops").column("message_type").to_pylist() == [
        "store_opened", "store_closed"]
    assert built("dc_inventory_txn").column("message_type").to_pylist() == ["inventory_updated"]
    assert built("store_inventory_txn").column("message_type").to_pylist() == [
        "inventory_updated"]
    assert set(built("fact_payments").column("message_type").to_pylist()) == {
        "payment_processed"}


@pytest.mark.parametrize(("name", "partitions", "correlations"), [
    ("receipts", ["store:3", "store:12"], [None, "RCP2024112000012000005"]),
    ("receipt_lines", ["store:3", "store:3"], ["RCP2024112900003000017"] * 2),
    ("truck_moves", ["dc:7"] * 6, ["SHP2024112800070004200001"] * 6),
    ("truck_inventory", ["dc:7", "dc:7"], ["SHP2024112800070004200001"] * 2),
    ("fact_payments",
     ["store:3", "order:ONL2024112900070000042", "order:ONL2024112900070000042", "store:12"],
     ["RCP2024112900003000017", "ONL2024112900070000042", "ONL2024112900070000042",
      "RET2024112900012000001"]),
    ("stockouts", ["store:3", "dc:7"], [None, None]),
    ("store_ops", ["store:3", "store:3"], [None, None]),
    ("dc_inventory_txn", ["dc:7"], ["ONL2024112900070000042"]),
    ("store_inventory_txn", ["store:3"], ["RCP2024112900003000017"]),
])
def test_partition_keys_and_correlation_ids(name, partitions, correlations):
    rows = built(name)
    assert rows.column("partition_key").to_pylist() == partitions
    assert rows.column("correlation_id").to_pylist() == correlations


def test_payload_value_formats():
    sale, ret = _payloads(built("receipts"))
    assert sale["return_for_receipt_id"] is None and "return_for_receipt_id" in sale
    assert sale["total_amount"] == "11.91" and sale["total_cents"] == 1191
    assert sale["gross_subtotal_amount"] == "12.00"
    assert ret["total_amount"] == "-5.95" and ret["tax_amount"] == "-0.45"
    assert sale["event_ts"] == "2024-11-29T10:15:30.000250"
    assert ret["event_ts"] == "2024-11-29T18:00:00.000000"
    assert list(sale)[0] == "receipt_id" and list(sale)[-1] == "trace_id"
    for name in BATCHES:
        types = {c.name.removesuffix("_ext"): c.type for c in schema.table(name).c}
        for payload in _payloads(built(name)):
            for key, value in payload.items():
                if key == "trace_id" or value is None:
                    continue
                if isinstance(types[key], sa.Numeric):
                    assert isinstance(value, str) and re.match(DECIMAL_PATTERN, value), key
                elif isinstance(types[key], sa.DateTime):
                    assert isinstance(value, str) and re.match(TS_PATTERN, value), key
                else:
                    assert not isinstance(value, float), key
    moves = _payloads(built("truck_moves"))
    assert moves[0]["refrigerated"] is True and moves[0]["unload_duration_minutes"] is None
    assert moves[-1]["unload_duration_minutes"] == 50


def _sample_batch(logical: str) -> pa.Table:
    """Two rows with a value in every column, valid for the partition and type rules."""
    values = {"receipt_id_ext": "RCP2024112900003000017", "order_id_ext": "ONL2024112900010000001",
              "shipment_id": "SHP2024112800070004200001", "campaign_id": "CMP2024112901"}
    selector = schemas.message_type_column(logical)
    if selector is not None:
        values[selector] = next(iter(schemas._RULES[logical][1]))
    columns = {}
    for gen, db in schema.GENERATOR_NAMES[logical].items():
        type_ = schema.arrow_schema(logical).field(db).type
        if db in values:
            value = values[db]
        elif pa.types.is_timestamp(type_):
            value = T
        elif pa.types.is_decimal(type_):
            value = D("-1.05")
        elif pa.types.is_boolean(type_):
            value = False
        elif pa.types.is_integer(type_):
            value = 3
        else:
            value = 'text with "quotes", \\ and é'
        columns[gen] = [value, value]
    return _batch(logical, columns, ["1", "2"])


@pytest.mark.parametrize("logical", schema.FACT_TABLES)
def test_every_table_builds_valid_events(logical):
    rows = build_outbox_rows(logical, _sample_batch(logical), validate=False)
    assert rows.num_rows == 2
    assert rows.column("partition_key").null_count == 0
    assert set(rows.column("message_type").to_pylist()) <= set(
        schemas.TABLE_MESSAGE_TYPES[logical])
    outbox.validate_sample(rows)
    payload = _payloads(rows)[0]
    assert tuple(payload) == schemas.payload_fields(logical)
    text_keys = [k for k, v in payload.items() if isinstance(v, str) and "quotes" in v]
    assert all(payload[k] == 'text with "quotes", \\ and é' for k in text_keys)


def test_db_names_and_empty_batches():
    rows = build_outbox_rows("fact_receipts", receipts_batch())
    assert rows.num_rows == 2
    empty = build_outbox_rows("receipts", receipts_batch().slice(0, 0))
    assert empty.num_rows == 0 and empty.schema == outbox.ROW_SCHEMA


def test_contract_errors():
    with pytest.raises(SchemaContractError, match="TraceId"):
        build_outbox_rows("receipts", receipts_batch().drop_columns(["TraceId"]))
    with pytest.raises(SchemaContractError, match="missing"):
        build_outbox_rows("receipts", receipts_batch().drop_columns(["TenderType"]))
    bad = receipts_batch()
    bad = bad.set_column(bad.column_names.index("ReceiptType"), "ReceiptType",
                         pa.array(["SALE", "VOID"]))
    with pytest.raises(SchemaContractError, match="no message type"):
        build_outbox_rows("receipts", bad)
    lines = receipt_lines_batch()
    lines = lines.set_column(0, "ReceiptId", pa.array(["RCPxx", "RCPxx"]))
    with pytest.raises(SchemaContractError, match="no partition key"):
        build_outbox_rows("receipt_lines", lines)


def test_validate_sample_names_message_type_and_field():
    rows = built("receipts")
    payload = json.loads(rows.column("payload")[0].as_py())
    payload["total_amount"] = "11.9"
    broken = rows.set_column(rows.column_names.index("payload"), "payload",
                             pa.array([json.dumps(payload), rows.column("payload")[1].as_py()]))
    with pytest.raises(SchemaContractError, match=r"receipt_created.*total_amount"):
        outbox.validate_sample(broken)
    payload = json.loads(rows.column("payload")[1].as_py())
    payload["extra_key"] = 1
    broken = rows.set_column(rows.column_names.index("payload"), "payload",
                             pa.array([rows.column("payload")[0].as_py(), json.dumps(payload)]))
    with pytest.raises(SchemaContractError, match=r"receipt_returned.*extra_key"):
        outbox.validate_sample(broken)
    swapped = rows.set_column(rows.column_names.index("message_type"), "message_type",
                              pa.array(["receipt_returned", "receipt_returned"]))
    with pytest.raises(SchemaContractError, match=r"receipt_returned.*receipt_type"):
        outbox.validate_sample(swapped)


# --- outbox ids ----------------------------------------------------------------------------


def test_outbox_ids_follow_event_ts_table_order_and_trace_id():
    events = day_events()
    assert events.schema == schema.arrow_schema(schema.OUTBOX_TABLE)
    n = sum(b().num_rows for b in BATCHES.values())
    assert events.num_rows == n
    ids = events.column("outbox_id").to_pylist()
    # Numbered per unit-day: the events of store 12 (unit 2) apart from the rest (unit 7).
    units = [2 if key == "store:12" else 7 for key in events.column("partition_key").to_pylist()]
    assert units.count(2) == 2
    seen = {2: 0, 7: 0}
    expected = []
    for unit in units:
        seen[unit] += 1
        expected.append(20241129 * 10**11 + unit * 10**8 + seen[unit])
    assert ids == expected
    rank = {name: i for i, name in enumerate(schema.FACT_TABLES)}
    keys = [(row["event_ts"], rank[row["trace_id"].split(":")[0]], row["trace_id"])
            for row in events.to_pylist()]
    assert keys == sorted(keys)
    at_t = [row["trace_id"] for row in events.to_pylist() if row["event_ts"] == T]
    # Same event_ts: dc_inventory_txn(1) < store_inventory_txn(4) < receipts(5) <
    # receipt_lines(6) < fact_payments(13) < stockouts(15); lines by trace id.
    assert [t.split(":")[0] for t in at_t] == [
        "dc_inventory_txn", "store_inventory_txn", "receipts", "receipt_lines",
        "receipt_lines", "fact_payments", "stockouts"]
    assert at_t[3].endswith(":1") and at_t[4].endswith(":2")
    assert len(set(events.column("trace_id").to_pylist())) == n


def test_outbox_ids_are_independent_of_input_order():
    forward = day_events()
    backward = assign_outbox_ids(DAY, [built(name) for name in reversed(list(BATCHES))],
                                 STORE_UNIT)
    assert forward.equals(backward)
    assert assign_outbox_ids(DAY, [], STORE_UNIT).num_rows == 0


def test_outbox_ids_reject_other_days():
    with pytest.raises(SchemaContractError, match="other days"):
        assign_outbox_ids(DAY + timedelta(days=1), [built("receipts")], STORE_UNIT)


# --- consumer helpers on DuckDB ----------------------------------------------------------


@pytest.fixture
def outbox_db(tmp_path: Path) -> Path:
    path = tmp_path / "outbox.duckdb"
    con = duckdb_engine.open_duckdb(path)
    duckdb_engine.create_tables(con, [schema.OUTBOX_TABLE])
    duckdb_engine.append_arrow(con, schema.OUTBOX_TABLE, day_events())
    con.close()
    return path


def _status(path: Path) -> dict[int, tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT outbox_id, status, attempts, last_attempt_ts, sent_ts "
                           "FROM streaming_outbox").fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


def test_lease_ack_nack_cycle(outbox_db):
    total = day_events().num_rows
    assert counts(outbox_db) == {"pending": total, "processing": 0, "sent": 0, "failed": 0,
                                 "total": total}
    leased = lease(outbox_db, 3, now=NOW)
    assert len(leased) == 3
    assert [(e.event_ts, e.outbox_id) for e in leased] == sorted(
        (e.event_ts, e.outbox_id) for e in leased)
    ordered = sorted(day_events().to_pylist(), key=lambda r: (r["event_ts"], r["outbox_id"]))
    assert [e.outbox_id for e in leased] == [r["outbox_id"] for r in ordered[:3]]
    assert all(isinstance(e.payload, schemas.PayloadModel) for e in leased)
    state = _status(outbox_db)
    for e in leased:
        assert e.status == "processing" and e.attempts == 1 and e.last_attempt_ts == NOW
        assert state[e.outbox_id][:3] == ("processing", 1, NOW)
    assert counts(outbox_db)["processing"] == 3

    ids = [e.outbox_id for e in leased]
    assert ack(outbox_db, ids[:2], now=NOW + timedelta(seconds=5)) == 2
    assert ack(outbox_db, ids[:2]) == 0  # already sent
    assert nack(outbox_db, ids[:2]) == 0
    state = _status(outbox_db)
    assert state[ids[0]] == ("sent", 1, NOW, NOW + timedelta(seconds=5))
    assert nack(outbox_db, ids[2:]) == 1
    assert _status(outbox_db)[ids[2]][:2] == ("pending", 1)  # attempts are kept
    c = counts(outbox_db)
    assert (c["sent"], c["pending"], c["processing"], c["total"]) == (2, total - 2, 0, total)


@pytest.mark.parametrize("dead_letter", [True, False])
def test_nack_dead_letters_at_max_attempts(outbox_db, dead_letter):
    # lease(limit=1) always takes the earliest due event, so the same event cycles.
    target = lease(outbox_db, 1, now=NOW)[0].outbox_id
    for attempt in (1, 2):
        assert nack(outbox_db, [target], max_attempts=3, dead_letter=dead_letter) == 1
        assert _status(outbox_db)[target][:2] == ("pending", attempt)
        again = lease(outbox_db, 1, now=NOW + timedelta(minutes=attempt))
        assert [(e.outbox_id, e.attempts) for e in again] == [(target, attempt + 1)]
    assert nack(outbox_db, [target], max_attempts=3, dead_letter=dead_letter) == 1
    expected = "failed" if dead_letter else "pending"
    assert _status(outbox_db)[target][:2] == (expected, 3)
    assert counts(outbox_db)["failed"] == (1 if dead_letter else 0)
    assert (lease(outbox_db, 1, now=NOW)[0].outbox_id == target) is not dead_letter
    with pytest.raises(ValueError):
        nack(outbox_db, [target], max_attempts=0)


def test_expired_lease_is_taken_over(outbox_db):
    total = day_events().num_rows
    first = lease(outbox_db, 1000, now=NOW)
    assert len(first) == total
    assert lease(outbox_db, 1000, now=NOW + timedelta(seconds=100)) == []
    assert lease(outbox_db, 1000, lease_timeout_s=60, now=NOW + timedelta(seconds=30)) == []
    again = lease(outbox_db, 1000, lease_timeout_s=300, now=NOW + timedelta(seconds=301))
    assert [e.outbox_id for e in again] == [e.outbox_id for e in first]
    assert {e.attempts for e in again} == {2}
    assert {e.last_attempt_ts for e in again} == {NOW + timedelta(seconds=301)}


def test_iter_events_is_read_only_and_filters(outbox_db):
    events = list(iter_events(outbox_db))
    assert len(events) == day_events().num_rows
    assert [(e.event_ts, e.outbox_id) for e in events] == sorted(
        (e.event_ts, e.outbox_id) for e in events)
    assert counts(outbox_db)["pending"] == len(events)
    assert len(list(iter_events(outbox_db, limit=4))) == 4
    lease(outbox_db, 2, now=NOW)
    assert [e.status for e in iter_events(outbox_db, status="processing")] == ["processing"] * 2
    assert list(iter_events(outbox_db, status="failed")) == []
    with pytest.raises(ValueError):
        list(iter_events(outbox_db, status="done"))
    receipt = next(e for e in events if e.message_type == "receipt_returned")
    assert isinstance(receipt.payload, schemas.ReceiptReturned)
    assert receipt.payload.return_for_receipt_id == "RCP2024112000012000005"
    inventory = next(e for e in events if e.trace_id.startswith("dc_inventory_txn:"))
    assert isinstance(inventory.payload, schemas.DcInventoryUpdated)


def test_connection_targets_and_missing_outbox(tmp_path, outbox_db):
    con = duckdb.connect(str(outbox_db))
    try:
        leased = lease(con, 2, now=NOW)
        assert len(leased) == 2
        assert ack(con, [e.outbox_id for e in leased]) == 2
        assert counts(con)["sent"] == 2
    finally:
        con.close()
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    assert counts(empty)["total"] == 0
    assert lease(empty) == [] and list(iter_events(empty)) == []
    with pytest.raises(DatabaseError):
        lease(tmp_path / "missing.duckdb")
    assert not (tmp_path / "missing.duckdb").exists()


def test_lease_rejects_invalid_payload_and_rolls_back(outbox_db):
    con = duckdb.connect(str(outbox_db))
    con.execute("UPDATE streaming_outbox SET payload = replace(payload, '\"store_id\":3', "
                "'\"store_id\":\"3\"') WHERE message_type = 'receipt_created'")
    con.close()
    with pytest.raises(SchemaContractError, match=r"receipt_created.*store_id"):
        lease(outbox_db, 1000, now=NOW)
    assert counts(outbox_db)["processing"] == 0


def test_drain_writes_one_json_line_per_event(outbox_db, tmp_path):
    total = day_events().num_rows
    out_file = tmp_path / "events.jsonl"
    with out_file.open("w", encoding="utf-8") as out:
        assert drain(outbox_db, out, hub="retail-events", limit=5, batch=2) == 5
        assert drain(outbox_db, out, hub="retail-events", batch=4) == total - 5
    lines = out_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == total
    events = [json.loads(line) for line in lines]
    assert {e["hub"] for e in events} == {"retail-events"}
    assert len({e["outbox_id"] for e in events}) == total
    assert all(isinstance(e["payload"], dict) and e["payload"]["trace_id"] == e["trace_id"]
               for e in events)
    assert [k for k in events[0] if k != "hub"] == schema.arrow_schema(
        schema.OUTBOX_TABLE).names
    assert all(e["status"] == "processing" and e["attempts"] == 1 for e in events)
    c = counts(outbox_db)
    assert (c["sent"], c["pending"], c["processing"]) == (total, 0, 0)
    with out_file.open("a") as out:
        assert drain(outbox_db, out, hub="retail-events") == 0


def test_drain_nacks_when_writing_fails(outbox_db):
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        drain(outbox_db, Broken(), hub="h", batch=3)
    c = counts(outbox_db)
    assert c["processing"] == 0 and c["sent"] == 0 and c["pending"] == c["total"]
    assert sorted(s[1] for s in _status(outbox_db).values())[-1] == 1


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
def pg_engine():
    url = os.environ.get("RETAIL_DATAGEN_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("RETAIL_DATAGEN_TEST_PG_URL is not set but CI is")
        pytest.skip("RETAIL_DATAGEN_TEST_PG_URL is not set")
    name = f"rdg_outbox_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={name}"})
    try:
        schema.metadata.create_all(engine, tables=[schema.table(schema.OUTBOX_TABLE)])
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def _insert_many(engine: sa.Engine, copies: int) -> int:
    base = day_events()
    rows = []
    for copy in range(copies):
        for row in base.to_pylist():
            rows.append({**row, "outbox_id": row["outbox_id"] + copy * 1000,
                         "trace_id": f"{row['trace_id']}#{copy}"})
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.table(schema.OUTBOX_TABLE)), rows)
    return len(rows)


@pytest.mark.postgres
def test_pg_skip_locked_lease(pg_engine):
    total = _insert_many(pg_engine, 1)
    with pg_engine.connect() as holder, pg_engine.connect() as rival:
        # Without SKIP LOCKED the rival would block on the held rows: fail fast instead.
        rival.execute(sa.text("SET lock_timeout = '5s'"))
        rival.commit()
        holder.begin()
        held = lease(holder, 5, now=NOW)  # row locks stay until this transaction ends
        other = lease(rival, 5, now=NOW)
        assert len(held) == len(other) == 5
        assert not {e.outbox_id for e in held} & {e.outbox_id for e in other}
        holder.commit()
    assert counts(pg_engine) == {"pending": total - 10, "processing": 10, "sent": 0,
                                 "failed": 0, "total": total}
    ids = [e.outbox_id for e in held]
    assert ack(pg_engine, ids, now=NOW) == 5
    assert nack(pg_engine, [e.outbox_id for e in other], max_attempts=1) == 5
    c = counts(pg_engine)
    assert (c["sent"], c["failed"]) == (5, 5)
    assert len(list(iter_events(pg_engine, status="sent"))) == 5


@pytest.mark.postgres
def test_pg_concurrent_drainers_never_share_events(pg_engine):
    total = _insert_many(pg_engine, 40)
    barrier = threading.Barrier(2)
    received: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def drainer(slot: int) -> None:
        try:
            with pg_engine.connect() as conn:
                conn.execute(sa.text("SET lock_timeout = '10s'"))
                conn.commit()
                barrier.wait()
                while events := lease(conn, 7):
                    received[slot].extend(e.outbox_id for e in events)
                    ack(conn, [e.outbox_id for e in events])
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=drainer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    a, b = (set(r) for r in received)
    assert a and b, "both drainers should have received events"
    assert len(a) == len(received[0]) and len(b) == len(received[1])
    assert not a & b
    assert len(a | b) == total
    assert counts(pg_engine)["sent"] == total


@pytest.mark.postgres
def test_pg_drain_to_jsonl(pg_engine):
    total = _insert_many(pg_engine, 2)
    out = io.StringIO()
    assert drain(pg_engine, out, hub="hub-1", batch=5) == total
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == total and {e["hub"] for e in lines} == {"hub-1"}
    assert counts(pg_engine)["sent"] == total


def test_event_units_read_each_key_kind_whatever_the_unit_size():
    # A unit with two stores (ids 1 and 2, both of DC 7) still sees dc:16 and orders of DC 12.
    from retail_datagen.streaming.outbox_rows import event_units

    keys = pa.array(["store:2", "dc:16", "order:ONL2024030400120000001", "campaign:C1", "store:1"])
    units = event_units(keys, np.array([7, 7], dtype=np.int64))
    assert units.tolist() == [7, 16, 12, 0, 7]
