"""Holiday overlay of the in-store basket (behaviour.md §5.6).

A product's multiplier ``m(p, D)`` is the largest of the overlay rules that apply to it on day D,
else 1.0. The keyword rules are matched once per run (:func:`product_keyword_groups`, a bool
matrix kept by the host as ``_keyword_groups``); the day's multipliers are then plain vector
maxima (:func:`product_multiplier`). :func:`apply_holiday_overlay` bumps the drawn lines and
appends the extra lines of one store's visits; the receipts mixin merges duplicates afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from retail_datagen import calendar, domain, rng
from retail_datagen.generators.fact_generators.data_loading_mixin import ProductColumns

#: Keyword groups of behaviour.md §5.6, in column order of :func:`product_keyword_groups`.
KEYWORD_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("thanksgiving_food", (
        "turkey", "stuffing", "cranberry", "pie", "pumpkin", "dinner roll", "casserole",
        "green bean", "gravy", "yam", "sweet potato",
    )),
    ("thanksgiving_baking", ("baking", "flour", "sugar", "butter", "cinnamon", "spice")),
    ("toy", ("toy",)),
    ("december_food", (
        "ham", "roast", "cookie", "baking", "candy", "cider", "eggnog", "hot chocolate",
    )),
    ("grilling", ("grill", "charcoal", "burger", "hot dog", "bbq", "barbecue")),
)  # fmt: skip
KW_THANKSGIVING_FOOD, KW_THANKSGIVING_BAKING, KW_TOY, KW_DECEMBER_FOOD, KW_GRILLING = range(5)

_CAT = {name: code for code, name in enumerate(domain.BASKET_CATEGORIES)}
# Characters that separate words: anything that is not a letter or a digit.
_NON_ALNUM = r"[\W_]+"


def _normalised(values: np.ndarray) -> pd.Series:
    """Lower-cased text with every run of non-alphanumerics turned into one space."""
    s = pd.Series(values, dtype=object).fillna("").astype(str).str.lower()
    return s.str.replace(_NON_ALNUM, " ", regex=True).str.strip()


def product_keyword_groups(products: ProductColumns) -> np.ndarray:
    """Which holiday keyword groups each product matches.

    A keyword matches when its words appear as consecutive whole words in the item name (the
    product name without its brand), the tags, the category or the subcategory, each field on
    its own. The brand is never looked at.

    Args:
        products: The product master columns.

    Returns:
        bool array of shape (n_products, len(KEYWORD_GROUPS)), columns in ``KEYWORD_GROUPS``
        order.
    """
    fields = [products.item_name, products.tags, products.category, products.subcategory]
    # Fields joined by "|", words by single spaces: a phrase can only match inside one field.
    text = _normalised(fields[0])
    for values in fields[1:]:
        text = text + "|" + _normalised(values)
    out = np.zeros((len(text), len(KEYWORD_GROUPS)), dtype=bool)
    for g, (_, keywords) in enumerate(KEYWORD_GROUPS):
        words = "|".join(re.escape(k) for k in keywords)
        pattern = rf"(?<![^ |])(?:{words})(?![^ |])"
        out[:, g] = text.str.contains(pattern, regex=True).to_numpy(dtype=bool)
    return out


def product_multiplier(day: date, category_code: np.ndarray, keyword_groups: np.ndarray
                       ) -> np.ndarray:
    """``m(p, D)`` of behaviour.md §5.6 for every product.

    Args:
        day: The simulated day.
        category_code: int8 array of shape (n_products,), codes into ``domain.BASKET_CATEGORIES``.
        keyword_groups: bool array of shape (n_products, G) from :func:`product_keyword_groups`.

    Returns:
        float64 array of shape (n_products,): the largest applicable multiplier, else 1.0.
    """
    cat = np.asarray(category_code)
    kw = np.asarray(keyword_groups, dtype=bool)
    windows = calendar.overlay_windows(day)
    m = np.ones(cat.shape[0], dtype=np.float64)

    def rule(mask: np.ndarray, value: float) -> None:
        np.maximum(m, np.where(mask, value, 1.0), out=m)

    food_or_bev = (cat == _CAT["food"]) | (cat == _CAT["beverages"])
    electronics, clothing = cat == _CAT["electronics"], cat == _CAT["clothing"]
    home_garden = cat == _CAT["home_garden"]
    if windows["thanksgiving"]:
        rule(kw[:, KW_THANKSGIVING_FOOD], 3.5)
        rule(kw[:, KW_THANKSGIVING_BAKING], 1.8)
        rule(food_or_bev, 1.3)
    if windows["black_friday"]:
        rule(electronics, 5.0)
        rule(kw[:, KW_TOY], 3.0)
        rule(clothing, 2.3)
        rule(home_garden, 2.2)
    if windows["december"]:
        rule(kw[:, KW_DECEMBER_FOOD], 1.8)
        rule(electronics | clothing | home_garden | kw[:, KW_TOY], 1.6)
    if windows["grilling"]:
        rule(kw[:, KW_GRILLING], 2.5)
    return m


def apply_holiday_overlay(
    gen: np.random.Generator,
    visit_index: np.ndarray,
    product_idx: np.ndarray,
    quantity: np.ndarray,
    multiplier: np.ndarray,
    eligible_products: np.ndarray,
    n_visits: int,
    extra_lines: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bump the drawn lines and append the extra lines of one store's visits (stream
    ``holiday.overlay``).

    Kinds, in draw order: bump ``b ~ U{0..1}`` for every drawn line (dropped lines included),
    then one product ``U{0..n−1}`` over ``eligible_products`` per extra line (visit, then line).
    A line whose product has ``m ≥ 3`` gains ``1 + b`` units and one with ``1.5 ≤ m < 3`` gains
    ``b``. When ``extra_lines`` is true each visit gets ``Σ qty // 10`` extra lines of quantity 1
    (Σ over its drawn lines after bumps); none when no product is eligible.

    Args:
        gen: The store's ``holiday.overlay`` stream.
        visit_index: int64 (n_lines,), visit of each drawn line (0..n_visits−1), ascending.
        product_idx: int64 (n_lines,), product index of each drawn line, −1 for a dropped line.
        quantity: int64 (n_lines,), drawn quantity.
        multiplier: float64 (n_products,), ``m(p, D)`` from :func:`product_multiplier`.
        eligible_products: int64 (n,), the available products with ``m > 1``, ascending.
        n_visits: Number of visits of the store.
        extra_lines: Whether the day is in an extra-lines window (TG−10..TG+1, Dec 23–24).

    Returns:
        ``(visit_index, product_idx, quantity)`` int64 arrays of the surviving drawn lines and the
        extra lines, ordered by visit, then drawn lines in order, then extra lines. Duplicates
        are not merged here.
    """
    visit_index = np.asarray(visit_index, dtype=np.int64)
    product_idx = np.asarray(product_idx, dtype=np.int64)
    quantity = np.asarray(quantity, dtype=np.int64)
    bump = rng.uniform_int(gen, 0, 1, visit_index.shape[0])
    keep = product_idx >= 0
    m = np.where(keep, multiplier[np.where(keep, product_idx, 0)], 1.0)
    add = np.where(m >= 3.0, 1 + bump, np.where(m >= 1.5, bump, 0))
    visit_index, product_idx = visit_index[keep], product_idx[keep]
    quantity = (quantity + add)[keep]
    n_eligible = int(np.asarray(eligible_products).shape[0])
    if not extra_lines or n_eligible == 0:
        return visit_index, product_idx, quantity
    per_visit = np.bincount(visit_index, weights=quantity, minlength=n_visits)
    n_extra = (np.rint(per_visit).astype(np.int64)) // 10
    extra_visit = np.repeat(np.arange(n_visits, dtype=np.int64), n_extra)
    pick = rng.uniform_int(gen, 0, n_eligible - 1, extra_visit.shape[0])
    extra_product = np.asarray(eligible_products, dtype=np.int64)[pick]
    all_visit = np.concatenate([visit_index, extra_visit])
    # Stable: within a visit the drawn lines keep their order and the extra lines follow them.
    order = np.argsort(all_visit, kind="stable")
    return (
        all_visit[order],
        np.concatenate([product_idx, extra_product])[order],
        np.concatenate([quantity, np.ones(extra_visit.shape[0], dtype=np.int64)])[order],
    )


