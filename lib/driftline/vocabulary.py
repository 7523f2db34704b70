"""One spelling per concept across every table driftline writes, and the one verdict vocabulary.

Column names that several tables share are defined here once (the table contracts in
`driftline.tables.contracts` and every job use these constants, never a literal). Verdict columns
(``status`` of ``monitor_metrics``, ``monitor_runs`` and ``quality_results``; ``quality_status`` and
``performance_status`` of ``monitor_runs``) take values of `STATUSES`, ordered by severity:

    ok < insufficient_data < warn < alert

``insufficient_data`` means "not evaluated" (too few rows, or a check that had nothing to look at),
never "fine"; ``warn`` and ``alert`` are the two severities (a quality check of severity ``warn``
that fails is ``warn``, one of severity ``error`` is ``alert``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

# -- shared column names -------------------------------------------------------------------------
MODEL = "model"                  # the model's name (the `name` of its config)
MODEL_VERSION = "model_version"  # the MLflow registered model version, as a string
RUN_ID = "run_id"                # driftline's run id of the job run that wrote the row
CODE_VERSION = "code_version"    # driftline's version (and git commit when known) that wrote the row
CONFIG_HASH = "config_hash"      # SHA-256 prefix of the resolved configuration the row was computed under
SCORE = "score"                  # the model's output: positive-class probability or regression value
LOGGED_SCORE = "logged_score"   # a monitor-only model's features table: the score its inference log recorded
SERVING_VERSION = "serving_version"   # ... and the serving model's version label (sources.inference.version)
PREDICTED_LABEL = "predicted_label"
ROLE = "role"
AS_OF = "as_of_date"             # the logical date a feature row describes (UTC day)
SCORE_DATE = "score_date"
RUN_DATE = "run_date"
DECISION_DATE = "decision_date"

PROVENANCE = (RUN_ID, CODE_VERSION, CONFIG_HASH)  # carried by every table

# -- registry aliases, also the roles of a version's rows in the predictions --------------------
CHAMPION, CHALLENGER, PREVIOUS, CANARY = "champion", "challenger", "previous", "canary"
PUBLISHED = "published"   # predictions: the row BI readers take (one per entity and date)
FEATURE_ROLE = "feature"  # reference_profiles.role of a feature column (the score's role is SCORE)

# -- the verdict vocabulary --------------------------------------------------------------------
Status = Literal["ok", "insufficient_data", "warn", "alert"]
OK: Status = "ok"
INSUFFICIENT: Status = "insufficient_data"
WARN: Status = "warn"
ALERT: Status = "alert"
STATUSES: tuple[Status, ...] = (OK, INSUFFICIENT, WARN, ALERT)  # in order of severity
STATUS_ORDER = {s: i for i, s in enumerate(STATUSES)}


def worst(statuses: Iterable[str]) -> str:
    """The most severe of ``statuses`` (alert > warn > insufficient_data > ok); ``ok`` when empty."""
    return max(statuses, key=lambda s: STATUS_ORDER.get(s, 0), default=OK)


def finite_or_none(value: float | None) -> float | None:
    """A statistic as a table stores it: NaN and ±inf (undefined) become None (SQL null), else a float."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
