"""Embedded read path (snapshot file list → Spark's Parquet reader, partition values from the log),
partition-name validation and the full replace of an unpartitioned table."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable, Schema
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DecimalType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from driftline.errors import ConcurrentRunError, TableError
from driftline.tables import StorageConfig, open_store
from driftline.tables.embedded import read as embedded_read
from tests.unit.tables.conftest import commit_for, embedded_only

D = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(10)]
TS = dt.datetime(2026, 1, 5, 10, 11, 12, 123456)
SCHEMA = StructType(
    [
        StructField("id", LongType()),
        StructField("amount", DecimalType(12, 2)),
        StructField("ts", TimestampType()),
        StructField("label", StringType()),
        StructField("d", DateType()),
    ]
)


def rows_for(day: dt.date, tag: str = "a", n: int = 3) -> list[tuple]:
    out = [(i, Decimal(f"{i}.25"), TS + dt.timedelta(microseconds=i), f"{tag}{i}", day) for i in range(n)]
    out.append((None, None, None, None, day))
    return out


def frame(spark, rows, schema=SCHEMA):
    return spark.createDataFrame(rows, schema)


def assert_same(actual, expected) -> None:
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def deltars_rows(path: str, version: int | None = None) -> list[dict]:
    """The independent check: what delta-rs (not our code) reads from the same table."""
    return DeltaTable(path, version=version).to_pyarrow_table().to_pylist()


def key(row: dict) -> tuple:
    return tuple((k, repr(row[k])) for k in sorted(row))


def same_as_deltars(df, path: str, version: int | None = None) -> None:
    ours = [r.asDict() for r in df.collect()]
    theirs = deltars_rows(path, version)
    for r in theirs:  # delta-rs returns aware UTC timestamps, Spark naive UTC (session time zone)
        for k, v in r.items():
            if isinstance(v, dt.datetime):
                r[k] = v.replace(tzinfo=None)
    assert sorted(map(key, ours)) == sorted(map(key, theirs))


def scans_in_plan(df) -> int:
    return df._jdf.queryExecution().executedPlan().toString().count("FileScan parquet")


@pytest.fixture(params=["folders", "union", "join"])
def read_path(request, monkeypatch):
    """The three ways of restoring partition values: Spark's discovery below each staging folder
    (checked against the log), literal columns per value, or the file-path join."""
    if request.param != "folders":
        monkeypatch.setattr(embedded_read, "FOLDER_PARTITIONS", False)
    if request.param == "join":
        monkeypatch.setattr(embedded_read, "UNION_MAX_GROUPS", 0)
    else:  # test tables are tiny: take the union path whatever their size
        monkeypatch.setattr(embedded_read, "UNION_MIN_BYTES_PER_VALUE", 0)
    return request.param


@pytest.fixture
def union_path(monkeypatch):
    monkeypatch.setattr(embedded_read, "UNION_MIN_BYTES_PER_VALUE", 0)
    monkeypatch.setattr(embedded_read, "FOLDER_PARTITIONS", False)


# ----------------------------------------------------------------------------- the read path
@embedded_only
def test_range_write_then_one_date_rewrite_reads_back(spark, store, read_path):
    """Two staging folders (a range write, then one date): the case that once raised
    CONFLICTING_DIRECTORY_STRUCTURES; also with Spark's distributed file listing."""
    store.replace_partitions("rr", frame(spark, [r for d in D for r in rows_for(d)]), ["d"], commit_for("range"))
    store.replace_partitions("rr", frame(spark, rows_for(D[4], "new")), ["d"], commit_for(D[4].isoformat()))
    expected = frame(spark, [r for d in D for r in (rows_for(d, "new") if d == D[4] else rows_for(d))])
    path = store.location("rr")
    assert len({p.parent.parent.name for p in Path(path).glob("driftline_write=*/d=*/*.parquet")}) == 2
    key_conf = "spark.sql.sources.parallelPartitionDiscovery.threshold"
    before = spark.conf.get(key_conf)
    try:
        for threshold in (before, "0"):
            spark.conf.set(key_conf, threshold)
            got = store.read("rr")
            assert_same(got, expected)
            same_as_deltars(got, path)
    finally:
        spark.conf.set(key_conf, before)
    assert_same(store.read("rr", version=0), frame(spark, [r for d in D for r in rows_for(d)]))
    same_as_deltars(store.read("rr", version=0), path, version=0)


