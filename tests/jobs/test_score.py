"""The score job end to end: real models trained by the train job, Delta tables, MLflow SQLite registry.

The oracle is scikit-learn in this process: the registered model scored with ``predict_proba`` /
``predict`` on the same feature rows (read back from the features table). Champion ``jt`` v1 is a
logistic regression (C=1), challenger v2 a weaker one (C=0.001, rejected by the gate, given the
``challenger`` alias by hand); ``jr`` v1 is a HistGradientBoosting regressor on the same features.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from chispa import assert_approx_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from driftline.cli.runner import run_job
from driftline.config import load_config
from driftline.jobs.context import code_version
from driftline.registry.client import ModelRegistry, tracking_setup
from driftline.tables import CommitInfo, open_store
from driftline.tables.contracts import PREDICTIONS
from driftline.tables.spec import StorageConfig
from driftline.training.pipeline import model_frame
from driftline.vocabulary import CHAMPION
from tests.jobs.test_train import MODEL
from tests.jobs.test_train import D as TRAIN_DATE
from tests.payload import Payload

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

HERE = Path(__file__).resolve().parent
NUM, CAT = ["x1", "x2"], ["plan"]
KEY = "customer_id"
VOLATILE = ("run_id", "scored_at")   # differ between runs by design
D = dt.date(2026, 2, 27)             # the scored date: its features hold nulls in x1 and plan (R11)


def store_of(env):
    return open_store(env["spark"], StorageConfig(), env["ws"])


def registry_of(env, model: str) -> ModelRegistry:
    cfg = load_config(model, env["conf"]).config
    return ModelRegistry(tracking_setup(cfg.mlflow, env["ws"]), model)


def run(env, job: str, model: str, *args: str) -> int:
    date = TRAIN_DATE if job == "train" else D
    return run_job(job, ["--model", model, "--date", date.isoformat(), "--conf-dir", str(env["conf"]), *args])


@pytest.fixture(scope="module")
def trained(env):
    """jt: champion v1 + challenger v2; jr: a regressor champion, on a copy of jt's features."""
    assert run(env, "train", "jt") == 0
    assert run(env, "train", "jt", "--set", "estimator.params.C=0.001") == 0
    reg = registry_of(env, "jt")
    assert reg.alias(CHAMPION).version == "1" and reg.get("2").tags["driftline.gate.passed"] == "false"
    reg.client.set_registered_model_alias("jt", "challenger", "2")

    regressor = {**MODEL, "name": "jr", "label": {**MODEL["label"], "task": "regression"},
                 "estimator": {"type": "hist_gradient_boosting_regressor", "params": {"max_iter": 30}, "seed": 3},
                 "training": {**MODEL["training"], "gate": {"metric": None}}}
    (env["conf"] / "models" / "jr.yaml").write_text(yaml.safe_dump(regressor))
    store = store_of(env)
    commit = CommitInfo(job="test", run_id="setup", key="all", code_version="t", config_hash="t")
    store.replace_partitions("jr__features", store.read("jt__features"), ["as_of_date"], commit)
    assert run(env, "train", "jr") == 0
    jr = registry_of(env, "jr")
    if jr.alias(CHAMPION) is None:                  # the gate is not what these tests are about
        jr.promote("1", "test")
    return env


def features_at(env, table: str = "jt__features") -> pd.DataFrame:
    return store_of(env).read(table, partitions={"as_of_date": [D]}).toPandas()


def expected(env, model: str, versions: dict[str, str], pdf: pd.DataFrame, task: str) -> DataFrame:
    """What the predictions partition must hold, from scikit-learn on ``pdf`` (volatile columns left out)."""
    reg = registry_of(env, model)
    x = model_frame(pdf, NUM, CAT)
    rows = []
    cfg_hash = load_config(model, env["conf"]).config_hash
    for role, version in versions.items():
        fitted = reg.load(version)
        if task == "classification":
            scores = fitted.predict_proba(x)[:, list(fitted.classes_).index(1)]
            labels = [int(s >= 0.5) for s in scores]
        else:
            scores = fitted.predict(x)
            labels = [None] * len(scores)
        rows += [(k, float(s), lab, model, version, role, code_version(), cfg_hash, D, role == "champion")
                 for k, s, lab in zip(pdf[KEY], scores, labels, strict=True)]
    schema = T.StructType([f for f in PREDICTIONS.schema(leading=[T.StructField(KEY, T.StringType())]).fields if f.name not in VOLATILE])
    return env["spark"].createDataFrame(rows, schema)


def predictions(env, model: str = "jt", table: str | None = None) -> DataFrame:
    return store_of(env).read(table or f"{model}__predictions", partitions={"score_date": [D]})


