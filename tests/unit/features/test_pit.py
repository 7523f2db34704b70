"""Point-in-time feature computation on plain DataFrames: semantics, aggregates vs pandas, time zones."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pydantic import ValidationError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from driftline.errors import ConfigError
from driftline.features.compile import compile_features
from driftline.features.pit import compute_features
from driftline.features.spec import FeatureSpec, SourcesConfig

U = dt.UTC
D = dt.date(2026, 1, 10)

EVENTS_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType(), True),
    T.StructField("event_ts", T.TimestampType(), True),
    T.StructField("amount", T.DoubleType(), True),
    T.StructField("channel", T.StringType(), True),
])
ENTITY_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType(), True),
    T.StructField("valid_from", T.DateType(), True),
    T.StructField("valid_to", T.DateType(), True),
    T.StructField("plan", T.StringType(), True),
])

SOURCES = {
    "events": {"table": "ev", "key": "customer_id", "timestamp": "event_ts"},
    "entities": {"table": "cu", "key": "customer_id", "valid_from": "valid_from", "valid_to": "valid_to"},
    "labels": {"table": "lb", "key": "customer_id", "timestamp": "label_ts", "value": "churned"},
}


def plan_of(features: list[dict[str, Any]], **sources: Any) -> Any:
    src = SourcesConfig.model_validate({**SOURCES, **sources})
    return compile_features("customer_id", src, [FeatureSpec.model_validate(f) for f in features])


def ts(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=U)


# Events around the midnight of D (2026-01-10) and the edges of a 7-day window [01-03, 01-09].
EDGE_EVENTS = [
    ("a", ts(2026, 1, 9, 23, 59, 59), 10.0, "web"),   # last second before D: in D's row
    ("a", ts(2026, 1, 10, 0, 0, 0), 99.0, "app"),     # exactly D 00:00: NOT in D's row (only in D+1)
    ("a", ts(2026, 1, 3, 0, 0, 0), 5.0, "app"),       # first instant of the 7d window: in
    ("a", ts(2026, 1, 2, 23, 59, 59), 7.0, None),     # last instant before the 7d window: out of 7d, in 30d
    ("b", ts(2026, 1, 8, 12, 0, 0), None, "web"),     # null amount
    (None, ts(2026, 1, 8, 12, 0, 0), 1.0, "web"),     # null key: belongs to no entity
    ("c", None, 3.0, "web"),                          # null timestamp: never in any window
]
ENTITIES = [
    ("a", dt.date(2025, 1, 1), None, "gold"),
    ("b", dt.date(2025, 1, 1), dt.date(2026, 1, 10), "basic"),   # valid_to is exclusive
    ("b", dt.date(2026, 1, 10), None, "free"),                    # effective on D
    ("d", dt.date(2025, 1, 1), None, None),                       # no events at all
]
EDGE_FEATURES = [
    {"name": "n7", "kind": "aggregate", "agg": "count", "window": "7d"},
    {"name": "n30", "kind": "aggregate", "agg": "count", "window": "30d"},
    {"name": "s7", "kind": "aggregate", "agg": "sum", "column": "amount", "window": "7d"},
    {"name": "mx7", "kind": "aggregate", "agg": "max", "column": "amount", "window": "7d"},
    {"name": "last7", "kind": "aggregate", "agg": "last", "column": "channel", "window": "7d"},
    {"name": "dsl", "kind": "aggregate", "agg": "days_since_last", "window": "30d"},
    {"name": "plan", "kind": "attribute", "column": "plan", "categorical": True},
    {"name": "trend", "kind": "ratio", "numerator": "n7", "denominator": "n30"},
    {"name": "busy", "kind": "flag", "column": "n7", "op": "ge", "value": 2},
]
EDGE_OUT = T.StructType([
    T.StructField("customer_id", T.StringType(), True),
    T.StructField("as_of_date", T.DateType(), True),
    T.StructField("n7", T.LongType(), True),
    T.StructField("n30", T.LongType(), True),
    T.StructField("s7", T.DoubleType(), True),
    T.StructField("mx7", T.DoubleType(), True),
    T.StructField("last7", T.StringType(), True),
    T.StructField("dsl", T.DoubleType(), True),
    T.StructField("plan", T.StringType(), True),
    T.StructField("trend", T.DoubleType(), True),
    T.StructField("busy", T.BooleanType(), True),
])
D1 = D + dt.timedelta(days=1)
EDGE_EXPECTED = [
    ("a", D, 2, 3, 15.0, 10.0, "web", 1 / 86400, "gold", 2 / 3, True),
    ("b", D, 1, 1, 0.0, None, "web", 1.5, "free", 1.0, False),
    ("a", D1, 2, 4, 109.0, 99.0, "app", 1.0, "gold", 0.5, True),
    ("b", D1, 1, 1, 0.0, None, "web", 2.5, "free", 1.0, False),
]


@pytest.fixture
def edge(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    return spark.createDataFrame(EDGE_EVENTS, EVENTS_SCHEMA), spark.createDataFrame(ENTITIES, ENTITY_SCHEMA)


def test_point_in_time_midnight_and_window_edges(spark: SparkSession, edge: tuple[DataFrame, DataFrame]) -> None:
    events, entities = edge
    out = compute_features(plan_of(EDGE_FEATURES), events, entities, [D, D1])
    assert_approx_df_equality(out, spark.createDataFrame(EDGE_EXPECTED, EDGE_OUT), 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_event_on_d_itself_never_changes_ds_row(spark: SparkSession, edge: tuple[DataFrame, DataFrame]) -> None:
    events, entities = edge
    plan = plan_of(EDGE_FEATURES)
    later = events.unionByName(spark.createDataFrame(
        [("a", ts(2026, 1, 10, 0, 0, 0), 1e6, "phone"), ("b", ts(2026, 1, 10, 23, 0, 0), 5.0, "app"),
         ("e", ts(2026, 1, 10, 8, 0, 0), 1.0, "web")], EVENTS_SCHEMA))
    assert_df_equality(compute_features(plan, later, entities, [D]), compute_features(plan, events, entities, [D]),
                       ignore_row_order=True)


def test_population_active_uses_entity_rows_valid_as_of_d(spark: SparkSession,
                                                           edge: tuple[DataFrame, DataFrame]) -> None:
    events, entities = edge
    plan = plan_of([EDGE_FEATURES[0], EDGE_FEATURES[6]], population={"rule": "active"})
    out = compute_features(plan, events, entities, [D, dt.date(2026, 1, 9)])
    schema = T.StructType([EDGE_OUT["customer_id"], EDGE_OUT["as_of_date"], EDGE_OUT["n7"], EDGE_OUT["plan"]])
    d0 = dt.date(2026, 1, 9)
    expected = [("a", D, 2, "gold"), ("b", D, 1, "free"), ("d", D, 0, None),
                ("a", d0, 2, "gold"), ("b", d0, 1, "basic"), ("d", d0, 0, None)]
    assert_df_equality(out, spark.createDataFrame(expected, schema), ignore_row_order=True, ignore_nullable=True)


def test_seen_population_lookback_excludes_older_entities(spark: SparkSession,
                                                          edge: tuple[DataFrame, DataFrame]) -> None:
    events, entities = edge
    plan = plan_of([EDGE_FEATURES[0]], population={"rule": "seen", "lookback": "2d"})
    out = compute_features(plan, events, entities, [D])  # seen on 01-08 or 01-09 only: a (01-09), b (01-08)
    assert sorted(r.customer_id for r in out.collect()) == ["a", "b"]
    plan1 = plan_of([EDGE_FEATURES[0]], population={"rule": "seen", "lookback": "1d"})
    assert [r.customer_id for r in compute_features(plan1, events, entities, [D]).collect()] == ["a"]


def double_spend(df: DataFrame) -> DataFrame:
    """Custom feature used by the escape-hatch test (module-level so the config can name it)."""
    return df.withColumn("double_s7", F.col("s7") * 2)


def test_custom_function_escape_hatch(spark: SparkSession, edge: tuple[DataFrame, DataFrame]) -> None:
    events, entities = edge
    feats = [EDGE_FEATURES[2], {"name": "double_s7", "kind": "custom", "function": f"{__name__}:double_spend"}]
    out = compute_features(plan_of(feats), events, entities, [D]).select("customer_id", "double_s7")
    schema = T.StructType([EDGE_OUT["customer_id"], T.StructField("double_s7", T.DoubleType(), True)])
    assert_df_equality(out, spark.createDataFrame([("a", 30.0), ("b", 0.0)], schema), ignore_row_order=True, ignore_nullable=True)


# --------------------------------------------------------------------------- aggregates vs pandas

AGGS = ["count", "sum", "mean", "min", "max", "stddev", "distinct_count", "last", "days_since_last"]


def _generated_events() -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i in range(240):
        key = f"k{i % 7}"
        when = ts(2025, 12, 1) + dt.timedelta(minutes=97 * i * 7 + (i * 37) % 1440)
        amount = None if i % 11 == 0 else float((i * 53) % 97) - 20.0
        channel = None if i % 13 == 0 else ["web", "app", "store"][(i * 5) % 3]
        rows.append((key, when, amount, channel))
    return rows


def _pandas_features(events: pd.DataFrame, dates: list[dt.date], window: int) -> pd.DataFrame:
    """Independent reference: filter the raw events of each (entity, D) window and aggregate with pandas."""
    out = []
    for d in dates:
        end = pd.Timestamp(d, tz="UTC")
        frame = events[(events.event_ts >= end - pd.Timedelta(days=window)) & (events.event_ts < end)]
        for key, g in frame.groupby("customer_id"):
            g = g.sort_values("event_ts")
            last_ok = g[g.channel.notna()]
            amounts = g.amount.dropna()
            out.append({
                "customer_id": key, "as_of_date": d,
                "count": len(g),
                "sum": float(amounts.sum()),
                "mean": amounts.mean() if len(amounts) else None,
                "min": amounts.min() if len(amounts) else None,
                "max": amounts.max() if len(amounts) else None,
                "stddev": amounts.std(ddof=1) if len(amounts) > 1 else None,
                "distinct_count": int(g.channel.dropna().nunique()),
                "last": last_ok.channel.iloc[-1] if len(last_ok) else None,
                "days_since_last": (end - g.event_ts.max()).total_seconds() / 86400,
            })
    return pd.DataFrame(out)


@pytest.mark.parametrize("window", [3, 10])
def test_each_aggregate_matches_pandas(spark: SparkSession, window: int) -> None:
    rows = _generated_events()
    events = spark.createDataFrame(rows, EVENTS_SCHEMA)
    feats = [{"name": a, "kind": "aggregate", "agg": a, "window": f"{window}d",
              **({"column": "channel" if a in ("distinct_count", "last") else "amount"}
                 if a not in ("count", "days_since_last") else {})} for a in AGGS]
    dates = [dt.date(2025, 12, 20), dt.date(2025, 12, 29), dt.date(2026, 1, 3)]
    plan = plan_of(feats, population={"rule": "seen", "lookback": f"{window}d"})
    out = compute_features(plan, events, None, dates)

    pdf = pd.DataFrame(rows, columns=["customer_id", "event_ts", "amount", "channel"])
    pdf["event_ts"] = pd.to_datetime(pdf.event_ts, utc=True)
    ref = _pandas_features(pdf, dates, window).astype(object).where(lambda x: x.notna(), None)
    assert len(ref) > 10
    expected = spark.createDataFrame([tuple(r) for r in ref[["customer_id", "as_of_date", *AGGS]].itertuples(
        index=False)], out.schema)
    assert_approx_df_equality(out, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


# --------------------------------------------------------------------------- R24: time zones


@pytest.fixture
def new_york(spark: SparkSession) -> Iterator[None]:
    """Session and process time zone America/New_York for one test (restored afterwards)."""
    old_session = spark.conf.get("spark.sql.session.timeZone")
    old_tz = os.environ.get("TZ")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        spark.conf.set("spark.sql.session.timeZone", old_session)
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz
        time.tzset()


def test_windows_are_utc_whatever_the_time_zone_dst_day(spark: SparkSession, new_york: None) -> None:
    # 2026-03-08 is the US spring-forward day: local days are 23 h long there, UTC days never.
    rows = [("a", ts(2026, 3, 7, 23, 30), 1.0, "web"), ("a", ts(2026, 3, 8, 4, 30), 2.0, "web"),
            ("a", ts(2026, 3, 8, 23, 59, 59), 4.0, "app"), ("a", ts(2026, 3, 9, 0, 0), 8.0, "app"),
            ("b", ts(2026, 3, 1, 6, 0), None, None)]
    feats = [{"name": "n1", "kind": "aggregate", "agg": "count", "window": "1d"},
             {"name": "s1", "kind": "aggregate", "agg": "sum", "column": "amount", "window": "1d"},
             {"name": "dsl", "kind": "aggregate", "agg": "days_since_last", "window": "10d"}]
    d8, d9, d10 = dt.date(2026, 3, 8), dt.date(2026, 3, 9), dt.date(2026, 3, 10)
    out = compute_features(plan_of(feats), spark.createDataFrame(rows, EVENTS_SCHEMA), None, [d8, d9, d10])
    schema = T.StructType([EDGE_OUT["customer_id"], EDGE_OUT["as_of_date"], T.StructField("n1", T.LongType()),
                           T.StructField("s1", T.DoubleType()), T.StructField("dsl", T.DoubleType())])
    expected = [("a", d8, 1, 1.0, 1 / 48), ("a", d9, 2, 6.0, 1 / 86400), ("a", d10, 1, 8.0, 1.0),
                ("b", d8, 0, 0.0, 6.75), ("b", d9, 0, 0.0, 7.75), ("b", d10, 0, 0.0, 8.75)]
    assert_approx_df_equality(out, spark.createDataFrame(expected, schema), 1e-12, ignore_row_order=True,
                              ignore_nullable=True)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("bad, message", [
    ({"name": "x", "kind": "aggregate", "agg": "sum", "window": "7d"}, "needs a column"),
    ({"name": "x", "kind": "aggregate", "agg": "count", "window": "7 days"}, "expected a window like"),
    ({"name": "x", "kind": "ratio", "numerator": "a"}, "needs denominator"),
    ({"name": "x", "kind": "flag", "column": "a", "op": "gt"}, "needs a value"),
    ({"name": "x", "kind": "attribute", "column": "plan", "window": "7d"}, "does not use window"),
    ({"name": "x", "kind": "custom", "function": "not a ref"}, "package.module:function"),
    ({"name": "x", "kind": "aggregate", "agg": "count", "window": "7d", "colour": "red"}, "Extra inputs"),
])
def test_feature_spec_validation(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FeatureSpec.model_validate(bad)


def test_compile_rejects_forward_refs_label_names_and_missing_functions() -> None:
    with pytest.raises(ConfigError, match="declared before it, found unknown later"):
        plan_of([{"name": "r", "kind": "ratio", "numerator": "later", "denominator": "later"},
                 {"name": "later", "kind": "aggregate", "agg": "count", "window": "7d"}])
    with pytest.raises(ConfigError, match="expected a name other than"):
        plan_of([{"name": "churned", "kind": "aggregate", "agg": "count", "window": "7d"}])
    with pytest.raises(ConfigError, match="cannot import module"):
        plan_of([{"name": "c", "kind": "custom", "function": "no_such_module_xyz:f"}])


def test_labels_table_can_never_be_a_feature_source() -> None:
    with pytest.raises(ValidationError, match="labels must never be visible to features"):
        SourcesConfig.model_validate({**SOURCES, "labels": {**SOURCES["labels"], "table": "ev"}})
    with pytest.raises(ValidationError, match="needs an entities source"):
        SourcesConfig.model_validate({"events": SOURCES["events"], "population": {"rule": "active"}})
