"""Property tests of the batch rules against small reference loops.

Each reference below is the rule as the spec states it, one item at a time in plain Python; the
library computes the same rule on whole arrays. Hypothesis draws the inputs.
"""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fact_fixtures import make_pools
from retail_datagen import domain
from retail_datagen.db.schema import arrow_schema
from retail_datagen.generators.fact_generators.day_types import InventoryEvents
from retail_datagen.generators.fact_generators.inventory_mixin import (
    balance_before,
    inventory_txn_table,
    resolve_events,
)
from retail_datagen.generators.fact_generators.logistics_mixin import (
    Reorders,
    _leg_numbers,
    allocate_reorders,
    pack_into_legs,
    reorder_priority,
)
from retail_datagen.generators.fact_generators.promotions_mixin import promotion_discounts
from retail_datagen.generators.fact_generators.receipts_mixin import (
    SaleLines,
    compute_sale_money,
    draw_store_visits,
    sale_receipt_ids,
)
from retail_datagen.generators.fact_generators.returns_mixin import PENDING_TABLE, make_returns
from retail_datagen.generators.fact_generators.utils_mixin import (
    US_PER_HOUR,
    day_start_us,
)
from retail_datagen.ids import dsid_unit, unit_day_ids
from retail_datagen.rng import stream

PROPS = settings(max_examples=60, deadline=None, derandomize=True)
SOURCES = ("A", "B", "RCP1", "SHP2", "CYCLE_COUNT")


# --- inventory: the min-rule -----------------------------------------------------------------


@st.composite
def inventory_cases(draw: st.DrawFn):
    n_nodes, n_products = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    opening = np.array(draw(st.lists(st.integers(0, 30), min_size=n_nodes * n_products,
                                     max_size=n_nodes * n_products)),
                       dtype=np.int64).reshape(n_nodes, n_products)
    events = draw(st.lists(st.tuples(
        st.integers(0, n_nodes - 1), st.integers(0, n_products - 1), st.integers(0, 6),
        st.integers(0, len(domain.TXN_TYPES_BY_RANK) - 1), st.sampled_from(SOURCES),
        st.integers(-25, 25).filter(bool)), max_size=40))
    return opening, events


def as_events(rows: list[tuple]) -> InventoryEvents:
    cols = list(zip(*rows, strict=True)) if rows else [()] * 6
    return InventoryEvents(
        node_idx=np.array(cols[0], dtype=np.int64), product_idx=np.array(cols[1], dtype=np.int64),
        ts_us=np.array(cols[2], dtype=np.int64), txn_type=np.array(cols[3], dtype=np.int8),
        source=pa.array(list(cols[4]), pa.string()), delta=np.array(cols[5], dtype=np.int64))


def reference_min_rule(opening: np.ndarray, rows: list[tuple]):
    """Apply events one by one in (node, product, ts, rank, source) order, input order on ties:
    a positive event always applies, a negative one takes what the balance allows."""
    balance = {(n, p): int(opening[n, p]) for n in range(opening.shape[0])
               for p in range(opening.shape[1])}
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1], *rows[i][2:5]))
    applied, after, before = [0] * len(rows), [0] * len(rows), [0] * len(rows)
    for i in order:
        node, product, *_, delta = rows[i]
        b = balance[node, product]
        take = delta if delta > 0 else -min(-delta, b)
        before[i], applied[i], after[i] = b, take, b + take
        balance[node, product] = b + take
    return order, applied, after, before, balance


@PROPS
@given(inventory_cases())
def test_min_rule_matches_the_one_by_one_reference(case) -> None:
    opening, rows = case
    on_hand = opening.copy()
    order, resolved = resolve_events(as_events(rows), on_hand)
    ref_order, applied, after, before, final = reference_min_rule(opening, rows)
    assert order.tolist() == ref_order
    assert resolved.applied.tolist() == applied
    assert resolved.balance.tolist() == after
    assert resolved.previous.tolist() == before
    assert {k: int(on_hand[k]) for k in final} == final
    assert (on_hand >= 0).all() and all(b >= 0 for b in after)


@PROPS
@given(inventory_cases(), st.integers(0, 7))
def test_balance_before_a_cutoff_matches_the_reference(case, cutoff: int) -> None:
    opening, rows = case
    events = as_events(rows)
    order, resolved = resolve_events(events, opening.copy())
    early = [r for r in rows if r[2] < cutoff]
    expected = reference_min_rule(opening, early)[4]
    got = balance_before(events, order, resolved, opening, cutoff)
    assert {k: int(got[k]) for k in expected} == expected


