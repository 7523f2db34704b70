"""The shared job runner and the driftline command: arguments, exit codes, error lines."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from driftline.cli import runner
from driftline.cli.main import main
from driftline.cli.runner import run_job
from driftline.errors import EnvironmentProblem
from driftline.jobs import JOBS, JobSpec
from driftline.runtime import RuntimeConfig, check_java, java_version, session_conf
from tests.unit.cli import sample_jobs

ROOT = Path(__file__).resolve().parents[3]
OPTIONS = ["--model", "--date", "--from", "--to", "--conf-dir", "--workspace", "--set", "--force", "--log-level"]


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    root = tmp_path / "conf"
    (root / "models").mkdir(parents=True)
    (root / "base.yaml").write_text("runtime: {shuffle_partitions: 2}\n")
    (root / "models" / "m1.yaml").write_text(textwrap.dedent("""
        entity_key: id
        sources: {events: {table: ev, key: id, timestamp: ts}}
        features: [{name: n7, kind: aggregate, agg: count, window: 7d}]
    """))
    return root


@pytest.fixture
def test_job(monkeypatch: pytest.MonkeyPatch):
    """Register a job named 'probe' whose function the test chooses."""
    def use(function: str) -> str:
        monkeypatch.setitem(JOBS, "probe", JobSpec("probe", "a test job", "-", "-", getattr(sample_jobs, function)))
        return "probe"
    sample_jobs.SEEN.clear()
    return use


def args(conf: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["--model", "m1", "--conf-dir", str(conf), "--workspace", str(tmp_path / "ws"), *extra]


@pytest.mark.parametrize("job", list(JOBS))
def test_every_job_explains_every_option(job: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_job(job, ["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: driftline {job} ")
    for option in OPTIONS:
        assert option in out
    assert "exit codes: 0 ok" in out


@pytest.mark.parametrize(("job", "module"), [
    ("prepare_features", "driftline.jobs.prepare_features"), ("train", "driftline.jobs.train"),
    ("score", "driftline.jobs.score"), ("monitor", "driftline.jobs.monitor"),
    ("retrain", "driftline.jobs.retrain"), ("pipeline", "driftline.jobs.pipeline"),
])
def test_each_job_runs_its_modules_run(job: str, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    seen = []
    monkeypatch.setattr(importlib.import_module(module), "run", lambda ctx: seen.append(ctx) or "result")
    assert JOBS[job].run("ctx") == "result" and seen == ["ctx"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--date", "2026-01-05"], "the following arguments are required: --model"),
        (["--model", "m1"], "one of the arguments --date --from is required"),
        (["--model", "m1", "--date", "2026-02-30"], "expected a real calendar date as YYYY-MM-DD, found '2026-02-30'"),
        (["--model", "m1", "--date", "2026-1-5"], "expected a date as YYYY-MM-DD, found '2026-1-5'"),
        (["--model", "m1", "--date", "2026-01-05'; DROP TABLE x"], "expected a date as YYYY-MM-DD"),
        (["--model", "m1", "--date", "2026-01-05", "--from", "2026-01-01"], "not allowed with argument"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_job("score", argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (["--from", "2026-01-05"], "--from: expected --to with the last date of the range, found none"),
        (["--from", "2026-01-05", "--to", "2026-01-01"], "--from/--to: expected --from <= --to, found 2026-01-05 > 2026-01-01"),
        (["--date", "2026-01-05", "--to", "2026-01-06"], "--to: only valid with --from, found it with --date"),
    ],
)
def test_date_range_errors(extra: list[str], line: str, conf: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run_job("score", args(conf, tmp_path, *extra)) == 2
    assert capsys.readouterr().err == f"driftline score: error: {line}\n"


def test_config_error_exits_2_before_spark(conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = args(conf, tmp_path, "--date", "2026-01-05", "--set", "monitoring.drift.psi_treshold=0.2")
    assert run_job("score", argv) == 2
    assert capsys.readouterr().err == (
        "driftline score: error: --set monitoring.drift.psi_treshold=0.2: monitoring.drift.psi_treshold: unknown key\n"
    )


def test_successful_job_gets_context_and_exits_0(spark, test_job, conf: Path, tmp_path: Path) -> None:
    job = test_job("record")
    argv = args(conf, tmp_path, "--from", "2026-03-27", "--to", "2026-03-30", "--set", "description=x")
    assert run_job(job, argv) == 0
    (ctx,) = sample_jobs.SEEN
    assert ctx.dates == (dt.date(2026, 3, 27), dt.date(2026, 3, 28), dt.date(2026, 3, 29), dt.date(2026, 3, 30))
    assert ctx.config.name == "m1" and ctx.config.description == "x"
    assert ctx.config.workspace == str(tmp_path / "ws")
    assert ctx.run_id.startswith("probe-") and len(ctx.config_hash) == 16
    assert ctx.spark is spark  # joined the session; the runner does not stop a session it did not build
    assert spark.range(2).count() == 2
    assert ctx.spark.conf.get("spark.sql.session.timeZone") == "UTC"


@pytest.mark.parametrize(
    ("function", "code", "stderr_end"),
    [
        ("gate_fails", 3, "driftline probe: error: quality gate: not_null(customer_id) failed: expected 0 nulls, "
                          "found 3\n"),
        ("expected_failure", 1, "driftline probe: error: concurrent run: another run committed churn__features for "
                                "2026-01-05 first retry\n"),
        ("crashes", 1, "RuntimeError: boom\n"),
    ],
)
def test_failures_map_to_exit_codes(spark, test_job, conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    function: str, code: int, stderr_end: str) -> None:
    assert run_job(test_job(function), args(conf, tmp_path, "--date", "2026-01-05")) == code
    err = capsys.readouterr().err
    assert err.endswith(stderr_end)
    if function == "crashes":
        assert "Traceback (most recent call last)" in err
    else:
        assert "Traceback" not in err


def test_config_is_logged_once_per_process_and_its_hash_per_run(spark, test_job, conf: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(runner, "_CONFIGS_LOGGED", set())
    job = test_job("record")
    for day in ("2026-01-05", "2026-01-06"):
        assert run_job(job, args(conf, tmp_path, "--date", day)) == 0
    hashes = {ctx.config_hash for ctx in sample_jobs.SEEN}
    assert len(hashes) == 1
    (config_hash,) = hashes
    lines = capsys.readouterr().err.splitlines()
    assert len([line for line in lines if f"config_hash={config_hash}" in line]) == 2
    assert [line.split(": {")[0].split(" INFO    ")[1] for line in lines if "resolved config" in line] == [
        f"driftline: resolved config {config_hash}"]
    # another config in the same process is logged once too
    assert run_job(job, args(conf, tmp_path, "--date", "2026-01-05", "--set", "description=y")) == 0
    assert len([line for line in capsys.readouterr().err.splitlines() if "resolved config" in line]) == 1


def test_spark_starts_quiet_unless_debug(tmp_path: Path) -> None:
    """The local driver JVM gets a log4j2 file at runtime.spark_log_level; quiet=False keeps Spark's defaults."""
    runtime = RuntimeConfig(master="local[1]", jvm_fold=False, spark_log_level="WARN")
    quiet = session_conf(runtime, tmp_path)["spark.driver.extraJavaOptions"]
    path = tmp_path.resolve() / "spark-tmp" / "driftline-log4j2-warn.properties"
    assert quiet == f'-Duser.timezone=UTC "-Dlog4j.configurationFile={path}"'
    assert "rootLogger.level = warn\n" in path.read_text()
    assert session_conf(runtime, tmp_path, quiet=False)["spark.driver.extraJavaOptions"] == "-Duser.timezone=UTC"
    assert "log4j" not in session_conf(runtime, tmp_path, submitted=True).get("spark.driver.extraJavaOptions", "")


