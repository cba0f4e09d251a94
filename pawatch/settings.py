"""Loading the configuration with the parsers it names checked: the one way the application
loads settings. The config layer cannot know the scraper's parsers (imports run config ->
scraper, never back), so this is where the two meet: ``parser = "..."`` and
``[sources.options]`` are checked against the scraper's registry at load, as part of the load.
"""

from __future__ import annotations

import os
from pathlib import Path

from pawatch.config import Settings, config_from_text, load_config, load_default
from pawatch.scraper.parsers import parser_options


def load_settings(path: str | os.PathLike[str] | None = None, *, db: str | None = None) -> Settings:
    """The bundled defaults, then the user file (``path``/``$PAWATCH_CONFIG``), then ``db``."""
    return load_config(path, parsers=parser_options(), db=db)


def settings_from_text(text: str, file: str = "<text>", base: Path | None = None) -> Settings:
    """TOML text over the bundled defaults (the demo and tests)."""
    return config_from_text(text, file, base, parsers=parser_options())


def default_settings() -> Settings:
    """The bundled default configuration alone."""
    return load_default(parser_options())
