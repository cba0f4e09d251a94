"""The parser contract: a pure function ``(html, url, options) -> ParseResult``.

A parser has no network, database or clock. It returns typed records plus warnings, raises
``ParseError`` when the page cannot be read the way its source expects (a selector matched
nothing, a count outside its bounds), and says ``found=False`` when the page simply has no
block to read: that is never an empty list that could be read as "everything removed".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pawatch.config.model import OptionSpec
from pawatch.domain import Fact


class ParseError(Exception):
    """The page could not be parsed as its source expects; the message says what was wrong."""


@dataclass(frozen=True)
class Unreadable:
    """A part of a page the parser found but could not read, e.g. a composition sentence
    naming a chamber the registry cannot resolve ("12 guardians of Narnia").

    It is a monitoring problem, never a change: the source's parse status becomes
    ``degraded`` with ``message`` (which quotes the phrase), and the source's stored facts of
    ``subject`` whose attribute starts with ``attribute_prefix`` (e.g. ``"seats:"``) are held
    as they were: neither ended nor replaced, and no event is raised for them.
    """

    subject: str  # e.g. "delegation:RU"
    attribute_prefix: str  # e.g. "seats:" (every seats fact of that delegation)
    message: str


@dataclass
class ParseResult:
    parser: str
    records: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    found: bool = True  # False: the page has no block of the kind this parser reads
    # Parts found but unreadable: parse status "degraded", their facts held (see Unreadable).
    unreadable: list[Unreadable] = field(default_factory=list)

    def facts(self) -> list[Fact]:
        """The facts these records state (empty when ``found`` is False)."""
        out: list[Fact] = []
        for record in self.records:
            out.extend(record.facts())
        return out


ParserFunc = Callable[[str, str, Mapping[str, Any]], ParseResult]


@dataclass(frozen=True)
class ParserSpec:
    name: str
    func: ParserFunc
    version: int  # bump when the parser's output for the same page changes
    description: str
    options: Mapping[str, OptionSpec] = field(default_factory=dict)

    @classmethod
    def declare(
        cls,
        func: ParserFunc,
        name: str,
        *,
        version: int,
        description: str,
        options: Mapping[str, OptionSpec] | None = None,
    ) -> ParserSpec:
        """A parser module's ``SPEC``: what makes it selectable as ``parser = "<name>"``;
        the package lists every module's ``SPEC`` in one registry (``PARSERS``)."""
        return cls(name, func, version, description, dict(options or {}))
