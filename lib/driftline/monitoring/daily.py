"""The per-date profiles the score job folds while scoring (``<model>__daily_profiles``) and how the monitor
merges them instead of re-reading the window's rows.

A stored profile of (date, champion) is used only when it is that of the rows the predictions table holds now
for the date: the same version as the window's, the same run (``run_id`` of the date's champion rows), the same
row count, and a ``bins_fingerprint`` equal to the reference's (same columns, same bins, same estimation
cells). Every other date of the window (older data, another version's bins, a changed feature list, a score
run that stopped between the two commits) is profiled by the monitor's scan, and the log says which; the
accumulators of both kinds merge (`driftline.profiling.accumulate`), so the numbers are the scan's.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.monitoring.estimated import CELL_COLUMN
from driftline.monitoring.evidently_page import sample_rows
from driftline.monitoring.inputs import Reference, Scope, version_order, window_frame
from driftline.monitoring.segments import SEPARATOR, segment_alias, segment_of
from driftline.profiling.accumulate import Accumulator, empty_core_row, layout
from driftline.profiling.bins import ColumnBins, bins_fingerprint
from driftline.profiling.fold import core_accumulators, core_row
from driftline.profiling.profile import profile_by, profile_from_row
from driftline.profiling.sample import PRIORITY, bottom_rows
from driftline.profiling.types import DatasetProfile, NumericProfile
from driftline.tables.contracts import DAILY_PROFILES, PREDICTIONS
from driftline.vocabulary import AS_OF, CHAMPION, MODEL_VERSION, ROLE, RUN_ID, SCORE, SCORE_DATE

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.monitoring.estimated import CellTable

log = logging.getLogger(__name__)

WINDOW = "__window__"  # group column of the monitor's scan: current or previous window


def profiled_columns(ref: Reference, cells: CellTable | None) -> tuple[list[str], dict[str, ColumnBins]]:
    """The columns (and bins) a window of ``ref``'s version is profiled in: the reference's columns (features and
    score), then the estimation cells' column when the version's calibration table is used. The score job's
    per-date profiles and the monitor's scan both use exactly these (`bins_fingerprint` checks it)."""
    columns, bins = list(ref.profile.columns), dict(ref.bins)
    if cells is not None:
        columns, bins = [*columns, CELL_COLUMN], {**bins, CELL_COLUMN: cells.bins()}
    return columns, bins


@dataclass(frozen=True)
class ScoredDate:
    """What the predictions table holds for one (date, champion version): its run and row count."""

    run_id: str
    rows: int


@dataclass(frozen=True)
class StoredProfiles:
    """The usable stored profiles of a window: date → accumulator, date → its sample (Arrow IPC bytes, or
    None), and the dates the monitor has to scan."""

    accumulators: Mapping[dt.date, Accumulator]
    samples: Mapping[dt.date, bytes | None]
    missing: tuple[dt.date, ...]


def daily_rows(scope: Scope, dates: Sequence[dt.date]) -> dict[dt.date, list[Any]]:
    """The stored per-date profile rows of ``dates`` (every role), one partition-pruned read."""
    table = DAILY_PROFILES.table(scope.model)
    out: dict[dt.date, list[Any]] = {}
    if scope.store.exists(table):
        for r in scope.store.read(table, partitions={SCORE_DATE: list(dates)}).collect():
            out.setdefault(r[SCORE_DATE], []).append(r)
    return out


def scored_dates(predictions: Any) -> dict[tuple[dt.date, str], ScoredDate]:
    """(date, version) → `ScoredDate` of champion prediction rows (one small grouped read of three columns)."""
    from pyspark.sql import functions as F

    found: dict[tuple[dt.date, str], ScoredDate] = {}
    for r in (predictions.groupBy(SCORE_DATE, MODEL_VERSION, RUN_ID).agg(F.count(F.lit(1)).alias("n"))
              .collect()):
        k = (r[SCORE_DATE], str(r[MODEL_VERSION]))
        prev = found.get(k)
        # two runs on one date's rows cannot happen (a run replaces the partition); keep a marker that never matches
        found[k] = ScoredDate(r[RUN_ID] if prev is None else "", int(r["n"]) + (prev.rows if prev else 0))
    return found


