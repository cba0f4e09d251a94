"""The bundled sources (config/default.toml) read fixtures in their sites' known shapes.

Each enabled bundled source is loaded with ``default_settings()`` (its own URL path, headers,
user agent and parser options, never copied here), pointed at a real local HTTP server that
serves the fixture at the source's own path, and run through the real pipeline into a real
SQLite file. The test asserts the member (or news item) count and a few names, so the bundled
config and the fixtures (tests/fixtures/sources/build.py) cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pawatch.config import Settings, Source
from pawatch.demo.localserver import LocalServer, Route
from pawatch.pipeline import run_once
from pawatch.scraper.parsers import ParseError, get_parser
from pawatch.settings import default_settings
from pawatch.storage import Store
from tests.fixtures.sources import build
from tests.fixtures.sources.build import Body

PARSER_FIXTURES = Path(__file__).parent / "fixtures" / "parsers"


def _file(path: str, count: int, *names: str) -> Callable[[], Body]:
    def body() -> Body:
        text = (PARSER_FIXTURES / path).read_text(encoding="utf-8")
        return Body(text, build.HTML_TYPE, count, names)

    return body


# Every enabled bundled source: its fixture, or why another test file covers it.
FIXTURES: dict[str, Callable[[], Body]] = {
    "pacsto-en-events": lambda: build.assembly_events(russian=False),
    "paodkb-ru-events": lambda: build.assembly_events(russian=True),
    "by-council-senators": build.sovrep_senators,
    "kz-mazhilis-deputies": build.mazhilis_deputies,
    "kz-senate-deputies": build.senate_cards,
    "kg-kenesh-deputies": build.kenesh_deputies,
    "ru-duma-deputies": build.duma_data_json,
    "ru-duma-news": build.duma_news,
    "ru-council-members": build.council_members,
    "tj-majmilli-members": build.majmilli_members,
    "tj-parlament-news": build.parlament_tj_news,
    # The Assembly's pages: the parsers' own fixtures in the same shapes.
    "pacsto-en-country-tj": _file(
        "delegation-page/tj_country_page.html", 12, "Rustam Emomali", "Gafurzoda Abdukhalil"
    ),
}
# Enabled sources without a fixture here, and why.
NOT_HERE = {
    "pacsto-en-home": "delegations parser, no member list: tests/test_parsers.py fixtures",
    "paodkb-ru-home": "delegations parser, no member list: tests/test_parsers.py fixtures",
    "pacsto-en-country-by": "country page shape known from the Tajik one only (unverified slug)",
    "pacsto-en-country-kz": "country page shape known from the Tajik one only (unverified slug)",
    "pacsto-en-country-kg": "country page shape known from the Tajik one only (unverified slug)",
    "pacsto-en-country-ru": "country page shape known from the Tajik one only (unverified slug)",
    "paodkb-ru-country-by": "Russian country pages: no known page content yet",
    "paodkb-ru-country-kz": "Russian country pages: no known page content yet",
    "paodkb-ru-country-kg": "Russian country pages: no known page content yet",
    "paodkb-ru-country-ru": "Russian country pages: no known page content yet",
    "paodkb-ru-country-tj": "Russian country pages: no known page content yet",
    "am-parliament-home": "page parser (the whole text): nothing structural to check",
}
# Disabled sources that still have a fixture in the known shape.
DISABLED_FIXTURES: dict[str, Callable[[], Body]] = {
    "by-house-deputies": build.house_deputies,
}


def test_every_enabled_bundled_source_has_a_fixture_or_a_reason() -> None:
    enabled = {s.id for s in default_settings().enabled_sources}
    assert enabled == set(FIXTURES) | set(NOT_HERE)
    assert not set(FIXTURES) & set(NOT_HERE)
    disabled = {s.id for s in default_settings().sources if not s.enabled}
    assert disabled == {"by-house-deputies", "am-parliament-members"}


def _local(settings: Settings, source: Source, server: LocalServer, db: Path) -> Settings:
    """The bundled settings with one source, its URL's path and query served by ``server``."""
    parts = urlsplit(source.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    local = replace(source, url=server.url(path), enabled=True)
    http = replace(settings.http, per_host_delay=0, retries=0, timeout=10)
    return replace(settings, storage=replace(settings.storage, path=str(db)), http=http,
                   sources=(local,))  # fmt: skip


def _read(db: Path, source_id: str) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        facts = conn.execute(
            "SELECT value FROM facts WHERE source_id = ? AND attribute = 'member' "
            "AND ended_at IS NULL",
            (source_id,),
        ).fetchall()
        if facts:
            return [v for (v,) in facts]
        news = conn.execute("SELECT title FROM news WHERE source_id = ?", (source_id,))
        return [t for (t,) in news.fetchall()]
    finally:
        conn.close()


def _run(source_id: str, body: Body, server: LocalServer, tmp_path: Path) -> list[str]:
    settings = default_settings()
    source = settings.source(source_id)
    parts = urlsplit(source.url)
    server.set(parts.path, Route(body=body.body, content_type=body.content_type))
    local = _local(settings, source, server, tmp_path / "pawatch.db")
    with Store.open(local.storage.path) as store:
        summary = run_once(local, local.sources, store)
    (outcome,) = summary.outcomes
    assert outcome.outcome == "new", (outcome.error_kind, outcome.error)
    assert outcome.parse_error is None
    return _read(tmp_path / "pawatch.db", source_id)


@pytest.mark.parametrize("source_id", sorted(FIXTURES) + sorted(DISABLED_FIXTURES))
def test_bundled_source_reads_its_fixture(
    source_id: str, server: LocalServer, tmp_path: Path
) -> None:
    body = (FIXTURES | DISABLED_FIXTURES)[source_id]()
    read = _run(source_id, body, server, tmp_path)
    assert len(read) == body.members
    assert set(body.names) <= set(read), sorted(set(body.names) - set(read))
    assert not set(body.absent) & set(read)
    source = default_settings().source(source_id)
    (request,) = [r for r in server.requests if r.path != "/robots.txt"]
    parts = urlsplit(source.url)
    assert request.path == parts.path + (f"?{parts.query}" if parts.query else "")
    for name, value in source.headers.items():
        assert request.headers[name.lower()] == value
    if source.user_agent:
        assert request.headers["user-agent"] == source.user_agent


def test_mazhilis_is_read_in_russian_and_skips_inactive_deputies(
    server: LocalServer, tmp_path: Path
) -> None:
    body = build.mazhilis_deputies()
    read = _run("kz-mazhilis-deputies", body, server, tmp_path)
    (request,) = [r for r in server.requests if r.path != "/robots.txt"]
    assert request.headers["accept-language"] == "ru"
    assert request.path == "/api/core/deputies/?ord=last_name"
    assert len(read) == 98 and not set(body.absent) & set(read)


def _options(source_id: str) -> dict[str, object]:
    source = default_settings().source(source_id)
    return {**source.options, "delegation": source.delegation}


def test_duma_filter_follows_the_documents_last_convocation() -> None:
    """The convocation is read from the document (json_vars), not written in the config: a
    new convocation whose deputies are not all in yet is a broken parse (count bounds),
    never 450 departures."""
    spec = get_parser("roster")
    options = _options("ru-duma-deputies")
    doc = json.loads(build.duma_data_json().body)
    assert len(spec.func(json.dumps(doc), "http://duma.gov.ru/data.json", options).records) == 450
    doc["last_convocation"] = 10
    with pytest.raises(ParseError, match="no members read"):
        spec.func(json.dumps(doc), "http://duma.gov.ru/data.json", options)
    del doc["last_convocation"]
    with pytest.raises(ParseError, match=r"json_vars\.convocation"):
        spec.func(json.dumps(doc), "http://duma.gov.ru/data.json", options)


@pytest.mark.parametrize(
    ("source_id", "members"),
    [("ru-duma-deputies", 449), ("kg-kenesh-deputies", 74), ("tj-majmilli-members", 27)],
)
def test_a_list_outside_the_seat_bounds_is_a_broken_parse(source_id: str, members: int) -> None:
    spec = get_parser("roster")
    options = _options(source_id)
    source = default_settings().source(source_id)
    if source_id == "ru-duma-deputies":
        doc = json.loads(build.duma_data_json().body)
        doc["persons"].append(dict(doc["persons"][0], last_name="Лишний", id=1))
        body, match = json.dumps(doc), "more than max_items=450"
    elif source_id == "kg-kenesh-deputies":
        doc = json.loads(build.kenesh_deputies().body)
        doc["content"] = doc["content"][:members]
        body, match = json.dumps(doc), "fewer than min_items=75"
    else:
        html = build.majmilli_members().body
        for name in build.TJ_MEMBERS[members:]:
            html = html.replace(f">{name}</a></h3>", "></a></h3>")
        body, match = html, "fewer than min_items=28"
    with pytest.raises(ParseError, match=match):
        spec.func(body, source.url, options)


def test_kenesh_links_are_person_pages() -> None:
    result = get_parser("roster").func(
        build.kenesh_deputies().body, "https://kenesh.kg/api/deputies",
        _options("kg-kenesh-deputies"),
    )  # fmt: skip
    assert result.records[0].link == "https://kenesh.kg/deputies/510"
    assert result.records[0].role == "Ата-Журт Кыргызстан"


def test_majmilli_reads_the_chairman_once_and_not_the_link_back_to_the_list() -> None:
    result = get_parser("roster").func(
        build.majmilli_members().body, "https://majmilli.tj/azoi-majlisi-milli/",
        _options("tj-majmilli-members"),
    )  # fmt: skip
    names = [r.name for r in result.records]
    assert names.count("Рустами Эмомалӣ") == 1 and len(names) == 33
    assert "item 2: 'Рустами Эмомалӣ' listed twice" in result.warnings
    assert result.records[0].link == "https://majmilli.tj/rustami-emomali/"


@pytest.mark.parametrize("russian", [False, True])
def test_assembly_events_take_the_date_from_the_first_link_and_the_title_from_the_next(
    russian: bool,
) -> None:
    source_id = "paodkb-ru-events" if russian else "pacsto-en-events"
    source = default_settings().source(source_id)
    result = get_parser("news-list").func(
        build.assembly_events(russian).body, source.url, _options(source_id)
    )
    assert [r.date for r in result.records[:2]] == ["2026-11-28", "2026-11-26"]
    assert all(r.url.startswith(f"{source.url}/") for r in result.records)
    assert not any(r.title[0].isdigit() for r in result.records)
    assert not result.warnings


def test_person_links_read_once_without_warnings() -> None:
    """A photo link and a name link to one senator are one member, and the submenu's link
    back to the list is no member."""
    body = build.sovrep_senators()
    result = get_parser("roster").func(
        body.body, "https://sovrep.gov.by/en/senators-en/", _options("by-council-senators")
    )
    assert len(result.records) == 64 and not result.warnings
    assert result.records[0].link == (
        "https://sovrep.gov.by/en/senators-en/view/ivanovsky-anatoly-300/"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"json_filter": "fraction_positions[?"}, "option json_filter: not a JMESPath"),
        ({"json_filter": "var('term')"}, r"var\('term'\) is not in json_vars"),
        ({"json_vars": {"c": "no_such_field"}}, r"json_vars\.c .* is null"),
        ({"json_items": "persons[0]"}, "is not a list"),
    ],
)
def test_json_mode_options_that_cannot_work_are_parse_errors(
    options: dict[str, object], message: str
) -> None:
    base = _options("ru-duma-deputies")
    with pytest.raises(ParseError, match=message):
        get_parser("roster").func(build.duma_data_json().body, "http://duma.gov.ru/data.json",
                                  {**base, **options})  # fmt: skip


