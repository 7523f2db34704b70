"""The write contract both backends share, decided before any row is staged (R1, R2, R4).

`plan_write` checks the write against the table's latest snapshot (partition columns, schema
merge) and fixes the app transaction: id ``driftline/<job>/<table>/<key>``, version previous+1.
`resolve_targets` turns the staged rows' partition values into the partitions to replace, and
`WritePlan.refuse_if_moved` is the idempotency check at commit time: if the app transaction moved
since the snapshot, another run of the same (job, table, key) committed and this one must not.

Two whole-table operations plan the same way: `plan_rewrite` (every row replaced, the schema and
the partitioning become the DataFrame's) and `plan_add_columns` (a metadata-only commit appending
new nullable columns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pyspark.sql.types import StructField, StructType

from driftline.errors import ConcurrentRunError, TableError
from driftline.tables import schema as policy
from driftline.tables.backend import PartitionKey, Snapshot
from driftline.tables.commit import CommitInfo

# replace/append: rows of partitions; rewrite: the whole table (rows, schema, partitioning);
# add_columns: metadata only (new nullable columns appended to the schema).
Mode = Literal["replace", "append", "rewrite", "add_columns"]
# Characters Delta refuses in column names of tables without column mapping.
INVALID_NAME_CHARS = " ,;{}()\n\t="


@dataclass(frozen=True)
class WritePlan:
    """One write, checked against the snapshot it started on; backends stage and commit exactly this."""

    table: str
    mode: Mode
    commit: CommitInfo
    app_id: str
    partition_by: tuple[str, ...]
    write_schema: StructType  # the DataFrame's
    schema: StructType  # to commit: the table's own plus allowed new nullable columns (all nullable if new);
    # rewrite: the DataFrame's, all nullable; add_columns: the table's plus ``write_schema`` (the new columns)
    allow_new_columns: bool
    existed: bool
    read_txn: int | None  # the app transaction's version in that snapshot
    explicit: tuple[PartitionKey, ...] | None  # ``partitions=`` canonicalized; None: the rows' own
    adds_columns: bool

    @property
    def txn_version(self) -> int:
        """The app transaction version this write commits: previous+1 (1 for a key's first write)."""
        return (self.read_txn or 0) + 1

    @property
    def already_appended(self) -> bool:
        """An append whose key already committed: skipped (one key per batch)."""
        return self.mode == "append" and self.read_txn is not None

    def user_metadata(self, write_id: str) -> str:
        return self.commit.user_metadata(self.table, self.txn_version, write_id)

    def schema_on(self, snapshot: Snapshot) -> StructType:
        """Re-check the write against a newer snapshot (a commit retry): same partitioning, mergeable schema.

        A rewrite replaces the table whatever its schema now; added columns must still be new.
        """
        if self.mode == "rewrite":
            return self.schema
        if self.mode == "add_columns":
            return added_schema(self.table, snapshot.schema, self.write_schema)
        return _checked_schema(self.table, snapshot, self.partition_by, self.write_schema, self.allow_new_columns)

    def refuse_if_moved(self, now_txn: int | None) -> None:
        """`ConcurrentRunError` when another run of this (job, table, key) committed since the snapshot (R4)."""
        if (now_txn or 0) != (self.read_txn or 0):
            raise ConcurrentRunError(
                f"table {self.table}: another run committed {self.app_id} while this one was writing "
                f"(txn version {self.read_txn} -> {now_txn}); this run committed nothing"
            )


def plan_write(
    table: str,
    write_schema: StructType,
    partition_by: Sequence[str],
    commit: CommitInfo,
    partitions: Sequence[Mapping[str, Any]] | None,
    mode: Mode,
    snapshot: Snapshot | None,
    allow_new_columns: bool,
) -> WritePlan:
    """The checked `WritePlan` of a write starting on ``snapshot`` (None: the table does not exist yet)."""
    app_id = commit.app_id(table)
    policy.check_partition_columns(table, write_schema, partition_by)
    if snapshot is None:
        target = policy.as_nullable(write_schema)
    else:
        target = _checked_schema(table, snapshot, partition_by, write_schema, allow_new_columns)
    explicit = None
    if partitions is not None:
        explicit = tuple(policy.normalize_partitions(table, target, partition_by, partitions))
    return WritePlan(
        table=table,
        mode=mode,
        commit=commit,
        app_id=app_id,
        partition_by=tuple(partition_by),
        write_schema=write_schema,
        schema=target,
        allow_new_columns=allow_new_columns,
        existed=snapshot is not None,
        read_txn=snapshot.app_txn if snapshot is not None else None,
        explicit=explicit,
        adds_columns=snapshot is not None and len(target.fields) > len(snapshot.schema.fields),
    )


def plan_rewrite(
    table: str, write_schema: StructType, partition_by: Sequence[str], commit: CommitInfo, snapshot: Snapshot
) -> WritePlan:
    """The `WritePlan` of a whole-table rewrite of the existing table whose latest version is ``snapshot``.

    Nothing is compared with the table's schema or partitioning: both become the DataFrame's
    (top-level fields nullable) and ``partition_by``. Column names must be distinct ignoring case
    and acceptable to Delta; partition columns are checked as for any write.
    """
    app_id = commit.app_id(table)
    check_column_names(table, write_schema.fields)
    policy.check_partition_columns(table, write_schema, partition_by)
    return WritePlan(
        table=table,
        mode="rewrite",
        commit=commit,
        app_id=app_id,
        partition_by=tuple(partition_by),
        write_schema=write_schema,
        schema=policy.as_nullable(write_schema),
        allow_new_columns=False,
        existed=True,
        read_txn=snapshot.app_txn,
        explicit=None,
        adds_columns=False,
    )


def plan_add_columns(table: str, fields: Iterable[StructField], commit: CommitInfo, snapshot: Snapshot) -> WritePlan:
    """The `WritePlan` of a metadata-only commit appending ``fields`` to the table's schema (see `added_schema`)."""
    app_id = commit.app_id(table)
    new = list(fields)
    for field in new:
        if not isinstance(field, StructField):
            raise TableError(f"table {table}: add_columns takes StructFields, found {type(field).__name__}")
    write_schema = StructType(new)
    return WritePlan(
        table=table,
        mode="add_columns",
        commit=commit,
        app_id=app_id,
        partition_by=snapshot.partition_by,
        write_schema=write_schema,
        schema=added_schema(table, snapshot.schema, write_schema),
        allow_new_columns=True,
        existed=True,
        read_txn=snapshot.app_txn,
        explicit=None,
        adds_columns=True,
    )


def added_schema(table: str, current: StructType, new: StructType) -> StructType:
    """``current`` with the ``new`` columns appended; each must be nullable (the rows already in the
    table read null) and its name new, compared ignoring case as Delta does. Never made nullable silently."""
    if not new.fields:
        raise TableError(f"table {table}: add_columns needs at least one column, found none")
    check_column_names(table, new.fields)
    have = {f.name.lower(): f.name for f in current.fields}
    for field in new.fields:
        if field.name.lower() in have:
            raise TableError(
                f"table {table}: column {field.name!r} exists already (as {have[field.name.lower()]!r}); "
                "add_columns adds new columns only"
            )
        if not field.nullable:
            raise TableError(
                f"table {table}: new column {field.name!r} is NOT NULL; expected a nullable column "
                "(the rows already in the table read null)"
            )
    return StructType(list(current.fields) + list(new.fields))


def check_column_names(table: str, fields: Sequence[StructField]) -> None:
    """Top-level column names: non-empty, without characters Delta refuses, distinct ignoring case."""
    seen: dict[str, str] = {}
    for field in fields:
        name = field.name
        if not isinstance(name, str) or not name or any(c in INVALID_NAME_CHARS for c in name):
            raise TableError(
                f"table {table}: column name {name!r} is empty or contains one of {INVALID_NAME_CHARS!r}"
            )
        if name.lower() in seen:
            raise TableError(f"table {table}: columns {seen[name.lower()]!r} and {name!r} differ only in case")
        seen[name.lower()] = name


def _checked_schema(
    table: str, snapshot: Snapshot, partition_by: Sequence[str], write_schema: StructType, allow_new_columns: bool
) -> StructType:
    policy.check_same_partitioning(table, snapshot.partition_by, partition_by)
    return policy.merge_write_schema(table, snapshot.schema, write_schema, allow_new_columns)


def resolve_targets(plan: WritePlan, present: Sequence[PartitionKey] | None) -> list[PartitionKey]:
    """The partitions a write replaces (for an append: the ones it adds to), given the staged rows'.

    Explicit ``partitions=`` are replaced even with zero rows, and rows outside them are an error;
    an unpartitioned replace replaces the whole table (``[()]``), also with zero rows.
    """
    found = sorted(set(present or ()), key=repr)
    if plan.explicit is not None:
        stray = sorted(set(found) - set(plan.explicit), key=repr)
        if stray:
            raise stray_rows_error(plan, stray)
        return list(plan.explicit)
    if plan.mode == "replace" and not plan.partition_by:
        return [()]
    return found  # append: the partitions added to; rewrite: the ones written (the whole table is replaced)


def stray_rows_error(plan: WritePlan, stray: Sequence[PartitionKey]) -> TableError:
    """Rows of partitions other than the explicit ``partitions=`` of a replace: nothing is written."""
    return TableError(
        f"table {plan.table}: rows for partitions {named(plan.partition_by, stray)} "
        f"outside the partitions being replaced {named(plan.partition_by, plan.explicit or ())}"
    )


def named(partition_by: Sequence[str], values: Sequence[PartitionKey]) -> list[dict[str, str | None]]:
    """Partition keys as ``{column: value}`` dicts, for messages."""
    return [dict(zip(partition_by, v, strict=True)) for v in values]
