"""MLflow tracking/registry access for one model: setup from config, versions, aliases, verified loads.

Layout (defaults, all under the workspace): tracking + registry in ``sqlite:///<workspace>/mlflow.db``,
artifacts in ``<workspace>/mlartifacts``. Any tracking URI (a server, ``databricks``) and registry URI
(``databricks-uc``) can be configured instead; artifacts then live wherever that server puts them.

Aliases: ``champion`` is the version scoring uses; ``previous`` is the champion it replaced (the
target of ``rollback``). Every version carries ``driftline.artifact_sha256`` (set at registration)
and is only ever loaded after that hash matched (`driftline.registry.artifact`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from driftline.errors import ArtifactIntegrityError, UsageError
from driftline.registry.artifact import (
    MODEL_FILE,
    TRUSTED_TYPES,
    ModelCache,
    deserialize,
    sha256_bytes,
    verify_bytes,
)
from driftline.vocabulary import CANARY, CHAMPION, PREVIOUS

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from driftline.registry.spec import MlflowConfig

log = logging.getLogger(__name__)

TAG_SHA256 = "driftline.artifact_sha256"
TAG_FILE = "driftline.artifact_file"
TAG_BYTES = "driftline.artifact_bytes"

_CACHE_SIZE = 4
_cache = ModelCache(_CACHE_SIZE)


@dataclass(frozen=True)
class TrackingSetup:
    """Where MLflow runs, models and artifacts live for this workspace/config."""

    tracking_uri: str
    registry_uri: str
    experiment: str
    artifact_location: str | None  # None: the tracking server decides


def tracking_setup(cfg: MlflowConfig, workspace: str | os.PathLike[str]) -> TrackingSetup:
    """Resolve the config's URIs: unset tracking URI → SQLite and artifacts under the workspace."""
    ws = Path(workspace).resolve()
    if cfg.tracking_uri:
        tracking = cfg.tracking_uri
        artifacts = None
    else:
        tracking = f"sqlite:///{ws / 'mlflow.db'}"
        artifacts = (ws / "mlartifacts").as_uri()
    return TrackingSetup(tracking, cfg.registry_uri or tracking, cfg.experiment, artifacts)


def configure(setup: TrackingSetup) -> None:
    """Point MLflow's fluent API (``mlflow.start_run``, ``log_model``) at this setup."""
    import mlflow

    mlflow.set_tracking_uri(setup.tracking_uri)
    mlflow.set_registry_uri(setup.registry_uri)


def json_artifact(setup: TrackingSetup, mlflow_run_id: str, path: str) -> Any:
    """The JSON document stored as artifact ``path`` of an MLflow run, None when there is none or it is not JSON
    (the reason is logged)."""
    import json

    import mlflow
    from mlflow.exceptions import MlflowException

    configure(setup)
    try:
        text = mlflow.artifacts.load_text(f"runs:/{mlflow_run_id}/{path}")
    except (MlflowException, OSError) as exc:
        log.info("artifact %s of MLflow run %s: %s", path, mlflow_run_id, " ".join(str(exc).split())[:200])
        return None
    try:
        return json.loads(text)
    except ValueError:
        log.warning("artifact %s of MLflow run %s: expected JSON, found unreadable text", path, mlflow_run_id)
        return None


