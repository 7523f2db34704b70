"""`TableStore.table_names`: the Delta tables of a store (what `driftline migrate` walks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import types as T

from driftline.errors import TableError
from driftline.tables import StorageConfig, open_store
from tests.unit.tables.conftest import commit_for

SCHEMA = T.StructType([T.StructField("id", T.LongType()), T.StructField("d", T.StringType())])


def test_lists_delta_tables_under_the_root_and_mapped_ones(spark, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "mapped"
    store = open_store(spark, StorageConfig(backend="embedded", tables={"mapped": str(elsewhere),
                                                                        "never_written": str(tmp_path / "n")}),
                       tmp_path / "ws")
    df = spark.createDataFrame([(1, "a")], SCHEMA)
    for name in ("b_table", "a_table", "mapped"):
        store.replace_partitions(name, df, ["d"], commit_for("k"))
    (tmp_path / "ws" / "tables" / "not_delta").mkdir()           # a folder without _delta_log
    (tmp_path / "ws" / "tables" / "notes.txt").write_text("x")
    assert store.table_names() == ["a_table", "b_table", "mapped"]


def test_an_object_store_root_or_a_missing_folder_is_refused(spark, tmp_path: Path) -> None:
    uri = open_store(spark, StorageConfig(backend="embedded", root="s3a://bucket/dl"), tmp_path / "ws")
    with pytest.raises(TableError, match=r"^storage.root: expected a local folder to list tables in, found the URI "
                                         r"s3://bucket/dl$"):
        uri.table_names()
    missing = open_store(spark, StorageConfig(backend="embedded"), tmp_path / "none")
    with pytest.raises(TableError, match=r"^storage.root: expected the tables folder .*none/tables, found no folder$"):
        missing.table_names()
