"""The protocol between `TableStore` and a Delta backend, and the values they pass each other.

A write is two steps on the backend's side: ``stage`` makes the rows ready to commit (the embedded
backend writes the Parquet files; the native one prepares its DataFrame write) and reports which
partition values they hold; the returned `StagedWrite` then commits, recovers after an unexpected
error, or is discarded. Everything decided before the rows are staged (schema, partitioning, app
transaction, skipping an append already done) is the store's shared pre-flight (`preflight`).

The same two steps rewrite a whole table (a plan of mode ``rewrite``: one commit replaces every
file, the schema and the partition columns). ``add_columns`` is one metadata-only commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from driftline.tables.commit import CommitInfo
    from driftline.tables.names import Location
    from driftline.tables.preflight import WritePlan

# Partition values of one partition as Delta's canonical strings, in partition column order (None: null).
PartitionKey = tuple[str | None, ...]


@dataclass(frozen=True)
class Snapshot:
    """What the pre-flight needs from a table's latest version."""

    schema: StructType  # partition columns included
    partition_by: tuple[str, ...]
    app_txn: int | None  # last committed version of the app transaction asked for (None: never, or not asked)


@dataclass(frozen=True)
class Committed:
    """What one commit did: ``version`` is None only when it cannot be found in the recent history."""

    version: int | None
    replaced: bool
    rows: int
    files: int


class StagedWrite(Protocol):
    """Rows ready to commit under one `WritePlan`; exactly one of commit/recover/discard ends it."""

    @property
    def partitions(self) -> Sequence[PartitionKey] | None:
        """Partition values the staged rows hold (None when the backend did not need to find them)."""
        ...

    def commit(self, targets: Sequence[PartitionKey]) -> Committed:
        """Commit the rows, replacing ``targets`` (replace mode; ``[()]``: the whole unpartitioned table).

        A ``rewrite`` plan ignores ``targets``: its one commit removes every file of the latest version
        and sets the table's schema and partition columns to the plan's (older versions stay readable).
        Raises `ConcurrentRunError` when another run of the same app transaction committed first.
        """
        ...

    def recover(self) -> Committed | None:
        """After an unexpected error in `commit`: the outcome if the commit is in the log anyway."""
        ...

    def discard(self) -> None:
        """Remove whatever staging left behind (never raises; orphan cleanup catches the rest)."""
        ...


class DeltaBackend(Protocol):
    """One way of reading and committing Delta tables (``embedded``: delta-rs; ``native``: delta-spark)."""

    @property
    def name(self) -> str: ...

    def exists(self, loc: Location) -> bool: ...

    def snapshot(self, loc: Location, app_id: str | None = None) -> Snapshot | None:
        """The latest version's schema, partitioning and ``app_id``'s txn version; None when absent."""
        ...

    def schema(self, loc: Location) -> StructType:
        """The latest version's schema; `TableError` when the table does not exist."""
        ...

    def create(self, loc: Location, schema: StructType, partition_by: Sequence[str], commit: CommitInfo | None) -> bool:
        """Create an empty table; False when a concurrent creator made it first."""
        ...

    def stage(self, loc: Location, df: DataFrame, plan: WritePlan) -> StagedWrite:
        """Make ``df`` (columns in ``plan.schema`` order) ready to commit; leaves nothing behind on failure.

        ``plan.mode`` is replace, append or rewrite (then ``plan.schema`` and ``plan.partition_by``
        are the table's new ones).
        """
        ...

    def add_columns(self, loc: Location, plan: WritePlan) -> Committed:
        """One metadata-only commit appending ``plan.write_schema``'s (nullable, new) fields to the schema.

        No data file is written or removed: rows already in the table read null in the new columns.
        Carries the plan's commit metadata (and, where the backend can, its app transaction); raises
        `ConcurrentRunError` when another run of the same app transaction committed first. Returns
        the outcome even when an error follows a commit that landed.
        """
        ...

    def read(
        self,
        loc: Location,
        version: int | None,
        timestamp: dt.datetime | str | None,
        partitions: dict[str, list[Any]] | None,
    ) -> DataFrame: ...

    def version(self, loc: Location) -> int: ...

    def history(self, loc: Location) -> list[dict[str, Any]]: ...

    def cleanup_orphans(self, loc: Location, retention_hours: float, dry_run: bool) -> list[str]: ...


def error_line(exc: BaseException) -> str:
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
