"""Storage: dedupe of bodies, snapshot versions, the fetch log, and one transaction per check."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pawatch.domain import Fact
from pawatch.storage import CheckInput, SourceRow, StorageError, Store
from pawatch.storage.facts import DIFF_LINES, ParseInput, Policy, Version
from pawatch.storage.schema import SCHEMA_VERSION

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store.open(tmp_path / "t.db")
    st.sync_sources(
        [
            SourceRow("a", "https://a.example/", "page", None),
            SourceRow("b", "https://b.example/", "page", "KG"),
        ],
        T0,
    )
    return st


def ok(source: str, body: bytes, minutes: int = 0, **kw: object) -> CheckInput:
    return CheckInput(
        source,
        f"https://{source}.example/",
        T0 + timedelta(minutes=minutes),
        0.25,
        http_status=200,
        body=body,
        **kw,  # type: ignore[arg-type]
    )


def count(store: Store, table: str) -> int:
    return int(store.db.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_open_sets_wal_foreign_keys_and_schema_version(store: Store) -> None:
    conn = store.db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.schema_version == SCHEMA_VERSION >= 1


def test_reopening_does_not_reapply_migrations(tmp_path: Path) -> None:
    Store.open(tmp_path / "x.db").close()
    with Store.open(tmp_path / "x.db") as again:
        assert again.schema_version == SCHEMA_VERSION


def test_first_check_is_a_baseline_then_unchanged_moves_last_seen_only(store: Store) -> None:
    first = store.record_check(ok("a", b"<p>v1</p>"))
    assert first.outcome == "new" and first.event_ids == []
    again = store.record_check(ok("a", b"<p>v1</p>", minutes=60))
    assert again.outcome == "unchanged" and again.snapshot_id == first.snapshot_id
    assert count(store, "snapshots") == 1 and count(store, "bodies") == 1
    assert count(store, "fetch_log") == 2
    snap = store.snapshot(first.snapshot_id or 0)
    assert snap.first_seen == "2026-11-01T12:00:00Z" and snap.last_seen == "2026-11-01T13:00:00Z"
    assert snap.body == b"<p>v1</p>"


def test_not_modified_moves_last_seen(store: Store) -> None:
    first = store.record_check(ok("a", b"x", etag='"1"'))
    nm = store.record_check(
        CheckInput(
            "a",
            "https://a.example/",
            T0 + timedelta(hours=2),
            0.1,
            http_status=304,
            not_modified=True,
        )
    )
    assert nm.outcome == "not_modified" and nm.snapshot_id == first.snapshot_id
    assert store.snapshot(first.snapshot_id or 0).last_seen == "2026-11-01T14:00:00Z"
    assert store.latest_validators()["a"].etag == '"1"'


def text(value: str) -> ParseInput:
    return ParseInput(1, [Fact("page", "text", "", value)])


def test_a_new_text_is_a_page_changed_event_with_both_snapshots(store: Store) -> None:
    v1 = store.record_check(ok("a", b"one"), text("one"))
    assert v1.event_ids == []  # the first good parse is the baseline
    v2 = store.record_check(
        ok("a", b"two", minutes=5),
        ParseInput(1, [Fact("page", "text", "", "two")], text_diff="--- before\n-one\n+two"),
    )
    assert v2.outcome == "changed" and len(v2.event_ids) == 1
    (event,) = store.events()
    assert event["kind"] == "page_changed" and (event["old"], event["new"]) == ("one", "two")
    assert (event["before_snapshot"], event["after_snapshot"]) == (v1.snapshot_id, v2.snapshot_id)
    assert event["source_id"] == "a" and event["url"] == "https://a.example/"
    assert "-one" in event["details"] and "+two" in event["details"]


def test_a_new_body_with_the_same_facts_is_no_event(store: Store) -> None:
    store.record_check(ok("a", b"<p>one</p>"), text("one"))
    again = store.record_check(ok("a", b"<p>one </p>", minutes=5), text("one"))
    assert again.outcome == "changed" and again.event_ids == []
    (status,) = [s for s in store.statuses() if s.id == "a"]
    assert status.last_change is None and status.snapshots == 2
    store.record_check(ok("a", b"<p>two</p>", minutes=9), text("two"))
    (status,) = [s for s in store.statuses() if s.id == "a"]
    assert status.last_change == "2026-11-01T12:09:00Z"


def test_identical_bodies_are_stored_once_across_sources_and_flips(store: Store) -> None:
    store.record_check(ok("a", b"same" * 1000))
    store.record_check(ok("b", b"same" * 1000))
    store.record_check(ok("a", b"other", minutes=1))
    store.record_check(ok("a", b"same" * 1000, minutes=2))  # flips back: a new version row
    assert count(store, "bodies") == 2
    assert count(store, "snapshots") == 4
    size = store.db.conn.execute(
        "SELECT size, length(data) FROM bodies WHERE size = 4000"
    ).fetchone()
    assert size[1] < size[0] / 10  # compressed


def test_failure_writes_only_a_fetch_log_row(store: Store) -> None:
    store.record_check(ok("a", b"one"))
    failed = store.record_check(
        CheckInput(
            "a",
            "https://a.example/",
            T0,
            1.0,
            attempts=4,
            error_kind="timeout",
            error="timed out after 30 s",
        )
    )
    assert failed.outcome == "failed" and failed.snapshot_id is None
    assert count(store, "snapshots") == 1 and count(store, "events") == 0
    (status,) = [s for s in store.statuses() if s.id == "a"]
    assert status.consecutive_failures == 1 and status.last_error == "timed out after 30 s"
    assert status.last_outcome == "failed" and status.snapshots == 1


def test_status_counts_consecutive_failures_since_the_last_success(store: Store) -> None:
    store.record_check(ok("b", b"x"))
    for i in range(3):
        store.record_check(
            CheckInput("b", "u", T0 + timedelta(minutes=i), 0.1, error_kind="dns", error=f"e{i}")
        )
    (status,) = [s for s in store.statuses() if s.id == "b"]
    assert status.consecutive_failures == 3 and status.last_error == "e2"
    store.record_check(ok("b", b"x", minutes=10))
    (status,) = [s for s in store.statuses() if s.id == "b"]
    assert status.consecutive_failures == 0 and status.last_outcome == "unchanged"


def test_a_crash_mid_check_leaves_the_database_as_it_was(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.record_check(ok("a", b"one"), text("one"))
    before = {t: count(store, t) for t in ("bodies", "snapshots", "fetch_log", "events")}
    before["facts"] = count(store, "facts")

    def boom(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk on fire")

    # the body and snapshot rows are written before the event: fail at the event
    monkeypatch.setattr(store, "_insert_event", boom)
    with pytest.raises(RuntimeError):
        store.record_check(ok("a", b"two"), text("two"))
    after = {t: count(store, t) for t in before}
    assert after == before
    assert not store.db.conn.in_transaction


def test_a_killed_process_mid_check_leaves_no_partial_rows(tmp_path: Path) -> None:
    """Kill -9 between the body insert and the commit: the next open sees the old state."""
    import subprocess
    import sys
    import textwrap

    db = tmp_path / "k.db"
    with Store.open(db) as st:
        st.sync_sources([SourceRow("a", "https://a.example/", "page", None)], T0)
        st.record_check(ok("a", b"one"), text("one"))
    script = textwrap.dedent(f"""
        import os, signal
        from datetime import datetime, UTC
        from pawatch.storage import Store, CheckInput
        from pawatch.storage.facts import ParseInput
        from pawatch.domain import Fact
        st = Store.open({str(db)!r})
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        st._insert_event = die
        st.record_check(CheckInput("a", "u", datetime.now(UTC), 0.1, body=b"two"),
                        ParseInput(1, [Fact("page", "text", "", "two")]))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr
    with Store.open(db) as st:
        assert count(st, "snapshots") == 1 and count(st, "fetch_log") == 1
        assert count(st, "bodies") == 1


