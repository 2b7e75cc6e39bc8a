"""Pydantic payload models of the outbox events, one per message type (fact-tables.md §20).

A payload is the fact row as written, plus ``trace_id``. Keys are the snake_case DB columns in
column order, except that every ``*_id_ext`` column drops its suffix (``receipt_id``,
``order_id``, ``impression_id``, ``return_for_receipt_id``). NULLs are kept, DECIMAL is a string
with two decimals (``"12.34"``) and TIMESTAMP is ``YYYY-MM-DDTHH:MM:SS.ffffff``.

The models are generated from the SQLAlchemy contract (:mod:`retail_datagen.db.schema`) with
``pydantic.create_model``, so they cannot drift from the DDL. Every field is required (a NULL
column is ``Optional`` but its key must still be present) and ``extra="forbid"``, so a payload
validates only if its key set equals the model's fields. The column that selects the message
type (``receipt_type``, ``status``, ``action``, ``operation_type``) is a ``Literal`` of the
values that map to that type, so a payload whose content contradicts its message type fails.

``inventory_updated`` is shared by ``dc_inventory_txn`` and ``store_inventory_txn``, whose
columns differ. It therefore has one concrete model per table (:data:`DcInventoryUpdated`,
:data:`StoreInventoryUpdated`), and :data:`MESSAGE_MODELS` maps it to :data:`InventoryUpdated`,
a root model accepting either. Use :func:`model_for` (table + message type) when the concrete
model is needed, e.g. to compare key sets.

The module also holds the validation entry points used by the outbox: :func:`parse_payload`
(one event), :func:`validate_sample` (the write-time guard over a batch of outbox rows) and
:class:`OutboxEvent` (an outbox row with its payload parsed, as the consumer helpers return it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import (
    BaseModel,
    ConfigDict,
    RootModel,
    SerializeAsAny,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    create_model,
)
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, String
from sqlalchemy.types import TypeEngine

from retail_datagen.db import schema
from retail_datagen.errors import SchemaContractError, UnknownTableError

#: A DECIMAL(18,2) value as written in a payload.
DecimalStr = Annotated[StrictStr, StringConstraints(pattern=r"^-?\d+\.\d{2}$")]
#: A TIMESTAMP value as written in a payload (always six fractional digits).
TimestampStr = Annotated[
    StrictStr, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$")
]
#: A DATE value as written in a payload (no fact column uses DATE today).
DateStr = Annotated[StrictStr, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
#: ``strftime`` format of every TIMESTAMP in a payload (and in :meth:`OutboxEvent.to_json_dict`).
PAYLOAD_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
#: Events checked per message type by the write-time guard.
SAMPLE_SIZE = 100

_EXT_SUFFIX = "_ext"

#: Logical table → message type, or (selecting column, {column value: message type}), as in
#: fact-tables.md §20. The outbox builder and the INV-54 check both read it.
MESSAGE_TYPE_RULES: dict[str, str | tuple[str, dict[str, str]]] = {
    "dc_inventory_txn": "inventory_updated",
    "truck_moves": ("status", {
        "SCHEDULED": "truck_scheduled",
        "LOADING": "truck_loading",
        "IN_TRANSIT": "truck_departed",
        "ARRIVED": "truck_arrived",
        "UNLOADING": "truck_unloading",
        "COMPLETED": "truck_completed",
    }),
    "truck_inventory": ("action", {"LOAD": "truck_loaded", "UNLOAD": "truck_unloaded"}),
    "store_inventory_txn": "inventory_updated",
    "receipts": ("receipt_type", {"SALE": "receipt_created", "RETURN": "receipt_returned"}),
    "receipt_lines": "receipt_line_added",
    "foot_traffic": "customer_entered",
    "ble_pings": "ble_ping_detected",
    "customer_zone_changes": "customer_zone_changed",
    "marketing": "ad_impression",
    "online_orders": "online_order_created",
    "online_order_lines": "online_order_line_added",
    "fact_payments": "payment_processed",
    "store_ops": ("operation_type", {"OPENED": "store_opened", "CLOSED": "store_closed"}),
    "stockouts": "stockout_detected",
    "promotions": "promotion_applied",
    "promo_lines": "promotion_line_applied",
    "reorders": "reorder_triggered",
}
_RULES = MESSAGE_TYPE_RULES  # its former private name, still used by older callers


class PayloadModel(BaseModel):
    """Base of every generated payload model: strict keys, immutable values."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def payload_key(column: str) -> str:
    """Return the payload key of a fact column (``receipt_id_ext`` → ``receipt_id``).

    Args:
        column: A snake_case fact column name.

    Returns:
        The column name without a trailing ``_ext``.
    """
    return column[: -len(_EXT_SUFFIX)] if column.endswith(_EXT_SUFFIX) else column


