"""The cluster scripts' argument checks and their no-cluster paths (no JVM is started here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cluster.conftest import SCRIPTS, script_env


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPTS / script), *args], capture_output=True, text=True, env=script_env(),
                          timeout=60)


@pytest.mark.parametrize(("args", "line"), [
    (["--workers", "0"], "cluster/start.sh: error: --workers: expected a number 1-99, found '0'"),
    (["--memory", "lots"], "cluster/start.sh: error: --memory: expected a size like 1g or 768m, found 'lots'"),
    (["--bogus"], "cluster/start.sh: error: unknown option --bogus (expected --workers, --cores, --memory, "
                  "--state-dir, --timeout)"),
])
def test_start_refuses_bad_options_in_one_line(args: list[str], line: str, tmp_path: Path) -> None:
    proc = run("start.sh", "--state-dir", str(tmp_path), *args)
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, line + "\n", "")
    assert list(tmp_path.iterdir()) == []                       # nothing started, nothing written


def test_stop_without_a_cluster_is_a_no_op(tmp_path: Path) -> None:
    proc = run("stop.sh", "--state-dir", str(tmp_path / "none"))
    assert (proc.returncode, proc.stderr) == (0, f"cluster/stop.sh: no cluster running from {tmp_path / 'none'}\n")


def test_stop_ignores_a_stale_pid_file_it_did_not_start(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)   # a live group that is not Spark
    try:
        (tmp_path / "master.pid").write_text(f"{sleeper.pid}\n")
        proc = run("stop.sh", "--state-dir", str(tmp_path))
        assert proc.returncode == 0 and sleeper.poll() is None     # not ours to kill: left running
        assert not (tmp_path / "master.pid").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize(("args", "line"), [
    ([], "expected a job name (e.g. score) and its options, found none"),
    (["../etc/passwd"], "found '../etc/passwd'"),
    (["score", "--model", "churn"], "expected a running cluster in"),
])
def test_submit_needs_a_job_and_a_running_cluster(args: list[str], line: str, tmp_path: Path) -> None:
    proc = run("submit.sh", "--state-dir", str(tmp_path), *args)
    assert proc.returncode == 2 and line in proc.stderr and len(proc.stderr.splitlines()) == 1
