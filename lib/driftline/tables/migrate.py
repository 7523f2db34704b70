"""Upgrade the tables of a workspace written by an earlier release to the current table contract.

Each contract version is one step (`STEPS`), applied in order: a contract-1 table goes 1 → 2 → 3 in
one commit. Per table:

Contract 1 (release 0.1) → contract 2:

- ``<model>__features``, ``quarantine``, ``scoring_stats``: add the nullable ``code_version``
  (null on old rows) in one metadata-only commit; no data file is rewritten.
- ``quality_results``: ``status`` pass→ok, warn→warn, fail→alert, skipped→insufficient_data; add
  ``code_version``. Rewritten.
- ``<model>__predictions``: ``model_name`` renamed ``model``. Rewritten.
- ``reference_profiles``: ``model_name``→``model`` (a partition column); the score's rows say
  ``score`` instead of ``prediction`` in ``column`` and ``role``; add ``code_version``. Rewritten.
- ``monitor_metrics``: ``model_name``→``model`` (a partition column); ``column`` 'prediction'→'score';
  add ``config_hash`` and ``code_version`` from the ``monitor_runs`` row of the same ``run_id``.
  Rewritten.
- ``monitor_runs``, ``retrain_decisions``, ``pipeline_runs``: unchanged.

Contract 2 → contract 3 (drift episodes):

- ``retrain_decisions``: add the nullable episode columns (``episode_id``, ``onset_date``, ...; null on
  old rows) in one metadata-only commit.
- every other table: unchanged.

A table's version is read from its schema (`detect`). `plan` looks at every table under the
tables root first and refuses (`MigrationRefused`, exit 2, nothing changed) unless each one is a
driftline table in a known contract version or a source table of a configured model; `apply`
then migrates each table in its own Delta commit. A table already current is left alone, so a
second run changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pyspark.sql.types import DataType, StructField, StructType

from driftline import vocabulary as v
from driftline.errors import InputContractError, TableError
from driftline.tables import contracts as c
from driftline.tables.commit import CommitInfo
from driftline.tables.names import validate_table_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.tables.store import TableStore

log = logging.getLogger(__name__)

FROM_VERSION, TO_VERSION = 1, c.CONTRACT_VERSION   # the oldest contract migrate reads, the current one
JOB, KEY = "migrate", f"contract-{TO_VERSION}"

OLD_MODEL = "model_name"                     # contract 1's spelling of `model`
OLD_SCORE = "prediction"                     # contract 1's name of the score in profiles and metrics
QUALITY_STATUS = {"pass": v.OK, "warn": v.WARN, "fail": v.ALERT, "skipped": v.INSUFFICIENT}


class MigrationRefused(InputContractError):
    """The workspace holds a table migrate does not know (name, columns or values): nothing was changed
    (exit 2, the code of every `InputContractError`)."""


@dataclass(frozen=True)
class Change:
    """What one contract step (N-1 → N) changes in one table; the cumulative change of several steps too."""

    summary: str = ""
    renamed: Mapping[str, str] = field(default_factory=dict)  # name in the newer contract → name in the older
    added: tuple[str, ...] = ()  # columns of the newer contract the older lacks (nullable)
    rewrite: bool = False  # False: a metadata-only commit adding ``added``


_ADD_CODE_VERSION = Change("add code_version (metadata only)", added=(v.CODE_VERSION,))

CHANGES_1_2: dict[str, Change] = {
    c.FEATURES.name: _ADD_CODE_VERSION,
    c.QUALITY_RESULTS.name: Change("rewrite: status pass→ok, fail→alert, skipped→insufficient_data; "
                                   "add code_version", added=(v.CODE_VERSION,), rewrite=True),
    c.QUARANTINE.name: _ADD_CODE_VERSION,
    c.PREDICTIONS.name: Change("rewrite: model_name → model", renamed={v.MODEL: OLD_MODEL}, rewrite=True),
    c.SCORING_STATS.name: _ADD_CODE_VERSION,
    c.REFERENCE_PROFILES.name: Change("rewrite: model_name → model (partition column), prediction → score; "
                                      "add code_version", renamed={v.MODEL: OLD_MODEL},
                                      added=(v.CODE_VERSION,), rewrite=True),
    c.MONITOR_METRICS.name: Change("rewrite: model_name → model (partition column), prediction → score; "
                                   "add config_hash, code_version from monitor_runs",
                                   renamed={v.MODEL: OLD_MODEL}, added=(v.CONFIG_HASH, v.CODE_VERSION),
                                   rewrite=True),
    c.MONITOR_RUNS.name: Change(),
    c.RETRAIN_DECISIONS.name: Change(),
    c.PIPELINE_RUNS.name: Change(),
}

EPISODE_COLUMNS = ("episode_id", "onset_date", "armed_date", "episode_status", "labels_available", "labels_needed",
                   "label_days_available", "label_days_needed", "waited_days", "wait_reason")

CHANGES_2_3: dict[str, Change] = {
    **{t.name: Change() for t in c.ALL},
    c.RETRAIN_DECISIONS.name: Change("add the episode columns (metadata only)", added=EPISODE_COLUMNS),
}

STEPS: dict[int, dict[str, Change]] = {2: CHANGES_1_2, 3: CHANGES_2_3}   # contract N: what N-1 → N changes
if max(STEPS) != TO_VERSION or set(STEPS) != set(range(FROM_VERSION + 1, TO_VERSION + 1)):
    raise TableError(f"driftline.tables.migrate: expected a step per contract {FROM_VERSION + 1}..{TO_VERSION}, "
                     f"found {sorted(STEPS)}")

Action = Literal["current", "migrate", "source"]


@dataclass(frozen=True)
class TablePlan:
    """What migrate does to one table."""

    table: str
    action: Action
    version: int | None = None  # the table's latest version (driftline tables)
    contract: c.TableContract | None = None
    leading: tuple[StructField, ...] = ()  # per-model tables: the model's columns, in table order
    models: tuple[str, ...] = ()  # source tables: the models reading it
    rows: int | None = None  # migrate: rows of the table (filled by `plan`)
    from_contract: int = TO_VERSION  # the table's contract version (migrate: older than TO_VERSION)

    def line(self) -> str:
        """The CLI's line for a table left alone, or one to be migrated (a dry run)."""
        if self.action == "source":
            s = "s" if len(self.models) > 1 else ""
            return f"{self.table}: source table of model{s} {', '.join(self.models)}, left alone"
        if self.action == "current":
            return f"{self.table}: current"
        return (f"{self.table}: would migrate contract {self.from_contract} → {TO_VERSION} "
                f"({change_of(self).summary}; version {self.version}, {self.rows} rows)")