# --- DSIDs: inventory rows in DSID order --------------------------------------------------------


@PROPS
@given(inventory_cases(), st.dates(date(2020, 1, 1), date(2030, 12, 30)),
       st.lists(st.integers(1, 999), min_size=3, max_size=3))
def test_inventory_rows_carry_dsids_in_dsid_order(case, day: date, units: list[int]) -> None:
    opening, rows = case
    events = as_events(rows)
    _, resolved = resolve_events(events, opening.copy())
    node_ids = np.array([10, 20, 30], dtype=np.int64)
    node_units = np.array(units, dtype=np.int64)
    table, positions = inventory_txn_table(day, events, resolved, node_ids, node_units, dc=False)
    # DSID order: (event_ts, store_id, product_id, type rank, source), input order on ties.
    expected = sorted((i for i in range(len(rows)) if resolved.applied[i] != 0),
                      key=lambda i: (rows[i][2], node_ids[rows[i][0]], rows[i][1],
                                     rows[i][3], rows[i][4]))
    assert positions.tolist() == expected
    # id = YYYYMMDD * 10^11 + unit * 10^8 + n, n counting 1.. within the unit in DSID order.
    seen: dict[int, int] = {}
    reference = []
    for i in expected:
        unit = units[rows[i][0]]
        seen[unit] = seen.get(unit, 0) + 1
        reference.append(int(day.strftime("%Y%m%d")) * 10**11 + unit * 10**8 + seen[unit])
    assert table.column("TxnId").to_pylist() == reference
    assert table.column("Quantity").to_pylist() == [int(resolved.applied[i]) for i in expected]
    assert table.column("Balance").to_pylist() == [int(resolved.balance[i]) for i in expected]


@PROPS
@given(st.lists(st.integers(0, 999), max_size=60),
       st.dates(date(2020, 1, 1), date(2030, 12, 30)))
def test_unit_day_ids_increase_with_date_unit_and_position(units: list[int], day: date) -> None:
    ids = unit_day_ids(day, np.array(units, dtype=np.int64)).tolist()
    assert len(set(ids)) == len(ids)
    by_unit = sorted(range(len(units)), key=lambda i: (units[i], i))
    assert [ids[i] for i in by_unit] == sorted(ids)
    assert dsid_unit(np.array(ids, dtype=np.int64)).tolist() == units
    if units:
        later = unit_day_ids(day + timedelta(days=1), np.zeros(1, dtype=np.int64))
        assert int(later.min()) > max(ids)


# --- money: lines, headers, discounts, tax, refunds ------------------------------------------


def ref_line_tax(ext: int, ppm: int, factor: int) -> int:
    magnitude = (abs(ext) * ppm * factor + 50_000_000) // 100_000_000
    return magnitude if ext >= 0 else -magnitude


def sale_lines(receipts: list[list[tuple[int, int]]]) -> SaleLines:
    """SaleLines with the money columns set; receipts are lists of (unit_cents, qty)."""
    unit = np.array([u for r in receipts for u, _ in r], dtype=np.int64)
    qty = np.array([q for r in receipts for _, q in r], dtype=np.int64)
    sizes = [len(r) for r in receipts]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    receipt_index = np.repeat(np.arange(len(receipts)), sizes).astype(np.int64)
    z = np.zeros(len(receipts), dtype=np.int64)
    return SaleLines(
        visit_index=receipt_index, receipt_index=receipt_index,
        line_num=np.concatenate([np.arange(1, s + 1) for s in sizes]).astype(np.int64)
        if sizes else np.zeros(0, dtype=np.int64),
        product_idx=np.zeros(len(qty), dtype=np.int64), quantity=qty, unit_cents=unit,
        gross_cents=unit * qty, receipt_visit=np.arange(len(receipts), dtype=np.int64),
        line_offsets=offsets, receipt_id=pa.array([f"R{i}" for i in range(len(receipts))]),
        store_idx=z, store_id=z + 1, ts_us=z, customer_id=z + 1)


LINE = st.tuples(st.integers(1, 500_000), st.integers(1, 12))
RECEIPTS = st.lists(st.lists(LINE, min_size=1, max_size=6), min_size=1, max_size=6)


