"""``driftline models adopt`` end to end: models trained here, outside driftline, logged with MLflow's own flavors
to the workspace's registry, adopted into ``jt``, scored by the score job and monitored.

Oracles: the library's own ``predict_proba`` on the same feature rows (1e-9); the reference rows reconstructed
with pandas from the test's own inputs (`tests.jobs.test_train.oracle_sets`' rule: labels known before the run's
date); scikit-learn's log loss.
"""

from __future__ import annotations

import datetime as dt
import pickle

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from driftline.cli.models import models_command
from driftline.cli.runner import run_job
from driftline.registry.adopted import AdoptedModel
from driftline.registry.client import clear_cache
from driftline.tables import open_store
from driftline.tables.spec import StorageConfig
from driftline.vocabulary import CHAMPION
from tests.jobs.test_train import D, U, registry
from tests.payload import Payload

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

REF = (dt.date(2026, 2, 12), dt.date(2026, 2, 25))
NUM = ["x1", "x2"]


def labelled(env, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Feature rows of start..end with their latest label known before D (pandas, from the test's inputs)."""
    fpdf, lpdf = env["features"], env["labels"]
    known = lpdf[pd.to_datetime(lpdf["label_ts"], utc=True) < pd.Timestamp(dt.datetime.combine(D, dt.time(), U))]
    latest = known.sort_values("label_ts").groupby(["customer_id", "as_of_date"], as_index=False).last()
    rows = fpdf.merge(latest[["customer_id", "as_of_date", "churned"]], on=["customer_id", "as_of_date"])
    return rows[(rows["as_of_date"] >= start) & (rows["as_of_date"] <= end)].reset_index(drop=True)


def log_external(env, flavor: str, model, name: str, **kwargs) -> str:
    """Log ``model`` with MLflow's own flavor to the workspace's tracking store; its models:/ URI (the folder it was
    stored in: ``env["logged"][name]``)."""
    uri = f"sqlite:///{env['ws'] / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name("notebooks")
    experiment = found.experiment_id if found else client.create_experiment(
        "notebooks", artifact_location=(env["ws"] / "notebook-artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        if flavor == "pyfunc":
            kwargs["python_model"] = model
        else:
            kwargs[{"sklearn": "sk_model", "xgboost": "xgb_model", "lightgbm": "lgb_model"}[flavor]] = model
        info = getattr(mlflow, flavor).log_model(name="model", registered_model_name=name,
                                                 pip_requirements=["mlflow" if flavor == "pyfunc" else flavor],
                                                 **kwargs)
    env.setdefault("logged", {})[name] = client.get_logged_model(info.model_id).artifact_location
    return f"models:/{name}/1"


def adopt(env, uri: str, *args: str) -> int:
    clear_cache()
    return models_command(["adopt", "--model", "jt", "--model-uri", uri, "--reference-from", REF[0].isoformat(),
                           "--reference-to", REF[1].isoformat(), "--date", D.isoformat(),
                           "--conf-dir", str(env["conf"]), *args])


def score(env, date: dt.date, *args: str) -> pd.DataFrame:
    assert run_job("score", ["--model", "jt", "--date", date.isoformat(), "--conf-dir", str(env["conf"]), *args]) == 0
    store = open_store(env["spark"], StorageConfig(), env["ws"])
    return store.read("jt__predictions", partitions={"score_date": [date]}).toPandas()


def features_on(env, date: dt.date) -> pd.DataFrame:
    f = env["features"]
    return f[f["as_of_date"] == date].reset_index(drop=True)


@pytest.fixture(scope="module")
def external(env):
    """An XGBoost classifier fitted on the reference rows by "someone else", and a LightGBM one fitted on shuffled
    labels (worse than the XGBoost champion: its gate fails)."""
    rows = labelled(env, *REF)
    x, y = rows[NUM].astype("float64"), rows["churned"].astype(int)
    shuffled = np.random.default_rng(1).permutation(y.to_numpy())
    return {"rows": rows,
            "xgb": xgb.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(x, y),
            "lgb": lgb.LGBMClassifier(n_estimators=20, num_leaves=7, min_child_samples=5, verbose=-1).fit(x, shuffled)}


def test_adopted_xgboost_and_lightgbm_score_as_the_library(env, external, capsys) -> None:
    reg = registry(env)
    uri = log_external(env, "xgboost", external["xgb"], "ext_xgb", input_example=external["rows"][NUM].head(3))
    assert adopt(env, uri) == 0
    out = capsys.readouterr().out
    assert f"jt: v1 adopted from {uri} (gate passed; champion)" in out
    v1 = reg.get("1")
    assert (v1.tags["driftline.adopted_from"], v1.tags["driftline.adopted_flavor"],
            v1.tags["driftline.reference_window"]) == (uri, "xgboost", f"{REF[0]}..{REF[1]}")
    assert isinstance(reg.load("1"), AdoptedModel)

    # the reference rows are the labelled rows of the window, and the gate's metric is the model's log loss on them
    rows = external["rows"]
    run = reg.client.get_run(v1.run_id)
    assert int(run.data.params["validation_rows"]) == len(rows)
    assert (run.data.params["numeric_features"], run.data.params["categorical_features"]) == ("x1,x2", "")
    p = external["xgb"].predict_proba(rows[NUM].astype("float64"))[:, 1]
    assert run.data.metrics["val_log_loss"] == pytest.approx(log_loss(rows["churned"], p), abs=1e-6)
    assert int(v1.tags["driftline.profile_rows"]) > 0

    # scored by the score job: equal to XGBoost's own predict_proba on the same rows (nulls included)
    day = dt.date(2026, 2, 27)
    got = score(env, day).sort_values("customer_id").reset_index(drop=True)
    feats = features_on(env, day).sort_values("customer_id").reset_index(drop=True)
    assert got["customer_id"].tolist() == feats["customer_id"].tolist()
    want = external["xgb"].predict_proba(feats[NUM].astype("float64"))[:, 1]
    np.testing.assert_allclose(got["score"].to_numpy(), want, rtol=0, atol=1e-9)
    assert set(got["model_version"]) == {"1"}

    # the monitor reads the adopted version's reference like any other
    assert run_job("monitor", ["--model", "jt", "--date", day.isoformat(), "--conf-dir", str(env["conf"])]) == 0

    # a second adoption of the same model, window and rows changes nothing
    assert adopt(env, uri) == 0
    assert "jt: v1 already adopted" in capsys.readouterr().out
    assert [v.version for v in reg.versions()] == ["1"]

    # LightGBM (skops, MLflow's default): worse than the champion, the gate fails; a rerun with --promote makes it
    # champion anyway, recorded on the version
    uri = log_external(env, "lightgbm", external["lgb"], "ext_lgb", input_example=external["rows"][NUM].head(3))
    assert adopt(env, uri) == 0
    assert "jt: v2 adopted from models:/ext_lgb/1 (gate failed; no alias)" in capsys.readouterr().out
    assert reg.alias(CHAMPION).version == "1"
    assert adopt(env, uri, "--promote") == 0
    assert "jt: v2 already adopted from models:/ext_lgb/1 (gate failed; champion)" in capsys.readouterr().out
    assert reg.alias(CHAMPION).version == "2" and reg.alias("previous").version == "1"
    v2 = reg.get("2")
    assert v2.tags["driftline.promotion_reason"].startswith(
        "manual: driftline models adopt --promote (gate: failed, not better: challenger worse than champion v1")
    assert v2.tags["driftline.promoted_by"] == "driftline models adopt --promote"
    day = dt.date(2026, 2, 28)
    got = score(env, day).sort_values("customer_id").reset_index(drop=True)
    feats = features_on(env, day).sort_values("customer_id").reset_index(drop=True)
    want = external["lgb"].predict_proba(feats[NUM].astype("float64"))[:, 1]
    np.testing.assert_allclose(got["score"].to_numpy(), want, rtol=0, atol=1e-9)
    assert set(got["model_version"]) == {"2"}

    # a generic python_function model (predict only): trusted in the config, scored in the Spark workers
    class Logistic(mlflow.pyfunc.PythonModel):      # defined here: cloudpickled by value, as a notebook's would be
        def predict(self, context, model_input):
            return 1 / (1 + np.exp(-0.4 * (model_input["x1"].fillna(10) - 10) + 0.01 * model_input["x2"]))

    uri = log_external(env, "pyfunc", Logistic(), "ext_py", input_example=external["rows"][NUM].head(3))
    assert adopt(env, uri, "--promote", "--set", "adopt.trust_pickle=true") == 0
    assert reg.alias(CHAMPION).version == "3"
    day = dt.date(2026, 2, 26)
    capsys.readouterr()
    # its code runs wherever it is loaded: a config that does not trust it refuses it, in one line
    assert run_job("score", ["--model", "jt", "--date", day.isoformat(), "--conf-dir", str(env["conf"])]) == 1
    assert "a python_function model runs its own code when loaded; refused" in capsys.readouterr().err
    got = score(env, day, "--set", "adopt.trust_pickle=true").sort_values("customer_id").reset_index(drop=True)
    feats = features_on(env, day).sort_values("customer_id").reset_index(drop=True)
    want = Logistic().predict(None, feats[NUM].astype("float64")).to_numpy()
    np.testing.assert_allclose(got["score"].to_numpy(), want, rtol=0, atol=1e-12)
    assert set(got["model_version"]) == {"3"}


def test_bad_models_are_refused_in_one_line_and_nothing_is_registered(env, external, capsys, tmp_path) -> None:
    reg = registry(env)
    before = [v.version for v in reg.versions()]
    rows = external["rows"]

    # a pickled model without adopt.trust_pickle: refused before its bytes are read (the payload never runs)
    uri = log_external(env, "sklearn", LogisticRegression().fit(rows[NUM].fillna(0), rows["churned"]), "ext_pkl",
                       serialization_format="cloudpickle")
    marker = tmp_path / "payload-ran"
    with open(env["logged"]["ext_pkl"].removeprefix("file://") + "/model.pkl", "wb") as f:
        f.write(pickle.dumps(Payload(marker)))
    capsys.readouterr()
    assert adopt(env, uri) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("driftline models: error:")]
    assert len(errors) == 1 and "stored as cloudpickle" in errors[0] and "adopt.trust_pickle: true" in errors[0]
    assert not marker.exists()

    # inputs the config does not have
    odd = rows[NUM].assign(zz=1.0)
    uri = log_external(env, "xgboost", xgb.XGBClassifier(n_estimators=2).fit(odd, rows["churned"]), "ext_zz")
    assert adopt(env, uri) == 2
    assert "expected input columns among the config's features (x1, x2, plan), found zz" in capsys.readouterr().err

    # a regressor for a classification model
    uri = log_external(env, "xgboost", xgb.XGBRegressor(n_estimators=2).fit(rows[NUM], rows["churned"]), "ext_reg")
    assert adopt(env, uri) == 2
    assert "expected a classification model (label.task), found a regression model" in capsys.readouterr().err

    # a URI with no model behind it
    assert adopt(env, "models:/no_such_model/1") == 2
    assert "--model-uri: expected an MLflow model at models:/no_such_model/1, found none" in capsys.readouterr().err
    assert [v.version for v in reg.versions()] == before


def test_reference_rows_from_a_reference_table(env, external, capsys) -> None:
    """--reference-table: the labelled rows of the window come from a table of the user's (a null label and the rows
    outside the window left out), not from the features and labels tables."""
    from pyspark.sql import types as T

    from driftline.tables import CommitInfo

    rows = labelled(env, dt.date(2026, 2, 8), dt.date(2026, 2, 28)).rename(columns={"churned": "outcome"})
    rows["outcome"] = rows["outcome"].astype(float)
    rows.loc[3, "outcome"] = np.nan
    schema = T.StructType([T.StructField("customer_id", T.StringType()), T.StructField("as_of_date", T.DateType()),
                           T.StructField("x1", T.DoubleType()), T.StructField("x2", T.DoubleType()),
                           T.StructField("plan", T.StringType()), T.StructField("outcome", T.DoubleType())])
    cols = ["customer_id", "as_of_date", "x1", "x2", "plan", "outcome"]
    data = [tuple(None if pd.isna(v) else v for v in r) for r in rows[cols].itertuples(index=False)]
    store = open_store(env["spark"], StorageConfig(), env["ws"])
    store.append("jt_reference", env["spark"].createDataFrame(data, schema),
                 CommitInfo(job="test", run_id="setup", key="ref", code_version="t", config_hash="t"))
    uri = log_external(env, "xgboost", external["xgb"], "ext_xgb_ref")
    # (the champion may be the python_function version of the first test: this config must trust it for the gate)
    window = ["--reference-table", "jt_reference", "--label-column", "outcome", "--set", "adopt.trust_pickle=true"]
    capsys.readouterr()
    assert adopt(env, uri, *window[:2], *window[-2:]) == 2            # the default label column is not there
    assert "table jt_reference: expected columns label, found them missing" in capsys.readouterr().err
    reg = registry(env)
    before = len(reg.versions())
    assert adopt(env, uri, *window) == 0
    version = reg.versions()[-1]
    assert len(reg.versions()) == before + 1 and version.tags["driftline.reference_table"] == "jt_reference"
    used = rows[(rows["as_of_date"] >= REF[0]) & (rows["as_of_date"] <= REF[1]) & rows["outcome"].notna()]
    run = reg.client.get_run(version.run_id)
    assert int(run.data.params["validation_rows"]) == len(used)
    p = external["xgb"].predict_proba(used[NUM].astype("float64"))[:, 1]
    assert run.data.metrics["val_log_loss"] == pytest.approx(log_loss(used["outcome"].astype(int), p), abs=1e-6)
