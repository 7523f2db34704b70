"""The monitor job's reads — the only monitoring module that touches the table store.

The champion's predictions of a window and the version that scored it, the stored reference of that
version, the window's feature rows (joined to the predictions), the labels matured for performance, the
rows of earlier windows whose labels matured since, and the earlier runs' metrics for the report's trends.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import InputContractError, MissingInputError
from driftline.monitoring.calibration import thresholds_from_rows
from driftline.monitoring.estimated import CellTable
from driftline.monitoring.estimated_store import cell_table_from_rows
from driftline.monitoring.metrics import ALL_ROWS
from driftline.profiling.bins import ColumnBins, bins_from_rows
from driftline.profiling.stored import is_profile_row, profile_from_rows
from driftline.profiling.types import DatasetProfile, NumericProfile
from driftline.registry.profiles import read_reference_rows
from driftline.tables.contracts import FEATURES, MONITOR_METRICS, PREDICTIONS, RETRAIN_DECISIONS
from driftline.vocabulary import AS_OF, DECISION_DATE, MODEL, MODEL_VERSION, ROLE, RUN_DATE, SCORE, SCORE_DATE

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.features.spec import LabelSource
    from driftline.tables import TableStore

log = logging.getLogger(__name__)

TREND_DAYS = 30  # the report's trends show the runs of the last 30 days
WINDOW_END = "__window_end__"  # group column of the matured windows' performance pass


# --------------------------------------------------------------------------- reference profile


@dataclass(frozen=True)
class Scope:
    """What the monitor's reads need: the table store and the model's identity and label source."""

    store: TableStore
    model: str
    entity_key: str
    labels: LabelSource | None


@dataclass(frozen=True)
class Reference:
    """A model version's reference: profile, bins, quantile grid and id; ``cells``: its estimated-performance
    cell table (`driftline.monitoring.estimated`), None for versions stored without one."""

    version: str
    reference_id: str
    profile: DatasetProfile
    bins: Mapping[str, ColumnBins]
    quantiles: tuple[float, ...]
    calibrated: Mapping[tuple[str, str], float]  # (column, distance metric) → calibrated threshold
    mlflow_run_id: str  # the training run (holds the reference sample for the Evidently page)
    cells: CellTable | None = None

    @property
    def has_offset_sums(self) -> bool:
        """Wasserstein-1 comes from cells and offset sums (references written since they exist)."""
        return all(p.offset_sums for p in self.profile.columns.values()
                   if isinstance(p, NumericProfile) and p.edges)


def load_reference(scope: Scope, version: str) -> Reference:
    """The stored reference profile of ``version`` (features + ``score``) and its calibrated thresholds,
    one partition-pruned read."""
    name = scope.model
    rows = [r.asDict() for r in read_reference_rows(scope.store, name, version).collect()]
    if not any(is_profile_row(r) for r in rows):
        raise MissingInputError(f"table reference_profiles: expected the reference profile of {name} v{version}, "
                                "found no rows (retrain the version to write it)")
    prof, quantiles = profile_from_rows(rows)
    return Reference(version, f"{name}/{version}", prof, bins_from_rows(rows), quantiles,
                     thresholds_from_rows(rows), str(rows[0]["mlflow_run_id"]), cell_table_from_rows(rows))


# --------------------------------------------------------------------------- the window


def champion_predictions(scope: Scope, dates: Sequence[dt.date]) -> DataFrame:
    """The champion's rows of ``<model>__predictions`` over ``dates`` (partition-pruned)."""
    from pyspark.sql import functions as F

    from driftline.vocabulary import CHAMPION

    table = PREDICTIONS.table(scope.model)
    span = f"{dates[0]}..{dates[-1]}"
    if not scope.store.exists(table):
        raise MissingInputError(f"table {table}: expected champion predictions for score_date {span}, "
                                f"found no table (run driftline score first)")
    return (scope.store.read(table, partitions={SCORE_DATE: list(dates)})
            .filter(F.col(SCORE_DATE).between(F.lit(dates[0]), F.lit(dates[-1])) & (F.col(ROLE) == CHAMPION)))