def ensure_experiment(client: MlflowClient, setup: TrackingSetup) -> str:
    """The id of the configured experiment, created (with the workspace artifact location) if absent."""
    exp = client.get_experiment_by_name(setup.experiment)
    if exp is not None:
        if exp.lifecycle_stage != "active":
            raise UsageError(
                f"mlflow.experiment: expected an active experiment {setup.experiment!r}, found it deleted; "
                "restore it or configure another name"
            )
        return str(exp.experiment_id)
    if setup.artifact_location:
        Path(setup.artifact_location.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    return str(client.create_experiment(setup.experiment, artifact_location=setup.artifact_location))


@dataclass(frozen=True)
class VersionInfo:
    """One registered version as driftline sees it."""

    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    created: dt.datetime
    sha256: str | None
    source: str
    model_id: str | None
    tags: Mapping[str, str] = field(default_factory=dict)


class ModelRegistry:
    """Versions and aliases of one registered model."""

    def __init__(self, setup: TrackingSetup, model_name: str, trust_code: bool = False):
        from mlflow import MlflowClient

        self.setup = setup
        self.name = model_name
        # load adopted python_function versions, which run their own code (the config's adopt.trust_pickle)
        self.trust_code = trust_code
        self.client = MlflowClient(tracking_uri=setup.tracking_uri, registry_uri=setup.registry_uri)

    # ------------------------------------------------------------------ reading

    def exists(self) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            return False
        return True

    def versions(self) -> list[VersionInfo]:
        """All versions, oldest first (empty when the model was never registered)."""
        if not self.exists():
            return []
        found = self.client.search_model_versions(f"name = '{self.name}'")
        infos = [self._info(self.client.get_model_version(self.name, mv.version)) for mv in found]
        return sorted(infos, key=lambda v: int(v.version))

    def get(self, version: str | int) -> VersionInfo:
        """One version; `UsageError` naming the known versions when it does not exist."""
        from mlflow.exceptions import MlflowException

        text = str(version)
        if not text.isdigit():
            raise UsageError(f"version: expected a version number, found {text!r}")
        try:
            return self._info(self.client.get_model_version(self.name, text))
        except MlflowException:
            known = ", ".join(v.version for v in self.versions()) or "none"
            raise UsageError(
                f"model {self.name}: expected an existing version, found no version {text} (versions: {known})"
            ) from None

    def alias(self, alias: str) -> VersionInfo | None:
        """The version holding ``alias``, or None."""
        from mlflow.exceptions import MlflowException

        if not self.exists():
            return None
        try:
            return self._info(self.client.get_model_version_by_alias(self.name, alias))
        except MlflowException:
            return None

    def _info(self, mv: Any) -> VersionInfo:
        tags = dict(mv.tags or {})
        created = dt.datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, dt.UTC)
        return VersionInfo(
            version=str(mv.version), aliases=tuple(sorted(mv.aliases or ())), run_id=mv.run_id,
            created=created, sha256=tags.get(TAG_SHA256), source=str(mv.source),
            model_id=getattr(mv, "model_id", None), tags=tags,
        )

    # ------------------------------------------------------------------ writing

    def register(self, model_uri: str, run_id: str, sha256: str, size: int, tags: Mapping[str, str],
                 file: str = MODEL_FILE) -> VersionInfo:
        """Register ``model_uri`` as a new version whose tags hold the hash of its ``file`` from the start."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(self.name)
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise
        all_tags = {**tags, TAG_SHA256: sha256, TAG_FILE: file, TAG_BYTES: str(size)}
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        mv = self.client.create_model_version(
            self.name, source=model_uri, run_id=run_id, tags=all_tags, model_id=model_id
        )
        log.info("registered %s version %s (sha256 %s…)", self.name, mv.version, sha256[:12])
        return self.get(mv.version)

    def set_tags(self, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version, key, str(value))

    def promote(self, version: str, reason: str) -> VersionInfo | None:
        """Move ``champion`` to ``version`` and ``previous`` to the old champion; returns the old champion.

        The artifact's hash is checked first: a version whose file does not verify is never promoted.
        """
        target = self.get(version)
        self.verified_bytes(target)
        old = self.alias(CHAMPION)
        if old is not None and old.version == target.version:
            log.info("%s v%s is already the champion; aliases unchanged", self.name, target.version)
            return None
        if old is not None:
            self.client.set_registered_model_alias(self.name, PREVIOUS, old.version)
        self.client.set_registered_model_alias(self.name, CHAMPION, target.version)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.set_tags(target.version, {"driftline.promoted_at": now, "driftline.promotion_reason": reason})
        log.info("%s: champion v%s → v%s (%s)", self.name, old.version if old else "-", target.version, reason)
        return old

    def rollback(self, reason: str = "rollback") -> tuple[VersionInfo, VersionInfo | None]:
        """Make the ``previous`` version champion again; returns (restored, demoted).

        ``previous`` is removed afterwards, so a second rollback does not flip back to the version
        that was just rolled back from.
        """
        prev = self.alias(PREVIOUS)
        if prev is None:
            raise UsageError(
                f"model {self.name}: expected a version with alias '{PREVIOUS}' to roll back to, found none"
            )
        self.verified_bytes(prev)
        demoted = self.alias(CHAMPION)
        self.client.set_registered_model_alias(self.name, CHAMPION, prev.version)
        self.client.delete_registered_model_alias(self.name, PREVIOUS)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.set_tags(prev.version, {"driftline.promoted_at": now, "driftline.promotion_reason": reason})
        if demoted is not None and demoted.version != prev.version:
            self.set_tags(demoted.version, {"driftline.rolled_back_at": now})
        log.info("%s: rolled back champion v%s → v%s", self.name, demoted.version if demoted else "-", prev.version)
        return self.get(prev.version), demoted

    def start_canary(self, version: str, reason: str) -> VersionInfo | None:
        """Give ``version`` the ``canary`` alias (a canary rollout, `driftline.jobs.canary`); returns the version that
        held it before (replaced), if another. The artifact's hash is checked first, as for a promotion."""
        target = self.get(version)
        self.verified_bytes(target)
        old = self.alias(CANARY)
        self.client.set_registered_model_alias(self.name, CANARY, target.version)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.set_tags(target.version, {"driftline.canary_started_at": now, "driftline.canary_reason": reason})
        log.info("%s: canary v%s (%s)", self.name, target.version, reason)
        return old if old is not None and old.version != target.version else None

    def end_canary(self, promote: bool, reason: str) -> VersionInfo:
        """End the canary rollout: promote the canary (champion; the old champion becomes ``previous``) or roll it
        back (the champion stays); the ``canary`` alias is removed either way. Returns the canary version."""
        canary = self.alias(CANARY)
        if canary is None:
            raise UsageError(f"model {self.name}: expected a version with alias '{CANARY}', found none")
        if promote:
            self.promote(canary.version, reason)
        else:
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self.set_tags(canary.version, {"driftline.canary_rolled_back_at": now,
                                           "driftline.canary_reason": reason})
            log.info("%s: canary v%s rolled back (%s)", self.name, canary.version, reason)
        self.client.delete_registered_model_alias(self.name, CANARY)
        return canary

    # ------------------------------------------------------------------ artifacts

    def artifact_uri(self, info: VersionInfo) -> str:
        """URI of the version's serialized model file."""
        # MLflow 3 sources look like models:/m-<id>; some stores do not echo model_id back.
        model_id = info.model_id or (info.source.removeprefix("models:/") if info.source.startswith("models:/m-")
                                     else None)
        base = self.client.get_logged_model(model_id).artifact_location if model_id else info.source
        return f"{base.rstrip('/')}/{info.tags.get(TAG_FILE, MODEL_FILE)}"

    def verified_bytes(self, info: VersionInfo) -> bytes:
        """The version's model bytes after their SHA-256 matched the registered one."""
        if not info.sha256:
            raise ArtifactIntegrityError(
                f"model {self.name} v{info.version}: expected tag {TAG_SHA256} recorded at registration, "
                "found none; refusing to load"
            )
        uri = self.artifact_uri(info)
        try:
            data = fetch_bytes(uri, self.setup.tracking_uri)
        except Exception as exc:
            raise ArtifactIntegrityError(
                f"model {self.name} v{info.version}: expected the artifact at {uri}, cannot fetch it "
                f"({type(exc).__name__}: {exc})"
            ) from None
        verify_bytes(data, info.sha256, f"{uri} of {self.name} v{info.version}")
        return data

    def load_alias(self, alias: str = CHAMPION) -> tuple[VersionInfo, Any]:
        """(version, verified model) of the version holding ``alias``; `UsageError` when none does."""
        info = self.alias(alias)
        if info is None:
            raise UsageError(f"model {self.name}: expected a version with alias '{alias}', found none")
        return info, self.load(info.version)

    def load(self, version: str | int) -> Any:
        """The fitted pipeline of ``version``, verified (hash) before it is deserialized; cached per hash."""
        info = self.get(version)
        key = (self.setup.registry_uri, self.name, info.version, info.sha256 or "",
               *(("code",) if self.trust_code else ()))
        return _cache.get_or_load(key, lambda: deserialize(self.verified_bytes(info), f"{self.name} v{info.version}",
                                                           self.trust_code))


