"""The delegation is the unit: replays through the real pipeline (pages served by a real
HTTP server on 127.0.0.1, ``run_once``, a real SQLite file).

- one change shown by three sources is one delegation-level change with three witnesses and
  one alert in the outbox; a source showing it a day later joins it, without a second alert;
- sources that disagree (the English block 7 + 4, the Russian block 6 + 3) are one
  ``sources_disagree`` finding and a ``disagreements`` row, and ``sources_agree`` when over;
- identity, not spelling: a respelled representative (same name key) and a website moving to
  https (same URL key) raise nothing; a part of a page that cannot be read holds its facts
  and makes the parse ``degraded``, never a composition change.

The parsers give plenipotentiaries and websites their identity keys in a parallel change; the
tests that need them wrap the real ``delegations`` parser so that its facts carry them (name
key of the person, URL without its scheme), and so that a sentence naming an unknown chamber
is reported ``unreadable``, as the parser contract (``ParseResult.unreadable``) says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner
from test_replay import (
    BLOCK,
    COUNTRY,
    KG_MEMBERS,
    ROSTER,
    ROSTER_SRC,
    RU_ROLE,
    Ev,
    Src,
    block_page,
    country_page,
    roster_page,
)
from test_replay import replay_factory as replay_factory  # the fixture

from pawatch.cli import cli
from pawatch.domain import Fact
from pawatch.pipeline import run_once
from pawatch.scraper.parsers.names import name_key
from pawatch.storage.queries import delegation_changes, delegation_now

RU_BLOCK = Src("paodkb-home", "delegations")
MIRROR = Src("pacsto-mirror", "delegations")  # the English block on the Assembly's other site


def ru_block_page(*, house: int = 7, council: int = 4, kg: int = 7, stamp: str = "") -> str:
    """The Assembly's Russian sidebar of national delegations."""
    items = [
        "Делегация Национального собрания Республики Беларусь в ПА ОДКБ представлена "
        f"{house} депутатами Палаты представителей Национального собрания Республики Беларусь "
        f"и {council} членами Совета Республики Национального собрания Республики Беларусь.<br>"
        "Полномочный представитель Национального собрания Республики Беларусь: Когут Виктор",
        f"Делегация Жогорку Кенеша Кыргызской Республики в ПА ОДКБ представлена {kg} "
        "депутатами.<br>Полномочный представитель Жогорку Кенеша Кыргызской Республики: "
        "Алишев Шабданбек",
    ]
    body = "".join(f"<li>{item}</li>" for item in items)
    return (
        '<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>ПА ОДКБ</title>'
        f'</head><body>{stamp}<div id="sidebar"><div class="bx-block delegations"><ul>{body}'
        "</ul></div></div></body></html>"
    )


def kg_country(seats: int) -> str:
    return country_page().replace("consists of 7 deputies", f"consists of {seats} deputies")


def kg_block(seats: int, **kw: Any) -> str:
    return block_page(**kw).replace(
        "Kyrgyz Republic to the CSTO PA consists of 7 deputies",
        f"Kyrgyz Republic to the CSTO PA consists of {seats} deputies",
    )


def outbox_all(r: Any) -> list[int]:
    return [e for (e,) in r.rows("SELECT event_id FROM outbox WHERE channel = 'all' ORDER BY 1")]


# --- one change, many witnesses ------------------------------------------------------------


