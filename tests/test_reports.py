"""Reports: grouping and order, text/HTML/JSON, subjects, the `report` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pawatch.cli import cli
from pawatch.evidence import Excerpt, excerpt
from pawatch.reports import (
    ReportEvent,
    build_report,
    group_changes,
    parse_since,
    render_html,
    render_json,
    render_text,
)
from pawatch.storage import SourceRow, Store
from tests.test_replay import replay_factory as replay_factory  # the fixture

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def event(i: int, kind: str, delegation: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "id": i,
        "kind": kind,
        "detected_at": "2026-11-27T08:00:00Z",
        "source_id": kw.pop("source_id", "pacsto-en-home"),
        "delegation": delegation,
        "url": "https://pacsto.org/",
        "before_snapshot": 3,
        "after_snapshot": 8,
        **kw,
    }


EVENTS = [
    event(1, "news", new="Session of the Council", source_id="pacsto-en-events"),
    event(2, "website_removed", "KG", attribute="website", old="http://www.kenesh.kg/"),
    event(3, "member_added", "KG", attribute="member", new="Новикова Фарида"),
    event(4, "source_failing", attribute="fetch", new="HTTP 503", source_id="kg-kenesh"),
    event(5, "composition", "KG", attribute="seats:total", old="6", new="7"),
    event(6, "representative", "TJ", attribute="plenipotentiary", new="Gafurzoda A."),
    event(7, "composition", "TJ", attribute="seats:total", old="5", new="4"),
]
PROBLEM = {
    "source_id": "kg-kenesh",
    "url": "https://kenesh.kg/api/deputies",
    "delegation": "KG",
    "condition": "failing",
    "since": "2026-11-26T08:00:00Z",
    "error": "HTTP 503",
    "consecutive_failures": 4,
}


def test_groups_by_delegation_most_important_first_then_news_then_health() -> None:
    report = build_report(EVENTS, [PROBLEM], generated_at=NOW)
    assert [(g.name, [i.event_ids for i in g.items]) for g in report.groups] == [
        ("Kyrgyzstan", [(5,), (3,), (2,)]),
        ("Tajikistan", [(7,), (6,)]),
    ]
    text = render_text(report)
    order = [
        "KYRGYZSTAN",
        "* Seats in all: 6 -> 7 seats",
        "* New member: Новикова Фарида",
        "* Website no longer listed: http://www.kenesh.kg/",
        "TAJIKISTAN",
        "* Seats in all: 5 -> 4 seats",
        "* New plenipotentiary representative: Gafurzoda A.",
        "NEWS",
        "* Session of the Council",
        "Monitoring",
        "- kg-kenesh failing: HTTP 503",
        "! needs attention: kg-kenesh failing since 2026-11-26 08:00 UTC, 4 failed checks in a "
        "row: HTTP 503",
    ]
    at = 0
    for part in order:  # each after the one before
        at = text.index(part, at) + len(part)
    assert (
        "seen on 1 source:\n  - pacsto.org, 2026-11-27 08:00 UTC\n    https://pacsto.org/" in text
    )
    assert "pawatch diff" not in text and "#5" not in text  # no commands, no ids in an email
    operator = render_text(build_report(EVENTS, generated_at=NOW, operator=True))
    assert "(pacsto-en-home) pawatch show 8 ; pawatch diff 3 8" in operator


def test_one_item_per_change_seen_on_several_sources() -> None:
    seen = [
        event(1, "composition", "KG", attribute="seats:supreme-council", old="6", new="7",
              source_id="assembly-ru", url="https://paodkb.org/", before_snapshot=1,
              after_snapshot=6),
        event(2, "member_added", "KG", attribute="member", new="Farida Newcomer"),
        event(3, "composition", "KG", attribute="seats:supreme-council", old="6", new="7",
              source_id="country-kg", url="https://pacsto.org/countries/kg"),
        event(4, "composition", "KG", attribute="seats:supreme-council", old="7", new="8"),
        event(5, "page_changed", None, source_id="a"),
        event(6, "page_changed", None, source_id="b"),
        event(7, "member_added", "KG", attribute="member", new="farida  NEWCOMER",
              source_id="kenesh"),
    ]  # fmt: skip
    items = group_changes(ReportEvent.from_row(e) for e in seen)
    assert [(i.kind, i.event_ids) for i in items] == [
        ("composition", (1, 3)),
        ("member_added", (2, 7)),
        ("composition", (4,)),
        ("page_changed", (5,)),
        ("page_changed", (6,)),
    ]
    kg = items[0]
    assert kg.headline == "Supreme Council: 6 -> 7 seats"
    assert [(s.source, s.url, s.before_snapshot) for s in kg.sightings] == [
        ("assembly-ru", "https://paodkb.org/", 1),
        ("country-kg", "https://pacsto.org/countries/kg", 3),
    ]
    text = render_text(build_report(seen, generated_at=NOW))
    assert text.count("Supreme Council: 6 -> 7 seats") == 1 and "seen on 2 sources:" in text
    data = json.loads(render_json(build_report(seen, generated_at=NOW)))
    first = data["delegations"][0]["changes"][0]
    assert [s["source"] for s in first["sources"]] == ["assembly-ru", "country-kg"]


def test_subject_says_what_happened_in_words_within_120_characters() -> None:
    report = build_report(EVENTS, [PROBLEM], generated_at=NOW)
    assert report.subject == (
        "[pawatch] Kyrgyzstan: seats 6 -> 7, 1 new member; "
        "Tajikistan: seats 5 -> 4, new plenipotentiary (+3 more)"
    )
    assert len(report.subject) <= 120
    one = build_report([EVENTS[4]], generated_at=NOW)
    assert one.subject == "[pawatch] Kyrgyzstan: seats 6 -> 7"
    # a count the page stops stating is not a count: it must not read as "seats 6"
    gone = event(8, "composition", "KG", attribute="seats:total", old="6", new=None)
    stated = event(9, "composition", "KG", attribute="seats:total", old=None, new="6")
    assert build_report([gone], generated_at=NOW).subject == (
        "[pawatch] Kyrgyzstan: seats no longer stated"
    )
    assert build_report([stated], generated_at=NOW).subject == "[pawatch] Kyrgyzstan: seats 6"
    assert build_report([], generated_at=NOW).subject == "[pawatch] no changes"
    health = build_report([], [PROBLEM], generated_at=NOW, channel="KG")
    assert health.subject == "[pawatch KG] 1 source needs attention"
    many = [
        event(i, "composition", d, attribute=f"seats:{c}", old="1", new=str(100 + i))
        for i, (d, c) in enumerate(
            [("BY", "house-of-representatives"), ("BY", "council-of-the-republic"),
             ("KZ", "mazhilis"), ("KZ", "senate"), ("RU", "state-duma"),
             ("RU", "federation-council"), ("TJ", "majlisi-milli")]
        )
    ]  # fmt: skip
    subject = build_report(many, generated_at=NOW).subject
    assert len(subject) <= 120 and subject.endswith(" more)"), subject
    assert subject.startswith("[pawatch] Belarus: House of Representatives seats 1 -> 100")
    for s in (report.subject, subject):
        assert "(none)" not in s and "#" not in s and "pacsto-en-home" not in s
    spaced = build_report([event(9, "member_added", "KG", new="Line one\r\nBcc: x@y")],
                          generated_at=NOW)  # fmt: skip
    assert "\n" not in spaced.subject and "\r" not in spaced.subject


def test_html_escapes_scraped_text_and_links_only_http() -> None:
    evil = [
        event(1, "news", new='<script>alert(1)</script><img src=x onerror="y">'),
        event(2, "website_added", "KG", attribute="website", new="javascript:alert(2)",
              url="javascript:alert(3)"),
    ]  # fmt: skip
    html = render_html(build_report(evil, generated_at=NOW))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&#34;y&#34;&gt;" in html
    assert 'href="javascript:' not in html and "javascript:alert(3)" in html


HOSTILE = "Gafurzoda\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b31m Abdukhalil\x00"


def test_control_characters_never_reach_text_html_or_subject_and_json_stays_exact() -> None:
    rows = [
        event(1, "representative", "TJ", attribute="plenipotentiary", new=HOSTILE),
        event(2, "member_added", "KG", attribute="member", new="Long" + "name" * 25_000),
    ]
    report = build_report(rows, [{**PROBLEM, "error": "bad\x1b[31m red"}], generated_at=NOW)
    for shown in (render_text(report), render_html(report), report.subject):
        assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown
        assert "\x00" not in shown
        assert len(shown) < 20_000  # the 100 KB name is shortened
    # escape sequences go whole (OSC 52, CSI); an 8-bit C1 control goes alone
    assert "New plenipotentiary representative: Gafurzoda31m Abdukhalil" in render_text(report)
    data = json.loads(render_json(report))
    tj = next(g for g in data["delegations"] if g["delegation"] == "TJ")
    assert tj["changes"][0]["new"] == HOSTILE  # exact: JSON escapes it
    kg = next(g for g in data["delegations"] if g["delegation"] == "KG")
    assert len(kg["changes"][0]["new"]) == 4 + 4 * 25_000


def test_json_report_is_stable_and_documented_shape() -> None:
    data = json.loads(render_json(build_report(EVENTS, [PROBLEM], generated_at=NOW)))
    assert list(data) == [
        "format", "generated_at", "channel", "subject", "counts", "delegations", "news", "health",
    ]  # fmt: skip
    assert data["format"] == "pawatch-report/2" and data["generated_at"] == "2026-11-27T09:00:00Z"
    assert data["counts"] == {
        "changes": 5, "news": 1, "events": 6, "health_events": 1, "problems": 1,
    }  # fmt: skip
    group = data["delegations"][0]
    assert (group["delegation"], group["name"]) == ("KG", "Kyrgyzstan")
    first = group["changes"][0]
    assert list(first) == [
        "kind", "delegation", "attribute", "old", "new", "summary", "first_detected",
        "last_detected", "sources", "details",
    ]  # fmt: skip
    assert first["summary"] == "Seats in all: 6 -> 7 seats"
    assert list(first["sources"][0]) == [
        "event_id", "source", "url", "detected_at", "before_snapshot", "after_snapshot",
        "before_snapshot_url", "after_snapshot_url", "evidence",
    ]  # fmt: skip
    problem = data["health"]["problems"][0]
    assert problem["source"] == "kg-kenesh" and "source_id" not in problem
    assert data["health"]["events"][0]["source"] == "kg-kenesh"
    assert "source_id" not in json.dumps(data)  # one name for one thing, as in `changes`
    assert data["news"][0]["new"] == "Session of the Council"


def test_snapshot_links_only_with_a_base_url() -> None:
    plain = build_report(EVENTS, generated_at=NOW)
    assert "snapshots/" not in render_text(plain) + render_html(plain)
    linked = build_report(EVENTS, generated_at=NOW, base_url="https://data.example.org/")
    text, html = render_text(linked), render_html(linked)
    assert (
        "stored pages: https://data.example.org/pawatch/snapshots/3 -> "
        "https://data.example.org/pawatch/snapshots/8" in text
    )
    assert '<a href="https://data.example.org/pawatch/snapshots/8">after</a>' in html
    data = json.loads(render_json(linked))
    source = data["delegations"][0]["changes"][0]["sources"][0]
    assert source["after_snapshot_url"] == "https://data.example.org/pawatch/snapshots/8"


def test_excerpt_quotes_the_changed_sentence_before_and_after() -> None:
    before = ["Home", "The delegation consists of 6 deputies. Next session in 2026.", "Footer"]
    after = ["Home", "The delegation consists of 7 deputies. Next session in 2026.", "Footer"]
    assert excerpt(before, after, "6", "7") == Excerpt((before[1],), (after[1],))
    long_before = ["Intro. " * 60 + "It consists of 16 deputies and 6 observers. " + "x. " * 90]
    long_after = [long_before[0].replace(" 6 observers", " 7 observers")]
    cut = excerpt(long_before, long_after, "6", "7")
    assert cut == Excerpt(
        ("It consists of 16 deputies and 6 observers.",),
        ("It consists of 16 deputies and 7 observers.",),
    )
    names_before = ["Members:", "Ann Example, Bob Sample", "News: a new item", "Contacts"]
    names_after = ["Members:", "Ann Example, Bob Sample, Farida Newcomer", "Contacts"]
    assert excerpt(names_before, names_after, None, "Farida Newcomer") == Excerpt(
        ("Ann Example, Bob Sample",), ("Ann Example, Bob Sample, Farida Newcomer",)
    )
    added = excerpt(
        ["A"], ["A", "Plenipotentiary: Gafurzoda Abdukhalil"], None, "Gafurzoda Abdukhalil"
    )
    assert added == Excerpt((), ("Plenipotentiary: Gafurzoda Abdukhalil",))
    # no changed block names the values: no quote rather than a wrong one
    assert excerpt(["a", "b"], ["a", "c"], "6", "7") is None
    # a page whose text changed (no values): its first changed block
    assert excerpt(["a", "b", "c", "d"], ["a", "B", "c", "D"], None, None) == Excerpt(
        ("b",), ("B",)
    )
    assert excerpt(["a"], ["a"], None, None) is None


def test_empty_report() -> None:
    report = build_report([], generated_at=NOW)
    assert "Nothing to report." in render_text(report)
    assert json.loads(render_json(report))["delegations"] == []


def test_parse_since() -> None:
    assert parse_since("7d", NOW) == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert parse_since("12h", NOW) == datetime(2026, 11, 26, 21, 0, tzinfo=UTC)
    assert parse_since("2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="expected a period like '7d'"):
        parse_since("last week", NOW)


def test_report_command_prints_without_marking(tmp_path: Path) -> None:
    db = tmp_path / "pawatch.db"
    with Store.open(db) as store:
        store.sync_sources([SourceRow("assembly", "https://pacsto.org/", "delegations", None)], NOW)
        with store.transaction():
            store._insert_event(
                kind="composition", detected_at="2026-11-27T08:00:00Z", source_id="assembly",
                delegation="KG", attribute="seats:total", old="6", new="7",
            )  # fmt: skip
    runner = CliRunner()
    for fmt in ("text", "html", "json"):
        result = runner.invoke(cli, ["--db", str(db), "report", "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "6 -&gt; 7 seats" in result.output if fmt == "html" else "6 -> 7" in result.output
    since = runner.invoke(cli, ["--db", str(db), "report", "--since", "2000-01-01"])
    assert "Seats in all: 6 -> 7 seats" in since.output
    bad = runner.invoke(cli, ["--db", str(db), "report", "--since", "soon"])
    assert bad.exit_code == 2 and "--since" in bad.output
    with Store.open(db) as store:
        rows = store.db.conn.execute("SELECT DISTINCT status FROM outbox").fetchall()
    assert rows == [("pending",)]


def test_a_degraded_parse_is_in_the_monitoring_section_once_with_its_message(
    replay_factory: Any,
) -> None:
    """A page whose chamber sentence cannot be read (its facts held, health 'degraded'),
    through the real pipeline: `pawatch report` (text and JSON) lists it once with its
    message and since when; an email carries it once, as a health notice, and not again
    before health_repeat."""
    from datetime import timedelta

    from pawatch.delivery import deliver_pending
    from pawatch.demo.smtpcapture import smtp_capture
    from tests.test_delivery import email_settings
    from tests.test_replay import BLOCK, block_page

    r = replay_factory(BLOCK)
    r.serve(BLOCK.id, block_page())
    assert r.check() == []
    unreadable = "12 members of the Upper Chamber of the Federal Assembly of the Russian Federation"
    r.serve(
        BLOCK.id,
        block_page().replace(
            "12 members of the Federation Council of the Russian Federation", unreadable
        ),
    )
    assert r.check() == []  # a monitoring problem, never a change
    assert r.check() == []  # still degraded: still one problem
    db = str(r.settings.storage.path)
    text = CliRunner().invoke(cli, ["--db", db, "report"])
    assert text.exit_code == 0, text.output
    monitoring = text.output.split("\nMonitoring\n", 1)[1]
    assert monitoring.count("partly unreadable") == 1 and monitoring.count("needs attention") == 1
    assert "partly unreadable (its facts held) since 20" in monitoring
    assert "Upper Chamber" in monitoring
    data = json.loads(CliRunner().invoke(cli, ["--db", db, "report", "--format", "json"]).output)
    (problem,) = data["health"]["problems"]
    assert problem["condition"] == "degraded" and "Upper Chamber" in problem["error"]
    assert problem["source"] == BLOCK.id and problem["since"].endswith("Z")
    assert data["subject"] == "[pawatch] 1 source needs attention"

    now = datetime.now(UTC)
    with smtp_capture() as smtp:
        settings = email_settings(smtp.port)
        first = deliver_pending(settings, r.store, now=now)
        assert first.ok, first.summary_lines()
        (mail,) = smtp.wait_for(1)
        body = mail.message().get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert body.count("(its facts held)") == 1 and "Upper Chamber" in body
        assert deliver_pending(settings, r.store, now=now + timedelta(hours=1)).messages == []


def test_a_source_moved_to_another_host_is_a_monitoring_line_that_needs_attention(
    tmp_path: Path,
) -> None:
    """A redirect to another host (a `source_moved` event, through `pawatch run` as a
    process): the report says where the page went and that the source needs attention
    (before: "x source moved" and a subject saying "1 source recovered")."""
    from pawatch.demo.localserver import LocalServer, Route
    from tests.conftest import source_block, write_config
    from tests.test_cli import pawatch

    with LocalServer("127.0.0.1") as old, LocalServer("127.0.0.2") as new:
        new.set("/delegation", Route(body="<html><body><p>the page</p></body></html>"))
        old.set("/delegation", Route(status=301, headers={"Location": new.url("/delegation")}))
        cfg = write_config(tmp_path, source_block("moved", old.url("/delegation")))
        assert pawatch("--config", str(cfg), "run", "--no-deliver").returncode == 0
        text = pawatch("--config", str(cfg), "report")
        data = json.loads(pawatch("--config", str(cfg), "report", "--format", "json").stdout)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == "[pawatch] 1 source needs attention"
    monitoring = text.stdout.split("\nMonitoring\n", 1)[1]
    assert f"- moved moved: redirected to {new.url('/delegation')}" in monitoring
    assert data["subject"] == "[pawatch] 1 source needs attention"
    (moved,) = data["health"]["events"]
    assert moved["kind"] == "source_moved" and moved["new"] == new.url("/delegation")


def test_disagreeing_sources_are_a_monitoring_finding_with_readable_chambers() -> None:
    competing = [
        {"source": "pacsto-en-home",
         "value": "council-of-the-republic 4, house-of-representatives 7, total 11"},
        {"source": "paodkb-ru-home",
         "value": "council-of-the-republic 3, house-of-representatives 6, total 9"},
    ]  # fmt: skip
    rows = [
        event(1, "composition", "KG", attribute="seats:supreme-council", old="6", new="7"),
        event(2, "sources_disagree", "BY", attribute="seats", source_id=None, url=None,
              new="pacsto-en-home: ...; paodkb-ru-home: ...", details={"competing": competing}),
    ]  # fmt: skip
    report = build_report(rows, generated_at=NOW)
    assert [c.kind for c in report.changes] == ["composition"]  # not a change item
    (finding,) = report.health_events
    assert finding.summary == (
        "Belarus: the sources disagree on the seats: pacsto-en-home says Council of the "
        "Republic 4, House of Representatives 7, total 11; paodkb-ru-home says Council of the "
        "Republic 3, House of Representatives 6, total 9"
    )
    text = render_text(report)
    assert text.index("Monitoring") < text.index("Belarus: the sources disagree")
    assert "sources disagree on Belarus" in report.subject and "recovered" not in report.subject
    agree = build_report(
        [event(3, "sources_agree", "BY", attribute="seats", source_id=None, url=None)],
        generated_at=NOW,
    )
    assert [e.summary for e in agree.health_events] == [
        "Belarus: the sources agree again on the seats"
    ]
    assert "recovered" not in agree.subject


def test_evidence_of_a_page_past_the_element_bound_is_left_out(tmp_path: Path) -> None:
    """A stored page too large to parse (MAX_ELEMENTS) has no excerpt: the report is still
    built, without one, instead of failing on the parser's refusal."""
    from pawatch.evidence import SnapshotLines
    from pawatch.scraper.parsers.text import MAX_ELEMENTS
    from pawatch.storage import CheckInput

    huge = ("<p>x</p>" * (MAX_ELEMENTS + 10)).encode()
    small = b"<p>Kyrgyzstan: 6 seats</p>"
    with Store.open(tmp_path / "db.sqlite") as store:
        store.sync_sources([SourceRow("kg", "https://kenesh.kg/", "page", None)], NOW)
        ids = []
        for body in (small, huge):
            check = CheckInput(
                "kg",
                "https://kenesh.kg/",
                datetime.now(UTC),
                0.1,
                http_status=200,
                body=body,
                content_type="text/html",
            )
            ids.append(store.record_check(check).snapshot_id)
        lines = SnapshotLines(store)
        assert lines.lines(ids[0]) == ["Kyrgyzstan: 6 seats"]
        assert lines.lines(ids[1]) is None
        assert lines.excerpt(ids[0], ids[1], "6", "7") is None
