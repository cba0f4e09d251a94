"""The Atom feed: valid Atom 1.0 (RFC 4287's required elements, read with xml.etree), one
entry per change with a stable id, `updated` moving when another source confirms it, written
by `run` with [feed] path and byte-identical when nothing changed."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from pawatch.cli import cli
from pawatch.demo.localserver import LocalServer, Route
from pawatch.feed import write_atomically
from pawatch.scraper.parsers.names import name_key
from pawatch.storage import SourceRow, Store
from pawatch.storage.changes import Identity
from tests.conftest import source_block, write_config
from tests.test_cli import pawatch
from tests.test_daemon import DaemonProcess, _daemon_cfg, daemons

__all__ = ["daemons"]  # the fixture, shared with test_daemon

A = "{http://www.w3.org/2005/Atom}"
SENTENCE = (
    "<p>Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA consists "
    "of {n} deputies.</p>"
)


def check_atom(text: str) -> ET.Element:
    """Parse and check RFC 4287 section 4.1's required elements."""
    root = ET.fromstring(text)
    assert root.tag == f"{A}feed"
    for tag in ("id", "title", "updated"):
        assert len(root.findall(f"{A}{tag}")) == 1, tag
        assert (root.findtext(f"{A}{tag}") or "").strip(), tag
    feed_author = root.find(f"{A}author")
    assert feed_author is not None and feed_author.findtext(f"{A}name")
    for entry in root.findall(f"{A}entry"):
        for tag in ("id", "title", "updated"):
            assert len(entry.findall(f"{A}{tag}")) == 1, tag
            assert (entry.findtext(f"{A}{tag}") or "").strip(), tag
        # atom:updated is an RFC 3339 date-time
        datetime.fromisoformat((entry.findtext(f"{A}updated") or "").replace("Z", "+00:00"))
        content = entry.find(f"{A}content")
        assert content is not None and content.get("type") == "html"
    return root


def test_run_writes_the_feed_and_a_second_run_leaves_it_byte_identical(
    tmp_path: Path, server: LocalServer
) -> None:
    feed = tmp_path / "public" / "changes.atom"
    feed.parent.mkdir()
    server.set("/en", Route(body=SENTENCE.format(n=6)))
    server.set("/country", Route(body=SENTENCE.format(n=6)))
    sources = source_block("en", server.url("/en"), parser="delegations") + source_block(
        "country", server.url("/country"), parser="delegations"
    )
    cfg = write_config(tmp_path, f'[feed]\npath = "{feed}"\n' + sources)
    assert pawatch("--config", str(cfg), "run").returncode == 0
    empty = check_atom(feed.read_text(encoding="utf-8"))
    assert empty.findall(f"{A}entry") == []
    server.set("/en", Route(body=SENTENCE.format(n=7)))
    server.set("/country", Route(body=SENTENCE.format(n=7)))
    assert pawatch("--config", str(cfg), "run").returncode == 0
    first = feed.read_bytes()
    root = check_atom(first.decode())
    (entry,) = root.findall(f"{A}entry")  # one change, seen on two sources
    assert entry.findtext(f"{A}title") == "Kyrgyzstan: Supreme Council: 6 -> 7 seats"
    links = {link.get("href") for link in entry.findall(f"{A}link")}
    assert links == {server.url("/en"), server.url("/country")}
    content = entry.findtext(f"{A}content") or ""
    assert "seen on 2 sources" in content and "consists of 7 deputies." in content
    assert "pawatch diff" not in content
    before = feed.stat().st_mtime_ns
    assert pawatch("--config", str(cfg), "run").returncode == 0  # nothing changed
    assert feed.read_bytes() == first and feed.stat().st_mtime_ns == before
    printed = pawatch("--config", str(cfg), "feed")
    assert printed.returncode == 0 and printed.stdout.encode() == first
    assert not list(feed.parent.glob(".*.tmp"))  # no temporary file left behind


def add_event(db: Path, event_id_source: str, at: str) -> None:
    with Store.open(db) as store:
        store.sync_sources(
            [SourceRow(event_id_source, f"https://{event_id_source}.example/", "page", None)],
            datetime(2026, 11, 27, tzinfo=UTC),
        )
        with store.transaction():
            store._insert_event(
                kind="representative", detected_at=at, source_id=event_id_source,
                delegation="TJ", attribute="plenipotentiary", old=None,
                new="Gafurzoda Abdukhalil", url=f"https://{event_id_source}.example/",
                identity=Identity("", "", name_key("Gafurzoda Abdukhalil")),
            )  # fmt: skip


