"""The ``prepare_features`` job: point-in-time features for a date or a range, behind a data-quality gate.

Order of work (docs/features.md, "Write ordering"):

1. compile the feature definitions and check config references (ConfigError, exit 2);
2. open the sources and check their schema contracts — metadata only, before any Spark action (R9);
3. one pass over the events of the read range: per-UTC-day counts, newest event, row-check
   violations (R7 input presence, freshness, row counts, not-null/range/...);
4. compute the features of every date in one job (persisted), check entities and features;
5. the gate: any failed error-severity check raises `QualityGateError` (exit 3) — NOTHING is
   written, not even ``quality_results`` (the failed checks are logged, one line each);
6. only then write ``quarantine``, ``quality_results`` and last ``<model>__features``, each an
   atomic replace of the run's (model,) as_of_date partitions, so a rerun replaces, never duplicates.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from driftline.errors import ConfigError, QualityGateError
from driftline.features.compile import DAY, FeaturePlan, compile_features, event_type_problems
from driftline.features.pit import (
    compute_features,
    dates_frame,
    day_number,
    entity_rows_as_of,
    filter_event_days,
)
from driftline.quality.checks import (
    ROW_KINDS,
    CheckResult,
    ContractCheck,
    InputPresentCheck,
    RowCheck,
    aggregate_violations,
    freshness_results,
    gate,
    input_present_results,
    results_frame,
    row_count_results,
    row_results,
    schema_results,
    violation_column,
    with_violations,
)
from driftline.quality.quarantine import quarantine_rows
from driftline.quality.spec import FreshnessCheck, RowCountCheck, SchemaCheck, UniqueCheck
from driftline.tables.contracts import FEATURES, QUALITY_RESULTS, QUARANTINE
from driftline.vocabulary import AS_OF, CODE_VERSION, CONFIG_HASH, MODEL, RUN_ID, WARN

if TYPE_CHECKING:
    from driftline.jobs import JobResult
    from driftline.jobs.context import JobContext
    from driftline.tables import TableStore

log = logging.getLogger(__name__)

DATE_TYPES = ("date", "timestamp")


def commit_key(dates: Sequence[dt.date]) -> str:
    """The logical key of a run: the date, or ``first..last`` for a range."""
    return str(dates[0]) if len(dates) == 1 else f"{dates[0]}..{dates[-1]}"


def run(ctx: JobContext) -> JobResult:
    """Compute, check and write the features of ``ctx.dates`` for ``ctx.config``'s model."""
    cfg = ctx.config
    dates = tuple(sorted(set(ctx.dates)))
    plan = compile_features(cfg.entity_key, cfg.sources, cfg.features)
    checks = list(cfg.quality.checks)
    _check_feature_columns(plan, checks)
    if cfg.sources.inference is not None:   # a monitor-only model: its rows are ingested from its inference log
        from driftline.jobs import ingest

        return ingest.run(ctx, cfg.sources.inference, plan, checks, dates)

    # -- 2. sources and contracts: schema only, no Spark action yet (R9).
    events, entities, results = _open_sources(ctx.store, plan, checks, dates)
    gate(results)  # a contract failure stops here, before any Spark action

    # -- 3. events: one pass over the read range, grouped by UTC day.
    ev = _events_pass(plan, checks, events, dates)
    results += ev.results

    # -- 4. features (one job for all dates), entity and feature checks.
    features = compute_features(plan, ev.kept, entities, dates).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        ent = _entity_checks(ctx.spark, plan, checks, entities, dates)
        results += ent.results
        ft = feature_checks(ctx.store, cfg.name, plan, checks, features, dates)
        results += ft.results

        # -- 5. the gate: nothing has been written so far, and nothing is if it fails.
        gate(results)

        # -- 6. writes: quarantine, quality_results, then the features (the run's commit point).
        inputs = _Inputs(events, ev, entities, ent, features, ft)
        write_outputs(ctx, dates, results, _quarantined(ctx, plan, dates, results, inputs), features)
    finally:
        features.unpersist()
    return ctx.result()


# --------------------------------------------------------------------------- the steps


@dataclass(frozen=True)
class _EventPass:
    """The events of the read range with their day and violation columns, and what was found on them."""

    checks: list[RowCheck]
    rows: DataFrame  # the read range, with DAY, ``_ts_us`` and a violation column per row check
    per_day: dict[object, dict[str, int]]  # per UTC day: ``_rows``, ``_newest_us`` and violation counts
    kept: DataFrame  # the events the features are computed on (rows failing a ``drop`` check removed)
    results: list[CheckResult]


@dataclass(frozen=True)
class Checked:
    """One target's rows with a violation column per row check (None when not checked), and the results."""

    checks: list[RowCheck]
    rows: DataFrame | None
    results: list[CheckResult]


