"""The report's closed-loop section (pure): which estimate and which realized value a window gets, champion
switches, episodes, and the HTML it renders."""

from __future__ import annotations

import datetime as dt

from driftline.monitoring.loop_report import loop_section, timeline
from driftline.monitoring.report import render_report

D = dt.date(2026, 3, 1)


def day(i: int) -> dt.date:
    return D + dt.timedelta(days=i)


def perf(run: int, end: int, metric: str, value: float | None, version: str = "1") -> dict:
    return {"run_date": day(run), "window_end": day(end), "model_version": version, "metric": metric, "value": value}


ROWS = [
    # each run's own window: an estimate, realized not yet matured (0 labels)
    *(perf(i, i, "estimated_auc", 0.90 + i / 100, "1" if i < 3 else "2") for i in range(5)),
    *(perf(i, i, "labelled_rows", 0.0, "1" if i < 3 else "2") for i in range(5)),
    # window 0 recomputed by run 2 (few labels) then run 4 (all labels): the latest run's value counts
    perf(2, 0, "auc", 0.70), perf(2, 0, "labelled_rows", 5.0),
    perf(4, 0, "auc", 0.81), perf(4, 0, "labelled_rows", 500.0),
    perf(4, 1, "auc", 0.82), perf(4, 1, "labelled_rows", 50.0),   # below min_labels
]
DECISIONS = [
    {"decision_date": day(1), "status": "armed", "onset_date": day(0), "episode_status": "open",
     "labels_available": 0, "labels_needed": 100, "fired": False, "reasons": "waiting"},
    {"decision_date": day(2), "status": "fired", "onset_date": day(0), "episode_status": "ended",
     "labels_available": 120, "labels_needed": 100, "label_days_available": 3, "label_days_needed": 3, "fired": True, "trained_version": "2", "gate_passed": True,
     "champion_version": "2", "reasons": "drift"},
    {"decision_date": day(3), "status": "no_trigger", "onset_date": None, "fired": False, "reasons": "none"},
]


def test_timeline_takes_each_windows_own_estimate_and_its_latest_realized_value_with_enough_labels() -> None:
    t = timeline(ROWS, DECISIONS, "auc", min_labels=100)
    assert t.estimated == {day(i): 0.90 + i / 100 for i in range(5)}
    assert t.realized == {day(0): (0.81, 500)}
    assert t.switches() == [(day(3), "1", "2")]
    assert [d["decision_date"] for d in t.decisions] == [day(1), day(2), day(3)]


def test_section_charts_estimates_realized_values_the_switch_and_the_episode() -> None:
    html = "\n".join(loop_section(timeline(ROWS, DECISIONS, "auc", min_labels=100)))
    assert "Closed loop: estimated vs realized auc" in html
    assert html.count("estimated auc") == 5 and "realized auc 0.8100 on 500 labels" in html
    assert f"{day(3)}: champion v1 → v2" in html
    assert f"drift episode {day(0)} .. {day(2)}" in html          # ended by the promotion
    assert "<td>armed</td>" in html and "<td>fired</td>" in html and "no_trigger" not in html
    assert "120 of 100 on 3 of 3 days" in html


def test_no_rows_no_section_and_the_report_renders_it() -> None:
    assert loop_section(timeline([], [])) == []
    from driftline.monitoring.drift import DatasetDrift
    from driftline.profiling.types import DatasetProfile

    empty = DatasetProfile(0, {})
    result = DatasetDrift(status="ok", drifted=0, evaluated=0, insufficient=0, drift_share=None, threshold=0.5,
                          fdr=0.05, columns=())
    page = render_report(model="m", version="2", date=day(4), window=(day(4), day(4)), run_id="r", reference=empty,
                         current=empty, result=result, rows=[], loop=timeline(ROWS, DECISIONS, "auc", 100))
    assert "Closed loop: estimated vs realized auc" in page


def test_the_legend_lists_only_the_series_drawn() -> None:
    from driftline.monitoring.loop_report import legend

    full = legend(timeline(ROWS, DECISIONS, "auc", min_labels=100))
    assert all(s in full for s in ("estimated before labels", "realized on matured labels", "champion switch",
                                   "drift episode"))
    one_version = [r for r in ROWS if r["model_version"] == "1"]
    bare = legend(timeline(one_version, [], "auc", min_labels=100))     # no switch, no episode
    assert "champion switch" not in bare and "drift episode" not in bare and "estimated before labels" in bare
