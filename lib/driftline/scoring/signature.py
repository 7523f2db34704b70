"""What a model version expects as input, and the check of a feature table's schema against it (R10, R18).

The train job records the split of the model's features on its MLflow run (params
``numeric_features``, ``categorical_features`` and ``task``); the fitted pipeline's
``ColumnTransformer`` says the same and is the fallback when the run is not reachable. Scoring
checks the feature table's *schema* (no Spark action) against that split before anything is
scored or written: features are selected by name, so column order never matters and extra
columns are ignored; a missing, renamed or retyped feature is a `SignatureMismatchError` naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import InputContractError

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructType

log = logging.getLogger(__name__)

TASKS = ("classification", "regression")


class SignatureMismatchError(InputContractError):
    """The feature table does not carry what the model was trained on (missing or retyped features): exit 2."""


@dataclass(frozen=True)
class ModelSignature:
    """The input contract of one model version: numeric and categorical features, and its task."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    task: str

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(c for c in (text or "").split(",") if c)


def signature_from_params(params: Mapping[str, str]) -> ModelSignature | None:
    """The signature recorded by the train job on its MLflow run; None when the params are absent."""
    if "numeric_features" not in params or "categorical_features" not in params or params.get("task") not in TASKS:
        return None
    return ModelSignature(_split(params["numeric_features"]), _split(params["categorical_features"]), params["task"])


def signature_from_pipeline(model: Any) -> ModelSignature:
    """The signature read from a fitted driftline pipeline (``prep`` ColumnTransformer with ``num``/``cat``)."""
    prep = getattr(model, "named_steps", {}).get("prep")
    columns: dict[str, tuple[str, ...]] = {"num": (), "cat": ()}
    for name, _, cols in getattr(prep, "transformers_", ()):
        if name in columns:
            columns[name] = tuple(str(c) for c in cols)
    if not columns["num"] and not columns["cat"]:
        raise SignatureMismatchError(
            "model: expected a fitted driftline pipeline with a 'prep' step listing its features, found none"
        )
    task = "classification" if hasattr(model, "predict_proba") else "regression"
    return ModelSignature(columns["num"], columns["cat"], task)


def known_categories(model: Any) -> dict[str, tuple[str, ...]]:
    """Categories the model's one-hot encoder saw in training, per categorical feature (empty if none)."""
    try:
        cat = model.named_steps["prep"].named_transformers_["cat"]
        encoder = cat.named_steps["onehot"]
        columns = [c for name, _, cols in model.named_steps["prep"].transformers_ if name == "cat" for c in cols]
    except (AttributeError, KeyError):
        return {}
    return {str(c): tuple(str(v) for v in cats) for c, cats in zip(columns, encoder.categories_, strict=True)}


def _numeric_type(dtype: DataType) -> bool:
    from pyspark.sql.types import BooleanType, NumericType

    return isinstance(dtype, NumericType | BooleanType)


def _categorical_type(dtype: DataType) -> bool:
    from pyspark.sql.types import BooleanType, IntegralType, StringType

    return isinstance(dtype, StringType | BooleanType | IntegralType)


def validate_features(schema: StructType, key: str, signatures: Sequence[tuple[str, ModelSignature]],
                      table: str) -> list[str]:
    """Check ``schema`` against every (label, signature); return the columns no model uses.

    Numeric features need a numeric or boolean type; categorical ones a string, boolean or integer
    type (they are compared as strings, as in training). Raises `SignatureMismatchError` with one
    line naming every missing and retyped column (and the unused columns, which may be renames).
    """
    types = {f.name: f.dataType for f in schema.fields}
    needed: dict[str, list[str]] = {}
    retyped: list[str] = []
    used = {key}
    for label, sig in signatures:
        for col in sig.features:
            used.add(col)
            if col not in types:
                needed.setdefault(col, []).append(label)
                continue
            dtype = types[col]
            if col in sig.numeric and not _numeric_type(dtype):
                entry = f"{col} (expected a numeric type for {label}, found {dtype.simpleString()})"
            elif col in sig.categorical and not _categorical_type(dtype):
                entry = f"{col} (expected string for categorical in {label}, found {dtype.simpleString()})"
            else:
                continue
            retyped.append(entry)
    missing = [] if key in types else [f"{key} (entity key)"]
    missing += [f"{col} (needed by {', '.join(labels)})" for col, labels in needed.items()]
    extra = [c for c in types if c not in used]
    if missing or retyped:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if retyped:
            parts.append(f"retyped {', '.join(retyped)}")
        found = f"; columns no model uses: {', '.join(extra)}" if extra else ""
        raise SignatureMismatchError(
            f"table {table}: expected the features the model was trained on, found {'; '.join(parts)}{found}"
        )
    return extra
