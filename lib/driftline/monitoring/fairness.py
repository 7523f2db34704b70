"""Fairness across protected groups: selection rate and error rates per group, and the gaps between groups.

For each column of ``monitoring.fairness.protected`` (binary classification; prediction = score ≥
``label.threshold``, as the score job's ``predicted_label``), per value of the column (a group):

- ``selection_rate`` = predicted positives / scored rows (no label needed);
- ``true_positive_rate`` = predicted positives among matured positive labels;
- ``false_positive_rate`` = predicted positives among matured negative labels.

A group rate needs ``min_rows`` rows behind it (scored rows, positives or negatives), else it is
``insufficient_data`` and left out of the comparison. Across the groups with enough rows:

- ``demographic_parity_difference`` = max − min selection rate (alert above ``max_parity_difference``);
- ``demographic_parity_ratio`` = min / max selection rate (alert below ``min_parity_ratio``: the four-fifths rule);
- ``equal_opportunity_difference`` = max − min true positive rate (alert above ``max_opportunity_difference``);
- ``false_positive_rate_difference`` = max − min false positive rate (alert above ``max_fpr_difference``; with the
  previous one, equalized odds).

Fewer than two groups with enough rows: ``insufficient_data``. The counts come from one grouped pass per column
(`group_counts`, Spark) or from arrays (`counts_of`, the train job's validation window); the rates and rows are
pure (`fairness_rows`). Rows: column ``__fairness__``; per group slice ``<column>=<value>``, across groups
slice ``<column>``. Documented in ``docs/monitoring.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from driftline.vocabulary import ALERT, INSUFFICIENT, OK

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftline.monitoring.spec import FairnessConfig

FAIRNESS = "__fairness__"   # the column of the fairness rows in monitor_metrics
MAX_GROUPS = 50             # per protected column, the most scored values


@dataclass(frozen=True)
class Counts:
    """One group's counts: scored rows, predicted positives; labelled positives / negatives and their hits."""

    scored: int
    selected: int
    positives: int
    true_positives: int
    negatives: int
    false_positives: int


def group_counts(frame: DataFrame, column: str, threshold: float) -> dict[str | None, Counts]:
    """Per value of ``column`` (as a string; None for nulls) of ``frame`` (``score``, ``label``, ``column``: the
    monitor's `driftline.monitoring.inputs.labelled_frame`), its `Counts`, in one grouped aggregation; at most
    `MAX_GROUPS` values, the most scored."""
    from pyspark.sql import functions as F

    from driftline.training.dataset import LABEL
    from driftline.vocabulary import SCORE

    scored = F.col(SCORE).isNotNull()
    chosen = scored & (F.col(SCORE) >= F.lit(float(threshold)))
    pos, neg = F.col(LABEL) == 1, F.col(LABEL) == 0

    def total(cond: Any) -> Any:
        return F.sum(F.when(cond, 1).otherwise(0)).cast("long")

    rows = (frame.groupBy(F.col(column).cast("string").alias("g"))
            .agg(total(scored).alias("scored"), total(chosen).alias("selected"), total(scored & pos).alias("p"),
                 total(chosen & pos).alias("tp"), total(scored & neg).alias("n"), total(chosen & neg).alias("fp"))
            .collect())
    rows = sorted(rows, key=lambda r: (-r["scored"], str(r["g"])))[:MAX_GROUPS]
    return {r["g"]: Counts(r["scored"], r["selected"], r["p"], r["tp"], r["n"], r["fp"]) for r in rows}


def counts_of(scores: np.ndarray, labels: np.ndarray, groups: Sequence[Any], threshold: float
              ) -> dict[str | None, Counts]:
    """`Counts` per group from arrays (labels 1/0, NaN when not known; groups as strings, None for missing)."""
    s = np.asarray(scores, dtype="float64")
    y = np.asarray(labels, dtype="float64")
    g = np.array([None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in groups],
                 dtype=object)
    out: dict[str | None, Counts] = {}
    for value in sorted(set(g.tolist()), key=lambda v: (v is None, str(v))):
        m = (g == value) if value is not None else np.array([v is None for v in g])
        ok = m & ~np.isnan(s)
        chosen = ok & (np.nan_to_num(s, nan=-np.inf) >= threshold)
        out[value] = Counts(int(ok.sum()), int(chosen.sum()), int((ok & (y == 1)).sum()),
                            int((chosen & (y == 1)).sum()), int((ok & (y == 0)).sum()), int((chosen & (y == 0)).sum()))
    return dict(sorted(out.items(), key=lambda kv: (-kv[1].scored, str(kv[0])))[:MAX_GROUPS])


RATES = (("selection_rate", "selected", "scored"), ("true_positive_rate", "true_positives", "positives"),
         ("false_positive_rate", "false_positives", "negatives"))


def _row(metric: str, value: float | None, threshold: float | None, status: str, reason: str | None,
         n: int | None) -> dict[str, Any]:
    return {"column": FAIRNESS, "metric": metric, "value": value, "threshold": threshold, "status": status,
            "method": "fairness", "reason": reason, "n_reference": None, "n_current": n}


def fairness_rows(column: str, counts: Mapping[str | None, Counts], cfg: FairnessConfig
                  ) -> tuple[dict[str | None, list[dict[str, Any]]], list[dict[str, Any]]]:
    """(group value → its rate rows, the across-group rows) of one protected ``column`` (see the module
    docstring)."""
    per_group: dict[str | None, list[dict[str, Any]]] = {}
    rates: dict[str, dict[str | None, float]] = {m: {} for m, _, _ in RATES}
    for value, c in counts.items():
        rows = []
        for metric, num, den in RATES:
            n = getattr(c, den)
            if n < cfg.min_rows:
                rows.append(_row(metric, None, float(cfg.min_rows), INSUFFICIENT,
                                 f"{n} {den} rows, expected at least {cfg.min_rows}", n))
                continue
            rate = getattr(c, num) / n
            rates[metric][value] = rate
            rows.append(_row(metric, rate, None, OK, None, n))
        per_group[value] = rows
    across = []
    checks = (("demographic_parity_difference", "selection_rate", "difference", cfg.max_parity_difference),
              ("demographic_parity_ratio", "selection_rate", "ratio", cfg.min_parity_ratio),
              ("equal_opportunity_difference", "true_positive_rate", "difference", cfg.max_opportunity_difference),
              ("false_positive_rate_difference", "false_positive_rate", "difference", cfg.max_fpr_difference))
    for metric, rate, kind, bound in checks:
        found = rates[rate]
        groups = len(found)
        if groups < 2:
            across.append(_row(metric, None, bound, INSUFFICIENT,
                               f"{groups} group(s) of {column} with at least {cfg.min_rows} rows for {rate}, "
                               "expected at least 2", groups))
            continue
        low = min(found, key=lambda v: (found[v], str(v)))
        high = max(found, key=lambda v: (found[v], str(v)))
        lo, hi = found[low], found[high]
        if kind == "difference":
            value: float | None = hi - lo
            bad = value > bound
        else:
            value = lo / hi if hi > 0 else None
            bad = value is not None and value < bound
        reason = f"{rate} lowest {column}={low} ({lo:.4g}), highest {column}={high} ({hi:.4g})"
        across.append(_row(metric, value, bound, INSUFFICIENT if value is None else ALERT if bad else OK,
                           reason if value is not None else f"no group has a positive {rate}", groups))
    return per_group, across


def worst_gaps(across: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``metric`` names of the across-group rows at alert (the gate's and the report's reasons)."""
    return [r["metric"] for r in across if r["status"] == ALERT]
