"""Whole-table operations for migrations: rewrite (rows, schema, partitioning) and add_columns (metadata only)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType

from driftline.errors import ConcurrentRunError, TableError
from driftline.tables import embedded as embedded_mod
from tests.unit.tables.conftest import commit_for, embedded_only

OLD = StructType(
    [
        StructField("model_name", StringType(), True),
        StructField("run_date", DateType(), True),
        StructField("prediction", DoubleType(), True),
        StructField("status", StringType(), True),
    ]
)
NEW = StructType(  # model_name -> model (partition column), prediction -> score, status values, reordered
    [
        StructField("score", DoubleType(), True),
        StructField("status", StringType(), True),
        StructField("model", StringType(), True),
        StructField("run_date", DateType(), True),
    ]
)
D1, D2 = dt.date(2026, 1, 4), dt.date(2026, 1, 5)
OLD_ROWS = [("m1", D1, 0.5, "pass"), ("m1", D2, 0.25, "fail"), ("m2", D1, 1.5, "pass"), ("m2", D2, None, None)]
STATUS = {"pass": "ok", "fail": "alert"}
NEW_ROWS = [(p, STATUS.get(s), m, d) for m, d, p, s in OLD_ROWS]
MIGRATE = commit_for("contract-2", job="migrate")


def assert_same(actual, expected) -> None:
    """Rows, column order, types and nullability."""
    assert_df_equality(actual, expected, ignore_row_order=True)


def seeded(spark, store, name: str = "scores"):
    old = spark.createDataFrame(OLD_ROWS, OLD)
    store.replace_partitions(name, old, ["model_name", "run_date"], commit_for("init"))
    return old


def migrated(df):
    """The migration's frame, computed from the table itself (the old files must stay readable)."""
    status = F.when(F.col("status") == "pass", "ok").when(F.col("status") == "fail", "alert")
    return df.select(F.col("prediction").alias("score"), status.alias("status"), F.col("model_name").alias("model"),
                     "run_date")


def stage_folders(store, name: str) -> list[str]:
    return sorted(p.name for p in Path(store.location(name)).glob("driftline_write=*"))


def add_paths(store, name: str, version: int | None = None) -> list[str]:
    table = DeltaTable(store.location(name), version=version)
    return sorted(pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist())


# ----------------------------------------------------------------------------- rewrite
def test_rewrite_renames_partition_and_data_columns_in_one_commit(spark, store):
    old = seeded(spark, store)
    before = store.version("scores")
    result = store.rewrite("scores", migrated(store.read("scores")), ["model", "run_date"], MIGRATE)

    assert (result.version, result.rows, result.replaced, result.skipped) == (before + 1, 4, True, False)
    assert store.version("scores") == before + 1
    expected = spark.createDataFrame(NEW_ROWS, NEW)
    assert_same(store.read("scores"), expected)
    assert store.schema("scores") == NEW
    assert_same(store.read("scores", partitions={"model": ["m2"]}), spark.createDataFrame(NEW_ROWS[2:], NEW))

    # Independent reader: delta-rs sees the new partitioning, schema and rows.
    table = DeltaTable(store.location("scores"))
    assert table.metadata().partition_columns == ["model", "run_date"]
    assert [f.name for f in table.schema().fields] == ["score", "status", "model", "run_date"]
    got = table.to_pandas().sort_values(["model", "run_date"])
    assert list(got["model"]) == ["m1", "m1", "m2", "m2"]
    assert list(got["status"]) == ["ok", "alert", "ok", None]
    assert list(got["score"].fillna(-1)) == [0.5, 0.25, 1.5, -1]
    assert table.transaction_version("driftline/migrate/scores/contract-2") == 1

    # Time travel: the old version keeps its rows, schema and partitioning, also after orphan cleanup.
    assert_same(store.read("scores", version=before), old)
    assert DeltaTable(store.location("scores"), version=before).metadata().partition_columns == ["model_name",
                                                                                                 "run_date"]
    assert store.cleanup_orphans("scores", retention_hours=0) == []
    assert_same(store.read("scores", version=before), old)

    newest = store.history("scores")[0]
    assert (newest["version"], newest["job"], newest["date"]) == (before + 1, "migrate", "contract-2")
    assert (newest["idempotency_key"], newest["txn_version"]) == ("driftline/migrate/scores/contract-2", 1)
    if store.backend == "embedded":  # delta-spark records its overwrite as a WRITE, its files in no staging folder
        assert newest["operation"] == "CREATE OR REPLACE TABLE"
        assert stage_folders(store, "scores") and len(stage_folders(store, "scores")) == 2  # init + rewrite
    assert store.commits[-1] == result


