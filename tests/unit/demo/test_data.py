"""The demo scenario generator: deterministic, well-formed tables, and drift exactly on the documented days."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from pandas.testing import assert_frame_equal
from pyspark.sql import functions as F
from scipy.stats import ks_2samp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from driftline.demo import SCHEMAS, Phases, Scenario, generate, simulate, to_spark, write_scenario
from driftline.demo.data import BURN_IN_DAYS, SHIFT_ACTIVITY_FACTOR
from driftline.errors import UsageError
from driftline.tables import CommitInfo, StorageConfig, open_store

SMALL = Scenario(customers=300, days=40)
DTYPES = {
    "churn_customers": {"customer_id": "object", "valid_from": "datetime64[us, UTC]",
                        "valid_to": "datetime64[us, UTC]", "plan": "object", "region": "object",
                        "tenure_months": "int32", "signup_date": "object"},
    "churn_events": {"customer_id": "object", "event_ts": "datetime64[us, UTC]", "event_date": "object",
                     "amount": "float64", "session_minutes": "float64", "channel": "object", "event_type": "object"},
    "churn_labels": {"customer_id": "object", "label_ts": "datetime64[us, UTC]", "churned": "int32",
                     "as_of_date": "object", "label_date": "object"},
}


@pytest.fixture(scope="module")
def small():
    return simulate(SMALL)


def offset(dates: pd.Series, scenario: Scenario) -> pd.Series:
    """Day offset from the scenario start of a column of dates."""
    return (pd.to_datetime(dates) - pd.Timestamp(scenario.start)).dt.days


def churn_days(truth: pd.DataFrame) -> pd.Series:
    """The truth's churn day offsets by customer id, +inf for customers who do not churn."""
    return truth.set_index("customer_id")["churn_day"].astype("float64").fillna(np.inf)