@dataclass(frozen=True)
class _Inputs:
    """What the writes need of the sources, the features and their checks."""

    events: DataFrame
    ev: _EventPass
    entities: DataFrame | None
    ent: Checked
    features: DataFrame
    ft: Checked


def _open_sources(store: TableStore, plan: FeaturePlan, checks: Sequence[object], dates: Sequence[dt.date],
                  ) -> tuple[DataFrame, DataFrame | None, list[CheckResult]]:
    """Open the events (and entities) and check their schema contracts — metadata only, no Spark action."""
    events = _read_source(store, plan.events.table, "events")
    entities = _read_source(store, plan.sources.entities.table, "entities") if plan.sources.entities else None
    results: list[CheckResult] = []
    results += schema_results(ContractCheck("events", _event_contract(plan, checks)), events.schema, dates,
                              event_type_problems(plan, events.schema))
    if entities is not None:
        results += schema_results(ContractCheck("entities", _entity_contract(plan, checks)), entities.schema, dates)
    for check in checks:
        if isinstance(check, SchemaCheck) and check.target != "features":
            source = events if check.target == "events" else entities
            if source is None:
                raise ConfigError(f"quality.checks.{check.check_name}: target entities needs sources.entities")
            results += schema_results(check, source.schema, dates)
    return events, entities, results


def _events_pass(plan: FeaturePlan, checks: Sequence[object], events: DataFrame,
                 dates: Sequence[dt.date]) -> _EventPass:
    """One pass over the events of the read range: per-UTC-day counts, newest event, row-check violations."""
    days = [day_number(d) for d in dates]
    history_days = max([c.history for c in checks if isinstance(c, RowCountCheck) and c.target == "events"],
                       default=0)
    first_day = days[0] - max(plan.lookback_days, history_days + 1)
    ev_ts = plan.events.timestamp
    ev_rows = (
        events.transform(filter_event_days, ev_ts, first_day, days[-1])
        .withColumn("_ts_us", F.unix_micros(F.col(ev_ts)))
        .withColumn(DAY, F.floor(F.col("_ts_us") / F.lit(86_400_000_000)).cast("int"))
    )
    ev_checks = _row_checks(checks, "events")
    ev_checked = with_violations(ev_rows, ev_checks, DAY)
    per_day = aggregate_violations(ev_checked, ev_checks, DAY, [F.max("_ts_us").alias("_newest_us")])
    log.info("events: %d rows in %d UTC days read (%s .. %s)", sum(s["_rows"] for s in per_day.values()),
             len(per_day), _date_of(first_day), _date_of(days[-1] - 1))
    results = _event_results(checks, ev_checks, per_day, dates, plan.events.allow_empty)

    drop = [c for c in ev_checks if c.drop]
    events_in = events
    if drop:
        keep = ~_any([F.col(violation_column(c)) for c in drop])
        events_in = ev_checked.filter(keep).select(*events.columns)
    return _EventPass(ev_checks, ev_checked, per_day, events_in, results)


def _entity_checks(spark: SparkSession, plan: FeaturePlan, checks: Sequence[object], entities: DataFrame | None,
                   dates: Sequence[dt.date]) -> Checked:
    """Row and row-count checks of the entity rows valid as of each date (when any is configured)."""
    ent_checks = _row_checks(checks, "entities")
    results: list[CheckResult] = []
    if entities is None or not (ent_checks or _has(checks, "entities", RowCountCheck)):
        return Checked(ent_checks, None, results)
    ent_rows = entity_rows_as_of(entities, plan, dates_frame(spark, dates))
    ent_checked = with_violations(ent_rows, ent_checks, AS_OF)
    stats = aggregate_violations(ent_checked, ent_checks, AS_OF)
    results += row_results(ent_checks, stats, dates, "rows valid as of the date")
    counts = {d: s["_rows"] for d, s in stats.items()}
    for c in checks:
        if isinstance(c, RowCountCheck) and c.target == "entities":
            results += row_count_results(c, counts, counts, dates, "rows valid as of the date")
    return Checked(ent_checks, ent_checked, results)


