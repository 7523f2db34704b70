"""Scheduler renderings of the pipeline: a cron line, an Airflow DAG, a Databricks Workflows job.

``driftline schedule --model M --kind cron|airflow|databricks|databricks-bundle [--out FILE]``
(`driftline.cli.schedule`) prints one of them for the model's ``schedule.cron``.

All three run the same task graph per logical date D: prepare_features → score → monitor →
retrain, each as its own ``jobs/<job>.py`` under spark-submit (Airflow, Databricks) or as one
``driftline pipeline`` (cron). The retrain task is not a timer: it evaluates the retrain policy on
the monitoring verdicts and trains only when it fires. Pure text/data builders (no I/O): callers
write the result where their scheduler reads it.

Logical date: a run at the schedule time of day D processes D (features use events strictly before
D 00:00 UTC). Airflow: ``data_interval_end`` of the interval; Databricks: the trigger's UTC date.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from driftline.errors import UsageError
from driftline.jobs.pipeline import STEPS

_CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")


@dataclass(frozen=True)
class Target:
    """What every rendering runs: the model, where its config lives, where the job files are."""

    model: str
    cron: str
    conf_dir: str = "conf"
    jobs_dir: str = "jobs"
    workspace: str | None = None
    retries: int = 2
    retry_delay_minutes: int = 10

    def args(self, date: str) -> list[str]:
        out = ["--model", self.model, "--date", date, "--conf-dir", self.conf_dir]
        if self.workspace:
            out += ["--workspace", self.workspace]
        return out


def check_cron(cron: str) -> list[str]:
    """The five fields of a plain cron expression; `UsageError` naming what was found otherwise."""
    fields = cron.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise UsageError(f"schedule.cron: expected 5 cron fields of digits, '*', '/', ',', '-', found {cron!r}")
    return fields


def cron_line(target: Target, command: str = "driftline", workdir: str | None = None) -> str:
    """One crontab line running ``driftline pipeline`` for the UTC date of the run (``%`` escaped for cron)."""
    check_cron(target.cron)
    date = "\0date\0"   # a placeholder no path or name can contain: only the --date argument is replaced
    # cron reads an unescaped % as a newline: escape it in every argument
    args = " ".join(r'"$(date -u +\%F)"' if a == date else shlex.quote(a).replace("%", r"\%")
                    for a in target.args(date))
    cd = f"cd {shlex.quote(workdir)} && " if workdir else ""
    return f"{target.cron} {cd}{command} pipeline {args}"


def airflow_dag(target: Target, dag_id: str | None = None, start_date: str = "2026-01-01") -> str:
    """Python source of an Airflow DAG: one ``SparkSubmitOperator`` per job, chained, retries, catchup on."""
    check_cron(target.cron)
    dag = dag_id or f"driftline_{target.model}"
    args = target.args("{{ data_interval_end | ds }}")
    tasks = "\n".join(
        f"    {step} = SparkSubmitOperator(\n"
        f"        task_id={step!r},\n"
        f"        application={f'{target.jobs_dir}/{step}.py'!r},\n"
        f"        application_args={args!r},\n"
        f"        name={f'driftline-{target.model}-{step}'!r},\n"
        f"    )"
        for step in STEPS
    )
    return f'''"""Airflow DAG of driftline model {target.model}: {" -> ".join(STEPS)} per logical date (rendered)."""

import datetime as dt

from airflow import DAG
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

default_args = {{
    "retries": {target.retries},
    "retry_delay": dt.timedelta(minutes={target.retry_delay_minutes}),
}}

with DAG(
    dag_id={dag!r},
    schedule={target.cron!r},
    start_date=dt.datetime.fromisoformat({start_date!r}).replace(tzinfo=dt.timezone.utc),
    catchup=True,  # backfills run day by day; every job is idempotent per date
    max_active_runs=1,  # dates in order: monitoring history and retrain decisions build on the previous day
    default_args=default_args,
    tags=["driftline", {target.model!r}],
) as dag:
{tasks}

    {" >> ".join(STEPS)}
'''


def quartz_cron(cron: str) -> str:
    """The 5-field cron as Databricks' Quartz expression (seconds first, ``?`` in one day field)."""
    minute, hour, dom, month, dow = check_cron(cron)
    if dow == "*":
        return f"0 {minute} {hour} {dom} {month} ?"
    if dom != "*":
        raise UsageError(f"schedule.cron: expected a day of month or a day of week for Quartz, found both in {cron!r}")
    if not re.fullmatch(r"[0-7](,[0-7])*", dow):
        raise UsageError(f"schedule.cron: expected days of week as digits 0-7 separated by ',', found {dow!r}")
    quartz_dow = ",".join(str(int(d) % 7 + 1) for d in dow.split(","))   # cron 0/7 = Sunday = Quartz 1
    return f"0 {minute} {hour} ? {month} {quartz_dow}"


def databricks_job(target: Target, name: str | None = None) -> dict[str, Any]:
    """A Databricks Workflows job (Jobs API 2.1 JSON): the same task graph, retries, one run at a time."""
    tasks = []
    for i, step in enumerate(STEPS):
        task: dict[str, Any] = {
            "task_key": step,
            "spark_python_task": {"python_file": f"{target.jobs_dir}/{step}.py",
                                  "parameters": target.args("{{job.trigger.time.iso_date}}")},
            "max_retries": target.retries,
            "min_retry_interval_millis": target.retry_delay_minutes * 60_000,
        }
        if i:
            task["depends_on"] = [{"task_key": STEPS[i - 1]}]
        tasks.append(task)
    return {
        "name": name or f"driftline-{target.model}",
        "schedule": {"quartz_cron_expression": quartz_cron(target.cron), "timezone_id": "UTC",
                     "pause_status": "UNPAUSED"},
        "max_concurrent_runs": 1,
        "tags": {"driftline_model": target.model},
        "tasks": tasks,
    }


def databricks_job_json(target: Target, name: str | None = None) -> str:
    """`databricks_job` as indented JSON text."""
    return json.dumps(databricks_job(target, name), indent=2)


def databricks_bundle_yaml(target: Target, name: str | None = None) -> str:
    """The same job as a Databricks Asset Bundle (``databricks.yml``): ``resources.jobs.<key>`` in YAML.

    Compute is left to the bundle's owner (add ``job_cluster_key``/``existing_cluster_id`` or a
    serverless ``environment_key`` to each task, or a ``targets:`` override).
    """
    import yaml

    job = databricks_job(target, name)
    key = re.sub(r"[^A-Za-z0-9_]", "_", job["name"])
    bundle = {"bundle": {"name": job["name"]}, "resources": {"jobs": {key: job}}}
    header = f"# Databricks Asset Bundle of driftline model {target.model}: {' -> '.join(STEPS)} (rendered)\n"
    return header + yaml.safe_dump(bundle, sort_keys=False, default_flow_style=False)


KINDS = ("cron", "airflow", "databricks", "databricks-bundle")


def render(kind: str, target: Target, workdir: str | None = None, start_date: str = "2026-01-01") -> str:
    """The rendering of ``kind`` (one of `KINDS`) as text ending with a newline."""
    if kind == "cron":
        return cron_line(target, workdir=workdir) + "\n"
    if kind == "airflow":
        return airflow_dag(target, start_date=start_date)
    if kind == "databricks":
        return databricks_job_json(target) + "\n"
    if kind == "databricks-bundle":
        return databricks_bundle_yaml(target)
    raise UsageError(f"--kind: expected one of {', '.join(KINDS)}, found {kind!r}")
