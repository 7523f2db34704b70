"""Scheduler renderings parse and hold the pipeline's task graph (cron line, Airflow DAG, Databricks JSON)."""

from __future__ import annotations

import ast
import json
import shlex
from pathlib import Path

import pytest
import yaml

from driftline.cli.main import COMMANDS, main
from driftline.config import load_config
from driftline.errors import UsageError
from driftline.pipeline.schedulers import Target, airflow_dag, cron_line, databricks_job_json, quartz_cron

STEPS = ["prepare_features", "score", "monitor", "retrain"]
CONF = Path(__file__).resolve().parents[3] / "conf"
T = Target(model="churn", cron="0 3 * * *", conf_dir="conf", jobs_dir="/opt/driftline/jobs")


def test_cron_line() -> None:
    line = cron_line(T, workdir="/srv/driftline")
    fields = line.split()
    assert fields[:5] == ["0", "3", "*", "*", "*"]
    assert line == ('0 3 * * * cd /srv/driftline && driftline pipeline --model churn --date "$(date -u +\\%F)" '
                    "--conf-dir conf")
    assert "%" not in line.replace("\\%", "")       # a bare % ends the command in crontab


def test_cron_line_replaces_only_the_date_argument_and_escapes_percent_everywhere() -> None:
    target = Target(model="churn", cron="0 3 * * *", conf_dir="/etc/DATE/conf", workspace="/data/100%")
    line = cron_line(target)
    assert line == ('0 3 * * * driftline pipeline --model churn --date "$(date -u +\\%F)" --conf-dir /etc/DATE/conf '
                    "--workspace /data/100\\%")


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


# --------------------------------------------------------------------------- driftline schedule


CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def cron_values(field: str, low: int, high: int) -> set[int]:
    """The values one cron field selects (``*``, ``a-b``, ``/step``, ``,`` lists); ValueError when out of range."""
    out: set[int] = set()
    for part in field.split(","):
        spec, _, step = part.partition("/")
        lo, hi = (low, high) if spec == "*" else (int(spec.split("-")[0]), int(spec.split("-")[-1]))
        if not low <= lo <= hi <= high:
            raise ValueError(f"{part!r} outside {low}-{high}")
        out.update(range(lo, hi + 1, int(step) if step else 1))
    return out


def schedule(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["schedule", "--model", "churn", "--conf-dir", str(CONF), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_schedule_is_a_registered_command(capsys) -> None:
    assert "schedule" in COMMANDS
    assert main(["--help"]) == 0 and "  schedule " in capsys.readouterr().out
    assert main(["schedule", "--help"]) == 0
    assert "--kind {cron,airflow,databricks,databricks-bundle}" in " ".join(capsys.readouterr().out.split())


def test_schedule_cron_uses_the_configured_schedule(capsys) -> None:
    cron = load_config("churn", CONF).config.schedule.cron
    code, out, _ = schedule(capsys, "--kind", "cron", "--workdir", "/srv/driftline", "--workspace", "/data/ws")
    assert code == 0 and out.endswith("\n") and len(out.splitlines()) == 1
    fields = out.split(maxsplit=5)
    assert " ".join(fields[:5]) == cron
    minutes, hours, days, months, weekdays = (cron_values(f, *r) for f, r in zip(fields[:5], CRON_RANGES, strict=True))
    assert (len(minutes), len(hours), days, months, weekdays) == (1, 1, set(range(1, 32)), set(range(1, 13)),
                                                                  set(range(8)))      # once a day
    command = shlex.split(fields[5].replace("\\%", "%"))
    assert command[:3] == ["cd", "/srv/driftline", "&&"]
    assert command[3:] == ["driftline", "pipeline", "--model", "churn", "--date", "$(date -u +%F)", "--conf-dir",
                           str(CONF), "--workspace", "/data/ws"]


def test_schedule_airflow_renders_one_spark_submit_per_job_with_retries(capsys) -> None:
    code, out, _ = schedule(capsys, "--kind", "airflow", "--jobs-dir", "/opt/jobs", "--retries", "4",
                            "--retry-delay-minutes", "5", "--start-date", "2026-02-01")
    assert code == 0
    tree = ast.parse(out)
    ops = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "SparkSubmitOperator"]
    kw = [{k.arg: ast.literal_eval(k.value) for k in c.keywords} for c in ops]
    assert [(k["task_id"], k["application"]) for k in kw] == [(s, f"/opt/jobs/{s}.py") for s in STEPS]
    assert {tuple(k["application_args"]) for k in kw} == {
        ("--model", "churn", "--date", "{{ data_interval_end | ds }}", "--conf-dir", str(CONF))}
    default_args = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                        and getattr(n.targets[0], "id", "") == "default_args")
    assert ast.unparse(default_args) == "{'retries': 4, 'retry_delay': dt.timedelta(minutes=5)}"
    dag = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "DAG")
    opts = {k.arg: k.value for k in dag.keywords}
    assert ast.unparse(opts["default_args"]) == "default_args"
    assert ast.unparse(opts["start_date"]).startswith("dt.datetime.fromisoformat('2026-02-01')")
    assert (ast.literal_eval(opts["catchup"]), ast.literal_eval(opts["max_active_runs"])) == (True, 1)
    assert compile(tree, "dag.py", "exec") is not None


def test_schedule_databricks_json_and_bundle_yaml_hold_the_same_job(capsys, tmp_path) -> None:
    code, out, _ = schedule(capsys, "--kind", "databricks", "--jobs-dir", "dbfs:/driftline/jobs")
    assert code == 0
    job = json.loads(out)
    target = tmp_path / "databricks.yml"
    code, out, _ = schedule(capsys, "--kind", "databricks-bundle", "--jobs-dir", "dbfs:/driftline/jobs",
                            "--out", str(target))
    assert (code, out) == (0, f"{target}\n")
    bundle = yaml.safe_load(target.read_text())
    assert bundle["bundle"] == {"name": "driftline-churn"}
    assert bundle["resources"]["jobs"] == {"driftline_churn": job}
    assert [t["task_key"] for t in job["tasks"]] == STEPS
    assert [t["spark_python_task"]["python_file"] for t in job["tasks"]] == [f"dbfs:/driftline/jobs/{s}.py"
                                                                             for s in STEPS]
    assert {t["max_retries"] for t in job["tasks"]} == {2} and job["max_concurrent_runs"] == 1


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--kind", "cron", "--set", "schedule.cron=0 3 * *"), 2, "expected a 5-field cron line"),
    (("--kind", "databricks", "--set", "schedule.cron=0 3 1 * 1"), 2, "found both"),
    (("--kind", "cron", "--retries", "-1"), 2, "expected numbers >= 0"),
    (("--kind", "cron", "--out", "/nonexistent/dir/x"), 2, "expected a file in an existing folder"),
])
def test_schedule_errors_are_one_line_exit_2(capsys, args, code, message) -> None:
    got, out, err = schedule(capsys, *args)
    assert (got, out) == (code, "")
    assert len(err.splitlines()) == 1 and err.startswith("driftline schedule: error: ") and message in err