def test_open_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        Store.open(tmp_path / "nope" / "x.db")


def test_open_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot open"):
        Store.open(bad)


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.record_check(ok("unknown-source", b"x"))


def test_a_parse_without_warnings_stores_null_warnings(store: Store) -> None:
    store.record_check(ok("a", b"one"), text("one"))
    warnings = "SELECT warnings FROM source_state WHERE source_id = 'a'"
    assert store.db.conn.execute(warnings).fetchone()[0] is None
    store.record_check(
        ok("a", b"two", minutes=5),
        ParseInput(1, [Fact("page", "text", "", "two")], warnings=("odd heading",)),
    )
    assert store.db.conn.execute(warnings).fetchone()[0] == '["odd heading"]'


@pytest.mark.parametrize(("lines", "cut"), [(DIFF_LINES, False), (DIFF_LINES + 50, True)])
def test_a_long_text_diff_is_cut_and_says_so(store: Store, lines: int, cut: bool) -> None:
    import json

    store.record_check(ok("a", b"one"), text("one"))
    diff = "\n".join(f"+line {i}" for i in range(lines))
    store.record_check(
        ok("a", b"two", minutes=5),
        ParseInput(1, [Fact("page", "text", "", "two")], text_diff=diff),
    )
    (event,) = store.events()
    details = json.loads(event["details"])
    assert details["diff_truncated"] is cut
    assert details["diff"].splitlines() == diff.splitlines()[:DIFF_LINES]


