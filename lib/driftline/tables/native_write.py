"""A delta-spark write ready to commit (`NativeWrite`, the native backend's `StagedWrite`): one ``save``.

The options carry the app transaction (``txnAppId``/``txnVersion``) and driftline's commit metadata; a
replace of partitions is a ``replaceWhere`` over the partitions written. A commit conflict with another
writer (delta-spark or delta-rs) is retried up to ``storage.commit_retries`` times unless the app
transaction moved meanwhile (then `ConcurrentRunError`); a write delta-spark skipped because its
txnVersion was already committed is detected afterwards from the history.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from driftline.errors import ConcurrentRunError, TableError
from driftline.tables.backend import Committed, PartitionKey, error_line
from driftline.tables.names import Location
from driftline.tables.preflight import WritePlan, named, stray_rows_error
from driftline.tables.sql_text import sql_literal
from driftline.vocabulary import RUN_ID

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from driftline.tables.native import NativeBackend

log = logging.getLogger(__name__)

# Table properties set when this backend creates a table: they keep the protocol at what delta-rs
# (the embedded backend, and pandas/polars/DuckDB readers) can read *and* write, whatever the
# session's ``spark.databricks.delta.properties.defaults.*`` say. delta-spark 4.4 creates reader 1 /
# writer 2 without them too; set explicitly, a user's session default cannot turn a feature on.
INTEROP_PROPERTIES: dict[str, str] = {
    "delta.enableDeletionVectors": "false",  # delta-rs reads no deletion vectors (the embedded read refuses them)
    "delta.enableRowTracking": "false",  # writer feature delta-rs does not maintain
    "delta.enableInCommitTimestamps": "false",  # writer feature delta-rs does not write
    "delta.checkpointPolicy": "classic",  # no v2 checkpoints
    "delta.columnMapping.mode": "none",  # the embedded read refuses column mapping
}


# raise_error text of a row outside the explicit partitions of a replace (`guarded`)
STRAY_MARKER = "driftline: row outside the partitions being replaced"


def partition_keys(data: DataFrame, partition_by: Sequence[str]) -> list[PartitionKey]:
    """The distinct partition values of ``data`` as canonical strings (a Spark job; keys only reach the driver)."""
    keys = data.select(*[F.col(f"`{c}`").cast("string") for c in partition_by]).distinct().collect()
    return sorted({tuple(r) for r in keys}, key=repr)


def guarded(data: DataFrame, partition_by: Sequence[str], targets: Sequence[PartitionKey]) -> DataFrame:
    """``data`` whose first partition column fails the write task on a row outside ``targets``.

    The check rides on the write's own pass (no count or distinct before it), and holds for a table's
    first write too, where delta-spark applies no replaceWhere constraint.
    """
    first = partition_by[0]
    if len(partition_by) == 1:   # one hash-set lookup a row (a backfill replaces hundreds of dates), not an OR chain
        values = [t[0] for t in targets]
        inside = F.col(f"`{first}`").cast("string").isin([v for v in values if v is not None])
        inside = inside | F.col(f"`{first}`").isNull() if None in values else inside
    else:
        inside = F.expr(replace_where(partition_by, targets)) if targets else F.lit(False)
    checked = F.when(inside, F.col(f"`{first}`")).otherwise(F.raise_error(F.lit(STRAY_MARKER)))
    return data.withColumn(first, checked)


# Columns whose per-file statistics driftline reads back from the log (the monitor's check that a date's
# stored profile was written by the run that wrote its predictions: min/max of run_id, num_records).
LINEAGE_STATS_COLUMNS = (RUN_ID,)


def creation_properties(schema: StructType, file_stats: str) -> dict[str, str]:
    """Table properties of a table this backend creates: `INTEROP_PROPERTIES`, and with ``file_stats``
    ``lineage`` per-file statistics only of the lineage columns the schema has.

    delta-spark computes min/max/null counts of the first 32 columns of every file it writes (Delta's
    default): on 5 M rows x 12 columns that was 40 % of the write (write/plain Parquet 0.57x -> ~1x
    without). Parquet footers keep their row-group statistics of every column whatever this says.
    """
    props = dict(INTEROP_PROPERTIES)
    kept = [c for c in LINEAGE_STATS_COLUMNS if c in schema.fieldNames()]
    if file_stats == "lineage" and kept:
        props["delta.dataSkippingStatsColumns"] = ",".join(kept)
    return props


def replace_where(partition_by: Sequence[str], targets: Sequence[tuple[str | None, ...]]) -> str:
    """``replaceWhere`` predicate: OR over the partitions of AND over columns; nulls as IS NULL."""
    terms = []
    for values in targets:
        parts = [
            f"`{c}` IS NULL" if v is None else f"CAST(`{c}` AS STRING) = {sql_literal(v)}"
            for c, v in zip(partition_by, values, strict=True)
        ]
        terms.append("(" + " AND ".join(parts) + ")")
    return " OR ".join(terms)


@dataclass
class NativeWrite:
    """A delta-spark write ready to run (a `StagedWrite`): its commit is one ``save``."""

    backend: NativeBackend
    loc: Location
    plan: WritePlan
    data: DataFrame
    write_id: str
    present: list[PartitionKey] | None

    @property
    def partitions(self) -> list[PartitionKey] | None:
        return self.present

    def commit(self, targets: Sequence[PartitionKey]) -> Committed:
        loc, plan = self.loc, self.plan
        data = self.data
        if plan.mode == "replace" and plan.explicit is not None and plan.partition_by:
            data = guarded(data, plan.partition_by, plan.explicit)
        writer = (
            data.write.format("delta")
            .option("txnAppId", plan.app_id)
            .option("txnVersion", str(plan.txn_version))
            .option("userMetadata", plan.user_metadata(self.write_id))
        )
        if plan.adds_columns:
            writer = writer.option("mergeSchema", "true")
        if not plan.existed:  # this save creates the table: keep its protocol one delta-rs writes too
            for key, value in creation_properties(plan.schema, self.backend.cfg.file_stats).items():
                writer = writer.option(key, value)
        if plan.mode == "rewrite":
            # Schema and partitioning become the write's (no partitionBy: unpartitioned), every file replaced.
            # The option beats the session's partitionOverwriteMode=dynamic (runtime.py), which would replace
            # only the partitions written and which delta-spark refuses together with overwriteSchema.
            writer = writer.option("overwriteSchema", "true").option("partitionOverwriteMode", "static")
        writer = writer.mode("append" if plan.mode == "append" else "overwrite")
        if plan.partition_by:
            writer = writer.partitionBy(*plan.partition_by)
            if plan.mode == "replace" and plan.existed:
                writer = writer.option("replaceWhere", replace_where(plan.partition_by, targets))
        retries = self.backend.cfg.commit_retries
        last = ""
        if plan.existed:  # the idempotency check, as the embedded commit makes it (the same message)
            plan.refuse_if_moved(self.backend._txn_version(loc, plan.app_id))
        for attempt in range(retries + 1):
            try:
                writer.save(loc.spark_uri)
                break
            except Exception as exc:  # py4j wraps Delta's ConcurrentModificationException
                if "DELTA_NOT_NULL_CONSTRAINT_VIOLATED" in str(exc):
                    raise self._null_error() from None
                if STRAY_MARKER in str(exc) or "DELTA_REPLACE_WHERE_MISMATCH" in str(exc):
                    raise self._stray_error() from None
                if not _conflict(str(exc)):
                    raise  # the store reports it: table unchanged
                last = error_line(exc)
                plan.refuse_if_moved(self.backend._txn_version(loc, plan.app_id))
                log.info("table %s: attempt %d conflicted (%s), retrying", loc.name, attempt + 1, last)
        else:
            raise ConcurrentRunError(f"table {loc.name}: write kept conflicting with other writers ({last})")
        outcome = self.backend.committed(loc, self.write_id)
        if outcome is None:
            # delta-spark skipped the write: this txn version was already committed by another run.
            raise ConcurrentRunError(
                f"table {loc.name}: another run committed {plan.app_id} version {plan.txn_version} first; "
                "this run committed nothing"
            )
        return outcome

    def _null_error(self) -> TableError:
        """The embedded backend's one-line NOT NULL refusal, for delta-spark's invariant violation.

        delta-spark checks NOT NULL columns while writing (nothing is committed); the rows are
        counted only now, on this failure path, so a write that passes costs no extra pass.
        """
        table = self.plan.table
        required = [f.name for f in self.plan.schema.fields if not f.nullable and f.name in self.data.columns]
        try:
            counts = self.data.select(
                *[F.sum(F.col(f"`{c}`").isNull().cast("long")).alias(c) for c in required]
            ).first() if required else None
        except Exception:  # noqa: BLE001 - the rows cannot be counted again: name the columns only
            counts = None
        for name in required:
            found = counts[name] if counts is not None else None
            if found is None or found > 0:
                return TableError(
                    f"table {table}: NOT NULL column {name!r} has {'some' if found is None else found} null values"
                )
        return TableError(f"table {table}: a NOT NULL column has null values (delta-spark refused the write)")

    def _stray_error(self) -> TableError:
        """The pre-flight's refusal of rows outside the explicit partitions, naming them (found only now)."""
        try:
            found = partition_keys(self.data, self.plan.partition_by)
        except Exception:  # noqa: BLE001 - the rows cannot be read again: name the partitions replaced only
            found = []
        stray = sorted(set(found) - set(self.plan.explicit or ()), key=repr)
        if stray:
            return stray_rows_error(self.plan, stray)
        return TableError(
            f"table {self.plan.table}: rows outside the partitions being replaced "
            f"{named(self.plan.partition_by, self.plan.explicit or ())}"
        )

    def recover(self) -> Committed | None:
        try:
            return self.backend.committed(self.loc, self.write_id)
        except Exception:  # noqa: BLE001 - the history cannot be read: report the original error
            return None

    def discard(self) -> None:
        """Nothing staged: delta-spark writes and commits in one ``save``."""


# delta-spark's commit conflicts (io.delta.exceptions.*): a concurrent commit, by delta-spark or delta-rs
# (not a bare "Concurrent": a Spark stack trace names java.util.concurrent.ConcurrentHashMap & co.)
CONFLICTS = (
    "io.delta.exceptions.Concurrent", "DELTA_CONCURRENT", "MetadataChangedException", "ProtocolChangedException",
    "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED",
)


def _conflict(text: str) -> bool:
    return any(marker in text for marker in CONFLICTS)
