"""The one name normaliser."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pawatch.scraper.parsers.names import (
    clean_name,
    is_patronymic,
    looks_like_name,
    name_key,
    same_person,
    split_run_together,
)


@pytest.mark.parametrize(
    "spelling",
    ["Viktor Kogut", "Kogut Viktor", "КОГУТ Виктор", "Когут Виктор Александрович",
     "  viktor   KOGUT ", "Кoгут Виктор"],  # the last one has a Latin "o"
)  # fmt: skip
def test_spellings_of_one_person_share_a_key(spelling: str) -> None:
    assert name_key(spelling) == "kogut viktor"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Рогалев Виктор Павлович", "Viktor Rogalev"),
        ("Гафурзода Абдухалил", "Gafurzoda Abdukhalil"),
        ("Алёна Петрова", "Алена Петрова"),
        ("Садыкова Айгуль Маратовна", "Aygul Sadykova"),
    ],
)
def test_same_person(a: str, b: str) -> None:
    assert same_person(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("Viktor Kogut", "Viktor Rogalev"), ("Гафурзода Абдухалил", "Гафуров Абдухалил"), ("", "")],
)
def test_different_people(a: str, b: str) -> None:
    assert not same_person(a, b)


def test_tajik_zoda_surname_stays() -> None:
    assert name_key("Saidzoda Nuriddin") == "nuridin saidzoda"


def test_two_word_name_keeps_a_vich_surname() -> None:
    assert name_key("Карпович Николай") == "karpovich nikolay"
    assert name_key("Карпович Николай Иванович") == "karpovich nikolay"


def test_run_together_words_are_split() -> None:
    assert split_run_together("давлаталӣСаид") == "давлаталӣ Саид"
    assert clean_name(" давлаталӣСаид  Раҳмонов, ") == "давлаталӣ Саид Раҳмонов"
    assert name_key("давлаталӣСаид") == name_key("Саид Давлаталӣ")


def test_patronymics() -> None:
    assert is_patronymic("Павлович") and is_patronymic("Ивановна") and is_patronymic("Pavlovich")
    assert not is_patronymic("Gafurzoda") and not is_patronymic("Viktor")


def test_looks_like_name() -> None:
    assert looks_like_name("Gafurzoda Abdukhalil")
    assert looks_like_name("Рогалев Виктор Павлович")
    assert not looks_like_name("Republic of Tajikistan")
    assert not looks_like_name("Born in 1987")
    assert not looks_like_name("Kogut")


names = st.lists(
    st.text(alphabet=st.characters(categories=["L", "Zs", "Pd"]), min_size=1, max_size=12),
    min_size=1,
    max_size=4,
).map(" ".join)


@given(st.text())
def test_name_key_is_idempotent(text: str) -> None:
    assert name_key(name_key(text)) == name_key(text)


@given(names)
def test_name_key_is_idempotent_on_name_like_text(text: str) -> None:
    assert name_key(name_key(text)) == name_key(text)


@given(st.lists(st.sampled_from(["Viktor", "Kogut", "Когут", "Павлович", "Саид", "Rustam",
                                 "Эмомалӣ", "Gafurzoda", "Ёлкин", "O'Neil"]),
                min_size=1, max_size=5), st.randoms())  # fmt: skip
def test_name_key_ignores_word_order(words: list[str], rnd: object) -> None:
    shuffled = list(words)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert name_key(" ".join(words)) == name_key(" ".join(shuffled))


@given(names)
def test_name_key_ignores_case_and_spacing(text: str) -> None:
    # (on NFKC text: compatibility forms such as math letters may fold into cased letters)
    text = unicodedata.normalize("NFKC", text)
    assert name_key(text.upper()) == name_key("  " + text.lower().replace(" ", "   ") + " ")
