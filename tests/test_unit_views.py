"""Unit-scoped static inputs and state (sharding.md §1, §4): who belongs to which unit, the
order units start in, and a network state carved into unit states and merged back exactly."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from conftest import TEST_WEEK, config_in, generate
from online_fixtures import master_data
from retail_datagen import domain
from retail_datagen.db import schema
from retail_datagen.generators.fact_generators import FactDataGenerator
from retail_datagen.generators.fact_generators.data_loading_mixin import DCColumns
from retail_datagen.generators.fact_generators.inventory_mixin import cycle_count_events
from retail_datagen.generators.fact_generators.logistics_mixin import truck_tiers
from retail_datagen.generators.fact_generators.state import (
    initial_inventory_rows,
    inventory_rows,
    leg_lines_table,
    legs_table,
    shipment_dc,
    supplier_orders_table,
    trucks_table,
)
from retail_datagen.generators.fact_generators.units import (
    NETWORK_UNIT,
    merge_states,
    split_state,
    unit_order,
    unit_views,
)
from retail_datagen.generators.fact_generators.utils_mixin import day_start_us

SUPPLIER = domain.TRUCK_TYPES.index("SUPPLIER")


# Lean DC stock: DCs order from suppliers within the week, so every kind of carried state
# (legs, leg lines, supplier orders, pending returns) is present at its end.
LEAN_DCS = {"dc_initial_inventory_min": 0, "dc_initial_inventory_max": 400}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The test week's master data, pools, state tables and reloaded state after its last day."""
    folder = tmp_path_factory.mktemp("units")
    generate(config_in(folder, volume=LEAN_DCS), *TEST_WEEK)
    gen = FactDataGenerator(config_in(folder, volume=LEAN_DCS))
    try:
        gen.load_master_data()
        tables = gen._read_generator_tables()
        state = gen._load_state(TEST_WEEK[0])
        return gen._master, gen._pools, tables, state
    finally:
        gen.close()


def _assert_states_equal(a, b) -> None:
    assert a.first_day == b.first_day
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
            assert x.shape == y.shape, f.name
        elif isinstance(x, pa.Table):
            assert x.equals(y), f.name
        elif f.name != "first_day":
            for g in fields(x):
                np.testing.assert_array_equal(getattr(x, g.name), getattr(y, g.name),
                                              err_msg=f"{f.name}.{g.name}")


# --- membership and order --------------------------------------------------------------------


def test_every_store_dc_and_homed_truck_is_in_exactly_one_unit(loaded):
    master, _, _, _ = loaded
    views = unit_views(master, loaded[1])
    assert list(views) == [NETWORK_UNIT, *master.dcs.dc_id.tolist()]
    stores = np.concatenate([v.store_ids for v in views.values()])
    assert sorted(stores.tolist()) == master.stores.store_id.tolist()
    dcs = np.concatenate([v.dc_ids for v in views.values()])
    assert sorted(dcs.tolist()) == master.dcs.dc_id.tolist()
    supplier = master.trucks.type_code == SUPPLIER
    homed = np.concatenate([v.truck_ids[v.homed_trucks] for v in views.values()])
    assert sorted(homed.tolist()) == master.trucks.truck_id[~supplier].tolist()
    network = views[NETWORK_UNIT]
    assert network.n_stores == len(network.dc_ids) == len(network.truck_ids) == 0
    for u, view in views.items():
        if u == NETWORK_UNIT:
            continue
        assert view.dc_ids.tolist() == [u]
        assert (view.master.stores.dc_id == u).all()
        assert (view.master.trucks.dc_id[view.homed_trucks] == u).all()
        # Every DC unit sees the whole supplier fleet (the supplier round-robin reads it).
        np.testing.assert_array_equal(view.truck_ids[~view.homed_trucks],
                                      master.trucks.truck_id[supplier])
        assert np.all(np.diff(view.store_ids) > 0)
        assert np.all(np.diff(view.truck_ids) > 0)


def test_local_indices_map_to_network_ids_and_back(loaded):
    master, pools, _, _ = loaded
    for u, view in unit_views(master, pools).items():
        np.testing.assert_array_equal(view.store_ids, view.store_idx + 1)
        np.testing.assert_array_equal(view.truck_ids, view.truck_idx + 1)
        np.testing.assert_array_equal(view.local_store_index(view.store_ids),
                                      np.arange(view.n_stores))
        foreign = np.setdiff1d(master.stores.store_id, view.store_ids)
        assert (view.local_store_index(foreign) == -1).all(), u
        np.testing.assert_array_equal(view.local_dc_index(master.dcs.dc_id),
                                      np.where(master.dcs.dc_id == u, 0, -1))
        np.testing.assert_array_equal(view.local_truck_index(view.truck_ids),
                                      np.arange(len(view.truck_ids)))
        unseen = np.setdiff1d(master.trucks.truck_id, view.truck_ids)
        assert (view.local_truck_index(unseen) == -1).all(), u
        # Unchanged inputs are the network's own arrays, not copies.
        assert view.master.products is master.products
        assert view.master.customers is master.customers


