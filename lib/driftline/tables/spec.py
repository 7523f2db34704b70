"""Configuration slice of the table layer (``storage:`` in the config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from driftline.spec import Frozen, Identifier


class StorageConfig(Frozen):
    """Where Delta tables live and how they are written."""

    backend: Literal["auto", "embedded", "native"] = "auto"
    root: str | None = None
    tables: dict[Identifier, str] = Field(default_factory=dict)
    allow_new_columns: bool = False
    orphan_retention_hours: float = Field(24.0, ge=0)
    commit_retries: int = Field(3, ge=0, le=20)
