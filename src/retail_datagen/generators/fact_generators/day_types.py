"""Containers that carry one simulated day's batches between the pipeline's steps.

All arrays of one container have the same length and are in the container's canonical order.
Timestamps are int64 wall-time microseconds (see ``utils_mixin``); stores, DCs and products are
referred to by index (id − 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from retail_datagen.config.models import RetailConfig

BEHAVIOURS: tuple[str, ...] = ("QUICK", "GROCERY", "FAMILY", "BULK")


@dataclass(frozen=True)
class DayContext:
    """Calendar facts of one day, computed once in step 1 of the daily pipeline."""

    day: date
    day_start_us: int  # wall-time µs of D 00:00
    closed: bool  # all stores closed (Dec 25)
    season: float
    holiday: float
    dow: float
    seasonal: float  # season × holiday
    weather_by_region: np.ndarray  # float64 (5,) weather multiplier per domain.REGIONS index
    store_hour_mult: np.ndarray  # float64 (n_stores, 24) M(s, D, h) of behaviour.md §2.4
    open_mask: np.ndarray  # bool (n_stores, 24): open_hour <= h < close_hour, all False if closed
    available: np.ndarray  # int64 product indices (product_id − 1) with launch_date <= D


@dataclass
class Visits:
    """Every store visit of the day.

    Order: stores in store_id order; within a store, by visit seq (visit time, then draw index).
    Visits of store index ``i`` are ``store_offsets[i]:store_offsets[i + 1]``.
    """

    store_idx: np.ndarray  # int64 (n,)
    visit_seq: np.ndarray  # int64 (n,) 1-based within the store-day
    ts_us: np.ndarray  # int64 (n,)
    hour: np.ndarray  # int64 (n,)
    customer_id: np.ndarray  # int64 (n,)
    segment_code: np.ndarray  # int8 (n,) into domain.SHOPPER_SEGMENTS
    behaviour_code: np.ndarray  # int8 (n,) into BEHAVIOURS
    store_offsets: np.ndarray  # int64 (n_stores + 1,)
    visits_per_hour: np.ndarray  # int64 (n_stores, 24)

    def __len__(self) -> int:
        return int(self.ts_us.shape[0])


@dataclass
class CandidateLines:
    """Merged candidate basket lines, before fulfilment.

    Order: visits in :class:`Visits` order, then candidate line order (``line_num`` 1..).
    """

    visit_index: np.ndarray  # int64 (m,) row in Visits
    line_num: np.ndarray  # int64 (m,) candidate position, 1-based within the visit
    product_idx: np.ndarray  # int64 (m,)
    quantity: np.ndarray  # int64 (m,) requested units, > 0

    def __len__(self) -> int:
        return int(self.quantity.shape[0])


@dataclass
class InventoryEvents:
    """Signed inventory requests/arrivals at stores or DCs, in any order.

    ``delta`` > 0 always applies; ``delta`` < 0 requests ``|delta|`` and is filled up to the
    balance (the min-rule). ``txn_type`` is an index into ``domain.TXN_TYPES_BY_RANK`` (so it is
    also the tie rank). ``truck_id`` is 0 where NULL.
    """

    node_idx: np.ndarray  # int64
    product_idx: np.ndarray  # int64
    ts_us: np.ndarray  # int64
    txn_type: np.ndarray  # int8 rank
    source: pa.Array  # string
    delta: np.ndarray  # int64, never 0
    truck_id: np.ndarray = field(default=None)  # int64, 0 = NULL

    def __post_init__(self) -> None:
        if self.truck_id is None:
            self.truck_id = np.zeros(self.delta.shape[0], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.delta.shape[0])

    def take(self, idx: np.ndarray) -> InventoryEvents:
        """The events at positions ``idx``, in that order."""
        return InventoryEvents(self.node_idx[idx], self.product_idx[idx], self.ts_us[idx],
                               self.txn_type[idx], self.source.take(pa.array(idx, pa.int64())),
                               self.delta[idx], self.truck_id[idx])

    @staticmethod
    def empty() -> InventoryEvents:
        z = np.zeros(0, dtype=np.int64)
        return InventoryEvents(z, z, z, z.astype(np.int8), pa.array([], pa.string()), z, z)

    @staticmethod
    def concat_named(parts: dict[str, InventoryEvents]
                     ) -> tuple[InventoryEvents, dict[str, slice]]:
        """The parts concatenated in the order given, and each part's rows by name, so that
        results per event (e.g. filled quantities) are read back by name, not by position."""
        segments, start = {}, 0
        for name, part in parts.items():
            segments[name] = slice(start, start + len(part))
            start += len(part)
        return InventoryEvents.concat(list(parts.values())), segments

    @staticmethod
    def concat(parts: list[InventoryEvents]) -> InventoryEvents:
        parts = [p for p in parts if len(p)]
        if not parts:
            return InventoryEvents.empty()
        return InventoryEvents(
            node_idx=np.concatenate([p.node_idx for p in parts]),
            product_idx=np.concatenate([p.product_idx for p in parts]),
            ts_us=np.concatenate([p.ts_us for p in parts]),
            txn_type=np.concatenate([p.txn_type for p in parts]).astype(np.int8),
            source=pa.concat_arrays([p.source for p in parts]),
            delta=np.concatenate([p.delta for p in parts]),
            truck_id=np.concatenate([p.truck_id for p in parts]),
        )


@dataclass
class ResolvedEvents:
    """The result of resolving :class:`InventoryEvents` against running balances.

    Arrays are in the input order of the events that were resolved. ``applied`` is the signed
    quantity that took effect (0 for a request that found no stock); ``balance`` the on-hand after
    the event; ``previous`` the on-hand before it.
    """

    applied: np.ndarray  # int64
    balance: np.ndarray  # int64
    previous: np.ndarray  # int64


@dataclass
class DayResult:
    """What ``_generate_day`` hands to ``_write_day``: a day, a unit-day, or a part of a day
    (its facts only: ``state`` and ``state_writes`` None)."""

    batches: dict[str, list[pa.Table]]  # included logical table -> PascalCase parts
    state: Any  # state.CarriedState
    state_writes: Any  # StateWrites (below)
    outbox: pa.Table | None


@dataclass
class StateWrites:
    """The generator-state changes of one day, written in the day's transaction."""

    inventory: pa.Table  # gen_state_inventory rows to upsert
    initial_inventory: pa.Table | None  # first day only
    shipments: pa.Table
    shipment_lines: pa.Table
    trucks: pa.Table
    supplier_orders: pa.Table
    campaigns: pa.Table
    new_pending_returns: pa.Table
    first_day: date
    config_rows: pa.Table | None  # gen_metadata rows written on the first day


def config_metadata_rows(config: RetailConfig) -> pa.Table:
    """The ``gen_metadata`` rows written on the first fact day."""
    return pa.table({"key": ["config_fingerprint", "config_data"],
                     "value": [config.fingerprint(), config.config_data()]})