@dataclass(frozen=True)
class LoggedModel:
    """A model logged to the active MLflow run, with the hash of its serialized file."""

    model_uri: str
    model_id: str
    sha256: str
    size: int


def log_model(registry: ModelRegistry, model: Any, input_example: Any, signature: Any) -> LoggedModel:
    """Log ``model`` (skops, trusted types only) to the active run; hash the file exactly as stored."""
    import mlflow
    import sklearn
    import skops

    info = mlflow.sklearn.log_model(
        model, name="model", serialization_format="skops", skops_trusted_types=list(TRUSTED_TYPES),
        signature=signature, input_example=input_example,
        # explicit requirements: MLflow would otherwise load the model in a subprocess to infer them
        pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"],
    )
    location = registry.client.get_logged_model(info.model_id).artifact_location
    data = fetch_bytes(f"{location.rstrip('/')}/{MODEL_FILE}", registry.setup.tracking_uri)
    return LoggedModel(info.model_uri, info.model_id, sha256_bytes(data), len(data))


def fetch_bytes(uri: str, tracking_uri: str) -> bytes:
    """The bytes of one artifact file: read in place for ``file:`` URIs, else downloaded to a temp dir."""
    import mlflow

    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path)).read_bytes()
    with tempfile.TemporaryDirectory(prefix="driftline-model-") as tmp:
        path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=tracking_uri)
        return Path(path).read_bytes()


def clear_cache() -> None:
    """Forget loaded models (tests, long-lived processes after a registry change)."""
    _cache.clear()
