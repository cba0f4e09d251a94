"""The parsers, by name: ``PARSERS`` is the one list of parser names (the config loader checks
``parser =`` and ``[sources.options]`` against it)."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from pawatch.config.model import OptionSpec
from pawatch.domain import Fact
from pawatch.scraper.charset import decode_body
from pawatch.scraper.errors import FetchError
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

if TYPE_CHECKING:
    from pawatch.config import Source

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


def read_page(
    source: "Source",
    spec: ParserSpec,
    body: bytes,
    content_type: str | None,
    url: str,
    on_crash: Callable[[], None] | None = None,
) -> tuple[ParseResult | None, str | None]:
    """Decode ``body`` and run ``spec``'s parser as ``source`` says: (the result, why the page
    cannot be read); the result is None when decoding or the parser raised. ``on_crash`` is
    called inside the handler of a parser's unexpected exception (to log it)."""
    try:
        decoded = decode_body(body, content_type, forced=source.encoding)
    except FetchError as exc:
        return None, f"cannot decode the page: {exc}"
    options = dict(source.options)
    if "delegation" in spec.options:
        # the source's own `delegation` key, else the one given in [sources.options]
        options["delegation"] = source.delegation or options.get("delegation")
    try:
        result = spec.func(decoded.text, url, options)
    except ParseError as exc:
        return None, str(exc)
    except Exception as exc:  # a parser bug must not look like a change in the world
        if on_crash is not None:
            on_crash()
        return None, f"parser {spec.name} crashed: {type(exc).__name__}: {exc}"
    if not result.found:
        return result, "; ".join(result.warnings) or f"the {spec.name} parser found nothing to read"
    return result, None