@dataclass(frozen=True)
class Migrated:
    """One table's migration commit."""

    table: str
    old_version: int
    new_version: int
    rows: int
    from_contract: int = FROM_VERSION

    def line(self) -> str:
        return (f"{self.table}: migrated contract {self.from_contract} → {TO_VERSION} "
                f"(version {self.old_version} → {self.new_version}, {self.rows} rows)")


def change_between(contract: c.TableContract, start: int, end: int = TO_VERSION) -> Change:
    """The cumulative change of a table from contract ``start`` to ``end``: renames composed, columns added
    on the way (in contract order), a rewrite when any step rewrites, the steps' summaries."""
    names = {col.name: col.name for col in contract.columns}   # name in ``end`` → name in the older contract
    added: set[str] = set()
    for step in range(end, start, -1):
        change = STEPS[step][contract.name]
        added |= {new for new, old in names.items() if old in change.added}
        names = {new: change.renamed.get(old, old) for new, old in names.items()}
    steps = [STEPS[n][contract.name] for n in range(start + 1, end + 1)]
    summaries = [f"contract {n - 1} → {n}: {ch.summary}" if len([x for x in steps if x.summary]) > 1 else ch.summary
                 for n, ch in zip(range(start + 1, end + 1), steps, strict=True) if ch.summary]
    return Change("; ".join(summaries),
                  renamed={new: old for new, old in names.items() if new != old and new not in added},
                  added=tuple(col.name for col in contract.columns if col.name in added),
                  rewrite=any(ch.rewrite for ch in steps))


