"""A realism report of generated data: metrics against published retail figures, and charts.

``build_report(con)`` runs the report's SQL on any DuckDB connection where the ``fact_*`` and
``dim_*`` tables are visible by their DB names; ``report_from_duckdb(path)`` opens a generated
file read-only. ``Report.to_dict()`` gives the metrics; ``Report.to_html()`` the page.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from retail_datagen.errors import DatabaseError
from retail_datagen.report import queries
from retail_datagen.report.metrics import METRICS, Metric, MetricSpec, Status
from retail_datagen.report.sections import COLLECTORS, Context, Section, collect

#: ``progress(done, total, label)``: ``done`` steps of ``total`` finished, ``label`` next.
ProgressCallback = Callable[[int, int, str], None]


@dataclass
class Report:
    """The measured report: the range, where it was read from, and its sections."""

    first: date
    last: date
    source: str
    sections: list[Section]

    @property
    def metrics(self) -> list[Metric]:
        """Every metric, in page order."""
        return [m for section in self.sections for m in section.metrics]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document: the range and every metric."""
        return {"source": self.source, "first_day": self.first.isoformat(),
                "last_day": self.last.isoformat(),
                "metrics": [m.to_dict() for m in self.metrics]}

    def summary_rows(self) -> list[list[str]]:
        """One ``[name, value, band, status]`` row of text per metric."""
        return [[m.spec.name, d["display"], d["band_display"], d["status"]]
                for m in self.metrics for d in [m.to_dict()]]

    def to_html(self) -> str:
        """The self-contained page (plotly.js inlined)."""
        from retail_datagen.report.html import render_page

        days = (self.last - self.first).days + 1
        return render_page("Retail data realism report",
                           f"{self.source}: {self.first}..{self.last} ({days} days)",
                           self.sections)


def build_report(con: duckdb.DuckDBPyConnection, *, source: str = "",
                 progress: ProgressCallback | None = None) -> Report:
    """Measure every section of the report on ``con``.

    Args:
        con: A DuckDB connection that sees the fact and dimension tables by their DB names.
        source: What the data is, for the page header (e.g. the file name).
        progress: Called before each step and once at the end.

    Raises:
        DatabaseError: Neither ``fact_receipts`` nor ``fact_online_order_headers`` holds rows.
    """
    tables = queries.visible_tables(con)
    span = queries.date_range(con, tables)
    if span is None:
        raise DatabaseError(f"no facts to report on in {source or 'the database'} "
                            "(run `retail-datagen facts` first)")
    ctx = Context(con, span[0], span[1], tables)
    sections = []
    for done, collector in enumerate(COLLECTORS):
        if progress is not None:
            progress(done, len(COLLECTORS), collector.title)
        sections.append(collect(ctx, collector))
    if progress is not None:
        progress(len(COLLECTORS), len(COLLECTORS), "done")
    return Report(span[0], span[1], source, sections)


def report_from_duckdb(path: str | os.PathLike[str], *,
                       progress: ProgressCallback | None = None) -> Report:
    """:func:`build_report` on a DuckDB file, opened read-only.

    Raises:
        DatabaseError: The file is missing, locked or holds no facts.
    """
    from retail_datagen.db.duckdb_engine import open_duckdb

    con = open_duckdb(path, read_only=True)
    try:
        return build_report(con, source=os.path.basename(os.fspath(path)), progress=progress)
    finally:
        con.close()


__all__ = ["METRICS", "Metric", "MetricSpec", "ProgressCallback", "Report", "Section", "Status",
           "build_report", "report_from_duckdb"]
