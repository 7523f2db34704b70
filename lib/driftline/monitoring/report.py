"""The HTML report of one monitor run (``driftline report``, in `driftline.cli.report`, prints its path).

The report is one self-contained static file (inline CSS and SVG, no script, no network asset):
a summary (model version, window, rows, dataset verdict), one line per column with its decision
method, value, threshold, status and a small histogram of reference vs current cell shares, the
trends across the model's recent runs (each column's decision metric with its threshold, the
dataset's drift share, AUC), then every metric row of the run. It is written atomically
(temporary file in the same folder, then rename), so a reader never sees half a report.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.monitoring.comparison import cells
from driftline.monitoring.drift import DATASET
from driftline.monitoring.importance_drift import METHOD as IMPORTANCE_METHOD
from driftline.monitoring.loop_report import Timeline, loop_section
from driftline.monitoring.multivariate import METRIC, MULTIVARIATE
from driftline.monitoring.performance import PERFORMANCE
from driftline.monitoring.report_slices import STATUS_COLOURS, _badge, _e, _fmt, fairness_section, segments_section
from driftline.monitoring.spec import METHOD_METRIC
from driftline.profiling.bins import OTHER, NumericBins
from driftline.profiling.types import DatasetProfile, NumericProfile

if TYPE_CHECKING:
    from driftline.monitoring.drift import DatasetDrift
    from driftline.monitoring.evidently_page import EvidentlyPage

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#212121}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;font-size:13px}td,th{padding:4px 8px;border-bottom:1px solid #e0e0e0;text-align:left}
th{background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.muted{color:#757575;font-size:12px}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def _labels(prof: Any) -> list[str]:
    """One label per cell of `driftline.monitoring.comparison.cells`."""
    if isinstance(prof, NumericProfile):
        e = prof.edges
        if not e:
            return []
        if NumericBins(prof.column, e).discrete:     # value cells: = v, then the gap to the next value
            inner = [f"= {e[i]:.6g}" if i % 2 == 0 else f"between {e[i - 1]:.6g} and {e[i + 1]:.6g}"
                     for i in range(len(e) - 1)]
        else:
            inner = [f"[{e[i]:.4g}, {e[i + 1]:.4g}]" for i in range(len(e) - 1)]
        return [f"< {e[0]:.4g}", *inner, f"> {e[-1]:.4g}"]
    if prof.tail_counts:
        return [*prof.categories, *(f"tail bucket {b}" for b in range(len(prof.tail_counts)))]
    return [*prof.categories, OTHER]


def histogram_svg(reference: Any, current: Any, width: int = 260, height: int = 60) -> str:
    """Inline SVG: reference (grey) and current (blue) share of each cell, side by side."""
    r, c = cells(reference), cells(current)
    if not r:
        return '<span class="muted">no bins</span>'
    nr, nc = sum(r) or 1, sum(c) or 1
    p, q = [x / nr for x in r], [x / nc for x in c]
    top = max([*p, *q, 1e-9])
    slot = width / len(r)
    bar = max(slot / 2 - 1, 1)
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i, (label, a, b) in enumerate(zip(_labels(reference), p, q, strict=True)):
        x = i * slot
        for dx, share, colour, side in ((0, a, "#9e9e9e", "reference"), (bar, b, "#1565c0", "current")):
            h = share / top * (height - 2)
            parts.append(f'<rect x="{x + dx:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{_e(label)} {side}: {share:.1%}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class TrendPoint:
    """One run date of a trend: the decision metric of a column (or a dataset/performance metric)."""

    run_date: dt.date
    metric: str
    value: float | None
    threshold: float | None
    status: str


# the trend line of the non-column rows
TREND_METRICS = {DATASET: "drift_share", PERFORMANCE: "auc", MULTIVARIATE: METRIC}


def trend_points(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[TrendPoint]]:
    """Per column, its trend over run dates from ``monitor_metrics``-shaped rows (pure).

    ``rows`` carry ``run_date``, ``column``, ``metric``, ``method``, ``value``, ``threshold``,
    ``status`` (baseline reference, whole window). A feature's point on a date is its decision
    metric that day (the metric of its ``method``, which ``auto`` may change with sample sizes);
    ``__dataset__`` plots ``drift_share`` and ``__performance__`` ``auc``. Points are sorted by date,
    one per (column, date): the last row given wins (history first, then the current run).
    """
    points: dict[tuple[str, dt.date], TrendPoint] = {}
    for r in rows:
        column, method = r["column"], r.get("method")
        wanted = TREND_METRICS.get(column) or (METHOD_METRIC.get(method) if method else None)
        if r["metric"] != wanted:
            continue
        points[(column, r["run_date"])] = TrendPoint(r["run_date"], r["metric"], r["value"], r["threshold"],
                                                     r["status"])
    out: dict[str, list[TrendPoint]] = {}
    for (column, _), point in sorted(points.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        out.setdefault(column, []).append(point)
    return out


P_FLOOR = 1e-300   # a p-value of 0 (underflow) is drawn at this on the log scale


def log_scaled(metric: str) -> bool:
    """p-values are charted on a log10 scale: 0.05 and 1e-40 would share one pixel on a linear one."""
    return metric.endswith("_pvalue")


def trend_svg(points: Sequence[TrendPoint], width: int = 320, height: int = 84) -> str:
    """Inline SVG: the metric over run dates (line and status-coloured dots) and its threshold (dashed), p-values on
    a log scale, the first and last run dates under the line."""
    log_scale = bool(points) and log_scaled(points[-1].metric)

    def scale(v: float) -> float:
        return math.log10(max(v, P_FLOOR)) if log_scale else v

    values = [scale(p.value) for p in points if p.value is not None and math.isfinite(p.value)]
    limits = [scale(p.threshold) for p in points if p.threshold is not None and math.isfinite(p.threshold)]
    if not values:
        return '<span class="muted">no values</span>'
    lo = min([*values, *limits]) if log_scale else min([*values, *limits, 0.0])
    hi = max([*values, *limits])
    span = (hi - lo) or 1.0
    first, last = points[0].run_date, points[-1].run_date
    days = max((last - first).days, 1)

    def x(d: dt.date) -> float:
        return 6 + (d - first).days / days * (width - 12)

    def y(v: float) -> float:
        return height - 18 - (scale(v) - lo) / span * (height - 24)

    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
             f'<text x="6" y="{height - 3}" font-size="9" fill="#757575">{first}</text>',
             f'<text x="{width - 6}" y="{height - 3}" font-size="9" fill="#757575" text-anchor="end">{last}</text>']
    if log_scale:
        parts.append(f'<text x="{width - 6}" y="9" font-size="9" fill="#757575" text-anchor="end">log scale</text>')
    thr = [(p.run_date, p.threshold) for p in points if p.threshold is not None and math.isfinite(p.threshold)]
    if thr:
        path = " ".join(f"{x(d):.1f},{y(t):.1f}" for d, t in thr)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#c62828" stroke-dasharray="4 3" '
                     'stroke-width="1"><title>threshold</title></polyline>')
    line = [(p.run_date, p.value) for p in points if p.value is not None and math.isfinite(p.value)]
    parts.append('<polyline points="' + " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in line)
                 + '" fill="none" stroke="#1565c0" stroke-width="1.5"/>')
    for p in points:
        if p.value is None or not math.isfinite(p.value):
            continue
        colour = STATUS_COLOURS.get(p.status, "#757575")
        parts.append(f'<circle cx="{x(p.run_date):.1f}" cy="{y(p.value):.1f}" r="3" fill="{colour}">'
                     f"<title>{p.run_date} {_e(p.metric)} {_fmt(p.value)} (threshold {_fmt(p.threshold)}): "
                     f"{_e(p.status)}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def render_report(*, model: str, version: str, date: dt.date, window: tuple[dt.date, dt.date], run_id: str,
                  reference: DatasetProfile, current: DatasetProfile, result: DatasetDrift,
                  rows: Sequence[Mapping[str, Any]], trends: Mapping[str, Sequence[TrendPoint]] | None = None,
                  evidently: EvidentlyPage | None = None,
                  matured: Sequence[tuple[dt.date, dt.date, str, Sequence[Mapping[str, Any]]]] = (),
                  loop: Timeline | None = None, importance: Mapping[str, float] | None = None,
                  fairness: Sequence[tuple[str, Mapping[str, Sequence[Mapping[str, Any]]],
                                           Sequence[Mapping[str, Any]]]] = (),
                  segments: Sequence[Mapping[str, Any]] = ()) -> str:
    """The report's HTML (pure): summary, per-column verdicts with histograms (and the version's permutation
    ``importance`` of each feature with its rank, when stored), trends across windows, the
    closed loop (``loop``: estimated vs realized performance, episodes, champion switches), the earlier
    windows' performance on labels matured since (``matured``: start, end, version, performance rows), every
    metric row; ``fairness``: per protected column, its groups' rate rows (group name → rows) and the gaps across
    them (`driftline.monitoring.fairness`); ``segments``: one line per segment with drift rows
    (`driftline.monitoring.segments.summary`)."""
    summary = _summary(model=model, version=version, date=date, window=window, run_id=run_id, reference=reference,
                       current=current, result=result, evidently=evidently)
    joint = next((r for r in rows if r["column"] == MULTIVARIATE and r["metric"] == METRIC), None)
    if joint is not None:   # after the dataset drift lines
        at = next(i for i, (label, _) in enumerate(summary) if label == "drift share") + 1
        summary.insert(at, ("multivariate drift", f"{_badge(joint['status'])} domain classifier AUC "
                                                  f"{_fmt(joint['value'])} (alert above {_fmt(joint['threshold'])}; "
                                                  f"{joint['n_reference']} / {joint['n_current']} sampled rows)"))
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>driftline report — {_e(model)} {date}</title><style>{CSS}</style></head><body>",
           f"<h1>driftline monitoring report — {_e(model)} {date}</h1>",
           '<p class="muted">Reference: the rows the model version\'s reference profile describes (its recent '
           "training rows, docs/training.md). Current: the rows the champion scored in the window. Static file: "
           "no script, no external asset.</p>",
           "<table>", *[f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in summary], "</table>",
           *_columns_section(result, reference, current, importance or {})]
    if trends:
        out.extend(_trends_section(result, trends))
    if loop is not None:
        out.extend(loop_section(loop))
    if matured:
        out.extend(_matured_section(matured))
    if segments:
        out.extend(segments_section(segments))
    for column, groups, across in fairness:
        out.extend(fairness_section(column, groups, across))
    out.extend(_metrics_section(rows))
    out.append("</table></body></html>\n")
    return "\n".join(out)


def _summary(*, model: str, version: str, date: dt.date, window: tuple[dt.date, dt.date], run_id: str,
             reference: DatasetProfile, current: DatasetProfile, result: DatasetDrift,
             evidently: EvidentlyPage | None) -> list[tuple[str, str]]:
    """(label, HTML) lines of the summary table: model, window, rows, dataset verdict, run, Evidently page."""
    drifted = [c.column for c in result.columns if c.drifted]
    summary = [
        ("model", f"{model} v{version}"), ("run date", date.isoformat()),
        ("window", f"{window[0]} .. {window[1]}"), ("rows in the window", str(current.rows)),
        ("reference rows", str(reference.rows)),
        ("dataset drift", _badge(result.status)),
        ("drifted columns", f"{result.drifted} of {result.evaluated} evaluated ({result.insufficient} with "
                            f"insufficient data): {_e(', '.join(drifted)) or 'none'}"),
        ("drift share", f"{_fmt(result.drift_share)} (alert at ≥ {_fmt(result.threshold)}, FDR {_fmt(result.fdr)})"),
        ("run id", _e(run_id)),
    ]
    if evidently is not None:
        link = f'<a href="{_e(evidently.file)}">{_e(evidently.file)}</a> — ' if evidently.file else ""
        summary.append(("Evidently page", f'{link}<span class="muted">{_e(evidently.note)}</span>'))
    return summary


def _columns_section(result: DatasetDrift, reference: DatasetProfile, current: DatasetProfile,
                     importance: Mapping[str, float]) -> list[str]:
    """The Columns table: one line per column with its verdict, a histogram of reference vs current and, when the
    version stored them, the feature's permutation importance and rank (a drifted feature the model does not use
    matters less)."""
    rank = {c: i + 1 for i, c in enumerate(sorted(importance, key=lambda c: (-importance[c], c)))}   # 1: the top
    head = "<th>importance (rank)</th>" if importance else ""
    out = ["<h2>Columns</h2>",
           '<p class="legend muted">cell shares: <span style="background:#9e9e9e"></span>reference'
           '<span style="background:#1565c0"></span>current'
           + (" · importance: the validation loss the model adds when the column is shuffled (training.importance)"
              if importance else "") + "</p>",
           "<table><tr><th>column</th><th>kind</th><th>method</th><th>value</th><th>threshold</th><th>status</th>"
           f"{head}<th>n reference / current</th><th>histogram</th><th>reason</th></tr>"]
    for c in result.columns:
        imp = ""
        if importance:
            imp = (f'<td class="num">{_fmt(importance[c.column])} ({rank[c.column]})</td>' if c.column in importance
                   else '<td class="muted">—</td>')
        out.append(
            f"<tr><td><b>{_e(c.column)}</b></td><td>{_e(c.kind)}</td><td>{_e(c.method)}</td>"
            f'<td class="num">{_fmt(c.decision_value)}</td><td class="num">{_fmt(c.threshold)}</td>'
            f"<td>{_badge(c.status)}</td>{imp}<td class=\"num\">{c.n_reference} / {c.n_current}</td>"
            f"<td>{histogram_svg(reference.columns[c.column], current.columns[c.column])}</td>"
            f"<td class=\"muted\">{_e(c.reason)}</td></tr>"
        )
    out.append("</table>")
    return out


def _trends_section(result: DatasetDrift, trends: Mapping[str, Sequence[TrendPoint]]) -> list[str]:
    """The Trends table: the run's columns in order, then ``__dataset__``, ``__performance__`` and the rest."""
    dates = sorted({p.run_date for ps in trends.values() for p in ps})
    out = [f"<h2>Trends</h2><p class=\"muted\">Runs {dates[0]} .. {dates[-1]} of this model (whatever "
           "version): each column's decision metric against the reference (dashed: its threshold; dot "
           "colour: status); the dataset's drift share; AUC on matured labels.</p>"
           "<table><tr><th>column</th><th>metric</th><th>latest</th><th>trend</th></tr>"]
    order = [c.column for c in result.columns] + [DATASET, MULTIVARIATE, PERFORMANCE]
    shown = {c for c, ps in trends.items() if any(p.value is not None for p in ps)}   # an empty chart is noise
    for column in [c for c in order if c in shown] + sorted(shown - set(order)):
        ps = trends[column]
        out.append(f"<tr><td><b>{_e(column)}</b></td><td>{_e(ps[-1].metric)}</td>"
                   f'<td class="num">{_fmt(ps[-1].value)}</td><td>{trend_svg(ps)}</td></tr>')
    out.append("</table>")
    return out


