"""The realism report: every metric against SQL written here, the CLI, and the page's contents.

The expected values below are computed with their own SQL (and plain Python), not with the
report's queries, on the test config over the days of ``REPORT_DAYS``.
"""

from __future__ import annotations

import json
import math
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from retail_datagen import calendar
from retail_datagen.cli import app
from retail_datagen.report import METRICS, Report, Status, build_report, report_from_duckdb
from retail_datagen.report.metrics import Metric
from retail_datagen.report.sections import COLLECTORS

BLACK_FRIDAY, OTHER_FRIDAY = date(2024, 11, 29), date(2024, 11, 22)
# The only Saturday and Monday of 2024-11-21..12-01 untouched by a holiday (11-30 follows
# Black Friday, 12-01 is Sunday).
PLAIN_SATURDAY, PLAIN_MONDAY = date(2024, 11, 23), date(2024, 11, 25)


@pytest.fixture(scope="module")
def report(generated_report_range: Path) -> Report:
    return report_from_duckdb(generated_report_range)


@pytest.fixture(scope="module")
def con(generated_report_range: Path):
    connection = duckdb.connect(str(generated_report_range), read_only=True)
    yield connection
    connection.close()


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    return con.execute(sql, params or []).fetchone()[0]


def expected_metrics(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Every metric of the report, computed independently of its queries."""
    values: dict[str, float] = {}
    per_day = dict(con.execute(
        "SELECT event_ts::DATE, count(*) FROM fact_receipts WHERE receipt_type = 'SALE' "
        "GROUP BY ALL").fetchall())
    values["black_friday_vs_friday"] = per_day[BLACK_FRIDAY] / per_day[OTHER_FRIDAY]
    per_store = dict(con.execute(
        "SELECT event_ts::DATE, count(*) / count(DISTINCT store_id) FROM fact_receipts "
        "WHERE receipt_type = 'SALE' GROUP BY ALL").fetchall())
    values["saturday_vs_monday"] = per_store[PLAIN_SATURDAY] / per_store[PLAIN_MONDAY]
    values["hour_peak_share"] = one(con, """
        SELECT max(n) / sum(n) FROM (SELECT count(*) AS n FROM fact_receipts
        WHERE receipt_type = 'SALE' GROUP BY extract('hour' FROM event_ts))""")
    values["basket_items_mean"] = one(
        con, "SELECT avg(item_count) FROM fact_receipts WHERE receipt_type = 'SALE'")
    units = sorted((u for (u,) in con.execute(
        "SELECT sum(quantity) FROM fact_receipt_lines WHERE quantity > 0 GROUP BY product_id"
    ).fetchall()), reverse=True)
    values["pareto_top20_units"] = sum(units[:math.ceil(0.2 * len(units))]) / sum(units)
    for key, method in (("cash_share", "CASH"), ("credit_share", "CREDIT_CARD"),
                        ("debit_share", "DEBIT_CARD"), ("mobile_share", "MOBILE_PAY")):
        values[key] = one(con, "SELECT avg(CASE WHEN payment_method = ? THEN 1 ELSE 0 END) "
                               "FROM fact_payments WHERE status = 'APPROVED' "
                               "AND store_id IS NOT NULL", [method])
    # The range is shorter than a return window, so the cohort is every sale of the range,
    # and every return in the data is one of its returns.
    values["instore_returns_share"] = one(con, """
        SELECT sum(total_cents) FILTER (WHERE receipt_type = 'RETURN')
               / -sum(total_cents) FILTER (WHERE receipt_type = 'SALE') FROM fact_receipts""")
    values["online_returns_share"] = one(con, """
        SELECT coalesce((SELECT -sum(amount_cents) FROM fact_payments
                         WHERE status = 'REFUNDED' AND order_id_ext IS NOT NULL), 0)
             / (SELECT sum(total_cents) FROM fact_online_order_headers
                WHERE order_status = 'COMPLETED')""")
    rates = dict(con.execute("""
        SELECT p.basket_category IN ('food', 'beverages') OR p.requires_refrigeration,
               -sum(l.ext_cents) FILTER (WHERE l.quantity < 0)
               / sum(l.ext_cents) FILTER (WHERE l.quantity > 0)
        FROM fact_receipt_lines l JOIN dim_products p USING (product_id) GROUP BY 1""").fetchall())
    values["food_vs_nonfood_returns"] = rates[True] / rates[False]
    values["out_of_stock_share"] = expected_out_of_stock(con)
    values["shrink_share"] = one(con, """
        SELECT sum(-t.quantity * p.sale_price_cents) FILTER (WHERE txn_type = 'ADJUSTMENT')
               / sum(-t.quantity * p.sale_price_cents) FILTER (WHERE txn_type = 'SALE')
        FROM fact_store_inventory_txn t JOIN dim_products p USING (product_id)""")
    delays = [(departure - calendar_plan(shipment)).total_seconds() / 60 for shipment, departure
              in con.execute("SELECT shipment_id, departure_time FROM fact_truck_moves "
                             "WHERE status = 'IN_TRANSIT'").fetchall()]
    values["truck_on_time_share"] = sum(d <= 15 for d in delays) / len(delays)
    values["truck_late_tail_share"] = sum(d > 120 for d in delays) / len(delays)
    values["online_share"] = one(con, """
        SELECT o / (o + s) FROM
          (SELECT sum(subtotal_cents) AS o FROM fact_online_order_headers
           WHERE order_status = 'COMPLETED'),
          (SELECT sum(subtotal_cents) AS s FROM fact_receipts WHERE receipt_type = 'SALE')""")
    return values


def calendar_plan(shipment_id: str):
    """The planned departure of a store leg: created day + 1 at 06:00, 30 min per leg."""
    from datetime import datetime, timedelta

    created = datetime.strptime(shipment_id[3:11], "%Y%m%d")
    return created + timedelta(days=1, hours=6, minutes=30 * (int(shipment_id[-3:]) - 1))


def expected_out_of_stock(con: duckdb.DuckDBPyConnection) -> float:
    """Mean over days of empty store-products at day end / stores × launched products.

    Here from the initial inventory and the whole ledger up to each day end (a full grid),
    where the report counts only zero crossings.
    """
    first, last = con.execute("SELECT min(event_ts)::DATE, max(event_ts)::DATE "
                              "FROM fact_receipts").fetchone()
    rows = con.execute("""
        WITH days AS (SELECT unnest(generate_series(?::DATE, ?::DATE, INTERVAL 1 DAY))::DATE
                      AS day),
        grid AS (
            SELECT d.day, i.node_id AS store_id, i.product_id, i.quantity AS initial
            FROM days d CROSS JOIN gen_initial_inventory i
            JOIN dim_products p ON p.product_id = i.product_id AND p.launch_date <= d.day
            WHERE i.node_type = 'STORE'),
        closing AS (
            SELECT g.day, g.store_id, g.product_id,
                   coalesce(arg_max(t.balance, t.txn_id), any_value(g.initial)) AS balance
            FROM grid g LEFT JOIN fact_store_inventory_txn t
              ON t.store_id = g.store_id AND t.product_id = g.product_id
             AND t.event_ts < g.day + 1
            GROUP BY ALL)
        SELECT day, avg(CASE WHEN balance = 0 THEN 1.0 ELSE 0.0 END) FROM closing
        GROUP BY day""", [first, last]).fetchall()
    assert len(rows) == (last - first).days + 1
    return sum(share for _day, share in rows) / len(rows)


def test_the_fixture_range_makes_every_metric_measurable() -> None:
    assert calendar.black_friday(2024) == BLACK_FRIDAY
    assert calendar.holiday_multiplier(PLAIN_SATURDAY) == 1.0
    assert calendar.holiday_multiplier(PLAIN_MONDAY) == 1.0
    assert calendar.holiday_multiplier(date(2024, 11, 30)) != 1.0


def test_every_metric_equals_independent_sql(report: Report, con) -> None:
    expected = expected_metrics(con)
    measured = {m.spec.key: m for m in report.metrics}
    assert list(measured) == list(METRICS) == list(expected)
    for key, metric in measured.items():
        assert metric.value == pytest.approx(expected[key], rel=1e-9, abs=1e-12), key
        assert metric.status in (Status.PASS, Status.FAIL, Status.INFO), key
        assert (metric.status is Status.INFO) == (metric.spec.band is None), key


def test_status_follows_the_band(report: Report) -> None:
    for metric in report.metrics:
        if metric.spec.band is not None:
            low, high = metric.spec.band
            assert (metric.status is Status.PASS) == (low <= metric.value <= high)
    # A value outside the band fails, on either side; the band's ends pass.
    spec = {m.spec.key: m for m in report.metrics}["black_friday_vs_friday"].spec
    low, high = spec.band
    assert Metric(spec, high * 1.5).status is Status.FAIL
    assert Metric(spec, low / 2).status is Status.FAIL
    assert Metric(spec, low).status is Status.PASS and Metric(spec, high).status is Status.PASS


def _views(source: Path, where: dict[str, str] | None = None, skip: tuple[str, ...] = ()):
    """An in-memory connection where the file's tables are views of the same names."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'src'").fetchall()]
    for name in names:
        if name.startswith(("fact_", "dim_")) and name not in skip:
            filter_ = f" WHERE {where[name]}" if where and name in where else ""
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM src.{name}{filter_}")
    return con


def test_report_runs_over_views_of_the_same_names(generated_report_range: Path,
                                                  report: Report) -> None:
    con = _views(generated_report_range)
    try:
        over_views = build_report(con, source=report.source)
    finally:
        con.close()
    assert over_views.to_dict() == report.to_dict()


def test_black_friday_without_another_friday_is_not_measurable(
        generated_report_range: Path) -> None:
    later = "event_ts >= TIMESTAMP '2024-11-25'"
    con = _views(generated_report_range, {n: later for n in (
        "fact_receipts", "fact_receipt_lines", "fact_online_order_headers", "fact_payments")})
    try:
        metrics = {m.spec.key: m for m in build_report(con).metrics}
    finally:
        con.close()
    friday = metrics["black_friday_vs_friday"]
    assert friday.status is Status.NOT_MEASURABLE and friday.value is None
    assert "Black Friday" in (friday.reason or "")
    # 11-30 follows Black Friday: no plain Saturday is left.
    assert metrics["saturday_vs_monday"].status is Status.NOT_MEASURABLE
    assert metrics["cash_share"].status is not Status.NOT_MEASURABLE


def test_missing_table_makes_its_metrics_not_measurable(generated_report_range: Path) -> None:
    con = _views(generated_report_range, skip=("fact_truck_moves",))
    try:
        result = build_report(con)
    finally:
        con.close()
    trucks = next(s for s in result.sections if s.key == "trucks")
    assert trucks.missing == ("fact_truck_moves",)
    assert {m.status for m in trucks.metrics} == {Status.NOT_MEASURABLE}
    page = result.to_html()
    assert 'id="chart-trucks"' not in page and "fact_truck_moves not present" in page
    assert 'id="chart-daily"' in page


def test_no_facts_is_a_database_error(tmp_path: Path) -> None:
    from retail_datagen.errors import DatabaseError

    con = duckdb.connect()
    con.execute("CREATE TABLE fact_receipts (event_ts TIMESTAMP)")
    with pytest.raises(DatabaseError, match="retail-datagen facts"):
        build_report(con)


class _Links(HTMLParser):
    """Every src/href attribute and every script tag with a src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "data", "srcset")]


def test_cli_writes_a_self_contained_page(generated_report_range: Path, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "report.html"
    result = CliRunner().invoke(app, ["--db", str(generated_report_range), "report",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Black Friday vs an average Friday" in result.stdout and "fail" in result.stdout
    # Not a terminal: one plain progress line per step, on stderr.
    steps = [line for line in result.stderr.splitlines() if line.startswith("report: ")]
    assert len(steps) == len(COLLECTORS) + 1 and steps[-1].endswith("done")
    page = out.read_text(encoding="utf-8")
    links = _Links()
    links.feed(page)
    assert links.urls == []
    assert "link" not in links.tags and "iframe" not in links.tags
    assert "Plotly.newPlot" in page and "plotly.js" in page.lower()
    for collector in COLLECTORS:
        assert f'id="chart-{collector.key}"' in page
    for spec in METRICS.values():
        assert f'data-metric="{spec.key}"' in page


def test_cli_json_prints_every_metric(generated_report_range: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, report: Report) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["--db", str(generated_report_range), "report", "--json",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["first_day"] == "2024-11-21" and document["last_day"] == "2024-12-01"
    assert [m["key"] for m in document["metrics"]] == list(METRICS)
    by_key = {m.spec.key: m for m in report.metrics}
    for item in document["metrics"]:
        metric = by_key[item["key"]]
        assert item["name"] == metric.spec.name and item["source"] == metric.spec.source
        assert item["value"] == pytest.approx(metric.value)
        assert item["band"] == (list(metric.spec.band) if metric.spec.band else None)
        assert item["status"] == metric.status.value
    assert not (tmp_path / "report.html").exists()  # --json alone writes no page


def test_cli_report_needs_a_duckdb_file(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["--db", str(tmp_path / "none.duckdb"), "report"])
    assert missing.exit_code == 3 and "does not exist" in missing.stderr
    url = runner.invoke(app, ["--database-url", "postgresql://u@h/db", "report"])
    assert url.exit_code == 2 and "reads a DuckDB file" in url.stderr


def test_return_cohort_counts_only_the_returns_of_its_sales(con) -> None:
    from retail_datagen.report import queries

    assert queries.cohort_last_day(date(2024, 11, 1), date(2024, 11, 30)) == date(2024, 11, 15)
    assert queries.cohort_last_day(date(2024, 11, 21), date(2024, 12, 1)) == date(2024, 12, 1)
    cut = date(2024, 11, 24)
    sold, returned = con.execute("""
        SELECT sum(s.total_cents),
               sum((SELECT -sum(r.total_cents) FROM fact_receipts r
                    WHERE r.return_for_receipt_id_ext = s.receipt_id_ext))
        FROM fact_receipts s WHERE s.receipt_type = 'SALE' AND s.event_ts::DATE <= ?""",
                                 [cut]).fetchone()
    assert returned > 0
    assert queries.instore_returns(con, cut) == (sold, returned)
    by_category = queries.returns_by_category(con, cut)
    assert sum(r[3] for r in by_category) == one(con, """
        SELECT -sum(l.ext_cents) FROM fact_receipt_lines l
        JOIN fact_receipts r ON r.receipt_id_ext = l.receipt_id_ext
        JOIN fact_receipts s ON s.receipt_id_ext = r.return_for_receipt_id_ext
        WHERE s.event_ts::DATE <= ?""", [cut])
