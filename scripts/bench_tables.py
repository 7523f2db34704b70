"""Benchmark: Delta write/read on both backends vs plain Spark Parquet, same data, same run.

    .venv/bin/python scripts/bench_tables.py --rows 5000000 --out /tmp/bench-tables

The embedded backend (Spark Parquet + delta-rs commit) always; the native one (delta-spark) when
its jars are on the classpath (``--backends embedded`` leaves it out).
Prints rows/s for each, the Delta/Parquet ratios (targets: >= 0.9) and the driver's memory
(the Python process and the JVM) before and after: it should stay flat, no table data is collected
to the driver. Reads are repeated ``--repeats`` times, Parquet and Delta interleaved so that load
from other processes hits both alike; min and median are reported, with the load average.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from driftline.runtime import (
    RuntimeConfig,  # noqa: E402
    build_spark,  # noqa: E402
)
from driftline.tables import CommitInfo, StorageConfig, open_store  # noqa: E402
from driftline.tables.embedded import read as embedded_read  # noqa: E402 - the read path's switches
from driftline.tables.native import native_available  # noqa: E402


def rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def jvm_pid(spark) -> int | None:
    """The driver JVM: the gateway process pyspark started, or its java descendant."""
    proc = getattr(spark.sparkContext._gateway, "proc", None)
    todo = [proc.pid] if proc is not None else []
    while todo:
        pid = todo.pop()
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "java":
                return pid
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return None


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def source(spark, rows: int):
    """12 columns and run_id (as every driftline table has), 10 date partitions, deterministic (no RNG)."""
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
        F.lit("bench-run-1").alias("run_id"),  # the lineage column every driftline table has
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
    parser.add_argument("--repeats", type=int, default=3, help="read repetitions (interleaved)")
    parser.add_argument("--backends", default="embedded,native", help="comma-separated: embedded, native")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spark = build_spark(RuntimeConfig(master=args.master, shuffle_partitions=8, app_name="bench-tables"), out)
    store = open_store(spark, StorageConfig(backend="embedded"), out)
    native = None
    if "native" in args.backends.split(","):
        if native_available(spark):
            native = open_store(spark, StorageConfig(backend="native"), out / "native")
        else:
            print("native backend: delta-spark jars not on the classpath, left out")
    df = source(spark, args.rows)
    parquet_path = str(out / "plain_parquet")
    commit = CommitInfo(job="bench", run_id="bench-1", key="all", code_version="bench", config_hash="-")

    # warm-up (JIT, class loading: delta-spark's writer loads ~1-2 s of classes on first use) so no side pays it
    warm = source(spark, 200_000)
    warm.write.mode("overwrite").partitionBy("score_date").parquet(str(out / "warm"))
    store.replace_partitions("warm", warm, ["score_date"], commit)
    if native is not None:
        native.replace_partitions("warm", warm, ["score_date"], commit)
    jvm = jvm_pid(spark)
    load0 = load()
    rss0, jrss0 = rss_mb(), rss_mb(jvm) if jvm else float("nan")
    writes: dict[str, list[float]] = {"pq": [], "dl": [], "nt": []}
    for i in range(args.repeats):  # interleaved, each a new table: min and median reported
        target = parquet_path if i == 0 else f"{parquet_path}_{i}"
        writes["pq"].append(timed(lambda t=target: df.write.mode("errorifexists").partitionBy("score_date").parquet(t)))
        name = "bench" if i == 0 else f"bench_{i}"
        writes["dl"].append(timed(lambda n=name: store.replace_partitions(n, df, ["score_date"], commit)))
        if native is not None:
            writes["nt"].append(timed(lambda n=name: native.replace_partitions(n, df, ["score_date"], commit)))
    rss1, jrss1 = rss_mb(), rss_mb(jvm) if jvm else float("nan")
    # the same rows written date by date (ten commits, ten staging folders), as daily jobs write
    days = [r[0] for r in df.select("score_date").distinct().orderBy("score_date").collect()]
    for d in days:
        store.replace_partitions("bench_daily", df.filter(df.score_date == d), ["score_date"], commit)

    def scan(frame):
        # a full read that touches every column, without sending rows to the driver
        frame.selectExpr(*[f"hash(`{c}`) AS `{c}`" for c in frame.columns]).write.format("noop").mode(
            "overwrite"
        ).save()

    day = "2026-01-05"
    full: dict[str, list[float]] = {"pq": [], "dl": [], "daily": [], "union": [], "join": []}
    one: dict[str, list[float]] = {"pq": [], "dl": [], "nt": []}
    full["nt"] = []
    for _ in range(args.repeats):  # interleaved: background load hits both sides alike
        full["pq"].append(timed(lambda: scan(spark.read.parquet(parquet_path))))
        full["dl"].append(timed(lambda: scan(store.read("bench"))))
        if native is not None:
            full["nt"].append(timed(lambda: scan(native.read("bench"))))
        full["daily"].append(timed(lambda: scan(store.read("bench_daily"))))
        embedded_read.FOLDER_PARTITIONS = False  # partition values from the log: literals per value, or the join
        full["union"].append(timed(lambda: scan(store.read("bench"))))
        union_max, embedded_read.UNION_MAX_GROUPS = embedded_read.UNION_MAX_GROUPS, 0  # the many-partitions path
        full["join"].append(timed(lambda: scan(store.read("bench"))))
        embedded_read.UNION_MAX_GROUPS, embedded_read.FOLDER_PARTITIONS = union_max, True
        one["pq"].append(timed(lambda: scan(spark.read.parquet(parquet_path).filter(f"score_date = DATE'{day}'"))))
        one["dl"].append(timed(lambda: scan(store.read("bench", partitions={"score_date": [day]}))))
        if native is not None:
            one["nt"].append(timed(lambda: scan(native.read("bench", partitions={"score_date": [day]}))))
    rss2, jrss2 = rss_mb(), rss_mb(jvm) if jvm else float("nan")
    rows = args.rows
    print(f"rows={rows:,} columns={len(df.columns)} partitions=10 version={store.version('bench')}")
    lo_pq, md_pq = min(writes["pq"]), statistics.median(writes["pq"])
    print(f"write     plain parquet min {lo_pq:6.2f} s ({rows / lo_pq:12,.0f} rows/s) median {md_pq:6.2f} s")
    for key, label in (("dl", "embedded delta"), ("nt", "native delta  ")):
        if writes[key]:
            lo, md = min(writes[key]), statistics.median(writes[key])
            print(f"write     {label} min {lo:6.2f} s ({rows / lo:12,.0f} rows/s) median {md:6.2f} s"
                  f"   ratio min {lo_pq / lo:.2f}x median {md_pq / md:.2f}x")
    for label, times, n in (("read", full, rows), ("read 1/10", one, rows // 10)):
        lo_pq, lo_dl = min(times["pq"]), min(times["dl"])
        md_pq, md_dl = statistics.median(times["pq"]), statistics.median(times["dl"])
        print(f"{label:9} plain parquet min {lo_pq:6.2f} s ({n / lo_pq:12,.0f} rows/s) median {md_pq:6.2f} s")
        print(
            f"{label:9} embedded delta min {lo_dl:6.2f} s ({n / lo_dl:12,.0f} rows/s) median {md_dl:6.2f} s"
            f"   ratio min {lo_pq / lo_dl:.2f}x median {md_pq / md_dl:.2f}x"
        )
        if times["nt"]:
            lo_nt, md_nt = min(times["nt"]), statistics.median(times["nt"])
            print(
                f"{label:9} native delta   min {lo_nt:6.2f} s ({n / lo_nt:12,.0f} rows/s) median {md_nt:6.2f} s"
                f"   ratio min {lo_pq / lo_nt:.2f}x median {md_pq / md_nt:.2f}x"
            )
    for key, label in (
        ("daily", "written date by date (10 commits and staging folders, one scan from the table root)"),
        ("union", "values from the log as literals, one scan per value (folder names not usable)"),
        ("join", f"values from the log by file-path join (above {embedded_read.UNION_MAX_GROUPS} values or under"
                 f" {embedded_read.UNION_MIN_BYTES_PER_VALUE >> 20} MB per value)"),
    ):
        lo, md = min(full[key]), statistics.median(full[key])
        print(
            f"read      delta {key:5} min {lo:6.2f} s ({rows / lo:12,.0f} rows/s) median {md:6.2f} s"
            f"   ratio min {min(full['pq']) / lo:.2f}x median {statistics.median(full['pq']) / md:.2f}x   {label}"
        )
    print(f"driver RSS MB (python): before {rss0:.0f}, after write {rss1:.0f}, after reads {rss2:.0f}")
    print(f"driver RSS MB (JVM):    before {jrss0:.0f}, after write {jrss1:.0f}, after reads {jrss2:.0f}")
    print(f"load average (1/5/15 min): at start {load0}, at end {load()} on {os.cpu_count()} cores")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