@dataclass
class HolidayBasket:
    """Drawn basket lines of one store's visits, in (visit, line) order.

    ``product_idx`` is −1 for a line that found no product (it is dropped by the overlay).
    """

    store_id: int
    n_visits: int
    visit_index: np.ndarray  # int64 (n_lines,) 0..n_visits−1, ascending
    product_idx: np.ndarray  # int64 (n_lines,)
    quantity: np.ndarray  # int64 (n_lines,)


class SeasonalMixin:
    """Holiday product multipliers and the basket overlay.

    This mixin defines the following functionality:

    Adds:
        ``_thanksgiving_date``, ``_get_product_multiplier`` and
        ``_apply_holiday_overlay_to_basket``. No tables.
    Reads:
        ``_seed``, ``_master.products``, ``_keyword_groups`` (set at load from
        :func:`product_keyword_groups`), ``_get_available_products_for_date`` (utils).
    Writes:
        nothing on self.
    Streams:
        ``holiday.overlay`` (per store).
    """

    def _thanksgiving_date(self, year: int) -> date:
        """Fourth Thursday of November of ``year``."""
        return calendar.thanksgiving(year)

    def _get_product_multiplier(self, day: date, product_ids: np.ndarray) -> np.ndarray:
        """``m(p, D)`` for the given product ids (1-based), float64 of the same shape."""
        products = self._master.products
        m = product_multiplier(day, products.category_code, self._keyword_groups)
        return m[np.asarray(product_ids, dtype=np.int64) - 1]

    def _apply_holiday_overlay_to_basket(self, day: date, basket: HolidayBasket) -> HolidayBasket:
        """The overlay of :func:`apply_holiday_overlay` on one store's drawn basket lines."""
        products = self._master.products
        m = product_multiplier(day, products.category_code, self._keyword_groups)
        available = self._get_available_products_for_date(day)
        eligible = available[m[available] > 1.0]
        windows = calendar.overlay_windows(day)
        gen = rng.stream(self._seed, "holiday.overlay", day, basket.store_id)
        visit, product, qty = apply_holiday_overlay(
            gen, basket.visit_index, basket.product_idx, basket.quantity, m, eligible,
            basket.n_visits, windows["extra_lines"],
        )
        return HolidayBasket(basket.store_id, basket.n_visits, visit, product, qty)


__all__ = [
    "KEYWORD_GROUPS",
    "HolidayBasket",
    "SeasonalMixin",
    "apply_holiday_overlay",
    "product_keyword_groups",
    "product_multiplier",
]
