"""Parser ``roster``: the member list of a national parliament (or of its delegation).

HTML mode reads items by CSS selectors; JSON mode (``json_items``/``json_name``) reads a JSON
API with JMESPath expressions (https://jmespath.org): ``json_items`` finds the member list in
the document, ``json_filter`` keeps the items that are members now, ``json_name`` builds a
name from one or more fields. ``json_vars`` names values of the whole document (e.g. the
current convocation) that the other expressions use as ``var('name')``: JMESPath 1.x cannot
refer to the document's root from inside a filter.

Both modes drop an item that links back to the list page itself, and read several items
linking to one person page (the same last path segment) as one member. Selectors that match
nothing and counts outside ``min_items``/``max_items`` are parse errors, so a changed layout
is reported as a broken source, never as members removed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import jmespath
from jmespath import functions as jmespath_functions
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from selectolax.lexbor import LexborNode

from pawatch.config.model import OptionSpec
from pawatch.scraper.parsers.base import ParseError, ParseResult, ParserSpec
from pawatch.scraper.parsers.names import clean_name, name_key
from pawatch.scraper.parsers.records import RosterEntry
from pawatch.scraper.parsers.text import (
    ItemFields,
    absolute_url,
    inline_text,
    normalize_space,
    option_int,
    option_list,
    option_str,
    parse_html,
    remove_nodes,
    select,
)

NAME = "roster"


class _Vars(jmespath_functions.Functions):
    """JMESPath functions for the source's expressions: ``var('name')`` is the value of the
    ``json_vars`` entry ``name``, computed once over the whole document."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__()
        self.values = values

    @jmespath_functions.signature({"types": ["string"]})
    def _func_var(self, name: str) -> Any:
        if name not in self.values:
            known = ", ".join(sorted(self.values)) or "none"
            raise ParseError(f"{NAME}: var({name!r}) is not in json_vars (known: {known})")
        return self.values[name]


def _compile(option: str, expression: str) -> ParsedResult:
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        detail = normalize_space(str(exc))
        raise ParseError(
            f"option {option}: not a JMESPath expression {expression!r} ({detail})"
        ) from None


class _Query:
    """The source's JMESPath expressions, compiled once per parse, with its ``json_vars``."""

    def __init__(self) -> None:
        self.options = jmespath.Options(custom_functions=_Vars({}))
        self.compiled: dict[str, ParsedResult] = {}

    def bind(self, document: Any, variables: Any) -> None:
        if variables is None:
            return
        if not isinstance(variables, Mapping) or not all(
            isinstance(v, str) for v in variables.values()
        ):
            raise ParseError("option json_vars: expected a table of names to JMESPath expressions")
        values: dict[str, Any] = {}
        for name, expression in variables.items():
            value = self.search(f"json_vars.{name}", expression, document)
            if value is None:
                # The document lost a field the filter depends on: a broken source, never
                # "nobody matches the filter".
                raise ParseError(
                    f"{NAME}: json_vars.{name} ({expression!r}) is null in this document"
                )
            values[name] = value
        self.options = jmespath.Options(custom_functions=_Vars(values))

    def search(self, option: str, expression: str, value: Any) -> Any:
        compiled = self.compiled.get(expression)
        if compiled is None:
            compiled = self.compiled[expression] = _compile(option, expression)
        try:
            return compiled.search(value, options=self.options)
        except JMESPathError as exc:
            detail = normalize_space(str(exc))
            raise ParseError(f"option {option}: {expression!r} failed here ({detail})") from None

    def text(self, option: str, expressions: list[str], item: Any) -> str | None:
        parts = [self.search(option, expression, item) for expression in expressions]
        words = [normalize_space(str(p)) for p in parts if _is_scalar(p)]
        text = " ".join(w for w in words if w)
        return text or None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _truthy(value: Any) -> bool:
    """JMESPath's truth: false, null, "", [] and {} are false; every number is true."""
    return value is not False and value is not None and value not in ("", [], {})


