"""The ``scoring_stats`` of a date as Spark aggregations: the path of a Spark Connect session, which has no
accumulators to bring the scoring pass's tallies (`driftline.scoring.tally`) back; it reads the features once
more before scoring and the committed predictions after. The tallies' numbers equal these (a test pins it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftline.scoring.tally import Stat, TallySpec
from driftline.vocabulary import CHALLENGER, CHAMPION, PREDICTED_LABEL, ROLE, SCORE

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def feature_stats(features: DataFrame, spec: TallySpec) -> tuple[int, list[Stat]]:
    """Rows, per-feature null rate (null or NaN), invalid rate and per-model unseen-category share, in one pass.

    ``invalid_rate`` (numeric features) = share of rows holding ±inf, which the models treat as
    missing (R12). ``unseen_share`` = rows whose non-null value is not among the categories the
    model's encoder saw in training, divided by all rows (R14). Reads the models' features; adds nothing.
    """
    from pyspark.sql import functions as F

    numeric, columns = spec.numeric, list(spec.features)
    aggs = [F.count(F.lit(1)).alias("rows")]
    invalid: list[tuple[str, str]] = []
    for i, c in enumerate(columns):
        null = F.col(c).isNull()
        if c in numeric:
            value = F.col(c).cast("double")
            null = null | F.isnan(value)
            aggs.append(F.sum(F.when(F.abs(value) == F.lit(float("inf")), 1).otherwise(0)).alias(f"invalid_{i}"))
            invalid.append((c, f"invalid_{i}"))
        aggs.append(F.sum(F.when(null, 1).otherwise(0)).alias(f"null_{i}"))
    unseen: list[tuple[str, str, str]] = []
    for role, categories in spec.known.items():
        for c, known in categories.items():
            alias = f"unseen_{len(unseen)}"
            value = F.col(c).cast("string")
            aggs.append(F.sum(F.when(F.col(c).isNotNull() & ~value.isin(list(known)), 1).otherwise(0)).alias(alias))
            unseen.append((role, c, alias))
    row = features.agg(*aggs).first()
    rows = int(row["rows"]) if row is not None else 0
    stats: list[Stat] = [(None, None, "rows", float(rows))]
    if rows == 0 or row is None:
        return rows, stats
    stats += [(None, c, "null_rate", row[f"null_{i}"] / rows) for i, c in enumerate(columns)]
    stats += [(None, c, "invalid_rate", row[alias] / rows) for c, alias in invalid]
    stats += [(role, c, "unseen_share", row[alias] / rows) for role, c, alias in unseen]
    return rows, stats


def prediction_stats(predictions: DataFrame, key: str, task: str, shadow: bool) -> list[Stat]:
    """Per role: rows, mean score, positive rate; with a challenger also the agreement on the same keys.

    ``label_agreement`` = share of compared keys whose predicted labels are equal (classification);
    ``mean_abs_score_diff`` / ``max_abs_score_diff`` over keys scored by both. Assumes one row per key
    and role (the features job checks the key is unique per date).
    """
    from pyspark.sql import functions as F

    def pick(role: str, col: str) -> Any:
        return F.max(F.when(F.col(ROLE) == role, F.col(col))).alias(f"{role}_{col}")

    roles = [CHAMPION, CHALLENGER] if shadow else [CHAMPION]
    if shadow:
        per_key = predictions.groupBy(key).agg(*[pick(r, c) for r in roles for c in (SCORE, PREDICTED_LABEL)])
    else:
        per_key = predictions.select(F.col(SCORE).alias(f"{CHAMPION}_{SCORE}"),
                                     F.col(PREDICTED_LABEL).alias(f"{CHAMPION}_{PREDICTED_LABEL}"))
    aggs = []
    for r in roles:
        aggs += [F.count(f"{r}_{SCORE}").alias(f"{r}_rows"), F.avg(f"{r}_{SCORE}").alias(f"{r}_mean_score"),
                 F.avg(f"{r}_{PREDICTED_LABEL}").alias(f"{r}_positive_rate")]
    if shadow:
        both = F.col(f"{CHAMPION}_{SCORE}").isNotNull() & F.col(f"{CHALLENGER}_{SCORE}").isNotNull()
        diff = F.abs(F.col(f"{CHAMPION}_{SCORE}") - F.col(f"{CHALLENGER}_{SCORE}"))
        same = (F.col(f"{CHAMPION}_{PREDICTED_LABEL}") == F.col(f"{CHALLENGER}_{PREDICTED_LABEL}")).cast("double")
        aggs += [F.sum(F.when(both, 1).otherwise(0)).alias("rows_compared"),
                 F.avg(F.when(both, diff)).alias("mean_abs_score_diff"),
                 F.max(F.when(both, diff)).alias("max_abs_score_diff"),
                 F.avg(F.when(both, same)).alias("label_agreement")]
    row = per_key.agg(*aggs).first()
    got_row = row.asDict() if row is not None else {}
    stats: list[Stat] = []
    for r in roles:
        stats += [(r, None, "rows", _num(got_row.get(f"{r}_rows"))),
                  (r, None, "mean_score", _num(got_row.get(f"{r}_mean_score")))]
        if task == "classification":
            stats.append((r, None, "positive_rate", _num(got_row.get(f"{r}_positive_rate"))))
    if shadow:
        stats += [("comparison", None, m, _num(got_row.get(m)))
                  for m in ("rows_compared", "mean_abs_score_diff", "max_abs_score_diff")]
        if task == "classification":
            stats.append(("comparison", None, "label_agreement", _num(got_row.get("label_agreement"))))
    return stats


def _num(value: Any) -> float | None:
    return None if value is None else float(value)
