"""Embedded Delta backend: Spark writes Parquet, delta-rs commits it; no JVM Delta jars needed.

Write: Spark writes the rows as Parquet into a staging folder ``driftline_write=w<uuid>/`` inside
the table root (``stage-<uuid>/`` before 2026-11-23), partitioned like the table (never
``mode("overwrite")`` into the root). The driver lists the staged files, reads their footers for
statistics and partition values, validates everything delta-rs would accept silently, and makes
one delta-rs commit that adds those files and removes the replaced partitions, carrying the app
transaction ``driftline/<job>/<table>/<key>`` and our metadata. Files stay where Spark wrote them,
so a crash before the commit leaves only invisible orphans.

Read: the snapshot's file list and typed partition values come from the log, pruned on the
driver to the requested partition values before Spark sees a path. Spark's Parquet reader scans
exactly those files with the table's schema (columns missing from older files read as null).
Partition values are the log's. When every file sits where this backend's writes put it
(``<staging folder>/<col>=<value>/...``) and the folder values equal the log's, Spark's reader adds
them per file from the folder names: the staging folder name is itself ``name=value`` shaped, so
one scan with ``basePath`` at the table root covers every write (an extra ``driftline_write``
column, dropped); each legacy ``stage-<id>`` folder needs its own scan. Otherwise partition
discovery is off and the values come from the log as literals: one scan per distinct value,
unioned, when there are at most ``UNION_MAX_GROUPS`` values averaging ``UNION_MIN_BYTES_PER_VALUE``;
else one scan and a broadcast join on ``_metadata.file_path`` (keys computed on the driver), which
plans fast at any count.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Any, Literal

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    Transaction,
    create_table_with_add_actions,
)
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    ByteType,
    DateType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from driftline.errors import ConcurrentRunError, DriftlineError, TableError
from driftline.tables import schema as policy
from driftline.tables.commit import CommitInfo, WriteResult, history_entry, parse_user_metadata
from driftline.tables.names import Location
from driftline.tables.spec import StorageConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

# Staging folders are named WRITE_FOLDER=w<hex>: partition-shaped, so Spark's partition discovery
# with basePath at the table root accepts files of many writes in one scan (it refuses differently
# nested layouts such as several stage-<id>/ folders, the name used before 2026-11-23).
WRITE_FOLDER = "driftline_write"
STAGE_PREFIX = "stage-"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# Reader features this path honours; anything else (deletionVectors, columnMapping, ...) is refused.
READABLE_FEATURES = {"timestampNtz"}
STRING_STATS_MAX = 32
_FILE_KEY = "__driftline_file"
# One scan per partition value (see _scan_snapshot) when there are at most this many values and
# they average at least this many bytes: each scan costs ~20-30 ms to build and run, the file-path
# join ~50 ns a row (measured here), so small partitions are cheaper through the join.
UNION_MAX_GROUPS = 64
UNION_MIN_BYTES_PER_VALUE = 16 * 1024 * 1024
# Let Spark restore partition values from this backend's own folders once checked against the log
# (see _stage_groups); False always takes them from the log as literals or through the join.
FOLDER_PARTITIONS = True


def spark_unescape(text: str) -> str:
    """Undo Spark's partition folder escaping (``%XX`` for a fixed set of ASCII characters)."""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def folder_value(folder: str, column: str) -> str | None | Literal[False]:
    """The partition value text of a Spark partition folder ``<column>=<escaped value>`` (None for
    ``__HIVE_DEFAULT_PARTITION__``, i.e. null); False when the folder is not one of ``column``."""
    name, sep, raw = folder.partition("=")
    if name != column or not sep:
        return False
    return None if raw == NULL_PARTITION else spark_unescape(raw)


@dataclass(frozen=True)
class StagedFile:
    """One Parquet file Spark wrote into the staging folder."""

    rel_path: str  # relative to the table root, raw (delta-rs encodes it)
    size: int
    mtime_ms: int
    partition: tuple[str | None, ...]
    rows: int
    stats: dict[str, Any]
    partition_columns: tuple[str, ...] = ()


def new_stage_name() -> str:
    """Staging folder name; a module function so tests can point it at an unwritable place."""
    return f"{WRITE_FOLDER}=w{uuid.uuid4().hex}"  # 'w': the value never looks like a number or a date


