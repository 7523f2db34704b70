"""The report's trends: which metric each column plots, and the SVG drawn from the points."""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest

from driftline.monitoring.report import STATUS_COLOURS, TrendPoint, trend_points, trend_svg

D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)


def row(day, column, metric, value, method=None, threshold=None, status="ok"):
    return dict(run_date=day, column=column, metric=metric, method=method, value=value, threshold=threshold,
                status=status)


def test_each_column_plots_its_decision_metric_of_the_day_and_the_last_row_wins() -> None:
    rows = [
        row(D2, "x", "ks_pvalue", 0.01, "ks", 0.05, "alert"), row(D2, "x", "psi", 0.3, "ks", None),
        row(D1, "x", "wasserstein_norm", 0.02, "wasserstein", 0.1), row(D1, "x", "ks_pvalue", 0.4, "wasserstein"),
        row(D1, "__dataset__", "drift_share", 0.0, None, 0.5), row(D1, "__dataset__", "drifted_columns", 0.0),
        row(D1, "__performance__", "auc", 0.8), row(D1, "__performance__", "brier", 0.2),
        row(D2, "x", "drift", 1.0, "ks", 0.05, "alert"),
        row(D2, "x", "ks_pvalue", 0.02, "ks", 0.05, "alert"),       # a later row of the same day replaces it
    ]
    got = trend_points(rows)
    assert got == {
        "x": [TrendPoint(D1, "wasserstein_norm", 0.02, 0.1, "ok"), TrendPoint(D2, "ks_pvalue", 0.02, 0.05, "alert")],
        "__dataset__": [TrendPoint(D1, "drift_share", 0.0, 0.5, "ok")],
        "__performance__": [TrendPoint(D1, "auc", 0.8, None, "ok")],
    }


def test_trend_svg_draws_one_dot_per_finite_value_coloured_by_status_and_the_threshold_line() -> None:
    points = [TrendPoint(D1, "psi", 0.05, 0.2, "ok"), TrendPoint(D2, "psi", None, 0.2, "insufficient_data"),
              TrendPoint(D3, "psi", 0.4, 0.2, "alert")]
    svg = trend_svg(points)
    dots = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="3" fill="([^"]+)"><title>([^<]+)</title>', svg)
    assert [(d[2], d[3]) for d in dots] == [
        (STATUS_COLOURS["ok"], "2026-03-01 psi 0.05 (threshold 0.2): ok"),
        (STATUS_COLOURS["alert"], "2026-03-03 psi 0.4 (threshold 0.2): alert")]
    (x1, y1), (x3, y3) = [(float(d[0]), float(d[1])) for d in dots]
    assert x1 < x3 and y3 < y1                                      # later to the right, bigger value higher up
    assert 'stroke-dasharray="4 3"' in svg and svg.count("<polyline") == 2
    assert trend_svg([TrendPoint(D1, "psi", None, 0.2, "insufficient_data")]) == '<span class="muted">no values</span>'


def test_p_values_are_charted_on_a_log_scale_and_the_run_dates_are_labelled() -> None:
    points = [TrendPoint(D1, "ks_pvalue", 0.5, 0.05, "ok"), TrendPoint(D2, "ks_pvalue", 1e-3, 0.05, "alert"),
              TrendPoint(D3, "ks_pvalue", 1e-40, 0.05, "alert")]
    svg = trend_svg(points)
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    # log10: 0.5 → -0.3, 1e-3 → -3, 1e-40 → -40: the first two are apart (on a linear axis 0.001 sat on 1e-40)
    top, bottom = min(ys), max(ys)
    span = math.log10(0.5) - math.log10(1e-40)
    assert (ys[1] - ys[0]) / (bottom - top) == pytest.approx((math.log10(0.5) - math.log10(1e-3)) / span, abs=1e-2)
    assert "log scale" in svg and f">{D1}</text>" in svg and f">{D3}</text>" in svg
    assert "log scale" not in trend_svg([TrendPoint(D1, "psi", 0.05, 0.2, "ok"), TrendPoint(D2, "psi", 0.3, 0.2,
                                                                                            "alert")])


def test_the_evidently_page_gets_a_document_title_not_an_svg_one() -> None:
    from driftline.monitoring.evidently_page import with_title

    page = ('<!DOCTYPE html><html><head>\n<meta charset="UTF-8"></head><body><script>var s = "<svg><title>logo'
            '</title></svg>";</script><header>x</header></body></html>')
    got = with_title(page, "driftline · jt 2026-03-01 <drift>")
    assert got.startswith('<!DOCTYPE html><html><head><title>driftline · jt 2026-03-01 &lt;drift&gt;</title>')
    assert "<svg><title>logo</title></svg>" in got
    titled = with_title(got, "again")
    assert titled.count("<title>again</title>") == 1 and "<title>driftline" not in titled
