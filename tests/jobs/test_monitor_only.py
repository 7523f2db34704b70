"""Monitor-only models (``sources.inference``): an inference log written by someone else's code (here: the test,
with ``deltalake``, not driftline), ingested by ``prepare_features``, its version adopted without a model URI, then
scored (the logged scores), monitored and judged by the retrain policy.

Oracle: the same monitor on an equivalent driftline-scored model. ``jt`` adopts an XGBoost model fitted in the test
and scores the dates with it; the inference log holds the same feature rows with XGBoost's own ``predict_proba``
(plus a version column and rows of other days). Both are monitored on the same dates, with the same labels arriving
late: every ``monitor_metrics`` row (drift, quality, realized and estimated performance, per segment) and every
``monitor_runs`` verdict is equal.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xgboost as xgb
import yaml
from deltalake import write_deltalake
from sklearn.metrics import log_loss

from driftline.cli.models import models_command
from driftline.cli.runner import run_job
from driftline.registry.client import clear_cache
from driftline.tables import open_store
from driftline.tables.spec import StorageConfig
from tests.jobs.test_adopt import NUM, REF, labelled, log_external
from tests.jobs.test_train import MODEL, D, registry

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

SCORED = (dt.date(2026, 2, 26), D)   # scored by jt, logged for jm, monitored for both (labels mature after 1 day)
MONITOR_ONLY = {
    **{k: v for k, v in MODEL.items() if k not in ("estimator", "sources", "features")},
    "name": "jm",
    "sources": {
        "inference": {"table": "jm_inference", "key": "account", "date": "served_on", "score": "probability",
                      "version": "model_version"},
        "labels": MODEL["sources"]["labels"],
    },
    "features": [{"name": "x1", "kind": "logged", "column": "amount_sum"}, {"name": "x2", "kind": "logged"},
                 {"name": "plan", "kind": "logged", "categorical": True}],
    # per serving version: performance rows of each (the version column of the log, ingested as serving_version)
    "monitoring": {**MODEL["monitoring"], "segments": [*MODEL["monitoring"]["segments"], "serving_version"]},
}
DROP = ["model", "run_id", "config_hash", "code_version", "created_at", "started_at", "report_path", "reference_id"]


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def cli(job: str, model: str, env, first: dt.date, last: dt.date | None = None, *args: str) -> int:
    when = ["--date", first.isoformat()] if last is None else ["--from", first.isoformat(), "--to", last.isoformat()]
    return run_job(job, ["--model", model, *when, "--conf-dir", str(env["conf"]), *args])


def adopt(env, model: str, *args: str) -> int:
    clear_cache()
    return models_command(["adopt", "--model", model, "--reference-from", REF[0].isoformat(), "--reference-to",
                           REF[1].isoformat(), "--date", D.isoformat(), "--conf-dir", str(env["conf"]), *args])


def inference_log(env, model) -> pd.DataFrame:
    """What a serving system logged: one row per prediction of REF..SCORED, the features it was given (under its own
    column names), the probability it returned, its own version label (an A/B split by entity); plus rows of older
    days the log keeps, which no run here asks for (the date column decides which rows are read)."""
    f = env["features"]
    rows = f[(f["as_of_date"] >= REF[0]) & (f["as_of_date"] <= SCORED[1])].reset_index(drop=True)
    log = pd.DataFrame({
        "account": rows["customer_id"], "served_on": rows["as_of_date"], "amount_sum": rows["x1"],
        "x2": rows["x2"], "plan": rows["plan"],
        "probability": model.predict_proba(rows[NUM].astype("float64"))[:, 1].astype("float64"),
        "model_version": np.where(rows["customer_id"].str[-1].astype(int) % 2 == 0, "7", "8"),   # an A/B split
    })
    earlier = f[f["as_of_date"] < REF[0]].head(30)
    other = pd.DataFrame({"account": earlier["customer_id"], "served_on": earlier["as_of_date"],
                          "amount_sum": earlier["x1"], "x2": earlier["x2"], "plan": earlier["plan"],
                          "probability": 0.5, "model_version": "6"})
    return pd.concat([log, other], ignore_index=True)


def known_labels(env, before: dt.date) -> pd.DataFrame:
    """The latest label of each (entity, as-of date) known before ``before`` 00:00 UTC (pandas)."""
    lpdf = env["labels"]
    cut = pd.Timestamp(dt.datetime.combine(before, dt.time(), dt.UTC))
    known = lpdf[pd.to_datetime(lpdf["label_ts"], utc=True) < cut]
    return known.sort_values("label_ts").groupby(["customer_id", "as_of_date"], as_index=False).last()


def write_log(env, pdf: pd.DataFrame, name: str = "jm_inference", **types: pa.DataType) -> None:
    """``pdf`` as a Delta table written by delta-rs (``types``: column types other than the log's usual ones)."""
    usual = {"account": pa.string(), "served_on": pa.date32(), "amount_sum": pa.float64(), "x2": pa.float64(),
             "plan": pa.string(), "probability": pa.float64(), "model_version": pa.string()}
    schema = pa.schema(list({**usual, **types}.items()))
    table = pa.Table.from_pandas(pdf[[f.name for f in schema]], schema=schema, preserve_index=False)
    write_deltalake(str(env["ws"] / "tables" / name), table, mode="overwrite")


def table(env, name: str, model: str) -> pd.DataFrame:
    store = open_store(env["spark"], StorageConfig(), env["ws"])
    pdf = store.read(name).toPandas()
    return pdf[pdf["model"] == model].drop(columns=[c for c in DROP if c in pdf.columns])


def same_rows(a: pd.DataFrame, b: pd.DataFrame, key: list[str]) -> None:
    a, b = (x.sort_values(key).reset_index(drop=True) for x in (a, b))
    assert len(a) == len(b) and len(a) > 0
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-9)


