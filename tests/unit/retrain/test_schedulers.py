"""Scheduler renderings parse and hold the pipeline's task graph (cron line, Airflow DAG, Databricks JSON)."""

from __future__ import annotations

import ast
import json

import pytest

from driftline.errors import UsageError
from driftline.pipeline.schedulers import Target, airflow_dag, cron_line, databricks_job_json, quartz_cron

STEPS = ["prepare_features", "score", "monitor", "retrain"]
T = Target(model="churn", cron="0 3 * * *", conf_dir="conf", jobs_dir="/opt/driftline/jobs")


def test_cron_line() -> None:
    line = cron_line(T, workdir="/srv/driftline")
    fields = line.split()
    assert fields[:5] == ["0", "3", "*", "*", "*"]
    assert line == ('0 3 * * * cd /srv/driftline && driftline pipeline --model churn --date "$(date -u +\\%F)" '
                    "--conf-dir conf")
    assert "%" not in line.replace("\\%", "")       # a bare % ends the command in crontab


def test_airflow_dag_is_python_with_one_spark_submit_per_job() -> None:
    text = airflow_dag(T)
    tree = ast.parse(text)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "SparkSubmitOperator"]
    kw = [{k.arg: ast.literal_eval(k.value) for k in c.keywords} for c in calls]
    assert [k["task_id"] for k in kw] == STEPS
    assert [k["application"] for k in kw] == [f"/opt/driftline/jobs/{s}.py" for s in STEPS]
    assert {tuple(k["application_args"]) for k in kw} == {
        ("--model", "churn", "--date", "{{ data_interval_end | ds }}", "--conf-dir", "conf")}
    dag = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "DAG")
    opts = {k.arg: k.value for k in dag.keywords}
    assert ast.literal_eval(opts["schedule"]) == "0 3 * * *" and ast.literal_eval(opts["catchup"]) is True
    assert ast.literal_eval(opts["max_active_runs"]) == 1
    chain = [n for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.BinOp)]
    assert ast.unparse(chain[0]) == "prepare_features >> score >> monitor >> retrain"
    assert "retries" in text and "from airflow.providers.apache.spark.operators.spark_submit import" in text


def test_databricks_job_json_chains_the_tasks() -> None:
    job = json.loads(databricks_job_json(T))
    assert job["schedule"] == {"quartz_cron_expression": "0 0 3 * * ?", "timezone_id": "UTC",
                               "pause_status": "UNPAUSED"}
    assert job["max_concurrent_runs"] == 1
    assert [t["task_key"] for t in job["tasks"]] == STEPS
    assert [t.get("depends_on") for t in job["tasks"]] == [None, *[[{"task_key": s}] for s in STEPS[:-1]]]
    assert job["tasks"][2]["spark_python_task"] == {
        "python_file": "/opt/driftline/jobs/monitor.py",
        "parameters": ["--model", "churn", "--date", "{{job.trigger.time.iso_date}}", "--conf-dir", "conf"]}
    assert {t["max_retries"] for t in job["tasks"]} == {2}


@pytest.mark.parametrize(("cron", "quartz"), [
    ("0 3 * * *", "0 0 3 * * ?"),
    ("30 2 * * 1", "0 30 2 ? * 2"),
    ("0 4 * * 0,6", "0 0 4 ? * 1,7"),
    ("*/15 * 1 * *", "0 */15 * 1 * ?"),
])
def test_quartz_cron(cron: str, quartz: str) -> None:
    assert quartz_cron(cron) == quartz


@pytest.mark.parametrize(("cron", "message"), [
    ("0 3 * *", "expected 5 cron fields"),
    ("0 3 * * MON", "expected 5 cron fields"),
    ("0 3 1 * 1", "found both"),
])
def test_bad_cron_is_one_line_usage_error(cron: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        quartz_cron(cron)
