"""Both backends on one table, each proven with the other implementation.

Tables the embedded backend (delta-rs commits) writes are read, time-travelled, described,
OPTIMIZEd and VACUUMed by delta-spark SQL and stay writable; tables the native backend
(delta-spark) writes are read by delta-rs; a table continues on the other backend with its
idempotency keys; writers on both backends at once lose no commit. After each, delta-rs and
delta-spark both open the table: two backends on one table must never produce a log that
either implementation refuses.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable

from driftline.tables import TableStore
from driftline.tables.native_write import INTEROP_PROPERTIES
from tests.unit.tables.conftest import commit_for, store_on
from tests.unit.tables.test_reads import SCHEMA, TS, D

pytestmark = pytest.mark.native_delta

D = D[:6]   # six of test_reads' dates are enough here


def rows_for(day: dt.date, tag: str, n: int = 2) -> list[tuple]:
    out = [(i, Decimal(f"{i}.25"), TS + dt.timedelta(microseconds=i), f"{tag}{i}", day) for i in range(n)]
    return [*out, (None, None, None, None, day)]


@pytest.fixture
def embedded(spark, workspace: Path) -> TableStore:
    return store_on(spark, "embedded", workspace)


@pytest.fixture
def native(spark, workspace: Path) -> TableStore:
    return store_on(spark, "native", workspace)


def assert_rows(actual, expected) -> None:
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def deltars_frame(spark, path: str, version: int | None = None):
    """What delta-rs (not our code, not delta-spark) reads, as a Spark DataFrame of the same schema."""
    got = DeltaTable(path, version=version).to_pyarrow_table().to_pylist()
    return spark.createDataFrame([tuple(r[f.name] for f in SCHEMA.fields) for r in got], SCHEMA)


def both_open(spark, path: str, expected) -> None:
    """delta-rs and delta-spark open the latest version and read exactly ``expected``."""
    rs = DeltaTable(path)
    assert rs.version() == spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()["version"]
    assert_rows(deltars_frame(spark, path), expected)
    assert_rows(spark.read.format("delta").load(path).select(*SCHEMA.names), expected)


def sql_rows(spark, sql: str):
    return spark.sql(sql).select(*SCHEMA.names)


# ----------------------------------------------------------------------------- embedded -> delta-spark
def test_an_embedded_table_is_read_travelled_optimized_and_vacuumed_by_delta_spark(spark, embedded):
    first = spark.createDataFrame(rows_for(D[0], "a") + rows_for(D[1], "a"), SCHEMA)
    embedded.replace_partitions("emb", first, ["d"], commit_for("init"))
    embedded.replace_partitions("emb", spark.createDataFrame(rows_for(D[0], "b"), SCHEMA), ["d"],
                                commit_for(D[0].isoformat()))
    path = embedded.location("emb")
    latest = spark.createDataFrame(rows_for(D[0], "b") + rows_for(D[1], "a"), SCHEMA)

    assert_rows(sql_rows(spark, f"SELECT * FROM delta.`{path}`"), latest)
    assert_rows(sql_rows(spark, f"SELECT * FROM delta.`{path}` VERSION AS OF 0"), first)
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    assert [h["version"] for h in history] == [0, 1]
    assert '"idempotency_key": "driftline/score/emb/2026-01-01"' in history[1]["userMetadata"]

    files_before = len(DeltaTable(path).file_uris())
    spark.sql(f"OPTIMIZE delta.`{path}`").collect()
    assert len(DeltaTable(path).file_uris()) <= files_before
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    spark.conf.set(check, "false")
    try:
        spark.sql(f"VACUUM delta.`{path}` RETAIN 0 HOURS").collect()
    finally:
        spark.conf.unset(check)
    assert_rows(sql_rows(spark, f"SELECT * FROM delta.`{path}`"), latest)

    # The embedded store keeps going on the table delta-spark compacted and vacuumed.
    third = embedded.replace_partitions("emb", spark.createDataFrame(rows_for(D[1], "c"), SCHEMA), ["d"],
                                        commit_for(D[1].isoformat()))
    assert third.version == embedded.version("emb") and third.replaced
    expected = spark.createDataFrame(rows_for(D[0], "b") + rows_for(D[1], "c"), SCHEMA)
    assert_rows(embedded.read("emb"), expected)
    assert [h["version"] for h in embedded.history("emb")] == list(range(third.version, -1, -1))
    both_open(spark, path, expected)


# ----------------------------------------------------------------------------- native -> delta-rs
def test_a_native_table_is_read_by_delta_rs(spark, native):
    df = spark.createDataFrame(rows_for(D[0], "a") + rows_for(D[1], "a"), SCHEMA)
    native.replace_partitions("nat", df, ["d"], commit_for("init"))
    again = spark.createDataFrame(rows_for(D[1], "b"), SCHEMA)
    native.replace_partitions("nat", again, ["d"], commit_for(D[1].isoformat()))
    path = native.location("nat")
    table = DeltaTable(path)
    protocol = table.protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)
    assert not protocol.reader_features and not protocol.writer_features
    assert INTEROP_PROPERTIES.items() <= table.metadata().configuration.items()
    assert table.transaction_version("driftline/score/nat/2026-01-02") == 1
    assert_rows(deltars_frame(spark, path, version=0), df)
    expected = spark.createDataFrame(rows_for(D[0], "a") + rows_for(D[1], "b"), SCHEMA)
    both_open(spark, path, expected)


@pytest.mark.parametrize("file_stats", ["lineage", "all"])
def test_native_tables_keep_per_file_statistics_of_run_id_by_default_and_of_all_columns_on_request(
    spark, workspace, file_stats
):
    from pyspark.sql import functions as F

    store = store_on(spark, "native", workspace, file_stats=file_stats)
    df = spark.createDataFrame(rows_for(D[0], "a") + rows_for(D[1], "a"), SCHEMA).withColumn("run_id", F.lit("r-7"))
    store.replace_partitions("st", df, ["d"], commit_for("init"), partitions=[{"d": D[0]}, {"d": D[1]}])
    store.create_if_absent("st_empty", df.schema, ["d"], commit_for("create"))
    for name in ("st", "st_empty"):
        config = DeltaTable(store.location(name)).metadata().configuration
        assert INTEROP_PROPERTIES.items() <= config.items()
        assert config.get("delta.dataSkippingStatsColumns") == ("run_id" if file_stats == "lineage" else None)
    files = store.file_stats("st", {"d": [D[1]]})   # read back by delta-rs, as the monitor reads them
    assert files and {(f["min.run_id"], f["max.run_id"]) for f in files} == {("r-7", "r-7")}
    assert sum(f["num_records"] for f in files) == 3
    other = {k for f in files for k, v in f.items() if k.startswith("min.") and k != "min.run_id" and v is not None}
    assert other == (set() if file_stats == "lineage" else {"min.id", "min.amount", "min.ts", "min.label"})


def test_a_table_created_empty_by_native_keeps_the_interop_protocol(spark, native, embedded):
    native.create_if_absent("made", SCHEMA, ["d"], commit_for("create"))
    table = DeltaTable(native.location("made"))
    assert (table.protocol().min_reader_version, table.protocol().min_writer_version) == (1, 2)
    assert INTEROP_PROPERTIES.items() <= table.metadata().configuration.items()
    df = spark.createDataFrame(rows_for(D[0], "a"), SCHEMA)
    assert embedded.replace_partitions("made", df, ["d"], commit_for("k")).version == 1
    both_open(spark, native.location("made"), df)


# ----------------------------------------------------------------------------- one table, both backends
def test_a_table_continues_on_the_other_backend_with_its_idempotency_keys(spark, embedded, native):
    name = "alt"
    embedded.replace_partitions(name, spark.createDataFrame(rows_for(D[0], "e") + rows_for(D[1], "e"), SCHEMA),
                                ["d"], commit_for("init"))
    path = embedded.location(name)
    # Checkpoints every 3 commits, so each implementation writes one the other has to read.
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.checkpointInterval' = '3')")
    steps = [
        (native, D[0], "n1"),
        (embedded, D[1], "e2"),
        (native, D[1], "n3"),  # the key embedded wrote: a rerun on the other backend replaces
        (embedded, D[0], "e4"),  # the key native wrote: replaced again, never duplicated
        (native, D[2], "n5"),
    ]
    current = {D[0]: "e", D[1]: "e"}
    for store, day, tag in steps:
        result = store.replace_partitions(name, spark.createDataFrame(rows_for(day, tag), SCHEMA), ["d"],
                                          commit_for(day.isoformat(), run_id=tag))
        current[day] = tag
        assert not result.skipped and result.version == embedded.version(name) == native.version(name)
    expected = spark.createDataFrame([r for day, tag in sorted(current.items()) for r in rows_for(day, tag)], SCHEMA)
    for store in (embedded, native):
        assert_rows(store.read(name), expected)
    for day, runs in ((D[0], 2), (D[1], 2), (D[2], 1)):  # one txn version per run of the key, whoever wrote it
        assert DeltaTable(path).transaction_version(f"driftline/score/{name}/{day.isoformat()}") == runs

    # Appends: a batch key appended on one backend is skipped on the other.
    batch = spark.createDataFrame(rows_for(D[3], "b"), SCHEMA)
    assert not native.append(name, batch, commit_for("batch-1")).skipped
    assert embedded.append(name, batch, commit_for("batch-1", run_id="again")).skipped
    assert not embedded.append(name, batch, commit_for("batch-2")).skipped
    assert native.append(name, batch, commit_for("batch-2", run_id="again")).skipped

    history = embedded.history(name)
    assert [h["version"] for h in history] == list(range(len(history) - 1, -1, -1))
    other = native.history(name)
    # The same commits; the timestamps are each implementation's (delta-rs: the commit's own
    # timestamp, delta-spark: the commit file's modification time), milliseconds apart at most.
    assert [{**h, "timestamp": None} for h in history] == [{**h, "timestamp": None} for h in other]
    assert all(abs(a["timestamp"] - b["timestamp"]) < dt.timedelta(seconds=2) for a, b in zip(history, other, strict=True))
    assert list(Path(path, "_delta_log").glob("*.checkpoint.parquet"))
    expected = expected.unionByName(batch).unionByName(batch)
    both_open(spark, path, expected)


def test_concurrent_writers_on_both_backends_lose_no_commit(spark, workspace):
    """R4 across implementations: two threads, one per backend, each replacing its own partitions of one
    table at the same time (delta-rs and delta-spark each retry their conflicts): every commit lands."""
    embedded = store_on(spark, "embedded", workspace, commit_retries=20)
    native = store_on(spark, "native", workspace, commit_retries=20)
    seed = [r for day in D for r in rows_for(day, "seed")]
    embedded.replace_partitions("race", spark.createDataFrame(seed, SCHEMA), ["d"], commit_for("seed"))
    plan = {"embedded": (embedded, D[:3]), "native": (native, D[3:])}
    start = threading.Barrier(len(plan))
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        store, days = plan[tag]
        try:
            start.wait(timeout=120)
            for day in days:
                store.replace_partitions("race", spark.createDataFrame(rows_for(day, tag), SCHEMA), ["d"],
                                         commit_for(day.isoformat(), run_id=tag))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    history = native.history("race")
    assert [h["version"] for h in history] == list(range(len(D), -1, -1))  # seed + one per write, contiguous
    assert sorted(h["date"] for h in history[:-1]) == [day.isoformat() for day in D]
    assert {h["run_id"] for h in history[:-1]} == set(plan)
    expected = spark.createDataFrame([r for tag, (_, days) in plan.items() for day in days
                                      for r in rows_for(day, tag)], SCHEMA)
    assert_rows(embedded.read("race"), expected)
    both_open(spark, embedded.location("race"), expected)
