"""Benchmark: a monitor-only model's ingest (``prepare_features`` over ``sources.inference``) against the same work
done by hand in plain Spark, same data, same run.

    .venv/bin/python scripts/bench_ingest.py --rows 2000000 --out /tmp/bench-ingest

The inference log (``--rows`` rows over ``--days`` days, a timestamp, 8 numeric and 2 categorical features, a score,
a version label, about 2 % retried requests) is written once as a Delta table. Then, for the last day, ``--repeats``
times each, interleaved:

- **by hand**: read the log, keep the day's rows (timestamp filter), the latest row per (entity, UTC day), select
  the columns, write them as plain Parquet (overwrite);
- **driftline**: the ``prepare_features`` job on the same day (schema check, R7 and score checks, the key-unique
  feature check, ``quality_results``, ``quarantine`` and the features table's partition replaced, in one Delta
  commit each).

Prints the min and median seconds of each and the ratio driftline / by hand (the cost of the gate and the Delta
commits; lower is better).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import statistics
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from driftline.cli.runner import run_job  # noqa: E402
from driftline.runtime import RuntimeConfig, build_spark  # noqa: E402
from driftline.tables import CommitInfo, StorageConfig, open_store  # noqa: E402

FIRST = dt.date(2026, 5, 1)


def model(days: int) -> dict:
    return {
        "name": "bench_served", "entity_key": "request_id",
        "sources": {"inference": {"table": "bench_log", "key": "request_id", "timestamp": "served_at",
                                  "score": "p", "version": "model_tag"}},
        "features": [*[{"name": f"n{i}", "kind": "logged"} for i in range(8)],
                     *[{"name": f"c{i}", "kind": "logged", "categorical": True} for i in range(2)]],
        "label": {"task": "classification", "horizon_days": 7},
        "quality": {"checks": [{"kind": "not_null", "target": "features", "columns": ["n0"], "severity": "warn"}]},
    }


def write_log(spark, store, rows: int, days: int) -> None:
    from pyspark.sql import functions as F

    per_day = rows // days
    base = F.unix_micros(F.lit(dt.datetime.combine(FIRST, dt.time(), dt.UTC)).cast("timestamp"))
    df = (spark.range(rows)
          .withColumn("day", (F.col("id") / per_day).cast("int"))
          .withColumn("request_id", F.concat(F.lit("r"), (F.col("id") % per_day).cast("string")))
          .withColumn("served_at", F.timestamp_micros(base + F.col("day") * 86_400_000_000
                                                      + (F.col("id") * 7919 % 86_400_000_000))))
    for i in range(8):
        df = df.withColumn(f"n{i}", F.randn(i) * (i + 1))
    df = (df.withColumn("c0", F.concat(F.lit("k"), (F.rand(11) * 20).cast("int").cast("string")))
          .withColumn("c1", F.concat(F.lit("g"), (F.rand(12) * 200).cast("int").cast("string")))
          .withColumn("p", F.rand(13))
          .withColumn("model_tag", F.when(F.rand(14) < 0.5, "a").otherwise("b")))
    retries = df.filter(F.col("id") % 50 == 0).withColumn("served_at", F.col("served_at") + F.expr("INTERVAL 1 SECOND"))
    log = df.unionByName(retries).drop("id", "day")
    store.append("bench_log", log, CommitInfo(job="bench", run_id="setup", key="log", code_version="b",
                                              config_hash="b"))


def by_hand(spark, store, day: dt.date, out: Path) -> None:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    rows = store.read("bench_log").filter((F.col("served_at") >= F.lit(start))
                                          & (F.col("served_at") < F.lit(start + dt.timedelta(days=1))))
    latest = Window.partitionBy("request_id").orderBy(F.col("served_at").desc())
    rows = rows.withColumn("_n", F.row_number().over(latest)).filter(F.col("_n") == 1).drop("_n")
    rows.select("request_id", F.lit(day).alias("as_of_date"), *[f"n{i}" for i in range(8)], "c0", "c1",
                "model_tag", F.col("p").alias("logged_score")).write.mode("overwrite").parquet(str(out))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="/tmp/bench-ingest")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    (out / "conf" / "models").mkdir(parents=True)
    ws = out / "ws"
    (out / "conf" / "base.yaml").write_text(yaml.safe_dump({"workspace": str(ws), "logging": {"level": "WARNING"},
                                                             "runtime": {"master": "local[2]"}}))
    (out / "conf" / "models" / "bench_served.yaml").write_text(yaml.safe_dump(model(args.days)))
    spark = build_spark(RuntimeConfig(master="local[2]", shuffle_partitions=8, spark_log_level="ERROR"), ws)
    store = open_store(spark, StorageConfig(), ws)
    t = time.perf_counter()
    write_log(spark, store, args.rows, args.days)
    print(f"inference log: {args.rows:,} rows (+2 % retries) over {args.days} days written in "
          f"{time.perf_counter() - t:.1f} s")
    day = FIRST + dt.timedelta(days=args.days - 1)
    hand, ours = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        by_hand(spark, store, day, out / "by-hand")
        hand.append(time.perf_counter() - t)
        t = time.perf_counter()
        code = run_job("prepare_features", ["--model", "bench_served", "--date", day.isoformat(),
                                            "--conf-dir", str(out / "conf")])
        ours.append(time.perf_counter() - t)
        if code != 0:
            print(f"prepare_features exited {code}")
            return 1
    per_day = store.read("bench_served__features").count()
    print(f"one day: {per_day:,} feature rows")
    for name, times in (("by hand (plain Spark, Parquet)", hand), ("driftline prepare_features (ingest)", ours)):
        print(f"{name:38s} min {min(times):6.2f} s  median {statistics.median(times):6.2f} s")
    print(f"ratio driftline / by hand: min {min(ours) / min(hand):.2f}x  median "
          f"{statistics.median(ours) / statistics.median(hand):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