def test_entry_id_is_stable_and_updated_moves_when_another_source_confirms(
    tmp_path: Path,
) -> None:
    db = tmp_path / "pawatch.db"
    add_event(db, "assembly-en", "2026-11-27T08:00:00Z")
    runner = CliRunner()
    out = tmp_path / "feed.xml"
    result = runner.invoke(cli, ["--db", str(db), "feed", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (one,) = check_atom(out.read_text(encoding="utf-8")).findall(f"{A}entry")
    add_event(db, "assembly-ru", "2026-11-28T10:30:00Z")
    assert runner.invoke(cli, ["--db", str(db), "feed", "--out", str(out)]).exit_code == 0
    root = check_atom(out.read_text(encoding="utf-8"))
    (two,) = root.findall(f"{A}entry")
    assert two.findtext(f"{A}id") == one.findtext(f"{A}id")
    assert one.findtext(f"{A}updated") == "2026-11-27T08:00:00Z"
    assert two.findtext(f"{A}updated") == "2026-11-28T10:30:00Z"
    assert two.findtext(f"{A}published") == "2026-11-27T08:00:00Z"
    assert root.findtext(f"{A}updated") == "2026-11-28T10:30:00Z"
    assert "seen on 2 sources" in (two.findtext(f"{A}content") or "")


def test_hostile_text_stays_well_formed_xml(tmp_path: Path) -> None:
    db = tmp_path / "pawatch.db"
    with Store.open(db) as store:
        store.sync_sources([SourceRow("s", "https://s.example/", "page", None)], datetime.now(UTC))
        with store.transaction():
            store._insert_event(
                kind="member_added", detected_at="2026-11-27T08:00:00Z", source_id="s",
                delegation="KG", attribute="member", new="A\x00\x1b[2J\x0b<b>&amp;</b>\ufffe B",
                url="javascript:alert(1)",
            )  # fmt: skip
    result = CliRunner().invoke(cli, ["--db", str(db), "feed"])
    assert result.exit_code == 0
    (entry,) = check_atom(result.output).findall(f"{A}entry")
    assert entry.findtext(f"{A}title") == "Kyrgyzstan: New member: A<b>&amp;</b> B"
    assert entry.findall(f"{A}link") == []  # not an http(s) link


def test_write_atomically_replaces_whole_and_skips_identical(tmp_path: Path) -> None:
    path = tmp_path / "f.xml"
    assert write_atomically(path, "one") is True
    assert write_atomically(path, "one") is False
    assert write_atomically(path, "two") is True and path.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.xml"]


def test_the_daemon_rewrites_the_feed_after_a_cycle_with_changes(
    tmp_path: Path, server: LocalServer, daemons: Callable[..., DaemonProcess]
) -> None:
    feed = tmp_path / "changes.atom"
    server.set("/en", Route(body=SENTENCE.format(n=6)))
    cfg = _daemon_cfg(
        tmp_path,
        f'[feed]\npath = "{feed}"\n'
        + source_block("en", server.url("/en"), parser="delegations", schedule="2s"),
    )
    d = daemons(cfg)
    d.wait_for(feed.exists, label="the feed after the first cycle")
    assert check_atom(feed.read_text(encoding="utf-8")).findall(f"{A}entry") == []
    server.set("/en", Route(body=SENTENCE.format(n=7)))
    d.wait_for(lambda: b"<entry>" in feed.read_bytes(), timeout=15, label="the change's entry")
    assert d.stop() == 0, d.log
    (entry,) = check_atom(feed.read_text(encoding="utf-8")).findall(f"{A}entry")
    assert entry.findtext(f"{A}title") == "Kyrgyzstan: Supreme Council: 6 -> 7 seats"


def composition_entries(root: ET.Element) -> list[ET.Element]:
    """The entries of composition changes (the disagreement rule's findings have theirs)."""
    return [
        e
        for e in root.findall(f"{A}entry")
        if [c.get("term") for c in e.findall(f"{A}category")] == ["composition"]
    ]


def test_a_change_confirmed_later_by_another_source_updates_its_entry_through_run(
    tmp_path: Path, server: LocalServer
) -> None:
    """Through the real pipeline (`pawatch run` as a process, pages on a local server): one
    source shows 6 -> 7, a later run finds the other source showing it too; the feed keeps
    one entry with the same id and `published`, moves its `updated`, and lists both
    sources. The feed reads storage's delegation-level changes (Store.delegation_changes)."""
    feed = tmp_path / "changes.atom"
    server.set("/en", Route(body=SENTENCE.format(n=6)))
    server.set("/country", Route(body=SENTENCE.format(n=6)))
    sources = source_block("en", server.url("/en"), parser="delegations") + source_block(
        "country", server.url("/country"), parser="delegations"
    )
    cfg = write_config(tmp_path, f'[feed]\npath = "{feed}"\n' + sources)
    assert pawatch("--config", str(cfg), "run").returncode == 0
    server.set("/en", Route(body=SENTENCE.format(n=7)))
    assert pawatch("--config", str(cfg), "run").returncode == 0
    (one,) = composition_entries(check_atom(feed.read_text(encoding="utf-8")))
    assert "seen on 1 source" in (one.findtext(f"{A}content") or "")
    assert {link.get("href") for link in one.findall(f"{A}link")} == {server.url("/en")}
    time.sleep(1.1)  # the confirmation is recorded in a later second
    server.set("/country", Route(body=SENTENCE.format(n=7)))
    assert pawatch("--config", str(cfg), "run").returncode == 0
    root = check_atom(feed.read_text(encoding="utf-8"))
    (two,) = composition_entries(root)  # still one change
    assert two.findtext(f"{A}id") == one.findtext(f"{A}id")
    assert two.findtext(f"{A}published") == one.findtext(f"{A}published")
    assert (two.findtext(f"{A}updated") or "") > (one.findtext(f"{A}updated") or "")
    assert (root.findtext(f"{A}updated") or "") >= (two.findtext(f"{A}updated") or "")
    assert two.findtext(f"{A}title") == "Kyrgyzstan: Supreme Council: 6 -> 7 seats"
    assert "seen on 2 sources" in (two.findtext(f"{A}content") or "")
    links = {link.get("href") for link in two.findall(f"{A}link")}
    assert links == {server.url("/en"), server.url("/country")}
