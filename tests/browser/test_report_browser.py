"""The monitor's HTML report and its Evidently page in a real browser (Debian's Chromium through Playwright).

The report is a real one: the monitor job tests' workspace (`tests.jobs.test_monitor.scored`: champion ``jt`` v1,
``x1`` shifted on 02-28 and 03-01, predictions 02-23..03-01), then the monitor job on 02-27, 02-28 and 03-01 with
4-day windows, so the 03-01 report's trend charts have three runs. The tests open ``<date>.html`` by its
``file://`` URL, follow its link to ``<date>.evidently.html`` (a separate page beside it, rendered by Evidently's
embedded JavaScript), and check: no console error, no uncaught page error, no request leaving the machine; the
titles; the trend charts drawn with one dot per run where the ``monitor_metrics`` table has a value, at heights
ordered as the values; Evidently's summary, its distribution canvases painted, a Plotly chart drawn when a row is
expanded. Full-page screenshots go to the test's temp folder.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect

from driftline.jobs.monitor import report_path
from driftline.monitoring.drift import DATASET
from driftline.monitoring.evidently_page import evidently_path
from driftline.monitoring.multivariate import MULTIVARIATE
from driftline.monitoring.performance import PERFORMANCE
from driftline.monitoring.spec import METHOD_METRIC
from tests.jobs.test_monitor import WINDOW, by_key, metrics_of, monitor, runs_of

pytestmark = [pytest.mark.slow]

DATES = (dt.date(2026, 2, 27), dt.date(2026, 2, 28), dt.date(2026, 3, 1))   # monitor runs; the report is the last's
D = DATES[-1]
COLUMNS = ("x1", "x2", "plan", "score")    # the model's features and its score: the report's columns
LOCAL_SCHEMES = {"file", "data", "blob", "about"}
VIEWPORT = {"width": 1280, "height": 900}


@dataclass(frozen=True)
class Report:
    path: Path
    evidently: Path
    status: str                                       # the run's dataset verdict (monitor_runs)
    trend: dict[str, dict[dt.date, tuple[str, float]]]  # column → run date → (metric, value): monitor_metrics


@pytest.fixture(scope="module")
def report(scored) -> Report:
    workspace = scored
    for day in DATES:
        assert monitor(workspace, day, *WINDOW) == 0
    trend: dict[str, dict[dt.date, tuple[str, float]]] = {}
    for day in DATES:
        rows = by_key(metrics_of(workspace, day))
        for column in COLUMNS:
            metric = METHOD_METRIC[rows[(column, "drift")]["method"]]
            trend.setdefault(column, {})[day] = (metric, rows[(column, metric)]["value"])
        for column, metric in ((DATASET, "drift_share"), (MULTIVARIATE, "domain_auc"), (PERFORMANCE, "auc")):
            value = rows[(column, metric)]["value"] if (column, metric) in rows else None
            if value is not None and math.isfinite(value):
                trend.setdefault(column, {})[day] = (metric, value)
    [run] = runs_of(workspace, D)
    path = report_path(workspace["ws"], "jt", D)
    assert run["report_path"] == str(path) and path.is_file()
    return Report(path, evidently_path(path), run["status"], trend)


@dataclass
class Watched:
    """What a page reported while the test drove it: console errors, uncaught exceptions, non-local requests."""

    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser) -> Iterator[tuple[Page, Watched]]:
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    watched = Watched()
    opened.on("console", lambda m: watched.errors.append(f"console.error: {m.text} ({m.location})")
              if m.type == "error" else None)
    opened.on("pageerror", lambda e: watched.errors.append(f"page error: {e}"))
    opened.on("request", lambda r: watched.external.append(r.url)
              if urlparse(r.url).scheme not in LOCAL_SCHEMES else None)
    try:
        yield opened, watched
    finally:
        context.close()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header; fails on anything that is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


SETTLE_JS = """() => new Promise(resolve => {
    let last = -1, same = 0;
    const tick = () => {
        const h = document.documentElement.scrollHeight;
        same = h === last ? same + 1 : 0;
        last = h;
        if (same >= 10) resolve(h); else requestAnimationFrame(tick);
    };
    tick();
})"""


def settle(pg: Page) -> None:
    """Wait for the page's height to stay the same for 10 frames (a transition, e.g. a row expanding, is over)."""
    pg.evaluate(SETTLE_JS)


def screenshot(pg: Page, path: Path, min_bytes: int) -> None:
    """A full-page PNG of the page's whole height, once its layout has settled."""
    settle(pg)
    pg.screenshot(path=path, full_page=True)
    width, height = png_size(path)
    assert (width, height) == (VIEWPORT["width"], pg.evaluate("document.documentElement.scrollHeight"))
    assert path.stat().st_size > min_bytes, f"{path}: {path.stat().st_size} bytes, a blank page?"