def with_plan(events: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Events with the plan of the customer row valid at ``event_ts`` (a point-in-time join)."""
    rows = customers.sort_values("valid_from")[["customer_id", "valid_from", "plan"]]
    joined = pd.merge_asof(events.sort_values("event_ts"), rows, left_on="event_ts", right_on="valid_from",
                           by="customer_id", direction="backward")
    assert joined["plan"].notna().all()
    return joined


# ------------------------------------------------------------------------------------------ scenario


def test_default_phases_are_the_documented_offsets() -> None:
    sc = Scenario()
    assert (sc.customers, sc.days, sc.start, sc.seed, sc.horizon_days) == (5000, 60, dt.date(2026, 1, 1), 7, 14)
    assert sc.phases == Phases(shift_day=36, new_category_day=39, concept_day=45)
    assert [sc.date(d) for d in (36, 39, 45)] == [dt.date(2026, 2, 6), dt.date(2026, 2, 9), dt.date(2026, 2, 15)]
    assert SMALL.phases == Phases(24, 26, 30)
    # Explicit offsets win; replace() recomputes the defaults from the new length.
    assert Scenario(days=60, concept_day=50).phases == Phases(36, 39, 50)
    assert dataclasses.replace(sc, days=40).phases == Phases(24, 26, 30)


@pytest.mark.parametrize("kwargs", [{"customers": 0}, {"days": -1}, {"seed": -3}, {"shift_day": 0},
                                    {"concept_day": 2.5}, {"start": "2026-01-01"}, {"history_days": -1},
                                    {"history_days": BURN_IN_DAYS + 1}])
def test_bad_scenario_is_a_usage_error(kwargs: dict) -> None:
    with pytest.raises(UsageError, match="scenario"):
        Scenario(**kwargs)


# ------------------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_frames(small) -> None:
    again = generate(SMALL)
    for name, df in small.tables.items():
        assert_frame_equal(again[name], df, check_exact=True)


def test_other_seed_gives_other_frames(small) -> None:
    other = generate(dataclasses.replace(SMALL, seed=8))
    for name, df in small.tables.items():
        with pytest.raises(AssertionError):
            assert_frame_equal(other[name], df)


def test_each_day_is_its_own_random_stream(small) -> None:
    """A shorter scenario (same phases) produces the same first days: no state leaks across day chunks."""
    phases = SMALL.phases
    short = generate(dataclasses.replace(SMALL, days=30, shift_day=phases.shift_day,
                                         new_category_day=phases.new_category_day, concept_day=phases.concept_day))
    events = small.tables["churn_events"]
    first = events[offset(events["event_date"], SMALL) < 30].reset_index(drop=True)
    assert_frame_equal(short["churn_events"], first, check_exact=True)


def test_history_days_add_events_before_start_and_change_nothing_after(small) -> None:
    with_history = generate(dataclasses.replace(SMALL, history_days=5))
    events = with_history["churn_events"]
    days = offset(events["event_date"], SMALL)
    assert sorted(days[days < 0].unique()) == [-5, -4, -3, -2, -1]
    assert_frame_equal(events[days >= 0].reset_index(drop=True), small.tables["churn_events"], check_exact=True)
    assert_frame_equal(with_history["churn_labels"], small.tables["churn_labels"], check_exact=True)


# ------------------------------------------------------------------------------------------ well-formed


def test_columns_and_dtypes_match_the_spark_schemas(small) -> None:
    for name, df in small.tables.items():
        assert {c: str(t) for c, t in df.dtypes.items()} == DTYPES[name]
        assert list(df.columns) == SCHEMAS[name].fieldNames()
        required = [f.name for f in SCHEMAS[name].fields if not f.nullable]
        assert not df[required].isna().any().any(), name
    events = small.tables["churn_events"]
    assert (events["amount"].notna() == (events["event_type"] == "purchase")).all()
    assert (events["session_minutes"] > 0).all() and (events.loc[events["amount"].notna(), "amount"] > 0).all()
    assert set(events["customer_id"].str.fullmatch(r"C\d{6}")) == {True}


def test_event_date_is_the_utc_date_of_event_ts_and_days_are_sorted(small) -> None:
    events = small.tables["churn_events"]
    assert (events["event_ts"].dt.tz_convert("UTC").dt.date == events["event_date"]).all()
    assert events["event_ts"].is_monotonic_increasing
    assert (events["event_ts"].dt.microsecond % 1000 != 0).mean() > 0.99  # microsecond precision, not millis
    assert events["event_date"].min() == SMALL.start and events["event_date"].max() == SMALL.end
    per_day = events.groupby("event_date").size()
    assert per_day.min() > 400  # 300 customers x ~2 events


def test_no_events_outside_membership(small) -> None:
    """Nobody acts after churning (from the churn date on) or before the day after signing up."""
    truth = small.truth.set_index("customer_id")
    events = small.tables["churn_events"]
    day = offset(events["event_date"], SMALL)
    churn = events["customer_id"].map(churn_days(small.truth))
    join = events["customer_id"].map(truth["join_day"])
    assert (day < churn).all()
    assert (day > join).all()


def test_churners_fade_out_unless_they_leave_abruptly(small) -> None:
    """Events in the week before churning against the week 22-28 days before (the fade lasts 21 days)."""
    truth = small.truth.assign(churn_day=churn_days(small.truth).to_numpy())
    events = small.tables["churn_events"].merge(truth[["customer_id", "churn_day", "abrupt", "join_day"]],
                                                on="customer_id")
    day = offset(events["event_date"], SMALL)
    to_churn = events["churn_day"] - day
    # Events from the shift on count 1 / SHIFT_ACTIVITY_FACTOR: the app release is not the fade.
    weight = np.where(day >= SMALL.phases.shift_day, 1 / SHIFT_ACTIVITY_FACTOR, 1.0)
    ratios = {}
    for abrupt in (False, True):
        churners = ((events["churn_day"] >= 28) & (events["churn_day"] < SMALL.days) & (events["abrupt"] == abrupt)
                    & (events["join_day"] < events["churn_day"] - 28))  # a customer in both weeks
        ratios[abrupt] = (weight * (churners & to_churn.between(1, 7))).sum() / (
            weight * (churners & to_churn.between(22, 28))).sum()
    assert ratios[False] < 0.45  # documented: 15 % .. 40 % of the usual activity, mean ~27 %
    assert ratios[True] > 0.7


def test_weekly_seasonality(small) -> None:
    events = small.tables["churn_events"]
    per_day = events[offset(events["event_date"], SMALL) < SMALL.phases.shift_day].groupby("event_date").size()
    weekend = np.array([d.weekday() >= 5 for d in per_day.index])
    ratio = per_day[weekend].mean() / per_day[~weekend].mean()
    assert 0.55 < ratio < 0.75  # documented factors: (0.75 + 0.70) / 2 / 1.12 = 0.65


def test_labels_arrive_horizon_days_after_as_of_and_match_the_truth(small) -> None:
    labels = small.tables["churn_labels"]
    as_of = pd.to_datetime(labels["as_of_date"]).dt.tz_localize("UTC")
    assert (labels["label_ts"] - as_of == pd.Timedelta(days=14)).all()
    assert (labels["label_ts"].dt.date == labels["label_date"]).all()
    # Late labels: only as-of days whose 14 days are over by the last scenario day.
    assert offset(labels["as_of_date"], SMALL).agg(["min", "max"]).tolist() == [0, SMALL.days - 1 - 14]
    assert labels["label_date"].max() == SMALL.end
    truth = small.truth.set_index("customer_id")
    d = offset(labels["as_of_date"], SMALL)
    churn = labels["customer_id"].map(churn_days(small.truth))
    join = labels["customer_id"].map(truth["join_day"])
    # The population of the as-of day: accounts open at its midnight (churn confirmed 14 days late).
    assert ((join < d) & (churn > d - 14)).all()
    # Churned: the churn date is before the horizon ends, including those gone but not confirmed yet.
    assert (labels["churned"] == (churn <= d + 13).astype("int32")).all()
    assert ((churn < d) & (labels["churned"] == 1)).any()
    # Everybody who is a customer on the as-of day has a label row, once.
    assert not labels.duplicated(["customer_id", "as_of_date"]).any()
    members = ((truth["join_day"] < 5) & (churn_days(small.truth) > 5 - 14)).sum()
    assert (d == 5).sum() == members
    assert 0.05 < labels["churned"].mean() < 0.25


def test_customer_rows_form_validity_chains(small) -> None:
    customers = small.tables["churn_customers"].sort_values(["customer_id", "valid_from"])
    last = customers.groupby("customer_id").tail(1).set_index("customer_id")
    churn = churn_days(small.truth).loc[last.index]
    # The last row stays open unless the churn was confirmed (churn day + horizon) inside the scenario:
    # then the account closes at that midnight and the customer leaves the "active" population.
    confirmed = churn + SMALL.horizon_days < SMALL.days
    assert confirmed.sum() >= 5
    assert (churn[confirmed] < 0).any()  # accounts of customers gone before start close on confirmation too
    closing = pd.Timestamp(SMALL.start, tz="UTC") + pd.to_timedelta(churn.where(confirmed, 0) + SMALL.horizon_days,
                                                                     unit="D")
    assert (last["valid_to"][confirmed] == closing[confirmed]).all()
    assert last["valid_to"][~confirmed].isna().all()
    assert set(last.index) == set(small.truth["customer_id"])
    closed = customers[customers.groupby("customer_id").cumcount(ascending=False) > 0]  # plan changes
    following = customers.groupby("customer_id")["valid_from"].shift(-1)
    assert (closed["valid_to"] == following[closed.index]).all()  # old row ends where the new one starts
    assert len(closed) >= 5  # some customers change plan mid-scenario
    assert (closed["valid_to"] >= pd.Timestamp(SMALL.start, tz="UTC")).all()
    assert (pd.to_datetime(customers["signup_date"]).dt.tz_localize("UTC") <= customers["valid_from"]).all()
    first = customers.groupby("customer_id").head(1)
    joined = first[first["signup_date"] >= SMALL.start]
    assert len(joined) > 30 and (joined["tenure_months"] == 0).all()  # new customers over time
    assert (first.loc[first["signup_date"] < SMALL.start, "valid_from"] < pd.Timestamp(SMALL.start, tz="UTC")).all()
    # tenure_months: whole calendar months from signup_date to valid_from.
    signup = pd.to_datetime(customers["signup_date"])
    at = customers["valid_from"].dt.tz_localize(None).dt.normalize()
    months = (at.dt.year - signup.dt.year) * 12 + at.dt.month - signup.dt.month - (at.dt.day < signup.dt.day)
    assert (customers["tenure_months"] == months).all()
    assert set(customers["region"]) == {"north", "south", "east", "west"}


def test_the_world_is_in_its_steady_state_from_the_first_day() -> None:
    """The burn-in: on day 0 the open accounts already hold churned-but-unconfirmed customers, churners
    fading out and a settled population, in the same shares as at the end of the stable period."""
    sc = Scenario(customers=3000, days=40, seed=11)
    sim = simulate(sc)
    labels = sim.tables["churn_labels"]
    d = offset(labels["as_of_date"], sc)
    churn = labels["customer_id"].map(churn_days(sim.truth))
    gone = churn < d  # left already, account open until the churn is confirmed
    # Labels of as-of days after concept_day - 14 see the concept change: compare the days before.
    last_stable = sc.phases.concept_day - sc.horizon_days
    early, late = d <= 4, (d > last_stable - 5) & (d <= last_stable)
    assert gone[early].mean() > 0.03
    # (consecutive days share most of these customers: a loose tolerance; before the burn-in day 0 had none)
    assert gone[early].mean() == pytest.approx(gone[late].mean(), rel=0.3)
    assert labels.loc[early, "churned"].mean() == pytest.approx(labels.loc[late, "churned"].mean(), rel=0.15)
    per_day = d.value_counts()
    assert per_day.min() / per_day.max() > 0.95  # open accounts stay at about `customers`
    assert per_day.mean() == pytest.approx(sc.customers, rel=0.1)
    events = sim.tables["churn_events"]
    e_day = offset(events["event_date"], sc)
    first_week, last_week = (e_day < 7).sum(), ((e_day >= sc.phases.shift_day - 7) & (e_day < sc.phases.shift_day)).sum()
    assert first_week / last_week == pytest.approx(1.0, abs=0.05)


# ------------------------------------------------------------------------------------------ phases


@pytest.mark.parametrize(("column", "factor"), [("amount", 1.40), ("session_minutes", 0.65)])
def test_covariate_shift_on_its_day_and_not_before(small, column: str, factor: float) -> None:
    events = with_plan(small.tables["churn_events"], small.tables["churn_customers"])
    segment = events[events["plan"].isin(["standard", "premium"]) & events[column].notna()]
    day = offset(segment["event_date"], SMALL)
    shift = SMALL.phases.shift_day
    before, after = segment.loc[day < shift, column], segment.loc[day >= shift, column]
    first_half, second_half = segment.loc[day < shift // 2, column], before[day[day < shift] >= shift // 2]
    assert ks_2samp(before, after).pvalue < 1e-6
    assert ks_2samp(first_half, second_half).pvalue > 1e-3
    assert after.mean() / before.mean() == pytest.approx(factor, rel=0.08)
    # The rest of the customers keep their amounts and session lengths.
    rest = events[events["plan"] == "basic"]
    rest_day = offset(rest["event_date"], SMALL)
    ratio = rest.loc[rest_day >= shift, column].mean() / rest.loc[rest_day < shift, column].mean()
    assert ratio == pytest.approx(1.0, abs=0.15)


def test_app_release_doubles_activity_at_the_shift(small) -> None:
    per_day = small.tables["churn_events"].groupby("event_date").size()
    day = offset(pd.Series(per_day.index), SMALL).to_numpy()
    shift = SMALL.phases.shift_day
    # Whole weeks on both sides, so the weekly rhythm cancels out.
    before, after = per_day[(day >= shift - 14) & (day < shift)].mean(), per_day[(day >= shift) & (day < shift + 14)].mean()
    assert after / before == pytest.approx(SHIFT_ACTIVITY_FACTOR, rel=0.1)


def test_channel_mix_moves_from_web_to_app_at_the_shift(small) -> None:
    events = small.tables["churn_events"]
    day = offset(events["event_date"], SMALL)
    phases = SMALL.phases
    web = events["channel"] == "web"
    before, after = web[day < phases.shift_day].mean(), web[(day >= phases.shift_day)].mean()
    assert after / before == pytest.approx(0.65 * 0.92, rel=0.1)  # 35 % to app, then 8 % to voice


def test_new_categories_appear_only_from_their_day(small) -> None:
    events = small.tables["churn_events"]
    day = offset(events["event_date"], SMALL)
    new_day = SMALL.phases.new_category_day
    voice = events["channel"] == "voice_assistant"
    assert not voice[day < new_day].any()
    per_day = voice.groupby(day).mean()
    assert (per_day[per_day.index >= new_day] > 0.03).all()
    assert voice[day >= new_day].mean() == pytest.approx(0.08, rel=0.15)
    customers = small.tables["churn_customers"]
    family = customers[customers["plan"] == "family"]
    assert len(family) > 0
    assert (family["valid_from"] >= pd.Timestamp(SMALL.date(new_day), tz="UTC")).all()
    assert set(customers.loc[customers["valid_from"] < pd.Timestamp(SMALL.date(new_day), tz="UTC"), "plan"]) == {
        "basic", "standard", "premium"}


def test_concept_segment_churns_more_from_the_concept_day(small) -> None:
    truth = small.truth
    churn = churn_days(truth).to_numpy()
    concept = SMALL.phases.concept_day

    def daily_churn(mask: pd.Series, days: range) -> float:
        at_risk = sum(((truth["join_day"] < d) & (churn >= d) & mask).sum() for d in days)
        return float(((truth["churn_day"].isin(list(days))) & mask).sum() / at_risk)

    segment = truth["concept_segment"]
    assert set(truth.loc[segment, "region"]) == {"south"}
    before, after = daily_churn(segment, range(1, concept)), daily_churn(segment, range(concept, SMALL.days))
    others_before, others_after = daily_churn(~segment, range(1, concept)), daily_churn(~segment, range(concept, 40))
    assert after > 5 * before
    assert others_after < 2 * others_before


# Features as the pipeline computes them: events of the 14 days before the as-of day (day itself excluded).
def pandas_features(sim, scenario: Scenario) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    events, labels = sim.tables["churn_events"], sim.tables["churn_labels"]
    events = events.assign(day=offset(events["event_date"], scenario))
    labels = labels.assign(day=offset(labels["as_of_date"], scenario))
    # Customers still there on the as-of day: those already gone (account open until the churn is
    # confirmed) are easy positives for any model and would only dilute the concept change.
    labels = labels[labels["customer_id"].map(churn_days(sim.truth)) >= labels["day"]]
    rows = []
    for d, members in labels.groupby("day"):
        recent = events[(events["day"] < d) & (events["day"] >= d - 14)]
        by = recent.groupby("customer_id")
        f = pd.DataFrame({"n7": recent[recent["day"] >= d - 7].groupby("customer_id").size(), "n14": by.size(),
                          "spend": by["amount"].mean(), "last": by["day"].max()})
        rows.append(members.set_index("customer_id").join(f))
    x = pd.concat(rows).fillna({"n7": 0, "n14": 0, "spend": 0})
    x["since"] = x["day"] - x["last"].fillna(x["day"] - 15)
    x["trend"] = x["n7"] / (x["n14"] + 1)
    current = sim.tables["churn_customers"].drop_duplicates("customer_id", keep="first").set_index("customer_id")
    x = x.join(current[["region", "tenure_months"]])
    features = pd.get_dummies(x[["n7", "n14", "spend", "since", "trend", "tenure_months", "region"]], dtype=float)
    features["log_spend"] = np.log1p(x["spend"])
    return features, x["churned"].to_numpy(), x["day"].to_numpy()


BASE = Scenario(customers=600, days=60, history_days=14, shift_day=99, new_category_day=99)


@pytest.fixture(scope="module")
def concept_features() -> dict[str, tuple[pd.DataFrame, np.ndarray, np.ndarray]]:
    """Features and labels of the base scenario with a concept change on day 30, and without one."""
    return {name: pandas_features(simulate(sc), sc) for name, sc in (
        ("concept", dataclasses.replace(BASE, concept_day=30)), ("control", dataclasses.replace(BASE, concept_day=99)))}


def stable_model_auc(x: pd.DataFrame, y: np.ndarray, day: np.ndarray) -> tuple[float, float]:
    """AUC of a logistic regression fitted on as-of days 0-9, on days 10-16 and on days 30-45.

    Labels of days <= 16 end before day 30; 14 history days give full windows from day 0.
    """
    fit, before, after = day <= 9, (day >= 10) & (day <= 16), day >= 30
    model = LogisticRegression(max_iter=2000).fit(x[fit], y[fit])
    p = model.predict_proba(x)[:, 1]
    return roc_auc_score(y[before], p[before]), roc_auc_score(y[after], p[after])


def test_concept_change_hurts_a_model_fitted_on_the_stable_period(concept_features) -> None:
    """Only the concept change (day 30 here; no other phase) makes the stable-period model much worse."""
    before, after = stable_model_auc(*concept_features["concept"])
    control_before, control_after = stable_model_auc(*concept_features["control"])
    assert before > 0.75 and control_before == pytest.approx(before, abs=0.01)
    assert before - after > 0.10
    assert control_after - after > 0.07
    # (days 10-16 share churners with the fit window, so "before" is a little optimistic even without a change)
    assert control_before - control_after < 0.12


def test_the_changed_concept_is_learnable(concept_features) -> None:
    """A model refitted on post-change labels beats the stable-period model on the days after (the demo's retrain)."""
    x, y, day = concept_features["concept"]
    late, recent = day >= 38, (day >= 30) & (day <= 37)
    with threadpool_limits(1):  # OpenMP threads crawl on a loaded 2-core machine; one is plenty here
        old = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x[day <= 16], y[day <= 16])
        new = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x[recent], y[recent])
        old_auc = roc_auc_score(y[late], old.predict_proba(x[late])[:, 1])
        new_auc = roc_auc_score(y[late], new.predict_proba(x[late])[:, 1])
    assert new_auc > 0.8
    assert new_auc - old_auc > 0.12


