"""The profile pass's two folds — on the JVM (driftline.jvm.ProfileFold) and Arrow + numpy — give the same rows.

test_profile.py checks the default fold (the JVM one wherever a JDK compiled it) against numpy and pandas;
here the two folds meet on data built to hit every branch: SQL nulls, NaN, ±inf, values exactly on edges and
beyond them, -0.0, a constant and an all-null column, categories absent from the top-K, several partitions,
groups with a null key. Counts must be equal, floating sums equal up to summation order.
"""

from __future__ import annotations

import datetime as dt
import math
import zipfile

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DoubleType, IntegerType, StringType, StructField, StructType

from driftline.cli.jar import jar_command
from driftline.jvm import PROFILE_FOLD, JarBuildError, build_jar, jar_path, java_class, session_jar
from driftline.profiling.bins import CategoricalBins, NumericBins, ProfileError, value_edges
from driftline.profiling.fold import core_pass
from driftline.profiling.membership import build_membership
from driftline.profiling.profile import profile_by, profile_rows

COLUMNS = ["x", "ints", "const", "empty", "c", "u", "flag"]
SEEN = 300   # "u0" … "u299" are the reference's categories of "u"; "u300" … "u499" are new
BINS = {
    "x": NumericBins("x", (-1.0, 0.0, 0.5, 2.0)),
    "ints": NumericBins("ints", (0.0, 1.0, 2.0, 3.0)),
    "const": NumericBins("const", (3.5, 3.5)),
    "empty": NumericBins("empty", ()),
    # the JVM fold finds a category by its first 8 bytes and length: "category_gamma" shares both with
    # "category_alpha" and must not count as it
    "c": CategoricalBins("c", ("b", "a", "é", "", "category_alpha")),
    # value cells of a 0/1 flag (0, 0⁺, 1, 1⁺): the two values and the gap between them
    "flag": NumericBins("flag", value_edges([0.0, 1.0])),
}
SCHEMA = StructType([
    StructField("x", DoubleType()), StructField("ints", IntegerType()), StructField("const", DoubleType()),
    StructField("empty", DoubleType()), StructField("c", StringType()), StructField("g", StringType()),
    StructField("i", IntegerType()), StructField("u", StringType()), StructField("flag", BooleanType()),
])


@pytest.fixture(scope="module")
def bins(spark):
    """BINS plus "u": a high-cardinality column, top 2 and 8 tail buckets, its membership filter built from
    Spark's xxhash64 of the reference categories."""
    seen = spark.createDataFrame([(f"u{k}",) for k in range(SEEN)], "v string").select(F.xxhash64("v").alias("h"))
    membership = build_membership([r["h"] for r in seen.collect()], 0.01)
    return {**BINS, "u": CategoricalBins("u", ("u1", "u2"), 8, membership, 0.05)}


@pytest.fixture(scope="module")
def frame(spark):
    rng = np.random.default_rng(11)
    special = [None, math.nan, math.inf, -math.inf, -1.0, 0.0, -0.0, 0.5, 2.0, np.nextafter(2.0, 3.0),
               np.nextafter(-1.0, -2.0), 50.0, -50.0, 5e-324]
    rows = []
    for i in range(3000):
        x = (None if special[i] is None else float(special[i])) if i < len(special) else (None if i % 97 == 0 else float(rng.normal(0.4, 1.2)))
        c = [None, "a", "b", "é", "", "zz", "a b", "category_alpha", "category_gamma"][int(rng.integers(0, 9))]
        g = None if i % 11 == 0 else ["north", "south", "e\u0301ast"][i % 3]
        u = None if i % 17 == 0 else f"u{int(rng.integers(0, 500))}"
        flag = None if i % 19 == 0 else bool(rng.random() < 0.3)
        rows.append((x, int(rng.integers(-1, 5)) if i % 13 else None, 3.5, None, c, g, i % 4, u, flag))
    return spark.createDataFrame(rows, SCHEMA).repartition(4)


def jvm_available(spark) -> bool:
    return java_class(spark, PROFILE_FOLD) is not None


def assert_same_rows(jvm: dict, arrow: dict) -> None:
    assert set(jvm) == set(arrow)
    for key in arrow:
        a, b = jvm[key], arrow[key]
        assert list(a) == list(b)
        for name in b:
            if b[name] is not None and (name.endswith(("_mean", "_std")) or "_d" in name):   # summation order
                assert a[name] == pytest.approx(b[name], rel=1e-12, abs=1e-300), (key, name)
            else:
                assert a[name] == b[name], (key, name)


