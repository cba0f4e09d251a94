"""The shared vocabulary: what every layer may import (it imports none of them).

- ``Fact``: one statement read from a page, the unit parsers produce and storage keeps.
- ``ChangeKind``: every kind of event pawatch records, in report order; ``CHANGE_KINDS`` (what
  happened to a delegation or page) and ``HEALTH_KINDS`` (what happened to a source).
- Text folding for matching and ids: ``transliterate``, ``fold_text``, ``slugify``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Fact:
    """One statement read from a page: ``(subject, attribute, key) = value``.

    ``key`` is the identity, ``value`` what is shown, as written on the page. For attributes
    with many facts the key tells them apart (a member's name key, a website's normalised URL,
    a news item's URL); for single-valued ones it says what "the same" means (a
    plenipotentiary's or head's name key: a respelling is the same person) or is ``""`` where
    the value itself is the identity (seats). Storage compares by key, never by spelling.
    """

    subject: str  # e.g. "delegation:KG", "source:duma-news"
    attribute: str  # e.g. "seats:supreme-council", "seats:total", "plenipotentiary", "member"
    key: str
    value: str


class ChangeKind(StrEnum):
    """Every kind of event, changes first (in report order), then source health."""

    COMPOSITION = "composition"
    REPRESENTATIVE = "representative"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    MEMBER_RENAMED = "member_renamed"
    WEBSITE_ADDED = "website_added"
    WEBSITE_REMOVED = "website_removed"
    DELEGATION_ADDED = "delegation_added"
    DELEGATION_REMOVED = "delegation_removed"
    NEWS = "news"
    PAGE_CHANGED = "page_changed"
    SOURCES_DISAGREE = "sources_disagree"  # two sources (or a page's count and its list) differ
    SOURCES_AGREE = "sources_agree"  # ...and no longer do
    SOURCE_FAILING = "source_failing"
    SOURCE_RECOVERED = "source_recovered"
    PARSE_BROKEN = "parse_broken"
    PARSE_RECOVERED = "parse_recovered"
    SOURCE_MOVED = "source_moved"  # redirected to another host: the final URL is in `new`


_HEALTH = frozenset(
    {
        ChangeKind.SOURCE_FAILING,
        ChangeKind.SOURCE_RECOVERED,
        ChangeKind.PARSE_BROKEN,
        ChangeKind.PARSE_RECOVERED,
        ChangeKind.SOURCE_MOVED,
    }
)
CHANGE_KINDS: tuple[str, ...] = tuple(k.value for k in ChangeKind if k not in _HEALTH)
HEALTH_KINDS: tuple[str, ...] = tuple(k.value for k in ChangeKind if k in _HEALTH)


# A simple, deterministic Cyrillic -> Latin table (Russian plus the letters of Belarusian,
# Kazakh, Kyrgyz and Tajik). Lower case only: callers fold case first.
_TRANSLIT: dict[str, str] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
    "з": "z", "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu",
    "я": "ya", "і": "i", "ї": "i", "є": "e", "ў": "u", "ґ": "g", "ә": "a", "ғ": "g",
    "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h", "ӣ": "i", "ӯ": "u",
    "ҳ": "h", "ҷ": "j", "ҹ": "ch", "ӊ": "n", "ҝ": "g",
}  # fmt: skip
_TRANSLIT_TABLE = str.maketrans(_TRANSLIT)

# Latin letters that look like Cyrillic ones, and back: a word typed with mixed scripts is
# folded to the script most of its letters use.
_LATIN_TO_CYRILLIC = str.maketrans("aceopxykmthb", "асеорхукмтнв")
_CYRILLIC_RE = re.compile(r"[\u0400-\u04ff]")
_LATIN_RE = re.compile(r"[a-z]")

_QUOTES_RE = re.compile(r"[\"'«»„“”‘’`´]")
_PUNCT_RE = re.compile(r"[\s.,;:()\[\]/\\\-–—]+")


def transliterate(text: str) -> str:
    """Cyrillic letters to Latin with a simple fixed table; other characters unchanged.

    Expects lower-case text (upper-case Cyrillic letters are folded first).
    """
    return text.lower().translate(_TRANSLIT_TABLE)


def _fold_word_script(word: str) -> str:
    """A word with both Cyrillic and Latin letters: Latin look-alikes become Cyrillic."""
    if _CYRILLIC_RE.search(word) and _LATIN_RE.search(word):
        return word.translate(_LATIN_TO_CYRILLIC)
    return word


def fold_text(text: str) -> str:
    """Fold a name for matching: case, ё/е, quotes, punctuation, look-alikes, "the", spaces."""
    text = _QUOTES_RE.sub("", text.casefold().replace("ё", "е"))
    words = _PUNCT_RE.sub(" ", text).split()
    return " ".join(_fold_word_script(w) for w in words if w != "the")


def slugify(text: str) -> str:
    """A stable ASCII slug: ``"the Parliament of Narnia"`` -> ``"parliament-of-narnia"``."""
    latin = transliterate(fold_text(text))
    return re.sub(r"[^a-z0-9]+", "-", latin).strip("-")[:60].strip("-") or "unnamed"
