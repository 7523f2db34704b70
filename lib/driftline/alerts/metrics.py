"""Each monitor run's verdicts and key metrics for ops dashboards, in Prometheus text format.

`monitor_registry` builds the run's metric families (``prometheus_client``; names and labels after
Prometheus conventions: ``driftline_`` prefix, base units, a ``model`` label on every series, verdicts
as state sets — one series per possible status, 1 for the current one). `export` writes the node_exporter
textfile and/or pushes to a Pushgateway as ``alerts.metrics`` says; a failed push is logged with its
cause (the URL's user info masked) and never fails the job.

| metric | labels | value |
|---|---|---|
| ``driftline_monitor_verdict`` | model, aspect (overall/drift/quality/performance), status | 1: the run's status |
| ``driftline_monitor_alert`` | model | 1 when the overall verdict is ``alert`` |
| ``driftline_drift_share`` | model | share of evaluated columns that drifted |
| ``driftline_drifted_columns`` / ``driftline_evaluated_columns`` | model | column counts |
| ``driftline_column_drifted`` | model, column | 1 when the column's drift verdict is ``alert`` |
| ``driftline_multivariate_auc`` | model | the domain classifier's AUC, reference vs window (absent when insufficient) |
| ``driftline_performance`` | model, metric | realized (``auc`` ...) and estimated (``estimated_auc`` ...) values |
| ``driftline_monitor_window_rows`` | model | rows of the current window |
| ``driftline_monitor_model_version_info`` | model, version | 1 (the champion the run monitored) |
| ``driftline_monitor_run_timestamp_seconds`` / ``driftline_monitor_window_end_timestamp_seconds`` | model | Unix time |
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.alerts.spec import PUSHGATEWAY_ENV
from driftline.monitoring.drift import DATASET
from driftline.monitoring.multivariate import MULTIVARIATE
from driftline.monitoring.performance import PERFORMANCE
from driftline.spec import mask_userinfo
from driftline.vocabulary import ALERT, STATUSES, worst

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from driftline.alerts.spec import MetricsExportConfig

log = logging.getLogger(__name__)

def monitor_registry(run: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> CollectorRegistry:
    """The metric families of one monitor run: ``run`` is its ``monitor_runs`` row, ``rows`` its reference-baseline
    whole-window metric rows (column, metric, value, status)."""
    from prometheus_client import CollectorRegistry, Gauge

    reg = CollectorRegistry()
    model = run["model"]

    def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, doc, ["model", *labels], registry=reg)

    verdict = gauge("driftline_monitor_verdict", "Verdict of the latest monitor run per aspect (1: its status)",
                    ["aspect", "status"])
    aspects = {"drift": run["status"], "quality": run["quality_status"], "performance": run["performance_status"]}
    overall = worst(aspects.values())
    for aspect, status in {"overall": overall, **aspects}.items():
        for s in STATUSES:
            verdict.labels(model, aspect, s).set(1.0 if s == status else 0.0)
    gauge("driftline_monitor_alert", "1 when the latest monitor run's overall verdict is alert").labels(model).set(
        1.0 if overall == ALERT else 0.0)
    gauge("driftline_drift_share", "Share of evaluated columns that drifted").labels(model).set(
        _number(run["drift_share"]))
    gauge("driftline_drifted_columns", "Columns that drifted").labels(model).set(run["columns_drifted"])
    gauge("driftline_evaluated_columns", "Columns evaluated for drift").labels(model).set(run["columns_evaluated"])
    column = gauge("driftline_column_drifted", "1 when the column's drift verdict is alert", ["column"])
    performance = gauge("driftline_performance", "Realized and estimated performance of the window", ["metric"])
    joint = gauge("driftline_multivariate_auc", "Domain classifier AUC, reference vs window (0.5: alike)")
    for r in rows:
        value = r["value"]
        if r["column"] == PERFORMANCE:
            if value is not None and math.isfinite(value):
                performance.labels(model, r["metric"]).set(value)
        elif r["column"] == MULTIVARIATE:
            if value is not None and math.isfinite(value):
                joint.labels(model).set(value)
        elif r["metric"] == "drift" and r["column"] != DATASET:
            column.labels(model, r["column"]).set(1.0 if r["status"] == ALERT else 0.0)
    gauge("driftline_monitor_window_rows", "Rows of the monitored window").labels(model).set(run["rows"])
    gauge("driftline_monitor_model_version_info", "The model version the run monitored", ["version"]).labels(
        model, str(run["model_version"])).set(1.0)
    gauge("driftline_monitor_run_timestamp_seconds", "When the monitor run started (Unix time)").labels(model).set(
        _epoch(run["started_at"]))
    gauge("driftline_monitor_window_end_timestamp_seconds", "End of the monitored window (Unix time, 00:00 UTC)"
          ).labels(model).set(_epoch(run["window_end"]))
    return reg


def export_monitor_run(cfg: MetricsExportConfig, workspace: str | os.PathLike[str], run: Mapping[str, Any],
                       rows: Sequence[Mapping[str, Any]]) -> None:
    """`export` of `monitor_registry` when ``alerts.metrics`` asks for a textfile or a push (else nothing)."""
    if cfg.textfile_dir is None and not (cfg.pushgateway_url or os.environ.get(PUSHGATEWAY_ENV, "").strip()):
        return
    export(cfg, workspace, run["model"], monitor_registry(run, rows))


def export(cfg: MetricsExportConfig, workspace: str | os.PathLike[str], model: str, reg: CollectorRegistry) -> None:
    """Write the textfile and push to the Pushgateway, as configured (nothing when neither is)."""
    from prometheus_client import write_to_textfile

    if cfg.textfile_dir is not None:
        folder = Path(cfg.textfile_dir)
        folder = folder if folder.is_absolute() else Path(workspace) / folder
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"driftline_{model}.prom"
        write_to_textfile(str(path), reg)   # a temporary file renamed over the old one: never half-written
        log.info("%s: metrics for Prometheus written to %s", model, path)
    url = cfg.pushgateway_url or os.environ.get(PUSHGATEWAY_ENV, "").strip() or None
    if url is not None:
        push(url, cfg, model, reg)


def push(url: str, cfg: MetricsExportConfig, model: str, reg: CollectorRegistry) -> bool:
    """PUT the run's metrics to the Pushgateway group (job, model); retried with backoff; False on failure."""
    from prometheus_client import push_to_gateway

    shown = mask_userinfo(url)
    last = ""
    for attempt in range(cfg.retries + 1):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
        try:
            push_to_gateway(url, job=cfg.job, grouping_key={"model": model}, registry=reg,
                            timeout=cfg.timeout_seconds)
            log.info("%s: metrics pushed to %s", model, shown)
            return True
        except Exception as exc:  # noqa: BLE001 - a receiver down, slow or failing must not fail the job
            last = mask_userinfo(" ".join(str(exc).split()) or type(exc).__name__)[:300]
    log.warning("%s: metrics push to %s failed after %d attempt(s): %s (the run's tables are written)", model, shown,
                cfg.retries + 1, last)
    return False


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _epoch(value: dt.date | dt.datetime) -> float:
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
