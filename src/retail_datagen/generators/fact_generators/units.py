"""Units of the simulation (sharding.md §1, §4): what each unit sees and what it carries.

DC unit u (u = 1..R) is DC u, the stores whose ``dc_id`` is u and the DC_FLEET and POOL trucks
homed at u; the network unit 0 holds marketing only. A :class:`UnitView` restricts the static
inputs to one unit (dimensions of other units removed; geographies, customers and products
whole) and maps the unit's local row indices to network ids. ``split_state`` carves the unit
states out of a network :class:`~.state.CarriedState` and ``merge_states`` puts them back, so
that a network run and a run unit by unit can hand the same state to the next day.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pyarrow as pa

from retail_datagen import domain
from retail_datagen.generators.fact_generators.data_loading_mixin import (
    MasterData,
    StoreColumns,
    StorePools,
)
from retail_datagen.generators.fact_generators.state import (
    CarriedState,
    LegLines,
    Legs,
    SupplierOrders,
    merge_pending_returns,
    shipment_dc,
)

#: The unit of marketing, the only domain that touches no store, DC or stock.
NETWORK_UNIT = 0

_SUPPLIER = domain.TRUCK_TYPES.index("SUPPLIER")
_STORE_ARRAYS = ("store_on_hand", "store_rp", "store_in_transit")
_DC_ARRAYS = ("dc_on_hand", "dc_rp", "dc_on_order")


def _take_rows(columns, idx: np.ndarray):
    """A column set (frozen dataclass of equal-length arrays) restricted to rows ``idx``."""
    return type(columns)(**{f.name: getattr(columns, f.name)[idx] for f in fields(columns)})


def _pools_of(pools: StorePools, store_idx: np.ndarray) -> StorePools:
    """The pool rows of the stores ``store_idx``, in that order; classes stay whole."""
    starts, ends = pools.offsets[store_idx], pools.offsets[store_idx + 1]
    sizes = ends - starts
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    entries = np.repeat(starts - offsets[:-1], sizes) + np.arange(offsets[-1], dtype=np.int64)
    return replace(pools, offsets=offsets, class_id=pools.class_id[entries],
                   cum_weight=pools.cum_weight[entries])


@dataclass(frozen=True)
class UnitView:
    """The static inputs of one unit.

    Local row i of ``master.stores`` is network store index ``store_idx[i]`` (store id
    ``store_idx[i] + 1``); likewise ``dc_idx`` and ``truck_idx``. The trucks of a DC unit are
    those homed at its DC and every SUPPLIER truck (the supplier round-robin of sharding.md §2.2
    reads the whole supplier fleet), in truck_id order; a unit state's ``truck_available`` has
    one entry per such truck. ``customer_idx`` are the customers whose primary store is one of
    the unit's (c_u of sharding.md §2.3), ascending.
    """

    unit_id: int
    master: MasterData
    pools: StorePools
    store_idx: np.ndarray  # int64 (n_local_stores,) ascending
    dc_idx: np.ndarray  # int64 (0 or 1,)
    truck_idx: np.ndarray  # int64 (n_local_trucks,) ascending
    customer_idx: np.ndarray  # int64 ascending
    _local: dict[str, np.ndarray]  # "store"/"dc"/"truck": network id → local index, or -1

    @property
    def store_ids(self) -> np.ndarray:
        return self.master.stores.store_id

    @property
    def dc_ids(self) -> np.ndarray:
        return self.master.dcs.dc_id

    @property
    def truck_ids(self) -> np.ndarray:
        return self.master.trucks.truck_id

    @property
    def n_stores(self) -> int:
        return int(self.store_idx.shape[0])

    @property
    def homed_trucks(self) -> np.ndarray:
        """bool per local truck: homed at the unit's DC (the trucks whose state it owns)."""
        return self.master.trucks.type_code != _SUPPLIER

    def local_store_index(self, store_ids: np.ndarray) -> np.ndarray:
        """The local index of each network store id; -1 for a store of another unit."""
        return self._local["store"][np.asarray(store_ids, dtype=np.int64)]

    def local_dc_index(self, dc_ids: np.ndarray) -> np.ndarray:
        """The local index of each network dc_id; -1 for another unit's DC."""
        return self._local["dc"][np.asarray(dc_ids, dtype=np.int64)]

    def local_truck_index(self, truck_ids: np.ndarray) -> np.ndarray:
        """The local index of each network truck_id; -1 for a truck the unit does not see."""
        return self._local["truck"][np.asarray(truck_ids, dtype=np.int64)]


