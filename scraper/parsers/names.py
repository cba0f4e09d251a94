"""The one person-name normaliser: ``name_key`` makes spellings of one person's name equal.

A person is identified by surname and first name, however a page writes them: "Viktor
Kogut", "Kogut Viktor", "КОГУТ Виктор" and "Когут Виктор Александрович" share one key, and
so do "Рогалёв"/"Рогалев"/"Rogalev" and "Гафурзода Абдухалил"/"Gafurzoda Abdukhalil". The key:
case and whitespace folded; Cyrillic transliterated to Latin with a fixed table (so
Latin/Cyrillic look-alike letters and ё/е fold too); the Latin folded to a spelling skeleton
that English transliterations share (see ``_SKELETON_STEPS``: kh/h, y/i/iy/yi, ts/tz,
e/ye/io, dzh/j/zh, sh/shch, doubled letters; ч and ш stay apart: "Chalov" and
"Shalov" are two people); a patronymic dropped when the name has more
than two words; the words sorted so that order does not matter. Tajik and Central Asian forms
("-zoda", "-zod") are surnames and stay. Different people keep different keys ("Petrov" and
"Petrova", two first names). The displayed name is never changed by the key.
"""

from __future__ import annotations

import re
import unicodedata

from pawatch.domain import transliterate
from pawatch.scraper.parsers.text import normalize_space

_NON_LETTERS_RE = re.compile(r"[\W\d_]+")
# Spellings of one sound in the usual English transliterations of Cyrillic names, folded to
# one skeleton letter by letter group, in this order (each step sees the output of the ones
# before it; the whole sequence and the collapse of doubled letters repeat until nothing
# changes, so the key is stable). The Cyrillic side goes through ``transliterate`` first.
_SKELETON_STEPS = (
    ("shch", "sh"),  # щ: shch, sch, sh
    ("sch", "sh"),
    ("dzh", "j"),  # дж: dzh, dj, j
    ("dj", "j"),
    ("zh", "j"),  # ж: zh, j
    ("kh", "h"),  # х, ҳ: kh, h
    ("gh", "g"),  # ғ: gh, g
    ("ch", "tsh"),  # ч: ch, tch (kept apart from ш "sh" and х "kh"; before c -> k; ASCII so
    # that a key is its own key)
    ("tz", "ts"),  # ц: ts, tz
    ("c", "k"),  # Victor, Viktor
    ("q", "k"),  # қ: q, k
    ("x", "ks"),  # Alexey, Aleksey
    ("y", "i"),  # й, ы, the y of я/ю/е/ё: y, i (Aygul, Aigul; -iy, -ii, -y endings)
    ("ie", "e"),  # е: ye, ie, e (Yerlan, Erlan; Sergeyev, Sergeev)
    ("io", "e"),  # ё: yo, io, e (Semyonov, Semionov, Semenov)
)
# A character followed by the same one: removing these collapses every run of doubled
# letters (and of spaces) to one character; a literal replacement keeps ``sub`` in C.
_DOUBLED_RE = re.compile(r"(.)(?=\1)")
# Patronymic endings in the skeleton: -vich (-вич), -vna (-вна), -ichna (-ична).
_PATRONYMIC_ENDINGS = ("vitsh", "vna", "itshna")
_MAX_NAME_WORDS = 6
_NOT_NAME_WORDS = frozenset(
    ["of", "the", "and", "for", "to", "in", "on", "at", "by", "и", "в", "на", "по", "для"]
)
_NAME_WORD_RE = re.compile(r"^[^\W\d_][^\W\d_'’.\-]*\.?$")


def split_run_together(name: str) -> str:
    """Insert a space where a lower-case letter runs into an upper-case one."""
    if name.istitle() or name.islower() or name.isupper():
        # Decided in C: no lower-case letter is followed by an upper-case one (``istitle``
        # lets an upper-case letter follow only an uncased character), so nothing is split.
        return name
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
    if not (name.istitle() or name.islower() or name.isupper()):  # split_run_together's check
        name = split_run_together(name)
    return normalize_space(name).strip(" ,;:.-–—•*·")


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


