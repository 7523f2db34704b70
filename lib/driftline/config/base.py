"""Shared pieces of every config model."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

Identifier = Annotated[str, Field(pattern=IDENTIFIER.pattern)]


class Frozen(BaseModel):
    """Base of every config model: unknown keys forbidden, immutable after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
