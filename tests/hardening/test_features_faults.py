"""Faults and bad input through the prepare_features job (R2, R3, R4, R5, R9, R10, R21, R22, R24).

The workspace, source tables and the expected feature rows are the prepare_features job tests'
(`tests.jobs.test_prepare_features`): model ``shop``, two dates D1 = 2026-03-09 and D2 = 2026-03-10,
whose input days straddle the US daylight-saving switch (2026-03-08). In-process cases go through
`run_job` (what ``driftline prepare_features`` and ``jobs/prepare_features.py`` run); crash,
concurrency and time-zone cases start real ``python`` processes that run the same entry point.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import functions as F
from pyspark.sql import types as T

from driftline.tables import open_store
from driftline.tables.spec import StorageConfig
from tests.conftest import TEST_BACKEND
from tests.jobs.test_prepare_features import (
    CUSTOMERS,
    CUSTOMERS_SCHEMA,
    D1,
    D2,
    EVENTS,
    EVENTS_SCHEMA,
    MODEL,
    Env,
    expected,
)

ROOT = Path(__file__).resolve().parents[2]
U = dt.UTC
FEATURES = "shop__features"


@pytest.fixture
def env(spark, tmp_path: Path) -> Env:
    e = Env(spark, tmp_path)
    e.sources()
    return e


def err_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("driftline prepare_features: error:")]


def snapshot(env: Env, *tables: str) -> dict[str, tuple[int, list[tuple]]]:
    """Version and sorted rows of each table (absent tables: version -1)."""
    out = {}
    for t in tables:
        if env.store.exists(t):
            out[t] = (env.store.version(t), sorted(map(repr, env.read(t).collect())))
        else:
            out[t] = (-1, [])
    return out


# --------------------------------------------------------------------------- R2


@pytest.mark.both_backends   # scripts/test.sh runs it on delta-spark too
def test_r2_backfill_of_an_older_date_after_a_newer_one_is_written(env: Env) -> None:
    assert env.run("--date", str(D2)) == 0
    assert env.run("--date", str(D1)) == 0                              # older date after the newer one
    assert_df_equality(env.features(), expected(env.spark), ignore_row_order=True, ignore_nullable=True)
    keys = [h["idempotency_key"] for h in env.store.history(FEATURES)]
    assert keys[:2] == [f"driftline/prepare_features/{FEATURES}/{D1}", f"driftline/prepare_features/{FEATURES}/{D2}"]
    assert [h["txn_version"] for h in env.store.history(FEATURES)[:2]] == [1, 1]   # per key, never a counter


# --------------------------------------------------------------------------- R9 / R10 on the source tables


@pytest.mark.parametrize(("change", "message"), [
    ("dropped", "amount"),
    ("renamed", "amount"),
    ("retyped", "amount: expected a numeric type for sum (spend_7d), found string"),
])
def test_r9_dropped_renamed_or_retyped_source_column_fails_before_any_write(
        env: Env, capsys: pytest.CaptureFixture[str], change: str, message: str) -> None:
    assert env.run("--date", str(D1)) == 0
    before = snapshot(env, FEATURES, "quality_results", "quarantine")
    fields = list(EVENTS_SCHEMA.fields)
    rows = [list(r) for r in EVENTS]
    if change == "dropped":
        fields.pop(2)
        rows = [r[:2] + r[3:] for r in rows]
    elif change == "renamed":
        fields[2] = T.StructField("amount_eur", T.DoubleType())
    else:
        fields[2] = T.StructField("amount", T.StringType())
        rows = [r[:2] + [None if r[2] is None else str(r[2])] + r[3:] for r in rows]
    env.table("shop_events_v2", [tuple(r) for r in rows], T.StructType(fields), key=change)
    env.model({**MODEL, "sources": {**MODEL["sources"], "events": {**MODEL["sources"]["events"],
                                                                   "table": "shop_events_v2"}}})
    capsys.readouterr()
    assert env.run("--date", str(D2)) == 3
    [line] = err_lines(capsys.readouterr().err)
    assert message in line and "expected" in line and "found" in line, line
    assert snapshot(env, FEATURES, "quality_results", "quarantine") == before


def test_r10_reordered_and_extra_source_columns_give_the_same_features(env: Env) -> None:
    order = ["channel", "amount", "customer_id", "note", "event_ts"]
    schema = T.StructType([T.StructField("note", T.StringType()) if c == "note" else EVENTS_SCHEMA[c] for c in order])
    rows = [(ch, amt, key, "extra column", ts) for key, ts, amt, ch in EVENTS]
    env.table("shop_events_v2", rows, schema, key="reordered")
    env.model({**MODEL, "sources": {**MODEL["sources"], "events": {**MODEL["sources"]["events"],
                                                                   "table": "shop_events_v2"}}})
    assert env.run("--from", str(D1), "--to", str(D2)) == 0
    assert_df_equality(env.features(), expected(env.spark), ignore_row_order=True, ignore_nullable=True)
    assert "note" not in env.read(FEATURES).columns                    # extras never reach the features


# --------------------------------------------------------------------------- R21: config values reach Spark as literals


INJECTION = "web' OR '1'='1"


def test_r21_string_values_from_config_and_data_are_literals(env: Env) -> None:
    """A flag value, allowed values and the data itself holding SQL text: compared as plain strings."""
    key = "a'); DROP TABLE shop__features; --"
    events = [(key if k == "a" else k, ts, amt, ch) for k, ts, amt, ch in EVENTS]
    events.append(("b", dt.datetime(2026, 3, 8, 7, 0, tzinfo=U), 1.0, INJECTION))    # a channel value like SQL
    env.table("shop_events", events, EVENTS_SCHEMA, key="injected")
    env.table("shop_customers", [(key if k == "a" else k, *rest) for k, *rest in CUSTOMERS], CUSTOMERS_SCHEMA,
              key="injected")
    model = {**MODEL, "features": [
        *MODEL["features"],
        {"name": "is_web_or_true", "kind": "flag", "column": "last_channel", "op": "eq", "value": INJECTION},
        {"name": "is_web", "kind": "flag", "column": "last_channel", "op": "eq", "value": "web"},
    ], "quality": {"checks": [
        {"kind": "allowed_values", "target": "events", "column": "channel", "values": ["web", "app", "x' OR '1'='1"],
         "severity": "warn"},
    ]}}
    env.model(model)
    assert env.run("--date", str(D1)) == 0
    got = {r["customer_id"]: r for r in env.read(FEATURES).collect()}
    assert sorted(got) == sorted([key, "b"])                            # the quoted key is just a key
    assert got[key]["last_channel"] == "web" and got[key]["is_web"] is True
    assert got[key]["is_web_or_true"] is False                          # never "OR '1'='1'"
    assert got["b"]["last_channel"] == INJECTION and got["b"]["is_web_or_true"] is True
    assert got["b"]["is_web"] is False
    # allowed_values with a quote in a value: 'store' and the injected channel are not allowed, nothing else
    q = env.read("quarantine").select("reason", "entity_key").collect()
    assert sorted((r["entity_key"], r["reason"]) for r in q) == sorted([
        ("b", f"channel = '{INJECTION}' not in ['web', 'app', \"x' OR '1'='1\"]"),
        ("b", "channel = 'store' not in ['web', 'app', \"x' OR '1'='1\"]"),
    ])
    # a rerun through --set with the same kind of value: still a literal, the tables keep one row per key
    assert env.run("--date", str(D1), "--set", "features.5.value=x' OR 1=1 --") == 0
    assert env.read(FEATURES).filter(F.col("is_web_or_true")).count() == 0
    assert env.read(FEATURES).count() == 2


# --------------------------------------------------------------------------- R22: disk full (a real tmpfs)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.both_backends   # scripts/test.sh runs it on delta-spark too
@pytest.mark.slow
def test_r22_disk_full_mid_write_fails_keeps_the_version_and_a_rerun_succeeds(
        env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mnt = tmp_path / "small-disk"
    if not _mount_tmpfs(mnt, "4m"):
        pytest.skip("cannot mount a tmpfs here (needs root); the injected-error case is "
                    "tests/unit/tables/test_embedded.py::test_r22_storage_error_during_write")
    try:
        location = mnt / FEATURES
        store = open_store(env.spark, StorageConfig(tables={FEATURES: str(location)}), env.workspace)
        sets = ("--set", f"storage.tables.{FEATURES}={location}")
        assert env.run("--date", str(D1), *sets) == 0
        before = (store.version(FEATURES), sorted(map(repr, store.read(FEATURES).collect())))
        assert before[0] == 0 and len(before[1]) == 2
        # fill the disk: nothing left for the Parquet files of the next partition
        filler = mnt / "filler"
        with open(filler, "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        capsys.readouterr()
        assert env.run("--date", str(D2), *sets) == 1
        [line] = err_lines(capsys.readouterr().err)
        assert line.startswith(f"driftline prepare_features: error: table {FEATURES}: write failed, table unchanged:")
        assert "No space left on device" in line, line                          # the JVM error's root cause
        assert (store.version(FEATURES), sorted(map(repr, store.read(FEATURES).collect()))) == before
        committed = {Path(u).name for u in DeltaTable(str(location)).file_uris()}
        left = {p.name for p in location.rglob("*.parquet")}
        if TEST_BACKEND == "embedded":
            assert left == committed                                             # the stage was dropped
        else:   # delta-spark leaves the failed tasks' files in the table folder, referenced by no version
            assert committed < left
            removed = store.cleanup_orphans(FEATURES, retention_hours=0)          # ... until the orphan cleanup
            assert {Path(p).name for p in removed} == left - committed
            assert {p.name for p in location.rglob("*.parquet")} == committed
        filler.unlink()                                                          # free the space, rerun
        assert env.run("--date", str(D2), *sets) == 0
        got = store.read(FEATURES)
        assert_df_equality(got.select(*expected(env.spark).columns), expected(env.spark), ignore_row_order=True,
                           ignore_nullable=True)
        assert store.version(FEATURES) == 1
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# --------------------------------------------------------------------------- real processes: R3, R4, R5, R24


CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from driftline.tables.embedded.write import EmbeddedWrite
    from driftline.tables.native_write import NativeWrite
    from driftline.cli.runner import run_job

    mode, barrier, parties, me = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    state = {"first": True}

    def at_commit(loc):
        # the rows are staged (embedded: its Parquet files are written), the Delta log entry not yet
        if mode == "plain" and loc.name == "shop__features":
            from pyspark.sql import SparkSession
            zone = SparkSession.getActiveSession().conf.get("spark.sql.session.timeZone")
            (barrier / f"seen-{me}").write_text(f"{zone} {'/'.join(time.tzname)}")
        if mode == "hang" and loc.name == "shop__features":
            (barrier / f"ready-{me}").touch()
            time.sleep(600)                          # the parent kills the process group here
        if mode == "barrier" and state["first"]:     # the run's first commit: all runs read the same snapshot
            state["first"] = False
            (barrier / f"ready-{me}").touch()
            deadline = time.time() + 240
            while len(list(barrier.glob("ready-*"))) < parties and time.time() < deadline:
                time.sleep(0.05)

    for cls in (EmbeddedWrite, NativeWrite):        # whichever backend DRIFTLINE_STORAGE_BACKEND picked
        def commit(self, targets, _original=cls.commit):
            at_commit(self.loc)
            return _original(self, targets)
        cls.commit = commit
    sys.exit(run_job("prepare_features", sys.argv[5:]))
""")


