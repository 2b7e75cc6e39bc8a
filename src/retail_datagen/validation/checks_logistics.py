"""Invariants E: logistics (INV-40 … INV-44).

A shipment is in scope when its first row (the SCHEDULED row of a valid leg) is, and it is judged
over all of its rows. In a filtered run it is judged only if every logged day from that row to
``min(etd, last_day)`` includes every table the check reads.
"""

from __future__ import annotations

from collections.abc import Iterator

from retail_datagen import domain
from retail_datagen.validation.core import Check, Context, Query, violations

RANK_SQL = (
    "CASE status "
    + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(domain.TRUCK_STATUSES, start=1))
    + " END"
)

#: In-scope shipments: one row each, with the first row's time and the last day to judge.
SHIPMENTS_CTE = (
    "ship AS (SELECT shipment_id, min(event_ts) AS first_ts, max(etd) AS etd "
    "FROM fact_truck_moves GROUP BY shipment_id "
    "HAVING <<scope:min(event_ts)>> AND <<span:min(event_ts);<<cap_last:max(etd)>>>>)"
)


def _status_ts(status: str) -> str:
    return f"max(CASE WHEN status = '{status}' THEN event_ts END)"


def _inv40(ctx: Context) -> Iterator[Query]:
    constant = ("truck_id", "dc_id", "store_id", "refrigerated", "unit_count",
                "departure_time", "eta", "etd")
    per_ship = ", ".join(f"count(DISTINCT {c}) AS n_{c}" for c in constant)
    rules = [
        ("n_known <> n", "unknown status"),
        ("n_ranks <> n OR min_rank <> 1 OR max_rank <> n", "statuses are not 1..n without repeats"),
        ("n_back > 0", "event_ts decreases along the lifecycle"),
        ("n_bad_sched > 0", "SCHEDULED not at 23:00:00"),
        ("ts_transit IS NOT NULL AND (dep_min <> ts_transit OR dep_max <> ts_transit)",
         "departure_time <> IN_TRANSIT time"),
        ("ts_arrived IS NOT NULL AND (eta_min <> ts_arrived OR eta_max <> ts_arrived)",
         "eta <> ARRIVED time"),
        ("ts_completed IS NOT NULL AND (etd_min <> ts_completed OR etd_max <> ts_completed)",
         "etd <> COMPLETED time"),
        ("n_eta_after_etd > 0", "eta > etd"),
        (" OR ".join(f"n_{c} > 1" for c in constant), "leg attributes differ between rows"),
        ("ts_completed IS NOT NULL AND ts_unloading IS NOT NULL AND NOT COALESCE("
         "ts_unloading + unload_minutes * INTERVAL '1 minute' = ts_completed, FALSE)",
         "unload_duration_minutes <> COMPLETED − UNLOADING"),
        ("n_minutes_elsewhere > 0", "unload_duration_minutes outside the COMPLETED row"),
    ]
    yield Query(
        f"WITH {SHIPMENTS_CTE}, "
        f"m AS (SELECT x.*, {RANK_SQL} AS rk, lag(x.event_ts) OVER (PARTITION BY x.shipment_id "
        f"ORDER BY {RANK_SQL}, x.event_ts) AS prev_ts FROM fact_truck_moves x "
        "WHERE x.shipment_id IN (SELECT shipment_id FROM ship)), "
        "s AS (SELECT shipment_id, count(*) AS n, count(rk) AS n_known, "
        "count(DISTINCT rk) AS n_ranks, min(rk) AS min_rank, max(rk) AS max_rank, "
        "sum(CASE WHEN prev_ts > event_ts THEN 1 ELSE 0 END) AS n_back, "
        "sum(CASE WHEN status = 'SCHEDULED' AND CAST(event_ts AS TIME) <> TIME '23:00:00' "
        "THEN 1 ELSE 0 END) AS n_bad_sched, "
        "sum(CASE WHEN eta > etd THEN 1 ELSE 0 END) AS n_eta_after_etd, "
        f"{_status_ts('IN_TRANSIT')} AS ts_transit, {_status_ts('ARRIVED')} AS ts_arrived, "
        f"{_status_ts('UNLOADING')} AS ts_unloading, {_status_ts('COMPLETED')} AS ts_completed, "
        "max(CASE WHEN status = 'COMPLETED' THEN unload_duration_minutes END) AS unload_minutes, "
        "sum(CASE WHEN status <> 'COMPLETED' AND unload_duration_minutes IS NOT NULL "
        "THEN 1 ELSE 0 END) AS n_minutes_elsewhere, "
        "min(departure_time) AS dep_min, max(departure_time) AS dep_max, "
        "min(eta) AS eta_min, max(eta) AS eta_max, min(etd) AS etd_min, max(etd) AS etd_max, "
        f"{per_ship} FROM m GROUP BY shipment_id) "
        f"SELECT * FROM (SELECT shipment_id, {violations(*rules)} AS rule FROM s) v "
        "WHERE rule <> ''"
    )


