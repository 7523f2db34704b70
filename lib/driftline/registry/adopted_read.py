"""Reading an MLflow model folder for `driftline models adopt` the safe way its ``MLmodel`` file allows
(`driftline.registry.adopted` says what is stored and how it loads).

The ``MLmodel`` file is data from elsewhere: its flavor, class and format decide which parser reads the model
file, never code it names. Pickle and python_function models are refused before their bytes are read unless
``adopt.trust_pickle`` is true.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

from driftline.errors import ArtifactIntegrityError, UsageError
from driftline.registry.adopted import LIGHTGBM_SKOPS_TYPES, XGBOOST_CLASSES, AdoptedModel, Candidate, import_or_explain
from driftline.registry.client import TrackingSetup, configure

log = logging.getLogger("driftline.jobs.adopt")  # the adopt job's logger

def _xgboost_payload(model: Any) -> bytes:
    """An XGBoost scikit-learn model as bytes `_xgboost_from` reads: a class line, then its UBJSON model."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="driftline-xgb-") as tmp:
        path = Path(tmp) / "model.ubj"
        model.save_model(str(path))
        body = path.read_bytes()
    return json.dumps({"class": type(model).__name__}).encode() + b"\n" + body


def read_model_uri(setup: TrackingSetup, uri: str, trust_pickle: bool, task: str) -> Candidate:
    """Download the MLflow model at ``uri`` (``models:/``, ``runs:/``, a path or any artifact URI) from the tracking
    setup's store and read it (`read_mlflow_model`); `UsageError` when there is no model behind it."""
    import tempfile

    import mlflow
    from mlflow.exceptions import MlflowException

    configure(setup)
    with tempfile.TemporaryDirectory(prefix="driftline-adopt-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp,
                                                        tracking_uri=setup.tracking_uri)
        except (MlflowException, OSError) as exc:
            raise UsageError(f"--model-uri: expected an MLflow model at {uri}, found none "
                             f"({' '.join(str(exc).split())[:200]})") from None
        candidate = read_mlflow_model(Path(local), trust_pickle, uri, task)
    log.info("adopt: %s read through its %s flavor (stored as %s), inputs %s, %s", uri, candidate.flavor,
             candidate.serialization, ", ".join(candidate.model.columns), candidate.model.task)
    return candidate


def read_mlflow_model(folder: Path, trust_pickle: bool, uri: str, task: str = "classification") -> Candidate:
    """Read the MLflow model in ``folder`` (downloaded from ``uri``) the safe way its ``MLmodel`` file allows;
    ``task``: the config's, what a python_function model's ``predict`` is taken to be."""
    import yaml

    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
        flavors = {str(k): v if isinstance(v, dict) else {} for k, v in dict(mlmodel["flavors"]).items()}
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        raise UsageError(f"--model-uri {uri}: expected an MLflow model folder with an MLmodel file, found none "
                         f"readable") from None
    columns = _signature_columns(mlmodel)
    if "xgboost" in flavors:
        return _read_xgboost(folder, flavors["xgboost"], columns, uri)
    if "lightgbm" in flavors:
        return _read_lightgbm(folder, flavors["lightgbm"], columns, trust_pickle, uri)
    if "sklearn" in flavors:
        return _read_sklearn(folder, flavors["sklearn"], columns, trust_pickle, uri)
    if "python_function" in flavors:
        from driftline.registry import adopted_pyfunc

        if not columns:
            raise UsageError(f"--model-uri {uri}: expected a python_function model with an MLflow signature naming its "
                             "input columns, found none")
        model, payload = adopted_pyfunc.read(folder, trust_pickle, uri)
        return Candidate(AdoptedModel("pyfunc", model, columns, task), payload, "python_function", "python_function",
                         columns)
    raise UsageError(f"--model-uri {uri}: expected an MLflow model with a sklearn, xgboost, lightgbm or "
                     f"python_function flavor, found flavors {', '.join(sorted(flavors)) or 'none'}")


def _signature_columns(mlmodel: dict[str, Any]) -> tuple[str, ...] | None:
    """The input column names of the MLflow signature, None when it names none."""
    signature = mlmodel.get("signature")
    inputs = signature.get("inputs") if isinstance(signature, dict) else None
    if not inputs:
        return None
    try:
        return tuple(str(c["name"]) for c in json.loads(inputs)) or None
    except (ValueError, KeyError, TypeError):
        return None


