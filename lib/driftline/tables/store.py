"""`TableStore`: the one door to Delta tables for every job (names, backend choice, operations)."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql.types import StructField, StructType

from driftline.errors import ConfigError, DriftlineError, InputContractError, TableError
from driftline.jvm import is_connect
from driftline.jvm.delta import DELTA_JARS_CONF
from driftline.tables import schema as policy
from driftline.tables.backend import DeltaBackend, PartitionKey, Snapshot, StagedWrite, error_line
from driftline.tables.commit import CommitInfo, WriteResult
from driftline.tables.embedded import EmbeddedBackend
from driftline.tables.names import Location, resolve_location, root_location, validate_table_name
from driftline.tables.native import NativeBackend, native_available
from driftline.tables.preflight import (
    Mode,
    WritePlan,
    named,
    plan_add_columns,
    plan_rewrite,
    plan_write,
    resolve_targets,
)
from driftline.tables.spec import StorageConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

BACKEND_ENV = "DRIFTLINE_STORAGE_BACKEND"   # what ``storage.backend: auto`` means when set


class TableStore:
    """Delta tables by name: validated names, one backend, idempotent partition writes.

    Idempotency: every write carries the Delta app transaction ``driftline/<job>/<table>/<key>``
    with version previous+1 (read from the snapshot the write started on). At commit time the
    snapshot is re-read; if that app id moved, another run of the same (job, table, key) committed
    meanwhile and this one raises `ConcurrentRunError` without committing (R4). A rerun after the
    other finished replaces the same partitions (R1); keys are per key, never a counter (R2).

    A write runs the shared pre-flight (`preflight.plan_write`) once, then the backend stages the
    rows and commits them (`DeltaBackend.stage`, `StagedWrite.commit`); whatever fails before the
    commit leaves the table at its previous version and the staged files are discarded (R3, R22).
    Whole-table operations for migrations: `rewrite` (rows, schema and partitioning in one commit)
    and `add_columns` (metadata only), with the same idempotency key.
    """

    def __init__(
        self, spark: SparkSession, cfg: StorageConfig, workspace: str | os.PathLike[str], backend: DeltaBackend
    ):
        self.spark = spark
        self.cfg = cfg
        self.workspace = Path(workspace)
        self._backend = backend
        self.commits: list[WriteResult] = []   # every write this store committed, oldest first (JobResult reads it)

    @property
    def backend(self) -> str:
        """``"embedded"`` or ``"native"``."""
        return self._backend.name

    def _loc(self, name: str) -> Location:
        return resolve_location(name, self.cfg, self.workspace)

    def location(self, name: str) -> str:
        """Validated name → absolute path or URI of the table (R20: names are identifiers only)."""
        return self._loc(name).uri

    def table_names(self) -> list[str]:
        """The Delta tables of this store: folders holding ``_delta_log/`` under a local tables root, and the
        ``storage.tables`` mappings that exist. `TableError` for an object-store root (not listed)."""
        root = root_location(self.cfg, self.workspace)
        if root.local_path is None:
            raise TableError(f"storage.root: expected a local folder to list tables in, found the URI {root.uri}")
        if not root.local_path.is_dir():
            raise TableError(f"storage.root: expected the tables folder {root.local_path}, found no folder")
        names = {p.name for p in root.local_path.iterdir() if (p / "_delta_log").is_dir()}
        names |= {name for name in self.cfg.tables if self.exists(name)}
        return sorted(names)

    def exists(self, name: str) -> bool:
        """True when a Delta table exists at the name's location."""
        return self._backend.exists(self._loc(name))

    def create_if_absent(
        self,
        name: str,
        schema: StructType,
        partition_by: Sequence[str] = (),
        commit: CommitInfo | None = None,
    ) -> None:
        """Create an empty table with this schema; if it exists, check partitioning and declared columns."""
        loc = self._loc(name)
        policy.check_partition_columns(name, schema, partition_by)
        for _ in range(2):  # a concurrent creator may win: then compare with what it created
            snapshot = self._backend.snapshot(loc)
            if snapshot is not None:
                policy.check_same_partitioning(name, snapshot.partition_by, partition_by)
                policy.check_compatible_declared(name, snapshot.schema, schema)
                return
            if self._backend.create(loc, schema, list(partition_by), commit):
                log.info("table %s created at %s (partitioned by %s)", name, loc.uri, list(partition_by))
                return
        raise TableError(f"table {name}: create raced with another writer twice")

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
        return self._write(name, df, list(partition_by), commit, partitions, "replace")

    def append(self, name: str, df: DataFrame, commit: CommitInfo) -> WriteResult:
        """Append ``df``; skipped (``skipped=True``) if this (job, table, key) already appended."""
        return self._write(name, df, None, commit, None, "append")

    def _write(
        self,
        name: str,
        df: DataFrame,
        partition_by: list[str] | None,
        commit: CommitInfo,
        partitions: Sequence[dict[str, Any]] | None,
        mode: Mode,
    ) -> WriteResult:
        """Pre-flight once, then stage and commit through the backend (``partition_by`` None: the table's)."""
        loc = self._loc(name)
        snapshot = self._backend.snapshot(loc, commit.app_id(name))
        if partition_by is None:
            partition_by = list(snapshot.partition_by) if snapshot is not None else []
        try:
            plan = plan_write(
                name, df.schema, partition_by, commit, partitions, mode, snapshot, self.cfg.allow_new_columns
            )
        except TableError as exc:
            outdated = _outdated(name, snapshot)
            if outdated is None:
                raise
            raise outdated from exc
        if plan.already_appended:
            log.info("table %s: append for %s already committed (txn %s), skipped", name, plan.app_id, plan.read_txn)
            return WriteResult(name, None, 0, 0, replaced=False, skipped=True)
        return self._stage_and_commit(loc, df, plan)

    def rewrite(self, name: str, df: DataFrame, partition_by: Sequence[str], commit: CommitInfo) -> WriteResult:
        """Replace every row of the existing table with ``df`` in one commit, schema and partitioning included.

        The table's schema becomes exactly ``df.schema`` (top-level fields nullable), its partition
        columns ``partition_by``: columns may be renamed, removed, added or reordered and the
        partitioning changed. Older versions stay readable with their own rows and schema
        (``read(name, version=...)``) until their files are cleaned up. ``df`` may be computed from
        the table itself (the old files stay on disk). Zero rows leave the table empty.

        Idempotency as for every write: app transaction ``commit.app_id(name)`` with version
        previous+1; another run of the same (job, table, key) committing meanwhile is a
        `ConcurrentRunError`. A rerun after the first one finished rewrites again (a full replace:
        one new version, the same rows, never duplicates). The table must exist (`TableError`);
        whatever fails before the commit leaves it at its previous version, staged files removed.
        """
        loc = self._loc(name)
        plan = plan_rewrite(name, df.schema, list(partition_by), commit, self._existing(name, loc, commit, "rewrite"))
        return self._stage_and_commit(loc, df, plan)

    def add_columns(self, name: str, fields: StructType | Sequence[StructField], commit: CommitInfo) -> WriteResult:
        """Append new nullable columns to the table's schema in one metadata-only commit.

        No data file is written or removed: rows already in the table read null in the new columns,
        and later writes must carry them (columns are matched by name). A name that exists already
        (ignoring case) or a NOT NULL field is refused with a `TableError`, never made nullable
        silently; so is a rerun once the columns are there. The commit carries the metadata and app
        transaction of other writes (``commit.app_id(name)``, previous+1; the native backend records
        the metadata only, see `NativeBackend.add_columns`).
        """
        loc = self._loc(name)
        new = list(fields.fields) if isinstance(fields, StructType) else list(fields)
        plan = plan_add_columns(name, new, commit, self._existing(name, loc, commit, "add_columns"))
        try:
            outcome = self._backend.add_columns(loc, plan)
        except DriftlineError:
            raise
        except Exception as exc:  # Spark (Py4J), OS and Delta errors: one clear line, table unchanged
            raise TableError(f"table {name}: add_columns failed, table unchanged: {error_line(exc)}") from exc
        log.info(
            "table %s: added columns %s as version %s [%s]",
            name, [f.name for f in plan.write_schema.fields], outcome.version, plan.app_id,
        )
        result = WriteResult(name, outcome.version, 0, 0, replaced=False, skipped=False)
        self.commits.append(result)
        return result

    def _existing(self, name: str, loc: Location, commit: CommitInfo, operation: str) -> Snapshot:
        """The latest snapshot of a table that must exist (with the commit's app transaction)."""
        snapshot = self._backend.snapshot(loc, commit.app_id(name))
        if snapshot is None:
            raise TableError(f"table {name}: {operation} needs an existing table, found none at {loc.uri}")
        return snapshot

    def _stage_and_commit(self, loc: Location, df: DataFrame, plan: WritePlan) -> WriteResult:
        """Stage and commit one planned write through the backend; on failure the table is unchanged."""
        name = plan.table
        staged: StagedWrite | None = None
        targets: list[PartitionKey] = []
        done = False
        try:
            staged = self._backend.stage(loc, df, plan)
            targets = resolve_targets(plan, staged.partitions)
            if plan.mode == "replace" and not targets and plan.existed:
                log.warning("table %s: nothing to replace (no rows and no partitions given), skipped", name)
                return WriteResult(name, None, 0, 0, replaced=False, skipped=True)
            outcome = staged.commit(targets)
            done = True
        except DriftlineError:
            raise
        except Exception as exc:  # Spark (Py4J), OS and Delta errors: one clear line, table unchanged
            recovered = staged.recover() if staged is not None else None
            if recovered is None:
                raise TableError(f"table {name}: write failed, table unchanged: {error_line(exc)}") from exc
            outcome, done = recovered, True
            log.warning("table %s: commit reported %s but is in the log", name, error_line(exc))
        finally:
            if staged is not None and not done:
                staged.discard()
        verb = {"append": "appended", "rewrite": "rewrote"}.get(plan.mode, "replaced" if outcome.replaced else "wrote")
        log.info(
            "table %s: %s %d rows in %d files (partitions %s) as version %s [%s]",
            name, verb, outcome.rows, outcome.files, named(plan.partition_by, targets[:10]), outcome.version,
            plan.app_id,
        )
        result = WriteResult(name, outcome.version, outcome.rows, outcome.files, replaced=outcome.replaced,
                             skipped=False)
        self.commits.append(result)
        return result

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

    def file_stats(self, name: str, partitions: dict[str, list[Any]] | None = None) -> list[dict[str, Any]] | None:
        """Per data file of the latest snapshot (pruned to ``partitions``), the statistics the Delta log keeps:
        ``num_records``, ``min.<col>`` / ``max.<col>`` (where the writer recorded them), ``partition.<col>``.
        Read with delta-rs whichever backend wrote the table (no data is read); None when that log cannot be read
        here (a feature delta-rs lacks, a catalog table without a path), so callers fall back to reading rows."""
        from driftline.tables.embedded.read import file_stats

        try:
            return file_stats(self._loc(name), partitions)
        except Exception as exc:  # noqa: BLE001 - statistics are an optimisation: the caller reads the rows
            log.info("table %s: no file statistics from its log (%s); reading rows instead", name,
                     " ".join(str(exc).split())[:200])
            return None

    def version(self, name: str) -> int:
        """Latest committed version."""
        return self._backend.version(self._loc(name))

    def history(self, name: str) -> list[dict[str, Any]]:
        """Commits newest first: version, timestamp (UTC), operation, job, run_id, date, code_version,
        config_hash, idempotency_key, txn_version, extra (None where a commit was not ours)."""
        return self._backend.history(self._loc(name))

    def check_current(self, name: str) -> None:
        """Refuse a table an earlier release wrote (an older table contract) with the "run driftline migrate"
        error a write would give, before a job reads columns the current contract added; nothing for a table
        that does not exist yet or is current."""
        if self.exists(name):
            error = _outdated(name, self._backend.snapshot(self._loc(name)))
            if error is not None:
                raise error

    def schema(self, name: str) -> StructType:
        """The table's schema (partition columns included)."""
        return self._backend.schema(self._loc(name))

    def cleanup_orphans(self, name: str, retention_hours: float | None = None, dry_run: bool = False) -> list[str]:
        """Remove data files no retained version refers to and older than the retention; returns them."""
        hours = self.cfg.orphan_retention_hours if retention_hours is None else retention_hours
        if hours < 0:
            raise TableError(f"table {name}: retention_hours must be >= 0, found {hours}")
        return self._backend.cleanup_orphans(self._loc(name), float(hours), dry_run)


