"""``sources.inference`` (monitor-only models): what the config accepts and refuses, one line each; the ``logged``
adopted kind predicts the row's logged score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from driftline.config import load_config
from driftline.errors import ConfigError
from driftline.features.compile import compile_features
from driftline.features.spec import FeatureSpec, SourcesConfig
from driftline.registry.adopted import logged_model, pack, unpack

LOG = {"table": "log", "key": "id", "score": "p", "date": "day"}
EVENTS = {"table": "ev", "key": "id", "timestamp": "ts"}


@pytest.mark.parametrize(("sources", "message"), [
    ({"inference": LOG, "events": EVENTS}, "expected exactly one of events (features computed by driftline) or "
                                           "inference (a monitor-only model's logged rows), found both"),
    ({}, "found neither"),
    ({"inference": {**LOG, "timestamp": "ts"}}, "expected exactly one of date or timestamp, found both"),
    ({"inference": {k: v for k, v in LOG.items() if k != "date"}}, "expected exactly one of date or timestamp, "
                                                                    "found neither"),
    ({"inference": LOG, "entities": {"table": "e", "key": "id"}}, "expected no entities source, found one"),
])
def test_inconsistent_sources_are_refused(sources, message) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SourcesConfig.model_validate(sources)


def test_logged_features_belong_to_monitor_only_models_only() -> None:
    logged = [FeatureSpec(name="x", kind="logged")]
    plan = compile_features("id", SourcesConfig.model_validate({"inference": LOG}), logged)
    assert [f.name for f in plan.logged] == ["x"]
    with pytest.raises(ConfigError, match="features.x: expected kind logged for a monitor-only model .* found kind "
                                          "logged without sources.inference"):
        compile_features("id", SourcesConfig.model_validate({"events": EVENTS}), logged)
    computed = [FeatureSpec(name="n", kind="aggregate", agg="count", window="7d")]
    with pytest.raises(ConfigError, match="found kind aggregate with sources.inference"):
        compile_features("id", SourcesConfig.model_validate({"inference": LOG}), computed)
    with pytest.raises(ConfigError, match="sources.events: expected an events source for computed features"):
        _ = plan.events
    with pytest.raises(ConfigError, match="expected a name other than"):
        compile_features("id", SourcesConfig.model_validate({"inference": LOG}),
                         [FeatureSpec(name="logged_score", kind="logged")])


def test_a_label_column_of_the_log_itself_is_never_a_feature() -> None:
    sources = SourcesConfig.model_validate({"inference": LOG, "labels": {"table": "log", "key": "id",
                                                                          "timestamp": "known", "value": "y"}})
    assert compile_features("id", sources, [FeatureSpec(name="x", kind="logged")]).logged
    with pytest.raises(ConfigError, match="features.leak: expected a feature column of the inference log, found y, "
                                          "its label"):
        compile_features("id", sources, [FeatureSpec(name="leak", kind="logged", column="y")])
    for column, role in (("id", "key"), ("p", "score"), ("day", "date"), ("known", "label timestamp")):
        with pytest.raises(ConfigError, match=f"found {column}, its {role} column"):
            compile_features("id", sources, [FeatureSpec(name="f", kind="logged", column=column)])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_logged_kind_predicts_the_logged_score(task) -> None:
    model = unpack(pack("logged", b"", logged_model(task).columns, task), "test")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "logged_score": [0.1, 0.7, np.nan]})
    if task == "classification":
        np.testing.assert_array_equal(model.predict_proba(frame)[:, 1], [0.1, 0.7, np.nan])
        np.testing.assert_array_equal(model.predict_proba(frame)[:, 0], [0.9, 1 - 0.7, np.nan])
        assert list(model.classes_) == [0, 1]
    else:
        np.testing.assert_array_equal(model.predict(frame), [0.1, 0.7, np.nan])
    with pytest.raises(KeyError):
        model.predict(frame.drop(columns=["logged_score"]))


@pytest.mark.parametrize("rule", ["canary", "rollback"])
def test_a_monitor_only_model_has_no_canary_or_rollback(rule) -> None:
    from pathlib import Path

    served = Path(__file__).resolve().parents[3] / "conf" / "examples" / "served"
    with pytest.raises(ConfigError, match=f"expected them off, found retrain.{rule} enabled"):
        load_config("loan_default", served, [f"retrain.{rule}.enabled=true"])
