"""The table contract's history: what each contract step (N-1 → N) changes in each table (`STEPS`), the
cumulative change across steps (`change_between`), and which contract version a table's schema is (`detect`,
`outdated`: the error a job gives for a table an earlier release wrote). `driftline.tables.migrate` applies
the steps; the table store refuses outdated tables with `outdated`'s error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql.types import DataType, StructType

from driftline import vocabulary as v
from driftline.errors import InputContractError, TableError
from driftline.tables import contracts as c

FROM_VERSION, TO_VERSION = 1, c.CONTRACT_VERSION   # the oldest contract migrate reads, the current one

OLD_MODEL = "model_name"                     # contract 1's spelling of `model`
OLD_SCORE = "prediction"                     # contract 1's name of the score in profiles and metrics
QUALITY_STATUS = {"pass": v.OK, "warn": v.WARN, "fail": v.ALERT, "skipped": v.INSUFFICIENT}


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
    c.DAILY_PROFILES.name: Change(),   # added in contract 3's release, its shape unchanged since: never migrated
    c.ALERT_EVENTS.name: Change(),     # likewise (added after contract 3)
    c.CHAMPION_ROLLBACKS.name: Change(),
    c.CANARY_STEPS.name: Change(),
}

EPISODE_COLUMNS = ("episode_id", "onset_date", "armed_date", "episode_status", "labels_available", "labels_needed",
                   "label_days_available", "label_days_needed", "waited_days", "wait_reason")

CHANGES_2_3: dict[str, Change] = {
    **{t.name: Change() for t in c.ALL},
    c.RETRAIN_DECISIONS.name: Change("add the episode columns (metadata only)", added=EPISODE_COLUMNS),
}

CHANGES_3_4: dict[str, Change] = {
    **{t.name: Change() for t in c.ALL},
    c.PREDICTIONS.name: Change("add published (metadata only; null on old rows, where the champion's row is the "
                               "published one)", added=(v.PUBLISHED,)),
}

STEPS: dict[int, dict[str, Change]] = {2: CHANGES_1_2, 3: CHANGES_2_3, 4: CHANGES_3_4}  # N: what N-1 → N changes
if max(STEPS) != TO_VERSION or set(STEPS) != set(range(FROM_VERSION + 1, TO_VERSION + 1)):
    raise TableError(f"driftline.tables.contract_steps: expected a step per contract {FROM_VERSION + 1}..{TO_VERSION}, "
                     f"found {sorted(STEPS)}")


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
