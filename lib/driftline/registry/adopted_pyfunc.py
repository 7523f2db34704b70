"""Generic MLflow ``python_function`` models (predict only) for `driftline models adopt`.

Such a model is its own code (a cloudpickled ``PythonModel``, a loader module): loading it runs that code,
at adoption and in every process that scores with it. It is adopted only with ``adopt.trust_pickle: true``;
driftline then stores the whole MLflow model folder (a zip with fixed timestamps, inside the adopted artifact,
SHA-256 recorded at registration and checked before every load like any version's), and loads it with
``mlflow.pyfunc.load_model``. Its ``predict`` output is the score: the positive-class probability for a
classification model (checked to lie in [0, 1] at adoption), the prediction for a regression model.
"""

from __future__ import annotations

import atexit
import io
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from driftline.errors import ArtifactIntegrityError, UsageError

_EPOCH = (1980, 1, 1, 0, 0, 0)


def folder_bytes(folder: Path) -> bytes:
    """The MLflow model folder as a zip (sorted members, fixed timestamps: the same folder gives the same bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):   # no local files
            z.writestr(zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_EPOCH), path.read_bytes())
    return buf.getvalue()


def read(folder: Path, trust_pickle: bool, uri: str) -> tuple[Any, bytes]:
    """(loaded model, bytes to store) of a python_function model; refused before loading without trust."""
    if not trust_pickle:
        raise UsageError(
            f"--model-uri {uri}: a generic python_function model is its own code, and loading it runs that code; "
            "refused: set adopt.trust_pickle: true in the model's config only if you trust where it comes from")
    payload = folder_bytes(folder)
    return load(payload, uri, error=UsageError), payload


def load(payload: bytes, source: str, error: type[Exception] = ArtifactIntegrityError) -> Any:
    """``mlflow.pyfunc.load_model`` on the folder in ``payload`` (hash-verified by the caller), unpacked into a
    folder that lives as long as the process (a model may read its files lazily)."""
    import mlflow

    folder = Path(tempfile.mkdtemp(prefix="driftline-pyfunc-"))
    atexit.register(shutil.rmtree, folder, True)
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as z:
            z.extractall(folder)        # zipfile drops absolute paths and ".." from member names
        return mlflow.pyfunc.load_model(str(folder))
    except Exception as exc:
        raise error(f"model {source}: expected an MLflow python_function model that loads here, found "
                    f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None


def predictions(model: Any, frame: Any) -> np.ndarray:
    """The model's ``predict`` on ``frame`` as one float64 value per row."""
    out = model.predict(frame)
    values = np.asarray(getattr(out, "to_numpy", lambda: out)(), dtype="float64")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (len(frame),):
        raise ValueError(f"python_function model: expected one prediction per row ({len(frame)}), "
                         f"found shape {values.shape}")
    return values