# the user's hook on a fired decision (a `command` channel): appends the alert's JSON from its stdin to argv[1]
HOOK = "import sys; open(sys.argv[1], 'a').write(' '.join(sys.stdin.read().split()) + chr(10))"


@pytest.fixture(scope="module")
def served(env):
    hook = {"channels": {"upstream": {"type": "command", "argv": [sys.executable, "-c", HOOK,
                                                                  str(env["ws"] / "jm_hook.jsonl")]}},
            "rules": [{"name": "retrain_upstream", "when": "retrain", "channels": ["upstream"]}]}
    (env["conf"] / "models" / "jm.yaml").write_text(yaml.safe_dump({**MONITOR_ONLY, "alerts": hook}))
    rows = labelled(env, *REF)
    return xgb.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(rows[NUM].astype("float64"),
                                                                                rows["churned"].astype(int))


def test_a_monitor_only_model_is_monitored_as_the_same_model_scored_by_driftline(env, served, capsys) -> None:
    # the driftline-scored twin: the XGBoost model adopted into jt, scored and monitored
    uri = log_external(env, "xgboost", served, "served_xgb", input_example=env["features"][NUM].head(3))
    assert adopt(env, "jt", "--model-uri", uri) == 0
    assert cli("score", "jt", env, *SCORED) == 0

    # the monitor-only model: its log ingested, a version adopted from the log's scores of the reference window
    write_log(env, inference_log(env, served))
    assert cli("prepare_features", "jm", env, REF[0], SCORED[1]) == 0
    capsys.readouterr()
    assert adopt(env, "jm") == 0
    assert "jm: v1 adopted from inference:jm_inference (gate passed; champion)" in capsys.readouterr().out
    reg = registry(env)
    v1 = reg.client.get_model_version("jm", "1")
    assert (v1.tags["driftline.adopted_kind"], v1.tags["driftline.adopted_from"]) == ("logged", "inference:jm_inference")
    run = reg.client.get_run(v1.run_id)
    rows = labelled(env, *REF)
    assert int(run.data.params["validation_rows"]) == len(rows)
    p = served.predict_proba(rows[NUM].astype("float64"))[:, 1].astype("float64")   # as logged
    assert run.data.metrics["val_log_loss"] == pytest.approx(log_loss(rows["churned"], p), abs=1e-9)
    assert not [m for m in run.data.metrics if m.startswith("importance")]   # the logged scores have none

    # "scoring" it publishes the logged scores
    assert cli("score", "jm", env, *SCORED) == 0
    store = open_store(env["spark"], StorageConfig(), env["ws"])
    jm = store.read("jm__predictions").toPandas().sort_values(["score_date", "customer_id"]).reset_index(drop=True)
    jt = store.read("jt__predictions").toPandas().sort_values(["score_date", "customer_id"]).reset_index(drop=True)
    np.testing.assert_allclose(jm["score"], jt["score"], rtol=0, atol=1e-12)
    assert (jm["customer_id"].tolist(), set(jm["role"]), set(jm["published"])) == (
        jt["customer_id"].tolist(), {"champion"}, {True})

    # both monitored on the same dates: every metric row and every verdict equal
    # (40 rows a day: drift and performance judged from 15 rows, so they are; 2-day windows: a window's first day
    # has its labels before the run, so its performance rows are computed per segment too)
    for model in ("jt", "jm"):
        assert cli("monitor", model, env, *SCORED, "--set", "monitoring.drift.min_rows=15",
                   "--set", "monitoring.performance.min_labels=15", "--set", "monitoring.window_days=2") == 0
    metrics = ["run_date", "slice", "baseline", "column", "metric"]
    got = table(env, "monitor_metrics", "jm")
    per_version = got["slice"].str.startswith("serving_version=")
    same_rows(got[~per_version], table(env, "monitor_metrics", "jt"), metrics)
    assert {"psi", "log_loss"} <= set(got["metric"]) and len(set(got["slice"])) > 1   # drift, performance, segments
    assert got[(got["metric"] == "psi") & (got["status"] != "insufficient_data")].shape[0] > 0
    assert got[(got["metric"] == "log_loss") & got["value"].notna()].shape[0] > 0      # late labels were joined
    same_rows(table(env, "monitor_runs", "jm"), table(env, "monitor_runs", "jt"), ["run_date"])

    # per serving version: the realized log loss of each version's rows, of the run's window and of the earlier
    # windows whose labels matured since, against scikit-learn on the rows the test logged for that version and the
    # labels known before the run
    losses = got[per_version & (got["metric"] == "log_loss") & got["value"].notna()]
    assert set(losses["slice"]) == {"serving_version=7", "serving_version=8"}
    assert (losses["window_end"] < losses["run_date"]).any() and (losses["window_end"] == losses["run_date"]).any()
    logged = inference_log(env, served)
    for r in losses.itertuples():
        first = max(r.window_start, SCORED[0])   # (the days before were logged but never scored)
        mine = logged[(logged["served_on"] >= first) & (logged["served_on"] <= r.window_end)
                      & (logged["model_version"] == r.slice[-1])]
        known = known_labels(env, r.run_date).rename(columns={"customer_id": "account", "as_of_date": "served_on"})
        both = mine.merge(known, on=["account", "served_on"])
        assert r.n_current == len(both) and r.value == pytest.approx(
            log_loss(both["churned"], both["probability"], labels=[0, 1]), abs=1e-9)

    # the retrain policy runs on it (realized log loss above a bar it cannot meet): it fires, nothing is trained;
    # the next day the same trigger is in the cooldown that fire started
    fire = ["--set", "retrain.performance.enabled=true", "--set", "retrain.performance.metric=log_loss",
            "--set", "retrain.performance.max=0.0001", "--set", "retrain.performance.min_labels=1"]
    day = SCORED[1] - dt.timedelta(days=1)
    assert cli("retrain", "jm", env, day, SCORED[1], *fire) == 0
    decisions = table(env, "retrain_decisions", "jm").sort_values("decision_date")
    assert decisions[["status", "train_status"]].values.tolist() == [["fired", "monitor_only"], ["cooldown", "not_run"]]
    assert [str(v.version) for v in reg.client.search_model_versions("name='jm'")] == ["1"]
    # the fired decision ran the user's hook once (the cooldown day did not): the alert's JSON on its stdin
    sent = [json.loads(line) for line in (env["ws"] / "jm_hook.jsonl").read_text().splitlines()]
    assert [(a["model"], a["rule"], a["window"], a["status"]) for a in sent] == [
        ("jm", "retrain_upstream", day.isoformat(), "firing")]

    # the serving side deployed a new model: adopted again with a newer reference window, it is judged against the
    # baseline (not against v1, which predicts the same logged scores) and becomes champion
    capsys.readouterr()
    clear_cache()
    assert models_command(["adopt", "--model", "jm", "--reference-from", "2026-02-18", "--reference-to",
                           REF[1].isoformat(), "--date", D.isoformat(), "--conf-dir", str(env["conf"])]) == 0
    assert "jm: v2 adopted from inference:jm_inference (gate passed; champion)" in capsys.readouterr().out
    assert reg.client.get_model_version("jm", "2").tags["driftline.gate.reference_kind"] == "baseline"


