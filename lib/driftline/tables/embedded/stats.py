"""The staged files of one write and their Delta statistics, read from the Parquet footers."""

from __future__ import annotations

import datetime as dt
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql.types import (
    ByteType,
    DateType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from driftline.errors import TableError
from driftline.tables import schema as policy
from driftline.tables.backend import PartitionKey
from driftline.tables.embedded.layout import folder_value
from driftline.tables.names import Location

STRING_STATS_MAX = 32
FOOTER_READERS = 8


@dataclass(frozen=True)
class StagedFile:
    """One Parquet file Spark wrote into the staging folder."""

    rel_path: str  # relative to the table root, raw (delta-rs encodes it)
    size: int
    mtime_ms: int
    partition: PartitionKey
    rows: int
    stats: dict[str, Any]
    partition_columns: tuple[str, ...] = ()


def staged_files(loc: Location, stage: str, partition_by: tuple[str, ...], schema: StructType) -> list[StagedFile]:
    """The data files below ``<table>/<stage>/``, their partition values (from the folder names,
    checked against the column types) and footer statistics; Hadoop's bookkeeping files are skipped."""
    fs, base = pafs.FileSystem.from_uri(loc.uri)
    types = {f.name: f.dataType for f in schema.fields}
    files: list[tuple[str, pafs.FileInfo, PartitionKey]] = []
    for info in fs.get_file_info(pafs.FileSelector(f"{base}/{stage}", recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(base) + 1 :]
        parts = rel.split("/")
        if any(p.startswith(("_", ".")) for p in parts[1:]):  # _temporary, .crc, _SUCCESS
            if parts[-1].endswith(".crc") and loc.local_path is not None:
                fs.delete_file(info.path)  # Hadoop's checksum sidecars: clutter for BI readers
            continue
        if not parts[-1].endswith(".parquet"):
            continue
        values = []
        for col, folder in zip(partition_by, parts[1:-1], strict=True):
            text = folder_value(folder, col)
            if text is False:
                raise TableError(f"table {loc.name}: unexpected staged folder {folder!r}, expected {col}=...")
            values.append(policy.canonical_partition_text(types[col], text))
        files.append((rel, info, tuple(values)))

    data_fields = [f for f in schema.fields if f.name not in partition_by]

    def describe(item: tuple[str, pafs.FileInfo, PartitionKey]) -> StagedFile:
        rel, info, values = item
        with fs.open_input_file(info.path) as handle:
            meta = pq.ParquetFile(handle).metadata
        mtime = int(info.mtime.timestamp() * 1000) if info.mtime else int(time.time() * 1000)
        return StagedFile(
            rel, info.size, mtime, values, meta.num_rows, file_stats(meta, data_fields), tuple(partition_by)
        )

    with ThreadPoolExecutor(max_workers=FOOTER_READERS) as pool:
        return list(pool.map(describe, files))


def check_not_null(table: str, schema: StructType, staged: list[StagedFile]) -> None:
    """Spark writes every Parquet column as optional: NOT NULL is proven by the footers' null counts."""
    for field in schema.fields:
        if field.nullable:
            continue
        for f in staged:
            count = f.stats["nullCount"].get(field.name)
            if field.name in f.partition_columns:
                continue
            if count is None or count > 0:
                found = "unknown" if count is None else str(count)
                raise TableError(
                    f"table {table}: NOT NULL column {field.name!r} has {found} null values in {f.rel_path}"
                )


def file_stats(meta: pq.FileMetaData, fields: list[StructField]) -> dict[str, Any]:
    """Delta per-file statistics from a Parquet footer: numRecords, nullCount, min/max where safe.

    min/max only for integer, date, timestamp (rounded outward to milliseconds) and short strings;
    floats (NaN), decimals, binary and nested columns get none, which readers treat as unknown.
    """
    by_name = {f.name: f for f in fields}
    nulls: dict[str, int] = {}
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    for i in range(meta.num_columns):
        path = meta.schema.column(i).path
        field = by_name.get(path)
        if field is None:
            continue
        groups = [meta.row_group(g).column(i).statistics for g in range(meta.num_row_groups)]
        if any(s is None or not s.has_null_count for s in groups):
            continue  # unknown: say nothing rather than something wrong
        nulls[path] = sum(s.null_count for s in groups)
        with_values = [s for s in groups if s.has_min_max]
        if not with_values or any(not s.has_min_max and s.num_values > 0 for s in groups):
            continue
        lo, hi = _min_max(field, with_values)
        if lo is not None and hi is not None:
            mins[path], maxs[path] = lo, hi
    stats: dict[str, Any] = {"numRecords": meta.num_rows, "nullCount": nulls}
    if mins:
        stats["minValues"], stats["maxValues"] = mins, maxs
    return stats


def _min_max(field: StructField, groups: list[Any]) -> tuple[Any, Any]:
    data_type = field.dataType
    if isinstance(data_type, ByteType | ShortType | IntegerType | LongType):
        return min(int(s.min) for s in groups), max(int(s.max) for s in groups)
    if isinstance(data_type, DateType):
        lo, hi = min(s.min for s in groups), max(s.max for s in groups)
        return (lo.isoformat(), hi.isoformat()) if isinstance(lo, dt.date) else (None, None)
    if isinstance(data_type, TimestampType):
        if any(s.physical_type != "INT64" or "timeUnit=microseconds" not in str(s.logical_type) for s in groups):
            return None, None
        lo = min(int(s.min_raw) for s in groups)
        hi = max(int(s.max_raw) for s in groups)
        return _ts_ms(math.floor(lo / 1000)), _ts_ms(math.ceil(hi / 1000))  # stats are ms: round outward
    if isinstance(data_type, StringType):
        lo, hi = min(s.min for s in groups), max(s.max for s in groups)
        if isinstance(lo, str) and isinstance(hi, str) and max(len(lo), len(hi)) <= STRING_STATS_MAX:
            return lo, hi
    return None, None


def _ts_ms(millis: int) -> str:
    stamp = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=millis)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
