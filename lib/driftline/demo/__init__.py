"""The demo: a deterministic synthetic churn scenario that drifts, written as Delta source tables."""

from __future__ import annotations

from driftline.demo.data import (
    CUSTOMERS_SCHEMA,
    EVENTS_SCHEMA,
    LABELS_SCHEMA,
    SCHEMAS,
    Phases,
    Scenario,
    Simulation,
    generate,
    simulate,
    to_spark,
    write_scenario,
)

__all__ = [
    "CUSTOMERS_SCHEMA",
    "EVENTS_SCHEMA",
    "LABELS_SCHEMA",
    "SCHEMAS",
    "Phases",
    "Scenario",
    "Simulation",
    "generate",
    "simulate",
    "to_spark",
    "write_scenario",
]
