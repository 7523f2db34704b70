"""Data-quality checks: evaluation of the specs in `driftline.quality.spec`, results as rows.

Results are `CheckResult` values, one per (as_of_date, check); `results_frame` turns them into the
long-format ``quality_results`` rows. Row-level checks (not_null, range, allowed_values, unique)
are Spark boolean expressions evaluated in ONE aggregation per target, grouped by date; their
violating rows are built by `driftline.quality.quarantine`. `gate` raises `QualityGateError` when
an error-severity check failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from driftline.errors import QualityGateError
from driftline.quality.spec import (
    AllowedValuesCheck,
    FreshnessCheck,
    NotNullCheck,
    RangeCheck,
    RowCountCheck,
    SchemaCheck,
    UniqueCheck,
)
from driftline.tables.contracts import QUALITY_RESULTS
from driftline.vocabulary import ALERT, INSUFFICIENT, OK, WARN, finite_or_none

log = logging.getLogger(__name__)

ROW_KINDS = ("not_null", "range", "allowed_values", "unique")
RowCheck = NotNullCheck | RangeCheck | AllowedValuesCheck | UniqueCheck



@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check on one as_of_date."""

    as_of_date: dt.date
    check: str
    kind: str
    target: str
    column: str | None
    severity: str
    status: str
    observed: float | None
    lower: float | None
    upper: float | None
    bound: str
    message: str


def _status(ok: bool, severity: str) -> str:
    if ok:
        return OK
    return ALERT if severity == "error" else WARN


def _result(check: object, day: dt.date, ok: bool | None, observed: float | None, lower: float | None,
            upper: float | None, bound: str, message: str, column: str | None = None) -> CheckResult:
    severity = str(check.severity)  # type: ignore[attr-defined]
    status = INSUFFICIENT if ok is None else _status(ok, severity)
    cols = column if column is not None else (",".join(check.columns_of()) or None)  # type: ignore[attr-defined]
    return CheckResult(day, check.check_name, check.kind, check.target, cols, severity, status,  # type: ignore[attr-defined]
                       observed, lower, upper, bound, message)


# --------------------------------------------------------------------------- schema contracts (no Spark action)


def type_name(dtype: T.DataType) -> str:
    return dtype.simpleString()


def schema_problems(expected: Mapping[str, str | tuple[str, ...] | None], schema: T.StructType) -> list[str]:
    """Expected column → type name(s) (None: any type) against ``schema``; one message per problem."""
    found = {f.name: type_name(f.dataType) for f in schema.fields}
    problems = []
    for column, want in expected.items():
        if column not in found:
            problems.append(f"{column}: expected {_types_text(want)}, found no such column")
            continue
        allowed = (want,) if isinstance(want, str) else want
        if allowed is not None and found[column] not in allowed:
            problems.append(f"{column}: expected {_types_text(want)}, found {found[column]}")
    return problems


def _types_text(want: str | tuple[str, ...] | None) -> str:
    if want is None:
        return "a column of any type"
    return " or ".join((want,) if isinstance(want, str) else want)


@dataclass(frozen=True)
class ContractCheck:
    """Built-in schema contract derived from the feature definitions (always severity error)."""

    target: str
    columns: Mapping[str, str | tuple[str, ...] | None]
    kind: str = "contract"
    severity: str = "error"

    @property
    def check_name(self) -> str:
        return f"contract_{self.target}"

    def columns_of(self) -> list[str]:
        return []


def schema_results(check: SchemaCheck | ContractCheck, schema: T.StructType, dates: Sequence[dt.date],
                   extra_problems: Sequence[str] = ()) -> list[CheckResult]:
    """One result per date for a schema contract (R9): observed = number of problems."""
    problems = [*schema_problems(dict(check.columns), schema), *extra_problems]
    found = ", ".join(f"{f.name}:{type_name(f.dataType)}" for f in schema.fields)
    message = (f"{check.target}: " + "; ".join(problems) + f" (table has {found})") if problems else \
        f"{check.target}: all {len(check.columns)} required columns present with expected types"
    return [_result(check, d, not problems, float(len(problems)), None, 0.0, "problems <= 0", message)
            for d in dates]


# --------------------------------------------------------------------------- row-level checks


