"""The Evidently page of a monitor run: `DataDriftPreset` on bounded samples, beside driftline's own report.

Reference side: the random sample of the version's reference rows stored at train time as the
MLflow artifact ``reference_profile/sample.parquet`` (Parquet, so loading it runs no code).
Current side: a seeded random sample of the window's rows (the rows driftline profiled), at most
``monitoring.report.evidently_rows``. Evidently computes its own drift verdicts on those samples —
a second opinion for a person reading the report, not a number driftline acts on (the tables hold
driftline's full-data results). The page is optional: when it cannot be made (no stored sample,
Evidently fails) the run goes on and driftline's report says why.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.registry.profiles import REFERENCE_SAMPLE
from driftline.vocabulary import SCORE

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

    from driftline.profiling.types import DatasetProfile
    from driftline.registry.client import TrackingSetup

log = logging.getLogger(__name__)

LEGACY_SCORE = "prediction"  # the score column of samples stored under table contract 1
SAMPLE_SEED = 20260101  # the current window's sample is the same on a rerun of the same data


@dataclass(frozen=True)
class EvidentlyPage:
    """What the report says about the Evidently page: its file name beside the report, or why there is none."""

    file: str | None
    note: str


def evidently_path(report: Path) -> Path:
    """``<date>.evidently.html`` beside ``<date>.html``."""
    return report.with_name(f"{report.stem}.evidently.html")


def reference_sample(tracking: TrackingSetup, mlflow_run_id: str) -> pd.DataFrame | None:
    """The reference sample stored with the version's MLflow run, or None when the run has none."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from driftline.registry.client import configure

    configure(tracking)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(run_id=mlflow_run_id,
                                                        artifact_path=f"reference_profile/{REFERENCE_SAMPLE}",
                                                        dst_path=tmp)
        except (MlflowException, OSError) as exc:
            log.info("reference sample of MLflow run %s: %s", mlflow_run_id, " ".join(str(exc).split())[:200])
            return None
        frame = pd.read_parquet(local)
    if SCORE not in frame.columns and LEGACY_SCORE in frame.columns:
        frame = frame.rename(columns={LEGACY_SCORE: SCORE})  # a version trained before the score was `score`
    return frame


def sample_rows(frame: DataFrame, rows: int, limit: int) -> DataFrame:
    """A seeded random sample of ``frame`` (``rows`` rows) to draw at most ``limit`` rows from: every row when
    ``rows`` ≤ ``limit``, else each row with probability 1.2·limit/rows. The monitor samples the window's
    predictions before joining their features, so the page costs a scan of the features, not a second join."""
    if rows <= limit:
        return frame
    return frame.sample(withReplacement=False, fraction=min(1.0, 1.2 * limit / rows), seed=SAMPLE_SEED)


def with_title(html: str, title: str) -> str:
    """``html`` with ``<title>`` set (Evidently's page has none: a browser tab and a bookmark would say nothing)."""
    import html as html_lib

    tag = f"<title>{html_lib.escape(title)}</title>"
    head = re.search(r"<head(\s[^>]*)?>", html, flags=re.I)   # the document's head (not <header>, not an SVG's)
    if head is None:
        return tag + html
    end = html.find("</head>", head.end())
    inside = html[head.end():end if end >= 0 else len(html)]
    old = re.search(r"<title>.*?</title>", inside, flags=re.S | re.I)
    if old is not None:
        start = head.end() + old.start()
        return html[:start] + tag + html[head.end() + old.end():]
    return html[:head.end()] + tag + html[head.end():]


def render_evidently(reference: pd.DataFrame, current: pd.DataFrame, profile: DatasetProfile, path: Path,
                     title: str = "") -> None:
    """Run Evidently's `DataDriftPreset` on the two samples and write its HTML to ``path`` atomically, with
    ``title`` as the page's ``<title>`` when given."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [c for c, p in profile.columns.items() if p.kind == "numeric"]
    categorical = [c for c, p in profile.columns.items() if p.kind == "categorical"]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    columns = [*numeric, *categorical]
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(current[columns], data_definition=definition),
                                               Dataset.from_pandas(reference[columns], data_definition=definition))
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        snapshot.save_html(str(tmp))
        if title:
            tmp.write_text(with_title(tmp.read_text(encoding="utf-8"), title), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def current_sample(sample: DataFrame | pd.DataFrame, columns: list[str], limit: int) -> pd.DataFrame:
    """At most ``limit`` rows of the window's sample, on ``columns``: the merged stored samples (pandas, no read),
    or the lazy seeded sample of `sample_rows` (read here)."""
    import pandas as pd

    if isinstance(sample, pd.DataFrame):   # the stored samples' merge (`driftline.monitoring.daily`)
        return sample[columns].head(limit)
    return sample.select(*columns).limit(limit).toPandas()


def write_evidently_page(*, model: str, limit: int, reference: pd.DataFrame | None, profile: DatasetProfile,
                         current: pd.DataFrame | None, rows: int, report: Path) -> EvidentlyPage:
    """Write ``<date>.evidently.html`` beside ``report`` (see the module docstring); never raises.

    ``reference``: the version's stored reference sample (`reference_sample`; None when it has none);
    ``current``: at most ``limit`` (``monitoring.report.evidently_rows``) rows of the window (`current_sample`;
    None when none were drawn); ``rows``: the window's row count."""
    path = evidently_path(report)
    path.unlink(missing_ok=True)   # a page of an earlier run of this date must not pass for this run's
    if limit == 0:
        return EvidentlyPage(None, "off (monitoring.report.evidently_rows is 0)")
    if rows == 0:
        return EvidentlyPage(None, "not written: the window has no rows")
    if reference is None or reference.empty:
        log.warning("%s: the model version has no stored reference sample (trained before it existed?); "
                    "no Evidently page", model)
        return EvidentlyPage(None, "not written: the model version has no stored reference sample (retrain it)")
    missing = [c for c in profile.columns if c not in reference.columns]
    if missing:
        return EvidentlyPage(None, f"not written: the reference sample lacks {', '.join(missing)}")
    if current is None:
        return EvidentlyPage(None, "not written: no sample of the window was drawn")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        render_evidently(reference, current, profile, path,
                         title=f"driftline · {model} {report.stem}: Evidently data drift (sampled rows)")
    except Exception as exc:  # noqa: BLE001 - the page is optional: the run goes on and the report says why
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        log.warning("%s: Evidently page not written: %s", model, reason)
        return EvidentlyPage(None, f"not written: {reason}")
    log.info("%s: Evidently page %s (%d reference / %d current rows)", model, path, len(reference),
             len(current))
    return EvidentlyPage(path.name, f"Evidently DataDriftPreset on {len(reference)} reference / {len(current)} "
                                    "current sampled rows")
