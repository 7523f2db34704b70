"""The ``monitor_runs`` table: one verdict row per (model, run date); status ordering."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from driftline.monitoring.spec import ALERT, INSUFFICIENT, OK, WARN

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

MONITOR_RUNS = "monitor_runs"
RUNS_PARTITIONS = ("model", "run_date")
STATUS_ORDER = {OK: 0, INSUFFICIENT: 1, WARN: 2, ALERT: 3}


def monitor_runs_schema() -> StructType:
    """Schema of ``monitor_runs``: one row per (model, run_date), see ``docs/monitoring.md``."""
    from pyspark.sql.types import (
        BooleanType,
        DateType,
        DoubleType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    return StructType([
        StructField("run_id", StringType(), False),
        StructField("model", StringType(), False),
        StructField("model_version", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("window_start", DateType(), False),
        StructField("window_end", DateType(), False),
        StructField("rows", LongType(), False),
        StructField("columns_evaluated", IntegerType(), False),
        StructField("columns_drifted", IntegerType(), False),
        StructField("drift_share", DoubleType(), True),
        StructField("dataset_drift", BooleanType(), False),
        StructField("status", StringType(), False),
        StructField("quality_status", StringType(), False),
        StructField("performance_status", StringType(), False),
        StructField("report_path", StringType(), True),
        StructField("config_hash", StringType(), False),
        StructField("code_version", StringType(), False),
        StructField("started_at", TimestampType(), False),
    ])


def worst(statuses: Sequence[str]) -> str:
    """The most severe of ``statuses`` (alert > warn > insufficient_data > ok); ``ok`` when empty."""
    return max(statuses, key=lambda s: STATUS_ORDER.get(s, 0), default=OK)