@PROPS
@given(RECEIPTS, st.data())
def test_sale_money_lines_and_headers_match_the_reference(receipts, data) -> None:
    lines = sale_lines(receipts)
    n = len(lines)
    gross = lines.gross_cents.tolist()
    discount = [data.draw(st.integers(0, g)) for g in gross]
    ppm = data.draw(st.lists(st.integers(0, 150_000), min_size=n, max_size=n))
    factor = data.draw(st.lists(st.sampled_from([0, 50, 100]), min_size=n, max_size=n))
    got = compute_sale_money(lines, np.array(discount), np.array(ppm), np.array(factor))
    ext = [g - d for g, d in zip(gross, discount, strict=True)]
    tax = [ref_line_tax(e, p, f) for e, p, f in zip(ext, ppm, factor, strict=True)]
    assert got.ext_cents.tolist() == ext and got.tax_cents.tolist() == tax
    start = 0
    for r, rows in enumerate(receipts):
        part = slice(start, start + len(rows))
        start += len(rows)
        assert got.line_count[r] == len(rows)
        assert got.item_count[r] == sum(q for _, q in rows)
        assert got.gross_total[r] == sum(gross[part])
        assert got.discount_total[r] == sum(discount[part])
        assert got.subtotal[r] == sum(ext[part]) == got.gross_total[r] - got.discount_total[r]
        assert got.tax_total[r] == sum(tax[part])
        assert got.total[r] == got.subtotal[r] + got.tax_total[r]


# The §7 code table as written in the spec: (type, value, min gross cents, months, categories).
ALL = set(domain.BASKET_CATEGORIES)
SPEC_CODES = {
    "SAVE10": ("PCT", 10, 0, None, ALL), "SAVE15": ("PCT", 15, 2500, None, ALL),
    "SAVE20": ("PCT", 20, 5000, None, ALL), "SAVE25": ("PCT", 25, 7500, None, ALL),
    "TAKE5": ("FIXED", 500, 4000, None, ALL), "TAKE10": ("FIXED", 1000, 7500, None, ALL),
    "BOGO50": ("BOGO", 50, 0, None, ALL),
    "CLEARANCE30": ("PCT", 30, 0, None, {"clothing", "electronics", "home_garden"}),
    "CLEARANCE50": ("PCT", 50, 0, {1, 2, 7, 8}, {"clothing", "electronics"}),
    "BFRIDAY30": ("PCT", 30, 0, {11}, ALL), "BFRIDAY40": ("PCT", 40, 10000, {11}, ALL),
    "SUMMER25": ("PCT", 25, 0, {6, 7, 8}, ALL),
    "BACKTOSCHOOL": ("PCT", 20, 0, {8, 9}, {"clothing", "electronics"}),
    "HOLIDAY20": ("PCT", 20, 0, {12}, ALL), "NEWYEAR15": ("PCT", 15, 0, {1, 2}, ALL),
}


def ref_fixed(amount: int, gross: list[int], eligible: list[bool]) -> list[int]:
    """min(A, eligible gross) ∝ line gross, largest remainder first, ties to the lower line."""
    weights = [g if e else 0 for g, e in zip(gross, eligible, strict=True)]
    total, wsum = min(amount, sum(weights)), sum(weights)
    if wsum == 0:
        return [0] * len(gross)
    shares = [Fraction(total * w, wsum) for w in weights]
    out = [int(s) for s in shares]
    for i in sorted(range(len(gross)), key=lambda i: (-(shares[i] - out[i]), i))[
            :total - sum(out)]:
        out[i] += 1
    return out


def ref_promotion(code: str | None, lines: list[tuple[int, int, str]], month: int) -> list[int]:
    """Per-line discount of one receipt (unit, qty, category) under ``code`` (§6, §7)."""
    if code is None:
        return [0] * len(lines)
    kind, value, min_gross, months, categories = SPEC_CODES[code]
    in_cat = [c in categories for _, _, c in lines]
    qualifying = ([ok and q >= 2 for ok, (_, q, _) in zip(in_cat, lines, strict=True)]
                  if kind == "BOGO" else in_cat)
    gross = [u * q for u, q, _ in lines]
    if (months is not None and month not in months) or sum(gross) < min_gross \
            or not any(qualifying):
        return [0] * len(lines)
    if kind == "PCT":
        return [(g * value * 100 + 5_000) // 10_000 if ok else 0
                for g, ok in zip(gross, qualifying, strict=True)]
    if kind == "BOGO":
        return [(u * (q // 2) * 5_000 + 5_000) // 10_000 if ok else 0
                for (u, q, _), ok in zip(lines, qualifying, strict=True)]
    return ref_fixed(value, gross, qualifying)


PROMO_LINE = st.tuples(st.integers(1, 9_000), st.integers(1, 4),
                       st.sampled_from(domain.BASKET_CATEGORIES))


@settings(max_examples=120, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.none() | st.sampled_from(domain.PROMO_CODES),
                          st.lists(PROMO_LINE, min_size=1, max_size=5)), min_size=1, max_size=5),
       st.integers(1, 12))
