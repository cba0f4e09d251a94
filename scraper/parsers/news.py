"""Parser ``news-list``: news items from a list page, or one article page.

List mode reads items by CSS selectors (defaults fit the Assembly's events list); article mode
reads the title, date and text of a single article. ``mode = "auto"`` (the default) reads a
list when the item selector matches, and an article only when the page looks like a single
article: its title sits in a block with text and no repeated list of item links (a list page
whose item class was renamed must not become one "news item" keyed by the list's URL).
Otherwise, and whenever an explicitly configured ``item`` selector matches nothing, it is a
ParseError. ``strip`` removes noise first (the Duma's deputy tooltip cards, repeated photo
captions); ``watch`` terms found in an item are kept on it for later filtering.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from selectolax.lexbor import LexborNode

from pawatch.config.model import OptionSpec
from pawatch.domain import fold_text
from pawatch.scraper.parsers.base import ParseError, ParseResult, ParserSpec
from pawatch.scraper.parsers.dates import looks_like_date, parse_date
from pawatch.scraper.parsers.records import NewsItem
from pawatch.scraper.parsers.text import (
    ItemFields,
    absolute_url,
    inline_text,
    option_list,
    option_str,
    parse_html,
    remove_nodes,
    select,
    select_first,
    visible_lines,
)

NAME = "news-list"

DEFAULTS: dict[str, str] = {
    "item": ".events-list .item, .news-list .item, .news-item, .event-item, .news__item",
    "title": ".title, .name, h2, h3, h4",
    "link": "a[href]",
    "date": ".date, time, .news-date, .event-date",
    "summary": ".preview, .announce, .anons, .summary, .description, .lead",
    "article": "article, .article, .news-detail, .event-detail, main, #content, .content",
    "article_title": "h1",
    "article_date": ".date, time, .news-date, .event-date, .article-date",
    "article_text": ".article-text, .news-text, .detail-text, .text, .entry-content",
}
_MODES = ("auto", "list", "article")
_DATE_SCAN_LINES = 4  # article pages without a date element: look this far after the title
# auto mode: a page is an article when the smallest block around its title holding this much
# more text than the title holds no _LIST_MIN siblings of one of these tags (and class) that
# each contain a link: those are a list of items, whatever their class.
_ARTICLE_TEXT_MIN = 40
_LIST_TAGS = frozenset({"li", "div", "article", "section", "tr", "dt", "dd"})
_LIST_MIN = 3


def _date_of(node: LexborNode | None) -> tuple[str | None, str | None]:
    """(ISO date, date as written) of a date element; the ``datetime`` attribute helps."""
    if node is None:
        return None, None
    text = inline_text(node) or None
    iso = parse_date(text or "")
    if iso is None:
        iso = parse_date(node.attributes.get("datetime") or "")
    return iso, text


def _watch_hits(terms: list[str], *texts: str | None) -> tuple[str, ...]:
    if not terms:
        return ()
    haystack = fold_text(" ".join(t for t in texts if t))
    return tuple(term for term in terms if fold_text(term) in haystack)


def _read_list(
    root: LexborNode,
    items: list[LexborNode],
    url: str,
    options: Mapping[str, Any],
    result: ParseResult,
) -> None:
    sel = {key: option_str(options, key, DEFAULTS[key]) or DEFAULTS[key] for key in DEFAULTS}
    watch = option_list(options, "watch")
    seen: set[str] = set()
    untitled: dict[str, int] = {}  # href -> item number: warned only if no item titles it
    # Each selector runs once over the page; its matches go to their items.
    fields = ItemFields(root, items)
    for index, item in enumerate(items):
        number = index + 1
        link_node = item if item.tag == "a" else fields.first(index, sel["link"], "link")
        href = absolute_url(url, link_node.attributes.get("href") if link_node else None)
        title_node = fields.first(index, sel["title"], "title")
        title = _title_text(title_node) or _link_title(item, link_node)
        if href is None:
            result.warnings.append(f"item {number}: no link")
            continue
        if not title:  # e.g. a photo link beside the title link to the same item
            untitled.setdefault(href, number)
            continue
        if href in seen:
            continue
        seen.add(href)
        date, date_text = _date_of(fields.first(index, sel["date"], "date"))
        if date_text and date is None:
            result.warnings.append(f"item {number}: unreadable date {date_text!r} kept as text")
        summary = inline_text(fields.first(index, sel["summary"], "summary")) or None
        hits = _watch_hits(watch, title, summary)
        result.records.append(NewsItem(href, title, date, date_text, summary, None, hits))
    untitled_numbers = [number for href, number in untitled.items() if href not in seen]
    result.warnings += [f"item {number}: no title" for number in untitled_numbers]


def _title_text(node: LexborNode | None) -> str:
    """A title element's text, unless it is only a date (the Assembly's events list puts the
    date in the item's first link)."""
    text = inline_text(node)
    return "" if looks_like_date(text) else text


def _link_title(item: LexborNode, link_node: LexborNode | None) -> str:
    """An item's title from its links: the first link text that is not only a date, else the
    item link's text."""
    for node in [link_node, *select(item, "a[href]", "link")]:
        text = inline_text(node)
        if text and not looks_like_date(text):
            return text
    return inline_text(link_node)


def _article_title(
    root: LexborNode, sel: Mapping[str, str]
) -> tuple[LexborNode, LexborNode | None]:
    """An article page's main block and its title node (searched in the block first)."""
    container = select_first(root, sel["article"], "article") or root
    title_node = select_first(container, sel["article_title"], "article_title")
    if title_node is None and container is not root:
        title_node = select_first(root, sel["article_title"], "article_title")
    return container, title_node