def payload_columns(name: str) -> list[tuple[str, str]]:
    """Return the ``(DB column, payload key)`` pairs of a fact table, in column order.

    Args:
        name: A logical or database fact table name.

    Returns:
        One pair per fact column; ``trace_id`` (the last payload key) is not included.

    Raises:
        UnknownTableError: ``name`` is not a fact table.
    """
    logical = schema.logical_fact_name(name)
    return [(c.name, payload_key(c.name)) for c in schema.table(logical).c]


def payload_fields(name: str) -> tuple[str, ...]:
    """Return the exact key set of a fact table's payloads, in order (``trace_id`` last).

    Args:
        name: A logical or database fact table name.

    Returns:
        The payload keys.

    Raises:
        UnknownTableError: ``name`` is not a fact table.
    """
    return (*(key for _, key in payload_columns(name)), "trace_id")


def message_type_column(name: str) -> str | None:
    """Return the column that selects a table's message type, or ``None`` if it has one type.

    Raises:
        UnknownTableError: ``name`` is not a fact table.
    """
    rule = MESSAGE_TYPE_RULES[schema.logical_fact_name(name)]
    return None if isinstance(rule, str) else rule[0]


def _value_map(logical: str) -> dict[str | None, str]:
    rule = MESSAGE_TYPE_RULES[logical]
    return {None: rule} if isinstance(rule, str) else dict(rule[1])


#: Logical fact table → its message types, in the order of fact-tables.md §20.
TABLE_MESSAGE_TYPES: dict[str, tuple[str, ...]] = {
    logical: tuple(dict.fromkeys(_value_map(logical).values())) for logical in schema.FACT_TABLES
}

#: Message type → the logical tables that emit it (only ``inventory_updated`` has two).
MESSAGE_TYPE_TABLES: dict[str, tuple[str, ...]] = {}
for _logical, _types in TABLE_MESSAGE_TYPES.items():
    for _type in _types:
        MESSAGE_TYPE_TABLES[_type] = (*MESSAGE_TYPE_TABLES.get(_type, ()), _logical)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def message_type_expression(name: str, *, qualifier: str = "") -> str:
    """Return a SQL expression (DuckDB and PostgreSQL) giving a fact row's message type.

    A value of the selecting column that the rule does not know yields ``NULL``.

    Args:
        name: A logical or database fact table name.
        qualifier: Optional prefix for the column reference, e.g. ``"f."`` in a join.

    Returns:
        A string literal, or a ``CASE`` over the selecting column.

    Raises:
        UnknownTableError: ``name`` is not a fact table.
    """
    logical = schema.logical_fact_name(name)
    column = message_type_column(logical)
    values = _value_map(logical)
    if column is None:
        return _sql_literal(values[None])
    whens = " ".join(
        f"WHEN {_sql_literal(str(v))} THEN {_sql_literal(t)}" for v, t in values.items()
    )
    return f"CASE {qualifier}{schema.quote_ident(column)} {whens} END"


