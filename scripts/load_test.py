#!/usr/bin/env python
"""Load test: the score and monitor jobs over ≥ 20 M rows on one machine, with driver memory measured.

One workspace, one run, everything through the public jobs (`driftline score`, `driftline monitor`
via the shared runner) on real Delta tables and a real MLflow (SQLite) registry:

1. synthetic features (10 numeric with 5 % nulls in one, 2 categorical) for seven dates: six small
   days (``--rows`` / 20 each) and the big day (``--rows``), written through the table layer;
2. a logistic regression fitted on a sample of the first small day, registered and promoted
   champion, and its reference profile (bins, profile, calibration) written as the train job does;
3. ``score`` of the six small days; one plain Spark aggregation scan of the big day (the baseline);
   ``score`` of the big day without and with the per-date profile folded in the pass
   (``scoring.daily_profiles``); ``monitor`` of the big day with a 1-day and a 7-day window (the
   stored per-date profiles merged), then with the big day's profile removed (its rows scanned).
   The ratios the [speed] targets name are printed at the end, all from this one run.

Prints the time and rows/s of every step and the driver's Python RSS (current and peak) and the
JVM's RSS after the small and after the big day: bounded driver memory means the Python driver's
RSS does not grow with the rows (the jobs never collect rows; the JVM runs driver and executors
in one process in local mode, so its RSS includes the executors' working memory).

    .venv/bin/python scripts/load_test.py                      # 20 M rows
    .venv/bin/python scripts/load_test.py --rows 1000000       # a quick run
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_scoring import (  # noqa: E402  (a sibling script: shared data generator and memory probes)
    CATEGORICAL,
    NUMERIC,
    features_df,
    memory_line,
    model_yaml,
    train_and_register,
)

NAME = "load_lr"
SMALL_DATES = tuple(dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(6))   # six small days, then the big
SMALL_DATE, BIG_DATE = SMALL_DATES[0], dt.date(2026, 1, 7)
SEGMENT, TOP_SEGMENTS = "cat1", 10   # drift per segment: cat1's 10 most frequent of 20 values + __other__


def scan_seconds(spark, store, date: dt.date) -> float:  # noqa: ANN001
    """One plain Spark aggregation scan of the day's features (count, mean of every numeric, count of every
    categorical column): the baseline the monitor is compared with."""
    from pyspark.sql import functions as F

    df = store.read("load_features", partitions={"as_of_date": [date]}).filter(F.col("as_of_date") == date)
    aggs = [F.count(F.lit(1)), *[F.avg(c) for c in NUMERIC], *[F.count(c) for c in CATEGORICAL]]
    df.agg(*aggs).collect()   # warm: the first action pays the log replay and the JIT
    t0 = time.perf_counter()
    df.agg(*aggs).collect()
    return time.perf_counter() - t0


def drop_profiles(store, date: dt.date) -> None:  # noqa: ANN001
    """Remove the date's stored profile: the monitor falls back to scanning its rows."""
    from driftline.tables import CommitInfo

    table = f"{NAME}__daily_profiles"
    store.replace_partitions(table, store.read(table).limit(0), ["score_date"],
                             CommitInfo("load-test", "load-test", "drop", "t", "t"), partitions=[{"score_date": date}])


