"""The embedded read: the snapshot's file list from the log, Spark's Parquet reader on exactly those files.

The file list and typed partition values come from the log, pruned on the driver to the requested
partition values before Spark sees a path. Spark's Parquet reader scans exactly those files with
the table's schema (columns missing from older files read as null). Partition values are the
log's. When every file sits where this backend's writes put it (``<staging folder>/<col>=<value>/...``)
and the folder values equal the log's, Spark's reader adds them per file from the folder names:
the staging folder name is itself ``name=value`` shaped, so one scan with ``basePath`` at the table
root covers every write (an extra ``driftline_write`` column, dropped); each legacy ``stage-<id>``
folder needs its own scan. Otherwise partition discovery is off and the values come from the log as
literals: one scan per distinct value, unioned, when there are at most ``UNION_MAX_GROUPS`` values
averaging ``UNION_MIN_BYTES_PER_VALUE``; else one scan and a broadcast join on
``_metadata.file_path`` (keys computed on the driver), which plans fast at any count.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from functools import reduce
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    ByteType,
    DateType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
)

from driftline.errors import TableError
from driftline.jvm import is_connect
from driftline.tables import schema as policy
from driftline.tables.embedded import deltalog
from driftline.tables.embedded.layout import STAGE_PREFIX, WRITE_FOLDER, folder_value
from driftline.tables.names import Location
from driftline.tables.sql_text import quoted

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, DataFrameReader, SparkSession

_FILE_KEY = "__driftline_file"
# One scan per partition value (see scan_snapshot) when there are at most this many values and
# they average at least this many bytes: each scan costs ~20-30 ms to build and run, the file-path
# join ~50 ns a row (measured here), so small partitions are cheaper through the join.
UNION_MAX_GROUPS = 64
UNION_MIN_BYTES_PER_VALUE = 16 * 1024 * 1024
# Let Spark restore partition values from this backend's own folders once checked against the log
# (see stage_groups); False always takes them from the log as literals or through the join.
FOLDER_PARTITIONS = True


def read(
    spark: SparkSession,
    loc: Location,
    version: int | None,
    timestamp: dt.datetime | str | None,
    partitions: dict[str, list[Any]] | None,
) -> DataFrame:
    """The snapshot (latest, ``version`` or as of ``timestamp``) pruned to ``partitions``, as a DataFrame."""
    table = deltalog.require(loc, version)
    if timestamp is not None:
        when = _as_utc(timestamp)
        first = min(h["timestamp"] for h in table.history())
        if when.timestamp() * 1000 < first:
            raise TableError(f"table {loc.name}: no version as of {when.isoformat()} (created later)")
        table.load_as_version(when)
    deltalog.check_supported(loc, table)
    schema = deltalog.table_schema(table)
    partition_by = list(table.metadata().partition_columns)
    types = {f.name: f.dataType for f in schema.fields}
    adds = pruned(loc, deltalog.add_rows(table), partition_by, types, partitions)
    if not adds:
        return spark.createDataFrame([], schema)
    return scan_snapshot(spark, loc, schema, partition_by, adds)


def pruned(loc: Location, adds: list[dict[str, Any]], partition_by: list[str], types: dict[str, Any],
           partitions: dict[str, list[Any]] | None) -> list[dict[str, Any]]:
    """The add actions whose partition values are among ``partitions`` (all of them when None)."""
    if partitions:
        unknown = set(partitions) - set(partition_by)
        if unknown:
            raise TableError(f"table {loc.name}: {sorted(unknown)} are not partition columns {partition_by}")
        for col, values in partitions.items():
            allowed = {policy.canonical_partition_text(types[col], policy.partition_value_text(v)) for v in values}
            adds = [a for a in adds if policy.partition_value_text(a["partition." + col]) in allowed]
    return adds


def file_stats(loc: Location, partitions: dict[str, list[Any]] | None) -> list[dict[str, Any]]:
    """The latest snapshot's add actions pruned to ``partitions``, flattened as delta-rs gives them
    (``num_records``, ``min.<col>``, ``max.<col>``, ``partition.<col>``): the statistics Delta keeps per file."""
    table = deltalog.require(loc)
    schema = deltalog.table_schema(table)
    partition_by = list(table.metadata().partition_columns)
    return pruned(loc, deltalog.add_rows(table), partition_by, {f.name: f.dataType for f in schema.fields},
                  partitions)


def parquet(spark: SparkSession, paths: list[str], data_schema: StructType) -> DataFrame:
    """Spark's Parquet reader on exactly these files, with the table's data schema.

    ``recursiveFileLookup`` turns Spark's partition discovery off: nothing is inferred from
    folder names (the log is authoritative), so files from differently nested staging folders
    can never raise CONFLICTING_DIRECTORY_STRUCTURES. Columns an older file lacks read as null.
    """
    return _reader(spark, data_schema).parquet(*paths)


def _reader(spark: SparkSession, data_schema: StructType) -> DataFrameReader:
    return spark.read.schema(data_schema).option("recursiveFileLookup", "true")


def scan_snapshot(
    spark: SparkSession, loc: Location, schema: StructType, partition_by: list[str], adds: list[dict[str, Any]]
) -> DataFrame:
    """The given (already pruned) add actions as one DataFrame in the table's column order.

    Partition values come from the log: restored by Spark from this backend's own checked folders
    (one scan from the table root), else as literal columns per value, unioned (no per-row work;
    Spark prunes whole branches on filters over partition columns), else through a broadcast join on
    ``_metadata.file_path``: each union branch has a fixed cost, which many or small partitions do
    not repay (200 values: 9 s vs 1 s).
    """
    uris = [_spark_path(loc, uri) for uri in _file_uris(loc, adds)]
    data_schema = StructType([f for f in schema.fields if f.name not in partition_by])
    columns = [f.name for f in schema.fields]
    if not partition_by:
        return parquet(spark, uris, data_schema).select(*[F.col(f"`{c}`") for c in columns])
    types = {f.name: f.dataType for f in schema.fields}
    groups: dict[tuple[Any, ...], list[str]] = {}
    for uri, add in zip(uris, adds, strict=True):
        groups.setdefault(tuple(add["partition." + c] for c in partition_by), []).append(uri)
    stages = stage_groups(loc, uris, adds, partition_by, types) if FOLDER_PARTITIONS else None
    branches = len(stages) if stages is not None and len(stages) <= len(groups) else len(groups)
    total_bytes = sum(int(a["size_bytes"] or 0) for a in adds)
    # the join needs Hadoop's path normalization from the driver JVM: a Spark Connect session unions instead
    if branches > 1 and not is_connect(spark) and (
        branches > UNION_MAX_GROUPS or total_bytes < branches * UNION_MIN_BYTES_PER_VALUE
    ):
        return _joined(spark, uris, adds, data_schema, partition_by, types, columns)
    if stages is not None and branches == len(stages):
        # Spark's partition discovery from the table root (or a legacy staging folder); the
        # folder values were checked against the log, so what it restores is the log's values.
        picked = [quoted(c) for c in columns]
        frames = [
            spark.read.schema(schema).option("basePath", loc.child(stage) if stage else loc.spark_uri)
            .parquet(*paths)
            .selectExpr(*picked)
            for stage, paths in stages.items()
        ]
    else:
        # SQL text per branch: a few Py4J calls per branch instead of several per column.
        reader = _reader(spark, data_schema)
        frames = []
        for values, paths in groups.items():
            literal = dict(zip(partition_by, values, strict=True))
            frames.append(
                reader.parquet(*paths).selectExpr(
                    *[
                        f"{_sql_literal(literal[c], types[c])} AS {quoted(c)}" if c in literal else quoted(c)
                        for c in columns
                    ]
                )
            )
    union = reduce(lambda a, b: a.unionAll(b), frames)
    return union if len(frames) == 1 else _coalesce_like_one_scan(spark, union, [a["size_bytes"] for a in adds])


def _joined(
    spark: SparkSession,
    uris: list[str],
    adds: list[dict[str, Any]],
    data_schema: StructType,
    partition_by: list[str],
    types: dict[str, Any],
    columns: list[str],
) -> DataFrame:
    """One scan; partition values by a broadcast join on the file path (keys computed on the driver)."""
    jvm_path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path  # type: ignore[union-attr]
    key_schema = StructType(
        [StructField(_FILE_KEY, StringType(), False)] + [StructField(c, types[c], True) for c in partition_by]
    )
    keys = spark.createDataFrame(
        [
            tuple([jvm_path(uri).toUri().toString()] + [a["partition." + c] for c in partition_by])
            for uri, a in zip(uris, adds, strict=True)
        ],
        key_schema,
    )
    return (
        parquet(spark, uris, data_schema)
        .withColumn(_FILE_KEY, F.col("_metadata.file_path"))
        .join(F.broadcast(keys), on=_FILE_KEY, how="inner")
        .select(*[F.col(f"`{c}`") for c in columns])
    )


def _coalesce_like_one_scan(spark: SparkSession, df: DataFrame, sizes: list[int]) -> DataFrame:
    """At most as many tasks as one Parquet scan of the same files would get.

    Each scan of a union packs only its own files, so ten partition values give at least ten
    tasks where one scan packs the files into a few (twice as slow here). Coalescing (no
    shuffle; filters and column pruning still reach every branch) restores Spark's own split
    sizing: ``maxPartitionBytes``, ``openCostInBytes`` and the leaf parallelism.
    """
    conf = spark.conf
    max_bytes = byte_string(conf.get("spark.sql.files.maxPartitionBytes", "128m"))
    open_cost = byte_string(conf.get("spark.sql.files.openCostInBytes", "4m"))
    parallelism = conf.get("spark.sql.files.minPartitionNum", None) or conf.get(
        "spark.sql.leafNodeDefaultParallelism", None
    )
    if parallelism:
        cores = int(parallelism)
    elif is_connect(spark):  # no SparkContext to ask: the server's spark.default.parallelism, else no coalesce
        default = conf.get("spark.default.parallelism", None)
        if not default:
            return df
        cores = int(default)
    else:
        cores = spark.sparkContext.defaultParallelism
    total = sum(size + open_cost for size in sizes)
    split = min(max_bytes, max(open_cost, total // max(cores, 1)))
    return df.coalesce(max(1, math.ceil(total / max(split, 1))))


_BYTE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30,
               "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "p": 1 << 50, "pb": 1 << 50}


def byte_string(text: str) -> int:
    """A Spark size setting (``128m``, ``4194304``, ``1g``; bytes without a unit) in bytes, as Spark reads it."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _BYTE_UNITS:
        raise TableError(f"expected a size such as 128m, found {text!r}")
    return int(match.group(1)) * _BYTE_UNITS[match.group(2).lower()]


