"""Configuration: typed schema (`schema`) and layered loading (`loader`)."""

from driftline.config.loader import (
    LoadedConfig,
    config_hash,
    load_config,
    load_workspace_config,
    parse_override,
    redact,
)
from driftline.config.schema import DriftlineConfig, WorkspaceConfig

__all__ = ["DriftlineConfig", "LoadedConfig", "WorkspaceConfig", "config_hash", "load_config",
           "load_workspace_config", "parse_override", "redact"]