ID_D = StructType([StructField("id", LongType()), StructField("d", DateType())])


def table_from_files(root: Path, files: dict[str, tuple[str | None, list[int]]]) -> StructType:
    """A table (id, d partitioned by d) whose log delta-rs writes directly: each Parquet file at its
    relative path with its ids, and the partition value ``d`` the log gives it (folder names aside)."""
    adds = []
    for rel, (value, ids) in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"id": pa.array(ids, pa.int64())}), root / rel)
        stats = json.dumps({"numRecords": len(ids), "nullCount": {"id": 0}})
        adds.append(AddAction(rel, (root / rel).stat().st_size, {"d": value}, 0, True, stats))
    create_table_with_add_actions(str(root), Schema.from_json(json.dumps(ID_D.jsonValue())), adds, partition_by=["d"])
    return ID_D


@embedded_only
def test_partition_values_come_from_the_log_not_folder_names(spark, store, workspace, read_path):
    """Files in differently nested folders whose names contradict the log: the log wins and
    Spark infers nothing from folders (no partition discovery at all)."""
    root = workspace / "tables" / "odd"
    files = {
        "x/d=2026-01-09/k=7/one.parquet": ("2026-01-01", [1, 2]),
        "y/two.parquet": ("2026-01-02", [3]),
        "z/d=2026-01-09/three.parquet": (None, [4]),
    }
    schema = table_from_files(root, files)
    expected = spark.createDataFrame([(1, D[0]), (2, D[0]), (3, D[1]), (4, None)], schema)
    assert_same(store.read("odd"), expected)
    same_as_deltars(store.read("odd"), str(root))
    assert_same(store.read("odd", partitions={"d": [None]}), spark.createDataFrame([(4, None)], schema))


@embedded_only
def test_staging_folder_names_that_contradict_the_log_are_not_used(spark, store, workspace):
    """Our own (legacy ``stage-<id>``) layout but a folder value differing from the log (a folder
    renamed by hand, or a log written by another tool): the log's values are read, not the folder's."""
    root = workspace / "tables" / "liar"
    files = {"stage-a/d=2026-01-09/one.parquet": ("2026-01-01", [1, 2]),
             "stage-a/d=2026-01-02/two.parquet": ("2026-01-02", [3])}
    schema = table_from_files(root, files)
    assert_same(store.read("liar"), spark.createDataFrame([(1, D[0]), (2, D[0]), (3, D[1])], schema))
    same_as_deltars(store.read("liar"), str(root))


@embedded_only
def test_a_table_written_in_one_go_is_one_plain_scan(spark, store):
    """One staging folder: Spark's reader restores the partition columns itself (no union, no join),
    and a later filter on a partition column prunes files as in a plain partitioned Parquet read."""
    df = frame(spark, [r for d in D for r in rows_for(d)])
    store.replace_partitions("one", df, ["d"], commit_for("a"))
    got = store.read("one")
    plan = got._jdf.queryExecution().executedPlan().toString()
    assert scans_in_plan(got) == 1 and "Union" not in plan and "Join" not in plan
    assert_same(got, df)
    same_as_deltars(got, store.location("one"))
    one = got.filter(F.col("d") == F.lit(D[2]))
    assert "PartitionFilters: [isnotnull(d" in one._jdf.queryExecution().executedPlan().toString()
    assert_same(one, frame(spark, rows_for(D[2])))


