"""Embedded backend: Spark Parquet files committed with delta-rs, read back through Spark."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from deltalake.transaction import CommitProperties, Transaction
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DecimalType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from driftline.errors import ConcurrentRunError, ConfigError, TableError
from driftline.tables import StorageConfig, open_store
from driftline.tables import embedded as embedded_mod
from driftline.tables.native import native_available
from tests.unit.tables.conftest import commit_for, embedded_only

SCHEMA = StructType(
    [
        StructField("id", LongType(), True),
        StructField("amount", DecimalType(12, 2), True),
        StructField("ts", TimestampType(), True),
        StructField("label", StringType(), True),
        StructField("d", DateType(), True),
    ]
)
D1, D2, D3 = dt.date(2026, 1, 4), dt.date(2026, 1, 5), dt.date(2026, 1, 6)
TS = dt.datetime(2026, 1, 5, 10, 11, 12, 123456)


def rows_for(day: dt.date, tag: str = "a", n: int = 3) -> list[tuple]:
    out = [(i, Decimal(f"{i}.25"), TS + dt.timedelta(microseconds=i), f"{tag}{i}", day) for i in range(n)]
    out.append((None, None, None, None, day))  # the null row
    return out


def frame(spark, rows, schema=SCHEMA):
    return spark.createDataFrame(rows, schema)


def assert_same(actual, expected) -> None:
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True, ignore_column_order=False)


# ----------------------------------------------------------------------------- round trips
SPECIAL = ["a b", "x:y%z=w+v#u?t[s]r{q}p,o", "é中文", "", None, "}", "*", "plain"]


def test_roundtrip_types_nulls_and_special_partition_values(spark, store, workspace):
    schema = StructType([*SCHEMA.fields[:4], StructField("p", StringType(), True)])
    rows = [(i, Decimal("-1.05"), TS, "v", p) for i, p in enumerate(SPECIAL)] + [(99, None, None, None, "plain")]
    df = frame(spark, rows, schema)
    result = store.replace_partitions("events", df, ["p"], commit_for("2026-01-05"))
    assert (result.version, result.rows, result.skipped) == (0, len(rows), False)

    # Spark and delta-spark store an empty partition value as null: that is the round trip.
    expected = frame(spark, [(i, a, t, v, None if p == "" else p) for i, a, t, v, p in rows], schema)
    assert_same(store.read("events"), expected)

    # Independent reader: delta-rs opens the same table and sees the same rows.
    table = DeltaTable(store.location("events"))
    got = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["id"])
    want = sorted(expected.collect(), key=lambda r: r["id"])
    assert [(g["id"], g["amount"], g["p"], g["label"]) for g in got] == [
        (w["id"], w["amount"], w["p"], w["label"]) for w in want
    ]
    assert got[0]["ts"] == TS.replace(tzinfo=dt.UTC)  # microseconds kept, UTC
    assert table.schema().to_json().count('"timestamp"') == 1
    assert table.protocol().min_reader_version == 1


@embedded_only
def test_log_is_valid_for_an_independent_reader(spark, store):
    store.replace_partitions("scores", frame(spark, rows_for(D1) + rows_for(D2)), ["d"], commit_for("init"))
    store.replace_partitions("scores", frame(spark, rows_for(D2, "b")), ["d"], commit_for(D2.isoformat()))
    table = DeltaTable(store.location("scores"))
    assert table.version() == 1
    adds = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    assert sorted({a["partition.d"] for a in adds}) == [D1, D2]
    assert sum(a["num_records"] for a in adds) == 8
    for add in adds:  # every file exists, no bookkeeping files, stats from the footers
        assert (Path(store.location("scores")) / add["path"].replace("%20", " ")).exists()
        assert add["path"].endswith(".parquet")
    for day in (D1, D2):  # statistics read from the footers, per partition
        files = [a for a in adds if a["partition.d"] == day]
        assert sum(a["null_count.id"] for a in files) == 1
        assert min(a["min.id"] for a in files if a["min.id"] is not None) == 0
        assert max(a["max.id"] for a in files if a["max.id"] is not None) == 2
        assert max(a["max.ts"] for a in files if a["max.ts"] is not None) >= TS.replace(tzinfo=dt.UTC)
    assert table.transaction_version(f"driftline/score/scores/{D2.isoformat()}") == 1
    assert table.transaction_version("driftline/score/scores/init") == 1
    assert table.metadata().partition_columns == ["d"]
    root = Path(store.location("scores"))
    assert not [p for p in root.rglob("*") if p.name.startswith(("_SUCCESS", ".")) or "_temporary" in p.parts]


def test_time_travel_by_version_and_timestamp_and_pruning(spark, store):
    first = frame(spark, rows_for(D1) + rows_for(D2))
    store.replace_partitions("t", first, ["d"], commit_for("init"))
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    store.replace_partitions("t", frame(spark, rows_for(D1, "new")), ["d"], commit_for(D1.isoformat()))

    assert_same(store.read("t", version=0), first)
    assert_same(store.read("t", timestamp=between), first)
    assert_same(store.read("t", timestamp=between.isoformat()), first)
    assert_same(store.read("t"), frame(spark, rows_for(D1, "new") + rows_for(D2)))
    assert_same(store.read("t", partitions={"d": [D2]}), frame(spark, rows_for(D2)))
    assert_same(store.read("t", partitions={"d": ["2026-01-04"]}, version=0), frame(spark, rows_for(D1)))
    assert store.read("t", partitions={"d": [D3]}).count() == 0
    with pytest.raises(TableError, match="no version as of"):
        store.read("t", timestamp="2000-01-01T00:00:00")
    with pytest.raises(TableError, match="not partition columns"):
        store.read("t", partitions={"id": [1]})


def test_history_carries_commit_metadata(spark, store):
    store.replace_partitions("h", frame(spark, rows_for(D1)), ["d"], commit_for("2026-01-04", run_id="r1"))
    store.replace_partitions("h", frame(spark, rows_for(D1)), ["d"], commit_for("2026-01-04", run_id="r2"))
    history = store.history("h")
    assert [h["version"] for h in history] == [1, 0]
    newest = history[0]
    assert newest["run_id"] == "r2" and newest["job"] == "score" and newest["date"] == "2026-01-04"
    assert (newest["code_version"], newest["config_hash"]) == ("abc123", "cfg1")
    assert newest["idempotency_key"] == "driftline/score/h/2026-01-04" and newest["txn_version"] == 2
    assert newest["timestamp"].tzinfo is not None and newest["operation"]
    assert store.version("h") == 1


# ----------------------------------------------------------------------------- idempotency
def test_r1_rerun_replaces_with_one_new_version(spark, store, caplog):
    df = frame(spark, rows_for(D1) + rows_for(D2))
    first = store.replace_partitions("r1", df, ["d"], commit_for("2026-01-05"))
    caplog.set_level("INFO", logger="driftline.tables")
    again = store.replace_partitions("r1", df, ["d"], commit_for("2026-01-05", run_id="run-2"))
    assert (first.version, first.replaced, again.version, again.replaced) == (0, False, 1, True)
    assert_same(store.read("r1"), df)
    assert "replaced" in caplog.text
    table = DeltaTable(store.location("r1"))
    assert table.version() == 1
    assert table.transaction_version("driftline/score/r1/2026-01-05") == 2
    assert len(pa.table(table.get_add_actions(flatten=True))) == len(
        pa.table(DeltaTable(store.location("r1"), version=0).get_add_actions(flatten=True))
    )


def test_r2_older_date_after_newer_is_written(spark, store):
    store.replace_partitions("r2", frame(spark, rows_for(D2)), ["d"], commit_for(D2.isoformat()))
    result = store.replace_partitions("r2", frame(spark, rows_for(D1)), ["d"], commit_for(D1.isoformat()))
    assert (result.version, result.skipped) == (1, False)
    assert_same(store.read("r2"), frame(spark, rows_for(D1) + rows_for(D2)))


def test_deltars_accepts_a_repeated_app_transaction_but_we_refuse_it(spark, store, monkeypatch):
    store.replace_partitions("dup", frame(spark, rows_for(D1)), ["d"], commit_for("k"))
    table = DeltaTable(store.location("dup"))
    # delta-rs alone: the same (app_id, version) committed a second time is accepted silently.
    props = CommitProperties(app_transactions=[Transaction("driftline/score/dup/k", 1)])
    table.create_write_transaction([], mode="append", schema=table.schema(), partition_by=["d"], commit_properties=props)
    assert DeltaTable(store.location("dup")).version() == 1

    # Ours: another run of the same key commits after this one read its snapshot -> refused.
    real = type(store._backend).stage  # either backend: the other run commits between snapshot and commit
    other = {"done": False}

    def interleave(self, *args, **kwargs):
        if not other["done"]:
            other["done"] = True
            store.replace_partitions("dup", frame(spark, rows_for(D1, "other")), ["d"], commit_for("k", "run-x"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(store._backend), "stage", interleave)
    with pytest.raises(ConcurrentRunError, match=r"another run committed driftline/score/dup/k"):
        store.replace_partitions("dup", frame(spark, rows_for(D1, "mine")), ["d"], commit_for("k", "run-y"))
    assert_same(store.read("dup"), frame(spark, rows_for(D1, "other")))  # no duplicates, one result
    assert store.version("dup") == 2
    assert not list(Path(store.location("dup")).glob("driftline_write=*/d=*/*mine*"))


def test_append_is_skipped_when_the_key_already_appended(spark, store):
    df = frame(spark, rows_for(D1))
    assert store.append("ap", df, commit_for("batch-1")).version == 0
    assert store.append("ap", df, commit_for("batch-2")).version == 1
    skipped = store.append("ap", df, commit_for("batch-1", run_id="rerun"))
    assert (skipped.skipped, skipped.version) == (True, None)
    assert store.read("ap").count() == 8 and store.version("ap") == 1


# ----------------------------------------------------------------------------- partitions
def test_explicit_partitions_replace_with_zero_rows_and_refuse_strays(spark, store):
    store.replace_partitions("ex", frame(spark, rows_for(D1) + rows_for(D2)), ["d"], commit_for("init"))
    empty = frame(spark, [])
    result = store.replace_partitions("ex", empty, ["d"], commit_for(D1.isoformat()), partitions=[{"d": D1}])
    assert (result.rows, result.replaced, result.version) == (0, True, 1)
    assert_same(store.read("ex"), frame(spark, rows_for(D2)))
    with pytest.raises(TableError, match="outside the partitions being replaced"):
        store.replace_partitions("ex", frame(spark, rows_for(D3)), ["d"], commit_for("x"), partitions=[{"d": D2}])
    assert store.version("ex") == 1
    assert not list(Path(store.location("ex")).glob("driftline_write=*/d=2026-01-06"))


def test_stray_rows_are_named_and_nothing_is_written_on_a_new_or_existing_table(spark, store):
    # the native backend finds strays in the write's own pass (no distinct before it); both backends say the same
    rows = frame(spark, rows_for(D1) + rows_for(D2) + rows_for(D3))
    expected = (r"table new: rows for partitions \[\{'d': '2026-01-04'\}, \{'d': '2026-01-06'\}\] "
                r"outside the partitions being replaced \[\{'d': '2026-01-05'\}\]$")
    with pytest.raises(TableError, match=expected):
        store.replace_partitions("new", rows, ["d"], commit_for("n"), partitions=[{"d": D2}])
    assert not store.exists("new")
    store.replace_partitions("old", frame(spark, rows_for(D1)), ["d"], commit_for("init"))
    with pytest.raises(TableError, match=expected.replace("table new", "table old")):
        store.replace_partitions("old", rows, ["d"], commit_for("o"), partitions=[{"d": D2}])
    assert store.version("old") == 0
    assert_same(store.read("old"), frame(spark, rows_for(D1)))
    # a null partition value is a partition like any other
    nulls = frame(spark, rows_for(None) + rows_for(D1))
    with pytest.raises(TableError, match=r"rows for partitions \[\{'d': '2026-01-04'\}\] outside .* \[\{'d': None\}\]$"):
        store.replace_partitions("old", nulls, ["d"], commit_for("n"), partitions=[{"d": None}])
    store.replace_partitions("old", frame(spark, rows_for(None)), ["d"], commit_for("n"), partitions=[{"d": None}])
    assert_same(store.read("old"), frame(spark, rows_for(D1) + rows_for(None)))


def test_null_and_multi_column_partitions_are_replaced(spark, store):
    schema = StructType(
        [StructField("v", LongType()), StructField("region", StringType()), StructField("k", IntegerType())]
    )
    store.replace_partitions(
        "mc", frame(spark, [(1, None, 1), (2, "eu", 1), (3, "eu", 2), (4, "us", 1)], schema), ["region", "k"],
        commit_for("init"),
    )
    # null key (not expressible as a delta-rs filter) and two keys at once: explicit remove actions
    new = frame(spark, [(10, None, 1), (20, "eu", 2), (21, "us", 1)], schema)
    result = store.replace_partitions("mc", new, ["region", "k"], commit_for("k2"))
    assert result.replaced
    assert_same(store.read("mc"), frame(spark, [(10, None, 1), (2, "eu", 1), (20, "eu", 2), (21, "us", 1)], schema))
    assert_same(
        store.read("mc", partitions={"region": [None, "us"]}),
        frame(spark, [(10, None, 1), (21, "us", 1)], schema),
    )
    with pytest.raises(TableError, match="partition columns differ"):
        store.replace_partitions("mc", new, ["k", "region"], commit_for("k3"))


# ----------------------------------------------------------------------------- schema policy
def test_type_change_is_refused_naming_column_and_types(spark, store):
    store.replace_partitions("sc", frame(spark, rows_for(D1)), ["d"], commit_for("a"))
    changed = frame(spark, rows_for(D1)).withColumn("id", F.col("id").cast("string"))
    with pytest.raises(TableError, match=r"column 'id' type change refused: expected bigint, found string"):
        store.replace_partitions("sc", changed, ["d"], commit_for("a"))
    assert store.version("sc") == 0


def test_new_column_only_when_configured(spark, store, workspace):
    store.replace_partitions("ev", frame(spark, rows_for(D1)), ["d"], commit_for("a"))
    wider = frame(spark, rows_for(D2)).withColumn("extra", F.lit(7))
    with pytest.raises(TableError, match=r"new columns \['extra'\] refused"):
        store.replace_partitions("ev", wider, ["d"], commit_for("b"))
    evolving = open_store(spark, StorageConfig(backend=store.backend, allow_new_columns=True), workspace)
    evolving.replace_partitions("ev", wider, ["d"], commit_for("b"))
    schema = evolving.schema("ev")
    assert schema["extra"].dataType == IntegerType() and schema["extra"].nullable
    got = evolving.read("ev")
    assert got.filter("d = DATE'2026-01-04' AND extra IS NOT NULL").count() == 0
    assert got.filter("d = DATE'2026-01-05' AND extra = 7").count() == 4
    with pytest.raises(TableError, match=r"columns missing from the write: \['extra'\]"):
        evolving.replace_partitions("ev", frame(spark, rows_for(D1)), ["d"], commit_for("a"))


def test_create_if_absent_then_write_and_not_null_checked(spark, store):
    schema = StructType([StructField("id", LongType(), False), StructField("d", DateType(), True)])
    store.create_if_absent("nn", schema, ["d"], commit_for("create"))
    store.create_if_absent("nn", schema, ["d"])  # idempotent
    assert store.exists("nn") and store.version("nn") == 0 and store.read("nn").count() == 0
    with pytest.raises(TableError, match="partition columns differ"):
        store.create_if_absent("nn", schema, [])
    ok = spark.createDataFrame([(1, D1)], schema)
    store.replace_partitions("nn", ok, ["d"], commit_for("a"))
    bad = spark.createDataFrame([(None, D2)], "id long, d date")
    with pytest.raises(TableError, match="NOT NULL column 'id' has 1 null values"):
        store.replace_partitions("nn", bad, ["d"], commit_for("b"))
    assert store.version("nn") == 1 and not store.schema("nn")["id"].nullable


@embedded_only
def test_tables_needing_deletion_vectors_are_refused(spark, store):
    from deltalake import Schema
    from deltalake.transaction import create_table_with_add_actions

    path = store.location("dv")
    schema = Schema.from_json(json.dumps(StructType([StructField("x", LongType())]).jsonValue()))
    create_table_with_add_actions(path, schema, [], configuration={"delta.enableDeletionVectors": "true"})
    if "deletionVectors" not in (DeltaTable(path).protocol().reader_features or []):
        pytest.skip("delta-rs did not enable the deletionVectors reader feature")
    with pytest.raises(TableError, match="deletionVectors"):
        store.read("dv")


# ----------------------------------------------------------------------------- names (R20)
@pytest.mark.parametrize(
    "bad", ["../x", "../../etc", "/abs/path", "file:/tmp/x", "s3://bucket/x", "", "1abc", "a-b", "a b", "a/b", None]
)
def test_r20_bad_table_names_are_rejected(spark, store, workspace, bad):
    with pytest.raises(TableError, match="invalid table name"):
        store.location(bad)
    with pytest.raises(TableError, match="invalid table name"):
        store.replace_partitions(bad, frame(spark, rows_for(D1)), ["d"], commit_for("a"))
    assert not workspace.exists() or not any(workspace.rglob("*.parquet"))


def test_location_uses_root_and_explicit_mapping(spark, tmp_path):
    cfg = StorageConfig(backend="embedded", root=str(tmp_path / "lake"), tables={"ext": str(tmp_path / "else/ext")})
    store = open_store(spark, cfg, tmp_path / "ws")
    assert store.location("scores") == str(tmp_path / "lake" / "scores")
    assert store.location("ext") == str(tmp_path / "else" / "ext")
    assert open_store(spark, StorageConfig(), tmp_path / "ws").location("t") == str(tmp_path / "ws" / "tables" / "t")
    # auto: $DRIFTLINE_STORAGE_BACKEND when set (the test session sets it)
    assert open_store(spark, StorageConfig(), tmp_path).backend == os.environ["DRIFTLINE_STORAGE_BACKEND"]


def test_auto_is_embedded_with_driftlines_own_jars_and_native_when_the_platform_brings_delta(
        spark, tmp_path, monkeypatch):
    monkeypatch.delenv("DRIFTLINE_STORAGE_BACKEND")
    assert open_store(spark, StorageConfig(), tmp_path).backend == "embedded"   # measured faster (bench_tables)
    if not native_available(spark):
        return
    assert spark.conf.get("spark.driftline.deltaJars") == "true"
    spark.conf.set("spark.driftline.deltaJars", "false")       # as if spark-submit --packages had added them
    try:
        assert open_store(spark, StorageConfig(), tmp_path).backend == "native"
    finally:
        spark.conf.set("spark.driftline.deltaJars", "true")
    monkeypatch.setenv("DRIFTLINE_STORAGE_BACKEND", "delta")
    with pytest.raises(ConfigError, match="DRIFTLINE_STORAGE_BACKEND: expected embedded or native, found 'delta'"):
        open_store(spark, StorageConfig(), tmp_path)


def test_relative_workspace_and_root_resolve_once_against_the_workspace(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = open_store(spark, StorageConfig(), Path(".driftline/demo"))
    assert default.location("t") == str(tmp_path / ".driftline" / "demo" / "tables" / "t")
    rooted = open_store(spark, StorageConfig(root="lake"), Path("ws"))
    assert rooted.location("t") == str(tmp_path / "ws" / "lake" / "t")


# ----------------------------------------------------------------------------- failures (R3, R22)
@embedded_only
def test_r3_failure_inside_commit_leaves_previous_version(spark, store, monkeypatch):
    before = frame(spark, rows_for(D1))
    store.replace_partitions("r3", before, ["d"], commit_for("a"))

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash in the commit step")

    monkeypatch.setattr(embedded_mod, "commit_actions", crash)
    with pytest.raises(TableError, match="write failed, table unchanged: RuntimeError: simulated crash"):
        store.replace_partitions("r3", frame(spark, rows_for(D1, "x")), ["d"], commit_for("a", "r2"))
    assert store.version("r3") == 0
    assert_same(store.read("r3"), before)
    assert len(list(Path(store.location("r3")).glob("driftline_write=*"))) == 1  # the failed staging folder was removed
    monkeypatch.undo()
    store.replace_partitions("r3", frame(spark, rows_for(D1, "x")), ["d"], commit_for("a", "r3"))
    assert_same(store.read("r3"), frame(spark, rows_for(D1, "x")))


@embedded_only
def test_r22_storage_error_during_write(spark, store, monkeypatch):
    before = frame(spark, rows_for(D1))
    store.replace_partitions("r22", before, ["d"], commit_for("a"))
    root = Path(store.location("r22"))
    (root / "stage-blocked").write_text("a file where Spark needs a folder")
    monkeypatch.setattr(embedded_mod, "new_stage_name", lambda: "stage-blocked")
    with pytest.raises(TableError, match="table r22: write failed, table unchanged"):
        store.replace_partitions("r22", frame(spark, rows_for(D1, "x")), ["d"], commit_for("a", "r2"))
    assert store.version("r22") == 0 and (root / "stage-blocked").is_file()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.undo()
    monkeypatch.setattr(embedded_mod, "commit_actions", disk_full)
    with pytest.raises(TableError, match="No space left on device"):
        store.replace_partitions("r22", frame(spark, rows_for(D1, "x")), ["d"], commit_for("a", "r3"))
    assert store.version("r22") == 0
    assert_same(store.read("r22"), before)
    monkeypatch.undo()
    (root / "stage-blocked").unlink()
    result = store.replace_partitions("r22", frame(spark, rows_for(D1, "x")), ["d"], commit_for("a", "r4"))
    assert result.version == 1
    assert_same(store.read("r22"), frame(spark, rows_for(D1, "x")))


def test_error_line_carries_the_root_cause_of_a_jvm_error() -> None:
    from driftline.tables.backend import error_line

    class Py4JJavaError(Exception):
        pass

    jvm = Py4JJavaError("An error occurred while calling o9531.parquet.\n: org.apache.spark.SparkException: Job "
                        "aborted.\n\tat org.apache.spark.X(X.scala:1)\nCaused by: org.apache.spark.TaskFailed: task "
                        "failed\n\tat y\nCaused by: java.io.IOException: No space left on device\n\tat z")
    assert error_line(jvm) == ("Py4JJavaError: An error occurred while calling o9531.parquet. (caused by "
                               "java.io.IOException: No space left on device)")
    plain = Py4JJavaError("An error occurred while calling o1.save.\n: java.io.IOException: Disk quota exceeded\n\tat a")
    assert error_line(plain) == ("Py4JJavaError: An error occurred while calling o1.save. (caused by "
                                 "java.io.IOException: Disk quota exceeded)")
    assert error_line(ValueError("bad thing\nmore")) == "ValueError: bad thing"
