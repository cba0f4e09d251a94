"""Querying the history: `changes`, `history --as-of`, `show`, `diff`, `export`, `reparse`,
and the views, on a database built by the real pipeline from the demo site's two versions."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pawatch.cli import cli
from pawatch.demo.run import ASSEMBLY_PAGES, NATIONAL_PAGES, demo_config, demo_servers, publish
from pawatch.pipeline import run_once
from pawatch.settings import settings_from_text
from pawatch.storage import Store, parse_time


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """The demo's database: v1 checked, then (a second later) v2. Returns the check times."""
    out = tmp_path_factory.mktemp("demo")
    db_path = out / "pawatch.db"
    stamps = []
    with demo_servers() as (assembly, national):
        settings = settings_from_text(
            demo_config(assembly.base_url, national.base_url, str(db_path))
        )
        with Store.open(db_path) as store:
            for version in ("v1", "v2"):
                publish(assembly, ASSEMBLY_PAGES, version)
                publish(national, NATIONAL_PAGES, version)
                summary = run_once(settings, settings.enabled_sources, store)
                assert summary.exit_code == 0, summary.as_json()
                stamps.append(summary.as_json()["finished_at"])
                time.sleep(1.1)  # stored times have one-second resolution
    yield db_path, stamps


def invoke(db: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


FIELDS = [
    "id",
    "kind",
    "detected_at",
    "delegation",
    "source",
    "attribute",
    "old",
    "new",
    "url",
    "before_snapshot",
    "after_snapshot",
    "details",
]


def test_changes_json_is_one_object_per_delegation_level_change(
    demo_db: tuple[Path, list[str]],
) -> None:
    db, _ = demo_db
    items = json.loads(invoke(db, "changes", "--format", "json"))
    per_source = json.loads(invoke(db, "changes", "--per-source", "--format", "json"))
    for item in items:
        assert list(item) == [*FIELDS, "change_id", "sources"]
        assert item["sources"][0]["source"] == item["source"]
        assert item["sources"][0]["detected_at"] == item["detected_at"]
        assert [list(s) for s in item["sources"]] == [
            ["source", "detected_at", "url", "before_snapshot", "after_snapshot"]
        ] * len(item["sources"])
    # Kyrgyzstan 6 -> 7 is shown by the English and Russian blocks and the country page:
    # three events (the evidence), one change
    kg = [
        i
        for i in items
        if (i["kind"], i["delegation"], i["attribute"])
        == ("composition", "KG", "seats:supreme-council")
    ]
    assert len(kg) == 1 and (kg[0]["old"], kg[0]["new"]) == ("6", "7")
    witnesses = [
        e
        for e in per_source
        if (e["kind"], e["delegation"], e["attribute"], e["new"])
        == ("composition", "KG", "seats:supreme-council", "7")
    ]
    assert len(witnesses) >= 2
    assert sorted(s["source"] for s in kg[0]["sources"]) == sorted(e["source"] for e in witnesses)
    assert sum(len(i["sources"]) for i in items) == len(per_source)
    text = invoke(db, "changes", "--kind", "composition", "--delegation", "KG")
    assert f"seen on {len(witnesses)} sources" in text


def test_changes_json_has_the_documented_stable_fields(demo_db: tuple[Path, list[str]]) -> None:
    db, _ = demo_db
    events = json.loads(invoke(db, "changes", "--per-source", "--format", "json"))
    assert events, "the demo produces changes"
    for event in events:
        assert list(event) == [
            "id",
            "kind",
            "detected_at",
            "delegation",
            "source",
            "attribute",
            "old",
            "new",
            "url",
            "before_snapshot",
            "after_snapshot",
            "details",
        ]
        assert event["detected_at"].endswith("Z")
        parse_time(event["detected_at"])
    kinds = {(e["kind"], e["delegation"], e["attribute"], e["old"], e["new"]) for e in events}
    assert ("composition", "KG", "seats:supreme-council", "6", "7") in kinds
    assert ("representative", "TJ", "plenipotentiary", None, "Gafurzoda Abdukhalil") in kinds
    assert ("member_renamed", "KG", "member", "Elmira Mockova", "Elmira Mokova") in kinds
    assert ("website_removed", "KG", "website", "http://www.kenesh.kg/", None) in kinds
    composition = [e for e in events if e["kind"] == "composition"]
    assert all(e["before_snapshot"] < e["after_snapshot"] for e in composition)


def test_changes_filters(demo_db: tuple[Path, list[str]]) -> None:
    db, _ = demo_db
    only = json.loads(invoke(db, "changes", "--kind", "representative", "--format", "json"))
    assert {e["kind"] for e in only} == {"representative"}
    tj = json.loads(invoke(db, "changes", "--delegation", "TJ", "--format", "json"))
    assert tj and {e["delegation"] for e in tj} == {"TJ"}
    assert json.loads(invoke(db, "changes", "--since", "2999-01-01", "--format", "json")) == []
    assert json.loads(invoke(db, "changes", "--since", "7d", "--format", "json"))
    everything = json.loads(invoke(db, "changes", "--format", "json"))
    last_two = json.loads(invoke(db, "changes", "--limit", "2", "--format", "json"))
    assert last_two == everything[-2:]
    text = invoke(db, "changes", "--kind", "composition")
    assert "KG seats:supreme-council 6 -> 7" in text


def test_history_as_of_before_between_and_after(demo_db: tuple[Path, list[str]]) -> None:
    db, (first, second) = demo_db

    def seats(at: str) -> dict[str, dict[str, int]]:
        data = json.loads(invoke(db, "history", "KG", "--as-of", at, "--format", "json"))
        return {source: body["seats"] for source, body in data["sources"].items()}

    assert seats("2020-01-01") == {}
    between = seats(first)
    assert between["demo-assembly-en"]["supreme-council"] == 6
    assert between["demo-country-kg"]["total"] == 6
    after = seats(second)
    assert after["demo-assembly-en"]["supreme-council"] == 7
    now = json.loads(invoke(db, "history", "kg", "--format", "json"))
    assert now["sources"]["demo-country-kg"]["seats"]["supreme-council"] == 7
    members = [m["name"] for m in now["sources"]["demo-country-kg"]["members"]]
    assert "Farida Newcomer" in members and "Elmira Mockova" not in members
    old = json.loads(invoke(db, "history", "KG", "--as-of", first, "--format", "json"))
    assert "Elmira Mockova" in [m["name"] for m in old["sources"]["demo-country-kg"]["members"]]
    assert all(e["detected_at"] <= first for e in old["timeline"])
    text = invoke(db, "history", "TJ")
    assert "plenipotentiary: Gafurzoda Abdukhalil" in text and "Timeline:" in text


def test_history_of_an_unknown_delegation_is_a_clear_error(demo_db: tuple[Path, list[str]]) -> None:
    db, _ = demo_db
    result = CliRunner().invoke(cli, ["--db", str(db), "history", "ZZ"])
    assert result.exit_code == 2 and "no facts recorded for delegation 'ZZ'" in result.output


def test_show_and_diff_stored_pages(demo_db: tuple[Path, list[str]]) -> None:
    db, _ = demo_db
    (event,) = json.loads(invoke(db, "changes", "--kind", "representative", "--format", "json"))
    before, after = event["before_snapshot"], event["after_snapshot"]
    page = invoke(db, "show", str(after))
    assert "Gafurzoda Abdukhalil" in page and "<html" in page
    assert "<p>" not in invoke(db, "show", "--text", str(after))
    diff = invoke(db, "diff", str(before), str(after))
    assert "+Plenipotentiary Representative of the Supreme Assembly" in diff
    assert (
        "-Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA consists "
        "of 6 deputies." in diff
    )
    ru = next(  # per source: which source a delegation-level change names first depends on
        e  # the order the run recorded them in
        for e in json.loads(invoke(db, "changes", "--per-source", "--format", "json"))
        if e["source"] == "demo-assembly-ru" and e.get("after_snapshot")
    )
    assert "Делегация" in invoke(db, "show", str(ru["after_snapshot"]))  # windows-1251 decoded
    missing = CliRunner().invoke(cli, ["--db", str(db), "show", "9999"])
    assert missing.exit_code == 2 and "no snapshot 9999" in missing.output


def test_export_formats(demo_db: tuple[Path, list[str]]) -> None:
    db, _ = demo_db
    popolo = json.loads(invoke(db, "export", "--format", "popolo"))
    assert set(popolo) == {"persons", "organizations", "memberships"}
    ended = [m for m in popolo["memberships"] if m["end_date"]]
    assert all(m["start_date"] <= m["end_date"] for m in ended)
    # a respelled member ("Elmira Mockova" -> "Elmira Mokova"), also on the Cyrillic roster:
    # one person, one open membership per source, every spelling kept
    (elmira,) = [p for p in popolo["persons"] if p["id"] == "person/elmira-mokova"]
    assert elmira["name"] in ("Elmira Mokova", "Мокова Эльмира")
    spelled = {elmira["name"], *(o["name"] for o in elmira["other_names"])}
    assert spelled == {"Elmira Mockova", "Elmira Mokova", "Мокова Эльмира"}
    hers = [m for m in popolo["memberships"] if m["person_id"] == elmira["id"]]
    assert len(hers) == 2 and not any(m["end_date"] for m in hers)
    person_ids = {p["id"] for p in popolo["persons"]}
    assert all(m["person_id"] in person_ids for m in popolo["memberships"])
    assert any(m["role"] == "plenipotentiary representative" for m in popolo["memberships"])
    rows = list(csv.DictReader(io.StringIO(invoke(db, "export", "--format", "csv"))))
    assert {"delegation", "role", "name", "start", "end"} <= set(rows[0])
    assert any(r["name"] == "Farida Newcomer" and r["end"] == "" for r in rows)
    data = json.loads(invoke(db, "export"))
    assert data["delegations"]["KG"]["demo-assembly-en"]["seats"]["supreme-council"] == 7


def test_views_answer_the_documented_queries(demo_db: tuple[Path, list[str]]) -> None:
    db, _ = demo_db
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT seats FROM current_composition WHERE delegation = 'KG' "
            "AND source_id = 'demo-assembly-en' AND chamber = 'supreme-council'"
        ).fetchone() == (7,)
        history = conn.execute(
            "SELECT seats, valid_to IS NOT NULL FROM composition_history "
            "WHERE delegation = 'KG' AND source_id = 'demo-assembly-en' "
            "AND chamber = 'supreme-council' ORDER BY valid_from"
        ).fetchall()
        assert history == [(6, 1), (7, 0)]
        reps = conn.execute(
            "SELECT name, role FROM representatives WHERE delegation = 'KZ' "
            "AND source_id = 'demo-assembly-en'"
        ).fetchall()
        assert reps == [
            ("Viktor Rogalev", "deputy Executive Secretary of the CSTO Parliamentary Assembly")
        ]
        # v2 respells "Elmira Mockova" "Elmira Mokova" (one name key): one period, the
        # latest spelling shown, the others kept (the national roster's Cyrillic one too)
        respelled = conn.execute(
            "SELECT name, valid_to, other_names, valid_from < last_seen FROM members "
            "WHERE source_id = 'demo-country-kg' AND name_key = 'elmira mokova'"
        ).fetchall()
        assert [(n, end, json.loads(o), grew) for n, end, o, grew in respelled] == [
            ("Elmira Mokova", None, ["Elmira Mockova", "Мокова Эльмира"], 1)
        ]
        assert conn.execute("SELECT COUNT(*) FROM recent_changes").fetchone()[0] > 0
        health = dict(conn.execute("SELECT source_id, health FROM source_health").fetchall())
        assert set(health.values()) == {"ok"}
        hits = conn.execute(
            "SELECT news.title FROM news JOIN news_fts ON news_fts.rowid = news.id "
            "WHERE news_fts MATCH 'council'"
        ).fetchall()
        assert ("Meeting of the Council of the Assembly",) in hits


