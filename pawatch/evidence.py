"""Evidence from stored snapshots: a page decoded, its readable lines, and the few lines of
the page before and after a change (what a report quotes so its reader sees the proof).

Shared by ``pawatch show``/``pawatch diff`` (pawatch/cli/query.py) and the reports
(pawatch/reports.py): one way to turn a stored body into text.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass

from pawatch.scraper.charset import decode_body
from pawatch.scraper.errors import FetchError
from pawatch.scraper.parsers.base import ParseError
from pawatch.storage import Snapshot, Store

EXCERPT_LINES = 2  # at most this many lines before and after
EXCERPT_WIDTH = 240  # characters of one quoted line; a longer line is cut to its sentence

_SENTENCE_END_RE = re.compile(r"(?<=[.!?;])\s+")


def snapshot_text(snap: Snapshot) -> str:
    """The stored body decoded to text (raises ``FetchError`` when it cannot be decoded)."""
    return decode_body(snap.body, snap.content_type).text


def readable_lines(text: str, content_type: str | None = None) -> list[str]:
    """What a reader sees of a page: its visible lines (a JSON body: indented, one value a
    line), whitespace normalised, empty lines dropped."""
    if content_type and "json" in content_type.lower():
        try:
            data = json.loads(text)
        except ValueError:
            pass
        else:
            dumped = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True)
            return [line.strip() for line in dumped.splitlines() if line.strip()]
    from pawatch.scraper.parsers.text import parse_html, visible_lines

    return visible_lines(parse_html(text).root)


@dataclass(frozen=True)
class Excerpt:
    """The lines of a page before and after a change (either side may be empty: an added
    line has nothing before it)."""

    before: tuple[str, ...]
    after: tuple[str, ...]


class SnapshotLines:
    """Readable lines of stored snapshots, each snapshot decoded once."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[int, list[str] | None] = {}

    def lines(self, snapshot_id: int) -> list[str] | None:
        """None when the snapshot is gone, cannot be decoded or is past the element bound
        (the report then says nothing)."""
        if snapshot_id not in self._cache:
            try:
                snap = self.store.snapshot(snapshot_id)
                text = snapshot_text(snap)
                lines = readable_lines(text, snap.content_type)
            except (KeyError, FetchError, ParseError):  # ParseError: past the element bound
                lines = None
            self._cache[snapshot_id] = lines
        return self._cache[snapshot_id]

    def excerpt(
        self, before: int | None, after: int | None, old: str | None, new: str | None
    ) -> Excerpt | None:
        if before is None or after is None:
            return None
        a, b = self.lines(before), self.lines(after)
        if a is None or b is None:
            return None
        return excerpt(a, b, old, new)


def _pattern(value: str | None) -> re.Pattern[str] | None:
    value = " ".join((value or "").split())
    if not value:
        return None
    if value.isdigit():  # "6" must not match "16" or "2026"
        return re.compile(rf"(?<!\d){value}(?!\d)")
    return re.compile(re.escape(value), re.IGNORECASE)


def excerpt(
    before: list[str],
    after: list[str],
    old: str | None,
    new: str | None,
    *,
    max_lines: int = EXCERPT_LINES,
    width: int = EXCERPT_WIDTH,
) -> Excerpt | None:
    """The changed lines that show ``old`` becoming ``new``: of the page's changed blocks,
    the one whose removed lines name ``old`` and whose added lines name ``new`` (the best
    match); None when no changed block names either value (no quote beats a wrong one).
    Without either value (a page's text changed), the first changed block."""
    old_re, new_re = _pattern(old), _pattern(new)
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    if old_re is None and new_re is None:  # a page's text changed: its first changed block
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                return Excerpt(
                    _quote(before[i1:i2], None, max_lines, width),
                    _quote(after[j1:j2], None, max_lines, width),
                )
        return None
    best: tuple[int, list[str], list[str]] | None = None
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed, added = before[i1:i2], after[j1:j2]
        score = 0
        if old_re is not None and any(old_re.search(line) for line in removed):
            score += 2
        if new_re is not None and any(new_re.search(line) for line in added):
            score += 2
        if score and (best is None or score > best[0]):
            best = (score, removed, added)
    if best is None:
        return None
    _, removed, added = best
    if old_re is not None and new_re is not None:
        return Excerpt(
            before=_quote(removed, old_re, max_lines, width),
            after=_quote(added, new_re, max_lines, width),
        )
    if new_re is not None:  # something appeared: its line, and the line it replaced if any
        after_lines = _quote(added, new_re, max_lines, width)
        return Excerpt(_counterpart(removed, added, new_re, width), after_lines)
    assert old_re is not None  # something disappeared: its line, and what stands there now
    before_lines = _quote(removed, old_re, max_lines, width)
    return Excerpt(before_lines, _counterpart(added, removed, old_re, width))


def _counterpart(
    lines: list[str], other: list[str], term: re.Pattern[str], width: int
) -> tuple[str, ...]:
    """The one line of ``lines`` that is an edited version of the line of ``other`` naming
    ``term`` (a list of names that got one more); nothing when none is similar enough."""
    naming = next((line for line in other if term.search(line)), None)
    if naming is None or not lines:
        return ()
    ratio, line = max((difflib.SequenceMatcher(None, c, naming).ratio(), c) for c in lines)
    return (_cut(line, None, width),) if ratio >= 0.6 else ()


def _quote(
    lines: list[str], term: re.Pattern[str] | None, max_lines: int, width: int
) -> tuple[str, ...]:
    """Up to ``max_lines`` lines, those naming ``term`` first; each cut to ``width``
    characters around its sentence that names the term."""
    naming = [line for line in lines if term is not None and term.search(line)]
    chosen = (naming or lines)[:max_lines]
    return tuple(_cut(line, term, width) for line in chosen)


def _cut(line: str, term: re.Pattern[str] | None, width: int) -> str:
    if len(line) <= width:
        return line
    sentences = _SENTENCE_END_RE.split(line)
    found = [s for s in sentences if term is not None and term.search(s)]
    text = found[0] if found else sentences[0]
    if len(text) <= width:
        return text
    match = term.search(text) if term is not None else None
    start = max(0, (match.start() if match else 0) - width // 2)
    piece = text[start : start + width - 2]
    return ("…" if start else "") + piece + "…"