def visible_box(locator) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0, box
    return box


TREND_JS = """rows => rows.map(tr => {
    const svg = tr.querySelector('svg');
    const lines = svg ? [...svg.querySelectorAll('polyline')] : [];
    const value = lines.find(l => !l.hasAttribute('stroke-dasharray'));
    const threshold = lines.find(l => l.hasAttribute('stroke-dasharray'));
    const box = e => { const b = e.getBBox(); return [b.width, b.height]; };
    return {
        column: tr.cells[0].innerText.trim(), metric: tr.cells[1].innerText.trim(),
        width: svg ? svg.width.baseVal.value : 0,
        points: value ? value.getAttribute('points').trim().split(/\\s+/).map(p => p.split(',').map(Number)) : [],
        line: value ? box(value) : null, threshold: threshold ? box(threshold) : null,
        dots: svg ? [...svg.querySelectorAll('circle')].map(c => ({
            title: c.querySelector('title').textContent, cx: c.cx.baseVal.value, cy: c.cy.baseVal.value,
            r: c.r.baseVal.value, fill: c.getAttribute('fill')})) : [],
    };
})"""


def test_report_renders_titles_and_trend_charts_without_console_errors(report: Report, page, tmp_path) -> None:
    pg, watched = page
    pg.goto(report.path.as_uri())
    pg.wait_for_load_state("load")

    assert pg.title() == f"driftline report — jt {D}"
    expect(pg.locator("h1")).to_have_text(f"driftline monitoring report — jt {D}")
    expect(pg.locator("h2")).to_have_text(["Columns", "Trends", "Closed loop: estimated vs realized auc, episodes, "
                                           "champion", "Earlier windows on matured labels", "All metrics"])
    assert pg.locator("script").count() == 0                  # the report says: static, no script
    summary = {r[0]: r[1] for r in pg.locator("table").first.locator("tr").evaluate_all(
        "rows => rows.map(r => [r.cells[0].innerText.trim(), r.cells[1].innerText.trim()])")}
    assert summary["model"] == "jt v1" and summary["run date"] == str(D)
    assert summary["dataset drift"] == report.status
    assert summary["Evidently page"].startswith(report.evidently.name)

    # Columns: one row per column, each with a drawn histogram (bars of non-zero height)
    columns = pg.locator("xpath=//h2[.='Columns']/following-sibling::table[1]//tr[td]")
    names = [t.strip() for t in columns.locator("td:first-child").all_inner_texts()]
    assert sorted(names) == sorted(COLUMNS)
    for i in range(len(names)):
        histogram = columns.nth(i).locator("svg")
        expect(histogram).to_be_visible()
        visible_box(histogram)
        heights = histogram.locator("rect").evaluate_all("rs => rs.map(r => r.height.baseVal.value)")
        assert len(heights) >= 4 and sum(heights) > 0, (names[i], heights)

    # Trends: the Columns table's order, then the dataset and performance lines, each an SVG drawn on screen
    trends = pg.locator("xpath=//h2[.='Trends']/following-sibling::table[1]//tr[td]")
    drawn = trends.evaluate_all(TREND_JS)
    assert [t["column"] for t in drawn] == [c for c in (*names, DATASET, MULTIVARIATE, PERFORMANCE) if c in report.trend]
    assert {DATASET, PERFORMANCE} <= set(report.trend)
    for i, t in enumerate(drawn):
        column, want = t["column"], report.trend[t["column"]]
        chart = trends.nth(i).locator("svg")
        expect(chart).to_be_visible()
        visible_box(chart)
        # one dot per run with a value, in date order, titled with its date and metric
        titled = [re.match(r"(\d{4}-\d\d-\d\d) (\S+) ", d["title"]).groups() for d in t["dots"]]
        assert [(dt.date.fromisoformat(day), metric) for day, metric in titled] == \
            [(day, metric) for day, (metric, _) in sorted(want.items())], column
        assert t["metric"] == want[D][0]
        assert len(t["points"]) == len(want) and all(len(p) == 2 for p in t["points"]), (column, t["points"])
        xs = [x for x, _ in t["points"]]
        assert xs == sorted(xs) and len(set(xs)) == len(xs), (column, xs)
        centres = [c for d in t["dots"] for c in (d["cx"], d["cy"])]
        assert centres == pytest.approx([c for p in t["points"] for c in p], abs=0.06), column  # dots on the line
        assert all(d["r"] > 0 and d["fill"].startswith("#") for d in t["dots"])
        if len(want) > 1:
            assert t["line"][0] > 0.3 * t["width"], (column, t["line"])   # the line spans the runs
        values = [v for _, (_, v) in sorted(want.items())]
        if max(values) - min(values) > 1e-6 * max(1.0, abs(max(values))):    # higher value, higher dot
            top, bottom = values.index(max(values)), values.index(min(values))
            assert t["dots"][top]["cy"] < t["dots"][bottom]["cy"], (column, values, t["dots"])
        if column != PERFORMANCE:   # the decision threshold, dashed, across the same runs
            assert t["threshold"] is not None and t["threshold"][0] > 0, column
        for dot in trends.nth(i).locator("circle").all():
            visible_box(dot)
        labels = chart.locator("text").all_text_contents()     # the date axis: the chart's first and last run
        axis = [dt.date.fromisoformat(s) for s in labels if re.fullmatch(r"\d{4}-\d\d-\d\d", s)]
        assert len(axis) == 2 and axis[0] <= min(want) and axis[1] >= max(want), (column, labels)
        assert ("log scale" in labels) == t["metric"].endswith("_pvalue"), (column, labels)
    assert len(report.trend["x1"]) == len(DATES)    # three runs: every column's chart has three dots

    # the closed loop chart: realized AUC dots on screen
    loop = pg.locator("xpath=//h2[starts-with(., 'Closed loop')]/following-sibling::*[local-name()='svg'][1]")
    expect(loop).to_be_visible()
    visible_box(loop)
    realized = loop.locator("circle", has=pg.locator("title", has_text="realized auc"))
    assert realized.count() >= 1
    for dot in realized.all():
        visible_box(dot)

    screenshot(pg, tmp_path / "report.png", min_bytes=50_000)
    assert watched.errors == []
    assert watched.external == []