class EmbeddedBackend:
    """Delta tables through Spark's Parquet reader/writer and delta-rs commits (see module doc)."""

    name = "embedded"

    def __init__(self, spark: SparkSession, cfg: StorageConfig) -> None:
        self.spark = spark
        self.cfg = cfg

    # ------------------------------------------------------------------ snapshot helpers
    def _load(self, loc: Location, version: int | None = None) -> DeltaTable | None:
        try:
            return DeltaTable(loc.uri, version=version)
        except TableNotFoundError:
            return None
        except DeltaError as exc:
            if version is not None and DeltaTable.is_deltatable(loc.uri):
                raise TableError(f"table {loc.name}: version {version} not available: {_line(exc)}") from None
            if DeltaTable.is_deltatable(loc.uri):
                raise TableError(f"table {loc.name}: cannot open the Delta log: {_line(exc)}") from None
            return None

    def _require(self, loc: Location, version: int | None = None) -> DeltaTable:
        table = self._load(loc, version)
        if table is None:
            raise TableError(f"table {loc.name} does not exist at {loc.uri}")
        return table

    @staticmethod
    def _check_supported(loc: Location, table: DeltaTable) -> None:
        """Refuse tables whose reader features this path would silently misread."""
        proto = table.protocol()
        features = set(proto.reader_features or [])
        mapping = (table.metadata().configuration or {}).get("delta.columnMapping.mode", "none")
        if proto.min_reader_version == 2 or proto.min_reader_version > 3 or features - READABLE_FEATURES or (
            mapping not in (None, "none")
        ):
            raise TableError(
                f"table {loc.name}: needs reader version {proto.min_reader_version} with features "
                f"{sorted(features)} (column mapping: {mapping}); the embedded backend reads only "
                f"reader version 1 or 3 with {sorted(READABLE_FEATURES)}; use storage.backend: native"
            )

    @staticmethod
    def _schema(table: DeltaTable) -> StructType:
        return policy.from_delta_json(table.schema().to_json())

    # ------------------------------------------------------------------ public operations
    def exists(self, loc: Location) -> bool:
        return self._load(loc) is not None

    def version(self, loc: Location) -> int:
        return self._require(loc).version()

    def schema(self, loc: Location) -> StructType:
        return self._schema(self._require(loc))

    def history(self, loc: Location) -> list[dict[str, Any]]:
        table = self._require(loc)
        out = []
        for item in table.history():
            stamp = dt.datetime.fromtimestamp(item["timestamp"] / 1000, tz=dt.UTC)
            out.append(history_entry(item["version"], stamp, item.get("operation"), item.get("userMetadata")))
        return sorted(out, key=lambda e: e["version"], reverse=True)

    def create_if_absent(
        self, loc: Location, schema: StructType, partition_by: Sequence[str], commit: CommitInfo | None
    ) -> None:
        policy.check_partition_columns(loc.name, schema, partition_by)
        for _ in range(2):  # a concurrent creator may win: then compare with what it created
            table = self._load(loc)
            if table is not None:
                self._check_supported(loc, table)
                policy.check_same_partitioning(loc.name, table.metadata().partition_columns, partition_by)
                policy.check_compatible_declared(loc.name, self._schema(table), schema)
                return
            props = None
            if commit is not None:
                props = CommitProperties(
                    custom_metadata={"userMetadata": commit.user_metadata(loc.name, 0, "create")}
                )
            try:
                create_table_with_add_actions(
                    loc.uri,
                    Schema.from_json(policy.to_delta_json(schema)),
                    [],
                    mode="error",
                    partition_by=list(partition_by) or None,
                    commit_properties=props,
                )
                log.info("table %s created at %s (partitioned by %s)", loc.name, loc.uri, list(partition_by))
                return
            except DeltaError as exc:
                if self._load(loc) is None:
                    raise TableError(f"table {loc.name}: create failed: {_line(exc)}") from None
        raise TableError(f"table {loc.name}: create raced with another writer twice")

    def replace_partitions(
        self,
        loc: Location,
        df: DataFrame,
        partition_by: Sequence[str],
        commit: CommitInfo,
        partitions: Sequence[dict[str, Any]] | None,
    ) -> WriteResult:
        return self._write(loc, df, list(partition_by), commit, partitions, mode="replace")

    def append(self, loc: Location, df: DataFrame, commit: CommitInfo) -> WriteResult:
        table = self._load(loc)
        partition_by = list(table.metadata().partition_columns) if table is not None else []
        return self._write(loc, df, partition_by, commit, None, mode="append")

    # ------------------------------------------------------------------ the write path
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
        table = self._load(loc)
        if table is not None:
            self._check_supported(loc, table)
            policy.check_same_partitioning(loc.name, table.metadata().partition_columns, partition_by)
            target = policy.merge_write_schema(loc.name, self._schema(table), df.schema, self.cfg.allow_new_columns)
            read_txn = table.transaction_version(app_id)
        else:
            target = policy.as_nullable(df.schema)
            read_txn = None
        if mode == "append" and read_txn is not None:
            log.info("table %s: append for %s already committed (txn %s), skipped", loc.name, app_id, read_txn)
            return WriteResult(loc.name, None, 0, 0, replaced=False, skipped=True)
        txn_version = (read_txn or 0) + 1
        wanted = (
            policy.normalize_partitions(loc.name, target, partition_by, partitions) if partitions is not None else None
        )
        types = {f.name: f.dataType for f in target.fields}
        data_cols = [f.name for f in target.fields if f.name not in partition_by and f.name in df.columns]
        stage = new_stage_name()
        committed = False
        try:
            (
                df.select(*[F.col(f"`{c}`") for c in data_cols + partition_by])
                .write.mode("errorifexists")
                .partitionBy(*partition_by)
                .parquet(loc.child(stage))
            )
            staged = self._staged_files(loc, stage, partition_by, types, target)
            if wanted is not None:
                stray = sorted({f.partition for f in staged} - set(wanted), key=repr)
                if stray:
                    raise TableError(
                        f"table {loc.name}: rows for partitions {_named(partition_by, stray)} "
                        f"outside the partitions being replaced {_named(partition_by, wanted)}"
                    )
                targets = wanted
            elif mode == "replace" and not partition_by:
                targets = [()]  # unpartitioned: the whole table is replaced, also by zero rows
            else:
                targets = sorted({f.partition for f in staged}, key=repr)
            _check_not_null(loc.name, target, staged)
            if mode == "replace" and not targets and table is not None:
                log.warning("table %s: nothing to replace (no rows and no partitions given), skipped", loc.name)
                self._drop_stage(loc, stage)
                return WriteResult(loc.name, None, 0, 0, replaced=False, skipped=True)
            replaced = self._commit_with_retries(
                loc, commit, app_id, read_txn, txn_version, stage, staged, targets, partition_by, df.schema, mode,
                table is not None,
            )
            committed = True
            version = self._version_of(loc, stage)
        except DriftlineError:
            raise
        except Exception as exc:  # Spark (Py4J), OS and delta-rs errors: one clear line, table unchanged
            committed = self._committed_anyway(loc, app_id, txn_version, stage)
            if not committed:
                raise TableError(f"table {loc.name}: write failed, table unchanged: {_line(exc)}") from exc
            version, replaced = self._version_of(loc, stage), True
            log.warning("table %s: commit reported %s but is in the log", loc.name, _line(exc))
        finally:
            if not committed:
                self._drop_stage(loc, stage)
        rows = sum(f.rows for f in staged)
        log.info(
            "table %s: %s %d rows in %d files (partitions %s) as version %s [%s]",
            loc.name, "replaced" if replaced else ("appended" if mode == "append" else "wrote"),
            rows, len(staged), _named(partition_by, targets[:10]), version, app_id,
        )
        return WriteResult(loc.name, version, rows, len(staged), replaced=replaced, skipped=False)

    def _staged_files(
        self, loc: Location, stage: str, partition_by: list[str], types: dict[str, Any], target: StructType
    ) -> list[StagedFile]:
        fs, base = pafs.FileSystem.from_uri(loc.uri)
        infos = fs.get_file_info(pafs.FileSelector(f"{base}/{stage}", recursive=True))
        files = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            rel = info.path[len(base) + 1 :]
            parts = rel.split("/")
            if any(p.startswith(("_", ".")) for p in parts[1:]):  # _temporary, .crc, _SUCCESS
                if parts[-1].endswith(".crc") and loc.local_path is not None:
                    fs.delete_file(info.path)  # Hadoop's checksum sidecars: clutter for BI readers
                continue
            if not parts[-1].endswith(".parquet"):
                continue
            values = []
            for col, folder in zip(partition_by, parts[1:-1], strict=True):
                text = folder_value(folder, col)
                if text is False:
                    raise TableError(f"table {loc.name}: unexpected staged folder {folder!r}, expected {col}=...")
                values.append(policy.canonical_partition_text(types[col], text))
            files.append((rel, info, tuple(values)))

        data_fields = [f for f in target.fields if f.name not in partition_by]

        def describe(item: tuple[str, pafs.FileInfo, tuple[str | None, ...]]) -> StagedFile:
            rel, info, values = item
            with fs.open_input_file(info.path) as handle:
                meta = pq.ParquetFile(handle).metadata
            stats = _file_stats(meta, data_fields)
            mtime = int(info.mtime.timestamp() * 1000) if info.mtime else int(time.time() * 1000)
            return StagedFile(rel, info.size, mtime, values, meta.num_rows, stats, tuple(partition_by))

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(describe, files))

    def _commit_with_retries(
        self,
        loc: Location,
        commit: CommitInfo,
        app_id: str,
        read_txn: int | None,
        txn_version: int,
        stage: str,
        staged: list[StagedFile],
        targets: list[tuple[str | None, ...]],
        partition_by: list[str],
        write_schema: StructType,
        mode: str,
        existed: bool,
    ) -> bool:
        """Commit on the newest snapshot, retrying on conflicts (files are written already).

        Returns whether existing files were replaced.
        """
        props = CommitProperties(
            custom_metadata={"userMetadata": commit.user_metadata(loc.name, txn_version, stage)},
            app_transactions=[Transaction(app_id, txn_version)],
        )
        last_error = ""
        for attempt in range(self.cfg.commit_retries + 1):
            table = self._load(loc)
            if table is None:
                if existed:
                    raise TableError(f"table {loc.name} disappeared during the write")
                adds = [_add_action(f, partition_by) for f in staged]
                try:
                    commit_actions(None, loc, adds, partition_by, None, policy.as_nullable(write_schema), props)
                    return False
                except DeltaError as exc:
                    if self._load(loc) is None:
                        raise
                    last_error = _line(exc)  # a concurrent creator won: commit onto its table
                    existed = True
                    continue
            # The idempotency check delta-rs does not do: another run of this (job, table, key)?
            now_txn = table.transaction_version(app_id)
            if (now_txn or 0) != (read_txn or 0):
                raise ConcurrentRunError(
                    f"table {loc.name}: another run committed {app_id} while this one was writing "
                    f"(txn version {read_txn} -> {now_txn}); this run committed nothing"
                )
            self._check_supported(loc, table)
            policy.check_same_partitioning(loc.name, table.metadata().partition_columns, partition_by)
            schema = policy.merge_write_schema(
                loc.name, self._schema(table), write_schema, self.cfg.allow_new_columns
            )
            actions: list[AddAction | RemoveAction] = [_add_action(f, partition_by) for f in staged]
            filters = None
            replaced = False
            if mode == "replace":
                existing = _files_in(table, partition_by, set(targets))
                replaced = bool(existing)
                filters = _overwrite_filters(partition_by, targets)
                if filters is None:  # not expressible as delta-rs filters (nulls, several keys): remove files
                    now = int(time.time() * 1000)
                    actions += [RemoveAction(p, True, now, size, pv) for p, size, pv in existing]
            try:
                commit_actions(table, loc, actions, partition_by, filters, schema, props)
            except CommitFailedError as exc:
                last_error = _line(exc)
                log.info("table %s: commit attempt %d conflicted (%s), retrying", loc.name, attempt + 1, last_error)
                time.sleep(min(0.2 * (attempt + 1), 1.0))
                continue
            return replaced
        raise ConcurrentRunError(
            f"table {loc.name}: commit failed {self.cfg.commit_retries + 1} times because other writers "
            f"kept committing ({last_error}); this run committed nothing"
        )

    def _version_of(self, loc: Location, stage: str) -> int | None:
        """Version whose commit carries this write's id (delta-rs does not return it)."""
        table = self._require(loc)
        for item in table.history(limit=100):
            if parse_user_metadata(item.get("userMetadata")).get("write_id") == stage:
                return int(item["version"])
        log.warning("table %s: committed write %s not among the last 100 versions", loc.name, stage)
        return None

    def _committed_anyway(self, loc: Location, app_id: str, txn_version: int, stage: str) -> bool:
        """After an unexpected error: did our commit land (then the staged files must stay)?"""
        try:
            table = self._load(loc)
            if table is None or table.transaction_version(app_id) != txn_version:
                return False
            return self._version_of(loc, stage) is not None
        except Exception:  # noqa: BLE001 - if the log cannot be read, keep the files (cleanup is safe later)
            return False

    def _drop_stage(self, loc: Location, stage: str) -> None:
        """Delete an uncommitted staging folder; nothing in the log refers to it."""
        try:
            fs, base = pafs.FileSystem.from_uri(loc.uri)
            if fs.get_file_info(f"{base}/{stage}").type == pafs.FileType.Directory:
                fs.delete_dir(f"{base}/{stage}")
        except Exception as exc:  # noqa: BLE001 - cleanup_orphans removes it later
            log.warning("table %s: could not delete staging folder %s: %s", loc.name, stage, _line(exc))

    # ------------------------------------------------------------------ the read path
    def read(
        self,
        loc: Location,
        version: int | None,
        timestamp: dt.datetime | str | None,
        partitions: dict[str, list[Any]] | None,
    ) -> DataFrame:
        table = self._require(loc, version)
        if timestamp is not None:
            when = _as_utc(timestamp)
            first = min(h["timestamp"] for h in table.history())
            if when.timestamp() * 1000 < first:
                raise TableError(f"table {loc.name}: no version as of {when.isoformat()} (created later)")
            table.load_as_version(when)
        self._check_supported(loc, table)
        schema = self._schema(table)
        partition_by = list(table.metadata().partition_columns)
        types = {f.name: f.dataType for f in schema.fields}
        adds = _add_rows(table)
        if partitions:
            unknown = set(partitions) - set(partition_by)
            if unknown:
                raise TableError(f"table {loc.name}: {sorted(unknown)} are not partition columns {partition_by}")
            for col, values in partitions.items():
                allowed = {policy.canonical_partition_text(types[col], policy.partition_value_text(v)) for v in values}
                adds = [a for a in adds if _typed_text(a["partition." + col]) in allowed]
        if not adds:
            return self.spark.createDataFrame([], schema)
        return self._scan_snapshot(loc, schema, partition_by, adds)

    def _parquet(self, paths: list[str], data_schema: StructType) -> DataFrame:
        """Spark's Parquet reader on exactly these files, with the table's data schema.

        ``recursiveFileLookup`` turns Spark's partition discovery off: nothing is inferred from
        folder names (the log is authoritative), so files from differently nested staging folders
        can never raise CONFLICTING_DIRECTORY_STRUCTURES. Columns an older file lacks read as null.
        """
        return self._reader(data_schema).parquet(*paths)

    def _reader(self, data_schema: StructType) -> Any:
        return self.spark.read.schema(data_schema).option("recursiveFileLookup", "true")

    def _coalesce_like_one_scan(self, df: DataFrame, sizes: list[int]) -> DataFrame:
        """At most as many tasks as one Parquet scan of the same files would get.

        Each scan of a union packs only its own files, so ten partition values give at least ten
        tasks where one scan packs the files into a few (twice as slow here). Coalescing (no
        shuffle; filters and column pruning still reach every branch) restores Spark's own split
        sizing: ``maxPartitionBytes``, ``openCostInBytes`` and the leaf parallelism.
        """
        conf = self.spark.conf
        sc = self.spark.sparkContext
        as_bytes = sc._jvm.org.apache.spark.network.util.JavaUtils.byteStringAsBytes  # type: ignore[union-attr]
        max_bytes = int(as_bytes(conf.get("spark.sql.files.maxPartitionBytes", "128m")))
        open_cost = int(as_bytes(conf.get("spark.sql.files.openCostInBytes", "4m")))
        parallelism = conf.get("spark.sql.files.minPartitionNum", None) or conf.get(
            "spark.sql.leafNodeDefaultParallelism", None
        )
        cores = int(parallelism) if parallelism else sc.defaultParallelism
        total = sum(size + open_cost for size in sizes)
        split = min(max_bytes, max(open_cost, total // max(cores, 1)))
        return df.coalesce(max(1, math.ceil(total / max(split, 1))))

    def _scan_snapshot(
        self, loc: Location, schema: StructType, partition_by: list[str], adds: list[dict[str, Any]]
    ) -> DataFrame:
        """The given (already pruned) add actions as one DataFrame in the table's column order.

        Partition values come from the log. With few, large partition values: one scan per value
        with the values as literal columns, unioned (no per-row work; Spark prunes whole branches
        on filters over partition columns). Otherwise one scan and a broadcast join on
        ``_metadata.file_path``: each union branch has a fixed cost, which many or small
        partitions do not repay (200 values: 9 s vs 1 s).
        """
        uris = [_spark_path(loc, uri) for uri in _file_uris(loc, adds)]
        data_schema = StructType([f for f in schema.fields if f.name not in partition_by])
        columns = [f.name for f in schema.fields]
        if not partition_by:
            return self._parquet(uris, data_schema).select(*[F.col(f"`{c}`") for c in columns])
        types = {f.name: f.dataType for f in schema.fields}
        groups: dict[tuple[Any, ...], list[str]] = {}
        for uri, add in zip(uris, adds, strict=True):
            groups.setdefault(tuple(add["partition." + c] for c in partition_by), []).append(uri)
        stages = _stage_groups(loc, uris, adds, partition_by, types) if FOLDER_PARTITIONS else None
        branches = len(stages) if stages is not None and len(stages) <= len(groups) else len(groups)
        total_bytes = sum(int(a["size_bytes"] or 0) for a in adds)
        if branches == 1 or (
            branches <= UNION_MAX_GROUPS and total_bytes >= branches * UNION_MIN_BYTES_PER_VALUE
        ):
            if stages is not None and branches == len(stages):
                # Spark's partition discovery from the table root (or a legacy staging folder); the
                # folder values were checked against the log, so what it restores is the log's values.
                picked = [_quote(c) for c in columns]
                frames = [
                    self.spark.read.schema(schema).option("basePath", loc.child(stage) if stage else loc.spark_uri)
                    .parquet(*paths)
                    .selectExpr(*picked)
                    for stage, paths in stages.items()
                ]
            else:
                # SQL text per branch: a few Py4J calls per branch instead of several per column.
                reader = self._reader(data_schema)
                frames = []
                for values, paths in groups.items():
                    literal = dict(zip(partition_by, values, strict=True))
                    frames.append(
                        reader.parquet(*paths).selectExpr(
                            *[
                                f"{_sql_literal(literal[c], types[c])} AS {_quote(c)}" if c in literal else _quote(c)
                                for c in columns
                            ]
                        )
                    )
            union = reduce(lambda a, b: a.unionAll(b), frames)
            return union if len(frames) == 1 else self._coalesce_like_one_scan(union, [a["size_bytes"] for a in adds])
        jvm_path = self.spark.sparkContext._jvm.org.apache.hadoop.fs.Path  # type: ignore[union-attr]
        key_schema = StructType(
            [StructField(_FILE_KEY, StringType(), False)] + [StructField(c, types[c], True) for c in partition_by]
        )
        keys = self.spark.createDataFrame(
            [
                tuple([jvm_path(uri).toUri().toString()] + [a["partition." + c] for c in partition_by])
                for uri, a in zip(uris, adds, strict=True)
            ],
            key_schema,
        )
        return (
            self._parquet(uris, data_schema)
            .withColumn(_FILE_KEY, F.col("_metadata.file_path"))
            .join(F.broadcast(keys), on=_FILE_KEY, how="inner")
            .select(*[F.col(f"`{c}`") for c in columns])
        )

    # ------------------------------------------------------------------ cleanup
    def cleanup_orphans(self, loc: Location, retention_hours: float, dry_run: bool) -> list[str]:
        """Delete files no version in the log refers to, older than the retention (in-flight writes)."""
        table = self._require(loc)
        fs, base = pafs.FileSystem.from_uri(loc.uri)
        referenced = _all_referenced(fs, base, table)
        cutoff = time.time() - retention_hours * 3600
        removed: list[str] = []
        for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
            rel = info.path[len(base) + 1 :]
            if info.type != pafs.FileType.File or rel.startswith(("_delta_log/", "_")):
                continue
            name = rel.rsplit("/", 1)[-1]
            owner = rel
            if name.startswith(".") and name.endswith(".crc"):  # Hadoop checksum of a data file
                owner = rel[: -len(name)] + name[1:-4]
            if owner in referenced:
                continue
            if info.mtime is not None and info.mtime.timestamp() > cutoff:
                continue
            removed.append(rel)
            if not dry_run:
                fs.delete_file(info.path)
        if not dry_run:
            _remove_empty_stage_dirs(fs, base, cutoff)
        log.info(
            "table %s: %s %d orphan files older than %.1f h",
            loc.name, "would remove" if dry_run else "removed", len(removed), retention_hours,
        )
        return sorted(removed)


# ---------------------------------------------------------------------- module helpers
def commit_actions(
    table: DeltaTable | None,
    loc: Location,
    actions: list[Any],
    partition_by: list[str],
    filters: list[tuple[str, str, Any]] | None,
    schema: StructType,
    props: CommitProperties,
) -> None:
    """The one delta-rs commit call (module level so tests can inject failures here).

    ``filters`` set (even empty: the whole unpartitioned table) makes it an overwrite of what they
    select; ``None`` appends the actions (which may carry explicit removes).
    """
    delta_schema = Schema.from_json(policy.to_delta_json(schema))
    if table is None:
        create_table_with_add_actions(
            loc.uri, delta_schema, actions, mode="error", partition_by=partition_by or None, commit_properties=props
        )
        return
    table.create_write_transaction(
        actions,
        mode="overwrite" if filters is not None else "append",
        schema=delta_schema,
        partition_by=partition_by or None,
        partition_filters=filters or None,
        commit_properties=props,
    )


def _named(partition_by: list[str], values: Sequence[tuple[str | None, ...]]) -> list[dict[str, str | None]]:
    return [dict(zip(partition_by, v, strict=True)) for v in values]


def _line(exc: BaseException) -> str:
    """One line for an error message: the exception's first line and, for a JVM error, its root cause.

    A Py4J/Spark error's first line is often only "An error occurred while calling o123.parquet.";
    the useful part ("No space left on device") is the last ``Caused by:`` of the Java stack trace.
    """
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    first = text[0] if text else type(exc).__name__
    causes = [line[len("Caused by:"):].strip() for line in text if line.startswith("Caused by:")]
    if not causes and first.startswith("An error occurred while calling") and len(text) > 1:
        causes = [text[1].lstrip(": ")]
    root = f" (caused by {causes[-1][:300]})" if causes and causes[-1] not in first else ""
    return f"{type(exc).__name__}: {first[:300]}{root}"


def _as_utc(value: dt.datetime | str) -> dt.datetime:
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _sql_literal(value: Any, data_type: Any) -> str:
    """A typed partition value from the log as Spark SQL text (strings as UTF-8 hex: no escaping)."""
    type_sql = data_type.simpleString()
    if value is None:
        return f"CAST(NULL AS {type_sql})"
    if isinstance(data_type, StringType):
        return f"CAST(X'{str(value).encode('utf-8').hex()}' AS STRING)"
    if isinstance(data_type, DateType):
        return f"DATE'{value.isoformat()}'"
    if isinstance(data_type, BooleanType):
        return "true" if value else "false"
    if isinstance(data_type, ByteType | ShortType | IntegerType | LongType):
        return f"CAST({int(value)} AS {type_sql})"
    raise TableError(f"partition value {value!r} of type {type_sql} is not supported")


def _typed_text(value: Any) -> str | None:
    return policy.partition_value_text(value)


def _add_rows(table: DeltaTable) -> list[dict[str, Any]]:
    import pyarrow as pa

    return pa.table(table.get_add_actions(flatten=True)).to_pylist()


def _file_uris(loc: Location, adds: list[dict[str, Any]]) -> list[str]:
    """Decoded absolute file locations for the given add rows (log paths are URL-encoded)."""
    from urllib.parse import unquote

    out = []
    for a in adds:
        path = a["path"]
        if "://" in path or path.startswith("/"):
            raise TableError(f"table {loc.name}: absolute file path in the log is not supported: {path}")
        out.append(loc.uri.rstrip("/") + "/" + unquote(path))
    return out


def _stage_groups(
    loc: Location, paths: list[str], adds: list[dict[str, Any]], partition_by: list[str], types: dict[str, Any]
) -> dict[str, list[str]] | None:
    """The files' Spark paths (one per add) by the ``basePath`` to scan them with, relative to the
    table root; None unless folder names give exactly the log's values.

    Every file must sit at ``<staging folder>/<col1>=<v1>/.../<file>`` (the table's partition columns
    in order, Spark's escaping, ``__HIVE_DEFAULT_PARTITION__`` for null) with each folder value equal
    to the log's partition value for that file. Files in ``driftline_write=w<id>`` folders share the
    base ``""`` (the table root); each legacy ``stage-<id>`` folder is its own base. Another tool's
    layout, a renamed folder or a table column named ``driftline_write`` gives None.
    """
    if WRITE_FOLDER in types:
        return None
    base = loc.child("")
    out: dict[str, list[str]] = {}
    for path, add in zip(paths, adds, strict=True):
        parts = path[len(base) :].split("/")
        if not path.startswith(base) or len(parts) != len(partition_by) + 2:
            return None
        if parts[0].startswith(WRITE_FOLDER + "=w"):
            group = ""
        elif parts[0].startswith(STAGE_PREFIX):
            group = parts[0]
        else:
            return None
        for col, folder in zip(partition_by, parts[1:-1], strict=True):
            text = folder_value(folder, col)
            if text is False:
                return None
            try:
                found = policy.canonical_partition_text(types[col], text)
                logged = policy.canonical_partition_text(types[col], _typed_text(add["partition." + col]))
            except TableError:
                return None
            if found != logged:
                return None
        out.setdefault(group, []).append(path)
    return out


def _spark_path(loc: Location, uri: str) -> str:
    rel = uri[len(loc.uri.rstrip("/")) + 1 :]
    return loc.child(rel)


def _files_in(
    table: DeltaTable, partition_by: list[str], targets: set[tuple[str | None, ...]]
) -> list[tuple[str, int, dict[str, str | None]]]:
    """Active files of the replaced partitions: (raw path, size, partition values as strings)."""
    from urllib.parse import unquote

    out = []
    for a in _add_rows(table):
        values = tuple(_typed_text(a["partition." + c]) for c in partition_by)
        if values in targets:
            out.append((unquote(a["path"]), a["size_bytes"], dict(zip(partition_by, values, strict=True))))
    return out


def _overwrite_filters(
    partition_by: list[str], targets: list[tuple[str | None, ...]]
) -> list[tuple[str, str, Any]] | None:
    """delta-rs partition filters for the targets, or None when they cannot say it (nulls, OR of keys).

    ``[]`` for an unpartitioned table: an overwrite without a predicate replaces every file.
    """
    if not partition_by:
        return []
    if not targets or any(v is None for t in targets for v in t):
        return None
    if len(targets) == 1:
        return [(c, "=", v) for c, v in zip(partition_by, targets[0], strict=True)]
    if len(partition_by) == 1:
        return [(partition_by[0], "in", [t[0] for t in targets])]
    return None


def _add_action(f: StagedFile, partition_by: list[str]) -> AddAction:
    return AddAction(
        f.rel_path,
        f.size,
        dict(zip(partition_by, f.partition, strict=True)),
        f.mtime_ms,
        True,
        json.dumps(f.stats, separators=(",", ":")),
    )


def _check_not_null(table: str, schema: StructType, staged: list[StagedFile]) -> None:
    """Spark writes every Parquet column as optional: NOT NULL is proven by the footers' null counts."""
    for field in schema.fields:
        if field.nullable:
            continue
        for f in staged:
            count = f.stats["nullCount"].get(field.name)
            if field.name in f.partition_columns:
                continue
            if count is None or count > 0:
                found = "unknown" if count is None else str(count)
                raise TableError(
                    f"table {table}: NOT NULL column {field.name!r} has {found} null values in {f.rel_path}"
                )


def _file_stats(meta: pq.FileMetaData, fields: list[StructField]) -> dict[str, Any]:
    """Delta per-file statistics from a Parquet footer: numRecords, nullCount, min/max where safe.

    min/max only for integer, date, timestamp (rounded outward to milliseconds) and short strings;
    floats (NaN), decimals, binary and nested columns get none, which readers treat as unknown.
    """
    by_name = {f.name: f for f in fields}
    nulls: dict[str, int] = {}
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    for i in range(meta.num_columns):
        path = meta.schema.column(i).path
        field = by_name.get(path)
        if field is None:
            continue
        groups = [meta.row_group(g).column(i).statistics for g in range(meta.num_row_groups)]
        if any(s is None or not s.has_null_count for s in groups):
            continue  # unknown: say nothing rather than something wrong
        nulls[path] = sum(s.null_count for s in groups)
        with_values = [s for s in groups if s.has_min_max]
        if not with_values or any(not s.has_min_max and s.num_values > 0 for s in groups):
            continue
        lo, hi = _min_max(field, with_values)
        if lo is not None and hi is not None:
            mins[path], maxs[path] = lo, hi
    stats: dict[str, Any] = {"numRecords": meta.num_rows, "nullCount": nulls}
    if mins:
        stats["minValues"], stats["maxValues"] = mins, maxs
    return stats


def _min_max(field: StructField, groups: list[Any]) -> tuple[Any, Any]:
    data_type = field.dataType
    if isinstance(data_type, ByteType | ShortType | IntegerType | LongType):
        return min(int(s.min) for s in groups), max(int(s.max) for s in groups)
    if isinstance(data_type, DateType):
        lo, hi = min(s.min for s in groups), max(s.max for s in groups)
        return (lo.isoformat(), hi.isoformat()) if isinstance(lo, dt.date) else (None, None)
    if isinstance(data_type, TimestampType):
        if any(s.physical_type != "INT64" or "timeUnit=microseconds" not in str(s.logical_type) for s in groups):
            return None, None
        lo = min(int(s.min_raw) for s in groups)
        hi = max(int(s.max_raw) for s in groups)
        return _ts_ms(math.floor(lo / 1000)), _ts_ms(math.ceil(hi / 1000))  # stats are ms: round outward
    if isinstance(data_type, StringType):
        lo, hi = min(s.min for s in groups), max(s.max for s in groups)
        if isinstance(lo, str) and isinstance(hi, str) and max(len(lo), len(hi)) <= STRING_STATS_MAX:
            return lo, hi
    return None, None


def _ts_ms(millis: int) -> str:
    stamp = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=millis)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _all_referenced(fs: pafs.FileSystem, base: str, table: DeltaTable) -> set[str]:
    """Every data file any retained version refers to (commit files plus the current snapshot)."""
    from urllib.parse import unquote

    referenced = {unquote(a["path"]) for a in _add_rows(table)}
    for info in fs.get_file_info(pafs.FileSelector(f"{base}/_delta_log", recursive=False)):
        if info.type != pafs.FileType.File or not info.path.endswith(".json"):
            continue
        with fs.open_input_stream(info.path) as handle:
            for line in handle.read().decode("utf-8").splitlines():
                if not line.strip():
                    continue
                action = json.loads(line)
                for kind in ("add", "remove"):
                    if kind in action:
                        referenced.add(unquote(action[kind]["path"]))
    return referenced


def _remove_empty_stage_dirs(fs: pafs.FileSystem, base: str, cutoff: float) -> None:
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=False)):
        if info.type != pafs.FileType.Directory or not info.base_name.startswith((STAGE_PREFIX, WRITE_FOLDER + "=")):
            continue
        if info.mtime is not None and info.mtime.timestamp() > cutoff:
            continue  # maybe a write in flight that has not produced files yet
        inner = fs.get_file_info(pafs.FileSelector(info.path, recursive=True))
        if all(i.type == pafs.FileType.Directory for i in inner):
            fs.delete_dir(info.path)
