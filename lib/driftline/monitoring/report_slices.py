"""The monitoring report's HTML cells (escaping, number format, status badge) and its per-slice sections: drift
per segment (`driftline.monitoring.segments`) and fairness per protected column (`driftline.monitoring.fairness`).
`driftline.monitoring.report` assembles the page."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

STATUS_COLOURS = {"ok": "#2e7d32", "warn": "#ef6c00", "alert": "#c62828", "insufficient_data": "#757575"}


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


def segments_section(lines: Sequence[Mapping[str, Any]]) -> list[str]:
    """Drift per segment: one line per segment (`driftline.monitoring.segments.summary`), worst first."""
    order = {"alert": 0, "warn": 1, "ok": 2}
    out = ["<h2>Drift per segment</h2><p class=\"muted\">Each segment against its own reference profile (static "
           "thresholds; false-discovery rate controlled across columns × segments; monitoring.drift.min_rows per "
           "column). The rows are in monitor_metrics with slice = column=segment.</p>",
           "<table><tr><th>segment</th><th>rows</th><th>drifted / evaluated</th><th>drift share</th><th>status</th>"
           "<th>drifted columns</th></tr>"]
    for line in sorted(lines, key=lambda x: (order.get(x["status"], 3), x["slice"])):
        why = f" <span class=\"muted\">{_e(line['reason'])}</span>" if line.get("reason") else ""
        out.append(f"<tr><td>{_e(line['slice'])}</td><td class=\"num\">{_fmt(line['rows'])}</td>"
                   f"<td class=\"num\">{_fmt(line['drifted'])} / {_fmt(line['evaluated'])}</td>"
                   f"<td class=\"num\">{_fmt(line['drift_share'])}</td><td>{_badge(line['status'])}{why}</td>"
                   f"<td>{_e(', '.join(line['columns']))}</td></tr>")
    out.append("</table>")
    return out


def fairness_section(column: str, groups: Mapping[str, Sequence[Mapping[str, Any]]],
                      across: Sequence[Mapping[str, Any]]) -> list[str]:
    """One protected column: each group's selection / true-positive / false-positive rate (rows behind it), then
    the gaps across groups with their bounds and statuses."""
    names = ("selection_rate", "true_positive_rate", "false_positive_rate")
    out = [f"<h2>Fairness: {_e(column)}</h2><p class=\"muted\">Prediction = score ≥ label.threshold; true / false "
           "positive rates on matured labels; a rate on too few rows is left out of the gaps.</p>"
           "<table><tr><th>group</th>" + "".join(f"<th>{n.replace('_', ' ')}</th>" for n in names) + "</tr>"]
    for group, rows in groups.items():
        by = {r["metric"]: r for r in rows}
        tds = "".join(f'<td class="num">{_fmt(by[n]["value"])} <span class="muted">({by[n]["n_current"]})</span> '
                      f"{_badge(by[n]['status'])}</td>" if n in by else "<td></td>" for n in names)
        out.append(f"<tr><td>{_e(group)}</td>{tds}</tr>")
    out.append("</table><table><tr><th>gap</th><th>value</th><th>bound</th><th>status</th><th>why</th></tr>")
    for r in across:
        out.append(f"<tr><td>{_e(r['metric'])}</td><td class=\"num\">{_fmt(r['value'])}</td>"
                   f'<td class="num">{_fmt(r["threshold"])}</td><td>{_badge(r["status"])}</td>'
                   f"<td class=\"muted\">{_e(r.get('reason'))}</td></tr>")
    out.append("</table>")
    return out
