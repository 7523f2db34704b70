"""Promotion gate decisions: better / equal / worse, thresholds, direction, baseline, recorded numbers."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from driftline.training.gate import decide
from driftline.training.spec import GateConfig, TrainingConfig


def gate(**kw) -> GateConfig:
    return GateConfig(**kw)


def test_better_equal_worse_challenger() -> None:
    cfg = gate()
    better = decide(0.81, 0.80, cfg, metric="auc", direction="higher", reference_kind="champion",
                    reference_version="3")
    assert better.passed and better.improvement == pytest.approx(0.01)
    assert "better than champion v3" in better.reason and "0.81 vs champion v3 0.8" in better.reason
    equal = decide(0.80, 0.80, cfg, metric="auc", direction="higher", reference_kind="champion",
                   reference_version="3")
    assert not equal.passed and "equal to champion v3" in equal.reason
    worse = decide(0.70, 0.80, cfg, metric="auc", direction="higher", reference_kind="champion",
                   reference_version="3")
    assert not worse.passed and "worse than champion v3" in worse.reason
    assert worse.improvement == pytest.approx(-0.10)


def test_lower_is_better_metrics() -> None:
    cfg = gate(metric="log_loss")
    assert cfg.direction_for("classification") == "lower"
    ok = decide(0.30, 0.35, cfg, metric="log_loss", direction="lower", reference_kind="champion")
    assert ok.passed and ok.improvement == pytest.approx(0.05)
    assert ok.relative_improvement == pytest.approx(0.05 / 0.35)
    bad = decide(0.40, 0.35, cfg, metric="log_loss", direction="lower", reference_kind="champion")
    assert not bad.passed


def test_minimum_improvements() -> None:
    cfg = gate(min_abs_improvement=0.02)
    small = decide(0.81, 0.80, cfg, metric="auc", direction="higher", reference_kind="champion")
    assert not small.passed and "below min_abs_improvement 0.02" in small.reason
    assert decide(0.83, 0.80, cfg, metric="auc", direction="higher", reference_kind="champion").passed
    rel = gate(min_rel_improvement=0.10)
    r = decide(0.45, 0.48, rel, metric="rmse", direction="lower", reference_kind="champion")
    assert not r.passed and "below min_rel_improvement 0.1" in r.reason   # 6.25 % < 10 %
    assert decide(0.40, 0.48, rel, metric="rmse", direction="lower", reference_kind="champion").passed


def test_first_model_against_baseline_and_undefined_values() -> None:
    cfg = gate()
    first = decide(0.72, 0.5, cfg, metric="auc", direction="higher", reference_kind="baseline")
    assert first.passed and "better than baseline" in first.reason
    trivial = decide(0.5, 0.5, cfg, metric="auc", direction="higher", reference_kind="baseline")
    assert not trivial.passed and "equal to baseline" in trivial.reason
    undefined = decide(math.nan, 0.5, cfg, metric="auc", direction="higher", reference_kind="baseline")
    assert not undefined.passed and "undefined" in undefined.reason


def test_decision_tags_are_flat_strings() -> None:
    d = decide(0.9, 0.8, gate(), metric="auc", direction="higher", reference_kind="champion",
               reference_version="2")
    tags = d.tags()
    assert tags["driftline.gate.passed"] == "true"
    assert tags["driftline.gate.reference_version"] == "2"
    assert float(tags["driftline.gate.challenger"]) == 0.9
    assert all(isinstance(v, str) for v in tags.values())


def test_training_config_defaults_and_strict_keys() -> None:
    t = TrainingConfig()
    assert (t.train_days, t.validation_days, t.gap_days, t.sample_cap, t.sample_seed) == (28, 7, 0, None, 42)
    assert t.gate.metric_for("classification") == "auc" and t.gate.metric_for("regression") == "rmse"
    assert t.gate.direction_for("regression") == "lower"
    with pytest.raises(ValidationError, match="extra"):
        TrainingConfig(train_dayz=3)
    with pytest.raises(ValidationError):
        TrainingConfig(gate={"metric": "accuracyy"})
    with pytest.raises(ValidationError):
        TrainingConfig(gate={"min_abs_improvement": -0.1})
