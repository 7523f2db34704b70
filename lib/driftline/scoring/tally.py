"""The statistics the scoring pass gathers while the rows are in the workers: one `Tally` per task.

Each task scoring a date folds its Arrow batches, with the scores just computed, into a `Tally`:
the feature checks of ``scoring_stats`` (rows, null / NaN, ±inf, categories a model's encoder never
saw), each role's score statistics (and, with a challenger, the agreement on the same rows), each role's
profile accumulator over its reference's bins (`driftline.profiling.accumulate`, the same fold and slots
as the monitor's scan) and a bottom-k sample of the rows (priority = a hash of the entity key and the date
computed by Spark, `driftline.profiling.sample`: the k smallest priorities of any union of samples are a
uniform sample of the union). Tasks send their
tally to the driver through a Spark accumulator keyed by partition id: a retried or re-run task
replaces its own entry instead of adding twice. Pure (numpy / pyarrow / pandas), no Spark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftline.profiling.accumulate import Accumulator, accumulate, hash_column, layout
from driftline.profiling.bins import ColumnBins, NumericBins
from driftline.profiling.sample import PRIORITY, as_priorities, to_ipc
from driftline.vocabulary import SCORE


@dataclass(frozen=True)
class ProfilePlan:
    """What one role's rows are profiled as: the reference's ``columns`` in its order with their ``bins``;
    ``sources[i]``: the input column holding column i (``score`` for the score and the estimation cells);
    ``hashes[i]``: the input column with the ``xxhash64`` of hashed categorical column i; ``sampled``: the
    columns the sample keeps (the reference profile's, without the cells)."""

    role: str
    columns: tuple[str, ...]
    bins: Mapping[str, ColumnBins]
    sources: tuple[str, ...]
    hashes: Mapping[int, str]
    sampled: tuple[str, ...]


@dataclass(frozen=True)
class TallySpec:
    """What every task tallies (captured by the scoring function, so only plain data)."""

    key: str
    roles: tuple[str, ...]                                   # the scored roles, champion first
    features: tuple[str, ...]                                # every model's features (null / ±inf counts)
    numeric: frozenset[str]
    known: Mapping[str, Mapping[str, tuple[str, ...]]]       # role → categorical feature → encoder categories
    plans: tuple[ProfilePlan, ...] = ()
    sample_below: int = 0                                    # keep rows with priority < this (0: no sample)
    salt: str = ""                                           # the date: priorities differ per date (the
    #                                                          input's `PRIORITY` column, `priority_column`)


@dataclass
class Tally:
    """A task's (or, merged, a date's) statistics; see the module docstring."""

    rows: int = 0
    nulls: dict[str, int] = field(default_factory=dict)
    infs: dict[str, int] = field(default_factory=dict)
    unseen: dict[tuple[str, str], int] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)   # role → [count, sum, labelled, positives]
    compared: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])  # rows, Σ|diff|, max, same labels
    profiles: dict[str, Accumulator] = field(default_factory=dict)
    samples: dict[str, list[bytes]] = field(default_factory=dict)   # role → Arrow IPC streams

    def merge(self, other: Tally) -> None:
        """Add ``other`` (the other task's rows) to this tally."""
        self.rows += other.rows
        for mine, theirs in ((self.nulls, other.nulls), (self.infs, other.infs), (self.unseen, other.unseen)):
            for k, n in theirs.items():
                mine[k] = mine.get(k, 0) + n
        for role, s in other.scores.items():
            self.scores[role] = [a + b for a, b in zip(self.scores.get(role, [0.0] * 4), s, strict=True)]
        c, o = self.compared, other.compared
        self.compared = [c[0] + o[0], c[1] + o[1], max(c[2], o[2]), c[3] + o[3]]
        for role, acc in other.profiles.items():
            if role in self.profiles:
                self.profiles[role].merge(acc)
            else:
                self.profiles[role] = acc
        for role, parts in other.samples.items():
            self.samples.setdefault(role, []).extend(parts)


def merge_tallies(by_partition: Mapping[int, Tally]) -> Tally:
    """One date's tally from its tasks' (in partition order: deterministic for the same partitioning)."""
    out = Tally()
    for part in sorted(by_partition):
        out.merge(by_partition[part])
    return out


