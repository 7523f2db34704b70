"""``driftline migrate`` on a workspace written by an earlier release: contract 1 (the fixture tarball) → 4 in one
run, and contract 2 (a ``retrain_decisions`` table written here with contract 2's columns) → 4.

The migrated tables are checked with delta-rs (an independent reader) against the contract and against
the old rows with the contract 1 → 2 → 3 → 4 mapping applied here in plain Python, not with migrate's code.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable, write_deltalake

from driftline.cli.main import main
from driftline.cli.migrate import migrate_command
from driftline.tables import StorageConfig, open_store
from driftline.tables import contracts as c

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "workspace-contract1.tar.gz"
CONF = ROOT / "tests" / "fixtures" / "conf-contract1"   # the conf the fixture was made with (commit d878604)
SOURCES = {"churn_customers", "churn_events", "churn_labels"}
REWRITTEN = {"quality_results", "churn__predictions", "reference_profiles", "monitor_metrics"}
ADDED_ONLY = {"churn__features", "quarantine", "scoring_stats"}
FROM_2 = {"retrain_decisions"}          # contract 1 = contract 2 there; 2 → 3 adds the episode columns
UNCHANGED = {"monitor_runs", "pipeline_runs"}
EPISODE = ["episode_id", "onset_date", "armed_date", "episode_status", "labels_available", "labels_needed",
           "label_days_available", "label_days_needed", "waited_days", "wait_reason"]
QUALITY = {"pass": "ok", "warn": "warn", "fail": "alert", "skipped": "insufficient_data"}


# --------------------------------------------------------------------------- helpers


def extract(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(dest, filter="data")
    return dest


def tables(ws: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted((ws / "tables").iterdir()) if (p / "_delta_log").is_dir()}


def versions(ws: Path) -> dict[str, int]:
    return {name: DeltaTable(str(path)).version() for name, path in tables(ws).items()}


def run(ws: Path, *extra: str) -> tuple[int, list[str], list[str]]:
    """The CLI in process: exit code, stdout lines, stderr lines (Python's; Spark's JVM writes elsewhere)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = migrate_command(["--workspace", str(ws), "--conf-dir", str(CONF), "--log-level", "WARNING", *extra])
    return code, out.getvalue().splitlines(), err.getvalue().splitlines()


def rows(path: Path, version: int | None = None) -> list[dict[str, Any]]:
    return DeltaTable(str(path), version=version).to_pyarrow_table().to_pylist()


def canonical(records: list[dict[str, Any]], columns: list[str]) -> list[tuple[str, ...]]:
    """Rows as sorted tuples of reprs in ``columns`` order (exact values, order-free)."""
    return sorted(tuple(repr(r[col]) for col in columns) for r in records)


def contract_schema(name: str, old_fields: list[Any]) -> list[tuple[str, str]]:
    """(name, type) of the table in contract 2, model columns from the old table (as migrate keeps them)."""
    contract = c.contract_of(name)
    assert contract is not None
    expected = [(col.name, col.type.simpleString()) for col in contract.columns]
    if not contract.per_model:
        return expected
    known = {col.name for col in contract.columns} | {"model_name"}
    leading = [(f.name, f.dataType.simpleString()) for f in old_fields if f.name not in known]
    return leading + expected


@dataclass
class Migrated:
    ws: Path
    before: dict[str, int]
    after: dict[str, int]
    code: int
    out: list[str]
    err: list[str]
    store: Any


