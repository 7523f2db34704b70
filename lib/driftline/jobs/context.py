"""What a job function receives: the resolved config, the dates, the run identity and the session."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import driftline
from driftline.config import DriftlineConfig, LoadedConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from driftline.jobs import JobResult
    from driftline.tables import CommitInfo, TableStore


@cache
def code_version() -> str:
    """Package version plus the git commit of the source tree when there is one (``0.1.0+g1a2b3c4``)."""
    version = driftline.__version__
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=7", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        sha = ""
    return f"{version}+g{sha}" if sha else version


def new_run_id(job: str, started_at: dt.datetime) -> str:
    """Sortable, unique run id: ``<job>-<UTC timestamp>-<8 hex>``."""
    return f"{job}-{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass
class JobContext:
    """Everything one job run needs; built by the runner, passed to the job function."""

    job: str
    loaded: LoadedConfig
    dates: tuple[dt.date, ...]
    spark: SparkSession
    run_id: str
    started_at: dt.datetime
    force: bool = False
    # a retrain inside a drift episode: the episode's onset date (the train job anchors its windows and
    # reference on the rows from it on); None for an ordinary run
    onset: dt.date | None = None
    _store: TableStore | None = field(default=None, repr=False)
    _first_commit: int = field(default=0, repr=False)       # commits of the shared store before this run
    _clock: float = field(default_factory=time.monotonic, repr=False)
    _nested: bool = field(default=False, repr=False)   # run in process by another job (child)

    @property
    def config(self) -> DriftlineConfig:
        return self.loaded.config

    @property
    def config_hash(self) -> str:
        return self.loaded.config_hash

    @property
    def code_version(self) -> str:
        return code_version()

    @property
    def workspace(self) -> Path:
        return Path(self.config.workspace)

    @property
    def store(self) -> TableStore:
        """The table layer for this run (opened once, on first use)."""
        if self._store is None:
            from driftline.tables import open_store

            self._store = open_store(self.spark, self.config.storage, self.workspace)
        return self._store

    def child(self, job: str, dates: tuple[dt.date, ...], force: bool = False,
              onset: dt.date | None = None) -> JobContext:
        """The context of ``job`` run in process by this one: same config, session and store, its own run id
        (``onset``: the drift episode a retrain's training belongs to)."""
        started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        return JobContext(job=job, loaded=self.loaded, dates=dates, spark=self.spark,
                          run_id=new_run_id(job, started), started_at=started, force=force, onset=onset,
                          _store=self.store, _first_commit=len(self.store.commits), _nested=True)

    def sync_catalog(self) -> None:
        """After a top-level run that committed: register the workspace's tables in ``storage.catalog`` (when
        enabled; never fails the run, see `driftline.tables.catalog.sync_after_job`)."""
        if self._nested or self._store is None or not self._store.commits or not self.config.storage.catalog.enabled:
            return
        from driftline.tables.catalog import sync_after_job

        sync_after_job(self.spark, self._store, self.config.storage.catalog)

    def result(self, status: str = "ok", *, exit_code: int = 0, model_version: str | None = None,
               steps: tuple[JobResult, ...] = (), error: str | None = None) -> JobResult:
        """This run's `JobResult`: the store's commits since the run started and the time it took."""
        from driftline.jobs import JobResult, TableWrite

        commits = self._store.commits[self._first_commit:] if self._store is not None else []
        return JobResult(
            job=self.job, run_id=self.run_id, status=status, exit_code=exit_code,
            elapsed_seconds=round(time.monotonic() - self._clock, 3),
            tables=tuple(TableWrite(c.table, c.version, c.rows) for c in commits if c.version is not None),
            model_version=model_version, steps=steps, error=error,
        )

    def commit_info(self, key: str, **extra: str) -> CommitInfo:
        """Commit metadata for a write keyed by ``key`` (a logical date or partition)."""
        from driftline.tables import CommitInfo

        return CommitInfo(
            job=self.job, run_id=self.run_id, key=key,
            code_version=self.code_version, config_hash=self.config_hash, extra=dict(extra),
        )