def version_order(version: Any) -> tuple[int, str]:
    """Sort key of registry versions ("2" < "10"): the latest sorts last."""
    return len(str(version)), str(version)


def resolve_version(counts: Mapping[str, int], table: str, dates: Sequence[dt.date]) -> str:
    """The version that scored the window (the latest if several), of its champion rows per version."""
    if not counts:
        raise MissingInputError(
            f"table {table}: expected champion predictions for score_date {dates[0]}..{dates[-1]}, found none "
            f"(run driftline score --from {dates[0]} --to {dates[-1]})"
        )
    versions = sorted(counts, key=version_order)
    if len(versions) > 1:
        log.warning("%s: window %s..%s was scored by versions %s; monitoring against the latest", table, dates[0],
                    dates[-1], ", ".join(versions))
    return versions[-1]


def window_frame(scope: Scope, predictions: DataFrame, dates: Sequence[dt.date],
                 columns: Sequence[str], numeric: Collection[str] = (), few: bool = False,
                 strings: Mapping[str, str] | None = None) -> DataFrame:
    """The rows the champion scored in the window: their ``score`` and feature values.

    Reads the predictions' key, score_date, score and the features ``columns`` of the same key and
    date (left join: a scored row without its feature row shows nulls); returns key, as_of_date,
    ``columns`` and ``score``; a boolean column as the model and its reference saw it (the train
    job's casts): 1.0 / 0.0 when ``numeric``, else "true" / "false". A reference column missing from
    the features table, or one the reference profiled as ``numeric`` but the table holds as neither a
    number nor a boolean, fails (R9), naming expected and found. ``few``: ``predictions`` is a few
    thousand rows (a sample): their feature rows are found with broadcast joins (a left join cannot
    broadcast its preserved side), not a shuffle of the window. ``strings``: more columns of the features
    table, cast to string, as alias → column (the segment columns of `driftline.monitoring.segments`).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, NumericType


    key = scope.entity_key
    table = FEATURES.table(scope.model)
    features_cols = [c for c in columns if c != SCORE]
    if not scope.store.exists(table):
        raise MissingInputError(f"table {table}: expected it to exist for monitoring, found none")
    features = scope.store.read(table, partitions={AS_OF: list(dates)})
    extra = dict(strings or {})
    missing = [c for c in [key, AS_OF, *features_cols, *extra.values()] if c not in features.columns]
    if missing:
        raise InputContractError(f"table {table}: expected the reference's columns {', '.join(features_cols)}"
                                 f"{' and the segment columns ' + ', '.join(extra.values()) if extra else ''}, "
                                 f"found {', '.join(missing)} missing (columns: {', '.join(features.columns)})")
    retyped = [f"{f.name} ({f.dataType.simpleString()})" for f in features.schema.fields
               if f.name in numeric and f.name in features_cols
               and not isinstance(f.dataType, (NumericType, BooleanType))]
    if retyped:
        raise InputContractError(f"table {table}: expected numeric columns as in the reference profile, found "
                                f"{', '.join(retyped)}")
    scored = predictions.select(F.col(key), F.col(SCORE_DATE).alias(AS_OF), F.col(SCORE))
    types = {f.name: f.dataType for f in features.schema.fields}
    as_seen = [F.col(c).cast("double" if c in numeric else "string").alias(c) if isinstance(types[c], BooleanType)
               else F.col(c) for c in features_cols]
    as_seen += [F.col(c).cast("string").alias(a) for a, c in extra.items()]
    feats = features.filter(F.col(AS_OF).between(F.lit(dates[0]), F.lit(dates[-1]))).select(key, AS_OF, *as_seen)
    if few:
        wanted = F.broadcast(scored.select(key, AS_OF).distinct())
        feats = F.broadcast(feats.join(wanted, on=[key, AS_OF], how="left_semi"))
    return scored.join(feats, on=[key, AS_OF], how="left").select(key, AS_OF, *features_cols, SCORE, *extra)


# --------------------------------------------------------------------------- labels


def has_labels(scope: Scope) -> bool:
    """The model has a labels source and its table exists (else no performance rows)."""
    src = scope.labels
    return src is not None and scope.store.exists(src.table)


def labelled_frame(scope: Scope, predictions: DataFrame, date: dt.date, dates: Sequence[dt.date],
                   segments: Sequence[str] = (), keep: Sequence[str] = ()) -> DataFrame | None:
    """The window's champion predictions with their matured label (null when none) and segment columns.

    Labels matured before ``date`` 00:00 UTC (as the train job) are left-joined on entity key and
    ``score_date`` = label ``as_of_date``; ``segments`` come from the features table (same key and
    date). Returns ``score``, ``label``, ``segments`` and the predictions' columns ``keep``; None when
    the model has no labels table.
    """
    from pyspark.sql import functions as F

    from driftline.training.dataset import LABEL, matured_labels

    src = scope.labels
    if src is None or not has_labels(scope):
        log.info("%s: no labels table; no performance rows", scope.model)
        return None
    as_of = src.as_of
    window_labels = scope.store.read(src.table).filter(F.col(as_of).cast("date").between(F.lit(dates[0]),
                                                                                        F.lit(dates[-1])))
    labels = matured_labels(window_labels, src, as_of, date)
    key = scope.entity_key
    scored = predictions.select(F.col(key), F.col(SCORE_DATE).alias(AS_OF), F.col(SCORE), *keep)
    if segments:
        table = FEATURES.table(scope.model)
        features = scope.store.read(table, partitions={AS_OF: list(dates)})
        missing = [c for c in segments if c not in features.columns]
        if missing:
            raise InputContractError(f"monitoring.segments: expected columns of table {table}, found "
                                    f"{', '.join(missing)} missing (columns: {', '.join(features.columns)})")
        segs = (features.filter(F.col(AS_OF).between(F.lit(dates[0]), F.lit(dates[-1])))
                .select(key, AS_OF, *[F.col(c).cast("string").alias(c) for c in segments]))
        scored = scored.join(segs, on=[key, AS_OF], how="left")
    return (scored.withColumn("_label_key", F.col(key).cast("string"))
            .join(labels, on=["_label_key", AS_OF], how="left")
            .select(SCORE, LABEL, *segments, *keep))


@dataclass(frozen=True)
class MaturedFrame:
    """The champion rows of earlier windows with their matured labels (`labelled_frame`, grouped by
    `WINDOW_END`), each window's start and the version that scored it."""

    frame: DataFrame | None
    starts: Mapping[dt.date, dt.date]
    version_of: Mapping[dt.date, str]


