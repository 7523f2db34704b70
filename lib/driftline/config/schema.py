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

from driftline.features.spec import FeatureSpec, SourcesConfig
from driftline.quality.spec import QualityConfig
from driftline.retrain.spec import RetrainConfig
from driftline.scoring.spec import ScoringConfig
from driftline.spec import IDENTIFIER, Frozen, Identifier, LocalFolder, StorageLocation
from driftline.tables.spec import StorageConfig
from driftline.training.spec import TrainingConfig

__all__ = ["IDENTIFIER", "DriftlineConfig", "Frozen", "Identifier", "RuntimeConfig", "StorageConfig"]


# --------------------------------------------------------------------------- runtime / storage


class RuntimeConfig(Frozen):
    """How the SparkSession is built (ignored where ``spark-submit`` already decided)."""

    master: str = "local[*]"
    app_name: str = "driftline"
    shuffle_partitions: int = Field(8, ge=1, le=100_000)
    driver_memory: str | None = Field(None, pattern=r"^\d+[kmgtKMGT]?$")
    arrow_batch_size: int = Field(10_000, ge=1)
    spark_log_level: Literal["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"] = "ERROR"
    spark_conf: dict[str, str] = Field(default_factory=dict)
    jvm_fold: bool = True   # compile driftline's JVM profile fold (needs javac) and load it; false: Arrow fold


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


class MlflowConfig(Frozen):
    """MLflow tracking server / registry; defaults to SQLite + files under the workspace."""

    tracking_uri: str | None = None
    registry_uri: str | None = None
    experiment: str = "driftline"


class LoggingConfig(Frozen):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = False


# --------------------------------------------------------------------------- model sections


class LabelConfig(Frozen):
    task: Literal["classification", "regression"] = "classification"
    horizon_days: int = Field(14, ge=1, le=3650)
    threshold: float = Field(0.5, gt=0, lt=1)


class EstimatorConfig(Frozen):
    type: Literal[
        "logistic_regression",
        "hist_gradient_boosting",
        "random_forest",
        "ridge",
        "hist_gradient_boosting_regressor",
    ] = "logistic_regression"
    params: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    scale_numeric: bool = True
    seed: int = 42


class ScheduleConfig(Frozen):
    cron: str = "0 3 * * *"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(f"expected a 5-field cron line, found {v!r}")
        return v


DriftMethod = Literal["auto", "wasserstein", "psi", "js", "ks", "chi2"]


class ColumnDriftConfig(Frozen):
    """Per-column drift method and threshold (``monitoring.drift.columns.<column>``)."""

    method: DriftMethod = "auto"
    threshold: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _threshold_needs_method(self) -> ColumnDriftConfig:
        if self.threshold is not None and self.method == "auto":
            raise ValueError("threshold: expected an explicit method (wasserstein, psi, js, ks, chi2), found auto")
        if self.threshold is not None and self.method in ("ks", "chi2") and not 0 < self.threshold < 1:
            raise ValueError(f"threshold: expected a p-value level in (0, 1) for {self.method}, found {self.threshold}")
        return self


class DriftConfig(Frozen):
    psi_threshold: float = Field(0.2, ge=0)
    js_threshold: float = Field(0.1, ge=0, le=1)
    wasserstein_threshold: float = Field(0.1, ge=0)
    ks_pvalue: float = Field(0.05, gt=0, lt=1)
    chi2_pvalue: float = Field(0.05, gt=0, lt=1)
    bins: int = Field(10, ge=2, le=1000)
    top_k: int = Field(20, ge=1, le=10_000)
    min_rows: int = Field(100, ge=1)
    fdr: float = Field(0.05, gt=0, lt=1)
    dataset_drift_share: float = Field(0.5, gt=0, le=1)
    numeric_method: DriftMethod = "auto"
    categorical_method: Literal["auto", "psi", "js", "chi2"] = "auto"
    small_sample_rows: int = Field(1000, ge=1)
    discrete_values: int | None = Field(None, ge=0, le=1000)
    tail_buckets: int = Field(32, ge=0, le=4096)
    membership_fpr: float = Field(0.01, gt=0, lt=0.5)
    unseen_threshold: float = Field(0.1, gt=0, le=1)
    columns: dict[Identifier, ColumnDriftConfig] = Field(default_factory=dict)
    threshold_mode: Literal["static", "calibrated"] = "static"
    calibration_k: float = Field(3.0, gt=0)
    calibration_chunks: int = Field(10, ge=2, le=1000)


class PerformanceConfig(Frozen):
    min_label_coverage: float = Field(0.5, ge=0, le=1)
    min_labels: int = Field(100, ge=1)


class MonitoringReportConfig(Frozen):
    evidently_rows: int = Field(5000, ge=0, le=100_000)


class MonitoringConfig(Frozen):
    window_days: int = Field(1, ge=1, le=366)
    segments: list[Identifier] = Field(default_factory=list)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    report: MonitoringReportConfig = Field(default_factory=MonitoringReportConfig)


# --------------------------------------------------------------------------- the whole thing


class DriftlineConfig(Frozen):
    """The resolved configuration of one job run (base → model → overrides)."""

    workspace: LocalFolder = ".driftline"
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    storage: CheckedStorageConfig = Field(default_factory=CheckedStorageConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

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

    @model_validator(mode="after")
    def _unique_feature_names(self) -> DriftlineConfig:
        seen: set[str] = set()
        dupes = sorted({f.name for f in self.features if f.name in seen or seen.add(f.name)})
        if dupes:
            raise ValueError(f"feature names must be unique, found repeated: {', '.join(dupes)}")
        return self