def message_type_for(name: str, row: Mapping[str, Any]) -> str:
    """Return the message type of one fact row.

    Args:
        name: A logical or database fact table name.
        row: The row, keyed by DB column or by payload key (only the selecting column is read).

    Returns:
        The message type.

    Raises:
        UnknownTableError: ``name`` is not a fact table.
        KeyError: The row lacks the selecting column or holds a value the rule does not know.
    """
    logical = schema.logical_fact_name(name)
    column = message_type_column(logical)
    values = _value_map(logical)
    return values[None] if column is None else values[row[column]]


def _field_type(type_: TypeEngine) -> Any:
    # Most specific first: BigInteger and SmallInteger are Integers.
    for sql_type, py_type in (
        (Integer, StrictInt),
        (Numeric, DecimalStr),
        (DateTime, TimestampStr),
        (Date, DateStr),
        (Boolean, StrictBool),
        (String, StrictStr),
    ):
        if isinstance(type_, sql_type):
            return py_type
    raise TypeError(f"SQL type {type_!r} has no payload representation")


def _class_name(message_type: str, logical: str) -> str:
    base = "".join(part.capitalize() for part in message_type.split("_"))
    if len(MESSAGE_TYPE_TABLES[message_type]) > 1:
        # A shared message type gets one concrete model per table: DcInventoryUpdated, ….
        return logical.split("_")[0].capitalize() + base
    return base


def _build_model(logical: str, message_type: str) -> type[PayloadModel]:
    selector = message_type_column(logical)
    selected = tuple(v for v, t in _value_map(logical).items() if t == message_type)
    fields: dict[str, Any] = {}
    for column in schema.table(logical).c:
        annotation = _field_type(column.type)
        if column.name == selector:
            annotation = Literal[selected]  # type: ignore[valid-type]
        if column.nullable:
            annotation = annotation | None
        fields[payload_key(column.name)] = (annotation, ...)
    trace = Annotated[StrictStr, StringConstraints(pattern=rf"^{re.escape(logical)}:.+$")]
    fields["trace_id"] = (trace, ...)
    db_name = schema.FACT_TABLE_DB_NAMES[logical]
    return create_model(  # type: ignore[call-overload,no-any-return]
        _class_name(message_type, logical),
        __base__=PayloadModel,
        __module__=__name__,
        __doc__=f"Payload of ``{message_type}`` events from ``{db_name}`` rows.",
        **fields,
    )


#: (logical table, message type) → the concrete payload model.
EVENT_MODELS: dict[tuple[str, str], type[PayloadModel]] = {
    (logical, message_type): _build_model(logical, message_type)
    for logical, types in TABLE_MESSAGE_TYPES.items()
    for message_type in types
}

DcInventoryUpdated = EVENT_MODELS[("dc_inventory_txn", "inventory_updated")]
StoreInventoryUpdated = EVENT_MODELS[("store_inventory_txn", "inventory_updated")]


_InventoryPayload = DcInventoryUpdated | StoreInventoryUpdated


class InventoryUpdated(RootModel[_InventoryPayload]):  # type: ignore[valid-type]
    """Payload of ``inventory_updated``: a DC or a store inventory transaction row."""

    model_config = ConfigDict(frozen=True)


def _message_model(message_type: str) -> type[BaseModel]:
    tables = MESSAGE_TYPE_TABLES[message_type]
    if message_type == "inventory_updated":
        return InventoryUpdated
    if len(tables) != 1:
        raise RuntimeError(f"{message_type} is shared by {tables} but has no union model")
    return EVENT_MODELS[(tables[0], message_type)]


#: Message type → its payload model (a root union model for ``inventory_updated``).
MESSAGE_MODELS: dict[str, type[BaseModel]] = {
    message_type: _message_model(message_type) for message_type in MESSAGE_TYPE_TABLES
}