def _read_json(html: str, url: str, options: Mapping[str, Any]) -> list[RosterEntry]:
    try:
        data = json.loads(html)
    except ValueError as exc:
        raise ParseError(f"{NAME}: not JSON ({exc})") from None
    query = _Query()
    query.bind(data, options.get("json_vars"))
    path = option_str(options, "json_items", "") or "@"
    items = query.search("json_items", path, data)
    if not isinstance(items, list):
        raise ParseError(f"{NAME}: json_items {path!r} is not a list in this document")
    name_paths = option_list(options, "json_name")
    if not name_paths:
        raise ParseError(f"{NAME}: JSON mode needs json_name")
    item_filter = option_str(options, "json_filter")
    delegation = option_str(options, "delegation")
    role_paths = option_list(options, "json_role")
    chamber_paths = option_list(options, "json_chamber")
    link_path = option_str(options, "json_link")
    entries: list[RosterEntry] = []
    for item in items:
        if item_filter is not None and not _truthy(query.search("json_filter", item_filter, item)):
            continue
        name = query.text("json_name", name_paths, item)
        link = query.search("json_link", link_path, item) if link_path else None
        entries.append(
            RosterEntry(
                name=clean_name(name) if name else "",
                delegation=delegation,
                role=query.text("json_role", role_paths, item) if role_paths else None,
                chamber=query.text("json_chamber", chamber_paths, item) if chamber_paths else None,
                link=absolute_url(url, str(link)) if _is_scalar(link) else None,
            )
        )
    return entries


def _read_html(html: str, url: str, options: Mapping[str, Any]) -> list[RosterEntry]:
    name_selector = option_str(options, "name")
    if not name_selector:
        raise ParseError(
            f"{NAME}: option name (CSS selector of a member's name) is required in HTML mode"
        )
    tree = parse_html(html)
    remove_nodes(tree, option_list(options, "strip"))
    root = tree.body
    if root is None:
        raise ParseError(f"{NAME}: the page has no body")
    item_selector = option_str(options, "item")
    items = select(root, item_selector or name_selector, "item" if item_selector else "name")
    if not items:
        which = f"item selector {item_selector!r}" if item_selector else f"name {name_selector!r}"
        raise ParseError(f"{NAME}: {which} matched nothing")
    role_selector = option_str(options, "role")
    chamber_selector = option_str(options, "chamber")
    link_selector = option_str(options, "link")
    delegation = option_str(options, "delegation")
    # Each selector runs once over the page; its matches go to their items.
    fields = ItemFields(root, items)
    entries: list[RosterEntry] = []
    for number, item in enumerate(items):
        name_node = fields.first(number, name_selector, "name") if item_selector else item
        entries.append(
            RosterEntry(
                name=clean_name(inline_text(name_node)),
                delegation=delegation,
                role=_text_of(fields, number, role_selector, "role"),
                chamber=_text_of(fields, number, chamber_selector, "chamber"),
                link=absolute_url(url, _href(fields, number, item, name_node, link_selector)),
            )
        )
    if not any(entry.name for entry in entries):
        raise ParseError(
            f"{NAME}: {len(items)} items matched but name {name_selector!r} found no names"
        )
    return entries


def _text_of(fields: ItemFields, number: int, selector: str | None, option: str) -> str | None:
    if selector is None:
        return None
    return inline_text(fields.first(number, selector, option)) or None


def _href(
    fields: ItemFields,
    number: int,
    item: LexborNode,
    name_node: LexborNode | None,
    selector: str | None,
) -> str | None:
    if selector is not None:
        node = fields.first(number, selector, "link")
    elif item.tag == "a":
        node = item
    elif name_node is not None and name_node.tag == "a":
        node = name_node
    else:
        node = fields.first(number, "a[href]", "link")
    return node.attributes.get("href") if node is not None else None


def _page_key(url: str) -> str:
    """A page's path and query, host and trailing slash aside (the list page's own links)."""
    parts = urlsplit(url)
    return (parts.path.rstrip("/") or "/") + (f"?{parts.query}" if parts.query else "")


