"""Bad command-line and config input through the public jobs (R19, R20, R21): refused before Spark starts.

Every case runs a real job (`run_job`, the code behind ``driftline <job>`` and ``jobs/<job>.py``)
or the installed ``driftline`` console script in a subprocess, against the project's own ``conf/``
(model ``churn``) or a copy of it with one key broken. "Nothing ran" is observable: the runner
creates the workspace folder right before it builds the SparkSession, so a refused run leaves no
workspace behind (and nothing anywhere else).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from driftline.cli.runner import run_job

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
DRIFTLINE = Path(sys.executable).with_name("driftline")
JOBS = ("prepare_features", "train", "score", "monitor", "retrain", "pipeline")


def error_lines(err: str, job: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"driftline {job}: error:")]


def run(job: str, workspace: Path, *args: str, conf: Path = CONF, model: str = "churn") -> int:
    return run_job(job, ["--model", model, "--conf-dir", str(conf), "--workspace", str(workspace), *args])


def broken_conf(tmp_path: Path, edit) -> Path:
    """A copy of the project's conf/ whose churn.yaml went through ``edit(dict)``."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    path = conf / "models" / "churn.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return conf


# --------------------------------------------------------------------------- R19: config typo / out of range / type


@pytest.mark.parametrize(("override", "line"), [
    ("monitoring.drift.psi_treshold=0.2",
     "--set monitoring.drift.psi_treshold=0.2: monitoring.drift.psi_treshold: unknown key"),
    ("monitoring.drift.psi_threshold=-1",
     "--set monitoring.drift.psi_threshold=-1: monitoring.drift.psi_threshold: input should be greater than or "
     "equal to 0, found -1"),
    ("monitoring.window_days=seven",
     "--set monitoring.window_days=seven: monitoring.window_days: input should be a valid integer, unable to parse "
     "string as an integer, found 'seven'"),
    ("retrain.drift.k=0", "--set retrain.drift.k=0: retrain.drift.k:"),
])
@pytest.mark.parametrize("job", ["monitor", "retrain"])
@pytest.mark.both_backends
def test_r19_bad_override_exits_2_with_the_key_path_before_spark(job: str, override: str, line: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert run(job, ws, "--date", "2026-03-01", "--set", override) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"driftline {job}: error: {line}"), err
    assert not ws.exists()                                              # no Spark session, nothing written


@pytest.mark.parametrize(("edit", "line"), [
    (lambda d: d["monitoring"]["drift"].update(psi_treshold=0.2),
     "monitoring.drift.psi_treshold: unknown key"),
    (lambda d: d["label"].update(threshold=-1),
     "label.threshold: input should be greater than 0, found -1"),
    (lambda d: d["features"][0].update(window="seven days"),
     "features.0.window: expected a window like '7d' (1..9999 days), found 'seven days'"),
    (lambda d: d["monitoring"].update(window_days=[1]),
     "monitoring.window_days: input should be a valid integer, found [1]"),
])
@pytest.mark.both_backends
def test_r19_bad_model_file_names_the_file_and_key_path(edit, line: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    conf = broken_conf(tmp_path, edit)
    ws = tmp_path / "ws"
    assert run("prepare_features", ws, "--date", "2026-03-01", conf=conf) == 2
    err = capsys.readouterr().err
    assert err == f"driftline prepare_features: error: {os.path.relpath(conf / 'models' / 'churn.yaml')}: {line}\n"
    assert not ws.exists()


@pytest.mark.both_backends
def test_r19_through_the_console_script_no_jvm_starts(tmp_path: Path) -> None:
    """The installed ``driftline`` command: exit 2, one line, no Spark (no JVM output, no workspace)."""
    ws = tmp_path / "ws"
    proc = subprocess.run(
        [str(DRIFTLINE), "score", "--model", "churn", "--date", "2026-03-01", "--conf-dir", str(CONF),
         "--workspace", str(ws), "--set", "monitoring.drift.psi_treshold=0.2"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr == ("driftline score: error: --set monitoring.drift.psi_treshold=0.2: "
                           "monitoring.drift.psi_treshold: unknown key\n")
    assert proc.stdout == "" and not ws.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- R20: table names with paths / URIs


BAD_NAMES = ["../../x", "/etc/passwd", "s3://bucket/x", "file:///tmp/x", "x/../../y", "churn_events;rm -rf",
             "`x`", "x\n"]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("key", ["sources.events.table", "sources.labels.table", "sources.entities.table"])
def test_r20_source_table_names_with_paths_or_uris_are_refused(key: str, name: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    value = yaml.safe_dump(name, default_style='"').strip()               # quoted: YAML keeps it a string
    assert run("prepare_features", ws, "--date", "2026-03-01", "--set", f"{key}={value}") == 2
    err = capsys.readouterr().err
    [line] = error_lines(err, "prepare_features")
    assert f"{key}: string should match pattern" in line and err.count("\n") == 1
    assert not ws.exists()


@pytest.mark.parametrize("override", [
    "storage.tables.a/../b=/tmp/elsewhere",                              # a mapping key must be a table name
    "storage.tables.x y=/tmp/elsewhere",
    "entity_key=customer_id`) OR 1=1 --",                               # names reach Spark as columns
    "features.0.column=amount; DROP TABLE churn_events",
    "name=../../churn",
])
def test_r20_names_that_reach_spark_or_the_file_system_must_be_identifiers(override: str, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert run("score", ws, "--date", "2026-03-01", "--set", override) == 2
    [line] = error_lines(capsys.readouterr().err, "score")
    assert "should match pattern" in line or "expected" in line
    assert not ws.exists()


@pytest.mark.parametrize("model", ["../../x", "/etc/passwd", "churn/../churn", "s3://b/churn", "churn;ls"])
@pytest.mark.parametrize("job", JOBS)
def test_r20_model_name_with_a_path_is_refused(job: str, model: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert run(job, ws, "--date", "2026-03-01", model=model) == 2
    assert capsys.readouterr().err == (f"driftline {job}: error: --model: expected a model name of letters, digits "
                                       f"and '_', found {model!r}\n")
    assert not ws.exists()


# --------------------------------------------------------------------------- R21: injection through date arguments


INJECTED_DATES = ["2026-01-01' OR '1'='1", "2026-01-01; DROP TABLE churn__features", "2026-01-01 OR 1=1",
                  "2026-01-01\n", "' OR ''='", "2026-01-01T00:00:00", "../2026-01-01"]


@pytest.mark.parametrize("value", INJECTED_DATES)
@pytest.mark.parametrize("option", ["--date", "--from", "--to"])
def test_r21_injected_date_exits_2_naming_the_argument(option: str, value: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    args = {"--date": ["--date", value], "--from": ["--from", value, "--to", "2026-01-02"],
            "--to": ["--from", "2026-01-01", "--to", value]}[option]
    assert run("monitor", ws, *args) == 2
    err = capsys.readouterr().err
    [line] = error_lines(err, "monitor")
    assert line.startswith(f"driftline monitor: error: argument {option}: expected a") and "YYYY-MM-DD" in line
    assert not ws.exists()


def test_r21_injected_date_is_exactly_one_line_on_stderr(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(DRIFTLINE), "score", "--model", "churn", "--date", "2026-01-01' OR '1'='1", "--conf-dir", str(CONF),
         "--workspace", str(tmp_path / "ws")], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