@pytest.fixture(scope="module")
def migrated(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    ws = extract(tmp_path_factory.mktemp("migrate") / "ws")
    before = versions(ws)
    code, out, err = run(ws)
    store = open_store(spark, StorageConfig(), ws)
    return Migrated(ws, before, versions(ws), code, out, err, store)


# --------------------------------------------------------------------------- the migration


def test_migrate_prints_one_line_per_table_and_exits_0(migrated: Migrated) -> None:
    assert migrated.code == 0, migrated.err
    by_table = {line.split(":", 1)[0]: line.split(": ", 1)[1] for line in migrated.out}
    assert len(by_table) == len(migrated.out) and set(by_table) == set(migrated.before)
    for name in REWRITTEN | ADDED_ONLY | FROM_2:
        old, new = migrated.before[name], migrated.after[name]
        n = len(rows(migrated.ws / "tables" / name))
        start = 2 if name in FROM_2 else 1
        assert by_table[name] == f"migrated contract {start} → 4 (version {old} → {new}, {n} rows)"
    for name in UNCHANGED:
        assert by_table[name] == "current"
    for name in SOURCES:
        assert by_table[name] == "source table of model churn, left alone"


def test_each_migrated_table_is_one_commit_of_job_migrate(migrated: Migrated) -> None:
    for name in REWRITTEN | ADDED_ONLY | FROM_2:
        assert migrated.after[name] == migrated.before[name] + 1, name
        last = migrated.store.history(name)[0]
        assert (last["job"], last["date"]) == ("migrate", "contract-4"), (name, last)
        assert last["idempotency_key"] == f"driftline/migrate/{name}/contract-4"
    for name in UNCHANGED | SOURCES:
        assert migrated.after[name] == migrated.before[name], name


def test_schemas_and_partitions_follow_the_contract(migrated: Migrated) -> None:
    for name, path in tables(migrated.ws).items():
        contract = c.contract_of(name)
        if name in SOURCES:
            continue
        assert contract is not None
        old_fields = migrated.store.read(name, version=migrated.before[name]).schema.fields
        expected = contract_schema(name, old_fields)
        found = [(f.name, f.dataType.simpleString()) for f in migrated.store.schema(name).fields]
        if name in REWRITTEN:
            assert found == expected, name  # the contract's column order
        else:  # metadata-only (or untouched): the new column comes last, names and types as the contract's
            assert sorted(found) == sorted(expected), name
        assert DeltaTable(str(path)).metadata().partition_columns == list(contract.partition_by), name


def _old_to_new(name: str, old: list[dict[str, Any]], ws: Path) -> list[dict[str, Any]]:
    """Contract 1 → 2 → 3 → 4 applied to the old rows, independently of migrate's code."""
    def renamed(r: dict[str, Any]) -> dict[str, Any]:
        r = dict(r)
        if "model_name" in r:
            r["model"] = r.pop("model_name")
        return r

    runs = {r["run_id"]: r for r in rows(ws / "tables" / "monitor_runs")}
    mapping: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "quality_results": lambda r: {**r, "status": QUALITY[r["status"]], "code_version": None},
        "reference_profiles": lambda r: {**r, "code_version": None,
                                         "column": "score" if r["role"] == "prediction" else r["column"],
                                         "role": "score" if r["role"] == "prediction" else r["role"]},
        "monitor_metrics": lambda r: {**r, "column": "score" if r["column"] == "prediction" else r["column"],
                                      "config_hash": runs.get(r["run_id"], {}).get("config_hash"),
                                      "code_version": runs.get(r["run_id"], {}).get("code_version")},
        "churn__features": lambda r: {**r, "code_version": None},
        "quarantine": lambda r: {**r, "code_version": None},
        "scoring_stats": lambda r: {**r, "code_version": None},
        "retrain_decisions": lambda r: {**r, **dict.fromkeys(EPISODE)},
        "churn__predictions": lambda r: {**r, "published": None},
    }
    return [mapping.get(name, lambda r: r)(renamed(r)) for r in old]


def test_rows_are_kept_and_values_mapped_exactly(migrated: Migrated) -> None:
    for name, path in tables(migrated.ws).items():
        old = rows(path, migrated.before[name])
        new = rows(path)
        assert len(new) == len(old), name
        columns = list(new[0])
        assert canonical(_old_to_new(name, old, migrated.ws), columns) == canonical(new, columns), name


