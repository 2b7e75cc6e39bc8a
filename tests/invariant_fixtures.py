"""A tiny, fully consistent two-day database for the invariant tests, built by hand.

Two stores (store 1 standard 8–22, store 2 express 24/7), one DC, seven products (one not yet
launched) and four customers, over 2024-03-04 (D1) and 2024-03-05 (D2):

* D1: sale S1 at store 1 (2 lines, SAVE10 promotion, a declined card then an approved one), sale
  S2 at store 2 (cash), a ship-from-DC online order, a cycle count, a reorder at 23:00 that
  schedules leg 1 (60 units of product 7), a supplier order for product 6, BLE visits, foot
  traffic, store ops and two ad impressions.
* D2: leg 1 loads, travels, unloads and completes (store INBOUND); a supplier delivery; S2 is
  returned (RETURN receipt, REFUNDED payment, RTV and DAMAGED dispositions); sales S3 and S4 (S4
  empties product 6 at store 2: a stockout); a BOPIS order and a cancelled order; a reorder that
  schedules leg 2, still in flight at the end (``gen_state_shipments``).

The rows are written as portable SQL ``INSERT`` statements (:func:`statements`), so the same
data loads into DuckDB and PostgreSQL. Money is given in cents; the DECIMAL twin of each cents
column is derived as cents / 100. With ``outbox=True`` every fact row also gets its outbox
event (``invariant_outbox``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import Connection

from invariant_outbox import dsid, outbox_rows
from retail_datagen.config.settings import create_test_config
from retail_datagen.db import duckdb_engine, schema
from retail_datagen.db.fact_schema import FACT_TABLE_DB_NAMES, FACT_TABLES

D1 = date(2024, 3, 4)
D2 = date(2024, 3, 5)

S1, S2 = "RCP2024030400001000001", "RCP2024030400002000001"
S3, S4 = "RCP2024030500001000001", "RCP2024030500002000003"
R1 = "RET2024030500002000001"
O1, O2, O3 = "ONL2024030400010000001", "ONL2024030500010000001", "ONL2024030500010000002"
LEG1, LEG2 = "SHP20240304000100001001", "SHP20240305000100002001"
SUP1 = "SUP202403050001001"
CAMPAIGN = "CMP2024030401"


def ts(text: str) -> datetime:
    """``"2024-03-04 10:15:00"`` (optionally with ``.ffffff``) as a datetime."""
    return datetime.fromisoformat(text)


# --- rows ----------------------------------------------------------------------------------------

_AMOUNT_OF = {"unit_cents": "unit_price", "ext_cents": "ext_price", "cost_cents": "cost",
              "msrp_cents": "msrp", "sale_price_cents": "sale_price", "amount_cents": "amount"}


def _amount_column(cents: str) -> str:
    return _AMOUNT_OF.get(cents, cents[: -len("_cents")] + "_amount")


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def insert(name: str, rows: Iterable[dict[str, Any]]) -> str:
    """One ``INSERT`` of whole rows: money amounts come from their cents, nullable columns
    default to NULL, and a missing NOT NULL column is an error."""
    tbl = schema.table(name)
    values = []
    for row in rows:
        full = dict(row)
        for col in list(full):
            if col.endswith("_cents") and _amount_column(col) in tbl.c:
                full.setdefault(_amount_column(col), Decimal(full[col]) / 100)
        unknown = set(full) - set(tbl.c.keys())
        if unknown:
            raise KeyError(f"{name}: unknown columns {sorted(unknown)}")
        out = []
        for col in tbl.c:
            if col.name not in full and not col.nullable and col.server_default is None:
                raise KeyError(f"{name}: missing {col.name}")
            out.append(_literal(full.get(col.name)))
        values.append("(" + ", ".join(out) + ")")
    cols = ", ".join(schema.quote_ident(c.name) for c in tbl.c)
    return f"INSERT INTO {name} ({cols}) VALUES " + ", ".join(values)


def _money(**cents: int) -> dict[str, int]:
    return {f"{k}_cents": v for k, v in cents.items()}


def _header(gross: int, discount: int, tax: int) -> dict[str, int]:
    subtotal = gross - discount
    return _money(gross_subtotal=gross, discount=discount, subtotal=subtotal, tax=tax,
                  total=subtotal + tax)


def _line(unit: int, qty: int, discount: int, tax: int) -> dict[str, int]:
    return {"unit_cents": unit, "discount_cents": discount,
            "ext_cents": unit * qty - discount, "tax_cents": tax, "quantity": qty}


def _dims() -> list[str]:
    geo = [
        (1, "Springfield", "IL", "62701", "Sangamon", 39.7817, -89.6501, 114394, "217", "0.062500"),
        (2, "Peoria", "IL", "61602", "Peoria", 40.6936, -89.5890, 113150, "309", "0.082500"),
        (3, "Bloomington", "IL", "61701", "McLean", 40.4842, -88.9937, 78680, "309", "0.070000"),
    ]
    products = [
        # id, name, department, category, basket, cost, msrp, sale, refrigerated, launch, tax
        (1, "Dairyfield Whole Milk", "Grocery", "Dairy", "food", 200, 399, 349, True,
         date(2023, 1, 1), "NON_TAXABLE"),
        (2, "Sonique Headphones", "Electronics", "Audio", "electronics", 1800, 3499, 2999, False,
         date(2023, 1, 1), "TAXABLE"),
        (3, "Threadline T-Shirt", "Clothing", "Tops", "clothing", 1000, 1999, 1999, False,
         date(2023, 1, 1), "REDUCED_RATE"),
        (4, "Brightwash Detergent", "Household", "Laundry", "household", 250, 599, 499, False,
         date(2023, 1, 1), "TAXABLE"),
        (5, "Sonique Gadget Pro", "Electronics", "Gadgets", "electronics", 5000, 9999, 9999,
         False, date(2024, 6, 1), "TAXABLE"),
        (6, "Oakridge Granola", "Grocery", "Cereal", "food", 300, 450, 450, False,
         date(2023, 1, 1), "NON_TAXABLE"),
        (7, "Silkpure Shampoo", "Health & Beauty", "Hair Care", "personal_care", 400, 899, 799,
         False, date(2023, 1, 1), "TAXABLE"),
    ]
    return [
        insert("dim_geographies", [
            {"geography_id": g, "city": c, "state": s, "zip_code": z, "county": co,
             "region": "Midwest", "latitude": la, "longitude": lo, "population": p,
             "timezone": "America/Chicago", "area_code": a, "tax_rate": Decimal(t)}
            for g, c, s, z, co, la, lo, p, a, t in geo
        ]),
        insert("dim_distribution_centers", [
            {"dc_id": 1, "dc_number": "DC001", "address": "15 Commerce Dr, Bloomington, IL 61701",
             "geography_id": 3},
        ]),
        insert("dim_stores", [
            {"store_id": 1, "store_number": "S000001",
             "address": "4200 Main St, Springfield, IL 62701",
             "geography_id": 1, "dc_id": 1, "tax_rate": Decimal("0.062500"),
             "location_type": "URBAN", "volume_class": "medium_volume", "store_format": "standard",
             "operating_hours": "8am-10pm", "open_hour": 8, "close_hour": 22,
             "daily_traffic_multiplier": 1.05},
            {"store_id": 2, "store_number": "S000002",
             "address": "1800 Knoxville Ave, Peoria, IL 61602",
             "geography_id": 2, "dc_id": 1, "tax_rate": Decimal("0.082500"),
             "location_type": "URBAN", "volume_class": "kiosk", "store_format": "express",
             "operating_hours": "24/7", "open_hour": 0, "close_hour": 24,
             "daily_traffic_multiplier": 0.3},
        ]),
        insert("dim_trucks", [
            {"truck_id": i, "license_plate": plate, "refrigeration": cold, "truck_type": kind,
             "dc_id": dc, "capacity_units": 15000}
            for i, plate, cold, kind, dc in (
                (1, "ABC1234", True, "DC_FLEET", 1), (2, "KLM5678", False, "DC_FLEET", 1),
                (3, "PQR9012", False, "POOL", 1), (4, "STU3456", False, "SUPPLIER", None),
                (5, "VWX7890", True, "SUPPLIER", None),
            )
        ]),
        insert("dim_customers", [
            {"customer_id": i, "first_name": f, "last_name": la, "address": addr,
             "geography_id": g, "loyalty_card": f"LC{i:06d}{i * 111:03d}",
             "phone": f"({area}) 555-01{i:02d}", "ble_id": f"BLE{i:06d}", "ad_id": f"AD{i:06d}",
             "shopper_segment": seg, "mobility_segment": mob, "primary_store_id": g}
            for i, f, la, addr, g, area, seg, mob in (
                (1, "Ava", "Carter", "312 Oak St, Springfield, IL 62701", 1, "217",
                 "BUDGET_CONSCIOUS", "REGULAR"),
                (2, "Liam", "Brooks", "77 Elm Ave, Springfield, IL 62701", 1, "217",
                 "QUALITY_SEEKER", "COMMUTER"),
                (3, "Mia", "Reyes", "9 Lake Rd, Peoria, IL 61602", 2, "309",
                 "BRAND_LOYAL", "REGULAR"),
                (4, "Noah", "Price", "450 Hill St, Peoria, IL 61602", 2, "309",
                 "CONVENIENCE_FOCUSED", "TOURIST"),
            )
        ]),
        insert("dim_products", [
            {"product_id": i, "product_name": name, "brand": name.split()[0],
             "company": name.split()[0] + " Co", "department": dep, "category": cat,
             "subcategory": cat, "basket_category": basket, "cost_cents": cost,
             "msrp_cents": msrp, "sale_price_cents": sale, "requires_refrigeration": cold,
             "launch_date": launch, "taxability": tax, "tags": "", "popularity_weight": 1.0}
            for i, name, dep, cat, basket, cost, msrp, sale, cold, launch, tax in products
        ]),
    ]


def _receipts() -> list[str]:
    t1, t2, t3, t4, tr = (ts("2024-03-04 10:15:00"), ts("2024-03-04 14:30:00"),
                          ts("2024-03-05 16:20:00"), ts("2024-03-05 18:05:00"),
                          ts("2024-03-05 11:00:00"))
    receipts = [
        {"receipt_id_ext": S1, "receipt_type": "SALE", "event_ts": t1, "store_id": 1,
         "customer_id": 1, "line_count": 2, "item_count": 3, **_header(3697, 370, 169),
         "payment_method": "DEBIT_CARD"},
        {"receipt_id_ext": S2, "receipt_type": "SALE", "event_ts": t2, "store_id": 2,
         "customer_id": 3, "line_count": 2, "item_count": 4, **_header(3496, 0, 206),
         "payment_method": "CASH"},
        {"receipt_id_ext": S3, "receipt_type": "SALE", "event_ts": t3, "store_id": 1,
         "customer_id": 2, "line_count": 1, "item_count": 5, **_header(2495, 0, 156),
         "payment_method": "MOBILE_PAY"},
        {"receipt_id_ext": S4, "receipt_type": "SALE", "event_ts": t4, "store_id": 2,
         "customer_id": 4, "line_count": 1, "item_count": 6, **_header(2700, 0, 0),
         "payment_method": "CREDIT_CARD"},
        {"receipt_id_ext": R1, "receipt_type": "RETURN", "return_for_receipt_id_ext": S2,
         "event_ts": tr, "store_id": 2, "customer_id": 3, "line_count": 2, "item_count": -4,
         **_header(-3496, 0, -206), "payment_method": "CASH"},
    ]
    lines = [
        (S1, 1, t1, 2, _line(2999, 1, 300, 169), "SAVE10"),
        (S1, 2, t1, 1, _line(349, 2, 70, 0), "SAVE10"),
        (S2, 1, t2, 3, _line(1999, 1, 0, 82), None),
        (S2, 2, t2, 4, _line(499, 3, 0, 124), None),
        (S3, 1, t3, 4, _line(499, 5, 0, 156), None),
        (S4, 1, t4, 6, _line(450, 6, 0, 0), None),
        (R1, 1, tr, 3, _line(1999, -1, 0, -82), None),
        (R1, 2, tr, 4, _line(499, -3, 0, -124), None),
    ]
    payments = [
        (f"TXN{S1}-1", "2024-03-04 10:15:02", S1, None, 1, 1, "CREDIT_CARD", 1, "DECLINED",
         "CARD_EXPIRED", 3496, 2000),
        (f"TXN{S1}-2", "2024-03-04 10:15:03.5", S1, None, 1, 1, "DEBIT_CARD", 2, "APPROVED", None,
         3496, 1500),
        (f"TXN{S2}-1", "2024-03-04 14:30:01", S2, None, 2, 3, "CASH", 1, "APPROVED", None, 3702,
         1000),
        (f"TXN{S3}-1", "2024-03-05 16:20:01.2", S3, None, 1, 2, "MOBILE_PAY", 1, "APPROVED", None,
         2651, 1200),
        (f"TXN{S4}-1", "2024-03-05 18:05:02", S4, None, 2, 4, "CREDIT_CARD", 1, "APPROVED", None,
         2700, 2000),
        (f"TXN{R1}-1", "2024-03-05 11:00:00.8", R1, None, 2, 3, "CASH", 1, "REFUNDED", None,
         -3702, 800),
        (f"TXN{O1}-1", "2024-03-04 09:12:37.56789", None, O1, None, 1, "PAYPAL", 1, "APPROVED",
         None, 1803, 3000),
        (f"TXN{O2}-1", "2024-03-05 08:00:02", None, O2, None, 3, "CREDIT_CARD", 1, "APPROVED",
         None, 349, 2000),
    ]
    return [
        insert("fact_receipts", receipts),
        insert("fact_receipt_lines", [
            {"receipt_id_ext": r, "line_num": n, "event_ts": t, "product_id": p, **m,
             "promo_code": code}
            for r, n, t, p, m, code in lines
        ]),
        insert("fact_promotions", [
            {"receipt_id_ext": S1, "promo_code": "SAVE10", "event_ts": t1, "store_id": 1,
             "customer_id": 1, "discount_type": "PERCENTAGE", "discount_cents": 370,
             "product_count": 2, "product_ids": "1,2"},
        ]),
        insert("fact_promo_lines", [
            {"receipt_id_ext": S1, "line_num": 1, "promo_code": "SAVE10", "event_ts": t1,
             "product_id": 2, "quantity": 1, "discount_cents": 300},
            {"receipt_id_ext": S1, "line_num": 2, "promo_code": "SAVE10", "event_ts": t1,
             "product_id": 1, "quantity": 2, "discount_cents": 70},
        ]),
        insert("fact_payments", [
            {"transaction_id": tid, "event_ts": ts(t), "receipt_id_ext": rid,
             "order_id_ext": oid, "store_id": store, "customer_id": cust, "payment_method": m,
             "attempt": attempt, "status": status, "decline_reason": reason,
             "amount_cents": amount, "processing_time_ms": ms}
            for tid, t, rid, oid, store, cust, m, attempt, status, reason, amount, ms in payments
        ]),
    ]


def _online() -> list[str]:
    c1, c2, c3 = (ts("2024-03-04 09:12:34.567890"), ts("2024-03-05 08:00:00"),
                  ts("2024-03-05 12:00:00"))
    picked1, shipped1, delivered1 = (ts("2024-03-04 10:42:34.567890"),
                                     ts("2024-03-05 05:12:34.567890"),
                                     ts("2024-03-07 05:12:34.567890"))
    headers = [
        {"order_id_ext": O1, "event_ts": c1, "customer_id": 1, "fulfillment_mode": "SHIP_FROM_DC",
         "dc_id": 1, "order_status": "COMPLETED", "line_count": 2, "item_count": 3,
         **_header(1797, 100, 106), "payment_method": "PAYPAL", "completed_ts": delivered1},
        {"order_id_ext": O2, "event_ts": c2, "customer_id": 3, "fulfillment_mode": "BOPIS",
         "store_id": 2, "order_status": "COMPLETED", "line_count": 1, "item_count": 1,
         **_header(349, 0, 0), "payment_method": "CREDIT_CARD",
         "completed_ts": ts("2024-03-05 14:00:00")},
        {"order_id_ext": O3, "event_ts": c3, "customer_id": 2,
         "fulfillment_mode": "SHIP_FROM_STORE", "store_id": 1, "order_status": "CANCELLED",
         "line_count": 1, "item_count": 1, **_header(1999, 0, 62), "payment_method": "DEBIT_CARD",
         "cancelled_ts": ts("2024-03-05 12:30:00")},
    ]
    lines = [
        {"order_id_ext": O1, "line_num": 1, "event_ts": c1, "product_id": 4,
         **_line(499, 2, 100, 56), "promo_code": "PROMO10", "fulfillment_status": "DELIVERED",
         "picked_ts": picked1, "shipped_ts": shipped1, "delivered_ts": delivered1},
        {"order_id_ext": O1, "line_num": 2, "event_ts": c1, "product_id": 7,
         **_line(799, 1, 0, 50), "fulfillment_status": "DELIVERED",
         "picked_ts": picked1, "shipped_ts": shipped1, "delivered_ts": delivered1},
        {"order_id_ext": O2, "line_num": 1, "event_ts": c2, "product_id": 1,
         **_line(349, 1, 0, 0), "fulfillment_status": "PICKED_UP",
         "picked_ts": ts("2024-03-05 11:00:00"), "delivered_ts": ts("2024-03-05 14:00:00")},
        {"order_id_ext": O3, "line_num": 1, "event_ts": c3, "product_id": 3,
         **_line(1999, 1, 0, 62), "fulfillment_status": "CANCELLED"},
    ]
    return [insert("fact_online_order_headers", headers),
            insert("fact_online_order_lines", lines)]


def _inventory() -> list[str]:
    store = [
        # day, n, time, store, product, type, qty, balance, source
        (D1, 1, "10:15:00", 1, 1, "SALE", -2, 48, S1),
        (D1, 2, "10:15:00", 1, 2, "SALE", -1, 9, S1),
        (D1, 3, "14:30:00", 2, 3, "SALE", -1, 14, S2),
        (D1, 4, "14:30:00", 2, 4, "SALE", -3, 17, S2),
        (D1, 5, "22:00:00", 1, 3, "ADJUSTMENT", 2, 22, "CYCLE_COUNT"),
        (D2, 1, "08:00:00", 2, 1, "SALE", -1, 29, O2),
        (D2, 2, "08:16:00", 1, 7, "INBOUND_SHIPMENT", 60, 65, LEG1),
        (D2, 3, "11:00:00", 2, 3, "RETURN", 1, 15, R1),
        (D2, 4, "11:00:00", 2, 4, "RETURN", 3, 20, R1),
        (D2, 5, "11:30:00", 2, 3, "OUTBOUND_SHIPMENT", -1, 14, R1),
        (D2, 6, "11:45:00", 2, 4, "DAMAGED", -3, 17, R1),
        (D2, 7, "16:20:00", 1, 4, "SALE", -5, 25, S3),
        (D2, 8, "18:05:00", 2, 6, "SALE", -6, 0, S4),
        (D2, 9, "22:00:00", 2, 7, "ADJUSTMENT", -1, 11, "CYCLE_COUNT"),
    ]
    dc = [
        (D1, 1, "09:12:34.567890", 4, "SALE", -2, 798, O1, None),
        (D1, 2, "09:12:34.567890", 7, "SALE", -1, 699, O1, None),
        (D1, 3, "23:00:00", 7, "OUTBOUND_SHIPMENT", -60, 639, LEG1, 2),
        (D2, 1, "07:30:00", 6, "INBOUND_SHIPMENT", 600, 620, SUP1, 4),
        (D2, 2, "23:00:00", 6, "OUTBOUND_SHIPMENT", -100, 520, LEG2, 2),
    ]
    initial = {  # (node_type, node_id): {product: (quantity, reorder_point)}
        ("STORE", 1): {1: (50, 20), 2: (10, 5), 3: (20, 5), 4: (30, 10), 5: (10, 5), 6: (40, 10),
                       7: (5, 12)},
        ("STORE", 2): {1: (30, 10), 2: (8, 5), 3: (15, 5), 4: (20, 5), 5: (10, 5), 6: (6, 5),
                       7: (12, 5)},
        ("DC", 1): {1: (1000, 100), 2: (500, 100), 3: (600, 100), 4: (800, 100), 5: (300, 50),
                    6: (20, 50), 7: (700, 100)},
    }
    final = {  # on_hand after D2 where it changed; in_transit of leg 2
        ("STORE", 1): {1: 48, 2: 9, 3: 22, 4: 25, 7: 65},
        ("STORE", 2): {1: 29, 3: 14, 4: 17, 6: 0, 7: 11},
        ("DC", 1): {4: 798, 6: 520, 7: 639},
    }
    state = []
    for (kind, node), products in initial.items():
        for p, (qty, _) in products.items():
            in_transit = 100 if (kind, node, p) == ("STORE", 2, 6) else 0
            state.append({"unit_id": 1, "node_type": kind, "node_id": node, "product_id": p,
                          "on_hand": final[(kind, node)].get(p, qty), "in_transit": in_transit,
                          "on_order": 0})
    return [
        insert("fact_store_inventory_txn", [
            {"txn_id": dsid(d, n), "event_ts": ts(f"{d} {t}"), "store_id": s, "product_id": p,
             "txn_type": kind, "quantity": q, "balance": b, "source": src}
            for d, n, t, s, p, kind, q, b, src in store
        ]),
        insert("fact_dc_inventory_txn", [
            {"txn_id": dsid(d, n), "event_ts": ts(f"{d} {t}"), "dc_id": 1, "product_id": p,
             "txn_type": kind, "quantity": q, "balance": b, "source": src, "truck_id": truck}
            for d, n, t, p, kind, q, b, src, truck in dc
        ]),
        insert("fact_stockouts", [
            {"stockout_id": dsid(D2, 1), "event_ts": ts("2024-03-05 18:05:00"), "store_id": 2,
             "product_id": 6, "last_known_quantity": 6, "unfilled_quantity": 2, "source": S4,
             "detection_time": ts("2024-03-05 18:05:00")},
        ]),
        insert("fact_reorders", [
            {"event_ts": ts("2024-03-04 23:00:00"), "store_id": 1, "dc_id": 1, "product_id": 7,
             "current_quantity": 5, "in_transit_quantity": 0, "reorder_point": 12,
             "reorder_quantity": 60, "allocated_quantity": 60, "priority": "URGENT"},
            {"event_ts": ts("2024-03-05 23:00:00"), "store_id": 2, "dc_id": 1, "product_id": 6,
             "current_quantity": 0, "in_transit_quantity": 0, "reorder_point": 5,
             "reorder_quantity": 100, "allocated_quantity": 100, "priority": "URGENT"},
        ]),
        insert("gen_initial_inventory", [
            {"unit_id": 1, "node_type": kind, "node_id": node, "product_id": p, "quantity": q,
             "reorder_point": rp}
            for (kind, node), products in initial.items() for p, (q, rp) in products.items()
        ]),
        insert("gen_state_inventory", state),
    ]


def _logistics() -> list[str]:
    leg1 = {"truck_id": 2, "dc_id": 1, "store_id": 1, "refrigerated": False, "unit_count": 60,
            "departure_time": ts("2024-03-05 06:00:00"), "eta": ts("2024-03-05 07:36:00"),
            "etd": ts("2024-03-05 08:16:00")}
    times = [("SCHEDULED", "2024-03-04 23:00:00"), ("LOADING", "2024-03-05 04:00:00"),
             ("IN_TRANSIT", "2024-03-05 06:00:00"), ("ARRIVED", "2024-03-05 07:36:00"),
             ("UNLOADING", "2024-03-05 07:46:00"), ("COMPLETED", "2024-03-05 08:16:00")]
    moves = [
        {"shipment_id": LEG1, "status": s, "event_ts": ts(t), **leg1,
         "unload_duration_minutes": 30 if s == "COMPLETED" else None}
        for s, t in times
    ]
    leg2 = {"truck_id": 2, "dc_id": 1, "store_id": 2, "refrigerated": False, "unit_count": 100,
            "departure_time": ts("2024-03-06 06:00:00"), "eta": ts("2024-03-06 08:30:00"),
            "etd": ts("2024-03-06 09:06:00")}
    moves.append({"shipment_id": LEG2, "status": "SCHEDULED",
                  "event_ts": ts("2024-03-05 23:00:00"), **leg2})
    return [
        insert("fact_truck_moves", moves),
        insert("fact_truck_inventory", [
            {"event_ts": ts("2024-03-05 04:00:00"), "truck_id": 2, "shipment_id": LEG1,
             "product_id": 7, "quantity": 60, "action": "LOAD", "location_id": 1,
             "location_type": "DC"},
            {"event_ts": ts("2024-03-05 07:46:00"), "truck_id": 2, "shipment_id": LEG1,
             "product_id": 7, "quantity": 60, "action": "UNLOAD", "location_id": 1,
             "location_type": "STORE"},
        ]),
        insert("gen_state_shipments", [
            {"unit_id": 1, "shipment_id": LEG2, "truck_id": 2, "dc_id": 1, "store_id": 2,
             "refrigerated": False,
             "unit_count": 100, "scheduled_ts": ts("2024-03-05 23:00:00"),
             "loading_ts": ts("2024-03-06 04:00:00"), "departure_time": leg2["departure_time"],
             "eta": leg2["eta"], "unloading_ts": ts("2024-03-06 08:35:00"), "etd": leg2["etd"]},
        ]),
        insert("gen_state_shipment_lines", [
            {"unit_id": 1, "shipment_id": LEG2, "product_id": 6, "quantity": 100},
        ]),
        insert("gen_state_trucks", [
            {"unit_id": 1, "truck_id": 1, "available_at": ts("2024-03-04 00:00:00")},
            {"unit_id": 1, "truck_id": 2, "available_at": ts("2024-03-06 11:36:00")},
            {"unit_id": 1, "truck_id": 3, "available_at": ts("2024-03-04 00:00:00")},
        ]),
    ]


def _sensors() -> list[str]:
    pings = [
        # n, time, store, zone, ble id, customer, seq, rssi
        (1, "10:01:00", 1, "ENTRANCE", "BLE000001", 1, 1, -50),
        (2, "10:03:00", 1, "ENTRANCE", "BLE000001", 1, 1, -61),
        (3, "10:06:00", 1, "ELECTRONICS", "BLE000001", 1, 1, -45),
        (4, "10:08:30", 1, "ELECTRONICS", "BLE000001", 1, 1, -70),
        (5, "10:12:00", 1, "CHECKOUT", "BLE000001", 1, 1, -38),
        (6, "14:21:00", 2, "GROCERY", "ANON-00002-20240304-000001", None, 1, -66),
        (7, "14:24:00", 2, "GROCERY", "ANON-00002-20240304-000001", None, 1, -72),
        (8, "14:27:00", 2, "CHECKOUT", "ANON-00002-20240304-000001", None, 1, -59),
    ]
    changes = [
        (1, "10:06:00", 1, "BLE000001", 1, 1, "ENTRANCE", "ELECTRONICS"),
        (2, "10:12:00", 1, "BLE000001", 1, 1, "ELECTRONICS", "CHECKOUT"),
        (3, "14:27:00", 2, "ANON-00002-20240304-000001", None, 1, "GROCERY", "CHECKOUT"),
    ]
    counts = {"ENTRANCE_MAIN": (12, 60), "ENTRANCE_SIDE": (5, 50), "AISLES_A": (9, 300),
              "AISLES_B": (6, 200), "CHECKOUT": (4, 120)}
    hours = [(1, "2024-03-04 10:00:00"), (2, "2024-03-04 14:00:00"), (1, "2024-03-05 16:00:00"),
             (2, "2024-03-05 18:00:00")]
    ops = []
    for day in (D1, D2):
        ops += [(f"{day} 08:00:00", 1, "OPENED"), (f"{day} 22:00:00", 1, "CLOSED"),
                (f"{day} 00:00:00", 2, "OPENED"), (f"{day} 23:59:59", 2, "CLOSED")]
    return [
        insert("fact_ble_pings", [
            {"ping_id": dsid(D1, n), "event_ts": ts(f"{D1} {t}"), "store_id": s,
             "beacon_id": f"BEACON_{s:05d}_{z}", "zone": z, "customer_ble_id": ble,
             "customer_id": c, "visit_seq": seq, "rssi": rssi}
            for n, t, s, z, ble, c, seq, rssi in pings
        ]),
        insert("fact_customer_zone_changes", [
            {"zone_change_id": dsid(D1, n), "event_ts": ts(f"{D1} {t}"), "store_id": s,
             "customer_ble_id": ble, "customer_id": c, "visit_seq": seq, "from_zone": a,
             "to_zone": b}
            for n, t, s, ble, c, seq, a, b in changes
        ]),
        insert("fact_foot_traffic", [
            {"store_id": s, "sensor_id": f"SENSOR_{s:05d}_{z}", "zone": z, "event_ts": ts(t),
             "count": n, "dwell_seconds": dwell}
            for s, t in hours for z, (n, dwell) in counts.items()
        ]),
        insert("fact_store_ops", [
            {"event_ts": ts(t), "store_id": s, "operation_type": op} for t, s, op in ops
        ]),
    ]


def _marketing() -> list[str]:
    rows = [
        ("IMP20240304000000001", "2024-03-04 03:12:45.123456", "CRV202403040132", "EMAIL",
         "MOBILE", "AD000002", None, 17),
        ("IMP20240304000000002", "2024-03-04 13:45:10", "CRV202403040111", "FACEBOOK",
         "DESKTOP", "AD000003", 3, 120),
        ("IMP20240305000000001", "2024-03-05 19:00:00.5", "CRV202403040123", "GOOGLE", "TABLET",
         "AD000004", None, 333),
    ]
    return [
        insert("fact_marketing", [
            {"impression_id_ext": i, "event_ts": ts(t), "campaign_id": CAMPAIGN,
             "campaign_type": "seasonal_sale", "creative_id": crv, "channel": ch, "device": dev,
             "customer_ad_id": ad, "customer_id": c, "cost_cents": cost}
            for i, t, crv, ch, dev, ad, c, cost in rows
        ]),
        insert("gen_state_campaigns", [
            {"unit_id": 0, "campaign_id": CAMPAIGN, "campaign_type": "seasonal_sale",
             "start_date": D1,
             "end_date": date(2024, 3, 10)},
        ]),
    ]


def _state(outbox: bool) -> list[str]:
    config = create_test_config()
    # Lines of S1, due back after the generated range.
    pending = [
        {"unit_id": 1, "return_date": date(2024, 3, 12), "receipt_id_ext": S1, "store_id": 1,
         "customer_id": 1,
         "line_num": n, "product_id": p, "quantity": q, "unit_cents": u, "discount_cents": d,
         "ext_cents": u * q - d, "tax_cents": t, "promo_code": "SAVE10",
         "payment_method": "DEBIT_CARD"}
        for n, p, q, u, d, t in ((1, 2, 1, 2999, 300, 169), (2, 1, 2, 349, 70, 0))
    ]
    return [
        insert("gen_metadata", [
            {"key": "schema_version", "value": schema.SCHEMA_VERSION},
            {"key": "seed", "value": str(config.seed)},
            {"key": "master_generated_for", "value": "fixture"},
            {"key": "config_fingerprint", "value": "fixture"},
            {"key": "config_data", "value": config.config_data()},
        ]),
        "INSERT INTO gen_watermark (first_day, last_day) "
        "VALUES (DATE '2024-03-04', DATE '2024-03-05')",
        insert("gen_day_log", [
            {"day": day, "included_tables": ",".join(sorted(FACT_TABLES)), "outbox": outbox,
             "row_count": 0}
            for day in (D1, D2)
        ]),
        insert("gen_state_pending_returns", pending),
    ]


def statements(*, outbox: bool = False) -> list[str]:
    """Every INSERT of the fixture, dimensions first (PostgreSQL declares their FKs)."""
    return [*_dims(), *_receipts(), *_online(), *_inventory(), *_logistics(), *_sensors(),
            *_marketing(), *_state(outbox)]


# --- loading ------------------------------------------------------------------------------------

Fetch = Callable[[str], list[dict[str, Any]]]

ALL_TABLES: tuple[str, ...] = (*schema.DIM_TABLES,
                               *(FACT_TABLE_DB_NAMES[t] for t in FACT_TABLES),
                               schema.OUTBOX_TABLE, *schema.STATE_TABLES)


def _duck_fetch(con: duckdb.DuckDBPyConnection) -> Fetch:
    def fetch(sql: str) -> list[dict[str, Any]]:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    return fetch


def load_duckdb(con: duckdb.DuckDBPyConnection, *, outbox: bool = False) -> None:
    """Create every table in a DuckDB connection and insert the fixture."""
    duckdb_engine.create_tables(con, ALL_TABLES)
    for statement in statements(outbox=outbox):
        con.execute(statement)
    if outbox:
        con.execute(insert(schema.OUTBOX_TABLE, outbox_rows(_duck_fetch(con))))


def build_duckdb(path: str | os.PathLike[str], *, outbox: bool = False) -> Path:
    """Write the fixture into a new DuckDB file and return its path."""
    con = duckdb_engine.open_duckdb(path)
    try:
        load_duckdb(con, outbox=outbox)
    finally:
        con.close()
    return Path(path)


def load_sqlalchemy(conn: Connection, *, outbox: bool = False) -> None:
    """Create every table (with keys and FKs) through SQLAlchemy and insert the fixture."""

    def execute(sql: str) -> Any:
        # pyformat drivers read '%' as a placeholder marker.
        return conn.exec_driver_sql(sql.replace("%", "%%"))

    schema.metadata.create_all(conn)
    for statement in statements(outbox=outbox):
        execute(statement)
    if outbox:
        def fetch(sql: str) -> list[dict[str, Any]]:
            return [dict(r._mapping) for r in execute(sql)]

        execute(insert(schema.OUTBOX_TABLE, outbox_rows(fetch)))


def corrupt(execute: Callable[[str], Any], corruption: str | tuple[str, ...]) -> None:
    """Apply one adversarial corruption (one statement or several, in order)."""
    for statement in (corruption,) if isinstance(corruption, str) else corruption:
        execute(statement)


__all__ = [
    "D1", "D2", "LEG1", "LEG2", "O1", "O2", "O3", "R1", "S1", "S2", "S3", "S4",
    "build_duckdb", "corrupt", "dsid", "load_duckdb", "load_sqlalchemy", "statements", "ts",
]

