"""Invariants F (sensors, marketing: INV-50 … INV-53) and the realism warnings W-01 … W-04."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from retail_datagen import calendar, domain
from retail_datagen.money import round_half_up
from retail_datagen.validation.core import (
    Check,
    Context,
    Query,
    SkipQuery,
    sql_date,
    values_table,
    violations,
)

#: dwell_seconds range per foot-traffic zone (behaviour.md §14.1).
DWELL_RANGES: dict[str, tuple[int, int]] = {
    "ENTRANCE_MAIN": (45, 90),
    "ENTRANCE_SIDE": (30, 75),
    "AISLES_A": (180, 420),
    "AISLES_B": (120, 300),
    "CHECKOUT": (90, 240),
}

#: Campaign types: channels and days active (behaviour.md §13).
CAMPAIGN_CHANNELS: dict[str, tuple[str, ...]] = {
    "seasonal_sale": ("FACEBOOK", "GOOGLE", "EMAIL"),
    "product_launch": ("INSTAGRAM", "YOUTUBE", "DISPLAY"),
    "loyalty_program": ("EMAIL", "SOCIAL"),
    "flash_sale": ("SOCIAL", "SEARCH"),
}
CAMPAIGN_DAYS: dict[str, int] = {
    "seasonal_sale": 7,
    "product_launch": 14,
    "loyalty_program": 30,
    "flash_sale": 1,
}

#: W-01 judges the basket mean only over at least this many receipts.
W01_MIN_RECEIPTS = 500
W01_TOLERANCE = 0.15


def _inv50(ctx: Context) -> Iterator[Query]:
    yield Query(
        "SELECT 'store-hour without exactly 5 distinct zones' AS rule, store_id, event_ts, "
        "count(DISTINCT zone) AS zones FROM fact_foot_traffic WHERE <<rows:event_ts>> "
        "GROUP BY store_id, event_ts HAVING count(DISTINCT zone) <> 5"
    )
    ranges = values_table(
        "z", ("zone", "lo", "hi"), ((k, lo, hi) for k, (lo, hi) in DWELL_RANGES.items())
    )
    yield Query(
        "SELECT * FROM (SELECT f.store_id, f.zone, f.event_ts, "
        + violations(
            ('f."count" < 0', "count < 0"),
            ("f.dwell_seconds NOT BETWEEN z.lo AND z.hi", "dwell_seconds outside the zone's range"),
            ("date_trunc('hour', f.event_ts) <> f.event_ts", "event_ts not on a whole hour"),
        )
        + f" AS rule FROM fact_foot_traffic f LEFT JOIN {ranges} ON z.zone = f.zone "
        "WHERE <<rows:f.event_ts>>) v WHERE rule <> ''"
    )


def _inv51(ctx: Context) -> Iterator[Query]:
    anon = (
        "'ANON-' || lpad(CAST(p.store_id AS VARCHAR), 5, '0') || '-' || <<ymd:p.event_ts>> "
        "|| '-' || lpad(CAST(p.visit_seq AS VARCHAR), 6, '0')"
    )
    yield Query(
        "SELECT * FROM (SELECT p.ping_id, p.customer_ble_id, "
        + violations(
            (f"p.customer_ble_id LIKE 'ANON-%' AND p.customer_ble_id <> {anon}",
             "anonymous id does not name the row's store, date and visit"),
            ("p.customer_ble_id LIKE 'ANON-%' AND p.customer_id IS NOT NULL",
             "anonymous row with customer_id"),
            ("p.customer_ble_id NOT LIKE 'ANON-%' AND c.ble_id IS DISTINCT FROM p.customer_ble_id",
             "known id <> dim_customers.ble_id of customer_id"),
            ("p.rssi NOT BETWEEN -80 AND -30", "rssi outside [-80, -30]"),
        )
        + " AS rule FROM fact_ble_pings p "
        "LEFT JOIN dim_customers c ON c.customer_id = p.customer_id "
        "WHERE <<rows:p.event_ts>>) v WHERE rule <> ''"
    )
    yield Query(
        "SELECT 'anonymous id seen in more than one store-day' AS rule, customer_ble_id "
        "FROM fact_ble_pings WHERE customer_ble_id LIKE 'ANON-%' GROUP BY customer_ble_id "
        "HAVING (min(store_id) <> max(store_id) "
        "OR min(CAST(event_ts AS DATE)) <> max(CAST(event_ts AS DATE))) "
        "AND max(CASE WHEN <<rows:event_ts>> THEN 1 ELSE 0 END) = 1"
    )
    yield Query(
        "SELECT 'visit with more than one customer_ble_id' AS rule, store_id, "
        "CAST(event_ts AS DATE) AS day, visit_seq FROM fact_ble_pings WHERE <<rows:event_ts>> "
        "GROUP BY store_id, CAST(event_ts AS DATE), visit_seq "
        "HAVING count(DISTINCT customer_ble_id) > 1"
    )


def _inv52(ctx: Context) -> Iterator[Query]:
    visit = "store_id, CAST(event_ts AS DATE), visit_seq"
    yield Query(
        "WITH p AS (SELECT ping_id, store_id, CAST(event_ts AS DATE) AS dd, visit_seq, event_ts, "
        "zone, customer_ble_id, COALESCE(customer_id, -1) AS cid, "
        f"lag(zone) OVER (PARTITION BY {visit} ORDER BY event_ts, ping_id) AS prev_zone "
        "FROM fact_ble_pings WHERE <<rows:event_ts>>), "
        "b AS (SELECT * FROM p WHERE prev_zone IS NOT NULL AND prev_zone <> zone), "
        "z AS (SELECT zone_change_id, store_id, CAST(event_ts AS DATE) AS dd, visit_seq, event_ts, "
        "customer_ble_id, COALESCE(customer_id, -1) AS cid, from_zone, to_zone "
        "FROM fact_customer_zone_changes WHERE <<rows:event_ts>>) "
        "SELECT * FROM (SELECT COALESCE(b.store_id, z.store_id) AS store_id, "
        "COALESCE(b.dd, z.dd) AS day, COALESCE(b.visit_seq, z.visit_seq) AS visit_seq, "
        "b.ping_id, z.zone_change_id, "
        + violations(
            ("z.zone_change_id IS NULL", "zone boundary without a zone change"),
            ("b.ping_id IS NULL", "zone change without a zone boundary"),
            ("z.from_zone = z.to_zone", "from_zone = to_zone"),
        )
        + " AS rule FROM b FULL OUTER JOIN z ON b.store_id = z.store_id AND b.dd = z.dd "
        "AND b.visit_seq = z.visit_seq AND b.event_ts = z.event_ts "
        "AND b.customer_ble_id = z.customer_ble_id AND b.cid = z.cid "
        "AND b.prev_zone = z.from_zone AND b.zone = z.to_zone) v WHERE rule <> ''"
    )


def cost_bounds(config: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    """``(channel, device, lo, hi)`` cents bounds of behaviour.md §13 from ``config_data``.

    The float expression is the generator's, ``U × multiplier × 100`` evaluated left to right
    at the ends of ``U``, rounded half-up and floored at 1 cent.
    """
    costs = config["marketing_cost"]
    out = []
    for channel in domain.MARKETING_CHANNELS:
        lo, hi = costs[f"{channel.lower()}_cost_min"], costs[f"{channel.lower()}_cost_max"]
        for device in domain.DEVICES:
            dev = costs[f"{device.lower()}_multiplier"]
            out.append((
                channel,
                device,
                max(1, int(round_half_up(lo * dev * 100))),
                max(1, int(round_half_up(hi * dev * 100))),
            ))
    return out


def _inv53(ctx: Context) -> Iterator[Query]:
    bounds = None
    if ctx.config is not None:
        try:
            bounds = cost_bounds(ctx.config)
        except (KeyError, TypeError, ValueError):
            ctx.note("gen_metadata.config_data has no usable marketing_cost; cost bounds skipped")
    else:
        ctx.note("no gen_metadata.config_data; cost bounds skipped")
    if bounds is not None:
        table = values_table("b", ("channel", "device", "lo", "hi"), bounds)
        yield Query(
            "SELECT 'cost_cents outside the channel/device bounds' AS rule, m.impression_id_ext, "
            f"m.channel, m.device, m.cost_cents, b.lo, b.hi FROM fact_marketing m JOIN {table} "
            "ON b.channel = m.channel AND b.device = m.device "
            "WHERE <<rows:m.event_ts>> AND m.cost_cents NOT BETWEEN b.lo AND b.hi"
        )
    channels = values_table(
        "ch", ("campaign_type", "channel"),
        ((t, c) for t, chans in CAMPAIGN_CHANNELS.items() for c in chans),
    )
    days = values_table("cd", ("campaign_type", "days"), CAMPAIGN_DAYS.items())
    start = "<<parse_ymd:substr(m.campaign_id, 4, 8)>>"
    yield Query(
        "SELECT * FROM (SELECT m.impression_id_ext, m.campaign_id, "
        + violations(
            ("m.customer_id IS NOT NULL AND c.ad_id IS DISTINCT FROM m.customer_ad_id",
             "customer_ad_id <> dim_customers.ad_id"),
            (f"NOT COALESCE(CAST(m.event_ts AS DATE) BETWEEN {start} "
             f"AND {start} + (cd.days - 1), FALSE)",
             "impression outside the campaign's active days"),
            ("ch.channel IS NULL", "channel not in the campaign type's list"),
        )
        + " AS rule FROM fact_marketing m "
        "LEFT JOIN dim_customers c ON c.customer_id = m.customer_id "
        f"LEFT JOIN {days} ON cd.campaign_type = m.campaign_type "
        f"LEFT JOIN {channels} ON ch.campaign_type = m.campaign_type AND ch.channel = m.channel "
        "WHERE <<rows:m.event_ts>>) v WHERE rule <> ''"
    )


def _plain_day(day: date) -> bool:
    return calendar.holiday_multiplier(day) == 1.0 and not any(
        calendar.overlay_windows(day).values()
    )


def _w01(ctx: Context) -> Iterator[Query]:
    if ctx.config is None:
        ctx.note("no gen_metadata.config_data")
        return
    try:
        target = float(ctx.config["volume"]["items_per_ticket_mean"])
    except (KeyError, TypeError, ValueError):
        ctx.note("gen_metadata.config_data has no volume.items_per_ticket_mean")
        return
    days = [d for d in ctx.judged_days(["fact_receipts"]) if _plain_day(d)]
    if not days:
        return
    lo, hi = target * (1 - W01_TOLERANCE), target * (1 + W01_TOLERANCE)
    minimum = W01_MIN_RECEIPTS

    def judge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        n = int(rows[0]["receipts"] or 0) if rows else 0
        if n < minimum:
            raise SkipQuery(f"only {n} receipts")
        mean = float(rows[0]["mean_items"])
        if lo <= mean <= hi:
            return []
        return [{"rule": "mean item_count outside ±15% of items_per_ticket_mean",
                 "receipts": n, "mean_item_count": round(mean, 4), "target": target}]

    day_list = ", ".join(sql_date(d) for d in days)
    yield Query(
        "SELECT count(*) AS receipts, avg(r.item_count) AS mean_items FROM fact_receipts r "
        "JOIN dim_stores s ON s.store_id = r.store_id WHERE r.receipt_type = 'SALE' "
        f"AND s.store_format = 'standard' AND CAST(r.event_ts AS DATE) IN ({day_list}) "
        "AND <<rows:r.event_ts>>",
        post=judge,
    )


def _w02(ctx: Context) -> Iterator[Query]:
    yield Query(
        "WITH r AS (SELECT store_id, CAST(event_ts AS DATE) AS dd, count(*) AS n "
        "FROM fact_receipts WHERE receipt_type = 'SALE' AND <<rows:event_ts>> "
        "GROUP BY store_id, CAST(event_ts AS DATE)) "
        "SELECT 'open store-day without SALE receipts' AS rule, s.store_id, d.dd AS day "
        "FROM dim_stores s CROSS JOIN <<days>> LEFT JOIN r ON r.store_id = s.store_id "
        "AND r.dd = d.dd WHERE r.n IS NULL "
        "AND NOT (EXTRACT(month FROM d.dd) = 12 AND EXTRACT(day FROM d.dd) = 25)"
    )


def _w03(ctx: Context) -> Iterator[Query]:
    yield Query(
        "WITH s AS (SELECT store_id, CAST(event_ts AS DATE) AS dd, "
        "count(DISTINCT product_id) AS stocked_out FROM fact_stockouts "
        "WHERE store_id IS NOT NULL AND <<rows:event_ts>> "
        "GROUP BY store_id, CAST(event_ts AS DATE)), "
        "a AS (SELECT s.store_id, s.dd, s.stocked_out, (SELECT count(*) FROM dim_products p "
        "WHERE p.launch_date <= s.dd) AS available FROM s) "
        "SELECT 'stockouts for more than 20% of the available products' AS rule, store_id, "
        "dd AS day, stocked_out, available FROM a WHERE 5 * stocked_out > available"
    )


def _w04(ctx: Context) -> Iterator[Query]:
    yield Query(
        "SELECT 'leg in flight more than 3 days after SCHEDULED' AS rule, shipment_id, "
        "scheduled_ts FROM gen_state_shipments WHERE scheduled_ts < <<end_ts>> - INTERVAL '3 days'"
    )


CHECKS: tuple[Check, ...] = (
    Check("INV-50", "Foot traffic shape", _inv50),
    Check("INV-51", "BLE identity", _inv51),
    Check("INV-52", "Zone changes match pings", _inv52),
    Check("INV-53", "Marketing", _inv53),
)

WARNINGS: tuple[Check, ...] = (
    Check("W-01", "Basket size drift", _w01),
    Check("W-02", "Idle open store-day", _w02),
    Check("W-03", "Heavy stockouts", _w03),
    Check("W-04", "Long in-flight legs", _w04),
)
