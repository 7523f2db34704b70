"""Native backend (delta-spark): same interface and semantics; needs the JVM jars."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from driftline.errors import ConfigError, TableError
from driftline.tables import StorageConfig, open_store
from driftline.tables.native import native_available
from driftline.tables.native_write import replace_where, sql_literal
from tests.unit.tables.conftest import commit_for


@pytest.fixture
def native_store(spark, tmp_path):
    if not native_available(spark):
        pytest.skip("delta-spark jars not on the classpath")
    return open_store(spark, StorageConfig(backend="native"), tmp_path / "ws")


def test_native_requested_without_jars_is_a_config_error(spark, tmp_path):
    if native_available(spark):
        pytest.skip("delta-spark jars are on the classpath")
    with pytest.raises(ConfigError, match="needs the delta-spark jars"):
        open_store(spark, StorageConfig(backend="native"), tmp_path)


def test_replace_where_quotes_values_as_literals():
    assert sql_literal("x' OR '1'='1") == "'x\\' OR \\'1\\'=\\'1'"
    assert replace_where(["d", "r"], [("2026-01-05", None)]) == "(CAST(`d` AS STRING) = '2026-01-05' AND `r` IS NULL)"


@pytest.mark.native_delta
def test_native_rerun_replaces_and_reads_back(spark, native_store):
    df = spark.createDataFrame([(1, dt.date(2026, 1, 5)), (None, dt.date(2026, 1, 5))], "id long, d date")
    first = native_store.replace_partitions("n", df, ["d"], commit_for("2026-01-05"))
    again = native_store.replace_partitions("n", df, ["d"], commit_for("2026-01-05", "r2"))
    assert (first.version, again.version, again.replaced) == (0, 1, True)
    assert_df_equality(native_store.read("n"), df, ignore_row_order=True, ignore_nullable=True)
    assert native_store.history("n")[0]["idempotency_key"] == "driftline/score/n/2026-01-05"


@pytest.mark.native_delta
def test_native_reads_an_embedded_table(spark, native_store, tmp_path):
    embedded = open_store(spark, StorageConfig(backend="embedded"), tmp_path / "ws")
    df = spark.createDataFrame([(1, dt.date(2026, 1, 5)), (None, dt.date(2026, 1, 6))], "id long, d date")
    embedded.replace_partitions("both", df, ["d"], commit_for("k"))
    assert_df_equality(native_store.read("both"), df, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.native_delta
def test_native_storage_error_is_one_line_and_leaves_the_table_unchanged(spark, native_store, monkeypatch):
    from pyspark.sql.readwriter import DataFrameWriter

    df = spark.createDataFrame([(1, dt.date(2026, 1, 5))], "id long, d date")
    native_store.replace_partitions("se", df, ["d"], commit_for("2026-01-05"))

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DataFrameWriter, "save", disk_full)
    with pytest.raises(TableError, match=r"^table se: write failed, table unchanged: OSError: .*No space left") as info:
        native_store.replace_partitions("se", df, ["d"], commit_for("2026-01-05", "r2"))
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    assert native_store.version("se") == 0
    assert_df_equality(native_store.read("se"), df, ignore_row_order=True, ignore_nullable=True)
