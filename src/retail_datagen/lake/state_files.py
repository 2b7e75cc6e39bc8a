"""A unit's carried state as Parquet files in the lake (sharding.md §4–§5).

After each unit-day the unit's whole state goes to ``_state/u<UUU>/<D>/``, one file per
``gen_state_*`` table in its contract schema (``unit_id`` first); on the first day its initial
inventory (which holds the reorder points) goes to ``_state/u<UUU>/`` before them. Reading a
state folder back gives the same
:class:`~retail_datagen.generators.fact_generators.state.CarriedState` that a database target
reloads from its ``gen_state_*`` rows, so a rerun continues exactly where the unit stopped.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from retail_datagen.db import schema
from retail_datagen.generators.fact_generators.day_types import DayResult
from retail_datagen.generators.fact_generators.state import (
    CarriedState,
    inventory_rows,
    state_from_tables,
)
from retail_datagen.generators.fact_generators.unit_day import StaticInputs
from retail_datagen.lake.layout import (
    INITIAL_INVENTORY,
    STATE_TABLES,
    initial_inventory_file,
    state_file,
)
from retail_datagen.lake.writer import write_parquet


def _sorted(name: str, table: pa.Table) -> pa.Table:
    table = table.cast(schema.arrow_schema(name))
    return table.sort_by([(c, "ascending") for c in schema.primary_key(name)])


def unit_state_tables(static: StaticInputs, unit: int, result: DayResult,
                      first_day: bool) -> dict[str, pa.Table]:
    """The unit's state after the day of ``result``, as ``gen_*`` tables in key order."""
    view = static.views[unit]
    stores = view.master.stores
    state: CarriedState = result.state
    writes = result.state_writes
    tables = {
        "gen_state_inventory": inventory_rows(state, stores.store_id, stores.dc_id,
                                              view.master.dcs.dc_id, None, None),
        "gen_state_shipments": writes.shipments,
        "gen_state_shipment_lines": writes.shipment_lines,
        "gen_state_trucks": writes.trucks,
        "gen_state_supplier_orders": writes.supplier_orders,
        "gen_state_campaigns": writes.campaigns,
        # Every pending return of a unit is due at one of its stores.
        "gen_state_pending_returns": schema.with_unit("gen_state_pending_returns",
                                                      state.pending_returns, unit),
    }
    if first_day:
        tables[INITIAL_INVENTORY] = writes.initial_inventory
    return {name: _sorted(name, table) for name, table in tables.items()}


def write_unit_state(out: Path, static: StaticInputs, unit: int, day: date, result: DayResult,
                     first_day: bool) -> None:
    """Write the unit's state after ``day``; the folder is complete once the last file lands."""
    tables = unit_state_tables(static, unit, result, first_day)
    initial = tables.pop(INITIAL_INVENTORY, None)
    if initial is not None:  # before the first state folder can be complete
        write_parquet(initial, initial_inventory_file(out, unit))
    for name, table in tables.items():
        write_parquet(table, state_file(out, unit, day, name))


def _local_ids(table: pa.Table, column: str, local: np.ndarray) -> pa.Table:
    """``table`` with ``column``'s network ids replaced by local index + 1."""
    return table.set_column(table.schema.get_field_index(column), column,
                            pa.array(np.asarray(local, dtype=np.int64) + 1, pa.int64()))


def read_unit_state(out: Path, static: StaticInputs, unit: int, day: date,
                    first_day: date) -> CarriedState:
    """The unit's state after ``day``, read from its state folder and initial inventory."""
    view = static.views[unit]
    tables = {name: pq.read_table(state_file(out, unit, day, name),
                                  schema=schema.arrow_schema(name))
              for name in STATE_TABLES}
    tables[INITIAL_INVENTORY] = pq.read_table(initial_inventory_file(out, unit),
                                              schema=schema.arrow_schema(INITIAL_INVENTORY))
    # The rows carry network ids; the unit's arrays are indexed by its local rows.
    for name in (INITIAL_INVENTORY, "gen_state_inventory"):
        table = tables[name]
        node = table.column("node_id").to_numpy()
        is_store = table.column("node_type").to_numpy(zero_copy_only=False) == "STORE"
        local = np.empty(len(node), dtype=np.int64)
        local[is_store] = view.local_store_index(node[is_store])
        local[~is_store] = view.local_dc_index(node[~is_store])
        tables[name] = _local_ids(table, "node_id", local)
    trucks = tables["gen_state_trucks"]
    tables["gen_state_trucks"] = _local_ids(
        trucks, "truck_id", view.local_truck_index(trucks.column("truck_id").to_numpy()))
    master = view.master
    return state_from_tables(first_day, tables, view.n_stores, len(view.dc_idx),
                             len(master.products.product_id), master.trucks.truck_id)


__all__ = ["read_unit_state", "unit_state_tables", "write_unit_state"]
