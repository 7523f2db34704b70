"""Configuration slice of the alerts package (``alerts:`` in the config)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

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


class AlertsConfig(Frozen):
    """``alerts:``: what reaches people and ops dashboards (today: the metrics export)."""

    metrics: MetricsExportConfig = Field(default_factory=MetricsExportConfig)