def vouched_rows(scope: Scope, dates: Sequence[dt.date], daily: Mapping[dt.date, Sequence[Any]]
                 ) -> tuple[dict[dt.date, list[Any]], list[dt.date]]:
    """Which dates' stored profile rows (``daily``: `daily_rows`) the predictions' Delta log vouches for, and the
    other dates that hold predictions (to be read from their rows).

    The log vouches for a date when every file of its ``score_date`` partition holds one run (min = max of
    ``run_id`` in the file statistics), that run wrote the date's profile rows (one per role) and their rows add
    up to the files' ``num_records``: the profile rows then say which version scored each role, and how many
    rows, without a row of the predictions being read. Without statistics every date is left to the rows."""
    table = PREDICTIONS.table(scope.model)
    files = scope.store.file_stats(table, {SCORE_DATE: list(dates)}) if daily else None
    if files is None:
        return {}, list(dates)
    per_date: dict[dt.date, list[dict[str, Any]]] = {}
    for f in files:
        per_date.setdefault(f["partition." + SCORE_DATE], []).append(f)
    vouched: dict[dt.date, list[Any]] = {}
    unknown: list[dt.date] = []
    for d in dates:
        if d not in per_date:
            continue   # no predictions on this date
        lows = {f.get("min." + RUN_ID) for f in per_date[d]}
        run = lows.pop() if len(lows) == 1 and {f.get("max." + RUN_ID) for f in per_date[d]} == {*lows} else None
        total = sum(int(f["num_records"] or 0) for f in per_date[d])
        rows = list(daily.get(d, []))
        if (run is None or not rows or len({r[ROLE] for r in rows}) != len(rows)
                or any(r[RUN_ID] != run for r in rows) or sum(int(r["rows"]) for r in rows) != total):
            unknown.append(d)
        else:
            vouched[d] = rows
    return vouched, unknown


def known_scores(scope: Scope, predictions: Any, dates: Sequence[dt.date],
                 daily: Mapping[dt.date, Sequence[Any]]) -> dict[tuple[dt.date, str], ScoredDate]:
    """(date, champion version) → `ScoredDate` for ``dates``: from the stored profile rows where the Delta log
    vouches for them (`vouched_rows`), else counted from the rows (`scored_dates` over the other dates of
    ``predictions``)."""
    from pyspark.sql import functions as F

    vouched, unknown = vouched_rows(scope, dates, daily)
    known: dict[tuple[dt.date, str], ScoredDate] = {}
    for d, rows in vouched.items():
        champion = [r for r in rows if r[ROLE] == CHAMPION]
        if champion:
            known[(d, str(champion[0][MODEL_VERSION]))] = ScoredDate(champion[0][RUN_ID], int(champion[0]["rows"]))
        else:
            unknown.append(d)
    if unknown:
        log.info("%s: predictions of %s counted from their rows", scope.model, ", ".join(map(str, sorted(unknown))))
        known.update(scored_dates(predictions.filter(F.col(SCORE_DATE).isin(unknown))))
    return known


def stored_profiles(scope: Scope, dates: Sequence[dt.date], version_of: Mapping[dt.date, str],
                    scored: Mapping[tuple[dt.date, str], ScoredDate], columns: Sequence[str],
                    bins: Mapping[str, ColumnBins], daily: Mapping[dt.date, Sequence[Any]]) -> StoredProfiles:
    """The stored champion profiles of ``dates`` (``daily``: `daily_rows`) that match what the predictions hold
    (``version_of``: the version monitored on each date; ``scored``: `known_scores`) and ``columns`` / ``bins``;
    the others are missing."""
    wanted = bins_fingerprint(columns, bins)
    rows = {d: r for d, found in daily.items() for r in found if r[ROLE] == CHAMPION}
    accs: dict[dt.date, Accumulator] = {}
    samples: dict[dt.date, bytes | None] = {}
    missing: list[dt.date] = []
    why: dict[str, list[dt.date]] = {}
    for d in dates:
        version = version_of.get(d)
        if version is None:
            continue   # no champion rows of the monitored version on this date: nothing to profile
        r, s = rows.get(d), scored.get((d, version))
        reason = ("no stored profile" if r is None
                  else "another version's profile" if str(r[MODEL_VERSION]) != version
                  else "a profile under other bins or columns" if r["bins_fingerprint"] != wanted
                  else "a profile of another score run" if s is None or r[RUN_ID] != s.run_id or r["rows"] != s.rows
                  else "")
        if reason:
            missing.append(d)
            why.setdefault(reason, []).append(d)
            continue
        accs[d] = Accumulator.from_row({"add": r["additive"], "lo": r["finite_min"], "hi": r["finite_max"],
                                        "mom": r["moments"]})
        samples[d] = r["sample"]
    if accs:
        log.info("%s: per-date profiles merged for %d of %d dates (no rows read for them)", scope.model, len(accs),
                 len(accs) + len(missing))
    for reason, ds in why.items():
        log.info("%s: %s for %s; profiling those dates from their rows", scope.model, reason,
                 ", ".join(str(d) for d in ds))
    return StoredProfiles(accs, samples, tuple(missing))