@embedded_only
def test_legacy_staging_folders_and_new_writes_read_together(spark, store, workspace, monkeypatch):
    """A table from before 2026-11-23 (files in ``stage-<id>/d=<value>/``) that new writes extend: one
    scan per legacy folder plus one for every new write (tiny files: the join otherwise), values as in the log."""
    monkeypatch.setattr(embedded_read, "UNION_MIN_BYTES_PER_VALUE", 0)
    root = workspace / "tables" / "mixed"
    schema = table_from_files(root, {"stage-a/d=2026-01-01/one.parquet": ("2026-01-01", [1, 2]),
                                     "stage-b/d=2026-01-02/two.parquet": ("2026-01-02", [3])})
    for day, ids in ((D[2], [4]), (D[3], [5, 6])):
        store.replace_partitions("mixed", spark.createDataFrame([(i, day) for i in ids], schema), ["d"],
                                 commit_for(day.isoformat()))
    got = store.read("mixed")
    assert scans_in_plan(got) == 3   # stage-a, stage-b, and both new writes in one
    assert_same(got, spark.createDataFrame([(1, D[0]), (2, D[0]), (3, D[1]), (4, D[2]), (5, D[3]), (6, D[3])], schema))
    same_as_deltars(got, str(root))
    monkeypatch.setattr(embedded_read, "UNION_MIN_BYTES_PER_VALUE", 1 << 40)   # small: one scan and the join
    assert scans_in_plan(store.read("mixed")) == 1
    assert_same(store.read("mixed"), got)


@embedded_only
def test_tables_written_date_by_date_read_as_one_scan(spark, store):
    """Each write's staging folder is ``driftline_write=w<id>``: Spark's discovery from the table root
    covers all of them (the extra column is dropped), so daily writes do not cost a scan each."""
    for d in D:
        store.replace_partitions("daily", frame(spark, rows_for(d)), ["d"], commit_for(d.isoformat()))
    got = store.read("daily")
    assert got.columns == frame(spark, rows_for(D[0])).columns
    assert scans_in_plan(got) == 1 and "Union" not in got._jdf.queryExecution().executedPlan().toString()
    assert_same(got, frame(spark, [r for d in D for r in rows_for(d)]))
    same_as_deltars(got, store.location("daily"))


@embedded_only
def test_spark_partition_discovery_is_off(spark, store, tmp_path):
    """The reader helper on a folder tree Spark's discovery would refuse (conflicting layouts)."""
    for rel in ("a/p=1/f.parquet", "b/f.parquet"):
        (tmp_path / rel).parent.mkdir(parents=True)
        pq.write_table(pa.table({"id": pa.array([1], pa.int64())}), tmp_path / rel)
    with pytest.raises(Exception, match="CONFLICTING_DIRECTORY_STRUCTURES|onflicting directory"):
        spark.read.schema("id long").parquet(f"file:{tmp_path}").collect()
    got = embedded_read.parquet(spark, [f"file:{tmp_path}"], StructType([StructField("id", LongType())]))
    assert got.columns == ["id"] and got.count() == 2


@embedded_only
def test_pruning_happens_before_any_file_is_opened(spark, store, read_path):
    store.replace_partitions("pr", frame(spark, [r for d in D[:3] for r in rows_for(d)]), ["d"], commit_for("a"))
    root = Path(store.location("pr"))
    for folder in ("d=2026-01-01", "d=2026-01-03"):  # other partitions' files: gone
        for f in root.glob(f"driftline_write=*/{folder}/*.parquet"):
            f.unlink()
    got = store.read("pr", partitions={"d": [D[1]]})
    assert_same(got, frame(spark, rows_for(D[1])))
    assert scans_in_plan(got) == 1


@embedded_only
def test_filters_on_partition_columns_prune_union_branches(spark, store, union_path):
    store.replace_partitions("fb", frame(spark, [r for d in D[:4] for r in rows_for(d)]), ["d"], commit_for("a"))
    full = store.read("fb")
    assert scans_in_plan(full) == 4
    one = full.filter(F.col("d") == F.lit(D[2]))
    assert scans_in_plan(one) == 1
    assert_same(one, frame(spark, rows_for(D[2])))


@embedded_only
def test_many_types_nulls_and_special_values_in_both_paths(spark, store, read_path):
    schema = StructType(
        [
            StructField("v", LongType()),
            StructField("s", StringType()),
            StructField("b", BooleanType()),
            StructField("n", ShortType()),
            StructField("i", IntegerType()),
        ]
    )
    specials = ["a b", "x:y%z=w+v#u?t[s]r{q}p,o", "é中文", "}", "*", None, "%2A", "o'clock \\ back\\slash"]
    rows = [(k, s, k % 2 == 0, k % 3 - 1, k) for k, s in enumerate(specials)]
    rows += [(100, None, None, None, None), (101, "a b", True, -1, None)]
    df = frame(spark, rows, schema)
    store.replace_partitions("ty", df, ["s", "b", "n"], commit_for("a"))
    assert_same(store.read("ty"), df)
    same_as_deltars(store.read("ty"), store.location("ty"))
    assert_same(
        store.read("ty", partitions={"s": ["a b", None], "b": [True]}),
        frame(spark, [r for r in rows if r[1] in ("a b", None) and r[2] is True], schema),
    )