def test_rewrite_makes_every_column_nullable_and_can_unpartition(spark, store):
    seeded(spark, store)
    strict = StructType([StructField("model", StringType(), False), StructField("n", LongType(), False)])
    df = spark.createDataFrame([("m1", 1), ("m2", 2)], strict)
    store.rewrite("scores", df, [], MIGRATE)
    nullable = StructType([StructField("model", StringType(), True), StructField("n", LongType(), True)])
    assert store.schema("scores") == nullable
    assert DeltaTable(store.location("scores")).metadata().partition_columns == []
    assert_same(store.read("scores"), spark.createDataFrame([("m1", 1), ("m2", 2)], nullable))
    # A normal full replace of the now unpartitioned table.
    store.replace_partitions("scores", spark.createDataFrame([("m3", 3)], nullable), [], commit_for("k"))
    assert_same(store.read("scores"), spark.createDataFrame([("m3", 3)], nullable))


def test_rewrite_rerun_with_the_same_key_replaces_again_without_duplicates(spark, store):
    seeded(spark, store)
    df = spark.createDataFrame(NEW_ROWS, NEW)  # what the first run wrote, as a fixed frame
    first = store.rewrite("scores", df, ["model", "run_date"], MIGRATE)
    again = store.rewrite("scores", df, ["model", "run_date"], commit_for("contract-2", "run-2", job="migrate"))
    assert (again.version, again.replaced, again.skipped) == (first.version + 1, True, False)
    assert_same(store.read("scores"), df)
    assert store.read("scores").count() == 4
    assert DeltaTable(store.location("scores")).transaction_version("driftline/migrate/scores/contract-2") == 2
    assert len(add_paths(store, "scores")) == len(add_paths(store, "scores", first.version))


