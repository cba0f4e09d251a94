"""Publication dates as written on parliament sites -> ISO ``YYYY-MM-DD``, never guessed.

Forms read: "15 June 2021", "June 15, 2021", "08 December 2023", "15:21 01 March 2024",
"27.01.2022 10:39:00", "2021-06-15", "21:16, 15 декабря 2020", "30 Июня 2023, 09:36",
"17 Ноябр 2021, Чоршанбе", "10 февраля, 2021 10:27", "2021-жылдын 15-июну"; month names in
English, Russian, Tajik, Kyrgyz and Kazakh. Times and weekday names are ignored. A date
without a year ("08 December", "YEREVAN, March 11.") is not read: None.
"""

from __future__ import annotations

import datetime as dt
import re

_MONTH_STEMS: tuple[tuple[str, int], ...] = (
    # English (full names and abbreviations are matched by prefix, at least 3 letters)
    ("january", 1), ("february", 2), ("march", 3), ("april", 4), ("may", 5), ("june", 6),
    ("july", 7), ("august", 8), ("september", 9), ("october", 10), ("november", 11),
    ("december", 12),
    # Russian and Tajik (январь/января/Январ ...), Kyrgyz uses the same stems
    ("январ", 1), ("феврал", 2), ("март", 3), ("апрел", 4), ("май", 5), ("мая", 5),
    ("маю", 5), ("июн", 6), ("июл", 7), ("август", 8), ("сентябр", 9), ("октябр", 10),
    ("ноябр", 11), ("декабр", 12),
    # Kazakh
    ("қаңтар", 1), ("ақпан", 2), ("наурыз", 3), ("сәуір", 4), ("мамыр", 5), ("маусым", 6),
    ("шілде", 7), ("тамыз", 8), ("қыркүйек", 9), ("қазан", 10), ("қараша", 11),
    ("желтоқсан", 12),
)  # fmt: skip
_ENGLISH_MIN = 3  # "Sep", "Sept", "Dec." are English abbreviations

_WORD = r"[^\W\d_]+"
_DAY = r"(?<!\d)(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)(?!\d)"
_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(rf"(?<!\d){_YEAR}-(?P<month_num>\d\d)-(?P<day>\d\d)(?!\d)"),
    re.compile(rf"{_DAY}[./](?P<month_num>\d{{1,2}})[./]{_YEAR}"),
    re.compile(rf"{_DAY}(?:\s*-\s*|\s+)(?P<month>{_WORD})\.?\s*,?\s+{_YEAR}"),
    re.compile(rf"(?P<month>{_WORD})\.?\s+{_DAY},?\s+{_YEAR}"),
    re.compile(
        rf"(?<!\d){_YEAR}\s*-?\s*(?:ж\.|жыл{_WORD}|жылғы|г\.|года?)?\s*,?\s*"
        rf"(?P<day>\d{{1,2}})(?:\s*-\s*|\s+)(?P<month>{_WORD})"
    ),
)


def month_number(word: str) -> int | None:
    """The month a name stands for ("June", "июня", "Ноябр", "маусым", "Sept"), or None."""
    word = word.lower().replace("ё", "е").rstrip(".")
    if len(word) < 3:
        return None
    for stem, number in _MONTH_STEMS:
        if stem.isascii():
            if len(word) >= _ENGLISH_MIN and stem.startswith(word):
                return number
        elif word.startswith(stem):
            return number
    return None


def _to_iso(year: str, month: int | None, day: str) -> str | None:
    if month is None:
        return None
    try:
        return dt.date(int(year), month, int(day)).isoformat()
    except ValueError:
        return None


def parse_date(text: str) -> str | None:
    """The first date in ``text`` as ``YYYY-MM-DD``; None when no complete date is there."""
    if not text:
        return None
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            groups = match.groupdict()
            if groups.get("month_num") is not None:
                month: int | None = int(groups["month_num"])
            else:
                month = month_number(groups["month"])
            iso = _to_iso(groups["year"], month, groups["day"])
            if iso is not None:
                return iso
    return None


def looks_like_date(text: str) -> bool:
    """True when ``text`` is short and names a day and a month (with or without a year):
    a date line, readable or not."""
    if len(text) > 60:
        return False
    if parse_date(text) is not None:
        return True
    words = re.findall(_WORD, text)
    return bool(re.search(r"\d", text)) and any(month_number(w) for w in words)
