"""The report as a person sees it: opened in a real headless Chromium, every chart drawn."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from retail_datagen.report import report_from_duckdb
from retail_datagen.report.sections import COLLECTORS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _chromium() -> str:
    path = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed")
    return path


# Each chart: its plot area must have a size and hold drawn marks (bars, lines or points).
_CHART_STATE = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(div => {
    const box = div.getBoundingClientRect();
    const area = div.querySelector('.draglayer .nsewdrag');
    const areaBox = area ? area.getBoundingClientRect() : {width: 0, height: 0};
    const marks = Array.from(div.querySelectorAll(
        '.cartesianlayer .trace .point path, .cartesianlayer .trace path.point,'
        + ' .cartesianlayer .trace path.js-line')).filter(mark => {
            const r = mark.getBoundingClientRect();
            return r.width > 0 || r.height > 0;
        }).length;
    return {id: div.id, width: box.width, height: box.height,
            areaWidth: areaBox.width, areaHeight: areaBox.height, marks: marks,
            traces: (div.data || []).length};
})"""


def test_report_renders_in_chromium(generated_report_range: Path, tmp_path: Path) -> None:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    page_file = tmp_path / "report.html"
    page_file.write_text(report_from_duckdb(generated_report_range).to_html(), encoding="utf-8")

    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri(), wait_until="load")
            expected = len(COLLECTORS)
            page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected}",
                timeout=30_000)
            charts = page.evaluate(_CHART_STATE)
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()

    assert [c["id"] for c in charts] == [f"chart-{c.key}" for c in COLLECTORS]
    for chart in charts:
        assert chart["width"] > 300 and chart["height"] > 200, chart
        assert chart["areaWidth"] > 100 and chart["areaHeight"] > 100, chart
        assert chart["traces"] >= 1 and chart["marks"] >= 1, chart
    assert errors == []
    assert [url for url in requests if not url.startswith("file://")] == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
