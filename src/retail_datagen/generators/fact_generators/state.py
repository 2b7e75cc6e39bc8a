"""The day-carried simulation state and its mirror in the ``gen_state_*`` tables.

The state is held in canonical order (legs by shipment id, lines by shipment and product,
supplier orders by DC, product and order day), so a state reloaded from the database is
identical to the one kept in memory: a range generated in two calls equals one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen.db import schema
from retail_datagen.generators.fact_generators.utils_mixin import (
    date_array,
    day_start_us,
    ts_array,
)

# Canonical order of carried pending returns.
PENDING_RETURN_ORDER = [("return_date", "ascending"), ("receipt_id_ext", "ascending"),
                        ("line_num", "ascending")]

# Status times of a leg, one column each, in lifecycle order (domain.TRUCK_STATUSES).
LEG_TIME_COLUMNS = ("scheduled_ts", "loading_ts", "departure_time", "eta", "unloading_ts", "etd")


@dataclass
class Legs:
    """DC→store legs not yet COMPLETED, sorted by shipment id."""

    shipment_id: np.ndarray  # str (n,)
    truck_id: np.ndarray  # int64
    dc_id: np.ndarray  # int64
    store_id: np.ndarray  # int64
    refrigerated: np.ndarray  # bool
    unit_count: np.ndarray  # int64
    times: np.ndarray  # int64 (n, 6) µs, LEG_TIME_COLUMNS order

    def __len__(self) -> int:
        return int(self.truck_id.shape[0])

    @staticmethod
    def empty() -> Legs:
        z = np.zeros(0, dtype=np.int64)
        return Legs(np.zeros(0, dtype="U32"), z, z, z, z.astype(bool), z,
                    np.zeros((0, 6), dtype=np.int64))

    def take(self, idx: np.ndarray) -> Legs:
        return Legs(self.shipment_id[idx], self.truck_id[idx], self.dc_id[idx],
                    self.store_id[idx], self.refrigerated[idx], self.unit_count[idx],
                    self.times[idx])

    @staticmethod
    def concat(*parts: Legs) -> Legs:
        merged = Legs(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("shipment_id", "truck_id", "dc_id", "store_id",
                                  "refrigerated", "unit_count", "times")))
        return merged.take(np.argsort(merged.shipment_id, kind="stable"))


@dataclass
class LegLines:
    """The contents of the legs in :class:`Legs`, sorted by (shipment id, product id)."""

    shipment_id: np.ndarray  # str
    product_id: np.ndarray  # int64
    quantity: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.quantity.shape[0])

    @staticmethod
    def empty() -> LegLines:
        z = np.zeros(0, dtype=np.int64)
        return LegLines(np.zeros(0, dtype="U32"), z, z)

    def take(self, idx: np.ndarray) -> LegLines:
        return LegLines(self.shipment_id[idx], self.product_id[idx], self.quantity[idx])

    @staticmethod
    def concat(*parts: LegLines) -> LegLines:
        merged = LegLines(*(np.concatenate([getattr(p, f) for p in parts])
                            for f in ("shipment_id", "product_id", "quantity")))
        return merged.take(np.lexsort((merged.product_id, merged.shipment_id)))


@dataclass
class SupplierOrders:
    """Supplier lines ordered but not arrived, sorted by (dc, product, order day)."""

    dc_id: np.ndarray  # int64
    product_id: np.ndarray  # int64
    quantity: np.ndarray  # int64
    order_ordinal: np.ndarray  # int64 date ordinal
    arrival_ordinal: np.ndarray  # int64 date ordinal

    def __len__(self) -> int:
        return int(self.quantity.shape[0])

    @staticmethod
    def empty() -> SupplierOrders:
        z = np.zeros(0, dtype=np.int64)
        return SupplierOrders(z, z, z, z, z)

    def take(self, idx: np.ndarray) -> SupplierOrders:
        return SupplierOrders(self.dc_id[idx], self.product_id[idx], self.quantity[idx],
                              self.order_ordinal[idx], self.arrival_ordinal[idx])

    @staticmethod
    def concat(*parts: SupplierOrders) -> SupplierOrders:
        merged = SupplierOrders(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                                  ("dc_id", "product_id", "quantity", "order_ordinal",
                                   "arrival_ordinal")))
        return merged.take(np.lexsort((merged.order_ordinal, merged.product_id, merged.dc_id)))


def _empty_table(name: str) -> pa.Table:
    return schema.carried_schema(name).empty_table()


@dataclass
class CarriedState:
    """Everything one day hands to the next (fact-tables.md §21)."""

    first_day: date
    store_on_hand: np.ndarray  # int64 (n_stores, n_products)
    store_rp: np.ndarray  # int64 (n_stores, n_products)
    store_in_transit: np.ndarray  # int64 (n_stores, n_products)
    dc_on_hand: np.ndarray  # int64 (n_dcs, n_products)
    dc_rp: np.ndarray  # int64 (n_dcs, n_products)
    dc_on_order: np.ndarray  # int64 (n_dcs, n_products)
    truck_available: np.ndarray  # int64 (n_trucks,) µs; meaningful for DC_FLEET and POOL
    legs: Legs = field(default_factory=Legs.empty)
    leg_lines: LegLines = field(default_factory=LegLines.empty)
    supplier_orders: SupplierOrders = field(default_factory=SupplierOrders.empty)
    campaigns: pa.Table = field(default_factory=lambda: _empty_table("gen_state_campaigns"))
    pending_returns: pa.Table = field(
        default_factory=lambda: _empty_table("gen_state_pending_returns"))

    def copy(self) -> CarriedState:
        """A copy whose arrays can be changed without touching this state."""
        return replace(self, **{name: getattr(self, name).copy() for name in (
            "store_on_hand", "store_in_transit", "dc_on_hand", "dc_on_order",
            "truck_available")})


def initial_state(first_day: date, store_on_hand: np.ndarray, store_rp: np.ndarray,
                  dc_on_hand: np.ndarray, dc_rp: np.ndarray, n_trucks: int) -> CarriedState:
    return CarriedState(
        first_day=first_day,
        store_on_hand=store_on_hand, store_rp=store_rp,
        store_in_transit=np.zeros_like(store_on_hand),
        dc_on_hand=dc_on_hand, dc_rp=dc_rp, dc_on_order=np.zeros_like(dc_on_hand),
        truck_available=np.full(n_trucks, day_start_us(first_day), dtype=np.int64),
    )


def _node_table(node_type: str, node_ids: np.ndarray, node_units: np.ndarray,
                rows: np.ndarray, cols: np.ndarray, values: dict[str, np.ndarray]
                ) -> dict[str, pa.Array]:
    n = len(rows)
    data: dict[str, pa.Array] = {
        schema.UNIT_COLUMN: pa.array(node_units[rows].astype(np.int16)),
        "node_type": pa.repeat(node_type, n),
        "node_id": pa.array(node_ids[rows]),
        "product_id": pa.array(cols + 1),
    }
    for name, arr in values.items():
        data[name] = pa.array(arr[rows, cols].astype(np.int32))
    return data


def inventory_rows(state: CarriedState, store_ids: np.ndarray, store_dc: np.ndarray,
                   dc_ids: np.ndarray, changed_store: np.ndarray | None,
                   changed_dc: np.ndarray | None) -> pa.Table:
    """``gen_state_inventory`` rows for the (node, product) pairs flagged as changed
    (all pairs when the masks are None); a node's unit is its DC."""
    parts = []
    for node_type, ids, units, changed, values in (
        ("STORE", store_ids, store_dc, changed_store,
         {"on_hand": state.store_on_hand, "in_transit": state.store_in_transit,
          "on_order": np.zeros_like(state.store_on_hand)}),
        ("DC", dc_ids, dc_ids, changed_dc,
         {"on_hand": state.dc_on_hand, "in_transit": np.zeros_like(state.dc_on_hand),
          "on_order": state.dc_on_order}),
    ):
        shape = values["on_hand"].shape
        mask = np.ones(shape, dtype=bool) if changed is None else changed
        rows, cols = np.nonzero(mask)
        parts.append(pa.table(_node_table(node_type, ids, units, rows, cols, values)))
    return pa.concat_tables(parts).cast(schema.arrow_schema("gen_state_inventory"))