def test_vocabulary_and_provenance_after_migration(migrated: Migrated) -> None:
    tbl = migrated.ws / "tables"
    assert {r["status"] for r in rows(tbl / "quality_results")} <= {"ok", "warn", "alert", "insufficient_data"}
    profiles = rows(tbl / "reference_profiles")
    assert {r["role"] for r in profiles} == {"feature", "score"}
    assert "prediction" not in {r["column"] for r in profiles} and "score" in {r["column"] for r in profiles}
    metrics = rows(tbl / "monitor_metrics")
    assert "prediction" not in {r["column"] for r in metrics} and "score" in {r["column"] for r in metrics}
    runs = {r["run_id"]: r["config_hash"] for r in rows(tbl / "monitor_runs")}
    assert all(r["config_hash"] == runs[r["run_id"]] and r["config_hash"] for r in metrics)
    assert all(r["code_version"] is None for r in rows(tbl / "churn__features"))


def test_the_old_version_stays_readable_with_the_old_schema(migrated: Migrated) -> None:
    store = migrated.store
    for name in REWRITTEN | ADDED_ONLY | FROM_2:
        old = store.read(name, version=migrated.before[name])
        names = set(old.columns)
        assert "code_version" not in names or name in {"churn__predictions", *FROM_2}, name
        assert not set(EPISODE) & names, name
        assert old.count() == len(rows(migrated.ws / "tables" / name, migrated.before[name])), name
    assert "model_name" in store.read("churn__predictions", version=migrated.before["churn__predictions"]).columns
    old_quality = store.read("quality_results", version=migrated.before["quality_results"])
    assert {r[0] for r in old_quality.select("status").distinct().collect()} <= set(QUALITY)


def test_a_second_run_commits_nothing_and_says_current(migrated: Migrated) -> None:
    code, out, err = run(migrated.ws)
    assert code == 0, err
    assert versions(migrated.ws) == migrated.after
    assert sorted(out) == sorted(
        [f"{name}: current" for name in REWRITTEN | ADDED_ONLY | FROM_2 | UNCHANGED]
        + [f"{name}: source table of model churn, left alone" for name in SOURCES]
    )


# --------------------------------------------------------------------------- changing nothing


def test_dry_run_prints_the_plan_and_commits_nothing(spark: Any, tmp_path: Path) -> None:
    ws = extract(tmp_path / "ws")
    before = versions(ws)
    code, out, err = run(ws, "--dry-run")
    assert code == 0, err
    assert versions(ws) == before
    by_table = {line.split(":", 1)[0]: line.split(": ", 1)[1] for line in out}
    assert set(by_table) == set(before)
    for name in REWRITTEN | ADDED_ONLY | FROM_2:
        n = len(rows(ws / "tables" / name))
        start = 2 if name in FROM_2 else 1
        assert by_table[name].startswith(f"would migrate contract {start} → 4 (") and by_table[name].endswith(
            f"; version {before[name]}, {n} rows)"), by_table[name]
    assert by_table["retrain_decisions"].startswith("would migrate contract 2 → 4 (add the episode columns "
                                                    "(metadata only); ")
    assert all(by_table[name] == "current" for name in UNCHANGED)


def test_an_unknown_table_is_refused_and_nothing_changes(spark: Any, tmp_path: Path) -> None:
    import pandas as pd

    ws = extract(tmp_path / "ws")
    write_deltalake(str(ws / "tables" / "mystery"), pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}))
    before = versions(ws)
    code, out, err = run(ws)
    assert code == 2
    assert out == []
    assert len(err) == 1 and "mystery" in err[0] and "nothing was changed" in err[0], err
    assert err[0].startswith("driftline migrate: error: table mystery: expected a driftline table")
    assert versions(ws) == before


def test_a_table_of_unknown_shape_is_refused_and_nothing_changes(spark: Any, tmp_path: Path) -> None:
    ws = extract(tmp_path / "ws")
    path = ws / "tables" / "monitor_runs"
    shape = DeltaTable(str(path)).to_pyarrow_table().drop_columns(["report_path"])
    shutil.rmtree(path)
    write_deltalake(str(path), shape, partition_by=["model", "run_date"])
    before = versions(ws)
    code, out, err = run(ws)
    assert code == 2
    assert out == []
    assert len(err) == 1 and "table monitor_runs" in err[0] and "report_path" in err[0], err
    assert versions(ws) == before


