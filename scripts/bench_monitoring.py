"""Benchmark drift monitoring: driftline's distributed profile + drift vs Evidently DataDriftPreset, same run.

Generates deterministic synthetic reference and current tables (12 columns: 8 numeric, 4 categorical;
the current one has a few shifted columns and an unseen category) with Spark, writes them as
Parquet, then times on the same machine:

1. a plain Spark aggregation scan of the current table (count + sum of every column): the floor;
2. driftline, monitor side, as the monitor job profiles a window: ``profile(current, quantiles=(),
   distinct=False)`` (one pass, folded on the JVM where driftline's jar is loaded) + ``dataset_drift`` from
   aggregates (the reference profile is stored at training time, timed separately with fitting); for
   comparison, the same profile with the quantile and distinct-count sketches (what a window of a reference
   stored before offset sums costs) and the same pass with the Arrow + numpy fold (a machine without a JDK);
3. Evidently ``DataDriftPreset`` on pandas (``toPandas`` not counted), capped at ``--evidently-rows``
   rows per side (default 1 M: at 4 M it takes minutes and GBs, see the issue's figures).

Prints seconds (the plain scan and the monitor's profile: the minimum of ``--repeat`` runs, median
shown), ratios and memory: the driver JVM's peak RSS, and this Python process's RSS before/after
Evidently (peak via ``ru_maxrss``).

    .venv/bin/python scripts/bench_monitoring.py                    # 4 M rows per side
    .venv/bin/python scripts/bench_monitoring.py --rows 1000000 --evidently-rows 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

NUMERIC = [f"n{i}" for i in range(8)]
CATEGORICAL = [f"c{i}" for i in range(4)]


def generate(spark, rows: int, seed: int, current: bool):  # noqa: ANN001, ANN201
    from pyspark.sql import functions as F

    shift = 0.2 if current else 0.0
    u = lambda salt: (F.pmod(F.xxhash64("id", F.lit(seed), F.lit(salt)), F.lit(1 << 30)) / float(1 << 30))  # noqa: E731
    normal = lambda salt: F.sqrt(-2 * F.log(u(salt) + 1e-12)) * F.cos(2 * 3.141592653589793 * u(salt + 100))  # noqa: E731

    def pick(levels: list[str], salt: int):  # noqa: ANN202
        idx = (F.floor(F.pow(u(salt), 1.5) * len(levels)) + 1).cast("int")   # skewed level frequencies
        return F.element_at(F.array(*map(F.lit, levels)), idx)

    c3_levels = ["web", "app", "store", "phone"] + (["kiosk"] if current else [])
    return spark.range(rows).select(
        (normal(1) + shift).alias("n0"),
        (normal(2) * 2 + 5).alias("n1"),
        F.exp(normal(3)).alias("n2"),
        (u(4) * 100).alias("n3"),
        F.floor(u(5) * 5).cast("double").alias("n4"),
        F.when(u(6) < 0.01, None).otherwise(normal(7)).alias("n5"),
        F.floor(-F.log(u(8) + 1e-12) * 3).cast("double").alias("n6"),
        (normal(9) * (1.3 if current else 1.0)).alias("n7"),
        pick(["free", "basic", "gold", "platinum"], 10).alias("c0"),
        pick([f"r{i:02d}" for i in range(20)], 11).alias("c1"),
        pick([f"p{i:03d}" for i in range(100)], 12).alias("c2"),
        pick(c3_levels, 13).alias("c3"),
    )


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) in MB of a process, from /proc."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out.get("VmRSS", float("nan")), out.get("VmHWM", float("nan"))


def timed(label: str, fn, repeat: int = 1):  # noqa: ANN001, ANN201
    """(value, seconds) of ``fn``; with ``repeat`` > 1 the minimum of that many runs (the median printed too)."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        runs.append(time.perf_counter() - t0)
    seconds = min(runs)
    spread = f" (median {sorted(runs)[len(runs) // 2]:.2f} s of {repeat})" if repeat > 1 else ""
    print(f"  {label:<52} {seconds:8.2f} s{spread}", flush=True)
    return value, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000, help="rows per side (reference and current)")
    parser.add_argument("--evidently-rows", type=int, default=1_000_000, help="cap of Evidently's rows per side")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra spark.* setting")
    parser.add_argument("--skip-evidently", action="store_true", help="time driftline only")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the plain scan and of the monitor's profile; the minimum counts")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat: expected at least 1, found {args.repeat}")

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
    from pyspark.sql import functions as F

    from driftline.jvm import PROFILE_FOLD, java_class
    from driftline.monitoring.comparison import DRIFT_QUANTILES
    from driftline.monitoring.drift import dataset_drift, drift_rows
    from driftline.monitoring.spec import DriftSpec
    from driftline.profiling.bins import fit_reference_bins
    from driftline.profiling.fold import core_pass
    from driftline.profiling.profile import profile
    from driftline.runtime import RuntimeConfig, build_spark

    scratch = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    extra = dict(kv.split("=", 1) for kv in args.conf)
    spark = build_spark(RuntimeConfig(master=args.master, app_name="bench-monitoring",
                                      driver_memory=args.driver_memory, spark_conf=extra), scratch)
    jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    print(f"bench_monitoring: {args.rows:,} rows per side, 12 columns (8 numeric, 4 categorical), "
          f"{os.cpu_count()} cores, {args.master}, driver memory {args.driver_memory}; load avg "
          f"{os.getloadavg()[0]:.1f}" + (f"; conf {extra}" if extra else ""), flush=True)
    cols = [*NUMERIC, *CATEGORICAL]
    try:
        print("data", flush=True)
        for name, current in (("reference", False), ("current", True)):
            timed(f"generate + write {name} parquet",
                  lambda n=name, c=current: generate(spark, args.rows, 7, c).write.parquet(str(scratch / n)))
        ref = spark.read.parquet(str(scratch / "reference"))
        cur = spark.read.parquet(str(scratch / "current"))

        print("spark floor", flush=True)
        scan = [F.count(F.lit(1))] + [F.sum(c) for c in NUMERIC] + [F.count(c) for c in CATEGORICAL]
        cur.agg(*scan).collect()  # warm-up (JIT, file listing)
        _, t_scan = timed("plain aggregation scan of current", lambda: cur.agg(*scan).collect(), args.repeat)

        print("driftline (training side, once per model version)", flush=True)
        bins, t_fit = timed("fit_reference_bins(reference)",
                            lambda: fit_reference_bins(ref, NUMERIC, CATEGORICAL, bins=10, top_k=20))
        ref_prof, t_ref = timed("profile(reference) with quantiles and distinct counts",
                                lambda: profile(ref, cols, bins))

        print("driftline (monitor side, per window)", flush=True)
        cur_prof, t_prof = timed("profile(current): one pass, no sketches",
                                 lambda: profile(cur, cols, bins, quantiles=(), distinct=False), args.repeat)
        _, t_sketch = timed("  for comparison: with quantiles + distinct sketches",
                            lambda: profile(cur, cols, bins, quantiles=DRIFT_QUANTILES))
        t_arrow = None
        if java_class(spark, PROFILE_FOLD) is not None:
            _, t_arrow = timed("  for comparison: the Arrow + numpy fold (no JDK)",
                               lambda: core_pass(cur, None, cols, bins, engine="arrow"), args.repeat)
        else:
            print("  (the JVM fold is not loaded: no javac, or runtime.jvm_fold off; the line above is the Arrow fold)")
        dataset_drift(ref_prof, ref_prof, DriftSpec())   # warm-up: imports scipy.stats once per process (~0.5 s)
        result, t_drift = timed("dataset_drift from aggregates + rows",
                                lambda: (r := dataset_drift(ref_prof, cur_prof, DriftSpec()), drift_rows(r))[0])
        t_monitor = t_prof + t_drift
        jvm_now, jvm_peak = rss_mb(jvm_pid)
        py_now, _ = rss_mb()
        print(f"  driver JVM RSS {jvm_now:,.0f} MB (peak {jvm_peak:,.0f} MB); Python RSS {py_now:,.0f} MB")
        print(f"  verdict: {result.status}, {result.drifted}/{result.evaluated} columns drifted: "
              + ", ".join(f"{c.column}={c.method}:{c.decision_value:.3g}{'*' if c.drifted else ''}"
                          for c in result.columns))

        arrow_line = ("" if t_arrow is None else
                      f"\n  ... with the Arrow fold (no JDK)        {t_arrow + t_drift:8.2f} s = "
                      f"{(t_arrow + t_drift) / t_scan:5.2f}x plain scan")
        if args.skip_evidently:
            print(f"summary\n  monitor {t_monitor:8.2f} s = {t_monitor / t_scan:5.2f}x plain scan; with sketches "
                  f"{t_sketch + t_drift:8.2f} s = {(t_sketch + t_drift) / t_scan:5.2f}x" + arrow_line)
            return 0
        n_ev = min(args.rows, args.evidently_rows)
        print(f"Evidently DataDriftPreset on pandas, {n_ev:,} rows per side"
              + (f" (capped from {args.rows:,})" if n_ev < args.rows else ""), flush=True)
        (ref_pd, cur_pd), t_pandas = timed(
            "toPandas (not counted)", lambda: (ref.limit(n_ev).toPandas(), cur.limit(n_ev).toPandas()))
        py_before, _ = rss_mb()
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        dd = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)

        def run_evidently():  # noqa: ANN202
            snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur_pd, data_definition=dd),
                                                  Dataset.from_pandas(ref_pd, data_definition=dd))
            return snap.dict()

        ev, t_ev = timed("Evidently Report([DataDriftPreset()]).run", run_evidently)
        py_after, _ = rss_mb()
        py_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        share = ev["metrics"][0]["value"]
        print(f"  Evidently: {share['count']:.0f} drifted columns (share {share['share']:.2f}); Python RSS "
              f"{py_before:,.0f} MB before, {py_after:,.0f} MB after, peak {py_peak:,.0f} MB")

        print("summary", flush=True)
        print(f"  monitor (profile current + drift)      {t_monitor:8.2f} s = {t_monitor / t_scan:5.2f}x plain scan")
        print(f"  ... with sketches (older references)   {t_sketch + t_drift:8.2f} s = "
              f"{(t_sketch + t_drift) / t_scan:5.2f}x plain scan")
        if arrow_line:
            print(arrow_line[1:])
        print(f"  training side (fit bins + ref profile) {t_fit + t_ref:8.2f} s")
        per_row_ev = t_ev / n_ev
        print(f"  Evidently at {n_ev:,} rows               {t_ev:8.2f} s")
        if n_ev < args.rows:
            print(f"  Evidently linear extrapolation to {args.rows:,} rows: {per_row_ev * args.rows:8.1f} s "
                  "(an estimate, not a measurement)")
        print(f"  speed-up vs Evidently at {n_ev:,} rows (driftline on {args.rows:,}): "
              f"{t_ev / t_monitor:6.1f}x; per row: {per_row_ev / (t_monitor / args.rows):6.1f}x")
    finally:
        spark.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