def _inv41(ctx: Context) -> Iterator[Query]:
    yield Query(
        f"WITH {SHIPMENTS_CTE}, "
        "n AS (SELECT shipment_id, count(*) AS n FROM fact_truck_moves "
        "WHERE shipment_id IN (SELECT shipment_id FROM ship) GROUP BY shipment_id) "
        "SELECT * FROM (SELECT n.shipment_id, n.n AS rows_written, "
        + violations(
            ("n.n < 6 AND g.shipment_id IS NULL",
             "incomplete leg missing from gen_state_shipments"),
            ("n.n >= 6 AND g.shipment_id IS NOT NULL",
             "completed leg still in gen_state_shipments"),
        )
        + " AS rule FROM n LEFT JOIN gen_state_shipments g ON g.shipment_id = n.shipment_id) v "
        "WHERE rule <> ''"
    )
    yield Query(
        "SELECT 'leg in state with etd before the end of the generated range' AS rule, "
        "shipment_id, etd FROM gen_state_shipments "
        "WHERE etd < <<end_ts>> AND <<scope:scheduled_ts>>"
    )


def _delivery_rule(action_cte: str, marker: str, label: str) -> tuple[str, str]:
    q = "COALESCE(o.q, 0)"
    return (
        f"(s.has_{marker} = 1 AND NOT (COALESCE({action_cte}.n, 0) = 1 "
        f"AND {action_cte}.q_min = {q} AND {q} > 0)) "
        f"OR (s.has_{marker} = 0 AND COALESCE({action_cte}.n, 0) > 0)",
        label,
    )


