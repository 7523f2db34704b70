"""Schema changes against the reference at monitoring (R9): quality rows, and failures before any write."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType

from driftline.errors import InputContractError
from driftline.monitoring.inputs import Scope, window_frame
from driftline.monitoring.quality import schema_rows
from driftline.profiling.types import CategoricalProfile, DatasetProfile, NumericProfile
from driftline.tables import CommitInfo, StorageConfig, open_store
from driftline.vocabulary import SCORE as PREDICTION

DAY = dt.date(2026, 3, 1)


def numeric(name: str) -> NumericProfile:
    return NumericProfile(name, 10, 0, 0, 0, 10, 1.0, 0.5, 0.0, 2.0, (), (0.0, 2.0), (10,), 0, 0)


def reference(*names: str) -> DatasetProfile:
    cols = {n: numeric(n) for n in names}
    cols["plan"] = CategoricalProfile("plan", 10, 0, 10, 2, ("a", "b"), (5, 5), 0)
    cols[PREDICTION] = numeric(PREDICTION)
    return DatasetProfile(10, cols)


def by_metric(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["column"], r["metric"]): r for r in rows}


def test_same_features_give_one_ok_row() -> None:
    rows = schema_rows(reference("x1", "x2"), ["x1", "x2", "plan"], "3")
    assert rows == [dict(column="__dataset__", metric="schema_changes", value=0.0, threshold=0.0, status="ok",
                         method=None, reason=None, n_reference=None, n_current=None)]


def test_added_and_removed_features_are_warnings_naming_them() -> None:
    got = by_metric(schema_rows(reference("x1", "x2"), ["x1", "x3", "plan", "x4"], "3"))
    assert set(got) == {("x3", "new_column"), ("x4", "new_column"), ("x2", "removed_column"),
                        ("__dataset__", "schema_changes")}
    assert {k: (r["value"], r["status"]) for k, r in got.items()} == {
        ("x3", "new_column"): (1.0, "warn"), ("x4", "new_column"): (1.0, "warn"),
        ("x2", "removed_column"): (1.0, "warn"), ("__dataset__", "schema_changes"): (3.0, "warn")}
    assert got[("__dataset__", "schema_changes")]["reason"] == (
        "3 configured feature(s) differ from the reference of version 3: new x3, x4; removed x2")
    assert got[("x3", "new_column")]["reason"].startswith(
        "configured feature not in the reference profile of version 3: the champion does not use it")


@pytest.fixture
def ctx(spark, tmp_path):
    store = open_store(spark, StorageConfig(backend="embedded"), tmp_path / "ws")
    return SimpleNamespace(scope=Scope(store, "m", "k", None), store=store, spark=spark)


def features_table(ctx, x1_type) -> None:
    schema = StructType([StructField("k", LongType()), StructField("as_of_date", DateType()),
                         StructField("x1", x1_type), StructField("plan", StringType())])
    value = 1.5 if isinstance(x1_type, DoubleType) else "1.5"
    df = ctx.spark.createDataFrame([(1, DAY, value, "a")], schema)
    ctx.store.replace_partitions("m__features", df, ["as_of_date"],
                                 CommitInfo(job="t", run_id="r", key="k", code_version="c", config_hash="h"))


def predictions(ctx):
    schema = StructType([StructField("k", LongType()), StructField("score_date", DateType()),
                         StructField("score", DoubleType())])
    return ctx.spark.createDataFrame([(1, DAY, 0.25)], schema)


def test_numeric_reference_column_retyped_in_the_features_table_fails_naming_it(ctx) -> None:
    features_table(ctx, StringType())
    with pytest.raises(InputContractError, match=r"^table m__features: expected numeric columns as in the "
                                                 r"reference profile, found x1 \(string\)$") as err:
        window_frame(ctx.scope, predictions(ctx), [DAY], ["x1", "plan", PREDICTION], numeric=["x1", PREDICTION])
    assert err.value.exit_code == 2  # an input contract problem: exit 2 in every job (score: SignatureMismatchError)


def test_matching_types_give_the_window_rows(ctx) -> None:
    features_table(ctx, DoubleType())
    got = window_frame(ctx.scope, predictions(ctx), [DAY], ["x1", "plan", PREDICTION], numeric=["x1", PREDICTION])
    assert [tuple(r) for r in got.collect()] == [(1, DAY, 1.5, "a", 0.25)]


def test_reference_column_missing_from_the_features_table_fails_naming_it(ctx) -> None:
    features_table(ctx, DoubleType())
    with pytest.raises(InputContractError, match=r"expected the reference's columns x1, x9, plan, found x9 missing"):
        window_frame(ctx.scope, predictions(ctx), [DAY], ["x1", "x9", "plan", PREDICTION], numeric=["x1"])


def test_a_few_scored_rows_get_the_same_window_rows_through_broadcast_joins_only(ctx) -> None:
    from chispa import assert_df_equality

    schema = StructType([StructField("k", LongType()), StructField("as_of_date", DateType()),
                         StructField("x1", DoubleType()), StructField("plan", StringType())])
    rows = [(1, DAY, 1.5, "a"), (3, DAY, 2.5, "b"), (4, DAY, None, None)]
    ctx.store.replace_partitions("m__features", ctx.spark.createDataFrame(rows, schema), ["as_of_date"],
                                 CommitInfo(job="t", run_id="r", key="k", code_version="c", config_hash="h"))
    preds_schema = StructType([StructField("k", LongType()), StructField("score_date", DateType()),
                               StructField("score", DoubleType())])
    preds = ctx.spark.createDataFrame([(1, DAY, 0.25), (2, DAY, 0.5), (4, DAY, 0.75)], preds_schema)  # 2: no features
    args = (ctx.scope, preds, [DAY], ["x1", "plan", PREDICTION], ["x1", PREDICTION])
    few = window_frame(*args, few=True)
    assert_df_equality(few, window_frame(*args), ignore_row_order=True)
    assert sorted(tuple(r) for r in few.collect()) == [(1, DAY, 1.5, "a", 0.25), (2, DAY, None, None, 0.5),
                                                       (4, DAY, None, None, 0.75)]
    # as with a big window: nothing broadcast unless asked; the whole window's join shuffles, the few rows' do not
    ctx.spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        plans = {f: window_frame(*args, few=f)._jdf.queryExecution().executedPlan().toString() for f in (True, False)}
    finally:
        ctx.spark.conf.unset("spark.sql.autoBroadcastJoinThreshold")
    assert "BroadcastHashJoin" in plans[True] and "SortMergeJoin" not in plans[True]
    assert "SortMergeJoin" in plans[False]