def feature_checks(store: TableStore, model: str, plan: FeaturePlan, checks: Sequence[object],
                    features: DataFrame, dates: Sequence[dt.date]) -> Checked:
    """Row checks of the feature rows (the key is unique per date, always) and their row-count checks."""
    ft_checks = _row_checks(checks, "features") + [
        UniqueCheck(kind="unique", target="features", columns=[plan.entity_key], name="key_unique_features")
    ]
    ft_checked = with_violations(features, ft_checks, AS_OF)
    ft_stats = aggregate_violations(ft_checked, ft_checks, AS_OF)
    results = row_results(ft_checks, ft_stats, dates, "feature rows")
    ft_counts = {d: s["_rows"] for d, s in ft_stats.items()}
    log.info("features: %d rows for %d dates", sum(ft_counts.values()), len(dates))
    row_count_checks = [c for c in checks if isinstance(c, RowCountCheck) and c.target == "features"]
    if row_count_checks:
        history = {**_feature_history(store, FEATURES.table(model), dates), **ft_counts}
        for c in row_count_checks:
            results += row_count_results(c, ft_counts, history, dates, "feature rows")
    return Checked(ft_checks, ft_checked, results)


def provenance(ctx: JobContext) -> dict[str, str]:
    """The run's provenance columns of ``quarantine`` and ``quality_results``."""
    return {"run_id": ctx.run_id, "model": ctx.config.name, "config_hash": ctx.config_hash,
            "code_version": ctx.code_version}


def _quarantined(ctx: JobContext, plan: FeaturePlan, dates: Sequence[dt.date], results: Sequence[CheckResult],
                 inputs: _Inputs) -> list[DataFrame]:
    """The violating rows of the run's dates: events of their input days, entities, features."""
    days = [day_number(d) for d in dates]
    ev, ent, entities = inputs.ev, inputs.ent, inputs.entities
    common = provenance(ctx)
    parts: list[DataFrame] = []
    if any(ev.per_day.get(d - 1, {}).get(violation_column(c), 0) for d in days for c in ev.checks):
        input_days = ev.rows.filter(F.col(DAY).isin([d - 1 for d in days])).withColumn(
            AS_OF, F.date_from_unix_date(F.col(DAY) + 1))
        parts.append(quarantine_rows(input_days, ev.checks, target="events", key=plan.events.key,
                                     columns=inputs.events.columns, **common))
    if ent.rows is not None and entities is not None and _violated(results, "entities"):
        parts.append(quarantine_rows(ent.rows, ent.checks, target="entities", key=plan.entity_key,
                                     columns=[plan.entity_key, *[c for c in entities.columns
                                                                  if c != plan.sources.entities.key]],
                                     **common))
    return [*parts, *feature_quarantine(ctx, inputs.ft, results, plan.entity_key, inputs.features.columns)]


def feature_quarantine(ctx: JobContext, ft: Checked, results: Sequence[CheckResult], key: str,
                       columns: Sequence[str]) -> list[DataFrame]:
    """The feature rows violating a row check (none when no check found any)."""
    if ft.rows is None or not _violated(results, "features"):
        return []
    return [quarantine_rows(ft.rows, ft.checks, target="features", key=key, columns=list(columns),
                            **provenance(ctx))]


def write_outputs(ctx: JobContext, dates: Sequence[dt.date], results: Sequence[CheckResult],
                  quarantined: Sequence[DataFrame], features: DataFrame) -> None:
    """Write quarantine, quality_results and last the features, each replacing the run's partitions."""
    cfg, store, spark = ctx.config, ctx.store, ctx.spark
    commit_of = ctx.commit_info
    key = commit_key(dates)
    model_parts = [{MODEL: cfg.name, AS_OF: d} for d in dates]
    rows = spark.createDataFrame([], QUARANTINE.schema())
    for part in quarantined:
        rows = rows.unionByName(part)
    q = store.replace_partitions(QUARANTINE.table(), rows, QUARANTINE.partition_by, commit_of(key),
                                 partitions=model_parts)
    r = store.replace_partitions(QUALITY_RESULTS.table(), results_frame(spark, results, **provenance(ctx)),
                                 QUALITY_RESULTS.partition_by, commit_of(key), partitions=model_parts)
    out = features.select(
        *features.columns, F.lit(ctx.run_id).alias(RUN_ID), F.lit(ctx.code_version).alias(CODE_VERSION),
        F.lit(ctx.config_hash).alias(CONFIG_HASH),
    )
    w = store.replace_partitions(FEATURES.table(cfg.name), out, FEATURES.partition_by, commit_of(key),
                                 partitions=[{AS_OF: d} for d in dates])
    warned = sum(1 for x in results if x.status == WARN)
    log.info("wrote %s: %d rows (version %s); %s: %d results, %d warnings; %s: %d rows",
             FEATURES.table(cfg.name), w.rows, w.version, QUALITY_RESULTS.name, r.rows, warned, QUARANTINE.name,
             q.rows)


# --------------------------------------------------------------------------- helpers


def _read_source(store: TableStore, table: str, role: str) -> DataFrame:
    if not store.exists(table):
        raise QualityGateError(
            f"sources.{role}: expected source table {table!r} to exist, found no table; nothing was written"
        )
    return store.read(table)


