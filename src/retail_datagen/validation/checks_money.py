"""Invariants B: money (INV-10 … INV-16).

Every formula runs on the integer ``*_cents`` columns; the DECIMAL columns are only compared with
them (INV-10), exactly, in both dialects.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import BigInteger, Numeric, Table

from retail_datagen import domain
from retail_datagen.db.schema import DIM_TABLES, quote_ident, table
from retail_datagen.validation.checks_keys import FACT_DB_TABLES, key_columns, row_filter
from retail_datagen.validation.core import Check, Context, Query, sql_list, violations

#: discount_type of each in-store promo code (behaviour.md §7).
PROMO_DISCOUNT_TYPES: dict[str, str] = {
    code: "FIXED_AMOUNT" if code.startswith("TAKE") else "BOGO" if code == "BOGO50"
    else "PERCENTAGE"
    for code in domain.PROMO_CODES
}
_TAX_FACTOR = dict(zip(domain.TAXABILITY, domain.TAXABILITY_FACTOR, strict=True))


def money_pairs(tbl: Table) -> list[tuple[str, str]]:
    """Pair each ``DECIMAL(18,2)`` column of a table with its ``BIGINT *_cents`` column.

    A cents column pairs with the earliest amount column still unpaired, which covers both the
    interleaved layout of fact tables (``unit_price``, ``unit_cents``, …) and the grouped one of
    ``dim_products`` (``cost``, ``msrp``, ``sale_price``, then their cents).

    Raises:
        RuntimeError: An amount column has no cents column (the schema is not the contract).
    """
    pending: list[str] = []
    pairs: list[tuple[str, str]] = []
    for col in tbl.c:
        if isinstance(col.type, Numeric) and (col.type.precision, col.type.scale) == (18, 2):
            pending.append(col.name)
        elif isinstance(col.type, BigInteger) and col.name.endswith("_cents") and pending:
            pairs.append((pending.pop(0), col.name))
    if pending:
        raise RuntimeError(f"{tbl.name}: amount columns without cents: {pending}")
    return pairs


def factor_sql(taxability: str) -> str:
    """``f(p)``: the taxability factor as a CASE expression (NULL outside the domain)."""
    whens = " ".join(f"WHEN {sql_list([k])} THEN {v}" for k, v in _TAX_FACTOR.items())
    return f"(CASE {taxability} {whens} END)"


def ppm_sql(rate: str) -> str:
    """``ppm``: ``round(tax_rate × 1e6)`` as a BIGINT."""
    return f"CAST(round({rate} * 1000000) AS BIGINT)"


def tax_sql(ext: str, ppm: str, factor: str) -> str:
    """Line tax of behaviour.md §6, sign-symmetric.

    ``sign(ext) × ((|ext| × ppm × f + 50_000_000) // 100_000_000)`` in integer arithmetic.
    """
    return (
        f"(CASE WHEN {ext} < 0 THEN -1 ELSE 1 END * "
        f"<<idiv:abs({ext}) * {ppm} * {factor} + 50000000;100000000>>)"
    )


def _inv10(ctx: Context) -> Iterator[Query]:
    for name in (*DIM_TABLES, *FACT_DB_TABLES):
        pairs = money_pairs(table(name))
        if not pairs:
            continue
        rule = violations(
            *(
                (f"{quote_ident(a)} * 100 <> {quote_ident(c)}", f"{a} <> {c} / 100")
                for a, c in pairs
            )
        )
        yield Query(
            f"SELECT * FROM (SELECT {sql_list([name])} AS table_name, {key_columns(name)}, "
            f"{rule} AS rule FROM {name} WHERE {row_filter(name)}) v WHERE rule <> ''"
        )


def _inv11(ctx: Context) -> Iterator[Query]:
    common = (
        ("l.ext_cents <> l.unit_cents * l.quantity - l.discount_cents",
         "ext <> unit × qty − discount"),
        ("l.unit_cents <= 0", "unit_cents <= 0"),
        ("l.quantity = 0", "quantity = 0"),
        ("(l.promo_code IS NULL) <> (l.discount_cents = 0)", "promo_code set iff discount <> 0"),
    )
    sale = (
        "l.discount_cents NOT BETWEEN 0 AND l.unit_cents * l.quantity",
        "discount outside [0, unit × qty]",
    )
    yield Query(
        "SELECT * FROM (SELECT l.receipt_id_ext, l.line_num, "
        + violations(*common, (f"r.receipt_type = 'SALE' AND {sale[0]}", sale[1]))
        + " AS rule FROM fact_receipt_lines l LEFT JOIN fact_receipts r "
        "ON r.receipt_id_ext = l.receipt_id_ext WHERE <<rows:l.event_ts>>) v WHERE rule <> ''"
    )
    yield Query(
        "SELECT * FROM (SELECT l.order_id_ext, l.line_num, "
        + violations(*common, sale)
        + " AS rule FROM fact_online_order_lines l WHERE <<rows:l.event_ts>>) v WHERE rule <> ''"
    )


def _inv12(ctx: Context) -> Iterator[Query]:
    expected = tax_sql("l.ext_cents", ppm_sql("s.tax_rate"), factor_sql("p.taxability"))
    yield Query(
        f"SELECT * FROM (SELECT l.receipt_id_ext, l.line_num, l.tax_cents, {expected} AS expected "
        "FROM fact_receipt_lines l JOIN fact_receipts r ON r.receipt_id_ext = l.receipt_id_ext "
        "JOIN dim_stores s ON s.store_id = r.store_id "
        "JOIN dim_products p ON p.product_id = l.product_id WHERE <<rows:l.event_ts>>) v "
        "WHERE tax_cents <> expected"
    )
    # BOPIS uses the store's rate; ship modes use the customer's home geography.
    ppm = (
        f"CASE WHEN h.fulfillment_mode = 'BOPIS' THEN {ppm_sql('s.tax_rate')} "
        f"ELSE {ppm_sql('g.tax_rate')} END"
    )
    expected = tax_sql("l.ext_cents", f"({ppm})", factor_sql("p.taxability"))
    yield Query(
        f"SELECT * FROM (SELECT l.order_id_ext, l.line_num, l.tax_cents, {expected} AS expected "
        "FROM fact_online_order_lines l "
        "JOIN fact_online_order_headers h ON h.order_id_ext = l.order_id_ext "
        "LEFT JOIN dim_stores s ON s.store_id = h.store_id "
        "JOIN dim_customers c ON c.customer_id = h.customer_id "
        "JOIN dim_geographies g ON g.geography_id = c.geography_id "
        "JOIN dim_products p ON p.product_id = l.product_id WHERE <<rows:l.event_ts>>) v "
        "WHERE tax_cents <> expected"
    )


def _header_vs_lines(header: str, lines: str, key: str, *, receipt: bool) -> Query:
    """Header money and counts against the sums of its lines (lines read whole per header)."""
    rules = [
        ("h.gross_subtotal_cents <> COALESCE(a.gross, 0)", "gross <> Σ unit × qty"),
        ("h.discount_cents <> COALESCE(a.discount, 0)", "discount <> Σ discount"),
        ("h.subtotal_cents <> COALESCE(a.ext, 0)", "subtotal <> Σ ext"),
        ("h.tax_cents <> COALESCE(a.tax, 0)", "tax <> Σ tax"),
        ("h.line_count <> COALESCE(a.n, 0)", "line_count <> count(lines)"),
        ("h.item_count <> COALESCE(a.qty, 0)", "item_count <> Σ qty"),
        ("h.total_cents <> h.subtotal_cents + h.tax_cents", "total <> subtotal + tax"),
    ]
    if receipt:
        rules.append(
            ("h.gross_subtotal_cents - h.discount_cents <> h.subtotal_cents",
             "gross − discount <> subtotal")
        )
    return Query(
        f"WITH h AS (SELECT * FROM {header} WHERE <<rows:event_ts>>), "
        f"a AS (SELECT {key}, sum(unit_cents * quantity) AS gross, "
        "sum(discount_cents) AS discount, "
        "sum(ext_cents) AS ext, sum(tax_cents) AS tax, count(*) AS n, sum(quantity) AS qty "
        f"FROM {lines} WHERE {key} IN (SELECT {key} FROM h) GROUP BY {key}) "
        f"SELECT * FROM (SELECT h.{key}, {violations(*rules)} AS rule "
        f"FROM h LEFT JOIN a ON a.{key} = h.{key}) v WHERE rule <> ''"
    )


def _inv13(ctx: Context) -> Iterator[Query]:
    yield _header_vs_lines("fact_receipts", "fact_receipt_lines", "receipt_id_ext", receipt=True)


def _inv14(ctx: Context) -> Iterator[Query]:
    yield _header_vs_lines(
        "fact_online_order_headers", "fact_online_order_lines", "order_id_ext", receipt=False
    )


def _inv15(ctx: Context) -> Iterator[Query]:
    types = " ".join(
        f"WHEN {sql_list([c])} THEN {sql_list([t])}" for c, t in PROMO_DISCOUNT_TYPES.items()
    )
    yield Query(
        "WITH p AS (SELECT * FROM fact_promotions WHERE <<rows:event_ts>>), "
        "a AS (SELECT receipt_id_ext, sum(discount_cents) AS discount, count(*) AS n, "
        "string_agg(CAST(product_id AS VARCHAR), ',' ORDER BY product_id) AS ids, "
        "min(promo_code) AS code_min, max(promo_code) AS code_max FROM fact_promo_lines "
        "WHERE receipt_id_ext IN (SELECT receipt_id_ext FROM p) GROUP BY receipt_id_ext) "
        "SELECT * FROM (SELECT p.receipt_id_ext, "
        + violations(
            ("p.discount_cents <> COALESCE(a.discount, 0)", "discount <> Σ promo line discount"),
            ("r.receipt_id_ext IS NOT NULL AND p.discount_cents <> r.discount_cents",
             "discount <> receipt discount"),
            ("p.product_count <> COALESCE(a.n, 0)", "product_count <> count(promo lines)"),
            ("p.product_ids IS DISTINCT FROM a.ids", "product_ids <> promo line products"),
            (f"p.discount_type IS DISTINCT FROM (CASE p.promo_code {types} END)",
             "discount_type differs from the code table"),
            ("a.code_min <> p.promo_code OR a.code_max <> p.promo_code",
             "promo line code differs from the promotion's"),
        )
        + " AS rule FROM p LEFT JOIN a ON a.receipt_id_ext = p.receipt_id_ext "
        "LEFT JOIN fact_receipts r ON r.receipt_id_ext = p.receipt_id_ext) v WHERE rule <> ''"
    )
    yield Query(
        "SELECT 'discounted SALE receipt without promotion' AS rule, r.receipt_id_ext "
        "FROM fact_receipts r WHERE r.receipt_type = 'SALE' AND r.discount_cents > 0 "
        "AND <<rows:r.event_ts>> AND NOT EXISTS "
        "(SELECT 1 FROM fact_promotions p WHERE p.receipt_id_ext = r.receipt_id_ext)"
    )
    yield Query(
        "SELECT 'promo line differs from its receipt line' AS rule, pl.receipt_id_ext, pl.line_num "
        "FROM fact_promo_lines pl JOIN fact_receipt_lines l "
        "ON l.receipt_id_ext = pl.receipt_id_ext AND l.line_num = pl.line_num "
        "WHERE <<rows:pl.event_ts>> AND (pl.product_id <> l.product_id "
        "OR pl.quantity <> l.quantity OR pl.discount_cents <> l.discount_cents "
        "OR pl.promo_code IS DISTINCT FROM l.promo_code)"
    )


def _parent_payments(parent: str, key: str, kind: str) -> Query:
    """Payments of each receipt or order against its total and status (INV-16)."""
    if kind == "receipt":
        status = "receipt_type"
        rules = [
            ("h.receipt_type = 'SALE' AND (n_app <> 1 OR n_app_ok <> 1)",
             "SALE without exactly one APPROVED payment of its total"),
            ("h.receipt_type = 'RETURN' AND (n <> 1 OR n_ref_ok <> 1)",
             "RETURN without exactly one REFUNDED payment of its total"),
            ("h.receipt_type = 'SALE' AND n_ref > 0", "REFUNDED payment of a SALE"),
        ]
    else:
        status = "order_status"
        rules = [
            ("h.order_status = 'COMPLETED' AND (n_app <> 1 OR n_app_ok <> 1)",
             "COMPLETED order without exactly one APPROVED payment of its total"),
            ("h.order_status = 'CANCELLED' AND n > 0", "CANCELLED order with payments"),
            # A returned order gets one refund of the lines that came back (checked in INV-37).
            ("n_ref > 1", "more than one REFUNDED payment of an order"),
            ("n_ref = 1 AND NOT (ref_amount < 0 AND -ref_amount <= h.total_cents)",
             "REFUNDED amount of an order outside −total..−0.01"),
        ]
    rules += [
        ("n_bad_amount > 0", "an attempt's amount differs from the total"),
        ("n_app + n_ref >= 1 AND n_method_ok = 0",
         "payment_method differs from the APPROVED/REFUNDED payment's"),
    ]
    partial_refund = "AND x.status <> 'REFUNDED'" if kind == "order" else ""
    return Query(
        f"WITH h AS (SELECT {key}, {status}, total_cents, payment_method "
        f"FROM {parent} WHERE <<rows:event_ts>>), "
        f"a AS (SELECT h.{key}, count(x.transaction_id) AS n, "
        "sum(CASE WHEN x.status = 'APPROVED' THEN 1 ELSE 0 END) AS n_app, "
        "sum(CASE WHEN x.status = 'APPROVED' AND x.amount_cents = h.total_cents "
        "THEN 1 ELSE 0 END) AS n_app_ok, "
        "sum(CASE WHEN x.status = 'REFUNDED' THEN 1 ELSE 0 END) AS n_ref, "
        "sum(CASE WHEN x.status = 'REFUNDED' AND x.amount_cents = h.total_cents "
        "THEN 1 ELSE 0 END) AS n_ref_ok, "
        "sum(CASE WHEN x.status = 'REFUNDED' THEN x.amount_cents END) AS ref_amount, "
        f"sum(CASE WHEN x.amount_cents <> h.total_cents {partial_refund} THEN 1 ELSE 0 END) "
        "AS n_bad_amount, "
        "sum(CASE WHEN x.status IN ('APPROVED', 'REFUNDED') "
        "AND x.payment_method = h.payment_method THEN 1 ELSE 0 END) AS n_method_ok "
        f"FROM h LEFT JOIN fact_payments x ON x.{key} = h.{key} GROUP BY h.{key}) "
        f"SELECT * FROM (SELECT h.{key}, {violations(*rules)} AS rule "
        f"FROM h JOIN a ON a.{key} = h.{key}) v WHERE rule <> ''"
    )


def _inv16(ctx: Context) -> Iterator[Query]:
    yield _parent_payments("fact_receipts", "receipt_id_ext", "receipt")
    yield _parent_payments("fact_online_order_headers", "order_id_ext", "order")
    # Per parent: whether attempt 1 was declined and the methods of approved attempts 2, so
    # that each payment is judged with one join instead of a correlated subquery.
    yield Query(
        "WITH x AS (SELECT transaction_id, attempt, status, decline_reason, payment_method, "
        "COALESCE(receipt_id_ext, order_id_ext) AS parent FROM fact_payments "
        "WHERE <<rows:event_ts>>), "
        "a AS (SELECT COALESCE(receipt_id_ext, order_id_ext) AS parent, "
        "max(CASE WHEN attempt = 1 AND status = 'DECLINED' THEN 1 ELSE 0 END) AS declined1, "
        "min(CASE WHEN attempt = 2 AND status = 'APPROVED' THEN payment_method END) AS m2_min, "
        "max(CASE WHEN attempt = 2 AND status = 'APPROVED' THEN payment_method END) AS m2_max "
        "FROM fact_payments WHERE COALESCE(receipt_id_ext, order_id_ext) IN "
        "(SELECT parent FROM x) GROUP BY COALESCE(receipt_id_ext, order_id_ext)) "
        "SELECT * FROM (SELECT x.transaction_id, x.parent, "
        + violations(
            ("x.status = 'DECLINED' AND x.attempt <> 1", "DECLINED attempt is not attempt 1"),
            ("x.status = 'DECLINED' AND x.decline_reason IS NULL",
             "DECLINED without decline_reason"),
            ("x.status = 'DECLINED' AND x.payment_method = 'CASH'", "DECLINED CASH payment"),
            ("x.status <> 'DECLINED' AND x.decline_reason IS NOT NULL",
             "decline_reason set on a payment that is not DECLINED"),
            ("x.attempt NOT IN (1, 2)", "attempt is not 1 or 2"),
            ("x.status = 'DECLINED' AND NOT COALESCE(a.m2_min <> x.payment_method "
             "OR a.m2_max <> x.payment_method, FALSE)",
             "DECLINED without an APPROVED attempt 2 of another method"),
            ("x.attempt = 2 AND COALESCE(a.declined1, 0) = 0",
             "attempt 2 without a DECLINED attempt 1"),
        )
        + " AS rule FROM x LEFT JOIN a ON a.parent = x.parent) v WHERE rule <> ''"
    )


CHECKS: tuple[Check, ...] = (
    Check("INV-10", "Amount = cents / 100", _inv10),
    Check("INV-11", "Line arithmetic", _inv11),
    Check("INV-12", "Line tax", _inv12),
    Check("INV-13", "Receipt header = its lines", _inv13),
    Check("INV-14", "Online header = its lines", _inv14),
    Check("INV-15", "Promotions = promo lines = receipt discount", _inv15),
    Check("INV-16", "Payments settle the total", _inv16),
)
