"""`TableStore`: the one door to Delta tables for every job (names, backend choice, operations)."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import ConfigError, TableError
from driftline.tables.commit import CommitInfo, WriteResult
from driftline.tables.embedded import EmbeddedBackend
from driftline.tables.names import Location, resolve_location, validate_table_name
from driftline.tables.native import NativeBackend, native_available
from driftline.tables.spec import StorageConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)


class TableStore:
    """Delta tables by name: validated names, one backend, idempotent partition writes.

    Idempotency: every write carries the Delta app transaction ``driftline/<job>/<table>/<key>``
    with version previous+1 (read from the snapshot the write started on). At commit time the
    snapshot is re-read; if that app id moved, another run of the same (job, table, key) committed
    meanwhile and this one raises `ConcurrentRunError` without committing (R4). A rerun after the
    other finished replaces the same partitions (R1); keys are per key, never a counter (R2).
    """

    def __init__(self, spark: SparkSession, cfg: StorageConfig, workspace: str | os.PathLike[str], backend: Any):
        self.spark = spark
        self.cfg = cfg
        self.workspace = Path(workspace)
        self._backend = backend

    @property
    def backend(self) -> str:
        """``"embedded"`` or ``"native"``."""
        return str(self._backend.name)

    def _loc(self, name: str) -> Location:
        return resolve_location(name, self.cfg, self.workspace)

    def location(self, name: str) -> str:
        """Validated name → absolute path or URI of the table (R20: names are identifiers only)."""
        return self._loc(name).uri

    def exists(self, name: str) -> bool:
        """True when a Delta table exists at the name's location."""
        return bool(self._backend.exists(self._loc(name)))

    def create_if_absent(
        self,
        name: str,
        schema: StructType,
        partition_by: Sequence[str] = (),
        commit: CommitInfo | None = None,
    ) -> None:
        """Create an empty table with this schema; if it exists, check partitioning and declared columns."""
        self._backend.create_if_absent(self._loc(name), schema, list(partition_by), commit)

    def replace_partitions(
        self,
        name: str,
        df: DataFrame,
        partition_by: Sequence[str],
        commit: CommitInfo,
        partitions: Sequence[dict[str, Any]] | None = None,
    ) -> WriteResult:
        """Atomically replace the rows of the given partition values with ``df`` (creates the table).

        ``partitions`` defaults to the partition values present in ``df`` (taken from the written
        files, no extra pass); an explicit list can replace a partition with zero rows and makes
        rows outside it an error. Columns are matched by name against the table's schema.

        An empty ``partition_by`` replaces the whole of an unpartitioned table in one commit (Delta
        overwrite without a predicate; zero rows leave it empty) with the same idempotency key
        semantics. A partitioned table is never wiped this way: its partition columns must be given.
        """
        if not partition_by and partitions is not None:
            raise TableError(
                f"table {name}: a full replace (no partition columns) takes no partitions: "
                f"expected partitions=None, found {list(partitions)!r}"
            )
        return self._backend.replace_partitions(self._loc(name), df, list(partition_by), commit, partitions)

    def append(self, name: str, df: DataFrame, commit: CommitInfo) -> WriteResult:
        """Append ``df``; skipped (``skipped=True``) if this (job, table, key) already appended."""
        return self._backend.append(self._loc(name), df, commit)

    def read(
        self,
        name: str,
        *,
        version: int | None = None,
        timestamp: dt.datetime | str | None = None,
        partitions: dict[str, list[Any]] | None = None,
    ) -> DataFrame:
        """The latest snapshot, or the one at ``version``/``timestamp`` (UTC if naive), pruned to ``partitions``."""
        if version is not None and timestamp is not None:
            raise TableError(f"table {name}: give version or timestamp, not both")
        return self._backend.read(self._loc(name), version, timestamp, partitions)

    def version(self, name: str) -> int:
        """Latest committed version."""
        return int(self._backend.version(self._loc(name)))

    def history(self, name: str) -> list[dict[str, Any]]:
        """Commits newest first: version, timestamp (UTC), operation, job, run_id, date, code_version,
        config_hash, idempotency_key, txn_version, extra (None where a commit was not ours)."""
        return list(self._backend.history(self._loc(name)))

    def schema(self, name: str) -> StructType:
        """The table's schema (partition columns included)."""
        return self._backend.schema(self._loc(name))

    def cleanup_orphans(self, name: str, retention_hours: float | None = None, dry_run: bool = False) -> list[str]:
        """Remove data files no retained version refers to and older than the retention; returns them."""
        hours = self.cfg.orphan_retention_hours if retention_hours is None else retention_hours
        if hours < 0:
            raise TableError(f"table {name}: retention_hours must be >= 0, found {hours}")
        return self._backend.cleanup_orphans(self._loc(name), float(hours), dry_run)


def open_store(spark: SparkSession, storage_cfg: StorageConfig, workspace: str | os.PathLike[str]) -> TableStore:
    """The `TableStore` for this session: native when delta-spark's classes are loaded, else embedded.

    ``storage.backend: native`` without the jars is a `ConfigError`; ``embedded`` is always possible.
    """
    choice = storage_cfg.backend
    if choice == "auto":
        choice = "native" if native_available(spark) else "embedded"
    if choice == "native":
        if not native_available(spark):
            raise ConfigError(
                "storage.backend: native needs the delta-spark jars on the classpath, found none "
                "(use backend: embedded or add io.delta:delta-spark to spark.jars.packages)"
            )
        backend: Any = NativeBackend(spark, storage_cfg)
    else:
        backend = EmbeddedBackend(spark, storage_cfg)
    log.info("table store: %s backend", backend.name)
    return TableStore(spark, storage_cfg, workspace, backend)


__all__ = ["TableStore", "open_store", "validate_table_name"]
