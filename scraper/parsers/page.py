"""Parser ``page``: the readable text of a page (or of a CSS selection), normalised so that
whitespace and markup noise are not changes; ``ignore`` regexes remove volatile text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pawatch.config.model import OptionSpec
from pawatch.scraper.parsers.base import ParseError, ParseResult, ParserSpec
from pawatch.scraper.parsers.records import PageText
from pawatch.scraper.parsers.text import (
    normalize_text,
    option_list,
    option_str,
    parse_html,
    remove_nodes,
    select,
    visible_lines,
)

NAME = "page"


def _compile(patterns: list[str]) -> list[re.Pattern[str]]:
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ParseError(f"option ignore: bad regex {pattern!r}: {exc}") from None
    return compiled


def _check_ignore(value: Any) -> None:
    """At config load: every ``ignore`` pattern is a string that compiles."""
    for pattern in [value] if isinstance(value, str) else value:
        if not isinstance(pattern, str):
            raise ValueError(f"expected regexes as strings, got {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"expected regexes that compile, {pattern!r}: {exc}") from None


def parse_page(html: str, url: str, options: Mapping[str, Any]) -> ParseResult:
    selector = option_str(options, "select", "body") or "body"
    ignore = _compile(option_list(options, "ignore"))
    tree = parse_html(html)
    remove_nodes(tree, option_list(options, "strip"))
    if tree.root is None:
        raise ParseError(f"{NAME}: the page could not be parsed")
    if selector == "body":  # the default: the parser's body is what ``css("body")`` finds,
        nodes = [] if tree.body is None else [tree.body]  # without a walk of the whole tree
    else:
        nodes = select(tree.root, selector, "select")
    if not nodes:
        raise ParseError(f"{NAME}: select {selector!r} matched nothing")
    text = "\n".join("\n".join(visible_lines(node)) for node in nodes)
    removed = 0
    for pattern in ignore:
        text, count = pattern.subn("", text)
        removed += count
    if removed:  # re-normalise only when an ignore pattern cut something
        text = normalize_text(text)
    if not text:
        raise ParseError(f"{NAME}: select {selector!r} has no text")
    return ParseResult(NAME, [PageText(text, selector)])


SPEC = ParserSpec.declare(
    parse_page,
    NAME,
    version=1,
    description="The readable text of the page or of a CSS selection, normalised.",
    options={
        "select": OptionSpec(str, "CSS selector of the part to read (default: body)"),
        "ignore": OptionSpec(
            (str, list), "regexes removed from the text (volatile parts)", check=_check_ignore
        ),
        "strip": OptionSpec((str, list), "CSS selectors of elements removed first"),
    },
)
