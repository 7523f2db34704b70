"""The ``reference_profiles`` Delta table: one model version's reference profile in long format.

Written by the train job (`write_reference_rows`), read by monitoring (`reference_bins`,
`read_reference_rows`). Columns: `driftline.tables.contracts.REFERENCE_PROFILES`
(``docs/table-reference.md``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError, MissingInputError
from driftline.tables.contracts import REFERENCE_PROFILES as CONTRACT
from driftline.vocabulary import FEATURE_ROLE, MODEL, MODEL_VERSION, SCORE, finite_or_none

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from driftline.profiling.bins import ColumnBins
    from driftline.tables import CommitInfo, TableStore

REFERENCE_PROFILES = CONTRACT.table()
REFERENCE_SAMPLE = "sample.parquet"  # MLflow artifact reference_profile/sample.parquet: rows for the Evidently page


@dataclass(frozen=True)
class ProfileProvenance:
    """Who produced a reference profile (copied onto every row)."""

    model: str
    model_version: str
    mlflow_run_id: str
    run_id: str
    config_hash: str
    code_version: str
    created_at: dt.datetime


def reference_frame_rows(rows: Sequence[Mapping[str, Any]], who: ProfileProvenance,
                         score_column: str = SCORE) -> list[tuple[Any, ...]]:
    """`driftline.profiling.profile.profile_rows` output → tuples in the contract's column order; a row that
    names its own ``role`` (the score's calibration table) keeps it."""
    created = who.created_at.astimezone(dt.UTC).replace(tzinfo=None)
    return [
        (who.model, who.model_version, r["column"],
         r.get("role") or (SCORE if r["column"] == score_column else FEATURE_ROLE),
         r["kind"], r["stat"], r["bin"], r["lower"], r["upper"], r["category"], r["quantile"],
         finite_or_none(r["value"]), who.mlflow_run_id, who.run_id, who.code_version, who.config_hash, created)
        for r in rows
    ]


def write_reference_rows(spark: SparkSession, store: TableStore, rows: Sequence[Mapping[str, Any]],
                         who: ProfileProvenance, commit: CommitInfo) -> None:
    """Replace the (model, model_version) partition of ``reference_profiles`` with ``rows``."""
    df = spark.createDataFrame(reference_frame_rows(rows, who), schema=CONTRACT.schema())
    store.replace_partitions(
        REFERENCE_PROFILES, df, CONTRACT.partition_by, commit,
        partitions=[{MODEL: who.model, MODEL_VERSION: who.model_version}],
    )


def read_reference_rows(store: TableStore, model: str, model_version: str) -> DataFrame:
    """The stored profile rows of one model version (partition-pruned read)."""
    if not store.exists(REFERENCE_PROFILES):
        raise MissingInputError(
            f"table {REFERENCE_PROFILES}: expected the reference profile of {model} v{model_version}, "
            "found no table (train the model first)"
        )
    return store.read(REFERENCE_PROFILES,
                      partitions={MODEL: [model], MODEL_VERSION: [str(model_version)]})


def reference_bins(store: TableStore, model: str, model_version: str) -> dict[str, ColumnBins]:
    """The bins fitted on a version's reference, rebuilt from its stored rows (for monitoring)."""
    from driftline.profiling.bins import bins_from_rows

    rows = [r.asDict() for r in read_reference_rows(store, model, model_version)
            .filter("stat in ('bin_count', 'category_count', 'rows', 'tail_count', 'membership_filter', "
                    "'expected_unseen_share')").collect()]
    if not rows:
        raise DriftlineError(
            f"table {REFERENCE_PROFILES}: expected rows for {model} v{model_version}, found none"
        )
    return bins_from_rows(rows)