def input_columns(model_names: tuple[str, ...], signature: tuple[str, ...] | None, uri: str) -> tuple[str, ...]:
    """The columns a model is scored with, in the order it was fitted with: its own feature names when it has
    them (the MLflow signature must name the same columns), else the signature's."""
    if model_names:
        if signature is not None and set(signature) != set(model_names):
            raise UsageError(f"--model-uri {uri}: expected the MLflow signature to name the model's own input columns "
                             f"({', '.join(model_names)}), found {', '.join(signature)}")
        return model_names
    if signature:
        return signature
    raise UsageError(f"--model-uri {uri}: expected the model's input columns (an MLflow signature, or a model fitted "
                     "on named columns), found neither")


def _data_file(folder: Path, flavor: dict[str, Any], key: str, uri: str) -> Path:
    name = str(flavor.get(key) or "")
    path = (folder / name).resolve()
    if not name or folder.resolve() not in path.parents or not path.is_file():
        raise UsageError(f"--model-uri {uri}: expected the model file named by the MLmodel file ({key}), found "
                         f"{name or 'no name'} missing")
    return path


def _refuse_pickle(serialization: str, trust_pickle: bool, uri: str) -> None:
    if not trust_pickle:
        raise UsageError(
            f"--model-uri {uri}: the model is stored as {serialization}, and loading it would run code from the file; "
            "refused: set adopt.trust_pickle: true in the model's config only if you trust where it comes from "
            "(driftline stores it as a format that runs no code afterwards)")


def _unpickle(path: Path, uri: str) -> Any:
    try:
        with path.open("rb") as f:
            return pickle.load(f)  # noqa: S301  (adopt.trust_pickle is true: checked by the caller)
    except Exception as exc:   # e.g. a class from the notebook's own module, not importable here
        raise UsageError(f"--model-uri {uri}: expected a pickle this environment can load, found "
                         f"{type(exc).__name__}: {exc}") from None


def _read_sklearn(folder: Path, flavor: dict[str, Any], columns: tuple[str, ...] | None, trust_pickle: bool,
                  uri: str) -> Candidate:
    from driftline.registry.artifact import deserialize_skops, serialize

    fmt = str(flavor.get("serialization_format") or "cloudpickle")
    try:
        if fmt == "skops":
            path = _data_file(folder, flavor, "pickled_model", uri)
            payload = path.read_bytes()
            model = deserialize_skops(payload, uri)   # driftline's trusted types only: anything else is refused
        else:
            _refuse_pickle(fmt, trust_pickle, uri)
            path = _data_file(folder, flavor, "pickled_model", uri)
            model = _unpickle(path, uri)
            payload = serialize(model)          # refuses types outside driftline's trusted list
    except ArtifactIntegrityError as exc:
        raise UsageError(f"--model-uri {uri}: expected a scikit-learn model driftline can store as skops with its "
                         f"trusted types (docs/training.md, §5), found: {exc}") from None
    return _candidate("sklearn", model, payload, "sklearn", fmt, columns, uri)


def _read_xgboost(folder: Path, flavor: dict[str, Any], columns: tuple[str, ...] | None, uri: str) -> Candidate:
    xgb = import_or_explain("xgboost", "xgboost-cpu")
    cls = str(flavor.get("model_class") or "")
    if cls not in XGBOOST_CLASSES:
        raise UsageError(f"--model-uri {uri}: expected an XGBoost scikit-learn model "
                         f"({', '.join(XGBOOST_CLASSES)}), found {cls or 'no model_class'}")
    path = _data_file(folder, flavor, "data", uri)
    model = getattr(xgb, XGBOOST_CLASSES[cls])()
    try:
        model.load_model(str(path))
    except Exception as exc:
        raise UsageError(f"--model-uri {uri}: expected an XGBoost model file, found unreadable content ({exc})") \
            from None
    return _candidate("xgboost", model, _xgboost_payload(model), "xgboost",
                      str(flavor.get("model_format") or "xgb"), columns, uri)


LIGHTGBM_CLASSIFICATION = ("binary", "cross_entropy", "xentropy")
LIGHTGBM_REGRESSION = ("regression", "regression_l2", "l2", "mean_squared_error", "mse", "l2_root",
                       "root_mean_squared_error", "rmse", "regression_l1", "l1", "mean_absolute_error", "mae", "huber",
                       "fair", "poisson", "quantile", "mape", "mean_absolute_percentage_error", "gamma", "tweedie")


