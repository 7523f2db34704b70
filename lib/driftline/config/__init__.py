"""Configuration: typed schema (`schema`) and layered loading (`loader`)."""

from driftline.config.loader import LoadedConfig, config_hash, load_config, parse_override, redact
from driftline.config.schema import DriftlineConfig

__all__ = ["DriftlineConfig", "LoadedConfig", "config_hash", "load_config", "parse_override", "redact"]
