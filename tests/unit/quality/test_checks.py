"""Data-quality checks: each kind passing and failing, quarantine reasons, the gate, spec validation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from chispa import assert_df_equality
from pydantic import ValidationError
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from driftline.errors import QualityGateError
from driftline.quality.checks import (
    ContractCheck,
    InputPresentCheck,
    aggregate_violations,
    freshness_results,
    gate,
    input_present_results,
    row_count_results,
    row_results,
    schema_results,
    with_violations,
)
from driftline.quality.quarantine import quarantine_rows
from driftline.quality.spec import QualityConfig
from driftline.tables.contracts import QUARANTINE

D1, D2 = dt.date(2026, 2, 1), dt.date(2026, 2, 2)
SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType(), True),
    T.StructField("as_of_date", T.DateType(), True),
    T.StructField("amount", T.DoubleType(), True),
    T.StructField("channel", T.StringType(), True),
])
ROWS = [
    ("a", D1, 10.0, "web"),
    ("b", D1, -1.0, "fax"),    # out of range, not allowed
    ("c", D1, None, None),     # nulls: fail not_null, pass range/allowed_values
    ("c", D1, 5.0, "app"),     # duplicate key c on D1
    ("a", D2, 20.0, "app"),    # D2 is clean
]


def checks(*specs: dict[str, Any]) -> list[Any]:
    return list(QualityConfig.model_validate({"checks": list(specs)}).checks)


def evaluate(spark: SparkSession, specs: list[Any]) -> tuple[Any, list[Any]]:
    df = with_violations(spark.createDataFrame(ROWS, SCHEMA), specs, "as_of_date")
    stats = aggregate_violations(df, specs, "as_of_date")
    return df, row_results(specs, stats, [D1, D2], "rows")


@pytest.mark.parametrize("spec, bad_on_d1", [
    ({"kind": "not_null", "target": "features", "columns": ["amount", "channel"]}, 1),
    ({"kind": "range", "target": "features", "column": "amount", "min": 0, "max": 100}, 1),
    ({"kind": "range", "target": "features", "column": "amount", "min": 6}, 2),
    ({"kind": "allowed_values", "target": "features", "column": "channel", "values": ["web", "app"]}, 1),
    ({"kind": "unique", "target": "features", "columns": ["customer_id"]}, 2),
])
def test_row_checks_fail_on_violations_and_pass_on_clean_dates(spark: SparkSession, spec: dict[str, Any],
                                                               bad_on_d1: int) -> None:
    _, results = evaluate(spark, checks(spec))
    by_date = {r.as_of_date: r for r in results}
    assert (by_date[D1].status, by_date[D1].observed, by_date[D1].upper) == ("alert", bad_on_d1 / 4, 0.0)
    assert (by_date[D2].status, by_date[D2].observed) == ("ok", 0.0)
    assert f"{bad_on_d1} of 4 rows" in by_date[D1].message


def test_max_fraction_and_warn_severity(spark: SparkSession) -> None:
    spec = checks({"kind": "not_null", "target": "features", "columns": ["amount"], "max_fraction": 0.25},
                  {"kind": "not_null", "target": "features", "columns": ["channel"], "severity": "warn",
                   "name": "channel_present"})
    _, results = evaluate(spark, spec)
    d1 = {r.check: r.status for r in results if r.as_of_date == D1}
    assert d1 == {"not_null_features_amount": "ok", "channel_present": "warn"}
    gate(results)  # warnings never stop the run


def test_quarantine_rows_carry_reasons(spark: SparkSession) -> None:
    spec = checks({"kind": "range", "target": "features", "column": "amount", "min": 0},
                  {"kind": "allowed_values", "target": "features", "column": "channel", "values": ["web", "app"]},
                  {"kind": "not_null", "target": "features", "columns": ["amount"]})
    df, _ = evaluate(spark, spec)
    out = quarantine_rows(df, spec, target="features", key="customer_id", columns=["customer_id", "amount"],
                          run_id="r1", model="m", config_hash="h", code_version="v")
    expected = spark.createDataFrame([
        ("m", D1, "features", "range_features_amount", "amount = -1.0 outside [0, inf]", "b",
         '{"customer_id":"b","amount":-1.0}', "r1", "v", "h"),
        ("m", D1, "features", "allowed_values_features_channel", "channel = 'fax' not in ['web', 'app']", "b",
         '{"customer_id":"b","amount":-1.0}', "r1", "v", "h"),
        ("m", D1, "features", "not_null_features_amount", "amount is null", "c", '{"customer_id":"c"}', "r1", "v",
         "h"),
    ], QUARANTINE.schema())
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_schema_contract_lists_expected_and_found() -> None:
    schema = T.StructType([T.StructField("customer_id", T.StringType()), T.StructField("amount", T.StringType())])
    check = checks({"kind": "schema", "target": "events",
                    "columns": {"customer_id": "string", "amount": "double", "event_ts": "timestamp"}})[0]
    (res,) = schema_results(check, schema, [D1])
    assert res.status == "alert" and res.observed == 2.0
    assert "amount: expected double, found string" in res.message
    assert "event_ts: expected timestamp, found no such column" in res.message
    (ok,) = schema_results(ContractCheck("events", {"customer_id": None, "amount": ("string", "double")}), schema,
                           [D1])
    assert ok.status == "ok"


def test_row_count_against_history() -> None:
    spec = checks({"kind": "row_count", "target": "features", "min_rows": 5, "history": 3, "min_history": 2,
                   "min_ratio": 0.5, "max_ratio": 2.0})[0]
    history = {dt.date(2026, 1, 29): 100, dt.date(2026, 1, 30): 100, dt.date(2026, 1, 31): 130,
               dt.date(2026, 1, 20): 1}
    got = row_count_results(spec, {D1: 110, D2: 300}, history, [D1, D2], "rows")
    assert [(r.status, r.observed, r.lower, r.upper) for r in got] == [
        ("ok", 110.0, 55.0, 220.0), ("alert", 300.0, 55.0, 220.0)]
    skipped = row_count_results(spec, {D1: 3}, {}, [D1], "rows")[0]
    assert skipped.status == "alert" and "ratio not checked" in skipped.message  # min_rows still applies
    no_history = row_count_results(spec, {D1: 50}, {}, [D1], "rows")[0]
    assert no_history.status == "ok" and no_history.upper is None


def test_freshness_and_input_present() -> None:
    spec = checks({"kind": "freshness", "target": "events", "max_age_hours": 6})[0]
    at = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    got = freshness_results(spec, {D1: at - dt.timedelta(hours=5), D2: at - dt.timedelta(hours=1)}, [D1, D2])
    assert [(r.status, r.observed) for r in got] == [("ok", 5.0), ("alert", 25.0)]
    assert freshness_results(spec, {}, [D1])[0].status == "alert"
    present = input_present_results(InputPresentCheck("error"), {D1: 3}, [D1, D2])
    assert [r.status for r in present] == ["ok", "alert"]
    assert "0 events on input day 2026-02-01" in present[1].message
    assert input_present_results(InputPresentCheck("warn"), {}, [D1])[0].status == "warn"


def test_gate_raises_with_expected_and_found(spark: SparkSession) -> None:
    _, results = evaluate(spark, checks({"kind": "range", "target": "features", "column": "amount", "min": 0}))
    with pytest.raises(QualityGateError, match="range_features_amount on 2026-02-01: .*1 of 4 rows") as err:
        gate(results)
    assert err.value.exit_code == 3


@pytest.mark.parametrize("bad, message", [
    ({"kind": "range", "target": "events", "column": "x"}, "needs min, max or both"),
    ({"kind": "range", "target": "events", "column": "x", "min": 3, "max": 1}, "expected min <= max"),
    ({"kind": "not_null", "target": "features", "columns": ["x"], "drop": True}, "only events can be dropped"),
    ({"kind": "schema", "target": "events", "columns": {"x": "text"}}, "expected Spark type names"),
    ({"kind": "nope", "target": "events"}, "does not match any of the expected tags"),
    ({"kind": "not_null", "target": "events", "columns": ["x"], "severity": "fatal"}, "Input should be"),
    ({"kind": "not_null", "target": "events", "columns": ["x"], "colour": 1}, "Extra inputs"),
])
def test_check_spec_validation(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        QualityConfig.model_validate({"checks": [bad]})