def test_promotion_discounts_match_the_code_table(receipts, month: int) -> None:
    codes = np.array([-1 if c is None else domain.PROMO_CODES.index(c) for c, _ in receipts])
    lines = [line for _, rows in receipts for line in rows]
    line_receipt = np.repeat(np.arange(len(receipts)), [len(rows) for _, rows in receipts])
    unit = np.array([u for u, _, _ in lines], dtype=np.int64)
    qty = np.array([q for _, q, _ in lines], dtype=np.int64)
    category = np.array([domain.BASKET_CATEGORIES.index(c) for _, _, c in lines])
    discount, promo = promotion_discounts(codes, line_receipt=line_receipt,
                                          line_category=category, unit_cents=unit, qty=qty,
                                          gross_cents=unit * qty, month=month)
    expected = [d for c, rows in receipts for d in ref_promotion(c, rows, month)]
    assert discount.tolist() == expected
    assert all(0 <= d <= u * q for d, (u, q, _) in zip(expected, lines, strict=True))
    expected_code = [codes[r] if d > 0 else -1 for r, d in zip(line_receipt, expected,
                                                               strict=True)]
    assert promo.tolist() == expected_code


@st.composite
def pending_returns(draw: st.DrawFn):
    """Due lines of a few SALE receipts at stores 1..3 (gen_state_pending_returns rows)."""
    rows = []
    for r in range(draw(st.integers(1, 6))):
        store = draw(st.integers(1, 3))
        receipt = f"RCP20240301{store:05d}{draw(st.integers(1, 999)):06d}"
        if any(row["receipt_id_ext"] == receipt for row in rows):
            continue
        method = draw(st.sampled_from(domain.PAYMENT_METHODS))
        for line in range(1, draw(st.integers(1, 4)) + 1):
            unit, qty = draw(st.integers(1, 50_000)), draw(st.integers(1, 5))
            discount = draw(st.integers(0, unit * qty))
            ext = unit * qty - discount
            rows.append({
                "return_date": date(2024, 3, 10), "receipt_id_ext": receipt, "store_id": store,
                "customer_id": 100 + r, "line_num": line, "product_id": draw(st.integers(1, 4)),
                "quantity": qty, "unit_cents": unit, "discount_cents": discount,
                "ext_cents": ext, "tax_cents": ref_line_tax(ext, 82_500, 100),
                "promo_code": draw(st.none() | st.just("SAVE10")), "payment_method": method,
            })
    draw(st.randoms()).shuffle(rows)  # make_returns takes due rows in any order
    return rows