def _inv42(ctx: Context) -> Iterator[Query]:
    def actions(name: str, action: str) -> str:
        return (
            f"{name} AS (SELECT shipment_id AS sid, product_id, count(*) AS n, "
            "min(quantity) AS q_min FROM fact_truck_inventory "
            f"WHERE action = '{action}' AND shipment_id IN (SELECT shipment_id FROM s) "
            "GROUP BY shipment_id, product_id)"
        )

    flags = ", ".join(
        f"max(CASE WHEN status = '{st}' THEN 1 ELSE 0 END) AS has_{st.lower()}"
        for st in ("LOADING", "UNLOADING", "COMPLETED")
    )
    head = (
        f"WITH {SHIPMENTS_CTE}, "
        f"s AS (SELECT shipment_id, max(store_id) AS store_id, max(truck_id) AS truck_id, "
        f"max(unit_count) AS unit_count, max(etd) AS etd, {flags} FROM fact_truck_moves "
        "WHERE shipment_id IN (SELECT shipment_id FROM ship) GROUP BY shipment_id), "
        "o AS (SELECT source AS sid, product_id, -sum(quantity) AS q FROM fact_dc_inventory_txn "
        "WHERE txn_type = 'OUTBOUND_SHIPMENT' AND source IN (SELECT shipment_id FROM s) "
        "GROUP BY source, product_id)"
    )
    yield Query(
        f"{head}, {actions('ld', 'LOAD')}, {actions('ul', 'UNLOAD')}, "
        "ib AS (SELECT source AS sid, product_id, count(*) AS n, min(quantity) AS q_min, "
        "max(quantity) AS q_max, min(event_ts) AS ts_min, max(event_ts) AS ts_max, "
        "min(store_id) AS store_min, max(store_id) AS store_max FROM fact_store_inventory_txn "
        "WHERE txn_type = 'INBOUND_SHIPMENT' AND source IN (SELECT shipment_id FROM s) "
        "GROUP BY source, product_id), "
        "k AS (SELECT sid, product_id FROM o UNION SELECT sid, product_id FROM ld "
        "UNION SELECT sid, product_id FROM ul UNION SELECT sid, product_id FROM ib) "
        "SELECT * FROM (SELECT k.sid AS shipment_id, k.product_id, COALESCE(o.q, 0) AS q, "
        + violations(
            _delivery_rule("ld", "loading", "LOAD rows do not match the DC OUTBOUND quantity"),
            _delivery_rule("ul", "unloading", "UNLOAD rows do not match the DC OUTBOUND quantity"),
            ("s.has_completed = 1 AND NOT COALESCE(ib.n = 1 AND ib.q_min = COALESCE(o.q, 0) "
             "AND ib.ts_min = s.etd AND ib.store_min = s.store_id "
             "AND ib.store_max = s.store_id, FALSE)",
             "COMPLETED leg without exactly one store INBOUND of the quantity at etd"),
            ("s.has_completed = 0 AND COALESCE(ib.n, 0) > 0", "store INBOUND before COMPLETED"),
        )
        + " AS rule FROM k JOIN s ON s.shipment_id = k.sid "
        "LEFT JOIN o ON o.sid = k.sid AND o.product_id = k.product_id "
        "LEFT JOIN ld ON ld.sid = k.sid AND ld.product_id = k.product_id "
        "LEFT JOIN ul ON ul.sid = k.sid AND ul.product_id = k.product_id "
        "LEFT JOIN ib ON ib.sid = k.sid AND ib.product_id = k.product_id) v WHERE rule <> ''"
    )
    yield Query(
        f"{head}, t AS (SELECT sid, sum(q) AS q FROM o GROUP BY sid) "
        "SELECT * FROM (SELECT s.shipment_id, s.unit_count, COALESCE(t.q, 0) AS units, "
        + violations(
            ("COALESCE(t.q, 0) <> s.unit_count", "Σ DC OUTBOUND quantity <> unit_count"),
            ("s.unit_count > k.capacity_units", "unit_count above the truck capacity"),
        )
        + " AS rule FROM s LEFT JOIN t ON t.sid = s.shipment_id "
        "LEFT JOIN dim_trucks k ON k.truck_id = s.truck_id) v WHERE rule <> ''",
    )


