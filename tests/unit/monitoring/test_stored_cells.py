"""Value cells, tail buckets and the membership filter survive the round trip through ``reference_profiles``
(a real Delta table): the monitor rebuilds the same bins and profile, and its window profile counts the
never-seen values that numpy finds on the raw rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

from driftline.monitoring.drift import dataset_drift, drift_by_column
from driftline.monitoring.spec import DriftSpec
from driftline.profiling.bins import fit_reference_bins
from driftline.profiling.profile import profile, profile_rows
from driftline.profiling.stored import profile_from_rows
from driftline.registry.profiles import ProfileProvenance, read_reference_rows, reference_bins, write_reference_rows
from driftline.tables import CommitInfo, open_store
from driftline.tables.spec import StorageConfig

SCHEMA = StructType([StructField("flag", BooleanType()), StructField("code", DoubleType()),
                     StructField("city", StringType())])


def rows(rng: np.random.Generator, n: int, flag_p: float, new_cities: float) -> list[tuple]:
    out = []
    for _ in range(n):
        city = f"new{rng.integers(0, 10**6)}" if rng.random() < new_cities else f"city{rng.zipf(1.5) % 3000}"
        out.append((None if rng.random() < 0.02 else bool(rng.random() < flag_p),
                    float(rng.integers(0, 7)), city))
    return out


@pytest.fixture(scope="module")
def stored(spark, tmp_path_factory):
    rng = np.random.default_rng(21)
    ref = spark.createDataFrame(rows(rng, 4000, 0.2, 0.0), SCHEMA)
    bins = fit_reference_bins(ref, ["flag", "code"], ["city"], bins=10, top_k=20)
    prof = profile(ref, ["flag", "code", "city"], bins)
    store = open_store(spark, StorageConfig(backend="embedded"), tmp_path_factory.mktemp("ws"))
    who = ProfileProvenance("m", "1", "mlflow-run", "run", "hash", "t", dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    write_reference_rows(spark, store, profile_rows(prof, bins), who,
                         CommitInfo(job="test", run_id="run", key="m@1", code_version="t", config_hash="t"))
    return ref, bins, prof, store


def test_bins_and_profile_read_back_equal(stored) -> None:
    _, bins, prof, store = stored
    assert bins["flag"].values == (0.0, 1.0) and bins["code"].values == tuple(float(v) for v in range(7))
    city = bins["city"]
    assert city.hashed and city.membership.fpr <= 0.01 and 0 < city.expected_unseen < 1
    assert reference_bins(store, "m", "1") == bins
    back, _ = profile_from_rows([r.asDict() for r in read_reference_rows(store, "m", "1").collect()])
    assert back.columns["city"] == prof.columns["city"] and back.columns["flag"] == prof.columns["flag"]


def test_window_profiled_with_the_stored_bins_counts_new_values(spark, stored) -> None:
    ref, _, _, store = stored
    bins = reference_bins(store, "m", "1")
    back, _ = profile_from_rows([r.asDict() for r in read_reference_rows(store, "m", "1").collect()])
    rng = np.random.default_rng(22)
    window = rows(rng, 3000, 0.4, 0.25)
    cur = profile(spark.createDataFrame(window, SCHEMA), ["flag", "code", "city"], bins, quantiles=(),
                  distinct=False)
    seen = {r["city"] for r in ref.select("city").collect()}
    new = np.mean([c not in seen for _, _, c in window])
    result = drift_by_column(dataset_drift(back, cur, DriftSpec()))
    city = result["city"]
    assert new * (1 - 3 * bins["city"].membership.fpr) <= city.measures.unseen_share <= new
    assert city.unseen_alert and city.drifted                      # 25 % new against an expected share below 15 %
    assert result["flag"].drifted and result["flag"].method == "js"   # true share 20 % → 40 %
    assert not result["code"].drifted and result["code"].measures.unseen_share == 0.0