# ------------------------------------------------------------------------------------------ Spark


def test_spark_frames_have_the_explicit_schemas(spark, small) -> None:
    frames = to_spark(spark, small.tables)
    for name, df in frames.items():
        assert df.schema == SCHEMAS[name]
    events = frames["churn_events"]
    assert events.filter(F.to_date("event_ts") != F.col("event_date")).count() == 0
    first = events.orderBy("event_ts").first()
    row = small.tables["churn_events"].iloc[0]
    assert (first["customer_id"], first["event_ts"]) == (row["customer_id"], row["event_ts"].tz_localize(None))


def test_write_scenario_through_the_table_store(spark, tmp_path: Path) -> None:
    store = open_store(spark, StorageConfig(backend="embedded"), tmp_path / "ws")
    commits = []

    def commit_for(table: str) -> CommitInfo:
        commits.append(table)
        return CommitInfo(job="demo", run_id="demo-1", key="scenario", code_version="t", config_hash="t")

    scenario = Scenario(customers=60, days=20)
    tables = generate(scenario)
    # A longer scenario written first: its extra days must not survive the rewrite.
    write_scenario(store, dataclasses.replace(scenario, days=24), commit_for)
    counts = write_scenario(store, scenario, commit_for)

    assert counts == {name: len(df) for name, df in tables.items()}
    assert commits == ["churn_customers", "churn_events", "churn_labels"] * 2
    expected = to_spark(spark, tables)
    assert_df_equality(store.read("churn_customers"), expected["churn_customers"],
                       ignore_nullable=True, ignore_row_order=True)
    events = store.read("churn_events")
    assert events.count() == len(tables["churn_events"])
    assert events.agg(F.max("event_date")).first()[0] == scenario.end
    assert_df_equality(events.filter(F.col("event_date") == scenario.start),
                       expected["churn_events"].filter(F.col("event_date") == scenario.start),
                       ignore_nullable=True, ignore_row_order=True)
    assert store.read("churn_labels").count() == len(tables["churn_labels"])