def test_schema_evolution_old_files_read_as_null_and_time_travel(spark, workspace, read_path):
    store = open_store(spark, StorageConfig(backend="embedded", allow_new_columns=True), workspace)
    store.replace_partitions("ev", frame(spark, rows_for(D[0]) + rows_for(D[1])), ["d"], commit_for("a"))
    wider = frame(spark, rows_for(D[1], "w")).withColumn("extra", F.col("id").cast("int") * 7)
    store.replace_partitions("ev", wider, ["d"], commit_for(D[1].isoformat()))
    old_rows = frame(spark, rows_for(D[0])).withColumn("extra", F.lit(None).cast("int"))
    expected = old_rows.unionByName(wider).select(*[c for c in wider.columns if c != "d"], "d")
    got = store.read("ev")
    assert got.columns == ["id", "amount", "ts", "label", "d", "extra"]
    assert_same(got, expected.select(*got.columns))
    same_as_deltars(got, store.location("ev"))
    assert_same(store.read("ev", version=0), frame(spark, rows_for(D[0]) + rows_for(D[1])))
    assert_same(
        store.read("ev", partitions={"d": [D[0]]}), old_rows.select("id", "amount", "ts", "label", "d", "extra")
    )


def test_unpartitioned_and_empty_reads(spark, store):
    schema = StructType([StructField("id", LongType()), StructField("label", StringType())])
    store.create_if_absent("un", schema)
    assert_same(store.read("un"), spark.createDataFrame([], schema))
    df = spark.createDataFrame([(1, "a"), (None, None)], schema)
    store.append("un", df, commit_for("b1"))
    assert_same(store.read("un"), df)
    same_as_deltars(store.read("un"), store.location("un"))


@embedded_only
def test_more_partition_values_than_union_branches_uses_the_join(spark, store, monkeypatch, union_path):
    monkeypatch.setattr(embedded_read, "UNION_MAX_GROUPS", 3)
    df = frame(spark, [r for d in D for r in rows_for(d)])
    store.replace_partitions("mj", df, ["d"], commit_for("a"))
    got = store.read("mj")
    assert scans_in_plan(got) == 1 and "BroadcastHashJoin" in got._jdf.queryExecution().executedPlan().toString()
    assert_same(got, df)
    few = store.read("mj", partitions={"d": D[:3]})
    assert scans_in_plan(few) == 3
    assert_same(few, frame(spark, [r for d in D[:3] for r in rows_for(d)]))
    monkeypatch.setattr(embedded_read, "UNION_MIN_BYTES_PER_VALUE", 1 << 40)  # small partitions: the join
    assert scans_in_plan(store.read("mj", partitions={"d": D[:3]})) == 1


# ----------------------------------------------------------------------------- names
@pytest.mark.parametrize("bad", ["_p", ".p", "__p"])
def test_partition_columns_starting_with_underscore_or_dot_are_refused(spark, store, workspace, bad):
    schema = StructType([StructField("id", LongType()), StructField(bad, StringType())])
    df = spark.createDataFrame([(1, "x")], schema)
    message = rf"partition column '{bad}' starts with '{bad[0]}': expected a name starting with a letter"
    with pytest.raises(TableError, match=message):
        store.create_if_absent("hp", schema, [bad])
    with pytest.raises(TableError, match=message):
        store.replace_partitions("hp", df, [bad], commit_for("a"))
    assert not store.exists("hp")
    assert not workspace.exists() or not any(workspace.rglob("*.parquet"))


def test_a_table_name_starting_with_underscore_works(spark, store):
    """Only folders *below* the path Spark is given are hidden; a table folder is given directly."""
    df = frame(spark, rows_for(D[0]))
    store.replace_partitions("_scratch", df, ["d"], commit_for("a"))
    assert_same(store.read("_scratch"), df)
    same_as_deltars(store.read("_scratch"), store.location("_scratch"))


