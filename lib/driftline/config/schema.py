"""Typed, frozen configuration models.

One resolved configuration object (`DriftlineConfig`) holds the runtime keys that normally come
from ``conf/base.yaml`` and the model keys that normally come from ``conf/models/<name>.yaml``; any
layer may set any key (see `driftline.config.loader`). Unknown keys are errors everywhere. Library
functions receive only their slice (``cfg.runtime``, ``cfg.storage``, ``cfg.monitoring`` ...).

Every key is documented in ``docs/configuration.md``; keep the two in step.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from driftline.alerts.spec import AlertsConfig
from driftline.features.spec import FeatureSpec, SourcesConfig
from driftline.monitoring.spec import MonitoringConfig
from driftline.quality.spec import QualityConfig
from driftline.registry.spec import AdoptConfig, MlflowConfig
from driftline.retrain.spec import RetrainConfig
from driftline.runtime import RuntimeConfig
from driftline.scoring.spec import ScoringConfig
from driftline.spec import Frozen, Identifier, LocalFolder, StorageLocation
from driftline.tables.spec import StorageConfig
from driftline.training.spec import EstimatorConfig, LabelConfig, TrainingConfig

__all__ = ["DriftlineConfig"]


# --------------------------------------------------------------------------- runtime / storage


class CheckedStorageConfig(StorageConfig):
    """``storage:`` as read from the config files: locations checked (`check_storage_location`).

    A root or table location may be a local path or an object-store URI (s3a, abfss, gs ...); a
    foreign scheme, a URI without its bucket, credentials or ``..`` segments are refused at load.
    Table names stay identifiers (`driftline.tables.names.validate_table_name`).
    """

    root: StorageLocation | None = None
    tables: dict[Identifier, StorageLocation] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_plain(cls, data: Any) -> Any:
        # A plain StorageConfig (built in code) is checked like the same keys read from YAML.
        return data.model_dump() if isinstance(data, StorageConfig) and not isinstance(data, cls) else data


class LoggingConfig(Frozen):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = False


# --------------------------------------------------------------------------- model sections


class ScheduleConfig(Frozen):
    cron: str = "0 3 * * *"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(f"expected a 5-field cron line, found {v!r}")
        return v


# --------------------------------------------------------------------------- the whole thing


class WorkspaceConfig(Frozen):
    """The keys that belong to no model: where and how driftline runs (normally ``conf/base.yaml``)."""

    workspace: LocalFolder = ".driftline"
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    storage: CheckedStorageConfig = Field(default_factory=CheckedStorageConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


class DriftlineConfig(WorkspaceConfig):
    """The resolved configuration of one job run (base → model → overrides)."""

    name: Identifier
    description: str = ""
    entity_key: Identifier
    sources: SourcesConfig
    features: list[FeatureSpec] = Field(min_length=1)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    label: LabelConfig = Field(default_factory=LabelConfig)
    estimator: EstimatorConfig = Field(default_factory=EstimatorConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    adopt: AdoptConfig = Field(default_factory=AdoptConfig)

    @model_validator(mode="after")
    def _monitor_only_has_no_rollout(self) -> DriftlineConfig:
        # every version of a monitor-only model predicts the logged score: a canary or a rollback between two of
        # them would compare identical scores
        if self.sources.inference is not None:
            rules = (("retrain.canary", self.retrain.canary), ("retrain.rollback", self.retrain.rollback))
            on = [k for k, rule in rules if rule.enabled]
            if on:
                raise ValueError(f"a monitor-only model (sources.inference) has no canary or rollback between its "
                                 f"versions (they predict the same logged scores); expected them off, found "
                                 f"{' and '.join(on)} enabled")
        return self

    @model_validator(mode="after")
    def _unique_feature_names(self) -> DriftlineConfig:
        seen: set[str] = set()
        dupes = sorted({f.name for f in self.features if f.name in seen or seen.add(f.name)})
        if dupes:
            raise ValueError(f"feature names must be unique, found repeated: {', '.join(dupes)}")
        return self
