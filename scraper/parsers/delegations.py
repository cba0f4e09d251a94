"""Parser ``delegations``: the Assembly's block listing every national delegation.

Found by its text (the composition sentences), wherever it sits: sidebar, list, table,
``<br>``-separated paragraphs, in English or Russian.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pawatch.config.model import OptionSpec
from pawatch.config.registry import load_registry
from pawatch.scraper.parsers.base import ParseError, ParseResult, ParserSpec, Unreadable
from pawatch.scraper.parsers.composition import (
    COMPOSITION,
    KEYWORDS,
    CompositionError,
    assemble,
    has_statement_keyword,
    read_scope,
    split_pieces,
)
from pawatch.scraper.parsers.records import DelegationRecord
from pawatch.scraper.parsers.text import (
    Link,
    absolute_url,
    blocks_containing,
    links_in,
    visible_lines,
)

NAME = "delegations"


def page_links(node: Any, url: str) -> list[Link]:
    """The links under ``node`` with absolute hrefs (links without a usable href dropped)."""
    out: list[Link] = []
    for link in links_in(node):
        href = absolute_url(url, link.href)
        if href is not None:
            out.append(Link(link.text, href))
    return out


def unreadable_seats(parser: str, records: list[DelegationRecord]) -> list[Unreadable]:
    """The records whose seats could not be read (a chamber the registry cannot resolve):
    their delegation's stored seats are held and the parse is degraded."""
    return [
        Unreadable(record.subject, "seats:", f"{parser}: {record.seats_problem}")
        for record in records
        if record.seats_problem is not None
    ]


def parse_delegations(html: str, url: str, options: Mapping[str, Any]) -> ParseResult:
    result = ParseResult(NAME)
    if not has_statement_keyword(html):
        result.found = False
        result.warnings.append("no delegation block on this page")
        return result
    scope = read_scope(html, options, NAME)
    if scope is None:
        raise ParseError(f"{NAME}: the page has no body")
    # Only the blocks whose text holds a statement keyword are read (not the whole page).
    blocks = blocks_containing(scope, tuple(word for word in KEYWORDS if word in html))
    links = [link for block in blocks for link in page_links(block, url)]
    pieces = split_pieces([line for block in blocks for line in visible_lines(block)])
    sentences = sum(1 for piece in pieces if piece.kind == COMPOSITION)
    if sentences == 0:
        result.found = False
        result.warnings.append("no delegation block on this page")
        return result
    try:  # every composition sentence is read in full, else the page is unreadable
        result.records = list(assemble(pieces, links, load_registry(), result.warnings))
    except CompositionError as exc:
        raise ParseError(f"{NAME}: {exc}") from exc
    if not result.records:  # unreachable: each sentence gives a record or raises
        raise ParseError(f"{NAME}: found {sentences} composition sentence(s) but read none")
    result.unreadable = unreadable_seats(NAME, result.records)
    return result


SPEC = ParserSpec.declare(
    parse_delegations,
    NAME,
    version=3,
    description="The Assembly's block of national delegations: seats per chamber, "
    "plenipotentiary representatives, websites (English or Russian).",
    options={
        "select": OptionSpec(str, "CSS selector of the part of the page to read (default: all)"),
    },
)