def test_migrate_is_a_command_of_driftline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--help"]) == 0
    assert "--dry-run" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "migrate" in capsys.readouterr().out
    assert main(["migrate"]) == 2  # --workspace is required
    assert "--workspace" in capsys.readouterr().err


# --------------------------------------------------------------------------- contract 2 → 3


def contract2_workspace(spark: Any, dest: Path) -> Path:
    """A workspace whose retrain_decisions table has contract 2's columns (written by delta-rs, as the previous
    release's table: the current contract minus the episode columns), two rows."""
    import datetime as dt

    import pyarrow as pa

    (dest / "tables").mkdir(parents=True)
    columns = [col for col in c.RETRAIN_DECISIONS.columns if col.name not in EPISODE]
    arrow = {"string": pa.string(), "date": pa.date32(), "boolean": pa.bool_(), "int": pa.int32(),
             "bigint": pa.int64(), "double": pa.float64(), "timestamp": pa.timestamp("us", tz="UTC")}
    schema = pa.schema([pa.field(col.name, arrow[col.type.simpleString()], col.nullable) for col in columns])
    values = {"model": "churn", "fired": False, "status": "no_trigger", "reasons": "no rule triggered",
              "rules_triggered": "", "windows_considered": 3, "windows_drifted": 0, "retrains_in_period": 0,
              "inputs_json": "{}", "rules_json": "[]", "train_status": "not_run", "run_id": "retrain-old",
              "started_at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)}
    records = [{**{col.name: None for col in columns}, **values, "decision_date": d}
               for d in (dt.date(2026, 1, 27), dt.date(2026, 1, 28))]
    write_deltalake(str(dest / "tables" / "retrain_decisions"), pa.Table.from_pylist(records, schema),
                    partition_by=["model", "decision_date"])
    return dest


def test_a_contract2_workspace_is_refused_by_the_retrain_job_then_migrated_to_3(
        spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from driftline.cli.runner import run_job

    ws = contract2_workspace(spark, tmp_path / "ws")
    path = ws / "tables" / "retrain_decisions"
    old = rows(path)
    # the retrain job refuses before reading or writing anything: run driftline migrate
    assert run_job("retrain", ["--model", "churn", "--conf-dir", str(CONF), "--workspace", str(ws),
                               "--date", "2026-01-29", "--log-level", "WARNING"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("driftline retrain: error: table retrain_decisions: written by an earlier driftline (table "
                       "contract 2), expected contract 4: run driftline migrate --workspace <workspace> first "
                       "(docs/migrate.md)"), err
    assert DeltaTable(str(path)).version() == 0

    code, out, err = run(ws, "--dry-run")
    assert (code, out) == (0, ["retrain_decisions: would migrate contract 2 → 4 (add the episode columns (metadata "
                               "only); version 0, 2 rows)"]), err
    code, out, err = run(ws)
    assert (code, out) == (0, ["retrain_decisions: migrated contract 2 → 4 (version 0 → 1, 2 rows)"]), err
    table = DeltaTable(str(path))
    fields = {f.name: f for f in table.schema().fields}
    assert set(c.RETRAIN_DECISIONS.names) == set(fields) and all(fields[n].nullable for n in EPISODE)
    assert [f.name for f in table.schema().fields][-len(EPISODE):] == EPISODE     # metadata only: appended last
    assert canonical(rows(path), list(fields)) == canonical([{**r, **dict.fromkeys(EPISODE)} for r in old],
                                                            list(fields))
    assert sorted(table.file_uris()) == sorted(DeltaTable(str(path), version=0).file_uris())   # none rewritten
    last = open_store(spark, StorageConfig(), ws).history("retrain_decisions")[0]
    assert (last["job"], last["idempotency_key"]) == ("migrate", "driftline/migrate/retrain_decisions/contract-4")
    assert run(ws) == (0, ["retrain_decisions: current"], [])


def test_a_write_to_a_contract2_table_says_run_driftline_migrate(spark: Any, tmp_path: Path) -> None:
    from driftline.errors import InputContractError
    from driftline.tables import CommitInfo

    ws = contract2_workspace(spark, tmp_path / "ws")
    store = open_store(spark, StorageConfig(), ws)
    df = spark.createDataFrame([], c.RETRAIN_DECISIONS.schema())
    commit = CommitInfo(job="retrain", run_id="r", key="churn@2026-01-29", code_version="t", config_hash="t")
    with pytest.raises(InputContractError, match="table contract 2.*run driftline migrate"):
        store.replace_partitions("retrain_decisions", df, ["model", "decision_date"], commit,
                                 partitions=[{"model": "churn", "decision_date": "2026-01-29"}])


# --------------------------------------------------------------------------- contract 3 → 4


def test_a_contract3_predictions_table_gains_published_metadata_only_and_is_written_after(
        spark: Any, tmp_path: Path) -> None:
    """A predictions table of contract 3 (the current contract without `published`, written by delta-rs as the
    previous release's): a score write is refused until migrate adds the column (null on the old rows) in one
    metadata-only commit; then the write goes through."""
    import datetime as dt

    import pyarrow as pa
    from pyspark.sql import types as T

    from driftline.errors import InputContractError
    from driftline.tables import CommitInfo

    ws = tmp_path / "ws"
    (ws / "tables").mkdir(parents=True)
    path = ws / "tables" / "churn__predictions"
    arrow = {"string": pa.string(), "date": pa.date32(), "int": pa.int32(), "double": pa.float64(),
             "timestamp": pa.timestamp("us", tz="UTC")}
    columns = [col for col in c.PREDICTIONS.columns if col.name != "published"]
    schema = pa.schema([pa.field("customer_id", pa.string()),
                        *[pa.field(col.name, arrow[col.type.simpleString()], col.nullable) for col in columns]])
    day = dt.date(2026, 1, 27)
    records = [{"customer_id": f"c{i}", "score": i / 10, "predicted_label": int(i >= 5), "model": "churn",
                "model_version": "1", "role": "champion", "run_id": "score-old", "code_version": "0.3",
                "config_hash": "h", "scored_at": dt.datetime(2026, 1, 28, tzinfo=dt.UTC), "score_date": day}
               for i in range(10)]
    write_deltalake(str(path), pa.Table.from_pylist(records, schema), partition_by=["score_date"])
    store = open_store(spark, StorageConfig(), ws)
    commit = CommitInfo(job="score", run_id="r", key="2026-01-28", code_version="t", config_hash="t")
    new = spark.createDataFrame(
        [("c0", 0.5, 1, "churn", "2", "champion", "r", "t", "t", dt.datetime(2026, 1, 29), dt.date(2026, 1, 28),
          True)],
        c.PREDICTIONS.schema(leading=[T.StructField("customer_id", T.StringType())]))
    with pytest.raises(InputContractError, match="table contract 3.*expected contract 4: run driftline migrate"):
        store.replace_partitions("churn__predictions", new, ["score_date"], commit,
                                 partitions=[{"score_date": dt.date(2026, 1, 28)}])
    assert DeltaTable(str(path)).version() == 0

    code, out, err = run(ws)
    assert (code, out) == (0, ["churn__predictions: migrated contract 3 → 4 (version 0 → 1, 10 rows)"]), err
    table = DeltaTable(str(path))
    assert [f.name for f in table.schema().fields][-1] == "published"                # metadata only: appended last
    assert sorted(table.file_uris()) == sorted(DeltaTable(str(path), version=0).file_uris())   # none rewritten
    assert {r["published"] for r in rows(path)} == {None}
    store.replace_partitions("churn__predictions", new, ["score_date"], commit,
                             partitions=[{"score_date": dt.date(2026, 1, 28)}])
    got = {(r["customer_id"], r["score_date"]): r["published"] for r in rows(path)}
    assert got[("c0", dt.date(2026, 1, 28))] is True and got[("c0", day)] is None and len(got) == 11