def _matured_section(matured: Sequence[tuple[dt.date, dt.date, str, Sequence[Mapping[str, Any]]]]) -> list[str]:
    """The earlier windows' performance on matured labels, latest window first (metrics of the first given), and
    the permutation importance recomputed on the newest fully matured one (feature, importance, rank change)."""
    importance_rows = [(start, end, version, [r for r in rows if r.get("method") == IMPORTANCE_METHOD])
                       for start, end, version, rows in matured]
    names = [r["metric"] for r in matured[0][3] if r.get("method") != IMPORTANCE_METHOD]
    out = ["<h2>Earlier windows on matured labels</h2><p class=\"muted\">The windows before this one, "
           "recomputed with the labels matured by this run's date (label.horizon_days).</p>"
           "<table><tr><th>window</th><th>version</th>" + "".join(f"<th>{_e(n)}</th>" for n in names)
           + "</tr>"]
    for start, end, version, perf in sorted(matured, key=lambda m: m[1], reverse=True):
        by = {r["metric"]: r for r in perf if r.get("method") != IMPORTANCE_METHOD}
        tds = "".join(f'<td class="num">{_fmt(by[n]["value"])} {_badge(by[n]["status"])}</td>'
                      if n in by else "<td></td>" for n in names)
        out.append(f"<tr><td>{start} .. {end}</td><td>v{_e(version)}</td>{tds}</tr>")
    out.append("</table>")
    for start, end, version, rows in importance_rows:
        if not rows:
            continue
        by = {(r["column"], r["metric"]): r for r in rows}
        rho = by.get((DATASET, "importance_rank_correlation"))
        out.append(f"<p>Permutation importance of v{_e(version)} on {start} .. {end} (matured labels): rank "
                   f"correlation with training {_fmt(rho['value']) if rho else 'n/a'} "
                   f"{_badge(rho['status']) if rho else ''}</p>"
                   "<table><tr><th>feature</th><th>importance now</th><th>rank change</th><th>ranks</th></tr>")
        for column in sorted({c for c, m in by if m == "importance"}, key=lambda c: -(by[(c, "importance")]["value"]
                                                                                   or 0.0)):
            change = by.get((column, "importance_rank_change"))
            out.append(f"<tr><td>{_e(column)}</td><td class=\"num\">{_fmt(by[(column, 'importance')]['value'])}</td>"
                       f'<td class="num">{_fmt(change["value"]) if change else ""}</td>'
                       f"<td class=\"muted\">{_e(change.get('reason')) if change else ''}</td></tr>")
        out.append("</table>")
    return out


def _metrics_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The All metrics table, open: every metric row of the run (the caller closes the table)."""
    out = ["<h2>All metrics</h2><table><tr><th>column</th><th>metric</th><th>value</th>"
           "<th>threshold</th><th>status</th><th>reason</th></tr>"]
    for r in rows:
        out.append(f"<tr><td>{_e(r['column'])}</td><td>{_e(r['metric'])}</td>"
                   f'<td class="num">{_fmt(r["value"])}</td><td class="num">{_fmt(r["threshold"])}</td>'
                   f"<td>{_badge(r['status'])}</td><td class=\"muted\">{_e(r.get('reason'))}</td></tr>")
    return out


def write_report(path: Path, **content: Any) -> Path:
    """Render the report and write it to ``path`` atomically (temporary file + rename in the same folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(render_report(**content), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