def matured_frame(scope: Scope, date: dt.date, windows: Sequence[tuple[dt.date, ...]],
                  segments: Sequence[str] = ()) -> MaturedFrame | None:
    """The rows of ``windows`` (earlier windows of a run on ``date``) with the labels matured before ``date`` and
    the ``segments`` columns (`labelled_frame`): each window takes the champion rows of the latest version that
    scored it (as the current window); windows without champion predictions are left out; None when none has any
    (or no labels table)."""
    from pyspark.sql import functions as F


    if not has_labels(scope) or not windows:
        return None
    span = sorted(d for w in windows for d in w)
    preds = champion_predictions(scope, span)
    scored = {(r[SCORE_DATE], str(r[MODEL_VERSION]))
              for r in preds.select(SCORE_DATE, MODEL_VERSION).distinct().collect()}
    version_of: dict[dt.date, str] = {}
    for w in windows:
        found = sorted({v for d, v in scored if w[0] <= d <= w[-1]}, key=version_order)
        if found:
            version_of[w[-1]] = found[-1]
    if not version_of:
        return None
    end_of = {d: w[-1] for w in windows if w[-1] in version_of for d in w}
    window_end = F.create_map(*[x for d, e in sorted(end_of.items()) for x in (F.lit(d), F.lit(e))])
    keep = F.lit(False)
    for d, e in sorted(end_of.items()):
        keep = keep | ((F.col(SCORE_DATE) == F.lit(d)) & (F.col(MODEL_VERSION) == F.lit(version_of[e])))
    frame = labelled_frame(scope, preds.filter(keep).withColumn(WINDOW_END, window_end[F.col(SCORE_DATE)]), date,
                           span, segments, keep=[WINDOW_END])
    return MaturedFrame(frame, {w[-1]: w[0] for w in windows}, version_of)


