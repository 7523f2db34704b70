#!/usr/bin/env python
"""Benchmark: what estimated performance (CBPE cells in the monitor's one profiling pass) adds to the monitor job.

One workspace, one run, through the public jobs on real Delta tables and a real MLflow registry (as
`scripts/load_test.py`, whose data and model it reuses): synthetic features for a small day and a big day
(``--rows``, default 4 M), a logistic regression registered champion with its reference profile and its
calibration table (labels drawn from the model's own scores, seeded), ``score`` for both days, then the
``monitor`` job of the big day timed ``--repeat`` times each with ``monitoring.performance.estimated`` on
and off, alternating. Prints every time, the minimum of each and the ratio (target: ≤ 1.10).

    .venv/bin/python scripts/bench_estimated.py                  # 4 M rows
    .venv/bin/python scripts/bench_estimated.py --rows 500000    # a quick run
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "scripts"))

from load_test import BIG_DATE, NAME, SMALL_DATE, prepare, write_conf  # noqa: E402


def write_cells(spark, store, registry, version, model, sample) -> None:  # noqa: ANN001
    """Append the version's calibration table (labels ~ Bernoulli(score), seeded) to its reference rows."""
    import datetime as dt

    import numpy as np
    from bench_scoring import CATEGORICAL, NUMERIC

    from driftline.monitoring.estimated import fit_cell_table
    from driftline.monitoring.estimated_store import cell_rows
    from driftline.registry.profiles import ProfileProvenance, write_reference_rows
    from driftline.tables import CommitInfo
    from driftline.training.pipeline import model_frame

    scores = model.predict_proba(model_frame(sample, NUMERIC, CATEGORICAL))[:, 1]
    labels = (np.random.default_rng(1).random(len(scores)) < scores).astype("float64")
    chunks = np.arange(len(scores)) * 10 // len(scores)
    table = fit_cell_table(scores, labels, chunks, 0.5, cells=100)
    run_id = registry.get(version.version).run_id
    who = ProfileProvenance(NAME, version.version, run_id, "bench", "bench", "bench",
                            dt.datetime.now(dt.UTC).replace(microsecond=0))
    existing = [r.asDict() for r in store.read("reference_profiles").collect()]
    keep = [{k: r[k] for k in ("column", "role", "kind", "stat", "bin", "lower", "upper", "category", "quantile",
                               "value")} for r in existing]
    write_reference_rows(spark, store, [*keep, *cell_rows(table)], who,
                         CommitInfo("bench", "bench", f"{NAME}@{version.version}", "bench", "bench"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4_000_000, help="rows of the big day (default 4 000 000)")
    ap.add_argument("--repeat", type=int, default=3, help="monitor runs per setting (default 3)")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="6g")
    args = ap.parse_args(argv)

    import logging

    from driftline.cli.runner import run_job
    from driftline.runtime import RuntimeConfig, build_spark
    from driftline.tables import open_store
    from driftline.tables.spec import StorageConfig

    logging.getLogger("driftline").setLevel(logging.WARNING)
    ws = Path(tempfile.mkdtemp(prefix="bench-estimated-"))
    runtime = RuntimeConfig(master=args.master, shuffle_partitions=8, driver_memory=args.driver_memory)
    spark = build_spark(runtime, ws)
    spark.sparkContext.setLogLevel("ERROR")
    store = open_store(spark, StorageConfig(backend="embedded"), ws)
    small = max(1, args.rows // 20)
    print(f"# estimated performance overhead in the monitor job: {args.rows:,} rows, master {args.master}")
    try:
        model, registry, version, sample = prepare(spark, store, ws, small, args.rows, 100_000)
        write_cells(spark, store, registry, version, model, sample)
        conf = write_conf(ws, store, runtime)
        common = ["--model", NAME, "--conf-dir", str(conf), "--log-level", "WARNING"]
        for date in (SMALL_DATE, BIG_DATE):
            if run_job("score", [*common, "--date", date.isoformat()]) != 0:
                raise SystemExit(f"score {date} failed")
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(args.repeat * 2):
            on = i % 2 == 1          # off first: the first run also warms the JVM for both
            t0 = time.perf_counter()
            code = run_job("monitor", [*common, "--date", BIG_DATE.isoformat(), "--set",
                                       f"monitoring.performance.estimated={'true' if on else 'false'}", "--set",
                                       "monitoring.report.evidently_rows=0"])
            secs = time.perf_counter() - t0
            if code != 0:
                raise SystemExit(f"monitor failed with exit code {code}")
            times[on].append(secs)
            print(f"  monitor {BIG_DATE} estimated={'on ' if on else 'off'}: {secs:6.1f} s", flush=True)
        est = [r for r in store.read("monitor_metrics", partitions={"model": [NAME], "run_date": [BIG_DATE]})
               .filter("metric like 'estimated_%'").collect()]
        off, on_ = min(times[False]), min(times[True])
        print(f"\nmonitor job, {args.rows:,} rows: without estimated performance {off:.1f} s, with {on_:.1f} s "
              f"(min of {args.repeat}); ratio {on_ / off:.3f} (target <= 1.10); {len(est)} estimated_* rows: "
              + ", ".join(f"{r['metric']}={r['value']:.4f}" for r in est if r["value"] is not None))
    finally:
        spark.stop()
        shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
