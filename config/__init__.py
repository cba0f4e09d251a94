"""Typed settings, the bundled default sources and the delegations registry."""

from pawatch.config.loader import ConfigError, config_from_text, load_config, load_default
from pawatch.config.model import (
    PARSER_NAMES,
    HttpSettings,
    Schedule,
    Settings,
    Source,
    StorageSettings,
)

__all__ = [
    "PARSER_NAMES",
    "ConfigError",
    "HttpSettings",
    "Schedule",
    "Settings",
    "Source",
    "StorageSettings",
    "config_from_text",
    "load_config",
    "load_default",
]
