"""Typed settings, the bundled default sources and the delegations registry."""

from pawatch.config.loader import ConfigError, config_from_text, load_config, load_default
from pawatch.config.model import (
    HttpSettings,
    Schedule,
    Settings,
    Source,
    StorageSettings,
)

__all__ = [
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
