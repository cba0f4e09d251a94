"""Counts written as digits or as words (one to twenty, English and Russian, every case)."""

from __future__ import annotations

import re

_ENGLISH = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]

# Russian 1-4 decline irregularly; 5-20 follow one pattern (пять, пяти, пятью).
_RUSSIAN_IRREGULAR: dict[int, tuple[str, ...]] = {
    1: ("один", "одна", "одно", "одного", "одной", "одному", "одну", "одним", "одном", "одною"),
    2: ("два", "две", "двух", "двум", "двумя"),
    3: ("три", "трех", "трем", "тремя"),
    4: ("четыре", "четырех", "четырем", "четырьмя"),
    8: ("восемь", "восьми", "восемью", "восьмью"),
}
_RUSSIAN_REGULAR = [
    "пять",
    "шесть",
    "семь",
    "восемь",
    "девять",
    "десять",
    "одиннадцать",
    "двенадцать",
    "тринадцать",
    "четырнадцать",
    "пятнадцать",
    "шестнадцать",
    "семнадцать",
    "восемнадцать",
    "девятнадцать",
    "двадцать",
]


def _build_words() -> dict[str, int]:
    words: dict[str, int] = {word: n for n, word in enumerate(_ENGLISH, start=1)}
    for n, word in enumerate(_RUSSIAN_REGULAR, start=5):
        stem = word[:-1]  # drop the soft sign
        for form in (word, stem + "и", stem + "ью"):
            words.setdefault(form, n)
    for n, forms in _RUSSIAN_IRREGULAR.items():
        for form in forms:
            words[form] = n
    return words


NUMBER_WORDS: dict[str, int] = _build_words()

# A regex fragment matching a count: digits or one of the words (longest first).
COUNT_PATTERN = r"\d{1,3}|" + "|".join(
    sorted((re.escape(w) for w in NUMBER_WORDS), key=len, reverse=True)
)


def parse_count(text: str) -> int | None:
    """``"7"``, ``"seven"``, ``"семью"``, ``"Двенадцати"`` -> the number; None if not a count."""
    word = text.strip().lower().replace("ё", "е")
    if word.isascii() and word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word)
