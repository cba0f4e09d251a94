"""decode_body: forced, BOM, header, <meta>, detection; wrong declarations fall through."""

from __future__ import annotations

import codecs

import pytest

from pawatch.scraper.charset import Decoded, decode_body, normalize_charset
from pawatch.scraper.errors import DecodeError

RU = (
    "Делегация Жогорку Кенеша Кыргызской Республики в ПА ОДКБ состоит из 7 депутатов. "
    "Полномочный представитель: Исмаилов Марлен Джумабекович."
)
KK = "Қазақстан Республикасы Парламентінің Мәжілісі"


def html(text: str, head: str = "") -> str:
    return (
        f"<!doctype html><html><head>{head}<title>t</title></head><body><p>{text}</p></body></html>"
    )


META_1251 = '<meta charset="windows-1251">'
HTTP_EQUIV_1251 = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'

# (case id, body, Content-Type, forced, expected text, expected encoding, expected how)
CASES: list[tuple[str, bytes, str | None, str | None, str, str, str]] = [
    (
        "header-utf8",
        html(RU).encode(),
        "text/html; charset=UTF-8",
        None,
        html(RU),
        "utf-8",
        "header",
    ),
    (
        "header-cp1251-quoted",
        html(RU).encode("cp1251"),
        'text/html; charset="windows-1251"',
        None,
        html(RU),
        "cp1251",
        "header",
    ),
    (
        "meta-charset",
        html(RU, META_1251).encode("cp1251"),
        "text/html",
        None,
        html(RU, META_1251),
        "cp1251",
        "meta",
    ),
    (
        "meta-http-equiv",
        html(RU, HTTP_EQUIV_1251).encode("cp1251"),
        None,
        None,
        html(RU, HTTP_EQUIV_1251),
        "cp1251",
        "meta",
    ),
    (
        "bom-utf8-beats-header",
        codecs.BOM_UTF8 + html(KK).encode(),
        "text/html; charset=windows-1251",
        None,
        html(KK),
        "utf-8",
        "bom",
    ),
    (
        "bom-utf16",
        codecs.BOM_UTF16_LE + html(RU).encode("utf-16-le"),
        None,
        None,
        html(RU),
        "utf-16-le",
        "bom",
    ),
    (
        "cp1251-no-declaration",
        html(RU).encode("cp1251"),
        "text/html",
        None,
        html(RU),
        "cp1251",
        "detected",
    ),
    (
        "utf8-no-declaration-fast-path",
        html(KK).encode(),
        None,
        None,
        html(KK),
        "utf-8",
        "detected",
    ),
    (
        "header-says-utf8-body-is-cp1251-meta-right",
        html(RU, META_1251).encode("cp1251"),
        "text/html; charset=utf-8",
        None,
        html(RU, META_1251),
        "cp1251",
        "meta",
    ),
    (
        "header-says-utf8-body-is-cp1251-nothing-else",
        html(RU).encode("cp1251"),
        "text/html; charset=utf-8",
        None,
        html(RU),
        "cp1251",
        "detected",
    ),
    (
        "meta-says-cp1251-body-is-utf8",
        html(RU, META_1251).encode(),
        "text/html",
        None,
        html(RU, META_1251),
        "utf-8",
        "detected",
    ),
    (
        "bogus-header-charset-falls-through",
        html(RU, META_1251).encode("cp1251"),
        "text/html; charset=x-no-such-charset",
        None,
        html(RU, META_1251),
        "cp1251",
        "meta",
    ),
    (
        "forced-wins-over-header",
        html(RU).encode("cp1251"),
        "text/html; charset=utf-8",
        "windows-1251",
        html(RU),
        "cp1251",
        "forced",
    ),
    (
        "latin1-label-means-windows-1252",
        html("caf\u00e9 \u201cquoted\u201d").encode("cp1252"),
        "text/html; charset=iso-8859-1",
        None,
        html("caf\u00e9 \u201cquoted\u201d"),
        "cp1252",
        "header",
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "forced", "text", "encoding", "how"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decode_body(
    body: bytes, content_type: str | None, forced: str | None, text: str, encoding: str, how: str
) -> None:
    assert decode_body(body, content_type, forced) == Decoded(text, encoding, how)  # type: ignore[arg-type]


def test_meta_beyond_the_first_4kb_is_ignored() -> None:
    body = ("<!--" + " " * 5000 + "-->" + META_1251 + "<p>abc</p>").encode("cp1251")
    assert decode_body(body, None).how == "detected"


def test_forced_encoding_replaces_undecodable_bytes() -> None:
    decoded = decode_body(b"ok \xff\xfe end", "text/html", forced="utf-8")
    assert decoded.how == "forced" and decoded.text == "ok \ufffd\ufffd end"


def test_unknown_forced_encoding_is_a_decode_error() -> None:
    with pytest.raises(DecodeError) as info:
        decode_body(b"abc", None, forced="klingon-8")
    assert "klingon-8" in str(info.value) and info.value.kind == "decode"


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("windows-1251", "cp1251"),
        ("CP1251", "cp1251"),
        (" 'UTF-8' ", "utf-8"),
        ("latin1", "cp1252"),
        ("base64", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_charset(label: str | None, name: str | None) -> None:
    assert normalize_charset(label) == name
