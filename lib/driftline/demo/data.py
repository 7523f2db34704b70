"""Synthetic churn scenario for the demo: customers, daily events and late labels that drift on known days.

The scenario is simulated with numpy on the driver, one random stream per day, so the same
``Scenario`` gives byte-identical frames whatever the Spark partitioning or the machine. Pure
generation (`simulate`, `generate`) needs no Spark; `to_spark` and `write_scenario` turn the frames
into DataFrames with the explicit schemas below and write them through the table layer.

How the world works (the hidden truth the model has to learn):

* Each customer has a latent activity level (events/day), spend level (median purchase), session
  length, purchase propensity and channel preferences, plus a plan, a region and a tenure.
* Every day an active customer churns with a hazard that rises with low activity, low spend, a
  basic plan and short tenure. Most churners disengage first: their activity fades linearly over the
  21 days before the churn date (to 15 %), which is what an activity-trend feature can see. Some
  (15 %) leave abruptly. From the churn date on a customer produces no events.
* Events per customer and day are Poisson: fewer on weekends (Sat x0.75, Sun x0.70 against x1.12 on
  weekdays), with a daily rhythm over the hours of the day.
* New customers sign up every day (0.5 % of ``customers`` a day on average); about 0.15 % of active
  customers change plan each day, which closes their customer row and opens a new one.
* A churned account stays open until the churn is confirmed, ``horizon_days`` after the churn date
  (the day its label matures); then its customer row closes.
* The world runs from ``BURN_IN_DAYS`` (365) before ``start``, so every written day, history
  included, sees its steady state: churners fading out, churned accounts awaiting confirmation,
  a population whose mix has settled (about ``customers`` accounts open on ``start``, roughly
  constant through the stable period). Without the burn-in the first weeks held none of the
  unconfirmed churners that later days hold, so activity features drifted on every stable day.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyspark.sql.types import (
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from driftline.errors import UsageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from driftline.tables import CommitInfo

log = logging.getLogger(__name__)

CUSTOMERS = "churn_customers"
EVENTS = "churn_events"
LABELS = "churn_labels"

CUSTOMERS_SCHEMA = StructType([
    StructField("customer_id", StringType(), False),
    StructField("valid_from", TimestampType(), False),
    StructField("valid_to", TimestampType(), True),  # null: the current row
    StructField("plan", StringType(), False),
    StructField("region", StringType(), False),
    StructField("tenure_months", IntegerType(), False),  # whole months from signup_date to valid_from
    StructField("signup_date", DateType(), False),
])
EVENTS_SCHEMA = StructType([
    StructField("customer_id", StringType(), False),
    StructField("event_ts", TimestampType(), False),
    StructField("event_date", DateType(), False),  # partition column: UTC date of event_ts
    StructField("amount", DoubleType(), True),  # null unless event_type == "purchase"
    StructField("session_minutes", DoubleType(), False),
    StructField("channel", StringType(), False),
    StructField("event_type", StringType(), False),
])
LABELS_SCHEMA = StructType([
    StructField("customer_id", StringType(), False),
    StructField("label_ts", TimestampType(), False),  # when the outcome became known
    StructField("churned", IntegerType(), False),  # 1: churn date in [as_of_date, as_of_date + horizon_days)
    StructField("as_of_date", DateType(), False),
    StructField("label_date", DateType(), False),  # partition column: UTC date of label_ts
])
SCHEMAS: dict[str, StructType] = {CUSTOMERS: CUSTOMERS_SCHEMA, EVENTS: EVENTS_SCHEMA, LABELS: LABELS_SCHEMA}
PARTITION_BY: dict[str, list[str]] = {CUSTOMERS: ["region"], EVENTS: ["event_date"], LABELS: ["label_date"]}

PLANS = ("basic", "standard", "premium", "family")
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("web", "app", "store", "voice_assistant")
EVENT_TYPES = ("session", "purchase", "support")
BASIC, STANDARD, PREMIUM, FAMILY = range(4)
SOUTH = 1
WEB, APP, STORE, VOICE = range(4)
SESSION, PURCHASE, SUPPORT = range(3)

# Phase effects (documented on `Scenario`; tests check them).
SHIFT_SEGMENT_PLANS = (STANDARD, PREMIUM)
SHIFT_AMOUNT_FACTOR = 1.40
SHIFT_MINUTES_FACTOR = 0.65
SHIFT_WEB_TO_APP = 0.35
SHIFT_ACTIVITY_FACTOR = 2.0
VOICE_SHARE = 0.08
NEW_PLAN_FAMILY_SHARE = 0.30  # of signups from the new-category day
CONCEPT_SPEND_LEVEL = 40.0  # latent median purchase; half of the customers are at or above it
CONCEPT_LOGIT_BOOST = 3.0
CONCEPT_ABRUPT_SHARE = 0.9
CONCEPT_ABRUPT_SHARE_OTHERS = 0.5

# The world's fixed parameters.
DEFAULT_FRACTIONS = {"shift_day": 0.60, "new_category_day": 0.65, "concept_day": 0.75}
WEEKDAY_FACTOR = np.array([1.12, 1.12, 1.12, 1.12, 1.12, 0.75, 0.70])  # Monday first
HOUR_WEIGHTS = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.2, 3.0, 3.4, 3.6, 3.8,
                         4.2, 4.0, 3.6, 3.4, 3.5, 3.8, 4.4, 4.8, 4.6, 3.8, 2.6, 1.6])
HOUR_CDF = np.cumsum(HOUR_WEIGHTS) / HOUR_WEIGHTS.sum()
ACTIVITY_MEDIAN, ACTIVITY_SIGMA = 2.0, 0.6
SPEND_MEDIAN, SPEND_SIGMA = 40.0, 0.5
PLAN_SPEND_FACTOR = np.array([0.8, 1.0, 1.4, 1.2])
PLAN_CHURN_LOGIT = np.array([0.35, 0.0, -0.35, -0.5])
BASE_CHURN_LOGIT = -5.6
DECAY_DAYS = 21
DECAY_FLOOR = 0.15
ABRUPT_SHARE = 0.15
JOIN_RATE = 0.005
PLAN_CHANGE_RATE = 0.0015
SUPPORT_SHARE = 0.04
# The world's dynamics run this many days before ``start`` (the burn-in): written days, history
# included, see the steady state. ``history_days`` can be at most this.
BURN_IN_DAYS = 365

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
NEVER = np.iinfo(np.int32).max

# Independent random streams: default_rng([seed, stream, day]) never depends on chunking.
STREAM_POPULATION, STREAM_DYNAMICS, STREAM_EVENTS, STREAM_HISTORY, STREAM_BURN_IN = range(5)


@dataclass(frozen=True)
class Phases:
    """Resolved day offsets (from ``Scenario.start``) at which each phase begins."""

    shift_day: int
    new_category_day: int
    concept_day: int


@dataclass(frozen=True)
class Scenario:
    """What to simulate: size, period, seed and the day offsets of the drift phases.

    Day offsets count from ``start`` (offset 0 = ``start``); event dates run over offsets
    ``0 .. days-1`` (plus ``history_days`` before ``start`` when asked). A phase offset of ``None``
    takes its default fraction of ``days`` (rounded half up); an offset ``>= days`` means the phase
    does not happen in the window. With the defaults (60 days from 2026-01-01):

    * **stable** — offsets 0..35 (2026-01-01 .. 2026-02-05): the world described in the module doc.
    * **covariate shift** — from ``shift_day`` (default ``0.60*days`` = 36, 2026-02-06): a price rise
      for customers on the standard and premium plans (plan of the event's day): purchase ``amount``
      x1.40 and ``session_minutes`` x0.65; for everyone an app release: 35 % of web events move to
      the app channel and everyone's events come x2.0 as often (more, shorter visits). The churn
      hazard does not change (the relation of latent behaviour to churn is unchanged), but what the
      features see of it does: the 7-day counts and the activity trend move within days, the 30-day
      aggregates over weeks.
    * **new category** — from ``new_category_day`` (default ``0.65*days`` = 39, 2026-02-09):
      ``channel`` "voice_assistant" appears (8 % of all events), and ``plan`` "family" appears
      (30 % of new signups, half of the plan changes); neither exists before that day.
    * **concept change** — from ``concept_day`` (default ``0.75*days`` = 45, 2026-02-15): customers
      in region "south" with a spend level >= 40 (the high spenders, ~12 % of customers) get their
      daily churn logit raised by 3.0 (a competitor's offer) and 90 % of them leave abruptly, without
      the activity fade, and half of all other churners (instead of 15 %) leave abruptly too: the
      model's "active, high spend, not fading = loyal" no longer holds. Labels with
      ``as_of_date >= concept_day - horizon_days + 1`` see it.

    Labels follow the features' point in time (``as_of_date`` 00:00 UTC, events before it) and
    population (accounts open then): one row per as-of date and customer who signed up before that
    day and whose account was open (not churned, or churned less than ``horizon_days`` days before,
    unconfirmed); ``churned = 1`` when the churn date (first day without events, for good) is before
    ``as_of_date + horizon_days`` — customers already gone but not confirmed are churned too. So the
    training rows (features joined with labels) are the population the model scores, and the
    reference profile matches a stable day. The outcome is known when day
    ``as_of_date + horizon_days`` starts: ``label_ts`` is that midnight UTC and ``label_date`` its
    date, so as of day offset T only as-of offsets ``<= T - horizon_days`` are labelled, and the
    scenario holds labels for as-of offsets ``0 .. days-1-horizon_days``.

    ``history_days`` (at most ``BURN_IN_DAYS``) writes that many days of stable events before
    ``start`` (no labels, no phases), so trailing feature windows are already full on day 0; with 0
    a 30-day window only fills up on day 30, which looks like drift in the first month. The world
    itself does not depend on it (nor on ``days``): the same seed gives the same customers, ids and
    events on the days both scenarios write. The customers table holds every customer whose account
    is open on some written day, with the rows valid on or after the first written day (a row may
    begin before it: at signup or at the last plan change).
    """

    customers: int = 5_000
    days: int = 60
    start: dt.date = dt.date(2026, 1, 1)
    seed: int = 7
    shift_day: int | None = None
    new_category_day: int | None = None
    concept_day: int | None = None
    horizon_days: int = 14
    history_days: int = 0

    def __post_init__(self) -> None:
        for name in ("customers", "days", "horizon_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"scenario {name} must be a whole number >= 1, found {value!r}")
        for name in ("seed", "history_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UsageError(f"scenario {name} must be a whole number >= 0, found {value!r}")
        if self.history_days > BURN_IN_DAYS:
            raise UsageError(f"scenario history_days must be at most the {BURN_IN_DAYS} burn-in days, "
                             f"found {self.history_days}")
        if not isinstance(self.start, dt.date) or isinstance(self.start, dt.datetime):
            raise UsageError(f"scenario start must be a date, found {self.start!r}")
        for name in DEFAULT_FRACTIONS:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise UsageError(f"scenario {name} must be None or a day offset >= 1, found {value!r}")

    @property
    def phases(self) -> Phases:
        """The phase day offsets, defaults resolved from ``days``."""
        resolved = {}
        for name, fraction in DEFAULT_FRACTIONS.items():
            value = getattr(self, name)
            resolved[name] = value if value is not None else max(1, math.floor(fraction * self.days + 0.5))
        return Phases(**resolved)

    def date(self, offset: int) -> dt.date:
        """The calendar date of a day offset."""
        return self.start + dt.timedelta(days=offset)

    def days_from_start(self, day: dt.date) -> int:
        """The day offset of a calendar date."""
        return (day - self.start).days

    @property
    def end(self) -> dt.date:
        """The last event date of the scenario (offset ``days - 1``)."""
        return self.date(self.days - 1)


@dataclass(frozen=True)
class Simulation:
    """The three source tables plus the hidden truth per customer (for tests and the demo story)."""

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame


def generate(scenario: Scenario) -> dict[str, pd.DataFrame]:
    """The source tables ``churn_customers``, ``churn_events``, ``churn_labels`` as pandas frames."""
    return simulate(scenario).tables


def simulate(scenario: Scenario) -> Simulation:
    """Simulate the scenario: source tables plus per-customer truth (churn day, latent levels, segment).

    The truth frame has one row per customer: ``customer_id``, ``join_day`` (offset; negative for
    customers signed up before ``start``), ``churn_day`` (offset of the churn date, negative for churn
    before ``start``; nullable ``Int32``, missing when the customer does not churn before ``days + 21``),
    ``abrupt``, ``region``, ``activity``,
    ``spend_level``, ``session_level``, ``concept_segment``.
    """
    started = time.perf_counter()
    world = _World(scenario)
    tables = {
        CUSTOMERS: world.customers_frame(),
        EVENTS: world.events_frame(),
        LABELS: world.labels_frame(),
    }
    sim = Simulation(tables=tables, truth=world.truth_frame())
    log.info(
        "simulated %d customers over %d days (seed %d) in %.1f s: %s",
        scenario.customers, scenario.days, scenario.seed, time.perf_counter() - started,
        ", ".join(f"{name} {len(df)} rows" for name, df in tables.items()),
    )
    return sim


class _World:
    """Latent customer state and its day-by-day dynamics; holds everything as numpy arrays."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.ph = sc.phases
        self.start_us = int(pd.Timestamp(sc.start, tz="UTC").value // 1000)
        self.horizon = sc.days + DECAY_DAYS  # churn beyond the window still fades activity inside it
        rng = np.random.default_rng([sc.seed, STREAM_POPULATION])
        n = sc.customers  # churn outpaces signups until the mix settles: about as many accounts are open at start
        # The world starts BURN_IN_DAYS before ``start`` with customers who signed up before that:
        # tenure roughly exponential (mean ~2 years); their current row began at their last plan
        # change (changes come at PLAN_CHANGE_RATE a day) or at signup.
        first_day = -BURN_IN_DAYS
        tenure_days = np.minimum(rng.exponential(700.0, n), 3650.0).astype(np.int32)
        join_day = first_day - 1 - tenure_days
        signup_us = self._day_us(join_day) + rng.integers(0, DAY_US, n)
        changed_us = self._day_us(first_day) - (rng.exponential(1.0 / PLAN_CHANGE_RATE, n) * DAY_US).astype(np.int64)
        self.cols: dict[str, np.ndarray] = {
            "join_day": join_day,
            "signup_us": signup_us,
            "plan0": rng.choice(3, n, p=[0.5, 0.35, 0.15]).astype(np.int8),
            **self._latent(rng, n),
        }
        self.first_valid_us = np.maximum(signup_us, changed_us)
        self.churn_day = np.full(n, NEVER, dtype=np.int32)
        self.abrupt = np.zeros(n, dtype=bool)
        self.changes: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # (cust, day, ts, plan)
        self.plan_at = self._run_dynamics()  # [day + history_days, customer]: the plan held that day

    def _day_us(self, day: np.ndarray | int) -> np.ndarray:
        return self.start_us + np.asarray(day, dtype=np.int64) * DAY_US

    @staticmethod
    def _latent(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return {
            "region": rng.choice(4, n, p=[0.3, 0.25, 0.25, 0.2]).astype(np.int8),
            "activity": rng.lognormal(math.log(ACTIVITY_MEDIAN), ACTIVITY_SIGMA, n),
            "spend": rng.lognormal(math.log(SPEND_MEDIAN), SPEND_SIGMA, n),
            "session": rng.lognormal(math.log(12.0), 0.4, n),
            "p_purchase": rng.beta(3.0, 7.0, n),
            "channel_pref": rng.dirichlet([5.0, 3.5, 1.5], n),
            "risk_noise": rng.normal(0.0, 0.6, n),
        }

    @property
    def n(self) -> int:
        """Customers simulated so far, the burn-in's included (the tables show the visible ones)."""
        return len(self.cols["join_day"])

    def visible(self) -> np.ndarray:
        """Indexes of the customers the tables show: an account open on some day of the written events.

        That is: joined before the window ends, and not closed (churn confirmed ``horizon_days``
        after the churn date) before the first written day (``-history_days``). Customer ids are
        these indexes, so they do not depend on ``days`` or ``history_days``.
        """
        closed_day = self.churn_day.astype(np.int64) + self.sc.horizon_days
        return np.flatnonzero((self.cols["join_day"] < self.sc.days) & (closed_day > -self.sc.history_days))

    def _run_dynamics(self) -> np.ndarray:
        """Day by day from the burn-in on: signups, plan changes and churn, each day from its own random stream."""
        sc = self.sc
        plan = self.cols["plan0"].copy()
        plan_days: list[np.ndarray] = []
        # The world runs from BURN_IN_DAYS before start (so the written days see a world in its steady
        # state: churners fading out, churned accounts awaiting confirmation, the population's mix)
        # and on past the window, the same whatever ``days`` or ``history_days`` is: day t of a 40-day
        # scenario equals day t of a 60-day one, and churn just after the window still fades activity
        # inside it.
        for t in range(-BURN_IN_DAYS, self.horizon):
            stream = [sc.seed, STREAM_DYNAMICS, t] if t >= 0 else [sc.seed, STREAM_BURN_IN, -t]
            rng = np.random.default_rng(stream)
            plan = self._signups(rng, t, plan)
            self._plan_changes(rng, t, plan)
            self._churn(rng, t, plan)
            if -sc.history_days <= t < sc.days:
                plan_days.append(plan.copy())
        # Customers who joined later hold a placeholder plan; they are not active on those days.
        return np.stack([np.pad(p, (0, self.n - len(p))) for p in plan_days])

    def _signups(self, rng: np.random.Generator, t: int, plan: np.ndarray) -> np.ndarray:
        k = int(rng.poisson(JOIN_RATE * self.sc.customers))
        if k == 0:
            return plan
        if t >= self.ph.new_category_day:
            p = [0.7 * 0.5, 0.7 * 0.35, 0.7 * 0.15, NEW_PLAN_FAMILY_SHARE]
            new_plan = rng.choice(4, k, p=p).astype(np.int8)
        else:
            new_plan = rng.choice(3, k, p=[0.5, 0.35, 0.15]).astype(np.int8)
        signup_us = self._day_us(t) + rng.integers(0, DAY_US, k)
        fresh = {"join_day": np.full(k, t, dtype=np.int32), "signup_us": signup_us, "plan0": new_plan,
                 **self._latent(rng, k)}
        for key, values in fresh.items():
            self.cols[key] = np.concatenate([self.cols[key], values])
        self.first_valid_us = np.concatenate([self.first_valid_us, signup_us])
        self.churn_day = np.concatenate([self.churn_day, np.full(k, NEVER, dtype=np.int32)])
        self.abrupt = np.concatenate([self.abrupt, np.zeros(k, dtype=bool)])
        return np.concatenate([plan, new_plan])

    def _active(self, t: int) -> np.ndarray:
        """Customers who can act on day t: joined before t and not churned."""
        return (self.cols["join_day"] < t) & (self.churn_day > t)

    def _plan_changes(self, rng: np.random.Generator, t: int, plan: np.ndarray) -> None:
        who = np.flatnonzero(self._active(t) & (rng.random(self.n) < PLAN_CHANGE_RATE))
        if who.size == 0:
            return
        # Move to another plan; from the new-category day half of the moves go to "family".
        step = rng.integers(1, 3, who.size)
        target = ((plan[who] % 3) + step) % 3
        if t >= self.ph.new_category_day:
            target = np.where(rng.random(who.size) < 0.5, FAMILY, target)
            target = np.where(target == plan[who], (target + 1) % 3, target)
        plan[who] = target.astype(np.int8)
        ts = self._day_us(t) + rng.integers(0, DAY_US, who.size)
        self.changes.append((who, np.full(who.size, t), ts, plan[who].copy()))

    def concept_segment(self) -> np.ndarray:
        """Customers whose churn behaviour changes at the concept day: high spenders in the south."""
        return (self.cols["region"] == SOUTH) & (self.cols["spend"] >= CONCEPT_SPEND_LEVEL)

    def _churn(self, rng: np.random.Generator, t: int, plan: np.ndarray) -> None:
        c = self.cols
        z_activity = (np.log(c["activity"]) - math.log(ACTIVITY_MEDIAN)) / ACTIVITY_SIGMA
        z_spend = (np.log(c["spend"]) - math.log(SPEND_MEDIAN)) / SPEND_SIGMA
        new_customer = (t - c["join_day"]) < 183
        logit = (BASE_CHURN_LOGIT - 0.6 * z_activity - 0.35 * z_spend + PLAN_CHURN_LOGIT[plan]
                 + 0.6 * new_customer + c["risk_noise"])
        abrupt_share = np.full(self.n, ABRUPT_SHARE)
        if t >= self.ph.concept_day:
            segment = self.concept_segment()
            logit = logit + CONCEPT_LOGIT_BOOST * segment
            abrupt_share = np.where(segment, CONCEPT_ABRUPT_SHARE, CONCEPT_ABRUPT_SHARE_OTHERS)
        hazard = 1.0 / (1.0 + np.exp(-logit))
        u_churn, u_abrupt = rng.random(self.n), rng.random(self.n)
        leaving = self._active(t) & (u_churn < hazard)
        self.churn_day[leaving] = t
        self.abrupt[leaving] = u_abrupt[leaving] < abrupt_share[leaving]

    # -- tables ------------------------------------------------------------------------------------

    def customers_frame(self) -> pd.DataFrame:
        sc = self.sc
        shown = self.visible()
        is_shown = np.zeros(self.n, dtype=bool)
        is_shown[shown] = True
        cust = [shown]
        valid_from = [self.first_valid_us[shown]]
        plans = [self.cols["plan0"][shown]]
        for who, day, ts, new_plan in self.changes:
            inside = (day < sc.days) & is_shown[who]
            cust.append(who[inside])
            valid_from.append(ts[inside])
            plans.append(new_plan[inside])
        cust_a, from_a, plan_a = np.concatenate(cust), np.concatenate(valid_from), np.concatenate(plans)
        order = np.lexsort((from_a, cust_a))
        cust_a, from_a, plan_a = cust_a[order], from_a[order], plan_a[order]
        same_next = np.append(cust_a[1:] == cust_a[:-1], False)
        # A churned account is closed when its churn is confirmed (the day its label matures): from
        # then on the customer is no longer in the "active" population; open while unconfirmed.
        closed_day = self.churn_day[cust_a].astype(np.int64) + sc.horizon_days
        closed = ~same_next & (self.churn_day[cust_a] != NEVER) & (closed_day < sc.days)
        to_a = np.where(same_next, np.append(from_a[1:], 0), np.where(closed, self._day_us(closed_day), 0))
        open_row = ~same_next & ~closed
        # Rows replaced before the first written day (burn-in plan changes) are not shown.
        keep = open_row | (to_a > self._day_us(-sc.history_days))
        cust_a, from_a, to_a, plan_a, open_row = cust_a[keep], from_a[keep], to_a[keep], plan_a[keep], open_row[keep]
        signup = (self.cols["signup_us"] // DAY_US).astype("datetime64[D]")[cust_a]
        valid_date = (from_a // DAY_US).astype("datetime64[D]")
        return pd.DataFrame({
            "customer_id": _ids(self.n)[cust_a],
            "valid_from": _utc(from_a),
            "valid_to": _utc(to_a, null=open_row),
            "plan": np.array(PLANS, dtype=object)[plan_a],
            "region": np.array(REGIONS, dtype=object)[self.cols["region"][cust_a]],
            "tenure_months": _whole_months(signup, valid_date).astype(np.int32),
            "signup_date": _dates(signup),
        })

    def events_frame(self) -> pd.DataFrame:
        sc = self.sc
        parts = [self._events_of_day(t) for t in range(-sc.history_days, sc.days)]
        cust = np.concatenate([p[0] for p in parts])
        ts = np.concatenate([p[1] for p in parts])
        amount = np.concatenate([p[2] for p in parts])
        minutes = np.concatenate([p[3] for p in parts])
        channel = np.concatenate([p[4] for p in parts])
        kind = np.concatenate([p[5] for p in parts])
        day = (ts // DAY_US).astype("datetime64[D]")
        return pd.DataFrame({
            "customer_id": _ids(self.n)[cust],
            "event_ts": _utc(ts),
            "event_date": _dates(day),
            "amount": amount,
            "session_minutes": minutes,
            "channel": np.array(CHANNELS, dtype=object)[channel],
            "event_type": np.array(EVENT_TYPES, dtype=object)[kind],
        })

    def _events_of_day(self, t: int) -> tuple[np.ndarray, ...]:
        sc, ph, c = self.sc, self.ph, self.cols
        stream = [sc.seed, STREAM_EVENTS, t] if t >= 0 else [sc.seed, STREAM_HISTORY, -t]
        rng = np.random.default_rng(stream)
        active = np.flatnonzero(self._active(t))
        plan = self.plan_at[t + sc.history_days][active]
        # Churners fade out over the DECAY_DAYS before their churn date unless they leave abruptly.
        to_churn = self.churn_day[active].astype(np.int64) - t
        fade = DECAY_FLOOR + (1 - DECAY_FLOOR) * np.clip((to_churn - 1) / DECAY_DAYS, 0.0, 1.0)
        fade = np.where(self.abrupt[active], 1.0, fade)
        weekday = sc.date(t).weekday()
        boost = SHIFT_ACTIVITY_FACTOR if t >= ph.shift_day else 1.0  # the app release: more, shorter visits
        counts = rng.poisson(c["activity"][active] * WEEKDAY_FACTOR[weekday] * fade * boost)
        cust = np.repeat(active, counts)
        plan_e = np.repeat(plan, counts)
        k = cust.size

        u_kind = rng.random(k)
        p_buy = c["p_purchase"][cust]
        kind = np.where(u_kind < p_buy, PURCHASE, np.where(u_kind < p_buy + SUPPORT_SHARE, SUPPORT, SESSION))
        shifted = (t >= ph.shift_day) & np.isin(plan_e, SHIFT_SEGMENT_PLANS)
        amount = (c["spend"][cust] * PLAN_SPEND_FACTOR[plan_e] * np.where(shifted, SHIFT_AMOUNT_FACTOR, 1.0)
                  * rng.lognormal(0.0, 0.45, k))
        amount = np.where(kind == PURCHASE, np.round(amount, 2), np.nan)
        minutes = rng.gamma(2.0, c["session"][cust] / 2.0, k) * np.where(shifted, SHIFT_MINUTES_FACTOR, 1.0)
        minutes = np.maximum(np.round(minutes * np.where(kind == SUPPORT, 1.5, 1.0), 2), 0.1)

        pref = c["channel_pref"][cust]
        probs = np.column_stack([pref, np.zeros(k)])
        if t >= ph.shift_day:
            probs[:, APP] += SHIFT_WEB_TO_APP * probs[:, WEB]
            probs[:, WEB] *= 1 - SHIFT_WEB_TO_APP
        if t >= ph.new_category_day:
            probs *= 1 - VOICE_SHARE
            probs[:, VOICE] = VOICE_SHARE
        u_channel = rng.random(k)[:, None]
        channel = np.minimum((u_channel > np.cumsum(probs, axis=1)).sum(axis=1), VOICE).astype(np.int8)

        hour = np.minimum(np.searchsorted(HOUR_CDF, rng.random(k), side="right"), 23)
        ts = self._day_us(t) + hour * HOUR_US + rng.integers(0, HOUR_US, k)
        order = np.argsort(ts, kind="stable")
        return cust[order], ts[order], amount[order], minutes[order], channel[order], kind[order].astype(np.int8)

    def labels_frame(self) -> pd.DataFrame:
        sc, h = self.sc, self.sc.horizon_days
        cust_parts, as_of_parts, churned_parts = [], [], []
        # As of D 00:00 UTC (what the features see): every customer with an open account, i.e. joined
        # before D and not churned before D - h + 1 (a churn is confirmed, and the account closed,
        # h days after the churn date). Those who already left but are not confirmed yet churned.
        for d in range(sc.days - h):
            members = np.flatnonzero((self.cols["join_day"] < d) & (self.churn_day.astype(np.int64) > d - h))
            cust_parts.append(members)
            as_of_parts.append(np.full(members.size, d, dtype=np.int64))
            churned_parts.append((self.churn_day[members] <= d + h - 1).astype(np.int32))
        cust = np.concatenate(cust_parts) if cust_parts else np.zeros(0, dtype=np.int64)
        as_of = np.concatenate(as_of_parts) if as_of_parts else np.zeros(0, dtype=np.int64)
        churned = np.concatenate(churned_parts) if churned_parts else np.zeros(0, dtype=np.int32)
        # The outcome of days D .. D+h-1 is known when day D+h starts.
        label_us = self._day_us(as_of + h)
        return pd.DataFrame({
            "customer_id": _ids(self.n)[cust],
            "label_ts": _utc(label_us),
            "churned": churned,
            "as_of_date": _dates(np.datetime64(sc.start, "D") + as_of.astype("timedelta64[D]")),
            "label_date": _dates((label_us // DAY_US).astype("datetime64[D]")),
        })

    def truth_frame(self) -> pd.DataFrame:
        shown = self.visible()
        c = {key: values[shown] for key, values in self.cols.items()}
        churn_day = self.churn_day[shown]
        return pd.DataFrame({
            "customer_id": _ids(self.n)[shown],
            "join_day": c["join_day"].astype(np.int32),
            "churn_day": pd.arrays.IntegerArray(churn_day.astype(np.int32), churn_day == NEVER),
            "abrupt": self.abrupt[shown],
            "region": np.array(REGIONS, dtype=object)[c["region"]],
            "activity": c["activity"],
            "spend_level": c["spend"],
            "session_level": c["session"],
            "concept_segment": self.concept_segment()[shown],
        })


def _ids(n: int) -> np.ndarray:
    return np.array([f"C{i:06d}" for i in range(n)], dtype=object)


def _utc(micros: np.ndarray, null: np.ndarray | None = None) -> pd.Series:
    values = micros.astype("datetime64[us]")
    if null is not None:
        values = np.where(null, np.datetime64("NaT", "us"), values)
    return pd.Series(values).dt.tz_localize("UTC")


def _dates(days: np.ndarray) -> np.ndarray:
    """datetime.date objects (pandas' usual holder of a date column), converted once per distinct day."""
    unique, inverse = np.unique(days, return_inverse=True)
    as_dates = np.empty(unique.size, dtype=object)
    as_dates[:] = [d.item() for d in unique]
    return as_dates[inverse]


def _whole_months(since: np.ndarray, until: np.ndarray) -> np.ndarray:
    """Completed calendar months between two datetime64[D] arrays."""
    m_since, m_until = since.astype("datetime64[M]"), until.astype("datetime64[M]")
    months = (m_until - m_since).astype(np.int64)
    dom_since = (since - m_since.astype("datetime64[D]")).astype(np.int64)
    dom_until = (until - m_until.astype("datetime64[D]")).astype(np.int64)
    return np.maximum(months - (dom_until < dom_since), 0)


# -- Spark -----------------------------------------------------------------------------------------


def to_spark(spark: SparkSession, tables: dict[str, pd.DataFrame]) -> dict[str, DataFrame]:
    """DataFrames with the explicit source schemas from `generate` output (via Arrow)."""
    return {name: spark.createDataFrame(df, schema=SCHEMAS[name]) for name, df in tables.items()}


def write_scenario(store: Any, scenario: Scenario, commit_for: Callable[[str], CommitInfo]) -> dict[str, int]:
    """Generate the scenario and write its three source tables; returns rows written per table.

    One ``replace_partitions`` per table with the commit ``commit_for(table_name)`` returns:
    events by ``event_date``, labels by ``label_date``, customers by ``region`` (the table store
    refuses an unpartitioned replace; every customer row has one of the four regions, so replacing
    all four replaces the table). Partitions of an earlier, longer scenario that this one does not
    produce are replaced by nothing, so afterwards the tables hold exactly this scenario.
    """
    spark = _spark_of(store)
    tables = generate(scenario)
    frames = to_spark(spark, tables)
    written: dict[str, int] = {}
    for name in (CUSTOMERS, EVENTS, LABELS):
        started = time.perf_counter()
        (column,) = PARTITION_BY[name]
        values = set(REGIONS) if name == CUSTOMERS else set(tables[name][column])
        if store.exists(name):
            values |= {row[0] for row in store.read(name).select(column).distinct().collect()}
        store.replace_partitions(name, frames[name], partition_by=PARTITION_BY[name], commit=commit_for(name),
                                 partitions=[{column: v} for v in sorted(values)])
        written[name] = len(tables[name])
        log.info("wrote %s: %d rows in %.1f s", name, written[name], time.perf_counter() - started)
    return written


def _spark_of(store: Any) -> SparkSession:
    spark = getattr(store, "spark", None)
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
    if spark is None:
        raise UsageError("write_scenario needs a table store bound to a SparkSession, found none active")
    return spark
