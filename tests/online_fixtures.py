"""Small hand-built master data, day contexts and sales for the online-order and returns tests."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from retail_datagen import calendar, money
from retail_datagen.generators.fact_generators.data_loading_mixin import (
    CustomerColumns,
    DCColumns,
    GeographyColumns,
    MasterData,
    ProductColumns,
    StoreColumns,
    TruckColumns,
)
from retail_datagen.generators.fact_generators.day_types import DayContext
from retail_datagen.generators.fact_generators.online_orders_mixin import OnlineOrdersMixin
from retail_datagen.generators.fact_generators.returns_mixin import ReturnsMixin
from retail_datagen.generators.fact_generators.utils_mixin import day_start_us

SEED = 20241125
N_PRODUCTS = 12
N_CUSTOMERS = 40

# Stores: 8–22, 24/7 and 9–21; stores 1 and 2 are served by DC 1, store 3 by DC 2.
STORE_OPEN = np.array([8, 0, 9], dtype=np.int64)
STORE_CLOSE = np.array([22, 24, 21], dtype=np.int64)
STORE_DC = np.array([1, 1, 2], dtype=np.int64)
STORE_TAX_PPM = np.array([62_500, 82_500, 0], dtype=np.int64)
GEO_TAX_PPM = np.array([62_500, 82_500, 40_000, 72_500], dtype=np.int64)

PRICE_CENTS = np.array([199, 349, 1_299, 89, 4_999, 250, 725, 15_000, 333, 1_050, 60, 2_499],
                       dtype=np.int64)
TAX_FACTOR = np.array([100, 50, 0, 100, 100, 50, 100, 100, 0, 100, 100, 100], dtype=np.int64)
POPULARITY = np.array([5.0, 1.0, 2.0, 0.5, 3.0, 1.5, 4.0, 0.2, 1.0, 2.5, 6.0, 0.8])
# Categories into domain.BASKET_CATEGORIES: food 0, beverages 1, household 2, electronics 4 ...
CATEGORY = np.array([0, 1, 2, 4, 5, 6, 7, 4, 2, 3, 0, 5], dtype=np.int8)
REFRIGERATED = np.array([True, False, False, False, False, False, False, False, False, False,
                         True, False])


def products() -> ProductColumns:
    n = N_PRODUCTS
    return ProductColumns(
        product_id=np.arange(1, n + 1, dtype=np.int64),
        category_code=CATEGORY,
        sale_price_cents=PRICE_CENTS,
        refrigerated=REFRIGERATED,
        launch_ordinal=np.full(n, date(2020, 1, 1).toordinal(), dtype=np.int64),
        tax_factor=TAX_FACTOR,
        popularity=POPULARITY,
        is_food=(CATEGORY <= 1) | REFRIGERATED,
        item_name=np.array([f"Item {i}" for i in range(n)], dtype=object),
        tags=np.array([""] * n, dtype=object),
        category=np.array(["c"] * n, dtype=object),
        subcategory=np.array(["s"] * n, dtype=object),
    )


def stores() -> StoreColumns:
    n = STORE_OPEN.shape[0]
    return StoreColumns(
        store_id=np.arange(1, n + 1, dtype=np.int64),
        geography_id=np.array([1, 2, 3], dtype=np.int64),
        dc_id=STORE_DC,
        tax_ppm=STORE_TAX_PPM,
        format_code=np.zeros(n, dtype=np.int8),
        location_code=np.zeros(n, dtype=np.int8),
        open_hour=STORE_OPEN,
        close_hour=STORE_CLOSE,
        traffic_multiplier=np.ones(n),
        region_code=np.zeros(n, dtype=np.int8),
    )


def customers() -> CustomerColumns:
    n = N_CUSTOMERS
    geo = np.arange(n, dtype=np.int64) % GEO_TAX_PPM.shape[0] + 1
    return CustomerColumns(
        customer_id=np.arange(1, n + 1, dtype=np.int64),
        geography_id=geo,
        segment_code=np.zeros(n, dtype=np.int8),
        mobility_code=np.zeros(n, dtype=np.int8),
        primary_store_id=np.arange(n, dtype=np.int64) % 3 + 1,
        home_tax_ppm=GEO_TAX_PPM[geo - 1],
        ble_id=pa.array([f"BLE{i:06d}" for i in range(n)]),
        ad_id=pa.array([f"AD{i:06d}" for i in range(n)]),
    )


def master_data() -> MasterData:
    z = np.zeros(0, dtype=np.int64)
    geos = GeographyColumns(
        geography_id=np.arange(1, 5, dtype=np.int64),
        state=np.array(["CA", "TX", "NY", "WA"], dtype=object),
        region_code=np.zeros(4, dtype=np.int8),
        latitude=np.zeros(4),
        longitude=np.zeros(4),
        tax_ppm=GEO_TAX_PPM,
    )
    trucks = TruckColumns(z, z.astype(bool), z.astype(np.int8), z, z)
    return MasterData(
        geographies=geos,
        dcs=DCColumns(dc_id=np.array([1, 2], dtype=np.int64),
                      geography_id=np.array([1, 3], dtype=np.int64)),
        stores=stores(),
        trucks=trucks,
        customers=customers(),
        products=products(),
    )


def day_context(day: date, available: np.ndarray | None = None) -> DayContext:
    closed = calendar.is_store_closed(day)
    open_mask = (np.arange(24)[None, :] >= STORE_OPEN[:, None]) & \
        (np.arange(24)[None, :] < STORE_CLOSE[:, None]) & (not closed)
    return DayContext(
        day=day,
        day_start_us=day_start_us(day),
        closed=closed,
        season=calendar.season_multiplier(day),
        holiday=calendar.holiday_multiplier(day),
        dow=calendar.dow_multiplier(day),
        seasonal=calendar.seasonal(day),
        weather_by_region=np.ones(5),
        store_hour_mult=np.ones((3, 24)),
        open_mask=open_mask,
        available=np.arange(N_PRODUCTS, dtype=np.int64) if available is None else available,
    )


class Host(OnlineOrdersMixin, ReturnsMixin):
    """A minimal host carrying only the attributes these mixins read."""

    def __init__(self, seed: int = SEED, orders_per_day: int = 60) -> None:
        self._seed = seed
        self.config = SimpleNamespace(volume=SimpleNamespace(online_orders_per_day=orders_per_day))
        self._master = master_data()


# --- hand-built SALE receipts -------------------------------------------------------------------


def sale_batch(day: date, per_store: int = 150, seed: int = 7) -> tuple[pa.Table, pa.Table]:
    """SALE headers in (StoreID, seq) order and their lines, with consistent money."""
    rng = np.random.default_rng(seed)
    store = np.repeat(np.arange(1, 4, dtype=np.int64), per_store)
    seq = np.tile(np.arange(1, per_store + 1, dtype=np.int64), 3) * 2  # gaps as real seqs have
    n = store.shape[0]
    tag = day.strftime("%Y%m%d")
    ids = [f"RCP{tag}{s:05d}{q:06d}" for s, q in zip(store.tolist(), seq.tolist(), strict=True)]
    open_us = STORE_OPEN[store - 1] * 3_600_000_000
    ts = day_start_us(day) + open_us + rng.integers(0, 3_600_000_000, n)
    line_count = rng.integers(1, 5, n)
    head = np.repeat(np.arange(n), line_count)
    line_num = np.concatenate([np.arange(1, c + 1) for c in line_count.tolist()])
    # Distinct products within a receipt: consecutive ids from a random start.
    product = (rng.integers(0, N_PRODUCTS, n)[head] + line_num - 1) % N_PRODUCTS + 1
    qty = rng.integers(1, 4, head.shape[0])
    unit = PRICE_CENTS[product - 1]
    gross = unit * qty
    bp = np.where(rng.random(head.shape[0]) < 0.3, 1_500, 0)
    discount = money.percent_discount(gross, bp)
    ext = gross - discount
    tax = money.line_tax(ext, STORE_TAX_PPM[store[head] - 1], TAX_FACTOR[product - 1])
    total = np.bincount(head, weights=ext + tax, minlength=n).astype(np.int64)
    lines = pa.table({
        "ReceiptId": pa.array(ids).take(pa.array(head)),
        "LineNumber": pa.array(line_num, pa.int32()),
        "ProductID": pa.array(product, pa.int64()),
        "Qty": pa.array(qty, pa.int32()),
        "UnitCents": pa.array(unit, pa.int64()),
        "DiscountCents": pa.array(discount, pa.int64()),
        "ExtCents": pa.array(ext, pa.int64()),
        "TaxCents": pa.array(tax, pa.int64()),
        "PromoCode": pa.array(np.where(discount > 0, "SAVE15", None).tolist(), pa.string()),
    })
    methods = np.array(["CREDIT_CARD", "DEBIT_CARD", "CASH", "MOBILE_PAY"], dtype=object)
    receipts = pa.table({
        "ReceiptId": pa.array(ids),
        "StoreID": pa.array(store, pa.int64()),
        "CustomerID": pa.array(rng.integers(1, N_CUSTOMERS + 1, n), pa.int64()),
        "EventTS": pa.array(ts, pa.timestamp("us")),
        "TenderType": pa.array(methods[rng.integers(0, 4, n)].tolist(), pa.string()),
        "TotalCents": pa.array(total, pa.int64()),
    })
    return receipts, lines