def _outdated(name: str, snapshot: Snapshot | None) -> InputContractError | None:
    """A refused write to a table an earlier release wrote: the error says to run ``driftline migrate``."""
    from driftline.tables.contract_steps import outdated

    return None if snapshot is None else outdated(name, snapshot.schema)


def _driftline_jars(spark: SparkSession) -> bool:
    """True when the delta-spark classes are the ones driftline's session builder added (`DELTA_JARS_CONF`)."""
    try:
        return spark.conf.get(DELTA_JARS_CONF, "false") == "true"
    except Exception:  # noqa: BLE001 - a conf the session cannot read: not ours
        return False


def open_store(spark: SparkSession, storage_cfg: StorageConfig, workspace: str | os.PathLike[str]) -> TableStore:
    """The `TableStore` for this session (``storage.backend``).

    ``auto``: ``$DRIFTLINE_STORAGE_BACKEND`` (``embedded`` or ``native``) when it is set — one switch for a
    deployment or a test pass, subprocesses included; else native when the platform put delta-spark on the
    classpath (``spark-submit --packages``, a Databricks runtime), and embedded when driftline started the JVM
    itself — with the jars it ships (`driftline.jvm.delta`) too: measured faster (docs/tables.md, the
    benchmark: reads 1.0–1.4× plain Parquet against delta-spark's 0.4×). ``native`` without the jars is a
    `ConfigError`; ``embedded`` is always possible.
    """
    choice = storage_cfg.backend
    if choice == "auto":
        choice = os.environ.get(BACKEND_ENV, "").strip() or (
            "native" if native_available(spark) and not _driftline_jars(spark) else "embedded")
        if choice not in ("embedded", "native"):
            raise ConfigError(f"{BACKEND_ENV}: expected embedded or native, found {choice!r}")
    if choice == "native":
        if is_connect(spark):
            raise ConfigError("storage.backend: native needs a driver JVM in this process, found a Spark Connect "
                              "session (runtime.remote / SPARK_REMOTE); use backend: embedded or auto")
        if not native_available(spark):
            raise ConfigError(
                "storage.backend: native needs the delta-spark jars on the classpath, found none "
                "(scripts/setup.sh fetches them; on a cluster add io.delta:delta-spark to the session; "
                "or use backend: embedded)"
            )
        backend: DeltaBackend = NativeBackend(spark, storage_cfg)
    else:
        backend = EmbeddedBackend(spark, storage_cfg)
    log.info("table store: %s backend", backend.name)
    return TableStore(spark, storage_cfg, workspace, backend)


__all__ = ["TableStore", "open_store", "validate_table_name"]
