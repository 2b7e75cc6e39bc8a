"""The in-process executor: a day generated unit by unit (sharding.md §1, §4).

Each unit-day runs the daily pipeline on the unit's view of the static inputs and the unit's
part of the state; the day is the union of its unit-days. The network state and the state rows
are merged back, so the result is interchangeable with a whole-network day.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from retail_datagen.generators.fact_generators.day_types import DayResult
from retail_datagen.generators.fact_generators.persistence_mixin import StateWrites
from retail_datagen.generators.fact_generators.state import CarriedState
from retail_datagen.generators.fact_generators.units import (
    NETWORK_UNIT,
    merge_states,
    split_state,
    unit_order,
    unit_views,
)


def _concat(tables: list[pa.Table | None]) -> pa.Table | None:
    present = [t for t in tables if t is not None]
    return pa.concat_tables(present) if present else None


def merge_state_writes(writes: dict[int, StateWrites]) -> StateWrites:
    """The state rows of a day from those of its unit-days (each row has one unit)."""
    parts = list(writes.values())
    first = parts[0]
    return StateWrites(
        inventory=_concat([w.inventory for w in parts]),
        initial_inventory=_concat([w.initial_inventory for w in parts]),
        shipments=_concat([w.shipments for w in parts]),
        shipment_lines=_concat([w.shipment_lines for w in parts]),
        trucks=_concat([w.trucks for w in parts]),
        supplier_orders=_concat([w.supplier_orders for w in parts]),
        campaigns=_concat([w.campaigns for w in parts]),
        new_pending_returns=_concat([w.new_pending_returns for w in parts]),
        first_day=first.first_day,
        config_rows=first.config_rows,
    )


def generate_day_by_units(generator, day: date, carried: CarriedState | None) -> DayResult:
    """Day ``day`` of ``generator`` (a loaded ``FactDataGenerator``), one unit at a time,
    largest unit first; the same result as ``generator._generate_day(day, carried)``.
    """
    master, pools = generator._master, generator._pools
    if generator._unit_views is None:
        generator._unit_views = unit_views(master, pools)
    views = generator._unit_views
    states = (split_state(carried, views, master.stores.dc_id) if carried is not None
              else dict.fromkeys(views))
    results: dict[int, DayResult] = {}
    try:
        for unit in unit_order(master):
            view = views[unit]
            generator._master, generator._pools, generator._unit = view.master, view.pools, unit
            results[unit] = generator._generate_day(day, states[unit])
    finally:
        generator._master, generator._pools, generator._unit = master, pools, None
    order = sorted(results)
    names = [n for n in generator.FACT_TABLES if any(n in results[u].batches for u in order)]
    batches = {name: [t for u in order for t in results[u].batches.get(name, [])]
               for name in names}
    outbox = _concat([results[u].outbox for u in order])
    state = merge_states({u: results[u].state for u in order}, views, master)
    writes = merge_state_writes({u: results[u].state_writes for u in order})
    if NETWORK_UNIT in results:
        writes.campaigns = results[NETWORK_UNIT].state_writes.campaigns
    return DayResult(batches, state, writes, outbox)


__all__ = ["generate_day_by_units", "merge_state_writes"]
