"""Reference bins: the cells every profile of a model version is counted in, fitted once on its reference.

Numeric columns get one of two kinds of cells:
- **value cells** when the reference holds at most ``discrete_values`` distinct finite values (0/1 flags,
  booleans, small integer codes, constants): one cell per exact value and one *gap* cell between two
  neighbours, stored as edges ``v₁, v₁⁺, v₂, v₂⁺, …, v_k, v_k⁺`` (``v⁺`` = the next double above v), so the
  bin ``[v, v⁺)`` holds exactly v and ``[v⁺, v_next)`` holds values the reference never had (unseen). The
  profile folds need nothing special: they count bins on edges as always.
- **quantile cells** otherwise: edges at the reference's exact min, at equal quantile steps ``i / bins``
  and, finer, in both tails (`TAIL_PROBS`: 0.01 %, 0.1 %, 0.5 %, 1 %, 2.5 %, 5 % from each end), then
  ``max, max⁺`` (the maximum in a cell of its own), so the outermost bins hold little mass and a few values
  outside the reference range cost what they really move in Wasserstein-1 (``docs/monitoring.md``).

Categorical columns: the reference's top-K categories; when the reference has more categories, the rest are
hashed (Spark's ``xxhash64``) into ``buckets`` tail cells, and a Bloom filter of *all* reference categories
(`driftline.profiling.membership`) tells which current values were never seen. ``expected_unseen`` is the
Good–Turing estimate of the unseen share under no drift (reference singletons / reference values): a
high-cardinality column always meets some new values, and only the excess over this counts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from driftline.errors import DriftlineError
from driftline.profiling.membership import Membership, build_membership

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

OTHER = "__other__"
DEFAULT_ACCURACY = 10_000  # percentile_approx accuracy: relative rank error ≈ 1 / accuracy
TAIL_PROBS: tuple[float, ...] = (1e-4, 1e-3, 0.005, 0.01, 0.025, 0.05)  # extra edges in each tail (finer than 1/bins)
DEFAULT_TAIL_BUCKETS = 32
DEFAULT_MEMBERSHIP_FPR = 0.01
MEMBERSHIP_CHUNK = 1_000_000  # characters of base64 per stored membership row
# stats of the estimated-performance cell table stored with a reference (`driftline.monitoring.estimated`):
# not profile rows, every reader of profile rows skips them
CBPE_STAT_PREFIX = "cbpe_"


class ProfileError(DriftlineError):
    """A profile cannot be computed as asked (unknown column, missing bins, wrong column type)."""


@dataclass(frozen=True)
class NumericBins:
    """Histogram edges of a numeric column (strictly increasing), quantile or value cells (see module doc)."""

    column: str
    edges: tuple[float, ...]

    kind = "numeric"

    @property
    def n_bins(self) -> int:
        return max(len(self.edges) - 1, 0)

    @property
    def values(self) -> tuple[float, ...] | None:
        """The reference's distinct values when the edges are value cells, else None."""
        e = self.edges
        if len(e) < 2 or len(e) % 2:
            return None
        for i in range(0, len(e), 2):
            if e[i + 1] != math.nextafter(e[i], math.inf) or (i + 2 < len(e) and not e[i + 2] > e[i + 1]):
                return None
        return tuple(e[0::2])

    @property
    def discrete(self) -> bool:
        return self.values is not None


@dataclass(frozen=True)
class CategoricalBins:
    """Top-K categories; beyond them ``buckets`` hashed tail cells and the reference's membership filter."""

    column: str
    categories: tuple[str, ...]
    buckets: int = 0
    membership: Membership | None = None
    expected_unseen: float = 0.0

    kind = "categorical"

    @property
    def hashed(self) -> bool:
        """Values beyond the top K are hashed into tail buckets and checked against the membership filter."""
        return self.buckets > 0 and self.membership is not None


ColumnBins = NumericBins | CategoricalBins


