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
