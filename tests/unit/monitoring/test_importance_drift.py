"""Importance drift rows (`driftline.monitoring.importance_drift`): ranks, rank changes and the Spearman
correlation against scipy, a reversed ranking warns, too few features are insufficient."""

from __future__ import annotations

import pytest
from scipy.stats import spearmanr

from driftline.monitoring.importance_drift import importance_rows, ranks
from driftline.vocabulary import INSUFFICIENT, OK, WARN


def by(rows):
    return {(r["column"], r["metric"]): r for r in rows}


def test_a_reversed_ranking_warns_with_the_rank_changes() -> None:
    trained = {"a": 0.5, "b": 0.3, "c": 0.1, "d": 0.0}
    now = {"a": (0.0, 0.01), "b": (0.1, 0.01), "c": (0.3, 0.02), "d": (0.5, 0.0)}
    got = by(importance_rows(trained, now, 800, 0.5))
    assert [got[(c, "importance_rank_change")]["value"] for c in "abcd"] == [-3.0, -1.0, 1.0, 3.0]
    rho = got[("__dataset__", "importance_rank_correlation")]
    assert rho["value"] == pytest.approx(spearmanr([1, 2, 3, 4], [4, 3, 2, 1]).statistic) == pytest.approx(-1.0)
    assert rho["status"] == WARN and rho["n_current"] == 800
    assert got[("c", "importance")]["value"] == 0.3 and "rank 3 at training, 2 now (of 4)" in got[
        ("c", "importance_rank_change")]["reason"]


def test_a_kept_ranking_is_ok_and_ties_rank_by_name() -> None:
    assert ranks({"b": 1.0, "a": 1.0, "c": 2.0}) == {"c": 1, "a": 2, "b": 3}
    trained = {"x": 3.0, "y": 2.0, "z": 1.0, "w": 0.5}
    now = {"x": (2.5, 0.1), "y": (1.9, 0.1), "z": (0.2, 0.1), "w": (0.1, 0.1)}
    rho = by(importance_rows(trained, now, 100, 0.5))[("__dataset__", "importance_rank_correlation")]
    assert rho["value"] == pytest.approx(1.0) and rho["status"] == OK


def test_fewer_than_three_common_features_are_insufficient() -> None:
    rows = by(importance_rows({"x": 1.0, "y": 0.5}, {"x": (1.0, 0.0), "y": (0.2, 0.0), "new": (0.3, 0.0)}, 50, 0.5))
    assert rows[("__dataset__", "importance_rank_correlation")]["status"] == INSUFFICIENT
    assert ("new", "importance") in rows and ("new", "importance_rank_change") not in rows
