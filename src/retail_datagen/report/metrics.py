"""The realism metrics of the report: what each one measures, its band and its source.

A band is the range that published retail figures support; a value inside it passes. Metrics
without a band are shown for information. A metric that the data cannot measure (a table is
missing, or the date range lacks the days it compares) is "not measurable" rather than failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The mark shown beside a metric."""

    PASS = "pass"
    FAIL = "fail"
    NOT_MEASURABLE = "not measurable"
    INFO = "info"


class Unit(StrEnum):
    """How a value is printed: a share as a percentage, a ratio as ``1.23×``, or a number."""

    SHARE = "share"
    RATIO = "ratio"
    MINUTES = "minutes"
    ITEMS = "items"


@dataclass(frozen=True)
class MetricSpec:
    """What a metric measures.

    Attributes:
        key: Stable identifier used in ``--json`` output and tests.
        name: The label shown in the report.
        unit: How the value and band are printed.
        band: Inclusive ``(low, high)`` range that passes; None for an information-only metric.
        source: Where the band comes from.
        method: How the value is computed from the tables, in one sentence.
    """

    key: str
    name: str
    unit: Unit
    band: tuple[float, float] | None
    source: str
    method: str


@dataclass(frozen=True)
class Metric:
    """A measured metric: its spec, the value (None when not measurable) and why not."""

    spec: MetricSpec
    value: float | None
    reason: str | None = None

    @property
    def status(self) -> Status:
        if self.value is None:
            return Status.NOT_MEASURABLE
        if self.spec.band is None:
            return Status.INFO
        low, high = self.spec.band
        return Status.PASS if low <= self.value <= high else Status.FAIL

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape printed by ``report --json``."""
        return {"key": self.spec.key, "name": self.spec.name, "value": self.value,
                "display": format_value(self.spec.unit, self.value),
                "band": list(self.spec.band) if self.spec.band else None,
                "band_display": format_band(self.spec), "unit": self.spec.unit.value,
                "source": self.spec.source, "method": self.spec.method,
                "status": self.status.value, "reason": self.reason}


def format_value(unit: Unit, value: float | None) -> str:
    """``12.3%``, ``1.45×``, ``37 min`` or ``8.2``; ``n/a`` for None."""
    if value is None:
        return "n/a"
    if unit is Unit.SHARE:
        return f"{value * 100:.1f}%" if abs(value) >= 0.001 or value == 0 else f"{value * 100:.3f}%"
    if unit is Unit.RATIO:
        return f"{value:.2f}×"
    if unit is Unit.MINUTES:
        return f"{value:.0f} min"
    return f"{value:.1f}"


def format_band(spec: MetricSpec) -> str:
    """The band as text, e.g. ``5.0%–10.0%``; ``no band`` for information-only metrics."""
    if spec.band is None:
        return "no band"
    low, high = spec.band
    return f"{format_value(spec.unit, low)} – {format_value(spec.unit, high)}"


_RETURNS_SOURCE = ("NRF / Happy Returns consumer returns reports 2021 and 2024 (~17% of US retail "
                   "sales returned, online ~21%)")
_TRUCK_SOURCE = ("Judgement: carriers publish on-time departure rates near 90% (high, never "
                 "perfect) with a thin tail of long delays from breakdowns, weather and late "
                 "loading; a perfectly punctual fleet is a sign of synthetic data")

#: Every metric of the report, in report order.
METRICS: dict[str, MetricSpec] = {spec.key: spec for spec in (
    MetricSpec("black_friday_vs_friday", "Black Friday vs an average Friday (transactions)",
               Unit.RATIO, (1.3, 2.0),
               "Placer.ai Black Friday 2024 (+40% store visits); Sensormatic traffic reports",
               "In-store SALE receipts on Black Friday divided by the mean over the other "
               "Fridays of the range on which stores open."),
    MetricSpec("saturday_vs_monday", "Saturday vs Monday transactions per store", Unit.RATIO,
               (1.2, 1.6), "FMI U.S. Grocery Shopper Trends; Zenreach store traffic study",
               "SALE receipts per selling store, mean over Saturdays divided by mean over "
               "Mondays, on days without a holiday effect."),
    MetricSpec("hour_peak_share", "Busiest hour's share of receipts", Unit.SHARE, None,
               "Shown for information", "SALE receipts in the busiest hour of day over all."),
    MetricSpec("basket_items_mean", "Mean items per in-store basket", Unit.ITEMS, None,
               "Shown for information (configured items_per_ticket_mean)",
               "Mean item_count of SALE receipts."),
    MetricSpec("pareto_top20_units", "Top 20% of products, share of units sold", Unit.SHARE,
               None, "Shown for information (Pareto principle)",
               "Units on SALE receipt lines of the best-selling 20% of the products sold."),
    MetricSpec("cash_share", "Cash share of in-store payments (count)", Unit.SHARE, (0.10, 0.18),
               "Federal Reserve, 2025 Diary of Consumer Payment Choice (cash 14%)",
               "APPROVED in-store payments by CASH divided by all APPROVED in-store payments."),
    MetricSpec("credit_share", "Credit card share of in-store payments", Unit.SHARE, None,
               "Federal Reserve, 2025 Diary of Consumer Payment Choice (credit 35%)",
               "APPROVED in-store payments by CREDIT_CARD."),
    MetricSpec("debit_share", "Debit card share of in-store payments", Unit.SHARE, None,
               "Federal Reserve, 2025 Diary of Consumer Payment Choice (debit 30%)",
               "APPROVED in-store payments by DEBIT_CARD."),
    MetricSpec("mobile_share", "Mobile wallet share of in-store payments", Unit.SHARE, None,
               "Federal Reserve, 2025 Diary of Consumer Payment Choice (mobile wallets growing)",
               "APPROVED in-store payments by MOBILE_PAY."),
    MetricSpec("instore_returns_share", "In-store returns, share of sales value", Unit.SHARE,
               (0.05, 0.10), _RETURNS_SOURCE,
               "RETURN receipt totals for the sales of the return cohort divided by those "
               "sales' totals (the cohort is the sales made at least 15 days before the end of "
               "the range, when there are any, so that their return window is complete)."),
    MetricSpec("online_returns_share", "Online returns, share of sales value", Unit.SHARE,
               (0.15, 0.25), _RETURNS_SOURCE,
               "REFUNDED payments of the cohort's online orders divided by those orders' totals "
               "(cancelled orders excluded; same cohort rule as in store)."),
    MetricSpec("food_vs_nonfood_returns", "Food return rate relative to non-food", Unit.RATIO,
               (0.0, 0.5), "NRF returns reports: groceries are rarely returned; 'far lower' is "
               "read as at most half the non-food rate",
               "Returned share of food lines (food, beverages or refrigerated) divided by the "
               "returned share of the other lines, in the return cohort."),
    MetricSpec("out_of_stock_share", "Store-products out of stock at day end", Unit.SHARE,
               (0.05, 0.10), "Gruen & Corsten, retail out-of-stocks study (on-shelf availability "
               "about 92%)",
               "Store-products with a zero balance at the end of each day divided by stores × "
               "launched products, averaged over the days of the range."),
    MetricSpec("shrink_share", "Shrink, share of sales value", Unit.SHARE, (0.010, 0.020),
               "NRF National Retail Security Survey 2023 (shrink about 1.6% of sales)",
               "Net negative ADJUSTMENT units of store inventory valued at sale price, divided "
               "by store SALE units valued at sale price."),
    MetricSpec("truck_on_time_share", "Truck legs departing on time (≤ 15 min late)",
               Unit.SHARE, (0.85, 0.97), _TRUCK_SOURCE,
               "IN_TRANSIT time against the plan in the shipment id (created day + 1 at 06:00, "
               "plus 30 min per leg number)."),
    MetricSpec("truck_late_tail_share", "Truck legs departing more than 2 h late", Unit.SHARE,
               (0.005, 0.05), _TRUCK_SOURCE, "Same plan; the share of legs beyond 2 hours."),
    MetricSpec("online_share", "Online share of sales value", Unit.SHARE, (0.10, 0.18),
               "US Census Bureau quarterly e-commerce report (16% of US retail, Q2 2025)",
               "Subtotal of non-cancelled online orders divided by that plus the subtotal of "
               "in-store SALE receipts."),
)}


def measured(key: str, value: float | None, reason: str | None = None) -> Metric:
    """The metric ``key`` with ``value``; ``reason`` says why it is None."""
    return Metric(METRICS[key], value, reason if value is None else None)


__all__ = ["METRICS", "Metric", "MetricSpec", "Status", "Unit", "format_band", "format_value",
           "measured"]