def stage_groups(
    loc: Location, paths: list[str], adds: list[dict[str, Any]], partition_by: list[str], types: dict[str, Any]
) -> dict[str, list[str]] | None:
    """The files' Spark paths (one per add) by the ``basePath`` to scan them with, relative to the
    table root; None unless folder names give exactly the log's values.

    Every file must sit at ``<staging folder>/<col1>=<v1>/.../<file>`` (the table's partition columns
    in order, Spark's escaping, ``__HIVE_DEFAULT_PARTITION__`` for null) with each folder value equal
    to the log's partition value for that file. Files in ``driftline_write=w<id>`` folders share the
    base ``""`` (the table root); each legacy ``stage-<id>`` folder is its own base. Another tool's
    layout, a renamed folder or a table column named ``driftline_write`` gives None.
    """
    if WRITE_FOLDER in types:
        return None
    base = loc.child("")
    out: dict[str, list[str]] = {}
    for path, add in zip(paths, adds, strict=True):
        parts = path[len(base) :].split("/")
        if not path.startswith(base) or len(parts) != len(partition_by) + 2:
            return None
        if parts[0].startswith(WRITE_FOLDER + "=w"):
            group = ""
        elif parts[0].startswith(STAGE_PREFIX):
            group = parts[0]
        else:
            return None
        for col, folder in zip(partition_by, parts[1:-1], strict=True):
            text = folder_value(folder, col)
            if text is False:
                return None
            try:
                found = policy.canonical_partition_text(types[col], text)
                logged = policy.canonical_partition_text(
                    types[col], policy.partition_value_text(add["partition." + col])
                )
            except TableError:
                return None
            if found != logged:
                return None
        out.setdefault(group, []).append(path)
    return out


