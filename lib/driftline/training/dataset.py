"""Training set: features joined point-in-time with labels matured by D, split by time, sampled.

For a run on date D (see `training_windows`):

- a label is usable only if its ``timestamp`` (when the outcome became known) is < D 00:00 UTC;
- the validation window holds the last ``validation_days`` as-of dates ending ``horizon_days + 1``
  days before D, so every label in it had its whole horizon before D;
- the training window ends ``gap_days`` before the validation window starts;
- feature rows outside [train_start, validation_end] are never read (partition pruning + filter).

A retrain inside a drift episode passes the episode's ``onset`` (first drifted monitoring window):
validation still ends on `last_matured_date`, but holds post-onset as-of dates only (the last
min(``validation_days``, max(1, (P - ``gap_days``) // 2)) of the P matured post-onset dates), so the
post-onset dates before it (minus the gap) train alongside the pre-onset ones, and the promotion
gate compares challenger and champion on the new regime.

The sample cap keeps the rows with the smallest ``xxhash64(entity, as_of_date, sample_seed)``: the
same rows for the same data and seed however Spark partitions it, chosen on the executors.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from driftline.errors import InputContractError, MissingInputError
from driftline.vocabulary import AS_OF

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.features.spec import LabelSource
    from driftline.training.spec import TrainingConfig

log = logging.getLogger(__name__)

LABEL = "label"


@dataclass(frozen=True)
class Windows:
    """As-of date windows (inclusive) of one training run on ``date``."""

    date: dt.date
    train_start: dt.date
    train_end: dt.date
    validation_start: dt.date
    validation_end: dt.date
    onset: dt.date | None = None     # the drift episode's onset a retrain is anchored on; None: an ordinary run

    def post_onset_days(self) -> int:
        """Matured as-of dates from the onset to the validation end (0 without an onset)."""
        if self.onset is None:
            return 0
        return max(0, (self.validation_end - self.onset).days + 1)

    def feature_dates(self) -> list[dt.date]:
        """Every as-of date whose feature partition may be read (train start … validation end)."""
        days = (self.validation_end - self.train_start).days + 1
        return [self.train_start + dt.timedelta(days=i) for i in range(days)]

    def tags(self) -> dict[str, str]:
        tags = {
            "driftline.date": self.date.isoformat(),
            "driftline.train_window": f"{self.train_start}..{self.train_end}",
            "driftline.validation_window": f"{self.validation_start}..{self.validation_end}",
        }
        if self.onset is not None:
            tags["driftline.onset"] = self.onset.isoformat()
        return tags


def last_matured_date(date: dt.date, horizon_days: int) -> dt.date:
    """The latest as-of date whose whole label horizon ended before ``date`` 00:00 UTC: ``horizon_days + 1``
    days before it.

    A label of as-of date A may arrive as late as A + ``horizon_days`` 00:00 UTC, and `matured_labels` counts
    only labels known strictly before ``date`` 00:00 UTC, so A + ``horizon_days`` < ``date`` is needed.
    """
    return date - dt.timedelta(days=horizon_days + 1)


def training_windows(date: dt.date, horizon_days: int, cfg: TrainingConfig,
                     onset: dt.date | None = None) -> Windows:
    """Windows for a run on ``date``: validation ends on `last_matured_date` (``horizon_days + 1`` days before).

    Without ``onset`` validation spans ``validation_days``. With it (a retrain inside a drift episode)
    validation is made of post-onset dates only: with P matured post-onset as-of dates (onset … last
    matured) and U = P − ``gap_days`` of them usable outside the gap, validation is the last
    min(``validation_days``, max(1, U // 2)) of them, so the post-onset dates before it (after the gap) train.
    The training window always spans ``train_days`` ending ``gap_days`` before validation, pre- and
    post-onset dates alike. U < 2 (no post-onset date left to train on) → `MissingInputError`.
    """
    val_end = last_matured_date(date, horizon_days)
    val_days = cfg.validation_days
    if onset is not None:
        post = (val_end - onset).days + 1
        usable = usable_post_onset_days(date, horizon_days, cfg, onset)
        if usable < 2:
            gap = f" + training.gap_days={cfg.gap_days}" if cfg.gap_days else ""
            raise MissingInputError(
                f"training windows for onset {onset}: expected at least {2 + cfg.gap_days} post-onset as-of dates "
                f"with matured labels (2{gap}: one to validate, one to train on) up to the last matured date "
                f"{val_end} (run date {date} − label.horizon_days {horizon_days} − 1), found {max(post, 0)}; "
                f"retrain on {onset + dt.timedelta(days=horizon_days + 2 + cfg.gap_days)} or later"
            )
        val_days = min(val_days, max(1, usable // 2))
    val_start = val_end - dt.timedelta(days=val_days - 1)
    train_end = val_start - dt.timedelta(days=cfg.gap_days + 1)
    train_start = train_end - dt.timedelta(days=cfg.train_days - 1)
    return Windows(date, train_start, train_end, val_start, val_end, onset)


def usable_post_onset_days(date: dt.date, horizon_days: int, cfg: TrainingConfig, onset: dt.date) -> int:
    """Matured post-onset as-of dates (onset … `last_matured_date`) outside the gap: U of `training_windows`,
    which needs at least 2 (one to validate, one to train on)."""
    return (last_matured_date(date, horizon_days) - onset).days + 1 - cfg.gap_days


def post_onset_rows(as_of: pd.Series, onset: dt.date | None) -> int:
    """How many rows of a split have an as-of date on or after ``onset`` (0 without an onset)."""
    if onset is None or as_of.empty:
        return 0
    return int((pd.to_datetime(as_of).dt.date >= onset).sum())


def matured_labels(labels: DataFrame, source: LabelSource, as_of_column: str, date: dt.date) -> DataFrame:
    """Labels known before ``date`` 00:00 UTC, one per (key, as-of date): the latest known wins.

    Reads ``source.key``, ``as_of_column``, ``source.timestamp``, ``source.value``; returns
    ``_label_key`` (string), ``as_of_date`` (date), ``label`` (double).
    """
    from pyspark.sql import functions as F

    needed = [source.key, as_of_column, source.timestamp, source.value]
    missing = [c for c in needed if c not in labels.columns]
    if missing:
        raise InputContractError(
            f"label table {source.table}: expected columns {', '.join(needed)}, "
            f"found {', '.join(missing)} missing (columns: {', '.join(labels.columns)})"
        )
    cutoff = F.lit(f"{date.isoformat()} 00:00:00").cast("timestamp")  # session time zone is UTC
    return (
        labels
        .filter(F.col(source.timestamp).cast("timestamp") < cutoff)
        .select(
            F.col(source.key).cast("string").alias("_label_key"),
            F.col(as_of_column).cast("date").alias(AS_OF),
            F.col(source.timestamp).cast("timestamp").alias("_label_ts"),
            F.col(source.value).cast("double").alias(LABEL),
        )
        .filter(F.col(LABEL).isNotNull())
        .groupBy("_label_key", AS_OF)
        .agg(F.max_by(LABEL, "_label_ts").alias(LABEL))
    )


def filter_window(df: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """Rows whose ``as_of_date`` lies in [start, end]."""
    from pyspark.sql import functions as F

    return df.filter(F.col(AS_OF).between(F.lit(start), F.lit(end)))


def with_labels(features: DataFrame, labels: DataFrame, entity_key: str, feature_names: Sequence[str]) -> DataFrame:
    """Feature rows that have a matured label: entity key, ``as_of_date``, features, ``label``."""
    from pyspark.sql import functions as F

    joined = features.join(
        labels,
        on=[F.col(entity_key).cast("string") == F.col("_label_key"), features[AS_OF] == labels[AS_OF]],
        how="inner",
    )
    return joined.select(features[entity_key], features[AS_OF], *[features[f] for f in feature_names], labels[LABEL])


def collect_sample(
    df: DataFrame, entity_key: str, cap: int | None, seed: int
) -> tuple[pd.DataFrame, bool]:
    """Collect ``df`` to pandas (at most ``cap`` rows, chosen by seeded hash); returns (frame, capped).

    The frame is sorted by (as_of_date, entity) so fitting does not depend on Spark's row order.
    """
    from pyspark.sql import functions as F

    capped = False
    pdf: pd.DataFrame
    if cap is not None:
        ranked = df.withColumn("_h", F.xxhash64(F.col(entity_key).cast("string"), F.col(AS_OF), F.lit(seed)))
        pdf = ranked.orderBy("_h", entity_key, AS_OF).limit(cap + 1).drop("_h").toPandas()  # type: ignore[assignment]
        if len(pdf) > cap:
            capped = True
            pdf = pdf.iloc[:cap]
    else:
        pdf = df.toPandas()  # type: ignore[assignment]
    pdf = pdf.sort_values([AS_OF, entity_key], kind="mergesort").reset_index(drop=True)
    return pdf, capped


def check_labels(y: pd.Series, task: str, split: str) -> np.ndarray:
    """Label values as an array; classification labels must be 0/1."""
    values = y.to_numpy(dtype="float64")
    if task == "classification":
        bad = sorted(set(np.unique(values)) - {0.0, 1.0})
        if bad:
            raise InputContractError(
                f"{split} labels: expected 0/1 values for classification, found {', '.join(map(str, bad[:5]))}"
            )
        return values.astype("int64")
    return values


def check_rows(n: int, minimum: int, split: str, window: str, key: str) -> None:
    """`MissingInputError` when a split has fewer rows than configured."""
    if n < minimum:
        raise MissingInputError(
            f"{split} set ({window}): expected at least {minimum} rows with matured labels "
            f"(training.{key}), found {n}"
        )
