"""Configuration slice of the data-quality gate (``quality:`` in the model config)."""

from __future__ import annotations

from pydantic import Field

from driftline.config.base import Frozen


class QualityConfig(Frozen):
    """Data-quality checks run on sources and produced features before a commit."""

    checks: list[dict[str, object]] = Field(default_factory=list)
