"""The pure scoring core: a pandas features frame in, a pandas predictions frame out.

No Spark, no clock, no randomness, no I/O: Spark may run a batch twice (retries, speculation) and
must get the same rows (R6). Features are selected by name through the training job's own
conversion (`driftline.training.pipeline.model_frame`), so scoring transforms them exactly as
training did; column order and extra columns do not matter (R10). Missing values follow the
model's pipeline (median / ``__missing__`` imputation), unseen categories encode as all zeros
(``handle_unknown="ignore"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftline.scoring.signature import ModelSignature
from driftline.training.pipeline import model_frame, predict_scores
from driftline.vocabulary import PREDICTED_LABEL, SCORE


@dataclass(frozen=True)
class Scorer:
    """One loaded model version and what it expects."""

    role: str
    version: str
    model: Any
    signature: ModelSignature


def score_frame(pdf: pd.DataFrame, model: Any, signature: ModelSignature, *, key: str,
                threshold: float) -> pd.DataFrame:
    """Features → ``key``, ``score`` (positive-class probability or regression value), ``predicted_label``.

    Reads ``key`` and the signature's features by name. ``predicted_label`` is 1 when
    ``score >= threshold`` (classification) and null for regression (Int32, nullable).
    """
    n = len(pdf)
    scores, predicted = score_arrays(pdf, model, signature, threshold=threshold)
    labels = pd.array(predicted if predicted is not None else [pd.NA] * n, dtype="Int32")
    return pd.DataFrame({key: pdf[key].to_numpy(), SCORE: scores, PREDICTED_LABEL: labels})


def score_arrays(pdf: pd.DataFrame, model: Any, signature: ModelSignature, *,
                 threshold: float) -> tuple[np.ndarray, np.ndarray | None]:
    """The signature's features of ``pdf`` → scores (float64) and, for classification, the predicted labels
    (int32: 1 when ``score >= threshold``); None for regression."""
    if len(pdf) == 0:
        scores = np.empty(0, dtype="float64")
    else:
        scores = predict_scores(model, model_frame(pdf, signature.numeric, signature.categorical), signature.task)
    if signature.task == "classification":
        return scores, (scores >= threshold).astype("int32")
    return scores, None
