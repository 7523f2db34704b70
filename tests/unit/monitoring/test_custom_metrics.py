"""Custom metrics (`driftline.monitoring.custom`): values against plain ``spark.sql`` on the same rows, derived
arithmetic against Python, one-line config errors naming the metric, and the monitor rows' statuses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftline.errors import ConfigError
from driftline.monitoring.custom import (
    CUSTOM,
    CUSTOM_CHANGE,
    CustomMetricConfig,
    check_static,
    compute,
    derived_order,
    evaluate,
    parse_metrics,
    rows,
    validate,
)
from driftline.vocabulary import ALERT, INSUFFICIENT, OK

ROW_KEYS = {"column", "metric", "value", "threshold", "status", "method", "reason", "n_reference", "n_current"}
SCHEMA = "score double, plan string, flag int, b boolean, x double, user_id string, amount decimal(12, 2)"

EXPRESSIONS = {
    "pro_score": "avg(CASE WHEN plan = 'pro' THEN score END)",
    "p90": "percentile_approx(x, 0.9)",
    "flag_rate": "count_if(flag = 1) / count(*)",
    "x_sd": "stddev(x)",
    "any_b": "max(b)",
    "all_b": "min(b)",
    "users": "count(DISTINCT user_id)",
    "amount_sum": "sum(amount)",
    "null_scores": "sum(CASE WHEN score IS NULL THEN 1 ELSE 0 END)",
    "select_rate": "avg(CASE WHEN plan = 'select' THEN 1 ELSE 0 END)",
    "nothing": "avg(CASE WHEN plan = 'none' THEN score END)",
}


def _awkward_rows(n: int = 400, seed: int = 7) -> list[tuple]:
    """Nulls in every column, a 0/1 flag, a boolean, a high-cardinality string, pareto-tailed x, decimals."""
    from decimal import Decimal

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        score = None if i % 11 == 0 else float(rng.normal())
        plan = [None, "pro", "free", "select"][i % 4]
        flag = None if i % 13 == 0 else int(rng.random() < 0.3)
        b = None if i % 17 == 0 else bool(rng.random() < 0.5)
        x = None if i % 7 == 0 else float(rng.pareto(1.5) * 1e3)
        user = f"u{rng.integers(0, 10 ** 9)}"
        amount = None if i % 19 == 0 else Decimal(f"{rng.integers(0, 10 ** 6) / 100:.2f}")
        out.append((score, plan, flag, b, x, user, amount))
    return out


@pytest.fixture(scope="module")
def frame(spark):
    df = spark.createDataFrame(_awkward_rows(), SCHEMA)
    df.createOrReplaceTempView("custom_metrics_window")
    return df


def _oracle(spark, expr: str) -> float | None:
    value = spark.sql(f"SELECT {expr} AS v FROM custom_metrics_window").collect()[0]["v"]
    return None if value is None else float(value)


def _error(call, *args) -> str:
    with pytest.raises(ConfigError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


# -- values --------------------------------------------------------------------------------------------------

def test_compute_matches_plain_spark_sql(spark, frame) -> None:
    metrics = parse_metrics({name: {"sql": sql} for name, sql in EXPRESSIONS.items()})
    validate(frame, metrics)
    values = compute(frame, metrics)
    assert set(values) == set(EXPRESSIONS)
    for name, sql in EXPRESSIONS.items():
        expected = _oracle(spark, sql)
        if expected is None:
            assert values[name] is None, name
        else:
            assert values[name] == pytest.approx(expected, rel=1e-12, abs=1e-12), name
    assert values["any_b"] == 1.0 and values["all_b"] == 0.0
    assert values["nothing"] is None
    assert values["select_rate"] == pytest.approx(0.25)


def test_compute_on_an_empty_window_gives_none_not_a_failure(spark, frame) -> None:
    metrics = parse_metrics({"rate": {"sql": "count_if(flag = 1) / count(*)"}, "mean": {"sql": "avg(score)"},
                             "n": {"sql": "count(*)"}, "per_row": {"derived": "mean / n"}})
    values = compute(frame.limit(0), metrics)
    assert values == {"rate": None, "mean": None, "n": 0.0, "per_row": None}


def test_derived_metrics_follow_the_arithmetic_in_dependency_order(frame) -> None:
    raw = {
        "lift": {"derived": "pro / overall - 1"},        # listed before what it reads
        "pro": {"sql": EXPRESSIONS["pro_score"]},
        "overall": {"sql": "avg(score)"},
        "gap": {"derived": "abs(lift) * 100 + -min(pro, overall) + max(1, 2.5)"},
        "zero": {"sql": "sum(CASE WHEN plan = 'none' THEN 1 ELSE 0 END)"},
        "by_zero": {"derived": "pro / zero"},
        "from_null": {"derived": "gap + nothing"},
        "nothing": {"sql": EXPRESSIONS["nothing"]},
    }
    metrics = parse_metrics(raw)
    order = derived_order(metrics)
    assert order.index("lift") < order.index("gap") < order.index("from_null")
    values = compute(frame, metrics)
    pro, overall = values["pro"], values["overall"]
    lift = pro / overall - 1
    assert values["lift"] == pytest.approx(lift, rel=1e-15)
    assert values["gap"] == pytest.approx(abs(lift) * 100 - min(pro, overall) + 2.5, rel=1e-15)
    assert values["zero"] == 0.0 and values["by_zero"] is None and values["from_null"] is None


def test_evaluate_non_finite_and_none() -> None:
    assert evaluate("a * a", {"a": 1e200}) is None
    assert evaluate("-a", {"a": None}) is None
    assert evaluate("max(a, b, 3)", {"a": 1.0, "b": 2.0}) == 3.0


# -- static config errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "found"), [
    ({"sql": "avg(score)", "derived": "a"}, "found both"),
    ({"description": "nothing"}, "found neither"),
    ({"sql": "avg(score); DROP TABLE t"}, "found ';'"),
    ({"sql": "(SELECT max(x) FROM other)"}, "keyword SELECT"),
    ({"sql": "x FROM t"}, "keyword FROM"),
    ({"sql": "avg(x) + max(y) UNION all"}, "keyword UNION"),
    ({"sql": "max(java_method('java.lang.System', 'exit', 0))"}, "keyword JAVA_METHOD"),
    ({"sql": "max(Reflect('java.lang.Runtime', 'getRuntime'))"}, "keyword REFLECT"),
    ({"sql": "avg(x) -- comment"}, "'--'"),
    ({"sql": "avg(x) /* comment */"}, "'/*'"),
    ({"sql": "   "}, "empty"),
    ({"sql": "avg(x" + ")" * 2000}, "at most 2000"),
    ({"sql": "avg(CASE WHEN plan = 'pro THEN 1 END)"}, "unterminated string literal"),
    ({"sql": "avg(x)", "min": 2, "max": 1}, "min <= max"),
    ({"sql": "avg(x)", "max_change": -0.1}, "greater than or equal to 0"),
    ({"sql": "avg(x)", "threshold": 1}, "unknown key"),
    ({"derived": "__import__('os').system('x')"}, "found \"__import__('os')"),
    ({"derived": "other ** 2"}, "'other ** 2'"),
    ({"derived": "min(other)"}, "min() with 1 arguments"),
    ({"derived": "abs(x=other)"}, "abs(x=other)"),
])
def test_static_errors_name_the_metric_on_one_line(raw, found) -> None:
    message = _error(parse_metrics, {"other": {"sql": "avg(x)"}, "pro_score": raw})
    assert message.startswith("monitoring.custom_metrics.pro_score"), message
    assert found in message, message


def test_keywords_inside_literals_and_backticks_are_allowed() -> None:
    raw = {
        "a": {"sql": "avg(CASE WHEN plan = 'select' THEN 1 ELSE 0 END)"},
        "b": {"sql": 'count_if(plan = "drop table, from")'},
        "c": {"sql": "max(`from`) + count_if(plan = 'it\\'s -- /* with')"},
        "d": {"sql": "sum(from_date_days)"},   # a word boundary, not FROM
    }
    parsed = parse_metrics(raw)
    assert {name: m.sql for name, m in parsed.items()} == {name: r["sql"] for name, r in raw.items()}
    assert all(m.method == "sql" for m in parsed.values())


def test_derived_unknown_name_self_reference_and_cycle() -> None:
    message = _error(parse_metrics, {"a": {"sql": "avg(x)"}, "ratio": {"derived": "a / missing"}})
    assert "monitoring.custom_metrics.ratio" in message and "unknown name missing" in message
    assert "(a)" in message  # the known names
    message = _error(parse_metrics, {"loop": {"derived": "loop + 1"}})
    assert "monitoring.custom_metrics.loop" in message and "itself" in message
    message = _error(parse_metrics, {"a": {"derived": "b * 2"}, "b": {"derived": "a / 2"}, "c": {"sql": "avg(x)"}})
    assert "monitoring.custom_metrics.a" in message and "a -> b -> a" in message
    metrics = {"a": CustomMetricConfig(derived="b"), "b": CustomMetricConfig(derived="c"),
               "c": CustomMetricConfig(derived="a + 1")}
    assert "a -> b -> c -> a" in _error(check_static, metrics)


# -- Spark analysis ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sql", "found"), [
    ("avg(plann)", "plann"),
    ("score + 1", "non-aggregate"),
    ("1.5", "non-aggregate"),
    ("avg(score) OVER ()", "non-aggregate"),
    ("max(plan)", "found type string"),
    ("avg(score", "PARSE_SYNTAX_ERROR"),
    ("avg(score), max(score)", "PARSE_SYNTAX_ERROR"),
])
def test_validate_refuses_with_one_line_naming_the_metric(frame, sql, found) -> None:
    metrics = {"ok_metric": CustomMetricConfig(sql="avg(score)"), "pro_score": CustomMetricConfig(sql=sql)}
    message = _error(validate, frame, metrics)
    assert message.startswith("monitoring.custom_metrics.pro_score: expected an aggregate Spark SQL expression")
    assert found in message, message
    assert len(message) < 500


def test_validate_refuses_subqueries_behind_the_static_check(spark, frame) -> None:
    # Built without the config validator: the analysed plan is checked too.
    for sql in ("avg(score) + (SELECT max(score) FROM custom_metrics_window)",
                "max(score) FILTER (WHERE score IN (SELECT score FROM custom_metrics_window))"):
        metric = CustomMetricConfig.model_construct(sql=sql, derived=None, min=None, max=None, max_change=None,
                                                    description="")
        message = _error(validate, frame, {"sneaky": metric})
        assert "monitoring.custom_metrics.sneaky" in message and "subquery" in message, message


def test_validate_accepts_good_expressions_without_running_a_job(spark, frame) -> None:
    metrics = parse_metrics({name: {"sql": sql} for name, sql in EXPRESSIONS.items()}
                            | {"d": {"derived": "p90 - x_sd"}})
    status = spark.sparkContext.statusTracker()
    before = len(status.getJobIdsForGroup(None))
    validate(frame, metrics)
    assert len(status.getJobIdsForGroup(None)) == before
    compute(frame, metrics)   # the tracker does see jobs
    assert len(status.getJobIdsForGroup(None)) > before


# -- monitor rows --------------------------------------------------------------------------------------------

def test_rows_statuses_and_change() -> None:
    metrics = parse_metrics({
        "inside": {"sql": "avg(x)", "min": 0.1, "max": 0.8},
        "above": {"sql": "avg(x)", "max": 0.8},
        "below": {"sql": "avg(x)", "min": 0.1, "max": 0.8},
        "unset": {"sql": "avg(x)"},
        "null": {"sql": "avg(x)", "min": 0.0},
        "drifted": {"derived": "inside * 2", "max_change": 0.1},
        "steady": {"sql": "avg(x)", "max_change": 0.1},
        "no_ref": {"sql": "avg(x)", "max_change": 0.1},
    })
    values = {"inside": 0.5, "above": 0.9, "below": 0.05, "unset": 3.0, "null": None, "drifted": 1.0,
              "steady": 0.45, "no_ref": 0.2}
    reference = {"unset": 2.5, "null": 1.0, "drifted": 0.8, "steady": 0.5}
    out = rows(values, metrics, reference, n_current=120, n_reference=900, reference_note="reference window empty")
    assert all(set(r) == ROW_KEYS for r in out)
    own = {r["metric"]: r for r in out if r["column"] == CUSTOM}
    change = {r["metric"]: r for r in out if r["column"] == CUSTOM_CHANGE}
    assert list(own) == list(metrics)
    assert (own["inside"]["status"], own["inside"]["threshold"], own["inside"]["reason"]) == (OK, 0.8, None)
    assert (own["above"]["status"], own["above"]["threshold"], own["above"]["reason"]) == (ALERT, 0.8, "above max 0.8")
    assert (own["below"]["status"], own["below"]["threshold"], own["below"]["reason"]) == (ALERT, 0.1, "below min 0.1")
    assert (own["unset"]["status"], own["unset"]["threshold"]) == (OK, None)
    assert own["null"]["status"] == INSUFFICIENT and "null" in own["null"]["reason"]
    assert own["drifted"]["method"] == "derived" and own["inside"]["method"] == "sql"
    assert own["inside"]["n_current"] == 120 and own["inside"]["n_reference"] is None

    assert set(change) == {"unset", "null", "drifted", "steady", "no_ref"}   # max_change set or a reference known
    assert change["unset"]["value"] == pytest.approx(0.5) and change["unset"]["status"] == OK
    assert change["unset"]["threshold"] is None
    assert change["drifted"]["value"] == pytest.approx(0.2) and change["drifted"]["status"] == ALERT
    assert change["drifted"]["threshold"] == 0.1 and "max_change" in change["drifted"]["reason"]
    assert change["steady"]["value"] == pytest.approx(-0.05) and change["steady"]["status"] == OK
    assert change["no_ref"]["status"] == INSUFFICIENT and change["no_ref"]["value"] is None
    assert change["no_ref"]["reason"] == "no reference value: reference window empty"
    assert change["null"]["status"] == INSUFFICIENT and change["null"]["reason"].startswith("no current value")
    assert change["drifted"]["n_reference"] == 900 and change["drifted"]["n_current"] == 120


def test_rows_empty_window_and_non_finite() -> None:
    metrics = parse_metrics({"m": {"sql": "avg(x)", "max": 1.0, "max_change": 0.5}})
    out = rows({"m": None}, metrics, {}, n_current=0, n_reference=None, reference_note=None)
    assert [r["status"] for r in out] == [INSUFFICIENT, INSUFFICIENT]
    assert out[0]["reason"] == "no rows in the window" and out[0]["threshold"] == 1.0
    assert out[1]["reason"].startswith("no reference value")
    out = rows({"m": math.inf}, metrics, {"m": 0.2}, n_current=5, n_reference=7)
    assert out[0]["value"] is None and out[0]["status"] == INSUFFICIENT


def test_reference_values_come_from_the_training_rows_when_stored_with_todays_text_else_from_the_sample(
        spark) -> None:
    import json

    import pandas as pd

    from driftline.monitoring.custom import CustomMetricConfig
    from driftline.monitoring.custom_reference import at_training, reference_values

    metrics = {"m": CustomMetricConfig(sql="avg(x)"), "d": CustomMetricConfig(derived="m * 2")}
    training = spark.createDataFrame(pd.DataFrame({"x": [1.0, 2.0, 6.0]}))
    doc = json.loads(at_training(training, 3, metrics) or "")
    assert doc == {"rows": 3, "metrics": {"m": {"sql": "avg(x)", "value": 3.0}}}
    sample = pd.DataFrame({"x": [10.0, 20.0]})
    stored = reference_values(spark, metrics, doc, sample)
    assert (dict(stored.values), stored.rows, stored.note) == ({"m": 3.0, "d": 6.0}, 3, None)
    changed = {**metrics, "m": CustomMetricConfig(sql="avg(x) + 0")}
    fallback = reference_values(spark, changed, doc, sample)
    assert (dict(fallback.values), fallback.rows) == ({"m": 15.0, "d": 30.0}, 2)
    assert "added or changed since the version was trained" in (fallback.note or "")
    none = reference_values(spark, metrics, None, None)
    assert (dict(none.values), none.rows) == ({}, None) and "no stored reference sample" in (none.note or "")
