"""The report's sections: for each, the tables it needs, its data and its metrics.

A section's collector runs the queries of :mod:`retail_datagen.report.queries` and turns their
small results into metric values; the charts are drawn later from the same data, so ``--json``
never pays for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb

from retail_datagen import calendar
from retail_datagen.report import queries
from retail_datagen.report.metrics import Metric, measured

_FRIDAY, _SATURDAY, _MONDAY = 4, 5, 0
_STORE_SOURCES = "fact_receipts"


@dataclass
class Context:
    """What every collector receives: the connection, the range and the visible tables."""

    con: duckdb.DuckDBPyConnection
    first: date
    last: date
    tables: set[str]
    _daily: list[tuple[Any, ...]] | None = None

    def daily(self) -> list[tuple[Any, ...]]:
        """:func:`queries.daily_sales` for the range, computed once for all sections."""
        if self._daily is None:
            self._daily = queries.daily_sales(self.con, self.first, self.last,
                                              "fact_online_order_headers" in self.tables)
        return self._daily


@dataclass
class Section:
    """One block of the page: a title, what it shows, its metrics and its chart data."""

    key: str
    title: str
    blurb: str
    metrics: list[Metric]
    data: dict[str, Any] = field(default_factory=dict)
    missing: tuple[str, ...] = ()


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def ordinary_day(day: date) -> bool:
    """A day on which stores open and no holiday moves demand."""
    return not calendar.is_store_closed(day) and calendar.holiday_multiplier(day) == 1.0


def holidays_in(first: date, last: date) -> list[tuple[str, date]]:
    """The holidays (name, date) that fall in ``first..last``."""
    return [(holiday.name, day) for year in range(first.year, last.year + 1)
            for holiday, day in calendar.holiday_dates(year) if first <= day <= last]


def _daily_section(ctx: Context) -> Section:
    daily = ctx.daily()
    black_fridays = [r[1] for r in daily if r[0] == calendar.black_friday(r[0].year)]
    fridays = [r[1] for r in daily if r[0].weekday() == _FRIDAY and r[3] > 0
               and r[0] != calendar.black_friday(r[0].year)]
    if black_fridays and fridays:
        metric = measured("black_friday_vs_friday", _ratio(_mean(black_fridays), _mean(fridays)))
    else:
        metric = measured("black_friday_vs_friday", None,
                          "the range must hold Black Friday and another Friday")
    return Section("daily", "Daily sales and receipts",
                   "In-store SALE receipts per day (bars) and sales value of store and online "
                   "(line), holidays marked.", [metric],
                   {"daily": daily, "holidays": holidays_in(ctx.first, ctx.last)})


def _profiles_section(ctx: Context) -> Section:
    daily = ctx.daily()
    by_weekday: dict[int, list[float]] = {}
    for day, receipts, _cents, stores, _orders, _online in daily:
        if stores and ordinary_day(day):
            by_weekday.setdefault(day.weekday(), []).append(receipts / stores)
    weekday_means = {w: _mean(v) for w, v in sorted(by_weekday.items())}
    saturday, monday = weekday_means.get(_SATURDAY), weekday_means.get(_MONDAY)
    ratio = measured("saturday_vs_monday", _ratio(saturday, monday) if saturday and monday
                     else None, "the range must hold a Saturday and a Monday without a holiday "
                     "effect")
    hours = queries.hourly_counts(ctx.con, "fact_receipts", "receipt_type = 'SALE'")
    online_hours = (queries.hourly_counts(ctx.con, "fact_online_order_headers",
                                          "order_status <> 'CANCELLED'")
                    if "fact_online_order_headers" in ctx.tables else {})
    total = sum(hours.values())
    peak = measured("hour_peak_share", _ratio(max(hours.values()), total) if total else None,
                    "no receipts")
    return Section("profiles", "Hour-of-day and weekday profiles",
                   "Share of receipts and online orders by hour; receipts per selling store by "
                   "weekday on days without a holiday effect.", [ratio, peak],
                   {"hours": hours, "online_hours": online_hours, "weekdays": weekday_means})


def _basket_section(ctx: Context) -> Section:
    sizes = queries.basket_sizes(ctx.con)
    receipts = sum(n for _k, n in sizes)
    mean = _ratio(sum(k * n for k, n in sizes), receipts)
    return Section("basket", "Basket size distribution",
                   "In-store SALE receipts by number of items.",
                   [measured("basket_items_mean", mean, "no receipts")], {"sizes": sizes})


def _pareto_section(ctx: Context) -> Section:
    return Section("pareto", "Product Pareto curve",
                   "Cumulative share of in-store units sold against the share of products "
                   "sold, best sellers first.",
                   [measured("pareto_top20_units", queries.pareto_top_share(ctx.con),
                             "no receipt lines")],
                   {"curve": queries.pareto_curve(ctx.con)})


def _payments_section(ctx: Context) -> Section:
    mix = queries.payment_mix(ctx.con)
    total = sum(mix.values())
    metrics = [measured(key, _ratio(mix.get(method, 0), total), "no in-store payments")
               for key, method in (("cash_share", "CASH"), ("credit_share", "CREDIT_CARD"),
                                   ("debit_share", "DEBIT_CARD"), ("mobile_share", "MOBILE_PAY"))]
    return Section("payments", "Payment mix", "APPROVED in-store payments by method (count).",
                   metrics, {"mix": mix})


def _returns_section(ctx: Context) -> Section:
    cohort_last = queries.cohort_last_day(ctx.first, ctx.last)
    sold, returned = queries.instore_returns(ctx.con, cohort_last)
    with_online = "fact_online_order_headers" in ctx.tables
    metrics = [measured("instore_returns_share", _ratio(returned, sold), "no sales")]
    if with_online:
        ordered, refunded = queries.online_returns(ctx.con, cohort_last)
        metrics.append(measured("online_returns_share", _ratio(refunded, ordered),
                                "no online orders"))
    else:
        metrics.append(measured("online_returns_share", None, "fact_online_order_headers "
                                "is not present"))
    categories = queries.returns_by_category(ctx.con, cohort_last)
    food = [sum(r[i] for r in categories if r[1] is is_food) for is_food in (True, False)
            for i in (2, 3)]
    food_rate, other_rate = _ratio(food[1], food[0]), _ratio(food[3], food[2])
    metrics.append(measured("food_vs_nonfood_returns",
                            _ratio(food_rate, other_rate) if food_rate is not None and other_rate
                            else None, "no non-food returns to compare with"))
    by_category: dict[str, list[int]] = {}
    for category, _is_food, category_sold, category_returned in categories:
        totals = by_category.setdefault(category, [0, 0])
        totals[0] += category_sold
        totals[1] += category_returned
    return Section("returns", "Returns",
                   f"Returns by days after the sale, and returned share of sales value by "
                   f"category for the sales of {ctx.first}..{cohort_last}.", metrics,
                   {"delays": queries.return_delays(ctx.con, with_online),
                    "categories": by_category, "cohort_last": cohort_last})


def _stock_section(ctx: Context) -> Section:
    rows = queries.stock_by_day(ctx.con, ctx.first, ctx.last, "fact_stockouts" in ctx.tables)
    shares = [empty / pairs for _d, empty, pairs, _n in rows if pairs]
    return Section("stock", "In-stock share and stockouts",
                   "Share of store-products in stock at day end (line) and store stockout "
                   "events per day (bars).",
                   [measured("out_of_stock_share", _mean(shares), "no launched products")],
                   {"days": rows})


def _shrink_section(ctx: Context) -> Section:
    rows = queries.shrink_by_day(ctx.con)
    shrink, sales = sum(r[1] for r in rows), sum(r[2] for r in rows)
    return Section("shrink", "Shrink",
                   "Net inventory adjustments per day, valued at sale price (positive: units "
                   "lost).", [measured("shrink_share", _ratio(shrink, sales), "no store sales")],
                   {"days": rows})


def _trucks_section(ctx: Context) -> Section:
    delays = queries.departure_delays(ctx.con)
    legs = sum(delays.values())
    late = sum(n for (label, low), n in zip(queries.DELAY_BUCKETS, delays.values(), strict=True)
               if low >= queries.LATE_TAIL_MINUTES)
    on_time = delays[queries.DELAY_BUCKETS[0][0]]
    return Section("trucks", "Truck legs in flight and departure delays",
                   "Legs between departure and arrival, hour by hour; legs by departure delay "
                   "against plan.",
                   [measured("truck_on_time_share", _ratio(on_time, legs), "no legs departed"),
                    measured("truck_late_tail_share", _ratio(late, legs), "no legs departed")],
                   {"delays": delays,
                    "in_flight": queries.legs_in_flight(ctx.con, ctx.first, ctx.last)})


def _online_section(ctx: Context) -> Section:
    daily = ctx.daily()
    online, instore = sum(r[5] for r in daily), sum(r[2] for r in daily)
    return Section("online", "Online versus in-store",
                   "Sales value per day (subtotal before tax): in-store SALE receipts and "
                   "non-cancelled online orders.",
                   [measured("online_share", _ratio(online, online + instore), "no sales")],
                   {"daily": daily})


@dataclass(frozen=True)
class Collector:
    """A section's key, the tables it reads, and the function that builds it."""

    key: str
    title: str
    tables: tuple[str, ...]
    metric_keys: tuple[str, ...]
    build: Callable[[Context], Section]


