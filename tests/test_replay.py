"""Sequences of page versions replayed through the real pipeline, with the exact events.

Every test serves hand-written pages in the Assembly's shapes from a real HTTP server on
127.0.0.1, checks them with ``run_once`` into a real SQLite file, and compares the events each
check wrote with the exact list expected. Every event is also checked for its evidence: a
change names a before and an after snapshot of its own source, the before one older. The
findings a run makes by comparing its sources once all were read (``sources_disagree`` /
``sources_agree``) are kept apart, in ``Replay.findings``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import pawatch.storage.facts as facts_module
from pawatch.config import Settings
from pawatch.demo.localserver import LocalServer, Route
from pawatch.domain import CHANGE_KINDS
from pawatch.pipeline import check_sources, run_once
from pawatch.scraper.parsers import PARSERS, ParseResult
from pawatch.scraper.parsers.records import DelegationRecord, text_digest
from pawatch.settings import load_settings
from pawatch.storage import StorageError, Store

# --- the pages -----------------------------------------------------------------------------

BY_SENTENCE = (
    "Delegation of the National Assembly of the Republic of Belarus to the CSTO PA {verb} "
    "{house} deputies from the House of Representatives of the National Assembly of the Republic "
    "of Belarus and 4 deputies from the Council of the Republic of the National Assembly of the "
    "Republic of Belarus."
)
KZ_LINES = [
    "Delegation of the Parliament of the Republic of Kazakhstan to the CSTO PA consists of 8 "
    "deputies from the Mazhilis of the Parliament of the Republic of Kazakhstan and 8 members of "
    "the Senate of the Parliament of Kazakhstan.",
    "Plenipotentiary Representative of the Parliament of the Republic of Kazakhstan, deputy "
    "Executive Secretary of the CSTO Parliamentary Assembly: Viktor Rogalev",
]
TJ_LINES = [
    "Delegation of the Supreme Assembly of the Republic of Tajikistan to the CSTO PA consists of "
    "6 deputies of the National Assembly of the Supreme Assembly of the Republic of Tajikistan "
    "and 6 deputies of the Assembly of Representatives of the Supreme Assembly of the Republic "
    "of Tajikistan."
]
RU_ROLE = "deputy Executive Secretary of the CSTO Parliamentary Assembly"
BY_HOUSE_SITE = "http://house.gov.by/en/"


def block_page(
    *,
    house: int = 7,
    ru_rep: str | None = "Mikhail Krotov",
    kg_rep: str | None = "Shabdanbek Alishev",
    by_site: bool = True,
    tj: bool = True,
    reworded: bool = False,
    stamp: str = "",
) -> str:
    """The Assembly's sidebar of national delegations (the English sentences)."""
    rep = "Plenipotentiary Representative" if reworded else "Plenipotentiary representative"
    by = [
        BY_SENTENCE.format(verb="is composed of" if reworded else "consists of", house=house),
        f"{rep} of the National Assembly of the Republic of Belarus: Viktor Kogut",
    ]
    if by_site:
        text = "house.gov.by" if reworded else BY_HOUSE_SITE
        by.append(
            "Website of the House of Representatives of the National Assembly of the Republic "
            f'of Belarus: <a href="{BY_HOUSE_SITE}">{text}</a>'
        )
    by.append(
        "Website of the Council of the Republic of the National Assembly of the Republic of "
        'Belarus: <a href="http://www.sovrep.gov.by/ru/">http://www.sovrep.gov.by/ru/</a>'
    )
    kg_parliament = "the Supreme Council of the Kyrgyz Republic"
    kg = [f"Delegation of {kg_parliament} to the CSTO PA consists of 7 deputies."]
    if kg_rep:
        kg.append(f"Plenipotentiary Representative of {kg_parliament}: {kg_rep}")
    kg.append(
        "Website of the Supreme Council of the Kyrgyz Republic: "
        '<a href="http://www.kenesh.kg/">http://www.kenesh.kg/</a>'
    )
    ru = [
        "Delegation of the Federal Assembly of the Russian Federation to the CSTO PA consists of "
        "10 deputies of the State Duma of the Russian Federation and 12 members of the "
        "Federation Council of the Russian Federation."
    ]
    if ru_rep:
        ru.append(
            "Plenipotentiary representative of the Federal Assembly of the Russian Federation - "
            f"{RU_ROLE}: {ru_rep}"
        )
    groups = [by, KZ_LINES, kg, ru] + ([TJ_LINES] if tj else [])
    items = "".join(
        '<div class="sidebar-item">'
        + "".join(f'<div class="sidebar-item__text">{line}</div>' for line in group)
        + "</div>"
        for group in groups
    )
    news = "The Council of the Assembly met in Minsk" + (" on Tuesday." if reworded else ".")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>CSTO PA</title></head>'
        f'<body>{stamp}<main class="content"><h1>Events</h1><p>{news}</p></main>'
        f'<aside class="sidebar"><div class="sidebar-title">National delegations</div>{items}'
        "</aside></body></html>"
    )