# --- re-deriving facts from snapshots (reparse) honours the confirmation window ------------


def seats(n: int | None) -> ParseInput:
    """A parse of source b: the Kyrgyz total, or nothing readable (``None``)."""
    if n is None:
        return ParseInput(2, None, error="no delegation block on this page")
    return ParseInput(2, [Fact("delegation:KG", "seats:total", "", str(n))])


def rebuild(store: Store, history: list[tuple[int | None, int]], confirm: int = 2) -> list[int]:
    """Store one snapshot of b per ``(seats, checks that saw it)``, unparsed, then re-derive
    b's facts from them; the snapshot ids."""
    ids: list[int] = []
    minute = 0
    for n, seen in history:
        for _ in range(seen):
            outcome = store.record_check(ok("b", f"<p>{n} {len(ids)}</p>".encode(), minute))
            minute += 10
        assert outcome.snapshot_id is not None
        ids.append(outcome.snapshot_id)
    versions = [
        Version(sid, first, last, seats(n), seen_count=count)
        for (sid, first, last, count), (n, _) in zip(
            store.snapshot_versions("b"), history, strict=True
        )
    ]
    store.rebuild_facts("b", versions, 2, Policy(confirm=confirm))
    return ids


def periods(store: Store) -> list[tuple[str, int, int | None]]:
    return [
        tuple(r)
        for r in store.db.conn.execute(
            "SELECT value, first_snapshot, end_snapshot FROM facts WHERE source_id = 'b' "
            "ORDER BY id"
        )
    ]


def candidate(store: Store) -> tuple[object, ...]:
    row = store.db.conn.execute(
        "SELECT candidate, candidate_count, candidate_since, candidate_snapshot "
        "FROM source_state WHERE source_id = 'b'"
    ).fetchone()
    return tuple(row)


def test_rebuild_drops_changes_that_flipped_back_inside_the_window(store: Store) -> None:
    a1, *_ = rebuild(store, [(7, 1), (8, 1), (7, 1), (8, 1), (7, 1)])
    assert periods(store) == [("7", a1, None)]
    assert candidate(store) == (None, 0, None, None)


def test_rebuild_counts_the_checks_that_saw_each_version(store: Store) -> None:
    a, b = rebuild(store, [(7, 1), (8, 2)])
    assert periods(store) == [("7", a, b), ("8", b, None)]
    assert candidate(store) == (None, 0, None, None)


def test_rebuild_confirms_across_bodies_with_the_same_facts(store: Store) -> None:
    a, b1, _b2, a2 = rebuild(store, [(7, 1), (8, 1), (8, 1), (7, 1)])
    assert periods(store) == [("7", a, b1), ("8", b1, None)]
    # the last version, seen once, waits for its confirmation
    since = store.snapshot(a2).first_seen
    assert candidate(store) == ('[["delegation:KG", "seats:total", "", "7"]]', 1, since, a2)


def test_rebuild_broken_versions_do_not_confirm(store: Store) -> None:
    a, b1, _broken, _b2 = rebuild(store, [(7, 1), (8, 1), (None, 5), (8, 1)])
    assert periods(store) == [("7", a, b1), ("8", b1, None)]
    state = "SELECT parse_status, candidate FROM source_state WHERE source_id = 'b'"
    assert tuple(store.db.conn.execute(state).fetchone()) == ("ok", None)


def test_rebuild_broken_versions_do_not_refute(store: Store) -> None:
    a, b, _broken = rebuild(store, [(7, 1), (8, 1), (None, 1)])
    assert periods(store) == [("7", a, None)]
    since = store.snapshot(b).first_seen
    assert candidate(store) == ('[["delegation:KG", "seats:total", "", "8"]]', 1, since, b)
    state = "SELECT parse_status FROM source_state WHERE source_id = 'b'"
    assert store.db.conn.execute(state).fetchone()[0] == "broken"


