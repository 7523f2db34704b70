"""Benchmark: embedded Delta write/read vs plain Spark Parquet, same data, same run.

    .venv/bin/python scripts/bench_tables.py --rows 5000000 --out /tmp/bench-tables

Prints rows/s for each, the Delta/Parquet ratios (targets: >= 0.9) and the driver's RSS before
and after (should stay flat: no table data is collected to the driver).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from driftline.config.schema import RuntimeConfig  # noqa: E402
from driftline.runtime import build_spark  # noqa: E402
from driftline.tables import CommitInfo, StorageConfig, open_store  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def source(spark, rows: int):
    """~12 columns, 10 date partitions, deterministic (no RNG)."""
    from pyspark.sql import functions as F

    return spark.range(rows).select(
        F.col("id"),
        F.date_add(F.lit("2026-01-01").cast("date"), (F.col("id") % 10).cast("int")).alias("score_date"),
        (F.col("id") % 1000).cast("int").alias("customer_bucket"),
        (F.col("id") * 0.37 % 100).alias("f1"),
        (F.sqrt(F.col("id") % 997)).alias("f2"),
        (F.col("id") % 13 / 7.0).alias("f3"),
        F.when(F.col("id") % 17 == 0, None).otherwise(F.col("id") % 101 * 1.5).alias("f4"),
        F.concat(F.lit("seg_"), (F.col("id") % 23).cast("string")).alias("segment"),
        (F.col("id") % 2 == 0).alias("flag"),
        (F.col("id") % 1000 / 1000.0).alias("score"),
        F.timestamp_seconds(F.lit(1767225600) + F.col("id") % 86400).alias("event_ts"),
        (F.col("id") % 100000).cast("decimal(12,2)").alias("amount"),
    )


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--out", default="/tmp/driftline-bench-tables")
    parser.add_argument("--master", default="local[*]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spark = build_spark(RuntimeConfig(master=args.master, shuffle_partitions=8, app_name="bench-tables"), out)
    store = open_store(spark, StorageConfig(backend="embedded"), out)
    df = source(spark, args.rows)
    parquet_path = str(out / "plain_parquet")
    commit = CommitInfo(job="bench", run_id="bench-1", key="all", code_version="bench", config_hash="-")

    # warm-up (JIT, class loading) so neither side pays it
    source(spark, 200_000).write.mode("overwrite").partitionBy("score_date").parquet(str(out / "warm"))
    rss0 = rss_mb()
    t_pq_w = timed(lambda: df.write.mode("errorifexists").partitionBy("score_date").parquet(parquet_path))
    t_dl_w = timed(lambda: store.replace_partitions("bench", df, ["score_date"], commit))
    rss1 = rss_mb()

    def scan(frame):
        # a full read that touches every column, without sending rows to the driver
        frame.selectExpr(*[f"hash(`{c}`) AS `{c}`" for c in frame.columns]).write.format("noop").mode(
            "overwrite"
        ).save()

    t_pq_r = min(timed(lambda: scan(spark.read.parquet(parquet_path))) for _ in range(2))
    t_dl_r = min(timed(lambda: scan(store.read("bench"))) for _ in range(2))
    rss2 = rss_mb()
    rows = args.rows
    print(f"rows={rows:,} columns={len(df.columns)} partitions=10 version={store.version('bench')}")
    print(f"write  plain parquet {t_pq_w:7.2f} s  {rows / t_pq_w:12,.0f} rows/s")
    print(f"write  embedded delta{t_dl_w:7.2f} s  {rows / t_dl_w:12,.0f} rows/s   ratio {t_pq_w / t_dl_w:.2f}x")
    print(f"read   plain parquet {t_pq_r:7.2f} s  {rows / t_pq_r:12,.0f} rows/s")
    print(f"read   embedded delta{t_dl_r:7.2f} s  {rows / t_dl_r:12,.0f} rows/s   ratio {t_pq_r / t_dl_r:.2f}x")
    print(f"driver RSS (python) MB: before {rss0:.0f}, after write {rss1:.0f}, after read {rss2:.0f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
