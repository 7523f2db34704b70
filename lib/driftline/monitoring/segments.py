"""Drift and data quality per segment: the reference profile of each segment (train time) and the drift and
quality rows of each segment of a window (monitor), with the false-discovery rate controlled across
columns × segments.

**Segments.** For each ``monitoring.segments`` column, the ``monitoring.segment_drift.top_n`` values with the most
reference rows (a null counts as the value ``__null__``; ties broken by value) are segments of their own; every
other value — rare in the reference, or unseen — is the segment ``__other__``. Segment values are the features
table's column cast to string (as the performance slices: ``slice = <column>=<value>``).

**Reference.** The train job profiles its reference rows per segment with the whole reference's bins (one grouped
pass per segment column over rows already in memory) and stores the profiles with the version's MLflow run as the
artifact ``reference_profile/segments.json`` (`ARTIFACT`: per column its values, and per segment the profile in
the ``reference_profiles`` row format). It does so whenever ``monitoring.segments`` is configured, so switching
``monitoring.segment_drift.enabled`` on later needs no retrain.

**Window.** The monitor folds the window's rows once, keyed by (segment column, segment)
(`driftline.monitoring.daily.window_profiles`: each row is folded once per segment column; the whole window is
the merge of the first column's segments). Each segment is judged against its own reference profile with the
static thresholds of ``monitoring.drift`` (calibrated thresholds describe whole-reference chunks) and the floor
``monitoring.drift.min_rows`` per column (``insufficient_data`` below it); the p-values of every (segment,
column) go through ONE Benjamini–Hochberg procedure (`driftline.monitoring.drift.dataset_drifts`), and each
segment gets its own dataset verdict (``__dataset__``/``drift_share``). Rows: those of the whole window, with
``slice = <column>=<segment>``. A segment the window holds but the reference does not (``__other__`` when the top
values covered every reference value) gets one ``__dataset__``/``rows`` row, ``insufficient_data``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.monitoring.drift import DATASET, dataset_drifts, drift_rows
from driftline.monitoring.metrics import slice_name
from driftline.monitoring.quality import quality_rows
from driftline.profiling.bins import OTHER
from driftline.vocabulary import INSUFFICIENT, finite_or_none

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from driftline.monitoring.spec import DriftSpec
    from driftline.profiling.bins import ColumnBins
    from driftline.profiling.types import DatasetProfile

log = logging.getLogger(__name__)

ARTIFACT = "reference_profile/segments.json"
NULL = "__null__"
PREFIX = "__segment__"     # the reference rows' and the monitor scan's column of a segment column's string value
SEPARATOR = "\x1f"         # between the segment column's position and the segment in the monitor scan's group key


def segment_alias(column: str) -> str:
    """The column holding ``column``'s value as a string in the train job's rows and the monitor's scan."""
    return f"{PREFIX}{column}"


def segment_of(value: Column, values: Sequence[str]) -> Column:
    """The segment of a string ``value``: itself when among ``values`` (null as `NULL`), else `OTHER`."""
    from pyspark.sql import functions as F

    v = F.coalesce(value, F.lit(NULL))
    return F.when(v.isin(list(values)), v).otherwise(F.lit(OTHER)) if values else F.lit(OTHER)


def top_values(frame: DataFrame, column: str, n: int) -> list[str]:
    """The ``n`` most frequent values of the string ``column`` (null as `NULL`), ties by value."""
    from pyspark.sql import functions as F

    counted = (frame.select(F.coalesce(F.col(column), F.lit(NULL)).alias("v")).groupBy("v").count()
               .orderBy(F.col("count").desc(), F.col("v")).limit(n).collect())
    return [r["v"] for r in counted]