COLLECTORS: tuple[Collector, ...] = (
    Collector("daily", "Daily sales and receipts", (_STORE_SOURCES,),
              ("black_friday_vs_friday",), _daily_section),
    Collector("profiles", "Hour-of-day and weekday profiles", (_STORE_SOURCES,),
              ("saturday_vs_monday", "hour_peak_share"), _profiles_section),
    Collector("basket", "Basket size distribution", (_STORE_SOURCES,),
              ("basket_items_mean",), _basket_section),
    Collector("pareto", "Product Pareto curve", ("fact_receipt_lines",),
              ("pareto_top20_units",), _pareto_section),
    Collector("payments", "Payment mix", ("fact_payments",),
              ("cash_share", "credit_share", "debit_share", "mobile_share"), _payments_section),
    Collector("returns", "Returns",
              ("fact_receipts", "fact_receipt_lines", "fact_payments", "dim_products"),
              ("instore_returns_share", "online_returns_share", "food_vs_nonfood_returns"),
              _returns_section),
    Collector("stock", "In-stock share and stockouts",
              ("fact_store_inventory_txn", "dim_products", "dim_stores"),
              ("out_of_stock_share",), _stock_section),
    Collector("shrink", "Shrink", ("fact_store_inventory_txn", "dim_products"),
              ("shrink_share",), _shrink_section),
    Collector("trucks", "Truck legs in flight and departure delays", ("fact_truck_moves",),
              ("truck_on_time_share", "truck_late_tail_share"), _trucks_section),
    Collector("online", "Online versus in-store",
              ("fact_receipts", "fact_online_order_headers"), ("online_share",),
              _online_section),
)


def collect(ctx: Context, collector: Collector) -> Section:
    """Build one section, or a section of not-measurable metrics if a table is missing."""
    missing = tuple(t for t in collector.tables if t not in ctx.tables)
    if not missing:
        return collector.build(ctx)
    reason = f"{', '.join(missing)} not present"
    return Section(collector.key, collector.title, f"Needs {', '.join(missing)}.",
                   [measured(key, None, reason) for key in collector.metric_keys],
                   missing=missing)


__all__ = ["COLLECTORS", "Collector", "Context", "Section", "collect", "holidays_in",
           "ordinary_day"]
