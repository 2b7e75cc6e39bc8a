"""The report page: one self-contained HTML file with plotly.js inlined, so it opens offline."""

from __future__ import annotations

from html import escape

from plotly.offline import get_plotlyjs

from retail_datagen.report.charts import figure_for, figure_html
from retail_datagen.report.metrics import Metric, Status
from retail_datagen.report.sections import Section

_MARKS = {Status.PASS: "✔ pass", Status.FAIL: "✘ fail", Status.NOT_MEASURABLE: "– not measurable",
          Status.INFO: "ℹ info"}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       background: #f4f5f7; color: #222; }
header { background: #22313f; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 2px 0; color: #cfd8e3; }
main { padding: 18px 28px; max-width: 1500px; }
section { background: #fff; border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.12);
          margin: 0 0 18px 0; padding: 14px 18px; }
h2 { font-size: 18px; margin: 0 0 4px 0; }
p.blurb { margin: 0 0 8px 0; color: #555; }
.row { display: flex; gap: 18px; align-items: flex-start; }
.chart { flex: 1 1 auto; min-width: 0; }
aside { flex: 0 0 330px; }
.metric { border-left: 4px solid #999; padding: 6px 10px; margin: 0 0 10px 0;
          background: #fafafa; }
.metric.pass { border-color: #2e7d32; } .metric.fail { border-color: #c62828; }
.metric.info { border-color: #1565c0; }
.metric .name { font-weight: 600; }
.metric .value { font-size: 22px; font-weight: 600; }
.metric .band, .metric .source, .metric .method, .metric .reason { font-size: 12px; color: #555; }
.mark { font-size: 12px; font-weight: 700; padding: 1px 6px; border-radius: 3px;
        color: #fff; background: #777; margin-left: 6px; white-space: nowrap; }
.mark.pass { background: #2e7d32; } .mark.fail { background: #c62828; }
.mark.info { background: #1565c0; }
table.summary { border-collapse: collapse; width: 100%; font-size: 14px; }
table.summary th, table.summary td { text-align: left; padding: 4px 8px;
                                     border-bottom: 1px solid #e3e3e3; }
.missing { color: #777; font-style: italic; }
"""


def _mark(metric: Metric) -> str:
    status = metric.status
    css = status.value.replace(" ", "-")
    return f'<span class="mark {css}">{escape(_MARKS[status])}</span>'


def _metric_card(metric: Metric) -> str:
    d = metric.to_dict()
    reason = (f'<div class="reason">Not measurable: {escape(metric.reason)}</div>'
              if metric.reason else "")
    return (f'<div class="metric {metric.status.value.replace(" ", "-")}" data-metric="{d["key"]}">'
            f'<div class="name">{escape(d["name"])}</div>'
            f'<div><span class="value">{escape(d["display"])}</span>{_mark(metric)}</div>'
            f'<div class="band">Band: {escape(d["band_display"])}</div>'
            f'<div class="source">Source: {escape(d["source"])}</div>'
            f'<div class="method">{escape(d["method"])}</div>{reason}</div>')


def _summary(sections: list[Section]) -> str:
    rows = "".join(
        f'<tr><td>{escape(m.spec.name)}</td><td>{escape(m.to_dict()["display"])}</td>'
        f'<td>{escape(m.to_dict()["band_display"])}</td><td>{_mark(m)}</td></tr>'
        for section in sections for m in section.metrics)
    return ('<section id="summary"><h2>Metrics</h2><table class="summary"><thead><tr>'
            '<th>metric</th><th>value</th><th>band</th><th>status</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></section>')


def _section(section: Section) -> str:
    figure = figure_for(section)
    chart = (figure_html(figure, f"chart-{section.key}") if figure is not None else
             f'<p class="missing">No chart: {escape(", ".join(section.missing))} not present.</p>')
    cards = "".join(_metric_card(m) for m in section.metrics)
    return (f'<section id="{section.key}"><h2>{escape(section.title)}</h2>'
            f'<p class="blurb">{escape(section.blurb)}</p><div class="row">'
            f'<div class="chart">{chart}</div><aside>{cards}</aside></div></section>')


def render_page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page: header, metric summary, then one block per section."""
    metrics = [m for s in sections for m in s.metrics]
    counts = {status: sum(m.status is status for m in metrics) for status in Status}
    tally = ", ".join(f"{n} {status.value}" for status, n in counts.items() if n)
    body = "".join(_section(s) for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style>"
            f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
            f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p>"
            f"<p>{escape(tally)}</p></header><main>{_summary(sections)}{body}</main>"
            "</body></html>\n")


__all__ = ["render_page"]
