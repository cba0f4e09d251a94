"""The parsers, by name: ``PARSERS`` is the one list of parser names (the config loader checks
``parser =`` and ``[sources.options]`` against it)."""

from pawatch.config.model import OptionSpec
from pawatch.domain import Fact
from pawatch.scraper.parsers import delegation_page, delegations, news, page, roster
from pawatch.scraper.parsers.base import ParseError, ParseResult, ParserSpec, Unreadable
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
    "Unreadable",
    "Website",
    "get_parser",
    "parser_options",
]

PARSERS: dict[str, ParserSpec] = {
    spec.name: spec
    for spec in (delegations.SPEC, delegation_page.SPEC, news.SPEC, roster.SPEC, page.SPEC)
}


def get_parser(name: str) -> ParserSpec:
    """The parser called ``name``; KeyError naming the known ones otherwise."""
    try:
        return PARSERS[name]
    except KeyError:
        raise KeyError(f"unknown parser {name!r}; known: {', '.join(sorted(PARSERS))}") from None


def parser_options() -> dict[str, dict[str, OptionSpec]]:
    """What the config loader checks sources against: each parser's name and options."""
    return {name: dict(spec.options) for name, spec in PARSERS.items()}
