"""What ``driftline demo`` prints: one line per day of the loop and the closing story with its numbers.

Every figure is read back from the tables and the registry the jobs wrote (nothing is remembered from the
run), so the story tells what a user would find by querying the workspace.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from driftline.config.schema import DriftlineConfig
from driftline.registry.client import ModelRegistry, tracking_setup
from driftline.tables import contracts as T
from driftline.vocabulary import ALERT, OK
from driftline.vocabulary import MODEL as MODEL_COL

MODEL = "churn"
PERFORMANCE = "__performance__"


def step(line: str) -> None:
    print(line, flush=True)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# --------------------------------------------------------------------------- one line per day


def day_line(store: Any, day: dt.date) -> str:
    """The champion that scored, the drift verdict, estimated and realized AUC, the retrain decision."""
    from pyspark.sql import functions as F

    run = store.read(T.MONITOR_RUNS.table(), partitions={MODEL_COL: [MODEL], "run_date": [day]}).collect()
    decision = store.read(T.RETRAIN_DECISIONS.table(),
                          partitions={MODEL_COL: [MODEL], "decision_date": [day]}).collect()
    perf = {(r["window_end"], r["metric"]): r for r in store.read(
        T.MONITOR_METRICS.table(), partitions={MODEL_COL: [MODEL], "run_date": [day]})
        .filter((F.col("column") == PERFORMANCE) & (F.col("baseline") == "reference") & (F.col("slice") == "__all__")
                & F.col("metric").isin("estimated_auc", "auc")).collect()}
    parts = []
    if run:
        r = run[0]
        parts.append(f"champion v{r['model_version']}, {r['rows']:,} rows, {r['columns_drifted']} of "
                     f"{r['columns_evaluated']} columns drifted" + (", DATASET DRIFT" if r["dataset_drift"] else ""))
    est = perf.get((day, "estimated_auc"))
    if est is not None and est["value"] is not None:
        parts.append(f"estimated auc {est['value']:.3f}" + ("" if est["status"] == OK else f" ({est['status']})"))
    realized = sorted((end, r["value"], r["model_version"]) for (end, metric), r in perf.items()
                      if metric == "auc" and r["value"] is not None and end < day)
    if realized:
        end, value, version = realized[-1]
        parts.append(f"realized auc {value:.3f} (window {end:%m-%d}, v{version})")
    if decision:
        d = decision[0]
        text = f"retrain: {d['status']}"
        if d["status"] == "armed":
            text += (f" (episode from {d['onset_date']}: {d['label_days_available'] or 0} of "
                     f"{d['label_days_needed']} post-onset label days matured)")
        if d["fired"]:
            gate = {True: "gate passed, now champion", False: "gate failed, champion kept"}.get(d["gate_passed"], "")
            text += f" → v{d['trained_version']} trained, {gate}"
        parts.append(text)
    return "; ".join(parts)


# --------------------------------------------------------------------------- the closing story


def story_scores(store: Any, threshold: float) -> None:
    """Per week of score dates: rows scored, mean score and share predicted to churn."""
    from pyspark.sql import functions as F

    weekly = (store.read(T.PREDICTIONS.table(MODEL)).filter(F.col("role") == "champion")
              .groupBy(F.date_trunc("week", F.col("score_date")).cast("date").alias("week"))
              .agg(F.count("*").alias("rows"), F.min("score_date").alias("first"), F.max("score_date").alias("last"),
                   F.mean("score").alias("mean_score"), F.mean(F.col("predicted_label").cast("double")).alias("pos"))
              .orderBy("week").collect())
    for r in weekly:
        step(f"    {r['first']}..{r['last']}: {r['rows']:,} rows, mean churn probability {r['mean_score']:.3f}, "
             f"{100 * r['pos']:.1f}% above the {threshold} threshold")


def story_monitoring(store: Any, shift_date: dt.date) -> None:
    """Days with dataset drift (stable days and shifted days apart), the columns that alerted most, the reports."""
    from pathlib import Path

    from pyspark.sql import functions as F

    runs = store.read(T.MONITOR_RUNS.table()).filter(F.col(MODEL_COL) == MODEL).orderBy("run_date").collect()
    for label, part in (("stable", [r for r in runs if r["run_date"] < shift_date]),
                        ("from the shift on", [r for r in runs if r["run_date"] >= shift_date])):
        drifted = [r for r in part if r["dataset_drift"]]
        alerting = [r for r in part if r["columns_drifted"]]
        step(f"    {len(part)} window(s) {label}: dataset drift on {len(drifted)}"
             + (f" (first {drifted[0]['run_date']})" if drifted else "")
             + f", at least one column alert on {len(alerting)}"
             + (f" (first {alerting[0]['run_date']})" if alerting else ""))
    top = (store.read(T.MONITOR_METRICS.table())
           .filter((F.col(MODEL_COL) == MODEL) & (F.col("baseline") == "reference") & (F.col("status") == ALERT)
                   & (F.col("window_end") == F.col("run_date")) & (F.col("column") != PERFORMANCE))
           .groupBy("column").agg(F.countDistinct("run_date").alias("days"), F.min("run_date").alias("first"))
           .orderBy(F.desc("days"), "column").limit(6).collect())
    for r in top:
        step(f"    {r['column']:<18} alert on {r['days']} day(s) from {r['first']}")
    if runs and runs[-1]["report_path"]:
        step(f"    latest HTML report: {runs[-1]['report_path']}")
        page = Path(runs[-1]["report_path"]).with_name(f"{Path(runs[-1]['report_path']).stem}.evidently.html")
        if page.is_file():
            step(f"    its Evidently page:  {page}")


def story_retrain(store: Any) -> None:
    """Each drift episode: onset, days armed, the fired retrains with their gate numbers."""
    from pyspark.sql import functions as F

    rows = (store.read(T.RETRAIN_DECISIONS.table()).filter(F.col(MODEL_COL) == MODEL)
            .orderBy("decision_date").collect())
    fired = [d for d in rows if d["fired"]]
    episodes: dict[Any, list[Any]] = {}
    for d in rows:
        if d["onset_date"] is not None:
            episodes.setdefault(d["onset_date"], []).append(d)
    for onset, ds in sorted(episodes.items()):
        armed = [d for d in ds if d["status"] == "armed"]
        step(f"    drift episode from {onset}: armed {len(armed)} day(s)"
             + (f" ({armed[0]['decision_date']}..{armed[-1]['decision_date']}, waiting for post-onset labels)"
                if armed else ""))
    if not fired:
        step("    retrain policy: never fired")
    for d in fired:
        step(f"    retrain fired on {d['decision_date']} ({d['reasons']}): v{d['trained_version']} "
             f"{d['gate_metric']} {_num(d['gate_challenger'])} vs {d['gate_reference_kind']} "
             f"{_num(d['gate_reference'])} on the validation days → "
             + ("promoted" if d["gate_passed"] else "not promoted"))


@dataclass(frozen=True)
class LoopFigures:
    """The closed loop in numbers (see `loop_figures`)."""

    promoted_on: dt.date | None
    old: str | None
    new: str | None
    drift_days_after: int
    days_after: int
    later_from: dt.date | None
    later_to: dt.date | None
    later_rows: int
    auc_old: float | None
    auc_new: float | None


def loop_figures(store: Any, cfg: DriftlineConfig, workspace: str, last: dt.date) -> LoopFigures:
    """After the first promotion of a retrain: days of dataset drift, and AUC of the old and the new champion on
    the labels of as-of dates after the new version's validation window that matured by ``last`` (the same
    rows for both; scikit-learn's roc_auc_score)."""
    from pyspark.sql import functions as F
    from sklearn.metrics import roc_auc_score

    from driftline.jobs.score_versions import signature_of
    from driftline.scoring.core import score_frame

    promoted = (store.read(T.RETRAIN_DECISIONS.table())
                .filter((F.col(MODEL_COL) == MODEL) & F.col("fired") & F.col("gate_passed"))
                .orderBy("decision_date").collect())
    if not promoted:
        return LoopFigures(None, None, None, 0, 0, None, None, 0, None, None)
    p = promoted[0]
    runs = store.read(T.MONITOR_RUNS.table()).filter(
        (F.col(MODEL_COL) == MODEL) & (F.col("run_date") > F.lit(p["decision_date"]))).collect()
    registry = ModelRegistry(tracking_setup(cfg.mlflow, workspace), cfg.name)
    new = str(p["trained_version"])
    old = str(p["gate_reference_version"])
    validated_to = dt.date.fromisoformat(registry.get(new).tags["driftline.validation_window"].split("..")[1])
    matured = dt.datetime.combine(last + dt.timedelta(days=1), dt.time())
    src = cfg.sources.labels
    if src is None:
        return LoopFigures(p["decision_date"], None, None, 0, 0, None, None, 0, None, None)
    labels = (store.read(src.table).filter((F.col("as_of_date") > F.lit(validated_to))
                                           & (F.col(src.timestamp) < F.lit(matured)))
              .select(F.col(src.key).alias(cfg.entity_key), "as_of_date", F.col(src.value).alias("label")))
    rows = store.read(T.FEATURES.table(MODEL)).join(labels, [cfg.entity_key, "as_of_date"]) \
        .orderBy("as_of_date", cfg.entity_key).toPandas()
    auc: dict[str, float | None] = {}
    for version in (old, new):
        model = registry.load(version)
        scored = score_frame(rows, model, signature_of(registry, registry.get(version), model), key=cfg.entity_key,
                             threshold=cfg.label.threshold)
        auc[version] = float(roc_auc_score(rows["label"], scored["score"])) if rows["label"].nunique() == 2 else None
    return LoopFigures(p["decision_date"], old, new, sum(1 for r in runs if r["dataset_drift"]), len(runs),
                       rows["as_of_date"].min() if len(rows) else None, rows["as_of_date"].max() if len(rows) else None,
                       len(rows), auc[old], auc[new])


