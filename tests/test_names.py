"""The one name normaliser."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pawatch.scraper.parsers.names import clean_name, looks_like_name, name_key, split_run_together


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
    assert name_key(a) == name_key(b) != ""


@pytest.mark.parametrize(
    ("a", "b"),
    [("Viktor Kogut", "Viktor Rogalev"), ("Гафурзода Абдухалил", "Гафуров Абдухалил")],
)
def test_different_people(a: str, b: str) -> None:
    assert name_key(a) != name_key(b)


def test_tajik_zoda_surname_stays() -> None:
    assert name_key("Saidzoda Nuriddin") == "nuridin saidzoda"
    assert name_key("Гафурзода Абдухалил Холикзода") == "abduhalil gafurzoda holikzoda"


def test_two_word_name_keeps_a_vich_surname() -> None:
    assert name_key("Карпович Николай") == "karpovitsh nikolai"
    assert name_key("Карпович Николай Иванович") == "karpovitsh nikolai"


def test_run_together_words_are_split() -> None:
    assert split_run_together("давлаталӣСаид") == "давлаталӣ Саид"
    assert clean_name(" давлаталӣСаид  Раҳмонов, ") == "давлаталӣ Саид Раҳмонов"
    assert name_key("давлаталӣСаид") == name_key("Саид Давлаталӣ")


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


# --- one person in Latin and Cyrillic ------------------------------------------------------

# Delegates as the English and the Russian sites write them (order, case, patronymic and
# transliteration differ).
_SAME_PEOPLE = [
    ("Kogut Viktor", "Когут Виктор Александрович"),
    ("Viktor Rogalev", "Рогалёв Виктор Павлович"),
    ("Gafurzoda Abdukhalil", "Гафурзода Абдухалил"),
    ("Shabdanbek Alishev", "АЛИШЕВ Шабданбек Ибраимович"),
    ("Mikhail Krotov", "Кротов Михаил Вячеславович"),
    ("Yerlan Koshanov", "Кошанов Ерлан Жаканович"),
    ("Khojazoda Jurabek", "Ходжазода Джурабек"),
    ("Sattorova Zulfiya", "Сатторова Зульфия"),
    ("Nuriddin Saidzoda", "Саидзода Нуриддин"),
    ("Rustam Emomali", "Рустам Эмомалӣ"),
    ("Sharipov Jamshed", "Шарипов Джамшед"),
    ("Mirzoev Kholmurod", "Мирзоев Холмурод"),
    ("Ismoilzoda Shukhrat", "Исмоилзода Шухрат"),
    ("Dmitriy Sergeyev", "Сергеев Дмитрий"),
    ("Fyodor Semyonov", "Семёнов Фёдор"),
    ("Yuri Shcherbakov", "Щербаков Юрий"),
    ("Talant Zhumabekov", "Jumabekov Talant"),
    ("Aigul Sadykova", "Садыкова Айгуль Маратовна"),
    ("Jamshed Rahmonzoda", "Раҳмонзода Ҷамшед"),
]


@pytest.mark.parametrize(("latin", "cyrillic"), _SAME_PEOPLE)
def test_one_person_in_latin_and_cyrillic(latin: str, cyrillic: str) -> None:
    assert name_key(latin) == name_key(cyrillic)
    assert len(name_key(latin).split()) == 2  # surname and first name: the identity


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Petrov Ivan", "Petrova Ivan"),  # a man and a woman of one family
        ("Петров Иван", "Петрова Ивана"),
        ("Kogut Viktor", "Kogut Viktoria"),
        ("Алишев Шабданбек", "Алишев Бакыт"),  # two first names
        ("Sattorov Zulfiya", "Sattorova Zulfiya"),
    ],
)
def test_different_people_keep_different_keys(a: str, b: str) -> None:
    assert name_key(a) != name_key(b)


def test_every_real_delegate_has_a_distinct_key() -> None:
    keys = [name_key(latin) for latin, _ in _SAME_PEOPLE if latin != "Talant Zhumabekov"]
    assert len(set(keys)) == len(keys)


# A Cyrillic name and the usual English transliterations of each letter: every mix must
# fold to the Cyrillic name's key.
_VARIANTS: dict[str, list[str]] = {
    "а": ["a"], "б": ["b"], "в": ["v"], "г": ["g"], "д": ["d"], "е": ["e", "ye", "ie"],
    "ё": ["e", "yo", "io"], "ж": ["zh", "j"], "з": ["z"], "и": ["i"], "й": ["y", "i"],
    "к": ["k"], "л": ["l"], "м": ["m"], "н": ["n"], "о": ["o"], "п": ["p"], "р": ["r"],
    "с": ["s"], "т": ["t"], "у": ["u"], "ф": ["f"], "х": ["kh", "h"], "ц": ["ts", "tz"],
    "ч": ["ch"], "ш": ["sh"], "щ": ["shch", "sch"], "ы": ["y", "i"], "ь": ["", "'"],
    "ю": ["yu", "iu"], "я": ["ya", "ia"], "ҷ": ["j", "dzh"], "ҳ": ["h", "kh"],
    "ӣ": ["i", "y"], "ғ": ["gh", "g"], "қ": ["q", "k"],
}  # fmt: skip
_CLUSTERS = {"дж": ["dzh", "j", "dj"], "ий": ["iy", "y", "i", "ii"]}


def _spell(word: str, choose: st.DrawFn) -> str:
    out, i = [], 0
    while i < len(word):
        pair = word[i : i + 2].lower()
        if pair in _CLUSTERS and (pair != "ий" or i + 2 == len(word)):
            out.append(choose(st.sampled_from(_CLUSTERS[pair])))
            i += 2
            continue
        out.append(choose(st.sampled_from(_VARIANTS[word[i].lower()])))
        i += 1
    latin = "".join(out)
    return latin[:1].upper() + latin[1:]


_CYRILLIC_NAMES = ["Когут Виктор", "Рогалёв Виктор", "Гафурзода Абдухалил", "Алишев Шабданбек",
                   "Кротов Михаил", "Кошанов Ерлан", "Ходжазода Джурабек", "Сатторова Зульфия",
                   "Щербаков Юрий", "Семёнов Фёдор", "Сергеев Дмитрий", "Раҳмонзода Ҷамшед",
                   "Ғаффоров Қодир", "Царёв Евгений", "Жумабеков Талант"]  # fmt: skip


@st.composite
def _transliterated(draw: st.DrawFn) -> tuple[str, str]:
    cyrillic = draw(st.sampled_from(_CYRILLIC_NAMES))
    words = [_spell(word, draw) for word in cyrillic.split()]
    if draw(st.booleans()):
        words.reverse()
    return cyrillic, " ".join(words)


@given(_transliterated())
def test_english_transliteration_variants_share_the_cyrillic_key(pair: tuple[str, str]) -> None:
    cyrillic, latin = pair
    assert name_key(latin) == name_key(cyrillic)


@given(st.sampled_from(_CYRILLIC_NAMES), st.sampled_from(_CYRILLIC_NAMES))
def test_different_delegates_differ_in_any_script(a: str, b: str) -> None:
    from pawatch.domain import transliterate

    if a != b:
        assert name_key(a) != name_key(b)
        assert name_key(transliterate(a)) != name_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("Чалов Иван", "Шалов Иван"), ("Chalov Ivan", "Shalov Ivan"), ("Чернов Олег", "Хернов Олег")],
)
def test_ch_sh_and_kh_stay_apart(a: str, b: str) -> None:
    # ч, ш and х are different letters, not spellings of one: two people, never one key
    assert name_key(a) != name_key(b)