def tally_batch(tally: Tally, spec: TallySpec, batch: Any, scores: Mapping[str, np.ndarray],
                labels: Mapping[str, np.ndarray | None]) -> None:
    """Add one Arrow input ``batch`` and every role's ``scores`` / predicted ``labels`` of it to ``tally``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows
    tally.rows += n
    names = batch.schema.names
    for c in spec.features:
        arr = batch.column(names.index(c))
        if c in spec.numeric:
            v = _doubles(arr)
            tally.nulls[c] = tally.nulls.get(c, 0) + int(np.count_nonzero(np.isnan(v)))   # nulls became NaN
            tally.infs[c] = tally.infs.get(c, 0) + int(np.count_nonzero(np.isinf(v)))
        else:
            tally.nulls[c] = tally.nulls.get(c, 0) + arr.null_count
    for role, known in spec.known.items():
        for c, cats in known.items():
            arr = batch.column(names.index(c)).cast(pa.string())
            beyond = pc.and_(pc.is_valid(arr), pc.invert(pc.is_in(arr, value_set=pa.array(cats, pa.string()))))
            tally.unseen[(role, c)] = tally.unseen.get((role, c), 0) + int(pc.sum(beyond).as_py() or 0)
    for role in spec.roles:
        s, lab = scores[role], labels[role]
        got = tally.scores.setdefault(role, [0.0] * 4)
        got[0] += s.size
        got[1] += float(s.sum())
        if lab is not None:
            got[2] += lab.size
            got[3] += float(lab.sum())
    if len(spec.roles) > 1 and n:
        a, b = scores[spec.roles[0]], scores[spec.roles[1]]
        diff = np.abs(a - b)
        c = tally.compared
        la, lb = labels[spec.roles[0]], labels[spec.roles[1]]
        same = float(np.count_nonzero(la == lb)) if la is not None and lb is not None else 0.0
        tally.compared = [c[0] + n, c[1] + float(diff.sum()), max(c[2], float(diff.max())), c[3] + same]
    priority = as_priorities(batch.column(names.index(PRIORITY))) if spec.sample_below else None
    for plan in spec.plans:
        frame = _plan_batch(batch, plan, scores[plan.role])
        if plan.role not in tally.profiles:
            add, numeric = layout(plan.columns, plan.bins)
            tally.profiles[plan.role] = Accumulator(len(add), len(numeric))
        accumulate(tally.profiles[plan.role], frame, plan.columns, plan.bins)
        if priority is not None:
            keep = priority < spec.sample_below
            if keep.any():
                picked = {name: frame.column(f"c{plan.columns.index(name)}").filter(pa.array(keep))
                          for name in plan.sampled}
                picked[PRIORITY] = pa.array(priority[keep], pa.uint64())
                tally.samples.setdefault(plan.role, []).append(to_ipc(pa.table(picked)))


def _doubles(arr: Any) -> np.ndarray:
    """A column's values as float64 (nulls → NaN); booleans and integers converted."""
    import pyarrow as pa

    if not pa.types.is_floating(arr.type):
        arr = arr.cast(pa.float64())
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype="float64")


def _plan_batch(batch: Any, plan: ProfilePlan, scores: np.ndarray) -> Any:
    """The batch the profile fold reads for ``plan``: ``c<i>`` (double / string) and its hash columns."""
    import pyarrow as pa

    names = batch.schema.names
    data: dict[str, Any] = {}
    for i, (name, source) in enumerate(zip(plan.columns, plan.sources, strict=True)):
        if source == SCORE and source not in names:
            data[f"c{i}"] = pa.array(scores, pa.float64())
            continue
        arr = batch.column(names.index(source))
        if isinstance(plan.bins[name], NumericBins):
            data[f"c{i}"] = arr if pa.types.is_float64(arr.type) else arr.cast(pa.float64())
        else:
            data[f"c{i}"] = arr if pa.types.is_string(arr.type) else arr.cast(pa.string())
        if i in plan.hashes:
            data[hash_column(i)] = batch.column(names.index(plan.hashes[i]))
    return pa.RecordBatch.from_pydict(data)




Stat = tuple[str | None, str | None, str, float | None]  # role, column, metric, value (a scoring_stats row)


def tally_stats(tally: Tally, spec: TallySpec, task: str) -> list[Stat]:
    """The ``scoring_stats`` rows of a date's tally (the metrics of ``docs/scoring.md``): rows; per feature
    null_rate (null or NaN) and, numeric, invalid_rate (±inf); per role and categorical feature unseen_share;
    per role rows, mean_score, positive_rate (classification); with two roles the comparison on the same rows."""
    rows = tally.rows
    stats: list[Stat] = [(None, None, "rows", float(rows))]
    if rows == 0:
        return stats
    stats += [(None, c, "null_rate", tally.nulls.get(c, 0) / rows) for c in spec.features]
    stats += [(None, c, "invalid_rate", tally.infs.get(c, 0) / rows) for c in spec.features if c in spec.numeric]
    stats += [(role, c, "unseen_share", tally.unseen.get((role, c), 0) / rows)
              for role, known in spec.known.items() for c in known]
    for role in spec.roles:
        count, total, labelled, positives = tally.scores.get(role, [0.0] * 4)
        stats += [(role, None, "rows", float(count)), (role, None, "mean_score", total / count if count else None)]
        if task == "classification":
            stats.append((role, None, "positive_rate", positives / labelled if labelled else None))
    if len(spec.roles) > 1:
        n, diff, top, same = tally.compared
        stats += [("comparison", None, "rows_compared", float(n)),
                  ("comparison", None, "mean_abs_score_diff", diff / n if n else None),
                  ("comparison", None, "max_abs_score_diff", top if n else None)]
        if task == "classification":
            stats.append(("comparison", None, "label_agreement", same / n if n else None))
    return stats
