"""The embedded write: Spark stages Parquet files inside the table, the driver commits them with delta-rs.

`stage` writes the rows into a fresh staging folder (never ``mode("overwrite")`` into the table
root: that deleted ``_delta_log``) and reads the footers; `EmbeddedWrite.commit` validates what
delta-rs would accept silently and makes one commit that adds those files and removes the replaced
partitions, with the plan's app transaction and metadata. Files stay where Spark wrote them, so a
crash before the commit leaves only files no version refers to.

A rewrite (plan mode ``rewrite``) is staged the same way, partitioned by the new columns; its one
commit is delta-rs's CREATE OR REPLACE TABLE (`create_table_with_add_actions`, mode overwrite):
new protocol and metaData (schema, partition columns; the table's configuration, name and
description kept), the staged files added, every file of the version it read removed. delta-rs's
overwrite write transaction cannot do this: it keeps the old partition columns. The old files stay
on disk for time travel; nothing goes through the driver but the footers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow.fs as pafs
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    Transaction,
    create_table_with_add_actions,
)
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from driftline.errors import ConcurrentRunError, TableError
from driftline.tables import schema as policy
from driftline.tables.backend import Committed, PartitionKey, error_line
from driftline.tables.commit import CommitInfo
from driftline.tables.embedded import deltalog
from driftline.tables.embedded.stats import StagedFile, check_not_null, staged_files
from driftline.tables.names import Location
from driftline.tables.preflight import WritePlan

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

class CommitFn(Protocol):
    """`commit_actions`' signature: the package passes its own attribute, the fault-injection point of tests."""

    def __call__(
        self,
        table: DeltaTable | None,
        loc: Location,
        actions: list[Any],
        partition_by: list[str],
        filters: list[tuple[str, str, Any]] | None,
        schema: StructType,
        props: CommitProperties,
        *,
        replace_table: bool = False,
    ) -> None: ...


def commit_actions(
    table: DeltaTable | None,
    loc: Location,
    actions: list[Any],
    partition_by: list[str],
    filters: list[tuple[str, str, Any]] | None,
    schema: StructType,
    props: CommitProperties,
    *,
    replace_table: bool = False,
) -> None:
    """The one delta-rs commit call.

    ``filters`` set (even empty: the whole unpartitioned table) makes it an overwrite of what they
    select; ``None`` appends the actions (which may carry explicit removes). ``replace_table``
    replaces the existing ``table`` itself: ``schema`` and ``partition_by`` become its own, the
    ``actions`` (adds only) its files; delta-rs removes every file of the version it loads.
    """
    delta_schema = Schema.from_json(policy.to_delta_json(schema))
    if replace_table and table is not None:
        meta = table.metadata()
        create_table_with_add_actions(
            loc.uri,
            delta_schema,
            actions,
            mode="overwrite",
            partition_by=partition_by or None,
            name=meta.name,
            description=meta.description,
            configuration=meta.configuration,
            commit_properties=props,
        )
        return
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


def create(loc: Location, schema: StructType, partition_by: Sequence[str], commit: CommitInfo | None) -> bool:
    """Create an empty table; False when a concurrent creator made it first."""
    props = None
    if commit is not None:
        props = CommitProperties(custom_metadata={"userMetadata": commit.user_metadata(loc.name, 0, "create")})
    try:
        create_table_with_add_actions(
            loc.uri,
            Schema.from_json(policy.to_delta_json(schema)),
            [],
            mode="error",
            partition_by=list(partition_by) or None,
            commit_properties=props,
        )
        return True
    except DeltaError as exc:
        if deltalog.load(loc) is None:
            raise TableError(f"table {loc.name}: create failed: {error_line(exc)}") from None
        return False


def stage(
    loc: Location, df: DataFrame, plan: WritePlan, stage_name: str, commit_fn: CommitFn, retries: int
) -> EmbeddedWrite:
    """Write ``df`` as Parquet into ``<table>/<stage_name>/`` partitioned like the table, read the footers.

    On any failure the staging folder is removed before the error propagates.
    """
    partition_by = list(plan.partition_by)
    data_cols = [f.name for f in plan.schema.fields if f.name not in partition_by and f.name in df.columns]
    try:
        (
            df.select(*[F.col(f"`{c}`") for c in data_cols + partition_by])
            .write.mode("error")  # = "errorifexists"; the Spark Connect client accepts only this name
            .partitionBy(*partition_by)
            .parquet(loc.child(stage_name))
        )
        files = staged_files(loc, stage_name, plan.partition_by, plan.schema)
    except BaseException:
        drop_stage(loc, stage_name)
        raise
    return EmbeddedWrite(loc, plan, stage_name, files, commit_fn, retries)