def no_block_page(stamp: str = "") -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>CSTO PA</title></head>'
        f'<body>{stamp}<main class="content"><h1>Events</h1><p>The site is being redesigned.</p>'
        "</main></body></html>"
    )


KG_MEMBERS = [
    "Nurlan Example",
    "Aigul Sample",
    "Bakyt Demo",
    "Cholpon Placeholder",
    "Daniyar Testov",
    "Elmira Mockova",
    "Farida Fixture",
]


def country_page(members: Sequence[str] = KG_MEMBERS, stamp: str = "") -> str:
    """The Assembly's page of the Kyrgyz delegation: sentence, members, representative."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Kyrgyz Republic'
        f'</title></head><body>{stamp}<main class="content country"><h1>Kyrgyz Republic</h1>'
        "<p>Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA consists "
        f"of 7 deputies.</p><p>{', '.join(members)}</p>"
        "<p>Plenipotentiary Representative of the Supreme Council of the Kyrgyz Republic: "
        "Shabdanbek Alishev</p><p>Website of the Supreme Council of the Kyrgyz Republic: "
        '<a href="http://www.kenesh.kg/">http://www.kenesh.kg/</a></p>'
        "<h2>Head of the delegation</h2><p>Head of the delegation: Nurlan Example</p>"
        "</main></body></html>"
    )


ROSTER = [
    "Пример Нурлан",
    "Образец Айгуль",
    "Демо Бакыт",
    "Заглушка Чолпон",
    "Тестов Данияр",
    "Мокова Эльмира",
]
ROSTER_OPTIONS: dict[str, Any] = {"item": ".deputy-card", "name": ".deputy-name"}


def roster_page(names: Sequence[str] = ROSTER, card: str = "deputy-card", stamp: str = "") -> str:
    """A national parliament's list of deputies, read with CSS selectors."""
    cards = "".join(
        f'<div class="{card}"><a href="/ru/deputies/{i}"><span class="deputy-name">{name}</span>'
        '</a><span class="deputy-role">депутат</span></div>'
        for i, name in enumerate(names, 1)
    )
    return (
        '<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>Депутаты</title>'
        f'</head><body>{stamp}<div class="deputies">{cards}</div></body></html>'
    )


NewsEntry = tuple[str, str, str]  # path, title, summary
NEWS = [
    ("/events/plenary", "Plenary session in Saint Petersburg", "The Assembly adopted model laws."),
    ("/events/commission", "Standing commission met", "Harmonisation of legislation."),
]


def news_page(items: Sequence[NewsEntry] = NEWS, stamp: str = "") -> str:
    """The Assembly's events list."""
    body = "".join(
        f'<div class="news-item"><a class="news-title" href="{path}">{title}</a>'
        f'<span class="news-date">14 November 2025</span><p class="summary">{summary}</p></div>'
        for path, title, summary in items
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Events</title></head>'
        f'<body>{stamp}<main class="content"><h1>Events</h1><div class="news-list">{body}</div>'
        "</main></body></html>"
    )


