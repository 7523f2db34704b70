"""Which model versions the score job scores a date with, loaded and verified: the champion, and beside it the
shadow challenger (``scoring.shadow``), the previous champion (``retrain.rollback``) and the canary
(``retrain.canary``); a date scored before keeps the versions it recorded (``scoring.rerun_versions``)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import UsageError
from driftline.registry.artifact import deserialize
from driftline.registry.client import ModelRegistry, VersionInfo
from driftline.scoring.signature import (
    ModelSignature,
    known_categories,
    signature_from_params,
    signature_from_pipeline,
)
from driftline.scoring.spark import ModelRef
from driftline.tables.contracts import PREDICTIONS
from driftline.vocabulary import CANARY, CHALLENGER, CHAMPION, MODEL_VERSION, PREVIOUS, ROLE, SCORE_DATE

if TYPE_CHECKING:
    from driftline.config.schema import DriftlineConfig
    from driftline.jobs.context import JobContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedVersion:
    """A model version ready to score with: its ref, verified bytes, the driver's copy and its categories."""

    ref: ModelRef
    data: bytes
    model: Any
    categories: dict[str, tuple[str, ...]]


# --------------------------------------------------------------------------- models


def signature_of(registry: ModelRegistry, info: VersionInfo, model: Any) -> ModelSignature:
    """The feature split the train job recorded on the version's MLflow run, else the pipeline's own."""
    from mlflow.exceptions import MlflowException

    if info.run_id:
        try:
            found = signature_from_params(registry.client.get_run(info.run_id).data.params)
        except MlflowException:
            found = None
        if found is not None:
            return found
    log.warning("%s v%s: no feature lists on its MLflow run; using the fitted pipeline's", registry.name,
                info.version)
    return signature_from_pipeline(model)


def load_version(registry: ModelRegistry, info: VersionInfo, role: str) -> LoadedVersion:
    """Fetch and verify the artifact (hash before deserialization), load it once on the driver."""
    data = registry.verified_bytes(info)
    model = deserialize(data, f"{registry.name} v{info.version}", registry.trust_code)
    signature = signature_of(registry, info, model)
    ref = ModelRef(role, registry.name, info.version, str(info.sha256), signature, registry.trust_code)
    return LoadedVersion(ref, data, model, known_categories(model))


def current_roles(registry: ModelRegistry, cfg: DriftlineConfig) -> tuple[tuple[str, str], ...]:
    """(role, version) of the champion, and of the challenger when ``scoring.shadow`` is on and another
    version holds that alias."""
    champion = registry.alias(CHAMPION)
    if champion is None:
        raise UsageError(f"model {cfg.name}: expected a version with alias '{CHAMPION}', found none "
                         "(train the model or promote a version first)")
    roles = [(CHAMPION, champion.version)]
    challenger = registry.alias(CHALLENGER) if cfg.scoring.shadow else None
    if challenger is not None and challenger.version == champion.version:
        log.info("%s: challenger alias points at the champion v%s; no shadow scoring", cfg.name, champion.version)
    elif challenger is not None:
        roles.append((CHALLENGER, challenger.version))
    if cfg.retrain.rollback.enabled:   # the predecessor beside the champion, for the automatic rollback
        previous = registry.alias(PREVIOUS)
        if previous is not None and previous.version not in {v for _, v in roles}:
            roles.append((PREVIOUS, previous.version))
    if cfg.retrain.canary.enabled:     # a canary rollout: scored on every row, published for its fraction
        rollout = registry.alias(CANARY)
        if rollout is not None and rollout.version != champion.version:   # the rollout's role wins over shadow's
            roles = [p for p in roles if p[1] != rollout.version] + [(CANARY, rollout.version)]
    return tuple(sorted(roles, key=role_order))


def recorded_roles(ctx: JobContext, dates: Sequence[dt.date]) -> dict[dt.date, tuple[tuple[str, str], ...]]:
    """(role, version) pairs each already scored date holds in the predictions table (champion first): from the
    date's stored profile rows where the Delta log vouches for them, else from the rows."""
    from pyspark.sql import functions as F

    from driftline.jobs.monitor_parts import scope_of
    from driftline.monitoring.daily import daily_rows, vouched_rows

    table = PREDICTIONS.table(ctx.config.name)
    if not ctx.store.exists(table):
        return {}
    scope = scope_of(ctx)
    vouched, unknown = vouched_rows(scope, dates, daily_rows(scope, dates))
    pairs: dict[dt.date, set[tuple[str, str]]] = {d: {(r[ROLE], str(r[MODEL_VERSION])) for r in rows}
                                                  for d, rows in vouched.items()}
    if unknown:
        found = (ctx.store.read(table, partitions={SCORE_DATE: unknown})
                 .select(SCORE_DATE, ROLE, F.col(MODEL_VERSION).cast("string").alias("v")).distinct().collect())
        for r in found:
            pairs.setdefault(r[SCORE_DATE], set()).add((r[ROLE], r["v"]))
    return {d: tuple(sorted(p, key=role_order)) for d, p in pairs.items()}


def role_order(pair: tuple[str, str]) -> tuple[bool, str, str]:
    """(role, version) pairs in scoring order: the champion, then by role name (canary, challenger, previous): the
    second is the one ``scoring_stats`` compares with the champion."""
    return (pair[0] != CHAMPION, *pair)


def versions_by_date(ctx: JobContext, registry: ModelRegistry) -> dict[tuple[tuple[str, str], ...], list[dt.date]]:
    """The dates of the run grouped by the (role, version) pairs that score them.

    A date never scored gets the versions holding the aliases now. A date scored before keeps the
    versions recorded in its predictions (``scoring.rerun_versions: recorded``, the default): its
    champion, and its challenger if it had one and ``scoring.shadow`` is on. A rerun after a later
    promotion thus reproduces its rows. ``current`` rescores it with the aliases as they are now.
    """
    cfg = ctx.config
    now = current_roles(registry, cfg)
    recorded = recorded_roles(ctx, ctx.dates) if cfg.scoring.rerun_versions == "recorded" else {}
    groups: dict[tuple[tuple[str, str], ...], list[dt.date]] = {}
    for date in ctx.dates:
        roles = recorded.get(date, now)
        if not cfg.scoring.shadow:
            roles = tuple(p for p in roles if p[0] in (CHAMPION, CANARY)
                          or (p[0] == PREVIOUS and cfg.retrain.rollback.enabled))
        if roles != now:
            log.info("%s %s: scored before by %s; scoring with the same versions (scoring.rerun_versions=recorded)",
                     cfg.name, date, ", ".join(f"{r} v{v}" for r, v in roles))
        groups.setdefault(roles, []).append(date)
    return groups


def resolve_versions(registry: ModelRegistry, cfg: DriftlineConfig,
                     roles: Sequence[tuple[str, str]]) -> list[LoadedVersion]:
    """Load and verify the versions of ``roles`` ((role, version) pairs, see `versions_by_date`)."""
    infos = [(role, registry.get(version)) for role, version in roles]
    loaded = [load_version(registry, info, role) for role, info in infos]
    for v in loaded:
        if v.ref.signature.task != cfg.label.task:
            raise UsageError(
                f"model {cfg.name} v{v.ref.version} ({v.ref.role}): expected label.task {cfg.label.task!r}, "
                f"found a model trained for {v.ref.signature.task!r}"
            )
    return loaded