# ----------------------------------------------------------------------------- full replace
UN = StructType([StructField("id", LongType()), StructField("label", StringType())])


def test_full_replace_of_an_unpartitioned_table(spark, store):
    first = spark.createDataFrame([(1, "a"), (2, None)], UN)
    created = store.replace_partitions("fr", first, [], commit_for("2026-01-05"))
    assert (created.version, created.replaced) == (0, False)
    second = spark.createDataFrame([(3, "c"), (None, "d")], UN)
    again = store.replace_partitions("fr", second, [], commit_for("2026-01-05", run_id="run-2"))
    assert (again.version, again.replaced, again.skipped, again.rows) == (1, True, False, 2)
    assert_same(store.read("fr"), second)
    same_as_deltars(store.read("fr"), store.location("fr"))
    assert_same(store.read("fr", version=0), first)
    table = DeltaTable(store.location("fr"))
    assert table.transaction_version("driftline/score/fr/2026-01-05") == 2
    assert len(table.file_uris()) == again.files
    assert not set(table.file_uris()) & set(DeltaTable(store.location("fr"), version=0).file_uris())
    # another key, appended files included, and zero rows: the table ends up empty
    store.append("fr", first, commit_for("batch"))
    empty = store.replace_partitions("fr", spark.createDataFrame([], UN), [], commit_for("2026-01-06"))
    assert (empty.version, empty.replaced, empty.rows) == (3, True, 0)
    assert store.read("fr").count() == 0 and deltars_rows(store.location("fr")) == []
    assert_same(store.read("fr", version=2), second.unionByName(first))


def test_full_replace_is_refused_for_partitioned_tables_and_with_partitions(spark, store):
    store.replace_partitions("fp", frame(spark, rows_for(D[0])), ["d"], commit_for("a"))
    with pytest.raises(TableError, match=r"partition columns differ: table has \['d'\], write has \[\]"):
        store.replace_partitions("fp", frame(spark, rows_for(D[1])), [], commit_for("b"))
    with pytest.raises(TableError, match=r"expected partitions=None, found \[\{'d'"):
        store.replace_partitions("fp", frame(spark, rows_for(D[1])), [], commit_for("b"), partitions=[{"d": D[1]}])
    assert store.version("fp") == 0
    assert_same(store.read("fp"), frame(spark, rows_for(D[0])))


def test_full_replace_refuses_a_concurrent_run_of_the_same_key(spark, store, monkeypatch):
    store.replace_partitions("fc", spark.createDataFrame([(1, "seed")], UN), [], commit_for("k"))
    real = type(store._backend).stage
    other = {"done": False}

    def interleave(self, *args, **kwargs):
        if not other["done"]:
            other["done"] = True
            store.replace_partitions("fc", spark.createDataFrame([(2, "other")], UN), [], commit_for("k", "run-x"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(store._backend), "stage", interleave)
    with pytest.raises(ConcurrentRunError, match=r"another run committed driftline/score/fc/k"):
        store.replace_partitions("fc", spark.createDataFrame([(3, "mine")], UN), [], commit_for("k", "run-y"))
    assert_same(store.read("fc"), spark.createDataFrame([(2, "other")], UN))
    assert store.version("fc") == 1


def test_full_replace_retries_over_a_concurrent_append(spark, store, monkeypatch):
    """A different key appended meanwhile: the overwrite conflicts, is retried on the new snapshot
    and replaces everything that snapshot holds (the whole table, never a mix)."""
    store.replace_partitions("fa", spark.createDataFrame([(1, "seed")], UN), [], commit_for("k"))
    real = type(store._backend).stage
    other = {"done": False}

    def interleave(self, *args, **kwargs):
        if not other["done"]:
            other["done"] = True
            store.append("fa", spark.createDataFrame([(2, "appended")], UN), commit_for("batch"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(store._backend), "stage", interleave)
    result = store.replace_partitions("fa", spark.createDataFrame([(3, "mine")], UN), [], commit_for("k", "r2"))
    assert (result.version, result.replaced) == (2, True)
    assert_same(store.read("fa"), spark.createDataFrame([(3, "mine")], UN))
    same_as_deltars(store.read("fa"), store.location("fa"))

