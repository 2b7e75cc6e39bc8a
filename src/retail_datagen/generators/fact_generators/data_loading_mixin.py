"""Master data as numpy columns, and the customer pools of every store.

The six dimension tables are read once per :meth:`load_master_data` call into frozen column sets.
Dimension ids are dense and start at 1, so the row of id ``i`` is at index ``i - 1`` in every
array here; categorical columns are integer codes into the vocabularies of
:mod:`retail_datagen.domain`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retail_datagen import domain
from retail_datagen.errors import MasterDataError, MasterDataMissingError

_DIM_ORDER = (
    "dim_geographies", "dim_distribution_centers", "dim_stores", "dim_trucks", "dim_customers",
    "dim_products",
)


def _codes(table: pa.Table, column: str, vocabulary: tuple[str, ...]) -> np.ndarray:
    """The position of every value of ``table[column]`` in ``vocabulary`` (int8), by Arrow.

    Raises:
        MasterDataError: a value is not in the vocabulary.
    """
    values = table.column(column)
    codes = pc.index_in(values, value_set=pa.array(vocabulary, pa.string()))
    if codes.null_count:
        unknown = pc.unique(pc.filter(values, pc.is_null(codes))).to_pylist()
        raise MasterDataError(
            f"{column}: {unknown[:5]} not among {list(vocabulary)}; regenerate the master "
            "data with 'retail-datagen master --force'")
    return codes.to_numpy().astype(np.int8)


def _np(table: pa.Table, column: str, dtype=None) -> np.ndarray:
    arr = table.column(column).to_numpy()
    return arr.astype(dtype) if dtype is not None else arr


@dataclass(frozen=True)
class GeographyColumns:
    geography_id: np.ndarray  # int64 (n,)
    state: np.ndarray  # object (n,)
    region_code: np.ndarray  # int8 into domain.REGIONS
    latitude: np.ndarray  # float64
    longitude: np.ndarray  # float64
    tax_ppm: np.ndarray  # int64, round(tax_rate × 1e6)


@dataclass(frozen=True)
class DCColumns:
    dc_id: np.ndarray  # int64 (n_dcs,)
    geography_id: np.ndarray  # int64


@dataclass(frozen=True)
class StoreColumns:
    store_id: np.ndarray  # int64 (n_stores,)
    geography_id: np.ndarray  # int64
    dc_id: np.ndarray  # int64
    tax_ppm: np.ndarray  # int64
    format_code: np.ndarray  # int8 into domain.STORE_FORMATS
    location_code: np.ndarray  # int8 into domain.LOCATION_TYPES
    open_hour: np.ndarray  # int64
    close_hour: np.ndarray  # int64 (24 = midnight)
    traffic_multiplier: np.ndarray  # float64 daily_traffic_multiplier
    region_code: np.ndarray  # int8 region of the store's geography


@dataclass(frozen=True)
class TruckColumns:
    truck_id: np.ndarray  # int64 (n_trucks,)
    refrigerated: np.ndarray  # bool
    type_code: np.ndarray  # int8 into domain.TRUCK_TYPES
    dc_id: np.ndarray  # int64, 0 where NULL
    capacity: np.ndarray  # int64


@dataclass(frozen=True)
class CustomerColumns:
    customer_id: np.ndarray  # int64 (n_customers,)
    geography_id: np.ndarray  # int64
    segment_code: np.ndarray  # int8 into domain.SHOPPER_SEGMENTS
    mobility_code: np.ndarray  # int8 into domain.MOBILITY_SEGMENTS
    primary_store_id: np.ndarray  # int64
    home_tax_ppm: np.ndarray  # int64, tax ppm of the home geography
    ble_id: pa.Array  # string
    ad_id: pa.Array  # string


@dataclass(frozen=True)
class ProductColumns:
    product_id: np.ndarray  # int64 (n_products,)
    category_code: np.ndarray  # int8 into domain.BASKET_CATEGORIES
    sale_price_cents: np.ndarray  # int64
    refrigerated: np.ndarray  # bool requires_refrigeration
    launch_ordinal: np.ndarray  # int64 date.toordinal() of launch_date
    tax_factor: np.ndarray  # int64 100 / 50 / 0 by taxability
    popularity: np.ndarray  # float64 popularity_weight
    is_food: np.ndarray  # bool: food or beverages, or refrigerated
    item_name: np.ndarray  # object: product_name without its leading brand
    tags: np.ndarray  # object
    category: np.ndarray  # object
    subcategory: np.ndarray  # object


@dataclass(frozen=True)
class MasterData:
    geographies: GeographyColumns
    dcs: DCColumns
    stores: StoreColumns
    trucks: TruckColumns
    customers: CustomerColumns
    products: ProductColumns


@dataclass(frozen=True)
class StorePools:
    """Who shops where (behaviour.md §4), as compressed rows per store.

    Store index ``i`` owns pool entries ``offsets[i]:offsets[i + 1]``: ``class_id`` and the
    normalised cumulative class weight ``cum_weight`` (last entry 1.0). A class is a
    (home geography, mobility segment) pair; its members are
    ``class_members[class_start[c]:class_start[c] + class_size[c]]`` (customer ids ascending).
    """

    offsets: np.ndarray  # int64 (n_stores + 1,)
    class_id: np.ndarray  # int64 (n_entries,)
    cum_weight: np.ndarray  # float64 (n_entries,)
    class_start: np.ndarray  # int64 (n_classes,)
    class_size: np.ndarray  # int64 (n_classes,)
    class_members: np.ndarray  # int64 (n_customers,) customer ids grouped by class


def _normalize_geographies(tbl: pa.Table) -> GeographyColumns:
    return GeographyColumns(
        geography_id=_np(tbl, "geography_id", np.int64),
        state=tbl.column("state").to_numpy(zero_copy_only=False),
        region_code=_codes(tbl, "region", domain.REGIONS),
        latitude=_np(tbl, "latitude", np.float64),
        longitude=_np(tbl, "longitude", np.float64),
        tax_ppm=_np(tbl, "tax_ppm", np.int64),
    )


class DataLoadingMixin:
    """Reads the dimension tables and builds the customer pools.

    This mixin defines the following functionality:

    Adds:
        ``load_master_data_from_duckdb``, ``load_master_data`` and the ``_normalize_*`` helpers.
        No fact tables.
    Reads:
        ``config``, the database target (``_open_read_connection`` of the persistence mixin).
    Writes:
        ``_master`` (:class:`MasterData`) and ``_pools`` (:class:`StorePools`).
    Streams:
        none.
    """

    def load_master_data_from_duckdb(self) -> None:
        """Load the six dimension tables from the DuckDB file into column sets."""
        self.load_master_data()

    def load_master_data(self) -> None:
        """Load the six dimension tables from the configured target into column sets.

        Raises:
            MasterDataMissingError: one or more dimension tables are absent or empty.
        """
        tables = self._read_dimension_tables()
        missing = [name for name in _DIM_ORDER if tables.get(name) is None
                   or tables[name].num_rows == 0]
        if missing:
            raise MasterDataMissingError(
                "master data missing or empty: " + ", ".join(missing)
                + " (run 'retail-datagen master' first)"
            )
        geos = self._normalize_geographies(tables["dim_geographies"])
        stores = self._normalize_stores(tables["dim_stores"], geos)
        self._master = MasterData(
            geographies=geos,
            dcs=self._normalize_dcs(tables["dim_distribution_centers"]),
            stores=stores,
            trucks=self._normalize_trucks(tables["dim_trucks"]),
            customers=self._normalize_customers(tables["dim_customers"], geos),
            products=self._normalize_products(tables["dim_products"]),
        )
        self._pools = self._build_store_customer_pools()

    def _normalize_geographies(self, tbl: pa.Table) -> GeographyColumns:
        return _normalize_geographies(tbl)

    def _normalize_dcs(self, tbl: pa.Table) -> DCColumns:
        return DCColumns(dc_id=_np(tbl, "dc_id", np.int64),
                         geography_id=_np(tbl, "geography_id", np.int64))

    def _normalize_stores(self, tbl: pa.Table, geos: GeographyColumns) -> StoreColumns:
        geo_idx = _np(tbl, "geography_id", np.int64) - 1
        return StoreColumns(
            store_id=_np(tbl, "store_id", np.int64),
            geography_id=geo_idx + 1,
            dc_id=_np(tbl, "dc_id", np.int64),
            tax_ppm=_np(tbl, "tax_ppm", np.int64),
            format_code=_codes(tbl, "store_format", domain.STORE_FORMATS),
            location_code=_codes(tbl, "location_type", domain.LOCATION_TYPES),
            open_hour=_np(tbl, "open_hour", np.int64),
            close_hour=_np(tbl, "close_hour", np.int64),
            traffic_multiplier=_np(tbl, "daily_traffic_multiplier", np.float64),
            region_code=geos.region_code[geo_idx],
        )

    def _normalize_trucks(self, tbl: pa.Table) -> TruckColumns:
        dc = tbl.column("dc_id").fill_null(0)
        return TruckColumns(
            truck_id=_np(tbl, "truck_id", np.int64),
            refrigerated=_np(tbl, "refrigeration", bool),
            type_code=_codes(tbl, "truck_type", domain.TRUCK_TYPES),
            dc_id=dc.to_numpy().astype(np.int64),
            capacity=_np(tbl, "capacity_units", np.int64),
        )

    def _normalize_customers(self, tbl: pa.Table, geos: GeographyColumns) -> CustomerColumns:
        geo_idx = _np(tbl, "geography_id", np.int64) - 1
        return CustomerColumns(
            customer_id=_np(tbl, "customer_id", np.int64),
            geography_id=geo_idx + 1,
            segment_code=_codes(tbl, "shopper_segment", domain.SHOPPER_SEGMENTS),
            mobility_code=_codes(tbl, "mobility_segment", domain.MOBILITY_SEGMENTS),
            primary_store_id=_np(tbl, "primary_store_id", np.int64),
            home_tax_ppm=geos.tax_ppm[geo_idx],
            ble_id=tbl.column("ble_id").combine_chunks(),
            ad_id=tbl.column("ad_id").combine_chunks(),
        )

    def _normalize_products(self, tbl: pa.Table) -> ProductColumns:
        category = _codes(tbl, "basket_category", domain.BASKET_CATEGORIES)
        refrigerated = _np(tbl, "requires_refrigeration", bool)
        launch = tbl.column("launch_date").cast(pa.int32()).to_numpy().astype(np.int64)
        tax_codes = _codes(tbl, "taxability", domain.TAXABILITY)
        return ProductColumns(
            product_id=_np(tbl, "product_id", np.int64),
            category_code=category,
            sale_price_cents=_np(tbl, "sale_price_cents", np.int64),
            refrigerated=refrigerated,
            launch_ordinal=launch + 719163,  # date32 days since 1970-01-01 → ordinal
            tax_factor=np.asarray(domain.TAXABILITY_FACTOR, dtype=np.int64)[tax_codes],
            popularity=_np(tbl, "popularity_weight", np.float64),
            is_food=(category <= 1) | refrigerated,
            item_name=tbl.column("item_name").to_numpy(zero_copy_only=False),
            tags=tbl.column("tags").to_numpy(zero_copy_only=False),
            category=tbl.column("category").to_numpy(zero_copy_only=False),
            subcategory=tbl.column("subcategory").to_numpy(zero_copy_only=False),
        )