@PROPS
@given(pending_returns(), st.integers(0, 2**32 - 1))
def test_returns_negate_the_sale_exactly_and_refund_the_total(rows, seed: int) -> None:
    due = pa.Table.from_pylist(rows, schema=arrow_schema(PENDING_TABLE))
    batch = make_returns(seed, date(2024, 3, 10), due, open_hour=np.array([8, 0, 9]),
                         close_hour=np.array([22, 24, 21]),
                         is_food=np.array([True, False, False, True]))
    heads = batch.receipts.to_pylist()
    lines = batch.receipt_lines.to_pylist()
    original = {(r["receipt_id_ext"], r["line_num"]): r for r in rows}
    ret_of = {h["ReceiptId"]: h["ReturnForReceiptId"] for h in heads}
    assert len(lines) == len(rows)
    for line in lines:
        sale = original[ret_of[line["ReceiptId"]], line["LineNumber"]]
        assert (line["Qty"], line["DiscountCents"], line["ExtCents"], line["TaxCents"]) == (
            -sale["quantity"], -sale["discount_cents"], -sale["ext_cents"], -sale["tax_cents"])
        assert (line["UnitCents"], line["PromoCode"], line["ProductID"]) == (
            sale["unit_cents"], sale["promo_code"], sale["product_id"])
    payments = {p["ReceiptId"]: p for p in batch.payments.to_pylist()}
    for head in heads:
        own = [ln for ln in lines if ln["ReceiptId"] == head["ReceiptId"]]
        sale = [r for r in rows if r["receipt_id_ext"] == head["ReturnForReceiptId"]]
        assert head["SubtotalCents"] == sum(ln["ExtCents"] for ln in own)
        assert head["TaxCents"] == sum(ln["TaxCents"] for ln in own)
        assert head["TotalCents"] == head["SubtotalCents"] + head["TaxCents"]
        assert head["TotalCents"] == -sum(r["ext_cents"] + r["tax_cents"] for r in sale)
        assert head["GrossSubtotalCents"] - head["DiscountCents"] == head["SubtotalCents"]
        refund = payments[head["ReceiptId"]]
        assert (refund["Status"], refund["AmountCents"], refund["TenderType"]) == (
            "REFUNDED", head["TotalCents"], sale[0]["payment_method"])
    # RET seq within a store-day: by return time, then original receipt id.
    for store in {h["StoreID"] for h in heads}:
        mine = [h for h in heads if h["StoreID"] == store]
        by_rule = sorted(mine, key=lambda h: (h["EventTS"], h["ReturnForReceiptId"]))
        assert [h["ReceiptId"] for h in by_rule] == [
            f"RET20240310{store:05d}{seq:06d}" for seq in range(1, len(mine) + 1)]


# --- allocation order ------------------------------------------------------------------------


@st.composite
def reorder_cases(draw: st.DrawFn):
    n_stores, n_products, n_dcs = draw(st.integers(1, 5)), draw(st.integers(1, 4)), 2
    store_dc = np.array(draw(st.lists(st.integers(0, n_dcs - 1), min_size=n_stores,
                                      max_size=n_stores)), dtype=np.int64)
    pairs = sorted(draw(st.sets(st.tuples(st.integers(0, n_stores - 1),
                                          st.integers(0, n_products - 1)), max_size=12)))
    qty = draw(st.lists(st.integers(50, 200), min_size=len(pairs), max_size=len(pairs)))
    priority = draw(st.lists(st.integers(0, 2), min_size=len(pairs), max_size=len(pairs)))
    balance = np.array(draw(st.lists(st.integers(0, 600), min_size=n_dcs * n_products,
                                     max_size=n_dcs * n_products)),
                       dtype=np.int64).reshape(n_dcs, n_products)
    return store_dc, pairs, qty, priority, balance


@PROPS
@given(reorder_cases())
def test_allocation_grants_in_priority_store_product_order(case) -> None:
    store_dc, pairs, qty, priority, balance = case
    z = np.zeros(len(pairs), dtype=np.int64)
    reorders = Reorders(np.array([s for s, _ in pairs], dtype=np.int64),
                        np.array([p for _, p in pairs], dtype=np.int64), z, z, z,
                        np.array(qty, dtype=np.int64), np.array(priority, dtype=np.int8), z)
    got = allocate_reorders(reorders, store_dc, balance.copy())
    remaining = balance.copy()
    expected = [0] * len(pairs)
    for i in sorted(range(len(pairs)), key=lambda i: (priority[i], *pairs[i])):
        store, product = pairs[i]
        expected[i] = min(qty[i], int(remaining[store_dc[store], product]))
        remaining[store_dc[store], product] -= expected[i]
    assert got.tolist() == expected


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(0, 400), st.integers(0, 400), st.integers(0, 400))
def test_reorder_priority_is_the_deficit_percentage(rp: int, on_hand: int, transit: int) -> None:
    got = int(reorder_priority(np.array([rp]), np.array([on_hand]), np.array([transit]))[0])
    if rp == 0:
        assert got == 2
        return
    deficit = Fraction(rp - on_hand - transit, rp) * 100
    assert got == (0 if deficit >= 50 else 1 if deficit >= 25 else 2)


# --- leg packing -----------------------------------------------------------------------------


def ref_legs(lines: list[tuple[int, int, bool, int, int]], capacity: int) -> list[tuple]:
    """Pieces (dc, store, leg, product, qty): per (dc, store), refrigerated lines then ambient,
    each class by product and packed in that order into legs of ≤ capacity (a product that does
    not fit is split), legs numbered from 1 with the ambient legs after the refrigerated."""
    pieces = []
    for dc, store in sorted({(d, s) for d, s, *_ in lines}):
        leg = 0
        for refrigerated in (True, False):
            mine = sorted((p, q) for d, s, r, p, q in lines
                          if (d, s, r) == (dc, store, refrigerated))
            room = 0
            for product, qty in mine:
                while qty:
                    if room == 0:
                        leg, room = leg + 1, capacity
                    take = min(qty, room)
                    pieces.append((dc, store, leg, product, take))
                    qty, room = qty - take, room - take
    return sorted(pieces)