def test_unit_customers_are_those_whose_primary_store_is_in_the_unit(loaded):
    master, pools, _, _ = loaded
    views = unit_views(master, pools)
    seen = np.concatenate([v.customer_idx for v in views.values()])
    assert sorted(seen.tolist()) == list(range(len(master.customers.customer_id)))
    for view in views.values():
        primary = master.customers.primary_store_id[view.customer_idx]
        assert (view.local_store_index(primary) >= 0).all()
        assert np.all(np.diff(view.customer_idx) > 0)


def test_unit_pools_are_the_network_pools_of_the_units_stores(loaded):
    master, pools, _, _ = loaded
    for view in unit_views(master, pools).values():
        assert view.pools.offsets.shape == (view.n_stores + 1,)
        for local, store in enumerate(view.store_idx.tolist()):
            a, b = pools.offsets[store], pools.offsets[store + 1]
            c, d = view.pools.offsets[local], view.pools.offsets[local + 1]
            np.testing.assert_array_equal(view.pools.class_id[c:d], pools.class_id[a:b])
            np.testing.assert_array_equal(view.pools.cum_weight[c:d], pools.cum_weight[a:b])
        assert view.pools.class_members is pools.class_members


def test_units_start_largest_first_then_by_unit_id():
    master = master_data()
    # Five DCs: stores per DC 2, 0, 3, 2, 0 (DC 2 and DC 5 hold none).
    dc_of_store = np.array([1, 3, 4, 3, 1, 3, 4], dtype=np.int64)
    n = len(dc_of_store)
    stores = replace(master.stores, **{f.name: getattr(master.stores, f.name)[np.arange(n) % len(
        master.stores.store_id)] for f in fields(master.stores)})
    stores = replace(stores, store_id=np.arange(1, n + 1, dtype=np.int64), dc_id=dc_of_store)
    five = replace(master, stores=stores,
                   dcs=DCColumns(dc_id=np.arange(1, 6, dtype=np.int64),
                                 geography_id=np.ones(5, dtype=np.int64)))
    assert unit_order(five) == [3, 1, 4, NETWORK_UNIT, 2, 5]


def test_unit_order_of_the_test_config(loaded):
    master = loaded[0]
    counts = {u: int((master.stores.dc_id == u).sum()) for u in master.dcs.dc_id.tolist()}
    order = unit_order(master)
    assert sorted(order) == [NETWORK_UNIT, *sorted(counts)]
    sizes = [counts.get(u, 0) for u in order]
    assert sizes == sorted(sizes, reverse=True)


# --- state -------------------------------------------------------------------------------------


def test_split_then_merge_gives_back_the_generated_state(loaded):
    master, pools, _, state = loaded
    views = unit_views(master, pools)
    units = split_state(state, views, master.stores.dc_id)
    # The week leaves legs, lines, supplier orders and pending returns open: the round trip
    # below moves real rows, not empty tables.
    assert len(state.legs) and len(state.leg_lines) and len(state.supplier_orders)
    assert state.pending_returns.num_rows and state.campaigns.num_rows
    _assert_states_equal(merge_states(units, views, master), state)


def test_unit_states_hold_exactly_the_state_rows_of_their_unit(loaded):
    """The carved state of unit u written out gives the gen_state_* rows with unit_id = u."""
    master, pools, tables, state = loaded
    views = unit_views(master, pools)
    store_dc = master.stores.dc_id
    for u, part in split_state(state, views, store_dc).items():
        view = views[u]

        def rows_of(name: str, unit: int = u) -> pa.Table:
            table = tables[name]
            mask = pc.equal(table.column(schema.UNIT_COLUMN), unit)
            keys = [(c, "ascending") for c in schema.primary_key(name)]
            return table.filter(mask).sort_by(keys)

        def same(name: str, written: pa.Table, unit: int = u) -> None:
            keys = [(c, "ascending") for c in schema.primary_key(name)]
            expected = rows_of(name, unit).select(written.schema.names).cast(written.schema)
            assert written.sort_by(keys).equals(expected), (unit, name)

        same("gen_state_inventory",
             inventory_rows(part, view.store_ids, view.master.stores.dc_id, view.dc_ids,
                            None, None))
        # The carried state keeps the reorder points of the initial inventory, not its
        # quantities.
        same("gen_initial_inventory",
             initial_inventory_rows(part, view.store_ids, view.master.stores.dc_id,
                                    view.dc_ids).drop_columns(["quantity"]))
        same("gen_state_shipments", legs_table(part.legs))
        same("gen_state_shipment_lines", leg_lines_table(part.leg_lines))
        same("gen_state_supplier_orders", supplier_orders_table(part.supplier_orders))
        same("gen_state_trucks", trucks_table(view.truck_ids, view.master.trucks.dc_id,
                                              part.truck_available, view.homed_trucks))
        returns = part.pending_returns
        assert returns.num_rows == rows_of("gen_state_pending_returns").num_rows, u
        assert (store_dc[returns.column("store_id").to_numpy() - 1] == u).all()
        assert part.campaigns.num_rows == rows_of("gen_state_campaigns").num_rows, u