def test_bad_inference_logs_and_misuse_are_refused_in_one_line(env, served, capsys) -> None:
    base = inference_log(env, served)
    first = SCORED[1]
    store = open_store(env["spark"], StorageConfig(), env["ws"])

    def versions() -> tuple[int | None, ...]:
        return tuple(store.version(t) if store.exists(t) else None
                     for t in ("jm__features", "quality_results", "quarantine"))

    before = versions()

    def refused(code: int, text: str, *args: str) -> None:
        capsys.readouterr()
        assert cli("prepare_features", "jm", env, first, None, *args) == code
        err = [line for line in capsys.readouterr().err.splitlines()
               if line.startswith("driftline prepare_features: error:")]
        assert len(err) == 1 and text in err[0], err

    write_log(env, base.assign(probability="high"), "jm_bad_type", probability=pa.string())
    refused(3, "column probability to be a numeric score, found string",
            "--set", "sources.inference.table=jm_bad_type")
    odd = (base["served_on"] == first) & (base.index % 7 == 0)
    for bad in (np.nan, np.inf, 1.5):
        write_log(env, base.assign(probability=np.where(odd, bad, base["probability"])), "jm_odd")
        refused(3, f"expected a probability in [0, 1] in probability on every row, found {int(odd.sum())} rows "
                   f"without one (null, NaN, infinite or out of range) on 1 date(s), {int(odd.sum())} on {first}",
                "--set", "sources.inference.table=jm_odd")
    write_log(env, base[base["served_on"] != first], "jm_gap")
    refused(3, f"inference: 0 rows logged for as_of_date {first}; expected at least 1",
            "--set", "sources.inference.table=jm_gap")
    write_log(env, pd.concat([base, base[base["served_on"] == first].head(2)]), "jm_dupes")
    refused(3, "key_unique_features", "--set", "sources.inference.table=jm_dupes")
    refused(3, "sources.inference: expected source table 'jm_none' to exist", "--set", "sources.inference.table=jm_none")
    assert versions() == before   # nothing written by any refused run

    # a monitor-only model is never trained, and its versions are not read from a model URI
    capsys.readouterr()
    assert cli("train", "jm", env, D) == 2
    assert "driftline train: error: train: model jm is monitor-only (sources.inference)" in capsys.readouterr().err
    assert adopt(env, "jm", "--model-uri", "models:/served_xgb/1") == 2
    assert "expected no --model-uri, found models:/served_xgb/1" in capsys.readouterr().err
    assert adopt(env, "jt") == 2
    assert "--model-uri: expected the MLflow model to adopt" in capsys.readouterr().err


