"""Every configuration under conf/examples/ loads (docs/own-data.md points users at them), and the worked
example's keys say what the guide says."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.config import load_config

EXAMPLES = Path(__file__).resolve().parents[3] / "conf" / "examples"
MODELS = sorted((d, m.stem) for d in EXAMPLES.iterdir() if (d / "base.yaml").exists()
                for m in (d / "models").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert ("invoices", "late_payment") in [(d.name, m) for d, m in MODELS]


@pytest.mark.parametrize(("conf", "model"), MODELS, ids=[f"{d.name}/{m}" for d, m in MODELS])
def test_example_loads(conf: Path, model: str) -> None:
    cfg = load_config(model, conf).config
    assert cfg.name == model


def test_the_invoices_example_uses_its_own_label_as_of_column_and_the_guides_drift_share() -> None:
    cfg = load_config("late_payment", EXAMPLES / "invoices").config
    assert cfg.sources.labels is not None and cfg.sources.labels.as_of == "invoice_date"
    features = len(cfg.features)
    assert features == 10 and cfg.monitoring.drift.dataset_drift_share == pytest.approx(3 / features)
    assert set(cfg.storage.tables) == {cfg.sources.events.table, cfg.sources.labels.table,
                                       *([cfg.sources.entities.table] if cfg.sources.entities else [])}


def test_the_served_example_is_monitor_only_with_its_tables_mapped() -> None:
    cfg = load_config("loan_default", EXAMPLES / "served").config
    src = cfg.sources.inference
    assert src is not None and cfg.sources.events is None and src.timestamp == "requested_at"
    assert {f.kind for f in cfg.features} == {"logged"}
    assert cfg.sources.labels is not None and set(cfg.storage.tables) == {src.table, cfg.sources.labels.table}