def initial_inventory_rows(state: CarriedState, store_ids: np.ndarray, store_dc: np.ndarray,
                           dc_ids: np.ndarray) -> pa.Table:
    parts = []
    for node_type, ids, units, on_hand, rp in (
            ("STORE", store_ids, store_dc, state.store_on_hand, state.store_rp),
            ("DC", dc_ids, dc_ids, state.dc_on_hand, state.dc_rp)):
        rows, cols = np.nonzero(np.ones(on_hand.shape, dtype=bool))
        parts.append(pa.table(_node_table(node_type, ids, units, rows, cols,
                                          {"quantity": on_hand, "reorder_point": rp})))
    return pa.concat_tables(parts).cast(schema.arrow_schema("gen_initial_inventory"))


def legs_table(legs: Legs) -> pa.Table:
    data = {
        schema.UNIT_COLUMN: pa.array(legs.dc_id.astype(np.int16)),
        "shipment_id": pa.array(legs.shipment_id.astype(object), pa.string()),
        "truck_id": pa.array(legs.truck_id),
        "dc_id": pa.array(legs.dc_id),
        "store_id": pa.array(legs.store_id),
        "refrigerated": pa.array(legs.refrigerated),
        "unit_count": pa.array(legs.unit_count.astype(np.int32)),
    }
    for pos, name in enumerate(LEG_TIME_COLUMNS):
        data[name] = ts_array(legs.times[:, pos])
    return pa.table(data).cast(schema.arrow_schema("gen_state_shipments"))