def test_rebuild_leaves_an_unconfirmed_change_for_the_next_check(store: Store) -> None:
    a, b = rebuild(store, [(7, 1), (8, 1)], confirm=3)
    assert periods(store) == [("7", a, None)]
    since = store.snapshot(b).first_seen
    assert candidate(store) == ('[["delegation:KG", "seats:total", "", "8"]]', 1, since, b)
    # the next checks see the same body: the change is confirmed at the third sighting
    again = store.record_check(ok("b", b"<p>8 1</p>", 100), None, Policy(confirm=3))
    assert again.outcome == "unchanged" and again.event_ids == []
    last = store.record_check(ok("b", b"<p>8 1</p>", 110), None, Policy(confirm=3))
    assert len(last.event_ids) == 1
    (event,) = store.events()
    assert (event["kind"], event["old"], event["new"]) == ("composition", "7", "8")
    assert (event["before_snapshot"], event["after_snapshot"]) == (a, b)
    assert periods(store) == [("7", a, b), ("8", b, None)]


def test_representatives_view_shows_the_latest_role_of_the_period(store: Store) -> None:
    kg = "delegation:KG"

    def parse(role: str | None) -> ParseInput:
        facts = [
            Fact(kg, "delegation", "", "Supreme Council"),
            Fact(kg, "plenipotentiary", "", "Shabdanbek Alishev"),
        ]
        if role:
            facts.append(Fact(kg, "plenipotentiary_role", "", role))
        return ParseInput(1, facts)

    store.record_check(ok("b", b"1"), parse(None))
    store.record_check(ok("b", b"2", minutes=5), parse("deputy Executive Secretary"))
    rows = store.db.conn.execute("SELECT name, role FROM representatives").fetchall()
    assert rows == [("Shabdanbek Alishev", "deputy Executive Secretary")]


def _fact_rows(store: Store, source: str) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in store.db.conn.execute(
            "SELECT subject, attribute, key, value, first_seen, last_seen, ended_at, "
            "first_snapshot, last_snapshot, end_snapshot FROM facts WHERE source_id = ? "
            "ORDER BY first_snapshot, subject, attribute, key",
            (source,),
        )
    ]


@pytest.mark.parametrize("confirm", [1, 2, 3])
def test_live_checks_and_reparse_run_one_rule_to_the_same_facts(store: Store, confirm: int) -> None:
    """The same parses checked live one by one, then re-derived from the stored snapshots
    (reparse folds the same ``track``): the same fact intervals, the same pending change."""
    history = [7, 7, 8, 7, 8, 8, 8, None, 8, 9, 9, 9, 9, 6]  # None: an unreadable version
    for minute, n in enumerate(history):
        parse = seats(n)
        store.record_check(
            ok("b", f"<p>{n} {minute}</p>".encode(), minute * 10), parse, Policy(confirm=confirm)
        )
    live = _fact_rows(store, "b")
    state = store.db.conn.execute(
        "SELECT parse_status, candidate, candidate_count, candidate_snapshot FROM source_state "
        "WHERE source_id = 'b'"
    ).fetchone()
    versions = [
        Version(sid, first, last, seats(n), seen_count=c)
        for (sid, first, last, c), n in zip(store.snapshot_versions("b"), history, strict=True)
    ]
    store.rebuild_facts("b", versions, 2, Policy(confirm=confirm))
    assert _fact_rows(store, "b") == live
    assert len({r[3] for r in live}) > 1  # the history has changes in it
    again = store.db.conn.execute(
        "SELECT parse_status, candidate, candidate_count, candidate_snapshot FROM source_state "
        "WHERE source_id = 'b'"
    ).fetchone()
    assert tuple(again) == tuple(state)


def test_track_is_pure() -> None:
    """``track`` reads and writes nothing: the same input gives the same output, twice."""
    from pawatch.storage.facts import Sighting, SourceState, track

    facts = [Fact("delegation:KG", "seats:total", "", "7")]
    base = track(SourceState(), Sighting("T1", 1, "u", parse=ParseInput(2, facts)), Policy())
    assert base.state.baseline_at == "T1" and not base.events
    new = [Fact("delegation:KG", "seats:total", "", "8")]
    sighting = Sighting("T2", 2, "u", parse=ParseInput(2, new))
    one, two = track(base.state, sighting, Policy()), track(base.state, sighting, Policy())
    assert one == two
    assert [(e.kind, e.old, e.new) for e in one.events] == [("composition", "7", "8")]
    assert base.state.open is not None and [o.fact for o in base.state.open] == facts  # unchanged
