"""The unit-day function at the heart of every executor (sharding.md §1, §4).

``generate_unit_day(static, unit, day, state)`` is pure: given the static inputs, a unit, a day
and the unit's state after the previous day, it returns the unit-day's batches, the unit's next
state and its state rows. It touches no database and changes nothing it is given, so the
in-process loop, a pool of processes and Spark tasks all run it and get the same rows.
:func:`generate_day` is the in-process executor: every unit-day of a day, merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa

from retail_datagen.config.models import RetailConfig
from retail_datagen.db import schema
from retail_datagen.generators.fact_generators.data_loading_mixin import MasterData, StorePools
from retail_datagen.generators.fact_generators.day_types import DayResult, StateWrites
from retail_datagen.generators.fact_generators.seasonal_mixin import product_keyword_groups
from retail_datagen.generators.fact_generators.simulation import DaySimulation
from retail_datagen.generators.fact_generators.state import CarriedState
from retail_datagen.generators.fact_generators.units import (
    NETWORK_UNIT,
    UnitView,
    merge_states,
    split_state,
    unit_order,
    unit_views,
)


@dataclass
class StaticInputs:
    """What every unit-day reads and none changes: built once per process (or Spark task).

    Attributes:
        config: the configuration.
        master: the network's dimensions; ``pools`` its customer pools.
        keyword_groups: the holiday keyword matches of every product.
        views: the view of every unit (``units.unit_views``).
        included_tables: the logical fact tables to generate.
        publish_outbox: whether unit-days also build outbox events.
        store_workers: threads for per-store work inside a unit-day.
    """

    config: RetailConfig
    master: MasterData
    pools: StorePools
    keyword_groups: np.ndarray
    views: dict[int, UnitView]
    included_tables: frozenset[str]
    publish_outbox: bool = False
    store_workers: int = 1
    _simulations: dict[int, DaySimulation] = field(default_factory=dict, repr=False,
                                                   compare=False)
    _day_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, config: RetailConfig, master: MasterData, pools: StorePools, *,
              included_tables: frozenset[str] | set[str] | None = None,
              publish_outbox: bool = False, store_workers: int = 1) -> StaticInputs:
        return cls(config=config, master=master, pools=pools,
                   keyword_groups=product_keyword_groups(master.products),
                   views=unit_views(master, pools),
                   included_tables=frozenset(schema.FACT_TABLES if included_tables is None
                                             else included_tables),
                   publish_outbox=publish_outbox, store_workers=store_workers)

    @property
    def units(self) -> list[int]:
        """Every unit id, largest first (the order executors start them in)."""
        return unit_order(self.master)

    def simulation(self, unit: int) -> DaySimulation:
        """The daily pipeline over unit ``unit``'s view (built once, then reused)."""
        sim = self._simulations.get(unit)
        if sim is None:
            view = self.views[unit]
            sim = DaySimulation(
                self.config, view.master, view.pools, unit=unit,
                network_stores=len(self.master.stores.store_id),
                included_tables=self.included_tables, publish_outbox=self.publish_outbox,
                keyword_groups=self.keyword_groups, store_workers=self.store_workers,
                day_cache=self._day_cache)
            self._simulations[unit] = sim
        return sim

    def __getstate__(self) -> dict:
        # Simulations are caches over the other fields; each process builds its own.
        return {**self.__dict__, "_simulations": {}, "_day_cache": {}}


def generate_unit_day(static: StaticInputs, unit: int, day: date,
                      state: CarriedState | None) -> DayResult:
    """Unit ``unit``'s day ``day`` from its state after the day before (None on the first day).

    Returns the unit-day's batches (logical fact name → tables in generator columns), the
    unit's next state, its state rows and its outbox events. Pure: ``state`` is not changed.
    """
    return static.simulation(unit)._generate_day(day, state)


def _concat(tables: list[pa.Table | None]) -> pa.Table | None:
    present = [t for t in tables if t is not None]
    return pa.concat_tables(present) if present else None


def merge_state_writes(writes: dict[int, StateWrites]) -> StateWrites:
    """The state rows of a day from those of its unit-days (each row has one unit)."""
    parts = [writes[u] for u in sorted(writes)]
    first = parts[0]
    merged = StateWrites(
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
    if NETWORK_UNIT in writes:  # campaigns are the network unit's only state
        merged.campaigns = writes[NETWORK_UNIT].campaigns
    return merged


def merge_unit_facts(results: dict[int, DayResult]) -> DayResult:
    """The facts and outbox events of some unit-days, in unit order, without any state."""
    order = sorted(results)
    names = [n for n in schema.FACT_TABLES if any(n in results[u].batches for u in order)]
    batches = {name: [t for u in order for t in results[u].batches.get(name, [])]
               for name in names}
    return DayResult(batches, None, None, _concat([results[u].outbox for u in order]))


def merge_unit_days(static: StaticInputs, results: dict[int, DayResult]) -> DayResult:
    """The day that unit-days make together: batches and outbox in unit order, one state."""
    merged = merge_unit_facts(results)
    order = sorted(results)
    merged.state = merge_states({u: results[u].state for u in order}, static.views,
                                static.master)
    merged.state_writes = merge_state_writes({u: results[u].state_writes for u in order})
    return merged


def generate_day(static: StaticInputs, day: date, carried: CarriedState | None) -> DayResult:
    """The in-process executor: every unit-day of ``day``, largest unit first, merged.

    ``carried`` is the network state after the day before (None on the first day); the result
    equals the whole network simulated at once.
    """
    states = (split_state(carried, static.views, static.master.stores.dc_id)
              if carried is not None else dict.fromkeys(static.views))
    results = {unit: generate_unit_day(static, unit, day, states[unit])
               for unit in static.units}
    return merge_unit_days(static, results)


__all__ = [
    "StaticInputs",
    "generate_day",
    "generate_unit_day",
    "merge_state_writes",
    "merge_unit_facts",
    "merge_unit_days",
]
