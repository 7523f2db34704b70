"""R3/R4/R5 with real processes: each writer builds its own SparkSession (driftline.runtime.build_spark)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable

from tests.unit.tables.conftest import commit_for, embedded_only

WRITER = Path(__file__).with_name("concurrent_writer.py")
SCHEMA = "id long, amount decimal(12,2), run string, d date"
pytestmark = [pytest.mark.slow, embedded_only]  # the writer processes use the embedded backend


def start(workspace: Path, table: str, date: str, run_id: str, barrier: Path, parties: int, mode: str = "write"):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(workspace), table, date, run_id, str(barrier), str(parties), mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def finish(proc) -> tuple[int, dict]:
    out, err = proc.communicate(timeout=240)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return proc.returncode, (json.loads(lines[-1]) if lines else {"stderr": err[-2000:]})


def rows(date: str, run: str) -> list[tuple]:
    return [(i, Decimal(f"{i}.50"), run, dt.date.fromisoformat(date)) for i in range(10)]


def test_r4_two_processes_same_date_exactly_one_commits(spark, store, workspace, tmp_path):
    store.replace_partitions("r4", spark.createDataFrame(rows("2026-01-05", "seed"), SCHEMA), ["d"], commit_for("s"))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [start(workspace, "r4", "2026-01-05", run, barrier, 2) for run in ("A", "B")]
    results = [finish(p) for p in procs]
    statuses = sorted(r[1].get("status", "?") for r in results)
    assert statuses == ["concurrent", "ok"], results
    loser = next(r for r in results if r[1]["status"] == "concurrent")
    assert loser[0] == 3 and "another run committed driftline/score/r4/2026-01-05" in loser[1]["error"]
    winner = next(r[1] for r in results if r[1]["status"] == "ok")
    table = DeltaTable(store.location("r4"))
    assert table.version() == 1 == winner["version"]  # exactly one result committed
    assert table.transaction_version("driftline/score/r4/2026-01-05") == 1
    got = store.read("r4")
    won = got.select("run").distinct().collect()
    assert len(won) == 1  # never a mix or duplicates of both runs
    assert_df_equality(got, spark.createDataFrame(rows("2026-01-05", won[0]["run"]), SCHEMA),
                       ignore_row_order=True, ignore_nullable=True)


def test_r5_two_processes_different_existing_dates_both_commit(spark, store, workspace, tmp_path):
    seed = rows("2026-01-04", "seed") + rows("2026-01-05", "seed")
    store.replace_partitions("r5", spark.createDataFrame(seed, SCHEMA), ["d"], commit_for("s"))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [start(workspace, "r5", d, run, barrier, 2) for d, run in (("2026-01-04", "A"), ("2026-01-05", "B"))]
    results = [finish(p) for p in procs]
    assert [r[1].get("status") for r in results] == ["ok", "ok"], results
    assert sorted(r[1]["version"] for r in results) == [1, 2]
    expected = rows("2026-01-04", "A") + rows("2026-01-05", "B")
    assert_df_equality(store.read("r5"), spark.createDataFrame(expected, SCHEMA),
                       ignore_row_order=True, ignore_nullable=True)


def test_r3_process_killed_between_write_and_commit(spark, store, workspace, tmp_path):
    before = spark.createDataFrame(rows("2026-01-05", "seed"), SCHEMA)
    store.replace_partitions("r3k", before, ["d"], commit_for("2026-01-05"))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    code, _ = finish(start(workspace, "r3k", "2026-01-05", "K", barrier, 1, mode="crash"))
    assert code == 17
    assert store.version("r3k") == 0
    assert_df_equality(store.read("r3k"), before, ignore_row_order=True, ignore_nullable=True)
    root = Path(store.location("r3k"))
    orphans = sorted(str(p.relative_to(root)) for p in root.glob("driftline_write=*/d=*/*.parquet"))
    committed = {a for a in DeltaTable(str(root)).file_uris()}
    orphans = [o for o in orphans if str(root / o) not in committed]
    assert orphans  # the killed writer left its files behind, invisible to readers

    assert store.cleanup_orphans("r3k") == []  # younger than the 24 h retention: protected
    assert store.cleanup_orphans("r3k", retention_hours=0, dry_run=True) == orphans
    assert store.cleanup_orphans("r3k", retention_hours=0) == orphans
    assert not any((root / o).exists() for o in orphans)
    assert_df_equality(store.read("r3k", version=0), before, ignore_row_order=True, ignore_nullable=True)

    rerun = spark.createDataFrame(rows("2026-01-05", "rerun"), SCHEMA)
    assert store.replace_partitions("r3k", rerun, ["d"], commit_for("2026-01-05", "R")).version == 1
    assert_df_equality(store.read("r3k"), rerun, ignore_row_order=True, ignore_nullable=True)
    assert store.cleanup_orphans("r3k", retention_hours=0) == []  # v0's files stay for time travel
    assert store.read("r3k", version=0).count() == 10
