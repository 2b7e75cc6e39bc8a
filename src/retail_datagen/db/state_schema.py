"""Contract definitions of the generator-state tables (fact-tables.md §21).

These tables carry what a run needs to continue the next day: the watermark, the day log and
the per-unit inventory, shipments, trucks, supplier orders, campaigns and pending returns.
:mod:`retail_datagen.db.schema` owns the ``MetaData``, calls :func:`build_state_tables` after
the dimension, fact and outbox tables, and re-exports the public names defined here.

``gen_watermark`` holds a single row. It carries an extra key column ``id SMALLINT`` (always 1,
the server default) so that it can be upserted with ``INSERT OR REPLACE`` / ``ON CONFLICT``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    text,
)
from sqlalchemy.types import TypeEngine

#: Generator-state tables (fact-tables.md §21), in the order listed there.
STATE_TABLES: tuple[str, ...] = (
    "gen_metadata",
    "gen_watermark",
    "gen_day_log",
    "gen_initial_inventory",
    "gen_state_inventory",
    "gen_state_shipments",
    "gen_state_shipment_lines",
    "gen_state_trucks",
    "gen_state_supplier_orders",
    "gen_state_campaigns",
    "gen_state_pending_returns",
)

# Every unit-scoped state table leads with the unit that owns the row (sharding.md §4), so a
# unit loads only its own rows.
UNIT_COLUMN = "unit_id"
_NODE_KEY = (UNIT_COLUMN, "node_type", "node_id", "product_id")


def contract_column(name: str, type_: type[TypeEngine] | TypeEngine, *args: object,
                    **kw: object) -> Column:
    """A contract column: NOT NULL unless ``nullable=True`` is given, never auto-incremented
    (:mod:`retail_datagen.db.schema` defines its tables with it too)."""
    # NOT NULL is the default everywhere in the spec; ids are never database-assigned.
    kw.setdefault("nullable", False)
    kw.setdefault("autoincrement", False)
    return Column(name, type_, *args, **kw)  # type: ignore[arg-type]


_col = contract_column


def _unit() -> Column:
    return _col(UNIT_COLUMN, SmallInteger)


def build_state_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the 11 generator-state tables on ``metadata``.

    Args:
        metadata: The ``MetaData`` of the whole contract.

    Returns:
        The ``Table`` objects keyed by name, in ``STATE_TABLES`` order.
    """
    tables = (
        Table(
            "gen_metadata",
            metadata,
            _col("key", String, primary_key=True),
            _col("value", String),
        ),
        Table(
            "gen_watermark",
            metadata,
            _col("id", SmallInteger, primary_key=True, server_default=text("1")),
            _col("first_day", Date),
            _col("last_day", Date),
        ),
        Table(
            "gen_day_log",
            metadata,
            _col("day", Date, primary_key=True),
            _col("included_tables", String),
            _col("outbox", Boolean),
            _col("row_count", BigInteger),
        ),
        Table(
            "gen_initial_inventory",
            metadata,
            _unit(),
            _col("node_type", String),
            _col("node_id", BigInteger),
            _col("product_id", BigInteger),
            _col("quantity", Integer),
            _col("reorder_point", Integer),
            PrimaryKeyConstraint(*_NODE_KEY),
        ),
        Table(
            "gen_state_inventory",
            metadata,
            _unit(),
            _col("node_type", String),
            _col("node_id", BigInteger),
            _col("product_id", BigInteger),
            _col("on_hand", Integer),
            _col("in_transit", Integer),
            _col("on_order", Integer),
            PrimaryKeyConstraint(*_NODE_KEY),
        ),
        Table(
            "gen_state_shipments",
            metadata,
            _unit(),
            _col("shipment_id", String),
            _col("truck_id", BigInteger),
            _col("dc_id", BigInteger),
            _col("store_id", BigInteger),
            _col("refrigerated", Boolean),
            _col("unit_count", Integer),
            *[
                _col(name, DateTime)
                for name in (
                    "scheduled_ts", "loading_ts", "departure_time", "eta", "unloading_ts", "etd"
                )
            ],
            PrimaryKeyConstraint(UNIT_COLUMN, "shipment_id"),
        ),
        Table(
            "gen_state_shipment_lines",
            metadata,
            _unit(),
            _col("shipment_id", String),
            _col("product_id", BigInteger),
            _col("quantity", Integer),
            PrimaryKeyConstraint(UNIT_COLUMN, "shipment_id", "product_id"),
        ),
        Table(
            "gen_state_trucks",
            metadata,
            _unit(),
            _col("truck_id", BigInteger),
            _col("available_at", DateTime),
            PrimaryKeyConstraint(UNIT_COLUMN, "truck_id"),
        ),
        Table(
            "gen_state_supplier_orders",
            metadata,
            _unit(),
            _col("dc_id", BigInteger),
            _col("product_id", BigInteger),
            _col("quantity", Integer),
            _col("order_day", Date),
            _col("arrival_day", Date),
            PrimaryKeyConstraint(UNIT_COLUMN, "dc_id", "product_id", "order_day"),
        ),
        Table(
            "gen_state_campaigns",
            metadata,
            _unit(),
            _col("campaign_id", String),
            _col("campaign_type", String),
            _col("start_date", Date),
            _col("end_date", Date),
            PrimaryKeyConstraint(UNIT_COLUMN, "campaign_id"),
        ),
        Table(
            "gen_state_pending_returns",
            metadata,
            _unit(),
            _col("return_date", Date),
            _col("receipt_id_ext", String),
            _col("store_id", BigInteger),
            _col("customer_id", BigInteger),
            _col("line_num", Integer),
            _col("product_id", BigInteger),
            _col("quantity", Integer),
            _col("unit_cents", BigInteger),
            _col("discount_cents", BigInteger),
            _col("ext_cents", BigInteger),
            _col("tax_cents", BigInteger),
            _col("promo_code", String, nullable=True),
            _col("payment_method", String),
            PrimaryKeyConstraint(UNIT_COLUMN, "receipt_id_ext", "line_num"),
        ),
    )
    if tuple(t.name for t in tables) != STATE_TABLES:
        # A table in one list and not the other would be left out of create_all or the checks.
        raise RuntimeError("state table definitions are out of STATE_TABLES order")
    return {t.name: t for t in tables}


__all__ = ["STATE_TABLES", "UNIT_COLUMN", "build_state_tables"]
