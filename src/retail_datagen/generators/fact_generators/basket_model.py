"""The basket model of in-store sales (behaviour.md §5.1–5.4, §5.6).

A visit's shopper behaviour (QUICK, GROCERY, FAMILY, BULK) is drawn from its segment; the
number of lines comes from a Poisson whose mean ``μ`` depends on the behaviour, the store format
and ``items_per_ticket_mean`` (through :func:`solve_ticket_k` and :func:`basket_mu`); each line
picks a category split, then a product of that category within the segment's price band
(:func:`basket_day_tables`), and a quantity. The holiday overlay may add lines, and duplicate
products of a visit are merged (:func:`merge_basket_lines`).

These are the pure functions behind ``ReceiptsMixin._build_candidate_baskets``; every draw
comes from the generator streams passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retail_datagen import domain, rng
from retail_datagen.generators.fact_generators.seasonal_mixin import apply_holiday_overlay
from retail_datagen.generators.fact_generators.utils_mixin import group_starts, rank_within_groups

_CAT = {name: code for code, name in enumerate(domain.BASKET_CATEGORIES)}
_N_SEG = len(domain.SHOPPER_SEGMENTS)

#: §5.1 behaviour probabilities (QUICK, GROCERY, FAMILY, BULK) per shopper segment.
BEHAVIOUR_P = np.array([
    [0.20, 0.40, 0.30, 0.10],
    [0.50, 0.30, 0.15, 0.05],
    [0.30, 0.35, 0.25, 0.10],
    [0.25, 0.40, 0.25, 0.10],
])  # fmt: skip
#: §5.1 mix row p_b, §5.2 line-range midpoints mid_b and E[qty/line] q_b, per behaviour.
BEHAVIOUR_MIX = (0.305, 0.365, 0.2425, 0.0875)
BEHAVIOUR_MID = (2.0, 10.0, 20.0, 35.0)
BEHAVIOUR_QTY = (1.32, 1.34, 1.28, 1.28)
#: §5.2 category splits as printed. The split category ``other`` covers other and home_garden.
CATEGORY_SPLITS: tuple[tuple[tuple[str, float], ...], ...] = (
    (("food", .4), ("beverages", .3), ("personal_care", .2), ("household", .1)),
    (("food", .5), ("beverages", .2), ("household", .15), ("personal_care", .15)),
    (("food", .4), ("household", .2), ("personal_care", .15), ("clothing", .1),
     ("beverages", .1), ("electronics", .05)),
    (("food", .3), ("household", .3), ("personal_care", .2), ("beverages", .1), ("other", .1)),
)  # fmt: skip
#: §5.3 format factor adj_f in ``domain.STORE_FORMATS`` order (express uses its own rule).
FORMAT_ADJ = (1.3, 1.1, 1.0, 0.8, 1.0)
EXPRESS = domain.STORE_FORMATS.index("express")
EXPRESS_MAX_LINES = 3
QTY_P = (0.7, 0.2, 0.1)  # quantity 1, 2, 3 for food, beverages and household lines
QTY_CATEGORIES = (_CAT["food"], _CAT["beverages"], _CAT["household"])
TICKET_FLOOR = 1.3141

_width = max(len(s) for s in CATEGORY_SPLITS)
_SPLIT_P = np.zeros((4, _width))
_SPLIT_CODE = np.zeros((4, _width), dtype=np.int64)
for _b, _split in enumerate(CATEGORY_SPLITS):
    for _j, (_name, _p) in enumerate(_split):
        _SPLIT_P[_b, _j], _SPLIT_CODE[_b, _j] = _p, _CAT[_name]
# The normalised cumulative split rows of ``rng.categorical_rows``, once per behaviour.
_SPLIT_CDF = np.cumsum(_SPLIT_P, axis=1)
_SPLIT_CDF = _SPLIT_CDF / _SPLIT_CDF[:, -1:]
_QTY_SPLIT = np.isin(np.arange(len(domain.BASKET_CATEGORIES)), QTY_CATEGORIES)


def solve_ticket_k(t: float) -> float:
    """k ≥ 0 with ``Σ_b p_b × max(1, k × mid_b) × q_b = T`` (behaviour.md §5.3), solved exactly.

    The breakpoints ``1/mid_b`` are scanned in ascending order; on the segment holding the
    solution ``k = (T − Σ_{inactive} p q) / Σ_{active} p mid q`` (sums in table order). For
    ``T ≤ 1.3141`` the result is 0.
    """
    if t <= TICKET_FLOOR:
        return 0.0
    bps = sorted({1.0 / mid for mid in BEHAVIOUR_MID})
    for j, lo in enumerate(bps):
        hi = bps[j + 1] if j + 1 < len(bps) else float("inf")
        inactive = active = 0.0
        for p, mid, q in zip(BEHAVIOUR_MIX, BEHAVIOUR_MID, BEHAVIOUR_QTY, strict=True):
            if 1.0 / mid <= lo:
                active += p * mid * q
            else:
                inactive += p * q
        k = (t - inactive) / active
        if k <= hi:
            return k
    raise AssertionError("unreachable: the last segment is unbounded")


def basket_mu(k: float) -> np.ndarray:
    """``μ_b,f`` per (format, behaviour): ``max(1, k × adj_f × mid_b)``; express
    ``max(1, min(2, k × mid_b))``. float64 (n_formats, 4)."""
    mu = np.empty((len(domain.STORE_FORMATS), 4))
    for f, adj in enumerate(FORMAT_ADJ):
        for b, mid in enumerate(BEHAVIOUR_MID):
            mu[f, b] = (max(1.0, min(2.0, k * mid)) if f == EXPRESS
                        else max(1.0, k * adj * mid))
    return mu


@dataclass(frozen=True)
class BasketDayTables:
    """Per-day inputs of the basket draw, shared read-only by every store.

    Group ``g = split category code × 4 + segment code`` picks from ``candidates[g]`` (product
    indices sorted by (sale_price_cents, product_id)) with the normalised cumulative popularity
    ``cum[g]``; an empty group means the line is dropped. ``group_cum`` holds every group's
    ``(g, cum[g])`` as complex numbers (real g, imaginary cum), which sort lexicographically,
    so one search finds a line's pick within its group; ``flat_candidates`` and ``group_start``
    are the candidates concatenated in group order and where each group starts.
    """

    candidates: tuple[np.ndarray, ...]
    cum: tuple[np.ndarray, ...]
    group_cum: np.ndarray
    flat_candidates: np.ndarray
    group_start: np.ndarray
    group_size: np.ndarray
    mu: np.ndarray  # float64 (n_formats, 4)
    multiplier: np.ndarray  # float64 (n_products,) m(p, D)
    overlay_eligible: np.ndarray  # int64 available products with m > 1, ascending
    extra_lines: bool
    n_products: int


def _band(sorted_products: np.ndarray, segment: int) -> np.ndarray:
    """The segment's price band of a category sorted by (sale_price_cents, product_id)."""
    n = sorted_products.shape[0]
    lo, hi = {"BUDGET_CONSCIOUS": (0, (7 * n + 9) // 10), "QUALITY_SEEKER": ((7 * n) // 10, n),
              "BRAND_LOYAL": (n // 2, n)}.get(domain.SHOPPER_SEGMENTS[segment], (0, n))
    return sorted_products[lo:hi]


def basket_day_tables(available: np.ndarray, category_code: np.ndarray,
                      sale_price_cents: np.ndarray, popularity: np.ndarray,
                      multiplier: np.ndarray, mu: np.ndarray, extra_lines: bool
                      ) -> BasketDayTables:
    """Candidate arrays per (split category, segment) with the §5.4 price bands and fallbacks."""
    avail = np.asarray(available, dtype=np.int64)
    price = np.asarray(sale_price_cents)[avail]
    if avail.size < 2 or bool((avail[1:] > avail[:-1]).all()):
        by_price = avail[np.argsort(price, kind="stable")]  # ties stay in product order
    else:
        by_price = avail[np.lexsort((avail, price))]
    cats = np.asarray(category_code)[by_price]
    candidates, cums = [], []
    for split in range(len(domain.BASKET_CATEGORIES)):
        hit = cats == split
        if split == _CAT["other"]:  # the split category other covers home_garden too
            hit |= cats == _CAT["home_garden"]
        in_cat = by_price[hit]
        for seg in range(_N_SEG):
            cand = _band(in_cat, seg) if in_cat.size else by_price
            if cand.size == 0:
                cand = in_cat if in_cat.size else by_price
            w = np.cumsum(np.asarray(popularity, dtype=np.float64)[cand])
            if w.size and not w[-1] > 0:
                w = np.arange(1, w.size + 1, dtype=np.float64)
            candidates.append(cand)
            cums.append(w / w[-1] if w.size else w)
    m = np.asarray(multiplier, dtype=np.float64)
    size = np.array([c.size for c in candidates], dtype=np.int64)
    group_cum = np.empty(int(size.sum()), dtype=np.complex128)
    group_cum.real = np.repeat(np.arange(size.size), size)
    group_cum.imag = np.concatenate(cums)
    return BasketDayTables(tuple(candidates), tuple(cums), group_cum,
                           np.concatenate(candidates).astype(np.int64), np.cumsum(size) - size,
                           size, mu, m, avail[m[avail] > 1.0], bool(extra_lines),
                           int(m.shape[0]))


def merge_basket_lines(visit: np.ndarray, product: np.ndarray, qty: np.ndarray, n_products: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge duplicate products of a visit into their first occurrence, summing quantities.

    Input lines are in (visit, position) order. Returns ``(visit, line_num, product, qty)`` in
    candidate order with ``line_num`` 1.. per visit.
    """
    if visit.shape[0] == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, z
    key = visit * n_products + product
    order = np.argsort(key, kind="stable")
    new_group = group_starts(key[order])
    starts = np.flatnonzero(new_group)
    total = np.add.reduceat(qty[order], starts)
    group_of = np.empty(key.shape[0], dtype=np.int64)
    group_of[order] = np.cumsum(new_group) - 1
    # Stable sort: the first occurrence leads its group; first occurrences in candidate order.
    is_first = np.zeros(key.shape[0], dtype=bool)
    is_first[order[starts]] = True
    first = np.flatnonzero(is_first)
    v = visit[first]
    return v, rank_within_groups(v) + 1, product[first], total[group_of[first]].astype(np.int64)


def draw_store_baskets(
    gen_lines: np.random.Generator, gen_category: np.random.Generator,
    gen_product: np.random.Generator, gen_qty: np.random.Generator,
    gen_overlay: np.random.Generator, *, behaviour: np.ndarray, segment: np.ndarray,
    format_code: int, tables: BasketDayTables,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One store's merged candidate baskets (streams ``basket.lines``, ``basket.category``,
    ``basket.product``, ``basket.qty``, ``holiday.overlay``).

    ``behaviour`` and ``segment`` are int8 (n_visits,) in seq order. Returns ``(visit, line_num,
    product_idx, quantity)`` int64 arrays in candidate order, ``visit`` local (0..n_visits−1).
    """
    n = behaviour.shape[0]
    beh = behaviour.astype(np.int64)
    mu = tables.mu[format_code, beh]
    n_lines = 1 + gen_lines.poisson(mu - 1.0).astype(np.int64)
    if format_code == EXPRESS:
        n_lines = np.minimum(n_lines, EXPRESS_MAX_LINES)
    line_visit = np.repeat(np.arange(n, dtype=np.int64), n_lines)
    m = line_visit.shape[0]
    line_beh = beh[line_visit]
    # rng.categorical_rows over the behaviour's split row, with its cdf computed once.
    u_split = gen_category.random(m)
    pos = np.minimum((_SPLIT_CDF[line_beh] <= u_split[:, None]).sum(axis=1), _width - 1)
    split = _SPLIT_CODE[line_beh, pos]
    group = split * _N_SEG + segment.astype(np.int64)[line_visit]
    u = gen_product.random(m)
    # searchsorted(cum[g], u, "right") of every line at once: (g, u) among all (g, cum[g]).
    key = np.empty(m, dtype=np.complex128)
    key.real = group
    key.imag = u
    size, start = tables.group_size[group], tables.group_start[group]
    pick = np.minimum(np.searchsorted(tables.group_cum, key, side="right") - start, size - 1)
    if tables.flat_candidates.size:  # a line of an empty group is dropped (−1)
        product = np.where(size > 0, tables.flat_candidates[np.maximum(start + pick, 0)], -1)
    else:
        product = np.full(m, -1, dtype=np.int64)
    q = 1 + rng.categorical(gen_qty, QTY_P, m)
    qty = np.where(_QTY_SPLIT[split], q, 1).astype(np.int64)
    visit, product, qty = apply_holiday_overlay(
        gen_overlay, line_visit, product, qty, tables.multiplier, tables.overlay_eligible, n,
        tables.extra_lines,
    )
    return merge_basket_lines(visit, product, qty, tables.n_products)


__all__ = [
    "BEHAVIOUR_MID",
    "BEHAVIOUR_MIX",
    "BEHAVIOUR_P",
    "BEHAVIOUR_QTY",
    "CATEGORY_SPLITS",
    "EXPRESS",
    "EXPRESS_MAX_LINES",
    "FORMAT_ADJ",
    "QTY_CATEGORIES",
    "QTY_P",
    "TICKET_FLOOR",
    "BasketDayTables",
    "basket_day_tables",
    "basket_mu",
    "draw_store_baskets",
    "merge_basket_lines",
    "solve_ticket_k",
]
