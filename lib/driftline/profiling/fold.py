"""The one pass of `driftline.profiling.profile`: `core_pass` folds each task's rows into one row of mergeable
aggregates per group and merges those rows on the driver.

The fold runs on the JVM (``driftline.jvm.ProfileFold``, `driftline.jvm`) where driftline's jar is loaded and
the group key is a plain type (`_jvm_fold`, with the spec of `_column_spec`), else as ``mapInArrow`` with
numpy (`_arrow_fold`, over `driftline.profiling.accumulate`; the only fold of a Spark Connect session, which
has no driver JVM to call: it uses DataFrame operations only); both write the same per-task rows (``part``,
[group key,] ``add``, ``lo``, ``hi``, ``mom``). The driver merges them in partition order, so the numbers are
deterministic for the same data, partitioning and bins (counts, min, max exactly; mean, std and offset sums up
to the last bits across partitionings).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from driftline.jvm import JVM_FOLD_CONF, PROFILE_FOLD, is_connect, java_class
from driftline.profiling.accumulate import Accumulator, accumulate, core_row_of, hash_column, layout
from driftline.profiling.bins import CategoricalBins, ColumnBins, NumericBins, ProfileError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

GROUP = "__group__"

_JVM_KEY_TYPES = ("string", "int", "bigint", "smallint", "tinyint", "date", "timestamp", "boolean", "double",
                  "float")


def core_pass(df: DataFrame, by: str | None, columns: Sequence[str],
              bins: Mapping[str, ColumnBins], engine: str = "auto") -> dict[Any, dict[str, Any]]:
    """The exact statistics of `profile` per group in one pass: each task folds its rows into one row per
    group; the driver merges the rows in partition order (deterministic for the same partitioning). Returns
    group key → ``{rows, c<i>_<stat>}`` as `profile_from_row` reads.

    The fold runs on the JVM (``driftline.jvm.ProfileFold``, `driftline.jvm`) when that class is loaded and
    the group key is a plain type, else as ``mapInArrow`` with numpy (`accumulate`); both write the same
    rows. ``engine``: ``"auto"``, or ``"jvm"`` / ``"arrow"`` to insist on one (tests compare them)."""
    add_names, numeric = layout(columns, bins)
    merged = core_accumulators(df, by, columns, bins, engine)
    return {key: core_row_of(acc, add_names, numeric) for key, acc in merged.items()}


def core_accumulators(df: DataFrame, by: str | None, columns: Sequence[str], bins: Mapping[str, ColumnBins],
                      engine: str = "auto") -> dict[Any, Accumulator]:
    """`core_pass` before its last step: the merged accumulator per group, to merge further with stored ones
    (the monitor's per-date profiles) before `core_row` turns it into the core row."""
    add_names, numeric = layout(columns, bins)
    frame = _fold_frame(df, by, columns, bins)
    parts = _fold_parts(frame, by, columns, bins, engine, len(add_names), len(numeric))
    return _merge_parts(parts, by is not None, len(add_names), len(numeric))


def core_row(acc: Accumulator, columns: Sequence[str], bins: Mapping[str, ColumnBins]) -> dict[str, Any]:
    """The core row `driftline.profiling.profile.profile_from_row` reads, of a merged accumulator."""
    add_names, numeric = layout(columns, bins)
    return core_row_of(acc, add_names, numeric)


def _fold_frame(df: DataFrame, by: str | None, columns: Sequence[str], bins: Mapping[str, ColumnBins]) -> DataFrame:
    """The columns both folds read: ``c<i>`` (double for numeric, string for categorical), the ``xxhash64``
    of hashed categorical columns (`hash_column`) and, grouped, the key as `GROUP`."""
    from pyspark.sql import functions as F

    cols = [(F.col(c).cast("double") if isinstance(bins[c], NumericBins) else F.col(c).cast("string")).alias(f"c{i}")
            for i, c in enumerate(columns)]
    cols += [F.xxhash64(F.col(c).cast("string")).alias(hash_column(i)) for i, c in enumerate(columns)
             if isinstance(bins[c], CategoricalBins) and bins[c].hashed]
    if by is not None:
        cols.append(F.col(by).alias(GROUP))
    return df.select(*cols)


def _fold_parts(frame: DataFrame, by: str | None, columns: Sequence[str], bins: Mapping[str, ColumnBins],
                engine: str, n_add: int, n_num: int) -> list[Row]:
    """Run the fold ``engine`` picks (the JVM one where it can run, unless ``"arrow"``) over ``frame``; the
    per-task rows, one per task and group."""
    grouped = by is not None
    jvm, why_not = _jvm_fold(frame, columns, bins, grouped) if engine != "arrow" else (None, "engine arrow")
    if jvm is None and engine == "jvm":
        raise ProfileError(f"core_pass: expected the JVM fold ({PROFILE_FOLD}) to run, found {why_not}")
    log.debug("profile pass over %d columns%s: %s fold", len(columns), f" by {by}" if grouped else "",
              "JVM" if jvm is not None else f"Arrow + numpy ({why_not})")
    if jvm is not None:
        return jvm.collect()
    fold = _arrow_fold(columns, bins, grouped, n_add, n_num)
    return frame.mapInArrow(fold, _part_schema(frame, grouped)).collect()


def _merge_parts(parts: Iterable[Row], grouped: bool, n_add: int, n_num: int) -> dict[Any, Accumulator]:
    """Merge the per-task rows per group key, in partition order."""
    merged: dict[Any, Accumulator] = {}
    for r in sorted(parts, key=lambda r: r["part"]):
        merged.setdefault(r[GROUP] if grouped else None, Accumulator(n_add, n_num)).merge(Accumulator.from_row(r))
    return merged


def _part_schema(frame: DataFrame, grouped: bool) -> StructType:
    """The schema of the per-task rows: ``part`` (partition id), the key when ``grouped``, the accumulator arrays."""
    from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StructField, StructType

    key_field = [StructField(GROUP, frame.schema[GROUP].dataType)] if grouped else []
    return StructType([StructField("part", IntegerType()), *key_field,
                       *(StructField(f, ArrayType(DoubleType())) for f in ("add", "lo", "hi", "mom"))])


def _arrow_fold(columns: Sequence[str], bins: Mapping[str, ColumnBins], grouped: bool, n_add: int,
                n_num: int) -> Callable[[Iterable[Any]], Iterable[Any]]:
    """The ``mapInArrow`` function of the Arrow + numpy fold: a task's record batches → one record batch per group."""

    def fold(batches: Iterable[Any]) -> Iterable[Any]:
        from pyspark import TaskContext

        accs, types = _fold_batches(batches, columns, bins, grouped, n_add, n_num)
        yield from _part_batches(accs, types, TaskContext.get().partitionId(), grouped)

    return fold


def _fold_batches(batches: Iterable[Any], columns: Sequence[str], bins: Mapping[str, ColumnBins], grouped: bool,
                  n_add: int, n_num: int) -> tuple[dict[Any, Accumulator], dict[Any, Any]]:
    """Fold record batches into one accumulator per group key; also each key's Arrow type (grouped only)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    accs: dict[Any, Accumulator] = {}
    types: dict[Any, Any] = {}
    for batch in batches:
        if not grouped:
            accumulate(accs.setdefault(None, Accumulator(n_add, n_num)), batch, columns, bins)
            continue
        keys = batch.column(GROUP)
        for key in pc.unique(keys).to_pylist():
            mask = pc.is_null(keys) if key is None else pc.fill_null(pc.equal(keys, pa.scalar(key, keys.type)), False)
            types[key] = keys.type
            accumulate(accs.setdefault(key, Accumulator(n_add, n_num)), batch.filter(mask), columns, bins)
    return accs, types


def _part_batches(accs: Mapping[Any, Accumulator], types: Mapping[Any, Any], part: int,
                  grouped: bool) -> Iterable[Any]:
    """A task's accumulators as per-task rows (one record batch per group), as `_part_schema`."""
    import pyarrow as pa

    for key, acc in accs.items():
        data = {"part": pa.array([part], pa.int32())}
        if grouped:
            data[GROUP] = pa.array([key], types[key])
        for f, values in (("add", acc.add), ("lo", acc.lo), ("hi", acc.hi), ("mom", acc.mom.ravel())):
            data[f] = pa.array([values.tolist()], pa.list_(pa.float64()))
        yield pa.RecordBatch.from_pydict(data)


def _jvm_fold(frame: DataFrame, columns: Sequence[str], bins: Mapping[str, ColumnBins],
              grouped: bool) -> tuple[DataFrame | None, str]:
    """The JVM fold's per-task rows of ``frame`` (columns ``c<i>`` [+ key]), or None and why it cannot run here."""
    from pyspark.sql import DataFrame

    spark = frame.sparkSession
    if is_connect(spark):
        return None, "a Spark Connect session (no driver JVM in this process)"
    if spark.conf.get(JVM_FOLD_CONF, "true").lower() == "false":
        return None, "runtime.jvm_fold false"
    if grouped and frame.schema[GROUP].dataType.simpleString() not in _JVM_KEY_TYPES:
        return None, f"a group key of type {frame.schema[GROUP].dataType.simpleString()}"
    fold = java_class(spark, PROFILE_FOLD)
    if fold is None:
        return None, "no such class on the driver's classpath"
    spec = {"grouped": grouped, "key": frame.columns.index(GROUP) if grouped else -1,
            "columns": [_column_spec(bins[c], frame.columns, i) for i, c in enumerate(columns)]}
    return DataFrame(fold.fold(frame._jdf, json.dumps(spec)), spark), ""


def _column_spec(b: ColumnBins, frame_columns: Sequence[str], i: int) -> dict[str, Any]:
    """One column of the JVM fold's spec: numeric edges, or categories (+ tail buckets, hash column, filter)."""
    if isinstance(b, NumericBins):
        return {"kind": "numeric", "edges": list(b.edges)}
    spec: dict[str, Any] = {"kind": "categorical", "categories": list(b.categories)}
    if b.hashed and b.membership is not None:
        spec.update(buckets=b.buckets, hash=frame_columns.index(hash_column(i)), membership=b.membership.spec())
    return spec
