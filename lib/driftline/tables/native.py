"""Native Delta backend: delta-spark on the JVM (``format("delta")``, ``replaceWhere``, txnAppId).

Used when ``io.delta.tables.DeltaTable`` is on the classpath (or ``storage.backend: native``).
The store's pre-flight gives the same semantics as the embedded backend: one app transaction
``driftline/<job>/<table>/<key>`` per write with version previous+1, schema policy checked before
writing, ConcurrentRunError when another run of the same key committed first. Staging here only
selects the columns and finds the partition values of a replace; the commit is one ``save``.
delta-spark *skips* a write whose txnVersion is not newer than the recorded one, so a skipped
write is detected afterwards from the history.

A rewrite is one ``save`` with ``mode("overwrite")``, ``overwriteSchema`` and the new
``partitionBy`` (delta-spark replaces schema and partitioning in that commit). add_columns is
``ALTER TABLE ... ADD COLUMNS`` (metadata only) with our metadata as the commit's userMetadata;
delta-spark records no app transaction for ALTER TABLE (its txnAppId options and session confs
apply to writes and DML only), see `NativeBackend.add_columns`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructType

from driftline.errors import DriftlineError, TableError
from driftline.jvm import is_connect
from driftline.tables import schema as policy
from driftline.tables.backend import Committed, Snapshot
from driftline.tables.commit import CommitInfo, history_entry, parse_user_metadata
from driftline.tables.names import Location
from driftline.tables.native_write import NativeWrite, creation_properties, partition_keys
from driftline.tables.preflight import WritePlan
from driftline.tables.spec import StorageConfig
from driftline.tables.sql_text import quoted

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

DELTA_CLASS = "io.delta.tables.DeltaTable"
# How far back a write looks for its own commit (found by the write id in its metadata).
OWN_COMMIT_LOOKBACK = 50


def native_available(spark: SparkSession) -> bool:
    """True when delta-spark's JVM classes can be loaded by the session's class loader; never on a Spark Connect
    session (no driver JVM in this process: the native backend's py4j calls cannot run)."""
    if is_connect(spark):
        return False
    jvm = spark.sparkContext._jvm
    if jvm is None:
        return False
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName(DELTA_CLASS, False, loader)
        return True
    except Exception:  # noqa: BLE001 - py4j wraps ClassNotFoundException
        return False


class NativeBackend:
    """Delta tables through delta-spark (a `DeltaBackend`; see module doc)."""

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

    def snapshot(self, loc: Location, app_id: str | None = None) -> Snapshot | None:
        if not self.exists(loc):
            return None
        return Snapshot(
            self.spark.read.format("delta").load(loc.spark_uri).schema,
            tuple(self._partition_columns(loc)),
            self._txn_version(loc, app_id) if app_id is not None else None,
        )

    def version(self, loc: Location) -> int:
        return int(self._require(loc).history(1).select("version").first()[0])

    def schema(self, loc: Location) -> StructType:
        self._require(loc)
        return self.spark.read.format("delta").load(loc.spark_uri).schema

    def _partition_columns(self, loc: Location) -> list[str]:
        """From the log's metadata through delta-rs (no JVM job); ``DESCRIBE DETAIL`` (a Spark job over the
        snapshot's state for its file counts and sizes) where delta-rs cannot open the table."""
        try:
            from deltalake import DeltaTable as RsTable

            return list(RsTable(loc.uri, without_files=True).metadata().partition_columns)
        except Exception:  # noqa: BLE001 - a protocol delta-rs cannot open, or an object store it cannot reach
            detail = self.spark.sql(f"DESCRIBE DETAIL delta.{quoted(loc.spark_uri)}").select("partitionColumns")
            first = detail.first()
            return list(first[0]) if first else []

    def history(self, loc: Location) -> list[dict[str, Any]]:
        # Commit timestamps are milliseconds since the epoch in the log: taken as such (never through the
        # Python process's local time zone), they equal the embedded backend's (delta-rs) history.
        rows = (
            self._require(loc)
            .history()
            .select("version", F.unix_millis("timestamp").alias("millis"), "operation", "userMetadata")
            .collect()
        )
        out = []
        for row in rows:
            stamp = dt.datetime.fromtimestamp(int(row["millis"]) / 1000, tz=dt.UTC)
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

    def create(self, loc: Location, schema: StructType, partition_by: Sequence[str], commit: CommitInfo | None) -> bool:
        builder = self._delta.createIfNotExists(self.spark).location(loc.spark_uri).addColumns(schema)
        if partition_by:
            builder = builder.partitionedBy(*partition_by)
        for key, value in creation_properties(schema, self.cfg.file_stats).items():
            builder = builder.property(key, value)
        builder.execute()  # a concurrent creator's table is accepted as it is
        return True

    def stage(self, loc: Location, df: DataFrame, plan: WritePlan) -> NativeWrite:
        data = df.select(*[F.col(f"`{f.name}`") for f in plan.schema.fields if f.name in df.columns])
        present = None
        if plan.mode == "replace" and plan.partition_by and plan.explicit is None and plan.existed:
            # The rows' own partitions are replaced: find them first (only the distinct keys travel to the
            # driver, never the rows). With explicit partitions the write itself refuses stray rows (one
            # pass: `guarded`); a table's first write replaces nothing and needs no targets.
            present = partition_keys(data, plan.partition_by)
        return NativeWrite(self, loc, plan, data, f"native-{time.time_ns()}", present)

    def add_columns(self, loc: Location, plan: WritePlan) -> Committed:
        """``ALTER TABLE delta.`<path>` ADD COLUMNS``: one metadata-only commit carrying our userMetadata.

        delta-spark's ALTER TABLE records no app transaction (txnAppId is a write option; the
        ``write.txnAppId`` session confs are read by writes and DML only), so this commit carries the
        metadata but not the txn: the check here refuses a run whose key moved since the snapshot,
        and a second run of the same columns fails on ALTER itself (column exists). Field metadata
        other than the type and nullability is not carried (ALTER takes SQL types).
        """
        self._require(loc)
        plan.refuse_if_moved(self._txn_version(loc, plan.app_id))
        write_id = f"native-{time.time_ns()}"
        to_sql = self.spark.sparkContext._jvm.org.apache.spark.sql.types.DataType.fromJson  # type: ignore[union-attr]
        columns = ", ".join(f"{quoted(f.name)} {to_sql(f.dataType.json()).sql()}" for f in plan.write_schema.fields)
        key = "spark.databricks.delta.commitInfo.userMetadata"
        previous = self.spark.conf.get(key, None)
        self.spark.conf.set(key, plan.user_metadata(write_id))
        try:
            self.spark.sql(f"ALTER TABLE delta.{quoted(loc.spark_uri)} ADD COLUMNS ({columns})")
        finally:
            if previous is None:
                self.spark.conf.unset(key)
            else:
                self.spark.conf.set(key, previous)
        outcome = self.committed(loc, write_id)
        return outcome if outcome is not None else Committed(None, replaced=False, rows=0, files=0)

    def committed(self, loc: Location, write_id: str) -> Committed | None:
        """The commit carrying ``write_id`` among the recent ones, with its operation metrics."""
        for version, user_metadata, metrics in self._recent_commits(loc, OWN_COMMIT_LOOKBACK):
            if parse_user_metadata(user_metadata).get("write_id") == write_id:
                metrics = metrics or {}
                return Committed(
                    version,
                    replaced=int(metrics.get("numRemovedFiles", 0)) > 0,
                    rows=int(metrics.get("numOutputRows", 0)),
                    files=int(metrics.get("numFiles", metrics.get("numAddedFiles", 0))),
                )
        return None

    def _recent_commits(self, loc: Location, limit: int) -> list[tuple[int, Any, Any]]:
        """(version, userMetadata, operationMetrics) of the last ``limit`` commits, newest first.

        Read from the commit files through delta-rs (a few ms); delta-spark's ``history`` (``forPath``, a
        snapshot update and a Spark job reading the commit files: 0.1-0.3 s after every write on 2 cores)
        only where delta-rs cannot open the table (a protocol it lacks, an object store it cannot reach).
        """
        try:
            from deltalake import DeltaTable as RsTable

            entries = RsTable(loc.uri).history(limit)
            return [(int(e["version"]), e.get("userMetadata"), e.get("operationMetrics")) for e in entries]
        except Exception:  # noqa: BLE001 - fall back to the JVM's reading of the same log
            recent = self._require(loc).history(limit).select("version", "userMetadata", "operationMetrics")
            return [(int(r["version"]), r["userMetadata"], r["operationMetrics"]) for r in recent.collect()]

    def read(
        self,
        loc: Location,
        version: int | None,
        timestamp: dt.datetime | str | None,
        partitions: dict[str, list[Any]] | None,
    ) -> DataFrame:
        if not self.exists(loc):   # not _require: forPath would load one more snapshot than the read itself
            raise TableError(f"table {loc.name} does not exist at {loc.uri}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", str(version))
        when = None
        if timestamp is not None:
            when = dt.datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
            when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
            # the session time zone is UTC: a naive literal is read as UTC
            reader = reader.option("timestampAsOf", when.replace(tzinfo=None).isoformat(sep=" "))
        try:
            df = reader.load(loc.spark_uri)
        except DriftlineError:
            raise
        except Exception as exc:  # noqa: BLE001
            text = str(exc)
            if when is not None and "DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION" in text:
                # as the embedded backend says it (the version may also have been cleaned up from the log)
                raise TableError(f"table {loc.name}: no version as of {when.isoformat()} (created later)") from None
            if when is not None and "DELTA_TIMESTAMP_GREATER_THAN_COMMIT" in text:
                df = self.spark.read.format("delta").load(loc.spark_uri)  # after the newest commit: the latest, as
            else:  # delta-rs reads it
                line = text.strip().splitlines()[0][:400] if text.strip() else type(exc).__name__
                raise TableError(f"table {loc.name}: read failed: {line}") from None
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
        """Delete data files no version in the log refers to and older than the retention; returns them.

        The same files as the embedded backend's cleanup, as paths relative to the table root:
        delta-spark's ``VACUUM ... DRY RUN`` lists the candidates (not in the latest version, older
        than the retention, hidden files left alone), those any version still in the log refers to
        (an add or remove action of a commit file) are kept for time travel, and the rest are
        deleted through the session's Hadoop file system (a local file's ``.crc`` sidecar with it).
        A plain ``VACUUM`` would also delete the files only older versions read.
        """
        self._require(loc)
        hours = json.dumps(float(retention_hours))
        sql = f"VACUUM delta.{quoted(loc.spark_uri)} RETAIN {hours} HOURS DRY RUN"
        check = "spark.databricks.delta.retentionDurationCheck.enabled"
        previous = self.spark.conf.get(check, None)
        self.spark.conf.set(check, "false")  # our retention is the caller's, often below delta's 7 days
        try:
            candidates = [str(r[0]) for r in self.spark.sql(sql).collect()]
        finally:
            if previous is None:
                self.spark.conf.unset(check)
            else:
                self.spark.conf.set(check, previous)
        jvm = self.spark.sparkContext._jvm
        root = jvm.org.apache.hadoop.fs.Path(loc.spark_uri)  # type: ignore[union-attr]
        fs = root.getFileSystem(self.spark._jsparkSession.sessionState().newHadoopConf())  # type: ignore[union-attr]
        prefix = fs.makeQualified(root).toString().rstrip("/") + "/"
        referenced = self._logged_paths(loc) if candidates else set()
        removed: list[str] = []
        for path in candidates:
            rel = path[len(prefix):] if path.startswith(prefix) else path
            if rel in referenced:
                continue
            removed.append(rel)
            if not dry_run:
                fs.delete(jvm.org.apache.hadoop.fs.Path(path), False)  # type: ignore[union-attr]
        log.info(
            "table %s: %s %d orphan files older than %.1f h",
            loc.name, "would remove" if dry_run else "removed", len(removed), retention_hours,
        )
        return sorted(removed)

    def _logged_paths(self, loc: Location) -> set[str]:
        """Every data file an add or remove action of a commit file still in ``_delta_log`` names (decoded)."""
        from urllib.parse import unquote

        from pyspark.sql.types import StructField as Field

        path_of = StructType([Field("path", StringType())])
        actions = StructType([Field("add", path_of), Field("remove", path_of)])
        logged = self.spark.read.schema(actions).json(loc.child("_delta_log/*.json"))
        rows = logged.select(F.coalesce("add.path", "remove.path").alias("p")).where("p IS NOT NULL").distinct()
        return {unquote(r[0]) for r in rows.collect()}
