"""The report's closed-loop section (pure): estimated vs realized performance over time, the drift episode
and its retrain decisions, and the champion switches.

Inputs are rows the monitor job read (`driftline.monitoring.inputs.recent_metrics`, `loop_decisions`): the
``__performance__`` rows of ``monitor_metrics`` of the recent runs (the estimate a run made for its own window
before any label existed, and the realized value of each window as recomputed by the latest run that saw its
labels mature) and the ``retrain_decisions`` rows of the same days.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftline.monitoring.estimated import PREFIX

ESTIMATED_COLOUR, REALIZED_COLOUR, SWITCH_COLOUR, EPISODE_COLOUR = "#1565c0", "#2e7d32", "#6a1b9a", "#fff3e0"


@dataclass(frozen=True)
class Timeline:
    """Per window end date: the estimate made before labels, the realized value on matured labels (with its
    labelled rows), the champion version that scored it; the retrain decisions of the same days."""

    metric: str
    estimated: dict[dt.date, float] = field(default_factory=dict)
    realized: dict[dt.date, tuple[float, int]] = field(default_factory=dict)
    version: dict[dt.date, str] = field(default_factory=dict)
    decisions: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def dates(self) -> list[dt.date]:
        return sorted({*self.estimated, *self.realized, *self.version})

    def switches(self) -> list[tuple[dt.date, str, str]]:
        """(first date, old version, new version) of every change of the monitored champion."""
        out, last = [], None
        for d in sorted(self.version):
            v = self.version[d]
            if last is not None and v != last:
                out.append((d, last, v))
            last = v
        return out


def timeline(rows: Iterable[Mapping[str, Any]], decisions: Iterable[Mapping[str, Any]], metric: str = "auc",
             min_labels: int = 1) -> Timeline:
    """Reduce ``__performance__`` rows (``run_date``, ``window_end``, ``model_version``, ``metric``, ``value``)
    to a `Timeline`: the estimate of a window is the one its own run made (window_end = run_date); its realized
    value the latest run's that had at least ``min_labels`` labelled rows for it."""
    est: dict[dt.date, float] = {}
    version: dict[dt.date, str] = {}
    latest: dict[dt.date, tuple[dt.date, dict[str, Any]]] = {}
    for r in rows:
        end, run = r["window_end"], r["run_date"]
        value = r.get("value")
        if end == run:
            version[end] = str(r["model_version"])
            if r["metric"] == PREFIX + metric and _finite(value):
                est[end] = float(value)
        if r["metric"] in (metric, "labelled_rows"):
            at = latest.get(end)
            if at is None or run > at[0]:
                latest[end] = (run, {})
            if latest[end][0] == run:
                latest[end][1][r["metric"]] = value
    realized = {end: (float(v[metric]), int(v.get("labelled_rows") or 0)) for end, (_, v) in latest.items()
                if _finite(v.get(metric)) and int(v.get("labelled_rows") or 0) >= min_labels}
    return Timeline(metric, est, realized, version, sorted(decisions, key=lambda d: d["decision_date"]))


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def loop_section(t: Timeline, width: int = 640, height: int = 180) -> list[str]:
    """HTML: a chart of estimated (line) vs realized (dots) ``metric`` per window, the episode (shaded from its
    onset to the decision that ended it) and champion switches (vertical lines), then the decisions table."""
    dates = t.dates
    if not dates:
        return []
    out = [f"<h2>Closed loop: estimated vs realized {_e(t.metric)}, episodes, champion</h2>",
           legend(t), _chart(t, dates, width, height)]
    shown = [d for d in t.decisions if d.get("status") not in ("no_trigger", None) or d.get("onset_date")]
    if shown:
        out.append("<table><tr><th>date</th><th>decision</th><th>episode onset</th><th>labels since onset</th>"
                   "<th>trained</th><th>gate</th><th>champion after</th><th>why</th></tr>")
        for d in shown:
            gate = {True: "passed", False: "failed"}.get(d.get("gate_passed"), "")
            trained, champion = d.get("trained_version"), d.get("champion_version")
            labels = (f"{d.get('labels_available') or 0:,} of {d.get('labels_needed') or 0:,} on "
                      f"{d.get('label_days_available') or 0} of {d.get('label_days_needed') or 0} days"
                      if d.get("labels_needed") is not None else "")
            out.append(f"<tr><td>{d['decision_date']}</td><td>{_e(d.get('status'))}</td>"
                       f"<td>{_e(d.get('onset_date') or '')}</td><td class=\"num\">{labels}</td>"
                       f"<td>{_e(f'v{trained}' if trained else '')}</td>"
                       f"<td>{gate}</td><td>{_e(f'v{champion}' if champion else '')}</td>"
                       f"<td class=\"muted\">{_e(d.get('reasons'))}</td></tr>")
        out.append("</table>")
    return out