def write_reference(spark, store, registry, version, model, sample) -> None:
    """The version's reference profile from the training sample and its scores, as the train job writes it."""
    from driftline.monitoring import segments
    from driftline.monitoring.calibration import calibrate, calibration_rows
    from driftline.monitoring.spec import DriftConfig
    from driftline.profiling.bins import fit_configured_bins
    from driftline.profiling.profile import profile, profile_rows
    from driftline.registry.profiles import REFERENCE_SAMPLE, ProfileProvenance, write_reference_rows
    from driftline.tables import CommitInfo
    from driftline.training.pipeline import model_frame
    from driftline.vocabulary import SCORE as PREDICTION

    pdf = sample[[*NUMERIC, *CATEGORICAL, "as_of_date"]].copy()
    pdf[PREDICTION] = model.predict_proba(model_frame(sample, NUMERIC, CATEGORICAL))[:, 1]
    ref = spark.createDataFrame(pdf.astype(object).where(pdf.notna(), None)).cache()
    drift = DriftConfig()
    bins = fit_configured_bins(ref, [*NUMERIC, PREDICTION], CATEGORICAL, drift)
    prof = profile(ref, [*NUMERIC, *CATEGORICAL, PREDICTION], bins)
    rows = [*profile_rows(prof, bins), *calibration_rows(calibrate(ref, "as_of_date", prof, bins, drift), prof)]
    # the segments' reference profiles (monitoring.segments: [cat1], its top 10 values + __other__), as train stores
    by_segment = segments.at_training(ref.withColumn(segments.segment_alias(SEGMENT), ref[SEGMENT]),
                                      [*NUMERIC, *CATEGORICAL, PREDICTION], bins, [SEGMENT], TOP_SEGMENTS)
    ref.unpersist()
    run_id = registry.get(version.version).run_id
    registry.client.log_text(run_id, by_segment, segments.ARTIFACT)
    with tempfile.TemporaryDirectory() as tmp:                    # the sample behind the Evidently page
        path = Path(tmp) / REFERENCE_SAMPLE
        pdf.sample(n=min(5000, len(pdf)), random_state=0).to_parquet(path, index=False)
        registry.client.log_artifact(run_id, str(path), "reference_profile")
    who = ProfileProvenance(NAME, version.version, run_id, "load-test", "load-test", "load-test",
                            dt.datetime.now(dt.UTC).replace(microsecond=0))
    write_reference_rows(spark, store, rows, who, CommitInfo("load-test", "load-test", f"{NAME}@{version.version}",
                                                             "load-test", "load-test"))


def prepare(spark, store, ws: Path, small: int, big: int, train_rows: int):  # noqa: ANN001, ANN201
    """The load test's workspace: features of the small and the big day, a logistic regression fitted on
    ``train_rows`` of the small day, registered champion with its reference profile; returns (model, registry,
    version, training sample)."""
    from driftline.tables import CommitInfo

    commit = CommitInfo(job="load-test", run_id="load-test", key="setup", code_version="t", config_hash="t")
    days = [features_df(spark, small, d, 1 + i) for i, d in enumerate(SMALL_DATES)]
    frame = days[0]
    for day in [*days[1:], features_df(spark, big, BIG_DATE, 99)]:
        frame = frame.unionByName(day)
    store.replace_partitions("load_features", frame, ["as_of_date"], commit)
    sample = store.read("load_features", partitions={"as_of_date": [SMALL_DATE]}).limit(train_rows).toPandas()
    model, registry, version, _ = train_and_register(spark, ws, NAME, "logistic_regression", {}, sample)
    write_reference(spark, store, registry, version, model, sample)
    return model, registry, version, sample


