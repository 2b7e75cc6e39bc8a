"""Loading and validation of the bundled data files (master-data.md §9).

Three CSV files ship inside the package under ``retail_datagen/data``. A file of the same name
in the configured override folder (``paths.dictionaries``) replaces the packaged one. Every
file is parsed with all columns as text, so prices and tax rates keep their exact decimal
spelling, and is checked against the content rules before anyone uses it. A broken file raises
:class:`~retail_datagen.errors.DataPackageError` whose message names the file and the rule.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from retail_datagen.errors import DataPackageError

DATA_FILES: tuple[str, ...] = ("product_catalog.csv", "brands.csv", "state_sales_tax.csv")

HOLIDAY_KEYWORDS: tuple[str, ...] = (
    "turkey", "stuffing", "cranberry", "pie", "pumpkin", "dinner roll", "casserole",
    "green bean", "gravy", "yam", "sweet potato", "baking", "flour", "sugar", "butter",
    "cinnamon", "spice", "toy", "ham", "roast", "cookie", "candy", "cider", "eggnog",
    "hot chocolate", "grill", "charcoal", "burger", "hot dog", "bbq", "barbecue",
)  # fmt: skip

CATALOG_COLUMNS: tuple[str, ...] = (
    "item_name", "department", "category", "subcategory", "basket_category",
    "brand_category", "base_price", "requires_refrigeration", "tags",
)  # fmt: skip
BRAND_COLUMNS: tuple[str, ...] = ("brand", "company", "brand_category")
TAX_COLUMNS: tuple[str, ...] = ("state", "combined_rate")

BASKET_CATEGORIES: tuple[str, ...] = (
    "food", "beverages", "household", "personal_care",
    "electronics", "clothing", "home_garden", "other",
)  # fmt: skip
GROCERY_DEPARTMENT = "Grocery"
SMALL_DEPARTMENTS: tuple[str, ...] = (
    "Home & Garden", "Seasonal", "Health & Beauty", "Pet Supplies", "Electronics", "Clothing",
    "Baby & Kids", "Automotive", "Office Supplies", "Sports & Recreation",
)  # fmt: skip
REFRIGERATED_CATEGORIES: frozenset[str] = frozenset(
    {"Dairy", "Meat & Poultry", "Seafood", "Fresh Produce", "Frozen Foods"}
)
# Outside the chilled grocery categories, only baby and medicine items can need the cold chain,
# and they say so with this tag.
REFRIGERATED_TAG = "refrigerated"
REFRIGERATED_TAG_DEPARTMENTS: frozenset[str] = frozenset({"Baby & Kids", "Health & Beauty"})

US_STATES: frozenset[str] = frozenset((
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY",
))  # fmt: skip

MIN_CATALOG_ROWS = 600
MIN_GROCERY_ROWS = 450
SMALL_DEPARTMENT_RANGE = (10, 40)
MIN_BASKET_CATEGORY_ROWS = 10
MIN_KEYWORD_MATCHES = 3
MIN_BRAND_ROWS = 300
MIN_BRANDS_PER_CATEGORY = 3
MIN_PRICE_CENTS, MAX_PRICE_CENTS = 25, 200_000
MAX_TAX_RATE_PPM = 120_000  # rates must stay below 0.12

_PRICE_RE = re.compile(r"(\d+)\.(\d{2})")
_RATE_RE = re.compile(r"(\d+)(?:\.(\d{1,6}))?")
_KEYWORD_FIELDS = ("item_name", "tags", "category", "subcategory")
# Rows are joined with NUL for one regex pass; NUL never counts as a gap between words, so a
# keyword cannot straddle two rows.
_ROW_SEP = "\x00"
_ALNUM_BEFORE = r"(?<![^\W_])"
_ALNUM_AFTER = r"(?![^\W_])"
_WORD_GAP = r"(?:[^\w\x00]|_)+"

PathLike = str | os.PathLike[str]
# (file name, resolved override path or None, override mtime_ns, override size)
_Key = tuple[str, str | None, int, int]


def data_file_path(name: str, dictionaries: PathLike | None = None) -> Path | Traversable:
    """Locate the effective copy of a bundled data file.

    Args:
        name: One of :data:`DATA_FILES`.
        dictionaries: Optional override folder. It need not exist; a file of the same name in it
            replaces the packaged file.

    Returns:
        The override file's path if it exists, else the packaged resource.

    Raises:
        ValueError: If ``name`` is not a known data file.
    """
    override = _override_file(name, dictionaries)
    if override is not None:
        return Path(override)
    return resources.files("retail_datagen") / "data" / name


def data_file_bytes(name: str, dictionaries: PathLike | None = None) -> bytes:
    """Return the raw bytes of the effective data file (override or packaged).

    Args:
        name: One of :data:`DATA_FILES`.
        dictionaries: Optional override folder, as for :func:`data_file_path`.

    Raises:
        ValueError: If ``name`` is not a known data file.
        DataPackageError: If the file cannot be read.
    """
    return _read_bytes(*_cache_key(name, dictionaries))


def load_product_catalog(dictionaries: PathLike | None = None) -> pa.Table:
    """Load and validate ``product_catalog.csv``.

    Args:
        dictionaries: Optional override folder, as for :func:`data_file_path`.

    Returns:
        The catalogue in file order. Text columns are strings, ``base_price`` is
        ``decimal128(12, 2)``, ``base_price_cents`` is int64 and ``requires_refrigeration``
        is boolean.

    Raises:
        DataPackageError: If the file is missing, unparsable or breaks a content rule.
    """
    return _parse_catalog(*_cache_key("product_catalog.csv", dictionaries))


def load_brands(dictionaries: PathLike | None = None) -> pa.Table:
    """Load and validate ``brands.csv`` against itself and the effective catalogue.

    Args:
        dictionaries: Optional override folder, as for :func:`data_file_path`.

    Returns:
        The brands in file order, all columns strings.

    Raises:
        DataPackageError: If either file breaks a content rule.
    """
    brands = _parse_brands(*_cache_key("brands.csv", dictionaries))
    catalog = load_product_catalog(dictionaries)
    # The brand-count rule spans both files, so it is checked on every call rather than cached
    # with either one.
    per_category = Counter(brands.column("brand_category").to_pylist())
    for category in sorted(set(catalog.column("brand_category").to_pylist())):
        if per_category[category] < MIN_BRANDS_PER_CATEGORY:
            raise DataPackageError(
                f"brands.csv: every brand_category used by product_catalog.csv needs at least "
                f"{MIN_BRANDS_PER_CATEGORY} brands ({category!r} has {per_category[category]})"
            )
    return brands


def load_state_sales_tax(dictionaries: PathLike | None = None) -> dict[str, str]:
    """Load and validate ``state_sales_tax.csv``.

    Args:
        dictionaries: Optional override folder, as for :func:`data_file_path`.

    Returns:
        USPS state code to combined rate, with the rate text exactly as written (e.g.
        ``"0.088200"``) so callers can convert it without float error.

    Raises:
        DataPackageError: If the file breaks a content rule.
    """
    return dict(_parse_tax(*_cache_key("state_sales_tax.csv", dictionaries)))


def keyword_matches(texts: Sequence[str] | np.ndarray, keyword: str) -> np.ndarray:
    """Tell which texts contain a keyword as consecutive whole words.

    Texts and keyword are lower-cased and split on non-alphanumeric characters; the keyword
    matches when its words appear in that order, side by side, in a text's words.

    Args:
        texts: The texts to search.
        keyword: One or more words, e.g. ``"hot dog"``.

    Returns:
        A boolean array with one entry per text.
    """
    flags = np.zeros(len(texts), dtype=bool)
    words = [w for w in re.split(r"[\W_]+", keyword.lower()) if w]
    if not words or len(texts) == 0:
        return flags
    pattern = re.compile(_ALNUM_BEFORE + _WORD_GAP.join(re.escape(w) for w in words) + _ALNUM_AFTER)
    cleaned = [str(t).replace(_ROW_SEP, " ").lower() for t in texts]
    starts = np.cumsum([0] + [len(t) + 1 for t in cleaned[:-1]])
    match_starts = [m.start() for m in pattern.finditer(_ROW_SEP.join(cleaned))]
    if match_starts:
        flags[np.searchsorted(starts, match_starts, side="right") - 1] = True
    return flags


def _override_file(name: str, dictionaries: PathLike | None) -> str | None:
    if name not in DATA_FILES:
        raise ValueError(f"unknown data file {name!r}; expected one of {DATA_FILES}")
    if dictionaries is None:
        return None
    candidate = Path(dictionaries) / name
    return str(candidate.resolve()) if candidate.is_file() else None


def _cache_key(name: str, dictionaries: PathLike | None) -> _Key:
    """Key parsed results by file and override path; mtime and size catch edited overrides."""
    override = _override_file(name, dictionaries)
    if override is None:
        return name, None, 0, 0
    stat = os.stat(override)
    return name, override, stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=32)
def _read_bytes(name: str, override: str | None, _mtime: int, _size: int) -> bytes:
    try:
        if override is not None:
            return Path(override).read_bytes()
        return (resources.files("retail_datagen") / "data" / name).read_bytes()
    except OSError as exc:
        where = override or "the package"
        raise DataPackageError(f"{name}: cannot read the file from {where} ({exc})") from exc


def _read_table(name: str, key: _Key, columns: Sequence[str]) -> pa.Table:
    data = _read_bytes(*key)
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataPackageError(f"{name}: not a readable CSV file ({exc})") from exc
    if tuple(table.column_names) != tuple(columns):
        raise DataPackageError(
            f"{name}: columns must be exactly {', '.join(columns)} "
            f"(found {', '.join(table.column_names)})"
        )
    return table


def _fail(name: str, rule: str) -> DataPackageError:
    return DataPackageError(f"{name}: {rule}")


def _require_text(name: str, table: pa.Table, columns: Iterable[str]) -> None:
    for column in columns:
        for value in table.column(column).to_pylist():
            if not value or value != value.strip():
                raise _fail(name, f"{column} must be non-empty and trimmed ({value!r})")


def _require_unique(name: str, values: list[str], column: str) -> None:
    duplicates = [v for v, n in Counter(values).items() if n > 1]
    if duplicates:
        raise _fail(name, f"{column} must be unique (duplicate: {duplicates[0]!r})")


def _price_cents(name: str, item: str, text: str) -> int:
    match = _PRICE_RE.fullmatch(text)
    if match is None:
        raise _fail(name, f"base_price must have exactly 2 decimals ({item!r}: {text!r})")
    cents = int(match.group(1)) * 100 + int(match.group(2))
    if not MIN_PRICE_CENTS <= cents <= MAX_PRICE_CENTS:
        raise _fail(name, f"base_price must be between 0.25 and 2000.00 ({item!r}: {text})")
    return cents


@functools.lru_cache(maxsize=8)
def _parse_catalog(name: str, override: str | None, mtime: int, size: int) -> pa.Table:
    key = (name, override, mtime, size)
    table = _read_table(name, key, CATALOG_COLUMNS)
    col = {c: table.column(c).to_pylist() for c in CATALOG_COLUMNS}
    items = col["item_name"]
    if len(items) < MIN_CATALOG_ROWS:
        raise _fail(name, f"needs at least {MIN_CATALOG_ROWS} rows (found {len(items)})")
    _require_text(name, table, CATALOG_COLUMNS[:6])
    _require_unique(name, items, "item_name")

    cents = [_price_cents(name, i, p) for i, p in zip(items, col["base_price"], strict=True)]
    _check_departments(name, col["department"])
    _check_basket_categories(name, col["basket_category"])
    tag_lists = _check_tags(name, items, col["tags"])
    refrigerated = _check_refrigeration(name, col, tag_lists)
    for keyword in HOLIDAY_KEYWORDS:
        hits = np.logical_or.reduce([keyword_matches(col[f], keyword) for f in _KEYWORD_FIELDS])
        if int(hits.sum()) < MIN_KEYWORD_MATCHES:
            raise _fail(
                name,
                f"holiday keyword {keyword!r} must match at least {MIN_KEYWORD_MATCHES} rows "
                f"(matches {int(hits.sum())})",
            )

    columns = {c: table.column(c) for c in CATALOG_COLUMNS[:6]}
    columns["base_price"] = table.column("base_price").cast(pa.decimal128(12, 2))
    columns["base_price_cents"] = pa.array(cents, type=pa.int64())
    columns["requires_refrigeration"] = pa.array(refrigerated, type=pa.bool_())
    columns["tags"] = table.column("tags")
    return pa.table(columns)


def _check_departments(name: str, departments: list[str]) -> None:
    counts = Counter(departments)
    unknown = sorted(set(counts) - {GROCERY_DEPARTMENT, *SMALL_DEPARTMENTS})
    if unknown:
        raise _fail(name, f"department must be Grocery or a listed department ({unknown[0]!r})")
    if counts[GROCERY_DEPARTMENT] < MIN_GROCERY_ROWS:
        raise _fail(
            name,
            f"department Grocery needs at least {MIN_GROCERY_ROWS} rows "
            f"(found {counts[GROCERY_DEPARTMENT]})",
        )
    low, high = SMALL_DEPARTMENT_RANGE
    for department in SMALL_DEPARTMENTS:
        if not low <= counts[department] <= high:
            raise _fail(
                name,
                f"department {department!r} needs {low}-{high} rows (found {counts[department]})",
            )


def _check_basket_categories(name: str, baskets: list[str]) -> None:
    counts = Counter(baskets)
    unknown = sorted(set(counts) - set(BASKET_CATEGORIES))
    if unknown:
        raise _fail(name, f"basket_category must be one of {BASKET_CATEGORIES} ({unknown[0]!r})")
    for basket in BASKET_CATEGORIES:
        if counts[basket] < MIN_BASKET_CATEGORY_ROWS:
            raise _fail(
                name,
                f"basket_category {basket!r} needs at least {MIN_BASKET_CATEGORY_ROWS} rows "
                f"(found {counts[basket]})",
            )


def _check_tags(name: str, items: list[str], tags: list[str]) -> list[list[str]]:
    tag_lists = [text.split(";") if text else [] for text in tags]
    for item, text, parts in zip(items, tags, tag_lists, strict=True):
        if any(not tag or tag != tag.strip().lower() for tag in parts):
            raise _fail(name, f"tags must be lower-case keywords split by ';' ({item!r}: {text!r})")
    return tag_lists


def _check_refrigeration(
    name: str, col: dict[str, list[str]], tag_lists: list[list[str]]
) -> list[bool]:
    flags = []
    columns = [col[n] for n in ("item_name", "department", "category", "requires_refrigeration")]
    for item, department, category, text, tags in zip(*columns, tag_lists, strict=True):
        if text not in ("true", "false"):
            raise _fail(name, f"requires_refrigeration must be true or false ({item!r}: {text!r})")
        expected = category in REFRIGERATED_CATEGORIES or (
            department in REFRIGERATED_TAG_DEPARTMENTS and REFRIGERATED_TAG in tags
        )
        if (text == "true") != expected:
            raise _fail(
                name,
                "requires_refrigeration must be true exactly for the categories "
                f"{', '.join(sorted(REFRIGERATED_CATEGORIES))} and for Baby & Kids or "
                f"Health & Beauty items tagged '{REFRIGERATED_TAG}' ({item!r} is {text})",
            )
        flags.append(expected)
    return flags


@functools.lru_cache(maxsize=8)
def _parse_brands(name: str, override: str | None, mtime: int, size: int) -> pa.Table:
    table = _read_table(name, (name, override, mtime, size), BRAND_COLUMNS)
    if table.num_rows < MIN_BRAND_ROWS:
        raise _fail(name, f"needs at least {MIN_BRAND_ROWS} rows (found {table.num_rows})")
    _require_text(name, table, BRAND_COLUMNS)
    _require_unique(name, table.column("brand").to_pylist(), "brand")
    return table


@functools.lru_cache(maxsize=8)
def _parse_tax(name: str, override: str | None, mtime: int, size: int) -> dict[str, str]:
    table = _read_table(name, (name, override, mtime, size), TAX_COLUMNS)
    states = table.column("state").to_pylist()
    rates = table.column("combined_rate").to_pylist()
    if len(states) != len(US_STATES):
        raise _fail(name, f"needs exactly 51 rows, 50 states and DC (found {len(states)})")
    _require_unique(name, states, "state")
    unknown = sorted(set(states) - US_STATES)
    if unknown:
        raise _fail(name, f"state must be a USPS code of the 50 states or DC ({unknown[0]!r})")
    for state, rate in zip(states, rates, strict=True):
        match = _RATE_RE.fullmatch(rate)
        if match is None:
            raise _fail(name, f"combined_rate must have at most 6 decimals ({state}: {rate!r})")
        ppm = int(match.group(1)) * 1_000_000 + int((match.group(2) or "").ljust(6, "0"))
        if ppm >= MAX_TAX_RATE_PPM:
            raise _fail(name, f"combined_rate must be in [0, 0.12) ({state}: {rate})")
    return dict(zip(states, rates, strict=True))


__all__ = [
    "DATA_FILES", "HOLIDAY_KEYWORDS", "data_file_bytes", "data_file_path", "keyword_matches",
    "load_brands", "load_product_catalog", "load_state_sales_tax",
]  # fmt: skip