@dataclass(frozen=True)
class WindowProfiles:
    """The profiles of the current and (when it has rows) previous window, the stored samples of the current
    window's dates (None for a date without one), and with segments the current window's profile per (segment
    column, segment)."""

    groups: dict[str, DatasetProfile]
    samples: dict[dt.date, bytes | None]
    segments: dict[tuple[str, str], DatasetProfile] | None = None   # None: not profiled per segment


def window_profiles(scope: Scope, ref: Reference, window_rows: DataFrame,
                    scored: Mapping[tuple[dt.date, str], ScoredDate], version: str, dates: tuple[dt.date, ...],
                    previous_dates: tuple[dt.date, ...], profiled: list[str], bins: dict[str, ColumnBins],
                    daily: Mapping[dt.date, Sequence[Any]],
                    segments: Mapping[str, Sequence[str]] | None = None) -> WindowProfiles:
    """Profile both windows: merge the score job's stored per-date profiles where they hold for the rows the
    predictions table has now (`driftline.monitoring.daily`), scan the other dates in one grouped pass (features
    joined to the predictions), and merge both kinds of accumulator per window.

    ``segments`` (segment column → its segment values, `driftline.monitoring.segments`): the current window's
    dates are all scanned (stored profiles are not per segment), each row folded once per segment column under
    the key (column, segment); the current window is the merge of the first column's segments."""
    from pyspark.sql import functions as F

    version_of = {d: version for d in dates if (d, version) in scored}
    for d in previous_dates:   # the previous window keeps whatever champion scored each date (the latest)
        found = sorted((v for day, v in scored if day == d), key=version_order)
        if found:
            version_of[d] = found[-1]
    window_of_date = {**dict.fromkeys(previous_dates, "previous"), **dict.fromkeys(dates, "current")}
    if not ref.has_offset_sums:   # a reference stored before offset sums: quantiles need the rows (a scan)
        frame = scanned(scope, ref, window_rows, [*previous_dates, *dates], profiled, dates[0])
        log.info("%s v%s: reference without offset sums; the window is profiled from its rows%s", scope.model,
                 ref.version, ", without drift per segment (retrain the version for it)" if segments else "")
        return WindowProfiles(profile_by(frame, WINDOW, profiled, bins, quantiles=ref.quantiles, distinct=False), {})
    stored = stored_profiles(scope, [*previous_dates, *dates], version_of, scored, profiled, bins, daily)
    usable = dict(stored.accumulators)
    scan = set(stored.missing)
    if segments:
        current = [d for d in dates if d in version_of]
        usable = {d: acc for d, acc in usable.items() if d not in dates}
        scan |= set(current)
        log.info("%s: drift per segment: the current window's %d dates are profiled from their rows instead (the "
                 "stored per-date profiles are not per segment)", scope.model, len(current))
    parts = [(window_of_date[d], acc) for d, acc in sorted(usable.items())]
    if scan:
        missing = sorted(scan)
        frame = scanned(scope, ref, window_rows.filter(F.col(SCORE_DATE).isin(missing)), missing, profiled, dates[0],
                        segments)
        parts += list(core_accumulators(frame, WINDOW, profiled, bins).items())
    merged: dict[str, Accumulator] = {}
    for group, acc in parts:   # stored and scanned accumulators merge alike
        if group in merged:
            merged[group].merge(acc)
        else:
            merged[group] = acc
    by_segment = split_segments(merged, list(segments or {}), profiled, bins)
    groups = {g: profile_from_row(core_row(acc, profiled, bins), profiled, bins, ()) for g, acc in merged.items()}
    if "current" not in groups:
        groups["current"] = profile_from_row(empty_core_row(profiled, bins), profiled, bins, ())
    return WindowProfiles(groups, {d: stored.samples.get(d) for d in dates},
                          {k: profile_from_row(core_row(acc, profiled, bins), profiled, bins, ())
                           for k, acc in by_segment.items()} if segments else None)


