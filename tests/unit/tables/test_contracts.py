"""The table contracts: internally consistent, and the generated reference page is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline import vocabulary as v
from driftline.errors import TableError
from driftline.tables import contracts
from driftline.tables.reference_page import render_docs
from driftline.tables.schema import check_partition_columns

PAGE = Path(__file__).resolve().parents[3] / "docs" / "table-reference.md"


def test_reference_page_is_current() -> None:
    assert PAGE.read_text() == render_docs(), (
        "docs/table-reference.md is stale: run python -m driftline.tables.reference_page > docs/table-reference.md")


@pytest.mark.parametrize("c", contracts.ALL, ids=lambda c: c.name)
def test_contract_is_consistent(c: contracts.TableContract) -> None:
    names = c.names
    assert len(set(names)) == len(names)
    check_partition_columns(c.name, c.schema(), c.partition_by)  # partition columns exist, typed for folders
    assert all(k in names or k == "<entity_key>" for k in c.key)
    assert set(v.PROVENANCE) <= set(names), "every table carries run_id, code_version, config_hash"
    assert all(col.doc for col in c.columns)
    assert "model_name" not in names and "prediction" not in names  # one spelling: model, score
    if not c.per_model:
        assert v.MODEL in names


def test_per_model_names_and_lookup() -> None:
    assert contracts.FEATURES.table("churn") == "churn__features"
    assert contracts.contract_of("churn__predictions") is contracts.PREDICTIONS
    assert contracts.contract_of("monitor_runs") is contracts.MONITOR_RUNS
    assert contracts.contract_of("churn_events") is None and contracts.contract_of("__features") is None
    with pytest.raises(TableError, match="needs the model name"):
        contracts.PREDICTIONS.table()


def test_row_takes_every_column_by_name() -> None:
    c = contracts.PIPELINE_RUNS
    values = {n: n for n in c.names}
    assert c.row(**values) == c.names
    with pytest.raises(TableError, match=r"missing \['steps'\], unknown \['step'\]"):
        c.row(**{("step" if k == "steps" else k): x for k, x in values.items()})


def test_statuses_are_ordered_by_severity() -> None:
    assert v.STATUSES == ("ok", "insufficient_data", "warn", "alert")
    assert v.worst(["ok", "alert", "warn"]) == "alert" and v.worst([]) == "ok"
    assert v.worst(["insufficient_data", "ok"]) == "insufficient_data"


@pytest.mark.parametrize(("value", "stored"), [(None, None), (float("nan"), None), (float("inf"), None),
                                                (float("-inf"), None), (1, 1.0), (-0.5, -0.5)])
def test_one_cleaning_of_undefined_values(value, stored) -> None:
    assert v.finite_or_none(value) == stored
