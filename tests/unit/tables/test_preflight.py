"""The write contract both backends share (pre-flight, targets, commit-time check) and the store's
stage → commit flow, against a stand-in backend: no Spark, no storage."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from pyspark.sql.types import DateType, IntegerType, LongType, StringType, StructField, StructType

from driftline.errors import ConcurrentRunError, TableError
from driftline.tables import StorageConfig, TableStore
from driftline.tables.backend import Committed, PartitionKey, Snapshot
from driftline.tables.preflight import WritePlan, plan_write, resolve_targets
from tests.unit.tables.conftest import commit_for

SCHEMA = StructType([StructField("id", LongType(), False), StructField("d", DateType(), True)])
NULLABLE = StructType([StructField("id", LongType(), True), StructField("d", DateType(), True)])
DAY = dt.date(2026, 1, 5)


def plan(mode: str = "replace", snapshot: Snapshot | None = None, partitions=None, schema=SCHEMA, **kw: Any) -> WritePlan:
    return plan_write(
        "t", schema, kw.get("partition_by", ["d"]), commit_for("2026-01-05"), partitions, mode, snapshot,
        kw.get("allow_new_columns", False),
    )


# ----------------------------------------------------------------------------- pre-flight
def test_a_new_table_gets_the_write_schema_nullable_and_txn_version_1():
    p = plan()
    assert (p.app_id, p.existed, p.read_txn, p.txn_version, p.explicit, p.adds_columns) == (
        "driftline/score/t/2026-01-05", False, None, 1, None, False
    )
    assert p.schema == NULLABLE and p.partition_by == ("d",) and not p.already_appended


def test_an_existing_table_continues_its_app_transaction_per_key():
    p = plan(snapshot=Snapshot(NULLABLE, ("d",), app_txn=2))
    assert (p.existed, p.read_txn, p.txn_version, p.schema) == (True, 2, 3, NULLABLE)
    assert plan("append", Snapshot(NULLABLE, ("d",), app_txn=2)).already_appended
    assert not plan("append", Snapshot(NULLABLE, ("d",), app_txn=None)).already_appended
    p.refuse_if_moved(2)
    with pytest.raises(ConcurrentRunError, match=r"another run committed driftline/score/t/2026-01-05 while this one "
                                                 r"was writing \(txn version 2 -> 3\); this run committed nothing"):
        p.refuse_if_moved(3)
    with pytest.raises(ConcurrentRunError):
        plan().refuse_if_moved(1)  # the key's first write, and another run's first write landed meanwhile


def test_the_write_is_checked_against_the_snapshot():
    table = Snapshot(NULLABLE, ("d",), None)
    retyped = StructType([StructField("id", StringType()), StructField("d", DateType())])
    with pytest.raises(TableError, match=r"column 'id' type change refused: expected bigint, found string"):
        plan(snapshot=table, schema=retyped)
    with pytest.raises(TableError, match=r"partition columns differ: table has \['d'\], write has \[\]"):
        plan(snapshot=table, partition_by=[])
    with pytest.raises(TableError, match=r"partition column 'x' not in columns"):
        plan(partition_by=["x"])
    wider = StructType([*SCHEMA.fields, StructField("extra", IntegerType(), False)])
    with pytest.raises(TableError, match=r"new columns \['extra'\] refused"):
        plan(snapshot=table, schema=wider)
    evolving = plan(snapshot=table, schema=wider, allow_new_columns=True)
    assert evolving.adds_columns and evolving.schema == StructType([*NULLABLE.fields, StructField("extra", IntegerType())])
    assert evolving.schema_on(Snapshot(evolving.schema, ("d",), 1)) == evolving.schema


def test_explicit_partitions_are_canonical_strings():
    keyed = StructType([StructField("v", LongType()), StructField("k", IntegerType())])
    assert plan(partitions=[{"d": DAY}, {"d": "2026-01-05"}]).explicit == (("2026-01-05",),)
    assert plan(partitions=[{"k": "05"}], schema=keyed, partition_by=["k"]).explicit == (("5",),)
    with pytest.raises(TableError, match="must name exactly the partition columns"):
        plan(partitions=[{"x": 1}])


def test_targets_from_the_rows_or_the_explicit_partitions():
    assert resolve_targets(plan(), [("2026-01-06",), ("2026-01-05",)]) == [("2026-01-05",), ("2026-01-06",)]
    assert resolve_targets(plan("append"), None) == []
    assert resolve_targets(plan(partitions=[{"d": DAY}]), []) == [("2026-01-05",)]  # zero rows replace it
    assert resolve_targets(plan(partition_by=[]), []) == [()]  # unpartitioned: the whole table
    with pytest.raises(TableError, match=r"rows for partitions \[\{'d': '2026-01-06'\}\] outside the partitions "
                                         r"being replaced \[\{'d': '2026-01-05'\}\]"):
        resolve_targets(plan(partitions=[{"d": DAY}]), [("2026-01-05",), ("2026-01-06",)])


# ----------------------------------------------------------------------------- the store's flow
@dataclass
class FakeStaged:
    present: list[PartitionKey] | None
    fail: BaseException | None = None
    landed: Committed | None = None
    calls: list[str] = field(default_factory=list)
    targets: list[PartitionKey] | None = None

    @property
    def partitions(self) -> list[PartitionKey] | None:
        return self.present

    def commit(self, targets):
        self.calls.append("commit")
        self.targets = list(targets)
        if self.fail is not None:
            raise self.fail
        return Committed(7, True, 3, 1)

    def recover(self):
        self.calls.append("recover")
        return self.landed

    def discard(self):
        self.calls.append("discard")


@dataclass
class FakeBackend:
    snap: Snapshot | None
    staged: FakeStaged
    plans: list[WritePlan] = field(default_factory=list)
    name: str = "fake"

    def snapshot(self, loc, app_id=None):
        return self.snap

    def stage(self, loc, df, plan):
        self.plans.append(plan)
        return self.staged


def store_with(backend: FakeBackend, tmp_path) -> TableStore:
    return TableStore(None, StorageConfig(backend="embedded"), tmp_path, backend)  # type: ignore[arg-type]


ROWS = SimpleNamespace(schema=SCHEMA)  # the store reads only the DataFrame's schema; the backend stages it


def test_the_store_plans_once_and_commits_the_staged_partitions(tmp_path):
    backend = FakeBackend(Snapshot(NULLABLE, ("d",), 1), FakeStaged([("2026-01-05",)]))
    result = store_with(backend, tmp_path).replace_partitions("t", ROWS, ["d"], commit_for("2026-01-05"))
    assert (result.version, result.rows, result.files, result.replaced, result.skipped) == (7, 3, 1, True, False)
    [p] = backend.plans
    assert (p.txn_version, p.schema, backend.staged.targets, backend.staged.calls) == (
        2, NULLABLE, [("2026-01-05",)], ["commit"]
    )


def test_an_append_already_done_is_skipped_before_staging(tmp_path):
    backend = FakeBackend(Snapshot(NULLABLE, ("d",), 1), FakeStaged([("2026-01-05",)]))
    result = store_with(backend, tmp_path).append("t", ROWS, commit_for("2026-01-05"))
    assert (result.skipped, result.version, backend.plans) == (True, None, [])


def test_nothing_to_replace_discards_the_staged_rows(tmp_path):
    backend = FakeBackend(Snapshot(NULLABLE, ("d",), None), FakeStaged([]))
    result = store_with(backend, tmp_path).replace_partitions("t", ROWS, ["d"], commit_for("k"))
    assert (result.skipped, result.version, backend.staged.calls) == (True, None, ["discard"])


def test_a_failed_commit_is_reported_in_one_line_and_discarded(tmp_path):
    staged = FakeStaged([("2026-01-05",)], fail=OSError(28, "No space left on device"))
    store = store_with(FakeBackend(None, staged), tmp_path)
    with pytest.raises(TableError, match=r"^table t: write failed, table unchanged: OSError: \[Errno 28\] No space"):
        store.replace_partitions("t", ROWS, ["d"], commit_for("k"))
    assert staged.calls == ["commit", "recover", "discard"]


def test_a_commit_that_landed_despite_an_error_is_kept(tmp_path):
    staged = FakeStaged([("2026-01-05",)], fail=RuntimeError("reply lost"), landed=Committed(4, False, 2, 1))
    result = store_with(FakeBackend(None, staged), tmp_path).replace_partitions("t", ROWS, ["d"], commit_for("k"))
    assert (result.version, result.rows, staged.calls) == (4, 2, ["commit", "recover"])


def test_a_concurrent_run_error_is_not_recovered(tmp_path):
    staged = FakeStaged([("2026-01-05",)], fail=ConcurrentRunError("another run committed"))
    with pytest.raises(ConcurrentRunError):
        store_with(FakeBackend(None, staged), tmp_path).replace_partitions("t", ROWS, ["d"], commit_for("k"))
    assert staged.calls == ["commit", "discard"]
