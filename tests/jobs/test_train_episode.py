"""The train job inside a drift episode (``JobContext.onset``): windows anchored on the onset, recency
weights, the reference made of the post-onset rows, the gate on post-onset validation rows.

Same inputs as `tests.jobs.test_train` (its ``env`` fixture: a fresh workspace for this module); the
oracle rebuilds the splits with pandas and fits scikit-learn with the same ``sample_weight``.
"""

from __future__ import annotations

import datetime as dt

import mlflow
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from driftline.config import load_config
from driftline.errors import MissingInputError
from driftline.jobs import train as job
from driftline.jobs.context import JobContext, new_run_id
from driftline.tables import open_store
from driftline.tables.spec import StorageConfig
from driftline.training.dataset import training_windows
from driftline.training.pipeline import build_pipeline, fit_pipeline, model_frame, predict_scores, recency_weights
from driftline.training.spec import EstimatorConfig, RecencyConfig
from driftline.vocabulary import CHAMPION
from tests.jobs.test_train import D, registry, run_of

pytestmark = pytest.mark.slow

U = dt.UTC
ONSET = dt.date(2026, 2, 20)                  # P = 6 matured post-onset dates (02-20..02-25) → validation 3 days
TRAIN = (dt.date(2026, 2, 13), dt.date(2026, 2, 22))
VAL = (dt.date(2026, 2, 23), dt.date(2026, 2, 25))
RECENCY = ["training.recency.post_onset_weight=3", "training.recency.half_life_days=4",
           "monitoring.drift.min_rows=30"]    # ~35 rows a day: calibration chunks of 2 days are usable


def split(env, lo: dt.date, hi: dt.date) -> pd.DataFrame:
    """Oracle rows of [lo, hi]: features joined with the labels known before D (the latest known wins)."""
    fpdf, lpdf = env["features"], env["labels"]
    matured = lpdf[pd.to_datetime(lpdf["label_ts"], utc=True) < pd.Timestamp(dt.datetime.combine(D, dt.time(), U))]
    latest = (matured.sort_values("label_ts").groupby(["customer_id", "as_of_date"], as_index=False).last()
              .rename(columns={"churned": "label"})[["customer_id", "as_of_date", "label"]])
    data = fpdf.merge(latest, on=["customer_id", "as_of_date"], how="inner")
    part = data[(data["as_of_date"] >= lo) & (data["as_of_date"] <= hi)]
    return part.sort_values(["as_of_date", "customer_id"]).reset_index(drop=True)


def train(env, *overrides: str, onset: dt.date | None = None, force: bool = False) -> None:
    loaded = load_config("jt", env["conf"], list(overrides))
    started = dt.datetime.now(U).replace(microsecond=0)
    job.run(JobContext(job="train", loaded=loaded, dates=(D,), spark=env["spark"],
                       run_id=new_run_id("train", started), started_at=started, force=force, onset=onset))


def profile_rows(env, version: str) -> pd.DataFrame:
    store = open_store(env["spark"], StorageConfig(), env["ws"])
    return store.read("reference_profiles").filter(f"model = 'jt' and model_version = '{version}'").toPandas()


