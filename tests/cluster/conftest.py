"""Fixtures of the cluster tests: a local standalone Spark cluster and the job tests' workspace.

``env`` (the ``jt`` model's features with nulls, and labels) comes from the train tests
(`tests.jobs.test_train.env`), so the cluster tests run the jobs on the same inputs as tests/jobs.
``cluster`` starts ``scripts/cluster/start.sh`` in the background as soon as it is requested (the
JVMs start while the caller trains models) and always runs ``scripts/cluster/stop.sh`` at the end,
whether the start, the tests or the fixture itself failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.jobs.test_train import env  # noqa: F401  (a fixture: pytest finds it by name)

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts" / "cluster"
START_TIMEOUT = 300


def script_env() -> dict[str, str]:
    """The environment of the cluster scripts: this interpreter's venv, Spark logs quiet."""
    venv = Path(sys.executable).parent.parent
    return {**os.environ, "DRIFTLINE_VENV": str(venv), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}


@dataclass
class Cluster:
    """A standalone cluster being started by ``start.sh`` (``url`` waits until it is ready)."""

    state: Path
    process: subprocess.Popen[str]
    _url: str | None = field(default=None)
    submitted: int = 0

    def url(self) -> str:
        if self._url is None:
            out, err = self.process.communicate(timeout=START_TIMEOUT)
            assert self.process.returncode == 0, f"scripts/cluster/start.sh failed:\n{err[-3000:]}"
            self._url = out.strip().splitlines()[-1]
            assert self._url.startswith("spark://127.0.0.1:"), out
        return self._url

    def submit(self, job: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``scripts/cluster/submit.sh JOB ARGS`` against this cluster: 1 g and 1 core per executor."""
        cmd = [str(SCRIPTS / "submit.sh"), "--state-dir", str(self.state), "--executor-memory", "1g",
               "--total-executor-cores", "2", job, *args]
        self.url()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=script_env(), cwd=self.state, timeout=600)
        self.submitted += 1
        log = self.state / "logs" / f"submit-{self.submitted}-{job}.log"
        log.write_text(f"$ {' '.join(cmd)}\n--- exit {proc.returncode}, stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}")
        return proc

    def executor_dirs(self) -> dict[str, list[str]]:
        """Per worker, the applications that ran an executor on it (worker-N/app-*/<executor id>)."""
        work = self.state / "work"
        return {w.name: sorted(a.name for a in w.iterdir() if any(a.iterdir())) for w in sorted(work.iterdir())}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two workers × 1 core × 1 g on 127.0.0.1; stopped (process groups killed) however the module ends."""
    state = tmp_path_factory.mktemp("cluster")
    proc = subprocess.Popen([str(SCRIPTS / "start.sh"), "--state-dir", str(state), "--workers", "2",
                             "--cores", "1", "--memory", "1g"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=script_env())
    try:
        yield Cluster(state, proc)
    finally:
        try:
            if proc.poll() is None:
                proc.communicate(timeout=START_TIMEOUT)   # let start.sh finish (it cleans up a failed start)
        finally:
            subprocess.run([str(SCRIPTS / "stop.sh"), "--state-dir", str(state)], env=script_env(),
                           capture_output=True, timeout=120, check=False)