def test_a_timestamped_log_keeps_the_latest_row_of_each_entity_and_utc_day(env, served) -> None:
    """``sources.inference.timestamp``: a row belongs to its timestamp's UTC date; of several rows of one (entity,
    day) the latest wins. Oracle: pandas on the log the test wrote."""
    f = env["features"]
    day = SCORED[0]
    rows = f[f["as_of_date"] == day].reset_index(drop=True)
    base = pd.Timestamp(dt.datetime.combine(day, dt.time(9), dt.UTC))
    log = pd.DataFrame({"account": rows["customer_id"], "served_at": base + pd.to_timedelta(rows.index, "min"),
                        "amount_sum": rows["x1"], "x2": rows["x2"], "plan": rows["plan"],
                        "probability": np.linspace(0.1, 0.9, len(rows)), "model_version": "7"})
    later = log.head(5).assign(served_at=lambda d: d["served_at"] + pd.Timedelta(hours=14, minutes=55, seconds=59),
                               probability=0.99)                        # 23:55:59..23:59:59 UTC: the same day
    before = log.head(3).assign(served_at=base - pd.Timedelta(hours=9, microseconds=1), probability=0.01)  # day - 1
    after = log.tail(2).assign(served_at=base + pd.Timedelta(hours=15), probability=0.02)                  # day + 1
    keyless = log.head(1).assign(account=None, probability=0.03)                       # no entity: left out
    pdf = pd.concat([log, later, before, after, keyless], ignore_index=True)
    schema = pa.schema([("account", pa.string()), ("served_at", pa.timestamp("us", tz="UTC")),
                        ("amount_sum", pa.float64()), ("x2", pa.float64()), ("plan", pa.string()),
                        ("probability", pa.float64()), ("model_version", pa.string())])
    write_deltalake(str(env["ws"] / "tables" / "jm_stamped"),
                    pa.Table.from_pandas(pdf, schema=schema, preserve_index=False), mode="overwrite")
    assert cli("prepare_features", "jm", env, day, None, "--set", "sources.inference.table=jm_stamped",
               "--set", "sources.inference.date=null", "--set", "sources.inference.timestamp=served_at") == 0

    store = open_store(env["spark"], StorageConfig(), env["ws"])
    got = (store.read("jm__features", partitions={"as_of_date": [day]}).toPandas()
           .sort_values("customer_id").reset_index(drop=True))
    on_day = pdf[(pdf["served_at"].dt.floor("D").dt.date == day) & pdf["account"].notna()]
    want = (on_day.sort_values("served_at").groupby("account", as_index=False).last()
            .sort_values("account").reset_index(drop=True))
    assert got["customer_id"].tolist() == want["account"].tolist()
    np.testing.assert_array_equal(got["logged_score"].to_numpy(), want["probability"].to_numpy())
    pd.testing.assert_series_equal(got["x1"], want["amount_sum"], check_names=False)
    assert (got["logged_score"] == 0.99).sum() == 5 and not got["logged_score"].isin([0.01, 0.02, 0.03]).any()