def violation(check: RowCheck) -> Column:
    """True where the row violates ``check`` (needs ``_dup__<name>`` for unique checks)."""
    if isinstance(check, NotNullCheck):
        cond = F.lit(False)
        for c in check.columns:
            cond = cond | F.col(c).isNull()
        return cond
    if isinstance(check, RangeCheck):
        col = F.col(check.column)
        cond = F.lit(False)
        if check.min is not None:
            cond = cond | (col < F.lit(check.min))
        if check.max is not None:
            cond = cond | (col > F.lit(check.max))
        return F.coalesce(cond, F.lit(False))
    if isinstance(check, AllowedValuesCheck):
        allowed = [str(v) for v in check.values]
        col = F.col(check.column).cast("string")
        return F.coalesce(~col.isin(allowed), F.lit(False))
    return F.col(dup_column(check)) > 1


def dup_column(check: UniqueCheck) -> str:
    return f"_dup__{check.check_name}"


def reason(check: RowCheck) -> Column:
    """Human-readable reason a row violates ``check`` (used for quarantine rows)."""
    if isinstance(check, NotNullCheck):
        return F.concat_ws(", ", *[F.when(F.col(c).isNull(), F.lit(f"{c} is null")) for c in check.columns])
    if isinstance(check, RangeCheck):
        lo = "-inf" if check.min is None else f"{check.min:g}"
        hi = "inf" if check.max is None else f"{check.max:g}"
        return F.concat(F.lit(f"{check.column} = "), F.col(check.column).cast("string"),
                        F.lit(f" outside [{lo}, {hi}]"))
    if isinstance(check, AllowedValuesCheck):
        return F.concat(F.lit(f"{check.column} = '"), F.col(check.column).cast("string"),
                        F.lit(f"' not in {[str(v) for v in check.values]}"))
    return F.concat(F.lit(f"({', '.join(check.columns)}) appears "), F.col(dup_column(check)).cast("string"),
                    F.lit(" times"))


def with_violations(df: DataFrame, checks: Sequence[RowCheck], group_col: str) -> DataFrame:
    """Add one boolean ``_v__<check>`` column per row-level check (and the duplicate counts of unique checks)."""
    for check in checks:
        if isinstance(check, UniqueCheck):
            w = Window.partitionBy(group_col, *check.columns)
            df = df.withColumn(dup_column(check), F.count(F.lit(1)).over(w))
    return df.withColumns({violation_column(c): violation(c) for c in checks})


def violation_column(check: RowCheck) -> str:
    return f"_v__{check.check_name}"


def aggregate_violations(df: DataFrame, checks: Sequence[RowCheck], group_col: str,
                         extra: Sequence[Column] = ()) -> dict[object, dict[str, int]]:
    """One pass: rows and violating rows of each check per ``group_col`` value (collected, small).

    ``extra`` are more aggregate expressions (integral) computed in the same pass.
    """
    aggs = [F.count(F.lit(1)).alias("_rows"), *extra] + [
        F.sum(F.col(violation_column(c)).cast("long")).alias(violation_column(c)) for c in checks
    ]
    out: dict[object, dict[str, int]] = {}
    for row in df.groupBy(group_col).agg(*aggs).collect():
        out[row[group_col]] = {k: int(v or 0) for k, v in row.asDict().items() if k != group_col}
    return out


def row_results(checks: Sequence[RowCheck], stats: Mapping[dt.date, Mapping[str, int]],
                dates: Sequence[dt.date], what: str) -> list[CheckResult]:
    """Results of row-level checks from `aggregate_violations` output keyed by as_of_date."""
    results = []
    for d in dates:
        s = stats.get(d, {})
        rows = s.get("_rows", 0)
        for check in checks:
            bad = s.get(violation_column(check), 0)
            limit = float(getattr(check, "max_fraction", 0.0))
            fraction = bad / rows if rows else 0.0
            ok = fraction <= limit
            message = (f"{check.target} ({what}): {bad} of {rows} rows violate {check.kind} "
                       f"({fraction:.4%}); expected at most {limit:.4%}")
            results.append(_result(check, d, ok, fraction, None, limit, f"violating fraction <= {limit:g}", message))
    return results


# --------------------------------------------------------------------------- dataset-level checks


