"""Pure text helpers shared by the parsers: visible text, whitespace, URLs, CSS selection."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from pawatch.scraper.parsers.base import ParseError

# Elements whose start and end break a line of visible text.
BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "option",
        "select",
        "textarea",
    ]
)
# Elements whose content is never visible text.
HIDDEN_TAGS = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "head",
        "title",
        "iframe",
        "object",
        "svg",
        "math",
        "canvas",
    ]
)

_INVISIBLE_RE = re.compile(r"[\u00ad\u200b-\u200d\u2060\ufeff]")  # soft hyphen, zero-width


_INVISIBLE_CHARS = "\u00ad\u200b\u200c\u200d\u2060\ufeff"


def remove_invisible(text: str) -> str:
    """Remove soft hyphens and zero-width characters."""
    if text.isascii() or not any(ch in text for ch in _INVISIBLE_CHARS):
        return text  # (one fast scan per character, usually all that is needed)
    return _INVISIBLE_RE.sub("", text)


def normalize_space(text: str) -> str:
    """Collapse every run of whitespace (no-break and thin spaces too) to one space; drop
    zero-width characters and soft hyphens."""
    if text.isprintable() and "  " not in text:
        # The usual case, decided in C: a printable string has no whitespace but the plain
        # space and no invisible character (those are all non-printable), so with no double
        # space only its ends can change.
        return text.strip(" ")
    return " ".join(remove_invisible(text).split())


def normalize_text(text: str) -> str:
    """Normalise each line's whitespace and drop empty lines; lines joined with ``\\n``."""
    lines = (normalize_space(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True)
class Link:
    """An ``<a href>``: its visible text (one line) and its href as written."""

    text: str
    href: str


def _tag_ids(tags: frozenset[str]) -> frozenset[int]:
    """Lexbor's numeric ids of ``tags`` (the same in every document: they are built in), so
    that one walk of the tree can sort its elements without reading their names."""
    document = LexborHTMLParser("")
    return frozenset(document.create_node(tag).tag_id for tag in tags)


_BREAK_IDS = _tag_ids(BLOCK_TAGS | {"br"})
_HIDDEN_IDS = _tag_ids(HIDDEN_TAGS)
_MARKED_IDS = _BREAK_IDS | _HIDDEN_IDS
_LINE_BREAK = "\f"  # marks a block boundary in the parser's own copy of the tree
_LINE_BREAK_BYTES = _LINE_BREAK.encode()  # (insert_before/after take bytes without encoding)
_MARK = "\ue000"  # a private-use character, a line break too (as it always was)
# Whitespace that real text holds, turned into plain spaces before lines are cut; any other
# whitespace (and any invisible character) makes a line non-printable: see ``_lines``.
_COMMON_SPACES = ("\n", "\t", "\r", "\xa0")
_SPACE_RUN = re.compile("  +")


# More elements than this is not a page a person reads: refusing it bounds the parser's
# memory (a tree node and the Python objects read from it per element). A large real page
# has a few thousand; 5 MB of links is about 100,000.
MAX_ELEMENTS = 50_000


def parse_html(html: str) -> LexborHTMLParser:
    """Parse an HTML document (never raises on malformed input); a document with more than
    ``MAX_ELEMENTS`` start tags raises ParseError before anything is built."""
    elements = html.count("<")  # C-speed counts: every tag, then (when needed) start tags
    if elements > MAX_ELEMENTS:
        elements -= html.count("</")  # start tags (and comments)
        if elements > MAX_ELEMENTS:
            raise ParseError(
                f"the page has about {elements} elements, more than {MAX_ELEMENTS}: not read"
            )
    return LexborHTMLParser(html)


def visible_lines(node: LexborNode | None) -> list[str]:
    """The visible text of ``node`` as lines: block elements and ``<br>`` break lines, hidden
    elements (script, style, ...) are left out, whitespace is normalised, empty lines dropped.

    For speed this marks block boundaries in the tree itself (one walk of the elements, then
    one C-level text extraction) and removes hidden elements: call it on a tree the parser
    owns. Calling it again on the same tree gives the same lines.
    """
    if node is None:
        return []
    _mark_blocks(node)
    return _lines(node.text())


def _mark_blocks(node: LexborNode) -> None:
    """Put a line-break text node before and after every block element under ``node``
    (itself included), then remove the hidden elements (the marks of blocks inside them go
    with them): the tree is then as the two CSS passes this replaced left it."""
    elements = [e for e in node.traverse() if e.tag_id in _MARKED_IDS]  # in document order
    hidden = [e for e in elements if e.tag_id in _HIDDEN_IDS]
    blocks = [e for e in elements if e.tag_id in _BREAK_IDS] if hidden else elements
    mark, before, after = _LINE_BREAK_BYTES, LexborNode.insert_before, LexborNode.insert_after
    for block in blocks:  # (the methods taken once: ~10 % of this function's time)
        before(block, mark)
        after(block, mark)
    for element in hidden:
        element.decompose()  # (unlinks every node inside it too)


def _lines(text: str) -> list[str]:
    """``text`` cut at the line-break marks, each line's whitespace normalised
    (``normalize_space``), empty lines dropped.

    The usual text is decided in C: common whitespace turned into spaces and runs of
    spaces collapsed over the whole text (which changes no line's words), then a line that
    is printable has no whitespace but single spaces and no invisible character (those are
    all non-printable), so stripping its ends is its normal form.
    """
    plain = text
    for space in _COMMON_SPACES:
        if space in plain:
            plain = plain.replace(space, " ")
    if "  " in plain:
        plain = _SPACE_RUN.sub(" ", plain)
    chunks = plain.split(_LINE_BREAK)
    if all(map(str.isprintable, chunks)):
        return list(filter(None, map(str.strip, chunks, repeat(" "))))
    if _MARK in plain:  # a private-use character in the page: cut there too
        chunks = remove_invisible(text).replace(_LINE_BREAK, _MARK).split(_MARK)
    return [line for line in map(normalize_space, chunks) if line]


def blocks_containing(root: LexborNode, words: tuple[str, ...]) -> list[LexborNode]:
    """The outermost block elements under ``root`` whose own text contains one of ``words``
    (case-sensitive), in document order: where to look for text statements without walking
    the whole page."""
    selector = ", ".join(f'*:lexbor-contains("{w}")' for w in words if '"' not in w)
    blocks: list[LexborNode] = []
    seen: set[int] = set()
    for node in root.css(selector):
        block: LexborNode | None = node
        while block is not None and block.tag not in BLOCK_TAGS and block.parent is not None:
            block = block.parent
        if block is None or block.tag in HIDDEN_TAGS or block.mem_id in seen:
            continue
        seen.add(block.mem_id)
        blocks.append(block)
    return [b for b in blocks if not _has_ancestor_in(b, seen)]


def _has_ancestor_in(node: LexborNode, ids: set[int]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.mem_id in ids:
            return True
        parent = parent.parent
    return False


def inline_text(node: LexborNode | None) -> str:
    """The text of ``node`` on one line, whitespace normalised (no block handling: for
    titles, names, dates and other short inline content)."""
    return "" if node is None else normalize_space(node.text())


def links_in(node: LexborNode | None) -> list[Link]:
    """Every ``<a href>`` under ``node``, in document order."""
    if node is None:
        return []
    out: list[Link] = []
    for anchor in node.css("a[href]"):
        href = anchor.attributes.get("href")
        if href:
            out.append(Link(normalize_space(anchor.text()), href.strip()))
    return out


def absolute_url(base: str, href: str | None) -> str | None:
    """``href`` resolved against ``base``; None for empty, fragment-only or script links."""
    if href is None:
        return None
    href = href.strip()
    if not href or href.startswith("#") or href.lower().startswith(("javascript:", "data:")):
        return None
    if href.startswith(("http://", "https://")) and " " not in href:
        return href
    origin = _origin(base)
    if origin and href.startswith("/") and not href.startswith("//") and "/." not in href:
        return origin + href  # the common root-relative link, without urljoin's cost
    try:
        return urljoin(base, href)
    except ValueError:
        return None


@lru_cache(maxsize=64)
def _origin(base: str) -> str | None:
    """``scheme://host[:port]`` of ``base``, or None when it has none."""
    try:
        parts = urlsplit(base)
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def normalize_url(url: str) -> str:
    """A URL's comparable form: lower-case scheme and host, no ``www.``, no default port, no
    fragment, ``/`` for an empty path."""
    url = url.strip()
    try:
        parts = urlsplit(url if "//" in url else f"http://{url}")
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url
    host = host.removeprefix("www.")
    scheme = parts.scheme.lower()
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def select(root: LexborNode | LexborHTMLParser, selector: str, option: str) -> list[LexborNode]:
    """``root.css(selector)``; a selector the CSS engine rejects is a ParseError naming it."""
    try:
        return list(root.css(selector))
    except SelectolaxError:
        raise ParseError(f"option {option}: invalid CSS selector {selector!r}") from None


def select_first(root: LexborNode, selector: str, option: str) -> LexborNode | None:
    """The first node matching ``selector`` under ``root``, or None."""
    try:
        return root.css_first(selector)
    except SelectolaxError:
        raise ParseError(f"option {option}: invalid CSS selector {selector!r}") from None


class ItemFields:
    """``item.css_first(selector)`` for every item of a list at once.

    A CSS lookup costs microseconds even inside a small item (the selector is parsed again
    each time), so each selector runs once over ``root`` (which must hold every item) and
    its matches, in document order, go to the items that are them or contain them: an
    item's first is then exactly what ``css_first`` inside it returns (Lexbor's selectors
    do not depend on where a search starts, and a search includes its starting node).
    Selectors run on first use, so an invalid one fails where a per-item lookup would.
    """

    def __init__(self, root: LexborNode, items: list[LexborNode]) -> None:
        self._root = root
        self._index = {item.mem_id: number for number, item in enumerate(items)}
        self._count = len(items)
        # node -> the items that are it or its ancestors (outermost first), memoised so
        # that the walk up from each match stops at the first node already seen.
        self._owners: dict[int, tuple[int, ...]] = {}
        self._firsts: dict[str, list[LexborNode | None]] = {}

    def first(self, number: int, selector: str, option: str) -> LexborNode | None:
        """The first node matching ``selector`` in item ``number`` (itself included)."""
        firsts = self._firsts.get(selector)
        if firsts is None:
            firsts = self._firsts[selector] = self._assign(select(self._root, selector, option))
        return firsts[number]

    def _assign(self, matches: list[LexborNode]) -> list[LexborNode | None]:
        firsts: list[LexborNode | None] = [None] * self._count
        owners, index = self._owners, self._index
        for match in matches:
            path: list[int] = []
            chain: tuple[int, ...] = ()
            node: LexborNode | None = match
            while node is not None:
                key = node.mem_id
                known = owners.get(key)
                if known is not None:
                    chain = known
                    break
                path.append(key)
                node = node.parent
            for key in reversed(path):
                number = index.get(key)
                if number is not None:
                    chain = (*chain, number)
                owners[key] = chain
            for number in chain:
                if firsts[number] is None:
                    firsts[number] = match
        return firsts


def remove_nodes(tree: LexborHTMLParser, selectors: list[str], option: str = "strip") -> None:
    """Remove every node matching one of ``selectors`` from ``tree`` (the parser's own copy)."""
    for selector in selectors:
        for node in select(tree.root, selector, option) if tree.root is not None else []:
            node.decompose()


def option_str(options: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    """A string option, or ``default``; ParseError when it has another type."""
    value = options.get(name, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParseError(f"option {name}: expected a string, got {type(value).__name__}")
    return value


def option_list(options: Mapping[str, Any], name: str) -> list[str]:
    """A list-of-strings option (a single string counts as a list of one)."""
    value = options.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ParseError(f"option {name}: expected a string or a list of strings")


def option_int(options: Mapping[str, Any], name: str) -> int | None:
    """An integer option, or None."""
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"option {name}: expected an integer, got {type(value).__name__}")
    return value