def write_conf(ws: Path, store, runtime) -> Path:  # noqa: ANN001
    """``<ws>/conf``: base.yaml (embedded tables, the features table at its location) and the model's yaml."""
    conf = ws / "conf"
    (conf / "models").mkdir(parents=True, exist_ok=True)
    (conf / "base.yaml").write_text(yaml.safe_dump({
        "workspace": str(ws), "storage": {"backend": "embedded",
                                          "tables": {f"{NAME}__features": store.location("load_features")}},
        "runtime": runtime.model_dump(), "logging": {"level": "WARNING"}}))
    (conf / "models" / f"{NAME}.yaml").write_text(yaml.safe_dump({**model_yaml(NAME),
                                                                  "monitoring": {"segments": [SEGMENT]}}))
    return conf


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000_000, help="rows of the big day (default 20 000 000)")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="8g")
    ap.add_argument("--train-rows", type=int, default=200_000)
    ap.add_argument("--workspace", help="keep the workspace here (default: a temporary folder, removed)")
    args = ap.parse_args(argv)

    import logging

    from driftline.cli.runner import run_job
    from driftline.runtime import RuntimeConfig, build_spark
    from driftline.tables import open_store
    from driftline.tables.spec import StorageConfig

    logging.getLogger("driftline").setLevel(logging.WARNING)
    ws = Path(args.workspace or tempfile.mkdtemp(prefix="load-test-"))
    ws.mkdir(parents=True, exist_ok=True)
    runtime = RuntimeConfig(master=args.master, shuffle_partitions=8, driver_memory=args.driver_memory)
    spark = build_spark(runtime, ws)
    spark.sparkContext.setLogLevel("ERROR")
    store = open_store(spark, StorageConfig(backend="embedded"), ws)
    small = max(1, args.rows // 20)
    print(f"# load test: score + monitor over {args.rows:,} rows (small day {small:,}), master {args.master}, "
          f"driver memory {args.driver_memory}")
    t0 = time.perf_counter()
    model, registry, version, sample = prepare(spark, store, ws, small, args.rows, args.train_rows)
    print(f"data: {6 * small + args.rows:,} feature rows written, model and reference in "
          f"{time.perf_counter() - t0:.1f} s")
    del model, registry, version, sample
    conf = write_conf(ws, store, runtime)
    timings: dict[str, float] = {}
    memory: list[str] = []

    def timed(label: str, job: str, date: dt.date, rows: int, *extra: str) -> float:
        t0 = time.perf_counter()
        code = run_job(job, ["--model", NAME, "--date", date.isoformat(), "--conf-dir", str(conf),
                             "--log-level", "WARNING", *extra])
        secs = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"{job} {date} failed with exit code {code}")
        timings[label] = secs
        memory.append(memory_line(f"  after {label} ({rows:,} rows)"))
        print(f"  {label:<44} {rows:>12,} rows in {secs:7.2f} s  {rows / secs:>12,.0f} rows/s", flush=True)
        return secs

    try:
        for i, date in enumerate(SMALL_DATES):
            timed(f"score {date} (small day {i + 1})", "score", date, small)
        timed(f"monitor {SMALL_DATES[-1]} (warm-up, small day)", "monitor", SMALL_DATES[-1], small)
        plain = scan_seconds(spark, store, BIG_DATE)
        print(f"  {'plain aggregation scan of the big day':<44} {args.rows:>12,} rows in {plain:7.2f} s")
        no_prof = timed("score big day, scoring.daily_profiles=false", "score", BIG_DATE, args.rows,
                        "--set", "scoring.daily_profiles=false")
        score = timed("score big day (profiles folded in the pass)", "score", BIG_DATE, args.rows)
        mon1 = timed("monitor big day, 1-day window", "monitor", BIG_DATE, args.rows)
        mon7 = timed("monitor big day, 7-day window", "monitor", BIG_DATE, args.rows + 6 * small,
                     "--set", "monitoring.window_days=7")
        quiet = timed("monitor big day, 1-day window, no Evidently page", "monitor", BIG_DATE, args.rows,
                      "--set", "monitoring.report.evidently_rows=0")
        print("\nratios (same run):")
        print(f"  monitor 1-day / plain scan of the day          {mon1 / plain:6.2f}x  (target <= 0.5)")
        print(f"  monitor 1-day without the Evidently page / scan {quiet / plain:5.2f}x")
        print(f"  monitor 7-day / monitor 1-day                  {mon7 / mon1:6.2f}x  (target <= 1.2)")
        print(f"  score + monitor / score                        {(score + mon1) / score:6.2f}x  (target <= 1.2)")
        print(f"  score with profiles / without                  {score / no_prof:6.2f}x  (target <= 1.10)")
        segmented = timed(f"monitor big day, drift per segment ({TOP_SEGMENTS} + 1)", "monitor", BIG_DATE,
                          args.rows, "--set", "monitoring.segment_drift.enabled=true")
        from pyspark.sql import functions as F

        shares = (store.read("monitor_metrics", partitions={"model": [NAME], "run_date": [BIG_DATE]})
                  .filter(F.col("slice").startswith(f"{SEGMENT}=") & (F.col("metric") == "drift_share")).collect())
        print(f"  {len(shares)} segments judged: " + ", ".join(sorted(f"{r['slice']} {r['status']}" for r in shares)))
        drop_profiles(store, BIG_DATE)
        scanned = timed("monitor big day, 1-day window, no stored profile", "monitor", BIG_DATE, args.rows)
        print(f"  monitor on stored profiles / on a scan         {mon1 / scanned:6.2f}x")
        print(f"  monitor per segment / unsegmented (stored)     {segmented / mon1:6.2f}x")
        print(f"  monitor per segment / unsegmented (a scan)     {segmented / scanned:6.2f}x")
        print(f"  monitor per segment / plain scan of the day    {segmented / plain:6.2f}x")
        predictions = store.read(f"{NAME}__predictions", partitions={"score_date": [BIG_DATE]}).count()
        [run] = store.read("monitor_runs", partitions={"model": [NAME], "run_date": [BIG_DATE]}).collect()
        print(f"\npredictions written for {BIG_DATE}: {predictions:,}; monitor verdict: {run['status']}, "
              f"{run['columns_drifted']} of {run['columns_evaluated']} columns drifted, {run['rows']:,} rows profiled")
        print("\n".join(memory))
    finally:
        spark.stop()
        if not args.workspace:
            shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
