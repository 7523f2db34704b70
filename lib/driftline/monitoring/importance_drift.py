"""Importance drift: the permutation importance of each feature recomputed on a window whose labels matured,
against the importance stored with the version at training time (`driftline.training.importance`).

A feature that mattered little at training and matters much now (or the reverse) is a change of the
relation between features and label that input drift alone does not show. On the newest fully matured
earlier window of a monitor run (the one its labels completed), the version that scored it is loaded
(artifact verified before loading) and the training's permutation importance (scikit-learn's numbers, batched:
`driftline.training.importance`) is run on that window's scored
rows with a matured label — at most ``training.importance.max_rows`` (a seeded sample), the same scoring and
repeats as training, seeded by ``training.sample_seed`` — in the driver.

Rows (written with that window's start, end and version; ``docs/monitoring.md``): per feature ``importance``
(the mean score drop now) and ``importance_rank_change`` (rank at training − rank now: positive = more
important now; the reason gives both ranks); for the window (column ``__dataset__``)
``importance_rank_correlation``, the Spearman correlation of the two rankings, ``warn`` below
``monitoring.importance_drift.min_rank_correlation``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from driftline.vocabulary import INSUFFICIENT, OK, WARN

DATASET = "__dataset__"
METHOD = "permutation_importance"


def ranks(values: Mapping[str, float]) -> dict[str, int]:
    """1 = the most important; ties by column name (a stable order)."""
    return {c: i + 1 for i, (c, _) in enumerate(sorted(values.items(), key=lambda kv: (-kv[1], kv[0])))}


def importance_rows(trained: Mapping[str, float], now: Mapping[str, tuple[float, float]], rows: int,
                    min_rank_correlation: float) -> list[dict[str, Any]]:
    """The rows of one matured window (see the module docstring): ``trained`` column → mean importance stored
    with the version, ``now`` column → (mean, std) on the window's ``rows`` labelled rows."""
    from scipy.stats import spearmanr

    common = sorted(c for c in now if c in trained and math.isfinite(now[c][0]) and math.isfinite(trained[c]))
    before = ranks({c: trained[c] for c in common})
    after = ranks({c: now[c][0] for c in common})
    out: list[dict[str, Any]] = []
    base = {"method": METHOD, "n_reference": None, "n_current": rows}
    for c in sorted(now):
        mean, std = now[c]
        out.append({**base, "column": c, "metric": "importance", "value": mean, "threshold": None, "status": OK,
                    "reason": f"std {std:.4g} over the shuffles" if math.isfinite(std) else None})
        if c in before:
            out.append({**base, "column": c, "metric": "importance_rank_change",
                        "value": float(before[c] - after[c]), "threshold": None, "status": OK,
                        "reason": f"rank {before[c]} at training, {after[c]} now (of {len(common)})"})
    if len(common) < 3:
        out.append({**base, "column": DATASET, "metric": "importance_rank_correlation", "value": None,
                    "threshold": min_rank_correlation, "status": INSUFFICIENT,
                    "reason": f"{len(common)} features with an importance at training and now, expected at least 3"})
        return out
    rho = float(spearmanr([before[c] for c in common], [after[c] for c in common]).statistic)
    status = INSUFFICIENT if not math.isfinite(rho) else WARN if rho < min_rank_correlation else OK
    out.append({**base, "column": DATASET, "metric": "importance_rank_correlation",
                "value": rho if math.isfinite(rho) else None, "threshold": min_rank_correlation, "status": status,
                "reason": f"Spearman correlation of the {len(common)} features' importance ranks, training vs now"})
    return out
