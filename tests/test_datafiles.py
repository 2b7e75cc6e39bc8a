"""Content rules of the bundled data files and the override-folder loader (master-data.md §9)."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from retail_datagen.datafiles import (
    DATA_FILES,
    HOLIDAY_KEYWORDS,
    data_file_bytes,
    data_file_path,
    keyword_matches,
    load_brands,
    load_product_catalog,
    load_state_sales_tax,
)
from retail_datagen.errors import DataPackageError

SMALL_DEPARTMENTS = (
    "Home & Garden",
    "Seasonal",
    "Health & Beauty",
    "Pet Supplies",
    "Electronics",
    "Clothing",
    "Baby & Kids",
    "Automotive",
    "Office Supplies",
    "Sports & Recreation",
)
BASKET_CATEGORIES = (
    "food",
    "beverages",
    "household",
    "personal_care",
    "electronics",
    "clothing",
    "home_garden",
    "other",
)
REFRIGERATED_CATEGORIES = {"Dairy", "Meat & Poultry", "Seafood", "Fresh Produce", "Frozen Foods"}


def _rows(name: str) -> list[dict[str, str]]:
    """The packaged file as raw text rows, independent of the loader."""
    return list(csv.DictReader(io.StringIO(data_file_bytes(name).decode("utf-8"))))


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def catalog_rows() -> list[dict[str, str]]:
    return _rows("product_catalog.csv")


@pytest.fixture(scope="module")
def brand_rows() -> list[dict[str, str]]:
    return _rows("brands.csv")


# --- product_catalog.csv -------------------------------------------------------------------


def test_catalog_header_and_size(catalog_rows: list[dict[str, str]]) -> None:
    header = data_file_bytes("product_catalog.csv").decode("utf-8").splitlines()[0]
    assert header == (
        "item_name,department,category,subcategory,basket_category,brand_category,"
        "base_price,requires_refrigeration,tags"
    )
    assert len(catalog_rows) >= 620
    names = [r["item_name"] for r in catalog_rows]
    assert len(set(names)) == len(names)


def test_item_names_carry_no_brand(
    catalog_rows: list[dict[str, str]], brand_rows: list[dict[str, str]]
) -> None:
    names = [r["item_name"] for r in catalog_rows]
    for brand in (r["brand"] for r in brand_rows):
        assert not keyword_matches(names, brand).any(), brand


def test_prices_have_two_decimals_and_sane_range(catalog_rows: list[dict[str, str]]) -> None:
    for row in catalog_rows:
        assert re.fullmatch(r"\d+\.\d{2}", row["base_price"]), row
        assert Decimal("0.25") <= Decimal(row["base_price"]) <= Decimal("2000.00"), row


def test_loaded_prices_are_exact_cents(catalog_rows: list[dict[str, str]]) -> None:
    table = load_product_catalog()
    cents = table.column("base_price_cents").to_pylist()
    expected = [int(Decimal(r["base_price"]) * 100) for r in catalog_rows]
    assert cents == expected
    assert table.column("base_price").to_pylist() == [
        Decimal(r["base_price"]) for r in catalog_rows
    ]
    assert str(table.schema.field("base_price_cents").type) == "int64"


def test_department_sizes(catalog_rows: list[dict[str, str]]) -> None:
    counts = Counter(r["department"] for r in catalog_rows)
    assert set(counts) == {"Grocery", *SMALL_DEPARTMENTS}
    assert counts["Grocery"] >= 450
    for department in SMALL_DEPARTMENTS:
        assert 10 <= counts[department] <= 40, department


def test_basket_categories(catalog_rows: list[dict[str, str]]) -> None:
    counts = Counter(r["basket_category"] for r in catalog_rows)
    assert set(counts) == set(BASKET_CATEGORIES)
    assert min(counts.values()) >= 10
    expected = {
        "Grocery": {"food", "beverages"},
        "Health & Beauty": {"personal_care"},
        "Electronics": {"electronics"},
        "Clothing": {"clothing"},
        "Home & Garden": {"home_garden", "household"},
    }
    for row in catalog_rows:
        if row["department"] in expected:
            assert row["basket_category"] in expected[row["department"]], row


def test_refrigeration_rule(catalog_rows: list[dict[str, str]]) -> None:
    for row in catalog_rows:
        tags = row["tags"].split(";") if row["tags"] else []
        expected = row["category"] in REFRIGERATED_CATEGORIES or (
            row["department"] in {"Baby & Kids", "Health & Beauty"} and "refrigerated" in tags
        )
        assert row["requires_refrigeration"] == ("true" if expected else "false"), row
    tagged = [r for r in catalog_rows if "refrigerated" in r["tags"].split(";")]
    assert {r["department"] for r in tagged} == {"Baby & Kids", "Health & Beauty"}
    loaded = load_product_catalog().column("requires_refrigeration").to_pylist()
    assert loaded == [r["requires_refrigeration"] == "true" for r in catalog_rows]


def test_tags_are_lower_case_keywords(catalog_rows: list[dict[str, str]]) -> None:
    for row in catalog_rows:
        if row["tags"]:
            for tag in row["tags"].split(";"):
                assert tag and tag == tag.strip().lower(), row


@pytest.mark.parametrize("keyword", HOLIDAY_KEYWORDS)
def test_holiday_keyword_matches_three_rows(
    catalog_rows: list[dict[str, str]], keyword: str
) -> None:
    fields = ("item_name", "tags", "category", "subcategory")
    hits = np.zeros(len(catalog_rows), dtype=bool)
    for field in fields:
        hits |= keyword_matches([r[field] for r in catalog_rows], keyword)
    assert hits.sum() >= 3


def test_holiday_keywords_list() -> None:
    assert len(HOLIDAY_KEYWORDS) == 31
    assert HOLIDAY_KEYWORDS[0] == "turkey" and HOLIDAY_KEYWORDS[-1] == "barbecue"


# --- brands.csv ----------------------------------------------------------------------------


def test_brands_rules(catalog_rows: list[dict[str, str]], brand_rows: list[dict[str, str]]) -> None:
    assert list(brand_rows[0]) == ["brand", "company", "brand_category"]
    assert len(brand_rows) >= 320
    names = [r["brand"] for r in brand_rows]
    assert len(set(names)) == len(names)
    per_category = Counter(r["brand_category"] for r in brand_rows)
    used = {r["brand_category"] for r in catalog_rows}
    assert used == set(per_category)
    for category in used:
        assert per_category[category] >= 3, category
    for big in ("pantry", "snacks", "beverages"):
        assert per_category[big] >= 10
    assert all(r["company"] for r in brand_rows)
    assert load_brands().num_rows == len(brand_rows)


def test_brands_are_fictional(brand_rows: list[dict[str, str]]) -> None:
    well_known = {"kraft", "tide", "sony", "heinz", "nestle", "pepsi", "coca-cola", "dove"}
    assert not {r["brand"].lower() for r in brand_rows} & well_known


# --- state_sales_tax.csv -------------------------------------------------------------------


def test_state_sales_tax() -> None:
    rows = _rows("state_sales_tax.csv")
    assert list(rows[0]) == ["state", "combined_rate"]
    assert len(rows) == 51
    assert len({r["state"] for r in rows}) == 51
    assert "DC" in {r["state"] for r in rows}
    for row in rows:
        assert re.fullmatch(r"\d+(\.\d{1,6})?", row["combined_rate"]), row
        assert Decimal(0) <= Decimal(row["combined_rate"]) < Decimal("0.12"), row
    rates = load_state_sales_tax()
    assert rates["CA"] == "0.088200"
    assert rates["OR"] == "0.000000"
    assert rates["TN"] == "0.095500"
    rates["CA"] = "changed"
    assert load_state_sales_tax()["CA"] == "0.088200"


# --- keyword_matches -----------------------------------------------------------------------


def test_keyword_matches_whole_consecutive_words() -> None:
    texts = ["Hot Dog Buns 8 ct", "Hotdog", "hot-dog;bbq", "Chili Hot Dogs", "dog hot", ""]
    assert keyword_matches(texts, "hot dog").tolist() == [True, False, True, False, False, False]
    assert keyword_matches(["Graham Crackers", "Ham Steak", "honey_ham"], "ham").tolist() == [
        False,
        True,
        True,
    ]
    assert keyword_matches(np.array(["Chocolate Cookies", "cookie;baking"]), "cookie").tolist() == [
        False,
        True,
    ]


def test_keyword_matches_never_straddles_rows() -> None:
    assert keyword_matches(["turkey hot", "dog roll"], "hot dog").tolist() == [False, False]
    assert keyword_matches([], "ham").shape == (0,)


# --- override folder -----------------------------------------------------------------------


def test_missing_override_folder_uses_packaged_files(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist"
    for name in DATA_FILES:
        assert data_file_bytes(name, missing) == data_file_bytes(name)
        assert data_file_path(name, missing) == data_file_path(name)
        assert data_file_path(name, missing).is_file()
    assert load_product_catalog(missing).num_rows == len(_rows("product_catalog.csv"))
    assert load_state_sales_tax(str(missing)) == load_state_sales_tax()


def test_override_file_replaces_packaged_file(tmp_path: Path) -> None:
    rows = _rows("state_sales_tax.csv")
    for row in rows:
        if row["state"] == "CA":
            row["combined_rate"] = "0.090000"
    _write_csv(tmp_path / "state_sales_tax.csv", rows)
    override_bytes = (tmp_path / "state_sales_tax.csv").read_bytes()
    assert data_file_bytes("state_sales_tax.csv", tmp_path) == override_bytes
    assert data_file_path("state_sales_tax.csv", tmp_path) == tmp_path / "state_sales_tax.csv"
    assert load_state_sales_tax(tmp_path)["CA"] == "0.090000"
    assert load_state_sales_tax()["CA"] == "0.088200"
    # Files not present in the folder still come from the package.
    assert data_file_bytes("brands.csv", tmp_path) == data_file_bytes("brands.csv")


def test_edited_override_file_is_reloaded(tmp_path: Path) -> None:
    rows = _rows("state_sales_tax.csv")
    _write_csv(tmp_path / "state_sales_tax.csv", rows)
    assert load_state_sales_tax(tmp_path)["WY"] == "0.054400"
    # A different size guarantees the change is seen even on coarse-mtime file systems.
    rows[-1]["combined_rate"] = "0.15"
    _write_csv(tmp_path / "state_sales_tax.csv", rows)
    with pytest.raises(DataPackageError, match=r"combined_rate must be in \[0, 0\.12\)"):
        load_state_sales_tax(tmp_path)


def test_override_brands_with_duplicate_raises(tmp_path: Path) -> None:
    rows = _rows("brands.csv")
    rows.append(dict(rows[0]))
    _write_csv(tmp_path / "brands.csv", rows)
    with pytest.raises(DataPackageError, match=r"^brands\.csv: brand must be unique"):
        load_brands(tmp_path)


def test_override_brands_too_few_per_category_raises(tmp_path: Path) -> None:
    rows = [r for r in _rows("brands.csv") if r["brand_category"] != "automotive"]
    rows += [
        {"brand": f"Placeholder Motor {i}", "company": "Placeholder Co.", "brand_category": "x"}
        for i in range(5)
    ]
    rows.append(
        {"brand": "Lonely Motor", "company": "Placeholder Co.", "brand_category": "automotive"}
    )
    _write_csv(tmp_path / "brands.csv", rows)
    with pytest.raises(DataPackageError, match=r"'automotive' has 1"):
        load_brands(tmp_path)


def _drop_keyword_rows(keyword: str) -> Callable[[list[dict[str, str]]], None]:
    def mutate(rows: list[dict[str, str]]) -> None:
        hits = np.zeros(len(rows), dtype=bool)
        for field in ("item_name", "tags", "category", "subcategory"):
            hits |= keyword_matches([r[field] for r in rows], keyword)
        rows[:] = [r for r, hit in zip(rows, hits, strict=True) if not hit]
        assert len(rows) >= 600

    return mutate


def _retag_department(
    source: str, target: str, keep: int = 0
) -> Callable[[list[dict[str, str]]], None]:
    def mutate(rows: list[dict[str, str]]) -> None:
        seen = 0
        for row in rows:
            if row["department"] == source:
                seen += 1
                if seen > keep:
                    row["department"] = target

    return mutate


def _tag_refrigerated(department: str) -> Callable[[list[dict[str, str]]], None]:
    def mutate(rows: list[dict[str, str]]) -> None:
        row = next(r for r in rows if r["department"] == department)
        row["requires_refrigeration"] = "true"
        row["tags"] = "refrigerated"

    return mutate


@pytest.mark.parametrize(
    ("mutate", "rule"),
    [
        (lambda rows: rows.append(dict(rows[0])), r"item_name must be unique \(duplicate: "),
        (lambda rows: rows[0].update(base_price="4.2"), "exactly 2 decimals"),
        (lambda rows: rows[0].update(base_price="0.10"), "between 0.25 and 2000.00"),
        (lambda rows: rows[0].update(requires_refrigeration="false"), "requires_refrigeration"),
        (lambda rows: rows[0].update(requires_refrigeration="yes"), "true or false"),
        (lambda rows: rows[0].update(tags="Organic"), "lower-case"),
        (lambda rows: rows[0].update(department="Toys"), "department must be"),
        (lambda rows: rows[0].update(basket_category="dairy"), "basket_category must be one of"),
        (lambda rows: rows.__delitem__(slice(100, None)), "at least 600 rows"),
        (_drop_keyword_rows("eggnog"), "holiday keyword 'eggnog' must match at least 3 rows"),
        (_retag_department("Automotive", "Grocery"), "'Automotive' needs 10-40 rows"),
        (_retag_department("Grocery", "Seasonal", keep=300), "Grocery needs at least 450"),
        (_tag_refrigerated("Electronics"), "requires_refrigeration must be true exactly"),
    ],
)
def test_override_catalog_rule_violations(
    tmp_path: Path, mutate: Callable[[list[dict[str, str]]], None], rule: str
) -> None:
    rows = _rows("product_catalog.csv")
    mutate(rows)
    _write_csv(tmp_path / "product_catalog.csv", rows)
    with pytest.raises(DataPackageError, match=rf"^product_catalog\.csv: .*{rule}"):
        load_product_catalog(tmp_path)


@pytest.mark.parametrize(
    ("mutate", "rule"),
    [
        (lambda rows: rows.pop(), "exactly 51 rows"),
        (lambda rows: rows[0].update(state="PR"), "USPS code"),
        (lambda rows: rows[1].update(state=rows[0]["state"]), "state must be unique"),
        (lambda rows: rows[0].update(combined_rate="0.0929001"), "at most 6 decimals"),
        (lambda rows: rows[0].update(combined_rate="-0.01"), "at most 6 decimals"),
        (lambda rows: rows[0].update(combined_rate="0.120000"), r"in \[0, 0\.12\)"),
    ],
)
def test_override_tax_rule_violations(
    tmp_path: Path, mutate: Callable[[list[dict[str, str]]], None], rule: str
) -> None:
    rows = _rows("state_sales_tax.csv")
    mutate(rows)
    _write_csv(tmp_path / "state_sales_tax.csv", rows)
    with pytest.raises(DataPackageError, match=rf"^state_sales_tax\.csv: .*{rule}"):
        load_state_sales_tax(tmp_path)


def test_override_with_wrong_columns_raises(tmp_path: Path) -> None:
    (tmp_path / "brands.csv").write_text("brand,maker\nAcme,Acme Co.\n", encoding="utf-8")
    with pytest.raises(DataPackageError, match=r"^brands\.csv: columns must be exactly"):
        load_brands(tmp_path)


def test_unknown_data_file_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown data file"):
        data_file_bytes("products.csv")
