"""Parser ``roster``: the member list of a national parliament (or of its delegation).

HTML mode reads items by CSS selectors; JSON mode (``json_items``/``json_name``) reads a JSON
API. Selectors that match nothing and counts outside ``min_items``/``max_items`` are parse
errors, so a changed layout is reported as a broken source, never as members removed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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


def _field(item: Any, path: str) -> Any:
    """The value at a dotted ``path`` inside a JSON value (list indexes allowed), or None."""
    value = item
    for part in path.split(".") if path else []:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _json_text(item: Any, paths: list[str]) -> str | None:
    parts = [_field(item, path) for path in paths]
    words = [normalize_space(str(p)) for p in parts if isinstance(p, str | int | float)]
    text = " ".join(w for w in words if w)
    return text or None


def _read_json(html: str, url: str, options: Mapping[str, Any]) -> list[RosterEntry | None]:
    try:
        data = json.loads(html)
    except ValueError as exc:
        raise ParseError(f"{NAME}: not JSON ({exc})") from None
    path = option_str(options, "json_items", "") or ""
    items = _field(data, path)
    if not isinstance(items, list):
        raise ParseError(f"{NAME}: json_items {path!r} is not a list in this document")
    name_paths = option_list(options, "json_name")
    if not name_paths:
        raise ParseError(f"{NAME}: JSON mode needs json_name")
    delegation = option_str(options, "delegation")
    role_paths = option_list(options, "json_role")
    chamber_paths = option_list(options, "json_chamber")
    link_path = option_str(options, "json_link")
    entries: list[RosterEntry | None] = []
    for item in items:
        name = _json_text(item, name_paths)
        if name is None:
            entries.append(None)
            continue
        link = _field(item, link_path) if link_path else None
        entries.append(
            RosterEntry(
                name=clean_name(name),
                delegation=delegation,
                role=_json_text(item, role_paths) if role_paths else None,
                chamber=_json_text(item, chamber_paths) if chamber_paths else None,
                link=absolute_url(url, str(link)) if isinstance(link, str | int) else None,
            )
        )
    return entries


def _read_html(html: str, url: str, options: Mapping[str, Any]) -> list[RosterEntry | None]:
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
    entries: list[RosterEntry | None] = []
    for number, item in enumerate(items):
        name_node = fields.first(number, name_selector, "name") if item_selector else item
        name = clean_name(inline_text(name_node))
        if not name:
            entries.append(None)
            continue
        entries.append(
            RosterEntry(
                name=name,
                delegation=delegation,
                role=_text_of(fields, number, role_selector, "role"),
                chamber=_text_of(fields, number, chamber_selector, "chamber"),
                link=absolute_url(url, _href(fields, number, item, name_node, link_selector)),
            )
        )
    if all(entry is None for entry in entries):
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


def parse_roster(html: str, url: str, options: Mapping[str, Any]) -> ParseResult:
    result = ParseResult(NAME)
    json_mode = "json_items" in options or "json_name" in options
    raw = _read_json(html, url, options) if json_mode else _read_html(html, url, options)
    seen: set[str] = set()
    for number, entry in enumerate(raw, start=1):
        if entry is None:
            result.warnings.append(f"item {number}: no name")
            continue
        key = name_key(entry.name)
        if not key:
            result.warnings.append(f"item {number}: {entry.name!r} is not a readable name")
            continue
        if key in seen:
            result.warnings.append(f"item {number}: {entry.name!r} listed twice")
            continue
        seen.add(key)
        result.records.append(entry)
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
    "JSON API.",
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
        "json_items": OptionSpec(str, "JSON mode: dotted path to the list of members"),
        "json_name": OptionSpec((str, list), "JSON mode: field(s) of the name, joined by space"),
        "json_role": OptionSpec((str, list), "JSON mode: field(s) of the role"),
        "json_chamber": OptionSpec((str, list), "JSON mode: field(s) of the chamber"),
        "json_link": OptionSpec(str, "JSON mode: field of the member's page URL"),
    },
)