def test_the_jvm_fold_is_loaded_where_a_jdk_can_compile_it(spark) -> None:
    from driftline.jvm import _javac

    if _javac() is None:
        pytest.skip("no javac on this machine: profiles use the Arrow fold (documented fallback)")
    assert jvm_available(spark), "build_spark should have compiled the JVM fold and put it on spark.jars"


@pytest.mark.parametrize("by", [None, "g", "i"])
def test_jvm_and_arrow_folds_give_the_same_rows(spark, frame, bins, by) -> None:
    if not jvm_available(spark):
        pytest.skip("the JVM fold is not on the classpath (no JDK)")
    jvm = core_pass(frame, by, COLUMNS, bins, engine="jvm")
    arrow = core_pass(frame, by, COLUMNS, bins, engine="arrow")
    assert_same_rows(jvm, arrow)
    total = sum(r["rows"] for r in jvm.values())
    assert total == 3000
    if by == "g":
        assert set(jvm) == {None, "north", "south", "e\u0301ast"}
    whole = jvm[None] if by is None else None
    if whole is not None:   # a few values the branches hinge on, against plain Python
        xs = [r["x"] for r in frame.collect()]
        finite = np.array([v for v in xs if v is not None and math.isfinite(v)])
        assert whole["c0_nulls"] == sum(v is None for v in xs)
        assert whole["c0_nans"] == sum(v is not None and math.isnan(v) for v in xs)
        assert whole["c0_infs"] == 2 and whole["c0_count"] == finite.size
        assert whole["c0_under"] == 1 + int((finite < -1.0).sum()) and whole["c0_funder"] == int((finite < -1).sum())
        assert whole["c0_over"] == 1 + int((finite > 2.0).sum())
        assert whole["c0_b2"] == int(((finite >= 0.5) & (finite <= 2.0)).sum())   # last bin closed
        assert (whole["c0_min"], whole["c0_max"]) == (finite.min(), finite.max()) == (-50.0, 50.0)
        cs = [r["c"] for r in frame.collect()]
        assert [whole[f"c4_k{k}"] for k in range(5)] == [cs.count(v) for v in BINS["c"].categories]
        assert whole["c4_count"] == len(cs) - cs.count(None) and cs.count("category_gamma") > 0
        # "u": values beyond the top 2 per tail bucket (xxhash64 mod 8, as Spark's pmod), unseen = not in the filter
        us = frame.select("u", F.pmod(F.xxhash64("u"), F.lit(8)).alias("b")).collect()
        beyond = [r for r in us if r["u"] is not None and r["u"] not in ("u1", "u2")]
        assert [whole[f"c5_t{k}"] for k in range(8)] == [sum(r["b"] == k for r in beyond) for k in range(8)]
        new = sum(int(r["u"][1:]) >= SEEN for r in beyond)
        assert 0.95 * new <= whole["c5_unseen"] <= new     # a Bloom filter never misses; 1 % false positives
        flags = [r["flag"] for r in frame.collect()]
        assert (whole["c6_b0"], whole["c6_b2"], whole["c6_b1"]) == (flags.count(False), flags.count(True), 0)


def test_a_date_key_and_an_empty_frame(spark, frame, bins) -> None:
    if not jvm_available(spark):
        pytest.skip("the JVM fold is not on the classpath (no JDK)")
    dated = frame.withColumn("d", F.date_add(F.lit(dt.date(2026, 3, 1)), F.col("i")))
    jvm = core_pass(dated, "d", COLUMNS, bins, engine="jvm")
    assert set(jvm) == {dt.date(2026, 3, d) for d in (1, 2, 3, 4)}
    assert_same_rows(jvm, core_pass(dated, "d", COLUMNS, bins, engine="arrow"))
    assert core_pass(frame.limit(0), None, COLUMNS, bins, engine="jvm") == {}
    # each date's profile from the grouped JVM pass is that date's own profile (through the shared merge)
    by_jvm = profile_by(dated, "d", COLUMNS, bins, quantiles=(), distinct=False)
    for day, prof in by_jvm.items():
        alone = profile_by(dated.filter(F.col("d") == F.lit(day)), None, COLUMNS, bins, quantiles=(),
                           distinct=False)[None]
        assert prof.rows == dated.filter(F.col("d") == F.lit(day)).count() == alone.rows
        for a, b in zip(profile_rows(prof), profile_rows(alone), strict=True):
            assert a == b or (a["stat"] in ("mean", "std", "bin_offset_sum")
                              and a["value"] == pytest.approx(b["value"], rel=1e-12, nan_ok=True))