def test_a_local_session_prints_no_spark_start_up_warnings(tmp_path: Path) -> None:
    """What a fresh driver JVM prints on stderr: only the JVM's own incubator-module notice remains."""
    code = ("import sys; from driftline.config.schema import RuntimeConfig; from driftline.runtime import build_spark; "
            "s = build_spark(RuntimeConfig(master='local[1]', jvm_fold=False), sys.argv[1]); s.range(3).count(); "
            "s.stop()")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["WARNING: Using incubator modules: jdk.incubator.vector"]


def fake_java(tmp_path: Path, version_line: str) -> Path:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


@pytest.mark.parametrize(("line", "major"), [('openjdk version "17.0.15" 2025-04-15', 17),
                                             ('java version "1.8.0_392"', 8), ('openjdk version "21" 2023-09-19', 21)])
def test_java_version_parsing(tmp_path: Path, line: str, major: int) -> None:
    assert java_version(str(fake_java(tmp_path, line) / "bin" / "java")) == major


def test_old_java_is_one_clear_line_through_the_runner(test_job, conf: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    home = fake_java(tmp_path, 'openjdk version "11.0.2" 2019-01-15')
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert run_job(test_job("record"), args(conf, tmp_path, "--date", "2026-01-05")) == 2
    assert capsys.readouterr().err.endswith(
        f"driftline probe: error: Java 17+ is required by Spark 4, found Java 11 at {home}/bin/java; "
        "set JAVA_HOME to a Java 17 or newer\n")
    assert sample_jobs.SEEN == []


def test_missing_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(EnvironmentProblem, match=r"^Java 17\+ is required to run Spark, found no java"):
        check_java()


def test_driftline_command(capsys: pytest.CaptureFixture[str], conf_dir: Path, tmp_path: Path) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in [*JOBS, "models", "report", "demo"]:
        assert f"\n  {name} " in out
    assert main([]) == 2
    assert main(["scor"]) == 2
    assert "expected a command (prepare_features, train, score" in capsys.readouterr().err
    # no monitor run for that date: one line naming the expected file, exit 2; then the path once it exists
    report = ["report", "--model", "churn", "--date", "2026-03-01", "--conf-dir", str(conf_dir),
              "--workspace", str(tmp_path)]
    expected = tmp_path.resolve() / "reports" / "churn" / "2026-03-01.html"
    assert main(report) == 1
    assert capsys.readouterr().err == (f"driftline report: error: report of churn for 2026-03-01: expected {expected}, "
                                       "found no file (run driftline monitor --model churn --date 2026-03-01)\n")
    expected.parent.mkdir(parents=True)
    expected.write_text("<html></html>")
    assert main(report) == 0
    assert capsys.readouterr().out == f"{expected}\n"
    assert main(["models", "--help"]) == 0
    assert "driftline models" in capsys.readouterr().out
    assert main(["demo", "--days", "0"]) == 2
    assert "--days: expected a whole number >= 1, found '0'" in capsys.readouterr().err


def test_console_script_and_spark_submit_help() -> None:
    """`driftline --help` and `spark-submit jobs/<job>.py --help` work from a shell."""
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    out = subprocess.run([str(bindir / "driftline"), "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "usage: driftline <command>" in out.stdout
    sub = subprocess.run([str(bindir / "spark-submit"), str(ROOT / "jobs" / "monitor.py"), "--help"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert sub.returncode == 0, sub.stderr
    assert sub.stdout.startswith("usage: jobs/monitor.py [-h] --model NAME")


def test_job_files_are_thin() -> None:
    for job in JOBS:
        text = (ROOT / "jobs" / f"{job}.py").read_text()
        assert f'run_job("{job}"' in text
        assert len(text.splitlines()) <= 10


def test_spark_submit_keeps_the_submitters_master_and_resources(tmp_path: Path, conf: Path) -> None:
    """Under spark-submit the runner applies session SQL settings but not master or resources."""
    bindir = Path(sys.executable).parent
    out = tmp_path / "probe.json"
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable, "PROBE_OUT": str(out), "PYTHONPATH": str(ROOT)}
    cmd = [str(bindir / "spark-submit"), "--master", "local[1]", "--driver-memory", "700m",
           "--conf", "spark.ui.enabled=false", str(ROOT / "tests" / "unit" / "cli" / "submit_probe.py"),
           "--model", "m1", "--date", "2026-01-05", "--conf-dir", str(conf), "--workspace", str(tmp_path / "ws"),
           "--set", "runtime.master=local[2]", "--set", "runtime.driver_memory=2g", "--set", "runtime.shuffle_partitions=3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(out.read_text()) == {
        "master": "local[1]", "driver_memory": "700m", "time_zone": "UTC",
        "timestamp_type": "TIMESTAMP_MICROS", "shuffle_partitions": "3", "rows": 5,
    }
