"""Upgrade the tables of a workspace written by an earlier release to the current table contract.

Each contract version is one step (`STEPS`), applied in order: a contract-1 table goes 1 → 2 → 3 → 4 in
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

Contract 3 → contract 4 (canary rollout):

- ``<model>__predictions``: add the nullable ``published`` (null on old rows, where the champion's row is the
  published one) in one metadata-only commit.
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pyspark.sql.types import StructField

from driftline import vocabulary as v
from driftline.errors import InputContractError, TableError
from driftline.tables import contracts as c
from driftline.tables.commit import CommitInfo
from driftline.tables.contract_steps import (
    FROM_VERSION,
    OLD_SCORE,
    QUALITY_STATUS,
    STEPS,
    TO_VERSION,
    Change,
    change_between,
    contract_shapes,
    detect,
)
from driftline.tables.names import validate_table_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.tables.store import TableStore

log = logging.getLogger(__name__)

JOB, KEY = "migrate", f"contract-{TO_VERSION}"

class MigrationRefused(InputContractError):
    """The workspace holds a table migrate does not know (name, columns or values): nothing was changed
    (exit 2, the code of every `InputContractError`)."""


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


def change_of(p: TablePlan) -> Change:
    if p.contract is None:
        raise TableError(f"table {p.table}: expected a driftline table, found a source table")
    return change_between(p.contract, p.from_contract)


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
           "migrate_table", "plan"]
