"""Configuration slice of the alerts package (``alerts:`` in the config)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from driftline.alerts.channel_spec import ChannelConfig
from driftline.spec import Frozen, Identifier, is_uri

PUSHGATEWAY_ENV = "DRIFTLINE_PUSHGATEWAY_URL"  # the Pushgateway URL when the config names none (may carry a secret)
_HTTP = re.compile(r"^https?://[^\s/]+(/\S*)?$")


class MetricsExportConfig(Frozen):
    """``alerts.metrics``: each monitor run's verdicts and key metrics in Prometheus text format.

    ``textfile_dir``: a node_exporter textfile-collector folder (relative: to the workspace); the run
    replaces ``<dir>/driftline_<model>.prom`` atomically. ``pushgateway_url``: push the same to a
    Pushgateway (grouping key ``job`` + ``model``); unset: ``$DRIFTLINE_PUSHGATEWAY_URL`` when set, so a
    URL with credentials never has to be written into a config file. A failed push is logged with its
    cause and retried ``retries`` times with backoff; it never fails the job.
    """

    textfile_dir: str | None = None
    pushgateway_url: str | None = None
    job: Identifier = "driftline"
    timeout_seconds: float = Field(5.0, gt=0, le=120)
    retries: int = Field(2, ge=0, le=10)

    @field_validator("textfile_dir")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "\n" in value or is_uri(value)):
            raise ValueError(f"expected a local folder (node_exporter's textfile directory), found {value!r}")
        return value

    @field_validator("pushgateway_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP.match(value):
            raise ValueError(f"expected an http:// or https:// URL, found {value!r}")
        if value is not None and "@" in value.split("/")[2]:
            raise ValueError(f"expected a URL without credentials (put such a URL in ${PUSHGATEWAY_ENV}), found one "
                             "with a user or password")
        return value


MONITOR_KINDS = ("dataset_drift", "column_drift", "quality", "performance")
RETRAIN_KINDS = ("retrain", "promotion", "rollback", "canary")
CANARY_OUTCOMES = ("started", "widened", "held", "insufficient_data", "promoted", "rolled_back")
FAILURE_KIND = "job_failed"
KINDS = (*MONITOR_KINDS, *RETRAIN_KINDS, FAILURE_KIND)
JOBS = ("prepare_features", "train", "score", "monitor", "retrain", "pipeline")
# the parameters each kind reads (any other one set on a rule is refused, so a typo is not silently ignored)
_PARAMS = {"column_drift": {"columns", "min_columns"}, "quality": {"level"}, "dataset_drift": {"level"},
           "performance": {"metric", "bound", "direction"}, "retrain": {"decisions"}, "job_failed": {"jobs"},
           "canary": {"outcomes"}}


class AlertRule(Frozen):
    """``alerts.rules[]``: when to tell whom. ``when`` is the kind of verdict watched:

    - ``dataset_drift``: the monitor's dataset drift verdict reached ``level`` (default ``alert``); value: the drift
      share; ``column_drift``: at least ``min_columns`` columns (of ``columns``, default all) drifted;
    - ``quality``: the window's data-quality verdict reached ``level``;
    - ``performance``: ``metric`` (realized: ``auc``, ``rmse``...; estimated: ``estimated_auc``...) went
      ``direction`` (``below`` default, ``above`` for errors) ``bound``; no value (insufficient labels) never fires;
    - ``retrain``: the retrain decision was one of ``decisions`` (``fired`` default, ``armed``);
    - ``promotion``: a retrain promoted a new champion; ``rollback``: the champion was rolled back
      automatically (``retrain.rollback``);
    - ``canary``: a canary rollout step (``retrain.canary``) ended in one of ``outcomes`` (default ``started``,
      ``widened``, ``promoted``, ``rolled_back``; also ``held``, ``insufficient_data``);
    - ``job_failed``: a job (of ``jobs``, default all) failed; its one-line error is the reason.

    ``k``/``n``: monitor kinds fire when this run and at least ``k - 1`` of the ``n - 1`` runs before it met the
    condition. ``cooldown_days``: not sent again within that many days of the last sent alert of the rule (the row is
    recorded as ``suppressed``).
    """

    name: Identifier
    when: Literal["dataset_drift", "column_drift", "quality", "performance", "retrain", "promotion", "rollback",
                  "canary", "job_failed"]
    channels: tuple[Identifier, ...] = Field(min_length=1)
    severity: Literal["critical", "warning", "info"] = "warning"
    k: int = Field(1, ge=1, le=30)
    n: int = Field(1, ge=1, le=30)
    cooldown_days: int = Field(0, ge=0, le=365)
    level: Literal["warn", "alert"] = "alert"
    columns: tuple[str, ...] = ()
    min_columns: int = Field(1, ge=1)
    metric: str | None = None
    bound: float | None = None
    direction: Literal["below", "above"] = "below"
    decisions: tuple[Literal["fired", "armed"], ...] = ("fired",)
    outcomes: tuple[Literal["started", "widened", "held", "insufficient_data", "promoted", "rolled_back"], ...] = (
        "started", "widened", "promoted", "rolled_back")
    jobs: tuple[Literal["prepare_features", "train", "score", "monitor", "retrain", "pipeline"], ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> AlertRule:
        if self.k > self.n:
            raise ValueError(f"rule {self.name}: expected k <= n (k of the last n runs), found k={self.k} n={self.n}")
        if (self.k, self.n) != (1, 1) and self.when not in MONITOR_KINDS:
            raise ValueError(f"rule {self.name}: k/n apply to the monitor kinds ({', '.join(MONITOR_KINDS)}), "
                             f"found when={self.when}")
        allowed = _PARAMS.get(self.when, set())
        stray = sorted(p for p in ("columns", "min_columns", "level", "metric", "bound", "direction", "decisions",
                                   "outcomes", "jobs") if p in self.model_fields_set and p not in allowed)
        if stray:
            raise ValueError(f"rule {self.name}: {', '.join(stray)} do not apply to when={self.when} (it reads "
                             f"{', '.join(sorted(allowed)) or 'no parameter'})")
        if self.when == "performance" and (self.metric is None or self.bound is None):
            raise ValueError(f"rule {self.name}: when=performance needs metric and bound, found metric={self.metric} "
                             f"bound={self.bound}")
        return self


class AlertsConfig(Frozen):
    """``alerts:``: what reaches people (``rules`` sent through ``channels``, each alert a row of ``alert_events``)
    and ops dashboards (``metrics``). ``dry_run``: log what would be sent, send and record nothing."""

    metrics: MetricsExportConfig = Field(default_factory=MetricsExportConfig)
    channels: dict[Identifier, ChannelConfig] = Field(default_factory=dict)
    rules: tuple[AlertRule, ...] = ()
    dry_run: bool = False

    @model_validator(mode="after")
    def _known_channels(self) -> AlertsConfig:
        names = [r.name for r in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"expected one rule per name, found {', '.join(twice)} more than once")
        for rule in self.rules:
            unknown = [c for c in rule.channels if c not in self.channels]
            if unknown:
                raise ValueError(f"rule {rule.name}: expected channels named in alerts.channels "
                                 f"({', '.join(sorted(self.channels)) or 'none defined'}), found {', '.join(unknown)}")
        return self

    def rules_for(self, kinds: tuple[str, ...]) -> tuple[AlertRule, ...]:
        return tuple(r for r in self.rules if r.when in kinds)
