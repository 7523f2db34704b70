"""Configuration slice of the MLflow registry (``mlflow:`` in the config); keys in ``docs/configuration.md``."""

from __future__ import annotations

from driftline.spec import Frozen


class MlflowConfig(Frozen):
    """MLflow tracking server / registry; defaults to SQLite + files under the workspace."""

    tracking_uri: str | None = None
    registry_uri: str | None = None
    experiment: str = "driftline"
