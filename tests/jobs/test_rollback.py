"""Automatic rollback (``retrain.rollback``) end to end: real models, predictions, labels, MLflow aliases.

Workspace: the train tests' ``env``. ``jt`` v1 is trained on 02-12..02-25 with almost no signal (``C = 1e-5``: its
scores stay near the base rate); v2 on the same window with ``C = 1`` beats it on the validation window, and the gate
promotes it. On the later days 02-20..02-27 v2 does worse than v1 (log loss 0.75 against 0.70). With rollback on,
the score job scores v2 (champion) and v1 (``previous``); the retrain job compares them on the same rows whose
label matured before its date — the oracle is scikit-learn's log loss on those rows, read back with delta-rs.
"""

from __future__ import annotations

import datetime as dt
import socket

import pandas as pd
import pytest
from deltalake import DeltaTable
from sklearn.metrics import log_loss

from driftline.cli.main import main
from driftline.cli.runner import run_job
from driftline.vocabulary import CHAMPION, PREVIOUS
from tests.jobs.test_score import registry_of

pytestmark = pytest.mark.slow

D = dt.date(2026, 3, 1)
ROLLBACK = ("--set", "retrain.rollback.enabled=true", "--set", "retrain.rollback.min_labels=50",
            "--set", "retrain.rollback.window_days=10", "--set", "retrain.enabled=false")


def conf(env) -> list[str]:
    return ["--model", "jt", "--conf-dir", str(env["conf"])]


def rollbacks(env) -> pd.DataFrame:
    return DeltaTable(str(env["ws"] / "tables" / "champion_rollbacks")).to_pandas().sort_values("decision_date")


def test_a_worse_promoted_champion_is_rolled_back_once_on_the_same_labelled_rows(env, capsys) -> None:
    registry = registry_of(env, "jt")
    assert run_job("train", [*conf(env), "--date", D.isoformat(), "--set", "estimator.params.C=0.00001"]) == 0
    assert run_job("train", [*conf(env), "--date", D.isoformat()]) == 0
    # v2 beat v1 on the validation window, so the gate promoted it
    assert (registry.alias(CHAMPION).version, registry.alias(PREVIOUS).version) == ("2", "1")

    assert run_job("score", [*conf(env), "--from", "2026-02-20", "--to", "2026-02-27", *ROLLBACK]) == 0
    preds = DeltaTable(str(env["ws"] / "tables" / "jt__predictions")).to_pandas()
    assert set(zip(preds["role"], preds["model_version"].astype(str), strict=True)) == {("champion", "2"),
                                                                                       ("previous", "1")}

    # the retrain job reads the monitoring history first
    assert run_job("monitor", [*conf(env), "--date", D.isoformat(), "--set", "monitoring.window_days=4"]) == 0
    # too few labels: recorded, never a rollback
    with socket.socket() as s:      # the alert's webhook points at a port nobody listens on: a recorded failure
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    alerts = ("--set", f"alerts.channels={{hook: {{type: webhook, url: 'http://127.0.0.1:{closed}/x', retries: 0}}}}",
              "--set", "alerts.rules=[{name: rolled, when: rollback, channels: [hook], severity: critical}]")
    assert run_job("retrain", [*conf(env), "--date", D.isoformat(), *ROLLBACK,
                               "--set", "retrain.rollback.min_labels=100000", *alerts]) == 0
    [row] = rollbacks(env).to_dict("records")
    assert (row["status"], row["champion_version"], row["previous_version"], row["champion_after"]) == (
        "insufficient_data", "2", "1", "2")
    assert "fewer than retrain.rollback.min_labels 100000" in row["reason"]
    assert registry.alias(CHAMPION).version == "2"

    # enough labels: v2 is worse than v1 on the same rows -> the champion moves back
    assert run_job("retrain", [*conf(env), "--date", D.isoformat(), *ROLLBACK, *alerts]) == 0
    [row] = rollbacks(env).to_dict("records")
    labels = env["labels"]
    matured = labels[pd.to_datetime(labels["label_ts"], utc=True) < pd.Timestamp(D, tz="UTC")]
    preds["score_date"] = pd.to_datetime(preds["score_date"]).dt.date
    matured = matured.assign(as_of_date=pd.to_datetime(matured["as_of_date"]).dt.date)
    joined = preds.merge(matured, left_on=["customer_id", "score_date"], right_on=["customer_id", "as_of_date"])
    champ, prev = joined[joined["role"] == "champion"], joined[joined["role"] == "previous"]
    assert len(champ) == len(prev) == row["labelled_rows"] and len(champ) >= 50
    assert row["champion_value"] == pytest.approx(log_loss(champ["churned"], champ["score"]), rel=1e-9)
    assert row["previous_value"] == pytest.approx(log_loss(prev["churned"], prev["score"]), rel=1e-9)
    assert row["champion_value"] > row["previous_value"]
    assert (row["status"], row["champion_after"], row["metric"]) == ("rolled_back", "1", "log_loss")
    assert (row["first_date"], row["last_date"]) == (champ["score_date"].min(), champ["score_date"].max())
    assert registry.alias(CHAMPION).version == "1" and registry.alias(PREVIOUS) is None
    capsys.readouterr()
    main(["status", *conf(env), "--date", D.isoformat()])
    assert f"rollback check (2026-03-01): rolled_back — {row['reason']}" in capsys.readouterr().out
    events = DeltaTable(str(env["ws"] / "tables" / "alert_events")).to_pandas()
    [event] = events.to_dict("records")
    assert (event["rule"], event["kind"], event["status"], event["severity"]) == ("rolled", "rollback", "failed",
                                                                                  "critical")
    assert event["reason"].startswith("champion rolled back from v2 to v1: v2 log_loss")

    # a rerun of the date: nothing to compare any more (no previous version), the recorded row stays
    recorded = rollbacks(env)
    assert run_job("retrain", [*conf(env), "--date", D.isoformat(), "--force", *ROLLBACK]) == 0
    pd.testing.assert_frame_equal(rollbacks(env), recorded)

    # at most once per version: v2 promoted again by hand is held, however it does
    assert main(["models", "promote", "2", *conf(env)]) == 0
    assert run_job("retrain", [*conf(env), "--date", "2026-03-02", *ROLLBACK]) == 0
    later = rollbacks(env).to_dict("records")[-1]
    assert (later["status"], later["champion_after"]) == ("held", "2")
    assert later["reason"] == "v2 was rolled back once already (on 2026-03-01); not again"
    assert registry.alias(CHAMPION).version == "2"
