"""Where the embedded backend's files sit: staging folder names and Spark's partition folders."""

from __future__ import annotations

import re
import uuid
from typing import Literal

# Staging folders are named WRITE_FOLDER=w<hex>: partition-shaped, so Spark's partition discovery
# with basePath at the table root accepts files of many writes in one scan (it refuses differently
# nested layouts such as several stage-<id>/ folders, the name used before 2026-11-23).
WRITE_FOLDER = "driftline_write"
STAGE_PREFIX = "stage-"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def new_stage_name() -> str:
    """A fresh staging folder name (``driftline_write=w<uuid hex>``)."""
    return f"{WRITE_FOLDER}=w{uuid.uuid4().hex}"  # 'w': the value never looks like a number or a date


def is_stage_folder(name: str) -> bool:
    """A top-level folder of the table that one write (this layout or the legacy one) staged into."""
    return name.startswith((STAGE_PREFIX, WRITE_FOLDER + "="))


def spark_unescape(text: str) -> str:
    """Undo Spark's partition folder escaping (``%XX`` for a fixed set of ASCII characters)."""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def folder_value(folder: str, column: str) -> str | None | Literal[False]:
    """The partition value text of a Spark partition folder ``<column>=<escaped value>`` (None for
    ``__HIVE_DEFAULT_PARTITION__``, i.e. null); False when the folder is not one of ``column``."""
    name, sep, raw = folder.partition("=")
    if name != column or not sep:
        return False
    return None if raw == NULL_PARTITION else spark_unescape(raw)
