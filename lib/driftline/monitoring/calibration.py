"""Calibrated drift thresholds: profile reference chunks at train time, store, use at monitor time.

At train time (`calibration_rows`) the reference rows are cut into contiguous chunks of their
``as_of_date`` values (at most ``monitoring.drift.calibration_chunks`` chunks, each a run of whole
days, so a chunk shows the day-to-day variation a monitoring window sees, weekly seasonality
included); the chunks are profiled with the reference bins in ONE grouped pass and
`driftline.monitoring.thresholds.calibrate_thresholds` turns the distances chunk → whole reference
into mean + k·σ per (column, distance metric). The result is stored with the reference profile
(rows of ``reference_profiles`` with ``stat`` = ``calibrated_threshold`` / ``calibration_mean`` /
``calibration_std``, ``category`` = the metric, ``bin`` = the number of usable chunks), always —
so switching ``threshold_mode`` to ``calibrated`` needs no retraining. The monitor job reads them
back with `thresholds_from_rows` when ``threshold_mode`` is ``calibrated``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from driftline.monitoring.thresholds import CalibratedThreshold, calibrate_thresholds
from driftline.profiling.bins import ColumnBins
from driftline.profiling.profile import PROFILE_ROW_FIELDS, profile_by
from driftline.profiling.stored import MEAN_STAT, STD_STAT, THRESHOLD_STAT
from driftline.profiling.types import DatasetProfile

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.monitoring.spec import DriftConfig

log = logging.getLogger(__name__)

CHUNK = "__chunk__"


def chunk_of_dates(dates: Sequence[Any], chunks: int) -> dict[Any, int]:
    """Sorted distinct ``dates`` → chunk index: at most ``chunks`` contiguous runs of near-equal length."""
    ordered = sorted(set(dates))
    parts = np.array_split(np.arange(len(ordered)), min(chunks, len(ordered))) if ordered else []
    return {ordered[i]: k for k, part in enumerate(parts) for i in part}


def chunk_profiles(df: DataFrame, date_column: str, columns: Sequence[str], bins: Mapping[str, ColumnBins],
                   chunks: int) -> list[DatasetProfile]:
    """Profiles of the reference rows per chunk of ``date_column`` values, oldest chunk first (one pass)."""
    from pyspark.sql import functions as F

    dates = [r[0] for r in df.select(date_column).distinct().collect()]
    mapping = chunk_of_dates([d for d in dates if d is not None], chunks)
    if len(set(mapping.values())) < 2:
        return []
    chunk = F.create_map(*[x for d, k in sorted(mapping.items()) for x in (F.lit(d), F.lit(k))])[F.col(date_column)]
    profiles = profile_by(df.withColumn(CHUNK, chunk).filter(F.col(CHUNK).isNotNull()), CHUNK, columns, bins,
                          quantiles=(), distinct=False)   # distances need cells and offset sums only
    return [profiles[k] for k in sorted(profiles)]


def calibrate(df: DataFrame, date_column: str, reference: DatasetProfile, bins: Mapping[str, ColumnBins],
              cfg: DriftConfig) -> tuple[CalibratedThreshold, ...]:
    """Calibrated distance thresholds of every profiled column (see the module docstring)."""
    columns = list(reference.columns)
    chunks = chunk_profiles(df, date_column, columns, bins, cfg.calibration_chunks)
    if not chunks:
        log.info("calibration: the reference spans fewer than 2 dates; no calibrated thresholds")
        return ()
    out = calibrate_thresholds(reference, chunks, k=cfg.calibration_k, min_rows=cfg.min_rows)
    log.info("calibration: %d thresholds from %d reference chunks (k=%s)", len(out), len(chunks), cfg.calibration_k)
    return out


def calibration_rows(calibrated: Iterable[CalibratedThreshold], reference: DatasetProfile) -> list[dict[str, Any]]:
    """Long-format profile rows (`PROFILE_ROW_FIELDS`) holding each threshold with its mean and σ."""
    out = []
    for c in calibrated:
        for stat, value in ((THRESHOLD_STAT, c.threshold), (MEAN_STAT, c.mean), (STD_STAT, c.std)):
            row = dict.fromkeys(PROFILE_ROW_FIELDS)
            row.update(column=c.column, kind=reference.columns[c.column].kind, stat=stat, category=c.metric,
                       bin=c.chunks, value=float(value))
            out.append(row)
    return out


def thresholds_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    """(column, metric) → calibrated threshold, from stored reference rows (other stats ignored, the
    estimated-performance ``cbpe_threshold`` row among them: only ``calibrated_threshold`` rows count)."""
    return {(str(r["column"]), str(r["category"])): float(r["value"])
            for r in rows if r["stat"] == THRESHOLD_STAT and r["value"] is not None}
