"""Per-date profiles folded by the score job and merged by the monitor (``<model>__daily_profiles``).

Workspace: the train tests' ``env``; ``jt`` v1 trained, 02-23..03-01 scored. The oracle of a stored profile is
the monitor's own scan (`core_accumulators` over the predictions joined to their features, the path every run
took before per-date profiles existed); the oracle of a monitor run on stored profiles is the same run with the
profiles removed, which scans every date.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyspark.sql import functions as F

from driftline.cli.runner import run_job
from driftline.monitoring.daily import profiled_columns
from driftline.monitoring.inputs import Scope, champion_predictions, load_reference, window_frame
from driftline.profiling.bins import bins_fingerprint
from driftline.profiling.fold import core_accumulators
from driftline.profiling.sample import PRIORITY, bottom_rows
from driftline.tables import CommitInfo
from driftline.tables.contracts import DAILY_PROFILES
from driftline.vocabulary import CHAMPION
from tests.jobs.test_score import registry_of, store_of

pytestmark = [pytest.mark.slow]

KEY = "customer_id"
DATES = [dt.date(2026, 2, 23) + dt.timedelta(days=i) for i in range(7)]
END = DATES[-1]
WINDOW = ("--set", "monitoring.window_days=3")
VOLATILE = ("run_id", "created_at")


def conf(env) -> list[str]:
    return ["--model", "jt", "--conf-dir", str(env["conf"])]


@pytest.fixture(scope="module")
def scored(env):
    assert run_job("train", [*conf(env), "--date", "2026-03-01"]) == 0
    assert registry_of(env, "jt").alias(CHAMPION).version == "1"
    assert run_job("score", [*conf(env), "--from", str(DATES[0]), "--to", str(END)]) == 0
    return env


def profiles(env):
    return store_of(env).read(DAILY_PROFILES.table("jt"))


def scope_of(env) -> Scope:
    return Scope(store_of(env), "jt", KEY, None)


def test_score_writes_one_profile_per_date_of_the_rows_it_scored(scored) -> None:
    env = scored
    store = store_of(env)
    got = {r["score_date"]: r for r in profiles(env).collect()}
    assert sorted(got) == DATES
    preds = store.read("jt__predictions").filter(F.col("role") == CHAMPION)
    counts = {r["score_date"]: (r["run_id"], r["count"])
              for r in preds.groupBy("score_date", "run_id").count().collect()}
    ref = load_reference(scope_of(env), "1")
    columns, bins = profiled_columns(ref, ref.cells)
    for d, r in got.items():
        assert (r["role"], r["model_version"], r["reference_id"]) == (CHAMPION, "1", "jt/1")
        assert (r["run_id"], r["rows"]) == counts[d]
        assert r["bins_fingerprint"] == bins_fingerprint(columns, bins)
        assert list(r["profiled_columns"]) == columns
        # the oracle: the monitor's scan of the date (predictions joined to their features), folded by Spark
        numeric = [c for c in ref.profile.columns if ref.bins[c].kind == "numeric"]
        frame = window_frame(scope_of(env), champion_predictions(scope_of(env), [d]), [d], columns, numeric)
        want = core_accumulators(frame, None, columns, bins)[None]
        np.testing.assert_array_equal(np.asarray(r["additive"])[:1], want.add[:1])
        np.testing.assert_allclose(r["additive"], want.add, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(r["finite_min"], want.lo)
        np.testing.assert_array_equal(r["finite_max"], want.hi)
        np.testing.assert_allclose(r["moments"], want.mom.ravel(), rtol=1e-12, atol=1e-12)
        # the sample: every row of a small date (40 rows < evidently_rows), features as the model saw them
        sample = bottom_rows([r["sample"]], 10_000)
        assert r["sample_rows"] == sample.num_rows == r["rows"]
        assert set(sample.column_names) == {*ref.profile.columns, PRIORITY}
        pdf = frame.toPandas().sort_values(["x1", "score"]).reset_index(drop=True)
        mine = sample.to_pandas().sort_values(["x1", "score"]).reset_index(drop=True)
        np.testing.assert_allclose(mine["score"], pdf["score"], rtol=0, atol=0)


def monitor_rows(env, date: dt.date) -> dict[tuple, dict]:
    rows = (store_of(env).read("monitor_metrics").filter((F.col("model") == "jt") & (F.col("run_date") == date))
            .drop(*VOLATILE).collect())
    return {(r["baseline"], r["slice"], r["column"], r["metric"], r["window_end"]): r.asDict() for r in rows}


def drop_profiles(env, dates) -> None:
    store = store_of(env)
    empty = store.read(DAILY_PROFILES.table("jt")).limit(0)
    commit = CommitInfo(job="test", run_id="drop", key="drop", code_version="t", config_hash="t")
    store.replace_partitions(DAILY_PROFILES.table("jt"), empty, ["score_date"], commit,
                             partitions=[{"score_date": d} for d in dates])


def assert_same_metrics(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for k, w in want.items():
        g = got[k]
        for field in w:
            if isinstance(w[field], float) and isinstance(g[field], float):
                assert g[field] == pytest.approx(w[field], rel=1e-12, abs=1e-12), (k, field)
            else:
                assert g[field] == w[field], (k, field)


def test_monitor_on_stored_profiles_equals_the_scan_of_the_rows(scored, capsys) -> None:
    env = scored
    capsys.readouterr()
    assert run_job("monitor", [*conf(env), "--date", str(END), *WINDOW]) == 0
    err = capsys.readouterr().err
    assert "per-date profiles merged" in err and "profiling those dates from their rows" not in err   # no scan
    assert "counted from their rows" not in err      # the predictions' counts and runs come from the Delta log
    stored = monitor_rows(env, END)
    assert any(k[3] == "psi" for k in stored)

    drop_profiles(env, [END])   # one date of the current window without a profile: merged with its scan
    assert run_job("monitor", [*conf(env), "--date", str(END), *WINDOW]) == 0
    assert f"no stored profile for {END}; profiling those dates from their rows" in capsys.readouterr().err
    assert_same_metrics(monitor_rows(env, END), stored)

    drop_profiles(env, DATES)   # no profile at all: today's scan of both windows
    assert run_job("monitor", [*conf(env), "--date", str(END), *WINDOW]) == 0
    assert_same_metrics(monitor_rows(env, END), stored)


def test_a_rescore_replaces_the_profiles_and_a_stale_one_is_not_used(scored, capsys) -> None:
    env = scored
    d = DATES[2]
    assert run_job("score", [*conf(env), "--date", str(d)]) == 0
    first = {r["score_date"]: r["run_id"] for r in profiles(env).collect()}
    assert run_job("score", [*conf(env), "--date", str(d)]) == 0
    rows = profiles(env).filter(F.col("score_date") == d).collect()
    assert len(rows) == 1 and rows[0]["run_id"] != first[d]
    preds = store_of(env).read("jt__predictions").filter((F.col("score_date") == d) & (F.col("role") == CHAMPION))
    assert {r["run_id"] for r in preds.select("run_id").distinct().collect()} == {rows[0]["run_id"]}

    # a profile that no longer belongs to the date's predictions (a score run stopped between the two commits)
    store = store_of(env)
    stale = store.read(DAILY_PROFILES.table("jt")).filter(F.col("score_date") == d).withColumn("run_id",
                                                                                              F.lit("elsewhere"))
    commit = CommitInfo(job="test", run_id="stale", key="stale", code_version="t", config_hash="t")
    store.replace_partitions(DAILY_PROFILES.table("jt"), stale.localCheckpoint(), ["score_date"], commit,
                             partitions=[{"score_date": d}])
    capsys.readouterr()
    assert run_job("monitor", [*conf(env), "--date", str(d), *WINDOW]) == 0
    assert f"a profile of another score run for {d}; profiling those dates from their rows" in capsys.readouterr().err