@st.composite
def leg_lines(draw: st.DrawFn):
    keys = draw(st.sets(st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(0, 6)),
                        min_size=1, max_size=12))
    refrigerated = {p: draw(st.booleans()) for p in range(7)}
    return [(d, s, refrigerated[p], p, draw(st.integers(1, 2_500))) for d, s, p in sorted(keys)]


@PROPS
@given(leg_lines(), st.sampled_from([1000, 1500, 4000]), st.randoms())
def test_leg_packing_respects_capacity_classes_and_order(lines, capacity: int, rnd) -> None:
    rnd.shuffle(lines)  # the engine takes allocated lines in any order
    dc, store, ref, product, qty = (np.array(c) for c in zip(*lines, strict=True))
    src, leg, piece = _leg_numbers(dc.astype(np.int64), store.astype(np.int64),
                                   ref.astype(bool), product.astype(np.int64),
                                   qty.astype(np.int64), capacity)
    got = sorted(zip(dc[src].tolist(), store[src].tolist(), leg.tolist(),
                     product[src].tolist(), piece.tolist(), strict=True))
    assert got == ref_legs(lines, capacity)
    load: dict[tuple, int] = {}
    classes: dict[tuple, set] = {}
    for d, s, lg, p, q in got:
        load[d, s, lg] = load.get((d, s, lg), 0) + q
        classes.setdefault((d, s, lg), set()).add(bool(ref[product == p][0]))
    assert max(load.values()) <= capacity and all(len(c) == 1 for c in classes.values())


@PROPS
@given(st.lists(st.integers(1, 5_000), min_size=1, max_size=8), st.integers(1000, 6000))
def test_pack_into_legs_fills_each_leg_before_the_next(qty: list[int], capacity: int) -> None:
    group = np.zeros(len(qty), dtype=np.int64)
    line, leg, piece = pack_into_legs(group, np.arange(len(qty)), np.array(qty), capacity)
    per_leg = np.bincount(leg, weights=piece).astype(int).tolist()
    total = sum(qty)
    assert per_leg == [capacity] * (total // capacity) + ([total % capacity] if total % capacity
                                                          else [])
    assert np.bincount(line, weights=piece).astype(int).tolist() == qty
    assert (np.diff(line) >= 0).all() and (np.diff(leg) >= 0).all()


# --- external ids: visit seq and receipt ids ----------------------------------------------------


@PROPS
@given(st.integers(0, 2**32 - 1), st.lists(st.floats(0, 12), min_size=24, max_size=24),
       st.integers(0, 23), st.integers(1, 24), st.integers(1, 99_999))
def test_visit_seq_follows_visit_time_and_names_the_receipt(seed: int, lam: list[float],
                                                           open_hour: int, hours: int,
                                                           store_id: int) -> None:
    day = date(2024, 11, 29)
    open_mask = np.zeros(24, dtype=bool)
    open_mask[open_hour:min(24, open_hour + hours)] = True
    gens = [stream(seed, name, day, store_id) for name in
            ("visits.count", "visits.time", "visits.customer", "basket.behaviour")]
    visits = draw_store_visits(*gens, store_index=0, lam=np.array(lam), open_mask=open_mask,
                               day_start_us=day_start_us(day), pools=make_pools(1),
                               customer_segment=np.zeros(400, dtype=np.int8),
                               total_customers=400)
    n = len(visits)
    assert visits.visit_seq.tolist() == list(range(1, n + 1))
    assert (np.diff(visits.ts_us) >= 0).all()  # seq order is visit-time order
    hour = (visits.ts_us - day_start_us(day)) // US_PER_HOUR
    assert hour.tolist() == visits.hour.tolist() and open_mask[hour].all()
    assert np.bincount(hour, minlength=24).tolist() == visits.visits_per_hour[0].tolist()
    ids = sale_receipt_ids(day, np.full(n, store_id), visits.visit_seq).to_pylist()
    assert ids == [f"RCP20241129{store_id:05d}{seq:06d}" for seq in range(1, n + 1)]
    assert ids == sorted(ids)