def stable(df: DataFrame) -> DataFrame:
    return df.drop(*VOLATILE)


def stats(env, model: str = "jt", table: str = "scoring_stats") -> dict[tuple, float]:
    rows = store_of(env).read(table).filter((F.col("model") == model) & (F.col("score_date") == D)).collect()
    return {(r["role"], r["column"], r["metric"]): r["value"] for r in rows}


def test_classifier_champion_and_shadow_challenger_equal_scikit_learn(trained, capsys) -> None:
    env = trained
    assert run(env, "score", "jt") == 0
    pdf = features_at(env)
    assert pdf["x1"].isna().any() and pdf["plan"].isna().any()       # nulls are scored too (R11)
    got = predictions(env)
    want = expected(env, "jt", {"champion": "1", "challenger": "2"}, pdf, "classification")
    assert_approx_df_equality(stable(got), want, precision=1e-12, ignore_row_order=True, ignore_nullable=True)
    lineage = got.select("run_id", "scored_at").distinct().collect()
    assert len(lineage) == 1 and lineage[0]["run_id"].startswith("score-")

    # statistics: data (null rates, unseen shares), per role, and the champion/challenger agreement
    s = stats(env)
    n = len(pdf)
    assert s[(None, None, "rows")] == n
    assert s[(None, "x1", "null_rate")] == pytest.approx(pdf["x1"].isna().mean())
    assert s[(None, "plan", "null_rate")] == pytest.approx(pdf["plan"].isna().mean())
    assert s[("champion", "plan", "unseen_share")] == 0 and s[("challenger", "plan", "unseen_share")] == 0
    w = want.toPandas()
    champ, chall = (w[w["role"] == r].set_index(KEY).sort_index() for r in ("champion", "challenger"))
    assert s[("champion", None, "rows")] == n and s[("challenger", None, "rows")] == n
    assert s[("champion", None, "mean_score")] == pytest.approx(champ["score"].mean(), rel=1e-12)
    assert s[("challenger", None, "positive_rate")] == pytest.approx(chall["predicted_label"].mean())
    assert s[("comparison", None, "rows_compared")] == n
    assert s[("comparison", None, "label_agreement")] == pytest.approx(
        (champ["predicted_label"] == chall["predicted_label"]).mean())
    diff = (champ["score"] - chall["score"]).abs()
    assert s[("comparison", None, "mean_abs_score_diff")] == pytest.approx(diff.mean(), rel=1e-12)
    assert s[("comparison", None, "max_abs_score_diff")] == pytest.approx(diff.max(), rel=1e-12)
    assert diff.mean() > 0                                            # the two models really differ
    versions = store_of(env).read("scoring_stats").select("champion_version", "challenger_version").distinct()
    assert [tuple(r) for r in versions.collect()] == [("1", "2")]


def test_regressor_equals_scikit_learn(trained) -> None:
    env = trained
    assert run(env, "score", "jr") == 0
    pdf = features_at(env, "jr__features")
    version = registry_of(env, "jr").alias(CHAMPION).version
    want = expected(env, "jr", {"champion": version}, pdf, "regression")
    got = predictions(env, "jr")
    assert_approx_df_equality(stable(got), want, precision=1e-12, ignore_row_order=True, ignore_nullable=True)
    assert got.filter(F.col("predicted_label").isNotNull()).count() == 0
    s = stats(env, "jr")
    assert s[("champion", None, "mean_score")] == pytest.approx(want.toPandas()["score"].mean(), rel=1e-12)
    assert ("comparison", None, "label_agreement") not in s and ("champion", None, "positive_rate") not in s


def test_rerun_replaces_the_date_and_never_duplicates(trained) -> None:   # R1
    env = trained
    store = store_of(env)
    assert run(env, "score", "jt") == 0
    first, v_first = stable(predictions(env)), store.version("jt__predictions")
    stats_version = store.version("scoring_stats")
    assert run(env, "score", "jt") == 0
    assert store.version("jt__predictions") == v_first + 1 and store.version("scoring_stats") == stats_version + 1
    again = stable(predictions(env))
    assert_approx_df_equality(again, first, precision=0.0, ignore_row_order=True)
    assert again.count() == 2 * len(features_at(env))
    assert again.groupBy(KEY, "role").count().filter("count > 1").count() == 0
    head = store.history("jt__predictions")[0]
    assert head["job"] == "score" and head["date"] == D.isoformat()
    assert head["idempotency_key"] == f"driftline/score/jt__predictions/{D.isoformat()}"
    # shadow off: the same date now holds champion rows only (replaced, not appended)
    assert run(env, "score", "jt", "--set", "scoring.shadow=false", "--set", "scoring.batch_size=7") == 0
    only = predictions(env)
    assert sorted(r["role"] for r in only.select("role").distinct().collect()) == ["champion"]
    assert_approx_df_equality(stable(only).drop("config_hash"), first.filter("role = 'champion'").drop("config_hash"),
                              precision=0.0, ignore_row_order=True)
    assert ("comparison", None, "label_agreement") not in stats(env)
    # back to the shadow output: the date now records the champion alone, so ask for the aliases as they are
    assert run(env, "score", "jt") == 0
    assert sorted(r["role"] for r in predictions(env).select("role").distinct().collect()) == ["champion"]
    assert run(env, "score", "jt", "--set", "scoring.rerun_versions=current") == 0
    assert sorted(r["role"] for r in predictions(env).select("role").distinct().collect()) == ["challenger",
                                                                                              "champion"]
    assert run(env, "score", "jt") == 0     # the same versions again, under the plain config (its hash)


