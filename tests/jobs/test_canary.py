"""Canary rollout (``retrain.canary``) end to end: real models, predictions, labels, MLflow aliases.

Workspace: the train tests' ``env`` (see tests/jobs/test_rollback.py for the models): ``jt`` v1 has almost no signal
(``C = 1e-5``); v2 (``C = 1``) beats it on the validation window, so its gate passes — with the canary on it becomes
the ``canary``, not the champion — but on 02-22..02-27 it does worse than v1 on log loss. The oracle of each
comparison is scikit-learn's log loss on the rows both versions scored whose label matured, read back with delta-rs.
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
from driftline.vocabulary import CANARY, CHAMPION, PREVIOUS
from tests.jobs.test_score import registry_of

pytestmark = pytest.mark.slow

D = dt.date(2026, 3, 1)
FIRST, LAST = "2026-02-22", "2026-02-27"
DAYS = 6
CANARY_ON = ("--set", "retrain.canary.enabled=true", "--set", "retrain.canary.steps=[0.2, 0.6]",
             "--set", "retrain.canary.min_days=3", "--set", "retrain.canary.min_labels=50",
             "--set", "retrain.canary.max_prediction_psi=100", "--set", "retrain.enabled=false")
HOLDS = ("--set", "retrain.canary.margin=1.0")   # v2/v3 are worse than v1 by ~0.05: within this margin


def conf(env) -> list[str]:
    return ["--model", "jt", "--conf-dir", str(env["conf"])]


def table(env, name: str) -> pd.DataFrame:
    return DeltaTable(str(env["ws"] / "tables" / name)).to_pandas()


def steps(env) -> list[dict]:
    """canary_steps in decision order (a date's start by the train job before its retrain step)."""
    return sorted(table(env, "canary_steps").to_dict("records"), key=lambda r: (r["decision_date"], r["job"] != "train"))


def score(env, *extra: str) -> pd.DataFrame:
    assert run_job("score", [*conf(env), "--from", FIRST, "--to", LAST, *CANARY_ON, *extra]) == 0
    preds = table(env, "jt__predictions")
    preds["score_date"] = pd.to_datetime(preds["score_date"]).dt.date
    return preds[preds["score_date"].between(dt.date.fromisoformat(FIRST), dt.date.fromisoformat(LAST))]


def published_canary(preds: pd.DataFrame) -> dict[dt.date, set[str]]:
    """Per date: the entities whose published prediction is the canary's; checks one published row per entity."""
    per_entity = preds.groupby(["customer_id", "score_date"])["published"].sum()
    assert (per_entity == 1).all(), "expected exactly one published row per (entity, score_date)"
    pub = preds[preds["published"] & (preds["role"] == "canary")]
    return {d: set(g["customer_id"]) for d, g in pub.groupby("score_date")}


def near(got: int, n: int, fraction: float) -> bool:
    """``got`` of ``n`` hashed entities is within 4 binomial standard deviations of ``fraction``."""
    return abs(got - fraction * n) < 4 * (n * fraction * (1 - fraction)) ** 0.5


def oracle(env, preds: pd.DataFrame, versions: dict[str, str]) -> dict[str, float]:
    """scikit-learn's log loss per role on the rows both versions scored whose label matured before D."""
    labels = env["labels"]
    matured = labels[pd.to_datetime(labels["label_ts"], utc=True) < pd.Timestamp(D, tz="UTC")]
    matured = matured.assign(as_of_date=pd.to_datetime(matured["as_of_date"]).dt.date)
    mine = preds[[preds["model_version"].astype(str).iloc[i] == versions[r] for i, r in enumerate(preds["role"])]]
    joined = mine.merge(matured, left_on=["customer_id", "score_date"], right_on=["customer_id", "as_of_date"])
    return {role: log_loss(g["churned"], g["score"]) for role, g in joined.groupby("role")} | {
        "rows": len(joined) // 2}


def test_a_canary_is_published_for_a_stable_hashed_fraction_rolled_back_when_worse_promoted_when_it_holds(
        env, capsys) -> None:
    registry = registry_of(env, "jt")
    assert run_job("train", [*conf(env), "--date", D.isoformat(), "--set", "estimator.params.C=0.00001"]) == 0
    with socket.socket() as s:      # the alert's webhook points at a port nobody listens on: a recorded failure
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    alerts = ("--set", f"alerts.channels={{hook: {{type: webhook, url: 'http://127.0.0.1:{closed}/x', retries: 0}}}}",
              "--set", "alerts.rules=[{name: rollout, when: canary, channels: [hook]}]")
    # v2 passes the gate against v1: a canary, not a champion
    assert run_job("train", [*conf(env), "--date", D.isoformat(), *CANARY_ON, *alerts]) == 0
    assert (registry.alias(CHAMPION).version, registry.alias(CANARY).version) == ("1", "2")
    [start] = steps(env)
    assert (start["job"], start["status"], start["canary_version"], start["champion_version"],
            start["fraction_before"], start["fraction_after"]) == ("train", "started", "2", "1", 0.0, 0.2)

    # both versions score every row; the canary's prediction is published for the same ~20% of entities each day
    preds = score(env)
    assert set(zip(preds["role"], preds["model_version"].astype(str), strict=True)) == {("champion", "1"),
                                                                                       ("canary", "2")}
    assert len(preds) == 2 * preds.groupby(["customer_id", "score_date"]).ngroups
    slices = published_canary(preds)
    assert len(slices) == DAYS and len({frozenset(s) for s in slices.values()}) == 1   # stable across days
    entities = preds["customer_id"].nunique()
    narrow = next(iter(slices.values()))
    assert near(len(narrow), entities, 0.2) and narrow
    stats = table(env, "scoring_stats")
    fraction_rows = stats[(stats["model"] == "jt") & (stats["metric"] == "published_fraction")]
    assert sorted(fraction_rows["value"]) == [0.2] * DAYS and set(fraction_rows["challenger_version"]) == {"2"}

    # the retrain job reads the monitoring history first
    assert run_job("monitor", [*conf(env), "--date", D.isoformat(), "--set", "monitoring.window_days=4"]) == 0
    # margin 0: v2 is worse than v1 on the same labelled rows -> rolled back, the champion stays
    assert run_job("retrain", [*conf(env), "--date", D.isoformat(), *CANARY_ON, *alerts]) == 0
    rolled = steps(env)[-1]
    truth = oracle(env, preds, {"champion": "1", "canary": "2"})
    assert (rolled["job"], rolled["status"], rolled["fraction_before"], rolled["fraction_after"],
            rolled["days_at_step"], rolled["champion_after"]) == ("retrain", "rolled_back", 0.2, 0.0, DAYS, "1")
    assert rolled["canary_value"] == pytest.approx(truth["canary"], rel=1e-9)
    assert rolled["champion_value"] == pytest.approx(truth["champion"], rel=1e-9)
    assert rolled["labelled_rows"] == truth["rows"] >= 50
    assert rolled["reason"].endswith("> margin 0") and rolled["prediction_psi"] is not None
    assert registry.alias(CANARY) is None and registry.alias(CHAMPION).version == "1"
    events = table(env, "alert_events")
    assert sorted(events["window"]) == ["2026-03-01/canary-rolled_back", "2026-03-01/canary-started"]
    assert set(events["kind"]) == {"canary"} and set(events["status"]) == {"failed"}

    # a rerun of the scored dates publishes the same rows (the recorded fraction); with the aliases as they are
    # now (no canary) only the champion's rows are scored and published
    again = score(env)
    assert published_canary(again) == slices
    now = score(env, "--set", "scoring.rerun_versions=current")
    assert set(now["role"]) == {"champion"} and now["published"].all()

    # v3 (the same fit as v2, trained again) passes the gate: a new canary with its own slice; it holds within
    # the margin for min_days -> widened to 60% (a superset of its 20%), then promoted after the last step
    assert run_job("train", [*conf(env), "--date", D.isoformat(), "--force", *CANARY_ON]) == 0
    assert (registry.alias(CHAMPION).version, registry.alias(CANARY).version) == ("1", "3")
    # the challenger alias on the canary's version too (shadow scoring is on): scored once, as the canary
    registry.client.set_registered_model_alias("jt", "challenger", "3")
    rows = score(env, "--set", "scoring.rerun_versions=current")
    registry.client.delete_registered_model_alias("jt", "challenger")
    assert set(zip(rows["role"], rows["model_version"].astype(str), strict=True)) == {("champion", "1"),
                                                                                     ("canary", "3")}
    first = published_canary(rows)
    assert run_job("retrain", [*conf(env), "--date", "2026-03-02", *CANARY_ON, *HOLDS]) == 0
    widened = steps(env)[-1]
    assert (widened["status"], widened["canary_version"], widened["fraction_before"], widened["fraction_after"],
            widened["champion_after"]) == ("widened", "3", 0.2, 0.6, "1")
    wide = published_canary(score(env, "--set", "scoring.rerun_versions=current"))
    assert all(first[d] < wide[d] for d in wide) and len({frozenset(s) for s in wide.values()}) == 1
    assert near(len(next(iter(wide.values()))), entities, 0.6)
    assert run_job("retrain", [*conf(env), "--date", "2026-03-03", *CANARY_ON, *HOLDS]) == 0
    promoted = steps(env)[-1]
    assert (promoted["status"], promoted["fraction_before"], promoted["fraction_after"], promoted["days_at_step"],
            promoted["champion_after"]) == ("promoted", 0.6, 1.0, DAYS, "3")
    assert (registry.alias(CHAMPION).version, registry.alias(PREVIOUS).version) == ("3", "1")
    assert registry.alias(CANARY) is None
    after = score(env, "--set", "scoring.rerun_versions=current")     # the new champion publishes every row
    assert set(zip(after["role"], after["model_version"].astype(str), strict=True)) == {("champion", "3")}
    assert after["published"].all() and published_canary(after) == {}
    capsys.readouterr()
    main(["status", *conf(env), "--date", "2026-03-03"])
    assert (f"canary (2026-03-03): v3 promoted, published 60% → 100% — {promoted['reason']}"
            in capsys.readouterr().out)
