"""Parsers against fixture pages: each ``<case>.html`` (or ``.json``) beside its
``<case>.expected.json`` (meta: url, options, encoding; then found, warnings, unreadable
(optional: none when absent), facts, records, or error: the ParseError message)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from pawatch.scraper.parsers import PARSERS, ParseError, ParseResult, get_parser
from pawatch.scraper.parsers.dates import parse_date
from pawatch.scraper.parsers.numbers import parse_count
from pawatch.scraper.parsers.records import website_key
from pawatch.scraper.parsers.text import normalize_url, visible_lines

FIXTURES = Path(__file__).parent / "fixtures" / "parsers"
CASES = sorted(FIXTURES.glob("*/*.expected.json"))


def _input_for(expected: Path) -> Path:
    stem = expected.name.removesuffix(".expected.json")
    found = [p for p in expected.parent.glob(f"{stem}.*") if p != expected]
    assert len(found) == 1, f"{expected}: expected one input file, found {found}"
    return found[0]


def _run(parser: str, text: str, meta: dict[str, Any]) -> ParseResult:
    options = dict(meta.get("options", {}))
    options.setdefault("delegation", None)  # the pipeline always passes it
    return get_parser(parser).func(text, meta.get("url", "https://pacsto.org/"), options)


def test_fixture_cases_cover_every_parser() -> None:
    assert {case.parent.name for case in CASES} == set(PARSERS)
    assert len(CASES) >= 20


@pytest.mark.parametrize("expected_path", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture(expected_path: Path) -> None:
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    meta = expected["meta"]
    text = _input_for(expected_path).read_bytes().decode(meta.get("encoding", "utf-8"))
    parser = expected_path.parent.name
    if "error" in expected:
        with pytest.raises(ParseError) as info:
            _run(parser, text, meta)
        assert str(info.value) == expected["error"]
        return
    result = _run(parser, text, meta)
    assert result.parser == parser
    assert result.found == expected["found"]
    assert result.warnings == expected["warnings"]
    unreadable = [dataclasses.asdict(u) for u in result.unreadable]
    assert unreadable == expected.get("unreadable", [])
    assert [[f.subject, f.attribute, f.key, f.value] for f in result.facts()] == expected["facts"]
    records = json.loads(json.dumps([dataclasses.asdict(r) for r in result.records]))
    assert records == expected["records"]


def test_cp1251_fixtures_are_real_cp1251_bytes() -> None:
    cases = [c for c in CASES if json.loads(c.read_text())["meta"].get("encoding") == "cp1251"]
    assert len(cases) >= 2
    for case in cases:
        raw = _input_for(case).read_bytes()
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        assert "Делегация" in raw.decode("cp1251")


# --- delegations: phrasing variants one by one -------------------------------------------


def _delegations(html: str) -> ParseResult:
    return get_parser("delegations").func(html, "https://pacsto.org/", {"delegation": None})


def _facts(result: ParseResult) -> dict[tuple[str, str, str], str]:
    return {(f.subject, f.attribute, f.key): f.value for f in result.facts()}


@pytest.mark.parametrize(
    ("sentence", "chambers"),
    [
        (
            "Delegation of the Parliament of the Republic of Kazakhstan to the CSTO PA is "
            "represented by 8 deputies from the Mazhilis of the Parliament of the Republic of "
            "Kazakhstan and 8 members of the Senate of the Parliament of Kazakhstan.",
            {"mazhilis": "8", "senate": "8", "total": "16"},
        ),
        (
            "Делегация Федерального Собрания Российской Федерации в ПА ОДКБ представлена "
            "десятью депутатами Государственной Думы и двенадцатью членами Совета Федерации.",
            {"state-duma": "10", "federation-council": "12", "total": "22"},
        ),
        (
            "Делегация Жогорку Кенеша Кыргызской Республики в ПА ОДКБ состоит из семи депутатов.",
            {"supreme-council": "7", "total": "7"},
        ),
        (
            "Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA consists "
            "of Seven deputies.",
            {"supreme-council": "7", "total": "7"},
        ),
        (
            "Delegation of the Federal Assembly of the Russian Federation to the CSTO PA "
            "consists of 10 deputies of the State Duma and 12 senators of the Federation "
            "Council.",
            {"state-duma": "10", "federation-council": "12", "total": "22"},
        ),
        # the Assembly's current wording: the upper chamber named by its members' title
        (
            "Delegation of the Federal Assembly of the Russian Federation to the CSTO PA "
            "consists of 10 deputies of the State Duma of the Russian Federation and 12 "
            "senators of the Russian Federation.",
            {"state-duma": "10", "federation-council": "12", "total": "22"},
        ),
        (
            "Делегация Федерального Собрания Российской Федерации в ПА ОДКБ представлена 10 "
            "депутатами Государственной Думы Федерального Собрания Российской Федерации и 12 "
            "сенаторами Российской Федерации.",
            {"state-duma": "10", "federation-council": "12", "total": "22"},
        ),
        (
            "Делегация Парламента Республики Казахстан в ПА ОДКБ состоит из восьми "
            "мажилисменов и восьми сенаторов Парламента Республики Казахстан.",
            {"mazhilis": "8", "senate": "8", "total": "16"},
        ),
        # by elimination: the other chamber is named, this one only the state
        (
            "Delegation of the Federal Assembly of the Russian Federation to the CSTO PA "
            "consists of 12 members of the Federation Council and 10 deputies of the Russian "
            "Federation.",
            {"state-duma": "10", "federation-council": "12", "total": "22"},
        ),
        # other verbs: read like "consists of"
        (
            "Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA is made "
            "up of 7 deputies.",
            {"supreme-council": "7", "total": "7"},
        ),
        (
            "Delegation of the National Assembly of the Republic of Belarus to the CSTO PA "
            "comprises 7 deputies from the House of Representatives and 4 senators.",
            {"house-of-representatives": "7", "council-of-the-republic": "4", "total": "11"},
        ),
        (
            "Delegation of the Parliament of the Republic of Kazakhstan to the CSTO PA includes "
            "8 deputies of the Mazhilis and 8 members of the Senate.",
            {"mazhilis": "8", "senate": "8", "total": "16"},
        ),
        (
            "Делегация Маджлиси Оли Республики Таджикистан в ПА ОДКБ включает в себя 6 "
            "членов Маджлиси милли и 6 депутатов Маджлиси намояндагон.",
            {"majlisi-milli": "6", "majlisi-namoyandagon": "6", "total": "12"},
        ),
        (
            "Делегация Жогорку Кенеша Кыргызской Республики в ПА ОДКБ насчитывает 7 депутатов.",
            {"supreme-council": "7", "total": "7"},
        ),
        # a verb in a later sentence is not this sentence's verb
        (
            "Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA – 7 "
            "deputies. The Council includes 3 members of the Senate.",
            {"supreme-council": "7", "total": "7"},
        ),
        (
            "В составе делегации Федерального Собрания Российской Федерации в ПА ОДКБ — 10 "
            "депутатов Государственной Думы и 12 сенаторов Российской Федерации.",
            {"state-duma": "10", "federation-council": "12", "total": "22"},
        ),
        (
            "Делегация Национального собрания Республики Беларусь в ПА ОДКБ представлена "
            "шестью депутатами Палаты представителей и тремя сенаторами.",
            {"house-of-representatives": "6", "council-of-the-republic": "3", "total": "9"},
        ),
    ],
)
def test_composition_variants(sentence: str, chambers: dict[str, str]) -> None:
    result = _delegations(f"<div><p>{sentence}</p></div>")
    assert len(result.records) == 1
    subject = result.records[0].subject
    seats = {
        attr.removeprefix("seats:"): value
        for (subj, attr, _), value in _facts(result).items()
        if subj == subject and attr.startswith("seats:")
    }
    assert seats == chambers
    assert result.warnings == [] and result.unreadable == []


@pytest.mark.parametrize(
    ("line", "name", "role"),
    [
        ("Plenipotentiary representative of the Supreme Council of the Kyrgyz Republic: "
         "Shabdanbek Alishev", "Shabdanbek Alishev", None),
        ("Plenipotentiary Representative of the Supreme Council of the Kyrgyz Republic, "
         "deputy Executive Secretary of the CSTO Parliamentary Assembly:Alishev Shabdanbek",
         "Alishev Shabdanbek", "deputy Executive Secretary of the CSTO Parliamentary Assembly"),
        ("Plenipotentiary representative of the Supreme Council of the Kyrgyz Republic - "
         "Deputy Speaker: Shabdanbek Alishev", "Shabdanbek Alishev", "Deputy Speaker"),
        ("Полномочный представитель Жогорку Кенеша Кыргызской Республики: Алишев Шабданбек "
         "Ибраимович", "Алишев Шабданбек Ибраимович", None),
    ],
)  # fmt: skip
def test_plenipotentiary_variants(line: str, name: str, role: str | None) -> None:
    html = (
        "<div>Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA "
        f"consists of 7 deputies.<br>{line}</div>"
    )
    record = _delegations(html).records[0]
    assert (record.plenipotentiary, record.plenipotentiary_role) == (name, role)


@pytest.mark.parametrize(
    ("sentence", "phrase"),
    [
        ("Delegation of the Parliament of the Republic of Kazakhstan to the CSTO PA consists of "
         "8 deputies from the Upper House of the Parliament of the Republic of Kazakhstan.",
         "8 deputies from the Upper House of the Parliament of the Republic of Kazakhstan"),
        # the Mazhilis is named but the other count names an unknown body: no guess
        ("Delegation of the Parliament of the Republic of Kazakhstan to the CSTO PA consists of "
         "8 deputies from the Mazhilis and 8 members of the Upper House.",
         "8 members of the Upper House"),
        # no chamber named, two chambers in the registry: no guess
        ("Делегация Федерального Собрания Российской Федерации в ПА ОДКБ состоит из 22 "
         "депутатов.", "22 депутатов"),
        # one count named by elimination is not enough when two are left
        ("Delegation of the Federal Assembly of the Russian Federation to the CSTO PA consists "
         "of 10 deputies and 12 members.", "10 deputies"),
    ],
)  # fmt: skip
def test_unresolvable_chamber_is_unreadable_never_invented(sentence: str, phrase: str) -> None:
    result = _delegations(
        f"<div><p>{sentence}</p><p>Delegation of the Supreme Council of the Kyrgyz Republic to "
        "the CSTO PA consists of 7 deputies.</p></div>"
    )
    facts = _facts(result)
    subject = result.records[0].subject
    assert not [a for (s, a, _) in facts if s == subject and a.startswith("seats:")]
    assert (subject, "delegation", "") in facts  # the delegation is still there
    assert facts[("delegation:KG", "seats:supreme-council", "")] == "7"  # the others are read
    [unreadable] = result.unreadable
    assert (unreadable.subject, unreadable.attribute_prefix) == (subject, "seats:")
    delegation = subject.removeprefix("delegation:")
    assert unreadable.message.startswith(f"delegations: {delegation}: cannot tell the chamber")
    assert repr(phrase) in unreadable.message


def test_block_found_but_unreadable_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"cannot read the composition sentence .*no seat count"):
        _delegations("<p>Delegation of the Parliament of Narnia consists of many deputies.</p>")


_KG = "Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA "
_BY = "Delegation of the National Assembly of the Republic of Belarus to the CSTO PA "


@pytest.mark.parametrize(
    ("sentence", "problem"),
    [
        (_KG + "consists of 7 people's deputies.", "no seat count"),
        (_KG + "consists of seven (7) deputies.", "no seat count"),
        (_KG + "took part in the session in Minsk with 7 deputies.", "is not a composition verb"),
        (_KG + "met with 7 deputies.", "'met with' before the first count"),
        (_KG + "consists of 7 deputies and 2 (two) members.", "the count '2'"),
        (_BY + "consists of 7 deputies from the House of Representatives and four (4) deputies "
         "from the Council of the Republic.", "the count 'four'"),
        ("Делегация Жогорку Кенеша Кыргызской Республики в ПА ОДКБ состоит из 7 народных "
         "депутатов.", "no seat count"),
        ("Делегация Жогорку Кенеша Кыргызской Республики в ПА ОДКБ состоит из 7 депутатов и "
         "двух (2) наблюдателей.", "the count 'двух'"),
        ("Делегация Жогорку Кенеша Кыргызской Республики в ПА ОДКБ провела встречу с 7 "
         "депутатами.", "is not a composition verb"),
    ],
)  # fmt: skip
def test_unreadable_composition_sentence_is_a_parse_error(sentence: str, problem: str) -> None:
    """A recognised but unreadable sentence never silently drops its delegation (which the
    change layer would report as `delegation_removed`), even beside readable ones."""
    readable = (
        "Delegation of the Parliament of the Republic of Kazakhstan to the CSTO PA consists "
        "of 8 deputies from the Mazhilis and 8 members of the Senate."
    )
    html = f"<div><p>{readable}</p><p>{sentence}</p><p>Plenipotentiary representative: X Y</p>"
    with pytest.raises(ParseError) as info:
        _delegations(html)
    message = str(info.value)
    assert message.startswith("delegations: cannot read the composition sentence ")
    assert problem in message
    assert sentence[:40] in message


@pytest.mark.parametrize(
    "text",
    [
        "Delegation of the Federal Assembly to the CSTO PA took part in the session.",
        "Delegation of the State Duma visited Minsk with members of the committee.",
        "Делегация Жогорку Кенеша в ПА ОДКБ приняла участие в заседании.",
        "Delegation members: Viktor Kogut, Oleg Ivanov.",
    ],
)
def test_headlines_starting_with_delegation_are_not_composition_sentences(text: str) -> None:
    result = _delegations(f"<p>{text}</p>")
    assert result.found is False and result.records == []


def test_page_without_block_is_not_found_never_empty_records() -> None:
    result = _delegations("<p>The delegation visited Minsk.</p>")
    assert result.found is False
    assert result.records == [] and result.warnings
    assert result.facts() == []


def test_website_label_without_url_gives_no_website() -> None:
    result = _delegations(
        "<p>Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA consists of "
        "7 deputies.</p><p>Website of the Supreme Council of the Kyrgyz Republic:</p>"
    )
    assert result.records[0].websites == []


def test_select_option_that_matches_nothing_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="#sidebar"):
        get_parser("delegations").func(
            "<p>Delegation of the X consists of 7 deputies.</p>", "https://pacsto.org/",
            {"select": "#sidebar"},
        )  # fmt: skip


def _fixture_facts(name: str) -> dict[tuple[str, str, str], str]:
    parser, _, case = name.partition("/")
    html = (FIXTURES / parser / f"{case}.html").read_text(encoding="utf-8")
    return _facts(get_parser(parser).func(html, "https://pacsto.org/", {"delegation": None}))


def test_wording_and_spelling_switch_changes_no_identity() -> None:
    """The Assembly's 2026 wording (senators, other verbs, names surname first in capitals,
    https and www) states the same facts by identity as the old one: only shown values
    differ, and the seats are equal."""
    old = _fixture_facts("delegations/en_sidebar_divs")
    new = _fixture_facts("delegations/en_sidebar_senators")
    assert old.keys() == new.keys()
    changed = {fid for fid in old if old[fid] != new[fid]}
    assert {attribute for _, attribute, _ in changed} == {"plenipotentiary", "website"}
    assert new[("delegation:RU", "seats:federation-council", "")] == "12"
    assert new[("delegation:BY", "plenipotentiary", "kogut viktor")] == "KOGUT Viktor"


def test_english_and_russian_blocks_name_the_same_people_and_chambers() -> None:
    en = _fixture_facts("delegations/en_sidebar_senators")
    ru = _fixture_facts("delegations/ru_sidebar_senators")
    people = {(s, k) for (s, a, k) in en if a == "plenipotentiary"}
    assert len(people) == 4
    assert people <= {(s, k) for (s, a, k) in ru if a == "plenipotentiary"}
    seats = {fid: value for fid, value in en.items() if fid[1].startswith("seats:")}
    assert seats == {fid: value for fid, value in ru.items() if fid[1].startswith("seats:")}


@pytest.mark.parametrize(
    "url",
    ["http://kenesh.kg/", "https://kenesh.kg", "https://www.kenesh.kg/", "HTTP://WWW.Kenesh.KG",
     "www.kenesh.kg/", "kenesh.kg", "https://kenesh.kg:443/#top"],
)  # fmt: skip
def test_website_key_ignores_scheme_www_and_trailing_slash(url: str) -> None:
    assert website_key(url) == "kenesh.kg"


def test_website_key_keeps_what_tells_sites_apart() -> None:
    urls = ["http://house.gov.by/en/", "http://house.gov.by/ru/", "https://sovrep.gov.by/",
            "https://kenesh.kg/?lang=ru"]  # fmt: skip
    keys = {website_key(u) for u in urls}
    assert keys == {"house.gov.by/en", "house.gov.by/ru", "sovrep.gov.by", "kenesh.kg/?lang=ru"}


def test_website_line_records_its_chamber() -> None:
    result = _delegations(
        "<div><p>Delegation of the Parliament of the Republic of Kazakhstan to the CSTO PA "
        "consists of 8 deputies from the Mazhilis and 8 senators.</p><p>Website of the Senate "
        "of the Parliament of the Republic of Kazakhstan: <a href='http://www.senate.parlam.kz/'>"
        "senate.parlam.kz</a></p><p>Website of the Parliament of the Republic of Kazakhstan: "
        "<a href='https://parlam.kz'>parlam.kz</a></p></div>"
    )
    facts = _facts(result)
    assert facts[("delegation:KZ", "website", "senate.parlam.kz")] == "http://www.senate.parlam.kz/"
    assert facts[("delegation:KZ", "website_chamber", "senate.parlam.kz")] == "senate"
    assert ("delegation:KZ", "website", "parlam.kz") in facts  # the parliament's: no chamber
    assert ("delegation:KZ", "website_chamber", "parlam.kz") not in facts


# --- delegation-page ---------------------------------------------------------------------


def test_delegation_page_for_another_delegation_is_a_parse_error() -> None:
    html = (FIXTURES / "delegation-page" / "tj_country_page.html").read_text()
    with pytest.raises(ParseError, match="no composition sentence for delegation KG"):
        get_parser("delegation-page").func(html, "https://pacsto.org/", {"delegation": "KG"})


def test_delegation_page_unreadable_sidebar_sentence_without_delegation_is_an_error() -> None:
    """With the source's delegation configured, another delegation's unreadable sidebar
    sentence is a warning (fixture tj_sidebar_other_unreadable); without it, the page cannot
    say which sentence is its own: an error."""
    html = (FIXTURES / "delegation-page" / "tj_sidebar_other_unreadable.html").read_text()
    with pytest.raises(ParseError, match=r"cannot read the composition sentence .*Belarus"):
        get_parser("delegation-page").func(html, "https://pacsto.org/", {"delegation": None})


def test_delegation_page_unreadable_sentence_of_its_own_delegation_is_an_error() -> None:
    html = (
        "<div><p>Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA "
        "consists of 7 deputies.</p></div><main><p>Delegation of the Supreme Council of the "
        "Kyrgyz Republic to the CSTO PA consists of 7 people's deputies.</p><p>Alishev "
        "Shabdanbek, Imanaliev Erkin</p></main>"
    )
    with pytest.raises(ParseError, match="7 people's deputies"):
        get_parser("delegation-page").func(html, "https://pacsto.org/", {"delegation": "KG"})


@pytest.mark.parametrize("delegation", ["TJ", None])
def test_delegation_page_delegation_option(delegation: str | None) -> None:
    """The ``delegation`` option, as the pipeline passes it, still chooses the sentence."""
    html = (FIXTURES / "delegation-page" / "tj_country_page.html").read_text()
    options = {} if delegation is None else {"delegation": delegation}
    result = get_parser("delegation-page").func(html, "https://pacsto.org/", options)
    assert [r.delegation_id for r in result.records] == ["TJ"]
    assert len(result.records[0].members) == 12


@pytest.mark.parametrize(
    ("line", "name", "role"),
    [
        ("Кошанов Ерлан Жаканович - член Совета Парламентской Ассамблеи ОДКБ",
         "Кошанов Ерлан Жаканович", "член Совета Парламентской Ассамблеи ОДКБ"),
        ("Viktor Kogut — Chairman of the Standing Commission", "Viktor Kogut",
         "Chairman of the Standing Commission"),
        ("Алишев Шабданбек (заместитель Торага)", "Алишев Шабданбек", "заместитель Торага"),
        ("Алишев Шабданбек, член Совета ПА ОДКБ, председатель комитета", "Алишев Шабданбек",
         "член Совета ПА ОДКБ, председатель комитета"),
    ],
)  # fmt: skip
def test_delegation_page_member_with_a_role_is_a_member(line: str, name: str, role: str) -> None:
    html = (
        "<main><p>Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA "
        f"consists of 2 deputies.</p><p>{line}</p><p>Imanaliev Erkin</p></main>"
    )
    result = get_parser("delegation-page").func(html, "https://pacsto.org/", {"delegation": "KG"})
    record = result.records[0]
    assert record.members == [name, "Imanaliev Erkin"]
    assert record.member_roles == {name: role}
    assert result.warnings == []


def test_delegation_page_members_selector() -> None:
    html = (FIXTURES / "delegation-page" / "tj_country_page.html").read_text()
    result = get_parser("delegation-page").func(
        html, "https://pacsto.org/", {"delegation": "TJ", "members": ".country__members p"}
    )
    assert len(result.records[0].members) == 12
    assert result.records[0].head == "Rustam Emomali"


# --- news, roster, page --------------------------------------------------------------------


def test_news_mode_must_be_known() -> None:
    with pytest.raises(ParseError, match="option mode"):
        get_parser("news-list").func("<p>x</p>", "https://pacsto.org/", {"mode": "feed"})


_NEWS_URL = "https://pacsto.org/events"
_ITEMS = "".join(
    f'<div class="card"><span>{d} May 2024</span><a href="/events/{d}">Event number {d}</a>'
    "<p>Members of the Assembly met to discuss the agenda of the session.</p></div>"
    for d in (1, 2, 3, 4)
)


@pytest.mark.parametrize(
    ("html", "options", "problem"),
    [
        # the item class renamed: the page h1 must not become a news item
        (f"<div class='wrap'><h1>Events</h1><div class='feed'>{_ITEMS}</div></div>", {},
         "a list of 4 <div class=\"card\"> items"),
        # the header wrapper around the h1 holds no text: the list is found further up
        (f"<div><div class='head'><h1>Events</h1></div><section>{_ITEMS}</section></div>", {},
         "a list of 4"),
        # a list of <article> items: the first <article> is no article page
        ("<h1>News</h1><div>" + _ITEMS.replace("div class", "article class").replace(
            "</div>", "</article>") + "</div>", {}, "<article class=\"card\">"),
        # the list emptied (rendered by a script now): only the h1 is left
        ("<div><h1>Events</h1><div class='events-list'></div></div>", {},
         "no text beside its title"),
        # an explicitly configured item selector that matches nothing, in auto mode
        (f"<h1>Events</h1>{_ITEMS}", {"item": ".event-item"},
         "item selector '.event-item' matched nothing"),
    ],
)  # fmt: skip
def test_news_auto_mode_never_reads_a_list_page_as_an_article(
    html: str, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ParseError) as info:
        get_parser("news-list").func(html, _NEWS_URL, options)
    assert problem in str(info.value)


@pytest.mark.parametrize(
    "html",
    [
        "<article><header><h1>Seminar held</h1><time datetime='2024-05-01'>1 May 2024</time>"
        "</header><div class='text'><p>The Assembly held a seminar on electoral processes.</p>"
        "<p>Members of <a href='/a'>one</a> and <a href='/b'>two</a> spoke.</p></div></article>"
        "<nav><ul><li><a href='/x'>x</a></li><li><a href='/y'>y</a></li>"
        "<li><a href='/z'>z</a></li></ul></nav>",
        "<div><h1>Seminar held</h1><p>1 May 2024</p><p>The Assembly held a seminar on "
        "electoral processes in Minsk.</p></div>",
        # a logo h1 above a menu: the title is the article's own h1, as _read_article takes
        "<header><h1>CSTO Parliamentary Assembly</h1><ul><li><a href='/x'>Events</a></li>"
        "<li><a href='/y'>Documents</a></li><li><a href='/z'>Contacts</a></li></ul></header>"
        "<article><h1>Seminar held</h1><p>1 May 2024</p><p>The Assembly held a seminar on "
        "electoral processes in Minsk.</p></article>",
    ],
)
def test_news_auto_mode_reads_a_single_article(html: str) -> None:
    url = "https://pacsto.org/events/seminar"
    result = get_parser("news-list").func(html, url, {})
    assert [(r.url, r.title, r.date) for r in result.records] == [
        (url, "Seminar held", "2024-05-01")
    ]


def test_news_article_without_title_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="no article title"):
        get_parser("news-list").func("<div>text only</div>", "https://pacsto.org/", {})


def test_roster_above_max_items_is_a_parse_error() -> None:
    html = "<ul>" + "".join(f"<li><b>Member Number{chr(65 + i)}</b></li>" for i in range(6))
    with pytest.raises(ParseError, match="more than max_items=5"):
        get_parser("roster").func(html, "https://x.kz/", {"name": "li b", "max_items": 5})


def test_roster_json_that_is_not_json_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not JSON"):
        get_parser("roster").func("<html></html>", "https://kenesh.kg/api", {
            "name": "x", "json_items": "content", "json_name": "lastName"})  # fmt: skip


def test_roster_html_mode_needs_a_name_selector() -> None:
    with pytest.raises(ParseError, match="option name"):
        get_parser("roster").func("<ul><li>Viktor Kogut</li></ul>", "https://x/", {"item": "li"})


def test_roster_without_delegation_uses_roster_subject() -> None:
    result = get_parser("roster").func(
        "<ul><li>Viktor Kogut</li></ul>", "https://house.gov.by/", {"name": "li"}
    )
    assert [(f.subject, f.key) for f in result.facts()] == [("roster", "kogut viktor")]


def test_bad_css_selector_is_a_parse_error_naming_the_option() -> None:
    with pytest.raises(ParseError, match="option item: invalid CSS selector"):
        get_parser("roster").func("<p>x</p>", "https://x/", {"name": "p", "item": "p["})


def test_page_bad_ignore_regex_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="bad regex"):
        get_parser("page").func("<p>x</p>", "https://x/", {"ignore": "("})


def test_page_text_ignores_markup_noise() -> None:
    a = get_parser("page").func("<p>A  b</p><p>c</p>", "https://x/", {})
    b = get_parser("page").func("<div>\n<p>A b</p>\n<p>c </p></div>", "https://x/", {})
    assert a.facts() == b.facts() == [a.facts()[0]]
    assert a.records[0].text == "A b\nc"
    assert a.facts()[0].value.startswith("sha256:") and a.facts()[0].value.endswith("(5 chars)")
    other = get_parser("page").func("<p>A b</p><p>d</p>", "https://x/", {})
    assert other.facts()[0].value != a.facts()[0].value


# --- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("15 June 2021", "2021-06-15"),
        ("June 15, 2021", "2021-06-15"),
        ("08 December 2023", "2023-12-08"),
        ("15 июня 2021", "2021-06-15"),
        ("15.06.2021", "2021-06-15"),
        ("15:21 01 March 2024", "2024-03-01"),
        ("27.01.2022 10:39:00", "2022-01-27"),
        ("21:16, 15 декабря 2020", "2020-12-15"),
        ("30 Июня 2023, 09:36", "2023-06-30"),
        ("17 Ноябр 2021, Чоршанбе", "2021-11-17"),
        ("10 февраля, 2021 10:27", "2021-02-10"),
        ("2021-жылдын 15-июну", "2021-06-15"),
        ("15 маусым 2021", "2021-06-15"),
        ("08 December ", None),
        ("YEREVAN, March 11.", None),
        ("31.02.2021", None),
        ("", None),
    ],
)
def test_parse_date(text: str, iso: str | None) -> None:
    assert parse_date(text) == iso


@pytest.mark.parametrize(
    ("word", "n"),
    [("7", 7), ("seven", 7), ("Twelve", 12), ("семь", 7), ("семью", 7), ("семи", 7),
     ("шестью", 6), ("тремя", 3), ("трём", 3), ("двенадцатью", 12), ("восьми", 8),
     ("двадцати", 20), ("one", 1), ("many", None), ("", None)],
)  # fmt: skip
def test_parse_count(word: str, n: int | None) -> None:
    assert parse_count(word) == n


def test_visible_lines_breaks_blocks_and_hides_scripts() -> None:
    from pawatch.scraper.parsers.text import parse_html

    tree = parse_html(
        "<div>a<p>b <i>c</i></p>d<br>e<table><tr><td>f</td><td>g</td></tr></table>"
        "<script>x</script><style>y</style></div>"
    )
    assert visible_lines(tree.body) == ["a", "b c", "d", "e", "f", "g"]


def test_normalize_url() -> None:
    assert normalize_url("HTTP://WWW.Kenesh.KG") == "http://kenesh.kg/"
    assert normalize_url("https://duma.gov.ru:443/news#top") == "https://duma.gov.ru/news"
