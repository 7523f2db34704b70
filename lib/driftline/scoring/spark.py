"""The Spark side of scoring: the pure core (`driftline.scoring.core`) run by ``mapInPandas``.

The verified model bytes are broadcast once (on a Spark Connect session, which has no broadcasts, they travel
inside the pickled function: `Inline`); each Python worker deserializes a version once and keeps it
(`driftline.scoring.worker`). Only the entity key and the models' features cross into
Python (numeric as double, categorical as string — the casts training applied), in Arrow batches
of ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftline.jvm import is_connect
from driftline.scoring.core import Scorer, score_models
from driftline.scoring.signature import ModelSignature
from driftline.vocabulary import MODEL_VERSION, PREDICTED_LABEL, ROLE, SCORE

if TYPE_CHECKING:
    import pandas as pd
    from pyspark import Broadcast
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
    """Scores a features DataFrame with one or more verified model versions via ``mapInPandas``."""

    def __init__(self, models: Sequence[tuple[ModelRef, bytes]], *, key: str, threshold: float, threads: int):
        self.refs = [ref for ref, _ in models]
        self.key = key
        self.threshold = threshold
        self.threads = threads
        self._data = [data for _, data in models]
        self._broadcasts: list[Broadcast[bytes] | Inline] = []

    def transform(self, df: DataFrame) -> DataFrame:
        """Rows of ``df`` → one output row per (row, model): key, role, model_version, score, predicted_label."""
        if not self._broadcasts:
            spark = df.sparkSession
            if is_connect(spark):   # no broadcasts: the bytes travel in the pickled function
                self._broadcasts = [Inline(data) for data in self._data]
            else:
                sc = spark.sparkContext
                self._broadcasts = [sc.broadcast(data) for data in self._data]
        inputs = model_input(df, self.key, [r.signature for r in self.refs])
        schema = scored_schema(inputs.schema, self.key)
        fn = partition_scorer(list(zip(self.refs, self._broadcasts, strict=True)), self.key, self.threshold,
                              self.threads)
        return inputs.mapInPandas(fn, schema)

    def close(self) -> None:
        """Drop the broadcast model bytes from the executors."""
        for bc in self._broadcasts:
            bc.unpersist()
        self._broadcasts = []


def partition_scorer(models: Sequence[tuple[ModelRef, Broadcast[bytes] | Inline]], key: str, threshold: float,
                     threads: int) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function ``mapInPandas`` runs on each partition (captures only refs, broadcasts and settings)."""

    def score_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from driftline.scoring.worker import cached_model

        scorers = [
            Scorer(ref.role, ref.version,
                   cached_model(ref.name, ref.version, ref.sha256, lambda bc=bc: bc.value, threads), ref.signature)
            for ref, bc in models
        ]
        for pdf in batches:
            yield score_models(pdf, scorers, key=key, threshold=threshold)

    return score_partition
