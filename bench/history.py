"""Benchmark of the query side: ``history``, ``changes`` and the views on a 5-year database.

Run: ``python bench/history.py [--years 5] [--sources 30] [--db PATH] [--keep] [--runs 20]
[--seed 1] [--body-scale 1.0] [--regenerate] [--try-fixes]`` with the project's virtualenv
python, from the repo root (the repo root is put on ``sys.path``).

What happens:

1. Generation (skipped when ``--db PATH`` already holds a generated database, unless
   ``--regenerate``). The schema comes from the real migrations (``Store.open``); the rows are
   then bulk-inserted (``executemany``, one transaction per batch) from a simulation of
   ``--sources`` sources (the shape of ``config/default.toml``: the Assembly's home pages in
   English and Russian, a delegation page per country in both languages, national rosters of
   50-450 names, news lists, plain pages) checked every hour for ``--years`` years up to now:

   - a "world" per delegation (seat counts per chamber changing a few times, plenipotentiary and
     head replaced, delegation members replaced and re-spelled, a website removed and restored),
     per roster (yearly turnover, one election replacing ~45 % of the names, re-spellings) and
     per news source (items published at a few per day; the list shows the last 20);
   - each source sees that world with its own lag, plus wording-only body changes, plus rare
     layout changes that break the parse for a few hours or days;
   - failures: isolated ones (~1.5 % of checks) and host outages of hours to days, shared by
     the sources of one host (one source never fails); 304 for sources that send an ETag;
   - every check a fetch_log row (the stored time format, ``format_time``); every body seen a
     snapshot and a zstd-compressed body; facts as intervals, events and source health from
     the live rule itself (``storage.facts.track``, confirm = 1, failing after 3), its fact
     operations applied to the rows held in memory; news rows (their FTS index is filled by
     the schema's trigger); source_state rows.

   ``PRAGMA foreign_key_check`` must come back empty. ``--body-scale 0`` stores tiny bodies
   (quick runs); 1.0 stores bodies of realistic size (20-100 KB of HTML, ~4x compressible).

2. Timings, warm (median and p95 of ``--runs`` runs after one warm-up) and cold (once, on a
   fresh connection after the database files were dropped from the OS page cache with
   ``posix_fadvise(DONTNEED)``):

   - the query functions (``storage.queries``) on one open ``Store``: the work of ``history KG``
     (``delegation_ids`` + ``facts_as_of`` + the timeline ``select_events``) now and as of 3
     years back, and ``select_events`` for ``changes --since 7d``, ``--delegation KG``,
     ``--kind composition`` and no filter;
   - the same commands in-process through ``click.testing.CliRunner`` (``--format json``; each
     invocation opens the database, as the real command does);
   - ``SELECT *`` from every view, an FTS query on ``news_fts``, ``Store.statuses()`` (``pawatch
     status``) and ``Store.open`` alone;
   - ``pawatch --db PATH history KG`` as a subprocess next to ``python -c "import pawatch.cli"``
     (start-up: the interpreter and the imports).

3. The DB size after ``wal_checkpoint(TRUNCATE)`` (and per table, from ``dbstat``), row counts,
   the table of timings with the 50 ms target beside them, and ``EXPLAIN QUERY PLAN`` of the SQL
   behind every item over target (the statements are captured with a trace callback).

``--try-fixes`` copies the database and re-times the slow items with the indexes / view
definitions proposed in the closing note (the schema in ``storage/`` is not touched).

A missed target shows as ``MISS`` (median over 50 ms) or ``p95`` (only the p95 over); the exit
code is non-zero only when generation or a command fails: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import math
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import hashlib  # noqa: E402

import zstandard  # noqa: E402

from pawatch.domain import Fact  # noqa: E402
from pawatch.prepare import text_diff  # noqa: E402
from pawatch.scraper.parsers.names import name_key  # noqa: E402
from pawatch.storage import Store, format_time  # noqa: E402
from pawatch.storage.facts import (  # noqa: E402
    End,
    NewsMemory,
    NewsRow,
    Open,
    OpenFact,
    ParseInput,
    Policy,
    Sighting,
    SourceState,
    Touch,
    Tracked,
    track,
)

TARGET_MS = 50.0
INF = 10**9
NEWS_ON_LIST = 20
FAILING_AFTER = 3  # storage.facts.Policy.failing_after
PARSER_VERSION = 1
WATCH = ("ОДКБ", "ПА ОДКБ", "CSTO")

# ----------------------------------------------------------------------------- the world

DELEGATIONS: dict[str, dict[str, Any]] = {
    "BY": {
        "chambers": {
            "house-of-representatives": "http://house.gov.by/",
            "council-of-the-republic": "http://www.sovrep.gov.by/",
        },
        "en": "National Assembly of the Republic of Belarus",
        "ru": "Национального собрания Республики Беларусь",
        "country": "republic-of-belarus",
    },
    "KZ": {
        "chambers": {
            "mazhilis": "https://mazhilis.parlam.kz/",
            "senate": "https://senate.parlam.kz/",
        },
        "en": "Parliament of the Republic of Kazakhstan",
        "ru": "Парламента Республики Казахстан",
        "country": "republic-of-kazakhstan",
        "role": (
            "deputy Executive Secretary of the CSTO Parliamentary Assembly",
            "заместитель Ответственного секретаря ПА ОДКБ",
        ),
    },
    "KG": {
        "chambers": {"supreme-council": "http://www.kenesh.kg/"},
        "en": "Supreme Council of the Kyrgyz Republic",
        "ru": "Жогорку Кенеша Кыргызской Республики",
        "country": "kyrgyz-republic",
    },
    "RU": {
        "chambers": {
            "state-duma": "http://duma.gov.ru/",
            "federation-council": "http://council.gov.ru/",
        },
        "en": "Federal Assembly of the Russian Federation",
        "ru": "Федерального Собрания Российской Федерации",
        "country": "russian-federation",
        "role": (
            "deputy Executive Secretary of the CSTO Parliamentary Assembly",
            "заместитель Ответственного секретаря ПА ОДКБ",
        ),
    },
    "TJ": {
        "chambers": {
            "majlisi-milli": "http://majmilli.tj/",
            "majlisi-namoyandagon": "http://parlament.tj/",
        },
        "en": "Supreme Assembly of the Republic of Tajikistan",
        "ru": "Маджлиси Оли Республики Таджикистан",
        "country": "republic-of-tajikistan",
    },
    "AM": {
        "chambers": {"national-assembly": "http://www.parliament.am/"},
        "en": "National Assembly of the Republic of Armenia",
        "ru": "Национального Собрания Республики Армения",
        "country": "republic-of-armenia",
    },
}

FIRST = [
    "Нурлан",
    "Айгуль",
    "Бакыт",
    "Чолпон",
    "Данияр",
    "Эльмира",
    "Азамат",
    "Гульнара",
    "Марат",
    "Жылдыз",
    "Виктор",
    "Ольга",
    "Сергей",
    "Наталья",
    "Андрей",
    "Ирина",
    "Дмитрий",
    "Елена",
    "Алексей",
    "Татьяна",
    "Игорь",
    "Светлана",
    "Руслан",
    "Айжан",
    "Ерлан",
    "Динара",
    "Тимур",
    "Мадина",
    "Бахтиёр",
    "Зарина",
    "Фаррух",
    "Нигора",
    "Армен",
    "Анна",
    "Давид",
    "Лусине",
    "Арман",
    "Сауле",
    "Канат",
    "Айнура",
    "Максим",
    "Юлия",
    "Павел",
    "Мария",
    "Олег",
    "Галина",
    "Рустам",
    "Шахноза",
    "Акылбек",
    "Назира",
]
ROOTS = [
    "Алиш",
    "Кожомбер",
    "Садыр",
    "Токтогул",
    "Абдыкадыр",
    "Мамыт",
    "Осмон",
    "Жээнбек",
    "Исак",
    "Турсун",
    "Касым",
    "Бекмурат",
    "Рогал",
    "Кротов",
    "Когут",
    "Мясникович",
    "Ашимбай",
    "Нурлан",
    "Султан",
    "Ерден",
    "Жумабай",
    "Тасмагамбет",
    "Кошан",
    "Володин",
    "Матвиенк",
    "Турчак",
    "Жуков",
    "Неверов",
    "Косачев",
    "Климов",
    "Гафур",
    "Рахмон",
    "Убайдулло",
    "Азим",
    "Ниёз",
    "Мирзо",
    "Саргсян",
    "Симонян",
    "Арутюнян",
    "Манукян",
    "Петросян",
    "Ованнисян",
    "Кузнец",
    "Иван",
    "Петр",
    "Смирн",
    "Попов",
    "Соколов",
    "Лебедев",
    "Козлов",
    "Новиков",
    "Морозов",
    "Волков",
    "Орлов",
    "Белов",
    "Зайцев",
    "Ткачен",
    "Бондарен",
    "Шевчен",
    "Абдурахман",
    "Хамид",
    "Карим",
    "Юсуп",
    "Тилек",
]
SUFFIXES = ("ов", "ев", "ин", "енко", "ский", "бек", "зода", "ян", "ова", "ева", "уулу", "ович")
TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "yo",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
            "",
            "y",
            "",
            "e",
            "yu",
            "ya",
        ],
        strict=True,
    )
)


def latin(text: str) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        if low in TRANSLIT:
            t = TRANSLIT[low]
            out.append(t.capitalize() if ch != low else t)
        else:
            out.append(ch)
    return "".join(out)


class Names:
    """Distinct person names (Cyrillic, "Surname Firstname") with a Latin spelling."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def new(self) -> tuple[str, str]:
        while True:
            name = f"{self.rng.choice(ROOTS)}{self.rng.choice(SUFFIXES)} {self.rng.choice(FIRST)}"
            if name not in self.used:
                self.used.add(name)
                return latin(name), name

    @staticmethod
    def respell(name: str, rng: random.Random) -> str:
        """A near-identical spelling (a doubled letter, e/ё, a dropped letter): a rename."""
        surname, _, rest = name.partition(" ")
        i = rng.randrange(1, len(surname) - 1)
        choice = rng.random()
        if choice < 0.4:
            surname = surname[:i] + surname[i] + surname[i:]
        elif choice < 0.7 and "е" in surname:
            surname = surname.replace("е", "э", 1)
        else:
            surname = surname[:i] + surname[i + 1 :]
        return f"{surname} {rest}"