TJ_ROSTER = """<html><body><main>{cards}</main></body></html>"""


def test_assembly_members_are_confirmed_by_the_national_roster_and_flagged_when_they_leave(
    server: LocalServer, tmp_path: Path
) -> None:
    """The Assembly's Tajik country page against a national roster of the same delegation:
    `assembly_members` says which roster confirms each listed member, and `left_roster` once
    the roster stops listing one (the Assembly page still does)."""
    settings = default_settings()
    page = settings.source("pacsto-en-country-tj")
    country = (PARSER_FIXTURES / "delegation-page" / "tj_country_page.html").read_text("utf-8")
    server.set("/countries/republic-of-tajikistan", Route(body=country))
    roster_names = ["Rustam Emomali", "Nuriddin Saidzoda", "Somebody Else"]

    def serve_roster(names: list[str]) -> None:
        cards = "".join(f'<a href="/members/{n}/">{name}</a>' for n, name in enumerate(names))
        server.set("/members/", Route(body=TJ_ROSTER.format(cards=cards)))

    roster = replace(
        page, id="tj-roster", parser="roster", url=server.url("/members/"),
        options={"name": "a[href*='/members/']"},
    )  # fmt: skip
    local = _local(settings, page, server, tmp_path / "pawatch.db")
    local = replace(local, sources=(*local.sources, roster))
    db = tmp_path / "pawatch.db"

    def view() -> dict[str, tuple[object, ...]]:
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute(
                "SELECT name, delegation, confirmed_by, left_roster_at, status "
                "FROM assembly_members WHERE source_id = 'pacsto-en-country-tj'"
            ).fetchall()
        finally:
            conn.close()
        return {str(r[0]): tuple(r[1:]) for r in rows}

    serve_roster(roster_names)
    with Store.open(str(db)) as store:
        run_once(local, local.sources, store)
    first = view()
    assert len(first) == 12
    assert first["Rustam Emomali"] == ("TJ", "tj-roster", None, "confirmed")
    assert first["Nuriddin Saidzoda"][3] == "confirmed"
    assert first["Sharipov Jamshed"] == ("TJ", None, None, "unconfirmed")

    serve_roster([n for n in roster_names if n != "Nuriddin Saidzoda"])
    with Store.open(str(db)) as store:
        run_once(local, local.sources, store)
    second = view()
    delegation, confirmed_by, left_at, status = second["Nuriddin Saidzoda"]
    assert (delegation, confirmed_by, status) == ("TJ", None, "left_roster")
    assert isinstance(left_at, str) and left_at.endswith("Z")
    assert second["Rustam Emomali"][3] == "confirmed"


