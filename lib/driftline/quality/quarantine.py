"""Quarantine: rows that violate a row-level check, one row per (source row, violated check), with the reason."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from driftline.quality.checks import RowCheck, reason, violation_column

QUARANTINE_TABLE = "quarantine"
QUARANTINE_PARTITIONS = ["model", "as_of_date"]

QUARANTINE_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType(), False),
    T.StructField("model", T.StringType(), False),
    T.StructField("as_of_date", T.DateType(), False),
    T.StructField("target", T.StringType(), False),
    T.StructField("check", T.StringType(), False),
    T.StructField("reason", T.StringType(), True),
    T.StructField("entity_key", T.StringType(), True),
    T.StructField("record", T.StringType(), True),
    T.StructField("config_hash", T.StringType(), False),
])


def quarantine_rows(df: DataFrame, checks: Sequence[RowCheck], *, target: str, key: str, columns: Sequence[str],
                    run_id: str, model: str, config_hash: str) -> DataFrame:
    """Violating rows of ``df`` (which has ``as_of_date`` and the ``_v__<check>`` columns of `with_violations`).

    ``columns`` are the source columns kept in ``record`` (JSON, timestamps rendered in UTC).
    """
    if not checks:
        return df.sparkSession.createDataFrame([], QUARANTINE_SCHEMA)
    hits = F.filter(
        F.array(*[F.when(F.col(violation_column(c)), F.struct(F.lit(c.check_name).alias("check"),
                                                               reason(c).alias("reason"))) for c in checks]),
        lambda x: x.isNotNull(),
    )
    any_hit = F.lit(False)
    for c in checks:
        any_hit = any_hit | F.col(violation_column(c))
    record = F.to_json(F.struct(*[F.col(c) for c in columns]), {"timeZone": "UTC"})
    return (
        df.filter(any_hit)
        .select("as_of_date", F.col(key).cast("string").alias("entity_key"), record.alias("record"),
                F.explode(hits).alias("_hit"))
        .select(
            F.lit(run_id).alias("run_id"),
            F.lit(model).alias("model"),
            "as_of_date",
            F.lit(target).alias("target"),
            F.col("_hit.check").alias("check"),
            F.col("_hit.reason").alias("reason"),
            "entity_key",
            "record",
            F.lit(config_hash).alias("config_hash"),
        )
    )