_DC_DIGITS = slice(11, 15)  # SHP + YYYYMMDD, then the dc_id's four digits
_DIGIT_WEIGHTS = np.array([1000, 100, 10, 1], dtype=np.int64)


def shipment_dc(shipment_id: np.ndarray) -> np.ndarray:
    """The dc_id in SHP + YYYYMMDD + dc_id(4) + … shipment ids (int64 array)."""
    ids = np.asarray(shipment_id)
    if ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    if ids.dtype.kind == "U" and ids.dtype.itemsize // 4 >= _DC_DIGITS.stop:
        # A fixed-width unicode array is a matrix of code points: read the four digits in
        # place rather than building a string per id (called per unit on every open line).
        points = np.ascontiguousarray(ids).view(np.uint32).reshape(ids.size, -1)
        digits = points[:, _DC_DIGITS].astype(np.int64) - ord("0")
        if bool(((digits >= 0) & (digits <= 9)).all()):
            return digits @ _DIGIT_WEIGHTS
    ids = pa.array(ids.astype(object), pa.string())
    return pc.cast(pc.utf8_slice_codeunits(ids, 11, 15), pa.int64()).to_numpy(
        zero_copy_only=False).astype(np.int64)


def leg_lines_table(lines: LegLines) -> pa.Table:
    """Lines belong to the unit of their shipment's DC."""
    return pa.table({
        schema.UNIT_COLUMN: pa.array(shipment_dc(lines.shipment_id).astype(np.int16)),
        "shipment_id": pa.array(lines.shipment_id.astype(object), pa.string()),
        "product_id": pa.array(lines.product_id),
        "quantity": pa.array(lines.quantity.astype(np.int32)),
    }).cast(schema.arrow_schema("gen_state_shipment_lines"))


def trucks_table(truck_ids: np.ndarray, home_dc: np.ndarray, available: np.ndarray,
                 mask: np.ndarray) -> pa.Table:
    """Availability of the masked (DC_FLEET and POOL) trucks, each in its home DC's unit."""
    return pa.table({
        schema.UNIT_COLUMN: pa.array(home_dc[mask].astype(np.int16)),
        "truck_id": pa.array(truck_ids[mask]),
        "available_at": ts_array(available[mask]),
    }).cast(schema.arrow_schema("gen_state_trucks"))


def supplier_orders_table(orders: SupplierOrders) -> pa.Table:
    return pa.table({
        schema.UNIT_COLUMN: pa.array(orders.dc_id.astype(np.int16)),
        "dc_id": pa.array(orders.dc_id),
        "product_id": pa.array(orders.product_id),
        "quantity": pa.array(orders.quantity.astype(np.int32)),
        "order_day": date_array(orders.order_ordinal),
        "arrival_day": date_array(orders.arrival_ordinal),
    }).cast(schema.arrow_schema("gen_state_supplier_orders"))


def _ts_np(col: pa.ChunkedArray) -> np.ndarray:
    return col.cast(pa.int64()).to_numpy().astype(np.int64)


def _date_np(col: pa.ChunkedArray) -> np.ndarray:
    return col.cast(pa.int32()).to_numpy().astype(np.int64) + date(1970, 1, 1).toordinal()


