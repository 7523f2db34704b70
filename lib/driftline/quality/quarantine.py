"""Quarantine: rows that violate a row-level check, one row per (source row, violated check), with the reason."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from driftline.quality.checks import RowCheck, reason, violation_column
from driftline.tables.contracts import QUARANTINE
from driftline.vocabulary import CODE_VERSION, CONFIG_HASH, MODEL, RUN_ID


def quarantine_rows(df: DataFrame, checks: Sequence[RowCheck], *, target: str, key: str, columns: Sequence[str],
                    run_id: str, model: str, config_hash: str, code_version: str) -> DataFrame:
    """Violating rows of ``df`` (which has ``as_of_date`` and the ``_v__<check>`` columns of `with_violations`).

    ``columns`` are the source columns kept in ``record`` (JSON, timestamps rendered in UTC).
    """
    if not checks:
        return df.sparkSession.createDataFrame([], QUARANTINE.schema())
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
            F.lit(model).alias(MODEL),
            "as_of_date",
            F.lit(target).alias("target"),
            F.col("_hit.check").alias("check"),
            F.col("_hit.reason").alias("reason"),
            "entity_key",
            "record",
            F.lit(run_id).alias(RUN_ID),
            F.lit(code_version).alias(CODE_VERSION),
            F.lit(config_hash).alias(CONFIG_HASH),
        )
    )