def _inv43(ctx: Context) -> Iterator[Query]:
    per_ship = (
        f"WITH {SHIPMENTS_CTE}, "
        "s AS (SELECT shipment_id, max(truck_id) AS truck_id, max(dc_id) AS dc_id, "
        "max(CASE WHEN refrigerated THEN 1 ELSE 0 END) AS refrigerated, "
        "max(departure_time) AS departure_time, max(eta) AS eta, max(etd) AS etd "
        "FROM fact_truck_moves WHERE shipment_id IN (SELECT shipment_id FROM ship) "
        "GROUP BY shipment_id)"
    )
    yield Query(
        f"{per_ship} SELECT * FROM (SELECT s.shipment_id, s.truck_id, "
        + violations(
            ("NOT COALESCE(k.truck_type IN ('DC_FLEET', 'POOL') AND k.dc_id = s.dc_id, FALSE)",
             "truck is not DC_FLEET or POOL of the leg's DC"),
            ("s.refrigerated = 1 AND NOT COALESCE(k.refrigeration, FALSE)",
             "refrigerated leg on a non-refrigerated truck"),
        )
        + " AS rule FROM s LEFT JOIN dim_trucks k ON k.truck_id = s.truck_id) v WHERE rule <> ''"
    )
    # Busy from loading (departure − 2 h) until the truck is back (etd + the travel time).
    busy = (
        "b AS (SELECT m.shipment_id, m.truck_id, "
        "max(m.departure_time) - INTERVAL '2 hours' AS busy_from, "
        "max(m.etd) + (max(m.eta) - max(m.departure_time)) AS busy_to, "
        "max(CASE WHEN m.shipment_id IN (SELECT shipment_id FROM ship) THEN 1 ELSE 0 END) "
        "AS judged "
        "FROM fact_truck_moves m GROUP BY m.shipment_id, m.truck_id)"
    )
    yield Query(
        f"WITH {SHIPMENTS_CTE}, {busy} "
        "SELECT 'truck busy with two legs at once' AS rule, b1.truck_id, "
        "b1.shipment_id, b2.shipment_id AS other_shipment_id FROM b b1 JOIN b b2 "
        "ON b1.truck_id = b2.truck_id AND b1.shipment_id < b2.shipment_id "
        "AND b1.busy_from < b2.busy_to AND b2.busy_from < b1.busy_to "
        "WHERE b1.judged = 1 OR b2.judged = 1"
    )
    yield Query(
        f"WITH {SHIPMENTS_CTE} "
        "SELECT 'truck_inventory row not at its LOADING/UNLOADING time' AS rule, ti.shipment_id, "
        "ti.product_id, ti.action, ti.event_ts, m.event_ts AS status_ts "
        "FROM fact_truck_inventory ti JOIN fact_truck_moves m ON m.shipment_id = ti.shipment_id "
        "AND m.status = CASE ti.action WHEN 'LOAD' THEN 'LOADING' "
        "WHEN 'UNLOAD' THEN 'UNLOADING' END "
        "WHERE ti.shipment_id IN (SELECT shipment_id FROM ship) AND ti.event_ts <> m.event_ts"
    )


def _inv44(ctx: Context) -> Iterator[Query]:
    yield Query(
        "WITH n AS (SELECT count(*) AS supplier_trucks FROM dim_trucks "
        "WHERE truck_type = 'SUPPLIER') "
        "SELECT * FROM (SELECT t.txn_id, t.source, t.truck_id, "
        + violations(
            ("(t.truck_id IS NULL AND n.supplier_trucks > 0) OR (t.truck_id IS NOT NULL "
             "AND k.truck_type IS DISTINCT FROM 'SUPPLIER')",
             "INBOUND truck is not a SUPPLIER truck"),
            ("CAST(t.event_ts AS TIME) < TIME '06:00:00' "
             "OR CAST(t.event_ts AS TIME) >= TIME '18:00:00'",
             "INBOUND outside [06:00, 18:00)"),
        )
        + " AS rule FROM fact_dc_inventory_txn t CROSS JOIN n "
        "LEFT JOIN dim_trucks k ON k.truck_id = t.truck_id "
        "WHERE t.txn_type = 'INBOUND_SHIPMENT' AND <<rows:t.event_ts>>) v WHERE rule <> ''"
    )
    yield Query(
        "WITH s AS (SELECT source, max(truck_id) AS truck_id, sum(quantity) AS units, "
        "max(CASE WHEN <<rows:event_ts>> THEN 1 ELSE 0 END) AS judged "
        "FROM fact_dc_inventory_txn WHERE txn_type = 'INBOUND_SHIPMENT' GROUP BY source) "
        "SELECT 'supplier shipment above the truck capacity' AS rule, s.source, s.truck_id, "
        "s.units, k.capacity_units FROM s JOIN dim_trucks k ON k.truck_id = s.truck_id "
        "WHERE s.judged = 1 AND s.units > k.capacity_units"
    )


CHECKS: tuple[Check, ...] = (
    Check("INV-40", "Monotone truck lifecycle", _inv40),
    Check("INV-41", "Every shipment completes", _inv41),
    Check("INV-42", "Delivered exactly once", _inv42),
    Check("INV-43", "Truck assignment and use", _inv43),
    Check("INV-44", "Supplier inbound", _inv44),
)
