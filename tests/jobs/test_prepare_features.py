"""prepare_features end to end through the shared runner: tables, exit codes, idempotency, the gate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from driftline.cli.runner import run_job
from driftline.tables import CommitInfo, open_store
from driftline.tables.spec import StorageConfig

U = dt.UTC
D1, D2 = dt.date(2026, 3, 9), dt.date(2026, 3, 10)
pytestmark = pytest.mark.both_backends

EVENTS_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType(), True),
    T.StructField("event_ts", T.TimestampType(), True),
    T.StructField("amount", T.DoubleType(), True),
    T.StructField("channel", T.StringType(), True),
])
CUSTOMERS_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType(), True),
    T.StructField("valid_from", T.DateType(), True),
    T.StructField("valid_to", T.DateType(), True),
    T.StructField("plan", T.StringType(), True),
])
LABELS_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType(), True),
    T.StructField("label_ts", T.TimestampType(), True),
    T.StructField("churned", T.IntegerType(), True),
])

EVENTS = [
    ("a", dt.datetime(2026, 3, 8, 23, 59, 59, tzinfo=U), 10.0, "web"),
    ("a", dt.datetime(2026, 3, 9, 0, 0, 0, tzinfo=U), 30.0, "app"),   # on D1: only in D2's row
    ("a", dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=U), 5.0, "web"),   # D1 - 8 days: outside 7d of D1
    ("b", dt.datetime(2026, 3, 8, 6, 0, 0, tzinfo=U), None, "store"),  # null amount
    ("b", dt.datetime(2026, 3, 9, 18, 0, 0, tzinfo=U), 2.0, "web"),
    ("c", dt.datetime(2026, 2, 1, 0, 0, 0, tzinfo=U), 1.0, "web"),    # 36 days before D1: outside 30d
]
CUSTOMERS = [
    ("a", dt.date(2025, 1, 1), None, "gold"),
    ("b", dt.date(2025, 1, 1), dt.date(2026, 3, 10), "basic"),
    ("b", dt.date(2026, 3, 10), None, "gold"),                         # upgrade effective on D2
    ("c", dt.date(2025, 1, 1), None, None),
]
LABELS = [("a", dt.datetime(2026, 3, 8, tzinfo=U), 1), ("b", dt.datetime(2026, 3, 8, tzinfo=U), 0)]

MODEL: dict[str, Any] = {
    "name": "shop",
    "entity_key": "customer_id",
    "sources": {
        "events": {"table": "shop_events", "key": "customer_id", "timestamp": "event_ts"},
        "entities": {"table": "shop_customers", "key": "customer_id", "valid_from": "valid_from",
                     "valid_to": "valid_to"},
        "labels": {"table": "shop_labels", "key": "customer_id", "timestamp": "label_ts", "value": "churned"},
        "population": {"rule": "seen", "lookback": "30d"},
    },
    "features": [
        {"name": "events_7d", "kind": "aggregate", "agg": "count", "window": "7d"},
        {"name": "spend_7d", "kind": "aggregate", "agg": "sum", "column": "amount", "window": "7d"},
        {"name": "last_channel", "kind": "aggregate", "agg": "last", "column": "channel", "window": "30d",
         "categorical": True},
        {"name": "plan", "kind": "attribute", "column": "plan", "categorical": True},
        {"name": "active_7d", "kind": "flag", "column": "events_7d", "op": "gt", "value": 0},
    ],
    "quality": {"checks": [
        {"kind": "range", "target": "events", "column": "amount", "min": 0, "max": 1000, "severity": "warn"},
        {"kind": "not_null", "target": "features", "columns": ["plan"], "severity": "warn"},
    ]},
}

FEATURES_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType(), True),
    T.StructField("as_of_date", T.DateType(), True),
    T.StructField("events_7d", T.LongType(), True),
    T.StructField("spend_7d", T.DoubleType(), True),
    T.StructField("last_channel", T.StringType(), True),
    T.StructField("plan", T.StringType(), True),
    T.StructField("active_7d", T.BooleanType(), True),
])
EXPECTED = [
    ("a", D1, 1, 10.0, "web", "gold", True),
    ("b", D1, 1, 0.0, "store", "basic", True),
    ("a", D2, 2, 40.0, "app", "gold", True),
    ("b", D2, 2, 2.0, "web", "gold", True),
]


class Env:
    def __init__(self, spark: SparkSession, root: Path) -> None:
        self.spark = spark
        self.workspace = root / "ws"
        self.conf = root / "conf"
        (self.conf / "models").mkdir(parents=True)
        (self.conf / "base.yaml").write_text(yaml.safe_dump(
            {"runtime": {"master": "local[2]", "shuffle_partitions": 2}, "logging": {"level": "WARNING"}}))
        self.store = open_store(spark, StorageConfig(), self.workspace)
        self.model(MODEL)

    def model(self, data: dict[str, Any]) -> None:
        (self.conf / "models" / f"{data['name']}.yaml").write_text(yaml.safe_dump(data))

    def table(self, name: str, rows: list[tuple[Any, ...]], schema: T.StructType, key: str = "setup") -> None:
        # Source tables carry a constant partition column; a rewrite replaces the whole table.
        df = self.spark.createDataFrame(rows, schema).withColumn("batch", F.lit("all"))
        commit = CommitInfo(job="test", run_id=f"setup-{key}", key=key, code_version="t", config_hash="t")
        self.store.replace_partitions(name, df, ["batch"], commit, partitions=[{"batch": "all"}])

    def sources(self, events: list[tuple[Any, ...]] = EVENTS) -> None:
        self.table("shop_events", events, EVENTS_SCHEMA)
        self.table("shop_customers", CUSTOMERS, CUSTOMERS_SCHEMA)
        self.table("shop_labels", LABELS, LABELS_SCHEMA)

    def run(self, *args: str) -> int:
        return run_job("prepare_features", ["--model", "shop", "--conf-dir", str(self.conf),
                                            "--workspace", str(self.workspace), *args])

    def read(self, name: str) -> DataFrame:
        return self.store.read(name)

    def features(self) -> DataFrame:
        return self.read("shop__features").drop("run_id", "config_hash").select(*FEATURES_SCHEMA.fieldNames())


@pytest.fixture
def env(spark: SparkSession, tmp_path: Path) -> Env:
    return Env(spark, tmp_path)


def expected(spark: SparkSession, rows: list[tuple[Any, ...]] = EXPECTED) -> DataFrame:
    return spark.createDataFrame(rows, FEATURES_SCHEMA)


def test_backfill_writes_exact_features_results_and_quarantine(env: Env) -> None:
    env.sources()
    assert env.run("--from", str(D1), "--to", str(D2)) == 0
    assert_df_equality(env.features(), expected(env.spark), ignore_row_order=True, ignore_nullable=True)
    meta = env.read("shop__features").select("run_id", "config_hash").distinct().collect()
    assert len(meta) == 1 and meta[0]["run_id"].startswith("prepare_features-") and len(meta[0]["config_hash"]) == 16
    q = env.read("quarantine").select("model", "as_of_date", "target", "check", "reason", "entity_key")
    assert q.collect() == []  # no amount outside [0, 1000], plan never null for a or b
    res = env.read("quality_results").filter("check = 'input_present_events'").select("as_of_date", "status",
                                                                                        "observed")
    assert sorted(map(tuple, res.collect())) == [(D1, "ok", 2.0), (D2, "ok", 2.0)]

    # Rerun of one date after the labels changed: same rows (labels never reach features), no duplicates,
    # quality_results for the date replaced rather than appended.
    env.table("shop_labels", [("a", dt.datetime(2026, 3, 1, tzinfo=U), 0), ("c", dt.datetime(2026, 3, 2, tzinfo=U), 1)],
              LABELS_SCHEMA, key="labels-2")
    assert env.run("--date", str(D2)) == 0
    assert_df_equality(env.features(), expected(env.spark), ignore_row_order=True, ignore_nullable=True)
    runs = env.read("shop__features").groupBy("as_of_date").agg(F.countDistinct("run_id").alias("n")).collect()
    assert sorted((r.as_of_date, r.n) for r in runs) == [(D1, 1), (D2, 1)]
    per_date = env.read("quality_results").groupBy("as_of_date").agg(F.countDistinct("run_id").alias("n"))
    assert sorted(map(tuple, per_date.collect())) == [(D1, 1), (D2, 1)]


def test_gate_failure_exits_3_and_leaves_every_table_unchanged(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.sources()
    assert env.run("--date", str(D1)) == 0
    before = {t: (env.store.version(t), sorted(map(tuple, env.read(t).collect())))
              for t in ("shop__features", "quality_results", "quarantine")}
    # A negative amount on D1's input day and an error-severity range check: the gate must stop the run.
    env.table("shop_events", [*EVENTS, ("a", dt.datetime(2026, 3, 8, 1, 0, tzinfo=U), -50.0, "web")],
              EVENTS_SCHEMA, key="bad")
    strict = {**MODEL, "quality": {"checks": [{"kind": "range", "target": "events", "column": "amount", "min": 0}]}}
    env.model(strict)
    capsys.readouterr()
    assert env.run("--date", str(D1)) == 3
    err = capsys.readouterr().err
    assert "range_events_amount on 2026-03-09" in err and "1 of 3 rows" in err and "nothing was written" in err
    after = {t: (env.store.version(t), sorted(map(tuple, env.read(t).collect()))) for t in before}
    assert after == before

    # Same data with severity warn: exit 0, the violating event lands in quarantine with its reason.
    env.model({**MODEL, "quality": {"checks": [{"kind": "range", "target": "events", "column": "amount", "min": 0,
                                                "severity": "warn"}]}})
    assert env.run("--date", str(D1)) == 0
    q = env.read("quarantine").select("model", "as_of_date", "target", "check", "reason", "entity_key")
    q_schema = "model string, as_of_date date, target string, check string, reason string, entity_key string"
    assert_df_equality(q, env.spark.createDataFrame(
        [("shop", D1, "events", "range_events_amount", "amount = -50.0 outside [0, inf]", "a")], q_schema),
        ignore_nullable=True)
    status = env.read("quality_results").filter("check = 'range_events_amount'").select("status", "observed")
    assert [tuple(r) for r in status.collect()] == [("warn", 1 / 3)]


def test_r7_r8_r9_and_bad_config_write_nothing(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.sources()
    # R7: no event on 2026-03-11 (the input day of 2026-03-12) → exit 3, nothing written.
    capsys.readouterr()
    assert env.run("--date", "2026-03-12") == 3
    assert "0 events on input day 2026-03-11" in capsys.readouterr().err
    assert not env.store.exists("shop__features") and not env.store.exists("quality_results")
    # ... unless the config allows empty input: a warning, the rows come from the older events.
    allow = {**MODEL, "sources": {**MODEL["sources"], "events": {**MODEL["sources"]["events"], "allow_empty": True}}}
    env.model(allow)
    assert env.run("--date", "2026-03-12") == 0
    assert sorted(r.customer_id for r in env.read("shop__features").collect()) == ["a", "b"]
    version = env.store.version("shop__features")
    env.model(MODEL)

    # R8: an empty event table → exit 3 for the date, nothing written.
    env.table("shop_events", [], EVENTS_SCHEMA, key="empty")
    assert env.run("--date", str(D2)) == 3
    # R9: a retyped column fails before any write, listing expected vs found.
    retyped = T.StructType([*EVENTS_SCHEMA.fields[:2], T.StructField("amount", T.StringType()), EVENTS_SCHEMA[3]])
    env.table("shop_events_v2", [("a", dt.datetime(2026, 3, 9, tzinfo=U), "ten", "web")], retyped, key="retyped")
    env.model({**MODEL, "sources": {**MODEL["sources"], "events": {**MODEL["sources"]["events"],
                                                                   "table": "shop_events_v2"}}})
    capsys.readouterr()
    assert env.run("--date", str(D2)) == 3
    err = capsys.readouterr().err
    assert "amount: expected a numeric type for sum (spend_7d), found string" in err
    # Bad config: unknown key → exit 2 before Spark work.
    env.model({**MODEL, "features": [{**MODEL["features"][0], "windw": "7d"}]})
    assert env.run("--date", str(D2)) == 2
    assert "windw" in capsys.readouterr().err
    assert env.store.version("shop__features") == version