ReceiptCreated = MESSAGE_MODELS["receipt_created"]
ReceiptReturned = MESSAGE_MODELS["receipt_returned"]
ReceiptLineAdded = MESSAGE_MODELS["receipt_line_added"]
TruckScheduled = MESSAGE_MODELS["truck_scheduled"]
TruckLoading = MESSAGE_MODELS["truck_loading"]
TruckDeparted = MESSAGE_MODELS["truck_departed"]
TruckArrived = MESSAGE_MODELS["truck_arrived"]
TruckUnloading = MESSAGE_MODELS["truck_unloading"]
TruckCompleted = MESSAGE_MODELS["truck_completed"]
TruckLoaded = MESSAGE_MODELS["truck_loaded"]
TruckUnloaded = MESSAGE_MODELS["truck_unloaded"]
CustomerEntered = MESSAGE_MODELS["customer_entered"]
BlePingDetected = MESSAGE_MODELS["ble_ping_detected"]
CustomerZoneChanged = MESSAGE_MODELS["customer_zone_changed"]
AdImpression = MESSAGE_MODELS["ad_impression"]
OnlineOrderCreated = MESSAGE_MODELS["online_order_created"]
OnlineOrderLineAdded = MESSAGE_MODELS["online_order_line_added"]
PaymentProcessed = MESSAGE_MODELS["payment_processed"]
StoreOpened = MESSAGE_MODELS["store_opened"]
StoreClosed = MESSAGE_MODELS["store_closed"]
StockoutDetected = MESSAGE_MODELS["stockout_detected"]
PromotionApplied = MESSAGE_MODELS["promotion_applied"]
PromotionLineApplied = MESSAGE_MODELS["promotion_line_applied"]
ReorderTriggered = MESSAGE_MODELS["reorder_triggered"]


def table_from_trace_id(trace_id: str) -> str:
    """Return the logical fact table named by a trace id's ``"<logical name>:"`` prefix.

    Raises:
        UnknownTableError: The prefix is not a logical fact table name.
    """
    logical = trace_id.split(":", 1)[0]
    if logical not in MESSAGE_TYPE_RULES:
        raise UnknownTableError(f"trace id {trace_id!r} does not start with a fact table name")
    return logical


def model_for(name: str, message_type: str) -> type[PayloadModel]:
    """Return the concrete payload model of a table's message type.

    Args:
        name: A logical or database fact table name.
        message_type: One of the table's message types.

    Returns:
        The generated model.

    Raises:
        UnknownTableError: ``name`` is not a fact table.
        KeyError: The table does not emit ``message_type``.
    """
    logical = schema.logical_fact_name(name)
    try:
        return EVENT_MODELS[(logical, message_type)]
    except KeyError:
        raise KeyError(
            f"{logical} emits {TABLE_MESSAGE_TYPES[logical]}, not {message_type!r}"
        ) from None


def _validation_message(message_type: str, trace_id: str, exc: ValidationError) -> str:
    problems = "; ".join(
        f"field {'.'.join(str(p) for p in err['loc']) or '<payload>'}: {err['msg']}"
        for err in exc.errors()[:5]
    )
    return f"{message_type} payload of {trace_id} fails its model: {problems}"


def parse_payload(message_type: str, trace_id: str, payload: str) -> PayloadModel:
    """Validate one payload (JSON text) against the model of its table and message type.

    Args:
        message_type: The event's message type.
        trace_id: The event's trace id; its prefix names the fact table.
        payload: The payload JSON.

    Returns:
        The parsed payload model.

    Raises:
        SchemaContractError: The message type does not belong to the trace id's table, or
            the payload fails its model; the message names the message type and field.
    """
    try:
        logical = table_from_trace_id(trace_id)
        model = EVENT_MODELS[(logical, message_type)]
    except (UnknownTableError, KeyError) as exc:
        known = message_type in MESSAGE_MODELS
        raise SchemaContractError(
            f"{message_type}: event {trace_id} has "
            + ("a message type its table does not emit" if known else "an unknown message type")
        ) from exc
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise SchemaContractError(_validation_message(message_type, trace_id, exc)) from exc