def change_of(p: TablePlan) -> Change:
    if p.contract is None:
        raise TableError(f"table {p.table}: expected a driftline table, found a source table")
    return change_between(p.contract, p.from_contract)


# --------------------------------------------------------------------------- detection


def _shape_problems(expected: Mapping[str, DataType], forbidden: set[str], schema: StructType,
                    allow_extra: bool) -> list[str]:
    """How ``schema`` differs from ``expected`` columns (by name and type); [] when it matches."""
    found = {f.name: f.dataType for f in schema.fields}
    problems = [f"no column {name} ({t.simpleString()})" for name, t in expected.items() if name not in found]
    problems += [f"column {name} is {found[name].simpleString()}, not {t.simpleString()}"
                 for name, t in expected.items() if name in found and found[name] != t]
    problems += [f"unexpected column {name}" for name in found if name in forbidden]
    if not allow_extra:
        problems += [f"extra column {name}" for name in found if name not in expected and name not in forbidden]
    return problems


def contract_shapes(contract: c.TableContract) -> dict[int, tuple[dict[str, DataType], set[str]]]:
    """Per contract version: the columns (name → type) a table has, and the names it must not have (those of
    the other versions)."""
    types = {col.name: col.type for col in contract.columns}
    columns = {TO_VERSION: {col.name: col.name for col in contract.columns}}   # version → {current name: its name}
    for version in range(TO_VERSION, FROM_VERSION, -1):
        change = STEPS[version][contract.name]
        columns[version - 1] = {cur: change.renamed.get(name, name) for cur, name in columns[version].items()
                                if name not in change.added}
    every = {name for cols in columns.values() for name in cols.values()}
    shapes = {}
    for version, cols in columns.items():
        expected = {name: types[cur] for cur, name in cols.items()}
        shapes[version] = (expected, every - set(expected))
    return shapes


def detect(contract: c.TableContract, schema: StructType) -> tuple[int | None, str]:
    """The contract version of a table with this schema, or (None, what differs from the nearest one).

    Current: every contract column by name and type, none of an older contract's names (other columns
    are left alone). An older contract: exactly its columns (a per-model table: plus its model's); where
    two versions have the same columns, the newer.
    """
    shapes = contract_shapes(contract)
    problems: dict[int, list[str]] = {}
    for version in sorted(shapes, reverse=True):
        expected, forbidden = shapes[version]
        extra_ok = version == TO_VERSION or contract.per_model
        problems[version] = _shape_problems(expected, forbidden, schema, extra_ok)
        if not problems[version]:
            return version, ""
    if not any(STEPS[n][contract.name].renamed or STEPS[n][contract.name].added for n in STEPS):
        nearest = TO_VERSION
    else:
        nearest = min(problems, key=lambda ver: (len(problems[ver]), -ver))
    return None, f"nearest contract {nearest}: found {', '.join(problems[nearest])}"


def outdated(name: str, schema: StructType) -> InputContractError | None:
    """The error for a driftline table an earlier release wrote (its contract is older than the current):
    run ``driftline migrate``. None for a current table, a table of unknown shape or a source table."""
    contract = c.contract_of(name)
    if contract is None:
        return None
    version, _ = detect(contract, schema)
    if version is None or version >= TO_VERSION:
        return None
    return InputContractError(
        f"table {name}: written by an earlier driftline (table contract {version}), expected contract "
        f"{TO_VERSION}: run driftline migrate --workspace <workspace> first (docs/migrate.md)")


