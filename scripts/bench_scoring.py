#!/usr/bin/env python
"""Benchmark of the score job: read → score → Delta write, against raw predict_proba and mlflow spark_udf.

For a logistic regression and a HistGradientBoosting classifier trained on a sample of the same
synthetic features (10 numeric with 5 % nulls in one, 2 categorical), in one run on one machine:

- ``job``: ``driftline score`` end to end through the runner (signature check, feature-stats pass,
  mapInPandas scoring, Delta write of ``<model>__predictions``, agreement/stat pass, ``scoring_stats``);
- ``core``: the same read → `BatchScorer` → Delta write without the two statistics passes;
- ``spark_udf``: ``mlflow.pyfunc.spark_udf`` on the same fitted model (logged with
  ``pyfunc_predict_fn="predict_proba"``), same read and same Delta write;
- ``raw``: in-process ``predict_proba`` on the same rows (already converted with ``model_frame``,
  collected to the driver beforehand; the time of that collection is not counted).

Prints rows/s and the ratios, and the driver's Python RSS (current and peak) and the JVM's RSS
after scoring N/5 and N rows (flat driver memory: the job never collects rows).

    .venv/bin/python scripts/bench_scoring.py                 # 5 M rows
    .venv/bin/python scripts/bench_scoring.py --rows 1000000 --models lr
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

NUMERIC = [f"x{i}" for i in range(10)]
CATEGORICAL = ["cat0", "cat1"]
KEY = "customer_id"
SMALL_DATE, BIG_DATE = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
ESTIMATORS = {"lr": ("logistic_regression", {}), "hgb": ("hist_gradient_boosting", {"max_iter": 100})}


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB, from /proc."""
    cur = peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            cur = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cur, peak


