"""The tables the score job writes: ``<model>__predictions`` and ``scoring_stats`` (long format)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.scoring.core import MODEL_VERSION, PREDICTED_LABEL, ROLE, SCORE

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructType

SCORE_DATE = "score_date"
PREDICTIONS_PARTITIONS = (SCORE_DATE,)
STATS_TABLE = "scoring_stats"
STATS_PARTITIONS = ("model", SCORE_DATE)

LINEAGE = ("model_name", MODEL_VERSION, ROLE, "run_id", "code_version", "config_hash", "scored_at")


def predictions_table(model: str) -> str:
    return f"{model}__predictions"


def predictions_schema(key: str, key_type: DataType) -> StructType:
    """Column contract of ``<model>__predictions`` (documented in docs/scoring.md)."""
    from pyspark.sql.types import DateType, DoubleType, IntegerType, StringType, StructField, StructType, TimestampType

    return StructType([
        StructField(key, key_type),
        StructField(SCORE, DoubleType()),
        StructField(PREDICTED_LABEL, IntegerType()),
        StructField("model_name", StringType()),
        StructField(MODEL_VERSION, StringType()),
        StructField(ROLE, StringType()),
        StructField("run_id", StringType()),
        StructField("code_version", StringType()),
        StructField("config_hash", StringType()),
        StructField("scored_at", TimestampType()),
        StructField(SCORE_DATE, DateType()),
    ])


def stats_schema() -> StructType:
    """Column contract of ``scoring_stats``: one row per (run, model, date, role, column, metric)."""
    from pyspark.sql.types import DateType, DoubleType, StringType, StructField, StructType, TimestampType

    return StructType([
        StructField("run_id", StringType()),
        StructField("model", StringType()),
        StructField(SCORE_DATE, DateType()),
        StructField("champion_version", StringType()),
        StructField("challenger_version", StringType()),
        StructField(ROLE, StringType()),
        StructField("column", StringType()),
        StructField("metric", StringType()),
        StructField("value", DoubleType()),
        StructField("config_hash", StringType()),
        StructField("scored_at", TimestampType()),
    ])
