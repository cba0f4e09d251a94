"""The delegations registry shipped in config/delegations.toml."""

from __future__ import annotations

import pytest

from pawatch.config.registry import load_registry, registry_from_text, unknown_delegation_id
from pawatch.domain import fold_text, slugify

REGISTRY = load_registry()


def test_ids_are_unique_and_expected() -> None:
    ids = [d.id for d in REGISTRY.delegations]
    assert ids == ["BY", "KZ", "KG", "RU", "TJ", "AM"]
    for delegation in REGISTRY.delegations:
        chamber_ids = [c.id for c in delegation.chambers]
        assert len(set(chamber_ids)) == len(chamber_ids)


def test_every_name_and_alias_resolves_to_its_own_delegation() -> None:
    for delegation in REGISTRY.delegations:
        for name in delegation.names:
            assert REGISTRY.match_delegation(name) == delegation.id, name


def test_every_chamber_name_resolves_to_its_own_chamber() -> None:
    for delegation in REGISTRY.delegations:
        for chamber in delegation.chambers:
            for name in chamber.names:
                assert REGISTRY.match_chamber(delegation.id, name) == chamber.id, name
                long_form = f"{name} of the {delegation.parliament_en}"
                assert REGISTRY.match_chamber(delegation.id, long_form) == chamber.id


def test_kyrgyz_parliament_is_unicameral() -> None:
    assert REGISTRY.single_chamber("KG") == "supreme-council"
    assert REGISTRY.single_chamber("BY") is None
    assert REGISTRY.delegation("KG").chamber("supreme-council").website == "http://www.kenesh.kg/"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the  NATIONAL assembly of the Republic of Belarus", "BY"),
        ("«Жогорку Кенеш» Кыргызской Республики", "KG"),
        ("Федеральное Собрание Российской Федерации", "RU"),
        ("Федерального Cобрания Российской Федерации", "RU"),  # Latin "C"
        ("Маджлиси Оли Республики Таджикистан", "TJ"),
        ("House of Representatives of the National Assembly of the Republic of Belarus", "BY"),
        ("Parliament of Narnia", None),
        ("", None),
    ],
)
def test_match_delegation(text: str, expected: str | None) -> None:
    assert REGISTRY.match_delegation(text) == expected


def test_match_chamber_genitive_and_long_forms() -> None:
    assert REGISTRY.match_chamber("RU", "Государственной Думы Федерального Собрания") == (
        "state-duma"
    )
    assert REGISTRY.match_chamber("TJ", "Маджлиси намояндагон Маджлиси Оли") == (
        "majlisi-namoyandagon"
    )
    assert REGISTRY.match_chamber("KZ", "Senate of the Parliament of Kazakhstan") == "senate"
    assert REGISTRY.match_chamber("KZ", "Upper House") is None
    assert REGISTRY.match_chamber("XX", "Senate") is None


def test_unknown_parliaments_get_stable_slugs() -> None:
    assert unknown_delegation_id("the Parliament of Narnia") == "x-parliament-of-narnia"
    assert REGISTRY.resolve_delegation("Parliament  of NARNIA") == "x-parliament-of-narnia"
    assert slugify("Парламент Нарнии") == "parlament-narnii"
    assert fold_text("Ёлка «the» Test") == "елка test"


def test_malformed_registry_is_rejected_with_the_key() -> None:
    with pytest.raises(ValueError, match="duplicate delegation ids"):
        registry_from_text(
            """
            [[delegations]]
            id = "BY"
            country = {en = "a", ru = "б"}
            parliament = {en = "a", ru = "б"}
            [[delegations.chambers]]
            id = "x"
            name = {en = "a", ru = "б"}
            [[delegations]]
            id = "BY"
            country = {en = "a", ru = "б"}
            parliament = {en = "a", ru = "б"}
            [[delegations.chambers]]
            id = "x"
            name = {en = "a", ru = "б"}
            """
        )
    with pytest.raises(ValueError, match=r"delegations\[0\]\.parliament"):
        registry_from_text('[[delegations]]\nid = "BY"\ncountry = {en = "a", ru = "b"}\n')


@pytest.mark.parametrize(
    ("delegation", "noun", "chamber"),
    [
        ("RU", "senators", "federation-council"),
        ("RU", "сенаторами", "federation-council"),
        ("RU", "сенаторов", "federation-council"),
        ("RU", "Senator", "federation-council"),
        ("KZ", "сенатора", "senate"),
        ("KZ", "мажилисменов", "mazhilis"),
        ("BY", "senators", "council-of-the-republic"),
        ("RU", "deputies", None),  # a title several chambers' members share
        ("RU", "members", None),
        ("KG", "senators", None),  # no chamber of KG has that title
        ("RU", "senatorial", None),  # not a grammatical form of the title
        ("XX", "senators", None),
    ],
)
def test_member_titles_name_a_chamber(delegation: str, noun: str, chamber: str | None) -> None:
    assert REGISTRY.match_member_title(delegation, noun) == chamber


def test_a_title_two_chambers_share_names_neither() -> None:
    registry = registry_from_text(
        """
        [[delegations]]
        id = "NA"
        country = {en = "Narnia", ru = "Нарния"}
        parliament = {en = "Parliament of Narnia", ru = "Парламент Нарнии"}
        [[delegations.chambers]]
        id = "lords"
        name = {en = "House of Lords", ru = "Палата лордов"}
        member_titles = ["lord", "лорд"]
        [[delegations.chambers]]
        id = "owls"
        name = {en = "Council of Owls", ru = "Совет сов"}
        member_titles = ["lord"]
        """
    )
    assert registry.match_member_title("NA", "lords") is None
    assert registry.match_member_title("NA", "лордами") == "lords"
    assert registry.member_titles == ("lord", "лорд")


@pytest.mark.parametrize(
    ("delegation", "text", "expected"),
    [
        ("RU", "", True),
        ("RU", "of the Russian Federation", True),
        ("RU", "Российской Федерации", True),
        ("RU", "Federal Assembly of the Russian Federation", True),
        ("KZ", "Parliament of the Republic of Kazakhstan", True),
        ("KZ", "Upper Chamber of the Parliament of the Republic of Kazakhstan", False),
        ("RU", "Republic of Kazakhstan", False),
        ("XX", "Parliament of Narnia", False),
    ],
)
def test_names_only_delegation(delegation: str, text: str, expected: bool) -> None:
    assert REGISTRY.names_only_delegation(delegation, text) is expected


def test_member_titles_must_be_strings() -> None:
    with pytest.raises(ValueError, match=r"chambers\[0\]\.member_titles"):
        registry_from_text(
            '[[delegations]]\nid = "BY"\ncountry = {en = "a", ru = "б"}\n'
            'parliament = {en = "a", ru = "б"}\n[[delegations.chambers]]\nid = "x"\n'
            'name = {en = "a", ru = "б"}\nmember_titles = "senator"\n'
        )