def _file_uris(loc: Location, adds: list[dict[str, Any]]) -> list[str]:
    """Decoded absolute file locations for the given add rows (log paths are URL-encoded)."""
    from urllib.parse import unquote

    out = []
    for a in adds:
        path = a["path"]
        if "://" in path or path.startswith("/"):
            raise TableError(f"table {loc.name}: absolute file path in the log is not supported: {path}")
        out.append(loc.uri.rstrip("/") + "/" + unquote(path))
    return out


def _spark_path(loc: Location, uri: str) -> str:
    rel = uri[len(loc.uri.rstrip("/")) + 1 :]
    return loc.child(rel)


def _as_utc(value: dt.datetime | str) -> dt.datetime:
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _sql_literal(value: Any, data_type: Any) -> str:
    """A typed partition value from the log as Spark SQL text (strings as UTF-8 hex: no escaping)."""
    type_sql = data_type.simpleString()
    if value is None:
        return f"CAST(NULL AS {type_sql})"
    if isinstance(data_type, StringType):
        return f"CAST(X'{str(value).encode('utf-8').hex()}' AS STRING)"
    if isinstance(data_type, DateType):
        return f"DATE'{value.isoformat()}'"
    if isinstance(data_type, BooleanType):
        return "true" if value else "false"
    if isinstance(data_type, ByteType | ShortType | IntegerType | LongType):
        return f"CAST({int(value)} AS {type_sql})"
    raise TableError(f"partition value {value!r} of type {type_sql} is not supported")
