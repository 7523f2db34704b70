"""The model signature and the schema check that runs before anything is scored (R10, R18)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import types as T

from driftline.errors import InputContractError
from driftline.scoring.signature import (
    ModelSignature,
    SignatureMismatchError,
    known_categories,
    signature_from_params,
    signature_from_pipeline,
    validate_features,
)
from driftline.training.pipeline import build_pipeline, model_frame
from driftline.training.spec import EstimatorConfig

SIG = ModelSignature(("x1", "x2"), ("plan",), "classification")


def schema(**cols: T.DataType) -> T.StructType:
    return T.StructType([T.StructField(n, t) for n, t in cols.items()])


GOOD = dict(customer_id=T.StringType(), as_of_date=T.DateType(), x1=T.DoubleType(), x2=T.LongType(),
            plan=T.StringType(), run_id=T.StringType())


def test_order_and_extra_columns_pass_and_extras_are_returned() -> None:
    reordered = schema(**dict(reversed(list(GOOD.items()))), brand_new=T.DoubleType())
    assert validate_features(reordered, "customer_id", [("champion v1", SIG)], "m__features") == [
        "run_id", "as_of_date", "brand_new"]


@pytest.mark.parametrize(("cols", "message"), [
    ({k: v for k, v in GOOD.items() if k != "x2"},
     "table m__features: expected the features the model was trained on, found missing x2 (needed by champion v1)"),
    ({("x1_renamed" if k == "x1" else k): v for k, v in GOOD.items()},
     "found missing x1 (needed by champion v1); columns no model uses: as_of_date, x1_renamed, run_id"),
    ({**GOOD, "x1": T.StringType()}, "found retyped x1 (expected a numeric type for champion v1, found string)"),
    ({**GOOD, "plan": T.DoubleType()},
     "found retyped plan (expected string for categorical in champion v1, found double)"),
    ({k: v for k, v in GOOD.items() if k != "customer_id"}, "found missing customer_id (entity key)"),
])
def test_missing_renamed_retyped_features_fail_naming_them(cols: dict, message: str) -> None:
    with pytest.raises(SignatureMismatchError) as info:
        validate_features(schema(**cols), "customer_id", [("champion v1", SIG)], "m__features")
    assert message in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, InputContractError) and info.value.exit_code == 2


def test_union_of_champion_and_challenger_is_checked() -> None:
    challenger = ModelSignature(("x1", "x3"), (), "classification")
    with pytest.raises(SignatureMismatchError, match=r"missing x3 \(needed by challenger v2\)"):
        validate_features(schema(**GOOD), "customer_id", [("champion v1", SIG), ("challenger v2", challenger)], "t")


def test_signature_from_the_train_job_params_and_from_the_pipeline() -> None:
    params = {"numeric_features": "x1,x2", "categorical_features": "plan", "task": "classification"}
    assert signature_from_params(params) == SIG
    assert signature_from_params({**params, "categorical_features": ""}) == ModelSignature(("x1", "x2"), (),
                                                                                           "classification")
    assert signature_from_params({"task": "classification"}) is None
    pdf = pd.DataFrame({"x1": [1.0, 2.0, np.nan, 4.0], "x2": [0.0, 1.0, 1.0, 0.0], "plan": ["a", "b", None, "a"]})
    model = build_pipeline(EstimatorConfig(), ["x1", "x2"], ["plan"]).fit(model_frame(pdf, ["x1", "x2"], ["plan"]),
                                                                          [0, 1, 0, 1])
    assert signature_from_pipeline(model) == SIG
    assert known_categories(model) == {"plan": ("__missing__", "a", "b")}