def start(env: Env, mode: str, barrier: Path, parties: int, me: str, *args: str,
          extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                 **(extra_env or {})}
    argv = ["--model", "shop", "--conf-dir", str(env.conf), "--workspace", str(env.workspace),
            "--set", "runtime.master=local[1]", "--set", "runtime.shuffle_partitions=1",
            "--set", "logging.level=INFO", *args]
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, str(barrier), str(parties), me, *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env,
                            start_new_session=True, cwd=env.workspace.parent)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


@pytest.mark.both_backends   # scripts/test.sh runs it on delta-spark too
@pytest.mark.slow
def test_r3_process_killed_between_files_and_commit_then_rerun(env: Env, tmp_path: Path) -> None:
    assert env.run("--from", str(D1), "--to", str(D2)) == 0
    before = snapshot(env, FEATURES)
    files_before = {p for p in Path(env.store.location(FEATURES)).rglob("*.parquet")}
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    proc = start(env, "hang", barrier, 1, "killed", "--date", str(D2))
    deadline = time.time() + 240
    while not (barrier / "ready-killed").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert (barrier / "ready-killed").exists(), proc.communicate()[1][-3000:]
    os.killpg(proc.pid, signal.SIGKILL)                                   # the process and its JVM
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # readers see the previous version; the killed run left Parquet files no version refers to
    assert snapshot(env, FEATURES) == before
    orphans = {p for p in Path(env.store.location(FEATURES)).rglob("*.parquet")} - files_before
    # the embedded backend stages Parquet files before its commit; delta-spark writes and commits in one save
    assert bool(orphans) == (TEST_BACKEND == "embedded"), orphans
    # rerun: succeeds, same rows, no double rows
    assert env.run("--date", str(D2)) == 0
    assert_df_equality(env.features(), expected(env.spark), ignore_row_order=True, ignore_nullable=True)
    assert env.read(FEATURES).groupBy("customer_id", "as_of_date").count().filter("count > 1").count() == 0
    # the orphans are cleanable: listed by a dry run, removed, and the table still reads the same
    listed = env.store.cleanup_orphans(FEATURES, retention_hours=0, dry_run=True)
    assert {Path(p).name for p in listed} >= {p.name for p in orphans}
    env.store.cleanup_orphans(FEATURES, retention_hours=0)
    assert not any(p.exists() for p in orphans)
    assert_df_equality(env.features(), expected(env.spark), ignore_row_order=True, ignore_nullable=True)