def _person_key(url: str) -> str:
    """Which person a link is to: its last path segment (with the query, if any), so the
    photo link and the name link of one card, or two cards of one person, read as one."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    last = segments[-1] if segments else ""
    return last + (f"?{parts.query}" if parts.query else "")


def parse_roster(html: str, url: str, options: Mapping[str, Any]) -> ParseResult:
    result = ParseResult(NAME)
    json_mode = "json_items" in options or "json_name" in options
    raw = _read_json(html, url, options) if json_mode else _read_html(html, url, options)
    list_page = _page_key(url)
    # Items without a name whose person is named by another item are not worth a warning.
    unnamed: dict[str, int] = {}
    named_people: set[str] = set()  # person keys already read with a name
    seen: set[str] = set()
    for number, entry in enumerate(raw, start=1):
        person = None
        if entry.link is not None:
            if _page_key(entry.link) == list_page:
                continue  # a card linking back to the list itself: no member
            person = _person_key(entry.link) or None
        if not entry.name:
            if person is None:
                result.warnings.append(f"item {number}: no name")
            else:
                unnamed.setdefault(person, number)
            continue
        if person is not None and person in named_people:
            result.warnings.append(f"item {number}: {entry.name!r} listed twice")
            continue
        key = name_key(entry.name)
        if not key:
            result.warnings.append(f"item {number}: {entry.name!r} is not a readable name")
            continue
        if key in seen:
            result.warnings.append(f"item {number}: {entry.name!r} listed twice")
            continue
        if person is not None:
            named_people.add(person)
        seen.add(key)
        result.records.append(entry)
    result.warnings += [
        f"item {number}: no name"
        for person, number in unnamed.items()
        if person not in named_people
    ]
    count = len(result.records)
    minimum, maximum = option_int(options, "min_items"), option_int(options, "max_items")
    if count == 0:
        raise ParseError(f"{NAME}: no members read ({len(raw)} items)")
    if minimum is not None and count < minimum:
        raise ParseError(f"{NAME}: {count} members, fewer than min_items={minimum}")
    if maximum is not None and count > maximum:
        raise ParseError(f"{NAME}: {count} members, more than max_items={maximum}")
    return result


SPEC = ParserSpec.declare(
    parse_roster,
    NAME,
    version=2,
    description="Members of a national parliament or delegation, by CSS selectors or from a "
    "JSON API (JMESPath).",
    options={
        "delegation": OptionSpec(str, "the source's delegation id (facts go to it)"),
        # Required in HTML mode (checked when parsing); JSON mode uses json_name instead, so
        # the config loader cannot demand it for every roster source.
        "name": OptionSpec(str, "HTML mode (required there): CSS selector of a member's name"),
        "item": OptionSpec(str, "CSS selector of one member's block (default: the name)"),
        "role": OptionSpec(str, "CSS selector of a member's role (inside item)"),
        "chamber": OptionSpec(str, "CSS selector of a member's chamber (inside item)"),
        "link": OptionSpec(str, "CSS selector of the link to a member's page (inside item)"),
        "min_items": OptionSpec(int, "fewer members is a parse error (a collapsed page)"),
        "max_items": OptionSpec(int, "more members is a parse error (the selector overreaches)"),
        "strip": OptionSpec((str, list), "CSS selectors of noise to remove first"),
        "json_items": OptionSpec(
            str, "JSON mode: JMESPath expression of the list of members (default: the document)"
        ),
        "json_filter": OptionSpec(
            str, "JSON mode: JMESPath expression over one item; the item is kept when it is true"
        ),
        "json_vars": OptionSpec(
            dict, "JSON mode: names -> JMESPath over the whole document, used as var('name')"
        ),
        "json_name": OptionSpec(
            (str, list), "JSON mode: JMESPath expression(s) of the name, joined by a space"
        ),
        "json_role": OptionSpec((str, list), "JSON mode: JMESPath expression(s) of the role"),
        "json_chamber": OptionSpec((str, list), "JSON mode: JMESPath expression(s) of the chamber"),
        "json_link": OptionSpec(str, "JSON mode: JMESPath expression of the member's page URL"),
    },
)
