"""Stockouts: the moments a (node, product) balance reaches zero (behaviour.md §9)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen.generators.fact_generators.day_types import InventoryEvents, ResolvedEvents
from retail_datagen.generators.fact_generators.utils_mixin import rows_of, ts_array
from retail_datagen.ids import unit_day_ids


def stockout_rows(events: InventoryEvents, resolved: ResolvedEvents, node_ids: np.ndarray,
                  node_rank: int) -> dict[str, np.ndarray | pa.Array]:
    """Columns of the events that took a balance from > 0 to 0."""
    hit = np.flatnonzero((resolved.previous > 0) & (resolved.balance == 0))
    requested = np.abs(events.delta[hit])
    return {
        "ts": events.ts_us[hit],
        "rank": np.full(len(hit), node_rank, dtype=np.int64),
        "node": node_ids[events.node_idx[hit]],
        "product": events.product_idx[hit] + 1,
        "last": resolved.previous[hit],
        "unfilled": requested + resolved.applied[hit],
        "source": events.source.take(pa.array(hit, pa.int64())),
    }


def stockouts_table(day: date, parts: list[dict[str, np.ndarray | pa.Array]],
                    store_unit: np.ndarray, store_ids: np.ndarray | None = None) -> pa.Table:
    """The ``stockouts`` batch in DSID order (event_ts, node rank, node id, product_id).

    ``store_unit`` (int64, by store index) is each store's DC unit; a DC row's unit is its DC.
    ``store_ids`` are the ascending ids whose positions are the store indices (None: the dense
    network ids 1..).
    """
    cols = {k: (pa.concat_arrays([p[k] for p in parts]) if k == "source"
                else np.concatenate([p[k] for p in parts])) for k in parts[0]}
    order = np.lexsort((cols["product"], cols["node"], cols["rank"], cols["ts"]))
    store = cols["rank"][order] == 0
    node = cols["node"][order]
    ts = ts_array(cols["ts"][order])
    unit = node.copy()
    if store.any():
        ids = np.arange(1, len(store_unit) + 1) if store_ids is None else store_ids
        unit[store] = store_unit[rows_of(ids, node[store])]
    return pa.table({
        "StockoutId": pa.array(unit_day_ids(day, unit)),
        "EventTS": ts,
        "StoreID": pa.array(node, mask=~store),
        "DCID": pa.array(node, mask=store),
        "ProductID": pa.array(cols["product"][order]),
        "LastKnownQuantity": pa.array(cols["last"][order].astype(np.int32)),
        "UnfilledQuantity": pa.array(cols["unfilled"][order].astype(np.int32)),
        "Source": pc.take(cols["source"], pa.array(order)),
        "DetectionTime": ts,
    })


class StockoutsMixin:
    """Stockout detection.

    This mixin defines the following functionality:

    Adds:
        ``_detect_stockouts`` (table ``stockouts``).
    Reads:
        ``_master.stores``, ``_master.dcs``.
    Writes:
        nothing on self.
    Streams:
        none.
    """

    def _detect_stockouts(self, day: date, store: tuple[InventoryEvents, ResolvedEvents],
                          dc: tuple[InventoryEvents, ResolvedEvents]) -> pa.Table:
        return stockouts_table(day, [
            stockout_rows(*store, self._master.stores.store_id, 0),
            stockout_rows(*dc, self._master.dcs.dc_id, 1),
        ], self._master.stores.dc_id, self._master.stores.store_id)
