"""The rows the train job and ``driftline models adopt`` read: the input table versions, the model's columns of a
table (the entity key, ``as_of_date``, the features cast as the model takes them, the segment columns) and the
feature rows of a window with a label known before a date. `driftline.jobs.train` collects and splits them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from driftline.errors import ConfigError, InputContractError, MissingInputError
from driftline.monitoring.segments import segment_alias
from driftline.training import dataset as ds
from driftline.vocabulary import AS_OF

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.config.schema import DriftlineConfig
    from driftline.jobs.train import Plan
    from driftline.tables import TableStore


def input_versions(store: TableStore, plan: Plan) -> dict[str, int]:
    """Latest version of the features and labels tables (the versions this run reads and records)."""
    for table in (plan.features_table, plan.labels_table):
        if not store.exists(table):
            raise MissingInputError(
                f"table {table}: expected it to exist for training, found none (run prepare_features / load labels)"
            )
    return {t: store.version(t) for t in (plan.features_table, plan.labels_table)}


def labelled_window(store: TableStore, cfg: DriftlineConfig, plan: Plan, versions: dict[str, int], start: dt.date,
                    end: dt.date, known_before: dt.date, keep: tuple[str, ...] = ()) -> DataFrame:
    """The feature rows of as-of dates ``start``..``end`` (the given table versions) that have a label known before
    ``known_before`` 00:00 UTC: `model_columns` (with the ``keep`` columns) and ``label``."""
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    features = store.read(plan.features_table, version=versions[plan.features_table], partitions={AS_OF: days})
    features, segments = model_columns(features, cfg, plan, plan.features_table, keep=keep)
    source = cfg.sources.labels
    if source is None:
        raise ConfigError("sources.labels: the train job needs a label table, found none configured")
    labels = ds.matured_labels(store.read(plan.labels_table, version=versions[plan.labels_table]),
                               source, plan.label_as_of, known_before)
    return ds.with_labels(ds.filter_window(features, start, end), labels, cfg.entity_key,
                          [*plan.features, *segments, *keep])


def model_columns(df: DataFrame, cfg: DriftlineConfig, plan: Plan, table: str,
                  keep: tuple[str, ...] = ()) -> tuple[DataFrame, list[str]]:
    """The entity key (string), as_of_date (date), the features (numeric as double, categorical as string), each
    segment column's string value (`segment_alias`, as the monitor reads it) and the ``keep`` columns of ``df``;
    with the segment aliases. `InputContractError` naming the columns ``table`` lacks."""
    from pyspark.sql import functions as F

    missing = [c for c in (cfg.entity_key, AS_OF, *plan.features, *keep) if c not in df.columns]
    if missing:
        raise InputContractError(f"table {table}: expected columns {', '.join(missing)}, found them missing")
    segments = {segment_alias(c): c for c in cfg.monitoring.segments if c in df.columns}
    return df.select(
        F.col(cfg.entity_key).cast("string").alias(cfg.entity_key), F.col(AS_OF).cast("date").alias(AS_OF),
        *[F.col(c).cast("double").alias(c) for c in plan.numeric],
        *[F.col(c).cast("string").alias(c) for c in plan.categorical],
        *[F.col(c).cast("string").alias(a) for a, c in segments.items()],
        *[F.col(c) for c in keep],
    ), list(segments)