def legend(t: Timeline) -> str:
    """The chart's legend: only the series the chart draws (an entry without a mark misleads)."""
    entries = []
    if t.estimated:
        entries.append((ESTIMATED_COLOUR, "estimated before labels (from the calibrated score distribution)"))
    if t.realized:
        entries.append((REALIZED_COLOUR, "realized on matured labels"))
    if t.switches():
        entries.append((SWITCH_COLOUR, "champion switch"))
    if t.dates and _episodes(t.decisions, t.dates[-1]):
        entries.append(("#ffcc80", "drift episode (onset … end)"))
    if not entries:
        return ""
    return ('<p class="muted legend">' + "".join(f'<span style="background:{colour}"></span>{text}'
                                                 for colour, text in entries) + "</p>")


def _chart(t: Timeline, dates: Sequence[dt.date], width: int, height: int) -> str:
    values = [*t.estimated.values(), *(v for v, _ in t.realized.values())]
    if not values:
        return '<p class="muted">no estimated or realized values yet</p>'
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.1, 0.01)
    lo, hi = lo - pad, hi + pad
    first, days = dates[0], max((dates[-1] - dates[0]).days, 1)

    def x(d: dt.date) -> float:
        return 40 + (d - first).days / days * (width - 50)

    def y(v: float) -> float:
        return height - 20 - (v - lo) / (hi - lo) * (height - 30)

    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for start, end in _episodes(t.decisions, dates[-1]):
        a, b = max(start, first), min(end, dates[-1])
        if a <= b:
            parts.append(f'<rect x="{x(a):.1f}" y="5" width="{max(x(b) - x(a), 2):.1f}" height="{height - 25}" '
                         f'fill="{EPISODE_COLOUR}" stroke="#ffcc80"><title>drift episode {start} .. {end}</title>'
                         "</rect>")
    for v in (lo + pad, hi - pad):
        parts.append(f'<text x="2" y="{y(v) + 4:.1f}" font-size="10" fill="#757575">{v:.3f}</text>')
    for d, old, new in t.switches():
        parts.append(f'<line x1="{x(d):.1f}" x2="{x(d):.1f}" y1="5" y2="{height - 20}" stroke="{SWITCH_COLOUR}" '
                     f'stroke-dasharray="3 2"><title>{d}: champion v{_e(old)} → v{_e(new)}</title></line>'
                     f'<text x="{x(d) + 3:.1f}" y="14" font-size="10" fill="{SWITCH_COLOUR}">v{_e(new)}</text>')
    line = sorted(t.estimated.items())
    if line:
        parts.append('<polyline points="' + " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in line)
                     + f'" fill="none" stroke="{ESTIMATED_COLOUR}" stroke-width="1.5"/>')
    for d, v in line:
        parts.append(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="2" fill="{ESTIMATED_COLOUR}">'
                     f"<title>{d} estimated {t.metric} {v:.4f}</title></circle>")
    for d, (v, n) in sorted(t.realized.items()):
        parts.append(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="3.5" fill="{REALIZED_COLOUR}">'
                     f"<title>{d} realized {t.metric} {v:.4f} on {n} labels</title></circle>")
    parts.append(f'<text x="40" y="{height - 4}" font-size="10" fill="#757575">{first}</text>'
                 f'<text x="{width - 70}" y="{height - 4}" font-size="10" fill="#757575">{dates[-1]}</text></svg>')
    return "".join(parts)


def _episodes(decisions: Sequence[Mapping[str, Any]], last: dt.date) -> list[tuple[dt.date, dt.date]]:
    """(onset, end) of each episode in the decisions: from its onset to the decision that ended it (or ``last``)."""
    spans: dict[dt.date, dt.date] = {}
    for d in decisions:
        onset = d.get("onset_date")
        if onset is None:
            continue
        ended = d.get("episode_status") == "ended"
        spans[onset] = d["decision_date"] if ended else max(spans.get(onset, onset), last)
    return sorted(spans.items())
