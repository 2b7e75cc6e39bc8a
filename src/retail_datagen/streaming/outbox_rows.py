"""Outbox rows built from fact batches (fact-tables.md §20).

:func:`build_outbox_rows` takes a generator batch exactly as the fact mixins return it, i.e.
PascalCase columns **including** ``TraceId``, maps it to the contract with
:func:`~retail_datagen.db.contract.map_batch` and renders every
outbox column in one DuckDB ``SELECT`` over the Arrow data (payload JSON via
``to_json(struct_pack(...))``), so no Python code runs per row. :func:`assign_outbox_ids` then
merges the day's tables and numbers the events. The write-time guard is
:func:`~retail_datagen.streaming.schemas.validate_sample`, which checks a sample against the
pydantic models. The consumer side is :mod:`retail_datagen.streaming.outbox`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from retail_datagen.db import schema
from retail_datagen.db.contract import TRACE_ID, map_batch
from retail_datagen.errors import SchemaContractError
from retail_datagen.ids import unit_day_ids

if TYPE_CHECKING:
    import duckdb

from retail_datagen.streaming.schemas import (
    PAYLOAD_TS_FORMAT,
    message_type_expression,
    payload_columns,
    validate_sample,
)

SOURCE = "retail-datagen"

_OUTBOX_SCHEMA = schema.arrow_schema(schema.OUTBOX_TABLE)
#: The columns :func:`build_outbox_rows` returns: the outbox contract without ``outbox_id``.
ROW_SCHEMA = pa.schema([f for f in _OUTBOX_SCHEMA if f.name != "outbox_id"])
_TABLE_RANK = pa.array(schema.FACT_TABLES, pa.string())


def _q(ident: str) -> str:
    return schema.quote_ident(ident)


def _text(expr: str) -> str:
    return f"CAST({expr} AS VARCHAR)"


# The store id sits at characters 12–16 of RCP/RET receipt ids and the DC id at 12–15 of SHP
# (and SUP) shipment ids (fact-tables.md §0). TRY_CAST turns a malformed id into NULL, which
# the build then reports instead of failing deep inside DuckDB.
_STORE_OF_RECEIPT = _text("TRY_CAST(substr(receipt_id_ext, 12, 5) AS BIGINT)")
_DC_OF_SHIPMENT = _text("TRY_CAST(substr(shipment_id, 12, 4) AS BIGINT)")
_BY_STORE = "'store:' || " + _text("store_id")
_BY_DC = "'dc:' || " + _text("dc_id")
_BY_ORDER = "'order:' || order_id_ext"

# The rule tables of fact-tables.md §20, grouped as there.
_PARTITION_SQL: dict[str, str] = {
    **dict.fromkeys(("store_inventory_txn", "receipts", "foot_traffic", "ble_pings",
                     "customer_zone_changes", "store_ops", "promotions", "reorders"), _BY_STORE),
    **dict.fromkeys(("receipt_lines", "promo_lines"), "'store:' || " + _STORE_OF_RECEIPT),
    **dict.fromkeys(("dc_inventory_txn", "truck_moves"), _BY_DC),
    "truck_inventory": "'dc:' || " + _DC_OF_SHIPMENT,
    **dict.fromkeys(("online_orders", "online_order_lines"), _BY_ORDER),
    "fact_payments": f"CASE WHEN store_id IS NOT NULL THEN {_BY_STORE} ELSE {_BY_ORDER} END",
    "stockouts": f"CASE WHEN store_id IS NOT NULL THEN {_BY_STORE} ELSE {_BY_DC} END",
    "marketing": "'campaign:' || campaign_id",
}
_CORRELATION_SQL: dict[str, str] = {
    **dict.fromkeys(("receipt_lines", "promotions", "promo_lines"), "receipt_id_ext"),
    "receipts": "CASE WHEN receipt_type = 'RETURN' THEN return_for_receipt_id_ext END",
    **dict.fromkeys(("dc_inventory_txn", "store_inventory_txn"), "source"),
    "fact_payments": "coalesce(receipt_id_ext, order_id_ext)",
    "online_order_lines": "order_id_ext",
    **dict.fromkeys(("truck_moves", "truck_inventory"), "shipment_id"),
}
if set(_PARTITION_SQL) != set(schema.FACT_TABLES):  # import-time guard against a missed table
    raise RuntimeError("partition key rules do not cover exactly the fact tables")

_local = threading.local()


def _builder() -> duckdb.DuckDBPyConnection:
    # One private in-memory database per thread: DuckDB connections must not be shared by
    # threads, and the engine builds days on worker threads. Imported here: a pool worker
    # needs DuckDB only when it builds outbox events.
    from retail_datagen.db import duckdb_engine

    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb_engine.open_duckdb(duckdb_engine.MEMORY)
    return con


def _builder_result(result: duckdb.DuckDBPyConnection) -> pa.Table:
    from retail_datagen.db import duckdb_engine

    return duckdb_engine.to_arrow_table(result)


def _payload_sql(logical: str) -> str:
    types = {c.name: c.type for c in schema.table(logical).c}
    parts = []
    for column, key in payload_columns(logical):
        ref, type_ = _q(column), types[column]
        if isinstance(type_, sa.Numeric):
            # DECIMAL(18,2) → '12.34'; DuckDB always prints the declared scale.
            ref = _text(ref)
        elif isinstance(type_, sa.DateTime):
            ref = f"strftime({ref}, '{PAYLOAD_TS_FORMAT}')"
        elif isinstance(type_, sa.Date):
            ref = f"strftime({ref}, '%Y-%m-%d')"
        parts.append(f"{_q(key)} := {ref}")
    parts.append('"trace_id" := trace_id')
    return f"CAST(to_json(struct_pack({', '.join(parts)})) AS VARCHAR)"


def _build_sql(logical: str, view: str) -> str:
    # Fact columns named like outbox columns (status, source) are safe here: DuckDB resolves a
    # name to the input column before any SELECT-list alias.
    return (
        f"SELECT event_ts, {message_type_expression(logical)} AS message_type, "
        f"{_payload_sql(logical)} AS payload, 'pending' AS status, "
        "CAST(0 AS INTEGER) AS attempts, CAST(NULL AS TIMESTAMP) AS last_attempt_ts, "
        f"CAST(NULL AS TIMESTAMP) AS sent_ts, {_PARTITION_SQL[logical]} AS partition_key, "
        f"trace_id, CAST({_CORRELATION_SQL.get(logical, 'NULL')} AS VARCHAR) AS correlation_id, "
        f"'{schema.SCHEMA_VERSION}' AS schema_version, '{SOURCE}' AS source "
        f"FROM {_q(view)}"
    )


def _first_null(rows: pa.Table, column: str) -> str | None:
    mask = pc.is_null(rows.column(column))
    if not pc.any(mask).as_py():
        return None
    return str(rows.column("trace_id").filter(mask)[0])


def build_outbox_rows(name: str, batch: pa.Table, *, validate: bool = True) -> pa.Table:
    """Build one outbox event per fact row, in bulk (no Python code per row).

    Args:
        name: The logical or database fact table name.
        batch: The generator batch: PascalCase columns as the fact mixins return them,
            including the ``TraceId`` column (built when ``publish_to_outbox`` is on).
        validate: Run :func:`validate_sample` on the result (the write-time guard).

    Returns:
        The outbox rows in batch order with the columns of :data:`ROW_SCHEMA` (every outbox
        column except ``outbox_id``, which :func:`assign_outbox_ids` adds per day).

    Raises:
        UnknownTableError: ``name`` is not a fact table.
        SchemaContractError: The batch does not match its contract, lacks ``TraceId``, has a
            row with no message type or partition key, or a sampled payload fails its model.
    """
    logical = schema.logical_fact_name(name)
    if TRACE_ID not in batch.column_names:
        raise SchemaContractError(f"{logical}: the batch has no {TRACE_ID} column")
    if batch.num_rows == 0:
        return ROW_SCHEMA.empty_table()
    trace = batch.column(TRACE_ID).cast(pa.string())
    if trace.null_count:
        raise SchemaContractError(f"{logical}: {trace.null_count} rows have a NULL {TRACE_ID}")
    mapped = map_batch(logical, batch).append_column("trace_id", trace)
    con = _builder()
    view = "_outbox_source"
    con.register(view, mapped)
    try:
        rows = _builder_result(con.execute(_build_sql(logical, view)))
    finally:
        con.unregister(view)
    for column in ("message_type", "partition_key"):
        bad = _first_null(rows, column)
        if bad is not None:
            what = column.replace("_", " ")
            raise SchemaContractError(f"{logical}: row {bad} has no {what} (fact-tables.md §20)")
    rows = rows.cast(ROW_SCHEMA)
    if validate:
        validate_sample(rows)
    return rows


def event_units(partition_key: pa.Array, store_unit: np.ndarray) -> np.ndarray:
    """The unit of each event, read from its partition key (sharding.md §3).

    ``store:N`` belongs to store N's DC unit, ``dc:N`` to DC N, ``order:ONL…`` to the DC
    its order id carries, and ``campaign:…`` to the network unit 0.
    """
    parts = pc.split_pattern(partition_key, ":", max_splits=1)
    kind = pc.list_element(parts, 0)
    value = pc.list_element(parts, 1)
    numeric = pc.if_else(pc.is_in(kind, pa.array(["store", "dc"])), value, "0")
    number = pc.cast(numeric, pa.int64()).to_numpy(zero_copy_only=False)
    order_dc = pc.cast(pc.if_else(pc.equal(kind, "order"), pc.utf8_slice_codeunits(value, 11, 15),
                                  "0"), pa.int64()).to_numpy(zero_copy_only=False)
    kind_np = kind.to_numpy(zero_copy_only=False)
    store = np.asarray(store_unit, dtype=np.int64)
    is_store = kind_np == "store"
    # Only store rows index the store table: a dc:N key may exceed the unit's store count.
    store_of_row = store[np.where(is_store, number, 1) - 1]
    return np.where(is_store, store_of_row,
                    np.where(kind_np == "dc", number, order_dc)).astype(np.int64)


def assign_outbox_ids(day: date, tables: Iterable[pa.Table], store_unit: np.ndarray
                      ) -> pa.Table:
    """Merge a day's outbox rows and number them with a DSID per unit-day (fact-tables.md §20,
    sharding.md §3).

    Events are ordered by (``event_ts``, logical table order of ``FACT_TABLES``, ``trace_id``);
    the table comes from the trace id's prefix. ``outbox_id`` =
    ``int(YYYYMMDD) × 10¹¹ + unit × 10⁸ + n``, n counting each unit's events in that order.

    Args:
        day: The day every event belongs to.
        tables: Results of :func:`build_outbox_rows`, in any order.
        store_unit: int64 array by store index: each store's DC unit.

    Returns:
        The rows in id order, with the full outbox contract schema.

    Raises:
        SchemaContractError: An event lies outside ``day`` or its trace id names no fact table.
        GenerationError: A unit-day has more than 99,999,999 events.
    """
    parts = [t.select(ROW_SCHEMA.names).cast(ROW_SCHEMA) for t in tables if t.num_rows]
    rows = pa.concat_tables(parts) if parts else ROW_SCHEMA.empty_table()
    if rows.num_rows == 0:
        return _OUTBOX_SCHEMA.empty_table()
    trace = rows.column("trace_id")
    rank = pc.index_in(pc.list_element(pc.split_pattern(trace, ":", max_splits=1), 0),
                       value_set=_TABLE_RANK)
    if rank.null_count:
        bad = trace.filter(pc.is_null(rank))[0]
        raise SchemaContractError(f"outbox event {bad} does not name a fact table")
    days = pc.cast(rows.column("event_ts"), pa.date32())
    if not pc.all(pc.equal(days, pa.scalar(day, pa.date32()))).as_py():
        raise SchemaContractError(f"outbox rows of {day} hold events of other days")
    keys = pa.table({"e": rows.column("event_ts"), "r": rank, "t": trace})
    order = pc.sort_indices(keys, sort_keys=[("e", "ascending"), ("r", "ascending"),
                                             ("t", "ascending")])
    rows = rows.take(order)
    units = event_units(rows.column("partition_key").combine_chunks(), store_unit)
    ids = pa.array(unit_day_ids(day, units), pa.int64())
    return rows.add_column(0, _OUTBOX_SCHEMA.field("outbox_id"), ids).cast(_OUTBOX_SCHEMA)


__all__ = ["ROW_SCHEMA", "SOURCE", "assign_outbox_ids", "build_outbox_rows"]