def java_pids() -> list[int]:
    """Descendant processes of this one that are a JVM (the local Spark driver/executor)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            todo.append(child)
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "java":
                    found.append(child)
            except OSError:
                pass
    return found


def memory_line(label: str) -> str:
    py_cur, py_peak = rss_mb()
    jvm = sum(rss_mb(p)[0] for p in java_pids())
    return f"{label}: driver python RSS {py_cur:.0f} MB (peak {py_peak:.0f} MB), JVM RSS {jvm:.0f} MB"


def features_df(spark, rows: int, date: dt.date, seed: int):
    """Deterministic synthetic features: x0..x9 normal (x0 5 % null), cat0 (5 levels), cat1 (20 levels)."""
    from pyspark.sql import functions as F

    cat0 = F.array(*[F.lit(c) for c in ("a", "b", "c", "d", "e")])
    cat1 = F.array(*[F.lit(f"r{i:02d}") for i in range(20)])
    parts = max(2, rows // 500_000)
    base = spark.range(rows, numPartitions=parts)
    cols = [F.format_string("c%010d", F.col("id") + seed * 10_000_000_000).alias(KEY)]
    for i, name in enumerate(NUMERIC):
        value = F.randn(seed * 100 + i)
        if i == 0:
            value = F.when(F.rand(seed * 100 + 50) < 0.05, F.lit(None).cast("double")).otherwise(value)
        cols.append(value.alias(name))
    cols.append(F.element_at(cat0, (F.pmod(F.xxhash64("id", F.lit(seed)), F.lit(5)) + 1).cast("int")).alias("cat0"))
    cols.append(F.element_at(cat1, (F.pmod(F.xxhash64("id", F.lit(seed + 1)), F.lit(20)) + 1).cast("int"))
                .alias("cat1"))
    cols.append(F.lit(date).alias("as_of_date"))
    return base.select(*cols)


def model_yaml(name: str) -> dict:
    feats = [{"name": n, "kind": "aggregate", "agg": "sum", "column": "amount", "window": "7d"} for n in NUMERIC]
    feats += [{"name": n, "kind": "attribute", "column": n, "categorical": True} for n in CATEGORICAL]
    return {"name": name, "entity_key": KEY,
            "sources": {"events": {"table": "bench_events", "key": KEY, "timestamp": "ts"},
                        "entities": {"table": "bench_entities", "key": KEY}},
            "features": feats, "label": {"task": "classification"}, "scoring": {"shadow": False}}


def train_and_register(spark, ws: Path, name: str, kind: str, params: dict, sample):
    """Fit on the sample, register with driftline's registry (skops + SHA-256), promote; also log a pyfunc."""
    import mlflow
    import numpy as np
    import sklearn
    import skops
    from mlflow.models import infer_signature

    from driftline.registry.artifact import TRUSTED_TYPES
    from driftline.registry.client import ModelRegistry, configure, ensure_experiment, log_model, tracking_setup
    from driftline.registry.spec import MlflowConfig
    from driftline.training.pipeline import build_pipeline, model_frame
    from driftline.training.spec import EstimatorConfig

    x = model_frame(sample, NUMERIC, CATEGORICAL)
    signal = (np.nan_to_num(sample["x0"].to_numpy()) + 0.5 * sample["x1"].to_numpy() - 0.3 * sample["x2"].to_numpy()
              + (sample["cat0"] == "a").to_numpy() + np.random.default_rng(0).normal(0, 1, len(sample)))
    y = (signal > 0.2).astype(int)
    model = build_pipeline(EstimatorConfig(type=kind, params=params), NUMERIC, CATEGORICAL).fit(x, y)
    setup = tracking_setup(MlflowConfig(), ws)
    configure(setup)
    registry = ModelRegistry(setup, name)
    experiment = ensure_experiment(registry.client, setup)
    proba = model.predict_proba(x.head(100))
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_params({"task": "classification", "numeric_features": ",".join(NUMERIC),
                           "categorical_features": ",".join(CATEGORICAL)})
        logged = log_model(registry, model, x.head(5), infer_signature(x.head(100), proba[:, 1]))
        version = registry.register(logged.model_uri, run.info.run_id, logged.sha256, logged.size, {})
        pyfunc = mlflow.sklearn.log_model(
            model, name="pyfunc_proba", serialization_format="skops", skops_trusted_types=list(TRUSTED_TYPES),
            pyfunc_predict_fn="predict_proba", signature=infer_signature(x.head(100), proba),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"])
    registry.promote(version.version, "benchmark")
    return model, registry, version, pyfunc.model_uri


def timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    secs = time.perf_counter() - t0
    return secs, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000, help="rows scored per model (default 5 000 000)")
    ap.add_argument("--models", default="lr,hgb", help="comma list of lr, hgb (default both)")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--batch-size", type=int, default=10_000, help="Arrow batch size (runtime.arrow_batch_size)")
    ap.add_argument("--train-rows", type=int, default=200_000)
    ap.add_argument("--workspace", help="keep the workspace here (default: a temporary folder, removed)")
    ap.add_argument("--skip-udf", action="store_true", help="do not run mlflow.pyfunc.spark_udf")
    args = ap.parse_args(argv)

    import logging

    from driftline.cli.runner import run_job
    from driftline.runtime import RuntimeConfig, build_spark
    from driftline.scoring.signature import ModelSignature
    from driftline.scoring.spark import BatchScorer, ModelRef
    from driftline.tables import CommitInfo, open_store
    from driftline.tables.spec import StorageConfig
    from driftline.training.pipeline import model_frame
    from driftline.vocabulary import CHAMPION

    logging.getLogger("driftline").setLevel(logging.WARNING)
    ws = Path(args.workspace or tempfile.mkdtemp(prefix="bench-scoring-"))
    ws.mkdir(parents=True, exist_ok=True)
    runtime = RuntimeConfig(master=args.master, shuffle_partitions=4, driver_memory="8g",
                            arrow_batch_size=args.batch_size)
    spark = build_spark(runtime, ws)
    spark.sparkContext.setLogLevel("ERROR")
    from pyspark.sql import functions as F

    store = open_store(spark, StorageConfig(backend="embedded"), ws)
    commit = CommitInfo(job="bench", run_id="bench", key="setup", code_version="bench", config_hash="bench")
    small = max(1, args.rows // 5)
    print(f"# scoring benchmark: {args.rows:,} rows (and {small:,} for the memory check), master {args.master}, "
          f"{os.cpu_count()} cores, Arrow batch {args.batch_size:,}")
    t_gen, _ = timed("gen", lambda: store.replace_partitions(
        "bench_features", features_df(spark, small, SMALL_DATE, 1).unionByName(
            features_df(spark, args.rows, BIG_DATE, 2)), ["as_of_date"], commit))
    print(f"data: {small + args.rows:,} feature rows written in {t_gen:.1f} s")
    sample = store.read("bench_features", partitions={"as_of_date": [SMALL_DATE]}).limit(args.train_rows).toPandas()

    conf = ws / "conf"
    (conf / "models").mkdir(parents=True, exist_ok=True)
    (conf / "base.yaml").write_text(yaml.safe_dump({
        "workspace": str(ws), "storage": {"backend": "embedded"},
        "runtime": runtime.model_dump(), "logging": {"level": "WARNING"}}))
    results = []
    try:
        for short in [m.strip() for m in args.models.split(",") if m.strip()]:
            kind, params = ESTIMATORS[short]
            name = f"bench_{short}"
            (conf / "models" / f"{name}.yaml").write_text(yaml.safe_dump(model_yaml(name)))
            model, registry, version, pyfunc_uri = train_and_register(spark, ws, name, kind, params, sample)
            loc = store.location("bench_features")
            sets = ["--set", f"storage.tables.{name}__features={loc}"]

            def job(date: dt.date, name: str = name, sets: list[str] = sets) -> None:
                code = run_job("score", ["--model", name, "--date", date.isoformat(), "--conf-dir", str(conf),
                                         "--log-level", "WARNING", *sets])
                if code != 0:
                    raise SystemExit(f"score job failed with exit code {code}")

            t_small, _ = timed("job-small", lambda job=job: job(SMALL_DATE))
            mem_small = memory_line(f"  after scoring {small:,} rows")
            t_job, _ = timed("job", lambda job=job: job(BIG_DATE))
            mem_big = memory_line(f"  after scoring {args.rows:,} rows")

            # core: read → BatchScorer → Delta write (no statistics passes)
            sig = ModelSignature(tuple(NUMERIC), tuple(CATEGORICAL), "classification")
            data = registry.verified_bytes(version)
            ref = ModelRef(CHAMPION, name, version.version, str(version.sha256), sig)

            def core(ref: ModelRef = ref, data: bytes = data, name: str = name) -> None:
                scorer = BatchScorer([(ref, data)], key=KEY, threshold=0.5, threads=1)
                df = store.read("bench_features", partitions={"as_of_date": [BIG_DATE]})
                out = scorer.transform(df).withColumn("score_date", F.lit(BIG_DATE))
                store.replace_partitions(f"{name}_core_predictions", out, ["score_date"],
                                         CommitInfo("bench", "bench", str(BIG_DATE), "bench", "bench"))
                scorer.close()

            t_core, _ = timed("core", core)

            t_udf = None
            if not args.skip_udf:
                import mlflow

                def udf_run(pyfunc_uri: str = pyfunc_uri, name: str = name) -> None:
                    predict = mlflow.pyfunc.spark_udf(spark, pyfunc_uri, result_type="array<double>",
                                                      env_manager="local")
                    df = store.read("bench_features", partitions={"as_of_date": [BIG_DATE]})
                    cast = [F.col(c).cast("double").alias(c) for c in NUMERIC] + [F.col(c) for c in CATEGORICAL]
                    out = df.select(F.col(KEY), *cast).select(
                        F.col(KEY), predict(F.struct(*NUMERIC, *CATEGORICAL))[1].alias("score"),
                        F.lit(BIG_DATE).alias("score_date"))
                    store.replace_partitions(f"{name}_udf_predictions", out, ["score_date"],
                                             CommitInfo("bench", "bench", str(BIG_DATE), "bench", "bench"))

                t_udf, _ = timed("udf", udf_run)

            # raw: in-process predict_proba on the same rows (collection and conversion not timed)
            pdf = store.read("bench_features", partitions={"as_of_date": [BIG_DATE]}).toPandas()
            t_frame, x = timed("frame", lambda pdf=pdf: model_frame(pdf, NUMERIC, CATEGORICAL))
            del pdf
            t_raw, scores = timed("raw", lambda x=x, model=model: model.predict_proba(x)[:, 1])
            job_scores = store.read(f"{name}__predictions", partitions={"score_date": [BIG_DATE]})
            del x, scores
            n_out = job_scores.count()
            results.append((short, t_job, t_core, t_udf, t_raw, t_frame, t_small, mem_small, mem_big, n_out))
            rows = args.rows
            print(f"\n## {short} ({kind}) — {rows:,} rows, predictions written: {n_out:,}")
            print(f"  job  (end to end, incl. stats passes): {t_job:7.1f} s  {rows / t_job:>12,.0f} rows/s")
            print(f"  core (read → score → Delta write):     {t_core:7.1f} s  {rows / t_core:>12,.0f} rows/s")
            if t_udf is not None:
                print(f"  mlflow spark_udf (same read/write):    {t_udf:7.1f} s  {rows / t_udf:>12,.0f} rows/s")
            print(f"  raw predict_proba in process:          {t_raw:7.1f} s  {rows / t_raw:>12,.0f} rows/s "
                  f"(+ {t_frame:.1f} s model_frame conversion, not counted)")
            print(f"  job on {small:,} rows:                  {t_small:7.1f} s  {small / t_small:>12,.0f} rows/s")
            if t_udf is not None:
                print(f"  ratio job/spark_udf  {t_udf / t_job:5.2f}x   core/spark_udf {t_udf / t_core:5.2f}x")
            print(f"  ratio job/raw        {t_raw / t_job:5.2f}x   core/raw       {t_raw / t_core:5.2f}x")
            print(mem_small)
            print(mem_big)
            print(memory_line("  after the raw in-process run (5 M rows collected to the driver)"))
    finally:
        spark.stop()
        if not args.workspace:
            shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
