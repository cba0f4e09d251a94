"""``storage.changes``: pure change derivation from two fact sets, and watch-term matching."""

from __future__ import annotations

import pytest

from pawatch.domain import Fact
from pawatch.scraper.parsers import get_parser
from pawatch.scraper.parsers.names import name_key
from pawatch.storage.changes import Change, diff_facts, matches_watch

BY = "delegation:BY"
KG = "delegation:KG"
TJ = "delegation:TJ"


def seats(subject: str, chamber: str, n: int) -> Fact:
    return Fact(subject, f"seats:{chamber}", "", str(n))


def member(subject: str, name: str) -> Fact:
    return Fact(subject, "member", name_key(name), name)


def site(subject: str, key: str, url: str | None = None) -> Fact:
    return Fact(subject, "website", key, url or key)


def news(url: str, title: str) -> Fact:
    return Fact("news", "item", url, title)


BASE_BY = [
    Fact(BY, "delegation", "", "National Assembly of the Republic of Belarus"),
    seats(BY, "house-of-representatives", 7),
    seats(BY, "council-of-the-republic", 4),
    seats(BY, "total", 11),
    Fact(BY, "plenipotentiary", "", "Viktor Kogut"),
    site(BY, "http://house.gov.by/en/"),
]
BASE_KG = [
    Fact(KG, "delegation", "", "Supreme Council of the Kyrgyz Republic"),
    seats(KG, "supreme-council", 7),
    seats(KG, "total", 7),
    Fact(KG, "plenipotentiary", "", "Shabdanbek Alishev"),
    member(KG, "Nurlan Example"),
    member(KG, "Aigul Sample"),
    member(KG, "Bakyt Demo"),
]
BASE = BASE_BY + BASE_KG
TJ_FACTS = [
    Fact(TJ, "delegation", "", "Supreme Assembly of the Republic of Tajikistan"),
    seats(TJ, "majlisi-milli", 6),
    seats(TJ, "majlisi-namoyandagon", 6),
    seats(TJ, "total", 12),
    Fact(TJ, "plenipotentiary", "", "Someone Tajik"),
    member(TJ, "Rustam Example"),
]


def replaced(facts: list[Fact], old: Fact, new: Fact | None) -> list[Fact]:
    """``facts`` with ``old`` swapped for ``new`` (or dropped when ``new`` is None)."""
    assert old in facts, old
    return [f for f in facts if f != old] + ([new] if new is not None else [])


def added(facts: list[Fact], *new: Fact) -> list[Fact]:
    return [*facts, *new]