def test_a_rerun_after_a_promotion_scores_with_the_versions_the_date_recorded(trained) -> None:
    """v2 promoted after D was scored by v1: rerunning D reproduces v1's rows (a forced backfill is
    identical); ``scoring.rerun_versions=current`` rescores it with the new champion."""
    env = trained
    reg = registry_of(env, "jt")
    assert run(env, "score", "jt") == 0
    first = stable(predictions(env))
    reg.client.set_registered_model_alias("jt", CHAMPION, "2")
    try:
        assert run(env, "score", "jt") == 0
        assert_approx_df_equality(stable(predictions(env)), first, precision=0.0, ignore_row_order=True)
        assert run(env, "score", "jt", "--set", "scoring.rerun_versions=current") == 0
        pdf = features_at(env)
        want = expected(env, "jt", {"champion": "2"}, pdf, "classification")   # challenger alias = champion: none
        assert_approx_df_equality(stable(predictions(env)).drop("config_hash"), want.drop("config_hash"),
                                  precision=1e-12, ignore_row_order=True)   # --set changes the config hash
    finally:
        reg.client.set_registered_model_alias("jt", CHAMPION, "1")
        assert run(env, "score", "jt", "--set", "scoring.rerun_versions=current") == 0
        assert run(env, "score", "jt") == 0     # the same versions again, under the plain config (its hash)
    assert_approx_df_equality(stable(predictions(env)), first, precision=0.0, ignore_row_order=True)


def variant_table(env, name: str, pdf: pd.DataFrame, schema: T.StructType) -> str:
    """Write ``pdf`` as table ``name`` (partition as_of_date) and return its location for storage.tables."""
    store = store_of(env)
    commit = CommitInfo(job="test", run_id="setup", key=name, code_version="t", config_hash="t")
    rows = [tuple(None if (isinstance(v, float) and np.isnan(v)) or v is pd.NA else v for v in r)
            for r in pdf[schema.fieldNames()].astype(object).itertuples(index=False)]
    store.replace_partitions(name, env["spark"].createDataFrame(rows, schema), ["as_of_date"], commit)
    return store.location(name)


def test_reordered_extra_columns_and_unseen_categories(trained) -> None:   # R10, R14
    env = trained
    pdf = features_at(env)
    pdf["plan"] = pdf["plan"].astype(object)
    unseen = pdf.index[:5]
    pdf.loc[unseen, "plan"] = "enterprise"                             # a level no model saw in training
    pdf["extra_col"] = 1.5
    schema = T.StructType([                                           # other order, an extra column
        T.StructField("plan", T.StringType()), T.StructField("extra_col", T.DoubleType()),
        T.StructField("x2", T.DoubleType()), T.StructField("as_of_date", T.DateType()),
        T.StructField("x1", T.DoubleType()), T.StructField(KEY, T.StringType()),
    ])
    loc = variant_table(env, "jt_variant_features", pdf, schema)
    ws = env["ws"]
    sets = ["--set", f"storage.tables.jt__features={loc}",
            "--set", f"storage.tables.jt__predictions={ws / 'variant_predictions'}",
            "--set", f"storage.tables.scoring_stats={ws / 'variant_stats'}"]
    assert run(env, "score", "jt", *sets) == 0
    spark = env["spark"]
    cfg = load_config("jt", env["conf"], [s for s in sets if s != "--set"]).config
    variant_store = open_store(spark, cfg.storage, ws)
    got = variant_store.read("jt__predictions", partitions={"score_date": [D]})
    want = expected(env, "jt", {"champion": "1", "challenger": "2"}, pdf, "classification")
    assert_approx_df_equality(stable(got), want, precision=1e-12, ignore_row_order=True, ignore_nullable=True)
    # rows with known categories score exactly as in the plain table
    kept = set(pdf.loc[~pdf.index.isin(unseen), KEY])
    base = stable(predictions(env)).filter(F.col(KEY).isin(list(kept)))
    assert_approx_df_equality(stable(got).filter(F.col(KEY).isin(list(kept))), base, precision=0.0,
                              ignore_row_order=True)
    rows = {(r["role"], r["column"], r["metric"]): r["value"] for r in variant_store.read("scoring_stats").collect()}
    assert rows[("champion", "plan", "unseen_share")] == pytest.approx(5 / len(pdf))
    assert rows[("challenger", "plan", "unseen_share")] == pytest.approx(5 / len(pdf))
    assert all(np.isfinite(v) for v in rows.values() if v is not None)


