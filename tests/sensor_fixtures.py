"""Small hand-built master data, days and visits for the sensor and marketing tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TypeVar

import numpy as np
import pyarrow as pa

from retail_datagen import domain
from retail_datagen.config.settings import create_test_config
from retail_datagen.generators.fact_generators.data_loading_mixin import (
    CustomerColumns,
    StoreColumns,
)
from retail_datagen.generators.fact_generators.day_types import DayContext, Visits
from retail_datagen.generators.fact_generators.marketing_mixin import MarketingMixin
from retail_datagen.generators.fact_generators.sensors_mixin import SensorsMixin
from retail_datagen.generators.fact_generators.store_ops_mixin import StoreOpsMixin
from retail_datagen.generators.fact_generators.utils_mixin import US_PER_HOUR, day_start_us
from retail_datagen.generators.fact_generators.zone_changes_mixin import ZoneChangesMixin

T = TypeVar("T")

#: (format, operating hours, daily_traffic_multiplier) of the test stores, store_id 1.. in order.
STORE_SPECS: tuple[tuple[str, str, float], ...] = (
    ("hypermarket", "24/7", 1.9),
    ("superstore", "6am-midnight", 1.2),
    ("standard", "8am-10pm", 1.0),
    ("neighborhood", "9am-9pm", 0.5),
    ("express", "8am-10pm", 0.8),
)
N_CUSTOMERS = 40


def make_stores(specs: tuple[tuple[str, str, float], ...] = STORE_SPECS) -> StoreColumns:
    n = len(specs)
    hours = [domain.OPEN_CLOSE_HOURS[h] for _, h, _ in specs]
    return StoreColumns(
        store_id=np.arange(1, n + 1, dtype=np.int64),
        geography_id=np.ones(n, dtype=np.int64),
        dc_id=np.ones(n, dtype=np.int64),
        tax_ppm=np.full(n, 60_000, dtype=np.int64),
        format_code=np.array([domain.STORE_FORMATS.index(f) for f, _, _ in specs], np.int8),
        location_code=np.zeros(n, dtype=np.int8),
        open_hour=np.array([o for o, _ in hours], dtype=np.int64),
        close_hour=np.array([c for _, c in hours], dtype=np.int64),
        traffic_multiplier=np.array([m for _, _, m in specs], dtype=np.float64),
        region_code=np.zeros(n, dtype=np.int8),
    )


def make_customers(n: int = N_CUSTOMERS) -> CustomerColumns:
    ids = np.arange(1, n + 1, dtype=np.int64)
    return CustomerColumns(
        customer_id=ids,
        geography_id=np.ones(n, dtype=np.int64),
        segment_code=np.zeros(n, dtype=np.int8),
        mobility_code=np.zeros(n, dtype=np.int8),
        primary_store_id=np.ones(n, dtype=np.int64),
        home_tax_ppm=np.full(n, 60_000, dtype=np.int64),
        ble_id=pa.array([f"BLE{i:06d}" for i in ids], pa.string()),
        ad_id=pa.array([f"AD{i:08d}" for i in ids], pa.string()),
    )


def make_day_context(day: date, stores: StoreColumns) -> DayContext:
    closed = day.month == 12 and day.day == 25
    h = np.arange(24)
    open_mask = (h[None, :] >= stores.open_hour[:, None]) & (h[None, :] < stores.close_hour[:, None])
    if closed:
        open_mask[:] = False
    n = stores.store_id.size
    return DayContext(
        day=day,
        day_start_us=day_start_us(day),
        closed=closed,
        season=1.0,
        holiday=1.0,
        dow=1.0,
        seasonal=1.0,
        weather_by_region=np.ones(5),
        store_hour_mult=np.ones((n, 24)),
        open_mask=open_mask,
        available=np.arange(10, dtype=np.int64),
    )


def make_visits(ctx: DayContext, n_customers: int = N_CUSTOMERS, mean_per_hour: float = 3.0,
                seed: int = 7) -> Visits:
    """Visits in every open hour (Poisson counts, a few empty hours), in store/seq order."""
    gen = np.random.default_rng(seed)
    n_stores = ctx.open_mask.shape[0]
    per_hour = np.where(ctx.open_mask, gen.poisson(mean_per_hour, ctx.open_mask.shape), 0)
    store_idx, hour, ts = [], [], []
    for s in range(n_stores):
        hours = np.repeat(np.arange(24), per_hour[s])
        offsets = gen.integers(0, US_PER_HOUR, hours.size)
        t = ctx.day_start_us + hours * US_PER_HOUR + offsets
        order = np.argsort(t, kind="stable")
        store_idx.append(np.full(hours.size, s, dtype=np.int64))
        hour.append(hours[order])
        ts.append(t[order])
    counts = per_hour.sum(axis=1)
    store_idx_a = np.concatenate(store_idx)
    n = store_idx_a.size
    seq = np.concatenate([np.arange(1, c + 1) for c in counts]).astype(np.int64)
    return Visits(
        store_idx=store_idx_a,
        visit_seq=seq,
        ts_us=np.concatenate(ts).astype(np.int64),
        hour=np.concatenate(hour).astype(np.int64),
        customer_id=gen.integers(1, n_customers + 1, n),
        segment_code=np.zeros(n, dtype=np.int8),
        behaviour_code=np.zeros(n, dtype=np.int8),
        store_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        visits_per_hour=per_hour.astype(np.int64),
    )


class _Master:
    def __init__(self, stores: StoreColumns, customers: CustomerColumns) -> None:
        self.stores = stores
        self.customers = customers


class SensorHost(MarketingMixin, SensorsMixin, StoreOpsMixin, ZoneChangesMixin):
    """A minimal host exposing what these mixins read."""

    def __init__(self, seed: int = 42, stores: StoreColumns | None = None,
                 customers: CustomerColumns | None = None, **config_overrides) -> None:
        self.config = create_test_config(seed=seed, **config_overrides)
        self._seed = seed
        self._master = _Master(stores if stores is not None else make_stores(),
                               customers if customers is not None else make_customers())

    def _for_each_store(self, fn: Callable[[int], T]) -> list[T]:
        return [fn(i) for i in range(self._master.stores.store_id.size)]