def test_one_change_on_three_sources_is_one_item_and_one_alert_a_late_source_joins_it(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK, RU_BLOCK, MIRROR)
    r.serve(BLOCK.id, kg_block(7))
    r.serve(RU_BLOCK.id, ru_block_page(kg=7))
    r.serve(MIRROR.id, kg_block(7))
    assert r.check() == [] and r.findings == []
    before = set(outbox_all(r))

    # the English block, the Russian block and the mirror all say 8, in one run
    r.serve(BLOCK.id, kg_block(8))
    r.serve(RU_BLOCK.id, ru_block_page(kg=8))
    r.serve(MIRROR.id, kg_block(8))
    change = Ev("composition", "KG", "seats:supreme-council", "7", "8")
    assert r.check() == [change] * 3  # the evidence: one event per source
    assert r.findings == []  # all sources read before comparing: no disagreement in between
    (item,) = [c for c in delegation_changes(r.store.db) if c.kind == "composition"]
    assert (item.delegation, item.attribute, item.old, item.new) == ("KG", *change[2:])
    assert sorted(w.source for w in item.sources) == sorted([BLOCK.id, RU_BLOCK.id, MIRROR.id])
    for w in item.sources:
        assert w.before_snapshot is not None and w.after_snapshot is not None
        owner = r.one("SELECT source_id FROM snapshots WHERE id = ?", w.after_snapshot)
        assert owner == w.source and w.url and w.url.endswith(f"/{w.source}")
    alerts = [e for e in outbox_all(r) if e not in before]
    assert alerts == [item.id]  # one alert, for the change's first event

    # the JSON of `pawatch changes`: one object, with the three sources
    out = CliRunner().invoke(
        cli, ["--db", str(r.settings.storage.path), "changes", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    (obj,) = [o for o in json.loads(out.output) if o["kind"] == "composition"]
    assert obj["id"] == item.id and obj["source"] == item.source
    assert len(obj["sources"]) == 3 and obj["sources"][0]["source"] == obj["source"]
    text = CliRunner().invoke(cli, ["--db", str(r.settings.storage.path), "changes"]).output
    assert "seen on 3 sources" in text


def test_a_source_reporting_the_same_change_a_day_later_joins_it_without_a_second_alert(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK, RU_BLOCK)
    r.serve(BLOCK.id, kg_block(7))
    r.serve(RU_BLOCK.id, ru_block_page(kg=7))
    assert r.check() == []
    r.serve(BLOCK.id, kg_block(8))  # the English block is updated first ...
    change = Ev("composition", "KG", "seats:supreme-council", "7", "8")
    assert r.check() == [change]
    assert r.findings == [
        Ev(
            "sources_disagree",
            "KG",
            "seats",
            None,
            "pacsto-home: supreme-council 8, total 8; paodkb-home: supreme-council 7, total 7",
        )
    ]
    r.serve(RU_BLOCK.id, ru_block_page(kg=8))  # ... the Russian one the next day
    assert r.check() == [change]
    assert [f.kind for f in r.findings] == ["sources_disagree", "sources_agree"]
    (item,) = [c for c in delegation_changes(r.store.db) if c.kind == "composition"]
    assert [w.source for w in item.sources] == [BLOCK.id, RU_BLOCK.id]
    joined = item.sources[1]
    assert joined.event_id != item.id and joined.detected_at >= item.detected_at
    assert item.id in outbox_all(r) and joined.event_id not in outbox_all(r)
    alerts = r.rows(
        "SELECT e.kind, COUNT(*) FROM outbox o JOIN events e ON e.id = o.event_id "
        "WHERE o.channel = 'all' GROUP BY e.kind ORDER BY 1"
    )
    assert alerts == [("composition", 1), ("sources_agree", 1), ("sources_disagree", 1)]
    # selecting by the joined event's id gives the whole change (what a report reads)
    (same,) = delegation_changes(r.store.db, ids=[joined.event_id])
    assert same.id == item.id and len(same.sources) == 2

    # the value going back and forth again is a new change each time, not a join
    for seats in (7, 8):
        r.serve(BLOCK.id, kg_block(seats))
        r.serve(RU_BLOCK.id, ru_block_page(kg=seats))
        r.check()
    items = [c for c in delegation_changes(r.store.db) if c.kind == "composition"]
    assert [(c.old, c.new, len(c.sources)) for c in items] == [
        ("7", "8", 2),
        ("8", "7", 2),
        ("7", "8", 2),
    ]


# --- sources that disagree -----------------------------------------------------------------


def test_english_and_russian_blocks_that_disagree_are_one_finding_until_they_agree(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK, RU_BLOCK)
    r.serve(BLOCK.id, block_page())  # Belarus 7 + 4
    r.serve(RU_BLOCK.id, ru_block_page(house=6, council=3))  # Belarus 6 + 3
    assert r.check() == []
    assert r.findings == [
        Ev(
            "sources_disagree",
            "BY",
            "seats",
            None,
            "pacsto-home: council-of-the-republic 4, house-of-representatives 7, total 11; "
            "paodkb-home: council-of-the-republic 3, house-of-representatives 6, total 9",
        )
    ]
    (row,) = r.rows("SELECT delegation, attribute, kind, source_id FROM disagreements")
    assert row == ("BY", "seats", "sources", None)
    now = {n.attribute: n for n in delegation_now(r.store.db, "BY")}
    assert now["seats:total"].disagree and now["seats:total"].value is None
    assert sorted(now["seats:total"].competing) == ["11", "9"]
    assert {s["source"] for s in now["seats:total"].sources} == {BLOCK.id, RU_BLOCK.id}
    # KG agrees (7 on both): one value, both sources, each with when it last confirmed it
    kg = {n.attribute: n for n in delegation_now(r.store.db, "KG")}
    assert kg["seats:total"].value == "7" and not kg["seats:total"].disagree
    assert {s["source"] for s in kg["seats:total"].sources} == {BLOCK.id, RU_BLOCK.id}
    assert all(s["last_confirmed"] for s in kg["seats:total"].sources)

    # still disagreeing on the next run: nothing new
    r.serve(BLOCK.id, block_page(stamp="<!-- again -->"))
    assert r.check() == [] and len(r.findings) == 1

    history = CliRunner().invoke(
        cli, ["--db", str(r.settings.storage.path), "history", "BY", "--format", "json"]
    )
    data = json.loads(history.output)
    assert [d["attribute"] for d in data["disagreements"]] == ["seats"]
    assert any(n["attribute"] == "seats:total" and n["disagree"] for n in data["now"])
    assert "sources_disagree" in [t["kind"] for t in data["timeline"]]
    text = CliRunner().invoke(cli, ["--db", str(r.settings.storage.path), "history", "BY"]).output
    assert text.index("SOURCES DISAGREE") < text.index("per source")

    r.serve(RU_BLOCK.id, ru_block_page(house=7, council=4))  # the Russian block is fixed
    changes = r.check()
    assert [e.kind for e in changes] == ["composition"] * 3  # its own change, as evidence
    assert r.findings[1:] == [
        Ev(
            "sources_agree",
            "BY",
            "seats",
            "pacsto-home: council-of-the-republic 4, house-of-representatives 7, total 11; "
            "paodkb-home: council-of-the-republic 3, house-of-representatives 6, total 9",
            "council-of-the-republic 4, house-of-representatives 7, total 11",
        )
    ]
    assert r.rows("SELECT * FROM disagreements") == []
    assert r.one("SELECT COUNT(*) FROM disagreement_log WHERE ended_at IS NOT NULL") == 1


def test_a_page_stating_a_count_and_listing_other_names_is_a_finding(replay_factory: Any) -> None:
    r = replay_factory(COUNTRY)
    r.serve(COUNTRY.id, kg_country(8))  # "consists of 8 deputies", 7 names listed
    assert r.check() == []
    assert r.findings == [Ev("sources_disagree", "KG", "members", None, "stated: 8; listed: 7")]
    (row,) = r.rows("SELECT attribute, kind, source_id FROM disagreements")
    assert row == ("members", "stated_vs_listed", COUNTRY.id)
    r.serve(COUNTRY.id, kg_country(7))
    assert [e.kind for e in r.check()] == ["composition"]
    assert r.findings[1:] == [Ev("sources_agree", "KG", "members", "stated: 8; listed: 7", "7")]


# --- disagreements between check times (the daemon's staggered schedules) -------------------


def check_only(r: Any, *source_ids: str) -> list[Ev]:
    """One run of only these sources (what a daemon batch does when their schedule fires)."""
    run_once(r.settings, [s for s in r.settings.sources if s.id in source_ids], r.store)
    return [
        Ev(row["kind"], row["delegation"], row["attribute"], row["old"], row["new"])
        for row in r.new_rows()
    ]


def findings_in_outbox(r: Any) -> list[str]:
    return [
        kind
        for (kind,) in r.rows(
            "SELECT e.kind FROM outbox o JOIN events e ON e.id = o.event_id "
            "WHERE o.channel = 'all' AND e.kind IN ('sources_disagree', 'sources_agree') "
            "ORDER BY e.id"
        )
    ]


KG_SEATS = "pacsto-home: supreme-council 8, total 8; paodkb-home: supreme-council 7, total 7"


def test_a_change_reaching_the_sources_at_different_check_times_is_no_disagreement(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK, RU_BLOCK)
    r.serve(BLOCK.id, kg_block(7))
    r.serve(RU_BLOCK.id, ru_block_page(kg=7))
    assert r.check() == []
    change = Ev("composition", "KG", "seats:supreme-council", "7", "8")

    # 10:00: the English block's schedule fires; it shows the change, the Russian one was
    # last read before it
    r.serve(BLOCK.id, kg_block(8))
    r.serve(RU_BLOCK.id, ru_block_page(kg=8))  # (already changed, not read yet)
    assert check_only(r, BLOCK.id) == [change]
    assert r.findings == []  # pending, not a finding
    assert r.rows("SELECT * FROM disagreements") == []
    (pending,) = r.rows("SELECT delegation, attribute, kind, awaiting FROM pending_disagreements")
    assert pending == ("KG", "seats", "sources", json.dumps([RU_BLOCK.id]))
    assert findings_in_outbox(r) == []
    # the English block read again: still waiting for the Russian one
    assert check_only(r, BLOCK.id) == [] and r.findings == []

    # 16:00: the Russian block's schedule fires and shows the same change: it joins it
    assert check_only(r, RU_BLOCK.id) == [change]
    assert r.findings == []  # no sources_disagree, no sources_agree: nothing at all
    assert findings_in_outbox(r) == []
    assert r.rows("SELECT * FROM pending_disagreements") == []
    ended = r.rows("SELECT event_id, end_event, ended_at IS NOT NULL FROM disagreement_log")
    assert ended == [(None, None, 1)]  # kept as the record of a pending one, ended silently
    (item,) = [c for c in delegation_changes(r.store.db) if c.kind == "composition"]
    assert [w.source for w in item.sources] == [BLOCK.id, RU_BLOCK.id]


def test_a_disagreement_that_survives_a_check_of_every_source_is_one_finding(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK, RU_BLOCK)
    r.serve(BLOCK.id, kg_block(7))
    r.serve(RU_BLOCK.id, ru_block_page(kg=7))
    assert r.check() == []
    r.serve(BLOCK.id, kg_block(8))
    assert check_only(r, BLOCK.id) == [Ev("composition", "KG", "seats:supreme-council", "7", "8")]
    assert r.findings == []
    since = r.one("SELECT since FROM pending_disagreements")
    db = str(r.settings.storage.path)
    data = json.loads(
        CliRunner().invoke(cli, ["--db", db, "history", "KG", "--format", "json"]).output
    )
    assert data["disagreements"] == []
    (shown,) = data["pending_disagreements"]
    assert (shown["attribute"], shown["awaiting"], shown["since"]) == (
        "seats",
        [RU_BLOCK.id],
        since,
    )
    text = CliRunner().invoke(cli, ["--db", db, "history", "KG"]).output
    assert f"? seats: sources differ, pending a check of {RU_BLOCK.id}" in text

    # the Russian block's check fails: it has not been read since, still pending
    r.fail(RU_BLOCK.id)
    assert check_only(r, RU_BLOCK.id) == [] and r.findings == []
    assert r.one("SELECT awaiting FROM pending_disagreements") == json.dumps([RU_BLOCK.id])

    # read later, it still says 7: now a finding, once
    r.serve(RU_BLOCK.id, ru_block_page(kg=7))
    assert check_only(r, RU_BLOCK.id) == []
    assert r.findings == [Ev("sources_disagree", "KG", "seats", None, KG_SEATS)]
    assert findings_in_outbox(r) == ["sources_disagree"]
    (row,) = r.rows("SELECT delegation, attribute, since FROM disagreements")
    assert row == ("KG", "seats", since)  # since: when it was first seen
    assert r.rows("SELECT * FROM pending_disagreements") == []
    details = json.loads(r.one("SELECT details FROM events WHERE kind = 'sources_disagree'"))
    assert details["since"] == since
    assert check_only(r, BLOCK.id) == [] and check_only(r, RU_BLOCK.id) == []
    assert len(r.findings) == 1  # nothing new while it lasts

    # it ends when the Russian block shows 8 too: sources_agree
    r.serve(RU_BLOCK.id, ru_block_page(kg=8))
    check_only(r, RU_BLOCK.id)
    assert [f.kind for f in r.findings] == ["sources_disagree", "sources_agree"]
    assert findings_in_outbox(r) == ["sources_disagree", "sources_agree"]


def test_a_disagreement_found_when_every_source_was_checked_in_one_run_is_a_finding_at_once(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK, RU_BLOCK)
    r.serve(BLOCK.id, kg_block(7))
    r.serve(RU_BLOCK.id, ru_block_page(kg=7))
    assert r.check() == []
    r.serve(BLOCK.id, kg_block(8))
    assert r.check() == [Ev("composition", "KG", "seats:supreme-council", "7", "8")]
    assert r.findings == [Ev("sources_disagree", "KG", "seats", None, KG_SEATS)]
    assert findings_in_outbox(r) == ["sources_disagree"]
    assert r.rows("SELECT * FROM pending_disagreements") == []
    # the same with only the two sources involved in a run of their own
    r.serve(BLOCK.id, kg_block(7))
    check_only(r, BLOCK.id, RU_BLOCK.id)
    r.serve(BLOCK.id, kg_block(8))
    check_only(r, BLOCK.id, RU_BLOCK.id)
    kinds = [f.kind for f in r.findings]
    assert kinds == ["sources_disagree", "sources_agree", "sources_disagree"]


# --- identity, not spelling ----------------------------------------------------------------


@dataclass
class _Facts:
    """A record that states given facts (what a parser's records do)."""

    items: list[Fact]

    def facts(self) -> list[Fact]:
        return self.items


UNKNOWN_CHAMBER = (
    "12 members of the Upper Chamber of the Federal Assembly of the Russian Federation"
)


def test_a_respelled_representative_is_no_change_a_new_one_is(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    page = (
        block_page()
        .replace(": Viktor Kogut", ": KOGUT Viktor")
        .replace(": Mikhail Krotov", ": Krotov Mikhail")
    )
    r.serve(BLOCK.id, page)
    assert r.check() == []  # the same people, respelled
    names = r.rows("SELECT delegation, name FROM representatives WHERE valid_to IS NULL ORDER BY 1")
    assert ("BY", "KOGUT Viktor") in names and ("RU", "Krotov Mikhail") in names
    r.serve(BLOCK.id, page.replace(": Krotov Mikhail", ": Sergey Example"))
    assert r.check() == [
        Ev("representative", "RU", "plenipotentiary", "Krotov Mikhail", "Sergey Example")
    ]


def test_a_website_moving_to_https_is_no_change(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    r.serve(BLOCK.id, block_page().replace("http://house.gov.by/en/", "https://house.gov.by/en/"))
    assert r.check() == []
    shown = r.one(
        "SELECT value FROM facts WHERE attribute = 'website' AND key = 'house.gov.by/en' "
        "AND ended_at IS NULL"
    )
    assert shown == "https://house.gov.by/en/"  # the shown URL follows the page
    r.serve(BLOCK.id, block_page(by_site=False))
    assert [e.kind for e in r.check()] == ["website_removed"]


def test_an_unreadable_chamber_holds_the_facts_and_degrades_the_parse(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    seats = r.rows(
        "SELECT attribute, value FROM facts WHERE subject = 'delegation:RU' "
        "AND attribute LIKE 'seats:%' AND ended_at IS NULL ORDER BY 1"
    )
    page = block_page().replace(
        "12 members of the Federation Council of the Russian Federation", UNKNOWN_CHAMBER
    )
    r.serve(BLOCK.id, page)
    summary = r.check()
    assert summary == []  # no composition event, no new chamber
    held = r.rows(
        "SELECT attribute, value FROM facts WHERE subject = 'delegation:RU' "
        "AND attribute LIKE 'seats:%' AND ended_at IS NULL ORDER BY 1"
    )
    assert held == seats and ("seats:federation-council", "12") in held
    health = r.rows("SELECT health, parse_status, parse_error FROM source_health")
    assert (
        health[0][:2] == ("degraded", "degraded")
        and "12 members of the Upper Chamber" in health[0][2]
    )
    assert r.one("SELECT parse_status FROM fetch_log ORDER BY id DESC LIMIT 1") == "degraded"
    status = CliRunner().invoke(cli, ["--db", str(r.settings.storage.path), "status"])
    assert "degraded" in status.output and "12 members of the Upper Chamber" in status.output
    # a change elsewhere on the degraded page is still a change
    r.serve(BLOCK.id, page.replace(": Mikhail Krotov", ": Sergey Example"))
    assert r.check() == [
        Ev("representative", "RU", "plenipotentiary", "Mikhail Krotov", "Sergey Example")
    ]
    # readable again: ok, the same seats, no event
    r.serve(BLOCK.id, block_page(ru_rep="Sergey Example"))
    assert r.check() == []
    assert r.one("SELECT health FROM source_health") == "ok"


# --- people by identity: one period per person, one person across sources ----------------


def cli_out(r: Any, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", str(r.settings.storage.path), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_respelled_representative_is_one_period_with_both_spellings(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    began = r.one(
        "SELECT first_seen FROM facts WHERE attribute = 'plenipotentiary' AND value = ?",
        "Mikhail Krotov",
    )
    r.serve(BLOCK.id, block_page(ru_rep="Krotov Mikhail"))
    assert r.check() == []  # the same person, respelled
    assert (
        r.one(
            "SELECT COUNT(*) FROM facts WHERE subject = 'delegation:RU' "
            "AND attribute = 'plenipotentiary'"
        )
        == 2
    )  # the evidence: two spellings
    reps = (
        "SELECT name, role, valid_from, valid_to, other_names FROM representatives "
        "WHERE delegation = 'RU' ORDER BY valid_to IS NULL, valid_from"
    )
    assert r.rows(reps) == [("Krotov Mikhail", RU_ROLE, began, None, '["Mikhail Krotov"]')]

    # the respelling is a note in history, never an event (nothing in the outbox)
    assert r.one("SELECT COUNT(*) FROM events") == 0 and r.one("SELECT COUNT(*) FROM outbox") == 0
    (note,) = r.rows(
        "SELECT source_id, attribute, old, new, before_snapshot < after_snapshot "
        "FROM respellings WHERE delegation = 'RU'"
    )
    assert note == (BLOCK.id, "plenipotentiary", "Mikhail Krotov", "Krotov Mikhail", 1)
    text = cli_out(r, "history", "RU")
    timeline = text[text.index("Timeline:") :]
    assert (
        "spelling (note): RU plenipotentiary Mikhail Krotov -> Krotov Mikhail (pacsto-home)"
        in timeline
        and "(no changes recorded)" not in timeline
    )
    data = json.loads(cli_out(r, "history", "RU", "--format", "json"))
    assert [(n["old"], n["new"]) for n in data["spelling_notes"]] == [
        ("Mikhail Krotov", "Krotov Mikhail")
    ]
    assert data["timeline"] == [] and "spelling" not in cli_out(r, "changes")

    r.serve(BLOCK.id, block_page(ru_rep="Sergey Example"))
    assert r.check() == [
        Ev("representative", "RU", "plenipotentiary", "Krotov Mikhail", "Sergey Example")
    ]
    assert r.one("SELECT COUNT(*) FROM respellings") == 1  # a new person is no respelling
    (krotov, example) = r.rows(reps)
    # (the role is not compared: every check of this test falls in one second of time)
    assert (krotov[0], krotov[2], krotov[4]) == ("Krotov Mikhail", began, '["Mikhail Krotov"]')
    assert krotov[3] == example[2] and example[3] is None and example[4] == "[]"

    # the Popolo export: one person, one membership (ended), both spellings
    popolo = json.loads(cli_out(r, "export", "--format", "popolo", "--delegation", "RU"))
    (person,) = [p for p in popolo["persons"] if p["id"] == "person/krotov-mihail"]
    assert person["name"] == "Krotov Mikhail"
    assert person["other_names"] == [{"name": "Mikhail Krotov"}]
    (membership,) = [m for m in popolo["memberships"] if m["person_id"] == person["id"]]
    assert membership["start_date"] == began[:10] and membership["end_date"] == krotov[3][:10]
    rows = json.loads(cli_out(r, "export", "--delegation", "RU"))["memberships"]
    assert [(m["name"], m["other_names"]) for m in rows if m["role"] == "plenipotentiary"] == [
        ("Krotov Mikhail", ["Mikhail Krotov"]),
        ("Sergey Example", []),
    ]


def test_one_person_in_latin_and_cyrillic_on_two_sites_is_one_person(
    replay_factory: Any,
) -> None:
    r = replay_factory(BLOCK, RU_BLOCK, COUNTRY, ROSTER_SRC)
    r.serve(BLOCK.id, block_page())  # Viktor Kogut
    r.serve(RU_BLOCK.id, ru_block_page())  # Когут Виктор
    r.serve(COUNTRY.id, country_page())  # Daniyar Testov, Elmira Mockova, Bakyt Demo ...
    r.serve(ROSTER_SRC.id, roster_page())  # Тестов Данияр, Мокова Эльмира, Демо Бакыт ...
    assert r.check() == [] and r.findings == []

    key = name_key("Viktor Kogut")
    reps = r.rows(
        "SELECT source_id, name, name_key, other_names FROM representatives "
        "WHERE delegation = 'BY' ORDER BY source_id"
    )
    assert reps == [
        (BLOCK.id, "Viktor Kogut", key, '["Когут Виктор"]'),
        (RU_BLOCK.id, "Когут Виктор", key, '["Viktor Kogut"]'),
    ]
    (rep,) = [n for n in delegation_now(r.store.db, "BY") if n.attribute == "plenipotentiary"]
    assert not rep.disagree and rep.spellings == ["Viktor Kogut", "Когут Виктор"]

    # members: one row per person across the English page and the Cyrillic roster
    both = {
        name_key(n): {n, c}
        for n, c in [
            ("Daniyar Testov", "Тестов Данияр"),
            ("Elmira Mockova", "Мокова Эльмира"),
            ("Bakyt Demo", "Демо Бакыт"),
        ]
    }
    now = r.rows(
        "SELECT name_key, source_count, spellings, name FROM delegation_members_now "
        "WHERE delegation = 'KG'"
    )
    assert len(now) == len(KG_MEMBERS) + len(ROSTER) - len(both)
    for k, spellings in both.items():
        (row,) = [n for n in now if n[0] == k]
        assert row[1] == 2 and set(json.loads(row[2])) == spellings and row[3] in spellings
    members = r.rows(
        "SELECT source_id, other_names FROM members WHERE name_key = ?", name_key("Daniyar Testov")
    )
    assert sorted(members) == [
        (ROSTER_SRC.id, '["Daniyar Testov"]'),
        (COUNTRY.id, '["Тестов Данияр"]'),
    ]

    # history: the person once, with both spellings
    text = cli_out(r, "history", "BY")
    assert "plenipotentiary: Viktor Kogut (also Когут Виктор)" in text or (
        "plenipotentiary: Когут Виктор (also Viktor Kogut)" in text
    )
    text = cli_out(r, "history", "KG")
    line = next(x for x in text.splitlines() if x.startswith("  members ("))
    assert line.startswith(f"  members ({len(now)} people): ")
    assert "Тестов Данияр" in line and "Daniyar Testov" in line and line.count("(also ") == 3
    data = json.loads(cli_out(r, "history", "KG", "--format", "json"))
    (testov,) = [m for m in data["members_now"] if m["name_key"] == name_key("Daniyar Testov")]
    assert set(testov["spellings"]) == both[name_key("Daniyar Testov")]
    assert [s["source"] for s in testov["sources"]] == [ROSTER_SRC.id, COUNTRY.id]

    # the Popolo export: one person per name key, every spelling kept, one membership
    # per source
    popolo = json.loads(cli_out(r, "export", "--format", "popolo"))
    (kogut,) = [p for p in popolo["persons"] if p["id"] == f"person/{key.replace(' ', '-')}"]
    assert {kogut["name"], *(o["name"] for o in kogut["other_names"])} == {
        "Viktor Kogut",
        "Когут Виктор",
    }
    assert len([m for m in popolo["memberships"] if m["person_id"] == kogut["id"]]) == 2
    testov_id = f"person/{name_key('Daniyar Testov').replace(' ', '-')}"
    (person,) = [p for p in popolo["persons"] if p["id"] == testov_id]
    assert len(person["other_names"]) == 1
    assert len([m for m in popolo["memberships"] if m["person_id"] == testov_id]) == 2