@pytest.mark.parametrize(("change", "message"), [
    ("missing", "found missing x2 (needed by champion v1, challenger v2)"),
    ("renamed", "found missing x1 (needed by champion v1"),
    ("retyped", "found retyped plan (expected string for categorical in champion v1, found double)"),
])
def test_missing_renamed_or_retyped_feature_exits_2_naming_it(trained, capsys, change: str, message: str) -> None:
    env = trained                                                                        # R18
    pdf = features_at(env)
    fields = {KEY: T.StringType(), "as_of_date": T.DateType(), "x1": T.DoubleType(), "x2": T.DoubleType(),
              "plan": T.StringType()}
    if change == "missing":
        del fields["x2"]
    elif change == "renamed":
        pdf = pdf.rename(columns={"x1": "x1_v2"})
        fields = {("x1_v2" if k == "x1" else k): v for k, v in fields.items()}
    else:
        pdf["plan"] = pdf["plan"].map({"basic": 1.0, "pro": 2.0, "team": 3.0})
        fields["plan"] = T.DoubleType()
    loc = variant_table(env, f"jt_{change}_features", pdf, T.StructType([T.StructField(k, v)
                                                                         for k, v in fields.items()]))
    store = store_of(env)
    before = store.version("jt__predictions"), store.version("scoring_stats")
    capsys.readouterr()
    assert run(env, "score", "jt", "--set", f"storage.tables.jt__features={loc}") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("driftline score: error:")]
    assert len(err) == 1 and err[0].startswith("driftline score: error: table jt__features: expected the features")
    assert message in err[0]
    if change == "renamed":
        assert "columns no model uses: as_of_date, x1_v2" in err[0]
    assert (store.version("jt__predictions"), store.version("scoring_stats")) == before


@pytest.mark.parametrize("damage", ["truncated", "pickle_payload"])
def test_corrupted_or_tampered_champion_is_refused_before_loading(trained, capsys, damage: str) -> None:
    env = trained                                                                   # R16, R17
    reg = registry_of(env, "jt")
    path = Path(reg.artifact_uri(reg.get("1")).removeprefix("file://"))
    original = path.read_bytes()
    marker = env["ws"] / f"pwned-{damage}"
    store = store_of(env)
    before = store.version("jt__predictions"), store.version("scoring_stats")
    path.write_bytes(original[: len(original) // 2] if damage == "truncated" else pickle.dumps(Payload(marker)))
    capsys.readouterr()
    try:
        code = run(env, "score", "jt")
    finally:
        path.write_bytes(original)
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("driftline score: error:")]
    assert len(err) == 1 and "of jt v1: expected SHA-256" in err[0] and "refusing to load" in err[0]
    assert not marker.exists()
    assert (store.version("jt__predictions"), store.version("scoring_stats")) == before


def test_a_task_failing_on_its_first_attempt_gives_identical_output(trained, tmp_path) -> None:   # R6
    env = trained
    assert run(env, "score", "jt") == 0
    clean = stable(predictions(env))
    before = store_of(env).version("jt__predictions")
    marker = tmp_path / "failed-attempts"
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE / "flaky_first_attempt"),
                                                               os.environ.get("PYTHONPATH", "")]),
                 "DRIFTLINE_FLAKY_MARKER": str(marker)}
    code = ("import sys; from driftline.cli.runner import run_job; "
            f"sys.exit(run_job('score', ['--model', 'jt', '--date', '{D}', '--conf-dir', r'{env['conf']}', "
            "'--set', 'runtime.master=local[2,2]']))")
    proc = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "failed on purpose" in marker.read_text()                 # the first attempt really failed
    assert store_of(env).version("jt__predictions") == before + 1
    retried = stable(predictions(env))
    assert_approx_df_equality(retried, clean, precision=0.0, ignore_row_order=True)
    assert retried.count() == clean.count()
