"""The reference values of the custom metrics: computed on the version's reference rows at train time, stored with
its MLflow run, read back by the monitor (`driftline.monitoring.custom` computes and judges the metrics).

At train time every ``monitoring.custom_metrics`` sql metric is computed on the reference rows (features as the
model saw them, and the model's ``score``) in one aggregation and stored as the MLflow artifact
``reference_profile/custom_metrics.json`` (``{"rows": n, "metrics": {name: {"sql": text, "value": v}}}``). The
monitor uses a stored value only when its sql text is the one configured now; otherwise (a metric added or
changed since the version was trained) every reference value is computed on the version's stored reference
sample (``monitoring.report.evidently_rows`` rows), and the change rows' reason says so. Derived metrics'
reference values are evaluated from the sql ones.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import ConfigError
from driftline.monitoring.custom import compute, derived_order, evaluate, sql_metrics, validate

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from driftline.monitoring.custom import CustomMetricConfig
    from driftline.monitoring.inputs import Reference, Scope
    from driftline.registry.client import TrackingSetup

log = logging.getLogger(__name__)

ARTIFACT = "reference_profile/custom_metrics.json"


@dataclass(frozen=True)
class ReferenceValues:
    """The custom metrics' reference values, on how many rows, and a note when they are not the training rows'."""

    values: Mapping[str, float | None]
    rows: int | None
    note: str | None = None


def at_training(frame: DataFrame, rows: int, metrics: Mapping[str, CustomMetricConfig]) -> str | None:
    """The artifact's JSON text for the reference rows ``frame`` (``rows`` of them), None when no sql metric is
    configured or one does not apply to the reference's columns (logged: the monitor refuses it with exit 2)."""
    sqls = sql_metrics(metrics)
    if not sqls:
        return None
    try:
        validate(frame, metrics)
    except ConfigError as exc:
        log.warning("custom metrics not stored with the reference: %s", exc)
        return None
    values = compute(frame, metrics)
    return json.dumps({"rows": rows, "metrics": {n: {"sql": sqls[n], "value": values[n]} for n in sqls}}, indent=1)


def stored(tracking: TrackingSetup, mlflow_run_id: str) -> dict[str, Any] | None:
    """The artifact stored with the version's MLflow run, None when there is none or it cannot be read."""
    from driftline.registry.client import json_artifact

    found = json_artifact(tracking, mlflow_run_id, ARTIFACT)
    return found if isinstance(found, dict) and isinstance(found.get("metrics"), dict) else None


def reference_values(spark: SparkSession, metrics: Mapping[str, CustomMetricConfig], doc: dict[str, Any] | None,
                     sample: pd.DataFrame | None) -> ReferenceValues:
    """Every metric's reference value: the stored training values when each sql metric is stored with today's
    text, else the values on the stored reference ``sample`` (the note says why), else none (the note too)."""
    sqls = sql_metrics(metrics)
    kept = (doc or {}).get("metrics", {})
    if doc is not None and all(n in kept and kept[n].get("sql") == sql for n, sql in sqls.items()):
        values: dict[str, float | None] = {n: kept[n].get("value") for n in sqls}
        rows, note = doc.get("rows"), None
    else:
        why = ("the version was trained before these custom metrics were configured" if doc is None
               else "a custom metric was added or changed since the version was trained")
        if sample is None or sample.empty:
            return ReferenceValues({}, None, f"{why}, and it has no stored reference sample")
        frame = spark.createDataFrame(sample)
        try:
            validate(frame, metrics)
        except ConfigError as exc:
            return ReferenceValues({}, None, f"{why}; on its reference sample: {exc}")
        values = {n: v for n, v in compute(frame, metrics).items() if n in sqls}
        rows, note = len(sample), f"{why}: reference values on its stored sample of {len(sample)} rows"
    for name in derived_order(metrics):
        values[name] = evaluate(metrics[name].derived or "", values)
    return ReferenceValues(values, rows, note)


def window_rows(scope: Scope, ref: Reference, preds: DataFrame, dates: tuple[dt.date, ...], n_current: int,
                metrics: Mapping[str, CustomMetricConfig], tracking: TrackingSetup,
                sample: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The monitor rows of the custom metrics on the window: the champion's scored rows joined to their features
    (one aggregation over `driftline.monitoring.inputs.window_frame`: the key, ``as_of_date``, the reference's
    feature columns and ``score``), validated first (`ConfigError`, exit 2, before anything is written), judged
    against their bounds and their reference values (`reference_values`)."""
    from driftline.monitoring.custom import rows
    from driftline.monitoring.inputs import window_frame
    from driftline.profiling.types import NumericProfile

    if not metrics:
        return []
    columns = list(ref.profile.columns)
    numeric = [c for c, p in ref.profile.columns.items() if isinstance(p, NumericProfile)]
    frame = window_frame(scope, preds, dates, columns, numeric)
    validate(frame, metrics)
    values = compute(frame, metrics)
    reference = reference_values(frame.sparkSession, metrics, stored(tracking, ref.mlflow_run_id), sample)
    if reference.note:
        log.info("%s v%s: %s", scope.model, ref.version, reference.note)
    return rows(values, metrics, reference.values, n_current, reference.rows, reference.note)
