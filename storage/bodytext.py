"""The readable text of a stored body (table ``snapshot_text``): what the ``page`` parser reads
from the whole page (its visible lines), so that SQL and full-text search can read snapshots
without decompressing and parsing them."""

from __future__ import annotations

import zstandard

from pawatch.scraper.charset import decode_body
from pawatch.scraper.errors import FetchError
from pawatch.scraper.parsers.base import ParseError
from pawatch.scraper.parsers.text import normalize_text, parse_html, visible_lines

_PLAIN_TYPES = ("json", "text/plain", "csv", "xml")  # not HTML: the text as it is


def readable_text(body: bytes, content_type: str | None, encoding: str | None = None) -> str:
    """The visible lines of an HTML body (the ``page`` parser's text of ``body``), or the
    normalised text of a JSON/plain/XML body; "" when the body cannot be decoded or is past
    the HTML parser's bounds (``parse_html``'s element count)."""
    try:
        text = decode_body(body, content_type, forced=encoding).text
    except FetchError:
        return ""
    kind = (content_type or "").lower()
    if any(t in kind for t in _PLAIN_TYPES) and "html" not in kind:
        return normalize_text(text)
    try:
        tree = parse_html(text)
    except ParseError:
        return ""
    return "\n".join(visible_lines(tree.body or tree.root))


def decompress_body(compression: str, data: bytes) -> bytes:
    """A stored body (``bodies.data``) as bytes."""
    if compression != "zstd":
        raise ValueError(f"unknown body compression {compression!r}")
    return bytes(zstandard.ZstdDecompressor().decompress(data))
