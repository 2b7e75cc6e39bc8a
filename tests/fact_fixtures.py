"""Tiny hand-built master columns, pools and day contexts for the fact-domain tests.

Nothing here touches a database: the column sets are built directly, and :class:`FakeHost`
composes the in-store mixins over them the way ``FactDataGenerator`` does.
"""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from retail_datagen import calendar, domain
from retail_datagen.generators.fact_generators.data_loading_mixin import (
    CustomerColumns,
    DCColumns,
    GeographyColumns,
    MasterData,
    ProductColumns,
    StoreColumns,
    StorePools,
    TruckColumns,
)
from retail_datagen.generators.fact_generators.day_types import DayContext
from retail_datagen.generators.fact_generators.payments_mixin import PaymentsMixin
from retail_datagen.generators.fact_generators.promotions_mixin import PromotionsMixin
from retail_datagen.generators.fact_generators.receipts_mixin import ReceiptsMixin
from retail_datagen.generators.fact_generators.seasonal_mixin import (
    SeasonalMixin,
    product_keyword_groups,
)
from retail_datagen.generators.fact_generators.utils_mixin import UtilsMixin, day_start_us

CAT = {name: code for code, name in enumerate(domain.BASKET_CATEGORIES)}
FMT = {name: code for code, name in enumerate(domain.STORE_FORMATS)}
# 20 customers per block in the master segment mix .35 / .25 / .20 / .20.
SEGMENT_BLOCK = np.repeat(np.arange(4), [7, 5, 4, 4]).astype(np.int8)
# Item names per basket category; a few carry holiday keywords.
_NAMES = {
    "food": ["Roast Turkey Breast", "Pineapple Chunks", "Green Bean Casserole", "Sweet Potato",
             "Hot Dog Buns", "Cranberry Sauce", "Pasta", "Rice"],
    "beverages": ["Apple Cider", "Eggnog", "Cola", "Water"],
    "household": ["Charcoal Briquettes", "Paper Towels", "Dish Soap", "Sponges"],
    "personal_care": ["Shampoo", "Toothpaste", "Soap Bar", "Lotion"],
    "electronics": ["Headphones", "Charger", "Speaker", "Toy Robot"],
    "clothing": ["T-Shirt", "Socks", "Jacket", "Scarf"],
    "home_garden": ["Grill Brush", "Planter", "Rake", "Hose"],
    "other": ["Gift Card", "Batteries", "Toys Bundle", "Notebook"],
}


def make_products(copies: int = 1, launch: date | None = None, unlaunched: int = 0
                  ) -> ProductColumns:
    """Products of every basket category; ``copies`` repeats the name list with other prices.

    The last ``unlaunched`` products launch in 2099.
    """
    names, cats = [], []
    for _ in range(copies):
        for cat, items in _NAMES.items():
            names += items
            cats += [CAT[cat]] * len(items)
    n = len(names)
    pid = np.arange(1, n + 1, dtype=np.int64)
    price = 99 + (pid * 7919) % 4900
    launch_ord = np.full(n, (launch or date(2020, 1, 1)).toordinal(), dtype=np.int64)
    if unlaunched:
        launch_ord[-unlaunched:] = date(2099, 1, 1).toordinal()
    category = np.array(cats, dtype=np.int8)
    refrigerated = (pid % 5 == 0) & (category == 0)
    tags = np.array([nm.lower().replace(" ", ";") for nm in names], dtype=object)
    return ProductColumns(
        product_id=pid, category_code=category, sale_price_cents=price.astype(np.int64),
        refrigerated=refrigerated, launch_ordinal=launch_ord,
        tax_factor=np.array([100, 50, 0], dtype=np.int64)[pid % 3],
        popularity=np.exp(np.sin(pid.astype(np.float64))), is_food=(category <= 1) | refrigerated,
        item_name=np.array(names, dtype=object), tags=tags,
        category=np.array([domain.BASKET_CATEGORIES[c].title() for c in cats], dtype=object),
        subcategory=np.array(["General"] * n, dtype=object),
    )


def make_stores(formats: list[str], hours: list[tuple[int, int]] | None = None,
                tax_ppm: int = 82_500) -> StoreColumns:
    n = len(formats)
    hours = hours or [(8, 22)] * n
    return StoreColumns(
        store_id=np.arange(1, n + 1, dtype=np.int64), geography_id=np.ones(n, dtype=np.int64),
        dc_id=np.ones(n, dtype=np.int64), tax_ppm=np.full(n, tax_ppm, dtype=np.int64),
        format_code=np.array([FMT[f] for f in formats], dtype=np.int8),
        location_code=np.zeros(n, dtype=np.int8),
        open_hour=np.array([h[0] for h in hours], dtype=np.int64),
        close_hour=np.array([h[1] for h in hours], dtype=np.int64),
        traffic_multiplier=np.ones(n), region_code=np.zeros(n, dtype=np.int8),
    )


