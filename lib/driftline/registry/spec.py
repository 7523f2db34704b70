"""Configuration slice of the MLflow registry (``mlflow:`` in the config); keys in ``docs/configuration.md``."""

from __future__ import annotations

from driftline.spec import Frozen


class MlflowConfig(Frozen):
    """MLflow tracking server / registry; defaults to SQLite + files under the workspace."""

    tracking_uri: str | None = None
    registry_uri: str | None = None
    experiment: str = "driftline"


class AdoptConfig(Frozen):
    """``adopt:``: how `driftline models adopt` treats a model it did not train (`driftline.registry.adopted`)."""

    # a model stored as pickle / cloudpickle runs code when loaded: adopted (and converted to a format that runs
    # none) only when the model's config says its source is trusted
    trust_pickle: bool = False
