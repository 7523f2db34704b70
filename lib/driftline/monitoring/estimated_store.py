"""The calibration table of estimated performance (`driftline.monitoring.estimated.CellTable`) as rows of
``reference_profiles`` and back: stored with the model version by the train job, read by the monitor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from driftline.monitoring.estimated import CELL_COLUMN, ESTIMATED_METRICS, CellTable
from driftline.profiling.stored import CBPE_STAT_PREFIX
from driftline.vocabulary import finite_or_none


def cell_rows(table: CellTable) -> list[dict[str, Any]]:
    """The table as ``reference_profiles`` rows (column `CELL_COLUMN`, role ``score``, kind ``numeric``):
    ``cbpe_cell`` per bin (``bin``, ``lower``, ``upper``, value ``c_k``), ``cbpe_threshold``, ``cbpe_cells``,
    ``cbpe_validation_rows`` and per metric ``cbpe_reference_<m>``, ``cbpe_realized_<m>``, ``cbpe_spread_<m>``,
    ``cbpe_label_spread_<m>`` (value null when undefined)."""
    def row(stat: str, value: float | None, **extra: Any) -> dict[str, Any]:
        r = dict(column=CELL_COLUMN, role="score", kind="numeric", stat=CBPE_STAT_PREFIX + stat, bin=None,
                 lower=None, upper=None, category=None, quantile=None, value=finite_or_none(value))
        r.update(extra)
        return r

    e = table.edges
    out = [row("cell", c, bin=k, lower=e[k], upper=e[k + 1]) for k, c in enumerate(table.probability)]
    out += [row("threshold", table.threshold), row("cells", table.cells),
            row("validation_rows", table.validation_rows)]
    for name, values in (("reference", table.reference), ("realized", table.realized), ("spread", table.spread),
                         ("label_spread", table.label_spread)):
        out += [row(f"{name}_{m}", values.get(m)) for m in ESTIMATED_METRICS]
    return out


def cell_table_from_rows(rows: Sequence[Mapping[str, Any]]) -> CellTable | None:
    """Inverse of `cell_rows` from a version's stored rows (other rows ignored); None when it has no CBPE
    rows (versions trained before estimated performance existed, or whose validation could not fit one)."""
    mine = [r for r in rows if r["column"] == CELL_COLUMN and str(r["stat"]).startswith(CBPE_STAT_PREFIX)]
    cells = sorted((int(r["bin"]), r) for r in mine if r["stat"] == CBPE_STAT_PREFIX + "cell")
    if not cells:
        return None
    value = {str(r["stat"]).removeprefix(CBPE_STAT_PREFIX): r["value"] for r in mine}

    def per_metric(name: str) -> dict[str, float | None]:
        return {m: None if value.get(f"{name}_{m}") is None else float(value[f"{name}_{m}"])
                for m in ESTIMATED_METRICS}

    edges = (*[float(r["lower"]) for _, r in cells], float(cells[-1][1]["upper"]))
    return CellTable(edges, tuple(float(r["value"]) for _, r in cells), float(value["threshold"]),
                     per_metric("reference"), per_metric("realized"), per_metric("spread"),
                     per_metric("label_spread"), int(value["cells"]), int(value["validation_rows"]))
