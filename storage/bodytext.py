"""The readable text of a stored body (view ``snapshot_text``): what the ``page`` parser reads
from the whole page (its visible lines), so that SQL and full-text search can read snapshots
without decompressing and parsing them. The text is stored by line (tables ``text_lines``,
``body_text``): each distinct line once, a body as the list of its lines' ids. Splitting, the
line hash and finding or adding a body's lines (``store_lines``, for ``Store`` and migration
0017) are here."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Collection

import zstandard

from pawatch.scraper.charset import decode_body
from pawatch.scraper.errors import FetchError
from pawatch.scraper.parsers.base import ParseError
from pawatch.scraper.parsers.text import normalize_text, parse_html, visible_lines

_local = threading.local()
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
    # one decompressor per thread (zstandard's are not thread-safe): a daemon's loop
    # thread may read a snapshot while the writer thread reads another
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return bytes(decompressor.decompress(data))


_ROWS_PER_INSERT = 300  # 900 parameters: under SQLite's smallest limit (999)


def split_lines(text: str) -> list[str]:
    """The lines of a readable text, in order: ``"\\n".join(split_lines(t)) == t`` for every
    ``t``. The empty text has no lines (a text of one empty line cannot be told from it)."""
    return text.split("\n") if text else []


def line_hash(line: str) -> int:
    """A line's key in ``text_lines.hash``: the first 8 bytes of the BLAKE2b digest of its UTF-8,
    as a signed 64-bit integer (SQLite's INTEGER). Stable across processes and versions (a
    stored database depends on it), unlike Python's ``hash``."""
    digest = hashlib.blake2b(line.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def next_hash(value: int) -> int:
    """Where a line goes when its hash is taken by another line (a collision): the next value,
    wrapping within the signed 64-bit range. Lookups follow the same sequence (rows are never
    deleted, so the first free value ends it)."""
    return value + 1 if value < 2**63 - 1 else -(2**63)


def store_lines(conn: sqlite3.Connection, lines: Collection[str]) -> tuple[dict[str, int], int]:
    """The ``text_lines`` id of each of these distinct lines, inserting the ones not stored yet
    in their order (the full-text index is the caller's: ``Store.index_texts``), and how many
    were inserted. Inside the caller's transaction: the ids of new lines follow MAX(id).

    One ``SELECT`` by hash per round; a row whose hash matches but whose text differs is a
    collision, never a match: the line moves on to ``next_hash`` of that value (and so does a
    line whose value another new line of the same call took), until it finds its own row or a
    free value, where it is inserted. Lookups follow the same sequence, so a collision costs a
    second round, never a wrong text."""
    ids: dict[str, int] = {}
    probe = {line: line_hash(line) for line in lines}
    claimed: dict[int, str] = {}  # free values this call gives to new lines
    todo = list(probe)
    top = 0
    while todo:
        rows: dict[int, tuple[int, str]] = {}
        for row_id, value, text in conn.execute(
            "SELECT id, hash, text FROM text_lines WHERE hash IN (SELECT value FROM json_each(?)) "
            "UNION ALL SELECT COALESCE(MAX(id), 0), NULL, NULL FROM text_lines",
            (json.dumps([probe[line] for line in todo]),),
        ):
            if value is None:
                top = row_id
            else:
                rows[value] = (row_id, text)
        again = []
        for line in todo:
            value = probe[line]
            row = rows.get(value)
            if row is not None and row[1] == line:
                ids[line] = row[0]
            elif row is None and value not in claimed:
                claimed[value] = line
            else:  # taken by another line: a collision
                probe[line] = next_hash(value)
                again.append(line)
        todo = again
    if claimed:
        new = [(top + i, value, line) for i, (value, line) in enumerate(claimed.items(), 1)]
        # many rows a statement: the writer gives up the GIL at each one
        for start in range(0, len(new), _ROWS_PER_INSERT):
            chunk = new[start : start + _ROWS_PER_INSERT]
            conn.execute(
                "INSERT INTO text_lines (id, hash, text) VALUES "
                + ",".join(["(?, ?, ?)"] * len(chunk)),
                [field for row in chunk for field in row],
            )
        ids.update((line, row_id) for row_id, _, line in new)
    return ids, len(claimed)


def line_ids_json(ids: list[int]) -> str:
    """``body_text.line_ids``: the ids as a compact JSON array."""
    return json.dumps(ids, separators=(",", ":"))