CANVAS_JS = """cs => cs.map(c => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) painted++;
    return {painted, pixels: c.width * c.height};
})"""


ON_TOP_JS = """e => {
    e.scrollIntoView({block: 'center'});
    const r = e.getBoundingClientRect();
    const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    return r.height > 0 && hit !== null && e.contains(hit);
}"""


def test_evidently_page_linked_from_the_report_renders_offline(report: Report, page, tmp_path) -> None:
    pg, watched = page
    pg.goto(report.path.as_uri())
    link = pg.get_by_role("link", name=report.evidently.name)
    expect(link).to_be_visible()
    link.click()
    pg.wait_for_url(report.evidently.as_uri())
    assert pg.title() == f"driftline · jt {D}: Evidently data drift (sampled rows)"

    # Evidently draws the page with its embedded JavaScript: its titles appear
    for title in ("Data Drift Summary", "Columns", "Drifted Columns", "Share of Drifted Columns"):
        expect(pg.get_by_text(title, exact=True)).to_be_visible()
    expect(pg.get_by_text(re.compile(r"^Dataset Drift is (not )?detected\."))).to_be_visible()
    share = pg.get_by_text(re.compile(r"^Drift is detected for [\d.]+% of columns \(\d+ out of \d+\)\.$"))
    expect(share).to_be_visible()
    assert share.inner_text().rstrip(".").endswith(f"out of {len(COLUMNS)})")

    # one row per column, reference and current distributions painted on their canvases
    rows = pg.locator("tbody tr", has=pg.locator("canvas"))
    expect(rows).to_have_count(len(COLUMNS))
    assert sorted(t.strip() for t in rows.locator("td:nth-child(2)").all_inner_texts()) == sorted(COLUMNS)
    canvases = rows.locator("canvas")
    expect(canvases).to_have_count(2 * len(COLUMNS))
    for c in canvases.all():
        visible_box(c)
    painted = canvases.evaluate_all(CANVAS_JS)
    assert all(0.02 * c["pixels"] < c["painted"] < c["pixels"] for c in painted), painted
    x1 = rows.filter(has=pg.locator("td:nth-child(2)", has_text=re.compile(r"^x1$")))
    expect(x1).to_contain_text("Detected")                  # Evidently sees the 3σ shift of x1 too
    expect(x1).not_to_contain_text("Not Detected")

    # a row expanded: Evidently's Plotly chart of x1, drawn as SVG paths
    x1.locator("button").first.click()
    plot = pg.locator(".js-plotly-plot").first
    expect(plot).to_be_visible()
    settle(pg)
    pg.wait_for_function(ON_TOP_JS, arg=plot.element_handle())   # laid out, not clipped nor covered: on screen
    visible_box(plot)
    expect(plot.locator(".ytitle")).to_contain_text("x1")
    lengths = plot.locator(".scatterlayer path").evaluate_all("ps => ps.map(p => (p.getAttribute('d') || '').length)")
    assert len([n for n in lengths if n > 100]) >= 2, lengths      # the reference band and the current line

    screenshot(pg, tmp_path / "evidently.png", min_bytes=50_000)
    assert watched.errors == []
    assert watched.external == []
