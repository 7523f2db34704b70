"""The Spark side of scoring: the pure core (`driftline.scoring.core`) run by ``mapInArrow``.

The verified model bytes are broadcast once (on a Spark Connect session, which has no broadcasts, they travel
inside the pickled function: `Inline`); each Python worker deserializes a version once and keeps it
(`driftline.scoring.worker`). Only the entity key and the models' features cross into
Python (numeric as double, categorical as string — the casts training applied), in Arrow batches
of ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows; the key goes back out as the same Arrow
array (no pandas round trip), and the batch's statistics are tallied there (`driftline.scoring.tally`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pyspark.accumulators import AccumulatorParam

from driftline.jvm import is_connect
from driftline.profiling.sample import priority_column
from driftline.scoring.core import Scorer, score_arrays
from driftline.scoring.signature import ModelSignature
from driftline.scoring.tally import Tally, TallySpec, tally_batch
from driftline.vocabulary import MODEL_VERSION, PREDICTED_LABEL, ROLE, SCORE

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import Accumulator, Broadcast
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    """A verified model version to score with: identity, artifact hash and signature (no model object)."""

    role: str
    name: str
    version: str
    sha256: str
    signature: ModelSignature
    allow_code: bool = False      # an adopted python_function version may be loaded (adopt.trust_pickle)


def scored_schema(df_schema: StructType, key: str) -> StructType:
    """Output of the scoring pass: key (its input type), role, model_version, score, predicted_label."""
    from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

    return StructType([
        StructField(key, df_schema[key].dataType),
        StructField(ROLE, StringType(), False),
        StructField(MODEL_VERSION, StringType(), False),
        StructField(SCORE, DoubleType()),
        StructField(PREDICTED_LABEL, IntegerType()),
    ])


def model_input(df: DataFrame, key: str, signatures: Sequence[ModelSignature]) -> DataFrame:
    """``key`` plus every model's features by name, cast as training cast them; other columns dropped."""
    from pyspark.sql import functions as F

    numeric = {c for s in signatures for c in s.numeric}
    categorical = {c for s in signatures for c in s.categorical}
    columns = [F.col(key)]
    for c in dict.fromkeys(c for s in signatures for c in s.features):
        if c in numeric and c not in categorical:
            columns.append(F.col(c).cast("double").alias(c))
        elif c in categorical and c not in numeric:
            columns.append(F.col(c).cast("string").alias(c))
        else:  # numeric for one model, categorical for the other: model_frame converts per model
            columns.append(F.col(c))
    return df.select(*columns)


@dataclass(frozen=True)
class Inline:
    """A model's bytes carried inside the scoring function, read like a broadcast (``value``): a Spark Connect
    session has no broadcasts (no ``sparkContext``); the server ships the function to every task."""

    value: bytes

    def unpersist(self) -> None:
        """Nothing to drop: the bytes go with the function."""


class BatchScorer:
    """Scores a features DataFrame with one or more verified model versions via ``mapInArrow``."""

    def __init__(self, models: Sequence[tuple[ModelRef, bytes]], *, key: str, threshold: float, threads: int):
        self.refs = [ref for ref, _ in models]
        self.key = key
        self.threshold = threshold
        self.threads = threads
        self._data = [data for _, data in models]
        self._broadcasts: list[Broadcast[bytes] | Inline] = []

    def transform(self, df: DataFrame, tally: TallySpec | None = None, sink: Accumulator | None = None) -> DataFrame:
        """Rows of ``df`` → one output row per (row, model): key, role, model_version, score, predicted_label.

        With ``tally`` and ``sink`` (a Spark accumulator of `TallySink`), every task also folds its rows into a
        `driftline.scoring.tally.Tally` and adds it to ``sink`` under its partition id when its rows are done:
        the statistics come from the pass that scores (read ``sink.value`` after the action)."""
        from pyspark.sql import functions as F

        if not self._broadcasts:
            spark = df.sparkSession
            if is_connect(spark):   # no broadcasts: the bytes travel in the pickled function
                self._broadcasts = [Inline(data) for data in self._data]
            else:
                sc = spark.sparkContext
                self._broadcasts = [sc.broadcast(data) for data in self._data]
        inputs = model_input(df, self.key, [r.signature for r in self.refs])
        if tally is not None:
            hashed = sorted({src for plan in tally.plans for src in plan.hashes.values()} - set(inputs.columns))
            extra = [F.xxhash64(F.col(hash_source(h)).cast("string")).alias(h) for h in hashed]
            if tally.sample_below:
                extra.append(priority_column(self.key, tally.salt))
            inputs = inputs.select("*", *extra)
        schema = scored_schema(inputs.schema, self.key)
        fn = partition_scorer(list(zip(self.refs, self._broadcasts, strict=True)), self.key, self.threshold,
                              self.threads, tally, sink)
        return inputs.mapInArrow(fn, schema)

    def close(self) -> None:
        """Drop the broadcast model bytes from the executors."""
        for bc in self._broadcasts:
            bc.unpersist()
        self._broadcasts = []