# --------------------------------------------------------------------------- the closed loop's history


def recent_metrics(scope: Scope, date: dt.date, days: int = TREND_DAYS) -> list[dict[str, Any]]:
    """The whole-window, reference-baseline ``monitor_metrics`` rows of the model's runs in the ``days`` before
    ``date`` — one partition-pruned read serving the report's trends (`own_window_rows`), the closed loop
    (``__performance__`` rows) and what earlier runs estimated (`estimated_of`): run_date, window_end,
    model_version, column, metric, method, value, threshold, status."""
    from pyspark.sql import functions as F

    if not scope.store.exists(MONITOR_METRICS.table()):
        return []
    since = [date - dt.timedelta(days=days - i) for i in range(days)]
    rows = scope.store.read(MONITOR_METRICS.table(), partitions={MODEL: [scope.model], RUN_DATE: since})
    return [r.asDict() for r in rows
            .filter((F.col(RUN_DATE) < F.lit(date)) & (F.col("baseline") == "reference")
                    & (F.col("slice") == ALL_ROWS))
            .select(RUN_DATE, "window_end", MODEL_VERSION, "column", "metric", "method", "value", "threshold",
                    "status").collect()]


def own_window_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Of `recent_metrics` rows, those of each run's own window (window_end = run_date): the trends' points."""
    return [r for r in rows if r["window_end"] == r[RUN_DATE]]


def estimated_of(rows: Sequence[Mapping[str, Any]], ends: Collection[dt.date]) -> dict[dt.date, dict[str, Any]]:
    """What the runs on ``ends`` estimated for their own windows before labels existed, from `recent_metrics`
    rows: window end → metric (without the ``estimated_`` prefix) → value."""
    from driftline.monitoring.estimated import PREFIX
    from driftline.monitoring.performance import PERFORMANCE

    out: dict[dt.date, dict[str, Any]] = {}
    for r in rows:
        if (r[RUN_DATE] in ends and r["window_end"] == r[RUN_DATE] and r["column"] == PERFORMANCE
                and r["metric"].startswith(PREFIX)):
            out.setdefault(r[RUN_DATE], {})[r["metric"][len(PREFIX):]] = r["value"]
    return out


def loop_decisions(scope: Scope, date: dt.date, days: int = TREND_DAYS) -> list[dict[str, Any]]:
    """The ``retrain_decisions`` rows of the ``days`` before ``date`` for the report's closed loop (the columns
    it shows; those a workspace's contract lacks are left out)."""
    from pyspark.sql import functions as F

    if not scope.store.exists(RETRAIN_DECISIONS.table()):
        return []
    since = [date - dt.timedelta(days=days - i) for i in range(days)]
    table = scope.store.read(RETRAIN_DECISIONS.table(), partitions={MODEL: [scope.model], DECISION_DATE: since})
    wanted = [c for c in (DECISION_DATE, "status", "fired", "reasons", "onset_date", "episode_status",
                          "labels_available", "labels_needed", "label_days_available", "label_days_needed",
                          "trained_version", "gate_passed", "champion_version") if c in table.columns]
    return [r.asDict() for r in table.filter(F.col(DECISION_DATE) <= F.lit(date)).select(*wanted).collect()]
