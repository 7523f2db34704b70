"""The wheel that ships driftline to a cluster: ``pip wheel . --no-deps`` builds it, and it works as --py-files.

Spark puts only ``.zip``/``.egg``/``.jar`` files of ``--py-files`` on the executors' ``sys.path``;
docs/cluster.md therefore ships the (pure-Python) wheel under a ``.zip`` name. This test builds the
wheel, checks that it holds every module of lib/driftline and the dependency metadata, and imports
driftline from the renamed zip in a fresh interpreter.
"""

from __future__ import annotations

import email
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (built,) = out.glob("driftline-*.whl")
    return built


def test_wheel_holds_every_module_and_the_dependencies(wheel: Path) -> None:
    assert wheel.name == "driftline-0.1.0-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(ROOT / "lib")) for p in (ROOT / "lib" / "driftline").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert "driftline/py.typed" in names
    assert "driftline/jvm/src/driftline/jvm/ProfileFold.java" in names   # `driftline jar` compiles it
    assert not any(n.startswith(("tests/", "jobs/", "conf/")) for n in names)
    meta = email.message_from_bytes(zipfile.ZipFile(wheel).read("driftline-0.1.0.dist-info/METADATA"))
    requires = {re.split(r"[<>=;\[ ]", r, maxsplit=1)[0] for r in meta.get_all("Requires-Dist")}
    assert {"pyspark", "pandas", "pyarrow", "scikit-learn", "deltalake", "mlflow", "threadpoolctl", "delta-spark"} <= requires
    entry_points = zipfile.ZipFile(wheel).read("driftline-0.1.0.dist-info/entry_points.txt").decode()
    assert "driftline = driftline.cli.main:main" in entry_points


def test_the_wheel_renamed_to_zip_is_importable_like_py_files(wheel: Path, tmp_path: Path) -> None:
    shipped = tmp_path / "driftline.zip"
    shutil.copy(wheel, shipped)
    code = ("import sys; sys.path.insert(1, sys.argv[1]); "
            "sys.path[:] = [p for p in sys.path if not p.endswith('/lib')]; "   # drop the editable install
            "import driftline.cli.runner, driftline.scoring.spark as s; print(s.__file__)")
    proc = subprocess.run([sys.executable, "-c", code, str(shipped)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"{shipped}/driftline/scoring/spark.py"
