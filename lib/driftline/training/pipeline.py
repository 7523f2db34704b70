"""scikit-learn pipelines built from config: preprocessing + one estimator.

Preprocessing: numeric columns are median-imputed (and standard-scaled when
``estimator.scale_numeric``); categorical columns are imputed with ``"__missing__"`` and one-hot
encoded with ``handle_unknown="ignore"`` (a category never seen in training encodes as all zeros).
Only standard scikit-learn classes are used, so the fitted pipeline serializes with skops and
loads with a short list of trusted types (`driftline.registry.artifact`).
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftline.errors import ConfigError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from driftline.training.spec import EstimatorConfig, RecencyConfig

log = logging.getLogger(__name__)

MISSING_CATEGORY = "__missing__"

CLASSIFIERS = ("logistic_regression", "hist_gradient_boosting", "random_forest")
REGRESSORS = ("ridge", "hist_gradient_boosting_regressor")

# Defaults that differ from scikit-learn's own, chosen for tabular churn-like data.
_DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"max_iter": 1000},
    "random_forest": {"n_estimators": 200, "min_samples_leaf": 5, "n_jobs": 1},
}


def estimator_class(kind: str) -> type:
    """The scikit-learn class of an ``estimator.type``."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    classes: dict[str, type] = {
        "logistic_regression": LogisticRegression,
        "hist_gradient_boosting": HistGradientBoostingClassifier,
        "random_forest": RandomForestClassifier,
        "ridge": Ridge,
        "hist_gradient_boosting_regressor": HistGradientBoostingRegressor,
    }
    if kind not in classes:
        raise ConfigError(f"estimator.type: expected one of {', '.join(classes)}, found {kind!r}")
    return classes[kind]


def check_estimator_task(kind: str, task: str) -> None:
    """`ConfigError` when ``estimator.type`` does not fit ``label.task``."""
    allowed = CLASSIFIERS if task == "classification" else REGRESSORS
    if kind not in allowed:
        raise ConfigError(
            f"estimator.type: expected one of {', '.join(allowed)} for label.task {task!r}, found {kind!r}"
        )


def estimator_params(cfg: EstimatorConfig) -> dict[str, Any]:
    """Keyword arguments of the estimator: driftline defaults, then ``estimator.params``, then the seed."""
    cls = estimator_class(cfg.type)
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(cfg.params) - accepted)
    if unknown:
        raise ConfigError(
            f"estimator.params: {', '.join(unknown)} not accepted by {cls.__name__}; "
            f"expected some of {', '.join(sorted(accepted))}"
        )
    params = {**_DEFAULT_PARAMS.get(cfg.type, {}), **cfg.params}
    if "random_state" in accepted and "random_state" not in cfg.params:
        params["random_state"] = cfg.seed
    return params


def build_pipeline(cfg: EstimatorConfig, numeric: Sequence[str], categorical: Sequence[str]) -> Pipeline:
    """An unfitted ``Pipeline([("prep", ColumnTransformer), ("model", estimator)])``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if cfg.scale_numeric:
        num_steps.append(("scale", StandardScaler()))
    cat_steps = [
        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY, missing_values=None)),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(("num", Pipeline(num_steps), list(numeric)))
    if categorical:
        transformers.append(("cat", Pipeline(cat_steps), list(categorical)))
    prep = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    model = estimator_class(cfg.type)(**estimator_params(cfg))
    return Pipeline([("prep", prep), (MODEL_STEP, model)])


MODEL_STEP = "model"   # the estimator's step name in `build_pipeline`: ``model__sample_weight`` reaches it


def recency_weights(as_of: Sequence[dt.date] | pd.Series, train_end: dt.date, onset: dt.date | None,
                    cfg: RecencyConfig) -> np.ndarray | None:
    """Row weights of the fit (pure): (``post_onset_weight`` if as_of ≥ onset else 1) ×
    0.5 ^ ((train_end − as_of).days / ``half_life_days``), normalised to mean 1.

    None when every row would weigh the same (the defaults, or ``post_onset_weight`` without an onset and
    no half-life): the fit then gets no ``sample_weight`` at all.
    """
    days = pd.to_datetime(pd.Series(as_of)).dt.date
    use_onset = onset is not None and cfg.post_onset_weight != 1.0
    if (not use_onset and cfg.half_life_days is None) or days.empty:
        return None
    weights = np.ones(len(days), dtype="float64")
    if use_onset:
        weights[(days >= onset).to_numpy()] = cfg.post_onset_weight
    if cfg.half_life_days is not None:
        age = np.array([(train_end - d).days for d in days], dtype="float64")
        weights *= np.power(0.5, age / cfg.half_life_days)
    return weights / weights.mean()


def fit_pipeline(model: Pipeline, x: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Pipeline:
    """Fit ``model`` (from `build_pipeline`); ``sample_weight`` goes to the final estimator only (the
    preprocessing — medians, scaling, categories — stays unweighted)."""
    if sample_weight is None:
        return model.fit(x, y)
    if len(sample_weight) != len(x):
        raise ValueError(f"sample_weight: expected {len(x)} weights (one per row), found {len(sample_weight)}")
    return model.fit(x, y, **{f"{MODEL_STEP}__sample_weight": sample_weight})


def model_frame(pdf: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    """The pipeline's input: numeric columns as float64 (null and ±inf → NaN), categorical as object (null → None).

    Scoring must hand the model the same frame, so this is the one place the conversion lives.
    ±inf is an invalid value (R12): scikit-learn refuses it, so it takes the missing-value policy
    (median imputation) like a null; the score job reports its share as ``invalid_rate``.
    """
    missing = [c for c in [*numeric, *categorical] if c not in pdf.columns]
    if missing:
        raise ConfigError(f"model input: expected feature columns {', '.join(missing)}, found them missing")
    columns: dict[str, Any] = {}
    for c in numeric:
        col = pdf[c]
        if col.dtype == np.float64:                 # the scoring pass's case: no conversion, one copy
            values = col.to_numpy(copy=True)
        else:
            values = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy(copy=True)
        values[np.isinf(values)] = np.nan
        columns[c] = values
    for c in categorical:
        col = pdf[c].astype(object)
        col = col.where(col.notna(), None)
        # strings already (the scoring pass's case) need no per-value conversion
        if pd.api.types.infer_dtype(col, skipna=True) not in ("string", "empty"):
            col = col.map(lambda v: v if v is None else str(v))
        columns[c] = col.to_numpy()
    return pd.DataFrame(columns, index=pdf.index, columns=[*numeric, *categorical])


def predict_scores(model: Pipeline, frame: pd.DataFrame, task: str) -> np.ndarray:
    """Positive-class probability (classification) or the prediction (regression), as float64."""
    if task == "classification":
        proba = model.predict_proba(frame)
        classes = list(model.classes_)
        if 1 in classes:
            return np.asarray(proba[:, classes.index(1)], dtype="float64")
        return np.zeros(len(frame), dtype="float64")
    return np.asarray(model.predict(frame), dtype="float64")