def validate_sample(rows: pa.Table, n: int = SAMPLE_SIZE) -> None:
    """Validate the first ``n`` events of every message type against the pydantic models.

    Args:
        rows: Outbox rows with at least ``message_type``, ``payload`` and ``trace_id``.
        n: Events checked per message type.

    Raises:
        SchemaContractError: An event fails; the message names the message type and field.
    """
    types = rows.column("message_type")
    for message_type in pc.unique(types).to_pylist():
        # Positions first, so only the sampled payloads are ever copied out of the batch.
        picked = pc.indices_nonzero(pc.fill_null(pc.equal(types, message_type), False))
        sample = rows.select(["trace_id", "payload"]).take(picked.slice(0, n))
        for trace_id, payload in zip(
            sample.column("trace_id").to_pylist(), sample.column("payload").to_pylist(),
            strict=True,
        ):
            parse_payload(str(message_type), trace_id, payload)


class OutboxEvent(BaseModel):
    """One ``streaming_outbox`` row, with ``payload`` parsed into its message type's model."""

    model_config = ConfigDict(frozen=True)

    outbox_id: int
    event_ts: datetime
    message_type: str
    payload: SerializeAsAny[BaseModel]
    status: str
    attempts: int
    last_attempt_ts: datetime | None
    sent_ts: datetime | None
    partition_key: str
    trace_id: str
    correlation_id: str | None
    schema_version: str
    source: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> OutboxEvent:
        """Build an event from a row keyed by outbox column, validating the payload.

        Raises:
            SchemaContractError: The payload fails its model; the message names the field.
        """
        payload = parse_payload(row["message_type"], row["trace_id"], row["payload"])
        return cls(**{**row, "payload": payload})

    def to_json_dict(self) -> dict[str, Any]:
        """The event as JSON-ready values: payload as an object, timestamps as in payloads."""
        out = self.model_dump(mode="json")
        for key in ("event_ts", "last_attempt_ts", "sent_ts"):
            value = getattr(self, key)
            out[key] = None if value is None else value.strftime(PAYLOAD_TS_FORMAT)
        return out


def _self_check() -> None:
    # Import-time guard: a rule for a missing table or column, or a renamed key that collides
    # with another column, would otherwise only show up as rejected events.
    if set(MESSAGE_TYPE_RULES) != set(schema.FACT_TABLES):
        raise RuntimeError("message type rules do not cover exactly the fact tables")
    for logical in schema.FACT_TABLES:
        keys = payload_fields(logical)
        if len(set(keys)) != len(keys):
            raise RuntimeError(f"{logical}: payload keys collide: {keys}")
        column = message_type_column(logical)
        if column is not None and column not in schema.table(logical).c:
            raise RuntimeError(f"{logical}: message type column {column!r} does not exist")


_self_check()

__all__ = [
    "EVENT_MODELS",
    "MESSAGE_MODELS",
    "MESSAGE_TYPE_RULES",
    "MESSAGE_TYPE_TABLES",
    "PAYLOAD_TS_FORMAT",
    "SAMPLE_SIZE",
    "TABLE_MESSAGE_TYPES",
    "AdImpression",
    "BlePingDetected",
    "CustomerEntered",
    "CustomerZoneChanged",
    "DateStr",
    "DcInventoryUpdated",
    "DecimalStr",
    "InventoryUpdated",
    "OnlineOrderCreated",
    "OnlineOrderLineAdded",
    "OutboxEvent",
    "PayloadModel",
    "PaymentProcessed",
    "PromotionApplied",
    "PromotionLineApplied",
    "ReceiptCreated",
    "ReceiptLineAdded",
    "ReceiptReturned",
    "ReorderTriggered",
    "StockoutDetected",
    "StoreClosed",
    "StoreInventoryUpdated",
    "StoreOpened",
    "TimestampStr",
    "TruckArrived",
    "TruckCompleted",
    "TruckDeparted",
    "TruckLoaded",
    "TruckLoading",
    "TruckScheduled",
    "TruckUnloaded",
    "TruckUnloading",
    "model_for",
    "message_type_column",
    "message_type_expression",
    "message_type_for",
    "parse_payload",
    "payload_columns",
    "payload_fields",
    "payload_key",
    "table_from_trace_id",
    "validate_sample",
]
