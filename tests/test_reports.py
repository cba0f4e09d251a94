"""Reports: grouping and order, text/HTML/JSON, subjects, the `report` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pawatch.cli import cli
from pawatch.reports import build_report, parse_since, render_html, render_json, render_text
from pawatch.storage import SourceRow, Store

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
    assert [(g.delegation, [e.id for e in g.events]) for g in report.groups] == [
        ("KG", [5, 3, 2]),
        ("TJ", [7, 6]),
    ]
    text = render_text(report)
    order = [
        "== KG (3) ==",
        "composition 6 -> 7",
        "member added: Новикова Фарида",
        "website removed",
        "== TJ (2) ==",
        "== News (1) ==",
        "== Monitoring health ==",
        "kg-kenesh failing: HTTP 503",
        "Sources needing attention now:",
        "! kg-kenesh failing since 2026-11-26T08:00:00Z, 4 failed checks in a row: HTTP 503",
    ]
    at = 0
    for part in order:  # each after the one before
        at = text.index(part, at) + len(part)
    assert "snapshots 3 -> 8: pawatch show 8 ; pawatch diff 3 8" in text
    assert "detected 2026-11-27T08:00:00Z, source pacsto-en-home" in text


def test_subject_counts_changes_and_is_cut_on_a_part() -> None:
    report = build_report(EVENTS, generated_at=NOW)
    subject = report.subject
    assert subject.startswith(
        "pawatch: 6 changes, 1 health alert - KG composition 6 -> 7, "
        "TJ composition 5 -> 4, TJ representative (none) -> Gafurzoda A., "
    )
    assert len(subject) < 200 and subject.endswith(", ...")
    one = build_report([EVENTS[4]], generated_at=NOW)
    assert one.subject == "pawatch: 1 change - KG composition 6 -> 7"
    assert build_report([], generated_at=NOW).subject == "pawatch: no changes"
    spaced = build_report([event(9, "news", new="Line one\r\nBcc: x@y")], generated_at=NOW)
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
    assert '<a href="https://pacsto.org/">' in html


def test_json_report_is_stable_and_documented_shape() -> None:
    data = json.loads(render_json(build_report(EVENTS, [PROBLEM], generated_at=NOW)))
    assert list(data) == [
        "format", "generated_at", "channel", "subject", "counts", "delegations", "news", "health",
    ]  # fmt: skip
    assert data["format"] == "pawatch-report/1" and data["generated_at"] == "2026-11-27T09:00:00Z"
    assert data["counts"] == {"changes": 6, "news": 1, "health_events": 1, "problems": 1}
    first = data["delegations"][0]["events"][0]
    assert list(first) == [
        "id", "kind", "detected_at", "delegation", "source_id", "attribute", "old", "new", "url",
        "before_snapshot", "after_snapshot", "summary", "details",
    ]  # fmt: skip
    assert first["summary"] == "composition 6 -> 7"
    assert data["health"]["problems"] == [PROBLEM]
    assert data["news"][0]["new"] == "Session of the Council"


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
        with store.db.atomic():
            store._insert_event(
                kind="composition", detected_at="2026-11-27T08:00:00Z", source_id="assembly",
                delegation="KG", attribute="seats:total", old="6", new="7",
            )  # fmt: skip
    runner = CliRunner()
    for fmt in ("text", "html", "json"):
        result = runner.invoke(cli, ["--db", str(db), "report", "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "KG composition 6 -" in result.output
    since = runner.invoke(cli, ["--db", str(db), "report", "--since", "2000-01-01"])
    assert "KG composition 6 -> 7" in since.output
    bad = runner.invoke(cli, ["--db", str(db), "report", "--since", "soon"])
    assert bad.exit_code == 2 and "--since" in bad.output
    with Store.open(db) as store:
        rows = store.db.conn.execute("SELECT DISTINCT status FROM outbox").fetchall()
    assert rows == [("pending",)]