@dataclass
class Rec:
    """A fact of the world, valid over hours [start, end), spelled in English and Russian."""

    start: int
    end: int
    subject: str
    attribute: str
    en: tuple[str, str]  # (key, value)
    ru: tuple[str, str]


def _poisson_times(rng: random.Random, per_year: float, hours: int) -> list[int]:
    out, t = [], 0.0
    if per_year <= 0:
        return out
    mean = 365.25 * 24 / per_year
    while True:
        t += rng.expovariate(1 / mean)
        if t >= hours:
            return out
        out.append(int(t))


def _piecewise(
    subject: str, attribute: str, points: list[tuple[int, tuple[str, str]]]
) -> list[Rec]:
    """Records from (time, (value_en, value_ru)) change points, merging equal neighbours."""
    recs: list[Rec] = []
    for i, (t, (en, ru)) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else INF
        if recs and recs[-1].en[1] == en and recs[-1].ru[1] == ru:
            recs[-1].end = end
            continue
        recs.append(Rec(t, end, subject, attribute, ("", en), ("", ru)))
    return recs


def delegation_world(code: str, rng: random.Random, names: Names, hours: int) -> list[Rec]:
    info = DELEGATIONS[code]
    subject = f"delegation:{code}"
    recs = [Rec(-INF, INF, subject, "delegation", ("", info["en"]), ("", info["ru"]))]
    chambers = list(info["chambers"])
    seats = {c: rng.randint(3, 12) for c in chambers}
    points = [(-INF, dict(seats))]
    for t in _poisson_times(rng, 0.8, hours) or [hours // 2]:
        c = rng.choice(chambers)
        seats[c] = max(2, min(15, seats[c] + rng.choice((-2, -1, 1, 1, 2))))
        points.append((t, dict(seats)))
    for c in chambers:
        recs += _piecewise(subject, f"seats:{c}", [(t, (str(s[c]),) * 2) for t, s in points])
    recs += _piecewise(
        subject, "seats:total", [(t, (str(sum(s.values())),) * 2) for t, s in points]
    )
    for attribute, per_year in (("plenipotentiary", 0.5), ("head", 0.3)):
        times = [-INF] + (_poisson_times(rng, per_year, hours) or [rng.randrange(hours)])
        recs += _piecewise(subject, attribute, [(t, names.new()) for t in times])
    if "role" in info:
        recs.append(
            Rec(
                -INF,
                INF,
                subject,
                "plenipotentiary_role",
                ("", info["role"][0]),
                ("", info["role"][1]),
            )
        )
    for i, url in enumerate(info["chambers"].values()):
        key = url.replace("://www.", "://")
        if i == 0 and code in ("KG", "TJ"):  # removed from the page for a while, then restored
            gone = rng.randrange(hours // 4, hours // 2)
            recs.append(Rec(-INF, gone, subject, "website", (key, url), (key, url)))
            recs.append(
                Rec(gone + rng.randint(500, 3000), INF, subject, "website", (key, url), (key, url))
            )
        else:
            recs.append(Rec(-INF, INF, subject, "website", (key, url), (key, url)))
    # Delegation members: replacements (~2 a year) and an English re-spelling now and then.
    current: list[Rec] = []
    for _ in range(rng.randint(6, 12)):
        en, ru = names.new()
        current.append(Rec(-INF, INF, subject, "member", (name_key(en), en), (name_key(ru), ru)))
    done: list[Rec] = []
    for t in _poisson_times(rng, 2.0, hours):
        old = current.pop(rng.randrange(len(current)))
        old.end = t
        done.append(old)
        if rng.random() < 0.2:  # the English page fixes a spelling: a rename, not a new person
            en = latin(Names.respell(old.ru[1], rng))
            current.append(Rec(t, INF, subject, "member", (name_key(en), en), old.ru))
            continue
        en, ru = names.new()
        current.append(
            Rec(
                t + rng.randint(0, 200),
                INF,
                subject,
                "member",
                (name_key(en), en),
                (name_key(ru), ru),
            )
        )
    return recs + done + current


def roster_world(
    code: str, size: int, election: bool, rng: random.Random, names: Names, hours: int, lang: str
) -> list[Rec]:
    subject = f"delegation:{code}"

    def person(start: int, spelled: str | None = None) -> Rec:
        ru = spelled or names.new()[1]
        value = latin(ru) if lang == "en" else ru
        return Rec(
            start, INF, subject, "member", (name_key(value), value), (name_key(value), value)
        )

    current = [person(-INF) for _ in range(size)]
    done: list[Rec] = []
    events: list[tuple[int, str]] = [
        (t, "turnover") for t in _poisson_times(rng, size * 0.06, hours)
    ]
    events += [(t, "respell") for t in _poisson_times(rng, 0.6, hours)]
    if election:
        events.append((rng.randrange(hours // 5, hours * 4 // 5), "election"))
    for t, what in sorted(events):
        if what == "turnover":
            old = current.pop(rng.randrange(len(current)))
            old.end = t
            done.append(old)
            current.append(person(t + rng.randint(0, 24 * 14)))
        elif what == "respell":
            old = current.pop(rng.randrange(len(current)))
            old.end = t
            done.append(old)
            current.append(person(t, Names.respell(old.ru[1], rng)))
        else:
            rng.shuffle(current)
            cut = int(len(current) * 0.45)
            for old in current[:cut]:
                old.end = t
            done += current[:cut]
            current = current[cut:] + [person(t) for _ in range(cut)]
    return done + current


# ----------------------------------------------------------------------------- the sources


@dataclass
class Spec:
    id: str
    url: str
    parser: str  # delegations | delegation-page | roster | news-list | page
    delegation: str | None
    host: str
    lang: str
    priority: int  # which sources a small --sources keeps first
    etag: bool = True
    last_modified: bool = False
    fail_rate: float = 0.015
    cosmetic_per_year: float = 20.0  # wording-only body changes
    lag_h: tuple[int, int] = (0, 48)
    body_kb: int = 40
    members: int = 0
    election: bool = False
    news_per_day: float = 0.0
    watch: tuple[str, ...] = ()
    summaries: bool = False


def source_specs(count: int) -> list[Spec]:
    specs: list[Spec] = [
        Spec(
            "pacsto-en-home",
            "https://pacsto.org/",
            "delegations",
            None,
            "pacsto.org",
            "en",
            0,
            cosmetic_per_year=180,
            lag_h=(0, 24),
            body_kb=60,
        ),
        Spec(
            "paodkb-ru-home",
            "https://paodkb.org/",
            "delegations",
            None,
            "paodkb.org",
            "ru",
            5,
            etag=False,
            last_modified=True,
            cosmetic_per_year=150,
            lag_h=(24, 120),
            body_kb=60,
        ),
        Spec(
            "pacsto-en-events",
            "https://pacsto.org/events",
            "news-list",
            None,
            "pacsto.org",
            "en",
            3,
            news_per_day=0.3,
            body_kb=45,
            cosmetic_per_year=4,
            lag_h=(0, 2),
        ),
        Spec(
            "paodkb-ru-events",
            "https://paodkb.org/events",
            "news-list",
            None,
            "paodkb.org",
            "ru",
            9,
            etag=False,
            news_per_day=0.3,
            body_kb=45,
            cosmetic_per_year=4,
            lag_h=(0, 2),
        ),
    ]
    prio = {"KG": 1, "KZ": 7, "RU": 8, "BY": 11, "TJ": 13, "AM": 15}
    for code, info in DELEGATIONS.items():
        specs.append(
            Spec(
                f"pacsto-en-country-{code.lower()}",
                f"https://pacsto.org/countries/{info['country']}",
                "delegation-page",
                code,
                "pacsto.org",
                "en",
                prio[code],
                cosmetic_per_year=18,
                lag_h=(48, 240),
                body_kb=35,
            )
        )
        specs.append(
            Spec(
                f"paodkb-ru-country-{code.lower()}",
                f"https://paodkb.org/countries/{info['country']}",
                "delegation-page",
                code,
                "paodkb.org",
                "ru",
                prio[code] + 10,
                etag=False,
                last_modified=True,
                cosmetic_per_year=12,
                lag_h=(72, 400),
                body_kb=35,
            )
        )
    rosters = [
        ("by-house-deputies", "https://house.gov.by/en/deputies-en/", "BY", 110, True, "ru", 14),
        ("by-council-senators", "https://sovrep.gov.by/en/senators-en/", "BY", 64, True, "ru", 16),
        (
            "kz-mazhilis-deputies",
            "https://mazhilis.parlam.kz/api/core/deputies/",
            "KZ",
            98,
            True,
            "ru",
            12,
        ),
        (
            "kz-senate-deputies",
            "https://senate.parlam.kz/en-US/about/deputies",
            "KZ",
            50,
            False,
            "ru",
            18,
        ),
        ("kg-kenesh-deputies", "https://kenesh.kg/api/deputies", "KG", 90, True, "ru", 2),
        (
            "ru-council-members",
            "http://council.gov.ru/en/structure/members/",
            "RU",
            170,
            False,
            "ru",
            10,
        ),
        ("ru-duma-deputies", "http://duma.gov.ru/duma/deputies/", "RU", 450, True, "ru", 6),
        (
            "am-parliament-deputies",
            "http://www.parliament.am/deputies.php",
            "AM",
            107,
            True,
            "en",
            24,
        ),
    ]
    for sid, url, code, size, election, lang, p in rosters:
        specs.append(
            Spec(
                sid,
                url,
                "roster",
                code,
                url.split("/")[2],
                lang,
                p,
                members=size,
                election=election,
                cosmetic_per_year=30,
                lag_h=(0, 24),
                body_kb=20 + size // 5,
                etag=p % 3 != 0,
            )
        )
    specs += [
        Spec(
            "ru-duma-news",
            "http://duma.gov.ru/news/",
            "news-list",
            "RU",
            "duma.gov.ru",
            "ru",
            19,
            news_per_day=2.2,
            watch=WATCH,
            summaries=True,
            body_kb=50,
            cosmetic_per_year=6,
            lag_h=(0, 2),
        ),
        Spec(
            "tj-parlament-news",
            "http://parlament.tj/news",
            "news-list",
            "TJ",
            "parlament.tj",
            "ru",
            25,
            etag=False,
            news_per_day=1.2,
            watch=WATCH,
            summaries=True,
            body_kb=40,
            lag_h=(0, 2),
        ),
        Spec(
            "kz-parlam-news",
            "https://parlam.kz/ru/news",
            "news-list",
            "KZ",
            "parlam.kz",
            "ru",
            21,
            news_per_day=1.6,
            watch=WATCH,
            summaries=True,
            body_kb=45,
            lag_h=(0, 2),
        ),
        Spec(
            "tj-majmilli-members",
            "https://majmilli.tj/",
            "page",
            "TJ",
            "majmilli.tj",
            "ru",
            23,
            cosmetic_per_year=90,
            body_kb=30,
        ),
        Spec(
            "am-parliament-home",
            "http://www.parliament.am/",
            "page",
            "AM",
            "www.parliament.am",
            "en",
            27,
            cosmetic_per_year=90,
            body_kb=35,
        ),
        Spec(
            "kg-kenesh-about",
            "https://kenesh.kg/ru/about",
            "page",
            "KG",
            "kenesh.kg",
            "ru",
            4,
            cosmetic_per_year=60,
            body_kb=30,
        ),
    ]
    # One source on a host that never fails (its last_error subquery scans its whole history).
    for s in specs:
        if s.id == "kz-senate-deputies":
            s.fail_rate = 0.0
            s.host = "reliable"
    specs.sort(key=lambda s: s.priority)
    extra = 0
    base = [s for s in specs if s.parser in ("roster", "page", "news-list") and s.delegation]
    while len(specs) < count:
        model = base[extra % len(base)]
        extra += 1
        specs.append(
            Spec(
                **{
                    **model.__dict__,
                    "id": f"{model.id}-x{extra}",
                    "url": f"{model.url}?copy={extra}",
                    "host": f"extra{extra}",
                    "priority": 100 + extra,
                }
            )
        )
    return specs[:count]


# ----------------------------------------------------------------------------- generation


@dataclass
class Version:
    hour: int
    broken: bool = False
    facts: list[Fact] | None = None


@dataclass
class NewsItem:
    hour: int
    url: str
    title: str
    published: str
    date_text: str
    summary: str | None


@dataclass
class SourceSim:
    spec: Spec
    versions: list[Version]
    fails: bytearray
    offset: int
    lag: int
    facts_at: Callable[[int], list[Fact]]
    news: list[NewsItem] = field(default_factory=list)
    vi: int = -1  # index of the version in the current snapshot
    ptr: int = 0
    snap: list[Any] | None = None
    open: dict[Fact, list[Any]] = field(default_factory=dict)
    state: SourceState = field(default_factory=lambda: SourceState(open=None))  # (no open
    # facts: ``open`` holds their rows)
    touch_stamp: str | None = None  # when every open fact was last seen (the rule's Touch)
    touch_snap: int | None = None
    memory: SimNews = field(default_factory=lambda: SimNews())
    body_count: int = 0


class SimNews(NewsMemory):
    """The source's earlier news items, as ``storage.facts.track`` asks for them."""

    def __init__(self) -> None:
        self.ended: set[str] = set()  # item URLs no longer listed (ended facts)
        self.rows: dict[str, NewsRow] = {}  # stored items by URL
        self.items: dict[str, NewsItem] = {}  # the world's items by URL

    def listed_before(self) -> set[str]:
        return self.ended

    def stored(self, url: str) -> tuple[str | None, str | None]:
        row = self.rows.get(url)
        return (row.summary, row.text) if row else (None, None)


class Pool:
    """Filler paragraphs for page bodies: words from a Zipf-weighted mixed vocabulary."""

    def __init__(self, rng: random.Random) -> None:
        letters_ru, letters_en = "абвгдежзиклмнопрстуфхцчшыэюя", "abcdefghiklmnoprstuvwy"
        vocab = []
        for i in range(2500):
            letters = letters_ru if i % 3 else letters_en
            vocab.append("".join(rng.choice(letters) for _ in range(rng.randint(2, 11))))
        cum, total = [], 0.0
        for i in range(len(vocab)):
            total += 1 / (i + 1)
            cum.append(total)
        self.paragraphs = []
        for _ in range(3000):
            words = rng.choices(vocab, cum_weights=cum, k=rng.randint(30, 90))
            self.paragraphs.append("<p>" + " ".join(words).capitalize() + ".</p>\n")
        self.avg = sum(len(p.encode()) for p in self.paragraphs) / len(self.paragraphs)
        self.words, self.cum = vocab, cum

    def filler(self, rng: random.Random, kb: float) -> str:
        k = int(kb * 1024 / self.avg)
        return "".join(rng.choices(self.paragraphs, k=k)) if k > 0 else ""

    def sentence(self, rng: random.Random, n: int) -> str:
        return " ".join(rng.choices(self.words, cum_weights=self.cum, k=n)).capitalize()


RU_MONTHS = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
]


def build_sources(
    args: argparse.Namespace, rng: random.Random, hours: int, t0: datetime, pool: Pool
) -> list[SourceSim]:
    specs = source_specs(args.sources)
    names = Names(rng)
    world = {code: delegation_world(code, rng, names, hours) for code in DELEGATIONS}
    outages: dict[str, list[tuple[int, int]]] = {}
    sims = []
    for spec in specs:
        if spec.host not in outages:
            spans = []
            if spec.host != "reliable":
                for t in _poisson_times(rng, 3.0, hours):
                    r = rng.random()
                    length = (
                        rng.randint(2, 8)
                        if r < 0.7
                        else rng.randint(8, 36)
                        if r < 0.95
                        else rng.randint(48, 144)
                    )
                    spans.append((t, t + length))
            outages[spec.host] = spans
        fails = bytearray(hours)
        for a, b in outages[spec.host]:
            fails[a : min(b, hours)] = b"\x01" * (min(b, hours) - a)
        if spec.fail_rate:
            t = 0.0
            while True:
                t += rng.expovariate(spec.fail_rate)
                if t >= hours:
                    break
                fails[int(t)] = 1
        fails[0] = 0  # the first check succeeds: the baseline
        lag = rng.randint(*spec.lag_h)
        news: list[NewsItem] = []
        if spec.parser == "delegations":
            attrs = {"delegation", "plenipotentiary", "plenipotentiary_role"} | (
                {"website"} if spec.lang == "en" else set()
            )
            recs = [
                r
                for code in DELEGATIONS
                for r in world[code]
                if r.attribute in attrs or r.attribute.startswith("seats:")
            ]
        elif spec.parser == "delegation-page":
            recs = [r for r in world[spec.delegation] if r.attribute != "plenipotentiary_role"]
        elif spec.parser == "roster":
            recs = roster_world(
                spec.delegation, spec.members, spec.election, rng, names, hours, spec.lang
            )
        else:
            recs = []
        if spec.parser == "news-list":
            news = make_news(spec, rng, hours, t0, pool)
            pubs = [n.hour for n in news]

            def facts_at(
                h: int, news: list[NewsItem] = news, pubs: list[int] = pubs, lag: int = lag
            ) -> list[Fact]:
                i = bisect.bisect_right(pubs, h - lag)
                return [
                    Fact("news", "item", n.url, n.title) for n in news[max(0, i - NEWS_ON_LIST) : i]
                ]

            changes = {n.hour + lag for n in news if 0 < n.hour + lag < hours}
        elif spec.parser == "page":
            texts = make_page_texts(spec, rng, hours, pool)
            starts = [t for t, _ in texts]

            def facts_at(
                h: int, texts: list[tuple[int, str]] = texts, starts: list[int] = starts
            ) -> list[Fact]:
                i = bisect.bisect_right(starts, h) - 1
                return [Fact("page", "text", "", texts[i][1])]

            changes = {t for t, _ in texts if t > 0}
        else:

            def facts_at(
                h: int, recs: list[Rec] = recs, lag: int = lag, lang: str = spec.lang
            ) -> list[Fact]:
                t = h - lag
                out = []
                for r in recs:
                    if r.start <= t < r.end:
                        key, value = r.en if lang == "en" else r.ru
                        out.append(Fact(r.subject, r.attribute, key, value))
                return out

            changes = set()
            for r in recs:
                for t in (r.start + lag, r.end + lag):
                    if 0 < t < hours:
                        changes.add(t)
        hours_set = {0} | changes | set(_poisson_times(rng, spec.cosmetic_per_year, hours))
        versions = [Version(h) for h in sorted(hours_set)]
        # Layout changes that break the parse for hours to days (about a third of the sources).
        if rng.random() < 0.35:
            for t in _poisson_times(rng, 0.3, hours) or [rng.randrange(1, hours)]:
                if t < 1:
                    continue
                fix = min(hours - 1, t + rng.randint(3, 96))
                versions += [Version(t, broken=True), Version(fix)]
            versions.sort(key=lambda v: (v.hour, not v.broken))
            dedup: dict[int, Version] = {}
            for v in versions:
                dedup.setdefault(v.hour, v)
            versions = sorted(dedup.values(), key=lambda v: v.hour)
        sims.append(SourceSim(spec, versions, fails, rng.randrange(0, 3400), lag, facts_at, news))
    return sims


def make_news(
    spec: Spec, rng: random.Random, hours: int, t0: datetime, pool: Pool
) -> list[NewsItem]:
    per_year = spec.news_per_day * 365.25
    times = sorted(-rng.randrange(24, 24 * 60) for _ in range(NEWS_ON_LIST))
    times += _poisson_times(rng, per_year, hours)
    base = spec.url.rstrip("/")
    out = []
    for i, t in enumerate(times):
        day = t0 + timedelta(hours=t)
        words = rng.randint(5, 11)
        title = pool.sentence(rng, words)
        if spec.watch and rng.random() < 0.06:
            title = f"{title} {rng.choice(spec.watch)}"
        elif not spec.watch and rng.random() < 0.3:
            title = f"{title} CSTO PA"
        if spec.lang == "ru":
            date_text = f"{day.day} {RU_MONTHS[day.month - 1]} {day.year}"
        else:
            date_text = day.strftime("%-d %B %Y")
        summary = pool.sentence(rng, rng.randint(20, 45)) + "." if spec.summaries else None
        slug = "-".join(title.lower().split()[:6])
        out.append(
            NewsItem(
                t,
                f"{base}/{day:%Y/%m}/{slug}-{i}",
                title,
                day.date().isoformat(),
                date_text,
                summary,
            )
        )
    return out


def make_page_texts(
    spec: Spec, rng: random.Random, hours: int, pool: Pool
) -> list[tuple[int, str]]:
    lines = [pool.sentence(rng, rng.randint(4, 18)) for _ in range(rng.randint(60, 140))]
    out = [(0, "\n".join(lines))]
    for t in _poisson_times(rng, 70, hours):
        for _ in range(rng.randint(1, 3)):
            op, i = rng.random(), rng.randrange(len(lines))
            if op < 0.6:
                lines[i] = pool.sentence(rng, rng.randint(4, 18))
            elif op < 0.8 or len(lines) < 40:
                lines.insert(i, pool.sentence(rng, rng.randint(4, 18)))
            else:
                del lines[i]
        out.append((t, "\n".join(lines)))
    return out


class Generator:
    def __init__(self, args: argparse.Namespace, path: Path) -> None:
        self.args = args
        self.path = path
        self.rng = random.Random(args.seed)
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self.hours = int(args.years * 365.25 * 24)
        self.t0 = now - timedelta(hours=self.hours)
        self.compressor = zstandard.ZstdCompressor(level=3)
        self.fetch_id = self.snap_id = self.fact_id = self.event_id = self.news_id = 0
        self.snapshots: list[list[Any]] = []
        self.bodies: list[tuple[str, int, str, bytes]] = []
        self.facts: list[list[Any]] = []
        self.events: list[tuple[Any, ...]] = []
        self.news_rows: list[tuple[Any, ...]] = []
        self.body_bytes = self.body_stored = 0

    # ---- rows

    def event(
        self,
        sim: SourceSim,
        kind: str,
        stamp: str,
        *,
        delegation: str | None = None,
        attribute: str | None = None,
        old: str | None = None,
        new: str | None = None,
        before: int | None = None,
        after: int | None = None,
        details: dict[str, Any] | None = None,
        url: str | None = None,
    ) -> None:
        self.event_id += 1
        self.events.append(
            (
                self.event_id,
                kind,
                stamp,
                sim.spec.id,
                delegation,
                attribute,
                old,
                new,
                url or sim.spec.url,
                before,
                after,
                json.dumps(details, ensure_ascii=False, sort_keys=True) if details else None,
            )
        )

    def body(self, sim: SourceSim, facts: Sequence[Fact] | None) -> bytes:
        sim.body_count += 1
        spec = sim.spec
        head = (
            f'<!doctype html><html lang="{spec.lang}"><head><meta charset="utf-8">'
            f"<title>{spec.id}</title></head><body><!-- build {sim.body_count} -->\n"
        )
        if facts is None:
            content = '<div class="new-layout">' + self.pool.sentence(self.rng, 30) + "</div>\n"
        else:
            content = "".join(f'<li data-a="{f.attribute}">{f.value}</li>\n' for f in facts)
        filler = self.pool.filler(self.rng, spec.body_kb * self.args.body_scale)
        return (head + content + filler + "</body></html>\n").encode()

    def new_snapshot(
        self, sim: SourceSim, version: Version, stamp: str, facts: Sequence[Fact] | None
    ) -> list[Any]:
        data = self.body(sim, facts)
        digest = hashlib.sha256(data).hexdigest()
        packed = self.compressor.compress(data)
        self.bodies.append((digest, len(data), "zstd", packed))
        self.body_bytes += len(data)
        self.body_stored += len(packed)
        self.snap_id += 1
        etag = f'"{digest[:16]}"' if sim.spec.etag else None
        last_modified = self.http_date(stamp) if sim.spec.last_modified else None
        ctype = "application/json" if "/api/" in sim.spec.url else "text/html; charset=utf-8"
        row = [
            self.snap_id,
            sim.spec.id,
            digest,
            sim.spec.url,
            ctype,
            etag,
            last_modified,
            stamp,
            stamp,
            1,
        ]
        self.snapshots.append(row)
        return row

    @staticmethod
    def http_date(stamp: str) -> str:
        moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
        return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")

    def open_fact(self, sim: SourceSim, f: Fact, stamp: str, snap: int | None) -> None:
        self.fact_id += 1
        row = [
            self.fact_id,
            sim.spec.id,
            f.subject,
            f.attribute,
            f.key,
            f.value,
            stamp,
            stamp,
            None,
            snap,
            snap,
            None,
            PARSER_VERSION,
        ]
        self.facts.append(row)
        sim.open[f] = row

    # ---- one check

    def policy(self, sim: SourceSim) -> Policy:
        return Policy(failing_after=FAILING_AFTER, watch=tuple(sim.spec.watch))

    def parse_input(self, sim: SourceSim, version: Version) -> ParseInput:
        """What the parser reads from a new body of ``sim``: its facts, or a broken layout."""
        spec = sim.spec
        if version.broken:
            error = (
                f"no {spec.parser} block found: the page layout changed (selector matched nothing)"
            )
            return ParseInput(PARSER_VERSION, None, error=error)
        facts = version.facts if version.facts is not None else sim.facts_at(version.hour)
        version.facts = None  # not needed any more
        news: list[NewsRow] = []
        diff = None
        if spec.parser == "news-list":
            if not sim.memory.items:
                sim.memory.items = {item.url: item for item in sim.news}
            for f in facts:
                item = sim.memory.items.get(f.key)
                if item is not None:
                    news.append(
                        NewsRow(item.url, item.title, item.published, item.date_text, item.summary)
                    )
        if spec.parser == "page":
            before = [f.value for f in sim.open if f.attribute == "text"]
            after = [f.value for f in facts if f.attribute == "text"]
            if before and after and before != after:
                diff = text_diff(before[0], after[0])
        return ParseInput(PARSER_VERSION, facts, news=news, text_diff=diff)

    def apply(self, sim: SourceSim, tracked: Tracked, stamp: str, snap: int | None) -> None:
        """Write what the rule returned into the rows held in memory."""
        for op in tracked.ops:
            if isinstance(op, Touch):
                sim.touch_stamp, sim.touch_snap = op.stamp, op.snapshot
            elif isinstance(op, End):
                row = sim.open.pop(op.fact.fact)
                row[7], row[10] = sim.touch_stamp, sim.touch_snap
                row[8], row[11] = op.at, op.snapshot
                if op.fact.fact.subject == "news":
                    sim.memory.ended.add(op.fact.fact.key)
            elif isinstance(op, Open):
                self.open_fact(sim, op.fact, op.first_seen, op.first_snapshot)
        for item in tracked.news:
            if item.url not in sim.memory.rows:
                sim.memory.rows[item.url] = item
                self.news_id += 1
                self.news_rows.append(
                    (
                        self.news_id,
                        sim.spec.id,
                        item.url,
                        item.title,
                        item.published,
                        item.date_text,
                        item.summary,
                        None,
                        stamp,
                        snap,
                    )
                )
        for e in tracked.events:
            self.event(
                sim,
                e.kind,
                stamp,
                delegation=e.delegation,
                attribute=e.attribute,
                old=e.old,
                new=e.new,
                before=e.before_snapshot,
                after=e.after_snapshot,
                details=e.details,
                url=e.url,
            )
        sim.state = replace(tracked.state, open=None)

    def sighting(
        self, sim: SourceSim, sighting: Sighting, *, facts: bool
    ) -> tuple[str, str | None] | None:
        """One check through ``storage.facts.track``; returns its logged parse status."""
        state = sim.state
        if facts:
            state = replace(
                state,
                open=tuple(OpenFact(row[0], f, sim.touch_snap) for f, row in sim.open.items()),
            )
        state = replace(state, news=sim.memory)
        tracked = track(state, sighting, self.policy(sim))
        self.apply(sim, tracked, sighting.stamp, sighting.snapshot_id)
        s = tracked.state
        return (
            (s.parse_status, s.parse_error)
            if sighting.parse is not None and not sighting.failed
            else None
        )

    def check(self, sim: SourceSim, h: int, prefixes: list[str]) -> tuple[Any, ...]:
        rng, spec = self.rng, sim.spec
        start_s = sim.offset + rng.randint(0, 40)
        started = f"{prefixes[h]}{start_s // 60:02d}:{start_s % 60:02d}Z"
        self.fetch_id += 1
        if sim.fails[h]:
            r = rng.random()
            if r < 0.45:
                kind, status, attempts, error = "timeout", None, 3, "timed out after 30 s"
                ms = 90000 + rng.randint(0, 3000)
            elif r < 0.8:
                status = rng.choice((500, 502, 503, 503, 504))
                kind, attempts, ms = "http_status", 3, rng.randint(300, 4000)
                error = f"HTTP {status} from {spec.url}"
            elif r < 0.95:
                kind, status, attempts, ms = "connection", None, 3, rng.randint(50, 2500)
                error = "connection reset by peer"
            else:
                kind, status, attempts, ms = "dns", None, 3, rng.randint(20, 300)
                error = f"cannot resolve {spec.host}"
            error = f"{error} (after {attempts} attempts)"
            stamp = self.stamp(prefixes, h, start_s, ms)
            self.sighting(
                sim, Sighting(stamp, None, url=spec.url, failed=True, error=error), facts=False
            )
            return (
                self.fetch_id,
                spec.id,
                spec.url,
                started,
                ms,
                "failed",
                status,
                kind,
                error,
                attempts,
                None,
                None,
                None,
                None,
                None,
            )
        versions = sim.versions
        while sim.ptr + 1 < len(versions) and versions[sim.ptr + 1].hour <= h:
            sim.ptr += 1
        changed = sim.ptr != sim.vi
        ms = int(rng.lognormvariate(5.9 if changed or not spec.etag else 5.2, 0.5)) + 20
        stamp = self.stamp(prefixes, h, start_s, ms)
        parse: ParseInput | None = None
        if changed:
            outcome = "new" if sim.snap is None else "changed"
            version = versions[sim.ptr]
            sim.vi = sim.ptr
            parse = self.parse_input(sim, version)
            sim.snap = self.new_snapshot(sim, version, stamp, parse.facts)
            status = 200
        else:
            snap = sim.snap
            assert snap is not None
            snap[8] = stamp
            snap[9] += 1
            outcome, status = ("not_modified", 304) if spec.etag else ("unchanged", 200)
        assert sim.snap is not None
        logged = self.sighting(
            sim, Sighting(stamp, sim.snap[0], url=spec.url, parse=parse), facts=parse is not None
        )
        parse_status, parse_error = logged if logged is not None else (None, None)
        snap = sim.snap
        return (
            self.fetch_id,
            spec.id,
            spec.url,
            started,
            ms,
            outcome,
            status,
            None,
            None,
            1,
            snap[5],
            snap[6],
            snap[0],
            parse_status,
            parse_error,
        )

    @staticmethod
    def stamp(prefixes: list[str], h: int, start_s: int, ms: int) -> str:
        s = start_s + round(ms / 1000)
        while s >= 3600:
            h, s = h + 1, s - 3600
        return f"{prefixes[h]}{s // 60:02d}:{s % 60:02d}Z"

    # ---- the run

    def run(self) -> dict[str, float]:
        timings: dict[str, float] = {}
        t = time.perf_counter()
        self.pool = Pool(self.rng)
        sims = build_sources(self.args, self.rng, self.hours, self.t0, self.pool)
        sims.sort(key=lambda s: s.offset)  # the order checks start within each hour
        timings["world"] = time.perf_counter() - t

        with Store.open(self.path):  # the real migrations create the schema
            pass
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = OFF")  # bulk load; WAL is restored at the end
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -200000")
        stamp0 = format_time(self.t0)
        with transaction(conn):
            conn.executemany(
                "INSERT INTO sources (id, url, parser, delegation, first_seen, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (s.spec.id, s.spec.url, s.spec.parser, s.spec.delegation, stamp0, stamp0)
                    for s in sims
                ],
            )
        prefixes = [format_time(self.t0 + timedelta(hours=h))[:14] for h in range(self.hours + 3)]
        fetch_sql = (
            "INSERT INTO fetch_log (id, source_id, url, started_at, duration_ms, outcome, "
            "http_status, error_kind, error, attempts, etag, last_modified, snapshot_id, "
            "parse_status, parse_error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        )
        t = time.perf_counter()
        batch: list[tuple[Any, ...]] = []
        sim_time = insert_time = 0.0
        for h in range(self.hours):
            for sim in sims:
                batch.append(self.check(sim, h, prefixes))
            if len(batch) >= 50_000 or h == self.hours - 1:
                ti = time.perf_counter()
                with transaction(conn):
                    conn.executemany(fetch_sql, batch)
                    if self.bodies:
                        conn.executemany(
                            "INSERT OR IGNORE INTO bodies (sha256, size, compression, data) "
                            "VALUES (?, ?, ?, ?)",
                            self.bodies,
                        )
                insert_time += time.perf_counter() - ti
                batch.clear()
                self.bodies.clear()
        sim_time = time.perf_counter() - t - insert_time
        timings["simulate checks"] = sim_time
        timings["insert fetch_log + bodies"] = insert_time
        t = time.perf_counter()
        for sim in sims:  # open facts were last seen at the last good parse
            for row in sim.open.values():
                row[7], row[10] = sim.touch_stamp, sim.touch_snap
        with transaction(conn):
            conn.executemany(
                "INSERT INTO snapshots (id, source_id, sha256, url, content_type, etag, "
                "last_modified, first_seen, last_seen, seen_count) VALUES (?,?,?,?,?,?,?,?,?,?)",
                self.snapshots,
            )
        with transaction(conn):
            conn.executemany(
                "INSERT INTO facts (id, source_id, subject, attribute, key, value, first_seen, "
                "last_seen, ended_at, first_snapshot, last_snapshot, end_snapshot, "
                "parser_version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                self.facts,
            )
        with transaction(conn):
            conn.executemany(
                "INSERT INTO events (id, kind, detected_at, source_id, delegation, attribute, old, "
                "new, url, before_snapshot, after_snapshot, details) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                self.events,
            )
        with transaction(conn):
            conn.executemany(
                "INSERT INTO news (id, source_id, url, title, published, date_text, summary, "
                "text, first_seen, snapshot_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                self.news_rows,
            )
        with transaction(conn):
            conn.executemany(
                "INSERT INTO source_state (source_id, parser_version, parsed_snapshot, "
                "baseline_at, parse_status, parse_error, broken_since, warnings, "
                "consecutive_failures, failing_since, failing_alerted) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        s.spec.id,
                        PARSER_VERSION,
                        s.state.parsed_snapshot,
                        s.state.baseline_at,
                        s.state.parse_status,
                        s.state.parse_error,
                        s.state.broken_since,
                        "[]",
                        s.state.consecutive_failures,
                        s.state.failing_since,
                        int(s.state.failing_alerted),
                    )
                    for s in sims
                ],
            )
        timings["insert snapshots/facts/events/news"] = time.perf_counter() - t
        t = time.perf_counter()
        problems = conn.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise SystemExit(f"foreign key problems in the generated DB: {problems[:5]}")
        timings["foreign_key_check"] = time.perf_counter() - t
        # Migration 0003 (delivery) queues every new event in the outbox by trigger; five years
        # of events were delivered long ago.
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'outbox'").fetchone():
            with transaction(conn):
                conn.execute(
                    "UPDATE outbox SET status = 'delivered', attempts = 1, "
                    "delivered_at = created_at"
                )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.close()
        self.compression = self.body_bytes / max(1, self.body_stored)
        return timings


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# ----------------------------------------------------------------------------- measuring


def evict(path: Path) -> bool:
    """Drop the database files from the OS page cache (clean pages only; no root needed)."""
    ok = True
    for suffix in ("", "-wal", "-shm"):
        p = Path(f"{path}{suffix}")
        if not p.exists():
            continue
        try:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        except (AttributeError, OSError):
            ok = False
    return ok


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Item:
    group: str
    name: str
    warm: list[float]
    cold: float | None
    sql: list[str] = field(default_factory=list)  # statements to EXPLAIN when over target
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.warm)

    @property
    def p95(self) -> float:
        return percentile(self.warm, 0.95)

    @property
    def verdict(self) -> str:
        if self.median >= TARGET_MS:
            return "MISS"
        if self.p95 >= TARGET_MS or (self.cold or 0) >= TARGET_MS:
            return "p95" if self.p95 >= TARGET_MS else "cold"
        return "ok"


SLOW_MS = 1000.0  # an item slower than this gets 3 warm runs, not --runs


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    t = time.perf_counter()
    fn()
    if (time.perf_counter() - t) * 1000 > SLOW_MS:
        runs = min(runs, 3)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def capture_sql(store: Store, fn: Callable[[], Any]) -> list[str]:
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    try:
        fn()
    finally:
        store.db.conn.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def query_items(path: Path, runs: int, as_of: str, since: str) -> list[Item]:
    from pawatch.storage.queries import delegation_ids, facts_as_of, select_events

    def history(at: str) -> Callable[[Store], Any]:
        def run(store: Store) -> Any:
            known = delegation_ids(store.db)
            assert "KG" in known, known
            facts = facts_as_of(store.db, "KG", at)
            timeline = [
                r for r in select_events(store.db, delegation="KG") if r["detected_at"] <= at
            ]
            return facts, timeline

        return run

    now = format_time(datetime.now(UTC))
    cases: list[tuple[str, Callable[[Store], Any]]] = [
        ("history KG (all 3 queries)", history(now)),
        ("  delegation_ids", lambda s: delegation_ids(s.db)),
        ("  facts_as_of KG now", lambda s: facts_as_of(s.db, "KG", now)),
        ("  select_events delegation=KG", lambda s: select_events(s.db, delegation="KG")),
        (f"history KG --as-of {as_of[:10]}", history(as_of)),
        ("  facts_as_of KG 3y back", lambda s: facts_as_of(s.db, "KG", as_of)),
        ("changes --since 7d", lambda s: select_events(s.db, since=since)),
        ("changes --delegation KG", lambda s: select_events(s.db, delegation="KG")),
        ("changes --kind composition", lambda s: select_events(s.db, kinds=("composition",))),
        ("changes (all events)", lambda s: select_events(s.db)),
    ]
    return run_store_cases("query fn", path, runs, cases)


def run_store_cases(
    group: str, path: Path, runs: int, cases: list[tuple[str, Callable[[Store], Any]]]
) -> list[Item]:
    items = []
    with Store.open(path) as store:
        for name, fn in cases:
            sql = capture_sql(store, lambda fn=fn: fn(store))
            warm = timed(lambda fn=fn: fn(store), runs)
            items.append(Item(group, name, warm, None, sql))
    for item, (_, fn) in zip(items, cases, strict=True):
        evict(path)
        with Store.open(path) as store:  # a fresh connection: SQLite's page cache is empty
            t = time.perf_counter()
            fn(store)
            item.cold = (time.perf_counter() - t) * 1000
    return items


def view_items(path: Path, runs: int) -> list[Item]:
    views = [
        "current_composition",
        "composition_history",
        "representatives",
        "members",
        "recent_changes",
        "source_health",
    ]
    cases: list[tuple[str, Callable[[Store], Any]]] = [
        (f"SELECT * FROM {v}", lambda s, v=v: s.db.conn.execute(f"SELECT * FROM {v}").fetchall())
        for v in views
    ]
    fts = (
        "SELECT n.id, n.source_id, n.title, n.first_seen FROM news_fts JOIN news n "
        "ON n.id = news_fts.rowid WHERE news_fts MATCH ? ORDER BY rank LIMIT 20"
    )
    cases += [
        ("FTS 'ОДКБ' top 20 by rank", lambda s: s.db.conn.execute(fts, ("ОДКБ",)).fetchall()),
        ("FTS 'CSTO' top 20 by rank", lambda s: s.db.conn.execute(fts, ("CSTO",)).fetchall()),
        (
            "FTS count of a common word",
            lambda s: s.db.conn.execute(
                "SELECT count(*) FROM news_fts WHERE news_fts MATCH ?",
                (s.db.conn.execute("SELECT title FROM news LIMIT 1").fetchone()[0].split()[0],),
            ).fetchall(),
        ),
        ("Store.statuses() (pawatch status)", lambda s: s.statuses()),
    ]
    return run_store_cases("view/sql", path, runs, cases)


def cli_items(path: Path, runs: int, as_of: str, query: list[Item]) -> list[Item]:
    from click.testing import CliRunner

    from pawatch.cli import cli

    runner = CliRunner()
    by_name = {i.name: i for i in query}
    cases = [
        (
            "history KG --format json",
            ["history", "KG", "--format", "json"],
            "history KG (all 3 queries)",
        ),
        ("history KG (text)", ["history", "KG"], "history KG (all 3 queries)"),
        (
            f"history KG --as-of {as_of[:10]} json",
            ["history", "KG", "--as-of", as_of[:10], "--format", "json"],
            f"history KG --as-of {as_of[:10]}",
        ),
        (
            "changes --since 7d json",
            ["changes", "--since", "7d", "--format", "json"],
            "changes --since 7d",
        ),
        (
            "changes --delegation KG json",
            ["changes", "--delegation", "KG", "--format", "json"],
            "changes --delegation KG",
        ),
        (
            "changes --kind composition json",
            ["changes", "--kind", "composition", "--format", "json"],
            "changes --kind composition",
        ),
        ("changes (all events) json", ["changes", "--format", "json"], "changes (all events)"),
        ("changes (all events) text", ["changes"], "changes (all events)"),
    ]
    items = []
    sizes = {}
    for name, argv, twin in cases:
        full = ["--db", str(path), *argv]

        def run(full: list[str] = full) -> int:
            result = runner.invoke(cli, full, catch_exceptions=False)
            if result.exit_code != 0:
                raise SystemExit(f"pawatch {' '.join(full)} failed: {result.output[-500:]}")
            return len(result.output)

        sizes[name] = run()
        warm = timed(run, runs)
        evict(path)
        t = time.perf_counter()
        run()
        cold = (time.perf_counter() - t) * 1000
        items.append(
            Item(
                "cli in-process",
                name,
                warm,
                cold,
                by_name[twin].sql,
                note=f"{sizes[name] / 1024:,.0f} KB out",
            )
        )
    cases_open = [("Store.open + close", lambda: Store.open(path).close())]
    for name, fn in cases_open:
        warm = timed(fn, runs)
        evict(path)
        t = time.perf_counter()
        fn()
        items.append(Item("cli in-process", name, warm, (time.perf_counter() - t) * 1000))
    return items


def subprocess_items(path: Path, runs: int = 5) -> list[Item]:
    exe = Path(sys.executable).parent / "pawatch"
    command = [str(exe)] if exe.exists() else [shutil.which("pawatch") or "pawatch"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cases = (
        (
            "python -c import pawatch.cli (start-up)",
            ["-c", "import pawatch.cli, pawatch.cli.query"],
        ),
        ("pawatch --db DB history KG", ["--db", str(path), "history", "KG"]),
        ("pawatch --db DB changes --since 7d", ["--db", str(path), "changes", "--since", "7d"]),
    )
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for round_ in range(runs + 1):  # interleaved, so machine load hits all three alike
        for name, argv in cases:
            t = time.perf_counter()
            exe_argv = [sys.executable, *argv] if argv[0] == "-c" else [*command, *argv]
            done = subprocess.run(exe_argv, capture_output=True, env=env, check=False)
            if round_:
                times[name].append((time.perf_counter() - t) * 1000)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed: {done.stderr.decode()[-500:]}")
    return [
        Item("subprocess", name, times[name], None, note="process start-up included")
        for name, _ in cases
    ]


# ----------------------------------------------------------------------------- reporting


def db_report(path: Path) -> tuple[float, dict[str, int], list[tuple[str, float]]]:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(path) / 2**20
    tables = [
        "sources",
        "bodies",
        "snapshots",
        "fetch_log",
        "facts",
        "events",
        "news",
        "news_fts",
        "source_state",
    ]
    tables += [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE name = 'outbox'")]
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    try:
        per = conn.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall()
        per_mb = [(n, s / 2**20) for n, s in per]
    except sqlite3.OperationalError:
        per_mb = []
    conn.close()
    return size, counts, per_mb


def detail_counts(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    out = {
        "fetch_log outcomes": dict(
            conn.execute(
                "SELECT outcome, count(*) FROM fetch_log GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        ),
        "events by kind": dict(
            conn.execute("SELECT kind, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC").fetchall()
        ),
        "facts by attribute": dict(
            conn.execute(
                "SELECT CASE WHEN attribute LIKE 'seats:%' THEN 'seats:*' ELSE attribute END, "
                "count(*) FROM facts GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        ),
        "KG facts / KG events": (
            conn.execute("SELECT count(*) FROM facts WHERE subject = 'delegation:KG'").fetchone()[
                0
            ],
            conn.execute("SELECT count(*) FROM events WHERE delegation = 'KG'").fetchone()[0],
        ),
        "period": conn.execute("SELECT min(started_at), max(started_at) FROM fetch_log").fetchone(),
    }
    conn.close()
    return out


def explain(conn: sqlite3.Connection, sql: str) -> list[str]:
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
    depth: dict[int, int] = {0: 0}
    out = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, 0) + 1
        out.append("  " * depth[node] + detail)
    return out


def print_table(items: list[Item]) -> None:
    print(f"\n{'group':<15} {'item':<42} {'median':>8} {'p95':>8} {'cold':>8}  target")
    print("-" * 100)
    for it in items:
        cold = f"{it.cold:8.1f}" if it.cold is not None else f"{'-':>8}"
        target = f"< {TARGET_MS:g} ms {it.verdict}" if it.group != "subprocess" else "(info)"
        note = f"  [{it.note}]" if it.note else ""
        runs = f"  ({len(it.warm)} runs)" if len(it.warm) < 10 else ""
        print(
            f"{it.group:<15} {it.name:<42} {it.median:8.1f} {it.p95:8.1f} {cold}  {target}{note}"
            f"{runs}"
        )


def print_plans(path: Path, items: list[Item], always: tuple[str, ...] = ()) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    shown: set[str] = set()
    for it in items:
        if it.group == "subprocess" or not it.sql:
            continue
        if it.verdict == "ok" and it.name not in always:
            continue
        for sql in it.sql:
            shape = re.sub(r"'[^']*'", "?", sql)  # one plan per statement shape
            if shape in shown:
                continue
            shown.add(shape)
            print(f"\nEXPLAIN QUERY PLAN ({it.group}: {it.name}, {it.verdict}):")
            print("  " + " ".join(sql.split())[:400])
            for line in explain(conn, sql):
                print(line)
    conn.close()


# ----------------------------------------------------------------------------- proposals

# What the closing note proposes (a new migration would add them; storage/ is not edited
# here). Each is applied to a copy of the database and the items it affects are re-timed.
FIXES: list[tuple[str, str]] = [
    (
        "source_health: latest row per source by id (existing index fetch_log_by_source)",
        """
        DROP VIEW source_health;
        CREATE VIEW source_health AS
        SELECT s.id AS source_id, s.url, s.parser, s.delegation,
               (SELECT started_at FROM fetch_log l WHERE l.source_id = s.id
                  ORDER BY l.id DESC LIMIT 1) AS last_check,
               (SELECT started_at FROM fetch_log l WHERE l.source_id = s.id
                  AND l.outcome != 'failed' ORDER BY l.id DESC LIMIT 1) AS last_success,
               COALESCE(st.consecutive_failures, 0) AS consecutive_failures,
               st.failing_since,
               (SELECT error FROM fetch_log l WHERE l.source_id = s.id AND l.outcome = 'failed'
                  ORDER BY l.id DESC LIMIT 1) AS last_error,
               st.parse_status, st.parse_error, st.broken_since,
               CASE WHEN COALESCE(st.failing_alerted, 0) = 1 THEN 'failing'
                    WHEN st.parse_status = 'broken' THEN 'broken'
                    WHEN st.parse_status IS NULL THEN 'unknown'
                    ELSE 'ok' END AS health
        FROM sources s LEFT JOIN source_state st ON st.source_id = s.id;
        """,
    ),
    (
        "+ partial index of failed checks (last_error of a source that rarely/never fails)",
        "CREATE INDEX fetch_log_failed ON fetch_log(source_id, id) WHERE outcome = 'failed';",
    ),
    (
        "recent_changes ordered by detected_at (uses events_by_time instead of scanning events)",
        """
        DROP VIEW recent_changes;
        CREATE VIEW recent_changes AS
        SELECT e.id, e.kind, e.detected_at, e.delegation, e.source_id, e.attribute, e.old,
               e.new, e.url, e.before_snapshot, e.after_snapshot
        FROM events e
        WHERE e.detected_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-30 days')
        ORDER BY e.detected_at DESC, e.id DESC;
        """,
    ),
    (
        "events by delegation / kind (changes --delegation, --kind, history timeline)",
        "CREATE INDEX events_by_delegation ON events(delegation, id);\n"
        "CREATE INDEX events_by_kind ON events(kind, id);",
    ),
]


def try_fixes(path: Path, runs: int, as_of: str, since: str, before: list[Item]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pawatch-history-fix-"))
    copy = folder / "copy.db"
    try:
        src = sqlite3.connect(path)
        dst = sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        dst.execute("PRAGMA journal_mode = WAL")
        dst.close()
        old = {(i.group, i.name): i for i in before}
        print(f"\nProposed changes, applied one after the other to a copy ({copy}):")
        for title, ddl in FIXES:
            conn = sqlite3.connect(copy, isolation_level=None)
            t = time.perf_counter()
            conn.executescript(ddl)
            built = time.perf_counter() - t
            conn.close()
            print(f"\n* {title}  (applied in {built * 1000:.0f} ms)")
            print(
                "  "
                + "\n  ".join(line.strip() for line in ddl.strip().splitlines() if line.strip())
            )
            after = query_items(copy, runs, as_of, since) + view_items(copy, runs)
            for it in after:
                was = old.get((it.group, it.name))
                if was is None or (was.verdict == "ok" and was.median < 5):
                    continue
                print(
                    f"    {it.name:<42} median {was.median:7.1f} -> {it.median:7.1f} ms, "
                    f"p95 {was.p95:7.1f} -> {it.p95:7.1f}, cold {was.cold or 0:7.1f} -> "
                    f"{it.cold or 0:7.1f}  [{it.verdict}]"
                )
            interesting = [
                i
                for i in after
                if i.name.startswith(
                    (
                        "SELECT * FROM source_health",
                        "SELECT * FROM recent_changes",
                        "  select_events delegation",
                        "changes --kind",
                    )
                )
            ]
            print_plans(copy, interesting, always=tuple(i.name for i in interesting))
        size = os.path.getsize(copy) / 2**20
        print(
            f"\n  copy with all proposals: {size:,.1f} MB "
            f"(was {os.path.getsize(path) / 2**20:,.1f} MB)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------- main


def generated(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        n = conn.execute("SELECT count(*) FROM fetch_log").fetchone()[0]
        conn.close()
        return n > 0
    except sqlite3.DatabaseError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--years", type=float, default=5.0, help="history length (default 5)")
    parser.add_argument("--sources", type=int, default=30, help="number of sources (default 30)")
    parser.add_argument("--db", type=Path, help="database file (reused if already generated)")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument("--regenerate", action="store_true", help="regenerate an existing --db")
    parser.add_argument("--runs", type=int, default=20, help="warm runs per item (default 20)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--body-scale",
        type=float,
        default=1.0,
        help="body size factor: 1 realistic, 0 tiny bodies (default 1)",
    )
    parser.add_argument(
        "--try-fixes",
        action="store_true",
        help="re-time the slow items on a copy with the proposed indexes/views",
    )
    parser.add_argument("--no-subprocess", action="store_true", help="skip the subprocess runs")
    args = parser.parse_args(argv)

    folder = None
    if args.db is None:
        folder = Path(tempfile.mkdtemp(prefix="pawatch-history-"))
        path = folder / "history.db"
    else:
        path = args.db.resolve()
    try:
        if args.regenerate or not generated(path):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            print(f"Generating {args.years:g} years x {args.sources} sources, hourly, into {path}")
            t = time.perf_counter()
            gen = Generator(args, path)
            steps = gen.run()
            total = time.perf_counter() - t
            print(
                f"  generated in {total:.1f} s ("
                + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
                + ")"
            )
            print(
                f"  bodies: {gen.body_bytes / 2**20:,.0f} MB raw -> "
                f"{gen.body_stored / 2**20:,.0f} MB zstd ({gen.compression:.1f}x)"
            )
        else:
            print(f"Reusing the generated database {path} (--regenerate to rebuild)")

        size, counts, per_table = db_report(path)
        print(f"\nDB size after wal_checkpoint(TRUNCATE): {size:,.1f} MB")
        print("Rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        if per_table:
            print(
                "Largest tables/indexes: "
                + ", ".join(f"{n} {mb:,.1f} MB" for n, mb in per_table[:12])
            )
        for k, v in detail_counts(path).items():
            print(f"{k}: {v}")

        end = datetime.now(UTC)
        as_of = format_time(end - timedelta(days=3 * 365))
        since = format_time(end - timedelta(days=7))
        items = query_items(path, args.runs, as_of, since)
        items += cli_items(path, args.runs, as_of, items)
        items += view_items(path, args.runs)
        if not args.no_subprocess:
            items += subprocess_items(path)
        print_table(items)
        sub = {i.name: i.median for i in items if i.group == "subprocess"}
        if sub:
            start = sub["python -c import pawatch.cli (start-up)"]
            work = sub["pawatch --db DB history KG"] - start
            print(
                f"\nsubprocess: start-up alone (interpreter + imports) {start:.0f} ms; history KG "
                f"{sub['pawatch --db DB history KG']:.0f} ms, i.e. start-up + {work:.0f} ms"
                + (" (within the noise)" if work < 0 else "")
            )
        print(
            "cold = one run on a fresh connection after posix_fadvise(DONTNEED) on the DB files"
            f" ({'evicted' if evict(path) else 'eviction not available'})"
        )
        print_plans(path, items, always=("SELECT * FROM source_health",))
        if args.try_fixes:
            try_fixes(path, args.runs, as_of, since, items)
    finally:
        if folder is not None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        elif folder is not None:
            print(f"\nkept: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
