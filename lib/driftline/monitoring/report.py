"""The HTML report of one monitor run, and the ``driftline report`` command that prints its path.

The report is one self-contained static file (inline CSS and SVG, no script, no network asset):
a summary (model version, window, rows, dataset verdict), one line per column with its decision
method, value, threshold, status and a small histogram of reference vs current cell shares, then
every metric row of the run. It is written atomically (temporary file in the same folder, then
rename), so a reader never sees half a report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import math
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.monitoring.drift import cells
from driftline.monitoring.profile import OTHER, DatasetProfile, NumericProfile

if TYPE_CHECKING:
    from driftline.monitoring.drift import DatasetDrift

STATUS_COLOURS = {"ok": "#2e7d32", "warn": "#ef6c00", "alert": "#c62828", "insufficient_data": "#757575"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#212121}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;font-size:13px}td,th{padding:4px 8px;border-bottom:1px solid #e0e0e0;text-align:left}
th{background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.muted{color:#757575;font-size:12px}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if float(value).is_integer() and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.4g}"


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{STATUS_COLOURS.get(status, "#757575")}">{_e(status)}</span>'


def _labels(prof: Any) -> list[str]:
    if isinstance(prof, NumericProfile):
        e = prof.edges
        return ([f"< {e[0]:.4g}"] + [f"[{e[i]:.4g}, {e[i + 1]:.4g}]" for i in range(len(e) - 1)]
                + [f"> {e[-1]:.4g}"]) if e else []
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


def render_report(*, model: str, version: str, date: dt.date, window: tuple[dt.date, dt.date], run_id: str,
                  reference: DatasetProfile, current: DatasetProfile, result: DatasetDrift,
                  rows: Sequence[Mapping[str, Any]]) -> str:
    """The report's HTML (pure): summary, per-column verdicts with histograms, every metric row."""
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
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>driftline report — {_e(model)} {date}</title><style>{CSS}</style></head><body>",
           f"<h1>driftline monitoring report — {_e(model)} {date}</h1>",
           '<p class="muted">Reference: the model version\'s training + validation rows. Current: the rows the '
           "champion scored in the window. Static file: no script, no external asset.</p>",
           "<table>", *[f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in summary], "</table>",
           "<h2>Columns</h2>",
           '<p class="legend muted">cell shares: <span style="background:#9e9e9e"></span>reference'
           '<span style="background:#1565c0"></span>current</p>',
           "<table><tr><th>column</th><th>kind</th><th>method</th><th>value</th><th>threshold</th><th>status</th>"
           "<th>n reference / current</th><th>histogram</th><th>reason</th></tr>"]
    for c in result.columns:
        out.append(
            f"<tr><td><b>{_e(c.column)}</b></td><td>{_e(c.kind)}</td><td>{_e(c.method)}</td>"
            f'<td class="num">{_fmt(c.decision_value)}</td><td class="num">{_fmt(c.threshold)}</td>'
            f"<td>{_badge(c.status)}</td><td class=\"num\">{c.n_reference} / {c.n_current}</td>"
            f"<td>{histogram_svg(reference.columns[c.column], current.columns[c.column])}</td>"
            f"<td class=\"muted\">{_e(c.reason)}</td></tr>"
        )
    out.append("</table><h2>All metrics</h2><table><tr><th>column</th><th>metric</th><th>value</th>"
               "<th>threshold</th><th>status</th><th>reason</th></tr>")
    for r in rows:
        out.append(f"<tr><td>{_e(r['column'])}</td><td>{_e(r['metric'])}</td>"
                   f'<td class="num">{_fmt(r["value"])}</td><td class="num">{_fmt(r["threshold"])}</td>'
                   f"<td>{_badge(r['status'])}</td><td class=\"muted\">{_e(r.get('reason'))}</td></tr>")
    out.append("</table></body></html>\n")
    return "\n".join(out)


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


# --------------------------------------------------------------------------- the command


def report_command(argv: Sequence[str]) -> int:
    """``driftline report --model M --date D``: print the path of the run's HTML report (exit 2 if absent)."""
    from driftline.cli.runner import iso_date
    from driftline.config import load_config
    from driftline.errors import DriftlineError
    from driftline.monitoring.job import report_path

    parser = argparse.ArgumentParser(
        prog="driftline report",
        description="Print the path of the HTML monitoring report written by `driftline monitor` for a model "
                    "and date (<workspace>/reports/<model>/<date>.html).",
        epilog="exit codes: 0 the report exists (its path is printed) · 2 no report for that model and date, "
               "or a configuration/usage problem",
    )
    parser.add_argument("--model", required=True, metavar="NAME")
    parser.add_argument("--date", required=True, type=iso_date, metavar="YYYY-MM-DD")
    parser.add_argument("--conf-dir", default=os.environ.get("DRIFTLINE_CONF_DIR", "conf"), metavar="DIR")
    parser.add_argument("--workspace", metavar="DIR")
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        cfg = load_config(args.model, args.conf_dir, [], args.workspace).config
    except DriftlineError as exc:
        print(f"driftline report: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    path = report_path(cfg.workspace, cfg.name, args.date)
    if not path.is_file():
        print(f"driftline report: error: report of {cfg.name} for {args.date}: expected {path}, found no file "
              f"(run driftline monitor --model {cfg.name} --date {args.date})", file=sys.stderr)
        return 2
    print(path)
    return 0