HASH_PREFIX = "__xxhash64__"


def hash_input(column: str) -> str:
    """The scoring input's column holding ``xxhash64(column as string)`` (hashed categorical bins)."""
    return HASH_PREFIX + column


def hash_source(name: str) -> str:
    return name.removeprefix(HASH_PREFIX)


class TallySink(AccumulatorParam):
    """A Spark accumulator of per-task tallies: partition id → `Tally`; a task that runs again (retry,
    speculation, a re-read) replaces its entry, so nothing is counted twice."""

    def zero(self, value: dict[int, Tally]) -> dict[int, Tally]:
        return {}

    def addInPlace(self, value1: dict[int, Tally], value2: dict[int, Tally]) -> dict[int, Tally]:
        value1.update(value2)
        return value1


def partition_scorer(models: Sequence[tuple[ModelRef, Broadcast[bytes] | Inline]], key: str, threshold: float,
                     threads: int, tally: TallySpec | None = None,
                     sink: Accumulator | None = None) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function ``mapInArrow`` runs on each partition (captures only refs, broadcasts and settings)."""

    def score_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:

        from driftline.scoring.worker import cached_model

        scorers = [
            Scorer(ref.role, ref.version,
                   cached_model(ref.name, ref.version, ref.sha256, lambda bc=bc: bc.value, threads,
                                ref.allow_code), ref.signature)
            for ref, bc in models
        ]
        features = list(dict.fromkeys(c for s in scorers for c in s.signature.features))
        task = Tally() if tally is not None else None
        for batch in batches:
            pdf = batch.select(features).to_pandas() if features else None
            scores, labels = {}, {}
            for s in scorers:
                scores[s.role], labels[s.role] = score_arrays(pdf, s.model, s.signature, threshold=threshold)
            yield output_batch(batch.column(batch.schema.get_field_index(key)), key, scorers, scores, labels)
            if task is not None and tally is not None:
                tally_batch(task, tally, batch, scores, labels)
        if task is not None and sink is not None:
            from pyspark import TaskContext

            sink.add({TaskContext.get().partitionId(): task})

    return score_partition


def output_batch(keys: pa.Array, key: str, scorers: Sequence[Scorer], scores: dict[str, np.ndarray],
                 labels: dict[str, np.ndarray | None]) -> pa.RecordBatch:
    """The scoring pass's output rows of one batch, every scorer's stacked: the key as it came in (the same Arrow
    array, no conversion), role, model_version, score, predicted_label (null for regression)."""
    import pyarrow as pa

    n = len(keys)

    def repeated(values: list[str]) -> pa.Array:
        return pa.concat_arrays([pa.repeat(pa.scalar(v, pa.string()), n) for v in values])

    predicted = [labels[s.role] for s in scorers]
    return pa.RecordBatch.from_arrays([
        pa.concat_arrays([keys] * len(scorers)) if len(scorers) > 1 else keys,
        repeated([s.role for s in scorers]),
        repeated([s.version for s in scorers]),
        pa.array(np.concatenate([scores[s.role] for s in scorers]), pa.float64()),
        pa.array(np.concatenate(predicted), pa.int32()) if all(p is not None for p in predicted)
        else pa.nulls(n * len(scorers), pa.int32()),
    ], names=[key, ROLE, MODEL_VERSION, SCORE, PREDICTED_LABEL])

