"""Every job runs on a workspace written by the previous release after ``driftline migrate``.

The fixture (tests/fixtures/workspace-contract1.tar.gz, made by tests/fixtures/make_contract1_workspace.py
with commit d878604) holds the demo's source tables and every output table of contract 1. After the
migration, the current code trains a champion (writing into the migrated ``reference_profiles``), then
runs the pipeline for the next date (prepare_features, score, monitor, retrain: each writes into a
migrated table and the monitor and retrain read the migrated rows of the earlier dates). Every table's
schema then follows the contract, the old rows are still there, and the pre-migration versions are
still readable (delta-rs as the independent reader).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from deltalake import DeltaTable

from driftline.cli.main import main
from driftline.cli.runner import run_job
from driftline.registry.client import clear_cache
from driftline.tables import contracts
from tests.jobs.test_migrate import CONF, extract, run, tables, versions

pytestmark = pytest.mark.slow

NEXT = dt.date(2026, 1, 29)  # the fixture's pipeline ran 01-27 and 01-28
COMMON = ["--model", "churn", "--conf-dir", str(CONF), "--log-level", "WARNING",
          "--set", "runtime.shuffle_partitions=1"]
TRAIN = ["--set", "training.train_days=4", "--set", "training.validation_days=2",
         "--set", "training.min_train_rows=20", "--set", "training.min_validation_rows=10"]


def test_every_job_runs_on_the_migrated_workspace(spark, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = extract(tmp_path / "ws")
    before = versions(ws)
    old_rows = {name: len(DeltaTable(str(path)).to_pandas()) for name, path in tables(ws).items()}
    # before the migration a job refuses with one line saying what to do, and writes nothing
    assert run_job("prepare_features", [*COMMON, "--workspace", str(ws), "--date", str(NEXT)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("driftline prepare_features: error: table ") and err[-1].endswith(
        "written by an earlier driftline (table contract 1), expected contract 4: run driftline migrate "
        "--workspace <workspace> first (docs/migrate.md)"), err
    assert versions(ws) == before
    # `driftline status` says the same
    status = ["status", "--model", "churn", "--conf-dir", str(CONF), "--workspace", str(ws)]
    assert main([*status, "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("driftline status: error: table ") and err[0].endswith(
        "run driftline migrate --workspace <workspace> first (docs/migrate.md)"), err
    assert versions(ws) == before
    code, _, err = run(ws)
    assert code == 0, err
    migrated = versions(ws)

    clear_cache()
    common = [*COMMON, "--workspace", str(ws)]
    assert run_job("train", [*common, "--date", str(NEXT - dt.timedelta(days=1)), *TRAIN]) == 0
    assert run_job("pipeline", [*common, "--date", str(NEXT), "--set", "retrain.cooldown_days=21",
                                "--set", "monitoring.report.evidently_rows=0"]) == 0

    after = tables(ws)
    for name, path in after.items():
        contract = contracts.contract_of(name)
        table = DeltaTable(str(path))
        frame = table.to_pandas()
        if contract is None:   # a source table: untouched
            assert table.version() == before[name]
            continue
        columns = [f.name for f in table.schema().fields]
        assert set(contract.names) <= set(columns), f"{name}: {sorted(set(contract.names) - set(columns))} missing"
        assert "model_name" not in columns
        assert list(table.metadata().partition_columns) == list(contract.partition_by)
        if name not in before:   # a table this release added (<model>__daily_profiles), written by the jobs
            assert len(frame) > 0 and contract.name == "<model>__daily_profiles", name
            continue
        assert len(frame) > old_rows[name] or name == "quarantine", f"{name}: no rows added by the jobs"
        assert table.version() > migrated[name] or name == "quarantine", f"{name}: no job wrote it"
        # the version before the migration is still there, with the old rows
        assert len(DeltaTable(str(path), version=before[name]).to_pandas()) == old_rows[name]

    runs = DeltaTable(str(after["monitor_runs"])).to_pandas()
    assert sorted(runs["run_date"].astype(str)) == ["2026-01-27", "2026-01-28", str(NEXT)]
    metrics = DeltaTable(str(after["monitor_metrics"])).to_pandas()
    assert "prediction" not in set(metrics["column"]) and "score" in set(metrics["column"])
    assert metrics.loc[metrics["run_date"].astype(str) == str(NEXT), "code_version"].notna().all()
    quality = DeltaTable(str(after["quality_results"])).to_pandas()
    assert set(quality["status"]) <= {"ok", "insufficient_data", "warn", "alert"}
    decisions = DeltaTable(str(after["retrain_decisions"])).to_pandas()
    assert str(NEXT) in set(decisions["decision_date"].astype(str))

    assert main([*status, "--json"]) in (0, 3)
    jobs = {j["job"]: j for j in json.loads(capsys.readouterr().out)["jobs"]}
    assert {j: jobs[j]["date"] for j in ("monitor", "retrain", "pipeline")} == dict.fromkeys(
        ("monitor", "retrain", "pipeline"), str(NEXT))
    written = versions(ws)
    code, out, err = run(ws)   # the tables the current code wrote are current: nothing to migrate
    assert code == 0 and versions(ws) == written, err
    assert not any("migrated" in line for line in out), out