C = Change
CASES: list[tuple[str, list[Fact], list[Fact], list[Change]]] = [
    ("identical", BASE, BASE, []),
    ("same facts in another order", BASE, list(reversed(BASE)), []),
    (
        "seat count up: the chamber and the total",
        BASE,
        replaced(
            replaced(
                BASE,
                seats(BY, "house-of-representatives", 7),
                seats(BY, "house-of-representatives", 8),
            ),
            seats(BY, "total", 11),
            seats(BY, "total", 12),
        ),
        [
            C("composition", BY, "seats:house-of-representatives", "7", "8"),
            C("composition", BY, "seats:total", "11", "12"),
        ],
    ),
    (
        "a one-chamber delegation grows: one event, its total is not repeated",
        BASE,
        replaced(
            replaced(BASE, seats(KG, "supreme-council", 7), seats(KG, "supreme-council", 8)),
            seats(KG, "total", 7),
            seats(KG, "total", 8),
        ),
        [C("composition", KG, "seats:supreme-council", "7", "8")],
    ),
    (
        "a chamber appears in the sentence",
        BASE,
        added(replaced(BASE, seats(KG, "total", 7), seats(KG, "total", 9)), seats(KG, "main-2", 2)),
        [
            C("composition", KG, "seats:main-2", None, "2"),
            C("composition", KG, "seats:total", "7", "9"),
        ],
    ),
    (
        "a chamber disappears from the sentence",
        BASE,
        replaced(
            replaced(BASE, seats(BY, "council-of-the-republic", 4), None),
            seats(BY, "total", 11),
            seats(BY, "total", 7),
        ),
        [
            C("composition", BY, "seats:council-of-the-republic", "4", None),
            C("composition", BY, "seats:total", "11", "7"),
        ],
    ),
    (
        "representative replaced",
        BASE,
        replaced(BASE, BASE_BY[4], Fact(BY, "plenipotentiary", "", "Igor Sergeenko")),
        [C("representative", BY, "plenipotentiary", "Viktor Kogut", "Igor Sergeenko")],
    ),
    (
        "representative disappears",
        BASE,
        replaced(BASE, BASE_BY[4], None),
        [C("representative", BY, "plenipotentiary", "Viktor Kogut", None)],
    ),
    (
        "representative appears",
        replaced(BASE, BASE_BY[4], None),
        BASE,
        [C("representative", BY, "plenipotentiary", None, "Viktor Kogut")],
    ),
    (
        "representative replaced by one with a post: one event, not one per fact",
        BASE,
        added(
            replaced(BASE, BASE_KG[3], None),
            Fact(KG, "plenipotentiary", "", "Mikhail Krotov"),
            Fact(KG, "plenipotentiary_role", "", "deputy Executive Secretary"),
        ),
        [C("representative", KG, "plenipotentiary", "Shabdanbek Alishev", "Mikhail Krotov")],
    ),
    (
        "representative with a post disappears: one event",
        added(BASE, Fact(BY, "plenipotentiary_role", "", "deputy Executive Secretary")),
        replaced(BASE, BASE_BY[4], None),
        [C("representative", BY, "plenipotentiary", "Viktor Kogut", None)],
    ),
    (
        "same representative, new post",
        added(BASE, Fact(BY, "plenipotentiary_role", "", "deputy Executive Secretary")),
        added(BASE, Fact(BY, "plenipotentiary_role", "", "Executive Secretary")),
        [
            C(
                "representative",
                BY,
                "plenipotentiary_role",
                "deputy Executive Secretary",
                "Executive Secretary",
            )
        ],
    ),
    (
        "head of delegation replaced",
        added(BASE, Fact(KG, "head", "", "Nurlan Example")),
        added(BASE, Fact(KG, "head", "", "Aigul Sample")),
        [C("representative", KG, "head", "Nurlan Example", "Aigul Sample")],
    ),
    (
        "member added",
        BASE,
        added(BASE, member(KG, "Cholpon Placeholder")),
        [
            C(
                "member_added",
                KG,
                "member",
                None,
                "Cholpon Placeholder",
                name_key("Cholpon Placeholder"),
            )
        ],
    ),
    (
        "member removed",
        BASE,
        replaced(BASE, member(KG, "Bakyt Demo"), None),
        [C("member_removed", KG, "member", "Bakyt Demo", None, name_key("Bakyt Demo"))],
    ),
    (
        "member renamed: same key (word order, case)",
        BASE,
        replaced(
            BASE, member(KG, "Aigul Sample"), Fact(KG, "member", "aigul sample", "SAMPLE Aigul")
        ),
        [C("member_renamed", KG, "member", "Aigul Sample", "SAMPLE Aigul", "aigul sample")],
    ),
    (
        "member renamed: near-identical spelling",
        BASE,
        replaced(BASE, member(KG, "Nurlan Example"), member(KG, "Nurlan Exampel")),
        [
            C(
                "member_renamed",
                KG,
                "member",
                "Nurlan Example",
                "Nurlan Exampel",
                name_key("Nurlan Exampel"),
            )
        ],
    ),
    (
        "one member leaves, another joins: not a rename",
        BASE,
        replaced(BASE, member(KG, "Bakyt Demo"), member(KG, "Elmira Mockova")),
        [
            C("member_removed", KG, "member", "Bakyt Demo", None, name_key("Bakyt Demo")),
            C("member_added", KG, "member", None, "Elmira Mockova", name_key("Elmira Mockova")),
        ],
    ),
    (
        "rename paired with the closest spelling, the other one added",
        BASE,
        added(
            replaced(BASE, member(KG, "Bakyt Demo"), member(KG, "Bakyt Demov")),
            member(KG, "Daniyar Testov"),
        ),
        [
            C("member_renamed", KG, "member", "Bakyt Demo", "Bakyt Demov", name_key("Bakyt Demov")),
            C("member_added", KG, "member", None, "Daniyar Testov", name_key("Daniyar Testov")),
        ],
    ),
    (
        "website removed",
        BASE,
        replaced(BASE, site(BY, "http://house.gov.by/en/"), None),
        [
            C(
                "website_removed",
                BY,
                "website",
                "http://house.gov.by/en/",
                None,
                "http://house.gov.by/en/",
            )
        ],
    ),
    (
        "website added",
        BASE,
        added(BASE, site(KG, "http://kenesh.kg/", "http://www.kenesh.kg/")),
        [C("website_added", KG, "website", None, "http://www.kenesh.kg/", "http://kenesh.kg/")],
    ),
    (
        "website URL spelled differently, same normalised key: nothing",
        BASE,
        replaced(
            BASE,
            site(BY, "http://house.gov.by/en/"),
            site(BY, "http://house.gov.by/en/", "https://house.gov.by/en/"),
        ),
        [],
    ),
    (
        "parliament name reworded: nothing",
        BASE,
        replaced(
            BASE, BASE_KG[0], Fact(KG, "delegation", "", "Jogorku Kenesh of the Kyrgyz Republic")
        ),
        [],
    ),
    (
        "delegation added: one event",
        BASE,
        BASE + TJ_FACTS,
        [
            C(
                "delegation_added",
                TJ,
                "delegation",
                None,
                "Supreme Assembly of the Republic of Tajikistan",
            ),
        ],
    ),
    (
        "delegation removed: one event",
        BASE + TJ_FACTS,
        BASE,
        [
            C(
                "delegation_removed",
                TJ,
                "delegation",
                "Supreme Assembly of the Republic of Tajikistan",
                None,
            ),
        ],
    ),
    (
        "a delegation leaves while another changes: each reported once",
        BASE + TJ_FACTS,
        replaced(BASE, seats(KG, "total", 7), seats(KG, "total", 8)),
        [
            C(
                "delegation_removed",
                TJ,
                "delegation",
                "Supreme Assembly of the Republic of Tajikistan",
                None,
            ),
            C("composition", KG, "seats:total", "7", "8"),
        ],
    ),
    (
        "news item published",
        [news("https://p/1", "One")],
        [news("https://p/1", "One"), news("https://p/2", "Two")],
        [C("news", "news", "item", None, "Two", "https://p/2")],
    ),
    (
        "news item dropped off the list: nothing",
        [news("https://p/1", "One"), news("https://p/2", "Two")],
        [news("https://p/2", "Two")],
        [],
    ),
    ("news title edited: nothing", [news("https://p/1", "One")], [news("https://p/1", "One!")], []),
    (
        "page text changed",
        [Fact("page", "text", "", "a\nb")],
        [Fact("page", "text", "", "a\nc")],
        [C("page_changed", "page", "text", "a\nb", "a\nc")],
    ),
    ("page text appears (baseline-like): nothing", [], [Fact("page", "text", "", "a")], []),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_diff_facts(old: list[Fact], new: list[Fact], expected: list[Change]) -> None:
    assert diff_facts(old, new) == expected


def test_diff_is_independent_of_input_order() -> None:
    new = added(
        replaced(BASE, member(KG, "Bakyt Demo"), member(KG, "Elmira Mockova")),
        *TJ_FACTS,
        member(KG, "Farida Fixture"),
    )
    expected = diff_facts(BASE, new)
    assert len(expected) == 4
    assert diff_facts(list(reversed(BASE)), list(reversed(new))) == expected


def test_change_delegation_is_the_subject_id_or_none() -> None:
    assert C("composition", BY, "seats:total", "1", "2").delegation == "BY"
    assert C("news", "news", "item", None, "x").delegation is None
    assert C("page_changed", "page", "text", "a", "b").delegation is None


def test_a_delegation_removed_and_back_reports_no_facts_of_its_own() -> None:
    """The facts of an appearing delegation are in the one delegation_added event."""
    changes = diff_facts(BASE, BASE + TJ_FACTS)
    assert [c.kind for c in changes] == ["delegation_added"]
    assert not any(c.subject == TJ and c.kind.startswith("member") for c in changes)


@pytest.mark.parametrize(
    ("text", "terms", "expected"),
    [
        ("Plenary session of the CSTO PA", ["csto"], True),
        ("Plenary session", ["csto"], False),
        ("Пленарное заседание ПА ОДКБ", ["одкб"], True),
        ("Новый состав делегации", ["Делегации"], True),  # case-insensitive, Cyrillic
        ("Объём работ", ["объем"], True),  # ё folds to е
        ("Заседание ОДКБ", ["OДKБ"], True),  # Latin O and K look-alikes in the term
        ("Security-Council met", ["security council"], True),  # punctuation is a space
        ("«Парламентская ассамблея» ОДКБ", ["парламентская ассамблея"], True),  # quotes
        ("Kazakhstan delegation", ["nothing", "Kazakh"], True),  # any term
        ("Any text", [], False),  # no terms: nothing matches
        ("Any text", ["the"], False),  # a term that folds to nothing matches nothing
    ],
)
def test_matches_watch(text: str, terms: list[str], expected: bool) -> None:
    assert matches_watch(text, terms) is expected


@pytest.mark.parametrize(
    ("title", "term"),
    [
        ("Заседание ОДКБ", "OДKБ"),
        ("Security-Council met", "security council"),
        ("The CSTO PA session", "CSTO PA"),
        ("Ёлка в Думе", "елка"),
    ],
)
def test_matches_watch_agrees_with_the_news_parsers_watch_hits(title: str, term: str) -> None:
    """An item the parser flags as a watch hit is one the alert filter lets through."""
    html = f'<div class="news-item"><a href="/n/1"><h3>{title}</h3></a></div>'
    result = get_parser("news-list").func(html, "https://pacsto.org/", {"watch": [term]})
    (item,) = result.records
    assert item.watch_hits == (term,)
    assert matches_watch(item.title, [term])


@pytest.mark.parametrize(
    ("old_name", "new_name"),
    [
        ("Петров Александр", "Петрова Александра"),  # two words differ: another person
        ("Петров Александр", "Петрова Александр"),  # -ov / -ova
        ("Alexander Petrovsky", "Alexander Petrovskaya"),  # -sky / -skaya
        ("Иван Толстой", "Иван Толстая"),  # -oy / -aya
        ("Sergey Demin", "Sergey Demina"),  # -in / -ina
        ("Pavel Sergeev", "Pavel Sergeeva"),  # -ev / -eva
        ("Talant Example", "Talant Example Uulu"),  # another number of words
        ("Daniyar Testov", "Danil Testow"),  # two words spelled differently
    ],
)
def test_a_different_person_is_not_a_rename(old_name: str, new_name: str) -> None:
    old = added(BASE, member(KG, old_name))
    new = added(BASE, member(KG, new_name))
    assert diff_facts(old, new) == [
        C("member_removed", KG, "member", old_name, None, name_key(old_name)),
        C("member_added", KG, "member", None, new_name, name_key(new_name)),
    ]


@pytest.mark.parametrize(
    ("old_name", "new_name"),
    [
        ("Elmira Mockova", "Elmira Mokova"),
        ("Азамат Токтогулов", "Азамат Токтоголов"),
        ("Daniyar Testov", "Daniyar Testow"),
        ("Farida Fixture", "Farida Fixtur"),
    ],
)
def test_one_word_spelled_differently_is_a_rename(old_name: str, new_name: str) -> None:
    old = added(BASE, member(KG, old_name))
    new = added(BASE, member(KG, new_name))
    assert diff_facts(old, new) == [
        C("member_renamed", KG, "member", old_name, new_name, name_key(new_name))
    ]


def test_changes_carry_the_fact_key_of_multi_valued_attributes() -> None:
    old = [news("https://p/1", "Same title"), site(BY, "http://a.by/", "https://a.by/")]
    new = [news("https://p/1", "Same title"), news("https://p/2", "Same title")]
    assert diff_facts(old, new) == [
        C("website_removed", BY, "website", "https://a.by/", None, "http://a.by/"),
        C("news", "news", "item", None, "Same title", "https://p/2"),
    ]
    single = diff_facts(
        BASE, replaced(BASE, seats(KG, "supreme-council", 7), seats(KG, "supreme-council", 8))
    )
    assert [c.key for c in single] == [""]
