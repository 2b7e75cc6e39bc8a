"""SQLAlchemy Core definitions of every table: the schema contract of the database.

The ``metadata`` holds the six dimension tables (master-data.md §2–§7), the 18 fact tables
(fact-tables.md §1–§18, defined in :mod:`retail_datagen.db.fact_schema`), ``streaming_outbox``
(§20) and the generator-state tables (§21, defined in :mod:`retail_datagen.db.state_schema`).
The Arrow contract (:func:`arrow_schema`) and the DuckDB DDL (:func:`duckdb_ddl`) are derived
from it, so there is one source of truth.

Keys and constraints differ per dialect (fact-tables.md §0):

* The metadata declares every primary key, every dimension FK, the outbox ``UNIQUE(trace_id)``
  and the outbox index; ``metadata.create_all`` (PostgreSQL and other dialects) creates them all.
* The DuckDB DDL declares the primary keys of the dimension and ``gen_*`` tables only, except
  the inventory tables (:data:`UNINDEXED_STATE_TABLES`): building an index over their million
  rows (on the starter network) cost more than writing them, and the daily upsert of
  ``gen_state_inventory`` is an ``UPDATE … FROM`` join by key instead (``duckdb_engine``). Fact
  tables and the outbox get no key, FK, UNIQUE or index, for append speed and memory. The
  dimension tables get no FK either: DuckDB checks FKs row by row and forbids replacing a
  referenced parent, which would slow the master-data bulk load and block ``force`` rewrites.
  The invariant checks (INV-01/04/05/54) cover what the DDL leaves out.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    text,
)
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeEngine

from retail_datagen.db.fact_schema import (
    FACT_TABLE_DB_NAMES,
    FACT_TABLES,
    GENERATOR_NAMES,
    build_fact_tables,
)
from retail_datagen.db.state_schema import (
    STATE_TABLES,
    UNIT_COLUMN,
    build_state_tables,
)
from retail_datagen.db.state_schema import contract_column as _col
from retail_datagen.errors import UnknownTableError

SCHEMA_VERSION = "2.0"

#: Dimension tables in generation order.
DIM_TABLES: tuple[str, ...] = (
    "dim_geographies",
    "dim_distribution_centers",
    "dim_stores",
    "dim_trucks",
    "dim_customers",
    "dim_products",
)

OUTBOX_TABLE = "streaming_outbox"

metadata = MetaData()


def _fk(target: str) -> ForeignKey:
    return ForeignKey(target)


# --- dimension tables (master-data.md §2–§7) -------------------------------------------------

Table(
    "dim_geographies",
    metadata,
    _col("geography_id", BigInteger, primary_key=True),
    _col("city", String),
    _col("state", String(2)),
    _col("zip_code", String(5)),
    _col("county", String),
    _col("region", String),
    _col("latitude", Double),
    _col("longitude", Double),
    _col("population", BigInteger),
    _col("timezone", String),
    _col("area_code", String(3)),
    _col("tax_rate", Numeric(7, 6)),
)

Table(
    "dim_distribution_centers",
    metadata,
    _col("dc_id", BigInteger, primary_key=True),
    _col("dc_number", String),
    _col("address", String),
    _col("geography_id", BigInteger, _fk("dim_geographies.geography_id")),
)

Table(
    "dim_stores",
    metadata,
    _col("store_id", BigInteger, primary_key=True),
    _col("store_number", String),
    _col("address", String),
    _col("geography_id", BigInteger, _fk("dim_geographies.geography_id")),
    _col("dc_id", BigInteger, _fk("dim_distribution_centers.dc_id")),
    _col("tax_rate", Numeric(7, 6)),
    _col("location_type", String),
    _col("volume_class", String),
    _col("store_format", String),
    _col("operating_hours", String),
    _col("open_hour", SmallInteger),
    _col("close_hour", SmallInteger),
    _col("daily_traffic_multiplier", Double),
)

Table(
    "dim_trucks",
    metadata,
    _col("truck_id", BigInteger, primary_key=True),
    _col("license_plate", String(7)),
    _col("refrigeration", Boolean),
    _col("truck_type", String),
    _col("dc_id", BigInteger, _fk("dim_distribution_centers.dc_id"), nullable=True),
    _col("capacity_units", Integer),
)

Table(
    "dim_customers",
    metadata,
    _col("customer_id", BigInteger, primary_key=True),
    _col("first_name", String),
    _col("last_name", String),
    _col("address", String),
    _col("geography_id", BigInteger, _fk("dim_geographies.geography_id")),
    _col("loyalty_card", String),
    _col("phone", String),
    _col("ble_id", String),
    _col("ad_id", String),
    _col("shopper_segment", String),
    _col("mobility_segment", String),
    _col("primary_store_id", BigInteger, _fk("dim_stores.store_id")),
)

Table(
    "dim_products",
    metadata,
    _col("product_id", BigInteger, primary_key=True),
    _col("product_name", String),
    _col("brand", String),
    _col("company", String),
    _col("department", String),
    _col("category", String),
    _col("subcategory", String),
    _col("basket_category", String),
    # Row "cost, msrp, sale_price | DECIMAL" then "*_cents | BIGINT": amounts first, then cents.
    *[_col(b, Numeric(18, 2)) for b in ("cost", "msrp", "sale_price")],
    *[_col(f"{b}_cents", BigInteger) for b in ("cost", "msrp", "sale_price")],
    _col("requires_refrigeration", Boolean),
    _col("launch_date", Date),
    _col("taxability", String),
    _col("tags", String),
    _col("popularity_weight", Double),
)

# --- fact tables (fact-tables.md §1–§18) ------------------------------------------------------

_FACTS: dict[str, Table] = build_fact_tables(metadata)

# --- streaming outbox (fact-tables.md §20) ----------------------------------------------------

Table(
    OUTBOX_TABLE,
    metadata,
    _col("outbox_id", BigInteger, primary_key=True),
    _col("event_ts", DateTime),
    _col("message_type", String),
    _col("payload", String),
    _col("status", String, server_default="pending"),
    _col("attempts", Integer, server_default=text("0")),
    _col("last_attempt_ts", DateTime, nullable=True),
    _col("sent_ts", DateTime, nullable=True),
    _col("partition_key", String),
    _col("trace_id", String, unique=True),
    _col("correlation_id", String, nullable=True),
    _col("schema_version", String, server_default=SCHEMA_VERSION),
    _col("source", String, server_default="retail-datagen"),
    Index("ix_streaming_outbox_status_event_ts", "status", "event_ts"),
)

# --- generator state (fact-tables.md §21, defined in state_schema) ----------------------------

build_state_tables(metadata)

# --- name resolution --------------------------------------------------------------------------

_FACT_DB_NAMES: tuple[str, ...] = tuple(FACT_TABLE_DB_NAMES[n] for n in FACT_TABLES)
_LOGICAL_BY_DB: dict[str, str] = {db: logical for logical, db in FACT_TABLE_DB_NAMES.items()}
_ALL_DB_NAMES: tuple[str, ...] = (*DIM_TABLES, *_FACT_DB_NAMES, OUTBOX_TABLE, *STATE_TABLES)

#: Tables whose columns and types are checked against an existing database (api.md §9).
CONTRACT_TABLES: tuple[str, ...] = (*DIM_TABLES, *_FACT_DB_NAMES, OUTBOX_TABLE)

# PrimaryKeyConstraint keeps its declared column order, which for facts is the listed key
# order (the TraceId order) and need not match the column order.
_PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in metadata.tables[name].primary_key.columns) for name in _ALL_DB_NAMES
}


def _unknown(name: object, valid: tuple[str, ...]) -> UnknownTableError:
    # dict.fromkeys: "fact_payments" is both a logical and a DB name; list it once.
    names = ", ".join(dict.fromkeys(valid))
    return UnknownTableError(f"unknown table {name!r}; valid names are: {names}")


def db_table_name(name: str) -> str:
    """Return the database name of a table given its logical or database name.

    Args:
        name: A logical fact name (``"receipts"``), a fact DB name (``"fact_receipts"``), a
            dimension, the outbox or a ``gen_*`` table name.

    Returns:
        The database table name.

    Raises:
        UnknownTableError: ``name`` is none of the above; the message lists the valid names.
    """
    if name in FACT_TABLE_DB_NAMES:
        return FACT_TABLE_DB_NAMES[name]
    if isinstance(name, str) and name in metadata.tables:
        return name
    raise _unknown(name, (*FACT_TABLES, *_ALL_DB_NAMES))


def logical_fact_name(name: str) -> str:
    """Return the logical name of a fact table given its logical or database name.

    Args:
        name: ``"receipts"`` or ``"fact_receipts"``, for example.

    Returns:
        The logical name, one of ``FACT_TABLES``.

    Raises:
        UnknownTableError: ``name`` is not a fact table; the message lists the valid names.
    """
    if name in FACT_TABLE_DB_NAMES:
        return name
    if name in _LOGICAL_BY_DB:
        return _LOGICAL_BY_DB[name]
    raise _unknown(name, (*FACT_TABLES, *_FACT_DB_NAMES))


def table(name: str) -> Table:
    """Return the SQLAlchemy ``Table`` of any contract or state table.

    Args:
        name: A logical or database table name (see :func:`db_table_name`).

    Returns:
        The ``Table`` bound to :data:`metadata`.

    Raises:
        UnknownTableError: The name is unknown.
    """
    return metadata.tables[db_table_name(name)]


def primary_key(name: str) -> tuple[str, ...]:
    """Return the primary-key column names of a table, in key order.

    Args:
        name: A logical or database table name.

    Returns:
        The key columns; for fact tables, the order listed in fact-tables.md (the ``TraceId``
        order), which need not be the column order.

    Raises:
        UnknownTableError: The name is unknown.
    """
    return _PRIMARY_KEYS[db_table_name(name)]


def is_fact_table(name: str) -> bool:
    """Tell whether ``name`` (logical or database) names one of the 18 fact tables."""
    return name in FACT_TABLE_DB_NAMES or name in _LOGICAL_BY_DB


# --- type mapping -----------------------------------------------------------------------------


# (SQL type, Arrow type, DuckDB type), most specific first: BigInteger and SmallInteger are
# Integers, and Double is a Float, which is a Numeric, so the first isinstance match wins.
_TYPE_MAP: tuple[tuple[type[TypeEngine], Any, Any], ...] = (
    (BigInteger, lambda t: pa.int64(), lambda t: "BIGINT"),
    (SmallInteger, lambda t: pa.int16(), lambda t: "SMALLINT"),
    (Integer, lambda t: pa.int32(), lambda t: "INTEGER"),
    (Double, lambda t: pa.float64(), lambda t: "DOUBLE"),
    (
        Numeric,
        lambda t: pa.decimal128(t.precision, t.scale),
        lambda t: f"DECIMAL({t.precision},{t.scale})",
    ),
    (Boolean, lambda t: pa.bool_(), lambda t: "BOOLEAN"),
    (DateTime, lambda t: pa.timestamp("us"), lambda t: "TIMESTAMP"),
    (Date, lambda t: pa.date32(), lambda t: "DATE"),
    # DuckDB ignores VARCHAR(n) lengths and reports plain VARCHAR, which check_schema compares.
    (String, lambda t: pa.string(), lambda t: "VARCHAR"),
)


def _map_type(type_: TypeEngine, target: int) -> Any:
    for entry in _TYPE_MAP:
        if isinstance(type_, entry[0]):
            return entry[target](type_)
    raise TypeError(f"SQL type {type_!r} is not used by the schema contract")


def arrow_type(type_: TypeEngine) -> pa.DataType:
    """Map a contract SQLAlchemy type to its Arrow type.

    Args:
        type_: A column type used in :data:`metadata`.

    Returns:
        The Arrow type of the contract (``decimal128``, ``timestamp("us")``, ``string`` …).

    Raises:
        TypeError: The type is not used by the contract.
    """
    return _map_type(type_, 1)


def duckdb_type(type_: TypeEngine) -> str:
    """Map a contract SQLAlchemy type to the DuckDB type name that DuckDB reports back.

    Args:
        type_: A column type used in :data:`metadata`.

    Returns:
        ``BIGINT``, ``INTEGER``, ``SMALLINT``, ``VARCHAR`` (also for ``VARCHAR(n)``),
        ``DECIMAL(p,s)``, ``DOUBLE``, ``BOOLEAN``, ``DATE`` or ``TIMESTAMP``.

    Raises:
        TypeError: The type is not used by the contract.
    """
    return _map_type(type_, 2)


@functools.cache  # the contract is fixed: one schema per name
def arrow_schema(name: str) -> pa.Schema:
    """Return the contract Arrow schema of a table (column order, types and nullability).

    Args:
        name: A logical or database table name.

    Returns:
        A ``pyarrow.Schema`` with one field per column, in table order.

    Raises:
        UnknownTableError: The name is unknown.
    """
    return pa.schema(
        [pa.field(c.name, arrow_type(c.type), nullable=bool(c.nullable)) for c in table(name).c]
    )


@functools.cache
def carried_schema(name: str) -> pa.Schema:
    """The Arrow schema of a unit-scoped state table as the engine carries it in memory:
    the contract without the leading ``unit_id``, which is added when the rows are written."""
    full = arrow_schema(name)
    return pa.schema([f for f in full if f.name != UNIT_COLUMN])


def with_unit(name: str, table: pa.Table, units: Any) -> pa.Table:
    """``table`` (carried columns) with its ``unit_id`` column, in the contract schema of
    ``name``; ``units`` is an int array of one unit per row, or one int for every row."""
    n = table.num_rows
    values = np.broadcast_to(np.asarray(units, dtype=np.int16), (n,))
    return table.add_column(0, UNIT_COLUMN, pa.array(values, pa.int16())).cast(arrow_schema(name))


def duckdb_columns(name: str) -> list[tuple[str, str]]:
    """Return the contract ``(column name, DuckDB type)`` pairs of a table, in order.

    Args:
        name: A logical or database table name.

    Returns:
        The pairs, comparable with what DuckDB's ``information_schema.columns`` reports.

    Raises:
        UnknownTableError: The name is unknown.
    """
    return [(c.name, duckdb_type(c.type)) for c in table(name).c]


def quote_ident(ident: str) -> str:
    """Quote an identifier for DuckDB/PostgreSQL (several columns, e.g. ``count``, are keywords)."""
    return '"' + ident.replace('"', '""') + '"'


def _default_sql(column: Column) -> str:
    default = column.server_default
    if default is None:
        return ""
    arg = getattr(default, "arg", None)
    if isinstance(arg, TextClause):
        return f" DEFAULT {arg.text}"
    if isinstance(arg, str):
        return " DEFAULT '" + arg.replace("'", "''") + "'"
    raise TypeError(f"unsupported server default on {column}")


#: State tables without a DuckDB index on their key: ``gen_initial_inventory`` is written
#: once; ``gen_state_inventory`` whole on the first day, then updated by key.
UNINDEXED_STATE_TABLES = frozenset({"gen_initial_inventory", "gen_state_inventory"})


def duckdb_ddl(name: str) -> str:
    """Render the DuckDB ``CREATE TABLE IF NOT EXISTS`` statement of a table.

    Fact tables and the outbox declare no key, FK, UNIQUE or index; dimension and ``gen_*``
    tables declare their primary key only, but for :data:`UNINDEXED_STATE_TABLES` (see the
    module docstring for why).

    Args:
        name: A logical or database table name.

    Returns:
        One DDL statement, without a trailing semicolon.

    Raises:
        UnknownTableError: The name is unknown.
    """
    tbl = table(name)
    parts = [
        f"{quote_ident(c.name)} {duckdb_type(c.type)}"
        + ("" if c.nullable else " NOT NULL")
        + _default_sql(c)
        for c in tbl.c
    ]
    if (tbl.name in DIM_TABLES or tbl.name in STATE_TABLES) and tbl.name not in UNINDEXED_STATE_TABLES:
        pk = ", ".join(quote_ident(c) for c in _PRIMARY_KEYS[tbl.name])
        parts.append(f"PRIMARY KEY ({pk})")
    body = ",\n    ".join(parts)
    return f"CREATE TABLE IF NOT EXISTS {quote_ident(tbl.name)} (\n    {body}\n)"


__all__ = [
    "CONTRACT_TABLES",
    "UNINDEXED_STATE_TABLES",
    "DIM_TABLES",
    "FACT_TABLES",
    "FACT_TABLE_DB_NAMES",
    "GENERATOR_NAMES",
    "OUTBOX_TABLE",
    "SCHEMA_VERSION",
    "STATE_TABLES",
    "UNIT_COLUMN",
    "arrow_schema",
    "arrow_type",
    "carried_schema",
    "db_table_name",
    "duckdb_columns",
    "duckdb_ddl",
    "duckdb_type",
    "is_fact_table",
    "logical_fact_name",
    "metadata",
    "primary_key",
    "quote_ident",
    "table",
    "with_unit",
]
