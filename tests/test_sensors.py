"""Tests of foot traffic, BLE pings, zone changes and store ops (behaviour.md §14)."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from retail_datagen import domain
from retail_datagen.generators.fact_generators import (
    marketing_mixin,
    sensors_mixin,
    store_ops_mixin,
    zone_changes_mixin,
)
from retail_datagen.generators.fact_generators.sensors_mixin import (
    BLE_PINGS_SCHEMA,
    FOOT_DWELL_MAX,
    FOOT_DWELL_MIN,
    FOOT_HOUR_FACTOR_X10,
    FOOT_TRAFFIC_SCHEMA,
    FOOT_ZONE_SHARE,
    FOOT_ZONE_VAR,
    ble_pings_table,
    draw_ble_pings,
    draw_foot_traffic,
    foot_traffic_table,
    order_ble_zones,
)
from retail_datagen.generators.fact_generators.store_ops_mixin import (
    STORE_OPS_SCHEMA,
    store_ops_table,
)
from retail_datagen.generators.fact_generators.utils_mixin import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_SECOND,
    day_start_us,
)
from retail_datagen.generators.fact_generators.zone_changes_mixin import (
    ZONE_CHANGES_SCHEMA,
    customer_zone_changes_table,
)
from retail_datagen.rng import stream
from sensor_fixtures import SensorHost, make_customers, make_day_context, make_stores, make_visits

WEEKDAY = date(2024, 3, 4)
SATURDAY = date(2024, 11, 30)
CHRISTMAS = date(2024, 12, 25)


def _ts(table: pa.Table, column: str = "EventTS") -> np.ndarray:
    return table.column(column).cast(pa.int64()).to_numpy()


def _np(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy(zero_copy_only=False)


@pytest.fixture(scope="module", params=[WEEKDAY, SATURDAY], ids=["weekday", "saturday"])
def day_batches(request):
    host = SensorHost()
    ctx = make_day_context(request.param, host._master.stores)
    visits = make_visits(ctx)
    pings = host._generate_ble_pings(ctx, visits)
    return {
        "host": host,
        "ctx": ctx,
        "visits": visits,
        "foot": host._generate_foot_traffic(ctx, visits),
        "pings": pings,
        "changes": host._generate_customer_zone_changes(pings),
        "ops": host._generate_store_ops(ctx),
    }


# --- foot traffic --------------------------------------------------------------------------------


def test_foot_traffic_shape(day_batches) -> None:
    ft, ctx = day_batches["foot"], day_batches["ctx"]
    assert ft.schema == FOOT_TRAFFIC_SCHEMA
    assert ft.num_rows > 0 and ft.num_rows % 5 == 0
    ts, store = _ts(ft), _np(ft, "StoreID")
    zone = _np(ft, "Zone")
    assert ((ts - ctx.day_start_us) % US_PER_HOUR == 0).all()
    hour = (ts - ctx.day_start_us) // US_PER_HOUR
    assert ctx.open_mask[store - 1, hour].all()
    # Exactly the five zones per written (store, hour), in column order.
    assert (zone.reshape(-1, 5) == np.array(domain.FOOT_TRAFFIC_ZONES)[None, :]).all()
    assert (store.reshape(-1, 5) == store.reshape(-1, 5)[:, :1]).all()
    assert (ts.reshape(-1, 5) == ts.reshape(-1, 5)[:, :1]).all()
    keys = store.reshape(-1, 5)[:, 0] * 100 + hour.reshape(-1, 5)[:, 0]
    assert np.unique(keys).size == keys.size
    count, dwell = _np(ft, "Count"), _np(ft, "DwellSeconds")
    zone_code = np.tile(np.arange(5), ft.num_rows // 5)
    assert (count >= 0).all()
    assert ((dwell >= FOOT_DWELL_MIN[zone_code]) & (dwell <= FOOT_DWELL_MAX[zone_code])).all()
    expected_sensor = [f"SENSOR_{s:05d}_{z}" for s, z in zip(store.tolist(), zone.tolist(), strict=True)]
    assert _np(ft, "SensorId").tolist() == expected_sensor


def test_foot_traffic_hours_with_visits_always_written(day_batches) -> None:
    ft, ctx, visits = day_batches["foot"], day_batches["ctx"], day_batches["visits"]
    store = _np(ft, "StoreID")[::5]
    hour = (_ts(ft)[::5] - ctx.day_start_us) // US_PER_HOUR
    written = np.zeros((ctx.open_mask.shape[0], 24), dtype=bool)
    written[store - 1, hour] = True
    busy = visits.visits_per_hour > 0
    assert written[busy].all()
    assert not written[~ctx.open_mask].any()


def test_foot_traffic_counts_follow_the_integer_formulas() -> None:
    visits_by_hour = np.zeros(24, dtype=np.int64)
    visits_by_hour[8:22] = [0, 3, 7, 12, 40, 1, 0, 5, 9, 22, 15, 2, 1, 0]
    open_hours = np.arange(8, 22)
    for fmt in range(len(domain.STORE_FORMATS)):
        for weekend in (False, True):
            draw = draw_foot_traffic(3, fmt, open_hours, visits_by_hour, weekend,
                                     stream(1, "foot.noise", WEEKDAY, 3))
            v = np.maximum(visits_by_hour[draw.hour], 1)
            hf = FOOT_HOUR_FACTOR_X10[draw.hour]
            wf = 9 if weekend else 10
            total = np.maximum(v + 1, (1000 * v) // (2 * hf * wf))
            base = total[:, None] * FOOT_ZONE_SHARE[fmt][None, :] // 100
            j = base * FOOT_ZONE_VAR[fmt] // 100
            assert (draw.count >= np.maximum(0, base - j)).all()
            assert (draw.count <= base + j).all()
            assert set(np.flatnonzero(visits_by_hour > 0)) <= set(draw.hour.tolist())


def test_foot_traffic_empty_hours_written_about_30_percent() -> None:
    open_hours = np.arange(24)
    visits = np.zeros(24, dtype=np.int64)
    written = sum(
        draw_foot_traffic(s, 2, open_hours, visits, False, stream(5, "foot.noise", WEEKDAY, s))
        .hour.size for s in range(1, 301)
    )
    assert 0.25 < written / (300 * 24) < 0.35


def test_foot_traffic_empty_input_has_schema() -> None:
    assert foot_traffic_table(day_start_us(WEEKDAY), []).schema == FOOT_TRAFFIC_SCHEMA


# --- BLE pings -----------------------------------------------------------------------------------


def _unit_dsids(day, units) -> list[int]:
    """DSIDs YYYYMMDD × 10^11 + u × 10^8 + n, n counting rows within each unit (sharding.md §3)."""
    seen: dict[int, int] = {}
    out = []
    for unit in np.asarray(units).tolist():
        seen[unit] = seen.get(unit, 0) + 1
        out.append(int(day.strftime("%Y%m%d")) * 10**11 + unit * 10**8 + seen[unit])
    return out


def test_ble_pings_schema_and_dsids(day_batches) -> None:
    pings, ctx = day_batches["pings"], day_batches["ctx"]
    assert pings.schema == BLE_PINGS_SCHEMA
    ids = _np(pings, "PingId")
    units = day_batches["host"]._master.stores.dc_id[_np(pings, "StoreID") - 1]
    assert ids.tolist() == _unit_dsids(ctx.day, units)
    ts, store, seq = _ts(pings), _np(pings, "StoreID"), _np(pings, "VisitSeq")
    key = np.lexsort((seq, store, ts))
    assert (key == np.arange(pings.num_rows)).all()  # rows already in (event_ts, store, seq) order
    rssi = _np(pings, "RSSI")
    assert rssi.min() >= -80 and rssi.max() <= -30


def _visit_frame(batches):
    pings, visits, stores = batches["pings"], batches["visits"], batches["host"]._master.stores
    store, seq = _np(pings, "StoreID"), _np(pings, "VisitSeq")
    row = visits.store_offsets[store - 1] + seq - 1  # the visit's row in Visits
    assert (visits.visit_seq[row] == seq).all()
    return pings, visits, stores, store, seq, row


def test_ble_pings_inside_visit_window_and_open_hours(day_batches) -> None:
    pings, visits, stores, store, seq, row = _visit_frame(day_batches)
    ctx = day_batches["ctx"]
    ts = _ts(pings)
    end = visits.ts_us[row]
    open_us = ctx.day_start_us + stores.open_hour[store - 1] * US_PER_HOUR
    start = np.maximum(end - 2_400 * US_PER_SECOND, open_us)
    assert ((ts >= start) & (ts <= end)).all()
    hour = (ts - ctx.day_start_us) // US_PER_HOUR
    assert ctx.open_mask[store - 1, hour].all()
    # Every visit has pings.
    assert np.unique(row).size == len(visits)


def test_ble_pings_zones_per_visit(day_batches) -> None:
    pings, visits, _stores, store, seq, row = _visit_frame(day_batches)
    ts = _ts(pings)
    zone = pc.index_in(pings.column("Zone"), value_set=pa.array(domain.BLE_ZONES)).to_numpy()
    order = np.lexsort((_np(pings, "PingId"), ts, row))
    r, z = row[order], zone[order]
    new_visit = np.r_[True, r[1:] != r[:-1]]
    new_run = new_visit | np.r_[True, z[1:] != z[:-1]]
    runs = np.bincount(r, weights=new_run)[np.unique(r)]
    pair = np.unique(r * 10 + z)
    distinct = np.bincount(pair // 10)[np.unique(r)]
    # 2..4 zones, each zone one contiguous run in time (zone j never after zone j + 1).
    assert ((distinct >= 2) & (distinct <= 4)).all()
    assert (runs == distinct).all()
    # ENTRANCE first and CHECKOUT last when chosen.
    first = z[new_visit]
    last = z[np.r_[new_visit[1:], True]]
    has_entrance = np.isin(np.unique(r), pair[pair % 10 == 0] // 10)
    has_checkout = np.isin(np.unique(r), pair[pair % 10 == 4] // 10)
    assert (first[has_entrance] == 0).all()
    assert (last[has_checkout] == 4).all()


def test_ble_pings_identity(day_batches) -> None:
    pings, visits, _stores, store, seq, row = _visit_frame(day_batches)
    ctx = day_batches["ctx"]
    ble = _np(pings, "CustomerBLEId")
    cust = pings.column("CustomerID")
    known = cust.is_valid().to_numpy(zero_copy_only=False)
    # One id per visit.
    for r in np.unique(row)[:200]:
        assert np.unique(ble[row == r]).size == 1
    anon = re.compile(r"^ANON-(\d{5})-(\d{8})-(\d{6})$")
    tag = ctx.day.strftime("%Y%m%d")
    for b, s, q, k in zip(ble[~known], store[~known], seq[~known], known[~known], strict=True):
        m = anon.match(b)
        assert m and not k
        assert (int(m.group(1)), m.group(2), int(m.group(3))) == (s, tag, q)
    cid = cust.to_numpy(zero_copy_only=False)[known].astype(np.int64)
    assert (cid == visits.customer_id[row[known]]).all()
    assert ble[known].tolist() == [f"BLE{c:06d}" for c in cid]
    per_visit_known = np.unique(row[known]).size / np.unique(row).size
    assert 0.15 < per_visit_known < 0.45
    beacon = _np(pings, "BeaconId")
    zone = _np(pings, "Zone")
    assert beacon[:50].tolist() == [f"BEACON_{s:05d}_{z}" for s, z in zip(store[:50], zone[:50], strict=True)]


def test_order_ble_zones_moves_entrance_first_and_checkout_last() -> None:
    key = np.array([
        [0.1, 0.9, 0.8, 0.2, 0.95],  # k=3: CHECKOUT, ELECTRONICS, GROCERY → ELEC, GROC, CHECKOUT
        [0.7, 0.9, 0.1, 0.2, 0.3],  # k=2: ELECTRONICS, ENTRANCE → ENTRANCE, ELECTRONICS
        [0.5, 0.5, 0.9, 0.1, 0.2],  # k=4 with a tie: GROCERY, ENTRANCE, ELEC, CHECKOUT
        [0.9, 0.8, 0.7, 0.6, 0.5],  # k=4: ENTRANCE, ELEC, GROCERY, CLOTHING
    ])
    k = np.array([3, 2, 4, 4])
    got = order_ble_zones(key, k)
    assert got.tolist() == [[1, 2, 4, -1], [0, 1, -1, -1], [0, 2, 1, 4], [0, 1, 2, 3]]


def test_ble_pings_follow_the_stream_layout() -> None:
    open_us = day_start_us(WEEKDAY) + 9 * US_PER_HOUR
    ts = open_us + np.array([0, 5, 10_000_000, 3_000_000_000, 4_000_000_000])
    seq = np.arange(1, 6)
    cust = np.array([1, 2, 3, 4, 5])
    fmt, mult = 0, 2.5  # hypermarket; the multiplier is clamped to 1.8
    draw = draw_ble_pings(9, fmt, mult, open_us, ts, seq, cust,
                          stream(3, "ble.visit", WEEKDAY, 9), stream(3, "ble.pings", WEEKDAY, 9))

    # Re-draw the variates by hand, kind by kind, as behaviour.md §1 lays them out.
    r = stream(3, "ble.visit", WEEKDAY, 9)
    n = ts.size
    known = r.random(n) < 0.30
    window = r.integers(480, 2_401, n)
    k = r.integers(2, 5, n)
    weights = np.array([0.20, 0.25, 0.30, 0.15, 0.10])
    key = r.random((n, 5)) ** (1 / weights)
    factor = 2 + 3 * r.random((n, 4))
    per_zone = np.maximum(1, (factor * 1.6 * 1.8).astype(np.int64))
    zones = order_ble_zones(key, k)
    expected_cells = [(v, j) for v in range(n) for j in range(k[v]) for _ in range(per_zone[v, j])]
    got_cells = list(zip(draw.visit.tolist(), draw.zone_pos.tolist(), strict=True))
    assert got_cells == expected_cells
    assert draw.zone_code.tolist() == [zones[v, j] for v, j in expected_cells]
    assert (draw.customer_id == np.where(known, cust, 0)).all()
    assert (draw.visit_seq == seq).all()
    p = stream(3, "ble.pings", WEEKDAY, 9)
    u = p.random(len(expected_cells))
    assert (draw.rssi == p.integers(-80, -29, len(expected_cells))).all()
    end = ts[draw.visit]
    start = np.maximum(end - window[draw.visit] * US_PER_SECOND, open_us)
    kk = k[draw.visit]
    lo = start + (draw.zone_pos * (end - start)) // kk
    hi = start + ((draw.zone_pos + 1) * (end - start)) // kk
    assert (draw.ts_us == lo + np.floor(u * (hi - lo)).astype(np.int64)).all()
    # A visit at the open instant has a zero-width window: every ping at the open time.
    assert (draw.ts_us[draw.visit == 0] == open_us).all()


# --- zone changes --------------------------------------------------------------------------------


def test_zone_changes_k_minus_one_per_visit(day_batches) -> None:
    pings, changes, ctx = day_batches["pings"], day_batches["changes"], day_batches["ctx"]
    assert changes.schema == ZONE_CHANGES_SCHEMA
    p_key = _np(pings, "StoreID") * 1_000_000 + _np(pings, "VisitSeq")
    zone_pairs = np.unique(p_key * 10 + pc.index_in(
        pings.column("Zone"), value_set=pa.array(domain.BLE_ZONES)).to_numpy())
    visits, k = np.unique(zone_pairs // 10, return_counts=True)
    c_key = _np(changes, "StoreID") * 1_000_000 + _np(changes, "VisitSeq")
    c_visits, c_count = np.unique(c_key, return_counts=True)
    assert (c_visits == visits).all()
    assert (c_count == k - 1).all()
    assert (_np(changes, "FromZone") != _np(changes, "ToZone")).all()
    ids = _np(changes, "ZoneChangeId")
    units = day_batches["host"]._master.stores.dc_id[_np(changes, "StoreID") - 1]
    assert ids.tolist() == _unit_dsids(ctx.day, units)
    assert (np.diff(_ts(changes)) >= 0).all()


def test_zone_changes_match_ping_boundaries(day_batches) -> None:
    pings, changes = day_batches["pings"], day_batches["changes"]
    rows = pings.to_pylist()
    rows.sort(key=lambda r: (r["StoreID"], r["VisitSeq"], r["EventTS"], r["PingId"]))
    expected = set()
    for prev, cur in zip(rows, rows[1:], strict=False):
        same = (prev["StoreID"], prev["VisitSeq"]) == (cur["StoreID"], cur["VisitSeq"])
        if same and prev["Zone"] != cur["Zone"]:
            expected.add((cur["EventTS"], cur["StoreID"], cur["CustomerBLEId"], cur["CustomerID"],
                          cur["VisitSeq"], prev["Zone"], cur["Zone"]))
    got = {(r["EventTS"], r["StoreID"], r["CustomerBLEId"], r["CustomerID"], r["VisitSeq"],
            r["FromZone"], r["ToZone"]) for r in changes.to_pylist()}
    assert got == expected and len(got) == changes.num_rows


def test_zone_changes_ignore_input_row_order(day_batches) -> None:
    pings, changes = day_batches["pings"], day_batches["changes"]
    shuffled = pings.take(np.random.default_rng(0).permutation(pings.num_rows))
    assert customer_zone_changes_table(shuffled).equals(changes)
    empty = customer_zone_changes_table(BLE_PINGS_SCHEMA.empty_table())
    assert empty.num_rows == 0 and empty.schema == ZONE_CHANGES_SCHEMA


# --- store ops -----------------------------------------------------------------------------------


def test_store_ops_two_rows_per_store(day_batches) -> None:
    ops, ctx = day_batches["ops"], day_batches["ctx"]
    stores = day_batches["host"]._master.stores
    assert ops.schema == STORE_OPS_SCHEMA
    assert ops.num_rows == 2 * stores.store_id.size
    store, ts = _np(ops, "StoreID"), _ts(ops)
    assert (np.lexsort((ts, store)) == np.arange(ops.num_rows)).all()
    assert _np(ops, "OperationType").tolist() == ["OPENED", "CLOSED"] * stores.store_id.size
    secs = (ts - ctx.day_start_us) // US_PER_SECOND
    expected = np.column_stack([stores.open_hour * 3600,
                                np.where(stores.close_hour == 24, 86_399,
                                         stores.close_hour * 3600)]).reshape(-1)
    assert (secs == expected).all()
    # Store 1 is 24/7: 00:00:00 and 23:59:59.
    assert secs[:2].tolist() == [0, 86_399]


def test_store_ops_24_7_times() -> None:
    t = store_ops_table(day_start_us(WEEKDAY), np.array([4]), np.array([0]), np.array([24]), False)
    assert [str(v) for v in t.column("EventTS").to_pylist()] == [
        "2024-03-04 00:00:00", "2024-03-04 23:59:59"]


def test_nothing_store_facing_on_christmas() -> None:
    host = SensorHost()
    ctx = make_day_context(CHRISTMAS, host._master.stores)
    visits = make_visits(ctx)
    assert len(visits) == 0
    foot = host._generate_foot_traffic(ctx, visits)
    pings = host._generate_ble_pings(ctx, visits)
    changes = host._generate_customer_zone_changes(pings)
    ops = host._generate_store_ops(ctx)
    for table, schema in ((foot, FOOT_TRAFFIC_SCHEMA), (pings, BLE_PINGS_SCHEMA),
                          (changes, ZONE_CHANGES_SCHEMA), (ops, STORE_OPS_SCHEMA)):
        assert table.num_rows == 0 and table.schema == schema


# --- determinism and mixin shape -----------------------------------------------------------------


def test_same_inputs_same_tables() -> None:
    def run(seed: int):
        host = SensorHost(seed=seed)
        ctx = make_day_context(WEEKDAY, host._master.stores)
        visits = make_visits(ctx)
        pings = host._generate_ble_pings(ctx, visits)
        return (host._generate_foot_traffic(ctx, visits), pings,
                host._generate_customer_zone_changes(pings), host._generate_store_ops(ctx))

    a, b, c = run(11), run(11), run(12)
    for x, y in zip(a, b, strict=True):
        assert x.equals(y)
    assert not a[0].equals(c[0]) and not a[1].equals(c[1])


def test_store_draws_do_not_depend_on_other_stores() -> None:
    stores = make_stores()
    host_all = SensorHost(stores=stores)
    ctx = make_day_context(WEEKDAY, stores)
    visits = make_visits(ctx)
    pings = host_all._generate_ble_pings(ctx, visits)
    # Store 3 alone, with only its visits.
    lo, hi = int(visits.store_offsets[2]), int(visits.store_offsets[3])
    alone = draw_ble_pings(3, int(stores.format_code[2]), float(stores.traffic_multiplier[2]),
                           ctx.day_start_us + int(stores.open_hour[2]) * US_PER_HOUR,
                           visits.ts_us[lo:hi], visits.visit_seq[lo:hi],
                           visits.customer_id[lo:hi], stream(42, "ble.visit", WEEKDAY, 3),
                           stream(42, "ble.pings", WEEKDAY, 3))
    mine = pings.filter(pc.equal(pings.column("StoreID"), 3))
    assert sorted(_ts(mine).tolist()) == sorted(alone.ts_us.tolist())


def test_ping_dsid_order_does_not_depend_on_draw_order() -> None:
    stores = make_stores()
    ctx = make_day_context(WEEKDAY, stores)
    visits = make_visits(ctx)
    draws = []
    for i in range(stores.store_id.size):
        lo, hi = int(visits.store_offsets[i]), int(visits.store_offsets[i + 1])
        sid = int(stores.store_id[i])
        draws.append(draw_ble_pings(
            sid, int(stores.format_code[i]), float(stores.traffic_multiplier[i]),
            ctx.day_start_us + int(stores.open_hour[i]) * US_PER_HOUR, visits.ts_us[lo:hi],
            visits.visit_seq[lo:hi], visits.customer_id[lo:hi],
            stream(1, "ble.visit", WEEKDAY, sid), stream(1, "ble.pings", WEEKDAY, sid)))
    ble_ids = make_customers().ble_id
    # Stores alternate between DC units 3 and 5: ids count within each unit.
    store_unit = np.where(stores.store_id % 2 == 1, 3, 5)
    forward = ble_pings_table(WEEKDAY, draws, ble_ids, store_unit)
    assert ble_pings_table(WEEKDAY, draws[::-1], ble_ids, store_unit).equals(forward)
    assert ble_pings_table(WEEKDAY, [], ble_ids, store_unit).schema == BLE_PINGS_SCHEMA
    units = store_unit[_np(forward, "StoreID") - 1]
    assert set(units.tolist()) == {3, 5}
    assert _np(forward, "PingId").tolist() == _unit_dsids(WEEKDAY, units)
    # Zone changes take the unit their pings carry.
    changes = customer_zone_changes_table(forward)
    assert _np(changes, "ZoneChangeId").tolist() == _unit_dsids(
        WEEKDAY, store_unit[_np(changes, "StoreID") - 1])


def test_mixins_define_distinct_methods_and_document_themselves() -> None:
    classes = [sensors_mixin.SensorsMixin, zone_changes_mixin.ZoneChangesMixin,
               store_ops_mixin.StoreOpsMixin, marketing_mixin.MarketingMixin]
    seen: dict[str, str] = {}
    for cls in classes:
        assert "This mixin defines the following functionality:" in cls.__doc__
        for word in ("Adds:", "Reads:", "Writes:", "Streams:"):
            assert word in cls.__doc__
        assert "__init__" not in vars(cls)
        for name in vars(cls):
            if not name.startswith("__"):
                assert name not in seen, f"{name} in {cls.__name__} and {seen[name]}"
                seen[name] = cls.__name__


def test_pings_use_customer_ble_ids_from_master() -> None:
    customers = make_customers(5)
    host = SensorHost(customers=customers)
    ctx = make_day_context(WEEKDAY, host._master.stores)
    visits = make_visits(ctx, n_customers=5)
    pings = host._generate_ble_pings(ctx, visits)
    known = pings.filter(pc.is_valid(pings.column("CustomerID")))
    assert known.num_rows > 0
    assert set(_np(known, "CustomerBLEId")) <= {f"BLE{i:06d}" for i in range(1, 6)}
    assert (_ts(pings) // US_PER_DAY == ctx.day_start_us // US_PER_DAY).all()