def story_loop(store: Any, cfg: DriftlineConfig, workspace: str, shift_date: dt.date, last: dt.date) -> None:
    """The closed loop's figures: estimated AUC before and after the shift, drift after the promotion, AUC of
    the new vs the old champion on later matured labels."""
    from pyspark.sql import functions as F

    est = {r["run_date"]: r["value"] for r in store.read(T.MONITOR_METRICS.table()).filter(
        (F.col(MODEL_COL) == MODEL) & (F.col("metric") == "estimated_auc") & (F.col("slice") == "__all__")
        & (F.col("window_end") == F.col("run_date"))).collect() if r["value"] is not None}
    before = [v for d, v in est.items() if d < shift_date]
    after = [v for d, v in est.items() if shift_date <= d < shift_date + dt.timedelta(days=cfg.label.horizon_days)]
    if before and after:
        step(f"    estimated auc (no labels needed): {sum(before) / len(before):.3f} on the stable days, "
             f"{sum(after) / len(after):.3f} over the {len(after)} days after the shift before any post-shift label "
             f"matured (min {min(after):.3f})")
    f = loop_figures(store, cfg, workspace, last)
    if f.promoted_on is None:
        step("    no retrain was promoted")
        return
    step(f"    after v{f.new} became champion on {f.promoted_on}: dataset drift on {f.drift_days_after} of "
         f"{f.days_after} monitored day(s)")
    if f.auc_new is not None and f.auc_old is not None:
        step(f"    on the {f.later_rows:,} labels of {f.later_from}..{f.later_to} (after v{f.new}'s validation days, "
             f"matured by {last}): new champion v{f.new} auc {f.auc_new:.3f}, old champion v{f.old} "
             f"auc {f.auc_old:.3f}")