# --- logistics on a view -------------------------------------------------------------------


@pytest.mark.parametrize("refrigerated", [True, False])
def test_truck_tiers_on_a_view_are_the_network_tiers_of_the_units_trucks(loaded, refrigerated):
    master, pools, _, _ = loaded
    for u, view in unit_views(master, pools).items():
        if u == NETWORK_UNIT:
            continue
        network = truck_tiers(master, u, refrigerated)
        local = truck_tiers(view.master, u, refrigerated)
        np.testing.assert_array_equal(local, network[view.truck_idx])
        # No candidate of the unit's legs is left out of its view.
        assert network.sum() == local.sum() > 0


# --- network-wide streams drawn in a unit ---------------------------------------------------


@pytest.mark.parametrize("day", [date(2024, 11, 25), date(2024, 11, 29), date(2024, 3, 5)])
def test_a_units_cycle_counts_are_the_network_counts_at_its_stores(loaded, day):
    master, pools, _, _ = loaded
    n_stores = len(master.stores.store_id)
    ctx = SimpleNamespace(day=day, closed=False, day_start_us=day_start_us(day),
                          available=np.arange(len(master.products.product_id)))
    network = cycle_count_events(7, ctx, master.stores.store_id)
    assert len(network)
    seen = 0
    for u, view in unit_views(master, pools).items():
        mine = cycle_count_events(7, ctx, view.store_ids, n_stores)
        expected = network.take(np.flatnonzero(np.isin(network.node_idx, view.store_idx)))
        np.testing.assert_array_equal(view.store_idx[mine.node_idx], expected.node_idx, str(u))
        for name in ("product_idx", "ts_us", "txn_type", "delta"):
            np.testing.assert_array_equal(getattr(mine, name), getattr(expected, name), name)
        seen += len(mine)
    assert seen == len(network)


def test_cycle_counts_split_over_interleaved_units_of_a_larger_network():
    day = date(2024, 5, 14)
    ctx = SimpleNamespace(day=day, closed=False, day_start_us=day_start_us(day),
                          available=np.arange(40))
    ids = np.arange(1, 96, dtype=np.int64)
    network = cycle_count_events(3, ctx, ids)
    assert len(np.unique(network.node_idx)) == 9  # k = 95 // 10
    parts = []
    for unit in range(3):
        unit_ids = ids[ids % 3 == unit]
        mine = cycle_count_events(3, ctx, unit_ids, len(ids))
        parts.append(np.stack([unit_ids[mine.node_idx] - 1, mine.product_idx, mine.delta]))
    merged = np.concatenate(parts, axis=1)
    merged = merged[:, np.lexsort(merged[::-1])]
    expected = np.stack([network.node_idx, network.product_idx, network.delta])
    np.testing.assert_array_equal(merged, expected[:, np.lexsort(expected[::-1])])


def test_shipment_dc_reads_the_dc_digits_of_any_id_layout() -> None:
    ids = np.array(["SHP20240304000700001", "SHP20240304123400002", "SHP20240304999900003"],
                   dtype="U32")
    expected = [7, 1234, 9999]
    assert shipment_dc(ids).tolist() == expected
    assert shipment_dc(ids[::2]).tolist() == expected[::2]  # a strided view
    assert shipment_dc(ids.astype(object)).tolist() == expected  # the Arrow path
    assert shipment_dc(ids[:0]).dtype == np.int64 and shipment_dc(ids[:0]).size == 0
    # Ids without four digits there go through the Arrow cast, which rejects them.
    with pytest.raises(pa.ArrowInvalid):
        shipment_dc(np.array(["SHP20240304"], dtype="U32"))