def row_count_results(check: RowCountCheck, counts: Mapping[dt.date, int], history: Mapping[dt.date, int],
                      dates: Sequence[dt.date], what: str) -> list[CheckResult]:
    """Rows of each date against ``min_rows`` and the mean of the previous ``history`` known dates."""
    results = []
    for d in dates:
        n = counts.get(d, 0)
        known = sorted(((k, v) for k, v in history.items() if k < d), reverse=True)[: check.history]
        mean = sum(v for _, v in known) / len(known) if known else None
        lower, upper = float(check.min_rows), None
        parts = [f">= {check.min_rows}"]
        ok = n >= check.min_rows
        ratio_note = ""
        if check.min_ratio is not None or check.max_ratio is not None:
            if mean is None or len(known) < check.min_history:
                ratio_note = f"; ratio not checked: {len(known)} earlier dates known, {check.min_history} needed"
            else:
                if check.min_ratio is not None:
                    lower = max(lower, check.min_ratio * mean)
                    ok = ok and n >= check.min_ratio * mean
                    parts.append(f">= {check.min_ratio:g} x mean {mean:.1f}")
                if check.max_ratio is not None:
                    upper = check.max_ratio * mean
                    ok = ok and n <= upper
                    parts.append(f"<= {check.max_ratio:g} x mean {mean:.1f}")
        bound = " and ".join(parts)
        message = f"{check.target} ({what}): {n} rows; expected {bound}{ratio_note}"
        results.append(_result(check, d, ok, float(n), lower, upper, bound, message))
    return results


def freshness_results(check: FreshnessCheck, newest: Mapping[dt.date, dt.datetime | None],
                      dates: Sequence[dt.date]) -> list[CheckResult]:
    """Age in hours of the newest event before D 00:00 UTC against ``max_age_hours``."""
    results = []
    for d in dates:
        at = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
        ts = newest.get(d)
        age = (at - ts).total_seconds() / 3600 if ts is not None else None
        ok = age is not None and age <= check.max_age_hours
        shown = "no event in the lookback" if ts is None else f"newest event {ts.isoformat()} ({age:.1f} h old)"
        message = f"events: {shown}; expected at most {check.max_age_hours:g} h before {at.isoformat()}"
        results.append(_result(check, d, ok, age, None, check.max_age_hours, f"age_hours <= {check.max_age_hours:g}",
                               message, column=None))
    return results


@dataclass(frozen=True)
class InputPresentCheck:
    """Built-in R7 check: the input day D-1 holds at least one event (warn when empty input is allowed); for a
    monitor-only model (target ``inference``), the inference log holds at least one row of D."""

    severity: str
    target: str = "events"
    kind: str = "input_present"
    check_name: str = "input_present_events"

    def columns_of(self) -> list[str]:
        return []


def input_present_results(check: InputPresentCheck, counts: Mapping[dt.date, int],
                          dates: Sequence[dt.date]) -> list[CheckResult]:
    results = []
    for d in dates:
        n = counts.get(d, 0)
        day = d - dt.timedelta(days=1)
        if check.target == "inference":   # a monitor-only model's inference log: its rows OF the date
            message = f"inference: {n} rows logged for as_of_date {d}; expected at least 1"
        else:
            message = (f"events: {n} events on input day {day} (UTC) for as_of_date {d}; expected at least 1"
                       + ("" if n or check.severity == "error"
                          else " (empty input allowed by sources.events.allow_empty)"))
        results.append(_result(check, d, n > 0, float(n), 1.0, None, "rows >= 1", message))
    return results


# --------------------------------------------------------------------------- gate and result rows


def failures(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status == ALERT]


def gate(results: Sequence[CheckResult]) -> None:
    """Raise `QualityGateError` listing every failed error-severity check (warnings are logged)."""
    for r in results:
        if r.status == WARN:
            log.warning("quality warning %s on %s: %s", r.check, r.as_of_date, r.message)
    failed = failures(results)
    if failed:
        for r in failed:
            log.error("quality check failed %s on %s: %s", r.check, r.as_of_date, r.message)
        first = failed[0]
        dates = sorted({r.as_of_date for r in failed})
        more = f" (+{len(failed) - 1} more failed checks)" if len(failed) > 1 else ""
        raise QualityGateError(
            f"data-quality gate failed on {len(dates)} date(s) {dates[0]}..{dates[-1]}: "
            f"{first.check} on {first.as_of_date}: {first.message}{more}; nothing was written"
        )


def results_frame(spark: SparkSession, results: Sequence[CheckResult], run_id: str, model: str,
                  config_hash: str, code_version: str) -> DataFrame:
    """The long-format ``quality_results`` rows of a run (`driftline.tables.contracts.QUALITY_RESULTS`)."""
    rows = [(model, r.as_of_date, r.check, r.kind, r.target, r.column, r.severity, r.status,
             finite_or_none(r.observed), finite_or_none(r.lower), finite_or_none(r.upper), r.bound, r.message,
             run_id, code_version, config_hash) for r in results]
    return spark.createDataFrame(rows, QUALITY_RESULTS.schema())


def with_date(results: Sequence[CheckResult], day: dt.date) -> list[CheckResult]:
    return [replace(r, as_of_date=day) for r in results]
