"""Store opening and closing events (behaviour.md §14.3, fact-tables.md §14).

Every store writes OPENED at ``open_hour:00`` and CLOSED at ``close_hour:00`` (23:59:59 for a
store that closes at midnight) on every day except Dec 25, when all stores stay closed. No random
draws are involved.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .day_types import DayContext
from .utils_mixin import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_SECOND,
    dict_strings,
    generator_schema,
    ts_array,
)

STORE_OPERATION_TYPES: tuple[str, ...] = ("OPENED", "CLOSED")

STORE_OPS_SCHEMA = generator_schema("store_ops")


def store_ops_table(
    day_start_us: int,
    store_ids: np.ndarray,
    open_hour: np.ndarray,
    close_hour: np.ndarray,
    closed: bool,
) -> pa.Table:
    """The ``store_ops`` batch of one day, rows in (store_id, event_ts) order.

    Args:
        day_start_us: wall-time µs of the day's midnight.
        store_ids: int64 (n,) store ids ascending.
        open_hour: int64 (n,) opening hour of each store.
        close_hour: int64 (n,) closing hour (24 = midnight).
        closed: every store is closed that day (Dec 25): no rows.
    """
    store_ids = np.asarray(store_ids, dtype=np.int64)
    if closed:
        store_ids = store_ids[:0]
    n = store_ids.size
    open_hour = np.asarray(open_hour, dtype=np.int64)[:n]
    close_hour = np.asarray(close_hour, dtype=np.int64)[:n]
    opened = day_start_us + open_hour * US_PER_HOUR
    closes = np.where(
        close_hour >= 24,
        day_start_us + US_PER_DAY - US_PER_SECOND,
        day_start_us + close_hour * US_PER_HOUR,
    )
    ts = np.column_stack([opened, closes]).reshape(-1)
    op = np.tile(np.arange(2), n)
    return pa.Table.from_arrays(
        [
            ts_array(ts),
            pa.array(np.repeat(store_ids, 2), pa.int64()),
            dict_strings(op, STORE_OPERATION_TYPES),
        ],
        schema=STORE_OPS_SCHEMA,
    )


class StoreOpsMixin:
    """Daily store opening and closing events.

    This mixin defines the following functionality:

    Adds:
        ``_generate_store_ops`` (table ``store_ops``).
    Reads:
        ``_master.stores`` (store_id, open_hour, close_hour).
    Writes:
        nothing on self.
    Streams:
        none.
    """

    def _generate_store_ops(self, ctx: DayContext) -> pa.Table:
        """OPENED and CLOSED rows of every store for ``ctx.day`` (none when closed)."""
        stores = self._master.stores
        return store_ops_table(
            ctx.day_start_us, stores.store_id, stores.open_hour, stores.close_hour, ctx.closed
        )


__all__ = ["STORE_OPERATION_TYPES", "STORE_OPS_SCHEMA", "StoreOpsMixin", "store_ops_table"]