def _build_word_table() -> list[int | str | None]:
    """One ``str.translate`` table doing, character by character, what ``_name_words_slow``
    does to a name made only of the characters it maps: ASCII and simple Cyrillic, Latin and
    punctuation characters whose folding does not depend on their neighbours. Letters map to
    their folded lower-case ASCII letters, quotes to nothing, everything else to a space. A
    character it does not map stays non-ASCII, which sends the name to the slow path. A list
    indexed by code point (characters past its end stay as they are) translates faster than
    a dict."""
    table: dict[int, str | None] = {}
    for code in range(128):
        ch = chr(code)
        if "a" <= ch <= "z":
            continue
        table[code] = ch.lower() if "A" <= ch <= "Z" else " "
    table[ord("'")] = table[ord("’")] = None
    ranges = [range(0x80, 0x250), range(0x400, 0x500), range(0x1E00, 0x1F00),
              range(0x2000, _WORD_TABLE_SIZE)]  # fmt: skip
    for code in (code for codes in ranges for code in codes):
        ch = chr(code)
        folded = ch.casefold()
        if (
            code in table
            or unicodedata.normalize("NFKC", ch) != ch
            or unicodedata.combining(ch)
            or len(folded) != 1
            or folded != ch.lower()
            or folded.lower() != folded
            or unicodedata.combining(folded)
        ):
            continue
        out = _fold_text(ch)
        if out.isascii():
            if out == "" or (out.isalpha() and out.islower()):
                table[code] = out
        elif (
            out == ch
            and unicodedata.category(ch)[0] in "PSZC"
            and unicodedata.is_normalized("NFKD", ch)
            and _NON_LETTERS_RE.fullmatch(ch)
        ):
            table[code] = " "
    # Single characters as code points: ``translate`` writes those a little faster.
    return [_code_or_text(table.get(code, chr(code))) for code in range(_WORD_TABLE_SIZE)]


def _code_or_text(out: str | None) -> int | str | None:
    return ord(out) if out is not None and len(out) == 1 else out


_WORD_TABLE_SIZE = 0x2070  # to the end of General Punctuation
_WORD_TABLE = _build_word_table()


def _skeleton(text: str) -> str:
    """Lower-case ASCII words (separated by spaces) folded to their spelling skeleton."""
    while True:
        folded = text
        for old, new in _SKELETON_STEPS:
            if old in folded:
                folded = folded.replace(old, new)
        folded = _DOUBLED_RE.sub("", folded)
        if folded == text:
            return folded
        text = folded


def _fast_folded(name: str) -> str | None:
    """The folded words of the usual name as one string, a space after each word, or None
    for a name that needs the general path: ASCII, Cyrillic, common Latin letters and
    punctuation fold in one translate (a character outside the table stays non-ASCII)."""
    if not (name.istitle() or name.islower() or name.isupper()):  # split_run_together's check
        name = split_run_together(name)
    text = name.translate(_WORD_TABLE)
    if not text.isascii():
        return None
    return _skeleton(text + " ").lstrip(" ")  # a space now ends every word


def _name_words_slow(name: str) -> list[str]:
    """The folded words of any text: normalise, transliterate and fold until stable."""
    text = name if name.isascii() else unicodedata.normalize("NFKC", name)
    text = split_run_together(text).replace("'", "").replace("’", "")
    for _ in range(4):  # fold until stable: exotic letters may decompose into foldable ones
        folded = _fold_text(text)
        if folded == text:
            break
        text = folded
    return _skeleton(_NON_LETTERS_RE.sub(" ", text)).split()


def _drop_patronymics(words: list[str]) -> list[str]:
    """Drop patronymic-looking words while more than two words remain (female forms first,
    then alphabetically), so that "Карпович Николай Иванович" keeps two words."""
    words = list(words)
    candidates = sorted(
        (w for w in words if w.endswith(_PATRONYMIC_ENDINGS) and len(w) > 5),
        key=lambda w: (not w.endswith(("vna", "itshna")), w),
    )
    for word in candidates:
        if len(words) <= 2:
            break
        words.remove(word)
    return words


def name_key(name: str) -> str:
    """The comparison key of a person's name (see the module docstring). Idempotent."""
    folded = _fast_folded(name)
    if folded is None:
        words = _drop_patronymics(_name_words_slow(name))
    else:
        words = folded.split()
        # A space ends every word of ``folded``: without "vitsh " (-vich), "vna " or "itshna "
        # (-ichna) in it there is no patronymic to drop.
        if len(words) > 2 and ("vitsh " in folded or "vna " in folded or "itshna " in folded):
            words = _drop_patronymics(words)
    words.sort()
    return " ".join(words)


def looks_like_name(text: str) -> bool:
    """True for text shaped like a person's name: 2-6 words of letters (hyphens, apostrophes
    and initials allowed), no digits, short."""
    words = text.split()
    if not 2 <= len(words) <= _MAX_NAME_WORDS or len(text) > 80:
        return False
    if any(w.lower() in _NOT_NAME_WORDS for w in words):
        return False
    return all(_NAME_WORD_RE.match(w) for w in words) and any(w[0].isupper() for w in words)