def test_news_photo_links_beside_title_links_are_no_warnings() -> None:
    result = get_parser("news-list").func(
        build.duma_news().body, "http://duma.gov.ru/news/", _options("ru-duma-news")
    )
    assert len(result.records) == 20 and not result.warnings
    html = build.duma_news().body.replace('">Депутаты обсудили законопроект № 58003<', '"><')
    result = get_parser("news-list").func(
        html, "http://duma.gov.ru/news/", _options("ru-duma-news")
    )
    assert len(result.records) == 19 and result.warnings == ["item 7: no title"]


@pytest.mark.parametrize("source_id", sorted(FIXTURES) + sorted(DISABLED_FIXTURES))
def test_try_reads_each_fixture_with_the_bundled_source_options(
    source_id: str, tmp_path: Path
) -> None:
    """`pawatch try --file F --source ID`: the same reading as a run, nothing written."""
    from click.testing import CliRunner

    from pawatch.cli import cli

    body = (FIXTURES | DISABLED_FIXTURES)[source_id]()
    page = tmp_path / "page"
    page.write_text(body.body, encoding="utf-8")
    db = tmp_path / "pawatch.db"
    args = ["--db", str(db), "try", "--file", str(page), "--source", source_id, "--format", "json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    source = default_settings().source(source_id)
    assert report["parser"] == source.parser and report["url"] == source.url
    members = [f["value"] for f in report["facts"] if f["attribute"] == "member"]
    items = [i.get("title") for i in report["items"] if i["type"] == "NewsItem"]
    read = members or items
    assert len(read) == body.members
    assert set(body.names) <= set(read), sorted(set(body.names) - set(read))
    assert not db.exists()  # nothing written, no database made


def test_try_refuses_an_unknown_source_id(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pawatch.cli import cli

    page = tmp_path / "page.html"
    page.write_text("<p>x</p>", encoding="utf-8")
    result = CliRunner().invoke(cli, ["try", "--file", str(page), "--source", "no-such-source"])
    assert result.exit_code == 2 and "unknown source id 'no-such-source'" in result.output
