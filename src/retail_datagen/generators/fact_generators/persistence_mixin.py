"""Persistence: contract mapping of generator batches and the one-transaction day write.

Generation returns PascalCase Arrow batches; only this mixin renames them to the snake_case
contract (``db.schema.GENERATOR_NAMES``), casts them to the contract Arrow schema and writes
them, together with the carried state and the watermark, in one transaction per day.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import sqlalchemy

from retail_datagen.db import schema
from retail_datagen.db.contract import map_batch
from retail_datagen.db.target import Target
from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators.day_types import DayResult, StateWrites
from retail_datagen.generators.fact_generators.utils_mixin import US_PER_HOUR, day_start_us
from retail_datagen.streaming.outbox_rows import build_outbox_rows

# The dims as the engine needs them: tax rates as integer ppm and item names without the brand,
# computed by the database so no Python touches a row.
_DIM_QUERIES = {
    "dim_geographies": "SELECT *, CAST(round(tax_rate * 1000000) AS BIGINT) AS tax_ppm "
                       "FROM dim_geographies ORDER BY geography_id",
    "dim_distribution_centers": "SELECT * FROM dim_distribution_centers ORDER BY dc_id",
    "dim_stores": "SELECT *, CAST(round(tax_rate * 1000000) AS BIGINT) AS tax_ppm "
                  "FROM dim_stores ORDER BY store_id",
    "dim_trucks": "SELECT * FROM dim_trucks ORDER BY truck_id",
    # Only the columns the engine uses: the names and addresses would double the read.
    "dim_customers": "SELECT customer_id, geography_id, shopper_segment, mobility_segment, "
                     "primary_store_id, ble_id, ad_id FROM dim_customers ORDER BY customer_id",
    "dim_products": "SELECT *, substr(product_name, length(brand) + 2) AS item_name "
                    "FROM dim_products ORDER BY product_id",
}


def hour_bounds(table: pa.Table, day: date, batch_hours: int) -> list[tuple[datetime, datetime]]:
    """``[lo, hi)`` event-time ranges of ``batch_hours`` hours that hold rows of ``table``."""
    ts = table.column("event_ts").cast(pa.int64()).to_numpy()
    start = datetime.combine(day, datetime.min.time())
    chunk = np.unique((ts - day_start_us(day)) // (US_PER_HOUR * batch_hours))
    step = timedelta(hours=batch_hours)
    return [(start + step * int(c), start + step * (int(c) + 1)) for c in chunk.tolist()]


class PersistenceMixin:
    """Contract mapping and transactional writes.

    This mixin defines the following functionality:

    Adds:
        ``_get_model_for_table``, ``_map_field_names_for_db``, ``_build_outbox_rows_from_df``,
        ``_write_day``, ``_read_dimension_tables``, ``_read_generator_tables``,
        ``_read_watermark``, ``_read_metadata``, ``reset_facts``.
    Reads:
        ``config.performance.batch_hours`` (SQLAlchemy targets only), ``_target`` (the open
        database),
        ``_included_tables``, ``_publish_outbox``.
    Writes:
        ``_tables_created`` (whether the fact and state tables exist).
    Streams:
        none.
    """

    def _get_model_for_table(self, name: str) -> sqlalchemy.Table:
        """The SQLAlchemy Core table of a logical or database table name."""
        return schema.table(name)

    def _map_field_names_for_db(self, name: str, batch: pa.Table) -> pa.Table:
        return map_batch(name, batch)

    def _build_outbox_rows_from_df(self, name: str, batch: pa.Table) -> pa.Table:
        return build_outbox_rows(name, batch)

    # -- reading ---------------------------------------------------------------------------
    def _read_dimension_tables(self) -> dict[str, pa.Table | None]:
        target = self._target
        return {name: target.query_arrow(query) if target.table_exists(name) else None
                for name, query in _DIM_QUERIES.items()}

    def _read_generator_tables(self) -> dict[str, pa.Table]:
        target = self._target
        return {name: target.query_arrow(f"SELECT * FROM {schema.quote_ident(name)}")
                .cast(schema.arrow_schema(name))
                for name in schema.STATE_TABLES if target.table_exists(name)}

    def _read_watermark(self) -> tuple[date, date] | None:
        if not self._target.table_exists("gen_watermark"):
            return None
        rows = self._target.fetchall("SELECT first_day, last_day FROM gen_watermark")
        return (rows[0][0], rows[0][1]) if rows else None

    def _read_metadata(self) -> dict[str, str]:
        if not self._target.table_exists("gen_metadata"):
            return {}
        return dict(self._target.fetchall("SELECT key, value FROM gen_metadata"))

    # -- writing ---------------------------------------------------------------------------
    def _ensure_tables(self) -> None:
        if not self._tables_created:
            self._target.create_tables((*schema.FACT_TABLE_DB_NAMES.values(),
                                        schema.OUTBOX_TABLE, *schema.STATE_TABLES))
            self._tables_created = True

    def _write_day(self, day: date, parts: Iterable[DayResult],
                   cancelled: threading.Event | None = None) -> dict[str, int]:
        """Write one day in one transaction: facts and outbox part by part as ``parts`` yields
        them, then the state of the last part (the one whose ``state_writes`` is set), the
        day log and the watermark.

        ``parts`` may block until the executor has the next part and may raise to abandon
        the day; either way nothing of the day is committed unless all of it is. Returns the
        rows written per logical table.
        """
        target = self._target
        # batch_hours chunks only SQLAlchemy inserts; DuckDB appends a table's part at once.
        batch_hours = None if target.dialect == "duckdb" else self.config.performance.batch_hours
        counts: dict[str, int] = {}
        state: StateWrites | None = None
        outbox = False
        self._ensure_tables()
        with target.transaction():
            for part in parts:
                for name, tables in part.batches.items():
                    # One mapping per table and part, not per unit-day: the unit-days of a
                    # part share their generator schema (up to the types of empty columns).
                    mapped = self._map_field_names_for_db(
                        name, pa.concat_tables(tables, promote_options="permissive"))
                    target.append(name, mapped, None if batch_hours is None
                                  else hour_bounds(mapped, day, batch_hours))
                    counts[name] = counts.get(name, 0) + mapped.num_rows
                    self._emit_table_progress(name, 1.0, f"Writing {name} ({counts[name]:,})",
                                              {name: counts[name]})
                if part.outbox is not None:
                    outbox = True
                    if part.outbox.num_rows:
                        target.append(schema.OUTBOX_TABLE, part.outbox)
                state = part.state_writes if part.state_writes is not None else state
            if cancelled is not None and cancelled.is_set():
                raise _Cancelled
            if state is None:
                raise GenerationError(f"the parts of {day} carry no state to write", day=day)
            self._write_state(day, state)
            log = pa.table({
                "day": pa.array([day], pa.date32()),
                "included_tables": [",".join(sorted(self._included_tables))],
                "outbox": [outbox],
                "row_count": pa.array([sum(counts.values())], pa.int64()),
            })
            target.upsert("gen_day_log", log)
            if cancelled is not None and cancelled.is_set():
                raise _Cancelled
        return counts

    def _write_state(self, day: date, state: StateWrites) -> None:
        target = self._target
        if state.initial_inventory is not None:
            target.replace("gen_initial_inventory", state.initial_inventory)
            target.replace("gen_state_inventory", state.inventory)
        elif state.inventory.num_rows:
            target.upsert("gen_state_inventory", state.inventory)
        for name, table in (("gen_state_shipments", state.shipments),
                            ("gen_state_shipment_lines", state.shipment_lines),
                            ("gen_state_trucks", state.trucks),
                            ("gen_state_supplier_orders", state.supplier_orders),
                            ("gen_state_campaigns", state.campaigns)):
            target.replace(name, table)
        target.retain("gen_state_pending_returns", "return_date > ?", [day])
        target.append("gen_state_pending_returns", state.new_pending_returns)
        if state.config_rows is not None:
            target.upsert("gen_metadata", state.config_rows)
        watermark = pa.table({"id": pa.array([1], pa.int16()),
                              "first_day": pa.array([state.first_day], pa.date32()),
                              "last_day": pa.array([day], pa.date32())})
        target.upsert("gen_watermark", watermark)

    def reset_facts(self) -> None:
        """Drop every fact table, the outbox and the ``gen_*`` tables except ``gen_metadata``."""
        drop_fact_tables(self._target)
        self._tables_created = False
        self._state = None
        self._state_last_day = None


def drop_fact_tables(target: Target) -> None:
    """Drop the facts, the outbox and the generator state of ``target``; keep the dims.

    A module-level function so that a database whose tables no longer match the contract can
    be reset before a generator (which checks the schema) is built on it.
    """
    names = (*schema.FACT_TABLE_DB_NAMES.values(), schema.OUTBOX_TABLE,
             *(t for t in schema.STATE_TABLES if t != "gen_metadata"))
    with target.transaction():
        for name in names:
            target.execute(f"DROP TABLE IF EXISTS {schema.quote_ident(name)}")
        if target.table_exists("gen_metadata"):
            target.execute("DELETE FROM gen_metadata WHERE key IN "
                           "('config_fingerprint', 'config_data')")


class _Cancelled(Exception):
    """Raised inside the day's transaction when the caller was cancelled or the day abandoned
    before COMMIT."""
