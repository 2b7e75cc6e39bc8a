"""Direct tests of single behaviour rules on generated data.

Each test recomputes one rule of behaviour.md from the spec's own formula and random-stream layout
(``rng.stream`` keyed by seed, stream name, day and shard) and compares it with what a real run
wrote to DuckDB. The configuration starves the DCs (low opening stock, small trucks, a fleet of four), so that
supplier orders, supplier deliveries and queued trucks all occur within a few days.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pytest

from conftest import config_in, generate
from retail_datagen.generators.fact_generators.logistics_mixin import departure_delays
from retail_datagen.geo import haversine_miles
from retail_datagen.rng import stream

pytestmark = pytest.mark.slow

DAYS = (date(2024, 3, 4), date(2024, 3, 8))
VOLUME = {"dc_initial_inventory_min": 0, "dc_initial_inventory_max": 400, "truck_capacity": 1000,
          "refrigerated_trucks": 4, "non_refrigerated_trucks": 0, "truck_dc_assignment_rate": 0.5,
          # Fuller stores with higher reorder points: every store reorders most days.
          "store_initial_inventory_min": 20, "store_initial_inventory_max": 200,
          "store_reorder_point_min": 5, "store_reorder_point_max": 50}
CAPACITY = VOLUME["truck_capacity"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("rules")
    config = config_in(folder, volume=VOLUME)
    generate(config, *DAYS)
    con = duckdb.connect(str(folder / "retail.duckdb"), read_only=True)
    yield con, config.seed
    con.close()


def _seconds(delta: timedelta) -> int:
    assert delta.microseconds == 0
    return int(delta.total_seconds())


def _legs(con) -> list[dict]:
    """Every DC→store leg created in the range, from its SCHEDULED row."""
    rows = con.execute(
        "SELECT shipment_id, CAST(event_ts AS DATE), truck_id, dc_id, store_id, unit_count, "
        "departure_time, eta, etd FROM fact_truck_moves WHERE status = 'SCHEDULED' "
        "ORDER BY shipment_id").fetchall()
    keys = ("shipment_id", "day", "truck_id", "dc_id", "store_id", "units", "departure", "eta",
            "etd")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _unload_minutes(units: int) -> int:
    return 30 + (180 * min(units, CAPACITY) + CAPACITY) // (2 * CAPACITY)


def test_travel_time_and_dock_wait_follow_the_leg_stream(db) -> None:
    con, seed = db
    coords = dict(((kind, key), (lat, lon)) for kind, key, lat, lon in con.execute(
        "SELECT 'dc', d.dc_id, g.latitude, g.longitude FROM dim_distribution_centers d "
        "JOIN dim_geographies g USING (geography_id) UNION ALL "
        "SELECT 'store', s.store_id, g.latitude, g.longitude FROM dim_stores s "
        "JOIN dim_geographies g USING (geography_id)").fetchall())
    by_day_dc: dict[tuple, list[dict]] = defaultdict(list)
    for leg in _legs(con):
        by_day_dc[leg["day"], leg["dc_id"]].append(leg)
    assert len(by_day_dc) >= 2 * (DAYS[1] - DAYS[0]).days
    checked = 0
    for (day, dc), legs in by_day_dc.items():
        # Leg order within a DC: (store_id, leg), which is shipment_id order.
        legs.sort(key=lambda leg: (leg["store_id"], int(leg["shipment_id"][-3:])))
        rng = stream(seed, "logistics.legs", day, dc)
        factor = 0.95 + (1.25 - 0.95) * rng.random(len(legs))
        wait = rng.integers(0, 1801, len(legs))
        for leg, f, w in zip(legs, factor, wait, strict=True):
            (lat1, lon1), (lat2, lon2) = coords["dc", dc], coords["store", leg["store_id"]]
            miles = float(haversine_miles(lat1, lon1, lat2, lon2))
            travel_s = int(np.floor((0.5 + miles / 45 * f) * 3600 + 0.5))
            assert _seconds(leg["eta"] - leg["departure"]) == travel_s, leg
            unload_s = _unload_minutes(leg["units"]) * 60
            assert _seconds(leg["etd"] - leg["eta"]) - unload_s == int(w), leg
            checked += 1
    assert checked > 50


def test_unload_duration_and_status_times_of_completed_legs(db) -> None:
    con, _ = db
    rows = con.execute(
        "SELECT shipment_id, status, event_ts, unit_count, departure_time, eta, etd, "
        "unload_duration_minutes FROM fact_truck_moves ORDER BY shipment_id, event_ts").fetchall()
    statuses: dict[str, dict[str, tuple]] = defaultdict(dict)
    for sid, status, ts, units, dep, eta, etd, unload in rows:
        statuses[sid][status] = (ts, units, dep, eta, etd, unload)
    complete = [s for s in statuses.values() if "COMPLETED" in s and "UNLOADING" in s]
    assert len(complete) > 20
    for s in complete:
        ts, units, dep, eta, etd, unload = s["COMPLETED"]
        assert unload == _unload_minutes(units)
        assert ts == etd == s["UNLOADING"][0] + timedelta(minutes=unload)
        if "LOADING" in s:
            assert s["LOADING"][0] == dep - timedelta(hours=2)
        if "ARRIVED" in s:
            assert s["ARRIVED"][0] == eta


def test_planned_departure_or_the_truck_two_hours_after_its_return(db) -> None:
    con, seed = db
    by_truck: dict[int, list[dict]] = defaultdict(list)
    for leg in _legs(con):
        by_truck[leg["truck_id"]].append(leg)
    # Each DC's legs of a day draw their delay after plan in (store_id, leg) order.
    delay: dict[str, int] = {}
    by_day_dc: dict[tuple, list[dict]] = defaultdict(list)
    for leg in _legs(con):
        by_day_dc[leg["day"], leg["dc_id"]].append(leg)
    for (day, dc), legs in by_day_dc.items():
        legs.sort(key=lambda leg: (leg["store_id"], int(leg["shipment_id"][-3:])))
        late = departure_delays(stream(seed, "logistics.delay", day, dc), len(legs))
        delay.update((leg["shipment_id"], int(us)) for leg, us in zip(legs, late, strict=True))
    assert any(delay.values()) and not all(delay.values())
    waited = on_time = 0
    for legs in by_truck.values():
        legs.sort(key=lambda leg: leg["departure"])
        # Trucks start free at the first day's midnight (no earlier leg).
        free_at = datetime.combine(DAYS[0], datetime.min.time())
        for leg in legs:
            number = int(leg["shipment_id"][-3:])
            planned = (datetime.combine(leg["day"] + timedelta(days=1), datetime.min.time())
                       + timedelta(hours=6, minutes=30 * (number - 1))
                       + timedelta(microseconds=delay[leg["shipment_id"]]))
            assert leg["departure"] == max(planned, free_at + timedelta(hours=2)), leg
            waited += leg["departure"] > planned
            on_time += leg["departure"] == planned
            # The return trip takes the outbound travel time.
            free_at = leg["etd"] + (leg["eta"] - leg["departure"])
    assert on_time > 0 and waited > 0, (on_time, waited)


def test_supplier_trucks_are_dealt_round_robin_per_class(db) -> None:
    con, _ = db
    trucks = con.execute("SELECT truck_id, refrigeration FROM dim_trucks "
                         "WHERE truck_type = 'SUPPLIER' ORDER BY truck_id").fetchall()
    pool = {cls: [t for t, r in trucks if r == cls] for cls in (True, False)}
    legs = con.execute(
        "SELECT source, CAST(event_ts AS DATE), dc_id, min(truck_id), max(truck_id), "
        "bool_or(p.requires_refrigeration), bool_and(p.requires_refrigeration) "
        "FROM fact_dc_inventory_txn t JOIN dim_products p USING (product_id) "
        "WHERE txn_type = 'INBOUND_SHIPMENT' GROUP BY ALL ORDER BY source").fetchall()
    assert legs and all(source.startswith("SUP") for source, *_ in legs)
    by_arrival: dict[tuple, list] = defaultdict(list)
    for source, day, dc, lo, hi, any_ref, all_ref in legs:
        assert lo == hi and any_ref == all_ref, source  # one truck and one class per leg
        assert source == f"SUP{day:%Y%m%d}{dc:04d}{int(source[-3:]):03d}"
        by_arrival[day, dc].append((int(source[-3:]), all_ref, lo))
    dealt = 0
    for (day, dc), pieces in by_arrival.items():
        pieces.sort()
        # Refrigerated legs are numbered first, then ambient.
        assert [r for _, r, _ in pieces] == sorted((r for _, r, _ in pieces), reverse=True)
        assert [n for n, _, _ in pieces] == list(range(1, len(pieces) + 1))
        for cls in (True, False):
            mine = [truck for _, r, truck in pieces if r == cls]
            start = day.toordinal() + dc
            assert mine == [pool[cls][(start + k) % len(pool[cls])] for k in range(len(mine))]
            dealt += len(mine)
    assert dealt > 10


def test_supplier_order_quantity_and_lead_time(db) -> None:
    con, seed = db
    orders = con.execute("SELECT dc_id, product_id, quantity, order_day, arrival_day "
                         "FROM gen_state_supplier_orders ORDER BY dc_id, product_id").fetchall()
    assert orders
    lo, hi = max(1, VOLUME["dc_initial_inventory_min"]), VOLUME["dc_initial_inventory_max"]
    for _, _, qty, ordered, arrives in orders:
        assert lo <= qty <= hi and 1 <= (arrives - ordered).days <= 3
    # Orders of the last day are all still pending: the stream reproduces them exactly, and
    # they are the available products whose end-of-day on_hand + on_order <= reorder point.
    last = [o for o in orders if o[3] == DAYS[1]]
    state = {(n, p): (on_hand, on_order) for n, p, on_hand, on_order in con.execute(
        "SELECT node_id, product_id, on_hand, on_order FROM gen_state_inventory "
        "WHERE node_type = 'DC'").fetchall()}
    rp = dict(((n, p), r) for n, p, r in con.execute(
        "SELECT node_id, product_id, reorder_point FROM gen_initial_inventory "
        "WHERE node_type = 'DC'").fetchall())
    available = {p for (p,) in con.execute(
        f"SELECT product_id FROM dim_products WHERE launch_date <= DATE '{DAYS[1]}'").fetchall()}
    for dc in sorted({o[0] for o in last}):
        mine = [o for o in last if o[0] == dc]
        rng = stream(seed, "supplier.order", DAYS[1], dc)
        qty = rng.integers(lo, hi + 1, len(mine))
        lead = rng.integers(1, 4, len(mine))
        assert [o[2] for o in mine] == qty.tolist()
        assert [(o[4] - o[3]).days for o in mine] == lead.tolist()
        ordered_today = {o[1]: o[2] for o in mine}
        due = sorted(p for (n, p), (on_hand, on_order) in state.items()
                     if n == dc and p in available
                     and on_hand + on_order - ordered_today.get(p, 0) <= rp[n, p])
        assert due == [o[1] for o in mine]


def test_cycle_counts_follow_the_adjustment_streams(db) -> None:
    con, seed = db
    store_ids = [s for (s,) in con.execute("SELECT store_id FROM dim_stores ORDER BY 1")
                 .fetchall()]
    rows = con.execute(
        "SELECT CAST(event_ts AS DATE), event_ts, store_id, product_id, quantity "
        "FROM fact_store_inventory_txn WHERE source = 'CYCLE_COUNT'").fetchall()
    written = {(day, store, product): qty for day, _, store, product, qty in rows}
    assert rows and all((ts.hour, ts.minute, ts.second) == (22, 0, 0) for _, ts, *_ in rows)
    expected_rows = 0
    day = DAYS[0]
    while day <= DAYS[1]:
        available = [p for (p,) in con.execute(
            f"SELECT product_id FROM dim_products WHERE launch_date <= DATE '{day}' "
            "ORDER BY product_id").fetchall()]
        k = max(1, len(store_ids) // 10)
        keys = stream(seed, "adjust.stores", day, 0).random(len(store_ids))
        chosen = sorted(sorted(range(len(store_ids)), key=lambda i: (-keys[i], i))[:k])
        for index in chosen:
            store = store_ids[index]
            rng = stream(seed, "adjust.lines", day, store)
            count = int(rng.integers(1, 4))
            pkeys = rng.random(len(available))
            v = rng.integers(0, 10, 3)
            picked = sorted(range(len(available)), key=lambda i: (-pkeys[i], i))[:count]
            for position, i in enumerate(picked):
                delta = int(v[position] - 5 if v[position] < 5 else v[position] - 4)
                got = written.pop((day, store, available[i]), 0)
                # A count up always applies; a count down takes at most what is there.
                assert got == delta if delta > 0 else delta <= got <= 0, (day, store, delta)
                expected_rows += 1
        day += timedelta(days=1)
    assert written == {} and expected_rows >= 5


def test_receipt_ids_follow_time_within_a_store_day(db) -> None:
    con, _ = db
    rows = con.execute(
        "SELECT receipt_type, store_id, CAST(event_ts AS DATE), receipt_id_ext, event_ts, "
        "return_for_receipt_id_ext FROM fact_receipts").fetchall()
    groups: dict[tuple, list] = defaultdict(list)
    for kind, store, day, rid, ts, original in rows:
        groups[kind, store, day].append((rid, ts, original or ""))
    assert any(kind == "RETURN" for kind, _, _ in groups)
    for (kind, store, day), items in groups.items():
        by_id = sorted(items)
        prefix = f"{'RCP' if kind == 'SALE' else 'RET'}{day:%Y%m%d}{store:05d}"
        assert all(rid.startswith(prefix) and len(rid) == len(prefix) + 6 for rid, _, _ in items)
        # SALE: seq is the visit seq (visit time order, gaps allowed); RETURN: 1..n by
        # (return time, original receipt id).
        assert [ts for _, ts, _ in by_id] == sorted(ts for _, ts, _ in items)
        if kind == "RETURN":
            assert [rid for rid, _, _ in sorted(items, key=lambda x: (x[1], x[2]))] == [
                f"{prefix}{seq:06d}" for seq in range(1, len(items) + 1)]
