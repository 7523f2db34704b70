"""Native Delta backend: delta-spark on the JVM (``format("delta")``, ``replaceWhere``, txnAppId).

Used when ``io.delta.tables.DeltaTable`` is on the classpath (or ``storage.backend: native``).
The semantics match the embedded backend: one app transaction ``driftline/<job>/<table>/<key>``
per write with version previous+1, schema policy checked before writing, ConcurrentRunError when
another run of the same key committed first. delta-spark *skips* a write whose txnVersion is not
newer than the recorded one, so a skipped write is detected afterwards from the history.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from driftline.errors import ConcurrentRunError, DriftlineError, TableError
from driftline.tables import schema as policy
from driftline.tables.commit import CommitInfo, WriteResult, history_entry, parse_user_metadata
from driftline.tables.names import Location
from driftline.tables.spec import StorageConfig

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

DELTA_CLASS = "io.delta.tables.DeltaTable"


def native_available(spark: SparkSession) -> bool:
    """True when delta-spark's JVM classes can be loaded by the session's class loader."""
    try:
        jvm = spark.sparkContext._jvm  # type: ignore[union-attr]
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName(DELTA_CLASS, False, loader)
        return True
    except Exception:  # noqa: BLE001 - py4j wraps ClassNotFoundException
        return False


def sql_literal(value: str | None) -> str:
    """A partition value as a SQL string literal (quotes and backslashes escaped), never raw text."""
    if value is None:
        return "NULL"
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


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


class NativeBackend:
    """Delta tables through delta-spark (see module doc)."""

    name = "native"

    def __init__(self, spark: SparkSession, cfg: StorageConfig) -> None:
        self.spark = spark
        self.cfg = cfg
        from delta.tables import DeltaTable  # the Python half of delta-spark

        self._delta = DeltaTable

    def exists(self, loc: Location) -> bool:
        return bool(self._delta.isDeltaTable(self.spark, loc.spark_uri))

    def _require(self, loc: Location) -> Any:
        if not self.exists(loc):
            raise TableError(f"table {loc.name} does not exist at {loc.uri}")
        return self._delta.forPath(self.spark, loc.spark_uri)

    def version(self, loc: Location) -> int:
        return int(self._require(loc).history(1).select("version").first()[0])

    def schema(self, loc: Location) -> StructType:
        self._require(loc)
        return self.spark.read.format("delta").load(loc.spark_uri).schema

    def _partition_columns(self, loc: Location) -> list[str]:
        detail = self.spark.sql(f"DESCRIBE DETAIL delta.{_quoted(loc.spark_uri)}").select("partitionColumns").first()
        return list(detail[0]) if detail else []

    def history(self, loc: Location) -> list[dict[str, Any]]:
        rows = self._require(loc).history().select("version", "timestamp", "operation", "userMetadata").collect()
        out = []
        for row in rows:
            stamp = row["timestamp"]
            if isinstance(stamp, dt.datetime) and stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
            out.append(history_entry(int(row["version"]), stamp, row["operation"], row["userMetadata"]))
        return sorted(out, key=lambda e: e["version"], reverse=True)

    def _txn_version(self, loc: Location, app_id: str) -> int | None:
        """Last committed txn version of ``app_id`` (read from the log via delta-rs, which needs no JVM)."""
        if loc.local_path is None and not self.exists(loc):
            return None
        try:
            from deltalake import DeltaTable as RsTable

            return RsTable(loc.uri, without_files=True).transaction_version(app_id)
        except Exception:  # noqa: BLE001 - table absent, or a protocol delta-rs cannot open: fall back
            for entry in self.history(loc) if self.exists(loc) else []:
                if entry["idempotency_key"] == app_id and entry["txn_version"] is not None:
                    return int(entry["txn_version"])
            return None

    def create_if_absent(
        self, loc: Location, schema: StructType, partition_by: Sequence[str], commit: CommitInfo | None
    ) -> None:
        policy.check_partition_columns(loc.name, schema, partition_by)
        if self.exists(loc):
            policy.check_same_partitioning(loc.name, self._partition_columns(loc), partition_by)
            policy.check_compatible_declared(loc.name, self.schema(loc), schema)
            return
        builder = self._delta.createIfNotExists(self.spark).location(loc.spark_uri).addColumns(schema)
        if partition_by:
            builder = builder.partitionedBy(*partition_by)
        builder.execute()

    def replace_partitions(
        self,
        loc: Location,
        df: DataFrame,
        partition_by: Sequence[str],
        commit: CommitInfo,
        partitions: Sequence[dict[str, Any]] | None,
    ) -> WriteResult:
        return self._write(loc, df, list(partition_by), commit, partitions, "replace")

    def append(self, loc: Location, df: DataFrame, commit: CommitInfo) -> WriteResult:
        partition_by = self._partition_columns(loc) if self.exists(loc) else []
        return self._write(loc, df, partition_by, commit, None, "append")

    def _write(
        self,
        loc: Location,
        df: DataFrame,
        partition_by: list[str],
        commit: CommitInfo,
        partitions: Sequence[dict[str, Any]] | None,
        mode: str,
    ) -> WriteResult:
        app_id = commit.app_id(loc.name)
        policy.check_partition_columns(loc.name, df.schema, partition_by)
        existed = self.exists(loc)
        if existed:
            policy.check_same_partitioning(loc.name, self._partition_columns(loc), partition_by)
            target = policy.merge_write_schema(loc.name, self.schema(loc), df.schema, self.cfg.allow_new_columns)
        else:
            target = policy.as_nullable(df.schema)
        read_txn = self._txn_version(loc, app_id) if existed else None
        if mode == "append" and read_txn is not None:
            log.info("table %s: append for %s already committed (txn %s), skipped", loc.name, app_id, read_txn)
            return WriteResult(loc.name, None, 0, 0, replaced=False, skipped=True)
        txn_version = (read_txn or 0) + 1
        write_id = f"native-{time.time_ns()}"
        data = df.select(*[F.col(f"`{f.name}`") for f in target.fields if f.name in df.columns])
        if partitions is not None:
            targets = policy.normalize_partitions(loc.name, target, partition_by, partitions)
        elif mode == "replace" and partition_by:
            # Only the distinct partition keys travel to the driver, never the rows.
            rows = data.select(*[F.col(f"`{c}`").cast("string") for c in partition_by]).distinct().collect()
            targets = sorted({tuple(r) for r in rows}, key=repr)
        else:
            targets = []
        if mode == "replace" and partitions is not None and partition_by:
            outside = data.filter(~self._in_targets(partition_by, targets)).limit(1).count()
            if outside:
                raise TableError(f"table {loc.name}: rows outside the partitions being replaced {targets}")
        writer = (
            data.write.format("delta")
            .option("txnAppId", app_id)
            .option("txnVersion", str(txn_version))
            .option("userMetadata", commit.user_metadata(loc.name, txn_version, write_id))
        )
        if existed and len(target.fields) > len(self.schema(loc).fields):
            writer = writer.option("mergeSchema", "true")
        if mode == "replace":
            writer = writer.mode("overwrite")
            if partition_by:
                writer = writer.partitionBy(*partition_by)
                if existed and targets:
                    writer = writer.option("replaceWhere", replace_where(partition_by, targets))
                elif existed:
                    log.warning("table %s: nothing to replace, skipped", loc.name)
                    return WriteResult(loc.name, None, 0, 0, replaced=False, skipped=True)
        else:
            writer = writer.mode("append")
            if partition_by:
                writer = writer.partitionBy(*partition_by)
        last = ""
        for attempt in range(self.cfg.commit_retries + 1):
            try:
                writer.save(loc.spark_uri)
                break
            except Exception as exc:  # noqa: BLE001 - py4j wraps Delta's ConcurrentModificationException
                text = str(exc)
                last = text.strip().splitlines()[0][:400] if text.strip() else type(exc).__name__
                if "Concurrent" not in text:
                    raise TableError(f"table {loc.name}: write failed, table unchanged: {last}") from exc
                if (self._txn_version(loc, app_id) or 0) != (read_txn or 0):
                    raise ConcurrentRunError(
                        f"table {loc.name}: another run committed {app_id} while this one was writing; "
                        "this run committed nothing"
                    ) from None
                log.info("table %s: attempt %d conflicted (%s), retrying", loc.name, attempt + 1, last)
        else:
            raise ConcurrentRunError(f"table {loc.name}: write kept conflicting with other writers ({last})")
        version = self._version_of(loc, write_id)
        if version is None:
            # delta-spark skipped the write: this txn version was already committed by another run.
            raise ConcurrentRunError(
                f"table {loc.name}: another run committed {app_id} version {txn_version} first; "
                "this run committed nothing"
            )
        metrics = self._require(loc).history(1).select("operationMetrics").first()[0] or {}
        rows = int(metrics.get("numOutputRows", 0))
        files = int(metrics.get("numFiles", metrics.get("numAddedFiles", 0)))
        replaced = int(metrics.get("numRemovedFiles", 0)) > 0
        log.info("table %s: %s %d rows as version %s [%s]", loc.name,
                 "replaced" if replaced else "wrote", rows, version, app_id)
        return WriteResult(loc.name, version, rows, files, replaced=replaced, skipped=False)

    @staticmethod
    def _in_targets(partition_by: Sequence[str], targets: Sequence[tuple[str | None, ...]]) -> Column:
        cond = F.lit(False)
        for values in targets:
            term = F.lit(True)
            for c, v in zip(partition_by, values, strict=True):
                col = F.col(f"`{c}`")
                term = term & (col.isNull() if v is None else col.cast("string") == F.lit(v))
            cond = cond | term
        return cond

    def _version_of(self, loc: Location, write_id: str) -> int | None:
        for row in self._require(loc).history(50).select("version", "userMetadata").collect():
            if parse_user_metadata(row["userMetadata"]).get("write_id") == write_id:
                return int(row["version"])
        return None

    def read(
        self,
        loc: Location,
        version: int | None,
        timestamp: dt.datetime | str | None,
        partitions: dict[str, list[Any]] | None,
    ) -> DataFrame:
        self._require(loc)
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", str(version))
        if timestamp is not None:
            when = dt.datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
            if when.tzinfo is not None:
                when = when.astimezone(dt.UTC).replace(tzinfo=None)  # session time zone is UTC
            reader = reader.option("timestampAsOf", when.isoformat(sep=" "))
        try:
            df = reader.load(loc.spark_uri)
        except DriftlineError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise TableError(f"table {loc.name}: read failed: {str(exc).strip().splitlines()[0][:400]}") from exc
        if partitions:
            part_cols = self._partition_columns(loc)
            unknown = set(partitions) - set(part_cols)
            if unknown:
                raise TableError(f"table {loc.name}: {sorted(unknown)} are not partition columns {part_cols}")
            types = {f.name: f.dataType for f in df.schema.fields}
            for col, values in partitions.items():
                texts = {policy.canonical_partition_text(types[col], policy.partition_value_text(v)) for v in values}
                cond = F.lit(False)
                if None in texts:
                    cond = cond | F.col(f"`{col}`").isNull()
                kept = sorted(t for t in texts if t is not None)
                if kept:
                    cond = cond | F.col(f"`{col}`").cast("string").isin(kept)
                df = df.filter(cond)
        return df

    def cleanup_orphans(self, loc: Location, retention_hours: float, dry_run: bool) -> list[str]:
        """delta-spark VACUUM: removes files unreferenced by the *current* version older than retention."""
        self._require(loc)
        self.spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        hours = json.dumps(float(retention_hours))
        sql = f"VACUUM delta.{_quoted(loc.spark_uri)} RETAIN {hours} HOURS" + (" DRY RUN" if dry_run else "")
        return sorted(str(r[0]) for r in self.spark.sql(sql).collect())


def _quoted(path: str) -> str:
    """A path as a Spark SQL quoted identifier: backticks doubled, so a location can never end the quoting."""
    return "`" + path.replace("`", "``") + "`"