def test_rewrite_refuses_a_concurrent_run_of_the_same_key(spark, store, monkeypatch):
    seeded(spark, store)
    real = type(store._backend).stage
    other = {"done": False}
    theirs = spark.createDataFrame([(9.0, "ok", "m9", D1)], NEW)

    def interleave(self, *args, **kwargs):
        if not other["done"]:  # another run of (migrate, scores, contract-2) commits after our snapshot
            other["done"] = True
            store.rewrite("scores", theirs, ["model", "run_date"], commit_for("contract-2", "run-x", job="migrate"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(store._backend), "stage", interleave)
    mine = spark.createDataFrame(NEW_ROWS, NEW)
    with pytest.raises(ConcurrentRunError, match=r"another run committed driftline/migrate/scores/contract-2"):
        store.rewrite("scores", mine, ["model", "run_date"], commit_for("contract-2", "run-y", job="migrate"))
    assert_same(store.read("scores"), theirs)
    assert store.version("scores") == 1
    if store.backend == "embedded":
        assert len(stage_folders(store, "scores")) == 2  # init + the other run; ours was removed


@embedded_only
def test_rewrite_failure_before_the_commit_leaves_the_table_unchanged(spark, store, monkeypatch):
    old = seeded(spark, store)
    folders = stage_folders(store, "scores")

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash in the commit step")

    monkeypatch.setattr(embedded_mod, "commit_actions", crash)
    with pytest.raises(TableError, match="write failed, table unchanged: RuntimeError: simulated crash"):
        store.rewrite("scores", migrated(store.read("scores")), ["model", "run_date"], MIGRATE)
    assert store.version("scores") == 0 and store.schema("scores") == OLD
    assert DeltaTable(store.location("scores")).metadata().partition_columns == ["model_name", "run_date"]
    assert_same(store.read("scores"), old)
    assert stage_folders(store, "scores") == folders  # the staged files were removed
    monkeypatch.undo()
    store.rewrite("scores", migrated(store.read("scores")), ["model", "run_date"], MIGRATE)
    assert_same(store.read("scores"), spark.createDataFrame(NEW_ROWS, NEW))


@embedded_only
def test_rewrite_racing_a_writer_never_keeps_its_files_under_the_new_schema(spark, store, monkeypatch):
    seeded(spark, store)
    real = embedded_mod.commit_actions
    raced = {"done": False}

    def racing(*args, **kwargs):
        if kwargs.get("replace_table") and not raced["done"]:  # another job appends between check and commit
            raced["done"] = True
            # delta-rs must not rebase the replace over commits it did not read (it would keep their files)
            assert args[6].max_commit_retries == 0
            late = spark.createDataFrame([("m3", D1, 7.0, "pass")], OLD)
            store.replace_partitions("scores", late, ["model_name", "run_date"], commit_for("late", job="other"))
        return real(*args, **kwargs)

    monkeypatch.setattr(embedded_mod, "commit_actions", racing)
    store.rewrite("scores", spark.createDataFrame(NEW_ROWS, NEW), ["model", "run_date"], MIGRATE)
    assert raced["done"]
    assert_same(store.read("scores"), spark.createDataFrame(NEW_ROWS, NEW))
    table = DeltaTable(store.location("scores"))
    assert all("model=" in p and "model_name=" not in p for p in add_paths(store, "scores"))
    assert table.version() == 2 and table.to_pandas().shape == (4, 4)


def test_rewrite_refusals_leave_the_table_unchanged(spark, store):
    seeded(spark, store)
    df = spark.createDataFrame(NEW_ROWS, NEW)
    with pytest.raises(TableError, match=r"table absent: rewrite needs an existing table"):
        store.rewrite("absent", df, ["model"], MIGRATE)
    assert not store.exists("absent")
    with pytest.raises(TableError, match=r"partition column 'model_name' not in columns"):
        store.rewrite("scores", df, ["model_name"], MIGRATE)
    with pytest.raises(TableError, match=r"columns 'score' and 'Score' differ only in case"):
        store.rewrite("scores", df.select("*", F.lit(1).alias("Score")), ["model"], MIGRATE)
    assert store.version("scores") == 0 and store.schema("scores") == OLD
    if store.backend == "embedded":
        assert len(stage_folders(store, "scores")) == 1


def test_replace_partitions_after_a_rewrite_uses_the_new_partitioning(spark, store):
    seeded(spark, store)
    store.rewrite("scores", migrated(store.read("scores")), ["model", "run_date"], MIGRATE)
    day2 = spark.createDataFrame([(2.0, "ok", "m1", D2), (3.0, None, "m3", D2)], NEW)
    result = store.replace_partitions("scores", day2, ["model", "run_date"], commit_for(D2.isoformat()))
    assert result.replaced  # (m1, D2) existed
    expected = [r for r in NEW_ROWS if (r[2], r[3]) != ("m1", D2)] + [(2.0, "ok", "m1", D2), (3.0, None, "m3", D2)]
    assert_same(store.read("scores"), spark.createDataFrame(expected, NEW))
    with pytest.raises(TableError, match="partition columns differ"):
        store.replace_partitions("scores", spark.createDataFrame(OLD_ROWS, OLD), ["model_name", "run_date"],
                                 commit_for("x"))


# ----------------------------------------------------------------------------- add_columns
CODE_VERSION = StructField("code_version", StringType(), True)


def test_add_columns_is_metadata_only_and_old_rows_read_null(spark, store):
    old = seeded(spark, store)
    files_before = add_paths(store, "scores")
    on_disk = sorted(Path(store.location("scores")).rglob("*.parquet"))
    result = store.add_columns("scores", StructType([CODE_VERSION]), MIGRATE)

    assert (result.version, result.rows, result.files, result.skipped) == (1, 0, 0, False)
    assert store.schema("scores") == StructType([*OLD.fields, CODE_VERSION])
    assert add_paths(store, "scores") == files_before  # no data file written or removed
    assert sorted(Path(store.location("scores")).rglob("*.parquet")) == on_disk
    assert_same(store.read("scores"), old.withColumn("code_version", F.lit(None).cast("string")))
    assert_same(store.read("scores", version=0), old)
    table = DeltaTable(store.location("scores"))
    # delta-spark's ALTER TABLE records no app transaction (NativeBackend.add_columns): the metadata only
    want_txn = 1 if store.backend == "embedded" else None
    assert table.transaction_version("driftline/migrate/scores/contract-2") == want_txn
    assert table.to_pandas()["code_version"].isna().all()
    newest = store.history("scores")[0]
    assert (newest["job"], newest["idempotency_key"], newest["txn_version"]) == (
        "migrate", "driftline/migrate/scores/contract-2", 1)

    # Later writes carry the new column (matched by name); leaving it out is refused.
    day = spark.createDataFrame([("m1", D1, 9.0, "pass", "v2")], store.schema("scores"))
    store.replace_partitions("scores", day, ["model_name", "run_date"], commit_for(D1.isoformat()))
    got = store.read("scores", partitions={"model_name": ["m1"], "run_date": [D1]})
    assert [tuple(r) for r in got.collect()] == [("m1", D1, 9.0, "pass", "v2")]
    assert store.read("scores").filter("code_version IS NULL").count() == 3
    with pytest.raises(TableError, match=r"columns missing from the write: \['code_version'\]"):
        store.replace_partitions("scores", spark.createDataFrame(OLD_ROWS, OLD), ["model_name", "run_date"],
                                 commit_for("y"))


def test_add_columns_refusals_are_one_line_and_change_nothing(spark, store):
    seeded(spark, store)
    cases = [
        ([StructField("Prediction", DoubleType(), True)], r"column 'Prediction' exists already \(as 'prediction'\)"),
        ([StructField("extra", LongType(), False)], r"new column 'extra' is NOT NULL; expected a nullable column"),
        ([CODE_VERSION, StructField("CODE_VERSION", StringType(), True)], "differ only in case"),
        ([], "needs at least one column"),
        ([StructField("a b", StringType(), True)], "column name 'a b'"),
    ]
    for fields, message in cases:
        with pytest.raises(TableError, match=message) as info:
            store.add_columns("scores", fields, MIGRATE)
        assert "\n" not in str(info.value)
    with pytest.raises(TableError, match="add_columns needs an existing table"):
        store.add_columns("absent", [CODE_VERSION], MIGRATE)
    assert store.version("scores") == 0 and store.schema("scores") == OLD
    store.add_columns("scores", [CODE_VERSION], MIGRATE)
    with pytest.raises(TableError, match="exists already"):  # a rerun once the column is there
        store.add_columns("scores", [CODE_VERSION], commit_for("contract-2", "run-2", job="migrate"))
    assert store.version("scores") == 1


@embedded_only
def test_add_columns_failure_and_concurrent_run(spark, store, monkeypatch):
    seeded(spark, store)

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(embedded_mod, "alter_columns", crash)
    with pytest.raises(TableError, match="add_columns failed, table unchanged: OSError: .*No space left"):
        store.add_columns("scores", [CODE_VERSION], MIGRATE)
    assert store.version("scores") == 0 and store.schema("scores") == OLD

    real = embedded_mod.alter.alter_columns

    def other_run_first(table, fields, props):  # another run of the same key commits after our snapshot
        other = spark.createDataFrame([OLD_ROWS[0]], OLD)
        store.replace_partitions("scores", other, ["model_name", "run_date"], commit_for("contract-2", job="migrate"))
        return real(table, fields, props)  # on the stale snapshot: refused by delta-rs, then by the retry

    monkeypatch.setattr(embedded_mod, "alter_columns", other_run_first)
    with pytest.raises(ConcurrentRunError, match="another run committed driftline/migrate/scores/contract-2"):
        store.add_columns("scores", [CODE_VERSION], commit_for("contract-2", "run-y", job="migrate"))
    assert store.version("scores") == 1 and store.schema("scores") == OLD
