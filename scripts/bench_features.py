"""Benchmark prepare_features: one as_of_date vs a 30-day backfill, in the same run, same machine.

Generates deterministic synthetic events with Spark (spark.range + hash expressions), writes them
through the table store into a scratch workspace, then runs the real job (`run_job`) twice:
``--date E`` and ``--from E-29 --to E``. Prints both times and their ratio (target <= 5x).

    .venv/bin/python scripts/bench_features.py                       # 1 M entities, 120 days, ~24 M events
    .venv/bin/python scripts/bench_features.py --entities 100000     # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

MODEL = {
    "name": "bench",
    "entity_key": "customer_id",
    "sources": {
        "events": {"table": "bench_events", "key": "customer_id", "timestamp": "event_ts"},
        "entities": {"table": "bench_customers", "key": "customer_id", "valid_from": "valid_from",
                     "valid_to": "valid_to"},
        "population": {"rule": "seen", "lookback": "90d"},
    },
    "features": [
        {"name": "events_7d", "kind": "aggregate", "agg": "count", "window": "7d"},
        {"name": "events_30d", "kind": "aggregate", "agg": "count", "window": "30d"},
        {"name": "spend_30d", "kind": "aggregate", "agg": "sum", "column": "amount", "window": "30d"},
        {"name": "avg_spend_30d", "kind": "aggregate", "agg": "mean", "column": "amount", "window": "30d"},
        {"name": "max_spend_90d", "kind": "aggregate", "agg": "max", "column": "amount", "window": "90d"},
        {"name": "sessions_std_30d", "kind": "aggregate", "agg": "stddev", "column": "session_minutes",
         "window": "30d"},
        {"name": "channels_30d", "kind": "aggregate", "agg": "distinct_count", "column": "channel", "window": "30d"},
        {"name": "last_channel", "kind": "aggregate", "agg": "last", "column": "channel", "window": "90d",
         "categorical": True},
        {"name": "days_since_last", "kind": "aggregate", "agg": "days_since_last", "window": "90d"},
        {"name": "activity_trend", "kind": "ratio", "numerator": "events_7d", "denominator": "events_30d"},
        {"name": "plan", "kind": "attribute", "column": "plan", "categorical": True},
    ],
    "quality": {"checks": [
        {"kind": "not_null", "target": "events", "columns": ["customer_id"]},
        {"kind": "range", "target": "events", "column": "amount", "min": 0, "max": 10000, "severity": "warn"},
        {"kind": "row_count", "target": "events", "min_rows": 1, "history": 7, "min_ratio": 0.5, "max_ratio": 2.0},
        {"kind": "freshness", "target": "events", "max_age_hours": 24},
        {"kind": "not_null", "target": "features", "columns": ["events_30d"]},
    ]},
}


def generate(spark, store, entities: int, days: int, per_entity_day: float, end: dt.date) -> int:  # noqa: ANN001
    from pyspark.sql import functions as F

    from driftline.tables import CommitInfo

    n_events = int(entities * days * per_entity_day)
    start_s = int(dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC).timestamp()) - days * 86_400
    h = lambda salt: F.pmod(F.xxhash64(F.col("id"), F.lit(salt)), F.lit(1 << 30))  # noqa: E731
    events = spark.range(n_events).select(
        F.concat(F.lit("c"), F.pmod(F.xxhash64("id"), F.lit(entities)).cast("string")).alias("customer_id"),
        F.timestamp_seconds(F.lit(start_s) + F.pmod(h(1), F.lit(days * 86_400))).alias("event_ts"),
        (F.pmod(h(2), F.lit(100_000)) / 100.0).alias("amount"),
        (F.pmod(h(3), F.lit(600)) / 10.0).alias("session_minutes"),
        F.element_at(F.array(*[F.lit(c) for c in ("web", "app", "store", "phone")]),
                     (F.pmod(h(4), F.lit(4)) + 1).cast("int")).alias("channel"),
    ).withColumn("event_date", F.to_date(F.col("event_ts")))  # session TZ is UTC here
    customers = spark.range(entities).select(
        F.concat(F.lit("c"), F.col("id").cast("string")).alias("customer_id"),
        F.lit(dt.date(2020, 1, 1)).alias("valid_from"),
        F.lit(None).cast("date").alias("valid_to"),
        F.element_at(F.array(F.lit("free"), F.lit("basic"), F.lit("gold")),
                     (F.pmod(h(5), F.lit(3)) + 1).cast("int")).alias("plan"),
        F.lit("all").alias("batch"),
    )
    commit = CommitInfo(job="bench", run_id="bench-setup", key="setup", code_version="bench", config_hash="bench")
    store.replace_partitions("bench_events", events, ["event_date"], commit)
    store.replace_partitions("bench_customers", customers, ["batch"], commit)
    return n_events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=120, help="days of events (>= 30 + 90 for the backfill)")
    parser.add_argument("--per-entity-day", type=float, default=0.2)
    parser.add_argument("--driver-memory", default="16g")
    parser.add_argument("--shuffle-partitions", type=int, default=16)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
    from driftline.cli.runner import run_job
    from driftline.runtime import RuntimeConfig, build_spark
    from driftline.tables import open_store
    from driftline.tables.spec import StorageConfig

    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_features_"))
    workspace, conf = root / "ws", root / "conf"
    (conf / "models").mkdir(parents=True, exist_ok=True)
    runtime = {"master": "local[*]", "shuffle_partitions": args.shuffle_partitions,
               "driver_memory": args.driver_memory}
    (conf / "base.yaml").write_text(yaml.safe_dump({"runtime": runtime, "logging": {"level": "WARNING"}}))
    (conf / "models" / "bench.yaml").write_text(yaml.safe_dump(MODEL))
    os.environ.setdefault("TZ", "UTC")
    spark = build_spark(RuntimeConfig(**runtime), workspace)
    store = open_store(spark, StorageConfig(), workspace)

    end = dt.date(2026, 6, 1)
    t0 = time.monotonic()
    n = generate(spark, store, args.entities, args.days, args.per_entity_day, end)
    gen_s = time.monotonic() - t0
    print(f"generated {n:,} events for {args.entities:,} entities over {args.days} days in {gen_s:.1f} s "
          f"({os.cpu_count()} cores, driver memory {args.driver_memory})", flush=True)

    common = ["--model", "bench", "--conf-dir", str(conf), "--workspace", str(workspace)]
    t0 = time.monotonic()
    rc1 = run_job("prepare_features", [*common, "--date", str(end)])
    one = time.monotonic() - t0
    print(f"one date   ({end}): {one:7.1f} s  exit {rc1}", flush=True)
    first = end - dt.timedelta(days=29)
    t0 = time.monotonic()
    rc2 = run_job("prepare_features", [*common, "--from", str(first), "--to", str(end)])
    rng = time.monotonic() - t0
    print(f"30-day backfill ({first}..{end}): {rng:7.1f} s  exit {rc2}", flush=True)
    rows = store.read("bench__features").count()
    print(f"feature rows written: {rows:,}")
    print(f"ratio backfill / one date: {rng / one:.2f}x (target <= 5x); per date: {rng / 30:.1f} s vs {one:.1f} s")
    spark.stop()
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if rc1 == 0 and rc2 == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