@pytest.mark.both_backends   # scripts/test.sh runs it on delta-spark too
@pytest.mark.slow
def test_r4_two_processes_for_the_same_date_exactly_one_commits_and_r5_other_dates_both_do(
        env: Env, tmp_path: Path) -> None:
    assert env.run("--date", str(D1)) == 0
    # R4: both runs of D2 reach the features commit on the same snapshot before either commits
    barrier = tmp_path / "same"
    barrier.mkdir()
    procs = [start(env, "barrier", barrier, 2, me, "--date", str(D2)) for me in ("A", "B")]
    results = [finish(p) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], [e[-3000:] for _, e in results]
    loser = next(err for code, err in results if code == 1)
    [line] = err_lines(loser)
    assert "another run committed driftline/prepare_features/" in line and f"/{D2}" in line, line
    rows = env.read(FEATURES)
    assert rows.groupBy("customer_id", "as_of_date").count().filter("count > 1").count() == 0
    assert rows.filter(F.col("as_of_date") == D2).select("run_id").distinct().count() == 1
    assert_df_equality(env.features(), expected(env.spark), ignore_row_order=True, ignore_nullable=True)
    head = env.store.history(FEATURES)[0]
    assert head["idempotency_key"] == f"driftline/prepare_features/{FEATURES}/{D2}" and head["txn_version"] == 1

    # R5: D1 and D2 again, at once, in two processes: both commit, nothing lost or doubled
    version = env.store.version(FEATURES)
    barrier = tmp_path / "other"
    barrier.mkdir()
    procs = [start(env, "barrier", barrier, 2, me, "--date", str(d)) for me, d in (("A", D1), ("B", D2))]
    results = [finish(p) for p in procs]
    assert [code for code, _ in results] == [0, 0], [e[-3000:] for _, e in results]
    assert env.store.version(FEATURES) == version + 2
    assert_df_equality(env.features(), expected(env.spark), ignore_row_order=True, ignore_nullable=True)
    per_date = env.read(FEATURES).groupBy("as_of_date").agg(F.countDistinct("run_id").alias("n")).collect()
    assert sorted((r["as_of_date"], r["n"]) for r in per_date) == [(D1, 1), (D2, 1)]