def test_a_key_type_the_jvm_fold_does_not_take_uses_the_arrow_fold(spark, frame, bins) -> None:
    keyed = frame.withColumn("dec", (F.col("i") / 2).cast("decimal(5,1)"))
    auto = core_pass(keyed, "dec", COLUMNS, bins)
    assert auto == core_pass(keyed, "dec", COLUMNS, bins, engine="arrow")
    with pytest.raises(ProfileError, match=r"expected the JVM fold \(driftline.jvm.ProfileFold\) to run, found a "
                                           r"group key of type decimal\(5,1\)$"):
        core_pass(keyed, "dec", COLUMNS, bins, engine="jvm")


def test_jvm_fold_false_turns_the_jvm_fold_off_in_a_running_session(spark, frame, bins) -> None:
    from driftline.jvm import JVM_FOLD_CONF

    spark.conf.set(JVM_FOLD_CONF, "false")      # what session_conf sets for runtime.jvm_fold: false
    try:
        with pytest.raises(ProfileError, match=r"to run, found runtime.jvm_fold false$"):
            core_pass(frame, None, COLUMNS, bins, engine="jvm")
        assert core_pass(frame, "g", COLUMNS, bins) == core_pass(frame, "g", COLUMNS, bins, engine="arrow")
    finally:
        spark.conf.set(JVM_FOLD_CONF, "true")


def test_without_javac_the_jar_is_not_built_and_the_session_goes_on(monkeypatch, tmp_path, caplog) -> None:
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JarBuildError, match=r"^no javac found .* a JDK 17\+ is needed, a JRE is not$"):
        build_jar()
    with caplog.at_level("WARNING", logger="driftline.jvm"):
        assert session_jar() is None
    assert "profiles use the Arrow fold" in caplog.text
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_the_jar_is_built_once_per_source_and_printed_by_the_command(monkeypatch, tmp_path, capsys) -> None:
    from driftline.jvm import _javac

    if _javac() is None:
        pytest.skip("no javac on this machine")
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path))
    jar = build_jar()
    assert jar == jar_path() and jar.parent == tmp_path and jar.name.startswith("driftline-jvm-")
    assert "driftline/jvm/ProfileFold.class" in zipfile.ZipFile(jar).namelist()
    stamp = jar.stat().st_mtime_ns
    assert build_jar() == jar and jar.stat().st_mtime_ns == stamp      # cached: not compiled again
    assert [p.name for p in tmp_path.iterdir()] == [jar.name]          # no build folder left behind
    assert jar_command([]) == 0
    assert capsys.readouterr().out.strip() == str(jar)


def test_the_session_gets_the_jar_unless_jvm_fold_is_off_or_spark_submit_owns_the_jvm(spark) -> None:
    from driftline.jvm import _javac
    from driftline.runtime import RuntimeConfig, session_conf

    if _javac() is None:
        pytest.skip("no javac on this machine")
    users = RuntimeConfig(spark_conf={"spark.jars": "/opt/site/udfs.jar"}, delta_jars=False)
    assert session_conf(users)["spark.jars"] == f"/opt/site/udfs.jar,{jar_path()}"     # added to, not replaced
    assert session_conf(RuntimeConfig(delta_jars=False))["spark.jars"] == str(jar_path())
    off = session_conf(RuntimeConfig(jvm_fold=False, delta_jars=False))
    assert "spark.jars" not in off and off["spark.driftline.jvmFold"] == "false"
    assert session_conf(RuntimeConfig(jvm_fold=False), submitted=True)["spark.driftline.jvmFold"] == "false"
    assert session_conf(users, submitted=True)["spark.jars"] == "/opt/site/udfs.jar"   # --jars is the submitter's
    assert str(jar_path()) in spark.sparkContext.getConf().get("spark.jars")           # the test session has it
