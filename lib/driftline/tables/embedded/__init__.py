"""Embedded Delta backend: Spark writes Parquet, delta-rs commits it; no JVM Delta jars needed.

Write (`write`): Spark writes the rows as Parquet into a staging folder ``driftline_write=w<uuid>/``
inside the table root (``stage-<uuid>/`` before 2026-11-23), partitioned like the table. The driver
lists the staged files and reads their footers for statistics and partition values (`stats`),
validates everything delta-rs would accept silently, and makes one delta-rs commit that adds those
files and removes the replaced partitions, carrying the app transaction
``driftline/<job>/<table>/<key>`` and our metadata. Files stay where Spark wrote them, so a crash
before the commit leaves only invisible orphans (`cleanup`).

Rewrite (plan mode ``rewrite``, `write`): staged like a write, partitioned by the new columns, and
committed as one CREATE OR REPLACE TABLE with the new schema and partitioning. Add columns
(`alter`): one metadata-only delta-rs ADD COLUMN commit with the same app transaction and metadata.

Read (`read`): the snapshot's file list and typed partition values come from the log (`deltalog`),
pruned on the driver; Spark's Parquet reader scans exactly those files with the table's schema.

`commit_actions` (the delta-rs commit call), `alter_columns` (add_columns' delta-rs call) and
`new_stage_name` are looked up on this package at every write: they are where tests inject a
crash or a storage error between staging and commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from driftline.tables.backend import Committed, Snapshot
from driftline.tables.commit import CommitInfo
from driftline.tables.embedded import alter as _alter
from driftline.tables.embedded import cleanup as _cleanup
from driftline.tables.embedded import deltalog as _log
from driftline.tables.embedded import read as _read
from driftline.tables.embedded import write as _write
from driftline.tables.embedded.alter import alter_columns
from driftline.tables.embedded.layout import new_stage_name
from driftline.tables.embedded.write import EmbeddedWrite, commit_actions
from driftline.tables.names import Location
from driftline.tables.preflight import WritePlan
from driftline.tables.spec import StorageConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


class EmbeddedBackend:
    """Delta tables through Spark's Parquet reader/writer and delta-rs commits (a `DeltaBackend`)."""

    name = "embedded"

    def __init__(self, spark: SparkSession, cfg: StorageConfig) -> None:
        self.spark = spark
        self.cfg = cfg

    def exists(self, loc: Location) -> bool:
        return _log.load(loc) is not None

    def snapshot(self, loc: Location, app_id: str | None = None) -> Snapshot | None:
        table = _log.load(loc)
        return None if table is None else _log.snapshot(loc, table, app_id)

    def schema(self, loc: Location) -> StructType:
        return _log.table_schema(_log.require(loc))

    def version(self, loc: Location) -> int:
        return _log.require(loc).version()

    def history(self, loc: Location) -> list[dict[str, Any]]:
        return _log.history(loc)

    def create(self, loc: Location, schema: StructType, partition_by: Sequence[str], commit: CommitInfo | None) -> bool:
        return _write.create(loc, schema, partition_by, commit)

    def stage(self, loc: Location, df: DataFrame, plan: WritePlan) -> EmbeddedWrite:
        # Both hooks are this package's attributes, read at call time (see the module doc).
        return _write.stage(loc, df, plan, new_stage_name(), commit_actions, self.cfg.commit_retries)

    def add_columns(self, loc: Location, plan: WritePlan) -> Committed:
        return _alter.add_columns(loc, plan, alter_columns, self.cfg.commit_retries)

    def read(
        self,
        loc: Location,
        version: int | None,
        timestamp: dt.datetime | str | None,
        partitions: dict[str, list[Any]] | None,
    ) -> DataFrame:
        return _read.read(self.spark, loc, version, timestamp, partitions)

    def cleanup_orphans(self, loc: Location, retention_hours: float, dry_run: bool) -> list[str]:
        return _cleanup.cleanup_orphans(loc, retention_hours, dry_run)


__all__ = ["EmbeddedBackend", "EmbeddedWrite", "alter_columns", "commit_actions", "new_stage_name"]
