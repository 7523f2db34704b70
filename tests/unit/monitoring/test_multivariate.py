"""Multivariate drift (`driftline.monitoring.multivariate`): a correlation flip that no marginal shows is found,
no-change data rarely alarms (rate measured over seeds), awkward columns are encoded sanely."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from driftline.monitoring.multivariate import (
    MULTIVARIATE,
    domain_auc,
    encode,
    multivariate_drift,
    multivariate_rows,
    null_std,
)
from driftline.monitoring.spec import MultivariateConfig
from driftline.vocabulary import ALERT, INSUFFICIENT, OK

CFG = MultivariateConfig(max_rows=2000, calibration_runs=3, max_iter=30)


def correlated(n: int, rho: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=n)
    return pd.DataFrame({"a": z[:, 0], "b": z[:, 1], "noise": rng.normal(size=n),
                         "flag": rng.random(n) < 0.3, "plan": rng.choice(["free", "pro", "team"], size=n)})


NUMERIC, CATEGORICAL = ["a", "b", "noise", "flag"], ["plan"]


def test_a_correlation_flip_with_unchanged_marginals_alerts() -> None:
    ref, cur = correlated(2000, 0.8, 1), correlated(2000, -0.8, 2)
    for c in ("a", "b", "noise"):   # every marginal is the same distribution: KS does not see a change
        assert stats.ks_2samp(ref[c], cur[c]).pvalue > 0.01
    result = multivariate_drift(ref, cur, NUMERIC, CATEGORICAL, CFG)
    assert result.status == ALERT
    assert result.auc is not None and result.threshold is not None
    assert result.auc > 0.75 > result.threshold
    assert (result.n_reference, result.n_current) == (2000, 2000)
    row, = multivariate_rows(result)
    assert row["column"] == MULTIVARIATE and row["metric"] == "domain_auc" and row["status"] == ALERT


def test_false_alarm_rate_on_no_change_is_low() -> None:
    alarms, aucs = 0, []
    seeds = range(12)
    for seed in seeds:
        ref, cur = correlated(600, 0.8, 100 + seed), correlated(600, 0.8, 200 + seed)
        result = multivariate_drift(ref, cur, NUMERIC, CATEGORICAL, CFG.model_copy(update={"seed": seed}))
        alarms += result.status == ALERT
        aucs.append(result.auc)
        assert result.threshold is not None and result.threshold >= CFG.min_auc
    print(f"false alarms {alarms}/{len(seeds)}; null AUC mean {np.mean(aucs):.4f} sd {np.std(aucs):.4f}")
    assert alarms <= 1
    assert abs(float(np.mean(aucs)) - 0.5) < 0.03


def test_separable_samples_give_auc_near_one() -> None:
    ref = pd.DataFrame({"x": np.linspace(-3, -1, 400)})
    cur = pd.DataFrame({"x": np.linspace(1, 3, 400)})
    result = multivariate_drift(ref, cur, ["x"], [], CFG)
    assert result.auc == pytest.approx(1.0, abs=1e-3)
    assert result.status == ALERT


def test_the_auc_is_that_of_out_of_fold_probabilities() -> None:
    """Oracle: a hand-written stratified fold loop with the same seeded model gives the same AUC."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    ref, cur = correlated(500, 0.8, 1), correlated(400, 0.0, 2)
    ref_x, cur_x, mask = encode(ref, cur, NUMERIC, CATEGORICAL)
    x, y = np.vstack([ref_x, cur_x]), np.r_[np.zeros(500), np.ones(400)]
    proba = np.empty(len(y))
    for train, test in StratifiedKFold(4, shuffle=True, random_state=9).split(x, y):
        model = HistGradientBoostingClassifier(max_iter=20, learning_rate=0.2, max_leaf_nodes=15,
                                               categorical_features=mask, early_stopping=False, random_state=9)
        proba[test] = model.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    assert domain_auc(ref_x, cur_x, mask, folds=4, max_iter=20, seed=9) == pytest.approx(roc_auc_score(y, proba),
                                                                                          abs=1e-12)


def test_too_few_rows_or_no_sample_is_insufficient_with_the_reason() -> None:
    ref = correlated(100, 0.8, 1)
    small = multivariate_drift(ref, correlated(1000, 0.8, 2), NUMERIC, CATEGORICAL, CFG)
    assert small.status == INSUFFICIENT and small.auc is None
    assert "100 reference / 1000 window sample rows, expected at least 200" in small.reason
    none = multivariate_drift(None, ref, NUMERIC, CATEGORICAL, CFG)
    assert none.status == INSUFFICIENT and "no stored reference sample" in none.reason


def test_an_id_column_and_nulls_do_not_make_an_alarm() -> None:
    rng = np.random.default_rng(5)
    ref, cur = correlated(800, 0.5, 11), correlated(800, 0.5, 12)
    ref["id"] = [f"r{i}" for i in range(800)]            # unique per row: identity must not tell the samples apart
    cur["id"] = [f"c{i}" for i in range(800)]
    ref.loc[rng.random(800) < 0.2, "a"] = np.nan
    cur.loc[rng.random(800) < 0.2, "a"] = np.nan
    ref["flag"] = ref["flag"].astype(object)
    ref.loc[:5, "flag"] = None                           # booleans with nulls arrive as objects
    result = multivariate_drift(ref, cur, NUMERIC, [*CATEGORICAL, "id"], CFG)
    assert result.status == OK, result


def test_encoding_codes_frequent_values_and_pools_rare_and_unseen_ones() -> None:
    ref = pd.DataFrame({"s": ["a"] * 6 + ["b"] * 5 + ["rare"] * 2, "n": [True, False, None] + [1.5] * 10})
    cur = pd.DataFrame({"s": ["b", "new", None], "n": [0.0, np.nan, 2.0]})
    ref_x, cur_x, mask = encode(ref, cur, ["n"], ["s"])
    assert mask.tolist() == [False, True]
    assert ref_x[:3, 0].tolist()[:2] == [1.0, 0.0] and np.isnan(ref_x[2, 0])
    assert ref_x[:, 1].tolist() == [0.0] * 6 + [1.0] * 5 + [254.0] * 2
    assert cur_x[:2, 1].tolist() == [1.0, 254.0] and np.isnan(cur_x[2, 1])


def test_null_std_is_the_mann_whitney_null() -> None:
    rng = np.random.default_rng(3)
    aucs = [roc_auc_score(np.r_[np.zeros(300), np.ones(200)], rng.random(500)) for _ in range(2000)]
    assert float(np.std(aucs)) == pytest.approx(null_std(300, 200), rel=0.08)