def make_customers(n: int = 400) -> CustomerColumns:
    ids = np.arange(1, n + 1, dtype=np.int64)
    return CustomerColumns(
        customer_id=ids, geography_id=np.ones(n, dtype=np.int64),
        segment_code=np.resize(SEGMENT_BLOCK, n),
        mobility_code=(ids > n // 2).astype(np.int8), primary_store_id=np.ones(n, dtype=np.int64),
        home_tax_ppm=np.full(n, 82_500, dtype=np.int64),
        ble_id=pa.array([f"BLE{i}" for i in ids]), ad_id=pa.array([f"AD{i}" for i in ids]),
    )


def make_pools(n_stores: int, n_customers: int = 400, empty: tuple[int, ...] = ()) -> StorePools:
    """Two classes (customers 1..n/2 and the rest); every store but ``empty`` uses both, .6/.4."""
    half = n_customers // 2
    offsets, class_id, cum = [0], [], []
    for s in range(n_stores):
        if s not in empty:
            class_id += [0, 1]
            cum += [0.6, 1.0]
        offsets.append(len(class_id))
    return StorePools(
        offsets=np.array(offsets, dtype=np.int64), class_id=np.array(class_id, dtype=np.int64),
        cum_weight=np.array(cum, dtype=np.float64),
        class_start=np.array([0, half], dtype=np.int64),
        class_size=np.array([half, n_customers - half], dtype=np.int64),
        class_members=np.arange(1, n_customers + 1, dtype=np.int64),
    )


def make_master(stores: StoreColumns, products: ProductColumns,
                customers: CustomerColumns) -> MasterData:
    one = np.ones(1, dtype=np.int64)
    geo = GeographyColumns(one, np.array(["TX"], dtype=object), np.zeros(1, np.int8),
                           np.zeros(1), np.zeros(1), np.full(1, 82_500, np.int64))
    trucks = TruckColumns(one, np.zeros(1, bool), np.zeros(1, np.int8), one, one * 15_000)
    return MasterData(geo, DCColumns(one, one), stores, trucks, customers, products)


def make_context(day: date, stores: StoreColumns, products: ProductColumns,
                 mult: float = 1.0) -> DayContext:
    closed = calendar.is_store_closed(day)
    h = np.arange(24)
    open_mask = (h[None, :] >= stores.open_hour[:, None]) & (h[None, :] < stores.close_hour[:, None])
    if closed:
        open_mask[:] = False
    n = stores.store_id.shape[0]
    return DayContext(
        day=day, day_start_us=day_start_us(day), closed=closed, season=1.0, holiday=1.0,
        dow=1.0, seasonal=1.0, weather_by_region=np.ones(5),
        store_hour_mult=np.full((n, 24), mult), open_mask=open_mask,
        available=np.flatnonzero(products.launch_ordinal <= day.toordinal()),
    )


class FakeHost(PaymentsMixin, PromotionsMixin, ReceiptsMixin, SeasonalMixin, UtilsMixin):
    """The in-store mixins over hand-built master data (stores run sequentially)."""

    def __init__(self, master: MasterData, pools: StorePools, *, seed: int = 7,
                 customers_per_day: int = 300, items_per_ticket_mean: float = 8.2) -> None:
        self.config = SimpleNamespace(volume=SimpleNamespace(
            customers_per_day=customers_per_day, items_per_ticket_mean=items_per_ticket_mean,
            total_customers=int(master.customers.customer_id.shape[0])))
        self._seed = seed
        self._master = master
        self._pools = pools
        self._keyword_groups = product_keyword_groups(master.products)

    def _for_each_store(self, fn):
        return [fn(i) for i in range(self._master.stores.store_id.shape[0])]


def make_host(formats: list[str], *, hours=None, copies: int = 2, seed: int = 7,
              customers_per_day: int = 300, items_per_ticket_mean: float = 8.2,
              empty_pools: tuple[int, ...] = (), unlaunched: int = 0) -> FakeHost:
    stores = make_stores(formats, hours)
    products = make_products(copies, unlaunched=unlaunched)
    customers = make_customers()
    return FakeHost(make_master(stores, products, customers),
                    make_pools(len(formats), empty=empty_pools), seed=seed,
                    customers_per_day=customers_per_day,
                    items_per_ticket_mean=items_per_ticket_mean)


def run_sales(host: FakeHost, day: date, *, stock: int | None = None, mult: float = 1.0):
    """The in-store sale sequence of one day; ``stock`` caps each line's fill (None = unlimited).

    Returns a namespace with every intermediate result and table.
    """
    m = host._master
    ctx = make_context(day, m.stores, m.products, mult)
    visits = host._generate_store_hour_activity(ctx)
    lines = host._build_candidate_baskets(ctx, visits)
    codes = host._decide_promotions(ctx, visits, lines)
    requests = host._sale_requests(ctx, visits, lines)
    filled = -requests.delta if stock is None else np.minimum(-requests.delta, stock)
    sale_lines = host._finalize_sale_lines(ctx, visits, lines, filled)
    discount, promo, promotions, promo_lines = host._apply_promotions(ctx, codes, sale_lines)
    money_ = host._sale_money(ctx, sale_lines, discount)
    payments, tender = host._generate_payments(ctx, money_)
    receipts, receipt_lines = host._create_receipt(ctx, sale_lines, money_, promo, tender)
    return SimpleNamespace(
        ctx=ctx, visits=visits, lines=lines, codes=codes, requests=requests, filled=filled,
        sale_lines=sale_lines, discount=discount, promo=promo, promotions=promotions,
        promo_lines=promo_lines, money=money_, payments=payments, tender=tender,
        receipts=receipts, receipt_lines=receipt_lines,
    )