def test_reparse_rebuilds_the_same_facts_without_events(
    demo_db: tuple[Path, list[str]], tmp_path: Path
) -> None:
    db, _ = demo_db
    copy = tmp_path / "copy.db"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    cfg = tmp_path / "c.toml"
    cfg.write_text(demo_config("http://127.0.0.1:9", "http://127.0.0.1:9", str(copy)))

    def snapshot(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
        return conn.execute(
            "SELECT source_id, subject, attribute, key, value, first_seen, "
            "ended_at FROM facts ORDER BY 1, 2, 3, 4, 6"
        ).fetchall()

    with sqlite3.connect(copy) as conn:
        facts_before = snapshot(conn)
        events_before = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    result = CliRunner().invoke(cli, ["--config", str(cfg), "reparse"], catch_exceptions=False)
    assert result.exit_code == 0 and "demo-assembly-en:" in result.output
    with sqlite3.connect(copy) as conn:
        assert snapshot(conn) == facts_before
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == events_before


def test_scraped_control_characters_never_reach_the_terminal() -> None:
    from pawatch.display import printable

    # the whole escape sequence goes (not only its ESC), so no "[2J" junk is left behind
    assert printable("Kogut\x1b[2J\x07 Viktor\tline\nnext\x9b") == "Kogut Viktor\tline\nnext"


def test_delegation_ids_are_case_insensitive_everywhere(demo_db: tuple[Path, list[str]]) -> None:
    db, _ = demo_db
    upper = json.loads(invoke(db, "changes", "--delegation", "KG", "--format", "json"))
    lower = json.loads(invoke(db, "changes", "--delegation", "kg", "--format", "json"))
    assert upper and lower == upper
    history_lower = json.loads(invoke(db, "history", "kg", "--format", "json"))
    history_upper = json.loads(invoke(db, "history", "KG", "--format", "json"))
    for history in (history_lower, history_upper):  # "now": two calls may be a second apart
        assert history.pop("as_of")
    assert history_lower == history_upper and history_lower["delegation"]
    exported = list(csv.DictReader(io.StringIO(invoke(db, "export", "--format", "csv"))))
    only_tj = list(
        csv.DictReader(io.StringIO(invoke(db, "export", "--delegation", "tj", "--format", "csv")))
    )
    assert only_tj == [r for r in exported if r["delegation"] == "TJ"] and only_tj


def test_unknown_delegation_ids_are_refused_everywhere(demo_db: tuple[Path, list[str]]) -> None:
    db, _ = demo_db
    for args in (
        ["changes", "--delegation", "XX"],
        ["history", "XX"],
        ["export", "--delegation", "xx"],
    ):
        result = CliRunner().invoke(cli, ["--db", str(db), *args])
        assert result.exit_code == 2, (args, result.output)
        assert "'XX'" in result.output or "'xx'" in result.output, result.output
        assert "No events." not in result.output
    # a registry delegation without events is a valid question with an empty answer
    assert invoke(db, "changes", "--delegation", "am").strip() == "No events."