def _read_article(root: LexborNode, url: str, options: Mapping[str, Any]) -> NewsItem:
    sel = {key: option_str(options, key, DEFAULTS[key]) or DEFAULTS[key] for key in DEFAULTS}
    container, title_node = _article_title(root, sel)
    title = inline_text(title_node)
    if not title:
        raise ParseError(
            f"{NAME}: no item matched and no article title ({sel['article_title']!r}) found"
        )
    date, date_text = _date_of(select_first(container, sel["article_date"], "article_date"))
    text_node = select_first(container, sel["article_text"], "article_text")
    lines = visible_lines(text_node if text_node is not None else container)
    if title_node is not None and text_node is None:
        lines = [line for line in lines if line != title]
    if date_text is None:  # no date element: a date line near the top of the text
        for line in lines[:_DATE_SCAN_LINES]:
            if looks_like_date(line):
                date, date_text = parse_date(line), line
                break
    if date_text is not None:
        lines = [line for line in lines if line != date_text]
    text = "\n".join(lines)
    hits = _watch_hits(option_list(options, "watch"), title, text)
    return NewsItem(url, title, date, date_text, None, text or None, hits)


def _not_an_article(root: LexborNode, url: str, options: Mapping[str, Any]) -> str | None:
    """Why the page is not a single article (auto mode), or None when it is one (or has no
    title at all: ``_read_article`` reports that)."""
    sel = {key: option_str(options, key, DEFAULTS[key]) or DEFAULTS[key] for key in DEFAULTS}
    _, title_node = _article_title(root, sel)
    if title_node is None:
        return None
    enough = len(inline_text(title_node)) + _ARTICLE_TEXT_MIN
    region = title_node
    while len(inline_text(region)) < enough:
        if region.mem_id == root.mem_id or region.parent is None:
            return "no text beside its title"
        region = region.parent
    return _repeated_links(region, url)


def _repeated_links(region: LexborNode, url: str) -> str | None:
    """A description of the first list of item links in ``region`` (at least ``_LIST_MIN``
    sibling blocks of one tag and class, each holding a usable link), or None."""
    linked: dict[int, LexborNode] = {}  # the nodes holding a usable link, up to region
    for anchor in select(region, "a[href]", "link"):
        if absolute_url(url, anchor.attributes.get("href")) is None:
            continue
        node: LexborNode | None = anchor
        while node is not None and node.mem_id not in linked:
            linked[node.mem_id] = node
            if node.mem_id == region.mem_id:
                break
            node = node.parent
    for parent in linked.values():
        groups: Counter[tuple[str, str]] = Counter(
            (child.tag or "", child.attributes.get("class") or "")
            for child in parent.iter()
            if child.tag in _LIST_TAGS and child.mem_id in linked
        )
        for (tag, cls), count in groups.items():
            if count >= _LIST_MIN:
                shown = f'<{tag} class="{cls}">' if cls else f"<{tag}>"
                return f"a list of {count} {shown} items with links under <{parent.tag}>"
    return None


def parse_news(html: str, url: str, options: Mapping[str, Any]) -> ParseResult:
    result = ParseResult(NAME)
    mode = option_str(options, "mode", "auto")
    if mode not in _MODES:
        raise ParseError(f"option mode: expected one of {', '.join(_MODES)}, got {mode!r}")
    tree = parse_html(html)
    remove_nodes(tree, option_list(options, "strip"))
    root = tree.body
    if root is None:
        raise ParseError(f"{NAME}: the page has no body")
    configured = option_str(options, "item") or None
    item_selector = configured or DEFAULTS["item"]
    items = select(root, item_selector, "item") if mode != "article" else []
    if not items and (mode == "list" or (mode == "auto" and configured is not None)):
        raise ParseError(f"{NAME}: item selector {item_selector!r} matched nothing")
    if not items and mode == "auto":
        why = _not_an_article(root, url, options)
        if why is not None:
            raise ParseError(
                f"{NAME}: no item matched {item_selector!r} and the page is not a single "
                f"article ({why}); set the source's mode and selectors"
            )
    if items:
        _read_list(root, items, url, options, result)
        if not result.records:
            raise ParseError(
                f"{NAME}: {len(items)} items matched {item_selector!r} but none had a link "
                "and a title"
            )
        minimum = options.get("min_items")
        if isinstance(minimum, int) and len(result.records) < minimum:
            raise ParseError(f"{NAME}: {len(result.records)} items, fewer than min_items={minimum}")
        return result
    article = _read_article(root, url, options)
    if article.date_text and article.date is None:
        result.warnings.append(f"unreadable date {article.date_text!r} kept as text")
    result.records.append(article)
    return result


SPEC = ParserSpec.declare(
    parse_news,
    NAME,
    version=3,
    description="News items (title, URL, date, summary) from a list page, or one article "
    "(title, date, text).",
    options={
        "mode": OptionSpec(str, "auto (default), list or article"),
        "item": OptionSpec(str, "CSS selector of one news item in a list"),
        "title": OptionSpec(str, "CSS selector of an item's title (inside the item)"),
        "link": OptionSpec(str, "CSS selector of an item's link (inside the item)"),
        "date": OptionSpec(str, "CSS selector of an item's date (inside the item)"),
        "summary": OptionSpec(str, "CSS selector of an item's summary (inside the item)"),
        "article": OptionSpec(str, "CSS selector of an article page's main block"),
        "article_title": OptionSpec(str, "CSS selector of an article's title"),
        "article_date": OptionSpec(str, "CSS selector of an article's date"),
        "article_text": OptionSpec(str, "CSS selector of an article's text"),
        "strip": OptionSpec((str, list), "CSS selectors of noise to remove first"),
        "watch": OptionSpec((str, list), "terms to flag on items (kept for filtering)"),
        "min_items": OptionSpec(int, "fewer items in a list is a parse error"),
    },
)
