"""Models driftline did not train (`driftline models adopt`, `driftline.jobs.adopt`): the artifact driftline stores
for them and how it loads (`driftline.registry.adopted_read` reads the MLflow model folder they come from).

What an adopted version's file holds (``model.adopted.zip``, SHA-256 recorded at registration like any
version's): ``driftline-adopted.json`` (kind, the model's input columns in its own order, task) and
``model.bin``, one of

- ``sklearn``: skops bytes, rebuilt with driftline's trusted types only (`driftline.registry.artifact`);
- ``xgboost``: XGBoost's own UBJSON model (an ``XGBClassifier`` / ``XGBRegressor``), parsed by XGBoost;
- ``lightgbm``: LightGBM's text model (a ``Booster``), parsed by LightGBM;
- ``pyfunc``: a generic MLflow ``python_function`` model's whole folder (`driftline.registry.adopted_pyfunc`);
- ``logged``: nothing (an empty file): a monitor-only model's version (``sources.inference``), whose prediction of
  a row is the score its inference log recorded (``logged_score`` of the features table, `driftline.jobs.ingest`).

The first three run no code when loaded. A model logged as pickle or cloudpickle (scikit-learn, LightGBM's
scikit-learn classes) is unpickled once, at adoption, only when ``adopt.trust_pickle`` is true, and
stored in one of those formats; the decision is made from the ``MLmodel`` file before a byte of the
payload is read. A generic ``python_function`` model is its own code: adopted only with
``adopt.trust_pickle``, and loaded (running that code, wherever it scores: predict only) only where the
config says ``adopt.trust_pickle: true`` again (``allow_code`` of `unpack`).
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftline.errors import ArtifactIntegrityError, UsageError
from driftline.vocabulary import LOGGED_SCORE

log = logging.getLogger(__name__)

ADOPTED_FILE = "model.adopted.zip"
META = "driftline-adopted.json"
PAYLOAD = "model.bin"
KINDS = ("sklearn", "xgboost", "lightgbm", "pyfunc", "logged")
SCORED_BY_VALUES = ("lightgbm", "pyfunc", "logged")   # kinds whose predict gives the score (no predict_proba)
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
        if self.kind in SCORED_BY_VALUES:
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
        """Never called; present because scikit-learn's scorers (permutation importance) refuse an object without it."""
        raise NotImplementedError("an adopted model is fitted outside driftline")

    def _x(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[:, list(self.columns)]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.kind in SCORED_BY_VALUES:
            p = self._values(frame)
            return np.column_stack([1.0 - p, p])
        return np.asarray(self.model.predict_proba(self._x(frame)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.kind in SCORED_BY_VALUES:
            values = self._values(frame)
            return (values >= 0.5).astype("int64") if self.task == "classification" else values
        return np.asarray(self.model.predict(self._x(frame)))

    def _values(self, frame: pd.DataFrame) -> np.ndarray:
        """A booster's or a python_function model's ``predict``, or the logged score: the probability of 1, or the
        regression value."""
        if self.kind == "logged":
            return pd.to_numeric(frame[LOGGED_SCORE], errors="raise").to_numpy(dtype="float64", na_value=np.nan)
        if self.kind == "pyfunc":
            from driftline.registry.adopted_pyfunc import predictions

            return predictions(self.model, self._x(frame))
        return np.asarray(self.model.predict(self._x(frame)), dtype="float64")


def logged_model(task: str) -> AdoptedModel:
    """A monitor-only model's version: its prediction of a row is the row's logged score."""
    return AdoptedModel("logged", None, (LOGGED_SCORE,), task)


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


def unpack(data: bytes, source: str, allow_code: bool = False) -> AdoptedModel:
    """Load an adopted model's artifact (already hash-verified by the caller). Nothing in it runs code, except a
    python_function model: loaded only with ``allow_code`` (the config's ``adopt.trust_pickle``)."""
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
    if kind == "pyfunc" and not allow_code:
        raise ArtifactIntegrityError(
            f"model artifact {source}: a python_function model runs its own code when loaded; refused: set "
            "adopt.trust_pickle: true in the model's config to load it")
    return AdoptedModel(kind, load_payload(kind, payload, source), columns, task)


def load_payload(kind: str, payload: bytes, source: str) -> Any:
    """The model inside an adopted artifact: skops (driftline's trusted types), XGBoost UBJSON or LightGBM text."""
    if kind == "sklearn":
        from driftline.registry.artifact import deserialize_skops

        return deserialize_skops(payload, source)
    if kind == "xgboost":
        return _xgboost_from(payload, source)
    if kind == "logged":
        return None
    if kind == "pyfunc":
        from driftline.registry.adopted_pyfunc import load

        return load(payload, source)
    lgb = import_or_explain("lightgbm", "lightgbm")
    try:
        return lgb.Booster(model_str=payload.decode("utf-8"))
    except Exception as exc:
        raise ArtifactIntegrityError(
            f"model artifact {source}: expected a LightGBM text model, found unreadable content ({exc})") from None


def _xgboost_from(payload: bytes, source: str) -> Any:
    xgb = import_or_explain("xgboost", "xgboost-cpu")
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


def import_or_explain(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{module}: expected the package {package} to be installed to load this model, found it "
                         f"missing (pip install '{package}', or the project's 'adopt' extra)") from None