def test_retrain_inside_an_episode(env) -> None:
    # 1. the first champion (no onset): the usual windows; the reference holds every training + validation row
    train(env, "estimator.params.C=0.001", *RECENCY)
    reg = registry(env)
    assert reg.alias(CHAMPION).version == "1"
    run1 = run_of(env, "1")
    assert "driftline.onset" not in run1.data.tags and run1.data.params["recency.weighted"] == "True"
    assert run1.data.params["onset"] == "None" and run1.data.params["post_onset_train_rows"] == "0"
    assert run1.data.tags["driftline.validation_window"] == "2026-02-22..2026-02-25"
    rows1 = profile_rows(env, "1")
    n1 = int(run1.data.params["train_rows"]) + int(run1.data.params["validation_rows"])
    assert rows1[(rows1["column"] == "x2") & (rows1["stat"] == "rows")]["value"].item() == n1

    # 2. a retrain inside the episode from ONSET: post-onset validation, weighted fit, post-onset reference
    train(env, *RECENCY, onset=ONSET)
    run2 = run_of(env, "2")
    tr, val = split(env, *TRAIN), split(env, *VAL)
    post_train = int((tr["as_of_date"] >= ONSET).sum())
    t = run2.data.tags
    assert t["driftline.onset"] == "2026-02-20"
    assert t["driftline.train_window"] == "2026-02-13..2026-02-22"
    assert t["driftline.validation_window"] == "2026-02-23..2026-02-25"
    assert t["driftline.post_onset_train_rows"] == str(post_train) and 0 < post_train < len(tr)
    assert t["driftline.post_onset_validation_rows"] == str(len(val))
    p = run2.data.params
    assert (p["onset"], p["post_onset_train_rows"], p["train_rows"], p["validation_rows"]) == \
        ("2026-02-20", str(post_train), str(len(tr)), str(len(val)))
    assert (p["recency.post_onset_weight"], p["recency.half_life_days"], p["reference_rows"]) == \
        ("3.0", "4.0", "post_onset")
    # the fit: sklearn's own fit with the same sample_weight
    w = recency_weights(tr["as_of_date"], TRAIN[1], ONSET, RecencyConfig(post_onset_weight=3, half_life_days=4))
    assert w is not None
    oracle = fit_pipeline(build_pipeline(EstimatorConfig(type="logistic_regression", params={"C": 1.0}, seed=3),
                                         ["x1", "x2"], ["plan"]),
                          model_frame(tr, ["x1", "x2"], ["plan"]), tr["label"].astype(int).to_numpy(), w)
    x_val, y_val = model_frame(val, ["x1", "x2"], ["plan"]), val["label"].astype(int).to_numpy()
    assert run2.data.metrics["val_log_loss"] == pytest.approx(
        log_loss(y_val, predict_scores(oracle, x_val, "classification")), rel=1e-9)
    # the gate: champion v1 scored on the post-onset validation rows
    v2 = reg.get("2").tags
    champion_loss = log_loss(y_val, predict_scores(reg.load("1"), x_val, "classification"))
    assert v2["driftline.gate.reference_version"] == "1"
    assert float(v2["driftline.gate.reference"]) == pytest.approx(champion_loss, rel=1e-9)
    # the reference: the post-onset rows only (profile, calibration chunks of whole post-onset days, sample)
    rows2 = profile_rows(env, "2")
    assert rows2[(rows2["column"] == "x2") & (rows2["stat"] == "rows")]["value"].item() == post_train + len(val)
    x2 = pd.concat([tr[tr["as_of_date"] >= ONSET], val])["x2"]
    assert rows2[(rows2["column"] == "x2") & (rows2["stat"] == "mean")]["value"].item() == pytest.approx(x2.mean())
    calibrated = rows2[rows2["stat"] == "calibrated_threshold"]
    assert len(calibrated) and set(calibrated["bin"]) == {3}      # 6 post-onset dates → 3 chunks of 2 days
    sample = pd.read_parquet(mlflow.artifacts.download_artifacts(
        run_id=run2.info.run_id, artifact_path="reference_profile/sample.parquet"))
    assert len(sample) == post_train + len(val) and pd.to_datetime(sample["as_of_date"]).dt.date.min() == ONSET

    # 3. the same episode again: nothing to do (the onset is part of the idempotency key: same rows, same onset)
    versions = [v.version for v in reg.versions()]
    train(env, *RECENCY, onset=ONSET)
    assert [v.version for v in reg.versions()] == versions == ["1", "2"]

    # 4. reference_rows=validation: only the validation rows
    train(env, *RECENCY, "training.reference_rows=validation", onset=ONSET, force=True)
    rows3 = profile_rows(env, "3")
    assert rows3[(rows3["column"] == "x2") & (rows3["stat"] == "rows")]["value"].item() == len(val)


def test_an_onset_without_two_matured_post_onset_dates_trains_on_the_ordinary_windows(
        env, caplog: pytest.LogCaptureFixture) -> None:
    """A retrain fired before two post-onset dates matured (the policy's maximum wait): nothing of the new regime
    to validate on, so the job trains on the ordinary windows and says so (the windows alone would refuse)."""
    cfg = load_config("jt", env["conf"], []).config
    with pytest.raises(MissingInputError, match=r"^training windows for onset 2026-02-25: expected at least 2 "):
        training_windows(D, cfg.label.horizon_days, cfg.training, dt.date(2026, 2, 25))
    with caplog.at_level("WARNING", logger="driftline.jobs.train"):
        train(env, onset=dt.date(2026, 2, 25), force=True)
    assert "the drift episode from 2026-02-25 has fewer than 2 post-onset dates with matured labels; training on " \
           "the ordinary windows" in caplog.text
    latest = registry(env).versions()[-1]
    ordinary = training_windows(D, cfg.label.horizon_days, cfg.training)
    assert "driftline.onset" not in latest.tags
    assert latest.tags["driftline.validation_window"] == f"{ordinary.validation_start}..{ordinary.validation_end}"
