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
from driftline.tables.preflight import WritePlan
from driftline.tables.sql_text import sql_literal

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

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
        writer = (
            self.data.write.format("delta")
            .option("txnAppId", plan.app_id)
            .option("txnVersion", str(plan.txn_version))
            .option("userMetadata", plan.user_metadata(self.write_id))
        )
        if plan.adds_columns:
            writer = writer.option("mergeSchema", "true")
        if not plan.existed:  # this save creates the table: keep its protocol one delta-rs writes too
            for key, value in INTEROP_PROPERTIES.items():
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