# --------------------------------------------------------------------------- planning


def plan(store: TableStore, sources: Mapping[str, Sequence[str]]) -> list[TablePlan]:
    """What to do with every table under the tables root; `MigrationRefused` (one line, nothing changed)
    when one is neither a driftline table of a known contract version nor a source table in ``sources``
    (source table → the models reading it). Schemas are checked first, then the tables to migrate are
    counted (and quality_results' status values checked)."""
    try:
        names = store.table_names()
    except TableError as exc:
        raise MigrationRefused(f"{exc} (migrate a copy where the tables are a local folder)") from None
    plans, refused = [], []
    for name in names:
        try:
            plans.append(_plan_table(store, name, sources))
        except MigrationRefused as exc:
            refused.append(str(exc))
    if not refused:
        try:
            plans = [_with_rows(store, p) if p.action == "migrate" else p for p in plans]
        except MigrationRefused as exc:
            refused.append(str(exc))
    if refused:
        more = f" (and {len(refused) - 1} more: {'; '.join(refused[1:])})" if len(refused) > 1 else ""
        raise MigrationRefused(f"{refused[0]}{more}; nothing was changed")
    return plans


def _plan_table(store: TableStore, name: str, sources: Mapping[str, Sequence[str]]) -> TablePlan:
    try:
        validate_table_name(name)
    except TableError:
        raise MigrationRefused(f"table folder {name!r}: expected a table name (an identifier), found "
                               "another name") from None
    if name in sources:
        return TablePlan(name, "source", models=tuple(sources[name]))
    contract = c.contract_of(name)
    if contract is None:
        raise MigrationRefused(
            f"table {name}: expected a driftline table ({', '.join(t.name for t in c.ALL)}) or a source table "
            f"of a configured model ({', '.join(sorted(sources)) or 'none configured'}), found neither"
        )
    try:
        schema = store.schema(name)
    except TableError as exc:
        raise MigrationRefused(f"table {name}: expected a readable Delta table, found: {exc}") from None
    version, problem = detect(contract, schema)
    if version is None:
        known = ", ".join(str(n) for n in range(TO_VERSION, FROM_VERSION - 1, -1))
        raise MigrationRefused(f"table {name}: expected the columns of {contract.name} in contract {known}, "
                               f"{problem}")
    if version == TO_VERSION:
        return TablePlan(name, "current", store.version(name), contract)
    known_columns = set(contract_shapes(contract)[version][0])
    leading = tuple(f for f in schema.fields if f.name not in known_columns)
    return TablePlan(name, "migrate", store.version(name), contract, leading, from_contract=version)


def _with_rows(store: TableStore, p: TablePlan) -> TablePlan:
    if p.contract is not None and p.contract.name == c.QUALITY_RESULTS.name and p.from_contract < 2:
        _check_quality_statuses(store, p.table)
    return dataclasses.replace(p, rows=store.read(p.table).count())


def _check_quality_statuses(store: TableStore, name: str) -> None:
    found = {r[0] for r in store.read(name).select("status").distinct().collect()}
    unknown = sorted(str(s) for s in found - set(QUALITY_STATUS) - set(v.STATUSES))
    if unknown:
        raise MigrationRefused(f"table {name}: expected status values {', '.join(QUALITY_STATUS)}, found "
                               f"{', '.join(unknown)}")


# --------------------------------------------------------------------------- applying


def apply(store: TableStore, plans: Sequence[TablePlan], commit: CommitInfo) -> Iterator[Migrated]:
    """Migrate each table of ``plans`` marked ``migrate``, one Delta commit per table, in plan order."""
    for p in plans:
        if p.action == "migrate":
            yield migrate_table(store, p, commit)


