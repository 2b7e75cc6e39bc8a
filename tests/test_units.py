"""Rules that make every DC a self-contained unit (sharding.md §2–§3): truck tiers under home
DCs, per-store customer-pool weights and unit-day ids."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from types import SimpleNamespace

import numpy as np
import pytest

from online_fixtures import day_context, master_data
from retail_datagen import domain
from retail_datagen.errors import GenerationError
from retail_datagen.generators.fact_generators.data_loading_mixin import TruckColumns
from retail_datagen.generators.fact_generators.inventory_mixin import (
    build_store_pools,
    per_store_cumulative,
)
from retail_datagen.generators.fact_generators.logistics_mixin import (
    LogisticsMixin,
    truck_tiers,
)
from retail_datagen.generators.fact_generators.utils_mixin import US_PER_HOUR
from retail_datagen.ids import dsid_unit, unit_day_ids

DAY = date(2024, 11, 27)
FLEET, POOL, SUPPLIER = (domain.TRUCK_TYPES.index(t) for t in ("DC_FLEET", "POOL", "SUPPLIER"))

# Trucks 1..10: (type, home DC, refrigerated). DC 1 owns 1–4 and 9, DC 2 owns 5–8.
TRUCKS = (
    (FLEET, 1, True), (FLEET, 1, False), (POOL, 1, True), (POOL, 1, False),
    (FLEET, 2, True), (FLEET, 2, False), (POOL, 2, True), (POOL, 2, False),
    (FLEET, 1, True), (SUPPLIER, 0, True),
)


def _trucks() -> TruckColumns:
    n = len(TRUCKS)
    return TruckColumns(
        truck_id=np.arange(1, n + 1, dtype=np.int64),
        refrigerated=np.array([t[2] for t in TRUCKS]),
        type_code=np.array([t[0] for t in TRUCKS], dtype=np.int8),
        dc_id=np.array([t[1] for t in TRUCKS], dtype=np.int64),
        capacity=np.full(n, 15_000, dtype=np.int64),
    )


@pytest.fixture
def master():
    return replace(master_data(), trucks=_trucks())


# --- truck tiers --------------------------------------------------------------------------------


@pytest.mark.parametrize(("dc", "refrigerated", "expected"), [
    # Refrigerated legs: own refrigerated DC_FLEET (1), then the DC's refrigerated POOL (2).
    (1, True, [1, 0, 2, 0, 0, 0, 0, 0, 1, 0]),
    (2, True, [0, 0, 0, 0, 1, 0, 2, 0, 0, 0]),
    # Ambient legs: own ambient fleet (1), ambient POOL of the DC (2), own refrigerated fleet
    # (3), refrigerated POOL of the DC (4). Trucks of the other DC and SUPPLIER never serve.
    (1, False, [3, 1, 4, 2, 0, 0, 0, 0, 3, 0]),
    (2, False, [0, 0, 0, 0, 3, 1, 4, 2, 0, 0]),
])
def test_tiers_use_only_the_legs_dc(master, dc, refrigerated, expected):
    assert truck_tiers(master, dc, refrigerated).tolist() == expected


class _Host(LogisticsMixin):
    def __init__(self, master) -> None:
        self._seed = 11
        self._master = master
        self.config = SimpleNamespace(volume=SimpleNamespace(truck_capacity=15_000))


def _assign(master, dc, refrigerated, available):
    ctx = day_context(DAY)
    dc = np.asarray(dc, dtype=np.int64)
    n = len(dc)
    store = np.where(dc == 1, 1, 3).astype(np.int64)
    leg_no = np.array([int((dc[: i + 1] == d).sum()) for i, d in enumerate(dc)], np.int64)
    return _Host(master)._assign_trucks(ctx, dc, store, leg_no, np.asarray(refrigerated),
                                        np.full(n, 1_000, dtype=np.int64), available)


def test_tie_break_prefers_the_lower_tier_then_the_lower_truck_id(master):
    start = day_context(DAY).day_start_us
    available = np.full(len(TRUCKS), start, dtype=np.int64)
    # All trucks free: a refrigerated leg of DC 1 takes its tier-1 truck with the lowest id.
    chosen, _ = _assign(master, [1], [True], available.copy())
    assert chosen.tolist() == [1]
    # Ambient leg of DC 1: tier 1 is truck 2, even though trucks 1, 3, 4, 9 are as free.
    chosen, _ = _assign(master, [1], [False], available.copy())
    assert chosen.tolist() == [2]
    # Three refrigerated legs of DC 1: trucks 1 and 9 (tier 1, by id), then its POOL truck 3.
    chosen, times = _assign(master, [1, 1, 1], [True, True, True], available.copy())
    assert chosen.tolist() == [1, 9, 3]
    assert (np.diff(times[:, 0]) == 0).all()


def test_earlier_departure_beats_the_tier(master):
    start = day_context(DAY).day_start_us
    available = np.full(len(TRUCKS), start, dtype=np.int64)
    # DC 2's own ambient truck 6 is busy until day + 2; its ambient POOL truck 8 leaves first.
    available[5] = start + 48 * US_PER_HOUR
    chosen, _ = _assign(master, [2], [False], available.copy())
    assert chosen.tolist() == [8]
    # With truck 8 busy too, the refrigerated fleet truck 5 (tier 3) serves the ambient leg.
    available[7] = start + 48 * US_PER_HOUR
    chosen, _ = _assign(master, [2], [False], available.copy())
    assert chosen.tolist() == [5]


def test_legs_of_one_dc_never_move_the_trucks_of_another(master):
    start = day_context(DAY).day_start_us
    available = np.full(len(TRUCKS), start, dtype=np.int64)
    alone, alone_times = _assign(master, [2, 2], [True, False], available.copy())
    # The same DC 2 legs behind a busy DC 1 get the same trucks and times.
    mixed, mixed_times = _assign(master, [1, 1, 1, 2, 2], [True, True, True, True, False],
                                 available.copy())
    assert mixed[3:].tolist() == alone.tolist()
    np.testing.assert_array_equal(mixed_times[3:], alone_times)
    assert set(mixed[:3].tolist()) <= {1, 3, 9}


def test_a_dc_without_a_truck_of_the_class_is_an_error(master):
    trucks = master.trucks
    only_dc1 = replace(master, trucks=replace(trucks, dc_id=np.where(trucks.dc_id == 2, 1,
                                                                     trucks.dc_id)))
    start = day_context(DAY).day_start_us
    with pytest.raises(GenerationError, match="DC 2"):
        _assign(only_dc1, [2], [True], np.full(len(TRUCKS), start, dtype=np.int64))


# --- customer-pool weights ----------------------------------------------------------------------


def test_pool_weights_are_normalised_per_store():
    weights = np.array([3.0, 1.0, 2.0, 5.0, 0.5, 0.25])
    offsets = np.array([0, 3, 6])
    got = per_store_cumulative(weights, offsets)
    for lo, hi in ((0, 3), (3, 6)):
        p = weights[lo:hi]
        np.testing.assert_array_equal(got[lo:hi], np.cumsum(p) / np.sum(p))


def test_a_stores_pool_does_not_depend_on_other_stores():
    mine = np.array([0.1, 0.7, 0.2, 0.3, 0.9])
    base = per_store_cumulative(mine, np.array([0, 5]))
    # Huge weights before it would round a network-wide cumsum; per store they cannot.
    for before in (np.array([1e12, 3e15]), np.array([1.0]), np.zeros(0)):
        weights = np.concatenate([before, mine])
        offsets = np.array([0, before.size, before.size + mine.size])
        if before.size == 0:
            offsets = np.array([0, mine.size])
        got = per_store_cumulative(weights, offsets)[before.size:]
        np.testing.assert_array_equal(got, base)
    # The difference-of-one-cumsum form this replaces is not independent.
    weights = np.concatenate([[1e12, 3e15], mine])
    cum = np.cumsum(weights)
    old = (cum[2:] - cum[1]) / (cum[-1] - cum[1])
    assert not np.array_equal(old, base)


def test_store_pools_use_the_per_store_form():
    master = master_data()
    pools = build_store_pools(master)
    assert pools.offsets[-1] == pools.cum_weight.size
    for i in range(len(master.stores.store_id)):
        lo, hi = int(pools.offsets[i]), int(pools.offsets[i + 1])
        cum = pools.cum_weight[lo:hi]
        assert hi > lo and (np.diff(cum) > 0).all() and abs(cum[-1] - 1.0) < 1e-12


# --- unit-day ids -------------------------------------------------------------------------------


def test_unit_day_ids_count_within_each_unit():
    units = np.array([3, 0, 3, 12, 0, 3])
    ids = unit_day_ids(DAY, units)
    base = 20241127 * 10**11
    assert ids.tolist() == [base + 3 * 10**8 + 1, base + 1, base + 3 * 10**8 + 2,
                            base + 12 * 10**8 + 1, base + 2, base + 3 * 10**8 + 3]
    assert dsid_unit(ids).tolist() == units.tolist()
    assert unit_day_ids(DAY, np.zeros(0, dtype=np.int64)).size == 0


def test_unit_day_ids_increase_with_unit_within_a_day():
    ids = unit_day_ids(DAY, np.array([1, 1, 2, 999]))
    assert (np.diff(ids) > 0).all()
    assert int(unit_day_ids(date(2024, 11, 28), np.array([0]))[0]) > int(ids.max())


def test_unit_day_capacity_is_enforced(monkeypatch):
    from retail_datagen import ids

    monkeypatch.setattr(ids, "DSID_MAX_ROWS", 3)
    assert unit_day_ids(DAY, np.array([1, 1, 1, 2, 2, 2])).size == 6
    with pytest.raises(GenerationError, match="unit-day"):
        unit_day_ids(DAY, np.array([1, 1, 1, 1, 2]))