@pytest.mark.slow
def test_r24_machine_and_session_time_zone_not_utc_on_a_dst_day(env: Env, tmp_path: Path) -> None:
    """TZ=America/New_York for the process and its JVM, and the Spark session forced to it by config:
    the D1/D2 windows (input day 2026-03-08, the US DST switch) are still UTC days."""
    extra = [  # events at both sides of UTC midnight and of the local 02:00 → 03:00 jump
        ("a", dt.datetime(2026, 3, 8, 6, 59, 59, tzinfo=U), 1.0, "web"),    # 01:59:59 EST
        ("a", dt.datetime(2026, 3, 8, 7, 0, 0, tzinfo=U), 2.0, "web"),      # 03:00:00 EDT
        ("b", dt.datetime(2026, 3, 9, 3, 0, 0, tzinfo=U), 4.0, "app"),      # 03-08 23:00 EDT: D2's input day
    ]
    env.table("shop_events", [*EVENTS, *extra], EVENTS_SCHEMA, key="dst")
    assert env.run("--from", str(D1), "--to", str(D2)) == 0              # the UTC oracle, this process
    utc = env.features()
    want = expected(env.spark, [
        ("a", D1, 3, 13.0, "web", "gold", True), ("b", D1, 1, 0.0, "store", "basic", True),
        ("a", D2, 4, 43.0, "app", "gold", True), ("b", D2, 3, 6.0, "web", "gold", True),
    ])
    assert_df_equality(utc, want, ignore_row_order=True, ignore_nullable=True)
    base = yaml.safe_load((env.conf / "base.yaml").read_text())
    base["runtime"]["spark_conf"] = {"spark.sql.session.timeZone": "America/New_York"}
    (env.conf / "base.yaml").write_text(yaml.safe_dump(base))
    tz = {"TZ": "America/New_York", "JAVA_TOOL_OPTIONS": "-Duser.timezone=America/New_York"}
    barrier = tmp_path / "tz"
    barrier.mkdir()
    proc = start(env, "plain", barrier, 1, "tz", "--from", str(D1), "--to", str(D2), "--force", extra_env=tz)
    code, err = finish(proc)
    assert code == 0, err[-3000:]
    zone, local = (barrier / "seen-tz").read_text().split()
    assert (zone, local) == ("America/New_York", "EST/EDT")               # the child really ran in New York time
    assert_df_equality(env.features(), want, ignore_row_order=True, ignore_nullable=True)
    res = env.read("quality_results").filter("check = 'input_present_events'").select("as_of_date", "observed")
    assert sorted(map(tuple, res.collect())) == [(D1, 4.0), (D2, 3.0)]    # events per UTC input day
