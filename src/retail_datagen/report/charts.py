"""The report's charts: one Plotly figure per section, drawn from the section's data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from retail_datagen.report.sections import Section

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_STORE, _ONLINE, _ACCENT, _GREY = "#1f77b4", "#ff7f0e", "#d62728", "#7f7f7f"
_HEIGHT = 380


def _layout(fig: go.Figure, **extra: Any) -> go.Figure:
    layout: dict[str, Any] = {"template": "plotly_white", "height": _HEIGHT,
                              "margin": {"l": 60, "r": 30, "t": 50, "b": 50},
                              "legend": {"orientation": "h", "y": -0.18},
                              "hovermode": "x unified"}
    fig.update_layout(**{**layout, **extra})
    return fig


def _dollars(cents: list[int]) -> list[float]:
    return [c / 100 for c in cents]


def _daily(section: Section) -> go.Figure:
    rows = section.data["daily"]
    days = [r[0] for r in rows]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=days, y=[r[1] for r in rows], name="receipts", marker_color="#aec7e8")
    fig.add_scatter(x=days, y=_dollars([r[2] for r in rows]), name="in-store sales ($)",
                    line_color=_STORE, secondary_y=True)
    fig.add_scatter(x=days, y=_dollars([r[5] for r in rows]), name="online sales ($)",
                    line_color=_ONLINE, secondary_y=True)
    for i, (name, day) in enumerate(section.data["holidays"]):
        fig.add_vline(x=day.isoformat(), line_dash="dot", line_color=_ACCENT)
        # Alternate heights, so that neighbouring holidays (Thanksgiving, Black Friday) do not
        # print over each other.
        fig.add_annotation(x=day.isoformat(), y=1.0 + 0.07 * (i % 2), yref="paper", text=name,
                           showarrow=False, yanchor="bottom", font={"color": _ACCENT, "size": 11})
    fig.update_yaxes(title_text="receipts", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="sales ($)", rangemode="tozero", secondary_y=True,
                     showgrid=False)
    return _layout(fig)


def _profiles(section: Section) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("by hour of day", "by weekday"))
    for name, counts, color in (("in-store receipts", section.data["hours"], _STORE),
                                ("online orders", section.data["online_hours"], _ONLINE)):
        total = sum(counts.values())
        if total:
            fig.add_bar(x=list(range(24)), y=[counts.get(h, 0) / total for h in range(24)],
                        name=f"{name} (share)", marker_color=color, row=1, col=1)
    weekdays = section.data["weekdays"]
    fig.add_bar(x=[_WEEKDAYS[w] for w in weekdays], y=list(weekdays.values()),
                name="receipts per store", marker_color="#2ca02c", row=1, col=2)
    fig.update_yaxes(tickformat=".0%", row=1, col=1)
    fig.update_xaxes(title_text="hour", row=1, col=1)
    return _layout(fig, hovermode="closest", barmode="group")


def _basket(section: Section) -> go.Figure:
    sizes = section.data["sizes"]
    fig = go.Figure(go.Bar(x=[k for k, _ in sizes], y=[n for _, n in sizes], name="receipts",
                           marker_color=_STORE))
    fig.update_xaxes(title_text="items in the basket")
    fig.update_yaxes(title_text="receipts")
    return _layout(fig)


def _pareto(section: Section) -> go.Figure:
    curve = section.data["curve"]
    fig = go.Figure()
    fig.add_scatter(x=[x for x, _ in curve], y=[y for _, y in curve], name="products",
                    line_color=_STORE, fill="tozeroy")
    fig.add_scatter(x=[0, 1], y=[0, 1], name="equal sales", line={"dash": "dot",
                    "color": _GREY})
    fig.add_vline(x=0.2, line_dash="dot", line_color=_ACCENT)
    fig.update_xaxes(title_text="share of products sold", tickformat=".0%")
    fig.update_yaxes(title_text="share of units", tickformat=".0%")
    return _layout(fig)


def _payments(section: Section) -> go.Figure:
    mix = section.data["mix"]
    total = sum(mix.values()) or 1
    ordered = sorted(mix.items(), key=lambda item: -item[1])
    fig = go.Figure(go.Bar(x=[m for m, _ in ordered], y=[n / total for _, n in ordered],
                           text=[f"{n / total:.1%}" for _, n in ordered], textposition="auto",
                           marker_color=[_ACCENT if m == "CASH" else _STORE for m, _ in ordered]))
    fig.update_yaxes(title_text="share of payments", tickformat=".0%")
    return _layout(fig, hovermode="closest")


def _returns(section: Section) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "returns by days after the sale", "returned share of sales value by category"))
    for channel, color in (("in store", _STORE), ("online", _ONLINE)):
        rows = [r for r in section.data["delays"] if r[0] == channel]
        if rows:
            fig.add_bar(x=[r[1] for r in rows], y=[r[2] for r in rows], name=f"{channel} returns",
                        marker_color=color, row=1, col=1)
    categories = section.data["categories"]
    names = sorted(categories)
    fig.add_bar(x=names, y=[categories[c][1] / categories[c][0] if categories[c][0] else 0
                            for c in names], name="returned share", marker_color=_ACCENT,
                row=1, col=2)
    fig.update_xaxes(title_text="days", row=1, col=1)
    fig.update_yaxes(tickformat=".1%", row=1, col=2)
    return _layout(fig, hovermode="closest", barmode="group")


def _stock(section: Section) -> go.Figure:
    rows = section.data["days"]
    days = [r[0] for r in rows]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=days, y=[r[3] for r in rows], name="store stockouts", marker_color="#ffbb78")
    fig.add_scatter(x=days, y=[1 - r[1] / r[2] if r[2] else None for r in rows],
                    name="in stock at day end", line_color=_STORE, secondary_y=True)
    fig.update_yaxes(title_text="stockouts", secondary_y=False)
    fig.update_yaxes(title_text="in stock", tickformat=".1%", secondary_y=True, showgrid=False)
    return _layout(fig)


def _shrink(section: Section) -> go.Figure:
    rows = section.data["days"]
    fig = go.Figure(go.Bar(
        x=[r[0] for r in rows], y=_dollars([r[1] for r in rows]), name="net units lost ($)",
        marker_color=_ACCENT,
        customdata=[r[1] / r[2] if r[2] else None for r in rows],
        hovertemplate="%{y:$,.2f} lost, %{customdata:.3%} of sales<extra></extra>"))
    fig.update_yaxes(title_text="$ at sale price (positive: lost)")
    return _layout(fig)


def _trucks(section: Section) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], subplot_titles=(
        "legs on the road", "legs by departure delay"))
    flight = section.data["in_flight"]
    fig.add_scatter(x=[r[0] for r in flight], y=[r[1] for r in flight], name="legs in flight",
                    line_color=_STORE, row=1, col=1)
    delays = section.data["delays"]
    fig.add_bar(x=list(delays), y=list(delays.values()), name="legs", marker_color=_ONLINE,
                row=1, col=2)
    return _layout(fig, hovermode="closest")


def _online(section: Section) -> go.Figure:
    rows = section.data["daily"]
    days = [r[0] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=days, y=_dollars([r[2] for r in rows]), name="in store", marker_color=_STORE)
    fig.add_bar(x=days, y=_dollars([r[5] for r in rows]), name="online", marker_color=_ONLINE)
    fig.update_yaxes(title_text="sales ($)")
    return _layout(fig, barmode="stack")


_FIGURES: dict[str, Callable[[Section], go.Figure]] = {
    "daily": _daily, "profiles": _profiles, "basket": _basket, "pareto": _pareto,
    "payments": _payments, "returns": _returns, "stock": _stock, "shrink": _shrink,
    "trucks": _trucks, "online": _online,
}


def figure_for(section: Section) -> go.Figure | None:
    """The section's figure; None when its tables are missing."""
    return None if section.missing else _FIGURES[section.key](section)


def figure_html(figure: go.Figure, div_id: str) -> str:
    """The figure as an HTML fragment that needs plotly.js already on the page."""
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                          config={"displaylogo": False, "responsive": True})


__all__ = ["figure_for", "figure_html"]
