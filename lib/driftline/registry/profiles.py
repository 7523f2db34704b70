"""The ``reference_profiles`` Delta table: one model version's reference profile in long format.

Written by the train job (`write_reference_rows`), read by monitoring (`reference_bins`,
`read_reference_rows`). Columns are documented in ``docs/training.md``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError
from driftline.profiling.stored import PREDICTION

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from driftline.profiling.bins import ColumnBins
    from driftline.tables import CommitInfo, TableStore

REFERENCE_PROFILES = "reference_profiles"
PARTITION_BY = ("model_name", "model_version")
REFERENCE_SAMPLE = "sample.parquet"  # MLflow artifact reference_profile/sample.parquet: rows for the Evidently page


@dataclass(frozen=True)
class ProfileProvenance:
    """Who produced a reference profile (copied onto every row)."""

    model_name: str
    model_version: str
    mlflow_run_id: str
    run_id: str
    config_hash: str
    created_at: dt.datetime


def reference_profiles_schema() -> StructType:
    """Schema of ``reference_profiles`` (partitioned by model_name, model_version)."""
    from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType, TimestampType

    return StructType([
        StructField("model_name", StringType(), False),
        StructField("model_version", StringType(), False),
        StructField("column", StringType(), False),
        StructField("role", StringType(), False),
        StructField("kind", StringType(), False),
        StructField("stat", StringType(), False),
        StructField("bin", IntegerType(), True),
        StructField("lower", DoubleType(), True),
        StructField("upper", DoubleType(), True),
        StructField("category", StringType(), True),
        StructField("quantile", DoubleType(), True),
        StructField("value", DoubleType(), True),
        StructField("mlflow_run_id", StringType(), False),
        StructField("run_id", StringType(), False),
        StructField("config_hash", StringType(), False),
        StructField("created_at", TimestampType(), False),
    ])


def clean_value(value: float | None) -> float | None:
    """NaN → None (SQL null / JSON null): an undefined statistic, never a number."""
    return None if value is None or math.isnan(value) else float(value)


def reference_frame_rows(rows: Sequence[Mapping[str, Any]], who: ProfileProvenance,
                         prediction_column: str = PREDICTION) -> list[tuple[Any, ...]]:
    """`driftline.profiling.profile.profile_rows` output → tuples in `reference_profiles_schema` order."""
    created = who.created_at.astimezone(dt.UTC).replace(tzinfo=None)
    return [
        (who.model_name, who.model_version, r["column"],
         "prediction" if r["column"] == prediction_column else "feature",
         r["kind"], r["stat"], r["bin"], r["lower"], r["upper"], r["category"], r["quantile"],
         clean_value(r["value"]), who.mlflow_run_id, who.run_id, who.config_hash, created)
        for r in rows
    ]


def write_reference_rows(spark: SparkSession, store: TableStore, rows: Sequence[Mapping[str, Any]],
                         who: ProfileProvenance, commit: CommitInfo) -> None:
    """Replace the (model_name, model_version) partition of ``reference_profiles`` with ``rows``."""
    df = spark.createDataFrame(reference_frame_rows(rows, who), schema=reference_profiles_schema())
    store.replace_partitions(
        REFERENCE_PROFILES, df, list(PARTITION_BY), commit,
        partitions=[{"model_name": who.model_name, "model_version": who.model_version}],
    )


def read_reference_rows(store: TableStore, model_name: str, model_version: str) -> DataFrame:
    """The stored profile rows of one model version (partition-pruned read)."""
    if not store.exists(REFERENCE_PROFILES):
        raise DriftlineError(
            f"table {REFERENCE_PROFILES}: expected the reference profile of {model_name} v{model_version}, "
            "found no table (train the model first)"
        )
    return store.read(REFERENCE_PROFILES,
                      partitions={"model_name": [model_name], "model_version": [str(model_version)]})


def reference_bins(store: TableStore, model_name: str, model_version: str) -> dict[str, ColumnBins]:
    """The bins fitted on a version's reference, rebuilt from its stored rows (for monitoring)."""
    from driftline.profiling.bins import bins_from_rows

    rows = [r.asDict() for r in read_reference_rows(store, model_name, model_version)
            .filter("stat in ('bin_count', 'category_count', 'rows', 'tail_count', 'membership_filter', "
                    "'expected_unseen_share')").collect()]
    if not rows:
        raise DriftlineError(
            f"table {REFERENCE_PROFILES}: expected rows for {model_name} v{model_version}, found none"
        )
    return bins_from_rows(rows)