@dataclass
class EmbeddedWrite:
    """Staged Parquet files of one write (a `StagedWrite`), committed by one delta-rs commit."""

    loc: Location
    plan: WritePlan
    stage: str  # the staging folder, also the write id in the commit's metadata
    files: list[StagedFile]
    commit_fn: CommitFn
    retries: int
    landed: bool = field(default=False)

    @property
    def partitions(self) -> list[PartitionKey]:
        return sorted({f.partition for f in self.files}, key=repr)

    def commit(self, targets: Sequence[PartitionKey]) -> Committed:
        check_not_null(self.plan.table, self.plan.schema, self.files)
        replaced = self._commit_with_retries(list(targets))
        self.landed = True
        return self._committed(replaced)

    def recover(self) -> Committed | None:
        if self.landed or self._in_log():
            self.landed = True
            return self._committed(True)
        return None

    def discard(self) -> None:
        if not self.landed:  # a commit that landed needs its files, whatever went wrong after it
            drop_stage(self.loc, self.stage)

    def _committed(self, replaced: bool) -> Committed:
        version = deltalog.version_of(self.loc, self.stage)
        return Committed(version, replaced, sum(f.rows for f in self.files), len(self.files))

    def _in_log(self) -> bool:
        """After an unexpected error: did our commit land (then the staged files must stay)?"""
        return deltalog.landed(self.loc, self.plan.app_id, self.plan.txn_version, self.stage)

    def _commit_with_retries(self, targets: list[PartitionKey]) -> bool:
        """Commit on the newest snapshot, retrying on conflicts (files are written already).

        Returns whether existing files were replaced.
        """
        loc, plan = self.loc, self.plan
        existed = plan.existed
        last_error = ""
        for attempt in range(self.retries + 1):
            table = deltalog.load(loc)
            if table is None:
                if existed:
                    raise TableError(f"table {loc.name} disappeared during the write")
                partition_by = list(plan.partition_by)
                adds = [_add_action(f, partition_by) for f in self.files]
                try:
                    self.commit_fn(
                        None, loc, adds, partition_by, None, policy.as_nullable(plan.write_schema), self._props()
                    )
                    return False
                except DeltaError as exc:
                    if deltalog.load(loc) is None:
                        raise
                    last_error = error_line(exc)  # a concurrent creator won: commit onto its table
                    existed = True
                    continue
            latest = deltalog.snapshot(loc, table, plan.app_id)
            # The idempotency check delta-rs does not do: another run of this (job, table, key)?
            plan.refuse_if_moved(latest.app_txn)
            try:
                return self._commit_on(table, plan.schema_on(latest), targets)
            except CommitFailedError as exc:
                last_error = error_line(exc)
                log.info("table %s: commit attempt %d conflicted (%s), retrying", loc.name, attempt + 1, last_error)
                time.sleep(min(0.2 * (attempt + 1), 1.0))
        raise ConcurrentRunError(
            f"table {loc.name}: commit failed {self.retries + 1} times because other writers "
            f"kept committing ({last_error}); this run committed nothing"
        )

    def _props(self, rebase: bool = True) -> CommitProperties:
        """Our metadata and app transaction; ``rebase=False``: delta-rs commits exactly on the version it
        read or fails (`CommitFailedError`), never rebasing onto commits made meanwhile."""
        return CommitProperties(
            custom_metadata={"userMetadata": self.plan.user_metadata(self.stage)},
            app_transactions=[Transaction(self.plan.app_id, self.plan.txn_version)],
            max_commit_retries=None if rebase else 0,
        )

    def _commit_on(self, table: DeltaTable, schema: StructType, targets: list[PartitionKey]) -> bool:
        """One commit attempt on the existing table's latest snapshot; whether existing files were replaced."""
        loc, plan = self.loc, self.plan
        partition_by = list(plan.partition_by)
        actions: list[AddAction | RemoveAction] = [_add_action(f, partition_by) for f in self.files]
        if plan.mode == "rewrite":
            # delta-rs removes the files of the version it loads itself, so that version must be the
            # one it commits on: rebased over a concurrent commit, the other writer's files would stay
            # under the new schema (measured: 33 of 60 rewrites racing appends). Without rebase the
            # conflict fails here and the loop retries on a fresh snapshot.
            replaced = bool(table.file_uris())
            self.commit_fn(table, loc, actions, partition_by, None, schema, self._props(False), replace_table=True)
            return replaced
        filters = None
        replaced = False
        if plan.mode == "replace":
            existing = _files_in(table, partition_by, set(targets))
            replaced = bool(existing)
            filters = _overwrite_filters(partition_by, targets)
            if filters is None:  # not expressible as delta-rs filters (nulls, several keys): remove files
                now = int(time.time() * 1000)
                actions += [RemoveAction(p, True, now, size, pv) for p, size, pv in existing]
        self.commit_fn(table, loc, actions, partition_by, filters, schema, self._props())
        return replaced


def drop_stage(loc: Location, stage_name: str) -> None:
    """Delete an uncommitted staging folder; nothing in the log refers to it."""
    try:
        fs, base = pafs.FileSystem.from_uri(loc.uri)
        if fs.get_file_info(f"{base}/{stage_name}").type == pafs.FileType.Directory:
            fs.delete_dir(f"{base}/{stage_name}")
    except Exception as exc:  # noqa: BLE001 - cleanup_orphans removes it later
        log.warning("table %s: could not delete staging folder %s: %s", loc.name, stage_name, error_line(exc))


def _add_action(f: StagedFile, partition_by: list[str]) -> AddAction:
    return AddAction(
        f.rel_path,
        f.size,
        dict(zip(partition_by, f.partition, strict=True)),
        f.mtime_ms,
        True,
        json.dumps(f.stats, separators=(",", ":")),
    )


def _files_in(
    table: DeltaTable, partition_by: list[str], targets: set[PartitionKey]
) -> list[tuple[str, int, dict[str, str | None]]]:
    """Active files of the replaced partitions: (raw path, size, partition values as strings)."""
    from urllib.parse import unquote

    out = []
    for a in deltalog.add_rows(table):
        values = tuple(policy.partition_value_text(a["partition." + c]) for c in partition_by)
        if values in targets:
            out.append((unquote(a["path"]), a["size_bytes"], dict(zip(partition_by, values, strict=True))))
    return out


def _overwrite_filters(partition_by: list[str], targets: list[PartitionKey]) -> list[tuple[str, str, Any]] | None:
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
