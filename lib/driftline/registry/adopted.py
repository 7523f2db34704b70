"""Models driftline did not train: read an MLflow model folder without running its code, and store it as a
driftline artifact that loads the same way (`driftline models adopt`, `driftline.jobs.adopt`).

What an adopted version's file holds (``model.adopted.zip``, SHA-256 recorded at registration like any
version's): ``driftline-adopted.json`` (kind, the model's input columns in its own order, task) and
``model.bin``, one of

- ``sklearn``: skops bytes, rebuilt with driftline's trusted types only (`driftline.registry.artifact`);
- ``xgboost``: XGBoost's own UBJSON model (an ``XGBClassifier`` / ``XGBRegressor``), parsed by XGBoost;
- ``lightgbm``: LightGBM's text model (a ``Booster``), parsed by LightGBM;
- ``pyfunc``: a generic MLflow ``python_function`` model's whole folder (`driftline.registry.adopted_pyfunc`).

The first three run no code when loaded. A model logged as pickle or cloudpickle (scikit-learn, LightGBM's
scikit-learn classes) is unpickled once, at adoption, only when ``adopt.trust_pickle`` is true, and
stored in one of those formats; the decision is made from the ``MLmodel`` file before a byte of the
payload is read. A generic ``python_function`` model is its own code: adopted only with
``adopt.trust_pickle``, and loading it runs that code wherever it scores (predict only).
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftline.errors import ArtifactIntegrityError, UsageError

log = logging.getLogger(__name__)

ADOPTED_FILE = "model.adopted.zip"
META = "driftline-adopted.json"
PAYLOAD = "model.bin"
KINDS = ("sklearn", "xgboost", "lightgbm", "pyfunc")
XGBOOST_CLASSES = {"xgboost.sklearn.XGBClassifier": "XGBClassifier", "xgboost.sklearn.XGBRegressor": "XGBRegressor"}
# what MLflow's lightgbm flavor stores with skops; fixed here, never read from the (untrusted) MLmodel file
LIGHTGBM_SKOPS_TYPES = ("collections.OrderedDict", "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier",
                        "lightgbm.sklearn.LGBMRegressor")
_EPOCH = (1980, 1, 1, 0, 0, 0)   # fixed zip timestamps: the same model gives the same bytes (and hash)


@dataclass
class AdoptedModel:
    """A loaded adopted model: ``predict_proba`` / ``predict`` on a frame holding its columns (any order, extra
    columns ignored), so scoring, the gate and importance use it like a driftline pipeline."""

    kind: str
    model: Any
    columns: tuple[str, ...]
    task: str

    @property
    def classes_(self) -> np.ndarray:
        if self.kind in ("lightgbm", "pyfunc"):
            return np.array([0, 1])
        return np.asarray(self.model.classes_)

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags (its scorers and permutation importance ask a classifier for probabilities)."""
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        classifier = self.task == "classification"
        return Tags(estimator_type="classifier" if classifier else "regressor",
                    target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags() if classifier else None,
                    regressor_tags=None if classifier else RegressorTags())

    def fit(self, *_: Any, **__: Any) -> AdoptedModel:
        raise NotImplementedError("an adopted model is fitted outside driftline")

    def _x(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[:, list(self.columns)]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.kind in ("lightgbm", "pyfunc"):
            p = self._values(frame)
            return np.column_stack([1.0 - p, p])
        return np.asarray(self.model.predict_proba(self._x(frame)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.kind in ("lightgbm", "pyfunc"):
            values = self._values(frame)
            return (values >= 0.5).astype("int64") if self.task == "classification" else values
        return np.asarray(self.model.predict(self._x(frame)))

    def _values(self, frame: pd.DataFrame) -> np.ndarray:
        """A booster's or a python_function model's ``predict``: the probability of 1, or the regression value."""
        if self.kind == "pyfunc":
            from driftline.registry.adopted_pyfunc import predictions

            return predictions(self.model, self._x(frame))
        return np.asarray(self.model.predict(self._x(frame)), dtype="float64")


@dataclass(frozen=True)
class Candidate:
    """An MLflow model read for adoption: the loaded model, the bytes driftline will store, where it came from."""

    model: AdoptedModel
    payload: bytes
    flavor: str            # the MLflow flavor it was read through
    serialization: str     # how MLflow stored it (skops, pickle, cloudpickle, ubj, json, text ...)
    signature_columns: tuple[str, ...] | None   # the MLflow signature's input columns, when it has one


# --------------------------------------------------------------------------- the stored artifact


def pack(kind: str, payload: bytes, columns: Sequence[str], task: str) -> bytes:
    """The driftline artifact of an adopted model (deterministic bytes)."""
    meta = json.dumps({"format": 1, "kind": kind, "columns": list(columns), "task": task}, sort_keys=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in ((META, meta.encode()), (PAYLOAD, payload)):
            z.writestr(zipfile.ZipInfo(name, date_time=_EPOCH), data)
    return buf.getvalue()


def is_adopted(data: bytes) -> bool:
    """Whether ``data`` is an adopted model's artifact (a zip holding ``driftline-adopted.json``)."""
    if not data.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return META in z.namelist()
    except zipfile.BadZipFile:
        return False


def unpack(data: bytes, source: str) -> AdoptedModel:
    """Load an adopted model's artifact (already hash-verified by the caller); nothing in it runs code."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            meta = json.loads(z.read(META))
            payload = z.read(PAYLOAD)
        kind, columns, task = meta["kind"], tuple(str(c) for c in meta["columns"]), meta["task"]
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ArtifactIntegrityError(
            f"model artifact {source}: expected an adopted model ({META} and {PAYLOAD}), found unreadable content "
            f"({type(exc).__name__})") from None
    if kind not in KINDS:
        raise ArtifactIntegrityError(f"model artifact {source}: expected kind {', '.join(KINDS)}, found {kind!r}")
    return AdoptedModel(kind, load_payload(kind, payload, source), columns, task)


def load_payload(kind: str, payload: bytes, source: str) -> Any:
    """The model inside an adopted artifact: skops (driftline's trusted types), XGBoost UBJSON or LightGBM text."""
    if kind == "sklearn":
        from driftline.registry.artifact import deserialize

        return deserialize(payload, source)
    if kind == "xgboost":
        return _xgboost_from(payload, source)
    if kind == "pyfunc":
        from driftline.registry.adopted_pyfunc import load

        return load(payload, source)
    lgb = _import("lightgbm", "lightgbm")
    try:
        return lgb.Booster(model_str=payload.decode("utf-8"))
    except Exception as exc:
        raise ArtifactIntegrityError(
            f"model artifact {source}: expected a LightGBM text model, found unreadable content ({exc})") from None


def _xgboost_from(payload: bytes, source: str) -> Any:
    xgb = _import("xgboost", "xgboost-cpu")
    try:
        head = json.loads(payload[: payload.index(b"\n")]) if payload.startswith(b"{\"class\"") else None
    except ValueError:
        head = None
    if head is None or head.get("class") not in XGBOOST_CLASSES.values():
        raise ArtifactIntegrityError(
            f"model artifact {source}: expected an XGBoost model with its class line, found none")
    model = getattr(xgb, head["class"])()
    try:
        model.load_model(bytearray(payload[payload.index(b"\n") + 1:]))
    except Exception as exc:
        raise ArtifactIntegrityError(
            f"model artifact {source}: expected an XGBoost model, found unreadable content ({exc})") from None
    return model


def _xgboost_payload(model: Any) -> bytes:
    """An XGBoost scikit-learn model as bytes `_xgboost_from` reads: a class line, then its UBJSON model."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="driftline-xgb-") as tmp:
        path = Path(tmp) / "model.ubj"
        model.save_model(str(path))
        body = path.read_bytes()
    return json.dumps({"class": type(model).__name__}).encode() + b"\n" + body


def _import(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{module}: expected the package {package} to be installed to load this model, found it "
                         f"missing (pip install '{package}', or the project's 'adopt' extra)") from None


# --------------------------------------------------------------------------- reading an MLflow model folder


def read_mlflow_model(folder: Path, trust_pickle: bool, uri: str, task: str = "classification") -> Candidate:
    """Read the MLflow model in ``folder`` (downloaded from ``uri``) the safe way its ``MLmodel`` file allows;
    ``task``: the config's, what a python_function model's ``predict`` is taken to be."""
    import yaml

    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
        flavors = dict(mlmodel["flavors"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
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
    inputs = (mlmodel.get("signature") or {}).get("inputs")
    if not inputs:
        return None
    try:
        spec = json.loads(inputs)
        return tuple(str(c["name"]) for c in spec)
    except (ValueError, KeyError, TypeError):
        return None


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
    from driftline.registry.artifact import deserialize, serialize

    fmt = str(flavor.get("serialization_format") or "cloudpickle")
    try:
        if fmt == "skops":
            path = _data_file(folder, flavor, "pickled_model", uri)
            payload = path.read_bytes()
            model = deserialize(payload, uri)   # driftline's trusted types only: anything else is refused
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
    xgb = _import("xgboost", "xgboost-cpu")
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


def _read_lightgbm(folder: Path, flavor: dict[str, Any], columns: tuple[str, ...] | None, trust_pickle: bool,
                   uri: str) -> Candidate:
    lgb = _import("lightgbm", "lightgbm")
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
        if fmt == "skops":
            import skops.io as sio

            data = path.read_bytes()
            extra = sorted(set(sio.get_untrusted_types(data=data)) - set(LIGHTGBM_SKOPS_TYPES))
            if extra:
                raise UsageError(f"--model-uri {uri}: expected a LightGBM model of trusted types only, found "
                                 f"{', '.join(extra)}")
            wrapper = sio.loads(data, trusted=list(LIGHTGBM_SKOPS_TYPES))
        else:
            _refuse_pickle(fmt, trust_pickle, uri)
            wrapper = _unpickle(path, uri)
        if cls.endswith("Classifier") and not _binary(list(wrapper.classes_)):
            raise UsageError(f"--model-uri {uri}: expected a binary classifier with classes 0 and 1, found classes "
                             f"{_plain(wrapper.classes_)}")
        booster = wrapper.booster_
    else:
        raise UsageError(f"--model-uri {uri}: expected a LightGBM Booster, LGBMClassifier or LGBMRegressor, found "
                         f"{cls or 'no model_class'}")
    objective = str(booster.params.get("objective", "") or _objective_of(booster))
    task = "classification" if objective in ("binary", "cross_entropy", "xentropy") else "regression"
    if objective.startswith("multiclass"):
        raise UsageError(f"--model-uri {uri}: expected a binary classifier or a regressor, found a multiclass "
                         "LightGBM model (multiclass is not supported yet)")
    model = AdoptedModel("lightgbm", booster, columns or tuple(booster.feature_name()), task)
    return Candidate(model, booster.model_to_string().encode("utf-8"), "lightgbm", fmt, columns)


def _objective_of(booster: Any) -> str:
    """The objective line of a LightGBM text model (``objective=binary sigmoid:1`` → ``binary``)."""
    for line in booster.model_to_string().splitlines()[:40]:
        if line.startswith("objective="):
            return line.removeprefix("objective=").split()[0]
    return ""


def _candidate(kind: str, model: Any, payload: bytes, flavor: str, serialization: str,
               columns: tuple[str, ...] | None, uri: str) -> Candidate:
    names = columns or tuple(str(c) for c in getattr(model, "feature_names_in_", ()))
    if not names:
        raise UsageError(f"--model-uri {uri}: expected the model's input columns (an MLflow signature, or a model "
                         "fitted on a DataFrame), found neither")
    if hasattr(model, "predict_proba"):
        classes = list(getattr(model, "classes_", []))
        if not _binary(classes):
            raise UsageError(f"--model-uri {uri}: expected a binary classifier with classes 0 and 1, found classes "
                             f"{_plain(classes)} (multiclass is not supported "
                             "yet)")
        task = "classification"
    else:
        task = "regression"
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
