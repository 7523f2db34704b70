"""The dashboard views `driftline.tables.catalog` creates beside the registered tables (docs/bi.md).

Each view is one SELECT over the registered output tables (``{t[<table>]}`` placeholders become the
qualified names of the configured catalog database), with a comment per column taken from the table
contracts where the column is the table's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftline.tables import contracts as c
from driftline.tables.spec import CatalogConfig
from driftline.tables.sql_text import quoted


def qualified(cat: CatalogConfig, name: str) -> str:
    return quoted(*cat.database.split("."), name)



@dataclass(frozen=True)
class View:
    name: str
    doc: str
    sources: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]   # (name, comment) in select order
    select: str                             # {t[<table>]} placeholders: the qualified source names

    def sql(self, cat: CatalogConfig) -> str:
        body = self.select.format(t={s: qualified(cat, s) for s in self.sources})
        return " ".join(body.split())


def _doc(contract: c.TableContract, column: str) -> str:
    return next(col.doc for col in contract.columns if col.name == column)


_RUNS, _METRICS, STATUS = c.MONITOR_RUNS, c.MONITOR_METRICS, c.STATUS_DOC
_RUN_COLUMNS = ("model", "model_version", "run_date", "window_start", "window_end", "rows", "columns_evaluated",
                "columns_drifted", "drift_share", "dataset_drift", "status", "quality_status", "performance_status",
                "report_path")

# The decision metric of each drift method (driftline.monitoring.spec.METHOD_METRIC; tables sits below
# monitoring, so the mapping is spelled here too — tests/unit/catalog checks they agree).
METHOD_METRIC_SQL = ("CASE d.`method` WHEN 'wasserstein' THEN 'wasserstein_norm' WHEN 'psi' THEN 'psi' "
                     "WHEN 'js' THEN 'js_distance' WHEN 'ks' THEN 'ks_pvalue' WHEN 'chi2' THEN 'chi2_pvalue' END")

VIEWS: tuple[View, ...] = (
    View(
        "latest_verdict",
        "One row per model: its latest monitor run's verdict (from monitor_runs). Start dashboards here.",
        ("monitor_runs",),
        tuple((col, _doc(_RUNS, col)) for col in _RUN_COLUMNS),
        "SELECT " + ", ".join(f"`{col}`" for col in _RUN_COLUMNS) + " FROM (SELECT *, row_number() OVER "
        "(PARTITION BY `model` ORDER BY `run_date` DESC) AS rn FROM {t[monitor_runs]}) WHERE rn = 1",
    ),
    View(
        "drift_by_column",
        "One row per (model, run_date, column): the column's drift verdict against the reference on the run's own "
        "window, with the value of its decision metric (from monitor_metrics).",
        ("monitor_metrics",),
        (
            ("run_date", _doc(_METRICS, "run_date")),
            ("model", "the model"),
            ("model_version", _doc(_METRICS, "model_version")),
            ("column", "feature, or `score`"),
            ("drifted", "true: the column drifted (after FDR); null when the verdict is insufficient_data"),
            ("status", STATUS),
            ("method", _doc(_METRICS, "method")),
            ("decision_metric", "the metric that decides (wasserstein_norm, psi, js_distance, ks_pvalue, chi2_pvalue)"),
            ("decision_value", "its value (a distance, or a p-value: lower = drift)"),
            ("threshold", "the threshold it was judged against"),
            ("n_reference", _doc(_METRICS, "n_reference")),
            ("n_current", _doc(_METRICS, "n_current")),
        ),
        "SELECT d.`run_date`, d.`model`, d.`model_version`, d.`column`, d.`value` = 1 AS `drifted`, d.`status`, "
        "d.`method`, m.`metric` AS `decision_metric`, m.`value` AS `decision_value`, m.`threshold`, d.`n_reference`, "
        "d.`n_current` "
        "FROM {t[monitor_metrics]} d LEFT JOIN {t[monitor_metrics]} m ON m.`model` = d.`model` "
        "AND m.`run_date` = d.`run_date` AND m.`model_version` = d.`model_version` "
        "AND m.`window_start` = d.`window_start` AND m.`window_end` = d.`window_end` AND m.`slice` = d.`slice` "
        "AND m.`baseline` = d.`baseline` AND m.`column` = d.`column` AND m.`metric` = " + METHOD_METRIC_SQL + " "
        "WHERE d.`metric` = 'drift' AND d.`baseline` = 'reference' AND d.`slice` = '__all__' "
        "AND d.`window_end` = d.`run_date` AND d.`column` NOT IN ('__dataset__', '__performance__')",
    ),
    View(
        "performance_over_time",
        "One row per (model, window, slice, metric): late-label (realized) and estimated performance, each "
        "window's value as recomputed by the latest run that saw it (labels mature after the first run).",
        ("monitor_metrics",),
        (
            ("model", "the model"),
            ("model_version", _doc(_METRICS, "model_version")),
            ("window_start", _doc(_METRICS, "window_start")),
            ("window_end", _doc(_METRICS, "window_end")),
            ("slice", _doc(_METRICS, "slice")),
            ("metric", "auc, log_loss, brier, accuracy, precision, recall, f1, rmse, mae, labelled_rows, "
                       "label_coverage, estimated_<metric>, estimated_error_<metric> (docs/monitoring.md)"),
            ("estimated", "true for estimated_* rows (before labels arrive)"),
            ("value", _doc(_METRICS, "value")),
            ("threshold", _doc(_METRICS, "threshold")),
            ("status", STATUS),
            ("reason", _doc(_METRICS, "reason")),
            ("run_date", "the monitor run the value is from (the latest that computed it)"),
        ),
        "SELECT `model`, `model_version`, `window_start`, `window_end`, `slice`, `metric`, "
        "`metric` LIKE 'estimated%' AS `estimated`, `value`, `threshold`, `status`, `reason`, `run_date` "
        "FROM (SELECT *, row_number() OVER (PARTITION BY `model`, `window_start`, `window_end`, `slice`, `baseline`, "
        "`metric` ORDER BY `run_date` DESC) AS rn FROM {t[monitor_metrics]} WHERE `column` = '__performance__') "
        "WHERE rn = 1",
    ),
)
