"""Every configuration key is documented (docs/*.md), so users never meet an unexplained key."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from driftline.config.schema import DriftlineConfig

DOCS = Path(__file__).resolve().parents[3] / "docs"


def keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        annotation = field.annotation
        for candidate in getattr(annotation, "__args__", ()) or (annotation,):
            inner = getattr(candidate, "__args__", ())
            for sub in (candidate, *inner):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    out.extend(keys(sub, f"{path}."))
    return out


def test_every_config_key_is_documented() -> None:
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", text))
    missing = [k for k in keys(DriftlineConfig) if k not in documented]
    assert missing == []