def quantile_edges(lo: float | None, hi: float | None, interior: Sequence[float | None]) -> tuple[float, ...]:
    """Edges from exact min/max and interior quantiles: sorted, de-duplicated, then ``max⁺`` (the next double),
    so the maximum has a cell of its own — an atom at the top (a capped or integer column) is not merged with
    the values below it in a closed last bin. A constant c gives ``(c, c⁺)``; a maximum whose next double is
    infinite keeps the closed last bin ``[e_{n-1}, max]``."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return ()
    values = sorted({float(lo), float(hi), *(float(q) for q in interior if q is not None and lo < q < hi)})
    top = math.nextafter(values[-1], math.inf)
    if math.isfinite(top):
        values.append(top)
    elif len(values) == 1:
        values.append(values[0])
    return tuple(values)


def value_edges(values: Iterable[float]) -> tuple[float, ...]:
    """Value-cell edges ``v₁, v₁⁺, …, v_k, v_k⁺`` of distinct finite values; () when two values are adjacent
    doubles (no room for a gap cell: use quantile edges)."""
    vs = sorted({float(v) for v in values})
    edges: list[float] = []
    for v in vs:
        if edges and not v > edges[-1]:
            return ()
        edges += [v, math.nextafter(v, math.inf)]
    return tuple(edges) if edges and math.isfinite(edges[-1]) else ()


def edge_probs(bins: int) -> tuple[float, ...]:
    """Interior quantile probabilities: ``i / bins`` plus `TAIL_PROBS` (and 1 − p) finer than the first step."""
    probs = {i / bins for i in range(1, bins)}
    for p in TAIL_PROBS:
        if p < 1 / bins:
            probs |= {p, 1 - p}
    return tuple(sorted(probs))


def fit_reference_bins(
    df: DataFrame,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    *,
    bins: int = 10,
    top_k: int = 20,
    accuracy: int = DEFAULT_ACCURACY,
    discrete_values: int | None = None,
    tail_buckets: int = DEFAULT_TAIL_BUCKETS,
    membership_fpr: float = DEFAULT_MEMBERSHIP_FPR,
) -> dict[str, ColumnBins]:
    """Fit value or quantile edges (numeric) and top-K categories with tail buckets (categorical) on a reference.

    Reads the named columns of ``df``. Numeric: one aggregation (min, max, quantiles, approximate distinct
    count) and, for columns that may have at most ``discrete_values`` (default 2 × ``bins``) distinct finite
    values, one exact distinct-value query. Categorical: one grouped count of every value (top K, singletons)
    and, for columns with more than ``top_k`` categories, the distinct ``xxhash64`` values for the membership
    filter. Only aggregates and hashes reach the driver.
    """
    if bins < 1:
        raise ProfileError(f"bins: expected at least 1, found {bins}")
    if top_k < 1:
        raise ProfileError(f"top_k: expected at least 1, found {top_k}")
    if tail_buckets < 0:
        raise ProfileError(f"tail_buckets: expected at least 0, found {tail_buckets}")
    check_columns(df, [*numeric, *categorical])
    cutoff = 2 * bins if discrete_values is None else discrete_values
    out: dict[str, ColumnBins] = {}
    out.update(_fit_numeric(df, numeric, bins, accuracy, cutoff))
    out.update(_fit_categorical(df, categorical, top_k, tail_buckets, membership_fpr))
    return {c: out[c] for c in [*numeric, *categorical]}


class BinSettings(Protocol):
    """The bin settings of a ``monitoring.drift`` config slice (`driftline.config.schema.DriftConfig`)."""

    bins: int
    top_k: int
    discrete_values: int | None
    tail_buckets: int
    membership_fpr: float


def fit_configured_bins(df: DataFrame, numeric: Sequence[str], categorical: Sequence[str],
                        drift: BinSettings) -> dict[str, ColumnBins]:
    """`fit_reference_bins` with the settings of a ``monitoring.drift`` config slice."""
    return fit_reference_bins(df, numeric, categorical, bins=drift.bins, top_k=drift.top_k,
                              discrete_values=drift.discrete_values, tail_buckets=drift.tail_buckets,
                              membership_fpr=drift.membership_fpr)


def _fit_numeric(df: DataFrame, numeric: Sequence[str], bins: int, accuracy: int,
                 cutoff: int) -> dict[str, NumericBins]:
    from pyspark.sql import functions as F

    if not numeric:
        return {}
    probs = edge_probs(bins)
    exprs = []
    for i, c in enumerate(numeric):
        x = finite(F.col(c).cast("double"))
        exprs += [F.min(x).alias(f"n{i}_min"), F.max(x).alias(f"n{i}_max"),
                  F.approx_count_distinct(x, 0.02).alias(f"n{i}_nd")]
        if probs:
            exprs.append(F.percentile_approx(x, F.array(*map(F.lit, probs)), accuracy).alias(f"n{i}_q"))
    row = df.agg(*exprs).first()
    if row is None:
        raise ProfileError("fit_reference_bins: the aggregation returned no row")
    # HyperLogLog errs by a few %: confirm candidate columns with an exact distinct query
    candidates = [c for i, c in enumerate(numeric) if row[f"n{i}_nd"] <= 1.2 * cutoff + 2]
    distinct = _distinct_values(df, candidates, cutoff) if cutoff > 0 else {}
    out = {}
    for i, c in enumerate(numeric):
        values = distinct.get(c)
        edges = value_edges(values) if values else ()
        if not edges:
            interior = list(row[f"n{i}_q"] or []) if probs else []
            edges = quantile_edges(row[f"n{i}_min"], row[f"n{i}_max"], interior)
        out[c] = NumericBins(c, edges)
    return out


def _distinct_values(df: DataFrame, columns: Sequence[str], cutoff: int) -> dict[str, list[float]]:
    """column → its distinct finite values, for the columns that have at most ``cutoff`` of them."""
    from pyspark.sql import functions as F

    if not columns:
        return {}
    stacked = df.select(F.explode(F.array(*[
        F.struct(F.lit(c).alias("column"), finite(F.col(c).cast("double")).alias("value")) for c in columns
    ])).alias("s")).select("s.column", "s.value").filter(F.col("value").isNotNull()).distinct()
    found: dict[str, list[float]] = {c: [] for c in columns}
    for r in stacked.collect():
        found[r["column"]].append(float(r["value"]))
    return {c: vs for c, vs in found.items() if 0 < len(vs) <= cutoff}


def _fit_categorical(df: DataFrame, categorical: Sequence[str], top_k: int, buckets: int,
                     fpr: float) -> dict[str, CategoricalBins]:
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    if not categorical:
        return {}
    stacked = df.select(F.explode(F.array(*[
        F.struct(F.lit(c).alias("column"), F.col(c).cast("string").alias("value")) for c in categorical
    ])).alias("s")).select("s.column", "s.value").filter(F.col("value").isNotNull())
    counts = stacked.groupBy("column", "value").agg(F.count(F.lit(1)).alias("n")).cache()
    try:
        rank = Window.partitionBy("column").orderBy(F.desc("n"), F.asc("value"))
        top = (counts.withColumn("rank", F.row_number().over(rank)).filter(F.col("rank") <= top_k)
               .select("column", "value", "rank").collect())
        totals = {r["column"]: r for r in counts.groupBy("column").agg(
            F.count(F.lit(1)).alias("distinct"), F.sum("n").alias("values"),
            F.sum(F.when(F.col("n") == 1, 1).otherwise(0)).alias("singletons")).collect()}
        wide = [c for c in categorical if c in totals and totals[c]["distinct"] > top_k] if buckets else []
        # one int64 per distinct category, through Arrow (8 bytes each on the driver, no Row objects)
        hashes = {c: counts.filter(F.col("column") == c).select(F.xxhash64(F.col("value")).alias("h"))
                  .toArrow().column("h").to_numpy() for c in wide}
    finally:
        counts.unpersist()
    by_col: dict[str, list[tuple[int, str]]] = {c: [] for c in categorical}
    for r in top:
        by_col[r["column"]].append((r["rank"], r["value"]))
    out = {}
    for c in categorical:
        cats = tuple(v for _, v in sorted(by_col[c]))
        if c in hashes:
            t = totals[c]
            out[c] = CategoricalBins(c, cats, buckets, build_membership(hashes[c], fpr),
                                     float(t["singletons"]) / float(t["values"]))
        else:
            out[c] = CategoricalBins(c, cats)
    return out


# --------------------------------------------------------------------------- storage


def bins_to_json(bins: Mapping[str, ColumnBins]) -> str:
    """Bins as JSON (stored with the model version as an MLflow artifact)."""
    data: list[dict[str, Any]] = []
    for b in bins.values():
        if isinstance(b, NumericBins):
            data.append({"column": b.column, "kind": "numeric", "edges": list(b.edges)})
        else:
            item: dict[str, Any] = {"column": b.column, "kind": "categorical", "categories": list(b.categories)}
            if b.hashed and b.membership is not None:
                m = b.membership
                item.update(buckets=b.buckets, expected_unseen=b.expected_unseen,
                            membership={"bits": m.bits, "hashes": m.hashes, "count": m.count,
                                        "words": m.to_text()})
            data.append(item)
    return json.dumps(data, indent=1)


def bins_fingerprint(columns: Sequence[str], bins: Mapping[str, ColumnBins]) -> str:
    """SHA-256 of the profiled ``columns`` (in order) and their bins: two profiles with the same fingerprint have
    the same accumulator layout and cells, so they merge (a stored per-date profile against a reference)."""
    import hashlib

    text = json.dumps([list(columns), bins_to_json({c: bins[c] for c in columns})])
    return hashlib.sha256(text.encode()).hexdigest()


def bins_from_json(text: str) -> dict[str, ColumnBins]:
    """Inverse of `bins_to_json`."""
    out: dict[str, ColumnBins] = {}
    for item in json.loads(text):
        if item["kind"] == "numeric":
            out[item["column"]] = NumericBins(item["column"], tuple(float(e) for e in item["edges"]))
            continue
        m = item.get("membership")
        membership = Membership.from_text(m["bits"], m["hashes"], m["count"], m["words"]) if m else None
        out[item["column"]] = CategoricalBins(item["column"], tuple(item["categories"]), int(item.get("buckets", 0)),
                                              membership, float(item.get("expected_unseen", 0.0)))
    return out


def membership_rows(b: CategoricalBins) -> list[dict[str, Any]]:
    """The stored rows of a column's membership filter: ``stat`` = ``membership_filter``, ``bin`` = chunk,
    ``category`` = base64 chunk, ``value`` = probes per value, ``lower`` = bits, ``upper`` = values added;
    and ``expected_unseen_share`` (value)."""
    if not b.hashed or b.membership is None:
        return []
    m = b.membership
    text = m.to_text()
    rows = [dict(stat="membership_filter", bin=i, category=text[s:s + MEMBERSHIP_CHUNK], value=float(m.hashes),
                 lower=float(m.bits), upper=float(m.count))
            for i, s in enumerate(range(0, len(text), MEMBERSHIP_CHUNK))]
    return [*rows, dict(stat="expected_unseen_share", value=b.expected_unseen),
            dict(stat="membership_fpr", value=m.fpr)]


def bins_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, ColumnBins]:
    """Rebuild reference bins from stored long-format rows (``bin_count`` / ``category_count`` / ``tail_count``
    / ``membership_filter`` / ``expected_unseen_share``; ``cbpe_*`` rows are skipped)."""
    numeric: dict[str, list[tuple[int, float, float]]] = {}
    categorical: dict[str, list[tuple[int, str]]] = {}
    tails: dict[str, int] = {}
    chunks: dict[str, list[Mapping[str, Any]]] = {}
    expected: dict[str, float] = {}
    kinds: dict[str, str] = {}
    for r in rows:
        col, stat = r["column"], r["stat"]
        if str(stat).startswith(CBPE_STAT_PREFIX):
            continue
        kinds[col] = r["kind"]
        if stat == "bin_count" and r["lower"] is not None and r["upper"] is not None:
            numeric.setdefault(col, []).append((int(r["bin"]), float(r["lower"]), float(r["upper"])))
        elif stat == "category_count" and r["category"] != OTHER:
            categorical.setdefault(col, []).append((int(r["bin"]), str(r["category"])))
        elif stat == "tail_count":
            tails[col] = max(tails.get(col, 0), int(r["bin"]) + 1)
        elif stat == "membership_filter":
            chunks.setdefault(col, []).append(r)
        elif stat == "expected_unseen_share":
            expected[col] = float(r["value"] or 0.0)
    out: dict[str, ColumnBins] = {}
    for col, kind in kinds.items():
        if kind == "numeric":
            spans = sorted(numeric.get(col, []))
            edges = (*[lo for _, lo, _ in spans], spans[-1][2]) if spans else ()
            out[col] = NumericBins(col, tuple(edges))
            continue
        cats = tuple(c for _, c in sorted(categorical.get(col, [])))
        parts = sorted(chunks.get(col, []), key=lambda r: int(r["bin"]))
        if parts and tails.get(col):
            first = parts[0]
            membership = Membership.from_text(int(first["lower"]), int(first["value"]), int(first["upper"]),
                                              "".join(str(p["category"]) for p in parts))
            out[col] = CategoricalBins(col, cats, tails[col], membership, expected.get(col, 0.0))
        else:
            out[col] = CategoricalBins(col, cats)
    return out


# --------------------------------------------------------------------------- helpers


def finite(c: Column) -> Column:
    """``c`` where it is a finite number, else null."""
    from pyspark.sql import functions as F

    return F.when(~F.isnan(c) & ~c.isin(math.inf, -math.inf), c)


def check_columns(df: DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ProfileError(
            f"profile: expected columns {', '.join(missing)} in the DataFrame, found only {', '.join(df.columns)}"
        )