def story_registry(cfg: DriftlineConfig, workspace: str) -> None:
    registry = ModelRegistry(tracking_setup(cfg.mlflow, workspace), cfg.name)
    for v in registry.versions():
        t = v.tags
        gate = {"true": "passed", "false": "failed"}.get(t.get("driftline.gate.passed", ""), "not run")
        metric = (f"{t['driftline.gate.metric']} {float(t['driftline.gate.challenger']):.3f}"
                  if "driftline.gate.metric" in t and "driftline.gate.challenger" in t else "no gate metric")
        onset = f" (drift episode from {t['driftline.onset']})" if t.get("driftline.onset") else ""
        step(f"    version {v.version}: trained {t.get('driftline.train_window', '?')}, validated "
             f"{t.get('driftline.validation_window', '?')}{onset}, validation {metric}, gate {gate}"
             + (f", aliases {', '.join(v.aliases)}" if v.aliases else ""))


def story_quality(store: Any) -> None:
    from pyspark.sql import functions as F

    if not store.exists(T.QUALITY_RESULTS.table()):
        return
    results = store.read(T.QUALITY_RESULTS.table())
    flagged = (results.filter(F.col("status") != OK)
               .groupBy("check", "status").agg(F.collect_set("as_of_date").alias("dates"))
               .orderBy("check").collect())
    if not flagged:
        step("    data quality: every check passed on every date")
    for row in flagged:
        days = sorted(row["dates"])
        shown = ", ".join(str(d) for d in days[:6]) + (" ..." if len(days) > 6 else "")
        step(f"    data quality: {row['check']} {row['status']} on {len(days)} date(s): {shown}")