def _id_to_local(n_network: int, idx: np.ndarray) -> np.ndarray:
    lookup = np.full(n_network + 1, -1, dtype=np.int64)
    lookup[idx + 1] = np.arange(len(idx), dtype=np.int64)
    return lookup


def store_units_by_id(stores: StoreColumns) -> np.ndarray:
    """The DC unit of each store id s at row s − 1 (0 for ids not among ``stores``), so that
    code keyed by network store ids runs unchanged on a unit's stores."""
    # At least one entry: rows without a store still index it (and discard the value).
    out = np.zeros(max(1, int(stores.store_id.max(initial=0))), dtype=np.int64)
    out[stores.store_id - 1] = stores.dc_id
    return out


def customer_units(master: MasterData) -> np.ndarray:
    """The DC unit of every customer: the ``dc_id`` of its primary store (int64)."""
    return master.stores.dc_id[master.customers.primary_store_id - 1]


def unit_view(master: MasterData, pools: StorePools, unit_id: int,
              customer_unit: np.ndarray | None = None) -> UnitView:
    """The view of unit ``unit_id`` (0 = network unit, else a dc_id).

    ``customer_unit`` (``customer_units(master)``) may be passed to build many views at the
    cost of one.
    """
    stores, trucks = master.stores, master.trucks
    if unit_id == NETWORK_UNIT:
        none = np.zeros(0, dtype=np.int64)
        store_idx, dc_idx, truck_idx, customer_idx = none, none, none, none
    else:
        store_idx = np.flatnonzero(stores.dc_id == unit_id)
        dc_idx = np.flatnonzero(master.dcs.dc_id == unit_id)
        supplier = trucks.type_code == _SUPPLIER
        truck_idx = np.flatnonzero(((trucks.dc_id == unit_id) & ~supplier) | supplier)
        if customer_unit is None:
            customer_unit = customer_units(master)
        customer_idx = np.flatnonzero(customer_unit == unit_id)
    return UnitView(
        unit_id=unit_id,
        master=replace(master, stores=_take_rows(stores, store_idx),
                       dcs=_take_rows(master.dcs, dc_idx), trucks=_take_rows(trucks, truck_idx)),
        pools=_pools_of(pools, store_idx),
        store_idx=store_idx.astype(np.int64), dc_idx=dc_idx.astype(np.int64),
        truck_idx=truck_idx.astype(np.int64), customer_idx=customer_idx.astype(np.int64),
        _local={"store": _id_to_local(len(stores.store_id), store_idx),
                "dc": _id_to_local(len(master.dcs.dc_id), dc_idx),
                "truck": _id_to_local(len(trucks.truck_id), truck_idx)},
    )


def unit_views(master: MasterData, pools: StorePools) -> dict[int, UnitView]:
    """The views of every unit: 0, then each DC in dc_id order."""
    units = [NETWORK_UNIT, *master.dcs.dc_id.tolist()]
    customer_unit = customer_units(master)
    return {u: unit_view(master, pools, u, customer_unit) for u in units}


def unit_order(master: MasterData) -> list[int]:
    """Every unit id, largest first: by store count descending, then unit_id (sharding.md §1).

    The network unit counts as holding no stores.
    """
    units = np.concatenate([[NETWORK_UNIT], master.dcs.dc_id]).astype(np.int64)
    counts = np.concatenate([[0], np.bincount(master.stores.dc_id, minlength=units.max() + 1)
                             [master.dcs.dc_id]])
    return units[np.lexsort((units, -counts))].tolist()


