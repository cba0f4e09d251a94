"""Parsers, registered by name. Importing this package registers all of them."""

from scraper.parsers.base import (
    PARSERS,
    Fact,
    OptionSpec,
    ParseError,
    ParseResult,
    ParserSpec,
    get_parser,
    register,
)

__all__ = [
    "PARSERS",
    "Fact",
    "OptionSpec",
    "ParseError",
    "ParseResult",
    "ParserSpec",
    "get_parser",
    "register",
]