def state_from_tables(first_day: date, tables: dict[str, pa.Table], n_stores: int,
                      n_dcs: int, n_products: int, truck_ids: np.ndarray) -> CarriedState:
    """Rebuild the state from the ``gen_*`` tables (the inverse of the writers above)."""

    def dense(node_type: str, column: str, table: pa.Table, n_nodes: int) -> np.ndarray:
        out = np.zeros((n_nodes, n_products), dtype=np.int64)
        mask = (table.column("node_type").to_numpy(zero_copy_only=False) == node_type)
        node = table.column("node_id").to_numpy()[mask] - 1
        prod = table.column("product_id").to_numpy()[mask] - 1
        out[node, prod] = table.column(column).to_numpy()[mask]
        return out

    inv, init = tables["gen_state_inventory"], tables["gen_initial_inventory"]
    trucks = tables["gen_state_trucks"]
    available = np.zeros(len(truck_ids), dtype=np.int64)
    available[trucks.column("truck_id").to_numpy() - 1] = _ts_np(trucks.column("available_at"))
    sh = tables["gen_state_shipments"].sort_by("shipment_id")
    legs = Legs(
        shipment_id=sh.column("shipment_id").to_numpy(zero_copy_only=False).astype("U32")
        if sh.num_rows else np.zeros(0, dtype="U32"),
        truck_id=sh.column("truck_id").to_numpy().astype(np.int64),
        dc_id=sh.column("dc_id").to_numpy().astype(np.int64),
        store_id=sh.column("store_id").to_numpy().astype(np.int64),
        refrigerated=sh.column("refrigerated").to_numpy(zero_copy_only=False).astype(bool),
        unit_count=sh.column("unit_count").to_numpy().astype(np.int64),
        times=np.stack([_ts_np(sh.column(c)) for c in LEG_TIME_COLUMNS], axis=1)
        if sh.num_rows else np.zeros((0, 6), dtype=np.int64),
    )
    ln = tables["gen_state_shipment_lines"].sort_by([("shipment_id", "ascending"),
                                                     ("product_id", "ascending")])
    lines = LegLines(
        shipment_id=ln.column("shipment_id").to_numpy(zero_copy_only=False).astype("U32")
        if ln.num_rows else np.zeros(0, dtype="U32"),
        product_id=ln.column("product_id").to_numpy().astype(np.int64),
        quantity=ln.column("quantity").to_numpy().astype(np.int64),
    )
    so = tables["gen_state_supplier_orders"]
    orders = SupplierOrders(
        dc_id=so.column("dc_id").to_numpy().astype(np.int64),
        product_id=so.column("product_id").to_numpy().astype(np.int64),
        quantity=so.column("quantity").to_numpy().astype(np.int64),
        order_ordinal=_date_np(so.column("order_day")),
        arrival_ordinal=_date_np(so.column("arrival_day")),
    )
    orders = orders.take(np.lexsort((orders.order_ordinal, orders.product_id, orders.dc_id)))
    returns = tables["gen_state_pending_returns"].sort_by(PENDING_RETURN_ORDER)
    return CarriedState(
        first_day=first_day,
        store_on_hand=dense("STORE", "on_hand", inv, n_stores),
        store_rp=dense("STORE", "reorder_point", init, n_stores),
        store_in_transit=dense("STORE", "in_transit", inv, n_stores),
        dc_on_hand=dense("DC", "on_hand", inv, n_dcs),
        dc_rp=dense("DC", "reorder_point", init, n_dcs),
        dc_on_order=dense("DC", "on_order", inv, n_dcs),
        truck_available=available,
        legs=legs,
        leg_lines=lines,
        supplier_orders=orders,
        campaigns=_carried(tables["gen_state_campaigns"].sort_by("campaign_id"),
                           "gen_state_campaigns"),
        pending_returns=_carried(returns, "gen_state_pending_returns"),
    )


def _carried(table: pa.Table, name: str) -> pa.Table:
    return table.select(schema.carried_schema(name).names).cast(schema.carried_schema(name))


def merge_pending_returns(*parts: pa.Table) -> pa.Table:
    """Pending-return tables (e.g. those still due plus the day's new ones) as one, in key
    order."""
    target = schema.carried_schema("gen_state_pending_returns")
    return pa.concat_tables([p.cast(target) for p in parts]).sort_by(PENDING_RETURN_ORDER)
