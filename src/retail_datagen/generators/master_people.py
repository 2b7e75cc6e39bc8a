"""Customers and the products they buy: ``dim_customers`` and ``dim_products``.

Both tables are built column by column: every stream of master-data.md §6–§7 is drawn once per
kind over all rows in id order, and string columns are assembled with Arrow compute kernels, so
the cost grows with the number of kinds, not with the number of rows.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from faker.providers.person.en_US import Provider as PersonProvider

from retail_datagen import domain
from retail_datagen.errors import DataPackageError
from retail_datagen.generators.master_columns import (
    decimal_array,
    join,
    padded,
    pick,
    text,
    uniform,
    vocab,
)
from retail_datagen.generators.master_geo import Geographies, draw_addresses, geo_strings, nearest
from retail_datagen.money import largest_remainder, round_half_up
from retail_datagen.rng import stable_hash64, stream

_BASE36 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
_FIRST_NAMES = pa.array(list(PersonProvider.first_names), pa.string())
_FIRST_WEIGHTS = np.array(list(PersonProvider.first_names.values()), dtype=np.float64)
_LAST_NAMES = pa.array(list(PersonProvider.last_names), pa.string())
_LAST_WEIGHTS = np.array(list(PersonProvider.last_names.values()), dtype=np.float64)

_FOOD_WORDS = (
    "food", "grocery", "fresh", "frozen", "meat", "dairy", "produce", "beverage", "snack",
    "bakery", "pantry", "organic",
)  # fmt: skip
_CLOTHING_WORDS = ("clothing", "apparel", "shoes", "footwear", "accessories")
_DAYS_BEFORE_EPOCH = date(1970, 1, 1).toordinal()


# --- dim_customers (§6) -----------------------------------------------------------------------


def base36(values: np.ndarray, width: int = 6) -> pa.Array:
    """Upper-case base-36 strings of non-negative integers, zero-padded to ``width``.

    Args:
        values: int64 array of shape (n,).
        width: The minimum number of digits.

    Returns:
        String array of shape (n,); longer only where a value needs more digits.
    """
    v = np.asarray(values, dtype=np.int64).copy()
    n = v.size
    digits = width
    top = int(v.max()) if n else 0
    while 36**digits <= top:
        digits += 1
    chars = np.empty((n, digits), dtype=np.uint8)
    for k in range(digits - 1, -1, -1):
        chars[:, k] = _BASE36[v % 36]
        v //= 36
    offsets = np.arange(n + 1, dtype=np.int32) * digits
    out = pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars))]
    )
    if digits > width:
        # Every value was written with the widest length; shorter ones get their usual width.
        out = pc.utf8_lpad(pc.utf8_ltrim(out, "0"), width, "0")
    return out


def primary_stores(
    geos: Geographies, store_geo: np.ndarray, home_geo: np.ndarray, customer_id: np.ndarray
) -> np.ndarray:
    """Store id of each customer's primary store (behaviour.md §4).

    The store at the nearest location (a geography with stores; ties: lower geography_id) with
    index ``(customer_id − 1) mod n_stores_there`` in store_id order.

    Args:
        geos: The geographies.
        store_geo: int64 (n_stores,), 0-based geography of each store; ascending (stores are
            ordered by geography).
        home_geo: int64 (n_customers,), 0-based home geography.
        customer_id: int64 (n_customers,).

    Returns:
        int64 array of shape (n_customers,).
    """
    locations = np.unique(store_geo)
    first = np.searchsorted(store_geo, locations, side="left")
    n_there = np.searchsorted(store_geo, locations, side="right") - first
    by_geo = nearest(
        geos.latitude, geos.longitude, geos.latitude[locations], geos.longitude[locations]
    )
    loc = by_geo[home_geo]
    return first[loc] + (customer_id - 1) % n_there[loc] + 1


def customers_table(seed: int, total: int, geos: Geographies, store_geo: np.ndarray) -> pa.Table:
    """``dim_customers`` in contract column order.

    Args:
        seed: ``config.seed``.
        total: ``volume.total_customers``.
        geos: The geographies.
        store_geo: int64 (n_stores,), 0-based geography of each store in store_id order.

    Returns:
        The table, ``total`` rows ordered by (home geography, draw index).
    """
    counts = largest_remainder(total, geos.population)
    home = np.repeat(np.arange(len(geos), dtype=np.int64), counts)
    ids = np.arange(1, total + 1, dtype=np.int64)

    rng = stream(seed, "master.customers.names")
    first = _FIRST_NAMES.take(pa.array(pick(rng.random(total), _FIRST_WEIGHTS)))
    last = _LAST_NAMES.take(pa.array(pick(rng.random(total), _LAST_WEIGHTS)))
    card_digits = stream(seed, "master.customers.card").integers(0, 1000, total)
    rng = stream(seed, "master.customers.phone")
    exchange = rng.integers(200, 1000, total)
    line = rng.integers(0, 10_000, total)
    rng = stream(seed, "master.customers.segment")
    shopper = pick(rng.random(total), domain.SHOPPER_SEGMENT_P)
    mobility = pick(rng.random(total), domain.MOBILITY_SEGMENT_P)
    address = draw_addresses(
        stream(seed, "master.customers.address"), "residential", *geo_strings(geos, home)
    )
    area = pa.array(geos.area_code, pa.string()).take(pa.array(home))
    ids36 = base36(ids)
    return pa.table({
        "customer_id": ids,
        "first_name": first,
        "last_name": last,
        "address": address,
        "geography_id": home + 1,
        "loyalty_card": join("LC", padded(ids, 6), padded(card_digits, 3)),
        "phone": join("(", area, ") ", text(exchange), "-", padded(line, 4)),
        "ble_id": join("BLE", ids36),
        "ad_id": join("AD", ids36),
        "shopper_segment": vocab(domain.SHOPPER_SEGMENTS, shopper),
        "mobility_segment": vocab(domain.MOBILITY_SEGMENTS, mobility),
        "primary_store_id": primary_stores(geos, store_geo, home, ids),
    })  # fmt: skip


# --- dim_products (§7) ------------------------------------------------------------------------


def valid_pairs(item_category: np.ndarray, brand_category: np.ndarray) -> tuple[np.ndarray, ...]:
    """All (catalogue row, brand row) pairs with equal brand_category, in that order.

    Returns:
        Two int64 arrays of shape (n_valid,): catalogue rows and brand rows.
    """
    categories, codes = np.unique(
        np.concatenate([item_category, brand_category]).astype(str), return_inverse=True
    )
    item_code, brand_code = codes[: len(item_category)], codes[len(item_category) :]
    brand_order = np.argsort(brand_code, kind="stable")
    per_category = np.bincount(brand_code, minlength=len(categories))
    category_start = np.concatenate([[0], np.cumsum(per_category)[:-1]])
    per_item = per_category[item_code]
    item_row = np.repeat(np.arange(len(item_category), dtype=np.int64), per_item)
    within = np.arange(per_item.sum()) - np.repeat(np.cumsum(per_item) - per_item, per_item)
    brand_row = brand_order[np.repeat(category_start[item_code], per_item) + within]
    return item_row, brand_row.astype(np.int64)


def taxability_codes(department: np.ndarray, category: np.ndarray) -> np.ndarray:
    """TAXABILITY code of each (department, category) by the rules of §7, in order."""
    dept_names, dept_code = np.unique(department.astype(str), return_inverse=True)
    cat_names, cat_code = np.unique(category.astype(str), return_inverse=True)
    pairs, inverse = np.unique(dept_code * len(cat_names) + cat_code, return_inverse=True)
    codes = []
    for pair in pairs.tolist():
        dept, cat = str(dept_names[pair // len(cat_names)]), str(cat_names[pair % len(cat_names)])
        key = f"{dept} {cat}".lower()
        if any(word in key for word in _FOOD_WORDS):
            codes.append(domain.TAXABILITY.index("NON_TAXABLE"))
        elif (
            any(word in key for word in _CLOTHING_WORDS)
            or stable_hash64(f"{dept}:{cat}") % 100 < 10
        ):
            codes.append(domain.TAXABILITY.index("REDUCED_RATE"))
        else:
            codes.append(domain.TAXABILITY.index("TAXABLE"))
    return np.asarray(codes, dtype=np.int64)[inverse]


def price_cents(rng: np.random.Generator, base_cents: np.ndarray) -> tuple[np.ndarray, ...]:
    """MSRP, sale price and cost in cents with ``0 < cost < sale ≤ msrp`` (§7 pricing).

    Args:
        rng: The ``master.products.price`` stream.
        base_cents: int64 (n,), the catalogue base price of each product in product_id order.

    Returns:
        int64 arrays ``(cost, msrp, sale)`` of shape (n,).
    """
    n = base_cents.size
    base_factor = uniform(rng, 0.85, 1.15, n)
    msrp_factor = uniform(rng, -0.15, 0.15, n)
    keep_msrp = rng.random(n) < 0.60
    cut = uniform(rng, 0.05, 0.35, n)
    cost_factor = uniform(rng, 0.50, 0.85, n)
    base = base_cents * base_factor
    msrp = np.maximum(round_half_up(base * (1 + msrp_factor)), 3)
    sale = np.where(keep_msrp, msrp, round_half_up(msrp * (1 - cut)))
    sale = np.clip(sale, 2, msrp)
    cost = np.clip(round_half_up(sale * cost_factor), 1, sale - 1)
    return cost, msrp, sale


def launch_days(seed: int, department: np.ndarray, start: date) -> np.ndarray:
    """Launch date of each product (product_id order) as days since 1970-01-01 (§7)."""
    n = department.size
    rng = stream(seed, "master.products.launch")
    before = rng.integers(180, 731, n)
    soon = rng.integers(0, 181, n)
    later = rng.integers(181, 366, n)
    position = np.arange(1, n + 1)
    established, new = 6 * n // 10, 3 * n // 10
    group = np.where(position <= established, 0, np.where(position <= established + new, 1, 2))
    # Every department must have something on sale from S − 180 on.
    group[np.unique(department.astype(str), return_index=True)[1]] = 0
    offset = np.select([group == 0, group == 1], [-before, soon], later)
    return start.toordinal() - _DAYS_BEFORE_EPOCH + offset


def products_table(
    seed: int, total: int, catalog: pa.Table, brands: pa.Table, start: date
) -> pa.Table:
    """``dim_products`` in contract column order.

    Args:
        seed: ``config.seed``.
        total: ``volume.total_products``.
        catalog: The product catalogue (``datafiles.load_product_catalog``).
        brands: The brands (``datafiles.load_brands``).
        start: ``historical.start_date``.

    Returns:
        The table, ``total`` rows in product_id order.

    Raises:
        DataPackageError: No (item, brand) pair is valid.
    """
    item_row, brand_row = valid_pairs(
        catalog.column("brand_category").to_numpy(zero_copy_only=False),
        brands.column("brand_category").to_numpy(zero_copy_only=False),
    )
    n_valid = item_row.size
    if n_valid == 0:
        raise DataPackageError(
            "brands.csv: no brand shares a brand_category with product_catalog.csv"
        )
    rng = stream(seed, "master.products.pairs")
    if n_valid >= total:
        drawn = rng.choice(n_valid, total, replace=False)
    else:
        drawn = np.concatenate([np.arange(n_valid), rng.integers(0, n_valid, total - n_valid)])
    perm = stream(seed, "master.products.shuffle").permutation(total)
    pair = drawn[perm]
    item = pa.array(item_row[pair])
    brand_idx = pa.array(brand_row[pair])

    def col(table: pa.Table, name: str, idx: pa.Array) -> pa.Array:
        return table.column(name).combine_chunks().take(idx)

    brand = col(brands, "brand", brand_idx)
    department = col(catalog, "department", item)
    category = col(catalog, "category", item)
    dept_np = department.to_numpy(zero_copy_only=False)
    cost, msrp, sale = price_cents(
        stream(seed, "master.products.price"),
        col(catalog, "base_price_cents", item).to_numpy().astype(np.int64),
    )
    launch = launch_days(seed, dept_np, start)
    taxability = taxability_codes(dept_np, category.to_numpy(zero_copy_only=False))
    popularity = np.exp(1.2 * stream(seed, "master.products.popularity").standard_normal(total))
    return pa.table({
        "product_id": np.arange(1, total + 1, dtype=np.int64),
        "product_name": join(brand, " ", col(catalog, "item_name", item)),
        "brand": brand,
        "company": col(brands, "company", brand_idx),
        "department": department,
        "category": category,
        "subcategory": col(catalog, "subcategory", item),
        "basket_category": col(catalog, "basket_category", item),
        "cost": decimal_array(cost, 18, 2),
        "msrp": decimal_array(msrp, 18, 2),
        "sale_price": decimal_array(sale, 18, 2),
        "cost_cents": cost.astype(np.int64),
        "msrp_cents": msrp.astype(np.int64),
        "sale_price_cents": sale.astype(np.int64),
        "requires_refrigeration": col(catalog, "requires_refrigeration", item),
        "launch_date": pa.array(launch.astype(np.int32), pa.int32()).cast(pa.date32()),
        "taxability": vocab(domain.TAXABILITY, taxability),
        "tags": col(catalog, "tags", item),
        "popularity_weight": popularity,
    })  # fmt: skip


__all__ = [
    "base36",
    "customers_table",
    "launch_days",
    "price_cents",
    "primary_stores",
    "products_table",
    "taxability_codes",
    "valid_pairs",
]