# -- state ------------------------------------------------------------------------------------
def unit_state(state: CarriedState, view: UnitView, store_dc: np.ndarray) -> CarriedState:
    """The part of a network state that unit ``view.unit_id`` owns (sharding.md §4).

    Args:
        state: a network state.
        view: the unit's view.
        store_dc: the network's ``stores.dc_id`` (the unit of a pending return's store).
    """
    u = view.unit_id
    returns = state.pending_returns
    return_unit = store_dc[returns.column("store_id").to_numpy() - 1]
    campaigns = state.campaigns
    return replace(
        state,
        **{name: getattr(state, name)[view.store_idx] for name in _STORE_ARRAYS},
        **{name: getattr(state, name)[view.dc_idx] for name in _DC_ARRAYS},
        truck_available=state.truck_available[view.truck_idx],
        legs=state.legs.take(np.flatnonzero(state.legs.dc_id == u)),
        leg_lines=state.leg_lines.take(
            np.flatnonzero(shipment_dc(state.leg_lines.shipment_id) == u)),
        supplier_orders=state.supplier_orders.take(
            np.flatnonzero(state.supplier_orders.dc_id == u)),
        campaigns=campaigns if u == NETWORK_UNIT else campaigns.slice(0, 0),
        pending_returns=returns.filter(pa.array(return_unit == u)),
    )


def split_state(state: CarriedState, views: dict[int, UnitView],
                store_dc: np.ndarray) -> dict[int, CarriedState]:
    """The state of every unit of ``views``, carved out of a network state."""
    return {u: unit_state(state, view, store_dc) for u, view in views.items()}


def merge_states(states: dict[int, CarriedState], views: dict[int, UnitView],
                 master: MasterData) -> CarriedState:
    """The network state that the unit states make together (inverse of ``split_state``).

    Every store, DC and homed truck belongs to exactly one unit; SUPPLIER trucks carry no
    availability and get 0, as in a state reloaded from the ``gen_state_*`` tables. Arrays of a
    unit missing from ``states`` stay 0.
    """
    n_products = len(master.products.product_id)
    sizes = {"store": len(master.stores.store_id), "dc": len(master.dcs.dc_id)}
    any_state = next(iter(states.values()))
    arrays = {name: np.zeros((sizes[name.split("_")[0]], n_products), dtype=np.int64)
              for name in (*_STORE_ARRAYS, *_DC_ARRAYS)}
    available = np.zeros(len(master.trucks.truck_id), dtype=np.int64)
    for u, part in states.items():
        view = views[u]
        for name in _STORE_ARRAYS:
            arrays[name][view.store_idx] = getattr(part, name)
        for name in _DC_ARRAYS:
            arrays[name][view.dc_idx] = getattr(part, name)
        homed = view.homed_trucks
        available[view.truck_idx[homed]] = part.truck_available[homed]
    parts = list(states.values())
    # Campaigns are the network unit's only state.
    campaigns = (states[NETWORK_UNIT].campaigns if NETWORK_UNIT in states
                 else any_state.campaigns.slice(0, 0))
    return CarriedState(
        first_day=any_state.first_day,
        **arrays,
        truck_available=available,
        legs=Legs.concat(*(p.legs for p in parts)),
        leg_lines=LegLines.concat(*(p.leg_lines for p in parts)),
        supplier_orders=SupplierOrders.concat(*(p.supplier_orders for p in parts)),
        campaigns=campaigns,
        pending_returns=merge_pending_returns(*(p.pending_returns for p in parts)),
    )


__all__ = [
    "NETWORK_UNIT", "UnitView", "customer_units", "merge_states", "split_state", "unit_order", "unit_state",
    "store_units_by_id", "unit_view", "unit_views",
]