def split_segments(merged: dict[str, Accumulator], columns: Sequence[str], profiled: Sequence[str],
                   bins: Mapping[str, ColumnBins]) -> dict[tuple[str, str], Accumulator]:
    """Take the segment groups out of ``merged`` (the scan's keys ``<position>`` `SEPARATOR` ``<segment>``): (segment
    column, segment) → accumulator; ``merged["current"]`` becomes the merge of the first column's segments (each
    current row is in exactly one of them)."""
    out: dict[tuple[str, str], Accumulator] = {}
    for group in [g for g in merged if SEPARATOR in g]:
        position, segment = group.split(SEPARATOR, 1)
        acc = merged.pop(group)
        out[(columns[int(position)], segment)] = acc
        if position == "0":
            if "current" not in merged:
                add_names, numeric = layout(profiled, bins)
                merged["current"] = Accumulator(len(add_names), len(numeric))
            merged["current"].merge(acc)
    return out


def scanned(scope: Scope, ref: Reference, rows: DataFrame, dates: Sequence[dt.date], profiled: Sequence[str],
            current_from: dt.date, segments: Mapping[str, Sequence[str]] | None = None) -> DataFrame:
    """The monitor's scan of ``dates``: the champion ``rows`` joined to their features (the reference's columns and
    ``score``), the estimation cells' column (the score again) when ``profiled`` has it, and `WINDOW` (current
    from ``current_from``, else previous); with ``segments``, a current row once per segment column, `WINDOW`
    = ``<position of the column>`` `SEPARATOR` ``<its segment>`` (`driftline.monitoring.segments.segment_of`)."""
    from pyspark.sql import functions as F

    numeric = [c for c, p in ref.profile.columns.items() if isinstance(p, NumericProfile)]
    strings = {segment_alias(c): c for c in segments or {}}
    frame = window_frame(scope, rows, dates, list(ref.profile.columns), numeric, strings=strings)
    if CELL_COLUMN in profiled:
        frame = frame.withColumn(CELL_COLUMN, F.col(SCORE))
    current = F.col(AS_OF) >= F.lit(current_from)
    if not segments:
        return frame.withColumn(WINDOW, F.when(current, "current").otherwise("previous"))
    keys = F.array(*[F.concat(F.lit(f"{i}{SEPARATOR}"), segment_of(F.col(segment_alias(c)), values))
                     for i, (c, values) in enumerate(segments.items())])
    return (frame.withColumn(WINDOW, F.explode(F.when(current, keys).otherwise(F.array(F.lit("previous")))))
            .drop(*strings))


def page_sample(scope: Scope, samples: Mapping[dt.date, bytes | None], preds: DataFrame, rows: int,
                dates: tuple[dt.date, ...], ref: Reference, limit: int) -> Any:
    """The Evidently page's rows: the bottom-k merge of the stored samples when every date of the window has one
    (pandas, no read), else a seeded sample of the window's predictions joined to their features (lazy)."""
    stored = [samples.get(d) for d in dates]
    if samples and all(s is not None for s in stored):
        table = bottom_rows([s for s in stored if s is not None], limit)
        if table is not None:
            return table.drop_columns([PRIORITY]).to_pandas()
    columns = list(ref.profile.columns)
    numeric = [c for c, p in ref.profile.columns.items() if isinstance(p, NumericProfile)]
    # a few thousand predictions joined to their features (not a second join of the window)
    return window_frame(scope, sample_rows(preds, rows, limit), dates, columns, numeric, few=True)


def daily_profile_row(*, role: str, version: str, reference_id: str, columns: Sequence[str],
                      bins: Mapping[str, ColumnBins], acc: Accumulator, rows: int, sample: bytes | None,
                      sample_rows: int) -> dict[str, Any]:
    """The contract columns of one ``<model>__daily_profiles`` row that are not provenance."""
    arrays = acc.arrays()
    return {ROLE: role, MODEL_VERSION: version, "reference_id": reference_id,
            "bins_fingerprint": bins_fingerprint(columns, bins), "profiled_columns": list(columns), "rows": rows,
            "additive": arrays["add"], "finite_min": arrays["lo"], "finite_max": arrays["hi"],
            "moments": arrays["mom"], "sample": sample, "sample_rows": sample_rows}
