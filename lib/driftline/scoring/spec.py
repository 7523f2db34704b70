"""Configuration slice of the score job (``scoring:`` in the config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from driftline.spec import Frozen


class ScoringConfig(Frozen):
    """How the score job runs: shadow challenger, Arrow batch size, threads per Python worker."""

    # Score the version holding the ``challenger`` alias next to the champion (rows with role=challenger).
    shadow: bool = True
    # Rows per Arrow batch of the scoring pass; unset: runtime.arrow_batch_size.
    batch_size: int | None = Field(None, ge=1, le=10_000_000)
    # BLAS/OpenMP threads one Python worker may use while predicting (Spark already runs one task per core).
    threads_per_worker: int = Field(1, ge=1, le=1024)
    # A date scored before is scored again with the versions recorded in its predictions ("recorded":
    # a rerun or a forced backfill reproduces its rows after a later promotion), or with the versions
    # holding the aliases now ("current": rescore history with today's champion).
    rerun_versions: Literal["recorded", "current"] = "recorded"
    # Fold each scored date's profile (features + score on the version's reference bins) and a sample of its
    # rows in the scoring pass and store them in <model>__daily_profiles, so the monitor merges them instead of
    # re-reading the window (false: the monitor profiles every date from its rows, as before).
    daily_profiles: bool = True