def _read_lightgbm(folder: Path, flavor: dict[str, Any], columns: tuple[str, ...] | None, trust_pickle: bool,
                   uri: str) -> Candidate:
    lgb = import_or_explain("lightgbm", "lightgbm")
    cls = str(flavor.get("model_class") or "")
    path = _data_file(folder, flavor, "data", uri)
    if cls == "lightgbm.basic.Booster":
        fmt = "text"
        try:
            booster = lgb.Booster(model_file=str(path))
        except Exception as exc:
            raise UsageError(f"--model-uri {uri}: expected a LightGBM text model, found unreadable content ({exc})") \
                from None
    elif cls in ("lightgbm.sklearn.LGBMClassifier", "lightgbm.sklearn.LGBMRegressor"):
        fmt = str(flavor.get("serialization_format") or "pickle")
        if fmt != "skops":
            _refuse_pickle(fmt, trust_pickle, uri)
        try:
            wrapper = _lightgbm_skops(path, uri) if fmt == "skops" else _unpickle(path, uri)
            classes = list(wrapper.classes_) if cls.endswith("Classifier") else [0, 1]
            booster = wrapper.booster_
        except UsageError:
            raise
        except Exception as exc:    # not a fitted LightGBM model
            raise UsageError(f"--model-uri {uri}: expected a fitted {cls}, found {type(exc).__name__}: {exc}") \
                from None
        if not _binary(classes):
            raise UsageError(f"--model-uri {uri}: expected a binary classifier with classes 0 and 1, found classes "
                             f"{_plain(classes)}")
    else:
        raise UsageError(f"--model-uri {uri}: expected a LightGBM Booster, LGBMClassifier or LGBMRegressor, found "
                         f"{cls or 'no model_class'}")
    objective = _objective_of(booster)
    if objective in LIGHTGBM_CLASSIFICATION:
        task = "classification"
    elif objective in LIGHTGBM_REGRESSION:
        task = "regression"
    else:
        raise UsageError(f"--model-uri {uri}: expected a LightGBM binary classifier or regressor, found objective "
                         f"{objective or 'none'}")
    names = tuple(booster.feature_name())
    own = () if all(n == f"Column_{i}" for i, n in enumerate(names)) else names   # LightGBM's names for unnamed data
    model = AdoptedModel("lightgbm", booster, input_columns(own, columns, uri), task)
    return Candidate(model, booster.model_to_string().encode("utf-8"), "lightgbm", fmt, columns)


def _lightgbm_skops(path: Path, uri: str) -> Any:
    """An LGBMClassifier / LGBMRegressor stored with skops, rebuilt with LightGBM's own four types only."""
    import skops.io as sio

    data = path.read_bytes()
    extra = sorted(set(sio.get_untrusted_types(data=data)) - set(LIGHTGBM_SKOPS_TYPES))
    if extra:
        raise UsageError(f"--model-uri {uri}: expected a LightGBM model of trusted types only, found "
                         f"{', '.join(extra)}")
    return sio.loads(data, trusted=list(LIGHTGBM_SKOPS_TYPES))


def _objective_of(booster: Any) -> str:
    """The objective of a LightGBM model: its parameters', else its text model's line (``objective=binary
    sigmoid:1`` → ``binary``)."""
    given = str((booster.params or {}).get("objective") or "")
    if given:
        return given
    for line in booster.model_to_string().splitlines()[:40]:
        if line.startswith("objective="):
            return line.removeprefix("objective=").split()[0]
    return ""


def _candidate(kind: str, model: Any, payload: bytes, flavor: str, serialization: str,
               columns: tuple[str, ...] | None, uri: str) -> Candidate:
    from sklearn.base import is_classifier, is_regressor

    names = input_columns(tuple(str(c) for c in getattr(model, "feature_names_in_", ())), columns, uri)
    if is_classifier(model):
        classes = list(getattr(model, "classes_", []))
        if not hasattr(model, "predict_proba"):
            raise UsageError(f"--model-uri {uri}: expected a classifier with predict_proba (driftline scores "
                             f"probabilities), found {type(model).__name__} without it")
        if not _binary(classes):
            raise UsageError(f"--model-uri {uri}: expected a binary classifier with classes 0 and 1, found classes "
                             f"{_plain(classes)} (multiclass is not supported yet)")
        task = "classification"
    elif is_regressor(model):
        task = "regression"
    else:
        raise UsageError(f"--model-uri {uri}: expected a scikit-learn classifier or regressor, found "
                         f"{type(model).__name__}")
    return Candidate(AdoptedModel(kind, model, names, task), payload, flavor, serialization, columns)


def _binary(classes: list[Any]) -> bool:
    """Whether a classifier's classes are exactly 0 and 1."""
    try:
        return len(classes) == 2 and sorted(float(c) for c in classes) == [0.0, 1.0]
    except (TypeError, ValueError):
        return False


def _plain(classes: Any) -> list[Any]:
    """Class labels as plain Python values (for a message)."""
    return [c.item() if hasattr(c, "item") else c for c in classes]
