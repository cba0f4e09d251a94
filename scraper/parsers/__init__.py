"""Parsers, registered by name. Importing this package registers all of them."""

from pawatch.scraper.parsers import delegation_page, delegations, news, page, roster  # noqa: F401
from pawatch.scraper.parsers.base import (
    PARSERS,
    Fact,
    OptionSpec,
    ParseError,
    ParseResult,
    ParserSpec,
    get_parser,
    register,
)
from pawatch.scraper.parsers.records import (
    ChamberSeats,
    DelegationRecord,
    NewsItem,
    PageText,
    RosterEntry,
    Website,
)

__all__ = [
    "PARSERS",
    "ChamberSeats",
    "DelegationRecord",
    "Fact",
    "NewsItem",
    "OptionSpec",
    "PageText",
    "ParseError",
    "ParseResult",
    "ParserSpec",
    "RosterEntry",
    "Website",
    "get_parser",
    "register",
]
