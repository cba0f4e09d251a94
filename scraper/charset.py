"""Turn a fetched body into text.

Order: a forced encoding (per-source config), a byte-order mark, the HTTP ``Content-Type``
charset, a ``<meta charset>`` / ``<meta http-equiv="Content-Type">`` in the first 4 KB, then
detection (strict UTF-8 first, which is cheap and almost never wrong, then Cyrillic words in
windows-1251 or KOI8-R, then charset-normalizer).

Sites declare charsets wrongly, so a declaration is only taken when the body decodes strictly
with it; an unknown or failing declaration falls through to the next step. One more guard: a
body that is valid UTF-8 with non-ASCII bytes is UTF-8 even if a single-byte charset such as
windows-1251 is declared, because legacy text practically never forms valid UTF-8 sequences.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Literal

from pawatch.scraper.errors import DecodeError

__all__ = ["DecodeHow", "Decoded", "decode_body", "normalize_charset"]

DecodeHow = Literal["forced", "header", "meta", "bom", "detected"]

_META_WINDOW = 4096
_HEADER_CHARSET_RE = re.compile(r"""charset\s*=\s*["']?([^"';,\s]+)""", re.IGNORECASE)
# Matches both <meta charset="x"> and <meta http-equiv=... content="text/html; charset=x">.
_META_CHARSET_RE = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE
)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: FF FE 00 00 starts with FF FE
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# WHATWG: these labels mean windows-1252 in every browser, and servers rely on it.
_WHATWG_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252"}
_SINGLE_BYTE_UTF8_GUARD = frozenset(
    {"cp1250", "cp1251", "cp1252", "cp866", "koi8-r", "koi8-u", "iso8859-5", "mac-cyrillic"}
)


@dataclass(frozen=True)
class Decoded:
    """The text of a body, the Python codec name used, and how it was chosen."""

    text: str
    encoding: str
    how: DecodeHow


def normalize_charset(label: str | None) -> str | None:
    """The Python codec name for a charset label (``windows-1251`` -> ``cp1251``), or None."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if not label:
        return None
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):  # base64, zlib, rot13 ...
        return None
    name = info.name
    return _WHATWG_ALIASES.get(name, name)


def _header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _HEADER_CHARSET_RE.search(content_type)
    return match.group(1) if match else None


def _meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET_RE.search(body, 0, _META_WINDOW)
    return match.group(1).decode("ascii") if match else None


def _strict(body: bytes, encoding: str) -> str | None:
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _utf8_overrides(body: bytes, encoding: str) -> str | None:
    """UTF-8 text when a single-byte charset is declared but the body is clearly UTF-8."""
    if encoding not in _SINGLE_BYTE_UTF8_GUARD or body.isascii():
        return None
    return _strict(body, "utf-8")


def decode_body(body: bytes, content_type: str | None, forced: str | None = None) -> Decoded:
    """Decode ``body`` using the steps in the module docstring; raise DecodeError if none works.

    ``forced`` (a source's ``encoding``) wins outright: undecodable bytes become U+FFFD. An
    unknown forced label is a configuration mistake and raises DecodeError.
    """
    if forced:
        encoding = normalize_charset(forced)
        if encoding is None:
            raise DecodeError(f"unknown forced encoding {forced!r}")
        return Decoded(body.decode(encoding, errors="replace"), encoding, "forced")

    for bom, encoding in _BOMS:
        if body.startswith(bom):
            text = _strict(body[len(bom) :], encoding)
            if text is not None:
                return Decoded(text, encoding, "bom")
            break

    header = normalize_charset(_header_charset(content_type))
    if header is not None:
        utf8 = _utf8_overrides(body, header)
        if utf8 is not None:
            return Decoded(utf8, "utf-8", "detected")
        text = _strict(body, header)
        if text is not None:
            return Decoded(text, header, "header")

    meta = normalize_charset(_meta_charset(body))
    if meta is not None:
        if meta.startswith(("utf-16", "utf-32")):
            meta = "utf-8"  # a <meta> readable as ASCII cannot be UTF-16 (WHATWG rule)
        if meta != header:
            utf8 = _utf8_overrides(body, meta)
            if utf8 is not None:
                return Decoded(utf8, "utf-8", "detected")
            text = _strict(body, meta)
            if text is not None:
                return Decoded(text, meta, "meta")

    text = _strict(body, "utf-8")
    if text is not None:
        return Decoded(text, "utf-8", "detected")

    return _detect(body)


# Bytes 0xC0-0xFF are the Cyrillic letters in windows-1251 (upper, then lower case) and in
# KOI8-R (lower, then upper). Russian words are runs of them; accented Latin letters in
# windows-1252 text (café, über) are mostly alone between ASCII letters.
_CYRILLIC_RUN = re.compile(rb"[\xc0-\xff]{2,}")
_HIGH = bytes(range(0x80, 0x100))
_LETTERS = bytes(range(0xC0, 0x100))
_UPPER_HALF = bytes(range(0xC0, 0xE0))


def _count(body: bytes, byte_values: bytes) -> int:
    """How many bytes of ``body`` are among ``byte_values`` (counted in C)."""
    return len(body) - len(body.translate(None, byte_values))


def _cyrillic(body: bytes) -> Decoded | None:
    """The body read as ``cp1251`` or ``koi8-r`` when its non-ASCII bytes read as Cyrillic
    words in one of them, else None. The sites pawatch watches write Russian; a statistical
    detector on a short Russian text often answers a far-fetched charset (mac-iceland, johab)."""
    high, letters = _count(body, _HIGH), _count(body, _LETTERS)
    if not letters or letters < 0.6 * high:
        return None
    in_runs = len(body) - len(_CYRILLIC_RUN.sub(b"", body))
    if in_runs < 0.6 * letters:
        return None
    upper_half = _count(body, _UPPER_HALF)
    # most letters are lower case: in windows-1251 those are 0xE0-0xFF, in KOI8-R 0xC0-0xDF
    encoding = "cp1251" if upper_half <= letters - upper_half else "koi8-r"
    text = _strict(body, encoding)
    return None if text is None else Decoded(text, encoding, "detected")


def _detect(body: bytes) -> Decoded:
    cyrillic = _cyrillic(body)
    if cyrillic is not None:
        return cyrillic
    from charset_normalizer import from_bytes

    best = from_bytes(body).best()
    if best is None or best.encoding is None:
        raise DecodeError("could not detect the character encoding of the body")
    encoding = normalize_charset(best.encoding) or best.encoding
    text = _strict(body, encoding)
    if text is None:
        text = str(best)
    return Decoded(text, encoding, "detected")