def migrate_table(store: TableStore, p: TablePlan, commit: CommitInfo) -> Migrated:
    """One table to the current contract in one commit: a rewrite, or a metadata-only commit adding columns."""
    contract, change = p.contract, change_of(p)
    if p.action != "migrate" or contract is None or p.rows is None:
        raise TableError(f"table {p.table}: expected a table planned for migration, found action {p.action}")
    before = store.version(p.table)
    if change.rewrite:
        result = store.rewrite(p.table, migrated_frame(store, p), list(contract.partition_by), commit)
        rows = result.rows
    else:
        fields = [col.field() for col in contract.columns if col.name in change.added]
        result = store.add_columns(p.table, fields, commit)
        rows = p.rows
    after = result.version if result.version is not None else store.version(p.table)
    done = Migrated(p.table, before, after, rows, p.from_contract)
    log.info("migrate: %s", done.line())
    return done


def migrated_frame(store: TableStore, p: TablePlan) -> DataFrame:
    """The table's rows in the current contract: columns renamed, values mapped (each step's from the table's
    contract on), new columns (null), contract order."""
    from pyspark.sql import functions as F

    change = change_of(p)
    contract = p.contract
    if contract is None:
        raise TableError(f"table {p.table}: expected a driftline table, found a source table")
    df = store.read(p.table)
    for new, old in change.renamed.items():
        df = df.withColumnRenamed(old, new)
    for step in range(p.from_contract + 1, TO_VERSION + 1):
        df = VALUE_MAPS.get(step, {}).get(contract.name, lambda frame, _store: frame)(df, store)
    target = contract.schema(leading=p.leading)
    for col in target.fields:
        if col.name not in df.columns:
            df = df.withColumn(col.name, F.lit(None).cast(col.dataType))
    return df.select([F.col(f"`{col.name}`").cast(col.dataType).alias(col.name) for col in target.fields])


def _quality_results(df: DataFrame, store: TableStore) -> DataFrame:
    from pyspark.sql import functions as F

    pairs: dict[str, str] = {**{s: s for s in v.STATUSES}, **QUALITY_STATUS}
    mapping = F.create_map(*[F.lit(x) for pair in pairs.items() for x in pair])
    return df.withColumn("status", mapping[F.col("status")])


def _reference_profiles(df: DataFrame, store: TableStore) -> DataFrame:
    """The score's rows (role 'prediction'): role and column become 'score'; a feature keeps its name."""
    from pyspark.sql import functions as F

    is_score = F.col(v.ROLE) == OLD_SCORE
    return (df.withColumn("column", F.when(is_score & (F.col("column") == OLD_SCORE), v.SCORE)
                          .otherwise(F.col("column")))
              .withColumn(v.ROLE, F.when(is_score, v.SCORE).otherwise(F.col(v.ROLE))))


def _monitor_metrics(df: DataFrame, store: TableStore) -> DataFrame:
    """``column`` 'prediction' → 'score'; config_hash and code_version of the monitor run (null if none)."""
    from pyspark.sql import functions as F

    df = df.withColumn("column", F.when(F.col("column") == OLD_SCORE, v.SCORE).otherwise(F.col("column")))
    if not store.exists(c.MONITOR_RUNS.name):
        return df
    runs = (store.read(c.MONITOR_RUNS.name).groupBy(v.RUN_ID)
            .agg(F.min(v.CONFIG_HASH).alias(v.CONFIG_HASH), F.min(v.CODE_VERSION).alias(v.CODE_VERSION)))
    return df.join(F.broadcast(runs), on=v.RUN_ID, how="left")


VALUE_MAPS: dict[int, dict[str, Callable[[DataFrame, TableStore], DataFrame]]] = {   # contract N: N-1 → N
    2: {
        c.QUALITY_RESULTS.name: _quality_results,
        c.REFERENCE_PROFILES.name: _reference_profiles,
        c.MONITOR_METRICS.name: _monitor_metrics,
    },
}


__all__ = ["STEPS", "Change", "MigrationRefused", "Migrated", "TablePlan", "apply", "change_between", "detect",
           "migrate_table", "outdated", "plan"]
