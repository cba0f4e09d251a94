"""Property tests: parsers raise nothing but ParseError on arbitrary HTML or text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pawatch.scraper.parsers import PARSERS, ParseError, ParseResult, get_parser

_TAGS = ["p", "div", "br", "a", "li", "ul", "table", "tr", "td", "span", "h1", "h2", "script",
         "time", "b", "article"]  # fmt: skip
_WORDS = ["Delegation of the", "Делегация", "Parliament of Narnia", "consists of", "состоит из",
          "представлена", "7 deputies", "семью депутатами", "from the", "and", "и",
          "Plenipotentiary representative", "Полномочный представитель", ":", ",", " - ",
          "Website of the", "Сайт", "http://x.kg/", "Supreme Council of the Kyrgyz Republic",
          "Viktor Kogut", "15 June 2021", "08 December", "Head of the delegation", ".", "\n",
          "<", ">", "&amp;", "\x00", "Ё", "12 senators", "сенаторами", "is made up of",
          "В составе делегации", "в ПА ОДКБ", " to the CSTO PA ", "Mazhilis",
          "Кошанов Ерлан - член",
          "(role)", "https://www.x.kg"]  # fmt: skip

fragment = st.recursive(
    st.one_of(st.sampled_from(_WORDS), st.text(max_size=20)),
    lambda children: st.builds(
        lambda tag, attrs, inner: f"<{tag}{attrs}>{''.join(inner)}</{tag}>",
        st.sampled_from(_TAGS),
        st.sampled_from(
            [
                "",
                ' class="item"',
                ' href="/x"',
                ' href="javascript:0"',
                ' class="title"',
                ' class="date"',
            ]
        ),
        st.lists(children, max_size=5),
    ),
    max_leaves=25,
)
html_documents = st.one_of(st.text(), st.lists(fragment, max_size=6).map("".join))

_OPTIONS: dict[str, dict[str, Any]] = {
    "roster": {"name": "a, li, td"},
}


def _check(parser: str, html: str, options: dict[str, Any]) -> None:
    try:
        result = get_parser(parser).func(html, "https://pacsto.org/events/x", options)
    except ParseError as exc:
        assert str(exc)
        return
    assert isinstance(result, ParseResult)
    result.facts()
    if not result.found:
        assert result.records == [] and result.warnings


@pytest.mark.parametrize("parser", sorted(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html=html_documents, delegation=st.sampled_from([None, "KG", "TJ"]))
def test_parsers_raise_only_parse_error(parser: str, html: str, delegation: str | None) -> None:
    _check(parser, html, {**_OPTIONS.get(parser, {}), "delegation": delegation})


@settings(max_examples=100, deadline=None)
@given(html=html_documents)
def test_roster_json_mode_raises_only_parse_error(html: str) -> None:
    _check("roster", html, {"name": "x", "json_items": "content", "json_name": ["a", "b"]})


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(
                        st.sampled_from(["content", "a", "b", "url"]), c, max_size=4),
                    max_leaves=15))  # fmt: skip
def test_roster_json_mode_on_arbitrary_json(value: object) -> None:
    import json

    _check("roster", json.dumps(value), {"name": "x", "json_items": "content",
                                         "json_name": ["a", "b"], "json_link": "url"})  # fmt: skip