def _any(cols: Sequence[object]) -> object:
    out = F.lit(False)
    for c in cols:
        out = out | c  # type: ignore[operator]
    return out


def _has(checks: Sequence[object], target: str, kind: type) -> bool:
    return any(isinstance(c, kind) and c.target == target for c in checks)  # type: ignore[attr-defined]


def _row_checks(checks: Sequence[object], target: str) -> list[RowCheck]:
    return [c for c in checks if getattr(c, "kind", None) in ROW_KINDS and c.target == target]  # type: ignore


def _violated(results: Sequence[CheckResult], target: str) -> bool:
    return any(r.target == target and r.kind in ROW_KINDS and (r.observed or 0) > 0 for r in results)


def _date_of(day_no: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=day_no)


def _columns_of_checks(checks: Sequence[object], target: str) -> list[str]:
    cols: list[str] = []
    for c in checks:
        if getattr(c, "target", None) == target and getattr(c, "kind", None) in ROW_KINDS:
            cols += c.columns_of()  # type: ignore[attr-defined]
    return cols


def _event_contract(plan: FeaturePlan, checks: Sequence[object]) -> dict[str, str | tuple[str, ...] | None]:
    ev = plan.events
    contract: dict[str, str | tuple[str, ...] | None] = {ev.key: None, ev.timestamp: "timestamp"}
    for c in [*plan.event_columns(), *_columns_of_checks(checks, "events")]:
        contract.setdefault(c, None)
    return contract


def _entity_contract(plan: FeaturePlan, checks: Sequence[object]) -> dict[str, str | tuple[str, ...] | None]:
    ent = plan.sources.entities
    if ent is None:
        return {}
    contract: dict[str, str | tuple[str, ...] | None] = {ent.key: None}
    for c in (ent.valid_from, ent.valid_to):
        if c is not None:
            contract[c] = DATE_TYPES
    for c in [*plan.entity_columns(), *_columns_of_checks(checks, "entities")]:
        contract.setdefault(c, None)
    return contract


def _check_feature_columns(plan: FeaturePlan, checks: Sequence[object]) -> None:
    """Feature-target checks may only name produced columns (a config error otherwise, exit 2)."""
    known = {plan.entity_key, AS_OF, *plan.names}
    for c in checks:
        if getattr(c, "target", None) != "features":
            continue
        if isinstance(c, (SchemaCheck, FreshnessCheck)):
            raise ConfigError(f"quality.checks.{c.check_name}: expected target events or entities for "
                              f"{c.kind}, found features")
        unknown = [x for x in c.columns_of() if x not in known]  # type: ignore[attr-defined]
        if unknown:
            raise ConfigError(f"quality.checks.{c.check_name}: expected feature columns ({', '.join(sorted(known))}), "
                              f"found unknown {', '.join(unknown)}")


def _event_results(checks: Sequence[object], ev_checks: Sequence[RowCheck], per_day: dict[object, dict[str, int]],
                   dates: Sequence[dt.date], allow_empty: bool) -> list[CheckResult]:
    """Event checks of each as_of_date D, evaluated on its input day D-1 (and the days before for history)."""
    by_date = {d: per_day.get(day_number(d) - 1, {}) for d in dates}
    counts = {d: s.get("_rows", 0) for d, s in by_date.items()}
    results = input_present_results(InputPresentCheck("warn" if allow_empty else "error"), counts, dates)
    results += row_results(ev_checks, by_date, dates, "events of the input day")
    history = {_date_of(int(day) + 1): s["_rows"] for day, s in per_day.items() if s["_rows"] > 0}  # type: ignore
    for c in checks:
        if isinstance(c, RowCountCheck) and c.target == "events":
            results += row_count_results(c, counts, history, dates, "events of the input day")
        if isinstance(c, FreshnessCheck):
            newest = {}
            for d in dates:
                before = [s["_newest_us"] for day, s in per_day.items() if int(day) < day_number(d)]  # type: ignore
                newest[d] = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=max(before))
                             if before else None)
            results += freshness_results(c, newest, dates)
    return results


def _feature_history(store: TableStore, table: str, dates: Sequence[dt.date]) -> dict[dt.date, int]:
    """Row counts of the existing feature partitions before the run's dates (for row_count checks)."""
    if not store.exists(table):
        return {}
    since = dates[0] - dt.timedelta(days=400)
    rows = (store.read(table).filter((F.col(AS_OF) >= F.lit(since)) & ~F.col(AS_OF).isin(list(dates)))
            .groupBy(AS_OF).count().collect())
    return {r[AS_OF]: int(r["count"]) for r in rows}
