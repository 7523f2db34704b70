"""Calibrated distance thresholds from reference chunk profiles (pure; NannyML-style).

`calibrate_thresholds` compares each chunk profile with the whole reference (`driftline.monitoring.comparison
.compare`) and sets mean + k·σ per (column, distance metric); `threshold_map` shapes the result for
`DriftSpec.with_calibrated`. Cutting and profiling the chunks and storing the thresholds with the reference
profile is `driftline.monitoring.calibration`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from driftline.monitoring.comparison import DISTANCE_METRICS, compare
from driftline.monitoring.measures import DriftError
from driftline.profiling.types import DatasetProfile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibratedThreshold:
    """mean + k·σ of a distance over reference chunks (each chunk compared with the whole reference)."""

    column: str
    metric: str
    mean: float
    std: float
    k: float
    chunks: int
    threshold: float


def calibrate_thresholds(
    reference: DatasetProfile,
    chunks: Sequence[DatasetProfile],
    *,
    k: float,
    min_rows: int,
    metrics: Sequence[str] = DISTANCE_METRICS,
) -> tuple[CalibratedThreshold, ...]:
    """Calibrated distance thresholds from reference chunk profiles (pure; NannyML-style).

    Each chunk (profiled with the reference bins) is compared with the whole reference; for each
    column and distance metric the threshold is mean + k·σ (σ with ddof 1) over chunks having at
    least ``min_rows`` values on both sides. Fewer than two usable chunks → no threshold for that
    (column, metric): the static one applies. Distances shrink with sample size, so chunks should
    be about the size of a monitoring window.
    """
    if k <= 0:
        raise DriftError(f"calibration k: expected > 0, found {k}")
    bad = [m for m in metrics if m not in DISTANCE_METRICS]
    if bad:
        raise DriftError(f"calibration: expected distance metrics ({', '.join(DISTANCE_METRICS)}), found {bad}")
    out = []
    for name, ref in reference.columns.items():
        values: dict[str, list[float]] = {m: [] for m in metrics}
        usable = 0
        for chunk in chunks:
            if name not in chunk.columns:
                raise DriftError(f"calibration: expected column {name} in every chunk profile, found it missing")
            m = compare(ref, chunk.columns[name])
            if min(m.n_reference, m.n_current) < min_rows:
                continue
            usable += 1
            for metric in metrics:
                v = m.value(metric)
                if not math.isnan(v):
                    values[metric].append(v)
        for metric, vs in values.items():
            if len(vs) < 2:
                if vs or not usable:  # NaN on every usable chunk: the metric does not apply (W1 of a categorical)
                    log.info("calibration: %s %s has %d usable chunks, keeping the static threshold", name, metric,
                             len(vs))
                continue
            mean, std = float(np.mean(vs)), float(np.std(vs, ddof=1))
            if std == 0:   # every chunk identical (a constant column): a threshold of mean + 0 would alert on one row
                log.info("calibration: %s %s is the same on every chunk, keeping the static threshold", name, metric)
                continue
            out.append(CalibratedThreshold(name, metric, mean, std, k, len(vs), mean + k * std))
    return tuple(out)


def threshold_map(calibrated: Sequence[CalibratedThreshold]) -> dict[tuple[str, str], float]:
    """(column, metric) → threshold, for `DriftSpec.with_calibrated`."""
    return {(c.column, c.metric): c.threshold for c in calibrated}