def at_training(frame: DataFrame, columns: Sequence[str], bins: Mapping[str, ColumnBins], segments: Sequence[str],
                top_n: int) -> str | None:
    """The artifact's JSON text: the reference ``frame`` profiled per segment of each ``segments`` column (held as
    `segment_alias` columns), ``columns`` with the reference's ``bins``; None without segments."""
    from driftline.profiling.profile import profile_by, profile_rows

    doc: dict[str, Any] = {"top_n": top_n, "columns": {}}
    key = f"{PREFIX}key"
    for column in segments:
        alias = segment_alias(column)
        if alias not in frame.columns:
            log.warning("monitoring.segments: %s is not a column of the features table; no segment reference", column)
            continue
        values = top_values(frame, alias, top_n)
        keyed = frame.withColumn(key, segment_of(frame[alias], values))
        profiles = profile_by(keyed, key, columns, bins)
        doc["columns"][column] = {
            "values": values,
            "profiles": {seg: [{**r, "value": finite_or_none(r["value"])} for r in profile_rows(p, bins)]
                         for seg, p in sorted(profiles.items())}}
        log.info("segment reference profiles of %s: %s", column,
                 ", ".join(f"{seg} ({p.rows} rows)" for seg, p in sorted(profiles.items())))
    return json.dumps(doc, separators=(",", ":")) if doc["columns"] else None


@dataclass(frozen=True)
class SegmentColumn:
    """One segment column's reference: its segment values (the others are `OTHER`) and each segment's profile."""

    values: tuple[str, ...]
    profiles: Mapping[str, DatasetProfile]


def from_artifact(doc: Any, segments: Sequence[str]) -> dict[str, SegmentColumn]:
    """The stored segment references of the configured ``segments`` (a column the version did not store is left
    out, logged)."""
    from driftline.profiling.stored import profile_from_rows

    stored = doc.get("columns", {}) if isinstance(doc, dict) else {}
    out: dict[str, SegmentColumn] = {}
    for column in segments:
        if column not in stored:
            log.info("monitoring.segments: the version stored no segment reference for %s (trained before it was "
                     "configured, or the features table lacked it then); no drift rows per segment of it", column)
            continue
        found = stored[column]
        out[column] = SegmentColumn(tuple(found["values"]),
                                    {seg: profile_from_rows(rows)[0] for seg, rows in found["profiles"].items()})
    return out


def segment_rows(reference: Mapping[str, SegmentColumn], current: Mapping[tuple[str, str], DatasetProfile],
                 empty: DatasetProfile, spec: DriftSpec, columns: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Drift and quality rows per segment (slice name → rows): every segment of the ``reference`` against its
    profile in ``current`` ((column, segment) → profile; ``empty`` where the window has none of its rows), one
    Benjamini–Hochberg across all of them; a segment only the window holds gets its ``rows`` row."""
    pairs = {(column, seg): (ref, current.get((column, seg), empty))
             for column, found in reference.items() for seg, ref in found.profiles.items()}
    out: dict[str, list[dict[str, Any]]] = {}
    results = dataset_drifts(pairs, spec, columns)
    statuses = [r.status for r in results.values()]
    log.info("drift per segment: %d segments of %s — %s", len(results), ", ".join(reference),
             ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses))) or "none")
    for (column, seg), result in results.items():
        ref, cur = pairs[(column, seg)]
        out[slice_name(column, seg)] = [*drift_rows(result), *quality_rows(ref, cur, spec.min_rows,
                                                                          spec.unseen_threshold)]
    for (column, seg), cur in current.items():
        if column in reference and (column, seg) not in pairs:
            out[slice_name(column, seg)] = [dict(column=DATASET, metric="rows", value=float(cur.rows),
                                           threshold=float(spec.min_rows), status=INSUFFICIENT, method=None,
                                           reason="the reference has no rows in this segment", n_reference=0,
                                           n_current=cur.rows)]
    return out


def summary(rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One line per segment with drift rows (the report's table): slice, rows, evaluated / drifted columns, drift
    share and status, and the drifted columns' names."""
    out = []
    for name, found in sorted(rows.items()):
        by = {(r["column"], r["metric"]): r for r in found}
        share = by.get((DATASET, "drift_share"))
        if share is None:
            continue
        size = by.get((DATASET, "rows"))
        out.append({"slice": name, "rows": None if size is None else size["value"],
                    "evaluated": by[(DATASET, "evaluated_columns")]["value"],
                    "drifted": by[(DATASET, "drifted_columns")]["value"], "drift_share": share["value"],
                    "status": share["status"], "reason": share.get("reason"),
                    "columns": sorted(c for (c, m), r in by.items() if m == "drift" and r["value"] == 1.0)})
    return out
