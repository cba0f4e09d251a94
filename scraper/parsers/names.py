"""The one person-name normaliser: ``name_key`` makes spellings of one name compare equal.

"Viktor Kogut", "Kogut Viktor", "КОГУТ Виктор" and "Когут Виктор Александрович" share the key
``"kogut viktor"``: case and whitespace folded, Cyrillic transliterated to Latin with a fixed
table (so Latin/Cyrillic look-alike letters and ё/е fold too), a few spelling variants folded
(kh/h, dzh/j, x/ks, doubled letters, -iy/-ii endings), a Russian patronymic dropped when the
name has more than two words, and the words sorted so that order does not matter. Tajik and
Central Asian forms ("-zoda", "-zod") are surnames and stay. The displayed name is never
changed by the key.
"""

from __future__ import annotations

import re
import unicodedata

from config.registry import transliterate
from scraper.parsers.text import normalize_space

_NON_LETTERS_RE = re.compile(r"[\W\d_]+")
# Spelling variants folded in Latin words: dzh/j, kh/h, x/ks, -iy/-ii/-yi/-yy endings, doubled
# letters. One alternation, applied until nothing changes (so the key is stable).
_FOLD_RE = re.compile(r"dzh|kh|x|(?:iy|ii|yi|yy)$|([a-z])\1+")
_FOLD_REPLACEMENTS = {"dzh": "j", "kh": "h", "x": "ks"}
_PATRONYMIC_ENDINGS = ("vich", "vna", "ichna")
_MAX_NAME_WORDS = 6
_NOT_NAME_WORDS = frozenset(
    ["of", "the", "and", "for", "to", "in", "on", "at", "by", "и", "в", "на", "по", "для"]
)
_NAME_WORD_RE = re.compile(r"^[^\W\d_][^\W\d_'’.\-]*\.?$")


def split_run_together(name: str) -> str:
    """Insert a space where a lower-case letter runs into an upper-case one."""
    words = name.split(" ")
    if all(w[1:].islower() or w.isupper() or w[1:] == w[1:].lower() for w in words):
        return name  # the usual case, decided without a per-letter loop
    return " ".join(_split_word(w) for w in words)


def _split_word(word: str) -> str:
    out: list[str] = []
    previous = ""
    for ch in word:
        if previous.islower() and previous.upper() != previous and ch.isupper():
            out.append(" ")
        out.append(ch)
        previous = ch
    return "".join(out)


def clean_name(name: str) -> str:
    """A name for display: whitespace normalised, run-together words split, stray
    punctuation at the ends removed. Letters and their order stay as written."""
    return normalize_space(split_run_together(name)).strip(" ,;:.-–—•*·")


def _fold_match(match: re.Match[str]) -> str:
    text = match.group(0)
    if match.group(1) is not None:
        return match.group(1)
    return _FOLD_REPLACEMENTS.get(text, "y")


def _fold_word(word: str) -> str:
    while True:
        folded = _FOLD_RE.sub(_fold_match, word)
        if folded == word:
            return word
        word = folded


def is_patronymic(word: str) -> bool:
    """True for a Russian patronymic ("Павлович", "Ивановна", "Pavlovich")."""
    latin = transliterate(word.casefold())
    return len(latin) > 5 and latin.endswith(_PATRONYMIC_ENDINGS)


_LATIN_FOLDS = str.maketrans({"ı": "i", "ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ł": "l",
                              "þ": "th", "ð": "d", "ŋ": "n", "ħ": "h"})  # fmt: skip


def _fold_text(text: str) -> str:
    if text.isascii():
        return text.lower()
    text = transliterate(unicodedata.normalize("NFKC", text).casefold())
    if not unicodedata.is_normalized("NFKD", text):
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return transliterate(text).translate(_LATIN_FOLDS)


def name_words(name: str) -> list[str]:
    """The folded Latin words of a name, in the order written (patronymics kept)."""
    text = name if name.isascii() else unicodedata.normalize("NFKC", name)
    text = split_run_together(text).replace("'", "").replace("’", "")
    for _ in range(4):  # fold until stable: exotic letters may decompose into foldable ones
        folded = _fold_text(text)
        if folded == text:
            break
        text = folded
    words = [_fold_word(w) for w in _NON_LETTERS_RE.sub(" ", text).split()]
    return [w for w in words if w]


def _drop_patronymics(words: list[str]) -> list[str]:
    """Drop patronymic-looking words while more than two words remain (female forms first,
    then alphabetically), so that "Карпович Николай Иванович" keeps two words."""
    words = list(words)
    candidates = sorted(
        (w for w in words if w.endswith(_PATRONYMIC_ENDINGS) and len(w) > 5),
        key=lambda w: (not w.endswith(("vna", "ichna")), w),
    )
    for word in candidates:
        if len(words) <= 2:
            break
        words.remove(word)
    return words


def name_key(name: str) -> str:
    """The comparison key of a person's name (see the module docstring). Idempotent."""
    return " ".join(sorted(_drop_patronymics(name_words(name))))


def same_person(a: str, b: str) -> bool:
    """True when two written names have the same key."""
    key = name_key(a)
    return bool(key) and key == name_key(b)


def looks_like_name(text: str) -> bool:
    """True for text shaped like a person's name: 2-6 words of letters (hyphens, apostrophes
    and initials allowed), no digits, short."""
    words = text.split()
    if not 2 <= len(words) <= _MAX_NAME_WORDS or len(text) > 80:
        return False
    if any(w.lower() in _NOT_NAME_WORDS for w in words):
        return False
    return all(_NAME_WORD_RE.match(w) for w in words) and any(w[0].isupper() for w in words)