def plain_page(text: str = "The Assembly has four standing commissions.", visitors: int = 1) -> str:
    """A page watched as text (``page`` parser, ``select = "#about"``)."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>About</title></head>'
        f'<body><div id="about"><h1>About the Assembly</h1><p>{text}</p></div>'
        f"<footer>Visitors today: {visitors}</footer></body></html>"
    )


# --- the harness ---------------------------------------------------------------------------


class Ev(NamedTuple):
    kind: str
    delegation: str | None
    attribute: str | None
    old: str | None
    new: str | None


@dataclass
class Src:
    id: str
    parser: str
    delegation: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)  # confirm, failing_after, ...

    @property
    def path(self) -> str:
        return f"/{self.id}"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


FINDINGS = ("sources_disagree", "sources_agree")
HTTP = {"per_host_delay": 0, "per_host_concurrency": 8, "retries": 0, "timeout": 5}


def write_settings(tmp_path: Path, server: LocalServer, sources: Sequence[Src]) -> Settings:
    lines = [f"[storage]\npath = {_toml(str(tmp_path / 'replay.db'))}", "[http]"]
    lines += [f"{k} = {_toml(v)}" for k, v in HTTP.items()]
    for src in sources:
        lines += ["[[sources]]", f"id = {_toml(src.id)}", f"url = {_toml(server.url(src.path))}"]
        lines.append(f"parser = {_toml(src.parser)}")
        if src.delegation:
            lines.append(f"delegation = {_toml(src.delegation)}")
        lines += [f"{k} = {_toml(v)}" for k, v in src.keys.items()]
        if src.options:
            lines.append("[sources.options]")
            lines += [f"{k} = {_toml(v)}" for k, v in src.options.items()]
    path = tmp_path / "replay.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_settings(path)


class Replay:
    """A config, a store and a server: ``serve`` page versions, ``check`` once, read events."""

    def __init__(self, tmp_path: Path, server: LocalServer, *sources: Src) -> None:
        self.server = server
        self.sources = {s.id: s for s in sources}
        self.settings = write_settings(tmp_path, server, sources)
        self.store = Store.open(self.settings.storage.path)
        self.last_event = 0
        self.findings: list[Ev] = []  # sources_disagree / sources_agree, in order

    def serve(self, source_id: str, body: str, **route: Any) -> None:
        self.server.set(self.sources[source_id].path, Route(body=body, **route))

    def fail(self, source_id: str) -> None:
        self.server.set(self.sources[source_id].path, Route(status=503, body="down"))

    def check(self) -> list[Ev]:
        """One run of every source; the events it wrote (by source, then in order)."""
        run_once(self.settings, self.settings.sources, self.store)
        return [
            Ev(r["kind"], r["delegation"], r["attribute"], r["old"], r["new"])
            for r in self.new_rows()
        ]

    def new_rows(self) -> list[dict[str, Any]]:
        """The events the checks wrote since the last call (the run's findings go to
        ``findings``)."""
        rows = [r for r in self.store.events() if r["id"] > self.last_event]
        if rows:
            self.last_event = max(r["id"] for r in rows)
        found = [r for r in rows if r["kind"] in FINDINGS]
        for row in found:
            assert row["detected_at"] and row["delegation"] and row["url"] is None, row
        self.findings += [
            Ev(r["kind"], r["delegation"], r["attribute"], r["old"], r["new"]) for r in found
        ]
        rows = [r for r in rows if r["kind"] not in FINDINGS]
        for row in rows:
            self.assert_evidence(row)
        return sorted(rows, key=lambda r: (r["source_id"], r["id"]))

    def assert_evidence(self, row: dict[str, Any]) -> None:
        assert row["detected_at"] and row["url"] and row["source_id"] in self.sources, row
        kind, before, after = row["kind"], row["before_snapshot"], row["after_snapshot"]
        if kind in CHANGE_KINDS or kind == "parse_recovered":
            assert before is not None and after is not None and before < after, row
        if kind == "parse_broken":
            assert after is not None, row
        for snap in (before, after):
            if snap is not None:
                owner = self.one("SELECT source_id FROM snapshots WHERE id = ?", snap)
                assert owner == row["source_id"], row
        if row["delegation"] is not None:
            assert json.loads(row["details"])["subject"] == f"delegation:{row['delegation']}"

    def one(self, sql: str, *params: Any) -> Any:
        return self.store.db.conn.execute(sql, params).fetchone()[0]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.store.db.conn.execute(sql, params).fetchall()]

    def open_facts(self, source_id: str) -> list[tuple[Any, ...]]:
        return self.rows(
            "SELECT id, subject, attribute, key, value FROM facts "
            "WHERE source_id = ? AND ended_at IS NULL ORDER BY id",
            source_id,
        )

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def replay_factory(tmp_path: Path, server: LocalServer) -> Iterator[Any]:
    made: list[Replay] = []

    def make(*sources: Src) -> Replay:
        made.append(Replay(tmp_path, server, *sources))
        return made[-1]

    yield make
    for replay in made:
        replay.close()


BLOCK = Src("pacsto-home", "delegations")
COUNTRY = Src("pacsto-kg", "delegation-page", delegation="KG")
ROSTER_SRC = Src("kenesh-deputies", "roster", delegation="KG", options=ROSTER_OPTIONS)


# --- delegations block ---------------------------------------------------------------------


def test_seat_count_up_and_down(replay_factory: Any) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []  # baseline
    r.serve(BLOCK.id, block_page(house=8))
    assert r.check() == [
        Ev("composition", "BY", "seats:house-of-representatives", "7", "8"),
        Ev("composition", "BY", "seats:total", "11", "12"),
    ]
    r.serve(BLOCK.id, block_page(house=7))
    assert r.check() == [
        Ev("composition", "BY", "seats:house-of-representatives", "8", "7"),
        Ev("composition", "BY", "seats:total", "12", "11"),
    ]
    assert r.check() == []  # the same page again
    # (checks here are seconds apart: ordered by snapshot, not by time)
    history = r.rows(
        "SELECT seats, valid_to IS NULL FROM composition_history WHERE delegation = 'BY' "
        "AND chamber = 'house-of-representatives' ORDER BY first_snapshot"
    )
    assert history == [(7, 0), (8, 0), (7, 1)]
    current = r.rows(
        "SELECT chamber, seats FROM current_composition WHERE delegation = 'BY' ORDER BY chamber"
    )
    assert current == [
        ("council-of-the-republic", 4),
        ("house-of-representatives", 7),
        ("total", 11),
    ]


def test_representative_replaced_disappearing_and_appearing(replay_factory: Any) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    r.serve(BLOCK.id, block_page(ru_rep="Sergey Example"))
    assert r.check() == [
        Ev("representative", "RU", "plenipotentiary", "Mikhail Krotov", "Sergey Example")
    ]
    current = "SELECT name, role FROM representatives WHERE delegation = ? AND valid_to IS NULL"
    assert r.rows(current, "RU") == [("Sergey Example", RU_ROLE)]
    r.serve(BLOCK.id, block_page(ru_rep="Sergey Example", kg_rep=None))
    assert r.check() == [Ev("representative", "KG", "plenipotentiary", "Shabdanbek Alishev", None)]
    r.serve(BLOCK.id, block_page(ru_rep="Sergey Example"))
    assert r.check() == [Ev("representative", "KG", "plenipotentiary", None, "Shabdanbek Alishev")]
    # A representative line with a post goes away: one event (the post goes with the person).
    r.serve(BLOCK.id, block_page(ru_rep=None))
    assert r.check() == [Ev("representative", "RU", "plenipotentiary", "Sergey Example", None)]
    assert r.rows(current, "RU") == []
    periods = r.rows(
        "SELECT name, valid_to IS NULL FROM representatives WHERE delegation = ? "
        "ORDER BY first_snapshot",
        "KG",
    )
    assert periods == [("Shabdanbek Alishev", 0), ("Shabdanbek Alishev", 1)]


def test_website_removed_and_restored(replay_factory: Any) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    r.serve(BLOCK.id, block_page(by_site=False))
    assert r.check() == [Ev("website_removed", "BY", "website", BY_HOUSE_SITE, None)]
    r.serve(BLOCK.id, block_page(by_site=True))
    assert r.check() == [Ev("website_added", "BY", "website", None, BY_HOUSE_SITE)]


def test_delegation_removed_and_back_is_one_event_each(replay_factory: Any) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    r.serve(BLOCK.id, block_page(tj=False))
    tj = "Supreme Assembly of the Republic of Tajikistan"
    assert r.check() == [Ev("delegation_removed", "TJ", "delegation", tj, None)]
    r.serve(BLOCK.id, block_page(tj=True))
    assert r.check() == [Ev("delegation_added", "TJ", "delegation", None, tj)]


def test_wording_only_change_reports_nothing(replay_factory: Any) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    facts = r.open_facts(BLOCK.id)
    r.serve(BLOCK.id, block_page(reworded=True, stamp="<!-- rendered 12:00 -->"))
    assert r.check() == []
    assert r.rows("SELECT outcome FROM fetch_log ORDER BY id") == [("new",), ("changed",)]
    assert r.open_facts(BLOCK.id) == facts  # the same fact rows, not closed and reopened


def test_block_missing_is_parse_broken_then_recovered_without_changes(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    facts = r.open_facts(BLOCK.id)
    r.serve(BLOCK.id, no_block_page())
    assert r.check() == [
        Ev("parse_broken", None, "parse", None, "no delegation block on this page")
    ]
    r.serve(BLOCK.id, no_block_page(stamp="<!-- again -->"))
    assert r.check() == []  # still broken: reported once
    assert r.one("SELECT health FROM source_health WHERE source_id = ?", BLOCK.id) == "broken"
    assert r.open_facts(BLOCK.id) == facts
    r.serve(BLOCK.id, block_page())
    assert r.check() == [
        Ev("parse_recovered", None, "parse", "no delegation block on this page", None)
    ]
    assert r.open_facts(BLOCK.id) == facts
    assert r.one("SELECT health FROM source_health WHERE source_id = ?", BLOCK.id) == "ok"
    r.serve(BLOCK.id, block_page(house=6))  # and changes are reported again afterwards
    assert [e.kind for e in r.check()] == ["composition", "composition"]


# --- delegation page, roster ---------------------------------------------------------------


def test_members_added_removed_renamed(replay_factory: Any) -> None:
    r = replay_factory(COUNTRY)
    r.serve(COUNTRY.id, country_page())
    assert r.check() == []
    r.serve(COUNTRY.id, country_page([*KG_MEMBERS, "Gulnara Newcomer"]))
    assert r.check() == [Ev("member_added", "KG", "member", None, "Gulnara Newcomer")]
    # the page still says 7 deputies and lists 8 names: a finding, not a change
    assert r.findings == [Ev("sources_disagree", "KG", "members", None, "stated: 7; listed: 8")]
    members = [m for m in KG_MEMBERS if m != "Bakyt Demo"] + ["Gulnara Newcomer"]
    r.serve(COUNTRY.id, country_page(members))
    assert r.check() == [Ev("member_removed", "KG", "member", "Bakyt Demo", None)]
    assert r.findings[1:] == [Ev("sources_agree", "KG", "members", "stated: 7; listed: 8", "7")]
    renamed = [m.replace("Daniyar Testov", "Daniyar Testow") for m in members]
    r.serve(COUNTRY.id, country_page(renamed))
    assert r.check() == [Ev("member_renamed", "KG", "member", "Daniyar Testov", "Daniyar Testow")]
    reordered = [m.replace("Aigul Sample", "SAMPLE Aigul") for m in reversed(renamed)]
    r.serve(COUNTRY.id, country_page(reordered))  # same person by the name key, new spelling
    assert r.check() == [Ev("member_renamed", "KG", "member", "Aigul Sample", "SAMPLE Aigul")]
    current = r.rows("SELECT name FROM members WHERE valid_to IS NULL ORDER BY name")
    assert sorted(n for (n,) in current) == sorted(reordered)


def test_roster_layout_change_is_parse_broken_not_mass_removals(replay_factory: Any) -> None:
    r = replay_factory(ROSTER_SRC)
    r.serve(ROSTER_SRC.id, roster_page())
    assert r.check() == []
    facts = r.open_facts(ROSTER_SRC.id)
    assert len(facts) == len(ROSTER)
    r.serve(ROSTER_SRC.id, roster_page(card="person"))  # the cards' class renamed
    (event,) = r.check()
    assert event[:4] == ("parse_broken", None, "parse", None)
    assert "matched nothing" in str(event.new)
    assert r.open_facts(ROSTER_SRC.id) == facts
    r.serve(ROSTER_SRC.id, roster_page())
    assert [e.kind for e in r.check()] == ["parse_recovered"]
    assert r.open_facts(ROSTER_SRC.id) == facts


@pytest.mark.parametrize("source", [ROSTER_SRC, COUNTRY], ids=["roster", "delegation-page"])
def test_collapsed_member_list_is_parse_broken(replay_factory: Any, source: Src) -> None:
    full, page = (ROSTER, roster_page) if source is ROSTER_SRC else (KG_MEMBERS, country_page)
    r = replay_factory(source)
    r.serve(source.id, page(full))
    assert r.check() == []
    facts = r.open_facts(source.id)
    r.serve(source.id, page(full[:2]))
    (event,) = r.check()
    assert event.kind == "parse_broken"
    assert f"collapsed from {len(full)} to 2" in str(event.new)
    assert r.open_facts(source.id) == facts
    r.serve(source.id, page(full))
    assert [e.kind for e in r.check()] == ["parse_recovered"]
    assert r.open_facts(source.id) == facts


# --- confirmation window, failures ---------------------------------------------------------


@pytest.mark.parametrize("vary", [False, True], ids=["same-body", "body-varies"])
def test_flip_flop_inside_confirm_window_reports_nothing(replay_factory: Any, vary: bool) -> None:
    src = dataclasses.replace(BLOCK, keys={"confirm": 2})
    r = replay_factory(src)
    a, b = block_page(), block_page(ru_rep="Sergey Example")
    r.serve(src.id, a)
    assert r.check() == []
    for _ in range(2):  # A -> B -> A, twice
        r.serve(src.id, b)
        assert r.check() == []
        r.serve(src.id, a)
        assert r.check() == []
    assert r.one("SELECT COUNT(*) FROM facts WHERE ended_at IS NOT NULL") == 0
    r.serve(src.id, b)
    assert r.check() == []  # seen once: not yet
    first_b = r.one("SELECT MAX(id) FROM snapshots")
    if vary:
        r.serve(src.id, block_page(ru_rep="Sergey Example", stamp="<!-- 12:05 -->"))
    assert r.check() == [
        Ev("representative", "RU", "plenipotentiary", "Mikhail Krotov", "Sergey Example")
    ]
    (event,) = [e for e in r.store.events() if e["kind"] == "representative"]
    assert event["after_snapshot"] == first_b  # the change dates from its first sighting
    assert (
        r.one(
            "SELECT first_snapshot FROM facts WHERE value = 'Sergey Example' AND ended_at IS NULL"
        )
        == first_b
    )
    assert r.check() == []  # confirmed once, reported once


def test_fetch_failures_then_recovery(replay_factory: Any) -> None:
    src = dataclasses.replace(BLOCK, keys={"failing_after": 3})
    r = replay_factory(src)
    r.serve(src.id, block_page())
    assert r.check() == []
    facts = r.open_facts(src.id)
    r.fail(src.id)
    assert r.check() == [] and r.check() == []
    assert [e[:3] for e in r.check()] == [("source_failing", None, "fetch")]
    assert r.check() == [] and r.check() == []  # reported once, not on every failure
    failing = r.store.events()[-1]
    assert json.loads(failing["details"])["consecutive_failures"] == 3
    assert r.one("SELECT health FROM source_health") == "failing"
    r.serve(src.id, block_page())
    assert [e[:3] for e in r.check()] == [("source_recovered", None, "fetch")]
    assert r.check() == []
    assert r.open_facts(src.id) == facts
    assert r.one("SELECT health FROM source_health") == "ok"
    # A shorter streak than failing_after, then success: nothing at all.
    r.fail(src.id)
    assert r.check() == [] and r.check() == []
    r.serve(src.id, block_page())
    assert r.check() == []
    assert r.open_facts(src.id) == facts


# --- news, page ----------------------------------------------------------------------------


def test_news_with_and_without_watch_terms(replay_factory: Any) -> None:
    plain = Src("events", "news-list")
    watched = Src("events-watched", "news-list", options={"watch": ["Security", "ОДКБ"]})
    r = replay_factory(plain, watched)
    for src in (plain, watched):
        r.serve(src.id, news_page())
    assert r.check() == []  # baseline: the items already listed are not news
    fresh = [
        ("/events/a-festival", "Cultural festival in Dushanbe", "Songs and dances."),
        ("/events/b-security", "Collective security seminar", "Experts met."),
        ("/events/c-minsk", "Session in Minsk", "The ОДКБ Council discussed the budget."),
    ]
    for src in (plain, watched):
        r.serve(src.id, news_page(fresh + NEWS))
    assert r.check() == [
        Ev("news", None, "item", None, "Cultural festival in Dushanbe"),
        Ev("news", None, "item", None, "Collective security seminar"),
        Ev("news", None, "item", None, "Session in Minsk"),
        # the watched source: the title matches, or the summary does
        Ev("news", None, "item", None, "Collective security seminar"),
        Ev("news", None, "item", None, "Session in Minsk"),
    ]
    for src in (plain, watched):  # items leaving the list are not news
        r.serve(src.id, news_page(fresh[:1]))
    assert r.check() == []
    hits = r.rows("SELECT title FROM news_fts WHERE news_fts MATCH 'budget'")
    assert hits == [("Session in Minsk",), ("Session in Minsk",)]


ITEMS = [(f"/events/item-{i}", f"Item {i}", f"Summary of item {i}.") for i in range(1, 5)]


def test_a_news_item_back_on_the_list_is_not_news_again(replay_factory: Any) -> None:
    src = Src("events", "news-list")
    r = replay_factory(src)
    r.serve(src.id, news_page(ITEMS[:3]))
    assert r.check() == []
    r.serve(src.id, news_page(ITEMS[1:4]))  # item 1 scrolls off, item 4 is new
    assert r.check() == [Ev("news", None, "item", None, "Item 4")]
    r.serve(src.id, news_page(ITEMS[:4]))  # item 1 comes back: seen before, not news
    assert r.check() == []
    r.serve(src.id, news_page(ITEMS[2:4]))
    assert r.check() == []
    r.serve(src.id, news_page(ITEMS[:4]))
    assert r.check() == []
    assert r.one("SELECT COUNT(*) FROM events WHERE kind = 'news'") == 1


def test_a_news_item_first_seen_inside_a_flip_is_reported_once_confirmed(
    replay_factory: Any,
) -> None:
    src = Src("events", "news-list", keys={"confirm": 2})
    r = replay_factory(src)
    r.serve(src.id, news_page(ITEMS[:2]))
    assert r.check() == []
    r.serve(src.id, news_page(ITEMS[:3]))
    assert r.check() == []  # seen once: not yet
    r.serve(src.id, news_page(ITEMS[:2]))
    assert r.check() == []  # flipped back
    r.serve(src.id, news_page(ITEMS[:3]))
    assert r.check() == []
    assert r.check() == [Ev("news", None, "item", None, "Item 3")]
    assert r.check() == []


def test_news_events_link_to_the_item_and_watch_reads_each_items_own_summary(
    replay_factory: Any,
) -> None:
    src = Src("events-watched", "news-list", options={"watch": ["ОДКБ"]})
    r = replay_factory(src)
    r.serve(src.id, news_page())
    assert r.check() == []
    same_title = [
        ("/events/minsk-1", "Session in Minsk", "The ОДКБ Council discussed the budget."),
        ("/events/minsk-2", "Session in Minsk", "The city council discussed the parks."),
    ]
    r.serve(src.id, news_page(same_title + NEWS))
    assert r.check() == [Ev("news", None, "item", None, "Session in Minsk")]
    (event,) = [e for e in r.store.events() if e["kind"] == "news"]
    assert event["url"] == r.server.url("/events/minsk-1")


def test_news_event_url_is_the_items_own_page(replay_factory: Any) -> None:
    src = Src("events", "news-list")
    r = replay_factory(src)
    r.serve(src.id, news_page(ITEMS[:1]))
    assert r.check() == []
    r.serve(src.id, news_page(ITEMS[:2]))
    assert r.check() == [Ev("news", None, "item", None, "Item 2")]
    assert [e["url"] for e in r.store.events()] == [r.server.url("/events/item-2")]


PAGE_SRC = Src("about", "page", options={"select": "#about"})
FOUR = "About the Assembly\nThe Assembly has four standing commissions."
FIVE = "About the Assembly\nThe Assembly has five standing commissions."


def page_text_changed(replay_factory: Any) -> dict[str, Any]:
    """Replay a text page: a change outside the selection, then one inside; the event."""
    r = replay_factory(PAGE_SRC)
    r.serve(PAGE_SRC.id, plain_page(visitors=1))
    assert r.check() == []
    r.serve(PAGE_SRC.id, plain_page(visitors=2))  # outside the selection
    assert r.check() == []
    r.serve(PAGE_SRC.id, plain_page("The Assembly has five standing commissions.", visitors=3))
    assert r.check() == [Ev("page_changed", None, "text", text_digest(FOUR), text_digest(FIVE))]
    event: dict[str, Any] = r.store.events()[-1]
    return event


def test_page_source_reports_text_changes(replay_factory: Any) -> None:
    event = page_text_changed(replay_factory)
    assert event["kind"] == "page_changed"


def test_page_changed_event_carries_a_text_diff(replay_factory: Any) -> None:
    diff = json.loads(page_text_changed(replay_factory)["details"])["diff"]
    assert "-The Assembly has four standing commissions." in diff
    assert "+The Assembly has five standing commissions." in diff


# --- many unchanged checks -----------------------------------------------------------------

ALL_PARSERS = [
    BLOCK,
    COUNTRY,
    ROSTER_SRC,
    Src("events", "news-list"),
    PAGE_SRC,
]


def unchanged_body(source_id: str, n: int) -> str:
    """Version ``n`` of a source's page: the facts never change, the bytes sometimes do."""
    stamp = f"<!-- rendered at check {n // 7} -->" if n % 3 else ""
    if source_id == BLOCK.id:
        return block_page(stamp=stamp)
    if source_id == COUNTRY.id:
        return country_page(stamp=stamp)
    if source_id == ROSTER_SRC.id:
        return roster_page(stamp=stamp)
    if source_id == "events":
        return news_page(stamp=stamp)
    return plain_page(visitors=n // 5)  # only the footer outside the selection changes


@pytest.mark.slow
def test_unchanged_pages_replayed_1000_times_report_no_changes(replay_factory: Any) -> None:
    r = replay_factory(*ALL_PARSERS)
    assert {s.parser for s in ALL_PARSERS} == set(PARSERS)

    async def replay() -> None:  # check_sources is what run_once runs, in one event loop
        for n in range(1000):
            for src in ALL_PARSERS:
                r.serve(src.id, unchanged_body(src.id, n))  # no ETag: every check downloads
            await check_sources(r.settings, r.settings.sources, r.store)

    asyncio.run(replay())
    assert r.store.events() == []
    outcomes = dict(r.rows("SELECT outcome, COUNT(*) FROM fetch_log GROUP BY outcome"))
    assert sum(outcomes.values()) == 1000 * len(ALL_PARSERS)
    assert outcomes["new"] == len(ALL_PARSERS) and outcomes["changed"] > 1000
    assert outcomes.get("failed", 0) == 0
    assert r.one("SELECT COUNT(*) FROM facts WHERE ended_at IS NOT NULL") == 0
    statuses = r.rows("SELECT DISTINCT parse_status FROM fetch_log WHERE parse_status IS NOT NULL")
    assert statuses == [("ok",)]
    latest = r.one("SELECT MAX(id) FROM snapshots")
    assert r.one("SELECT MAX(last_snapshot) FROM facts") == latest


# --- parser versions, crashes --------------------------------------------------------------


def test_parser_version_change_rederives_facts_silently(
    replay_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    r.serve(BLOCK.id, block_page(house=8))
    assert len(r.check()) == 2  # a real change under parser v1
    spec = PARSERS["delegations"]

    def v2(html: str, url: str, options: Any) -> ParseResult:
        """Version 2 reads representatives' names in capitals: not a change in the world."""
        result = spec.func(html, url, options)
        for record in result.records:
            if isinstance(record, DelegationRecord) and record.plenipotentiary:
                record.plenipotentiary = record.plenipotentiary.upper()
        return result

    monkeypatch.setitem(
        PARSERS, "delegations", dataclasses.replace(spec, version=spec.version + 1, func=v2)
    )
    assert r.check() == []
    assert r.rows("SELECT DISTINCT parser_version FROM facts") == [(spec.version + 1,)]
    assert r.one("SELECT parser_version FROM source_state") == spec.version + 1
    current = "SELECT name FROM representatives WHERE delegation = 'BY' AND valid_to IS NULL"
    assert r.one(current) == "VIKTOR KOGUT"
    history = r.rows(
        "SELECT seats FROM composition_history WHERE delegation = 'BY' "
        "AND chamber = 'house-of-representatives' ORDER BY first_snapshot"
    )
    assert history == [(7,), (8,)]  # the history is re-read, not flattened
    r.serve(BLOCK.id, block_page(house=8, ru_rep="Sergey Example"))
    assert r.check() == [
        Ev("representative", "RU", "plenipotentiary", "MIKHAIL KROTOV", "SERGEY EXAMPLE")
    ]


def test_parser_version_change_while_a_member_list_is_collapsed(
    replay_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-deriving must not turn a collapsed (broken) list into facts: no mass re-adds."""
    r = replay_factory(ROSTER_SRC)
    r.serve(ROSTER_SRC.id, roster_page())
    assert r.check() == []
    facts = {f[1:] for f in r.open_facts(ROSTER_SRC.id)}
    r.serve(ROSTER_SRC.id, roster_page(ROSTER[:2]))
    assert [e.kind for e in r.check()] == ["parse_broken"]
    spec = PARSERS["roster"]
    monkeypatch.setitem(PARSERS, "roster", dataclasses.replace(spec, version=spec.version + 1))
    assert r.check() == []
    assert {f[1:] for f in r.open_facts(ROSTER_SRC.id)} == facts
    assert r.one("SELECT health FROM source_health") == "broken"
    r.serve(ROSTER_SRC.id, roster_page())
    assert [e.kind for e in r.check()] == ["parse_recovered"]


def test_crash_mid_check_leaves_facts_and_events_unchanged(
    replay_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    tables = ("facts", "events", "fetch_log", "snapshots", "bodies", "source_state")
    before = {t: r.rows(f"SELECT * FROM {t} ORDER BY rowid") for t in tables}

    def boom(*args: object, **kwargs: object) -> Any:
        raise RuntimeError("disk on fire")

    # diff_facts runs after the facts were closed and opened, inside the check's transaction
    monkeypatch.setattr(facts_module, "diff_facts", boom)
    r.serve(BLOCK.id, block_page(house=8))
    with pytest.raises(StorageError, match="disk on fire"):
        run_once(r.settings, r.settings.sources, r.store)
    assert {t: r.rows(f"SELECT * FROM {t} ORDER BY rowid") for t in tables} == before
    assert not r.store.db.conn.in_transaction
    monkeypatch.undo()
    assert r.check() == [
        Ev("composition", "BY", "seats:house-of-representatives", "7", "8"),
        Ev("composition", "BY", "seats:total", "11", "12"),
    ]


def bump_parser(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """A new version of parser ``name`` (same code): the next run re-derives its facts."""
    spec = PARSERS[name]
    monkeypatch.setitem(PARSERS, name, dataclasses.replace(spec, version=spec.version + 1))


def test_reparse_keeps_a_change_awaiting_confirmation(
    replay_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = dataclasses.replace(BLOCK, keys={"confirm": 2})
    r = replay_factory(src)
    r.serve(src.id, block_page())
    assert r.check() == []
    first_a = r.one("SELECT MAX(id) FROM snapshots")
    r.serve(src.id, block_page(ru_rep="Sergey Example"))
    assert r.check() == []  # seen once: not yet
    first_b = r.one("SELECT MAX(id) FROM snapshots")
    bump_parser(monkeypatch, "delegations")
    # re-derived first, then this check sees B a second time: confirmed, reported once
    assert r.check() == [
        Ev("representative", "RU", "plenipotentiary", "Mikhail Krotov", "Sergey Example")
    ]
    (event,) = [e for e in r.store.events() if e["kind"] == "representative"]
    assert (event["before_snapshot"], event["after_snapshot"]) == (first_a, first_b)
    periods = r.rows(
        "SELECT name, first_snapshot, end_snapshot FROM representatives "
        "WHERE delegation = 'RU' ORDER BY first_snapshot"
    )
    assert periods == [("Mikhail Krotov", first_a, first_b), ("Sergey Example", first_b, None)]
    assert r.check() == []


def test_reparse_does_not_turn_unconfirmed_flips_into_history(
    replay_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = dataclasses.replace(BLOCK, keys={"confirm": 2})
    r = replay_factory(src)
    a, b = block_page(), block_page(ru_rep="Sergey Example")
    for page in (a, b, a, b, a):
        r.serve(src.id, page)
        assert r.check() == []
    bump_parser(monkeypatch, "delegations")
    assert r.check() == []
    assert r.one("SELECT COUNT(*) FROM facts WHERE ended_at IS NOT NULL") == 0
    assert r.rows("SELECT name FROM representatives WHERE delegation = 'RU'") == [
        ("Mikhail Krotov",)
    ]
    assert r.one("SELECT candidate FROM source_state") is None
    r.serve(src.id, b)  # and a change afterwards still needs its two sightings
    assert r.check() == []
    assert [e.kind for e in r.check()] == ["representative"]
