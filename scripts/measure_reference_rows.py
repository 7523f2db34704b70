"""Which rows should a version's reference profile describe? Drifted columns per monitoring window for each
``training.reference_rows`` choice, on a synthetic step change and on stable data (the numbers behind the
default in docs/training.md §7).

A synthetic daily feature table (``--rows`` rows a day, weekly seasonality on the count columns) with a
shift on ``onset``: a mean step, a ×1.4 scale step, a ×2 count step, a channel mix change plus a new
category three days later, and a slow 30-day ramp (what a 30-day aggregate does); the other columns do not
change. A retrain on the first day the episode windows allow with ``--post-days`` matured post-onset
dates (``training_windows`` with the onset, label horizon 14, train 28 / validation 7 days) builds the
reference from (a) every training + validation row, (b) the validation rows, (c) the post-onset rows;
each is profiled, binned and calibrated exactly as the train job does (`profile`, `fit_configured_bins`,
`calibrate`) and the next ``--windows`` daily windows are compared with it by the monitor's
`dataset_drift` (static and calibrated thresholds). Stable data: the same world without the shift, a
first champion (no onset) with references (a) and (b): every drifted column is a false alarm.

    .venv/bin/python scripts/measure_reference_rows.py                 # 5000 rows a day (the demo's size)
    .venv/bin/python scripts/measure_reference_rows.py --rows 500      # small windows: p-value tests decide
    # the demo's features (write them first: driftline demo --days 100 --customers 3000 --workspace DIR)
    .venv/bin/python scripts/measure_reference_rows.py --demo-workspace DIR --onset 2026-03-02 [--post-days 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

START = dt.date(2026, 1, 1)
HORIZON = 14
NUMERIC = ["x_step", "x_scale", "x_count", "x_ramp", "s_normal", "s_uniform", "s_count", "s_lognormal"]
CATEGORICAL = ["channel", "plan", "region"]
SHIFTED = {"x_step", "x_scale", "x_count", "x_ramp", "channel", "score"}
WEEKDAY = np.array([1.12, 1.12, 1.12, 1.12, 1.12, 0.75, 0.70])


def day_frame(rng: np.random.Generator, day: dt.date, rows: int, onset: dt.date | None) -> pd.DataFrame:
    after = onset is not None and day >= onset
    since = (day - onset).days if after and onset is not None else -1
    season = WEEKDAY[day.weekday()]
    n = rows
    ch_p = np.array([0.5, 0.3, 0.2, 0.0])
    if after:
        ch_p = np.array([0.5 * 0.65, 0.3 + 0.5 * 0.35, 0.2, 0.0])
        if since >= 3:
            ch_p = np.append(ch_p[:3] * 0.92, 0.08)
    x_step = rng.normal(0.5 if after else 0.0, 1.0, n)
    x_scale = rng.lognormal(np.log(30.0), 0.5, n) * (1.4 if after else 1.0)
    x_count = rng.poisson(3.0 * season * (2.0 if after else 1.0), n).astype(float)
    x_ramp = rng.normal(0.6 * min(max(since + 1, 0), 30) / 30, 1.0, n)
    df = pd.DataFrame({
        "as_of_date": [day] * n,
        "x_step": x_step, "x_scale": x_scale, "x_count": x_count, "x_ramp": x_ramp,
        "s_normal": rng.normal(10, 3, n), "s_uniform": rng.uniform(0, 1, n),
        "s_count": rng.poisson(5.0 * season, n).astype(float), "s_lognormal": rng.lognormal(2, 1, n),
        "channel": rng.choice(["web", "app", "store", "voice"], n, p=ch_p / ch_p.sum()),
        "plan": rng.choice(["basic", "standard", "premium"], n, p=[0.5, 0.3, 0.2]),
        "region": rng.choice(["north", "south", "east", "west"], n),
    })
    # the model's score: a fixed function of the features (the same model on both sides of the comparison)
    logit = 0.8 * x_step - 0.02 * (x_scale - 30) - 0.2 * (x_count - 3) + 0.3 * df["s_normal"].sub(10) / 3
    df["score"] = 1 / (1 + np.exp(-logit))
    return df


def world(seed: int, rows: int, first: dt.date, last: dt.date, onset: dt.date | None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return pd.concat([day_frame(rng, d, rows, onset) for d in days], ignore_index=True)


def measure(spark, data: pd.DataFrame, reference: pd.DataFrame, windows: list[dt.date],
            numeric: list[str] | None = None, categorical: list[str] | None = None) -> dict[str, list[int]]:
    """Drifted columns per window (static and calibrated thresholds) against ``reference``."""
    from driftline.monitoring.calibration import calibrate
    from driftline.monitoring.drift import dataset_drift
    from driftline.monitoring.spec import DriftConfig, DriftSpec
    from driftline.monitoring.thresholds import threshold_map
    from driftline.profiling.bins import fit_configured_bins
    from driftline.profiling.profile import profile, profile_by

    cfg = DriftConfig()
    numeric = [*NUMERIC, "score"] if numeric is None else numeric
    categorical = CATEGORICAL if categorical is None else categorical
    columns = [*numeric, *categorical]
    ref = spark.createDataFrame(reference).cache()
    bins = fit_configured_bins(ref, numeric, categorical, cfg)
    prof = profile(ref, columns, bins)
    calibrated = calibrate(ref, "as_of_date", prof, bins, cfg)
    ref.unpersist()
    cur = spark.createDataFrame(data[data["as_of_date"].isin(windows)])
    profiles = profile_by(cur, "as_of_date", columns, bins, quantiles=(), distinct=False)
    static = DriftSpec.from_config(cfg)
    spec_cal = static.with_calibrated(threshold_map(calibrated)) if hasattr(static, "with_calibrated") else static
    out: dict[str, list[int]] = {"static": [], "calibrated": [], "static_cols": [], "calibrated_cols": []}
    for day in windows:
        for name, spec in (("static", static), ("calibrated", spec_cal)):
            result = dataset_drift(prof, profiles[day], spec)
            drifted = [c.column for c in result.columns if c.drifted]
            out[name].append(len(drifted))
            out[f"{name}_cols"].extend(drifted)
    return out


def summary(label: str, rows: int, days: int, got: dict[str, list[int]], columns: int = 12) -> None:
    for mode in ("static", "calibrated"):
        counts = got[mode]
        cols = pd.Series(got[f"{mode}_cols"]).value_counts().to_dict() if got[f"{mode}_cols"] else {}
        print(f"  {label:<34} {rows:>7} rows {days:>3} days  {mode:<10} drifted columns/window "
              f"mean {np.mean(counts):5.2f} max {max(counts):2d} "
              f"windows alerting (≥ half of {columns}) {sum(c >= columns / 2 for c in counts):2d}/{len(counts)}"
              f"  {cols}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000, help="rows a day (default 5000)")
    ap.add_argument("--post-days", type=int, default=8, help="matured post-onset dates at the retrain (default 8)")
    ap.add_argument("--windows", type=int, default=14, help="daily monitoring windows after the retrain")
    ap.add_argument("--seeds", type=int, default=2, help="worlds per case (default 2)")
    ap.add_argument("--demo-workspace", metavar="DIR",
                    help="instead: the churn__features table of a demo workspace (shift on the scenario's shift day)")
    ap.add_argument("--onset", type=dt.date.fromisoformat, help="with --demo-workspace: the shift date")
    args = ap.parse_args(argv)

    os.environ.setdefault("TZ", "UTC")
    from driftline.runtime import RuntimeConfig, build_spark
    from driftline.training.dataset import training_windows
    from driftline.training.spec import TrainingConfig

    tmp = Path(tempfile.mkdtemp(prefix="measure-ref-"))
    spark = build_spark(RuntimeConfig(master="local[4]", shuffle_partitions=4, app_name="measure-ref"), workspace=tmp)
    tcfg = TrainingConfig()
    if args.demo_workspace:
        return demo(spark, args, tcfg)
    onset = START + dt.timedelta(days=60)
    retrain = onset + dt.timedelta(days=HORIZON + args.post_days)          # validation ends onset + post_days − 1
    w = training_windows(retrain, HORIZON, tcfg, onset)
    plain = training_windows(retrain, HORIZON, tcfg)
    after = [retrain + dt.timedelta(days=i) for i in range(args.windows)]
    print(f"onset {onset}, retrain {retrain}: train {w.train_start}..{w.train_end}, "
          f"validation {w.validation_start}..{w.validation_end} ({w.post_onset_days()} post-onset dates); "
          f"monitoring {after[0]}..{after[-1]}")
    for seed in range(args.seeds):
        print(f"seed {seed}")
        shifted = world(seed, args.rows, w.train_start, after[-1], onset)
        stable = world(100 + seed, args.rows, plain.train_start, after[-1], None)

        def rows_in(df: pd.DataFrame, lo: dt.date, hi: dt.date) -> pd.DataFrame:
            return df[(df["as_of_date"] >= lo) & (df["as_of_date"] <= hi)]

        cases = [
            ("shift: train_and_validation", shifted, rows_in(shifted, w.train_start, w.validation_end)),
            ("shift: validation", shifted, rows_in(shifted, w.validation_start, w.validation_end)),
            ("shift: post_onset", shifted, rows_in(shifted, onset, w.validation_end)),
            ("stable: train_and_validation", stable, rows_in(stable, plain.train_start, plain.validation_end)),
            ("stable: validation", stable, rows_in(stable, plain.validation_start, plain.validation_end)),
        ]
        for label, data, ref in cases:
            summary(label, len(ref), ref["as_of_date"].nunique(), measure(spark, data, ref, after))
    spark.stop()
    return 0


def demo(spark, args: argparse.Namespace, tcfg) -> int:
    """The same cases on a demo workspace's feature rows (``driftline demo --days 100`` writes enough days)."""
    from driftline.config import load_config
    from driftline.tables import open_store
    from driftline.tables.spec import StorageConfig
    from driftline.training.dataset import training_windows

    cfg = load_config("churn", Path(__file__).resolve().parents[1] / "conf").config
    numeric = [f.name for f in cfg.features if not f.categorical]
    categorical = [f.name for f in cfg.features if f.categorical]
    store = open_store(spark, StorageConfig(backend="embedded"), Path(args.demo_workspace))
    feats = store.read("churn__features").select("as_of_date", *numeric, *categorical).toPandas()
    feats[numeric] = feats[numeric].astype("float64")
    onset = args.onset
    retrain = onset + dt.timedelta(days=HORIZON + args.post_days)
    w = training_windows(retrain, HORIZON, tcfg, onset)
    after = [retrain + dt.timedelta(days=i) for i in range(args.windows)]
    stable_date = onset - dt.timedelta(days=args.windows)            # the first champion: windows before the shift
    plain = training_windows(stable_date, HORIZON, tcfg)
    before = [stable_date + dt.timedelta(days=i) for i in range(args.windows)]
    print(f"demo features {feats['as_of_date'].min()}..{feats['as_of_date'].max()}, {len(feats)} rows; "
          f"onset {onset}, retrain {retrain}: train {w.train_start}..{w.train_end}, validation "
          f"{w.validation_start}..{w.validation_end}; monitoring {after[0]}..{after[-1]}; stable champion "
          f"{stable_date} (train {plain.train_start}..{plain.train_end}), monitoring {before[0]}..{before[-1]}")

    def rows_in(lo: dt.date, hi: dt.date) -> pd.DataFrame:
        return feats[(feats["as_of_date"] >= lo) & (feats["as_of_date"] <= hi)]

    n = len(numeric) + len(categorical)
    for label, ref, windows in (
        ("shift: train_and_validation", rows_in(w.train_start, w.validation_end), after),
        ("shift: validation", rows_in(w.validation_start, w.validation_end), after),
        ("shift: post_onset", rows_in(onset, w.validation_end), after),
        ("stable: train_and_validation", rows_in(plain.train_start, plain.validation_end), before),
        ("stable: validation", rows_in(plain.validation_start, plain.validation_end), before),
    ):
        summary(label, len(ref), ref["as_of_date"].nunique(),
                measure(spark, feats, ref, windows, numeric, categorical), n)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
